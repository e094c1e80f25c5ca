//! Dead letters: intake messages the broker gave up on after `max_deliver`
//! deliveries, kept with why, and put back on request.
//!
//! The broker announces each give-up with the advisory
//! `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.ORDERS.<consumer>`, which
//! carries the message's ORDERS sequence. Advisories are plain NATS
//! messages, gone if nobody listens at that instant, so the
//! `DLQ_ADVISORIES` stream captures them (work-queue retention) and every
//! `allot serve` pulls from one shared durable consumer ([`move_dead_letters`]):
//! an advisory is handled by one instance, and is acked only once its dead
//! letter is stored. ORDERS keeps messages by limits, not by acks, so the
//! original is still there to copy.
//!
//! A dead letter goes to stream `DLQ` on `dlq.<shard>`: the original
//! payload unchanged, its `Allot-Kind` header kept, and headers naming the
//! reason, the original subject, sequence, message id and deliveries, and
//! when. Its `Nats-Msg-Id` is `dlq-<ORDERS seq>`, so an advisory handled
//! twice (an instance died before acking it) stores one dead letter.
//!
//! [`replay`] republishes a dead letter to its original subject with the
//! message id `replay-<DLQ seq>` (not the original id: ORDERS would drop that
//! as a duplicate within its window), then deletes it from `DLQ`. Running a
//! replay twice is harmless: the id dedupes the publish, and the order id in
//! the payload is the shard's idempotency key, so an order decided in the
//! meantime is answered with its earlier decision.
//!
//! The mover also reports how many dead letters wait in `DLQ`
//! (`allot_dead_letters`): at start, after each move, and every
//! [`RECOUNT_EVERY`], so a replay by `allot dlq replay` shows too.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, stream, AckKind, Context};
use async_nats::HeaderMap;
use futures::StreamExt;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::setup::{broker, ensure_stream, SetupError};
use super::{KIND_HEADER, ORDERS_STREAM};
use crate::telemetry::DeadLetterMetrics;

pub const DLQ_STREAM: &str = "DLQ";
pub const ADVISORY_STREAM: &str = "DLQ_ADVISORIES";
/// The durable consumer every instance pulls advisories from.
const MOVER: &str = "dlq-mover";
/// How often the mover reads how many dead letters wait.
pub const RECOUNT_EVERY: Duration = Duration::from_secs(5);

/// Why the message was given up.
pub const REASON_HEADER: &str = "Allot-Dlq-Reason";
/// The subject the message was filed under in ORDERS.
pub const SUBJECT_HEADER: &str = "Allot-Dlq-Subject";
/// Its ORDERS stream sequence.
pub const SEQ_HEADER: &str = "Allot-Dlq-Seq";
/// Its `Nats-Msg-Id`, if it had one.
pub const MSG_ID_HEADER: &str = "Allot-Dlq-Msg-Id";
/// How many times it was delivered.
pub const DELIVERIES_HEADER: &str = "Allot-Dlq-Deliveries";
/// When the broker gave up (RFC 3339, from the advisory).
pub const TIME_HEADER: &str = "Allot-Dlq-Time";

/// The advisories of consumers on ORDERS that gave up on a message.
fn advisory_subject() -> String {
    format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{ORDERS_STREAM}.*")
}

/// Creates or verifies `DLQ` and `DLQ_ADVISORIES`; returns `DLQ`.
pub async fn ensure_dlq(js: &Context) -> Result<stream::Stream, SetupError> {
    ensure_stream(
        js,
        StreamConfig {
            name: ADVISORY_STREAM.into(),
            subjects: vec![advisory_subject()],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            ..Default::default()
        },
    )
    .await?;
    ensure_stream(
        js,
        StreamConfig {
            name: DLQ_STREAM.into(),
            subjects: vec!["dlq.>".into()],
            storage: StorageType::File,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        },
    )
    .await
}

/// The advisory `io.nats.jetstream.advisory.v1.max_deliver`.
#[derive(Debug, Deserialize)]
struct MaxDeliveries {
    consumer: String,
    stream_seq: u64,
    deliveries: u64,
    #[serde(default)]
    timestamp: String,
}

/// Turns captured max-deliveries advisories into dead letters until `stop`.
/// One that cannot be stored yet is logged at error and retried (nak with a
/// delay): none is acked before its dead letter is in `DLQ`.
pub async fn move_dead_letters(js: Context, orders: stream::Stream, stop: CancellationToken) {
    let consumer = match mover(&js).await {
        Ok(c) => c,
        Err(e) => {
            error!(error = %e, "dead-letter mover unavailable: messages over max_deliver stay in {ADVISORY_STREAM} until an instance moves them");
            return;
        }
    };
    let waiting = DeadLetterMetrics::new();
    let mut recount = tokio::time::interval(RECOUNT_EVERY);
    recount.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.is_cancelled() {
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "dead-letter advisories unavailable; retrying");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                _ = recount.tick() => {
                    count_waiting(&js, &waiting).await;
                    continue;
                }
                next = messages.next() => next,
            };
            let Some(Ok(message)) = next else { break };
            let done = match serde_json::from_slice::<MaxDeliveries>(&message.payload) {
                Ok(advisory) => dead_letter(&js, &orders, &advisory).await,
                Err(e) => {
                    // Only the broker publishes there; keep it visible, not retried.
                    error!(error = %e, "unreadable max-deliveries advisory left in {ADVISORY_STREAM}");
                    let _ = message.ack_with(AckKind::Term).await;
                    continue;
                }
            };
            match done {
                Ok(()) => {
                    if let Err(e) = message.ack().await {
                        warn!(error = %e, "advisory ack failed; it comes back and dedupes");
                    }
                    count_waiting(&js, &waiting).await;
                }
                Err(e) => {
                    error!(error = %e, "dead letter not stored; retrying in 1s");
                    let _ = message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await;
                }
            }
        }
    }
}

/// Reports how many messages `DLQ` holds; on a broker error the last count
/// stands (the NATS metrics tell the connection's state).
async fn count_waiting(js: &Context, waiting: &DeadLetterMetrics) {
    match js.get_stream(DLQ_STREAM).await {
        Ok(dlq) => waiting.waiting(dlq.cached_info().state.messages),
        Err(e) => debug!(error = %e, "counting dead letters"),
    }
}

/// Why a dead letter could not be moved, read or replayed.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// The broker refused or failed `what`.
    #[error("{what}: {source}")]
    Broker {
        what: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The dead letter holds no original message (it was gone from ORDERS
    /// when it was moved).
    #[error("{DLQ_STREAM} #{seq}: no original to replay ({reason})")]
    NoOriginal { seq: u64, reason: String },
}

fn failed<E: std::error::Error + Send + Sync + 'static>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> DlqError {
    let what = what.into();
    move |e| DlqError::Broker {
        what,
        source: Box::new(e),
    }
}

async fn mover(js: &Context) -> Result<PullConsumer, DlqError> {
    js.get_stream(ADVISORY_STREAM)
        .await
        .map_err(failed(format!("stream {ADVISORY_STREAM}")))?
        .get_or_create_consumer(
            MOVER,
            pull::Config {
                durable_name: Some(MOVER.into()),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .map_err(failed(format!("consumer {MOVER}")))
}

/// Copies the message the advisory names from ORDERS into `DLQ`.
async fn dead_letter(
    js: &Context,
    orders: &stream::Stream,
    advisory: &MaxDeliveries,
) -> Result<(), DlqError> {
    let seq = advisory.stream_seq;
    let mut reason = format!("max_deliver exceeded: {} deliveries", advisory.deliveries);
    let mut headers = HeaderMap::new();
    let payload = match orders.get_raw_message(seq).await {
        Ok(original) => {
            headers.insert(SUBJECT_HEADER, original.subject.as_str());
            if let Some(kind) = original.headers.get(KIND_HEADER) {
                headers.insert(KIND_HEADER, kind.as_str());
            }
            if let Some(id) = original.headers.get(async_nats::header::NATS_MESSAGE_ID) {
                headers.insert(MSG_ID_HEADER, id.as_str());
            }
            original.payload
        }
        Err(e) => {
            // Still recorded: an empty dead letter says a message was lost.
            reason.push_str(&format!("; the original is gone from {ORDERS_STREAM}: {e}"));
            error!(seq, error = %e, "dead-lettered message is gone from {ORDERS_STREAM}");
            bytes::Bytes::new()
        }
    };
    headers.insert(REASON_HEADER, reason.as_str());
    headers.insert(SEQ_HEADER, seq.to_string().as_str());
    headers.insert(DELIVERIES_HEADER, advisory.deliveries.to_string().as_str());
    headers.insert(TIME_HEADER, advisory.timestamp.as_str());
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        format!("dlq-{seq}").as_str(),
    );
    let shard = advisory
        .consumer
        .strip_prefix("shard-")
        .unwrap_or(&advisory.consumer);
    js.publish_with_headers(format!("dlq.{shard}"), headers, payload)
        .await
        .map_err(failed(format!("dead letter of {ORDERS_STREAM} #{seq}")))?
        .await
        .map_err(failed(format!(
            "dead letter of {ORDERS_STREAM} #{seq} not stored"
        )))?;
    info!(seq, consumer = %advisory.consumer, %reason, "dead-lettered");
    Ok(())
}

/// One message in `DLQ`.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its sequence in `DLQ`.
    pub seq: u64,
    pub headers: HeaderMap,
    /// The original payload.
    pub payload: bytes::Bytes,
}

impl DeadLetter {
    /// A header's value, `""` when missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.as_str())
    }
}

/// Dead letters from the oldest, at most `limit`.
pub async fn dead_letters(
    dlq: &mut stream::Stream,
    limit: usize,
) -> Result<Vec<DeadLetter>, DlqError> {
    let state = dlq
        .info()
        .await
        .map_err(failed(format!("stream {DLQ_STREAM}")))?
        .state
        .clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return Ok(out);
    }
    for seq in state.first_sequence..=state.last_sequence {
        if out.len() >= limit {
            break;
        }
        if let Some(letter) = dead_letter_at(dlq, seq).await? {
            out.push(letter);
        }
    }
    Ok(out)
}

/// The dead letter at `seq`, `None` if there is none (replayed, deleted).
pub async fn dead_letter_at(
    dlq: &stream::Stream,
    seq: u64,
) -> Result<Option<DeadLetter>, DlqError> {
    match dlq.get_raw_message(seq).await {
        Ok(m) => Ok(Some(DeadLetter {
            seq,
            headers: m.headers,
            payload: m.payload,
        })),
        Err(e) if matches!(e.kind(), stream::RawMessageErrorKind::NoMessageFound) => Ok(None),
        Err(e) => Err(failed(format!("{DLQ_STREAM} #{seq}"))(e)),
    }
}

/// Puts a dead letter back on its original subject, then deletes it from
/// `DLQ`; returns the new ORDERS sequence.
pub async fn replay(
    js: &Context,
    dlq: &stream::Stream,
    letter: &DeadLetter,
) -> Result<u64, DlqError> {
    let subject = letter.header(SUBJECT_HEADER);
    if subject.is_empty() {
        return Err(DlqError::NoOriginal {
            seq: letter.seq,
            reason: letter.header(REASON_HEADER).to_owned(),
        });
    }
    let mut message = PublishMessage::build()
        .message_id(format!("replay-{}", letter.seq))
        .payload(letter.payload.clone());
    if let Some(kind) = letter.headers.get(KIND_HEADER) {
        message = message.header(KIND_HEADER, kind.as_str());
    }
    let ack = js
        .send_publish(subject.to_owned(), message)
        .await
        .map_err(failed(format!(
            "replaying {DLQ_STREAM} #{} to {subject}",
            letter.seq
        )))?
        .await
        .map_err(failed(format!(
            "replay of {DLQ_STREAM} #{} not stored",
            letter.seq
        )))?;
    dlq.delete_message(letter.seq)
        .await
        .map_err(failed(format!(
            "replayed, but {DLQ_STREAM} #{} not deleted",
            letter.seq
        )))?;
    Ok(ack.sequence)
}

/// The `DLQ` stream, for the CLI.
pub async fn dlq_stream(js: &jetstream::Context) -> Result<stream::Stream, SetupError> {
    js.get_stream(DLQ_STREAM)
        .await
        .map_err(|e| broker(format!("stream {DLQ_STREAM} (is `allot serve` set up?)"))(e.into()))
}
