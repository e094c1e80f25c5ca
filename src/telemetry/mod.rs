//! Prometheus metrics. [`install`] sets up the process-wide recorder once
//! (real histogram buckets per metric, no listener of its own: whoever
//! serves HTTP renders [`PrometheusHandle::render`]). The code that counts
//! holds handles made once per shard, warehouse or component
//! ([`ShardMetrics`], [`WorkerMetrics`], ...), so the hot path never builds
//! or hashes label sets. Every name, label and bucket list is in [`names`].

mod handles;
pub mod names;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

pub use handles::{
    BatchTally, IngressMetrics, NatsMetrics, Received, ShardMetrics, ViewMetrics, WorkerMetrics,
};
pub use metrics_exporter_prometheus::PrometheusHandle;
use names::{Kind, METRICS};

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
/// and starts a thread that runs upkeep. Later calls return the same
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
