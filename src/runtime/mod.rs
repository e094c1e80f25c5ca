//! The only async loop. One task owns each shard's scheduler (an actor: no
//! lock around domain data); it feeds the shard from the intake, the worker
//! pool, the event log and the clock, and carries out what the shard
//! outputs through the ports. The same code drives the in-memory ports in
//! tests and the NATS adapters in production.

pub mod claims;
pub mod coordinator;
mod recover;
mod shard_task;
pub mod views;
mod workers;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

pub use recover::recover;
pub use shard_task::{run_shard, ShardExit};
pub use workers::Workers;

use crate::domain::{CartConfig, PartitionKey, StateError, Timestamp};
use crate::ports::{AppendError, Delivery, Intake, ShardId};
use crate::scheduler::{Reply, Shard, ShardConfig};

/// Where the runtime reads the time it passes into the core: the one
/// clock read.
#[derive(Clone, Copy, Default)]
pub enum Clock {
    /// The system's wall clock (production).
    #[default]
    Wall,
    /// Tokio's clock, standing for `start` at tokio's instant `at`: under a
    /// paused runtime (the fault simulation) time is virtual and a seeded
    /// run replays exactly.
    Tokio {
        at: tokio::time::Instant,
        start: Timestamp,
    },
}

impl std::fmt::Debug for Clock {
    /// Without tokio's instant, which differs between runs of one seed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Clock::Wall => f.write_str("Wall"),
            Clock::Tokio { start, .. } => write!(f, "Tokio from {start:?}"),
        }
    }
}

impl Clock {
    /// Tokio's clock from now on, standing for `start` now.
    pub fn tokio(start: Timestamp) -> Self {
        Clock::Tokio {
            at: tokio::time::Instant::now(),
            start,
        }
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::Wall => {
                let ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
            }
            Clock::Tokio { at, start } => {
                let ms = u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX);
                Timestamp(start.0.saturating_add(ms))
            }
        }
    }
}

/// Hands one intake message to its shard.
pub fn feed(shard: &mut Shard, delivery: Delivery, now: Timestamp) -> Reply {
    let ack = delivery.ack;
    match delivery.item {
        Intake::Order(order) => shard.handle_order(order, ack, now),
        Intake::Forwarded(order) => shard.handle_rerouted_order(order, ack, now),
        Intake::Command(command) => shard.handle_command(command, ack, now),
        Intake::Invalid {
            id,
            errors,
            partition,
        } => shard.handle_invalid(id, errors, partition, ack, now),
        // A cart's line is placed like a producer's order (its id claimed
        // at its owner first), so a line resent after its decision is
        // answered, never decided twice.
        Intake::Line(order) => shard.handle_order(order, ack, now),
        Intake::Settle {
            line,
            commit,
            reason,
        } => {
            shard.handle_line_settle(&line, commit, reason, ack, now);
            Reply::Accepted
        }
        Intake::Cart(_) | Intake::Answer { .. } | Intake::CartCommand { .. } => {
            unreachable!("cart items are fed to the shard's coordinator, not to the shard")
        }
    }
}

/// Everything a shard task talks to, shared by the instance's shards.
pub struct Ports<L, I, S, F> {
    pub log: L,
    pub intake: I,
    pub snapshots: S,
    pub workers: Workers<F>,
    /// The shard that owns a partition (the config's router), for forwards.
    pub shard_of: Box<dyn Fn(&PartitionKey) -> ShardId + Send + Sync>,
    /// Claims of ids at the shards that own them.
    pub claims: Arc<claims::ClaimRouter>,
}

/// How the runtime drives each shard.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub shard: ShardConfig,
    /// Most intake messages handed to a shard at once.
    pub fetch_batch: usize,
    /// Most deliveries a shard has in hand (fetched and not yet fed, or
    /// with workers) before it fetches more: the rest of a backlog waits
    /// in the stream, not in memory.
    pub max_in_line: usize,
    /// Wait before fetching again when the intake was empty.
    pub idle_poll: Duration,
    /// Save a snapshot after this many appended events (0: never).
    pub snapshot_every_events: u64,
    /// Also save one once this long has passed with events appended since
    /// the last (None: only by count).
    pub snapshot_every: Option<Duration>,
    /// Longest wait for an append before it is retried (same batch id).
    pub append_timeout: Duration,
    /// Longest wait for a worker before its attempt counts as a retryable
    /// failure (the order id stays the idempotency key).
    pub worker_timeout: Duration,
    /// On shutdown, how long to let in-flight work finish.
    pub drain_deadline: Duration,
    /// The shards this instance is serving (recovered and not yet stopped),
    /// for readiness checks.
    pub owned: Arc<OwnedShards>,
    /// The clock the core's time comes from.
    pub clock: Clock,
    /// The limits and retries of the shard's cart coordinator.
    pub carts: CartConfig,
    /// Shards that may hold a snapshot in memory at once (encoded, not
    /// yet saved), shared by the instance's shard tasks: a snapshot is the
    /// size of its shard's state, and shards under one load reach their
    /// snapshot counts together. A shard whose turn is taken snapshots at
    /// a later append.
    pub snapshots_at_once: Arc<tokio::sync::Semaphore>,
    /// The instance's views, fed by each append as it lands (None: the
    /// views only follow EVENTS).
    pub views: Option<views::OwnAppends>,
}

/// The shards whose tasks have recovered and are deciding, shared by the
/// instance's shard tasks and its health checks.
#[derive(Debug, Default)]
pub struct OwnedShards(Mutex<BTreeSet<ShardId>>);

impl OwnedShards {
    /// Marks `shard` owned until the returned guard drops.
    pub fn hold(self: &Arc<Self>, shard: ShardId) -> OwnedGuard {
        self.0.lock().insert(shard);
        OwnedGuard(self.clone(), shard)
    }

    pub fn count(&self) -> usize {
        self.0.lock().len()
    }

    pub fn contains(&self, shard: ShardId) -> bool {
        self.0.lock().contains(&shard)
    }

    pub fn list(&self) -> Vec<ShardId> {
        self.0.lock().iter().copied().collect()
    }
}

/// Holds a shard in [`OwnedShards`] while its task runs.
#[derive(Debug)]
pub struct OwnedGuard(Arc<OwnedShards>, ShardId);

impl Drop for OwnedGuard {
    fn drop(&mut self) {
        self.0 .0.lock().remove(&self.1);
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            shard: ShardConfig::default(),
            fetch_batch: 256,
            max_in_line: 32_768,
            idle_poll: Duration::from_millis(2),
            snapshot_every_events: 100_000,
            snapshot_every: Some(Duration::from_secs(60)),
            append_timeout: Duration::from_secs(5),
            worker_timeout: Duration::from_secs(10),
            drain_deadline: Duration::from_secs(10),
            owned: Arc::default(),
            clock: Clock::Wall,
            carts: CartConfig::default(),
            snapshots_at_once: Arc::new(tokio::sync::Semaphore::new(1)),
            views: None,
        }
    }
}

/// Why a shard task stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The shard's log could not be read at start.
    #[error("shard {shard}: reading its log: {source}")]
    Log { shard: ShardId, source: AppendError },
    /// The log or snapshot holds something this shard cannot apply.
    #[error("shard {shard}: rebuilding from its log: {source}")]
    Corrupt { shard: ShardId, source: StateError },
    /// The shard could not start answering claims for its ids.
    #[error("shard {shard}: serving claims: {why}")]
    Claims { shard: ShardId, why: String },
    /// The log read back skipped or repeated an entry.
    #[error("shard {shard}: log entry {seq} follows {prev}, but recovery was at {last}")]
    Chain {
        shard: ShardId,
        seq: u64,
        prev: u64,
        last: u64,
    },
    /// A snapshot could not be decoded.
    #[error("shard {shard}: snapshot at sequence {seq} is unreadable: {why}")]
    Snapshot {
        shard: ShardId,
        seq: u64,
        why: String,
    },
}

#[cfg(test)]
mod tests;
