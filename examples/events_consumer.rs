//! Reads allot's decision feed, EVENTS, applying each batch once (README,
//! "The decision feed"), written from the README alone: its own types for
//! the batches, no allot internals.
//!
//! A durable pull consumer on stream `EVENTS` (filter `events.*`), explicit
//! acks: apply a batch, record it, then ack it. Delivery is at least once,
//! so the reader keeps, per shard, the stream sequence of the last batch
//! it applied (in `--state`, a JSON file written before each ack) and
//! follows the chain rule: a batch not past the shard's last applied was
//! applied already (skip); one whose `prev` is the last applied follows it
//! (apply); any other `prev` is a gap (read the shard again from the last
//! applied + 1). A shard new to the reader starts at the first batch seen.
//!
//! Applying a batch means printing its order decisions, one line each:
//! `<stream seq> <shard> <type> <order id> [<reason kind> | <to>]`.
//!
//! ```sh
//! cargo run --example events_consumer -- --nats-url nats://127.0.0.1:4222 --state events.json
//! ```
//!
//! Runs until Ctrl-C, or `--idle` seconds without a batch.
//! `--crash-after N` exits after applying N batches without acking the
//! last one (a crash between apply and ack), to show the skip next run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, stream::Stream};
use clap::Parser;
use futures::StreamExt;
use serde::Deserialize;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    #[arg(long, default_value = "events-consumer-rs")]
    durable: String,
    #[arg(long, default_value = "events-consumer-rs.json")]
    state: PathBuf,
    /// Seconds before an unacked batch is delivered again.
    #[arg(long, default_value_t = 30.0)]
    ack_wait: f64,
    /// Stop after this many seconds without a batch.
    #[arg(long)]
    idle: Option<u64>,
    /// Exit after applying this many batches, the last one unacked.
    #[arg(long)]
    crash_after: Option<u64>,
}

/// One message on `events.<shard>`. Only `v` is read first: a batch of
/// another version may mean something else.
#[derive(Deserialize)]
struct Envelope {
    v: u64,
}

#[derive(Deserialize)]
struct Batch {
    shard: u32,
    prev: u64,
    events: Vec<Event>,
}

/// The events this reader acts on; every other type is `Other`. Unknown
/// fields are ignored.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    OrderConfirmed {
        id: String,
    },
    OrderRejected {
        id: String,
        reason: Reason,
    },
    OrderRerouted {
        id: String,
        to: String,
    },
    OrderBackordered {
        id: String,
    },
    OrderCancelled {
        id: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Reason {
    kind: String,
}

/// What the chain rule made of a batch.
enum Step {
    Applied,
    Skipped,
    Ignored,
    /// `shard`'s batches after `last` and before this one are missing here.
    Gap {
        shard: u32,
        last: u64,
    },
}

/// The last applied stream sequence of each shard, kept in a file.
struct Reader {
    path: PathBuf,
    last: BTreeMap<u32, u64>,
}

impl Reader {
    fn open(path: PathBuf) -> anyhow::Result<Reader> {
        let last = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Reader { path, last })
    }

    fn save(&self) -> anyhow::Result<()> {
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&self.last)?)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }

    /// Applies the batch stored at `seq` by the chain rule.
    fn offer(&mut self, seq: u64, payload: &[u8]) -> anyhow::Result<Step> {
        match rmp_serde::from_slice::<Envelope>(payload) {
            Ok(Envelope { v: 1 }) => {}
            Ok(_) => return Ok(Step::Ignored), // a version this reader does not read
            Err(e) => {
                eprintln!("unreadable batch {seq}: {e}");
                return Ok(Step::Ignored);
            }
        }
        let batch: Batch = match rmp_serde::from_slice(payload) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("unreadable batch {seq}: {e}");
                return Ok(Step::Ignored);
            }
        };
        if let Some(&last) = self.last.get(&batch.shard) {
            if seq <= last {
                eprintln!("skip {seq}: shard {} applied up to {last}", batch.shard);
                return Ok(Step::Skipped);
            }
            if batch.prev != last {
                return Ok(Step::Gap {
                    shard: batch.shard,
                    last,
                });
            }
        }
        for event in &batch.events {
            print_decision(seq, batch.shard, event);
        }
        self.last.insert(batch.shard, seq);
        self.save()?;
        Ok(Step::Applied)
    }
}

fn print_decision(seq: u64, shard: u32, event: &Event) {
    let line = match event {
        Event::OrderConfirmed { id } => format!("order_confirmed {id}"),
        Event::OrderRejected { id, reason } => format!("order_rejected {id} {}", reason.kind),
        Event::OrderRerouted { id, to } => format!("order_rerouted {id} {to}"),
        Event::OrderBackordered { id } => format!("order_backordered {id}"),
        Event::OrderCancelled { id } => format!("order_cancelled {id}"),
        Event::Other => return,
    };
    println!("{seq} {shard} {line}");
}

/// A gap on `shard` before batch `upto`: reads the shard again from its
/// last applied + 1 with a throwaway ordered consumer.
async fn refill(stream: &Stream, reader: &mut Reader, shard: u32, upto: u64) -> anyhow::Result<()> {
    let from = reader.last[&shard] + 1;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: format!("events.{shard}"),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    loop {
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(2), messages.next()).await
        else {
            bail!(
                "gap on shard {shard}: batches after {} before {upto} are missing",
                from - 1
            );
        };
        let message = message?;
        let seq = message
            .info()
            .map_err(|e| anyhow::anyhow!(e))?
            .stream_sequence;
        if seq >= upto {
            return Ok(());
        }
        if let Step::Gap { last, .. } = reader.offer(seq, &message.payload)? {
            bail!("gap on shard {shard}: batch {seq} does not follow {last}");
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut reader = Reader::open(args.state.clone())?;
    let client = async_nats::connect(&args.nats_url).await?;
    let js = jetstream::new(client);
    let stream = js.get_stream("EVENTS").await.context("stream EVENTS")?;
    let consumer = stream
        .get_or_create_consumer(
            &args.durable,
            pull::Config {
                durable_name: Some(args.durable.clone()),
                filter_subject: "events.*".into(),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs_f64(args.ack_wait),
                ..Default::default()
            },
        )
        .await
        .context("the durable consumer")?;

    let (mut applied, mut idle) = (0, 0);
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(100)
            .expires(Duration::from_secs(1))
            .messages()
            .await?;
        let mut got = false;
        while let Some(message) = tokio::select! {
            m = batch.next() => m,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        } {
            let message = message.map_err(|e| anyhow::anyhow!(e))?;
            got = true;
            let seq = message
                .info()
                .map_err(|e| anyhow::anyhow!(e))?
                .stream_sequence;
            let mut step = reader.offer(seq, &message.payload)?;
            if let Step::Gap { shard, .. } = step {
                refill(&stream, &mut reader, shard, seq).await?;
                step = reader.offer(seq, &message.payload)?;
                if let Step::Gap { last, .. } = step {
                    bail!("gap on shard {shard}: batch {seq} does not follow {last}");
                }
            }
            if let Step::Applied = step {
                applied += 1;
                if args.crash_after.is_some_and(|n| applied >= n) {
                    eprintln!("crash after {applied} batches, {seq} not acked");
                    std::process::exit(3);
                }
            }
            message.double_ack().await.map_err(|e| anyhow::anyhow!(e))?;
        }
        idle = if got { 0 } else { idle + 1 };
        if args.idle.is_some_and(|limit| idle >= limit) {
            return Ok(());
        }
    }
}
