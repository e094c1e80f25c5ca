//! The `allot` command: run the service's tools from a shell.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use allot::config::{self, Config};
use allot::ports::Latency;
use allot::sim::{self, SimOptions};

#[derive(Parser)]
#[command(
    name = "allot",
    version,
    about = "Inventory-aware concurrent order scheduler"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a deterministic flash sale on the in-memory ports and audit it.
    Simulate(SimArgs),
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCmd,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Validate a config file and print the effective config.
    Check {
        /// Defaults to config/default.toml.
        file: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct SimArgs {
    /// Config file (routing, shards, policies); defaults to
    /// config/default.toml if present, else built-in defaults.
    #[arg(long)]
    config: Option<PathBuf>,
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
    /// Time for a log append to become durable.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2ms")]
    append_latency: Duration,
    #[arg(long, default_value_t = SimOptions::default().seed)]
    seed: u64,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("allot: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Cmd::Config {
            command: ConfigCmd::Check { file },
        } => match config::check(file.as_deref()) {
            Ok(text) => {
                print!("{text}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Cmd::Simulate(args) => simulate(args),
    }
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let default = Path::new(config::DEFAULT_PATH);
    match path {
        Some(p) => Ok(Config::load(p)?),
        None if default.exists() => Ok(Config::load(default)?),
        None => Ok(Config::default()),
    }
}

fn simulate(a: SimArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(a.config.as_deref()).context("loading the config")?;
    for (name, v) in [
        ("--failure-rate", a.failure_rate),
        ("--retryable-share", a.retryable_share),
        ("--duplicate-rate", a.duplicate_rate),
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
