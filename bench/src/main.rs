//! `allot-bench`: issue 5's end-to-end benchmark, with fair baselines. For
//! each scenario it runs every system on the same order list, at two
//! durability settings each: allot (a separate `allot serve` on its own
//! nats-server, at the server's default fsync and with `sync_interval:
//! always`; one order per message, and batched: `--allot-batch` per
//! message), raw JetStream on allot's intake shape (per-message and batched
//! acks), PostgreSQL (one autocommit statement per order, sync commit off
//! and on) and Redis (pipelined Lua, AOF everysec and always). Every system
//! runs at its maximum and then open loop at half of it, repeated and
//! interleaved, and passes the same gate. Results go to
//! `<out>/results.json` and `<out>/results.md`; `scripts/bench.sh` starts
//! the databases and draws the charts.
//!
//! # Layout
//!
//! - `workload`: the scenarios and their order lists.
//! - `procs`: nats-server and `allot serve` child processes, `/proc` usage.
//! - `publish`: sends orders to JetStream, max or at a constant rate.
//! - `follow`: reads allot's decisions back from EVENTS, timed and audited.
//! - `run_allot`, `run_raw`: the allot and raw JetStream runs.
//! - `drive`, `pg`, `redis_lua`: the database baselines.
//! - `systems`: the systems and the interleaved repeats.
//! - `gate`: the correctness gate every system shares.
//! - `stats`, `report`, `report_md`, `report_more`: figures, JSON and
//!   markdown (`report_more`: the carts and batched-intake tables).
#![forbid(unsafe_code)]

mod drive;
mod follow;
mod gate;
mod pg;
mod procs;
mod publish;
mod redis_lua;
mod report;
mod report_md;
mod report_more;
mod run_allot;
mod run_raw;
mod stats;
mod systems;
mod workload;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

use crate::procs::AllotSpec;
use crate::redis_lua::Pipelining;
use crate::report::{Results, ScenarioResult};
use crate::systems::{load_average, Bench, System};
use crate::workload::{Scenario, Workload, NAMES};

#[derive(Parser, Debug, serde::Serialize)]
#[command(about = "allot end to end against raw JetStream, PostgreSQL and Redis")]
struct Args {
    /// Orders in every scenario (smoke runs); default: the full
    /// size, 200,000 (1,000,000 in big_sale).
    #[arg(long)]
    orders: Option<u64>,
    /// Orders in each open-loop latency run (default: half of the
    /// scenario's orders, at most 100,000).
    #[arg(long)]
    latency_orders: Option<u64>,
    /// Times each system runs (max and open loop), interleaved.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Open-loop rate as a fraction of each system's own max rate, measured
    /// in the same repeat.
    #[arg(long, default_value_t = 0.5)]
    open_loop_fraction: f64,
    /// Only these scenarios (comma-separated names); default all four.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Only these systems (comma-separated: allot, allot_always,
    /// allot_batch, allot_always_batch, raw_ack,
    /// raw_batch_ack, pg_sync_off, pg_sync_on, redis_everysec,
    /// redis_always); default all that have a server.
    #[arg(long, value_delimiter = ',')]
    systems: Vec<String>,
    #[arg(long, default_value = "target/release/allot")]
    allot: PathBuf,
    #[arg(long, default_value = "nats-server")]
    nats_server: PathBuf,
    /// nats-server nodes per run: 1, or a loopback cluster (allot with
    /// R3 streams; allot systems only) for the capacity check.
    #[arg(long, default_value_t = 1)]
    nats_nodes: usize,
    #[arg(long, default_value = "config/bench.toml")]
    config: PathBuf,
    /// Simulated fulfiller's median and p99 latency, and failure share.
    #[arg(long, default_value = "2ms")]
    latency_p50: String,
    #[arg(long, default_value = "10ms")]
    latency_p99: String,
    #[arg(long, default_value_t = 0.01)]
    failure_rate: f64,
    /// Orders per message of the batched allot systems (allot_batch,
    /// allot_always_batch: allot's batched intake, `Allot-Kind: batch`).
    /// allot itself and every baseline get one order per message,
    /// statement or call; carts are never batched.
    #[arg(long, default_value_t = 64)]
    allot_batch: usize,
    /// PostgreSQL connection string; the baseline is skipped without it.
    #[arg(long)]
    pg: Option<String>,
    /// Redis URL of a server with AOF on; skipped without it.
    #[arg(long)]
    redis: Option<String>,
    /// PostgreSQL client connections (one statement in flight each).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Redis connections, each in its own task.
    #[arg(long, default_value_t = 8)]
    redis_connections: usize,
    /// Pipelined EVALSHA calls in flight on each Redis connection.
    #[arg(long, default_value_t = 512)]
    redis_pipeline: usize,
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
    anyhow::ensure!(args.repeats >= 1, "--repeats must be at least 1");
    let bench = bench(&args)?;
    let scenarios: Vec<Scenario> = Scenario::all(args.orders)
        .into_iter()
        .filter(|s| args.scenarios.is_empty() || args.scenarios.iter().any(|n| n == s.name))
        .collect();
    anyhow::ensure!(
        !scenarios.is_empty(),
        "--scenarios {:?} names none of {NAMES:?}",
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
            let full = Workload::build(scenario, args.seed)?;
            let open_n = args
                .latency_orders
                .unwrap_or((scenario.orders / 2).min(100_000))
                .max(1);
            let open = full.truncated(open_n as usize);
            let before = load_average();
            let runs = bench.scenario(full, open).await;
            results.scenarios.push(ScenarioResult::new(
                scenario.clone(),
                open_n.min(scenario.orders),
                (before, load_average()),
                runs,
            ));
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

/// The systems to run (those named, with a server) and how.
fn bench(args: &Args) -> anyhow::Result<Bench> {
    let mut systems = Vec::new();
    for key in &args.systems {
        systems.push(System::by_key(key).with_context(|| format!("no system named {key:?}"))?);
    }
    if systems.is_empty() {
        systems = System::ALL.to_vec();
    }
    systems.retain(|s| match s {
        System::Pg { .. } if args.pg.is_none() => {
            eprintln!("skipping {}: no --pg", s.label());
            false
        }
        System::Redis { .. } if args.redis.is_none() => {
            eprintln!("skipping {}: no --redis", s.label());
            false
        }
        _ => true,
    });
    anyhow::ensure!(
        args.nats_nodes <= 1
            || systems
                .iter()
                .all(|s| matches!(s, System::Allot(_) | System::AllotBatched(_))),
        "--nats-nodes {} runs the allot systems only (allot, allot_always, allot_batch, allot_always_batch)",
        args.nats_nodes
    );
    Ok(Bench {
        nats_server: args.nats_server.clone(),
        config: args.config.clone(),
        allot: AllotSpec {
            binary: args.allot.clone(),
            config: args.config.clone(),
            latency_p50: args.latency_p50.clone(),
            latency_p99: args.latency_p99.clone(),
            failure_rate: args.failure_rate,
            batch: 1,
            nats_nodes: args.nats_nodes.max(1),
        },
        batch: args.allot_batch.max(1),
        pg: args.pg.clone(),
        redis_url: args.redis.clone(),
        pg_clients: args.clients,
        redis_pipelining: Pipelining {
            connections: args.redis_connections.max(1),
            depth: args.redis_pipeline.max(1),
        },
        open_fraction: args.open_loop_fraction,
        repeats: args.repeats,
        systems,
    })
}

fn write(args: &Args, results: &Results) -> anyhow::Result<()> {
    let json = args.out.join("results.json");
    std::fs::write(&json, serde_json::to_string_pretty(results)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let md = args.out.join("results.md");
    std::fs::write(&md, results.markdown()).with_context(|| format!("writing {}", md.display()))?;
    Ok(())
}
