//! Lanes of waiting orders. Entries are never removed from the middle: an
//! order that leaves a lane gets a new ticket elsewhere, which makes its old
//! entry stale. Stale entries are dropped at the ends, and a lane is
//! compacted once they outnumber the live ones, so every operation is
//! amortised O(1) and memory stays within a constant factor of live orders.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::orders::Slot;
use super::types::{Priority, Quantity};

/// One order's place in a lane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticketed {
    pub ticket: u64,
    /// The order's slot in [`super::orders::Orders`].
    pub slot: Slot,
}

/// A FIFO of order entries, some possibly stale.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lane {
    entries: VecDeque<(Ticketed, Quantity)>,
}

impl Lane {
    pub fn push_back(&mut self, entry: Ticketed, qty: Quantity) {
        self.entries.push_back((entry, qty));
    }

    /// Entries front to back, stale ones included.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Ticketed, Quantity)> {
        self.entries.iter().map(|(e, q)| (e, *q))
    }

    /// Drops stale entries at both ends; compacts when more than half of a
    /// non-trivial lane is stale. `live` is the number of current entries.
    pub fn trim(&mut self, live: usize, is_live: impl Fn(&Ticketed) -> bool) {
        while self.entries.front().is_some_and(|(e, _)| !is_live(e)) {
            self.entries.pop_front();
        }
        while self.entries.back().is_some_and(|(e, _)| !is_live(e)) {
            self.entries.pop_back();
        }
        if self.entries.len() > 2 * live + 32 {
            self.entries.retain(|(e, _)| is_live(e));
        }
    }
}

/// A partition's queue: one FIFO lane per priority, highest first, plus the
/// count of queued orders per quantity so "does anything fit?" is O(log n).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityLanes {
    /// Sorted by priority, highest first; most partitions have one lane.
    /// Empty lanes stay (at most one per priority value) so a partition
    /// that empties and refills its queue does not reallocate.
    lanes: Vec<(Priority, Lane)>,
    /// (quantity, orders queued with it), sorted; few distinct quantities
    /// occur, so a small vector beats a tree and never reallocates in a
    /// steady state.
    by_quantity: Vec<(u32, u32)>,
}

impl PriorityLanes {
    fn lane(&mut self, prio: Priority) -> &mut Lane {
        let at = match self.lanes.iter().position(|(p, _)| *p <= prio) {
            Some(i) if self.lanes[i].0 == prio => i,
            Some(i) => {
                self.lanes.insert(i, (prio, Lane::default()));
                i
            }
            None => {
                self.lanes.push((prio, Lane::default()));
                self.lanes.len() - 1
            }
        };
        &mut self.lanes[at].1
    }

    pub fn push_back(&mut self, prio: Priority, qty: Quantity, entry: Ticketed) {
        self.count(qty, true);
        self.lane(prio).push_back(entry, qty);
    }

    /// Books an order of `qty` as gone from the queue (its entry goes stale).
    pub fn forget(&mut self, qty: Quantity) {
        self.count(qty, false);
    }

    fn count(&mut self, qty: Quantity, add: bool) {
        let q = qty.get();
        match self.by_quantity.binary_search_by_key(&q, |&(k, _)| k) {
            Ok(i) if add => self.by_quantity[i].1 += 1,
            Ok(i) if self.by_quantity[i].1 > 1 => self.by_quantity[i].1 -= 1,
            Ok(i) => {
                self.by_quantity.remove(i);
            }
            Err(i) if add => self.by_quantity.insert(i, (q, 1)),
            Err(_) => {}
        }
    }

    /// The smallest quantity queued, if any.
    pub fn min_quantity(&self) -> Option<u32> {
        self.by_quantity.first().map(|&(q, _)| q)
    }

    /// Entries in release order: priority lanes highest first, FIFO within.
    pub fn iter(&self) -> impl Iterator<Item = (&Ticketed, Quantity)> {
        self.lanes.iter().flat_map(|(_, l)| l.iter())
    }

    /// The first live entry, in release order, asking at most `available`.
    pub fn first_fit(
        &self,
        available: u64,
        is_live: impl Fn(&Ticketed) -> bool,
    ) -> Option<&Ticketed> {
        if self.min_quantity().is_none_or(|m| u64::from(m) > available) {
            return None;
        }
        self.iter()
            .find(|(e, q)| u64::from(q.get()) <= available && is_live(e))
            .map(|(e, _)| e)
    }

    pub fn trim(&mut self, live: usize, is_live: impl Fn(&Ticketed) -> bool) {
        for (_, lane) in &mut self.lanes {
            lane.trim(live, &is_live);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ticket: u64, slot: Slot) -> Ticketed {
        Ticketed { ticket, slot }
    }

    fn q(n: u64) -> Quantity {
        Quantity::new(n, 1000).unwrap()
    }

    #[test]
    fn higher_priority_first_fifo_within() {
        let mut lanes = PriorityLanes::default();
        lanes.push_back(Priority(0), q(1), t(1, 10));
        lanes.push_back(Priority(5), q(1), t(2, 11));
        lanes.push_back(Priority(0), q(1), t(3, 12));
        lanes.push_back(Priority(5), q(1), t(4, 13));
        let order: Vec<_> = lanes.iter().map(|(e, _)| e.slot).collect();
        assert_eq!(order, [11, 13, 10, 12]);
    }

    #[test]
    fn first_fit_skips_orders_too_large_and_stale_entries() {
        let mut lanes = PriorityLanes::default();
        lanes.push_back(Priority(0), q(5), t(1, 0));
        lanes.push_back(Priority(0), q(2), t(2, 1));
        lanes.push_back(Priority(0), q(2), t(3, 2));
        let fit = lanes.first_fit(3, |e| e.ticket != 2).unwrap();
        assert_eq!(fit.slot, 2, "skips the big one and the stale one");
        assert!(lanes.first_fit(1, |_| true).is_none());
        lanes.forget(q(2));
        lanes.forget(q(2));
        assert_eq!(lanes.min_quantity(), Some(5));
    }

    #[test]
    fn trim_drops_stale_ends_and_compacts() {
        let mut lane = Lane::default();
        for i in 0..100 {
            lane.push_back(t(i, 0), q(1));
        }
        lane.trim(3, |e| e.ticket % 40 == 1);
        let left: Vec<u64> = lane.iter().map(|(e, _)| e.ticket).collect();
        assert_eq!(left, [1, 41, 81]);
    }
}
