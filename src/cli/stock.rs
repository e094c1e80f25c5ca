//! `allot stock show|set|restock|adjust`: a partition's stock from the
//! views, and changes filed through the ingress as keyed commands.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;

use allot::adapters::nats::reads::{ask, STOCK_SUBJECT};
use allot::adapters::nats::{connect, NatsFiler, NatsOptions};
use allot::domain::{Command, PartitionKey, Sku, WarehouseId};
use allot::ingress::Ingress;
use allot::wire::Limits;

use super::ConfigArgs;

#[derive(clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    config: ConfigArgs,
    warehouse: String,
    sku: String,
}

#[derive(Subcommand)]
pub enum StockCmd {
    /// Show a partition's stock (from the views).
    Show(ShowArgs),
    /// Set on-hand units, if the stock is still at the version a running
    /// allot shows (a change that got in between refuses it).
    Set(SetArgs),
    /// Add units.
    Restock(StockArgs),
    /// Change on-hand units by N (may be negative).
    Adjust(StockArgs),
}

#[derive(clap::Args)]
pub struct StockArgs {
    #[command(flatten)]
    config: ConfigArgs,
    warehouse: String,
    sku: String,
    #[arg(allow_hyphen_values = true)]
    units: i64,
}

#[derive(clap::Args)]
pub struct SetArgs {
    #[command(flatten)]
    stock: StockArgs,
    /// Set it whatever changed meanwhile (no expected version).
    #[arg(long)]
    force: bool,
}

/// Builds a stock command from a partition and the units given.
type MakeCommand = fn(PartitionKey, i64) -> anyhow::Result<Command>;

pub async fn run(command: StockCmd) -> anyhow::Result<ExitCode> {
    let (args, make): (StockArgs, MakeCommand) = match command {
        StockCmd::Set(a) => return set(a).await,
        StockCmd::Restock(a) => (a, |partition, n| {
            let units = u64::try_from(n)
                .ok()
                .and_then(std::num::NonZeroU64::new)
                .ok_or_else(|| anyhow::anyhow!("restock {n}: must be 1 or more"))?;
            Ok(Command::Restock { partition, units })
        }),
        StockCmd::Adjust(a) => (a, |partition, delta| {
            Ok(Command::AdjustStock { partition, delta })
        }),
        StockCmd::Show(a) => return show(a).await,
    };
    let config = args.config.load().context("loading the config")?;
    let partition = PartitionKey::new(WarehouseId::new(&args.warehouse)?, Sku::new(&args.sku)?);
    let client = connect(&NatsOptions::from(&config.nats)).await?;
    let ingress = Ingress::new(
        Arc::new(NatsFiler::for_client(client)),
        config.router(),
        Limits::from_config(&config),
    );
    // The key makes a redelivery of this command (its ack lost) a no-op.
    let key = format!("stock-{:016x}", rand::random::<u64>());
    let command = make(partition.clone(), args.units)?;
    let filed = ingress.command(&key, command.clone()).await?;
    println!(
        "{partition}: {command:?} queued on shard {} (intake sequence {}, key {key})",
        filed.shard, filed.sequence
    );
    Ok(ExitCode::SUCCESS)
}

/// `allot stock set`: expects the version the views show now, unless
/// `--force`.
async fn set(a: SetArgs) -> anyhow::Result<ExitCode> {
    let args = a.stock;
    let on_hand = u64::try_from(args.units)
        .map_err(|_| anyhow::anyhow!("stock set {}: must be 0 or more", args.units))?;
    let config = args.config.load().context("loading the config")?;
    let partition = PartitionKey::new(WarehouseId::new(&args.warehouse)?, Sku::new(&args.sku)?);
    let client = connect(&NatsOptions::from(&config.nats)).await?;
    let expected_version = if a.force {
        None
    } else {
        let body = format!("{}.{}", partition.warehouse, partition.sku);
        let view = ask(&client, STOCK_SUBJECT, body).await?;
        Some(view.and_then(|v| v["version"].as_u64()).unwrap_or(0))
    };
    let ingress = Ingress::new(
        Arc::new(NatsFiler::for_client(client)),
        config.router(),
        Limits::from_config(&config),
    );
    let key = format!("stock-{:016x}", rand::random::<u64>());
    let command = Command::SetStock {
        partition: partition.clone(),
        on_hand,
        expected_version,
    };
    let filed = ingress.command(&key, command).await?;
    match expected_version {
        Some(v) => println!(
            "{partition}: set to {on_hand} on hand if still at version {v}: queued on shard {} (intake sequence {}, key {key}); `allot stock show` tells whether it applied",
            filed.shard, filed.sequence
        ),
        None => println!(
            "{partition}: set to {on_hand} on hand: queued on shard {} (intake sequence {}, key {key})",
            filed.shard, filed.sequence
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(a: ShowArgs) -> anyhow::Result<ExitCode> {
    let partition = PartitionKey::new(WarehouseId::new(&a.warehouse)?, Sku::new(&a.sku)?);
    let config = a.config.load().context("loading the config")?;
    let client = connect(&NatsOptions::from(&config.nats)).await?;
    let body = format!("{}.{}", partition.warehouse, partition.sku);
    match ask(&client, STOCK_SUBJECT, body).await? {
        Some(v) => {
            println!(
                "{partition}: {} available, {} reserved, {} sold, {} short, version {} (as of EVENTS #{})",
                v["available"], v["reserved"], v["sold"], v["short"], v["version"], v["as_of"]
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("{partition}: no stock recorded");
            Ok(ExitCode::FAILURE)
        }
    }
}
