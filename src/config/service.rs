//! The sections that set up the process rather than the scheduling rules:
//! the NATS connection, the HTTP API, logs, workers and the runtime's
//! snapshot and drain knobs. Like the rest of the config they come from
//! built-in defaults, files, `ALLOT__SECTION__KEY` environment variables and
//! flags (see `layers`), so one container image serves every environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// `[nats]`: where the broker is and how to authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URLs, comma-separated.
    pub url: String,
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A `.creds` file (JWT and nkey seed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creds: Option<PathBuf>,
    /// An nkey seed (`SU...`).
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub nkey: Option<String>,
    /// CA certificate that verifies the server; setting it turns TLS on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate and key, for servers that verify clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Deliveries after which an intake message is given up (set when the
    /// intake consumers are first created).
    pub max_deliver: i64,
    /// How long an intake message may stay unacked before it is redelivered
    /// (an instance died holding it). Set when the consumers are created.
    #[serde(with = "super::duration")]
    pub ack_wait: Duration,
    /// Copies of each stream and bucket allot creates: 1 on a single
    /// server, 3 on a 3-node cluster (up to 5). Existing ones keep theirs.
    pub replicas: usize,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            user: None,
            password: None,
            token: None,
            creds: None,
            nkey: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            max_deliver: 20,
            ack_wait: Duration::from_secs(30),
            replicas: 1,
        }
    }
}

/// `[http]`: the JSON API under `/v1`, and the operations endpoints
/// (`/metrics`, `/livez`, `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Where the API listens. Port 0 picks a free port (logged at start).
    pub bind: SocketAddr,
    /// Where `/metrics`, `/livez` and `/readyz` listen, without auth. Left
    /// out, they are served on `bind` (still without auth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops_bind: Option<SocketAddr>,
    /// When set, mutating routes need `Authorization: Bearer <token>`.
    #[serde(deserialize_with = "lenient", skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// Largest request body, in bytes (a batch of commands; a single order
    /// is held to `limits.max_payload_bytes`).
    pub max_body_bytes: usize,
    /// Longest a request may take before it is answered 503.
    #[serde(with = "super::duration")]
    pub request_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([0, 0, 0, 0], 8080)),
            ops_bind: Some(SocketAddr::from(([0, 0, 0, 0], 9100))),
            auth_token: None,
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    #[default]
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[log]`: format and filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing env-filter, e.g. `info,allot::runtime=debug`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: "info,async_nats=warn".into(),
        }
    }
}

/// Which workers enact released orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FulfillerKind {
    /// In-process, seeded latency and failures (demos, benchmarks).
    #[default]
    Simulated,
    /// NATS requests to `allot.fulfil.<warehouse>`.
    Nats,
}

/// `[fulfiller]`: the workers and how long one may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FulfillerConfig {
    pub kind: FulfillerKind,
    /// Simulated workers' median latency.
    #[serde(with = "super::duration")]
    pub latency_p50: Duration,
    /// Simulated workers' 99th percentile latency (at least the median).
    #[serde(with = "super::duration")]
    pub latency_p99: Duration,
    /// Share of simulated enactments that fail, `0..=1`.
    pub failure_rate: f64,
    /// How long a worker may take before the attempt is retried under the
    /// same idempotency key.
    #[serde(with = "super::duration")]
    pub timeout: Duration,
}

impl Default for FulfillerConfig {
    fn default() -> Self {
        Self {
            kind: FulfillerKind::Simulated,
            latency_p50: Duration::from_millis(5),
            latency_p99: Duration::from_millis(50),
            failure_rate: 0.02,
            timeout: Duration::from_secs(10),
        }
    }
}

/// `[runtime]`: snapshots and shutdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// Snapshot a shard after this many logged events (0: not by count).
    pub snapshot_every: u64,
    /// ... or after this long with new events ("0s": not by time).
    #[serde(with = "super::duration")]
    pub snapshot_interval: Duration,
    /// On SIGTERM/SIGINT, how long in-flight work may take to finish before
    /// it is handed back to the queue.
    #[serde(with = "super::duration")]
    pub drain_deadline: Duration,
}

impl Default for RuntimeSection {
    fn default() -> Self {
        Self {
            snapshot_every: 100_000,
            snapshot_interval: Duration::from_secs(60),
            drain_deadline: Duration::from_secs(10),
        }
    }
}

/// `[views]`: the read model each instance keeps in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViewsSection {
    /// Orders kept for `GET /v1/orders/{id}` (all shards); past it the
    /// oldest decided ones are forgotten first (about 220 bytes each,
    /// `views::tests::bytes_per_order_at_a_million_orders`).
    pub max_orders: usize,
    /// How often an owned shard's views are checkpointed (start-up replays
    /// the log from the last checkpoint).
    #[serde(with = "super::duration")]
    pub checkpoint_interval: Duration,
    /// Publish every decision of the shards this instance owns on core
    /// NATS `decisions.<warehouse>.<sku>` (best effort; EVENTS is the
    /// durable feed). Off by default: it is a broker write per decision.
    pub publish_decisions: bool,
}

impl Default for ViewsSection {
    fn default() -> Self {
        Self {
            max_orders: 1_000_000,
            checkpoint_interval: Duration::from_secs(60),
            publish_decisions: false,
        }
    }
}

/// A string that may arrive as another scalar: `ALLOT__HTTP__AUTH_TOKEN=1234`
/// reaches serde as the number 1234, and is still meant as text.
fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    Ok(Option::<Scalar>::deserialize(d)?.map(|s| match s {
        Scalar::Text(s) => s,
        Scalar::Int(n) => n.to_string(),
        Scalar::Float(x) => x.to_string(),
        Scalar::Bool(b) => b.to_string(),
    }))
}

/// `[cluster]`: several instances sharing the shards through leases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Take shards by lease (KV bucket `allot_leases`) and rebalance them
    /// over the live instances. Off: this instance runs every shard, and a
    /// second one on the same streams is only fenced by the log.
    pub leases: bool,
    /// This instance's id (`A-Z a-z 0-9 _ -`); a random one when left out.
    /// A stable id lets a restarted instance take its leases back at once
    /// instead of waiting for them to lapse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// A lease not renewed for this long lapses; heartbeats come every
    /// third of it.
    #[serde(with = "super::duration")]
    pub lease_ttl: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            leases: true,
            instance_id: None,
            lease_ttl: Duration::from_secs(6),
        }
    }
}
