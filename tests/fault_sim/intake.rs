//! An at-least-once intake queue per shard with a broker's failure modes:
//! an ack wait after which an unacked delivery comes back (even to a live
//! shard still working on it), lost acks, redelivery after an ack, the same
//! message delivered twice, and forwards between shards that arrive late
//! and out of order. Time is tokio's (virtual) clock; everything moves
//! lazily when a shard fetches, so a run replays exactly.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use allot::domain::{Order, PartitionKey};
use allot::ports::{Delivery, Intake, IntakeQueue, ShardId};
use allot::scheduler::AckId;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tokio::time::Instant;

use super::world::World;

#[derive(Default)]
struct Queue {
    next: u64,
    ready: VecDeque<(AckId, Intake, u32)>,
    /// Delivered, not acked: when, and how many deliveries so far.
    in_flight: BTreeMap<AckId, (Intake, u32, Instant)>,
    /// Acked messages, kept so one can be delivered again.
    acked: BTreeMap<AckId, (Intake, u32)>,
    /// Submitted, not visible yet (a forward in transit).
    transit: Vec<(Instant, Intake)>,
}

impl Queue {
    fn push(&mut self, item: Intake) {
        self.next += 1;
        self.ready.push_back((AckId(self.next), item, 0));
    }

    fn pending(&self) -> usize {
        self.ready.len() + self.in_flight.len() + self.transit.len()
    }
}

pub struct FaultIntake {
    world: Arc<World>,
    queues: Mutex<FxHashMap<ShardId, Queue>>,
}

impl FaultIntake {
    pub fn new(world: Arc<World>) -> Self {
        Self {
            world,
            queues: Mutex::default(),
        }
    }

    /// A producer's publish: visible at once, in order.
    pub fn publish(&self, shard: ShardId, item: Intake) {
        self.queues.lock().entry(shard).or_default().push(item);
    }

    /// Messages of the shard not yet acked, in flight or in transit.
    pub fn pending(&self, shard: ShardId) -> usize {
        self.queues.lock().get(&shard).map_or(0, Queue::pending)
    }

    /// Makes due forwards visible (in an order the seed picks) and brings
    /// back deliveries whose ack wait ran out.
    fn tick(&self, shard: ShardId, q: &mut Queue) {
        let now = Instant::now();
        let mut due: Vec<Intake> = Vec::new();
        q.transit.retain(|(at, item)| {
            let arrived = *at <= now;
            if arrived {
                due.push(item.clone());
            }
            !arrived
        });
        while !due.is_empty() {
            let i = self.world.below(due.len() as u64) as usize;
            q.push(due.swap_remove(i));
        }
        let wait = self.world.rates.ack_wait;
        let expired: Vec<AckId> = q
            .in_flight
            .iter()
            .filter(|(_, (_, _, at))| *at + wait <= now)
            .map(|(ack, _)| *ack)
            .collect();
        for ack in expired {
            let (item, n, _) = q.in_flight.remove(&ack).expect("listed");
            self.world.note(format_args!(
                "intake s{shard} ack wait over for {ack:?}: redelivered"
            ));
            q.ready.push_back((ack, item, n));
        }
    }

    /// With the seed's chance, the same message delivered once more: one in
    /// flight, or one already acked.
    fn duplicate(&self, shard: ShardId, q: &mut Queue, out: &mut Vec<Delivery>) {
        let w = &self.world;
        if w.fault(w.rates.duplicate_delivery) && !q.in_flight.is_empty() {
            let i = w.below(q.in_flight.len() as u64) as usize;
            let (ack, (item, n, at)) = q.in_flight.iter_mut().nth(i).expect("in range");
            *n += 1;
            *at = Instant::now();
            w.note(format_args!("fault s{shard} {ack:?} delivered twice"));
            out.push(Delivery {
                ack: Some(*ack),
                item: item.clone(),
                delivery_count: *n,
                published: None,
            });
        }
        if w.fault(w.rates.redeliver_after_ack) && !q.acked.is_empty() {
            let i = w.below(q.acked.len() as u64) as usize;
            let ack = *q.acked.keys().nth(i).expect("in range");
            let (item, n) = q.acked.remove(&ack).expect("listed");
            w.note(format_args!(
                "fault s{shard} {ack:?} redelivered after its ack"
            ));
            q.in_flight
                .insert(ack, (item.clone(), n + 1, Instant::now()));
            out.push(Delivery {
                ack: Some(ack),
                item,
                delivery_count: n + 1,
                published: None,
            });
        }
    }
}

impl IntakeQueue for FaultIntake {
    async fn fetch(&self, shard: ShardId, max: usize) -> Vec<Delivery> {
        let out = {
            let mut queues = self.queues.lock();
            let q = queues.entry(shard).or_default();
            self.tick(shard, q);
            let n = max.min(q.ready.len());
            let now = Instant::now();
            let mut out = Vec::with_capacity(n + 2);
            for (ack, item, count) in q.ready.drain(..n) {
                q.in_flight.insert(ack, (item.clone(), count + 1, now));
                out.push(Delivery {
                    ack: Some(ack),
                    item,
                    delivery_count: count + 1,
                    published: None,
                });
            }
            self.duplicate(shard, q, &mut out);
            out
        };
        if !out.is_empty() {
            let acks: Vec<u64> = out.iter().map(|d| d.ack.map_or(0, |a| a.0)).collect();
            self.world.note(format_args!("fetch s{shard} {acks:?}"));
            self.world
                .maybe_crash(shard, "fetch, taken and not handed over")
                .await;
        }
        out
    }

    async fn ack(&self, shard: ShardId, acks: &[AckId]) {
        let w = &self.world;
        w.maybe_crash(shard, "ack, before it is sent").await;
        if w.fault(w.rates.ack_lost) {
            let lost: Vec<u64> = acks.iter().map(|a| a.0).collect();
            w.note(format_args!("fault s{shard} acks {lost:?} lost"));
            return;
        }
        let mut queues = self.queues.lock();
        let q = queues.entry(shard).or_default();
        for ack in acks {
            if let Some((item, n, _)) = q.in_flight.remove(ack) {
                q.acked.insert(*ack, (item, n));
            }
        }
        drop(queues);
        let done: Vec<u64> = acks.iter().map(|a| a.0).collect();
        w.note(format_args!("ack s{shard} {done:?}"));
    }

    async fn submit(&self, shard: ShardId, order: Order) {
        let w = &self.world;
        let at = Instant::now() + w.delay(w.rates.forward_delay);
        w.note(format_args!("forward {} to s{shard}", order.id));
        self.queues
            .lock()
            .entry(shard)
            .or_default()
            .transit
            .push((at, Intake::Forwarded(order)));
    }

    async fn send(&self, shard: ShardId, _partition: PartitionKey, item: Intake) {
        let w = &self.world;
        // In flight until the intake takes it: a crash of the sender
        // before then loses it (its task is aborted with the shard's).
        tokio::time::sleep(w.delay(w.rates.forward_delay)).await;
        w.note(format_args!("cart message to s{shard} taken"));
        let at = Instant::now();
        self.queues
            .lock()
            .entry(shard)
            .or_default()
            .transit
            .push((at, item));
    }

    async fn release(&self, shard: ShardId) {
        let mut queues = self.queues.lock();
        let q = queues.entry(shard).or_default();
        let back: Vec<_> = std::mem::take(&mut q.in_flight).into_iter().collect();
        for (ack, (item, n, _)) in back.into_iter().rev() {
            q.ready.push_front((ack, item, n));
        }
        drop(queues);
        self.world.note(format_args!("release s{shard}"));
    }
}
