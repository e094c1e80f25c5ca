//! The `allot` command: run the service's tools from a shell.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use allot::adapters::nats;
use allot::adapters::nats::views;
use allot::config::{self, Config, Layers};
use allot::domain::{Command, PartitionKey, Sku, WarehouseId};
use allot::ports::Latency;
use allot::service::demo::{run_demo, DemoOptions};
use allot::service::{NatsOptions, ServeOptions};
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
    /// Intake messages given up after nats.max_deliver deliveries.
    Dlq {
        #[command(subcommand)]
        command: DlqCmd,
    },
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
    /// Merge every layer, validate, and print the effective config (secrets
    /// masked), or every error with the key and layer that caused it.
    Check {
        /// A config file (same as --config).
        file: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// Where the config comes from: built-in defaults, then
/// config/default.toml (or --config files), then config/<ENV>.toml, then
/// ALLOT__SECTION__KEY environment variables, then flags.
#[derive(clap::Args, Clone, Default)]
struct ConfigArgs {
    /// Config file(s), applied in order, instead of config/default.toml.
    #[arg(long = "config", value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Also apply config/<ENV>.toml (after the files).
    #[arg(long = "env", env = "ALLOT_ENV", value_name = "ENV")]
    environment: Option<String>,
    /// Set any key, applied last: --set scheduler.max_wait=250ms.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    #[command(flatten)]
    nats: NatsArgs,
}

impl ConfigArgs {
    fn layers(&self) -> anyhow::Result<Layers> {
        let mut layers = Layers::standard(self.files.clone(), self.environment.clone());
        self.nats.apply(&mut layers);
        for pair in &self.set {
            layers.set_pair(pair).map_err(anyhow::Error::msg)?;
        }
        Ok(layers)
    }

    fn load(&self) -> anyhow::Result<Config> {
        Ok(self.layers()?.load()?)
    }
}

/// Shorthands for the `[nats]` keys.
#[derive(clap::Args, Clone, Default)]
struct NatsArgs {
    /// NATS server URLs, comma-separated (nats.url).
    #[arg(long)]
    nats_url: Option<String>,
    #[arg(long)]
    nats_user: Option<String>,
    #[arg(long)]
    nats_password: Option<String>,
    #[arg(long)]
    nats_token: Option<String>,
    /// A .creds file (JWT and nkey seed).
    #[arg(long)]
    nats_creds: Option<PathBuf>,
    /// An nkey seed (SU...).
    #[arg(long)]
    nats_nkey: Option<String>,
    /// CA certificate to verify the server (turns TLS on).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    #[arg(long)]
    tls_key: Option<PathBuf>,
}

impl NatsArgs {
    fn apply(&self, layers: &mut Layers) {
        let text = [
            ("nats.url", &self.nats_url),
            ("nats.user", &self.nats_user),
            ("nats.password", &self.nats_password),
            ("nats.token", &self.nats_token),
            ("nats.nkey", &self.nats_nkey),
        ];
        for (key, value) in text {
            if let Some(v) = value {
                layers.set_text(key, v.clone());
            }
        }
        let paths = [
            ("nats.creds", &self.nats_creds),
            ("nats.tls_ca", &self.tls_ca),
            ("nats.tls_cert", &self.tls_cert),
            ("nats.tls_key", &self.tls_key),
        ];
        for (key, value) in paths {
            if let Some(v) = value {
                layers.set_text(key, v.display().to_string());
            }
        }
    }
}

/// `allot serve`: every setting is a config key; these flags are
/// shorthands for the common ones.
#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Workers: "simulated" (in-process, seeded) or "nats" (requests to
    /// allot.fulfil.<warehouse>) (fulfiller.kind).
    #[arg(long)]
    fulfiller: Option<String>,
    /// Simulated workers' median latency (fulfiller.latency_p50).
    #[arg(long)]
    latency_p50: Option<String>,
    /// (fulfiller.latency_p99)
    #[arg(long)]
    latency_p99: Option<String>,
    /// Share of simulated enactments that fail (fulfiller.failure_rate).
    #[arg(long)]
    failure_rate: Option<String>,
    /// How long a worker may take before the attempt is retried
    /// (fulfiller.timeout).
    #[arg(long)]
    worker_timeout: Option<String>,
    /// Snapshot a shard after this many logged events, 0: not by count
    /// (runtime.snapshot_every).
    #[arg(long)]
    snapshot_every: Option<String>,
    /// ... or after this long with new events, "0s": not by time
    /// (runtime.snapshot_interval).
    #[arg(long)]
    snapshot_interval: Option<String>,
    /// On SIGTERM/SIGINT, how long to let in-flight work finish
    /// (runtime.drain_deadline).
    #[arg(long)]
    drain_deadline: Option<String>,
    /// How long an intake message may stay unacked before NATS redelivers
    /// it; applies when the consumers are first created (nats.ack_wait).
    #[arg(long)]
    ack_wait: Option<String>,
    /// Where the HTTP API listens (http.bind).
    #[arg(long)]
    http_bind: Option<String>,
    /// Where /metrics, /livez, /readyz listen (http.ops_bind).
    #[arg(long)]
    ops_bind: Option<String>,
}

impl ServeArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let mut layers = self.config.layers()?;
        let flags = [
            ("fulfiller.kind", &self.fulfiller),
            ("fulfiller.latency_p50", &self.latency_p50),
            ("fulfiller.latency_p99", &self.latency_p99),
            ("fulfiller.failure_rate", &self.failure_rate),
            ("fulfiller.timeout", &self.worker_timeout),
            ("runtime.snapshot_every", &self.snapshot_every),
            ("runtime.snapshot_interval", &self.snapshot_interval),
            ("runtime.drain_deadline", &self.drain_deadline),
            ("nats.ack_wait", &self.ack_wait),
            ("http.bind", &self.http_bind),
            ("http.ops_bind", &self.ops_bind),
        ];
        // After --set: a flag given wins.
        for (key, value) in flags {
            if let Some(v) = value {
                layers.set(key, v);
            }
        }
        Ok(layers.load()?)
    }
}

#[derive(clap::Args)]
struct DemoArgs {
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
    #[arg(long, value_parser = humantime::parse_duration, default_value = "120s")]
    timeout: Duration,
}

#[derive(clap::Args)]
struct StatusArgs {
    #[command(flatten)]
    config: ConfigArgs,
    order_id: String,
}

#[derive(clap::Args)]
struct ShowArgs {
    #[command(flatten)]
    config: ConfigArgs,
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

#[derive(Subcommand)]
enum DlqCmd {
    /// Print the dead letters, oldest first.
    List {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Put dead letters back on their original subject, then delete them.
    Replay {
        #[command(flatten)]
        config: ConfigArgs,
        /// The DLQ sequence of one dead letter (as `list` prints it).
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        seq: Option<u64>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
    },
}

#[derive(clap::Args)]
struct StockArgs {
    #[command(flatten)]
    config: ConfigArgs,
    warehouse: String,
    sku: String,
    #[arg(allow_hyphen_values = true)]
    units: i64,
}

#[derive(clap::Args)]
struct SimArgs {
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
            command: ConfigCmd::Check { file, mut config },
        } => {
            config.files.splice(0..0, file);
            match config::check(&config.layers()?) {
                Ok(text) => {
                    print!("{text}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Cmd::Simulate(args) => simulate(args),
        Cmd::Serve(args) => tokio_main(serve(args)),
        Cmd::Demo(args) => tokio_main(demo(args)),
        Cmd::Stock { command } => tokio_main(stock(command)),
        Cmd::Status(args) => tokio_main(status(args)),
        Cmd::Dlq { command } => tokio_main(dlq(command)),
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

fn init_tracing(log: &config::LogConfig) {
    // Validation checked the filter; an unparsable one cannot get here.
    let filter = tracing_subscriber::EnvFilter::try_new(&log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match log.format {
        config::LogFormat::Json => builder.json().init(),
        config::LogFormat::Pretty => builder.init(),
    }
}

async fn serve(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = a.load().context("loading the config")?;
    init_tracing(&config.log);
    // Before anything records: handles made earlier would record nowhere.
    let metrics = allot::telemetry::install()?;
    let mut options = ServeOptions::from_config(&config, rand::random());
    options.metrics = Some(std::sync::Arc::new(move || metrics.render()));
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
    let config = a.config.load().context("loading the config")?;
    let options = DemoOptions {
        orders: a.orders,
        skus: a.skus.max(1),
        stock: a.stock,
        via_ingress: a.via_ingress.min(a.orders),
        invalid: a.invalid,
        duplicates: a.duplicates,
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

async fn dlq(command: DlqCmd) -> anyhow::Result<ExitCode> {
    use allot::service::dlq::{list, replay_letters, Replay};
    let lines = match command {
        DlqCmd::List { config, limit } => {
            let config = config.load().context("loading the config")?;
            list(&NatsOptions::from(&config.nats), limit).await?
        }
        DlqCmd::Replay {
            config,
            seq,
            all: _,
        } => {
            let config = config.load().context("loading the config")?;
            let which = seq.map_or(Replay::All, Replay::One);
            replay_letters(&NatsOptions::from(&config.nats), which).await?
        }
    };
    for line in lines {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn view_buckets(
    args: &ConfigArgs,
) -> anyhow::Result<(
    async_nats::jetstream::kv::Store,
    async_nats::jetstream::kv::Store,
)> {
    let config = args.load().context("loading the config")?;
    let client = allot::service::connect(&NatsOptions::from(&config.nats)).await?;
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
    let (orders, _) = view_buckets(&a.config).await?;
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
    let (_, stock) = view_buckets(&a.config).await?;
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
    let config = args.config.load().context("loading the config")?;
    let partition = PartitionKey::new(WarehouseId::new(&args.warehouse)?, Sku::new(&args.sku)?);
    // The key makes a redelivery of this command (its ack lost) a no-op.
    let key = format!("stock-{:016x}", rand::random::<u64>());
    let command = Command::Keyed {
        id: allot::domain::OrderId::new(&key)?,
        command: Box::new(make(partition.clone(), args.units)?),
    };
    let shard = config.router().shard_for(&partition);
    let client = allot::service::connect(&NatsOptions::from(&config.nats)).await?;
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

fn simulate(a: SimArgs) -> anyhow::Result<ExitCode> {
    let config = a.config.load().context("loading the config")?;
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
