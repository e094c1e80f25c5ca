//! One partition's books (stock counters and its queue, backorder and
//! reservation lanes), and the shard's bookkeeping that moves a live order
//! off a lane and trims the lanes of stale entries.

use serde::{Deserialize, Serialize};

use super::ShardState;
use crate::domain::dedupe::PartitionIdx;
use crate::domain::orders::{Slot, Status};
use crate::domain::queue::{PriorityLanes, Ticketed};
use crate::domain::types::{PartitionKey, Quantity};

/// Stock and orders of one (warehouse, SKU) partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub key: PartitionKey,
    /// Free units (0 while the partition is short).
    pub available: u64,
    /// Units held by orders with a worker.
    pub reserved: u64,
    /// Units reserved beyond what is on hand: a stock count came in below
    /// what workers already enact (a reservation with a worker is never
    /// taken back). Units that come in fill it before any is free.
    pub short: u64,
    /// Stock changes applied (sets, restocks, adjustments): a set may name
    /// the version it expects, so a stale one is refused.
    pub version: u64,
    /// Units of confirmed orders.
    pub sold: u64,
    pub queued: u32,
    pub backordered: u32,
    pub in_flight: u32,
    pub(crate) queue: PriorityLanes,
    pub(crate) backorders: PriorityLanes,
}

impl Partition {
    pub(super) fn new(key: PartitionKey) -> Self {
        Self {
            key,
            available: 0,
            reserved: 0,
            short: 0,
            version: 0,
            sold: 0,
            queued: 0,
            backordered: 0,
            in_flight: 0,
            queue: PriorityLanes::default(),
            backorders: PriorityLanes::default(),
        }
    }

    /// Free plus reserved units, less any shortage: what the books say a
    /// stock count would find (below zero when more left than was counted).
    pub fn on_hand(&self) -> i128 {
        self.net_free() + i128::from(self.reserved)
    }

    /// Free units less the shortage: negative while short.
    pub fn net_free(&self) -> i128 {
        i128::from(self.available) - i128::from(self.short)
    }

    /// Sets free units less shortage to `net`.
    pub(super) fn set_net_free(&mut self, net: i128) {
        if net >= 0 {
            self.available = u64::try_from(net).unwrap_or(u64::MAX);
            self.short = 0;
        } else {
            self.available = 0;
            self.short = u64::try_from(-net).unwrap_or(u64::MAX);
        }
    }

    /// Units come back or in: they fill a shortage first.
    pub(super) fn add_free(&mut self, units: u64) {
        self.set_net_free(self.net_free() + i128::from(units));
    }
}

impl ShardState {
    /// Takes a queued or backordered order off its lane's books.
    pub(super) fn take_waiting(
        &mut self,
        slot: Slot,
    ) -> Result<(PartitionIdx, Quantity, LaneKind), String> {
        let live = self.orders.at(slot).expect("slot of a live order");
        let (p, qty) = (live.partition, live.order.quantity);
        let part = &mut self.partitions[p as usize];
        let kind = match live.status {
            Status::Queued => {
                part.queued -= 1;
                part.queue.forget(qty);
                LaneKind::Queue
            }
            Status::Backordered { .. } => {
                part.backordered -= 1;
                part.backorders.forget(qty);
                LaneKind::Backorders
            }
            other => return Err(format!("order is {other:?}, not waiting")),
        };
        Ok((p, qty, kind))
    }

    /// Takes a reserved order's units off `reserved`.
    pub(super) fn unreserve(&mut self, slot: Slot) -> Result<(PartitionIdx, u64), String> {
        let live = self.at(slot);
        if live.status != Status::Reserved {
            return Err(format!("order is {:?}, not reserved", live.status));
        }
        let (p, q) = (live.partition, u64::from(live.order.quantity.get()));
        live.ticket = 0;
        let part = &mut self.partitions[p as usize];
        part.reserved -= q;
        part.in_flight -= 1;
        Ok((p, q))
    }

    /// Drops stale entries at the ends of a lane, and compacts it once stale
    /// entries outnumber live ones.
    pub(super) fn trim_lane(&mut self, p: PartitionIdx, kind: LaneKind) {
        let orders = &self.orders;
        let live = |e: &Ticketed| orders.at(e.slot).is_some_and(|l| l.ticket == e.ticket);
        let part = &mut self.partitions[p as usize];
        match kind {
            LaneKind::Queue => part.queue.trim(part.queued as usize, live),
            LaneKind::Backorders => part.backorders.trim(part.backordered as usize, live),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LaneKind {
    Queue,
    Backorders,
}
