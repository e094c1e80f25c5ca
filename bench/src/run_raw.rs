//! The raw JetStream baseline: the same orders published the same way into
//! the same ORDERS stream (allot's own stream and per-shard consumer
//! settings, created by `allot::adapters::nats::ensure_streams`), consumed
//! by one pull consumer per shard that acks each message. No scheduling,
//! no event log: the broker's own speed for this traffic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use allot::adapters::nats::{ensure_streams, shard_consumer};
use allot::config::Config;
use anyhow::Context as _;
use async_nats::jetstream::consumer::PullConsumer;
use futures::StreamExt as _;
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::procs::Nats;
use crate::publish::{publish, Pace};
use crate::stats::{Gate, Throughput};
use crate::workload::Workload;

#[derive(Debug, Clone, Serialize)]
pub struct RawRun {
    pub throughput: Option<Throughput>,
    pub nats_cpu_s: f64,
    pub nats_cpu_s_per_1k: f64,
    pub gate: Gate,
}

/// Publishes and consumes `workload` on a fresh nats-server.
pub async fn run(
    nats_bin: &std::path::Path,
    config: &std::path::Path,
    workload: &Workload,
) -> anyhow::Result<RawRun> {
    let nats = Nats::start(nats_bin)?;
    let client = async_nats::connect(&nats.url).await?;
    let js = async_nats::jetstream::new(client.clone());
    let router = Config::load(config)
        .with_context(|| format!("loading {}", config.display()))?
        .router();
    let streams = ensure_streams(&js, &router, 5, Duration::from_secs(30)).await?;
    let n = workload.orders.len() as u64;
    let acked = Arc::new(AtomicU64::new(0));
    let times = Arc::new(Mutex::new(Vec::with_capacity(n as usize)));
    let mut consumers = Vec::new();
    for shard in 0..router.shard_count() {
        let consumer: PullConsumer = streams
            .orders
            .get_consumer(&shard_consumer(shard))
            .await
            .map_err(|e| anyhow::anyhow!("consumer {}: {e}", shard_consumer(shard)))?;
        let (acked, times) = (acked.clone(), times.clone());
        consumers.push(tokio::spawn(async move {
            let mut messages = consumer.messages().await?;
            while acked.load(Ordering::Relaxed) < n {
                let next = tokio::time::timeout(Duration::from_secs(30), messages.next()).await;
                let Ok(Some(message)) = next else { break };
                let message = message.map_err(|e| anyhow::anyhow!("pulling orders: {e}"))?;
                message
                    .ack()
                    .await
                    .map_err(|e| anyhow::anyhow!("acking an order: {e}"))?;
                times.lock().await.push(Instant::now());
                acked.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let nats0 = nats.proc.usage()?;
    let start = Instant::now();
    publish(&js, &workload.orders, Pace::Max).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    client.flush().await?;
    let nats1 = nats.proc.usage()?;
    for consumer in consumers {
        consumer.abort();
    }
    let got = acked.load(Ordering::Relaxed);
    let gate = Gate {
        lost: n.saturating_sub(got),
        duplicates: got.saturating_sub(n),
        ..Gate::default()
    };
    let nats_cpu_s = nats1.cpu_secs - nats0.cpu_secs;
    let times = times.lock().await;
    Ok(RawRun {
        throughput: gate.passed().then(|| Throughput::of(start, &times, None)),
        nats_cpu_s,
        nats_cpu_s_per_1k: nats_cpu_s / n.max(1) as f64 * 1000.0,
        gate,
    })
}
