//! Prometheus metrics. [`install`] sets up the process-wide recorder once
//! (real histogram buckets per metric, no listener of its own: whoever
//! serves HTTP renders [`PrometheusHandle::render`]). The code that counts
//! holds handles made once per shard, warehouse or component
//! ([`ShardMetrics`], [`WorkerMetrics`], ...), so the hot path never builds
//! or hashes label sets. Every name, label and bucket list is in [`names`].
//! [`Exporter`] is what `/metrics` serves: the process metrics are read at
//! each scrape, then everything is rendered.

mod handles;
pub mod names;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

pub use handles::{
    register_warehouses, BatchTally, CartMetrics, DeadLetterMetrics, IngressMetrics, NatsMetrics,
    Received, ShardMetrics, ViewMetrics, WorkerMetrics,
};
pub use metrics_exporter_prometheus::PrometheusHandle;
use names::{Kind, BUILD_INFO, COMMIT, METRICS, VERSION};

/// The git commit this binary was built from, if the build said
/// (`ALLOT_GIT_COMMIT=$(git rev-parse --short HEAD) cargo build`): read at
/// compile time only, so no build script reruns on every commit.
pub const GIT_COMMIT: &str = match option_env!("ALLOT_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// How often histogram samples are folded into their buckets when nobody
/// scrapes (a render does it too), so memory stays bounded.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// A recorder with every histogram's buckets set; not installed. Tests use
/// it as a local recorder (`metrics::set_default_local_recorder`).
pub fn recorder() -> PrometheusRecorder {
    builder().build_recorder()
}

fn builder() -> PrometheusBuilder {
    METRICS.iter().filter(|m| m.kind == Kind::Histogram).fold(
        PrometheusBuilder::new(),
        |builder, m| {
            builder
                .set_buckets_for_metric(Matcher::Full(m.name.to_owned()), m.buckets)
                .expect("every histogram in names::METRICS has buckets")
        },
    )
}

/// Installs the process-wide Prometheus recorder, describes every metric,
/// sets [`names::BUILD_INFO`], and starts a thread that runs upkeep. Later calls return the same
/// handle, so tests may call it freely.
///
/// # Errors
/// If another global `metrics` recorder was installed first.
pub fn install() -> Result<PrometheusHandle, InstallError> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = builder().install_recorder().map_err(|e| {
                format!("installing the Prometheus recorder: {e} (another metrics recorder is installed)")
            })?;
            describe();
            build_info();
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                })
                .map_err(|e| format!("starting the metrics upkeep thread: {e}"))?;
            Ok(handle)
        })
        .clone()
        .map_err(InstallError)
}

/// This process's resident memory in bytes, read from `/proc/self/statm`
/// (Linux; `None` elsewhere). For measurements by hand: memory per order
/// held, per id remembered.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// What `/metrics` renders: the installed recorder's metrics, the process
/// metrics (CPU, memory, file descriptors, threads) read at each render.
#[derive(Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

impl Exporter {
    /// Installs the recorder ([`install`]) and describes the process metrics.
    ///
    /// # Errors
    /// As [`install`].
    pub fn install() -> Result<Exporter, InstallError> {
        let handle = install()?;
        let process = metrics_process::Collector::default();
        process.describe();
        process.collect();
        Ok(Exporter { handle, process })
    }

    /// The exposition text, process metrics read just now.
    pub fn render(&self) -> String {
        self.process.collect();
        self.handle.render()
    }
}

/// Sets [`names::BUILD_INFO`] to 1 with this build's version and commit.
pub fn build_info() {
    metrics::gauge!(BUILD_INFO, VERSION => env!("CARGO_PKG_VERSION"), COMMIT => GIT_COMMIT)
        .set(1.0);
}

/// The metrics recorder could not be installed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct InstallError(String);

/// Registers help text and unit of every metric with the current recorder.
pub fn describe() {
    for m in METRICS {
        let (name, help) = (m.name, m.help);
        match (m.kind, m.unit) {
            (Kind::Counter, Some(unit)) => metrics::describe_counter!(name, unit, help),
            (Kind::Counter, None) => metrics::describe_counter!(name, help),
            (Kind::Gauge, Some(unit)) => metrics::describe_gauge!(name, unit, help),
            (Kind::Gauge, None) => metrics::describe_gauge!(name, help),
            (Kind::Histogram, Some(unit)) => metrics::describe_histogram!(name, unit, help),
            (Kind::Histogram, None) => metrics::describe_histogram!(name, help),
        }
    }
}
