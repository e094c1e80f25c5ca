//! The correctness gate, one rule for every system: each order has exactly
//! one final answer in the system's own durable record (allot's EVENTS,
//! the PostgreSQL table, the Redis stream, the raw consumer's deliveries),
//! and no partition sold more units than it had. A run that fails the gate
//! reports no speed.

use serde::Serialize;

use crate::workload::{order_index, Workload};

/// Every final answer read back from a system's own record, by order.
#[derive(Debug, Clone)]
pub struct Answers {
    /// Final answers per order (saturating).
    count: Vec<u8>,
    /// Whether an answer for the order said "sold".
    sold: Vec<bool>,
    /// Answers naming no order of the workload.
    unknown: u64,
}

impl Answers {
    pub fn new(orders: usize) -> Answers {
        Answers {
            count: vec![0; orders],
            sold: vec![false; orders],
            unknown: 0,
        }
    }

    /// Records one final answer for the order with id `id`.
    pub fn record_id(&mut self, id: &str, sold: bool) {
        self.record(order_index(id), sold);
    }

    /// Records one final answer for order `index` (`None`: not an order id).
    pub fn record(&mut self, index: Option<usize>, sold: bool) {
        match index.filter(|&n| n < self.count.len()) {
            Some(n) => {
                self.count[n] = self.count[n].saturating_add(1);
                self.sold[n] |= sold;
            }
            None => self.unknown += 1,
        }
    }

    /// Adds another reader's answers (one per consumer task).
    pub fn merge(&mut self, other: &Answers) {
        for n in 0..self.count.len().min(other.count.len()) {
            self.count[n] = self.count[n].saturating_add(other.count[n]);
            self.sold[n] |= other.sold[n];
        }
        self.unknown += other.unknown;
    }

    /// The gate for `workload`. `stocked` is false for a system that sells
    /// nothing (raw JetStream): then every answer must be "not sold".
    pub fn gate(&self, workload: &Workload, stocked: bool) -> Gate {
        let mut sold_at = vec![0u64; workload.partitions.len()];
        let (mut lost, mut duplicates) = (0, 0);
        for (n, order) in workload.orders.iter().enumerate() {
            match self.count.get(n).copied().unwrap_or(0) {
                0 => lost += 1,
                c => duplicates += u64::from(c - 1),
            }
            if self.sold.get(n).copied().unwrap_or(false) {
                // A cart sold is a unit sold in each line's partition.
                for &p in order.partitions() {
                    sold_at[p as usize] += 1;
                }
            }
        }
        let stock = if stocked { workload.scenario.stock } else { 0 };
        let over: Vec<u64> = sold_at.iter().map(|&s| s.saturating_sub(stock)).collect();
        let mut gate = Gate {
            oversold: over.iter().sum(),
            oversold_partitions: over.iter().filter(|&&o| o > 0).count() as u64,
            lost,
            duplicates,
            unknown: self.unknown,
            sold: sold_at.iter().sum(),
            sellable: stocked.then(|| workload.sellable()),
            problems: vec![],
        };
        if let Some(sellable) = gate.sellable.filter(|&s| gate.sold > s) {
            gate.problems.push(format!(
                "sold {} units, only {sellable} could be sold",
                gate.sold
            ));
        }
        gate
    }
}

/// What the gate found. Units sold below what was sellable is reported, not
/// failed: a fulfilment failure may leave a unit unsold.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Gate {
    /// Units sold beyond a partition's stock, summed.
    pub oversold: u64,
    pub oversold_partitions: u64,
    /// Orders without a final answer.
    pub lost: u64,
    /// Final answers beyond the first, summed over orders.
    pub duplicates: u64,
    /// Answers for ids that are no order of the run.
    pub unknown: u64,
    pub sold: u64,
    /// min(stock, demand) summed over partitions; `None` for raw JetStream.
    pub sellable: Option<u64>,
    /// Anything else found wrong (stock not conserved, an audit finding).
    pub problems: Vec<String>,
}

impl Gate {
    pub fn passed(&self) -> bool {
        self.oversold == 0
            && self.lost == 0
            && self.duplicates == 0
            && self.unknown == 0
            && self.problems.is_empty()
    }

    /// A problem found by a system-specific check (conservation, audit).
    pub fn problem(&mut self, what: String) {
        self.problems.push(what);
    }

    /// One line for the console and the tables: what was sold, or every
    /// way the run failed.
    pub fn summary(&self) -> String {
        let sold = match self.sellable {
            Some(s) => format!("sold {} of {s} sellable", self.sold),
            None => "each order delivered once".into(),
        };
        if self.passed() {
            return format!("PASS ({sold})");
        }
        let mut wrong = Vec::new();
        if self.oversold > 0 {
            let p = self.oversold_partitions;
            wrong.push(format!(
                "oversold {} units in {p} partitions",
                self.oversold
            ));
        }
        for (n, what) in [
            (self.lost, "orders without an answer"),
            (self.duplicates, "duplicate answers"),
            (self.unknown, "answers for unknown ids"),
        ] {
            if n > 0 {
                wrong.push(format!("{n} {what}"));
            }
        }
        wrong.extend(self.problems.iter().cloned());
        format!("FAIL: {}", wrong.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Scenario;

    fn hot(orders: u64) -> Workload {
        Workload::build(&Scenario::all(Some(orders))[0], 1).unwrap()
    }

    #[test]
    fn every_order_answered_once_within_stock_passes() {
        let w = hot(100);
        let mut a = Answers::new(100);
        for (n, o) in w.orders.iter().enumerate() {
            a.record_id(&o.id, n < 5);
        }
        let gate = a.gate(&w, true);
        assert!(gate.passed(), "{}", gate.summary());
        assert_eq!((gate.sold, gate.sellable), (5, Some(5)));
    }

    #[test]
    fn oversold_lost_duplicate_and_unknown_answers_fail() {
        let w = hot(100);
        let mut a = Answers::new(100);
        for n in 0..99 {
            a.record(Some(n), n < 6);
        }
        a.record(Some(3), false);
        a.record_id("nope", false);
        let gate = a.gate(&w, true);
        assert!(!gate.passed());
        let found = (gate.oversold, gate.lost, gate.duplicates, gate.unknown);
        assert_eq!(found, (1, 1, 1, 1));
    }

    #[test]
    fn a_raw_run_sells_nothing_and_must_see_each_order_once() {
        let w = hot(10);
        let (mut a, mut b) = (Answers::new(10), Answers::new(10));
        for n in 0..5 {
            a.record(Some(n), false);
            b.record(Some(n + 5), false);
        }
        a.merge(&b);
        assert!(a.gate(&w, false).passed());
        a.record(Some(0), false);
        assert_eq!(a.gate(&w, false).duplicates, 1);
    }

    #[test]
    fn a_sold_cart_is_a_unit_sold_in_each_line_partition() {
        // 3 carts of 3 lines over 4 partitions of 1 unit: lines collide.
        let scenario = Scenario {
            skus: 2,
            warehouses: 2,
            stock: 1,
            orders: 3,
            ..Scenario::all(Some(30))[4].clone()
        };
        let w = Workload::build(&scenario, 3).unwrap();
        let mut one = Answers::new(3);
        for n in 0..3 {
            one.record(Some(n), n == 0);
        }
        let gate = one.gate(&w, true);
        assert!(gate.passed(), "{}", gate.summary());
        assert_eq!(gate.sold, 3);
        let mut all = Answers::new(3);
        for n in 0..3 {
            all.record(Some(n), true);
        }
        let gate = all.gate(&w, true);
        assert_eq!((gate.sold, gate.oversold), (9, 5), "{}", gate.summary());
        assert!(!gate.passed());
    }
}
