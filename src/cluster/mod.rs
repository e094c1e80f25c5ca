//! Several `allot serve` instances sharing the shards. Each instance
//! registers itself and, every heartbeat, renews the leases it holds (see
//! [`leases`]), works out its fair share of the shards from the live
//! instances, gives up shards above it (drained, then released) and takes
//! free ones below it. A shard whose lease is lost, or cannot be renewed
//! before it could lapse, is stopped at once: another instance may already
//! be rebuilding it from snapshot plus log, and the log's expected-sequence
//! check fences whichever writer comes second in any case. The new owner
//! takes over the intake the old one left unacked (the consumer is shared;
//! a stopped shard hands its messages back).

pub mod leases;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use leases::{LeaseError, Leases, Survey, LEASES_BUCKET};

use crate::ports::ShardId;
use crate::runtime::ShardExit;

/// How a shard's run ended, as the coordinator sees it.
pub type ShardOutcome = Result<ShardExit, String>;

/// Starts shard `n`: runs it until `stop` (drain) or `abort` (at once,
/// handing its intake back), and returns how it ended.
pub type StartShard = Arc<
    dyn Fn(ShardId, CancellationToken, CancellationToken) -> BoxFuture<'static, ShardOutcome>
        + Send
        + Sync,
>;

/// How many of `shards` the instance `me` should own among `instances`
/// (sorted ids): an even split, the first `shards % n` get one more.
pub fn fair_share(shards: u32, instances: &[String], me: &str) -> usize {
    let n = instances.len().max(1);
    let index = instances.iter().position(|i| i == me).unwrap_or(n - 1);
    let base = shards as usize / n;
    base + usize::from(index < shards as usize % n)
}

/// What one heartbeat does about ownership.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Owned shards to drain and give up.
    pub release: Vec<ShardId>,
    /// Free shards to try to take, best first.
    pub acquire: Vec<ShardId>,
    /// This instance's fair share.
    pub target: usize,
}

/// Decides which shards `me` gives up or tries to take, given the survey,
/// what it owns, and shards it must leave alone for now (`cooling`).
/// Shards are ranked per instance by a hash of (instance, shard), so
/// instances prefer different shards and rarely race for the same one.
pub fn plan(
    shards: u32,
    me: &str,
    survey: &Survey,
    owned: &BTreeSet<ShardId>,
    cooling: &BTreeSet<ShardId>,
) -> Plan {
    let mut instances = survey.instances.clone();
    if !instances.iter().any(|i| i == me) {
        instances.push(me.to_owned());
        instances.sort();
    }
    let target = fair_share(shards, &instances, me);
    let mut plan = Plan {
        target,
        ..Plan::default()
    };
    if owned.len() > target {
        let mut mine: Vec<ShardId> = owned.iter().copied().collect();
        mine.sort_by_key(|&s| rank(me, s));
        plan.release = mine[..owned.len() - target].to_vec();
    } else if owned.len() < target {
        let leased: BTreeSet<ShardId> = survey.owners.iter().map(|(s, _)| *s).collect();
        let mut free: Vec<ShardId> = (0..shards)
            .filter(|s| !leased.contains(s) && !owned.contains(s) && !cooling.contains(s))
            .collect();
        free.sort_by_key(|&s| std::cmp::Reverse(rank(me, s)));
        free.truncate(target - owned.len());
        plan.acquire = free;
    }
    plan
}

/// The rendezvous rank of `shard` for `instance` (FNV-1a).
fn rank(instance: &str, shard: ShardId) -> u64 {
    instance
        .bytes()
        .chain(shard.to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

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
pub struct Coordinator {
    pub leases: Leases,
    pub shards: u32,
    pub ttl: Duration,
    pub start: StartShard,
    /// This instance's current fair share, for readiness.
    pub target: Arc<AtomicUsize>,
}

impl Coordinator {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("i{i}")).collect()
    }

    #[test]
    fn fair_shares_add_up_and_differ_by_at_most_one() {
        for shards in [1u32, 4, 7, 16] {
            for n in 1..6 {
                let instances = ids(n);
                let shares: Vec<usize> = instances
                    .iter()
                    .map(|me| fair_share(shards, &instances, me))
                    .collect();
                assert_eq!(shares.iter().sum::<usize>(), shards as usize);
                let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(max - min <= 1, "{shards} shards over {n}: {shares:?}");
            }
        }
    }

    /// Instances that each follow their plan, taking free shards in turn,
    /// end up owning every shard, each its fair share, and no shard twice.
    #[test]
    fn plans_converge_to_a_fair_disjoint_split() {
        let shards = 10u32;
        let instances = ids(3);
        let mut owned: BTreeMap<String, BTreeSet<ShardId>> = BTreeMap::new();
        owned.insert("i0".into(), (0..shards).collect());
        for _ in 0..10 {
            for me in &instances {
                let survey = Survey {
                    instances: instances.clone(),
                    owners: owned
                        .iter()
                        .flat_map(|(o, s)| s.iter().map(move |s| (*s, o.clone())))
                        .collect(),
                };
                let mine = owned.get(me).cloned().unwrap_or_default();
                let p = plan(shards, me, &survey, &mine, &BTreeSet::new());
                let entry = owned.entry(me.clone()).or_default();
                for s in p.release {
                    entry.remove(&s);
                }
                entry.extend(p.acquire);
            }
        }
        let all: Vec<ShardId> = owned.values().flatten().copied().collect();
        let unique: BTreeSet<ShardId> = all.iter().copied().collect();
        assert_eq!(all.len(), shards as usize, "{owned:?}");
        assert_eq!(unique.len(), shards as usize, "{owned:?}");
        for (me, s) in &owned {
            assert_eq!(s.len(), fair_share(shards, &instances, me), "{owned:?}");
        }
    }

    #[test]
    fn cooling_shards_are_not_taken() {
        let survey = Survey {
            instances: ids(1),
            owners: Vec::new(),
        };
        let cooling: BTreeSet<ShardId> = [2].into();
        let p = plan(4, "i0", &survey, &BTreeSet::new(), &cooling);
        assert_eq!(p.target, 4);
        let mut got = p.acquire.clone();
        got.sort();
        assert_eq!(got, [0, 1, 3]);
    }
}
