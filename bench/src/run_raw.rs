//! The raw JetStream baselines: the same orders published the same way into
//! the same ORDERS stream (allot's stream, subject transform and per-shard
//! durable pull consumers, created by `allot::adapters::nats::ensure_streams`),
//! consumed by one task per shard consumer. No scheduling, no event log:
//! the broker's own speed for this traffic, acked either per message (as
//! allot's intake does) or in batches (`AckPolicy::All`, acking the last
//! message of each chunk the pull stream has ready). Its gate: every order
//! id (`Nats-Msg-Id`) seen exactly once, none missing, none extra.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use allot::adapters::nats::{ensure_streams, shard_consumer, ACK_WAIT};
use allot::config::Config;
use anyhow::Context as _;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::consumer::{self, AckPolicy, PullConsumer};
use async_nats::jetstream::stream::Stream;
use futures::StreamExt as _;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::gate::Answers;
use crate::procs::{Nats, NatsSync};
use crate::publish::{publish, Pace};
use crate::stats::{histogram, record, Latency, Run, Throughput};
use crate::workload::{order_index, Workload};

/// How the raw consumers acknowledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawAck {
    /// `AckPolicy::Explicit`, one ack per message (allot's intake).
    PerMessage,
    /// `AckPolicy::All`, one ack for the last message of each ready chunk.
    Batched,
}

/// Messages taken from the pull stream at once, at most.
const CHUNK: usize = 1_024;

/// Give up when no order arrives for this long.
const IDLE: Duration = Duration::from_secs(30);

/// What one consumer task saw.
struct Seen {
    answers: Answers,
    /// Order index and the time it was received and acked.
    times: Vec<(u32, Instant)>,
}

/// Publishes and consumes `workload` on a fresh nats-server (default fsync).
pub async fn run(
    nats_bin: &std::path::Path,
    config: &std::path::Path,
    workload: &Workload,
    ack: RawAck,
    pace: Pace,
) -> anyhow::Result<Run> {
    let nats = Nats::start(nats_bin, NatsSync::Default)?;
    let client = async_nats::connect(&nats.url).await?;
    let js = async_nats::jetstream::new(client.clone());
    let router = Config::load(config)
        .with_context(|| format!("loading {}", config.display()))?
        .router();
    let streams = ensure_streams(&js, &router, 5, ACK_WAIT).await?;
    let n = workload.orders.len();
    let received = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for shard in 0..router.shard_count() {
        let consumer = consumer_for(&streams.orders, shard, ack).await?;
        let task = consume(consumer, ack, n, received.clone(), stopped.clone());
        tasks.push(tokio::spawn(task));
    }
    let nats0 = nats.proc.usage()?;
    let start = Instant::now();
    let intended = publish(&js, workload, pace, 1).await?;
    let (mut last, mut progress) = (0, Instant::now());
    loop {
        let got = received.load(Ordering::Relaxed);
        if got >= n as u64 || progress.elapsed() > IDLE {
            break;
        }
        if got > last {
            (last, progress) = (got, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let nats1 = nats.proc.usage()?;
    let _ = stop.send(true);
    let mut answers = Answers::new(n);
    let mut times = Vec::with_capacity(n);
    for task in tasks {
        let seen = task.await.context("a raw consumer panicked")??;
        answers.merge(&seen.answers);
        times.extend(seen.times);
    }
    client.flush().await?;
    let mut result = Run {
        mode: pace.mode(),
        target_rate: pace.rate(),
        orders: n as u64,
        gate: answers.gate(workload, false),
        ..Run::default()
    }
    .with_cpu(None, Some(nats1.cpu_secs - nats0.cpu_secs));
    if !result.gate.passed() {
        return Ok(result);
    }
    let mut latency = histogram();
    let mut decided = Vec::with_capacity(n);
    for &(i, t) in &times {
        record(&mut latency, intended[i as usize], t);
        decided.push(t);
    }
    result.throughput = Some(Throughput::of(start, &decided, None));
    result.admission = Some(Latency::of(&latency));
    result.final_decision = result.admission;
    Ok(result)
}

/// Shard `shard`'s intake consumer as allot created it, or the same with
/// `AckPolicy::All` for [`RawAck::Batched`] (re-created with only that
/// changed).
async fn consumer_for(orders: &Stream, shard: u32, ack: RawAck) -> anyhow::Result<PullConsumer> {
    let name = shard_consumer(shard);
    let existing: PullConsumer = orders
        .get_consumer(&name)
        .await
        .map_err(|e| anyhow::anyhow!("consumer {name}: {e}"))?;
    if ack == RawAck::PerMessage {
        return Ok(existing);
    }
    let config = consumer::Config {
        ack_policy: AckPolicy::All,
        ..existing.cached_info().config.clone()
    };
    orders
        .delete_consumer(&name)
        .await
        .map_err(|e| anyhow::anyhow!("deleting consumer {name}: {e}"))?;
    orders
        .create_consumer(config)
        .await
        .map_err(|e| anyhow::anyhow!("creating ack-all consumer {name}: {e}"))?;
    orders
        .get_consumer(&name)
        .await
        .map_err(|e| anyhow::anyhow!("consumer {name}: {e}"))
}

/// Pulls and acks until told to stop; counts into `received`.
async fn consume(
    consumer: PullConsumer,
    ack: RawAck,
    orders: usize,
    received: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Seen> {
    let mut seen = Seen {
        answers: Answers::new(orders),
        times: Vec::new(),
    };
    let messages = consumer
        .messages()
        .await
        .map_err(|e| anyhow::anyhow!("pulling orders: {e}"))?;
    let mut chunks = messages.ready_chunks(CHUNK);
    let mut got = Vec::with_capacity(CHUNK);
    loop {
        let chunk = tokio::select! {
            biased;
            _ = stop.changed() => break,
            chunk = chunks.next() => chunk,
        };
        let Some(chunk) = chunk else { break };
        let mut last = None;
        got.clear();
        for message in chunk {
            let message = match message {
                Ok(m) => m,
                // Missed heartbeats and the like: the stream goes on.
                Err(e) => {
                    eprintln!("raw consumer: {e}");
                    continue;
                }
            };
            let index = message
                .headers
                .as_ref()
                .and_then(|h| h.get(NATS_MESSAGE_ID))
                .and_then(|id| order_index(id.as_str()));
            seen.answers.record(index, false);
            got.push(index);
            match ack {
                RawAck::PerMessage => message
                    .ack()
                    .await
                    .map_err(|e| anyhow::anyhow!("acking an order: {e}"))?,
                RawAck::Batched => last = Some(message),
            }
        }
        if let Some(message) = last {
            message
                .ack()
                .await
                .map_err(|e| anyhow::anyhow!("acking a batch: {e}"))?;
        }
        let now = Instant::now();
        for &i in got.iter().flatten() {
            seen.times.push((i as u32, now));
        }
        received.fetch_add(got.len() as u64, Ordering::Relaxed);
    }
    Ok(seen)
}
