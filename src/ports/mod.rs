//! The traits the runtime drives a shard through, each with an in-memory
//! implementation for tests and simulation. Real adapters (JetStream intake,
//! the EVENTS stream, request-reply workers) implement the same traits.

mod leases;
mod memory;
mod simulated;

use std::future::Future;
use std::time::SystemTime;

use crate::domain::{Attempt, Event, Order, Outcome, PartitionKey};
use crate::scheduler::AckId;
use crate::wire::DecisionMessage;
pub use crate::wire::Intake;

pub use leases::{LeaseError, Leases, Survey};
pub use memory::{MemIntake, MemLog, MemSnapshots};
pub use simulated::{Latency, SimulatedFulfiller};

/// Identifies a shard: its log subject and its intake consumer.
pub type ShardId = u32;

/// Why an append did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The shard's log moved on: another writer owns it now.
    #[error("shard {shard}: expected last sequence {expected}, log is at {actual}")]
    Conflict {
        shard: ShardId,
        expected: u64,
        actual: u64,
    },
    /// The log could not be reached; the append may or may not have landed.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
}

/// One entry of a shard's log: its sequence, the sequence of the entry
/// before it (0 for the first), and its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub seq: u64,
    pub prev: u64,
    pub events: Vec<Event>,
}

/// The shard event log: one entry per decided batch, appended only at an
/// expected last sequence (optimistic concurrency).
pub trait EventLog: Send + Sync {
    /// Appends `events` as one entry if the shard's last sequence is
    /// `expected_last`; returns the new entry's sequence. `batch_id` makes a
    /// retry idempotent: an append that landed before its answer was lost
    /// answers again with its sequence instead of landing twice.
    fn append(
        &self,
        shard: ShardId,
        expected_last: u64,
        batch_id: &str,
        events: &[Event],
    ) -> impl Future<Output = Result<u64, AppendError>> + Send;

    /// Every entry of the shard after sequence `after`, in order, each
    /// once, chained (`prev` of each is the sequence before it; the first
    /// follows `after`).
    fn read(
        &self,
        shard: ShardId,
        after: u64,
    ) -> impl Future<Output = Result<Vec<Logged>, AppendError>> + Send;
}

/// One intake message handed to a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The message's ack; `None` for every order of a batch message but
    /// its last, so the message is acked once all of them are decided.
    pub ack: Option<AckId>,
    pub item: Intake,
    /// 1 on first delivery.
    pub delivery_count: u32,
    /// When the message was stored in the intake (the broker's clock), for
    /// the publish-to-decision latency; `None` if unknown.
    pub published: Option<SystemTime>,
}

/// The per-shard order queue: at-least-once delivery, explicit acks.
pub trait IntakeQueue: Send + Sync {
    /// Up to `max` messages not yet acked and not in flight.
    fn fetch(&self, shard: ShardId, max: usize) -> impl Future<Output = Vec<Delivery>> + Send;
    /// The shard decided these durably; they are done.
    fn ack(&self, shard: ShardId, acks: &[AckId]) -> impl Future<Output = ()> + Send;
    /// Queues an order for its partition's shard.
    fn submit(&self, shard: ShardId, order: Order) -> impl Future<Output = ()> + Send;
    /// Queues allot's own cart traffic (a cart, a line, an answer, a
    /// settlement, a cart command) for `shard`, filed under `partition`'s
    /// subject, retrying until it is taken. Not deduplicated by the queue:
    /// every receiver of these is idempotent.
    fn send(
        &self,
        shard: ShardId,
        partition: PartitionKey,
        item: Intake,
    ) -> impl Future<Output = ()> + Send;
    /// The shard stopped here (fenced, or shut down): take no more of its
    /// messages, and hand back those fetched and not acked, so its next
    /// owner gets them now rather than after the broker's ack wait.
    fn release(&self, shard: ShardId) -> impl Future<Output = ()> + Send;
}

/// Shard snapshots: the state at a log sequence, so recovery replays only
/// the log's tail.
pub trait Snapshots: Send + Sync {
    fn load(
        &self,
        shard: ShardId,
    ) -> impl Future<Output = Result<Option<(u64, Vec<u8>)>, AppendError>> + Send;
    fn save(
        &self,
        shard: ShardId,
        seq: u64,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), AppendError>> + Send;
}

/// Named checkpoints of read models (the views of each shard): the log
/// sequence they reflect and their bytes.
pub trait Checkpoints: Send + Sync {
    fn load_checkpoint(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<(u64, Vec<u8>)>, AppendError>> + Send;
    fn save_checkpoint(
        &self,
        name: &str,
        seq: u64,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), AppendError>> + Send;
}

/// One log entry of some shard, as a feed of every shard delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    pub shard: ShardId,
    pub seq: u64,
    pub events: Vec<Event>,
    /// When the log stored it, for the views' lag.
    pub stored: SystemTime,
}

/// Every shard's log, followed from given positions: each entry once, in
/// its shard's order (gaps are read again, repeats skipped, inside).
pub trait LogFeed: Send {
    /// The next entry; `None` when none came within `wait`.
    fn next(
        &mut self,
        wait: std::time::Duration,
    ) -> impl Future<Output = Result<Option<FeedEntry>, AppendError>> + Send;
}

/// Where decisions are published for subscribers, best effort (the
/// durable feed is the log itself).
pub trait DecisionSink: Send + Sync {
    fn publish(&self, decisions: Vec<DecisionMessage>) -> impl Future<Output = ()> + Send;
}

/// Enacts released orders (payment capture, fulfilment request, ...). The
/// order id is the idempotency key: a repeated call for the same order must
/// not enact it twice.
pub trait Fulfiller: Send + Sync {
    fn fulfil(&self, order: &Order, attempt: Attempt) -> impl Future<Output = Outcome> + Send;
}

/// Polls a future that the in-memory ports resolve at once.
///
/// # Panics
/// If the future is pending: only for futures known to be ready.
pub fn now_or_never<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("an in-memory port future was pending"),
    }
}
