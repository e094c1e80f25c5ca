//! `allot serve`: the service, until SIGTERM or SIGINT.

use std::process::ExitCode;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use allot::config::Config;
use allot::service::ServeOptions;

use super::{init_tracing, ConfigArgs};

/// `allot serve`: every setting is a config key; these flags are
/// shorthands for the common ones.
#[derive(clap::Args)]
pub struct ServeArgs {
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

pub async fn run(a: ServeArgs) -> anyhow::Result<ExitCode> {
    let config = a.load().context("loading the config")?;
    init_tracing(&config.log);
    // Before anything records: handles made earlier would record nowhere.
    let metrics = allot::telemetry::Exporter::install()?;
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
