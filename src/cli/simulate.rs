//! `allot simulate`: a deterministic flash sale on the in-memory ports.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use allot::ports::Latency;
use allot::sim::{self, SimOptions};

use super::ConfigArgs;

#[derive(clap::Args)]
pub struct SimArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Unique orders to submit.
    #[arg(long, default_value_t = SimOptions::default().orders)]
    orders: u64,
    /// Regular SKUs (popularity follows a Zipf law).
    #[arg(long, default_value_t = SimOptions::default().skus)]
    skus: u32,
    /// Pre-order SKUs `PRE-n` (the default config backorders them).
    #[arg(long, default_value_t = SimOptions::default().preorder_skus)]
    preorder_skus: u32,
    /// Units per (warehouse, SKU) at the start.
    #[arg(long, default_value_t = SimOptions::default().stock)]
    stock: u64,
    /// Units added to every partition once, a minute after the last order.
    #[arg(long, default_value_t = SimOptions::default().restock)]
    restock: u64,
    /// Order arrivals per second (virtual time).
    #[arg(long, default_value_t = SimOptions::default().rate)]
    rate: f64,
    /// Median worker latency, e.g. 20ms.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20ms")]
    latency_p50: Duration,
    /// 99th percentile worker latency.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "200ms")]
    latency_p99: Duration,
    /// Share of enactments that fail, 0..1.
    #[arg(long, default_value_t = SimOptions::default().failure_rate)]
    failure_rate: f64,
    /// Share of failures that are retryable, 0..1.
    #[arg(long, default_value_t = SimOptions::default().retryable_share)]
    retryable_share: f64,
    /// Share of orders a producer sends twice, 0..1.
    #[arg(long, default_value_t = SimOptions::default().duplicate_rate)]
    duplicate_rate: f64,
    /// Share of arrivals that are carts of 1-5 lines, 0..1 (every fifth
    /// partial, every fifth held: half paid, half expire).
    #[arg(long, default_value_t = SimOptions::default().carts)]
    carts: f64,
    /// Time for a log append to become durable.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2ms")]
    append_latency: Duration,
    #[arg(long, default_value_t = SimOptions::default().seed)]
    seed: u64,
}

pub fn run(a: SimArgs) -> anyhow::Result<ExitCode> {
    let config = a.config.load().context("loading the config")?;
    for (name, v) in [
        ("--failure-rate", a.failure_rate),
        ("--retryable-share", a.retryable_share),
        ("--duplicate-rate", a.duplicate_rate),
        ("--carts", a.carts),
    ] {
        anyhow::ensure!(
            (0.0..=1.0).contains(&v),
            "{name} {v} must be between 0 and 1"
        );
    }
    anyhow::ensure!(a.rate > 0.0, "--rate {} must be above 0", a.rate);
    anyhow::ensure!(
        a.skus + a.preorder_skus > 0,
        "--skus and --preorder-skus are both 0"
    );
    let opts = SimOptions {
        orders: a.orders,
        skus: a.skus,
        preorder_skus: a.preorder_skus,
        stock: a.stock,
        restock: a.restock,
        rate: a.rate,
        latency: Latency {
            median: a.latency_p50,
            p99: a.latency_p99,
        },
        failure_rate: a.failure_rate,
        retryable_share: a.retryable_share,
        duplicate_rate: a.duplicate_rate,
        carts: a.carts,
        append_latency: a.append_latency,
        seed: a.seed,
        progress: true,
    };
    let report = sim::run(&config, &opts);
    println!("{report}");
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
