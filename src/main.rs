//! The `allot` command: run the service's tools from a shell.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use allot::adapters::nats;
use allot::adapters::nats::views;
use allot::config::{self, Config};
use allot::domain::{Command, PartitionKey, Sku, WarehouseId};
use allot::ports::Latency;
use allot::runtime::RuntimeConfig;
use allot::service::demo::{run_demo, DemoOptions};
use allot::service::{FulfillerChoice, NatsOptions, ServeOptions};
use allot::sim::{self, SimOptions};
use tokio_util::sync::CancellationToken;

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
    /// Run the scheduler on NATS JetStream: ingress plus every shard.
    Serve(ServeArgs),
    /// Run a flash sale through a running `allot serve` and audit it.
    Demo(DemoArgs),
    /// Change a partition's stock (through its shard, like orders).
    Stock {
        #[command(subcommand)]
        command: StockCmd,
    },
    /// Show an order's status and history (from the views).
    Status(StatusArgs),
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

#[derive(clap::Args, Clone)]
struct NatsArgs {
    /// NATS server URLs, comma-separated.
    #[arg(long, env = "ALLOT_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    #[arg(long, env = "ALLOT_NATS_USER")]
    nats_user: Option<String>,
    #[arg(long, env = "ALLOT_NATS_PASSWORD")]
    nats_password: Option<String>,
    #[arg(long, env = "ALLOT_NATS_TOKEN")]
    nats_token: Option<String>,
    /// A .creds file (JWT and nkey seed).
    #[arg(long, env = "ALLOT_NATS_CREDS")]
    nats_creds: Option<PathBuf>,
    /// An nkey seed (SU...).
    #[arg(long, env = "ALLOT_NATS_NKEY")]
    nats_nkey: Option<String>,
    /// CA certificate to verify the server (turns TLS on).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Config file; defaults to config/default.toml if present.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl NatsArgs {
    fn options(&self) -> NatsOptions {
        NatsOptions {
            url: self.nats_url.clone(),
            user: self.nats_user.clone(),
            password: self.nats_password.clone(),
            token: self.nats_token.clone(),
            credentials_file: self.nats_creds.clone(),
            nkey_seed: self.nats_nkey.clone(),
            tls_ca: self.tls_ca.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            name: None,
        }
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// Workers: "simulated" (in-process, seeded) or "nats" (requests to
    /// allot.fulfil.<warehouse>).
    #[arg(long, default_value = "simulated")]
    fulfiller: String,
    /// Simulated workers' median latency.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5ms")]
    latency_p50: Duration,
    #[arg(long, value_parser = humantime::parse_duration, default_value = "50ms")]
    latency_p99: Duration,
    /// Share of simulated enactments that fail.
    #[arg(long, default_value_t = 0.02)]
    failure_rate: f64,
    /// How long a NATS worker may take before the attempt is retried.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    worker_timeout: Duration,
    /// Snapshot a shard after this many logged events (0: not by count).
    #[arg(long, default_value_t = 100_000)]
    snapshot_every: u64,
    /// ... or after this long with new events ("0s": not by time).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    snapshot_interval: Duration,
    /// On SIGTERM/SIGINT, how long to let in-flight work finish.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    drain_deadline: Duration,
    /// How long an intake message may stay unacked before NATS redelivers
    /// it (an instance died holding it). Applies when allot first creates
    /// the intake consumers; existing ones keep theirs.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    ack_wait: Duration,
}

#[derive(clap::Args)]
struct DemoArgs {
    #[command(flatten)]
    nats: NatsArgs,
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
    #[arg(long, value_parser = humantime::parse_duration, default_value = "120s")]
    timeout: Duration,
}

#[derive(clap::Args)]
struct StatusArgs {
    #[command(flatten)]
    nats: NatsArgs,
    order_id: String,
}

#[derive(clap::Args)]
struct ShowArgs {
    #[command(flatten)]
    nats: NatsArgs,
    warehouse: String,
    sku: String,
}

#[derive(Subcommand)]
enum StockCmd {
    /// Show a partition's stock (from the views).
    Show(ShowArgs),
    /// Set on-hand units.
    Set(StockArgs),
    /// Add units.
    Restock(StockArgs),
    /// Change on-hand units by N (may be negative).
    Adjust(StockArgs),
}

#[derive(clap::Args)]
struct StockArgs {
    #[command(flatten)]
    nats: NatsArgs,
    warehouse: String,
    sku: String,
    #[arg(allow_hyphen_values = true)]
    units: i64,
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
        Cmd::Serve(args) => tokio_main(serve(args)),
        Cmd::Demo(args) => tokio_main(demo(args)),
        Cmd::Stock { command } => tokio_main(stock(command)),
        Cmd::Status(args) => tokio_main(status(args)),
    }
}

fn tokio_main<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    f: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ALLOT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,async_nats=warn"));
    let json = std::env::var("ALLOT_LOG_FORMAT").is_ok_and(|f| f == "json");
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    allot::telemetry::install()?;
    let config = load_config(a.nats.config.as_deref()).context("loading the config")?;
    let fulfiller = match a.fulfiller.as_str() {
        "simulated" => FulfillerChoice::Simulated {
            latency: Latency {
                median: a.latency_p50,
                p99: a.latency_p99,
            },
            failure_rate: a.failure_rate,
            seed: rand::random(),
        },
        "nats" => FulfillerChoice::Nats {
            timeout: a.worker_timeout,
        },
        other => anyhow::bail!("--fulfiller {other:?}: use \"simulated\" or \"nats\""),
    };
    let options = ServeOptions {
        nats: a.nats.options(),
        fulfiller,
        runtime: RuntimeConfig {
            snapshot_every_events: a.snapshot_every,
            snapshot_every: (!a.snapshot_interval.is_zero()).then_some(a.snapshot_interval),
            worker_timeout: a.worker_timeout,
            drain_deadline: a.drain_deadline,
            ..RuntimeConfig::default()
        },
        max_deliver: 20,
        ack_wait: a.ack_wait,
    };
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested");
            stop.cancel();
        }
    });
    allot::service::serve(config, options, stop).await?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn demo(a: DemoArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(a.nats.config.as_deref()).context("loading the config")?;
    let options = DemoOptions {
        orders: a.orders,
        skus: a.skus.max(1),
        stock: a.stock,
        via_ingress: a.via_ingress.min(a.orders),
        invalid: a.invalid,
        duplicates: a.duplicates,
        timeout: a.timeout,
    };
    let report = run_demo(&config, &a.nats.options(), &options).await?;
    println!("{report}");
    Ok(if report.findings.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn view_buckets(
    nats: &NatsArgs,
) -> anyhow::Result<(
    async_nats::jetstream::kv::Store,
    async_nats::jetstream::kv::Store,
)> {
    let client = allot::service::connect(&nats.options()).await?;
    let js = async_nats::jetstream::new(client);
    let orders = js
        .get_key_value(views::ORDERS_BUCKET)
        .await
        .context("the views are not there yet: is `allot serve` running?")?;
    let stock = js.get_key_value(views::STOCK_BUCKET).await?;
    Ok((orders, stock))
}

async fn status(a: StatusArgs) -> anyhow::Result<ExitCode> {
    let id = allot::domain::OrderId::new(&a.order_id)?;
    let (orders, _) = view_buckets(&a.nats).await?;
    match views::order_view(&orders, &id)
        .await
        .map_err(anyhow::Error::msg)?
    {
        Some(v) => {
            println!(
                "order {}: {} ({} x {} at {})",
                v.id, v.status, v.quantity, v.sku, v.warehouse
            );
            for (seq, line) in &v.history {
                println!("  #{seq:<10} {line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("order {id}: unknown (not decided yet, or never submitted)");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn stock_show(a: ShowArgs) -> anyhow::Result<ExitCode> {
    let partition = PartitionKey::new(WarehouseId::new(&a.warehouse)?, Sku::new(&a.sku)?);
    let (_, stock) = view_buckets(&a.nats).await?;
    match views::stock_view(&stock, &partition)
        .await
        .map_err(anyhow::Error::msg)?
    {
        Some(v) => {
            println!(
                "{partition}: {} available, {} reserved, {} sold (as of EVENTS #{})",
                v.available, v.reserved, v.sold, v.as_of
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("{partition}: no stock recorded");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Builds a stock command from a partition and the units given.
type MakeCommand = fn(PartitionKey, i64) -> anyhow::Result<Command>;

async fn stock(command: StockCmd) -> anyhow::Result<ExitCode> {
    let (args, make): (StockArgs, MakeCommand) = match command {
        StockCmd::Set(a) => (a, |partition, n| {
            let on_hand = u64::try_from(n)
                .map_err(|_| anyhow::anyhow!("stock set {n}: must be 0 or more"))?;
            Ok(Command::SetStock { partition, on_hand })
        }),
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
        StockCmd::Show(a) => return stock_show(a).await,
    };
    let config = load_config(args.nats.config.as_deref()).context("loading the config")?;
    let partition = PartitionKey::new(WarehouseId::new(&args.warehouse)?, Sku::new(&args.sku)?);
    // The key makes a redelivery of this command (its ack lost) a no-op.
    let key = format!("stock-{:016x}", rand::random::<u64>());
    let command = Command::Keyed {
        id: allot::domain::OrderId::new(&key)?,
        command: Box::new(make(partition.clone(), args.units)?),
    };
    let shard = config.router().shard_for(&partition);
    let client = allot::service::connect(&args.nats.options()).await?;
    let js = async_nats::jetstream::new(client);
    let message = async_nats::jetstream::message::PublishMessage::build()
        .message_id(key)
        .header(nats::KIND_HEADER, nats::KIND_COMMAND)
        .payload(rmp_serde::to_vec_named(&command)?.into());
    let ack = js
        .send_publish(nats::shard_order_subject(shard, &partition), message)
        .await?
        .await?;
    println!(
        "{partition}: {command:?} queued on shard {shard} (intake sequence {})",
        ack.sequence
    );
    Ok(ExitCode::SUCCESS)
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
