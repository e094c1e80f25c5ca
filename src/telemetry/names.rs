//! Every metric allot exports, in one table: name, type, unit, labels, help
//! and (for histograms) bucket bounds. The recorder set-up, the dashboard
//! check and `docs/metrics.md` all read this table, so a name lives in one
//! place only.

use metrics::Unit;

pub const ORDERS_RECEIVED: &str = "allot_orders_received_total";
pub const INTAKE_MESSAGES: &str = "allot_intake_messages_total";
pub const INTAKE_REDELIVERIES: &str = "allot_intake_redeliveries_total";
pub const DECISIONS: &str = "allot_decisions_total";
pub const REJECTIONS: &str = "allot_rejections_total";
pub const ORDER_RETRIES: &str = "allot_order_retries_total";
pub const DECISION_LATENCY: &str = "allot_decision_latency_seconds";
pub const LOG_APPEND_DURATION: &str = "allot_log_append_duration_seconds";
pub const LOG_APPEND_EVENTS: &str = "allot_log_append_events";
pub const LOG_APPEND_RETRIES: &str = "allot_log_append_retries_total";
pub const LOG_CONFLICTS: &str = "allot_log_conflicts_total";
pub const QUEUE_DEPTH: &str = "allot_queue_depth";
pub const BACKORDERED: &str = "allot_backordered";
pub const IN_FLIGHT: &str = "allot_in_flight";
pub const STOCK_AVAILABLE: &str = "allot_stock_available";
pub const STOCK_SHORT: &str = "allot_stock_short";
pub const WORKER_DURATION: &str = "allot_worker_duration_seconds";
pub const NATS_CONNECTED: &str = "allot_nats_connected";
pub const NATS_RECONNECTS: &str = "allot_nats_reconnects_total";
pub const NATS_DISCONNECTS: &str = "allot_nats_disconnects_total";
pub const VIEW_LAG: &str = "allot_view_lag_seconds";
pub const VIEW_ORDERS: &str = "allot_view_orders";
pub const DEAD_LETTERS: &str = "allot_dead_letters";
pub const BUILD_INFO: &str = "allot_build_info";
pub const CARTS: &str = "allot_carts_total";
pub const CART_REVOKES: &str = "allot_cart_revokes_total";

/// The process metrics (`metrics-process`, the names every Prometheus
/// client library uses), refreshed on each scrape of `/metrics`.
pub const PROCESS_CPU: &str = "process_cpu_seconds_total";
pub const PROCESS_RSS: &str = "process_resident_memory_bytes";
pub const PROCESS_VIRTUAL: &str = "process_virtual_memory_bytes";
pub const PROCESS_VIRTUAL_MAX: &str = "process_virtual_memory_max_bytes";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
pub const PROCESS_THREADS: &str = "process_threads";
pub const PROCESS_START: &str = "process_start_time_seconds";

/// Label names: the only ones allot uses (never an order id or SKU).
pub const SHARD: &str = "shard";
pub const WAREHOUSE: &str = "warehouse";
pub const OUTCOME: &str = "outcome";
pub const KIND: &str = "kind";
/// Only on [`BUILD_INFO`]: the crate version and the git commit built.
pub const VERSION: &str = "version";
pub const COMMIT: &str = "commit";

/// Bounds for latencies that are usually milliseconds (log appends,
/// workers): 250 µs to 30 s.
const FAST_SECONDS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
];

/// Bounds for publish-to-decision latency, which includes time queued in
/// the stream behind a backlog: 1 ms to 10 min.
const DECISION_SECONDS: &[f64] = &[
    0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

/// Events per log append: 1 up to the default batch cap (4096).
const BATCH_EVENTS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Option<Unit>,
    pub labels: &'static [&'static str],
    pub help: &'static str,
    /// Upper bounds of the buckets (histograms only).
    pub buckets: &'static [f64],
}

const fn counter(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        unit: Some(Unit::Count),
        labels,
        help,
        buckets: &[],
    }
}

const fn gauge(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Metric {
    Metric {
        name,
        kind: Kind::Gauge,
        unit: Some(Unit::Count),
        labels,
        help,
        buckets: &[],
    }
}

const fn histogram(
    name: &'static str,
    unit: Unit,
    labels: &'static [&'static str],
    help: &'static str,
    buckets: &'static [f64],
) -> Metric {
    Metric {
        name,
        kind: Kind::Histogram,
        unit: Some(unit),
        labels,
        help,
        buckets,
    }
}

/// Every metric allot exports.
pub const METRICS: &[Metric] = &[
    counter(
        CARTS,
        &[OUTCOME],
        "Carts by outcome: opened (accepted by its coordinator), confirmed, rejected, hold_expired (rejected as its hold ran out), cancelled.",
    ),
    counter(
        CART_REVOKES,
        &[],
        "Enactments of carts that failed after that warehouse's enactment began: each must be undone at the warehouse.",
    ),
    counter(
        ORDERS_RECEIVED,
        &[OUTCOME],
        "Orders submitted to ingress, by outcome: accepted, invalid, unroutable, not_filed (the broker did not store it).",
    ),
    counter(
        INTAKE_MESSAGES,
        &[SHARD, KIND],
        "Intake messages handed to a shard, by kind: order, command, invalid.",
    ),
    counter(
        INTAKE_REDELIVERIES,
        &[SHARD],
        "Intake messages delivered more than once (the broker's delivery count above 1).",
    ),
    counter(
        DECISIONS,
        &[SHARD, KIND],
        "Durable order decisions, by kind: queued, reserved, confirmed, rejected, backordered, rerouted, cancelled.",
    ),
    counter(
        REJECTIONS,
        &[SHARD, KIND],
        "Durable rejections, by reason as kind: out_of_stock, invalid, cancelled, retries_exhausted, fulfilment_failed, backorder_expired.",
    ),
    counter(
        ORDER_RETRIES,
        &[SHARD],
        "Worker attempts that failed retryably and were scheduled again.",
    ),
    histogram(
        DECISION_LATENCY,
        Unit::Seconds,
        &[SHARD],
        "From an intake message's JetStream publish time to the moment the log append deciding it is durable.",
        DECISION_SECONDS,
    ),
    histogram(
        LOG_APPEND_DURATION,
        Unit::Seconds,
        &[SHARD],
        "From sending a batch to the event log to its acknowledgement, retries included.",
        FAST_SECONDS,
    ),
    histogram(
        LOG_APPEND_EVENTS,
        Unit::Count,
        &[SHARD],
        "Events per log append (group commit batch size).",
        BATCH_EVENTS,
    ),
    counter(
        LOG_APPEND_RETRIES,
        &[SHARD],
        "Log appends retried after an error or no answer (same batch id).",
    ),
    counter(
        LOG_CONFLICTS,
        &[SHARD],
        "Optimistic-concurrency conflicts on the event log: another writer appended to the shard, which stops here.",
    ),
    gauge(
        QUEUE_DEPTH,
        &[SHARD, WAREHOUSE],
        "Orders queued in the shard's partitions of a warehouse, waiting for stock or a worker.",
    ),
    gauge(
        BACKORDERED,
        &[SHARD, WAREHOUSE],
        "Orders backordered in the shard's partitions of a warehouse, waiting for a restock.",
    ),
    gauge(
        IN_FLIGHT,
        &[SHARD],
        "Worker attempts of the shard running now.",
    ),
    gauge(
        STOCK_AVAILABLE,
        &[SHARD, WAREHOUSE],
        "Free units in the shard's partitions of a warehouse (sum by warehouse for the warehouse's total).",
    ),
    gauge(
        STOCK_SHORT,
        &[SHARD, WAREHOUSE],
        "Units the shard's partitions of a warehouse are short: counted below what workers already enact; incoming units fill it first.",
    ),
    histogram(
        WORKER_DURATION,
        Unit::Seconds,
        &[WAREHOUSE, OUTCOME],
        "One worker attempt, from acquiring a worker to its answer, by outcome: ok, failed, retryable, timeout.",
        FAST_SECONDS,
    ),
    gauge(
        NATS_CONNECTED,
        &[],
        "1 while the NATS connection is up, 0 while it is down.",
    ),
    counter(
        NATS_RECONNECTS,
        &[],
        "NATS connections re-established after the first.",
    ),
    counter(NATS_DISCONNECTS, &[], "NATS connections lost."),
    histogram(
        VIEW_LAG,
        Unit::Seconds,
        &[],
        "From a batch stored in EVENTS to its decisions visible in this instance's views.",
        DECISION_SECONDS,
    ),
    gauge(
        VIEW_ORDERS,
        &[],
        "Orders held in this instance's views (live and decided, every shard).",
    ),
    gauge(
        DEAD_LETTERS,
        &[],
        "Messages in the DLQ stream (intake given up after nats.max_deliver deliveries), as this instance last read it.",
    ),
    gauge(
        BUILD_INFO,
        &[VERSION, COMMIT],
        "Always 1; the labels say which allot runs: its version and the git commit it was built from (unknown if not given at build time).",
    ),
];

/// The process metrics, exported beside [`METRICS`] under their usual
/// names; `metrics-process` describes them.
pub const PROCESS_METRICS: &[Metric] = &[
    process(
        PROCESS_CPU,
        Kind::Counter,
        Unit::Seconds,
        "User and system CPU time spent.",
    ),
    process(
        PROCESS_RSS,
        Kind::Gauge,
        Unit::Bytes,
        "Resident memory size.",
    ),
    process(
        PROCESS_VIRTUAL,
        Kind::Gauge,
        Unit::Bytes,
        "Virtual memory size.",
    ),
    process(
        PROCESS_VIRTUAL_MAX,
        Kind::Gauge,
        Unit::Bytes,
        "Virtual memory limit (RLIMIT_AS).",
    ),
    process(
        PROCESS_OPEN_FDS,
        Kind::Gauge,
        Unit::Count,
        "Open file descriptors.",
    ),
    process(
        PROCESS_MAX_FDS,
        Kind::Gauge,
        Unit::Count,
        "File descriptor limit (RLIMIT_NOFILE).",
    ),
    process(
        PROCESS_THREADS,
        Kind::Gauge,
        Unit::Count,
        "OS threads of the process.",
    ),
    process(
        PROCESS_START,
        Kind::Gauge,
        Unit::Seconds,
        "Start time, seconds since the Unix epoch.",
    ),
];

const fn process(name: &'static str, kind: Kind, unit: Unit, help: &'static str) -> Metric {
    Metric {
        name,
        kind,
        unit: Some(unit),
        labels: &[],
        help,
        buckets: &[],
    }
}

/// allot's metrics and the process metrics.
pub fn all() -> impl Iterator<Item = &'static Metric> {
    METRICS.iter().chain(PROCESS_METRICS)
}

/// The metric called `name`, if allot exports it.
pub fn metric(name: &str) -> Option<&'static Metric> {
    all().find(|m| m.name == name)
}

/// The metric a Prometheus series name belongs to: a histogram's
/// `_bucket`, `_sum` and `_count` series map to the histogram.
pub fn metric_of_series(series: &str) -> Option<&'static Metric> {
    metric(series).or_else(|| {
        ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| series.strip_suffix(suffix))
            .filter_map(metric)
            .find(|m| m.kind == Kind::Histogram)
    })
}
