//! The state of one shard: its partitions (stock, queue, backorders,
//! reservations), its live orders, and the horizon of recent decisions.
//!
//! State changes only through [`ShardState::evolve`], one event at a time.
//! The live scheduler and a rebuild from the log call the same function, so
//! folding a shard's events from empty state gives the live state exactly
//! (`PartialEq` holds, lists and counters included).
//!
//! The folding itself (`evolve` and its helpers) is in `evolve`; a
//! partition's books and the lane bookkeeping of waiting and reserved
//! orders are in `partition`.

mod evolve;
mod partition;

use std::fmt;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

pub use super::dedupe::PartitionIdx;
use super::dedupe::{Decided, DedupeConfig, Horizon, Ids, RecentIds};
use super::orders::{Live, Orders, Slot};
use super::queue::Ticketed;
use super::types::{OrderId, PartitionKey};
pub use partition::Partition;

/// An event that does not fit the state: a corrupt or foreign log, or a bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event} does not apply: {why}")]
pub struct StateError {
    pub event: String,
    pub why: String,
}

/// Everything a shard knows, rebuilt from its events alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardState {
    partitions: Vec<Partition>,
    index: FxHashMap<PartitionKey, PartitionIdx>,
    orders: Orders,
    decided: Horizon,
    /// Every id decided here or owned here, within the dedupe window.
    ids: Ids,
    /// Keyed commands applied, as many as the order horizon holds.
    #[serde(default)]
    commands: RecentIds,
    next_ticket: u64,
    /// The partition looked up last: a hot SKU skips the hash lookup.
    #[serde(skip)]
    last_partition: LastPartition,
}

/// A lookup cache, not state: equal whatever it holds, never serialized.
#[derive(Clone, Copy, Default)]
struct LastPartition(PartitionIdx);

impl PartialEq for LastPartition {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for LastPartition {}

impl fmt::Debug for LastPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("_")
    }
}

impl ShardState {
    /// Empty state remembering up to `dedupe_horizon` decided ids.
    pub fn new(dedupe_horizon: usize) -> Self {
        Self::with(DedupeConfig::single(dedupe_horizon))
    }

    /// Empty state of one shard of several, remembering ids as `dedupe`
    /// says.
    pub fn with(dedupe: DedupeConfig) -> Self {
        Self {
            partitions: Vec::new(),
            index: FxHashMap::default(),
            orders: Orders::default(),
            decided: Horizon::new(dedupe.horizon),
            ids: Ids::new(dedupe),
            commands: RecentIds::default(),
            next_ticket: 0,
            last_partition: LastPartition::default(),
        }
    }

    pub fn partitions(&self) -> &[Partition] {
        &self.partitions
    }

    pub fn partition(&self, idx: PartitionIdx) -> &Partition {
        &self.partitions[idx as usize]
    }

    pub fn partition_idx(&self, key: &PartitionKey) -> Option<PartitionIdx> {
        self.index.get(key).copied()
    }

    pub fn live(&self, id: &OrderId) -> Option<&Live> {
        self.orders.get(id)
    }

    pub fn live_orders(&self) -> impl Iterator<Item = &Live> {
        self.orders.values()
    }

    pub fn decided(&self, id: &OrderId) -> Option<&Decided> {
        self.decided.get(id)
    }

    /// The ids decided and owned here.
    pub fn ids(&self) -> &Ids {
        &self.ids
    }

    /// Whether the keyed command `id` was applied (within the horizon).
    pub fn command_applied(&self, id: &OrderId) -> bool {
        self.commands.set.contains(id)
    }

    pub fn horizon(&self) -> &Horizon {
        &self.decided
    }

    pub(crate) fn is_current(&self, entry: &Ticketed) -> bool {
        self.orders
            .at(entry.slot)
            .is_some_and(|l| l.ticket == entry.ticket)
    }

    /// A live order's slot and current ticket.
    pub(crate) fn ticket_of(&self, id: &OrderId) -> Option<(Slot, u64)> {
        let slot = self.orders.slot_of(id)?;
        Some((slot, self.orders.at(slot)?.ticket))
    }

    /// The live order a lane entry points at (current or not).
    pub(crate) fn at_slot(&self, slot: Slot) -> Option<&Live> {
        self.orders.at(slot)
    }

    /// A live order's slot.
    pub(crate) fn slot_of(&self, id: &OrderId) -> Option<Slot> {
        self.orders.slot_of(id)
    }

    /// The slot the next queued order will take (slots are reused in a
    /// deterministic order).
    pub(crate) fn next_slot(&self) -> Slot {
        self.orders.next_slot()
    }

    fn at(&mut self, slot: Slot) -> &mut Live {
        self.orders.at_mut(slot).expect("slot of a live order")
    }
}
