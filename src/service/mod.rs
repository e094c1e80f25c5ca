//! Wiring for `allot serve` (the composition root): connect to NATS, set
//! up the streams, build the ports, the ingress and the views, and run
//! the shards (by lease or all), the views, `allot.submit` and the HTTP
//! API until asked to stop.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info};

pub use crate::adapters::nats::{connect, NatsOptions};

use futures::FutureExt;

use crate::adapters::http::{
    api_routes, listen, ops_routes, Api, Health, ListenError, Listening, RenderMetrics,
};
use crate::adapters::nats::dlq::{ensure_dlq, move_dead_letters};
use crate::adapters::nats::reads::serve_reads;
use crate::adapters::nats::{
    ensure_replicated_streams, serve_submit, AnyFulfiller, Broker, ConnectError, NatsClaims,
    NatsDecisions, NatsFeed, NatsFiler, NatsFulfiller, NatsIntake, NatsLeases, NatsLog,
    NatsSnapshots, SetupError, Streams,
};
use crate::config::{Config, FulfillerKind};
use crate::ingress::Ingress;
use crate::ports::LeaseError;
use crate::ports::{IntakeQueue as _, Latency, SimulatedFulfiller};
use crate::runtime::claims::ClaimRouter;
use crate::runtime::coordinator::{Coordinator, ShardOutcome, StartShard};
use crate::runtime::views::{follow_views, restore_views, CaughtUp, OwnAppends, ViewsConfig};
use crate::runtime::{run_shard, Ports, RuntimeConfig, ShardExit, Workers};
use crate::views::Views;
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
/// Why `allot serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The streams, consumers or buckets could not be set up or verified.
    #[error("setting up the JetStream streams: {0}")]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The lease bucket could not be opened.
    #[error("shard leases: {0}")]
    Leases(#[from] LeaseError),
    /// A shard task failed (its log unreadable, say).
    #[error("shard {shard}: {why}")]
    Shard { shard: u32, why: String },
    #[error("a task panicked: {0}")]
    Panicked(String),
}

/// What runs one shard in this instance: its actor task, until `stop`
/// (drain) or `abort` (at once: the shard's work is dropped and its unacked
/// intake handed back to the queue).
fn shard_starter(ports: Arc<NatsPorts>, runtime: RuntimeConfig) -> StartShard {
    Arc::new(move |shard, stop, abort| {
        let (ports, runtime) = (ports.clone(), runtime.clone());
        Box::pin(async move {
            tokio::select! {
                r = run_shard(shard, ports.clone(), runtime, stop) => r.map_err(|e| e.to_string()),
                () = abort.cancelled() => {
                    ports.intake.release(shard).await;
                    Ok(ShardExit::Fenced)
                }
            }
        })
    })
}

type NatsPorts = Ports<NatsLog, NatsIntake, NatsSnapshots, AnyFulfiller>;

/// Runs allot until `stop` is cancelled, then drains.
pub async fn serve(
    config: Config,
    options: ServeOptions,
    stop: CancellationToken,
) -> Result<(), ServeError> {
    let broker = Broker::connect(&options.nats).await?;
    let (client, js) = (broker.client().clone(), broker.jetstream().clone());
    let router = config.router();
    crate::telemetry::register_warehouses(router.shard_count(), &config.warehouses());
    let caught_up = Arc::new(CaughtUp::default());
    let health = Arc::new(Health::new(
        {
            let broker = broker.clone();
            Arc::new(move || broker.connected())
        },
        caught_up.clone(),
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
    let streams = ensure_replicated_streams(
        &js,
        &router,
        options.max_deliver,
        options.ack_wait,
        config.nats.replicas,
    )
    .await?;
    ensure_dlq(&js).await?;
    health.set_streams_verified();
    let limits = Limits::from_config(&config);
    let ports = Arc::new(nats_ports(&config, &options, &broker, &streams, limits));
    let mut runtime = options.runtime.clone();
    runtime.shard = config.shard_config();
    runtime.carts = crate::domain::CartConfig {
        retry: config.retry_policy(),
        ..crate::wire::cart::cart_config(&limits)
    };
    let ingress = Arc::new(Ingress::new(
        Arc::new(NatsFiler::new(js.clone())),
        router.clone(),
        limits,
    ));
    let views = Arc::new(Views::new(router.shard_count(), config.views.max_orders));
    let checkpoints = Arc::new(NatsSnapshots::new(streams.snapshots.clone()));
    let at = restore_views(&views, &*checkpoints).await;
    // Appends feed the views as they land, unless the reader publishes decisions.
    let own = !config.views.publish_decisions;
    runtime.views = own.then(|| OwnAppends::new(views.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(
        follow_views(
            NatsFeed::for_views(streams.events.clone(), &at, &views, own),
            views.clone(),
            checkpoints,
            Arc::new(NatsDecisions::new(client.clone())),
            runtime.owned.clone(),
            caught_up,
            ViewsConfig {
                checkpoint_every: config.views.checkpoint_interval,
                publish_decisions: config.views.publish_decisions,
            },
            stop.clone(),
        )
        .map(|()| None),
    );
    tasks.spawn({
        let (client, ingress, stop) = (client.clone(), ingress.clone(), stop.clone());
        async move {
            if let Err(e) = serve_submit(client, ingress, stop).await {
                error!(error = %e, "ingress stopped");
            }
            None
        }
    });
    tasks.spawn({
        let (client, views, stop) = (client.clone(), views.clone(), stop.clone());
        async move {
            if let Err(e) = serve_reads(client, views, stop).await {
                error!(error = %e, "views over NATS stopped");
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
    let start = shard_starter(ports, runtime);
    if config.cluster.leases {
        // A connection of their own: a renewal never queues behind the
        // shards' intake and appends (measured on a slow link, where the
        // shared connection's renewals took over a quarter of the TTL).
        let mut lease_options = options.nats.clone();
        lease_options.name = Some(format!(
            "{}-leases",
            options.nats.name.as_deref().unwrap_or("allot")
        ));
        let lease_broker = Broker::connect(&lease_options).await?;
        let leases = NatsLeases::open(
            lease_broker.jetstream(),
            instance_id(&config),
            config.cluster.lease_ttl,
            config.nats.replicas,
        )
        .await?;
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
        ingress,
        views,
        auth_token: config.http.auth_token.clone(),
        max_body_bytes: config.http.max_body_bytes,
        max_batch_size: config.limits.max_batch_size,
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
    let failure = supervise(&mut tasks, &stop).await;
    let _ = api_task.await;
    ops_stop.cancel();
    if let Some((_, task)) = ops {
        let _ = task.await;
    }
    broker.drain(Duration::from_secs(5)).await;
    info!("allot stopped");
    failure.map_or(Ok(()), Err)
}

/// This instance's id in the lease bucket: the configured one, else random.
fn instance_id(config: &Config) -> String {
    config
        .cluster
        .instance_id
        .clone()
        .unwrap_or_else(|| format!("allot-{:08x}", rand::random::<u32>()))
}

/// The shards' ports on NATS, with the configured workers.
fn nats_ports(
    config: &Config,
    options: &ServeOptions,
    broker: &Broker,
    streams: &Streams,
    limits: Limits,
) -> NatsPorts {
    let fulfiller = match options.fulfiller.clone() {
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
            AnyFulfiller::Nats(NatsFulfiller::new(broker.client().clone(), timeout))
        }
    };
    let router = config.router();
    let concurrency = config.clone();
    let shard_router = router.clone();
    Ports {
        log: NatsLog::new(broker.jetstream().clone(), streams.events.clone()),
        intake: NatsIntake::new(
            broker.jetstream().clone(),
            streams.orders.clone(),
            router,
            limits,
        ),
        snapshots: NatsSnapshots::new(streams.snapshots.clone()),
        workers: Workers::new(
            fulfiller,
            move |w| concurrency.concurrency_for(w),
            options.runtime.worker_timeout,
        ),
        shard_of: Box::new(move |p| shard_router.shard_for(p)),
        claims: Arc::new(ClaimRouter::with_remote(Arc::new(NatsClaims::new(
            broker.client().clone(),
        )))),
    }
}

/// Waits for every task; a failed shard or a panic stops the rest and is
/// the error returned.
async fn supervise(
    tasks: &mut tokio::task::JoinSet<Option<(u32, ShardOutcome)>>,
    stop: &CancellationToken,
) -> Option<ServeError> {
    let mut failure = None;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Some((shard, Ok(ShardExit::Fenced)))) => {
                error!(shard, "shard fenced by another writer")
            }
            Ok(Some((shard, Err(e)))) => {
                error!(shard, error = %e, "shard failed");
                failure.get_or_insert(ServeError::Shard { shard, why: e });
                stop.cancel();
            }
            Ok(_) => {}
            Err(e) => {
                failure.get_or_insert(ServeError::Panicked(e.to_string()));
                stop.cancel();
            }
        }
    }
    failure
}
