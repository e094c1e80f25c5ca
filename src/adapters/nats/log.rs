//! The shard event log on the EVENTS stream: one message per decided batch
//! on `events.<shard>`, appended with `Nats-Expected-Last-Subject-Sequence`
//! (optimistic concurrency: a second writer gets "wrong last sequence") and
//! `Nats-Msg-Id` = the batch id (a retried append that had landed is found
//! and answered with its sequence, not stored twice). Sequences are stream
//! sequences.

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, Stream};
use async_nats::jetstream::Context;
use bytes::Bytes;

use super::events::EventsReader;
use super::events_subject;
use crate::domain::Event;
use crate::ports::{AppendError, EventLog, Logged, ShardId};
use crate::wire::log::{encode_batch, Chains};

/// The EVENTS stream as an [`EventLog`].
#[derive(Clone)]
pub struct NatsLog {
    js: Context,
    events: Stream,
}

impl NatsLog {
    pub fn new(js: Context, events: Stream) -> Self {
        Self { js, events }
    }

    /// The stream sequence of the shard's last batch, 0 if it has none.
    pub async fn last_seq(&self, shard: ShardId) -> Result<u64, AppendError> {
        match self
            .events
            .get_last_raw_message_by_subject(&events_subject(shard))
            .await
        {
            Ok(m) => Ok(m.sequence),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
            Err(e) => Err(AppendError::Unavailable(e.to_string())),
        }
    }
}

impl EventLog for NatsLog {
    async fn append(
        &self,
        shard: ShardId,
        expected_last: u64,
        batch_id: &str,
        events: &[Event],
    ) -> Result<u64, AppendError> {
        let payload = Bytes::from(encode_batch(shard, expected_last, events));
        let message = PublishMessage::build()
            .message_id(batch_id)
            .expected_last_subject_sequence(expected_last)
            .payload(payload);
        let unavailable = |e: &dyn std::fmt::Display| AppendError::Unavailable(e.to_string());
        let pending = self
            .js
            .send_publish(events_subject(shard), message)
            .await
            .map_err(|e| unavailable(&e))?;
        match pending.await {
            Ok(ack) => Ok(ack.sequence),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                // The server checks the expected sequence before the msg id,
                // so a retry of an append that landed (its answer was lost)
                // is refused too: it is ours if the subject ends with it.
                let actual = match self
                    .events
                    .get_last_raw_message_by_subject(&events_subject(shard))
                    .await
                {
                    Ok(last) => {
                        let ours = last
                            .headers
                            .get(async_nats::header::NATS_MESSAGE_ID)
                            .is_some_and(|id| id.as_str() == batch_id);
                        if ours {
                            return Ok(last.sequence);
                        }
                        last.sequence
                    }
                    Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => 0,
                    Err(e) => return Err(unavailable(&e)),
                };
                Err(AppendError::Conflict {
                    shard,
                    expected: expected_last,
                    actual,
                })
            }
            Err(e) => Err(unavailable(&e)),
        }
    }

    async fn read(&self, shard: ShardId, after: u64) -> Result<Vec<Logged>, AppendError> {
        let last = self.last_seq(shard).await?;
        if last <= after {
            return Ok(Vec::new());
        }
        let mut chains = Chains::from_start();
        chains.resume(shard, after);
        let mut reader = EventsReader::new(
            self.events.clone(),
            events_subject(shard),
            chains,
            after + 1,
        );
        let batches = reader
            .read_until(last)
            .await
            .map_err(|e| AppendError::Unavailable(e.to_string()))?;
        Ok(batches
            .into_iter()
            .map(|b| Logged {
                seq: b.seq,
                prev: b.batch.prev,
                events: b.batch.events,
            })
            .collect())
    }
}
