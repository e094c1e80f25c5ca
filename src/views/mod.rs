//! The read side: every order's status and history and every partition's
//! stock, projected from EVENTS and held in memory by each instance for
//! every shard, so any instance answers any read and no view costs a
//! broker write. [`projection`] is the pure fold of one shard's batches;
//! [`Views`] holds one per shard behind a lock and answers queries;
//! `runtime::views` feeds it from the log and checkpoints it.
//!
//! Views lag decisions by the time a batch takes to reach the reader
//! (reported as `allot_view_lag_seconds`); decisions never read them.

mod carts;
mod history;
mod lines;
pub mod projection;

use parking_lot::RwLock;
use serde::Serialize;

use crate::domain::{Event, OrderId, PartitionKey};
use crate::wire::msgpack::{read_capped, why};
pub use carts::{CartLineStatus, CartStatus};
pub use lines::History;
pub use projection::{Happened, OrderView, ShardViews, Stage, StockView};

/// An order as reads show it, merged over every partition it passed
/// through (a rerouted order keeps its history from before the reroute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderStatus {
    pub id: String,
    /// Where it is now.
    pub warehouse: String,
    pub sku: String,
    pub quantity: u32,
    /// The latest stage: queued, reserved, confirmed, rejected, ...
    pub status: String,
    /// No later decision will change it (confirmed, rejected, cancelled).
    #[serde(rename = "final")]
    pub is_final: bool,
    pub history: Vec<HistoryLine>,
}

/// One decision, with the EVENTS sequence of the batch holding it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryLine {
    pub seq: u64,
    pub what: String,
}

/// Deepest nesting in a views checkpoint. Views with every kind of entry
/// (each stage, every history line, stock) go 6 deep (`tests.rs` measures
/// it); the rest is headroom for fields to come.
pub const MAX_CHECKPOINT_DEPTH: usize = 24;

/// Reads back a checkpoint made by [`Views::checkpoint`], its nesting
/// capped: it is allot's own, but whoever may write the object store can
/// put anything there. The error says why it is not views this build reads.
pub fn decode_checkpoint(bytes: &[u8]) -> Result<ShardViews, String> {
    read_capped(bytes, MAX_CHECKPOINT_DEPTH).map_err(|e| why(&e, MAX_CHECKPOINT_DEPTH))
}

/// Why an order is not in the views: what a 404 says.
pub fn unknown_order(id: &OrderId) -> String {
    format!(
        "order {id} is unknown here: never submitted, not in the views yet (they lag \
         decisions by moments), or decided long ago and forgotten (the views keep the \
         last views.max_orders orders; EVENTS keeps its decision)"
    )
}

/// Every shard's views.
#[derive(Debug)]
pub struct Views {
    shards: Vec<RwLock<ShardViews>>,
    /// Orders kept per shard; the oldest final ones go first.
    max_orders: usize,
}

impl Views {
    /// Empty views of `shards` shards, keeping up to `max_orders` orders
    /// in all.
    pub fn new(shards: u32, max_orders: usize) -> Self {
        let n = shards.max(1) as usize;
        Self {
            shards: (0..n).map(|_| RwLock::new(ShardViews::default())).collect(),
            max_orders: (max_orders / n).max(1),
        }
    }

    pub fn shard_count(&self) -> u32 {
        self.shards.len() as u32
    }

    /// Applies the batch of `shard` stored at `seq` (the reader checked it
    /// follows the last one applied).
    pub fn apply(&self, shard: u32, seq: u64, events: &[Event]) {
        if let Some(s) = self.shards.get(shard as usize) {
            s.write().apply(seq, events, self.max_orders);
        }
    }

    /// Applies the batch of `shard` stored at `seq` unless it already was
    /// (fed by this instance's own append): false if it was.
    pub fn apply_unless_applied(&self, shard: u32, seq: u64, events: &[Event]) -> bool {
        self.apply_if(shard, |last| last < seq, seq, events)
    }

    /// Applies the batch of `shard` stored at `seq` after `prev` if the
    /// views are at exactly `prev` (an append of this instance that just
    /// landed); otherwise leaves it to the reader: false.
    pub fn apply_next(&self, shard: u32, prev: u64, seq: u64, events: &[Event]) -> bool {
        self.apply_if(shard, |last| last == prev, seq, events)
    }

    /// Applies the batch iff `due` holds of the shard's last sequence,
    /// checked and applied under one lock.
    fn apply_if(
        &self,
        shard: u32,
        due: impl FnOnce(u64) -> bool,
        seq: u64,
        events: &[Event],
    ) -> bool {
        let Some(s) = self.shards.get(shard as usize) else {
            return false;
        };
        let mut s = s.write();
        if !due(s.last_seq) {
            return false;
        }
        s.apply(seq, events, self.max_orders);
        true
    }

    /// Replaces a shard's views (a checkpoint loaded at start).
    pub fn restore(&self, shard: u32, views: ShardViews) {
        if let Some(s) = self.shards.get(shard as usize) {
            *s.write() = views;
        }
    }

    /// The sequence of the last batch applied for `shard`.
    pub fn last_seq(&self, shard: u32) -> u64 {
        self.shards
            .get(shard as usize)
            .map_or(0, |s| s.read().last_seq)
    }

    /// A shard's views as a checkpoint: its last sequence and its bytes
    /// (MessagePack with named fields, read back by [`decode_checkpoint`]).
    pub fn checkpoint(&self, shard: u32) -> Option<(u64, Vec<u8>)> {
        let s = self.shards.get(shard as usize)?.read();
        let bytes = rmp_serde::to_vec_named(&*s).ok()?;
        Some((s.last_seq, bytes))
    }

    /// The partition an order is in now, and its quantity (for a decision
    /// published about it).
    pub fn placed(&self, shard: u32, id: &OrderId) -> Option<(PartitionKey, u32)> {
        let s = self.shards.get(shard as usize)?.read();
        s.order(id).map(|o| (o.partition.clone(), o.quantity))
    }

    /// An order's status and whole history, from every shard it passed.
    pub fn order(&self, id: &OrderId) -> Option<OrderStatus> {
        let mut found: Vec<OrderView> = self
            .shards
            .iter()
            .filter_map(|s| s.read().order(id).cloned())
            .collect();
        let latest = |o: &OrderView| o.history.last_seq().unwrap_or(0);
        found.sort_by_key(latest);
        // Where it is now: the latest partition that did not hand it on.
        let now = found
            .iter()
            .rev()
            .find(|o| !matches!(o.stage, Stage::Rerouted | Stage::Duplicate))
            .or(found.last())?
            .clone();
        let mut history: Vec<(u64, Happened)> = found
            .into_iter()
            .flat_map(|o| {
                let here = o.partition;
                o.history
                    .lines()
                    .into_iter()
                    .map(move |(seq, line)| (seq, line.resolved(&here)))
            })
            .collect();
        history.sort_by_key(|(seq, _)| *seq);
        Some(OrderStatus {
            id: id.to_string(),
            warehouse: now.partition.warehouse.to_string(),
            sku: now.partition.sku.to_string(),
            quantity: now.quantity,
            status: now.stage.label().to_owned(),
            is_final: matches!(
                now.stage,
                Stage::Confirmed | Stage::Rejected | Stage::Cancelled
            ),
            history: history
                .into_iter()
                .map(|(seq, what)| HistoryLine {
                    seq,
                    what: what.to_string(),
                })
                .collect(),
        })
    }

    /// A partition's stock.
    pub fn stock(&self, p: &PartitionKey) -> Option<StockView> {
        self.shards.iter().find_map(|s| s.read().stock(p))
    }

    /// Every partition's stock.
    pub fn partitions(&self) -> Vec<StockView> {
        self.shards
            .iter()
            .flat_map(|s| s.read().partitions().collect::<Vec<_>>())
            .collect()
    }

    /// Orders held, over every shard.
    pub fn order_count(&self) -> usize {
        self.shards.iter().map(|s| s.read().order_count()).sum()
    }
}

#[cfg(test)]
mod tests;
