//! Metric handles made once per shard, warehouse or component and kept by
//! the code that counts, so recording is an atomic add: no label set is
//! built or hashed per order.
//!
//! This file holds one shard's metrics; the handles of the other
//! components (workers, ingress, the NATS connection, the views) are in
//! `components`.

mod components;

use std::time::{Duration, Instant};

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

use super::names::*;
use crate::domain::{Event, RejectReason, ShardState, WarehouseId};
use crate::ports::{Delivery, Intake, ShardId};
pub use components::{
    CartMetrics, DeadLetterMetrics, IngressMetrics, NatsMetrics, Received, ViewMetrics,
    WorkerMetrics,
};

/// Order decisions counted by [`DECISIONS`], as the wire names them.
const DECISION_KINDS: [&str; 7] = [
    "queued",
    "reserved",
    "confirmed",
    "rejected",
    "backordered",
    "rerouted",
    "cancelled",
];

/// Rejection reasons counted by [`REJECTIONS`] (`RejectReason::label`).
const REJECT_KINDS: [&str; 6] = [
    "out_of_stock",
    "invalid",
    "cancelled",
    "retries_exhausted",
    "fulfilment_failed",
    "backorder_expired",
];

const INTAKE_KINDS: [&str; 3] = ["order", "command", "invalid"];

/// Partition sums (queue depth, stock) are recomputed at most this often:
/// they walk every partition of the shard.
const PARTITION_GAUGES_EVERY: Duration = Duration::from_millis(500);

fn decision_index(event: &Event) -> Option<usize> {
    Some(match event {
        Event::OrderQueued { .. } => 0,
        Event::OrderReserved { .. } => 1,
        Event::OrderConfirmed { .. } => 2,
        Event::OrderRejected { .. } => 3,
        Event::OrderBackordered { .. } => 4,
        Event::OrderRerouted { .. } => 5,
        Event::OrderCancelled { .. } => 6,
        _ => return None,
    })
}

fn reject_index(reason: &RejectReason) -> usize {
    match reason {
        RejectReason::OutOfStock => 0,
        RejectReason::Invalid { .. } => 1,
        RejectReason::Cancelled => 2,
        RejectReason::RetriesExhausted { .. } => 3,
        RejectReason::FulfilmentFailed { .. } => 4,
        RejectReason::BackorderExpired => 5,
    }
}

/// What one log append decides, counted when the batch is handed to the
/// log and recorded once it is durable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchTally {
    pub events: u64,
    decisions: [u32; DECISION_KINDS.len()],
    rejections: [u32; REJECT_KINDS.len()],
    retries: u32,
}

impl BatchTally {
    pub fn of(events: &[Event]) -> Self {
        let mut tally = BatchTally {
            events: events.len() as u64,
            ..Self::default()
        };
        for event in events {
            if let Some(i) = decision_index(event) {
                tally.decisions[i] += 1;
            }
            match event {
                Event::OrderRejected { reason, .. } => tally.rejections[reject_index(reason)] += 1,
                Event::OrderRetrying { .. } => tally.retries += 1,
                _ => {}
            }
        }
        tally
    }

    /// Order decisions in the batch (every kind of [`DECISIONS`]).
    pub fn decisions(&self) -> u32 {
        self.decisions.iter().sum()
    }
}

/// One warehouse's state gauges in a shard, with the sums being built.
struct WarehouseGauges {
    warehouse: WarehouseId,
    queued: (Gauge, u64),
    backordered: (Gauge, u64),
    available: (Gauge, u64),
    short: (Gauge, u64),
}

/// Queue depth, backorders and free units per warehouse over the shard's
/// partitions. Partitions only ever get added, so each one's warehouse
/// slot is looked up once.
#[derive(Default)]
struct PartitionGauges {
    shard: String,
    slot_of_partition: Vec<usize>,
    warehouses: Vec<WarehouseGauges>,
}

impl PartitionGauges {
    fn slot(&mut self, w: &WarehouseId) -> usize {
        if let Some(slot) = self.warehouses.iter().position(|g| g.warehouse == *w) {
            return slot;
        }
        let labels = [(SHARD, self.shard.clone()), (WAREHOUSE, w.to_string())];
        self.warehouses.push(WarehouseGauges {
            warehouse: w.clone(),
            queued: (gauge!(QUEUE_DEPTH, &labels), 0),
            backordered: (gauge!(BACKORDERED, &labels), 0),
            available: (gauge!(STOCK_AVAILABLE, &labels), 0),
            short: (gauge!(STOCK_SHORT, &labels), 0),
        });
        self.warehouses.len() - 1
    }

    fn update(&mut self, state: &ShardState) {
        let partitions = state.partitions();
        for p in &partitions[self.slot_of_partition.len()..] {
            let slot = self.slot(&p.key.warehouse);
            self.slot_of_partition.push(slot);
        }
        for g in &mut self.warehouses {
            (g.queued.1, g.backordered.1, g.available.1, g.short.1) = (0, 0, 0, 0);
        }
        for (p, slot) in partitions.iter().zip(&self.slot_of_partition) {
            let g = &mut self.warehouses[*slot];
            g.queued.1 += u64::from(p.queued);
            g.backordered.1 += u64::from(p.backordered);
            g.available.1 += p.available;
            g.short.1 += p.short;
        }
        for g in &self.warehouses {
            for (gauge, sum) in [&g.queued, &g.backordered, &g.available, &g.short] {
                gauge.set(*sum as f64);
            }
        }
    }

    fn zero(&self) {
        for g in &self.warehouses {
            for (gauge, _) in [&g.queued, &g.backordered, &g.available, &g.short] {
                gauge.set(0.0);
            }
        }
    }
}

/// Registers, at zero, the per-warehouse series of every shard and
/// warehouse the config names (and the worker histograms), so a fresh
/// instance already lists its warehouses and shards before any stock or
/// order arrives. A series that exists keeps its value: this only adds 0.
pub fn register_warehouses(shards: u32, warehouses: &[WarehouseId]) {
    for shard in 0..shards {
        let s = shard.to_string();
        gauge!(IN_FLIGHT, SHARD => s.clone()).increment(0.0);
        for w in warehouses {
            let labels = [(SHARD, s.clone()), (WAREHOUSE, w.to_string())];
            for name in [QUEUE_DEPTH, BACKORDERED, STOCK_AVAILABLE, STOCK_SHORT] {
                gauge!(name, &labels).increment(0.0);
            }
        }
    }
    for w in warehouses {
        WorkerMetrics::new(w);
    }
}

/// One shard's metrics.
pub struct ShardMetrics {
    decisions: [Counter; DECISION_KINDS.len()],
    rejections: [Counter; REJECT_KINDS.len()],
    retries: Counter,
    intake: [Counter; INTAKE_KINDS.len()],
    redeliveries: Counter,
    decision_latency: Histogram,
    /// Cloned into each append task.
    pub append_duration: Histogram,
    pub append_retries: Counter,
    append_events: Histogram,
    conflicts: Counter,
    in_flight: Gauge,
    partitions: PartitionGauges,
    partitions_updated: Option<Instant>,
}

impl ShardMetrics {
    pub fn new(shard: ShardId) -> Self {
        let s = shard.to_string();
        let by_shard = |name: &'static str| counter!(name, SHARD => s.clone());
        Self {
            decisions: DECISION_KINDS.map(|k| counter!(DECISIONS, SHARD => s.clone(), KIND => k)),
            rejections: REJECT_KINDS.map(|k| counter!(REJECTIONS, SHARD => s.clone(), KIND => k)),
            retries: by_shard(ORDER_RETRIES),
            intake: INTAKE_KINDS.map(|k| counter!(INTAKE_MESSAGES, SHARD => s.clone(), KIND => k)),
            redeliveries: by_shard(INTAKE_REDELIVERIES),
            decision_latency: histogram!(DECISION_LATENCY, SHARD => s.clone()),
            append_duration: histogram!(LOG_APPEND_DURATION, SHARD => s.clone()),
            append_retries: by_shard(LOG_APPEND_RETRIES),
            append_events: histogram!(LOG_APPEND_EVENTS, SHARD => s.clone()),
            conflicts: by_shard(LOG_CONFLICTS),
            in_flight: gauge!(IN_FLIGHT, SHARD => s.clone()),
            partitions: PartitionGauges {
                shard: s,
                ..PartitionGauges::default()
            },
            partitions_updated: None,
        }
    }

    /// A batch of intake messages arrived.
    pub fn intake(&self, batch: &[Delivery]) {
        let mut kinds = [0u64; INTAKE_KINDS.len()];
        let mut redelivered = 0;
        for d in batch {
            let k = match d.item {
                Intake::Order(_) | Intake::Forwarded(_) | Intake::Line(_) => 0,
                Intake::Command(_)
                | Intake::Cart(_)
                | Intake::Answer { .. }
                | Intake::Settle { .. }
                | Intake::CartCommand { .. } => 1,
                Intake::Invalid { .. } => 2,
            };
            kinds[k] += 1;
            redelivered += u64::from(d.delivery_count > 1);
        }
        for (counter, n) in self.intake.iter().zip(kinds) {
            if n > 0 {
                counter.increment(n);
            }
        }
        if redelivered > 0 {
            self.redeliveries.increment(redelivered);
        }
    }

    /// A batch is handed to the log.
    pub fn appending(&self, tally: &BatchTally) {
        self.append_events.record(tally.events as f64);
    }

    /// The batch `tally` counted is durable.
    pub fn appended(&self, tally: &BatchTally) {
        for (counter, n) in self.decisions.iter().zip(tally.decisions) {
            if n > 0 {
                counter.increment(u64::from(n));
            }
        }
        for (counter, n) in self.rejections.iter().zip(tally.rejections) {
            if n > 0 {
                counter.increment(u64::from(n));
            }
        }
        if tally.retries > 0 {
            self.retries.increment(u64::from(tally.retries));
        }
    }

    /// An intake message published `latency` ago was durably decided.
    pub fn decided(&self, latency: Duration) {
        self.decision_latency.record(latency.as_secs_f64());
    }

    pub fn conflict(&self) {
        self.conflicts.increment(1);
    }

    /// Sets the gauges: work in flight always; queue depth, backorders and
    /// stock (a walk over every partition) at most every 500 ms unless
    /// `force`.
    pub fn gauges(&mut self, state: &ShardState, in_flight: usize, force: bool) {
        self.in_flight.set(in_flight as f64);
        let due = self
            .partitions_updated
            .is_none_or(|at| at.elapsed() >= PARTITION_GAUGES_EVERY);
        if !(force || due) {
            return;
        }
        self.partitions_updated = Some(Instant::now());
        self.partitions.update(state);
    }

    /// Another instance owns the shard now: its queues, stock and work are
    /// no longer this instance's to report (they would be counted twice).
    pub fn disowned(&self) {
        self.in_flight.set(0.0);
        self.partitions.zero();
    }
}
