//! Checks allot's promises from event logs alone: no unit oversold, every
//! submitted order decided exactly once, stock conserved per partition. It
//! replays stock arithmetic independently of the scheduler's own state, so
//! each checks the other. Used by the simulation and the tests, and fit for
//! auditing a production log.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::domain::{Event, OrderId, PartitionKey};

/// Units per partition as the log says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stock {
    /// Units ever put in by stock commands (sets count as their delta).
    pub supplied: i128,
    pub available: i128,
    pub reserved: i128,
    pub sold: i128,
}

#[derive(Debug, Clone)]
struct Track {
    /// None for an order rejected without being queued (invalid input).
    partition: Option<PartitionKey>,
    quantity: i128,
    /// Confirmations and rejections seen.
    finals: u32,
}

/// What the audit found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Units reserved or confirmed beyond what was available. Must be 0.
    pub oversold_units: u64,
    /// Orders with more than one confirmation or rejection. Must be 0.
    pub duplicate_decisions: u64,
    /// Submitted orders with no final decision. Must be 0 once settled.
    pub undecided: u64,
    /// Partitions where supplied != available + reserved + sold. Must be 0.
    pub unconserved_partitions: u64,
    pub confirmed: u64,
    pub rejected: BTreeMap<&'static str, u64>,
    /// Orders ever backordered.
    pub backordered: u64,
    /// Reroute hand-offs.
    pub rerouted: u64,
    /// Copies of an order filed for another partition than the one that
    /// placed its id first, refused (not decisions).
    pub duplicates_refused: u64,
    /// Confirmed orders cancelled afterwards (units returned).
    pub cancelled_after_confirm: u64,
    pub units_sold: u64,
    pub units_supplied: i128,
}

impl Findings {
    /// True when every promise held.
    pub fn clean(&self) -> bool {
        self.oversold_units == 0
            && self.duplicate_decisions == 0
            && self.undecided == 0
            && self.unconserved_partitions == 0
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Feed it every event of every shard (each shard's log in order).
#[derive(Debug, Default)]
pub struct Audit {
    orders: FxHashMap<OrderId, Track>,
    stock: FxHashMap<PartitionKey, Stock>,
    findings: Findings,
}

impl Audit {
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::OrderQueued { order } => {
                let finals = self.orders.get(&order.id).map_or(0, |t| t.finals);
                self.orders.insert(
                    order.id.clone(),
                    Track {
                        partition: Some(order.partition.clone()),
                        quantity: i128::from(order.quantity.get()),
                        finals,
                    },
                );
            }
            Event::OrderReserved { id } => {
                self.shift(id, |s| &mut s.available, |s| &mut s.reserved)
            }
            Event::OrderConfirmed { id } => {
                self.shift(id, |s| &mut s.reserved, |s| &mut s.sold);
                self.decided(id);
                self.findings.confirmed += 1;
            }
            Event::OrderReleased { id, .. } | Event::ReservationRevoked { id } => {
                self.shift(id, |s| &mut s.reserved, |s| &mut s.available)
            }
            Event::OrderCancelled { id } => {
                self.shift(id, |s| &mut s.sold, |s| &mut s.available);
                self.findings.cancelled_after_confirm += 1;
            }
            Event::OrderRejected { id, reason, .. } => {
                self.decided(id);
                *self.findings.rejected.entry(reason.label()).or_default() += 1;
            }
            Event::OrderBackordered { .. } => self.findings.backordered += 1,
            Event::OrderRerouted { .. } => self.findings.rerouted += 1,
            Event::StockSet { partition, on_hand } => {
                let s = self.stock.entry(partition.clone()).or_default();
                let delta = i128::from(*on_hand) - s.available - s.reserved;
                s.supplied += delta;
                s.available += delta;
            }
            Event::StockRestocked { partition, units } => {
                let s = self.stock.entry(partition.clone()).or_default();
                s.supplied += i128::from(*units);
                s.available += i128::from(*units);
            }
            Event::CommandApplied { .. } => {}
            Event::StockAdjusted { partition, delta } => {
                let s = self.stock.entry(partition.clone()).or_default();
                s.supplied += i128::from(*delta);
                s.available += i128::from(*delta);
            }
            Event::DuplicateRefused { .. } => self.findings.duplicates_refused += 1,
            Event::OrderRetrying { .. }
            | Event::OrderForwarded { .. }
            | Event::OrderCancelRequested { .. }
            | Event::IdsClaimed { .. }
            | Event::EpochStarted { .. } => {}
        }
    }

    fn decided(&mut self, id: &OrderId) {
        let track = self.orders.entry(id.clone()).or_insert(Track {
            partition: None,
            quantity: 0,
            finals: 0,
        });
        track.finals += 1;
        if track.finals == 2 {
            self.findings.duplicate_decisions += 1;
        }
    }

    /// Moves an order's units between two counters of its partition,
    /// recording any shortfall as oversold.
    fn shift(
        &mut self,
        id: &OrderId,
        from: fn(&mut Stock) -> &mut i128,
        to: fn(&mut Stock) -> &mut i128,
    ) {
        let Some((Some(partition), q)) = self
            .orders
            .get(id)
            .map(|t| (t.partition.clone(), t.quantity))
        else {
            // Units moved for an order never queued: count it as a breach.
            self.findings.oversold_units += 1;
            return;
        };
        let s = self.stock.entry(partition).or_default();
        *from(s) -= q;
        *to(s) += q;
        if *from(s) < 0 {
            self.findings.oversold_units += (-*from(s)).min(q) as u64;
        }
    }

    /// Per-partition stock as replayed.
    pub fn stock(&self, partition: &PartitionKey) -> Option<Stock> {
        self.stock.get(partition).copied()
    }

    /// The findings, counting as undecided each of `submitted` without a
    /// final decision.
    pub fn finish<'a>(&self, submitted: impl IntoIterator<Item = &'a OrderId>) -> Findings {
        let mut f = self.findings.clone();
        f.undecided = submitted
            .into_iter()
            .filter(|id| self.orders.get(*id).is_none_or(|t| t.finals == 0))
            .count() as u64;
        for s in self.stock.values() {
            if s.supplied != s.available + s.reserved + s.sold
                || s.available < 0
                || s.reserved < 0
                || s.sold < 0
            {
                f.unconserved_partitions += 1;
            }
            f.units_sold += s.sold.max(0) as u64;
            f.units_supplied += s.supplied;
        }
        f
    }
}
