//! Wiring for `allot serve`: connect to NATS, set up the streams, and run
//! ingress plus one runtime task per shard until asked to stop; the
//! operator commands that talk to a running deployment (`demo`, `dlq`).

mod connect;
pub mod demo;
pub mod dlq;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

pub use connect::{connect, NatsOptions};

use crate::adapters::nats::dlq::{ensure_dlq, move_dead_letters};
use crate::adapters::nats::views::{ensure_view_buckets, follow_stock, project, Board, ViewSinks};
use crate::adapters::nats::{
    ensure_replicated_streams, serve_ingress, AnyFulfiller, NatsFulfiller, NatsIntake, NatsLog,
    NatsSnapshots,
};
use crate::cluster::{Coordinator, Leases, StartShard};
use crate::config::{Config, FulfillerKind};
use crate::http::{api_routes, listen, ops_routes, Api, Health, Listening, RenderMetrics};
use crate::ports::{IntakeQueue as _, Latency, SimulatedFulfiller};
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
#[derive(Clone)]
pub struct ServeOptions {
    pub nats: NatsOptions,
    pub fulfiller: FulfillerChoice,
    pub runtime: RuntimeConfig,
    /// Deliveries after which an intake message is given up (dead letter).
    pub max_deliver: i64,
    /// How long an intake message may stay unacked before it is redelivered
    /// (an instance died holding it). Set when the consumers are created.
    pub ack_wait: Duration,
    /// Filled in once the HTTP servers listen (their ports may be chosen
    /// by the OS).
    pub listening: Arc<OnceLock<Listening>>,
    /// What `/metrics` serves; `None` answers 404 there.
    pub metrics: Option<RenderMetrics>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("nats", &self.nats)
            .field("fulfiller", &self.fulfiller)
            .field("runtime", &self.runtime)
            .field("max_deliver", &self.max_deliver)
            .field("ack_wait", &self.ack_wait)
            .finish_non_exhaustive()
    }
}

impl ServeOptions {
    /// The options `config` sets; the simulated workers get `seed`.
    pub fn from_config(config: &Config, seed: u64) -> Self {
        let f = &config.fulfiller;
        let fulfiller = match f.kind {
            FulfillerKind::Simulated => FulfillerChoice::Simulated {
                latency: Latency {
                    median: f.latency_p50,
                    p99: f.latency_p99,
                },
                failure_rate: f.failure_rate,
                seed,
            },
            FulfillerKind::Nats => FulfillerChoice::Nats { timeout: f.timeout },
        };
        let r = &config.runtime;
        Self {
            nats: NatsOptions::from(&config.nats),
            fulfiller,
            runtime: RuntimeConfig {
                snapshot_every_events: r.snapshot_every,
                snapshot_every: (!r.snapshot_interval.is_zero()).then_some(r.snapshot_interval),
                worker_timeout: f.timeout,
                drain_deadline: r.drain_deadline,
                ..RuntimeConfig::default()
            },
            max_deliver: config.nats.max_deliver,
            ack_wait: config.nats.ack_wait,
            listening: Arc::default(),
            metrics: None,
        }
    }
}
/// What runs one shard in this instance: its actor task and its views
/// projector, until `stop` (drain) or `abort` (at once: the shard's work is
/// dropped and its unacked intake handed back to the queue).
fn shard_starter(
    ports: Arc<NatsPorts>,
    runtime: RuntimeConfig,
    client: async_nats::Client,
    events: async_nats::jetstream::stream::Stream,
    sinks: ViewSinks,
) -> StartShard {
    Arc::new(move |shard, stop, abort| {
        let (ports, runtime) = (ports.clone(), runtime.clone());
        let (client, events, sinks) = (client.clone(), events.clone(), sinks.clone());
        Box::pin(async move {
            let views_stop = CancellationToken::new();
            let views = tokio::spawn(project(client, shard, events, sinks, views_stop.clone()));
            let outcome = tokio::select! {
                r = run_shard(shard, ports.clone(), runtime, stop) => r.map_err(|e| e.to_string()),
                () = abort.cancelled() => {
                    ports.intake.release(shard).await;
                    Ok(ShardExit::Fenced)
                }
            };
            views_stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), views).await;
            outcome
        })
    })
}

type NatsPorts = Ports<NatsLog, NatsIntake, NatsSnapshots, AnyFulfiller>;

/// Runs allot until `stop` is cancelled, then drains.
pub async fn serve(
    config: Config,
    options: ServeOptions,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let client = connect(&options.nats).await?;
    let js = async_nats::jetstream::new(client.clone());
    let router = config.router();
    let health = Arc::new(Health::new(
        client.clone(),
        options.runtime.owned.clone(),
        router.shard_count() as usize,
    ));
    // The operations endpoints answer from the start (readiness says what
    // is missing) until everything else has stopped.
    let ops_stop = CancellationToken::new();
    let _stop_ops_on_return = ops_stop.clone().drop_guard();
    let ops = match config.http.ops_bind {
        Some(addr) => {
            let app = ops_routes(health.clone(), options.metrics.clone());
            Some(listen("operations endpoints", addr, app, ops_stop.clone()).await?)
        }
        None => None,
    };
    let replicas = config.nats.replicas;
    let streams = ensure_replicated_streams(
        &js,
        &router,
        options.max_deliver,
        options.ack_wait,
        replicas,
    )
    .await
    .context("setting up the JetStream streams")?;
    ensure_dlq(&js)
        .await
        .context("setting up the dead-letter streams")?;
    health.set_streams_verified();
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
    tasks.spawn({
        let (js, orders, stop) = (js.clone(), streams.orders.clone(), stop.clone());
        async move {
            move_dead_letters(js, orders, stop).await;
            None
        }
    });
    let (orders_view, stock_view) = ensure_view_buckets(&js, replicas)
        .await
        .map_err(anyhow::Error::msg)?;
    let sinks = ViewSinks {
        orders: orders_view.clone(),
        stock: stock_view,
        checkpoints: streams.snapshots.clone(),
        board: Arc::new(Board::new()),
    };
    tasks.spawn({
        let (stock, board, stop) = (sinks.stock.clone(), sinks.board.clone(), stop.clone());
        async move {
            follow_stock(stock, board, stop).await;
            None
        }
    });
    let start = shard_starter(
        ports,
        runtime,
        client.clone(),
        streams.events.clone(),
        sinks.clone(),
    );
    if config.cluster.leases {
        let id = config
            .cluster
            .instance_id
            .clone()
            .unwrap_or_else(|| format!("allot-{:08x}", rand::random::<u32>()));
        let leases = Leases::open(&js, id, config.cluster.lease_ttl, replicas)
            .await
            .map_err(anyhow::Error::msg)?;
        let coordinator = Coordinator {
            leases,
            shards: router.shard_count(),
            ttl: config.cluster.lease_ttl,
            start,
            target: health.expected(),
        };
        let stop = stop.clone();
        tasks.spawn(async move {
            coordinator.run(stop).await;
            None
        });
    } else {
        for shard in 0..router.shard_count() {
            let run = start(shard, stop.child_token(), CancellationToken::new());
            tasks.spawn(async move { Some((shard, run.await)) });
        }
    }
    let api = Api {
        js: js.clone(),
        router: router.clone(),
        limits,
        orders_view,
        board: sinks.board,
        auth_token: config.http.auth_token.clone(),
        max_body_bytes: config.http.max_body_bytes,
        max_batch_size: config.limits.max_batch_size,
        ingress: crate::telemetry::IngressMetrics::new(),
    };
    let mut app = api_routes(api, config.http.request_timeout);
    if ops.is_none() {
        app = app.merge(ops_routes(health.clone(), options.metrics.clone()));
    }
    let (api_addr, api_task) = listen("HTTP API", config.http.bind, app, stop.clone()).await?;
    let _ = options.listening.set(Listening {
        api: api_addr,
        ops: ops.as_ref().map(|(addr, _)| *addr),
    });
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
    let _ = api_task.await;
    ops_stop.cancel();
    if let Some((_, task)) = ops {
        let _ = task.await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), client.drain()).await;
    info!("allot stopped");
    failure.map_or(Ok(()), Err)
}
