//! `allot demo`: a flash sale through a running `allot serve`, audited
//! from EVENTS (see [`sale`]).

mod carts;
mod sale;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use allot::adapters::nats::NatsOptions;
use sale::{run_demo, DemoOptions};

use super::ConfigArgs;

#[derive(clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[arg(long, default_value_t = 20_000)]
    orders: u64,
    #[arg(long, default_value_t = 20)]
    skus: u32,
    /// Units of each SKU in each warehouse (the default sells out: 20 SKUs x
    /// 4 warehouses x 200 units for 20,000 orders with a few hot SKUs).
    #[arg(long, default_value_t = 200)]
    stock: u64,
    /// Orders sent as requests to the ingress (the rest are published).
    #[arg(long, default_value_t = 200)]
    via_ingress: u64,
    #[arg(long, default_value_t = 10)]
    invalid: u64,
    #[arg(long, default_value_t = 100)]
    duplicates: u64,
    /// Carts of 1-5 lines (some partial, some held: half paid, half left
    /// to expire) sent through the ingress.
    #[arg(long, default_value_t = 200)]
    carts: u64,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "120s")]
    timeout: Duration,
}

pub async fn run(a: DemoArgs) -> anyhow::Result<ExitCode> {
    let config = a.config.load().context("loading the config")?;
    let options = DemoOptions {
        orders: a.orders,
        skus: a.skus.max(1),
        stock: a.stock,
        via_ingress: a.via_ingress.min(a.orders),
        invalid: a.invalid,
        duplicates: a.duplicates,
        carts: a.carts,
        timeout: a.timeout,
    };
    let report = run_demo(&config, &NatsOptions::from(&config.nats), &options).await?;
    println!("{report}");
    Ok(if report.findings.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
