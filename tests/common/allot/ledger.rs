//! EVENTS read back from the start and audited, and the intake's state.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::Context;
use futures::StreamExt;
use tokio::time::Instant;

use allot::adapters::nats::{decode_batch, shard_consumer, EVENTS_STREAM, ORDERS_STREAM};
use allot::audit::{Audit, Findings};
use allot::domain::{Event, OrderId};

use super::POLL;

/// Everything in EVENTS so far, read from the start, with the audit of it.
#[derive(Default)]
pub struct Ledger {
    pub audit: Audit,
    pub events: Vec<Event>,
    /// Confirmations and rejections per order.
    finals: HashMap<OrderId, u32>,
    next_seq: u64,
}

impl Ledger {
    /// Reads whatever EVENTS holds beyond what was read. A broker that is
    /// restarting is an error; the caller tries again.
    pub async fn catch_up(&mut self, js: &Context) -> Result<(), async_nats::Error> {
        let mut events = js.get_stream(EVENTS_STREAM).await?;
        let last = events.info().await?.state.last_sequence;
        let start = self.next_seq.max(1);
        if last < start {
            return Ok(());
        }
        let consumer = events
            .create_consumer(pull::OrderedConfig {
                filter_subject: "events.>".into(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        while let Some(message) = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .map_err(|_| "EVENTS read stalled")?
        {
            let message = message?;
            let seq = message.info()?.stream_sequence;
            for event in decode_batch(&message.payload)? {
                self.audit.apply(&event);
                if let Event::OrderConfirmed { id } | Event::OrderRejected { id, .. } = &event {
                    *self.finals.entry(id.clone()).or_default() += 1;
                }
                self.events.push(event);
            }
            self.next_seq = seq + 1;
            if seq >= last {
                break;
            }
        }
        Ok(())
    }

    /// Final decisions recorded for `id` (1 when all is well).
    pub fn finals(&self, id: &OrderId) -> u32 {
        self.finals.get(id).copied().unwrap_or(0)
    }

    pub fn decided(&self) -> usize {
        self.finals.len()
    }

    pub fn undecided(&self, ids: &[OrderId]) -> usize {
        ids.iter().filter(|id| self.finals(id) == 0).count()
    }

    /// Reads EVENTS until every id has a final decision; returns how many
    /// are still undecided at the timeout (0 on success).
    pub async fn wait_decided(
        &mut self,
        js: &Context,
        ids: &[OrderId],
        timeout: Duration,
    ) -> usize {
        self.wait_until(js, timeout, |l| l.undecided(ids) == 0)
            .await;
        self.undecided(ids)
    }

    /// Reads EVENTS until `done` holds or `timeout` passes; says which.
    pub async fn wait_until(
        &mut self,
        js: &Context,
        timeout: Duration,
        done: impl Fn(&Ledger) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            // Errors while the broker restarts are retried until the deadline.
            let _ = self.catch_up(js).await;
            if done(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub fn findings(&self, ids: &[OrderId]) -> Findings {
        self.audit.finish(ids)
    }
}

/// Waits until every shard's intake consumer has nothing pending and
/// nothing unacked: every message was decided and acked, none is stuck.
pub async fn wait_intake_drained(js: &Context, shards: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let mut drained = true;
        match js.get_stream(ORDERS_STREAM).await {
            Ok(stream) => {
                for shard in 0..shards {
                    match stream.consumer_info(shard_consumer(shard)).await {
                        Ok(info) => drained &= info.num_pending == 0 && info.num_ack_pending == 0,
                        Err(_) => drained = false,
                    }
                }
            }
            Err(_) => drained = false,
        }
        if drained {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}
