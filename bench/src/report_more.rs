//! The results.md tables of the scenarios beside the issue-5 ones: carts
//! (issue 13) against allot's single-order rate, and allot's batched
//! intake against each baseline (issue 12).

use std::fmt::Write as _;

use crate::report::{Results, ScenarioResult};
use crate::report_md::{sp, x};

impl Results {
    /// The carts scenario's lines decided per second over allot's
    /// single-order rate in `1k_skus_x4_warehouses` (medians).
    pub(crate) fn lines_over_single(&self, carts: &ScenarioResult) -> Option<f64> {
        let rate = |s: &ScenarioResult| s.system("allot")?.summary.per_s.map(|v| v.median);
        let single = self
            .scenarios
            .iter()
            .find(|s| s.scenario.name == "1k_skus_x4_warehouses")
            .and_then(rate)
            .filter(|r| *r > 0.0)?;
        Some(rate(carts)? * f64::from(carts.scenario.lines) / single)
    }

    /// Issue 13's carts: lines per second against single orders over the
    /// same partitions, and how long a cart takes to be decided.
    pub(crate) fn carts(&self) -> String {
        let mut out = String::new();
        for s in self.scenarios.iter().filter(|s| s.scenario.carts()) {
            if out.is_empty() {
                out += "\n### Carts: all-or-nothing carts published on order subjects\n\n";
                out += "Each cart is one message of `lines` lines, each line one unit in its own \
                        partition; decided/s counts carts. A cart's admission is every line \
                        decided (its first enactment starts, or it is rejected); its final \
                        decision is its `confirmed` or `rejected` event. The gate counts a sold \
                        cart as a unit sold in each line's partition and the audit fails any \
                        cart with some lines sold and some not.\n\n";
                out += "| scenario | system | carts decided/s | lines decided/s | lines/s ÷ 1k_skus_x4_warehouses orders/s | cart admission p99 ms | cart decision p50 ms | cart decision p99 ms |\n|---|---|---|---|---|---|---|---|\n";
            }
            let lines = f64::from(s.scenario.lines);
            for sys in &s.systems {
                let m = &sys.summary;
                let ratio = (sys.runs.key == "allot")
                    .then(|| self.lines_over_single(s))
                    .flatten();
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    s.scenario.name,
                    sys.runs.label,
                    sp(m.per_s, 0),
                    m.per_s
                        .map_or("—".into(), |v| format!("{:.0}", v.median * lines)),
                    x(ratio),
                    sp(m.admission_p99_ms, 2),
                    sp(m.final_p50_ms, 2),
                    sp(m.final_p99_ms, 2),
                );
            }
        }
        out
    }

    /// allot's batched intake against the baselines, if it ran.
    pub(crate) fn batched(&self) -> String {
        let mut out = String::new();
        for s in &self.scenarios {
            let rate = |k: &str| s.system(k).and_then(|a| a.summary.per_s);
            if rate("allot_batch").is_none() && rate("allot_always_batch").is_none() {
                continue;
            }
            if out.is_empty() {
                out += "\n### allot batched against each baseline (decided/s, ratio = allot batched ÷ baseline)\n\n";
                out += "| scenario | allot batched decided/s | allot¹ batched decided/s | ÷ allot one per message | ÷ raw JetStream, per-message ack | ÷ Redis AOF everysec | ÷ Redis AOF always ¹ | ÷ PostgreSQL sync off |\n|---|---|---|---|---|---|---|---|\n";
            }
            let r = &s.ratios;
            let over_single = match (rate("allot_batch"), rate("allot")) {
                (Some(b), Some(a)) if a.median > 0.0 => Some(b.median / a.median),
                _ => None,
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                s.scenario.name,
                sp(rate("allot_batch"), 0),
                sp(rate("allot_always_batch"), 0),
                x(over_single),
                x(r.allot_batch_over_raw_ack),
                x(r.allot_batch_over_redis_everysec),
                x(r.allot_always_batch_over_redis_always),
                x(r.allot_batch_over_pg_sync_off),
            );
        }
        out
    }
}
