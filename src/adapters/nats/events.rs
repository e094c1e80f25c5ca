//! Reading EVENTS back, for every reader (recovery, the views, the audit,
//! the bench and the tests): an ordered consumer on `events.<shard>` or
//! `events.*`, each batch checked against its shard's chain
//! ([`Chains`]), so a batch is applied at most once and in order whatever
//! the consumer delivers. A batch delivered again (the ordered consumer
//! replays after a node loss) is skipped; a gap (a batch that does not
//! follow the last one applied) is logged at warn and read again from the
//! last one applied, with a fresh consumer.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::stream::Stream;
use futures::StreamExt;
use tracing::warn;

use crate::wire::log::{decode_batch, Chains, LogBatch, LogError, Step};

/// Why a deployment's EVENTS could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("opening the EVENTS stream (has allot serve run on this NATS?): {0}")]
    Stream(String),
    #[error("reading EVENTS' state: {0}")]
    State(String),
}

/// A running deployment's EVENTS stream, and its last sequence now (what
/// `allot audit` reads up to and `allot tail` follows from).
pub async fn open_events(js: &async_nats::jetstream::Context) -> Result<(Stream, u64), OpenError> {
    let mut events = js
        .get_stream(super::EVENTS_STREAM)
        .await
        .map_err(|e| OpenError::Stream(e.to_string()))?;
    let last = events
        .info()
        .await
        .map_err(|e| OpenError::State(e.to_string()))?
        .state
        .last_sequence;
    Ok((events, last))
}

/// What a reader skipped or read again, for logs, metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Batches delivered again and skipped.
    pub seen_again: u64,
    /// Gaps found (each read again).
    pub gaps: u64,
    /// Messages that were not batches this build reads (skipped).
    pub unreadable: u64,
    /// Consumers (re)created.
    pub consumers: u64,
}

/// Why reading EVENTS stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The broker did not answer or the consumer failed.
    #[error("reading EVENTS: {0}")]
    Broker(String),
    /// The same gap came back after reading again several times.
    #[error("{0} (after {1} tries)")]
    Gap(LogError, u32),
}

/// One batch to apply, with its stream sequence and when it was stored.
#[derive(Debug, Clone)]
pub struct ReadBatch {
    pub seq: u64,
    pub batch: LogBatch,
    pub stored: SystemTime,
}

/// Follows EVENTS (one shard's subject or all) from a position, yielding
/// each batch to apply once, in its shard's order.
pub struct EventsReader {
    stream: Stream,
    filter: String,
    pub chains: Chains,
    /// The next stream sequence to ask for.
    next: u64,
    messages: Option<pull::Ordered>,
    stats: ReadStats,
    /// The gap being retried and how often.
    retrying: Option<(u32, u64, u32)>,
    /// The last sequence of each shard already applied where this reader's
    /// batches go, if something else feeds it too.
    applied: Option<Applied>,
}

/// The last sequence of a shard already applied.
pub type Applied = Box<dyn Fn(u32) -> u64 + Send + Sync>;

/// Gaps at one place read again this often before giving up.
const GAP_TRIES: u32 = 5;

impl EventsReader {
    /// Reads `filter` (`events.<n>` or `events.*`) from stream sequence
    /// `from`, checked against `chains`.
    pub fn new(stream: Stream, filter: impl Into<String>, chains: Chains, from: u64) -> Self {
        Self {
            stream,
            filter: filter.into(),
            chains,
            next: from.max(1),
            messages: None,
            stats: ReadStats::default(),
            retrying: None,
            applied: None,
        }
    }

    /// Skips, without decoding, each batch at or before what `applied`
    /// says its shard's destination already holds (the views, fed by
    /// this instance's own appends): the chain moves on to it.
    pub fn skipping(mut self, applied: Applied) -> Self {
        self.applied = Some(applied);
        self
    }

    pub fn stats(&self) -> ReadStats {
        self.stats
    }

    /// The next stream sequence the reader will ask for.
    pub fn position(&self) -> u64 {
        self.next
    }

    async fn open(&mut self) -> Result<(), ReadError> {
        let broker = |e: &dyn std::fmt::Display| ReadError::Broker(e.to_string());
        let consumer = self
            .stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: self.filter.clone(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: self.next,
                },
                ..Default::default()
            })
            .await
            .map_err(|e| broker(&e))?;
        self.messages = Some(consumer.messages().await.map_err(|e| broker(&e))?);
        self.stats.consumers += 1;
        Ok(())
    }

    /// The next batch to apply; `None` when nothing new came within
    /// `wait`.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<ReadBatch>, ReadError> {
        self.next_up_to(wait, u64::MAX).await
    }

    /// [`EventsReader::next`], also `None` once the messages up to `until`
    /// ended with some this build cannot read (not waiting for more).
    async fn next_up_to(
        &mut self,
        wait: Duration,
        until: u64,
    ) -> Result<Option<ReadBatch>, ReadError> {
        loop {
            if self.messages.is_none() {
                self.open().await?;
            }
            let messages = self.messages.as_mut().expect("opened above");
            let message = match tokio::time::timeout(wait, messages.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => {
                    self.messages = None;
                    return Err(ReadError::Broker("the consumer ended".into()));
                }
                Ok(Some(Err(e))) => {
                    self.messages = None;
                    return Err(ReadError::Broker(e.to_string()));
                }
                Ok(Some(Ok(message))) => message,
            };
            let info = message
                .info()
                .map_err(|e| ReadError::Broker(e.to_string()))?;
            let (seq, stored) = (info.stream_sequence, SystemTime::from(info.published));
            self.next = self.next.max(seq + 1);
            if let Some(shard) = self.applied_already(&message.subject, seq) {
                if self.chains.last(shard) < seq {
                    self.chains.resume(shard, seq);
                }
                if self.next > until {
                    return Ok(None);
                }
                continue;
            }
            let batch = match decode_batch(seq, &message.payload) {
                Ok(batch) => batch,
                Err(e) => {
                    self.stats.unreadable += 1;
                    warn!(subject = %message.subject, error = %e, "EVENTS: not a batch this allot reads; skipped");
                    if self.next > until {
                        return Ok(None);
                    }
                    continue;
                }
            };
            match self.chains.check(seq, &batch) {
                Ok(Step::Apply) => {
                    self.retrying = None;
                    return Ok(Some(ReadBatch { seq, batch, stored }));
                }
                Ok(Step::Seen) => self.stats.seen_again += 1,
                Err(gap) => {
                    let LogError::Gap { shard, last, .. } = gap else {
                        unreachable!("check only reports gaps")
                    };
                    self.stats.gaps += 1;
                    let tries = match self.retrying {
                        Some((s, at, n)) if s == shard && at == last => n + 1,
                        _ => 1,
                    };
                    if tries > GAP_TRIES {
                        return Err(ReadError::Gap(gap, GAP_TRIES));
                    }
                    warn!(error = %gap, "EVENTS: batches skipped by the consumer; reading again");
                    self.retrying = Some((shard, last, tries));
                    self.next = last + 1;
                    self.messages = None;
                }
            }
        }
    }

    /// The shard of the batch at `seq` on `subject` if its destination
    /// holds it already.
    fn applied_already(&self, subject: &str, seq: u64) -> Option<u32> {
        let applied = self.applied.as_ref()?;
        let shard = super::events_shard(subject)?;
        (applied(shard) >= seq).then_some(shard)
    }

    /// Every batch to apply up to stream sequence `until` (inclusive).
    /// A broker error (a cluster electing a new leader) is retried a few
    /// times from where the read is.
    pub async fn read_until(&mut self, until: u64) -> Result<Vec<ReadBatch>, ReadError> {
        let mut out = Vec::new();
        let mut failures = 0;
        while self.next <= until {
            match self.next_up_to(Duration::from_secs(5), until).await {
                Ok(Some(b)) => out.push(b),
                // It ended with messages that are not batches: read.
                Ok(None) if self.next > until => {}
                // Sequence `until` is stored, yet nothing came: a consumer
                // left behind by a leader change. Read again from here.
                Ok(None) if failures < 5 => {
                    failures += 1;
                    warn!(at = self.next, until, "EVENTS read stalled; reading again");
                    self.messages = None;
                }
                Ok(None) => {
                    return Err(ReadError::Broker(format!(
                        "EVENTS read stalled before sequence {until} (at {})",
                        self.next
                    )))
                }
                Err(ReadError::Broker(why)) if failures < 5 => {
                    failures += 1;
                    warn!(error = %why, "reading EVENTS failed; trying again");
                    tokio::time::sleep(Duration::from_millis(250 * failures)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}
