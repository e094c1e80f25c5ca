//! One allot run: a fresh nats-server (default fsync or `sync_interval:
//! always`) and `allot serve`, stock set with keyed commands, the workload
//! published (max or open loop), every decision read back from EVENTS,
//! gated, audited and timed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use allot::adapters::nats::producer::Producer;
use allot::adapters::nats::{NatsFiler, EVENTS_STREAM, ORDERS_STREAM};
use allot::config::Config;
use allot::domain::Command;
use allot::ingress::Ingress;
use allot::wire::Limits;
use anyhow::Context as _;
use futures::stream::FuturesUnordered;
use futures::TryStreamExt as _;
use tokio::time::Instant;

use crate::follow::follow;
use crate::procs::{start_allot, AllotSpec, Nats, NatsSync, Usage};
use crate::publish::{publish, Pace};
use crate::stats::{histogram, record, Latency, Run, Throughput};
use crate::workload::Workload;

/// Runs `workload` through a fresh allot on a fresh nats-server that
/// fsyncs as `sync` says.
pub async fn run(
    nats_bin: &std::path::Path,
    sync: NatsSync,
    spec: &AllotSpec,
    workload: &Workload,
    pace: Pace,
) -> anyhow::Result<Run> {
    let nats = Nats::start_nodes(nats_bin, sync, spec.nats_nodes)?;
    let mut allot = start_allot(spec, &nats)?;
    let servers = nats
        .url
        .split(',')
        .map(str::parse::<async_nats::ServerAddr>)
        .collect::<Result<Vec<_>, _>>()?;
    let client = async_nats::connect(servers).await?;
    let producer = Producer::new(client.clone());
    let js = producer.jetstream().clone();
    let mut events = producer.wait_for_stream(EVENTS_STREAM).await?;
    producer.wait_for_stream(ORDERS_STREAM).await?;
    let after = events.info().await?.state.last_sequence;
    let n = workload.orders.len();
    let lines = workload.orders.iter().map(|o| o.lines.len()).sum();
    let timeout = Duration::from_secs(30);
    let (stock_seen, follower) = follow(&events, after, n, lines, timeout).await?;
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
    let (allot0, nats0) = (allot.usage()?, nats.usage()?);
    let start = Instant::now();
    // A cart comes alone: never batched.
    let batch = if workload.scenario.carts() {
        1
    } else {
        spec.batch
    };
    let intended = publish(&js, workload, pace, batch).await?;
    let seen = follower.await.context("the EVENTS follower panicked")??;
    let (allot1, nats1) = (allot.usage()?, nats.usage()?);
    allot.stop();
    let mut gate = seen.answers.gate(workload, true);
    let f = &seen.findings;
    if !f.clean() {
        gate.problem(format!(
            "audit of EVENTS: oversold {}, duplicate decisions {}, undecided {}, unconserved partitions {}, illegal transitions {} ({})",
            f.oversold_units,
            f.duplicate_decisions,
            f.undecided,
            f.unconserved_partitions,
            f.illegal_transitions,
            f.examples.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
        ));
    }
    let cpu = |a: Usage, b: Usage| Some(b.cpu_secs - a.cpu_secs);
    let mut result = Run {
        mode: pace.mode(),
        target_rate: pace.rate(),
        orders: n as u64,
        allot_peak_rss_mib: Some(allot1.peak_rss_mib),
        gate,
        ..Run::default()
    }
    .with_cpu(cpu(allot0, allot1), cpu(nats0, nats1));
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
            expected_version: None,
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
