//! The bench's results: every run, each system's min / median / max over
//! the repeats, and the ratios the issue asks for, taken from medians.
//! Serialised as results.json; `report_md` renders the markdown tables.

use serde::Serialize;

use crate::stats::{Latency, Run, Spread};
use crate::systems::SystemRuns;
use crate::workload::Scenario;

#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub date: String,
    pub settings: serde_json::Value,
    pub scenarios: Vec<ScenarioResult>,
}

/// Everything measured for one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    /// Orders in each open-loop run.
    pub open_loop_orders: u64,
    /// `/proc/loadavg`'s 1, 5 and 15 minute figures before and after.
    pub load_before: String,
    pub load_after: String,
    pub systems: Vec<SystemResult>,
    pub ratios: Ratios,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemResult {
    #[serde(flatten)]
    pub runs: SystemRuns,
    pub summary: Summary,
}

/// One system's figures over its repeats. Speeds and latencies count only
/// runs that passed the gate; CPU comes from the max runs.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Runs (max and open loop) and how many passed the gate.
    pub runs: usize,
    pub passed: usize,
    pub per_s: Option<Spread>,
    pub contended_per_s: Option<Spread>,
    /// Open loop: offered rate, and latency from intended send time.
    pub open_rate: Option<Spread>,
    pub admission_p50_ms: Option<Spread>,
    pub admission_p99_ms: Option<Spread>,
    pub final_p50_ms: Option<Spread>,
    pub final_p99_ms: Option<Spread>,
    pub server_cpu_s_per_1k: Option<Spread>,
    pub nats_cpu_s_per_1k: Option<Spread>,
    /// Over every run, max and open loop.
    pub allot_peak_rss_mib: Option<Spread>,
}

impl Summary {
    pub fn of(runs: &SystemRuns) -> Summary {
        let all = || runs.max.iter().chain(&runs.open);
        let passed = || runs.max.iter().filter(|r| r.gate.passed());
        let max_of = |f: fn(&Run) -> Option<f64>| Spread::of(passed().filter_map(f));
        let open_of = |f: fn(Latency) -> f64, final_: bool| {
            Spread::of(runs.open.iter().filter_map(|r| {
                let l = if final_ {
                    r.final_decision
                } else {
                    r.admission
                };
                l.map(f)
            }))
        };
        Summary {
            runs: all().count(),
            passed: all().filter(|r| r.gate.passed()).count(),
            per_s: max_of(|r| r.per_s()),
            contended_per_s: max_of(|r| r.throughput.map(|t| t.contended_per_s)),
            open_rate: Spread::of(runs.open.iter().filter_map(|r| r.target_rate)),
            admission_p50_ms: open_of(|l| l.p50_ms, false),
            admission_p99_ms: open_of(|l| l.p99_ms, false),
            final_p50_ms: open_of(|l| l.p50_ms, true),
            final_p99_ms: open_of(|l| l.p99_ms, true),
            server_cpu_s_per_1k: max_of(|r| r.server_cpu_s_per_1k),
            nats_cpu_s_per_1k: max_of(|r| r.nats_cpu_s_per_1k),
            allot_peak_rss_mib: Spread::of(all().filter_map(|r| r.allot_peak_rss_mib)),
        }
    }
}

/// The ratios, median over median. allot at nats defaults is held
/// against the baselines with comparable durability (raw JetStream at the
/// same defaults, Redis everysec, PostgreSQL `synchronous_commit=off`);
/// allot with `sync_interval: always` against those that fsync before they
/// answer (Redis always, PostgreSQL `synchronous_commit=on`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ratios {
    pub allot_over_raw_ack: Option<f64>,
    pub allot_over_raw_batch_ack: Option<f64>,
    pub allot_over_redis_everysec: Option<f64>,
    pub allot_always_over_redis_always: Option<f64>,
    pub allot_over_pg_sync_off: Option<f64>,
    pub allot_always_over_pg_sync_on: Option<f64>,
    /// The same, counting only the contended phase (until the last unit).
    pub allot_over_pg_sync_off_contended: Option<f64>,
    /// nats-server CPU per 1,000 decisions, allot's run over raw's.
    pub nats_cpu_allot_over_raw_ack: Option<f64>,
    pub nats_cpu_allot_over_raw_batch_ack: Option<f64>,
    /// allot's batched intake (N orders per message) against the same.
    pub allot_batch_over_raw_ack: Option<f64>,
    pub allot_batch_over_redis_everysec: Option<f64>,
    pub allot_always_batch_over_redis_always: Option<f64>,
    pub allot_batch_over_pg_sync_off: Option<f64>,
    /// Open-loop p99, allot over raw JetStream (publish to consumer).
    pub admission_p99_allot_over_raw_ack: Option<f64>,
    pub final_p99_allot_over_raw_ack: Option<f64>,
}

impl ScenarioResult {
    pub fn new(
        scenario: Scenario,
        open_loop_orders: u64,
        (load_before, load_after): (String, String),
        runs: Vec<SystemRuns>,
    ) -> ScenarioResult {
        let systems: Vec<SystemResult> = runs
            .into_iter()
            .map(|runs| SystemResult {
                summary: Summary::of(&runs),
                runs,
            })
            .collect();
        let ratios = Ratios::of(&systems);
        ScenarioResult {
            scenario,
            open_loop_orders,
            load_before,
            load_after,
            systems,
            ratios,
        }
    }

    pub fn system(&self, key: &str) -> Option<&SystemResult> {
        self.systems.iter().find(|s| s.runs.key == key)
    }
}

impl Ratios {
    fn of(systems: &[SystemResult]) -> Ratios {
        let median = |key: &str, f: fn(&Summary) -> Option<Spread>| {
            let s = systems.iter().find(|s| s.runs.key == key)?;
            f(&s.summary).map(|s| s.median)
        };
        let ratio = |a: &str, b: &str, f: fn(&Summary) -> Option<Spread>| match (
            median(a, f),
            median(b, f),
        ) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let rate = |s: &Summary| s.per_s;
        let nats = |s: &Summary| s.nats_cpu_s_per_1k;
        Ratios {
            allot_over_raw_ack: ratio("allot", "raw_ack", rate),
            allot_over_raw_batch_ack: ratio("allot", "raw_batch_ack", rate),
            allot_over_redis_everysec: ratio("allot", "redis_everysec", rate),
            allot_always_over_redis_always: ratio("allot_always", "redis_always", rate),
            allot_over_pg_sync_off: ratio("allot", "pg_sync_off", rate),
            allot_always_over_pg_sync_on: ratio("allot_always", "pg_sync_on", rate),
            allot_over_pg_sync_off_contended: ratio("allot", "pg_sync_off", |s| s.contended_per_s),
            nats_cpu_allot_over_raw_ack: ratio("allot", "raw_ack", nats),
            nats_cpu_allot_over_raw_batch_ack: ratio("allot", "raw_batch_ack", nats),
            admission_p99_allot_over_raw_ack: ratio("allot", "raw_ack", |s| s.admission_p99_ms),
            final_p99_allot_over_raw_ack: ratio("allot", "raw_ack", |s| s.final_p99_ms),
            allot_batch_over_raw_ack: ratio("allot_batch", "raw_ack", rate),
            allot_batch_over_redis_everysec: ratio("allot_batch", "redis_everysec", rate),
            allot_always_batch_over_redis_always: ratio("allot_always_batch", "redis_always", rate),
            allot_batch_over_pg_sync_off: ratio("allot_batch", "pg_sync_off", rate),
        }
    }
}
