//! A model of release order, folded from the log, that every reservation
//! is checked against.
//!
//! Release order within a partition: backorders first, in the order they
//! were backordered (priority is not kept there); then the queue, highest
//! priority first, FIFO within a priority. Reservation is first
//! fit in that order, so with varying quantities a small order may pass a
//! larger one that does not fit, but never one that does.

use std::collections::HashMap;

use allot::domain::{Event, OrderId, PartitionKey};

/// Where an order of the release model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spot {
    /// In the queue; `pos` orders its priority lane.
    Queued {
        pos: i64,
    },
    /// In the backorder lane, which is FIFO and released before the queue.
    Backordered {
        pos: i64,
    },
    Reserved,
    Gone,
}

#[derive(Debug, Clone)]
struct Tracked {
    key: PartitionKey,
    qty: u64,
    prio: u8,
    /// Log position of its `OrderQueued` in this partition.
    queued_at: usize,
    spot: Spot,
}

impl Tracked {
    fn waiting(&self) -> bool {
        matches!(self.spot, Spot::Queued { .. } | Spot::Backordered { .. })
    }

    /// Release order: backorders first, then the queue by priority.
    fn rank(&self) -> (u8, u8, i64) {
        match self.spot {
            Spot::Backordered { pos } => (0, 0, pos),
            Spot::Queued { pos } => (1, u8::MAX - self.prio, pos),
            Spot::Reserved | Spot::Gone => unreachable!("not waiting"),
        }
    }
}

/// Folds the log with a model of release order and checks every
/// reservation against it:
///
/// 1. first fit in release order: each order ahead of the reserved one
///    asks for more than was free;
/// 2. FIFO: no order of the same priority that entered the partition's
///    queue earlier and fits is passed over;
/// 3. priority: an order reserved from the queue passes over no queued
///    order of higher priority that fits (backorders ignore priority).
///
/// "Fits": asks for at most the free units just before the reservation;
/// with quantity 1 every waiting order fits, and 2 is plain FIFO. 2 and 3
/// follow from 1 (an order queued earlier is ahead of a later one, and
/// exhaustion moves the whole queue to the backorders at once); they are
/// checked apart as the plain statements.
pub fn check_release_order(log: &[Event]) {
    let mut orders: HashMap<OrderId, Tracked> = HashMap::new();
    // Per partition: free and reserved units.
    let mut stock: HashMap<PartitionKey, (i128, i128)> = HashMap::new();
    for (at, e) in log.iter().enumerate() {
        let seq = at as i64 + 1;
        match e {
            Event::OrderQueued { order } => {
                orders.insert(
                    order.id.clone(),
                    Tracked {
                        key: order.partition.clone(),
                        qty: order.quantity.get().into(),
                        prio: order.priority.0,
                        queued_at: at,
                        spot: Spot::Queued { pos: seq },
                    },
                );
            }
            Event::OrderReserved { id } => {
                let b = orders[id].clone();
                assert!(b.waiting(), "event {at}: {id} reserved from {:?}", b.spot);
                let s = stock.entry(b.key.clone()).or_default();
                let free = s.0;
                for (aid, a) in &orders {
                    if aid == id || a.key != b.key || !a.waiting() {
                        continue;
                    }
                    let fits = i128::from(a.qty) <= free;
                    assert!(
                        !(fits && a.rank() < b.rank()),
                        "event {at}: {id} {b:?} reserved before {aid} {a:?} with {free} free"
                    );
                    assert!(
                        !(fits && a.prio == b.prio && a.queued_at < b.queued_at),
                        "event {at}: {id} reserved before older {aid} with {free} free"
                    );
                    assert!(
                        !(fits
                            && matches!(b.spot, Spot::Queued { .. })
                            && matches!(a.spot, Spot::Queued { .. })
                            && a.prio > b.prio),
                        "event {at}: {id} reserved before higher priority {aid} with {free} free"
                    );
                }
                s.0 -= i128::from(b.qty);
                s.1 += i128::from(b.qty);
                orders.get_mut(id).unwrap().spot = Spot::Reserved;
            }
            Event::OrderConfirmed { id } => {
                let o = orders.get_mut(id).unwrap();
                stock.entry(o.key.clone()).or_default().1 -= i128::from(o.qty);
                o.spot = Spot::Gone;
            }
            Event::OrderReleased { id, .. } => {
                let o = orders.get_mut(id).unwrap();
                let s = stock.entry(o.key.clone()).or_default();
                s.0 += i128::from(o.qty);
                s.1 -= i128::from(o.qty);
                o.spot = Spot::Gone;
            }
            Event::OrderCancelled { id } => {
                let o = &orders[id];
                stock.entry(o.key.clone()).or_default().0 += i128::from(o.qty);
            }
            Event::OrderBackordered { id, .. } => {
                orders.get_mut(id).unwrap().spot = Spot::Backordered { pos: seq };
            }
            Event::OrderRejected { id, .. } | Event::OrderRerouted { id, .. } => {
                if let Some(o) = orders.get_mut(id) {
                    o.spot = Spot::Gone;
                }
            }
            Event::StockSet { partition, on_hand } => {
                let s = stock.entry(partition.clone()).or_default();
                s.0 = i128::from(*on_hand) - s.1;
            }
            Event::StockRestocked { partition, units } => {
                stock.entry(partition.clone()).or_default().0 += i128::from(*units);
            }
            Event::StockAdjusted { partition, delta } => {
                stock.entry(partition.clone()).or_default().0 += i128::from(*delta);
            }
            Event::OrderRetrying { .. }
            | Event::OrderForwarded { .. }
            | Event::OrderCancelRequested { .. }
            | Event::CommandApplied { .. }
            | Event::CommandRefused { .. }
            | Event::StockShort { .. }
            | Event::IdsClaimed { .. }
            | Event::DuplicateRefused { .. }
            | Event::EpochStarted { .. }
            | Event::Cart { .. } => {}
        }
    }
}
