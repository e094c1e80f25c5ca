//! Checks allot's promises from event logs alone: no unit oversold, every
//! submitted order decided exactly once, every order moving only along its
//! legal path (reserved before confirmed or released, rejected only when
//! not reserved, ...), stock never negative and conserved per partition.
//! It replays the stock arithmetic apart from the scheduler's own state, so
//! each checks the other ([`Audit::compare`] holds the shard's counters
//! against it). Used by the simulation, the tests and `allot audit`, and
//! fit for auditing a production log.
//!
//! Supply comes from the stock commands alone: a set says how many units
//! are on hand, a restock or an adjustment changes that. Orders then move
//! units between free, reserved and sold. Free units go below zero only by
//! a stock count below what is reserved (a shortage, allowed: a
//! reservation with a worker is never taken back); a reservation beyond
//! the free units is oversold, flagged where it happens, as is a release
//! or a sale of units never reserved.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

mod carts;

use crate::domain::{Event, OrderId, PartitionKey, ShardState};

/// Units per partition as the log says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stock {
    /// Units put in by stock commands, plus units sold before a set (a set
    /// counts what is on hand, not what was sold).
    pub supplied: i128,
    pub available: i128,
    pub reserved: i128,
    pub sold: i128,
}

/// Where an order is, as the audit follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Queued,
    Backordered,
    Reserved,
    Released,
    Forwarding,
    Confirmed,
    Cancelled,
    /// Rejected or handed on: nothing more may happen to it here.
    Done,
}

/// One life of an order in one partition (a reroute starts another in
/// the next partition; both may be under way while the hand-off is).
#[derive(Debug, Clone)]
struct Life {
    partition: PartitionKey,
    quantity: i128,
    stage: Stage,
}

#[derive(Debug, Clone, Default)]
struct Track {
    lives: Vec<Life>,
    /// Confirmations and rejections seen.
    finals: u32,
}

/// How many violations are kept as examples.
const EXAMPLES: usize = 20;

/// What the audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Units reserved or confirmed beyond what was available. Must be 0.
    pub oversold_units: u64,
    /// Orders (or carts) with more than one confirmation or rejection.
    /// Must be 0.
    pub duplicate_decisions: u64,
    /// Carts whose lines do not match their decision: an all-or-nothing
    /// cart confirmed with a line not sold, a rejected or cancelled cart
    /// with a line sold, a partial cart confirmed with none. Must be 0.
    pub broken_carts: u64,
    pub carts_confirmed: u64,
    pub carts_rejected: u64,
    /// Submitted orders with no final decision. Must be 0 once settled.
    pub undecided: u64,
    /// Partitions with a counter below zero, or where supplied !=
    /// available + reserved + sold at the end. Must be 0.
    pub unconserved_partitions: u64,
    /// Events an order's state does not allow (a release of an order never
    /// reserved, a confirmation of one not reserved, ...). Must be 0.
    pub illegal_transitions: u64,
    pub confirmed: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    /// Orders ever backordered.
    pub backordered: u64,
    /// Reroute hand-offs.
    pub rerouted: u64,
    /// Copies of an order filed for another partition than the one that
    /// placed its id first, refused (not decisions).
    pub duplicates_refused: u64,
    /// Stock changes that left a partition short (counted below what was
    /// reserved; allowed: reservations are never taken back).
    pub shortages: u64,
    /// Keyed commands refused (stale stock version, negative stock).
    pub commands_refused: u64,
    /// Confirmed orders cancelled afterwards (units returned).
    pub cancelled_after_confirm: u64,
    pub units_sold: u64,
    pub units_supplied: i128,
    /// The first violations, said in words.
    pub examples: Vec<String>,
}

impl Findings {
    /// True when every promise held.
    pub fn clean(&self) -> bool {
        self.oversold_units == 0
            && self.duplicate_decisions == 0
            && self.broken_carts == 0
            && self.undecided == 0
            && self.unconserved_partitions == 0
            && self.illegal_transitions == 0
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    fn example(&mut self, what: impl FnOnce() -> String) {
        if self.examples.len() < EXAMPLES {
            self.examples.push(what());
        }
    }
}

/// Feed it every event of every shard (each shard's log in order).
#[derive(Debug, Default)]
pub struct Audit {
    orders: FxHashMap<OrderId, Track>,
    stock: FxHashMap<PartitionKey, Stock>,
    carts: FxHashMap<OrderId, carts::CartTrack>,
    findings: Findings,
}

impl Audit {
    pub fn apply(&mut self, event: &Event) {
        use Stage::*;
        match event {
            Event::Cart { event } => self.cart(event),
            Event::OrderQueued { order } => {
                let track = self.orders.entry(order.id.clone()).or_default();
                track.lives.push(Life {
                    partition: order.partition.clone(),
                    quantity: i128::from(order.quantity.get()),
                    stage: Queued,
                });
            }
            Event::OrderReserved { id } => {
                if let Some(life) = self.step(event, id, &[Queued, Backordered], Reserved) {
                    self.shift(id, &life, |s| &mut s.available, |s| &mut s.reserved);
                }
            }
            Event::OrderConfirmed { id } => {
                if let Some(life) = self.step(event, id, &[Reserved], Confirmed) {
                    self.shift(id, &life, |s| &mut s.reserved, |s| &mut s.sold);
                }
                self.decided(id);
                self.findings.confirmed += 1;
            }
            Event::OrderReleased { id, .. } => {
                if let Some(life) = self.step(event, id, &[Reserved], Released) {
                    self.shift(id, &life, |s| &mut s.reserved, |s| &mut s.available);
                }
            }
            Event::OrderCancelled { id } => {
                if let Some(life) = self.step(event, id, &[Confirmed], Cancelled) {
                    self.shift(id, &life, |s| &mut s.sold, |s| &mut s.available);
                }
                self.findings.cancelled_after_confirm += 1;
            }
            Event::OrderRejected { id, reason, .. } => {
                // An order rejected unqueued (invalid) has no life to end.
                if self.orders.get(id).is_some_and(|t| !t.lives.is_empty()) {
                    self.step(event, id, &[Queued, Backordered, Released], Done);
                }
                self.decided(id);
                *self.findings.rejected.entry(reason.label()).or_default() += 1;
            }
            Event::OrderBackordered { id, .. } => {
                self.step(event, id, &[Queued], Backordered);
                self.findings.backordered += 1;
            }
            Event::OrderRerouted { id, .. } => {
                self.step(event, id, &[Queued, Backordered], Forwarding);
                self.findings.rerouted += 1;
            }
            Event::OrderForwarded { id } => {
                self.step(event, id, &[Forwarding], Done);
            }
            Event::OrderRetrying { id, .. } | Event::OrderCancelRequested { id } => {
                self.step(event, id, &[Reserved], Reserved);
            }
            Event::StockSet { partition, on_hand } => {
                let s = self.stock.entry(partition.clone()).or_default();
                // On hand is free plus reserved: the set moves the free units.
                let delta = i128::from(*on_hand) - s.available - s.reserved;
                s.supplied += delta;
                s.available += delta;
                self.check_stock(partition, event);
            }
            Event::StockRestocked { partition, units } => {
                let s = self.stock.entry(partition.clone()).or_default();
                s.supplied += i128::from(*units);
                s.available += i128::from(*units);
            }
            Event::StockAdjusted { partition, delta } => {
                let s = self.stock.entry(partition.clone()).or_default();
                s.supplied += i128::from(*delta);
                s.available += i128::from(*delta);
                self.check_stock(partition, event);
            }
            Event::DuplicateRefused { .. } => self.findings.duplicates_refused += 1,
            Event::StockShort { .. } => self.findings.shortages += 1,
            Event::CommandRefused { .. } => self.findings.commands_refused += 1,
            Event::CommandApplied { .. }
            | Event::IdsClaimed { .. }
            | Event::EpochStarted { .. } => {}
        }
    }

    /// Moves the life of order `id` that is in one of `from` (the latest
    /// such) to `to` and returns it; with no life there, the event is an
    /// illegal transition.
    fn step(&mut self, event: &Event, id: &OrderId, from: &[Stage], to: Stage) -> Option<Life> {
        let track = self.orders.entry(id.clone()).or_default();
        match track
            .lives
            .iter_mut()
            .rev()
            .find(|l| from.contains(&l.stage))
        {
            Some(life) => {
                life.stage = to;
                Some(life.clone())
            }
            None => {
                let was: Vec<Stage> = track.lives.iter().map(|l| l.stage).collect();
                self.findings.illegal_transitions += 1;
                self.findings
                    .example(|| format!("{id}: {event:?} while the order is {was:?}"));
                None
            }
        }
    }

    fn check_stock(&mut self, partition: &PartitionKey, event: &Event) {
        let s = self.stock[partition];
        if s.available + s.reserved < 0 {
            self.findings.unconserved_partitions += 1;
            self.findings.example(|| {
                format!(
                    "{partition}: {event:?} leaves {} on hand",
                    s.available + s.reserved
                )
            });
        }
    }

    fn decided(&mut self, id: &OrderId) {
        let track = self.orders.entry(id.clone()).or_default();
        track.finals += 1;
        if track.finals == 2 {
            self.findings.duplicate_decisions += 1;
            self.findings.example(|| format!("{id}: decided twice"));
        }
    }

    /// Moves an order's units between two counters of its partition,
    /// recording any shortfall as oversold.
    fn shift(
        &mut self,
        id: &OrderId,
        life: &Life,
        from: fn(&mut Stock) -> &mut i128,
        to: fn(&mut Stock) -> &mut i128,
    ) {
        let (partition, q) = (&life.partition, life.quantity);
        let s = self.stock.entry(partition.clone()).or_default();
        *from(s) -= q;
        *to(s) += q;
        if *from(s) < 0 {
            let short = (-*from(s)).min(q);
            self.findings.oversold_units += short as u64;
            self.findings
                .example(|| format!("{id}: {short} units of {partition} it could not have"));
        }
    }

    /// Per-partition stock as replayed.
    pub fn stock(&self, partition: &PartitionKey) -> Option<Stock> {
        self.stock.get(partition).copied()
    }

    /// Where the shard's own counters differ from this replay, for every
    /// partition the shard has.
    pub fn compare(&self, state: &ShardState) -> Vec<String> {
        state
            .partitions()
            .iter()
            .filter_map(|p| {
                let s = self.stock.get(&p.key).copied().unwrap_or_default();
                // Free units less a shortage: below zero while short.
                let shard = [p.net_free(), i128::from(p.reserved), i128::from(p.sold)];
                let audit = [s.available, s.reserved, s.sold];
                (shard != audit).then(|| {
                    format!(
                        "{}: the shard has [available, reserved, sold] {shard:?}, the log {audit:?}",
                        p.key
                    )
                })
            })
            .collect()
    }

    /// The findings, counting as undecided each of `submitted` without a
    /// final decision.
    pub fn finish<'a>(&self, submitted: impl IntoIterator<Item = &'a OrderId>) -> Findings {
        let mut f = self.findings.clone();
        self.check_carts(&mut f);
        for id in submitted {
            if let Some(cart) = self.carts.get(id) {
                if cart.sold.is_none() {
                    f.undecided += 1;
                    f.example(|| format!("cart {id}: no final decision"));
                }
                continue;
            }
            if self.orders.get(id).is_none_or(|t| t.finals == 0) {
                f.undecided += 1;
                f.example(|| format!("{id}: no final decision"));
            }
        }
        let mut partitions: Vec<_> = self.stock.iter().collect();
        partitions.sort_by(|a, b| a.0.cmp(b.0));
        for (key, s) in partitions {
            if s.supplied != s.available + s.reserved + s.sold || s.reserved < 0 || s.sold < 0 {
                f.unconserved_partitions += 1;
                f.example(|| format!("{key}: {s:?}"));
            }
            f.units_sold += s.sold.max(0) as u64;
            f.units_supplied += s.supplied;
        }
        f
    }
}

#[cfg(test)]
mod tests;
