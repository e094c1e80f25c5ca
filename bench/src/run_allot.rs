//! One allot run: a fresh nats-server and `allot serve`, stock set with
//! keyed commands, the workload published (max or open loop), every
//! decision read back from EVENTS, audited and timed.

use std::sync::atomic::Ordering;
use std::time::Duration;

use std::sync::Arc;

use allot::adapters::nats::producer::Producer;
use allot::adapters::nats::{NatsFiler, EVENTS_STREAM, ORDERS_STREAM};
use allot::config::Config;
use allot::domain::Command;
use allot::ingress::Ingress;
use allot::wire::Limits;
use anyhow::Context as _;
use futures::stream::FuturesUnordered;
use futures::TryStreamExt as _;
use serde::Serialize;
use tokio::time::Instant;

use crate::follow::follow;
use crate::procs::{start_allot, AllotSpec, Nats, Usage};
use crate::publish::{publish, Pace};
use crate::stats::{histogram, record, Gate, Latency, Throughput};
use crate::workload::Workload;

/// What one allot run measured. Speeds are `None` when the gate failed.
#[derive(Debug, Clone, Serialize)]
pub struct AllotRun {
    /// "max" or "open loop at N/s".
    pub mode: String,
    pub target_rate: Option<f64>,
    pub throughput: Option<Throughput>,
    /// Intended send time to first durable decision (reserved or rejected).
    pub admission: Option<Latency>,
    /// Intended send time to durable final decision (confirmed or rejected).
    pub final_decision: Option<Latency>,
    pub allot_cpu_s: f64,
    pub nats_cpu_s: f64,
    pub allot_cpu_s_per_1k: f64,
    pub nats_cpu_s_per_1k: f64,
    pub allot_peak_rss_mib: f64,
    pub nats_peak_rss_mib: f64,
    pub gate: Gate,
}

/// Runs `workload` through a fresh allot and nats-server.
pub async fn run(
    nats_bin: &std::path::Path,
    spec: &AllotSpec,
    workload: &Workload,
    pace: Pace,
) -> anyhow::Result<AllotRun> {
    let nats = Nats::start(nats_bin)?;
    let mut allot = start_allot(spec, &nats)?;
    let client = async_nats::connect(&nats.url).await?;
    let producer = Producer::new(client.clone());
    let js = producer.jetstream().clone();
    let mut events = producer.wait_for_stream(EVENTS_STREAM).await?;
    producer.wait_for_stream(ORDERS_STREAM).await?;
    let after = events.info().await?.state.last_sequence;
    let n = workload.orders.len();
    let (stock_seen, follower) = follow(&events, after, n, Duration::from_secs(30)).await?;
    set_stock(client.clone(), spec, workload).await?;
    let partitions = workload.partitions.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while stock_seen.load(Ordering::Relaxed) < partitions {
        anyhow::ensure!(
            Instant::now() < deadline,
            "allot applied {} of {partitions} stock commands in 120 s",
            stock_seen.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (allot0, nats0) = (allot.usage()?, nats.proc.usage()?);
    let start = Instant::now();
    let intended = publish(&js, &workload.orders, pace).await?;
    let seen = follower.await.context("the EVENTS follower panicked")??;
    let (allot1, nats1) = (allot.usage()?, nats.proc.usage()?);
    allot.stop();
    let findings = &seen.findings;
    let gate = Gate {
        oversold: findings.oversold_units,
        lost: findings.undecided,
        duplicates: findings.duplicate_decisions,
        sold: findings.units_sold,
        sellable: workload.sellable(),
        problems: if findings.unconserved_partitions > 0 {
            vec![format!(
                "{} partitions do not conserve stock",
                findings.unconserved_partitions
            )]
        } else {
            vec![]
        },
    };
    let cpu = |a: Usage, b: Usage| b.cpu_secs - a.cpu_secs;
    let (allot_cpu_s, nats_cpu_s) = (cpu(allot0, allot1), cpu(nats0, nats1));
    let per_1k = |s: f64| s / (n.max(1) as f64) * 1000.0;
    let mut result = AllotRun {
        mode: match pace {
            Pace::Max => "max".into(),
            Pace::Rate { per_sec } => format!("open loop at {per_sec:.0}/s"),
        },
        target_rate: match pace {
            Pace::Max => None,
            Pace::Rate { per_sec } => Some(per_sec),
        },
        throughput: None,
        admission: None,
        final_decision: None,
        allot_cpu_s,
        nats_cpu_s,
        allot_cpu_s_per_1k: per_1k(allot_cpu_s),
        nats_cpu_s_per_1k: per_1k(nats_cpu_s),
        allot_peak_rss_mib: allot1.peak_rss_mib,
        nats_peak_rss_mib: nats1.peak_rss_mib,
        gate,
    };
    if !result.gate.passed() {
        return Ok(result);
    }
    let (mut admission, mut finals) = (histogram(), histogram());
    let mut decided = Vec::with_capacity(n);
    for (i, &sent) in intended.iter().enumerate() {
        if let Some(t) = seen.admitted[i] {
            record(&mut admission, sent, t);
        }
        if let Some(t) = seen.finals[i] {
            record(&mut finals, sent, t);
            decided.push(t);
        }
    }
    let admitted: Vec<Instant> = seen.admitted.iter().flatten().copied().collect();
    let mut throughput = Throughput::of(start, &decided, seen.last_reserved);
    // The phases count admissions: a unit is sold out once the last
    // reservation is made, whatever the fulfiller does afterwards.
    let phases = Throughput::of(start, &admitted, seen.last_reserved);
    throughput.contended_per_s = phases.contended_per_s;
    throughput.sold_out_per_s = phases.sold_out_per_s;
    result.throughput = Some(throughput);
    result.admission = Some(Latency::of(&admission));
    result.final_decision = Some(Latency::of(&finals));
    Ok(result)
}

/// Sets every partition's stock with keyed commands through the ingress,
/// 1,000 at a time.
async fn set_stock(
    client: async_nats::Client,
    spec: &AllotSpec,
    workload: &Workload,
) -> anyhow::Result<()> {
    let config =
        Config::load(&spec.config).with_context(|| format!("loading {}", spec.config.display()))?;
    let ingress = Ingress::new(
        Arc::new(NatsFiler::for_client(client)),
        config.router(),
        Limits::from_config(&config),
    );
    let mut filing = FuturesUnordered::new();
    for (i, partition) in workload.partitions.iter().enumerate() {
        if filing.len() >= 1_000 {
            filing
                .try_next()
                .await
                .context("JetStream refused a stock command")?;
        }
        let set = Command::SetStock {
            partition: partition.clone(),
            on_hand: workload.scenario.stock,
        };
        let ingress = &ingress;
        filing.push(async move { ingress.command(&format!("stock-{i}"), set).await });
    }
    filing
        .try_collect::<Vec<_>>()
        .await
        .context("JetStream refused a stock command")?;
    Ok(())
}
