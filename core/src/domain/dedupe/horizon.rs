//! The recent decisions in full ([`Horizon`]): what was decided, for
//! answers to a repeated id and for recognising a rerouted order's
//! hand-off; and the ids of keyed commands applied recently
//! ([`RecentIds`]). Both are bounded, oldest evicted first.

use std::collections::hash_map::Entry;
use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::PartitionIdx;
use crate::domain::orders::Final;
use crate::domain::types::{OrderId, Quantity};
use crate::domain::Order;

/// A remembered decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    pub partition: Option<PartitionIdx>,
    pub quantity: Quantity,
    pub outcome: Final,
    /// For `Rerouted`: the copy handed to the next partition. Only that very
    /// order is taken for it when it arrives; another one reusing the id is
    /// a duplicate.
    pub forwarded: Option<Box<Order>>,
    seq: u64,
}

/// The last `capacity` decided order ids in full, so a repeated id is
/// answered with its decision and a rerouted order's hand-off recognised.
/// About 150 bytes of heap per id (heaptrack, big_sale); older ids are
/// still refused by the shard's [`IdTable`](super::IdTable) of decided
/// ids, only without saying what was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Horizon {
    pub(in crate::domain) capacity: usize,
    next_seq: u64,
    pub(in crate::domain) map: FxHashMap<OrderId, Decided>,
    fifo: VecDeque<(u64, OrderId)>,
}

impl Horizon {
    pub(in crate::domain) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            next_seq: 0,
            map: FxHashMap::default(),
            fifo: VecDeque::new(),
        }
    }

    pub fn get(&self, id: &OrderId) -> Option<&Decided> {
        self.map.get(id)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(in crate::domain) fn insert(
        &mut self,
        id: OrderId,
        partition: Option<PartitionIdx>,
        quantity: Quantity,
        outcome: Final,
    ) -> &mut Decided {
        let seq = self.next_seq;
        self.next_seq += 1;
        while self.fifo.len() >= self.capacity {
            let Some((old_seq, old)) = self.fifo.pop_front() else {
                break;
            };
            if let Entry::Occupied(o) = self.map.entry(old) {
                if o.get().seq == old_seq {
                    o.remove();
                }
            }
        }
        self.fifo.push_back((seq, id.clone()));
        let decided = Decided {
            partition,
            quantity,
            outcome,
            forwarded: None,
            seq,
        };
        match self.map.entry(id) {
            Entry::Occupied(mut o) => {
                o.insert(decided);
                o.into_mut()
            }
            Entry::Vacant(v) => v.insert(decided),
        }
    }

    pub(in crate::domain) fn remove(&mut self, id: &OrderId) {
        self.map.remove(id);
    }
}

/// Ids of keyed commands applied recently, oldest evicted first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentIds {
    pub(in crate::domain) set: rustc_hash::FxHashSet<OrderId>,
    fifo: VecDeque<OrderId>,
}

impl RecentIds {
    /// False if `id` is there already.
    pub(in crate::domain) fn insert(&mut self, id: &OrderId, capacity: usize) -> bool {
        if !self.set.insert(id.clone()) {
            return false;
        }
        self.fifo.push_back(id.clone());
        while self.fifo.len() > capacity.max(1) {
            if let Some(old) = self.fifo.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}
