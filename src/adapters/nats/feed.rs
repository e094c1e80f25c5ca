//! The EVENTS stream as the views' [`LogFeed`] (every shard, each batch
//! once, in order: [`EventsReader`] checks the chains) and core NATS as
//! their [`DecisionSink`] (`decisions.<warehouse>.<sku>`, best effort).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use async_nats::Client;
use tracing::warn;

use super::events::EventsReader;
use crate::ports::{AppendError, DecisionSink, FeedEntry, LogFeed, ShardId};
use crate::views::Views;
use crate::wire::log::Chains;
use crate::wire::{decision_subject, DecisionMessage};

/// Every shard's batches from EVENTS.
pub struct NatsFeed {
    reader: EventsReader,
}

impl NatsFeed {
    /// Follows `events.*` from the given position of each shard (the last
    /// sequence its views hold).
    pub fn new(events: Stream, at: &[(ShardId, u64)]) -> Self {
        let mut chains = Chains::from_start();
        for &(shard, last) in at {
            chains.resume(shard, last);
        }
        let from = at.iter().map(|(_, last)| *last).min().unwrap_or(0) + 1;
        Self {
            reader: EventsReader::new(events, "events.*", chains, from),
        }
    }

    /// The views' feed from `at`; with `own_appends` (this instance's
    /// appends feed `views` as they land,
    /// [`crate::runtime::views::OwnAppends`]) it skips undecoded the
    /// batches they hold already.
    pub fn for_views(
        events: Stream,
        at: &[(ShardId, u64)],
        views: &Arc<Views>,
        own_appends: bool,
    ) -> Self {
        let feed = Self::new(events, at);
        if !own_appends {
            return feed;
        }
        let views = views.clone();
        Self {
            reader: feed
                .reader
                .skipping(Box::new(move |shard| views.last_seq(shard))),
        }
    }
}

impl LogFeed for NatsFeed {
    async fn next(&mut self, wait: Duration) -> Result<Option<FeedEntry>, AppendError> {
        match self.reader.next(wait).await {
            Ok(Some(b)) => Ok(Some(FeedEntry {
                shard: b.batch.shard,
                seq: b.seq,
                events: b.batch.events,
                stored: b.stored,
            })),
            Ok(None) => Ok(None),
            Err(e) => Err(AppendError::Unavailable(e.to_string())),
        }
    }
}

/// Decisions on core NATS.
pub struct NatsDecisions {
    client: Client,
}

impl NatsDecisions {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl DecisionSink for NatsDecisions {
    async fn publish(&self, decisions: Vec<DecisionMessage>) {
        for d in decisions {
            let subject = decision_subject(&d.partition());
            if let Err(e) = self.client.publish(subject, d.encode().into()).await {
                warn!(error = %e, "decision not published (best effort; EVENTS has it)");
                return;
            }
        }
    }
}
