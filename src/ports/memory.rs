//! In-memory event log and intake queue. They keep the real contracts
//! (expected-sequence appends, at-least-once delivery with explicit acks)
//! so tests and the simulation exercise the same protocol as the broker.

use std::collections::{BTreeMap, VecDeque};
use std::time::SystemTime;

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::{
    AppendError, Checkpoints, Delivery, EventLog, Intake, IntakeQueue, Logged, ShardId, Snapshots,
};
use crate::domain::{Event, Order};
use crate::scheduler::AckId;

/// An event log per shard, in memory.
#[derive(Debug, Default)]
pub struct MemLog {
    shards: Mutex<FxHashMap<ShardId, Vec<Vec<Event>>>>,
    /// batch id -> sequence, as a broker's duplicate window keeps it.
    batch_ids: Mutex<FxHashMap<String, u64>>,
}

impl MemLog {
    /// Every event of a shard, in order.
    pub fn events(&self, shard: ShardId) -> Vec<Event> {
        self.shards
            .lock()
            .get(&shard)
            .map_or_else(Vec::new, |b| b.iter().flatten().cloned().collect())
    }

    /// How many entries (appended batches) the shard has.
    pub fn len(&self, shard: ShardId) -> u64 {
        self.shards.lock().get(&shard).map_or(0, |b| b.len() as u64)
    }
}

impl EventLog for MemLog {
    async fn append(
        &self,
        shard: ShardId,
        expected_last: u64,
        batch_id: &str,
        events: &[Event],
    ) -> Result<u64, AppendError> {
        let mut ids = self.batch_ids.lock();
        if let Some(&seq) = ids.get(batch_id) {
            return Ok(seq);
        }
        let mut shards = self.shards.lock();
        let log = shards.entry(shard).or_default();
        let actual = log.len() as u64;
        if actual != expected_last {
            return Err(AppendError::Conflict {
                shard,
                expected: expected_last,
                actual,
            });
        }
        log.push(events.to_vec());
        ids.insert(batch_id.to_owned(), actual + 1);
        Ok(actual + 1)
    }

    async fn read(&self, shard: ShardId, after: u64) -> Result<Vec<Logged>, AppendError> {
        let shards = self.shards.lock();
        let Some(log) = shards.get(&shard) else {
            return Ok(Vec::new());
        };
        Ok(log
            .iter()
            .enumerate()
            .skip(after as usize)
            .map(|(i, b)| Logged {
                seq: i as u64 + 1,
                prev: i as u64,
                events: b.clone(),
            })
            .collect())
    }
}

#[derive(Debug, Default)]
struct Queue {
    next: u64,
    ready: VecDeque<(AckId, Intake, u32, SystemTime)>,
    in_flight: BTreeMap<AckId, (Intake, u32, SystemTime)>,
}

/// A per-shard intake queue, in memory. Unacked messages come back through
/// [`MemIntake::redeliver`] (what a broker's ack-wait does after a crash).
#[derive(Debug, Default)]
pub struct MemIntake {
    queues: Mutex<FxHashMap<ShardId, Queue>>,
}

impl MemIntake {
    /// Makes every fetched but unacked message of the shard deliverable
    /// again, oldest first.
    pub fn redeliver(&self, shard: ShardId) {
        let mut queues = self.queues.lock();
        let q = queues.entry(shard).or_default();
        let back: Vec<_> = std::mem::take(&mut q.in_flight).into_iter().collect();
        for (ack, (order, n, published)) in back.into_iter().rev() {
            q.ready.push_front((ack, order, n, published));
        }
    }

    /// Queues any intake item (an order, a stock command, an invalid one).
    pub fn push(&self, shard: ShardId, item: Intake) {
        let mut queues = self.queues.lock();
        let q = queues.entry(shard).or_default();
        q.next += 1;
        let ack = AckId(q.next);
        q.ready.push_back((ack, item, 0, SystemTime::now()));
    }

    /// Messages submitted and not yet fetched.
    pub fn unfetched(&self, shard: ShardId) -> usize {
        self.queues.lock().get(&shard).map_or(0, |q| q.ready.len())
    }

    /// Messages submitted and not yet acked.
    pub fn unacked(&self, shard: ShardId) -> usize {
        self.queues
            .lock()
            .get(&shard)
            .map_or(0, |q| q.ready.len() + q.in_flight.len())
    }
}

impl IntakeQueue for MemIntake {
    async fn fetch(&self, shard: ShardId, max: usize) -> Vec<Delivery> {
        let mut queues = self.queues.lock();
        let q = queues.entry(shard).or_default();
        let n = max.min(q.ready.len());
        let mut out = Vec::with_capacity(n);
        for (ack, item, count, published) in q.ready.drain(..n) {
            q.in_flight
                .insert(ack, (item.clone(), count + 1, published));
            out.push(Delivery {
                ack: Some(ack),
                item,
                delivery_count: count + 1,
                published: Some(published),
            });
        }
        out
    }

    async fn ack(&self, shard: ShardId, acks: &[AckId]) {
        let mut queues = self.queues.lock();
        let q = queues.entry(shard).or_default();
        for a in acks {
            q.in_flight.remove(a);
        }
    }

    async fn submit(&self, shard: ShardId, order: Order) {
        self.push(shard, Intake::Forwarded(order));
    }

    async fn send(&self, shard: ShardId, _partition: crate::domain::PartitionKey, item: Intake) {
        self.push(shard, item);
    }

    async fn release(&self, shard: ShardId) {
        self.redeliver(shard);
    }
}

/// Snapshots per shard, in memory.
#[derive(Debug, Default)]
pub struct MemSnapshots {
    shards: Mutex<FxHashMap<ShardId, (u64, Vec<u8>)>>,
    named: Mutex<FxHashMap<String, (u64, Vec<u8>)>>,
}

impl Checkpoints for MemSnapshots {
    async fn load_checkpoint(&self, name: &str) -> Result<Option<(u64, Vec<u8>)>, AppendError> {
        Ok(self.named.lock().get(name).cloned())
    }

    async fn save_checkpoint(
        &self,
        name: &str,
        seq: u64,
        bytes: Vec<u8>,
    ) -> Result<(), AppendError> {
        self.named.lock().insert(name.to_owned(), (seq, bytes));
        Ok(())
    }
}

impl Snapshots for MemSnapshots {
    async fn load(&self, shard: ShardId) -> Result<Option<(u64, Vec<u8>)>, AppendError> {
        Ok(self.shards.lock().get(&shard).cloned())
    }

    async fn save(&self, shard: ShardId, seq: u64, bytes: Vec<u8>) -> Result<(), AppendError> {
        self.shards.lock().insert(shard, (seq, bytes));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OrderId, PartitionKey, Priority, Quantity, Sku, WarehouseId};
    use crate::ports::now_or_never;

    fn order(id: &str) -> Order {
        Order {
            line: false,
            id: OrderId::new(id).unwrap(),
            partition: PartitionKey::new(WarehouseId::new("w").unwrap(), Sku::new("s").unwrap()),
            quantity: Quantity::ONE,
            region: None,
            priority: Priority(0),
            fallbacks: Vec::new(),
        }
    }

    #[test]
    fn append_needs_the_expected_sequence() {
        let log = MemLog::default();
        assert_eq!(now_or_never(log.append(0, 0, "a", &[])), Ok(1));
        assert_eq!(now_or_never(log.append(0, 1, "b", &[])), Ok(2));
        assert_eq!(
            now_or_never(log.append(0, 0, "a", &[])),
            Ok(1),
            "a retried append answers again"
        );
        assert_eq!(
            now_or_never(log.append(0, 1, "c", &[])),
            Err(AppendError::Conflict {
                shard: 0,
                expected: 1,
                actual: 2
            })
        );
        assert_eq!(now_or_never(log.read(0, 1)).unwrap().len(), 1);
    }

    #[test]
    fn unacked_messages_are_redelivered() {
        let q = MemIntake::default();
        now_or_never(q.submit(1, order("a")));
        now_or_never(q.submit(1, order("b")));
        let got = now_or_never(q.fetch(1, 10));
        assert_eq!(got.len(), 2);
        now_or_never(q.ack(1, &[got[0].ack.unwrap()]));
        assert!(now_or_never(q.fetch(1, 10)).is_empty());
        q.redeliver(1);
        let again = now_or_never(q.fetch(1, 10));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].item, Intake::Forwarded(order("b")));
        assert_eq!(again[0].delivery_count, 2);
    }
}
