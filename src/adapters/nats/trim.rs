//! ORDERS keeps an intake message only while someone may still need it: every
//! `nats.trim_interval` each instance purges the stream below the first
//! message a consumer still holds, sparing messages whose dead letter is
//! not stored yet.
//!
//! Why not interest retention, which removes a message once every consumer
//! acked it: on an R3 cluster a consumer of an interest-retention stream
//! stopped delivering after a leader failover (the R3 chaos test left orders
//! undecided; nats-io/nats-server#7664), and the dead-letter mover copies
//! given-up messages out of ORDERS after the broker stopped tracking them.
//! A purge is an ordinary replicated stream operation.
//!
//! What may go, each round:
//! - below every consumer's hold on ORDERS (any consumer, allot's or not):
//!   its ack floor + 1 while it has messages delivered or waiting; the
//!   stream's last sequence (read before the consumers) + 1 when it has
//!   none, since then everything it matches up to there is acked;
//! - and below the oldest message a max-deliveries advisory in
//!   `DLQ_ADVISORIES` names (the mover has not copied it yet).
//!
//! The broker moves a consumer's ack floor past a message it gives up on
//! when it publishes the advisory, and the advisory reaches
//! `DLQ_ADVISORIES` a moment later. So a round purges only below the
//! consumers' holds *of the round before* (one interval old) and the
//! advisories read *now*: a message given up before the last round's read
//! has its advisory stored by now.
//!
//! Purging is idempotent and only moves forward, so every instance runs it;
//! a round that cannot read something purges nothing.

use std::time::Duration;

use async_nats::jetstream::{stream, Context};
use futures::TryStreamExt;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::dlq::ADVISORY_STREAM;
use crate::telemetry::TrimMetrics;

/// Pending advisories read per round at most; with more waiting, nothing
/// is purged (the dead-letter mover is behind: keep everything).
const MAX_ADVISORIES: u64 = 10_000;

/// Trims ORDERS every `every` until `stop`.
pub async fn trim_orders(
    js: Context,
    orders: stream::Stream,
    every: Duration,
    stop: CancellationToken,
) {
    let mut trim = Trim::new(js, orders);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = trim.round().await {
            debug!(error = %e, "ORDERS trim: nothing purged this round");
        }
    }
}

/// The trim's state between rounds: the consumers' hold read last round.
pub struct Trim {
    js: Context,
    orders: stream::Stream,
    earlier: Option<u64>,
    metrics: TrimMetrics,
}

impl Trim {
    pub fn new(js: Context, orders: stream::Stream) -> Self {
        Self {
            js,
            orders,
            earlier: None,
            metrics: TrimMetrics::new(),
        }
    }

    /// One round: purges below last round's consumer hold and the oldest
    /// waiting advisory; returns how many messages went. The first round
    /// (and one after an unreadable read) only reads.
    pub async fn round(&mut self) -> Result<u64, TrimError> {
        let now = consumers_hold(&self.orders).await;
        let earlier = std::mem::replace(&mut self.earlier, now.as_ref().ok().copied());
        let now = now?;
        let Some(hold) = earlier else {
            return Ok(0);
        };
        let cut = match dead_letters_hold(&self.js).await? {
            Some(letter) => letter.min(hold).min(now),
            None => hold.min(now),
        };
        purge_below(&self.orders, cut, &self.metrics).await
    }
}

/// The first ORDERS sequence some consumer still holds (messages below it
/// are acked by every consumer).
async fn consumers_hold(orders: &stream::Stream) -> Result<u64, TrimError> {
    // The stream's end first: whatever a consumer with nothing pending
    // matches up to here, it acked.
    let end = orders
        .get_info()
        .await
        .map_err(TrimError::of("ORDERS info"))?
        .state
        .last_sequence;
    let mut hold = end + 1;
    let mut consumers = orders.consumers();
    while let Some(info) = consumers
        .try_next()
        .await
        .map_err(TrimError::of("ORDERS consumers"))?
    {
        let busy = info.num_pending > 0 || info.num_ack_pending > 0 || info.num_redelivered > 0;
        if busy {
            hold = hold.min(info.ack_floor.stream_sequence + 1);
        }
    }
    Ok(hold)
}

/// The oldest ORDERS sequence a waiting max-deliveries advisory names
/// (`None`: none waits).
async fn dead_letters_hold(js: &Context) -> Result<Option<u64>, TrimError> {
    #[derive(Deserialize)]
    struct Advisory {
        stream_seq: u64,
    }
    let advisories = js
        .get_stream_no_info(ADVISORY_STREAM)
        .await
        .map_err(TrimError::of(ADVISORY_STREAM))?;
    let state = advisories
        .get_info()
        .await
        .map_err(TrimError::of(ADVISORY_STREAM))?
        .state;
    if state.messages == 0 {
        return Ok(None);
    }
    if state.messages > MAX_ADVISORIES {
        return Err(TrimError::Behind(state.messages));
    }
    let mut oldest: Option<u64> = None;
    for seq in state.first_sequence..=state.last_sequence {
        match advisories.get_raw_message(seq).await {
            Ok(m) => {
                // Unreadable ones name nothing the mover can copy either.
                if let Ok(a) = serde_json::from_slice::<Advisory>(&m.payload) {
                    oldest = Some(oldest.map_or(a.stream_seq, |o| o.min(a.stream_seq)));
                }
            }
            Err(e) if matches!(e.kind(), stream::RawMessageErrorKind::NoMessageFound) => {}
            Err(e) => return Err(TrimError::of(ADVISORY_STREAM)(e)),
        }
    }
    Ok(oldest)
}

/// Purges ORDERS below `cut`, if anything there is left.
async fn purge_below(
    orders: &stream::Stream,
    cut: u64,
    metrics: &TrimMetrics,
) -> Result<u64, TrimError> {
    let info = orders
        .get_info()
        .await
        .map_err(TrimError::of("ORDERS info"))?;
    metrics.retained(info.state.messages);
    if cut <= info.state.first_sequence || info.state.messages == 0 {
        return Ok(0);
    }
    match orders.purge().sequence(cut).await {
        Ok(done) => {
            metrics.trimmed(done.purged);
            debug!(below = cut, purged = done.purged, "ORDERS trimmed");
            Ok(done.purged)
        }
        Err(e) => {
            warn!(error = %e, below = cut, "ORDERS trim failed; the next round tries again");
            Err(TrimError::of("ORDERS purge")(e))
        }
    }
}

/// Why a trim round purged nothing.
#[derive(Debug, thiserror::Error)]
pub enum TrimError {
    #[error("{what}: {source}")]
    Broker {
        what: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0} max-deliveries advisories wait for the dead-letter mover; ORDERS is kept whole until it catches up")]
    Behind(u64),
}

impl TrimError {
    fn of<E: std::error::Error + Send + Sync + 'static>(
        what: &'static str,
    ) -> impl FnOnce(E) -> TrimError {
        move |e| TrimError::Broker {
            what,
            source: Box::new(e),
        }
    }
}
