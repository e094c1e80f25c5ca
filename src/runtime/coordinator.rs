//! The lease protocol of one instance, when several `allot serve` share
//! the shards: every heartbeat (a third of the TTL) it registers the
//! instance, works out its fair share ([`crate::cluster::plan`]),
//! gives up shards above it (drained, then released) and takes free ones
//! below it. The new owner takes over the intake the old one left unacked
//! (the consumer is shared; a stopped shard hands its messages back).
//!
//! Each held shard's lease is kept by a task of its own ([`keeper`]),
//! which renews it and stops the shard before the lease could lapse,
//! whatever the coordinator is waiting for; the coordinator's own calls
//! (registration, survey, acquire, release) are each bounded. Whichever
//! writer comes second is also fenced by the log's expected-sequence
//! check.

mod keeper;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{join_all, BoxFuture};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::ShardExit;
use crate::cluster::plan;
use crate::ports::{LeaseError, Leases, ShardId};
use keeper::{keep, Keeper};

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
    keeper: Keeper,
    stop: CancellationToken,
    task: JoinHandle<ShardOutcome>,
    /// Draining to give it up to rebalance.
    releasing: bool,
}

impl Held {
    /// Ours, running, and not being given up.
    fn owned(&self) -> bool {
        !self.releasing && !self.keeper.lease.lost()
    }
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

impl<L: Leases + Clone> Coordinator<L> {
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
            let (registered, survey) = tokio::join!(
                self.bounded(self.call(), self.leases.register()),
                self.bounded(heartbeat, self.leases.survey()),
            );
            if let Err(e) = registered {
                warn!(error = %e, "instance heartbeat not written");
            }
            let now = Instant::now();
            cooling.retain(|_, until| *until > now);
            let survey = match survey {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "leases not surveyed; ownership unchanged");
                    continue;
                }
            };
            let owned: BTreeSet<ShardId> = held
                .iter()
                .filter(|(_, h)| h.owned())
                .map(|(s, _)| *s)
                .collect();
            // A shard still being given up or stopped is neither owned
            // nor free.
            let cooling_set: BTreeSet<ShardId> = cooling
                .keys()
                .chain(held.iter().filter(|(_, h)| !h.owned()).map(|(s, _)| s))
                .copied()
                .collect();
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
            let sent = Instant::now();
            let this = &self;
            let taken = join_all(plan.acquire.iter().map(|&shard| async move {
                let taken = this.bounded(this.call(), this.leases.acquire(shard));
                (shard, taken.await)
            }))
            .await;
            for (shard, taken) in taken {
                match taken {
                    Ok(revision) => {
                        info!(shard, revision, "shard lease acquired");
                        held.insert(shard, self.spawn(shard, revision, sent));
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
            self.give_back(shard, h.keeper).await;
        }
        let _ = timeout(self.call(), self.leases.deregister()).await;
        info!("shard leases released");
    }

    /// How long one lease call may take.
    fn call(&self) -> Duration {
        self.ttl / 4
    }

    /// `call`, failed as a store error if it takes longer than `limit`.
    async fn bounded<T>(
        &self,
        limit: Duration,
        call: impl Future<Output = Result<T, LeaseError>>,
    ) -> Result<T, LeaseError> {
        timeout(limit, call)
            .await
            .unwrap_or_else(|_| Err(LeaseError::Store(format!("no answer within {limit:?}"))))
    }

    /// Stops keeping the lease of a shard that ended, then releases it at
    /// the last revision written (a no-op if it is someone else's now).
    async fn give_back(&self, shard: ShardId, keeper: Keeper) {
        keeper.done.cancel();
        let _ = keeper.task.await;
        let revision = keeper.lease.revision();
        if timeout(self.call(), self.leases.release(shard, revision))
            .await
            .is_err()
        {
            warn!(
                shard,
                "shard lease not released in time; it lapses on its own"
            );
        }
    }

    fn spawn(&self, shard: ShardId, revision: u64, sent: Instant) -> Held {
        let (stop, abort) = (CancellationToken::new(), CancellationToken::new());
        let keeper = keep(
            &self.leases,
            shard,
            self.ttl,
            (revision, sent),
            abort.clone(),
        );
        let task = tokio::spawn((self.start)(shard, stop.clone(), abort));
        Held {
            keeper,
            stop,
            task,
            releasing: false,
        }
    }

    /// Shards whose task ended: each gives its lease back; one that ended
    /// on its own (fenced, failed) also waits out two TTLs before this
    /// instance tries it again.
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
            let lost = h.keeper.lease.lost();
            if !h.releasing {
                match (&outcome, lost) {
                    (Ok(exit), true) => info!(shard, ?exit, "shard ended: its lease was lost"),
                    (Ok(exit), false) => {
                        warn!(shard, ?exit, "shard stopped on its own; lease released")
                    }
                    (Err(e), _) => error!(shard, error = %e, "shard failed; lease released"),
                }
                // A lease lost is taken again as soon as it is free (the
                // survey says whether someone else holds it); a shard that
                // ended on its own waits, so it does not flap.
                if !lost || outcome.is_err() {
                    cooling.insert(shard, Instant::now() + self.ttl * 2);
                }
            }
            self.give_back(shard, h.keeper).await;
        }
    }
}
