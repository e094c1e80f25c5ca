//! Wiring for `allot serve`: connect to NATS, set up the streams, and run
//! ingress plus one runtime task per shard until asked to stop.

mod connect;
pub mod demo;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

pub use connect::{connect, NatsOptions};

use crate::adapters::nats::views::{ensure_view_buckets, project};
use crate::adapters::nats::{
    ensure_streams, serve_ingress, AnyFulfiller, NatsFulfiller, NatsIntake, NatsLog, NatsSnapshots,
};
use crate::config::Config;
use crate::ports::{Latency, SimulatedFulfiller};
use crate::runtime::{run_shard, Ports, RuntimeConfig, ShardExit, Workers};
use crate::wire::Limits;

/// Which workers enact released orders.
#[derive(Debug, Clone)]
pub enum FulfillerChoice {
    /// In-process, seeded latency and failures (demos, benchmarks).
    Simulated {
        latency: Latency,
        failure_rate: f64,
        seed: u64,
    },
    /// NATS requests to `allot.fulfil.<warehouse>`.
    Nats { timeout: Duration },
}

/// Everything `allot serve` needs besides the config file.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub nats: NatsOptions,
    pub fulfiller: FulfillerChoice,
    pub runtime: RuntimeConfig,
    /// Deliveries after which an intake message is given up (dead letter).
    pub max_deliver: i64,
    /// How long an intake message may stay unacked before it is redelivered
    /// (an instance died holding it). Set when the consumers are created.
    pub ack_wait: Duration,
}

/// Runs allot until `stop` is cancelled, then drains.
pub async fn serve(
    config: Config,
    options: ServeOptions,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let client = connect(&options.nats).await?;
    let js = async_nats::jetstream::new(client.clone());
    let router = config.router();
    let streams = ensure_streams(&js, &router, options.max_deliver, options.ack_wait)
        .await
        .context("setting up the JetStream streams")?;
    let limits = Limits::from_config(&config);
    let fulfiller = match options.fulfiller {
        FulfillerChoice::Simulated {
            latency,
            failure_rate,
            seed,
        } => AnyFulfiller::Simulated(Box::new(SimulatedFulfiller::new(
            latency,
            failure_rate,
            0.5,
            seed,
        ))),
        FulfillerChoice::Nats { timeout } => {
            AnyFulfiller::Nats(NatsFulfiller::new(client.clone(), timeout))
        }
    };
    let concurrency_config = config.clone();
    let shard_router = router.clone();
    let ports = Arc::new(Ports {
        log: NatsLog::new(js.clone(), streams.events.clone()),
        intake: NatsIntake::new(js.clone(), streams.orders.clone(), router.clone(), limits),
        snapshots: NatsSnapshots::new(streams.snapshots.clone()),
        workers: Workers::new(
            fulfiller,
            move |w| concurrency_config.concurrency_for(w),
            options.runtime.worker_timeout,
        ),
        shard_of: Box::new(move |p| shard_router.shard_for(p)),
    });
    let mut runtime = options.runtime.clone();
    runtime.shard = config.shard_config();
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn({
        let (client, js, router, stop) = (client.clone(), js.clone(), router.clone(), stop.clone());
        async move {
            if let Err(e) = serve_ingress(client, js, router, limits, stop).await {
                error!(error = %e, "ingress stopped");
            }
            None
        }
    });
    for shard in 0..router.shard_count() {
        let (ports, runtime, stop) = (ports.clone(), runtime.clone(), stop.clone());
        tasks.spawn(async move { Some((shard, run_shard(shard, ports, runtime, stop).await)) });
    }
    let (orders_view, stock_view) = ensure_view_buckets(&js).await.map_err(anyhow::Error::msg)?;
    for shard in 0..router.shard_count() {
        let (events, orders, stock) = (
            streams.events.clone(),
            orders_view.clone(),
            stock_view.clone(),
        );
        let (checkpoints, stop, client) = (streams.snapshots.clone(), stop.clone(), client.clone());
        tasks.spawn(async move {
            project(client, shard, events, orders, stock, checkpoints, stop).await;
            None
        });
    }
    info!(shards = router.shard_count(), "allot serving");
    let mut failure = None;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Some((shard, Ok(ShardExit::Fenced)))) => {
                error!(shard, "shard fenced by another writer")
            }
            Ok(Some((shard, Err(e)))) => {
                error!(shard, error = %e, "shard failed");
                failure.get_or_insert(anyhow::anyhow!("shard {shard}: {e}"));
                stop.cancel();
            }
            Ok(_) => {}
            Err(e) => {
                failure.get_or_insert(anyhow::anyhow!("a task panicked: {e}"));
                stop.cancel();
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), client.drain()).await;
    info!("allot stopped");
    failure.map_or(Ok(()), Err)
}
