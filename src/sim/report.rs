//! The result of a simulated sale, printed as a table.

use std::fmt;
use std::time::Duration;

use super::SimOptions;
use crate::audit::Findings;

/// What a simulated sale did and whether every promise held.
#[derive(Debug, Clone)]
pub struct SimReport {
    pub options: SimOptions,
    pub shards: u32,
    pub partitions: usize,
    pub submitted: u64,
    pub duplicates_sent: u64,
    /// Carts among the submitted, and how they were decided.
    pub carts: u64,
    pub cart_outcomes: std::collections::BTreeMap<String, u64>,
    /// Carts rejected after an enactment of theirs began.
    pub cart_revokes: u64,
    /// Orders the simulated workers enacted (each at most once).
    pub enactments: u64,
    pub findings: Findings,
    /// Shards whose log did not rebuild their live state exactly.
    pub rebuild_mismatches: u64,
    /// Intake messages never acked.
    pub unacked: u64,
    pub appends: u64,
    pub events: u64,
    /// Final decisions (confirmed, rejected, rerouted) in the logs.
    pub decisions: u64,
    pub virtual_time: Duration,
    /// Wall time spent inside the shard schedulers.
    pub core_time: Duration,
    pub wall_time: Duration,
}

impl SimReport {
    /// Every promise held: nothing oversold, lost, decided twice or left
    /// unacked, stock conserved, every shard rebuilt from its log.
    pub fn passed(&self) -> bool {
        self.findings.clean() && self.rebuild_mismatches == 0 && self.unacked == 0
    }

    /// Final decisions per second of scheduler (core) time.
    pub fn core_decisions_per_sec(&self) -> f64 {
        self.decisions as f64 / self.core_time.as_secs_f64().max(1e-9)
    }
}

fn row(f: &mut fmt::Formatter<'_>, name: &str, value: impl fmt::Display) -> fmt::Result {
    writeln!(f, "  {name:<34} {value:>14}")
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        let x = &self.findings;
        writeln!(
            f,
            "flash sale: {} orders, {} SKUs + {} pre-order SKUs, {} units per partition, seed {}",
            o.orders, o.skus, o.preorder_skus, o.stock, o.seed
        )?;
        writeln!(
            f,
            "  {} shards, {} partitions, workers p50 {:?} p99 {:?}, {:.1}% failing",
            self.shards,
            self.partitions,
            o.latency.median,
            o.latency.p99,
            o.failure_rate * 100.0
        )?;
        writeln!(f)?;
        row(f, "submitted", self.submitted)?;
        row(f, "duplicates sent", self.duplicates_sent)?;
        row(f, "confirmed", x.confirmed)?;
        for (reason, n) in &x.rejected {
            row(f, &format!("rejected: {reason}"), n)?;
        }
        row(f, "carts (1-5 lines)", self.carts)?;
        for (outcome, n) in &self.cart_outcomes {
            row(f, &format!("carts {outcome}"), n)?;
        }
        row(
            f,
            "carts with lines sold and not (must be 0)",
            x.broken_carts,
        )?;
        row(f, "backordered (then decided)", x.backordered)?;
        row(f, "rerouted", x.rerouted)?;
        row(f, "units supplied", x.units_supplied)?;
        row(f, "units sold", x.units_sold)?;
        row(f, "enactments", self.enactments)?;
        row(f, "oversold (must be 0)", x.oversold_units)?;
        row(f, "duplicate decisions (must be 0)", x.duplicate_decisions)?;
        row(f, "undecided (must be 0)", x.undecided)?;
        row(
            f,
            "unconserved partitions (must be 0)",
            x.unconserved_partitions,
        )?;
        row(f, "unacked intake (must be 0)", self.unacked)?;
        row(f, "shards not rebuilt (must be 0)", self.rebuild_mismatches)?;
        row(f, "log appends", self.appends)?;
        row(
            f,
            "events per append",
            format!("{:.1}", self.events as f64 / self.appends.max(1) as f64),
        )?;
        row(
            f,
            "virtual sale time",
            format!("{:.1}s", self.virtual_time.as_secs_f64()),
        )?;
        row(
            f,
            "core decisions/s",
            format!("{:.0}", self.core_decisions_per_sec()),
        )?;
        row(
            f,
            "simulation wall time",
            format!("{:.2}s", self.wall_time.as_secs_f64()),
        )?;
        writeln!(f)?;
        write!(
            f,
            "{}",
            if self.passed() {
                "PASS: every promise held"
            } else {
                "FAIL: a promise was broken"
            }
        )
    }
}
