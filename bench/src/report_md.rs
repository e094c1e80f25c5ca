//! The markdown tables of results.md (BENCHMARKS.md quotes them): the
//! ratios the issue asks for, every system's speed and open-loop latency,
//! CPU per decision, the targets, and every run that failed its gate.

use std::fmt::Write as _;

use crate::report::{Results, ScenarioResult, Summary};
use crate::stats::Spread;

/// `median (min–max)`, or the one value of a single run; `—` if none.
pub(crate) fn sp(s: Option<Spread>, digits: usize) -> String {
    match s {
        None => "—".into(),
        Some(s) if s.n == 1 || s.min == s.max => format!("{:.*}", digits, s.median),
        Some(s) => format!(
            "{:.*} ({:.*}–{:.*})",
            digits, s.median, digits, s.min, digits, s.max
        ),
    }
}

pub(crate) fn x(r: Option<f64>) -> String {
    r.map_or("—".into(), |v| format!("{v:.2}x"))
}

/// One target row. Goals in ms, MiB or s are ceilings; ratios are floors,
/// except a unit of `"x max"` (a ratio that must stay under its goal).
fn target(
    out: &mut String,
    what: &str,
    scenario: &str,
    measured: Option<f64>,
    goal: f64,
    unit: &str,
) {
    let ceiling = unit != "x";
    let unit = unit.trim_end_matches(" max");
    let met = measured.map(|m| if ceiling { m <= goal } else { m >= goal });
    let _ = writeln!(
        out,
        "| {what} | {scenario} | {} | {} |",
        measured.map_or("—".into(), |m| format!("{m:.2}{unit}")),
        match met {
            Some(true) => "met",
            Some(false) => "**not met**",
            None => "not measured",
        }
    );
}

fn rss_max(s: &ScenarioResult) -> Option<f64> {
    let allot = ["allot", "allot_always", "allot_batch", "allot_always_batch"].map(|k| s.system(k));
    let maxes = allot.iter().flatten();
    maxes
        .filter_map(|a| a.summary.allot_peak_rss_mib.map(|r| r.max))
        .reduce(f64::max)
}

impl Results {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let repeats = self.settings.get("repeats").and_then(|r| r.as_u64());
        let fraction = self
            .settings
            .get("open_loop_fraction")
            .and_then(|r| r.as_f64());
        let _ = writeln!(
            out,
            "Figures are median (min–max) over {} repeat(s), run interleaved; ratios divide medians. \
             Open loop at {:.0}% of each system's own max of the same repeat.\n",
            repeats.unwrap_or(1),
            fraction.unwrap_or(0.5) * 100.0
        );
        let batch = self.settings.get("allot_batch").and_then(|b| b.as_u64());
        let batched = self
            .scenarios
            .iter()
            .any(|s| s.system("allot_batch").is_some());
        if let Some(n) = batch.filter(|_| batched) {
            let _ = writeln!(
                out,
                "allot batched: its producer publishes {n} orders per message (`Allot-Kind: batch`, \
                 batched intake; each order still validated, deduplicated and decided on its \
                 own); allot and every baseline get one order per message, statement or call.\n"
            );
        }
        out += "### allot against each baseline (decided/s, ratio = allot ÷ baseline)\n\n";
        out += "Durability-matched: allot at nats-server defaults against raw JetStream (same \
                defaults), Redis AOF everysec and PostgreSQL `synchronous_commit=off`; allot \
                with `sync_interval: always` (marked ¹) against Redis AOF always and \
                PostgreSQL `synchronous_commit=on`.\n\n";
        out += "| scenario | allot decided/s | allot¹ decided/s | ÷ raw JetStream, per-message ack | ÷ raw JetStream, batched ack | ÷ Redis AOF everysec | ÷ Redis AOF always ¹ | ÷ PostgreSQL sync off | ÷ PostgreSQL sync on ¹ | allot peak RSS MiB (max) |\n|---|---|---|---|---|---|---|---|---|---|\n";
        for s in &self.scenarios {
            let rate = |k: &str| sp(s.system(k).and_then(|a| a.summary.per_s), 0);
            let r = &s.ratios;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.scenario.name,
                rate("allot"),
                rate("allot_always"),
                x(r.allot_over_raw_ack),
                x(r.allot_over_raw_batch_ack),
                x(r.allot_over_redis_everysec),
                x(r.allot_always_over_redis_always),
                x(r.allot_over_pg_sync_off),
                x(r.allot_always_over_pg_sync_on),
                rss_max(s).map_or("—".into(), |v| format!("{v:.0}"))
            );
        }
        out += &self.batched();
        out += "\n### Every system: maximum throughput, and latency open loop\n\n";
        out += "Latency from each order's intended send time to its durable answer \
                (allot: admission = reserved or rejected, final = confirmed or rejected, read \
                from EVENTS; a store: its one answer; raw JetStream: the consumer has the \
                message and acked it).\n\n";
        out += "| scenario | system | decided/s | open loop offered/s | admission p50 ms | admission p99 ms | final p50 ms | final p99 ms | gate passed |\n|---|---|---|---|---|---|---|---|---|\n";
        for s in &self.scenarios {
            for sys in &s.systems {
                let m = &sys.summary;
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {}/{} |",
                    s.scenario.name,
                    sys.runs.label,
                    sp(m.per_s, 0),
                    sp(m.open_rate, 0),
                    sp(m.admission_p50_ms, 2),
                    sp(m.admission_p99_ms, 2),
                    sp(m.final_p50_ms, 2),
                    sp(m.final_p99_ms, 2),
                    m.passed,
                    m.runs
                );
            }
        }
        out += "\n### CPU seconds per 1,000 decisions (max runs)\n\n";
        out += "| scenario | allot: allot serve | allot: nats-server | raw per-message ack: nats-server | raw batched ack: nats-server | nats-server allot ÷ raw per-message | nats-server allot ÷ raw batched | allot¹: allot serve | allot¹: nats-server | Redis everysec: redis-server |\n|---|---|---|---|---|---|---|---|---|---|\n";
        for s in &self.scenarios {
            let cpu = |k: &str, server: bool| {
                let m = s.system(k).map(|a| &a.summary);
                sp(
                    m.and_then(|m| {
                        if server {
                            m.server_cpu_s_per_1k
                        } else {
                            m.nats_cpu_s_per_1k
                        }
                    }),
                    4,
                )
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.scenario.name,
                cpu("allot", true),
                cpu("allot", false),
                cpu("raw_ack", false),
                cpu("raw_batch_ack", false),
                x(s.ratios.nats_cpu_allot_over_raw_ack),
                x(s.ratios.nats_cpu_allot_over_raw_batch_ack),
                cpu("allot_always", true),
                cpu("allot_always", false),
                cpu("redis_everysec", true),
            );
        }
        out += &self.carts();
        out += "\n### Targets (medians)\n\n";
        out += &self.targets();
        out += &self.failures();
        out
    }

    fn targets(&self) -> String {
        let mut out = String::from("| target | scenario | measured | met |\n|---|---|---|---|\n");
        for s in self.scenarios.iter().filter(|s| !s.scenario.carts()) {
            let name = s.scenario.name;
            let r = &s.ratios;
            let median = |k: &str, f: fn(&Summary) -> Option<Spread>| {
                s.system(k).and_then(|a| f(&a.summary)).map(|v| v.median)
            };
            let allot_cpu = median("allot", |m| m.server_cpu_s_per_1k);
            // The targets (#12); `allot¹` is allot at
            // `sync_interval: always`, matched with the durable baselines.
            let rows = [
                (
                    "allot ÷ raw JetStream, per-message ack >= 1.0",
                    r.allot_over_raw_ack,
                    1.0,
                    "x",
                ),
                (
                    "allot ÷ raw JetStream, batched ack >= 0.8",
                    r.allot_over_raw_batch_ack,
                    0.8,
                    "x",
                ),
                (
                    "allot ÷ PostgreSQL sync off >= 3",
                    r.allot_over_pg_sync_off,
                    3.0,
                    "x",
                ),
                (
                    "allot¹ ÷ PostgreSQL sync on >= 3",
                    r.allot_always_over_pg_sync_on,
                    3.0,
                    "x",
                ),
                (
                    "allot ÷ Redis AOF everysec >= 0.5",
                    r.allot_over_redis_everysec,
                    0.5,
                    "x",
                ),
                (
                    "allot¹ ÷ Redis AOF always >= 0.5",
                    r.allot_always_over_redis_always,
                    0.5,
                    "x",
                ),
                (
                    "allot batched ÷ Redis AOF everysec >= 0.5",
                    r.allot_batch_over_redis_everysec,
                    0.5,
                    "x",
                ),
                (
                    "allot¹ batched ÷ Redis AOF always >= 0.5",
                    r.allot_always_batch_over_redis_always,
                    0.5,
                    "x",
                ),
                (
                    "admission p99 < 10 ms at 50% of max",
                    median("allot", |m| m.admission_p99_ms),
                    10.0,
                    " ms",
                ),
                (
                    "final p99 < 15 ms at 50% of max",
                    median("allot", |m| m.final_p99_ms),
                    15.0,
                    " ms",
                ),
                (
                    "admission p99 allot ÷ raw JetStream <= 2",
                    r.admission_p99_allot_over_raw_ack,
                    2.0,
                    "x max",
                ),
                (
                    "allot CPU <= 0.008 s per 1,000 decisions",
                    allot_cpu,
                    0.008,
                    " s",
                ),
                (
                    "nats-server CPU allot ÷ raw per-message <= 1.3",
                    r.nats_cpu_allot_over_raw_ack,
                    1.3,
                    "x max",
                ),
            ];
            for (what, measured, goal, unit) in rows {
                target(&mut out, what, name, measured, goal, unit);
            }
            if name == "hot_sku" {
                let what = "allot ÷ PostgreSQL sync off, contended phase >= 5";
                target(
                    &mut out,
                    what,
                    name,
                    r.allot_over_pg_sync_off_contended,
                    5.0,
                    "x",
                );
            }
            if name == "big_sale" {
                target(
                    &mut out,
                    "allot peak RSS <= 256 MiB",
                    name,
                    rss_max(s),
                    256.0,
                    " MiB",
                );
            }
        }
        let find = |n: &str| self.scenarios.iter().find(|s| s.scenario.name == n);
        let rate = |s: &ScenarioResult| s.system("allot")?.summary.per_s.map(|v| v.median);
        if let Some(hot) = find("hot_sku").and_then(rate).filter(|r| *r > 0.0) {
            for (name, goal) in [("1k_skus_x4_warehouses", 0.8), ("10k_skus", 0.7)] {
                let r = find(name).and_then(rate).map(|r| r / hot);
                let what = format!("{name} >= {goal} of hot-SKU throughput");
                target(&mut out, &what, name, r, goal, "x");
            }
        }
        if let Some(carts) = find("carts") {
            let what = "carts: lines decided/s >= 0.5 of 1k_skus_x4_warehouses orders/s";
            let ratio = self.lines_over_single(carts);
            target(&mut out, what, "carts", ratio, 0.5, "x");
        }
        out
    }

    /// Every run that failed its gate, with what was wrong.
    fn failures(&self) -> String {
        let mut out = String::new();
        for s in &self.scenarios {
            for sys in &s.systems {
                for run in sys.runs.max.iter().chain(&sys.runs.open) {
                    if !run.gate.passed() {
                        let _ = writeln!(
                            out,
                            "- {} / {} / repeat {} / {}: {}",
                            s.scenario.name,
                            sys.runs.label,
                            run.repeat,
                            run.mode,
                            run.gate.summary()
                        );
                    }
                }
            }
        }
        if out.is_empty() {
            "\nEvery run passed its gate.\n".into()
        } else {
            format!("\n### Runs that failed the gate (no speed reported)\n\n{out}")
        }
    }
}
