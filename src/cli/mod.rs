//! The `allot` command: `main` parses (clap derive) and dispatches to one
//! file per command group. Each talks to the service through the library
//! (ingress, adapters), never to NATS directly.

mod audit;
mod demo;
mod dlq;
mod serve;
mod simulate;
mod status;
mod stock;
mod tail;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use allot::config::{self, Config, Layers};

#[derive(Parser)]
#[command(
    name = "allot",
    version,
    about = "Inventory-aware concurrent order scheduler"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the scheduler on NATS JetStream: ingress plus every shard.
    Serve(serve::ServeArgs),
    /// Run a flash sale through a running `allot serve` and audit it.
    Demo(demo::DemoArgs),
    /// Change a partition's stock (through its shard, like orders).
    Stock {
        #[command(subcommand)]
        command: stock::StockCmd,
    },
    /// Show an order's status and history (from the views).
    Status(status::StatusArgs),
    /// Intake messages given up after nats.max_deliver deliveries.
    Dlq {
        #[command(subcommand)]
        command: dlq::DlqCmd,
    },
    /// Check a live deployment's EVENTS against every promise (after an
    /// incident): exit 1 on a violation.
    Audit(audit::AuditArgs),
    /// Follow the decision feed (EVENTS), filtered by warehouse, SKU or id.
    Tail(tail::TailArgs),
    /// Run a deterministic flash sale on the in-memory ports and audit it.
    Simulate(simulate::SimArgs),
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCmd,
    },
}

#[derive(Subcommand)]
pub enum ConfigCmd {
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
pub struct ConfigArgs {
    /// Config file(s), applied in order, instead of config/default.toml.
    #[arg(long = "config", value_name = "FILE")]
    pub files: Vec<PathBuf>,
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
    pub fn layers(&self) -> anyhow::Result<Layers> {
        let mut layers = Layers::standard(self.files.clone(), self.environment.clone());
        self.nats.apply(&mut layers);
        for pair in &self.set {
            layers.set_pair(pair).map_err(anyhow::Error::msg)?;
        }
        Ok(layers)
    }

    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(self.layers()?.load()?)
    }
}

/// Shorthands for the `[nats]` keys.
#[derive(clap::Args, Clone, Default)]
pub struct NatsArgs {
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

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Cmd::Config {
            command: ConfigCmd::Check { file, config },
        } => check_config(file, config),
        Cmd::Simulate(args) => simulate::run(args),
        Cmd::Serve(args) => tokio_main(serve::run(args)),
        Cmd::Demo(args) => tokio_main(demo::run(args)),
        Cmd::Stock { command } => tokio_main(stock::run(command)),
        Cmd::Status(args) => tokio_main(status::run(args)),
        Cmd::Dlq { command } => tokio_main(dlq::run(command)),
        Cmd::Audit(args) => tokio_main(audit::run(args)),
        Cmd::Tail(args) => tokio_main(tail::run(args)),
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

pub fn init_tracing(log: &config::LogConfig) {
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

/// `allot config check`: the effective config, or every error.
fn check_config(file: Option<PathBuf>, mut config: ConfigArgs) -> anyhow::Result<ExitCode> {
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
