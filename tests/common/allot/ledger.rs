//! EVENTS read back from the start and audited, and the intake's state.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::Context;
use tokio::time::Instant;

use allot::adapters::nats::events::{EventsReader, ReadStats};
use allot::adapters::nats::{shard_consumer, EVENTS_STREAM, ORDERS_STREAM};
use allot::audit::{Audit, Findings};
use allot::domain::{Event, OrderId};
use allot::wire::log::Chains;

use super::POLL;

/// Everything in EVENTS so far, read from the start (each batch once, in
/// its shard's order: the readers' chain check), with the audit of it.
#[derive(Default)]
pub struct Ledger {
    pub audit: Audit,
    pub events: Vec<Event>,
    /// Confirmations and rejections per order.
    finals: HashMap<OrderId, u32>,
    /// Where each shard's chain is, across reads.
    chains: Chains,
    next_seq: u64,
    /// What the readers skipped or read again, summed over reads.
    pub read: ReadStats,
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
        let chains = std::mem::take(&mut self.chains);
        let mut reader = EventsReader::new(events, "events.*", chains, start);
        // Applied one batch at a time, so a read that fails halfway keeps
        // what it applied and its chains say exactly that.
        let result = loop {
            if reader.position() > last {
                break Ok(());
            }
            match reader.next(Duration::from_secs(5)).await {
                Ok(Some(read)) => self.apply(read.batch.events),
                Ok(None) => break Err("EVENTS read stalled".into()),
                Err(e) => break Err(e.into()),
            }
        };
        let stats = reader.stats();
        self.read.seen_again += stats.seen_again;
        self.read.gaps += stats.gaps;
        self.read.unreadable += stats.unreadable;
        self.next_seq = reader.position();
        self.chains = std::mem::take(&mut reader.chains);
        result
    }

    fn apply(&mut self, events: Vec<Event>) {
        for event in events {
            self.audit.apply(&event);
            if let Event::OrderConfirmed { id } | Event::OrderRejected { id, .. } = &event {
                *self.finals.entry(id.clone()).or_default() += 1;
            }
            self.events.push(event);
        }
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
