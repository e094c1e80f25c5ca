//! allot's goose load test: orders at `POST /v1/orders` (scenario "http")
//! and orders published to JetStream (scenario "nats"), against a running
//! `allot serve`. Before goose starts its users, stock is set on every
//! partition over HTTP so orders are confirmed. The run fails (exit 1) when a
//! threshold does (see `thresholds.rs`).
//!
//! ```text
//! cargo run --release -p allot-loadtest -- --host http://127.0.0.1:8080 \
//!     --nats-url nats://127.0.0.1:4222 --users 32 --increase-rate 32 \
//!     --run-time 30s --scenarios http,nats --p95-ms 50 --max-error-rate 0.01
//! ```
//!
//! Every goose option works (`--help`); the allot options come last in it.
//! `scripts/loadtest.sh` starts nats-server and allot and runs both.
//!
//! # Layout
//! - `workload`: partitions, unique ids, invalid orders.
//! - `stock`: the stock set before the run.
//! - `http`, `nats`: the two scenarios.
//! - `thresholds`: the pass/fail rules and their report.

#![forbid(unsafe_code)]

mod http;
mod nats;
mod stock;
mod thresholds;
mod workload;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, bail};
use clap::Parser;
use goose::config::GooseConfiguration;
use goose::prelude::*;

use thresholds::ThresholdArgs;
use workload::{Workload, WorkloadArgs};

/// goose's command line with allot's options added.
#[derive(Parser)]
#[command(
    name = "allot-loadtest",
    about = "Load test a running allot over HTTP and NATS"
)]
struct Cli {
    #[command(flatten)]
    goose: GooseConfiguration,
    /// NATS server allot uses; needed by the "nats" scenario, which is left
    /// out without it.
    #[arg(long, env = "ALLOT_LOADTEST_NATS_URL", help_heading = "allot")]
    nats_url: Option<String>,
    #[command(flatten, next_help_heading = "allot")]
    workload: WorkloadArgs,
    #[command(flatten, next_help_heading = "allot")]
    limits: ThresholdArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let Some(host) = cli.goose.host.clone() else {
        bail!("--host is required: allot's HTTP API, e.g. http://127.0.0.1:8080 (stock is set over it for either scenario)");
    };
    let workload = Arc::new(Workload::new(&cli.workload)?);
    let wants_nats = cli.goose.scenarios.as_ref().is_some_and(|s| {
        s.active
            .iter()
            .any(|name| name.eq_ignore_ascii_case("nats"))
    });
    if wants_nats && cli.nats_url.is_none() {
        bail!("--scenarios names nats but --nats-url is not set: name the NATS server allot uses");
    }

    let hot_stock = cli.workload.hot_stock;
    stock::set_stock(&host, workload.partitions(), cli.workload.stock, hot_stock).await?;
    println!(
        "stock {} set on {} partitions at {host}",
        cli.workload.stock,
        workload.partitions().len()
    );

    let mut attack = GooseAttack::initialize_with_config(cli.goose)?
        .register_scenario(http::scenario(Arc::clone(&workload)));
    if let Some(url) = cli.nats_url {
        attack = attack.register_scenario(nats::scenario(Arc::clone(&workload), url.into()));
    }
    let attack = cli.limits.apply(attack)?;
    let hot = workload.partitions()[0].clone();
    match attack.execute().await {
        Ok(metrics) => {
            thresholds::print(&metrics.thresholds);
            if let Some(units) = hot_stock {
                if let Err(e) = stock::check_sold_out(&host, &hot, units).await {
                    eprintln!("{e:#}");
                    return Ok(ExitCode::FAILURE);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(GooseError::ThresholdsFailed { metrics, .. }) => {
            thresholds::print(&metrics.thresholds);
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(anyhow!("load test: {e}")),
    }
}
