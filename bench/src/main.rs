//! `allot-bench`: issue 5's end-to-end benchmark. For each scenario it runs
//! allot (a separate `allot serve` process on its own nats-server) at
//! maximum throughput and then open loop at a fraction of that rate, then
//! the baselines on the same order list: raw JetStream, PostgreSQL, and
//! Redis with AOF everysec and always. Results go to `<out>/results.json`
//! and `<out>/results.md`. `scripts/bench.sh` starts the databases and
//! draws the charts.
//!
//! # Layout
//!
//! - `workload`: the scenarios and their order lists.
//! - `procs`: nats-server and `allot serve` child processes, `/proc` usage.
//! - `publish`: sends orders to JetStream, max or at a constant rate.
//! - `follow`: reads decisions back from EVENTS, timed and audited.
//! - `run_allot`, `run_raw`: the allot and raw JetStream runs.
//! - `closed_loop`, `pg`, `redis_lua`: the database baselines.
//! - `stats`, `report`: figures, the gate, JSON and markdown.
#![forbid(unsafe_code)]

mod closed_loop;
mod follow;
mod pg;
mod procs;
mod publish;
mod redis_lua;
mod report;
mod run_allot;
mod run_raw;
mod stats;
mod workload;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

use crate::procs::AllotSpec;
use crate::publish::Pace;
use crate::report::{Results, ScenarioResult};
use crate::workload::{Scenario, Workload};

#[derive(Parser, Debug, serde::Serialize)]
#[command(about = "allot end to end against raw JetStream, PostgreSQL and Redis")]
struct Args {
    /// Orders per scenario (the full run: 200000).
    #[arg(long, default_value_t = 200_000)]
    orders: u64,
    /// Orders in each open-loop latency run (default: half of --orders).
    #[arg(long)]
    latency_orders: Option<u64>,
    /// Open-loop rate as a fraction of the scenario's measured max rate.
    #[arg(long, default_value_t = 0.5)]
    open_loop_fraction: f64,
    /// Only these scenarios (comma-separated names); default all three.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    #[arg(long, default_value = "target/release/allot")]
    allot: PathBuf,
    #[arg(long, default_value = "nats-server")]
    nats_server: PathBuf,
    #[arg(long, default_value = "config/bench.toml")]
    config: PathBuf,
    /// Simulated fulfiller's median and p99 latency, and failure share.
    #[arg(long, default_value = "2ms")]
    latency_p50: String,
    #[arg(long, default_value = "10ms")]
    latency_p99: String,
    #[arg(long, default_value_t = 0.01)]
    failure_rate: f64,
    /// PostgreSQL connection string; the baseline is skipped without it.
    #[arg(long)]
    pg: Option<String>,
    /// Redis URL of a server with AOF on; skipped without it.
    #[arg(long)]
    redis: Option<String>,
    /// Concurrent clients of each database baseline.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    #[arg(long, default_value_t = 5)]
    seed: u64,
    /// Where results.json and results.md go.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
    /// Today's date for the report (the script passes `date -u`).
    #[arg(long, default_value = "")]
    date: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.allot.exists(),
        "no allot binary at {} (build it: cargo build --release --bin allot)",
        args.allot.display()
    );
    anyhow::ensure!(
        args.open_loop_fraction > 0.0 && args.open_loop_fraction <= 1.0,
        "--open-loop-fraction {} must be in (0, 1]",
        args.open_loop_fraction
    );
    let spec = AllotSpec {
        binary: args.allot.clone(),
        config: args.config.clone(),
        latency_p50: args.latency_p50.clone(),
        latency_p99: args.latency_p99.clone(),
        failure_rate: args.failure_rate,
    };
    let scenarios: Vec<Scenario> = Scenario::all(args.orders)
        .into_iter()
        .filter(|s| args.scenarios.is_empty() || args.scenarios.iter().any(|n| n == s.name))
        .collect();
    anyhow::ensure!(
        !scenarios.is_empty(),
        "--scenarios {:?} names none of hot_sku, 1k_skus_x4_warehouses, 10k_skus",
        args.scenarios
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut results = Results {
        date: args.date.clone(),
        settings: serde_json::to_value(&args)?,
        scenarios: vec![],
    };
    let all = async {
        for scenario in &scenarios {
            let result = run_scenario(&args, &spec, scenario).await?;
            results.scenarios.push(result);
            write(&args, &results)?;
        }
        anyhow::Ok(())
    };
    // On Ctrl-C or SIGTERM, dropping the run stops the servers it started.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        done = all => done?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
        _ = term.recv() => anyhow::bail!("terminated"),
    }
    println!("{}", results.markdown());
    Ok(())
}

async fn run_scenario(
    args: &Args,
    spec: &AllotSpec,
    scenario: &Scenario,
) -> anyhow::Result<ScenarioResult> {
    let name = scenario.name;
    let workload = Workload::build(scenario, args.seed)?;
    let load_before = load_average();
    eprintln!("[{name}] allot, max throughput, {} orders", scenario.orders);
    let allot_max = run_allot::run(&args.nats_server, spec, &workload, Pace::Max).await?;
    eprintln!("[{name}]   {}", summary(&allot_max));
    let allot_open = match allot_max.throughput {
        Some(t) => {
            let per_sec = t.per_s * args.open_loop_fraction;
            let n = args.latency_orders.unwrap_or(args.orders / 2) as usize;
            eprintln!("[{name}] allot, open loop at {per_sec:.0}/s, {n} orders");
            let run = run_allot::run(
                &args.nats_server,
                spec,
                &workload.truncated(n),
                Pace::Rate { per_sec },
            )
            .await?;
            eprintln!("[{name}]   {}", summary(&run));
            Some(run)
        }
        None => None,
    };
    eprintln!("[{name}] raw JetStream");
    let raw = run_raw::run(&args.nats_server, &args.config, &workload).await?;
    eprintln!(
        "[{name}]   {:?} {}",
        raw.throughput.map(|t| t.per_s),
        raw.gate.summary()
    );
    let mut stores = Vec::new();
    if let Some(pg) = &args.pg {
        eprintln!("[{name}] PostgreSQL, {} clients", args.clients);
        let run = pg::run(pg, &workload, args.clients).await?;
        eprintln!("[{name}]   {:?} {}", run.throughput, run.gate.summary());
        stores.push(run);
    }
    if let Some(redis) = &args.redis {
        for fsync in ["everysec", "always"] {
            eprintln!("[{name}] Redis AOF {fsync}, {} clients", args.clients);
            let run = redis_lua::run(redis, fsync, &workload, args.clients).await?;
            eprintln!("[{name}]   {:?} {}", run.throughput, run.gate.summary());
            stores.push(run);
        }
    }
    Ok(ScenarioResult {
        scenario: scenario.clone(),
        load_before,
        load_after: load_average(),
        allot_max,
        allot_open,
        raw: Some(raw),
        stores,
    })
}

/// The 1, 5 and 15 minute load averages: the machine is shared, and the
/// figures mean little when it is busy.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

fn summary(run: &run_allot::AllotRun) -> String {
    format!(
        "{}: {:.0} decided/s, admission p99 {:.2} ms, {}",
        run.mode,
        run.throughput.map_or(0.0, |t| t.per_s),
        run.admission.map_or(f64::NAN, |l| l.p99_ms),
        run.gate.summary()
    )
}

fn write(args: &Args, results: &Results) -> anyhow::Result<()> {
    let json = args.out.join("results.json");
    std::fs::write(&json, serde_json::to_string_pretty(results)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let md = args.out.join("results.md");
    std::fs::write(&md, results.markdown()).with_context(|| format!("writing {}", md.display()))?;
    Ok(())
}
