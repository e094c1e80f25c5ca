//! The bench's results: one JSON document and the markdown tables that
//! BENCHMARKS.md quotes, with each target of issue 5 as met or not.

use serde::Serialize;

use crate::closed_loop::StoreRun;
use crate::run_allot::AllotRun;
use crate::run_raw::RawRun;
use crate::workload::Scenario;

/// Everything measured for one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    /// `/proc/loadavg`'s 1, 5 and 15 minute figures before and after.
    pub load_before: String,
    pub load_after: String,
    pub allot_max: AllotRun,
    pub allot_open: Option<AllotRun>,
    pub raw: Option<RawRun>,
    pub stores: Vec<StoreRun>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub date: String,
    pub settings: serde_json::Value,
    pub scenarios: Vec<ScenarioResult>,
}

fn rate(r: Option<f64>) -> String {
    r.map_or("—".into(), |v| format!("{v:.0}"))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn x(r: Option<f64>) -> String {
    r.map_or("—".into(), |v| format!("{v:.2}x"))
}

fn ms(l: Option<crate::stats::Latency>) -> String {
    l.map_or("—".into(), |l| {
        format!("{:.2} / {:.2} / {:.2}", l.p50_ms, l.p99_ms, l.p999_ms)
    })
}

impl Results {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out += "### allot, maximum throughput\n\n";
        out += "| scenario | decided/s | contended/s | sold-out/s | admission p50 / p99 / p999 ms | final p50 / p99 / p999 ms | allot CPU s / 1k | nats CPU s / 1k | allot peak RSS MiB | gate | load before → after |\n|---|---|---|---|---|---|---|---|---|---|---|\n";
        for s in &self.scenarios {
            let a = &s.allot_max;
            let t = a.throughput;
            out += &format!(
                "| {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {:.0} | {} | {} → {} |\n",
                s.scenario.name,
                rate(t.map(|t| t.per_s)),
                rate(t.map(|t| t.contended_per_s)),
                rate(t.map(|t| t.sold_out_per_s)),
                ms(a.admission),
                ms(a.final_decision),
                a.allot_cpu_s_per_1k,
                a.nats_cpu_s_per_1k,
                a.allot_peak_rss_mib,
                a.gate.summary(),
                s.load_before,
                s.load_after
            );
        }
        out += "\n### allot, open loop (latency from each order's intended send time)\n\n";
        out += "| scenario | offered/s | decided/s | admission p50 / p99 / p999 ms | final p50 / p99 / p999 ms | gate |\n|---|---|---|---|---|---|\n";
        for s in &self.scenarios {
            if let Some(a) = &s.allot_open {
                out += &format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    s.scenario.name,
                    rate(a.target_rate),
                    rate(a.throughput.map(|t| t.per_s)),
                    ms(a.admission),
                    ms(a.final_decision),
                    a.gate.summary()
                );
            }
        }
        out += "\n### Baselines (ratio = allot / baseline)\n\n";
        out += "| scenario | system | orders/s | contended/s | sold-out/s | p50 / p99 / p999 ms | allot / it | allot / it, contended | gate |\n|---|---|---|---|---|---|---|---|---|\n";
        for s in &self.scenarios {
            let allot = s.allot_max.throughput;
            if let Some(raw) = &s.raw {
                let t = raw.throughput;
                out += &format!(
                    "| {} | raw JetStream | {} | — | — | — | {} | — | {} |\n",
                    s.scenario.name,
                    rate(t.map(|t| t.per_s)),
                    x(ratio(allot.map(|a| a.per_s), t.map(|t| t.per_s))),
                    raw.gate.summary()
                );
            }
            for b in &s.stores {
                let t = b.throughput;
                out += &format!(
                    "| {} | {} ({} clients) | {} | {} | {} | {} | {} | {} | {} |\n",
                    s.scenario.name,
                    b.system,
                    b.clients,
                    rate(t.map(|t| t.per_s)),
                    rate(t.map(|t| t.contended_per_s)),
                    rate(t.map(|t| t.sold_out_per_s)),
                    ms(b.latency),
                    x(ratio(allot.map(|a| a.per_s), t.map(|t| t.per_s))),
                    x(ratio(
                        allot.map(|a| a.contended_per_s),
                        t.map(|t| t.contended_per_s)
                    )),
                    b.gate.summary()
                );
            }
        }
        out += "\n### Targets\n\n";
        out += &self.targets();
        out
    }

    fn targets(&self) -> String {
        let mut out = String::from("| target | scenario | measured | met |\n|---|---|---|---|\n");
        let mut row = |name: &str,
                       scenario: &str,
                       measured: Option<f64>,
                       goal: f64,
                       unit: &str,
                       lower_is_better: bool| {
            let met = measured.map(|m| if lower_is_better { m < goal } else { m >= goal });
            out += &format!(
                "| {name} | {scenario} | {} | {} |\n",
                measured.map_or("—".into(), |m| format!("{m:.2}{unit}")),
                match met {
                    Some(true) => "met",
                    Some(false) => "**not met**",
                    None => "not measured",
                }
            );
        };
        for s in &self.scenarios {
            let name = s.scenario.name;
            let allot = s.allot_max.throughput;
            let raw = s.raw.as_ref().and_then(|r| r.throughput);
            row(
                "allot / raw JetStream >= 0.6 (stretch 0.8)",
                name,
                ratio(allot.map(|a| a.per_s), raw.map(|r| r.per_s)),
                0.6,
                "x",
                false,
            );
            for b in &s.stores {
                let t = b.throughput;
                let (goal, what, contended) = match b.system.as_str() {
                    "PostgreSQL" => (20.0, "allot / PostgreSQL, contended phase >= 20", true),
                    "Redis AOF everysec" => (0.5, "allot / Redis AOF everysec >= 0.5", false),
                    _ => (1.0, "allot / Redis AOF always >= 1", false),
                };
                let measured = if contended {
                    ratio(
                        allot.map(|a| a.contended_per_s),
                        t.map(|t| t.contended_per_s),
                    )
                } else {
                    ratio(allot.map(|a| a.per_s), t.map(|t| t.per_s))
                };
                row(what, name, measured, goal, "x", false);
            }
            if let Some(open) = &s.allot_open {
                row(
                    "admission p99 < 10 ms at 50% of max rate",
                    name,
                    open.admission.map(|l| l.p99_ms),
                    10.0,
                    " ms",
                    true,
                );
                row(
                    "final-decision p99 < 10 ms at 50% of max rate",
                    name,
                    open.final_decision.map(|l| l.p99_ms),
                    10.0,
                    " ms",
                    true,
                );
            }
        }
        let hot = self.scenarios.iter().find(|s| s.scenario.name == "hot_sku");
        let k1 = self
            .scenarios
            .iter()
            .find(|s| s.scenario.name == "1k_skus_x4_warehouses");
        if let (Some(hot), Some(k1)) = (hot, k1) {
            let r = ratio(
                k1.allot_max.throughput.map(|t| t.per_s),
                hot.allot_max.throughput.map(|t| t.per_s),
            );
            row(
                "1,000 SKUs >= 0.8 of hot-SKU throughput",
                "1k_skus_x4_warehouses",
                r,
                0.8,
                "x",
                false,
            );
        }
        out
    }
}
