//! `allot status ORDER_ID`: an order's status and history, from the views
//! of any running instance.

use std::process::ExitCode;

use anyhow::Context;

use allot::adapters::nats::reads::{ask, ORDER_SUBJECT};
use allot::adapters::nats::{connect, NatsOptions};
use allot::domain::OrderId;

use super::ConfigArgs;

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    config: ConfigArgs,
    order_id: String,
}

pub async fn run(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let id = OrderId::new(&a.order_id)?;
    let config = a.config.load().context("loading the config")?;
    let client = connect(&NatsOptions::from(&config.nats)).await?;
    let Some(v) = ask(&client, ORDER_SUBJECT, id.to_string()).await? else {
        eprintln!("{}", allot::views::unknown_order(&id));
        return Ok(ExitCode::FAILURE);
    };
    println!(
        "order {}: {} ({} x {} at {})",
        v["id"].as_str().unwrap_or_default(),
        v["status"].as_str().unwrap_or_default(),
        v["quantity"],
        v["sku"].as_str().unwrap_or_default(),
        v["warehouse"].as_str().unwrap_or_default()
    );
    for line in v["history"].as_array().into_iter().flatten() {
        println!(
            "  #{:<10} {}",
            line["seq"],
            line["what"].as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
