//! Live orders in a slab: lanes refer to orders by slot, so checking whether
//! a lane entry is current is an array read, not a hash lookup. The id index
//! is only used where an id comes in from outside (a command, an outcome,
//! an event). Slots are reused in a deterministic order, so a rebuild from
//! the log lays the slab out exactly as the live shard did.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::dedupe::PartitionIdx;
use super::messages::Order;
use super::types::{OrderId, Timestamp, WarehouseId};

/// Where a live order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Queued,
    Reserved,
    Backordered {
        until: Timestamp,
    },
    /// Released back to stock; its rejection follows in the same decision.
    Releasing,
    /// Rerouted; waits for the runtime to hand it to the next partition.
    Forwarding,
}

/// An order that has not reached its final decision yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Live {
    pub order: Order,
    pub partition: PartitionIdx,
    pub status: Status,
    /// Changes whenever the order enters a lane; lane entries with another
    /// ticket are stale and skipped.
    pub ticket: u64,
    /// Retries of the current reservation so far.
    pub attempts: u32,
    pub cancel_requested: bool,
    /// Set while `Forwarding`.
    pub rerouted_to: Option<WarehouseId>,
}

/// How an order's life in this shard ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Final {
    Confirmed,
    Rejected,
    Rerouted(WarehouseId),
    /// Confirmed, then cancelled with its units returned.
    Cancelled,
}

/// Index of a live order in its shard's slab.
pub type Slot = u32;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Orders {
    index: FxHashMap<OrderId, Slot>,
    slots: Vec<Option<Live>>,
    free: Vec<Slot>,
}

impl Orders {
    pub fn slot_of(&self, id: &OrderId) -> Option<Slot> {
        self.index.get(id).copied()
    }

    pub fn get(&self, id: &OrderId) -> Option<&Live> {
        self.slot_of(id).and_then(|s| self.at(s))
    }

    pub fn get_mut(&mut self, id: &OrderId) -> Option<&mut Live> {
        let s = self.slot_of(id)?;
        self.slots[s as usize].as_mut()
    }

    pub fn at(&self, slot: Slot) -> Option<&Live> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    pub fn at_mut(&mut self, slot: Slot) -> Option<&mut Live> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    pub fn contains_key(&self, id: &OrderId) -> bool {
        self.index.contains_key(id)
    }

    /// Adds a live order; its id must not be live already.
    pub fn insert(&mut self, live: Live) -> Slot {
        let id = live.order.id.clone();
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(live);
                s
            }
            None => {
                self.slots.push(Some(live));
                (self.slots.len() - 1) as Slot
            }
        };
        self.index.insert(id, slot);
        slot
    }

    /// The slot [`Orders::insert`] will use next.
    pub fn next_slot(&self) -> Slot {
        match self.free.last() {
            Some(&s) => s,
            None => self.slots.len() as Slot,
        }
    }

    /// Removes the live order at `slot`; the same as [`Orders::remove`] of
    /// its id.
    pub fn remove_at(&mut self, slot: Slot) -> Option<Live> {
        let live = self.slots.get_mut(slot as usize)?.take()?;
        self.index.remove(&live.order.id);
        self.free.push(slot);
        Some(live)
    }

    pub fn remove(&mut self, id: &OrderId) -> Option<Live> {
        let slot = self.index.remove(id)?;
        self.free.push(slot);
        self.slots[slot as usize].take()
    }

    pub fn values(&self) -> impl Iterator<Item = &Live> {
        self.slots.iter().flatten()
    }
}
