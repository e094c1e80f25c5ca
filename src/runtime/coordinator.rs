//! The lease protocol of one instance, when several `allot serve` share
//! the shards: it registers the instance and, every heartbeat, renews the
//! leases it holds, works out its fair share ([`crate::cluster::plan`]),
//! gives up shards above it (drained, then released) and takes free ones
//! below it. A shard whose lease is lost, or cannot be renewed before it
//! could lapse, is stopped at once: another instance may already be
//! rebuilding it from snapshot plus log, and the log's expected-sequence
//! check fences whichever writer comes second in any case. The new owner
//! takes over the intake the old one left unacked (the consumer is shared;
//! a stopped shard hands its messages back).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::ShardExit;
use crate::cluster::plan;
use crate::ports::{LeaseError, Leases, ShardId};

/// How a shard's run ended, as the coordinator sees it.
pub type ShardOutcome = Result<ShardExit, String>;

/// Starts shard `n`: runs it until `stop` (drain) or `abort` (at once,
/// handing its intake back), and returns how it ended.
pub type StartShard = Arc<
    dyn Fn(ShardId, CancellationToken, CancellationToken) -> BoxFuture<'static, ShardOutcome>
        + Send
        + Sync,
>;

/// A shard this instance holds.
struct Held {
    revision: u64,
    renewed: Instant,
    stop: CancellationToken,
    abort: CancellationToken,
    task: JoinHandle<ShardOutcome>,
    releasing: bool,
}

/// Runs the lease protocol until `stop`, then drains every held shard and
/// releases its lease, so others take over at once.
pub struct Coordinator<L> {
    pub leases: L,
    pub shards: u32,
    pub ttl: Duration,
    pub start: StartShard,
    /// This instance's current fair share, for readiness.
    pub target: Arc<AtomicUsize>,
}

impl<L: Leases> Coordinator<L> {
    pub async fn run(self, stop: CancellationToken) {
        let heartbeat = self.ttl / 3;
        let mut held: BTreeMap<ShardId, Held> = BTreeMap::new();
        let mut cooling: BTreeMap<ShardId, Instant> = BTreeMap::new();
        let mut tick = tokio::time::interval(heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        info!(instance = self.leases.me(), ttl = ?self.ttl, "taking part in shard leases");
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => break,
            }
            self.reap(&mut held, &mut cooling).await;
            if let Err(e) = self.leases.register().await {
                warn!(error = %e, "instance heartbeat not written");
            }
            self.renew(&mut held).await;
            let now = Instant::now();
            cooling.retain(|_, until| *until > now);
            let survey = match self.leases.survey().await {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "leases not surveyed; ownership unchanged");
                    continue;
                }
            };
            let owned: BTreeSet<ShardId> = held
                .iter()
                .filter(|(_, h)| !h.releasing)
                .map(|(s, _)| *s)
                .collect();
            let cooling_set: BTreeSet<ShardId> = cooling.keys().copied().collect();
            let plan = plan(self.shards, self.leases.me(), &survey, &owned, &cooling_set);
            self.target.store(plan.target, Ordering::Relaxed);
            for shard in plan.release {
                if let Some(h) = held.get_mut(&shard) {
                    info!(
                        shard,
                        target = plan.target,
                        "giving the shard up to rebalance"
                    );
                    h.releasing = true;
                    h.stop.cancel();
                }
            }
            for shard in plan.acquire {
                match self.leases.acquire(shard).await {
                    Ok(revision) => {
                        info!(shard, revision, "shard lease acquired");
                        held.insert(shard, self.spawn(shard, revision));
                    }
                    Err(LeaseError::Taken) => {}
                    Err(e) => warn!(shard, error = %e, "shard lease not acquired"),
                }
            }
        }
        for h in held.values() {
            h.stop.cancel();
        }
        for (shard, h) in held {
            let _ = h.task.await;
            self.leases.release(shard, h.revision).await;
        }
        self.leases.deregister().await;
        info!("shard leases released");
    }

    fn spawn(&self, shard: ShardId, revision: u64) -> Held {
        let (stop, abort) = (CancellationToken::new(), CancellationToken::new());
        let task = tokio::spawn((self.start)(shard, stop.clone(), abort.clone()));
        Held {
            revision,
            renewed: Instant::now(),
            stop,
            abort,
            task,
            releasing: false,
        }
    }

    /// Shards whose task ended: released ones give their lease back; one
    /// that ended on its own (fenced, failed) also waits out two TTLs
    /// before this instance tries it again.
    async fn reap(
        &self,
        held: &mut BTreeMap<ShardId, Held>,
        cooling: &mut BTreeMap<ShardId, Instant>,
    ) {
        let done: Vec<ShardId> = held
            .iter()
            .filter(|(_, h)| h.task.is_finished())
            .map(|(s, _)| *s)
            .collect();
        for shard in done {
            let h = held.remove(&shard).expect("listed above");
            let outcome = h
                .task
                .await
                .unwrap_or_else(|e| Err(format!("panicked: {e}")));
            if !h.releasing {
                match &outcome {
                    Ok(exit) => warn!(shard, ?exit, "shard stopped on its own; lease released"),
                    Err(e) => error!(shard, error = %e, "shard failed; lease released"),
                }
                cooling.insert(shard, Instant::now() + self.ttl * 2);
            }
            self.leases.release(shard, h.revision).await;
        }
    }

    /// Renews every lease; a lost one, or one not renewed for 3/4 of the
    /// TTL, stops its shard at once.
    async fn renew(&self, held: &mut BTreeMap<ShardId, Held>) {
        let mut lost = Vec::new();
        for (&shard, h) in held.iter_mut() {
            match self.leases.renew(shard, h.revision).await {
                Ok(revision) => {
                    h.revision = revision;
                    h.renewed = Instant::now();
                }
                Err(LeaseError::Taken) => {
                    error!(
                        shard,
                        "shard lease lost to another instance; stopping the shard now"
                    );
                    lost.push(shard);
                }
                Err(e) if h.renewed.elapsed() > self.ttl * 3 / 4 => {
                    error!(shard, error = %e, "shard lease not renewed in time; stopping the shard now");
                    lost.push(shard);
                }
                Err(e) => warn!(shard, error = %e, "shard lease not renewed; trying again"),
            }
        }
        for shard in lost {
            if let Some(h) = held.remove(&shard) {
                h.abort.cancel();
                let _ = h.task.await;
            }
        }
    }
}
