//! The event log, snapshots and fulfiller the runtime drives, each wrapping
//! its in-memory port with the seed's faults: appends refused, appends that
//! land and then fail or time out, crashes before and after a step, failed
//! snapshot saves, worker calls that enact and then time out. They also
//! check, as the calls happen, what only they can see: a snapshot that
//! differs from its log, an order dispatched after its decision, two
//! enactments of one order at once.

use std::sync::Arc;
use std::time::Duration;

use allot::domain::{Attempt, CartEvent, Event, Order, OrderId, Outcome, ShardState};
use allot::ports::{AppendError, EventLog, Fulfiller, Logged, MemSnapshots, ShardId, Snapshots};
use rustc_hash::{FxHashMap, FxHashSet};

use super::world::World;

/// Decided-order ids remembered, as in the runtime's config.
pub const DEDUPE_HORIZON: usize = 200_000;

/// The empty state of shard `shard` of `shards`, as the runtime makes it.
pub fn empty_state(shard: ShardId, shards: u32) -> ShardState {
    allot::scheduler::ShardConfig {
        dedupe_horizon: DEDUPE_HORIZON,
        shard,
        shards,
        ..Default::default()
    }
    .empty_state()
}

pub struct FaultLog {
    pub world: Arc<World>,
    pub append_timeout: Duration,
}

impl FaultLog {
    /// Records the final decisions an append made durable.
    fn landed(&self, shard: ShardId, seq: u64, events: &[Event]) {
        let mut decided = self.world.decided.lock();
        for e in events {
            match e {
                Event::OrderConfirmed { id } | Event::OrderRejected { id, .. } => {
                    decided.insert(id.clone());
                }
                Event::Cart { event } => match event.as_ref() {
                    CartEvent::Confirmed { cart }
                    | CartEvent::Rejected { cart, .. }
                    | CartEvent::Cancelled { cart } => {
                        decided.insert(cart.clone());
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        drop(decided);
        self.world.note(format_args!(
            "append s{shard} #{seq} {} events",
            events.len()
        ));
    }
}

impl EventLog for FaultLog {
    async fn append(
        &self,
        shard: ShardId,
        expected_last: u64,
        batch_id: &str,
        events: &[Event],
    ) -> Result<u64, AppendError> {
        let w = &self.world;
        tokio::time::sleep(w.delay(Duration::from_millis(3))).await;
        if w.fault(w.rates.append_refused) {
            w.note(format_args!("fault s{shard} append refused"));
            return Err(AppendError::Unavailable("injected: refused".into()));
        }
        w.maybe_crash(shard, "append, before it lands").await;
        let before = w.log.len(shard);
        let seq = w.log.append(shard, expected_last, batch_id, events).await?;
        if w.log.len(shard) > before {
            self.landed(shard, seq, events);
        } else {
            w.note(format_args!("append s{shard} #{seq} again (deduped)"));
        }
        w.maybe_crash(shard, "append, landed and unanswered").await;
        if w.fault(w.rates.append_landed_error) {
            w.note(format_args!(
                "fault s{shard} append #{seq} landed, answer lost"
            ));
            return Err(AppendError::Unavailable("injected: answer lost".into()));
        }
        if w.fault(w.rates.append_landed_timeout) {
            w.note(format_args!(
                "fault s{shard} append #{seq} landed, times out"
            ));
            tokio::time::sleep(self.append_timeout * 2).await;
        }
        Ok(seq)
    }

    async fn read(&self, shard: ShardId, after: u64) -> Result<Vec<Logged>, AppendError> {
        self.world.log.read(shard, after).await
    }
}

pub struct FaultSnapshots {
    pub world: Arc<World>,
    pub inner: MemSnapshots,
    /// Per shard, its log replayed so far and up to which sequence, so
    /// each check replays only the entries since the last.
    pub replayed: parking_lot::Mutex<FxHashMap<ShardId, (u64, ShardState)>>,
    /// How many shards the sale has (the state knows which ids it owns).
    pub shards: u32,
}

impl FaultSnapshots {
    /// The live state a snapshot holds must equal its log replayed to `seq`.
    fn check(&self, shard: ShardId, seq: u64, bytes: &[u8]) {
        let live: ShardState = match rmp_serde::from_slice(bytes) {
            Ok(state) => state,
            Err(e) => {
                return self
                    .world
                    .violation(format!("s{shard} snapshot at #{seq} does not decode: {e}"))
            }
        };
        let mut replayed = self.replayed.lock();
        let (at, rebuilt) = replayed
            .entry(shard)
            .or_insert_with(|| (0, empty_state(shard, self.shards)));
        if *at > seq {
            (*at, *rebuilt) = (0, empty_state(shard, self.shards));
        }
        let entries =
            allot::ports::now_or_never(self.world.log.read(shard, *at)).unwrap_or_default();
        for entry in entries.iter().take_while(|l| l.seq <= seq) {
            for e in &entry.events {
                if let Err(err) = rebuilt.evolve(e) {
                    return self
                        .world
                        .violation(format!("s{shard} log does not replay: {err}"));
                }
            }
            *at = entry.seq;
        }
        if *rebuilt != live {
            self.world.violation(format!(
                "s{shard} live state at #{seq} differs from its log replayed to #{seq}"
            ));
        }
    }
}

impl Snapshots for FaultSnapshots {
    async fn load(&self, shard: ShardId) -> Result<Option<(u64, Vec<u8>)>, AppendError> {
        self.inner.load(shard).await
    }

    async fn save(&self, shard: ShardId, seq: u64, bytes: Vec<u8>) -> Result<(), AppendError> {
        let w = &self.world;
        self.check(shard, seq, &bytes);
        if w.fault(w.rates.snapshot_fails) {
            w.note(format_args!("fault s{shard} snapshot #{seq} not saved"));
            return Err(AppendError::Unavailable(
                "injected: snapshot store down".into(),
            ));
        }
        w.note(format_args!("snapshot s{shard} #{seq}"));
        self.inner.save(shard, seq, bytes).await
    }
}

/// Enacts orders idempotently by id: a repeated call returns the earlier
/// success without enacting again.
pub struct FaultFulfiller {
    pub world: Arc<World>,
    pub worker_timeout: Duration,
    /// Most failed or unanswered calls injected per order (None: no cap).
    /// With more than the retry policy allows, the runtime rejects an order
    /// whose enactment only timed out: see RELIABILITY.md.
    pub failures_per_order: Option<u32>,
    failures: parking_lot::Mutex<FxHashMap<OrderId, u32>>,
    in_progress: Arc<parking_lot::Mutex<FxHashSet<OrderId>>>,
}

/// Marks one call in progress for its order; dropped when the call ends or
/// is cancelled (timeout, crash).
struct Busy(Arc<parking_lot::Mutex<FxHashSet<OrderId>>>, OrderId);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

impl FaultFulfiller {
    pub fn new(
        world: Arc<World>,
        worker_timeout: Duration,
        failures_per_order: Option<u32>,
    ) -> Self {
        Self {
            world,
            worker_timeout,
            failures_per_order,
            failures: parking_lot::Mutex::default(),
            in_progress: Arc::default(),
        }
    }

    /// A failure of this call, with the chance `rate`, within the order's cap.
    fn fails(&self, id: &OrderId, rate: f64) -> bool {
        let mut failures = self.failures.lock();
        let so_far = failures.entry(id.clone()).or_default();
        if self.failures_per_order.is_some_and(|cap| *so_far >= cap) || !self.world.fault(rate) {
            return false;
        }
        *so_far += 1;
        true
    }

    /// Claims the order for this call, recording a violation if a call for
    /// it is already running or its decision is already durable.
    fn claim(&self, order: &Order, attempt: Attempt) -> Option<Busy> {
        let w = &self.world;
        let id = &order.id;
        if w.decided.lock().contains(id) {
            w.violation(format!(
                "{id} dispatched ({attempt:?}) after its final decision was logged"
            ));
        }
        if !self.in_progress.lock().insert(id.clone()) {
            w.violation(format!("{id} enacted by two calls at once ({attempt:?})"));
            return None;
        }
        Some(Busy(self.in_progress.clone(), id.clone()))
    }

    /// Enacts the order unless it already was; the outcome of this call.
    fn enact(&self, id: &OrderId) -> Outcome {
        let w = &self.world;
        if w.enacted.lock().contains_key(id) {
            w.note(format_args!("worker {id} already enacted: earlier result"));
            return Outcome::Fulfilled;
        }
        if w.fault(w.rates.worker_fails_permanently) {
            w.note(format_args!("worker {id} fails permanently"));
            return Outcome::Failed {
                reason: "injected: card declined".into(),
                retryable: false,
            };
        }
        if self.fails(id, w.rates.worker_fails_retryable) {
            w.note(format_args!("worker {id} fails, retryable"));
            return Outcome::Failed {
                reason: "injected: gateway busy".into(),
                retryable: true,
            };
        }
        *w.enacted.lock().entry(id.clone()).or_default() += 1;
        w.note(format_args!("worker {id} enacted"));
        Outcome::Fulfilled
    }
}

impl Fulfiller for FaultFulfiller {
    async fn fulfil(&self, order: &Order, attempt: Attempt) -> Outcome {
        let Some(_busy) = self.claim(order, attempt) else {
            return Outcome::Failed {
                reason: "already in progress".into(),
                retryable: true,
            };
        };
        let w = &self.world;
        let shard = (w.shard_of)(&order.partition);
        if self.fails(&order.id, w.rates.worker_slow) {
            w.note(format_args!("fault worker {} slow, times out", order.id));
            tokio::time::sleep(self.worker_timeout * 2).await;
        }
        tokio::time::sleep(w.delay(Duration::from_millis(5))).await;
        w.maybe_crash(shard, "worker, before enacting").await;
        let outcome = self.enact(&order.id);
        w.maybe_crash(shard, "worker, enacted and unanswered").await;
        if self.fails(&order.id, w.rates.worker_timeout_after_work) {
            w.note(format_args!(
                "fault worker {} done, answer times out",
                order.id
            ));
            tokio::time::sleep(self.worker_timeout * 2).await;
        }
        outcome
    }
}
