//! Keeps this instance's [`Views`] of every shard: loads each shard's
//! checkpoint, follows the log from there (each entry once, in order:
//! the feed's contract), publishes the decisions of the shards this
//! instance owns, and checkpoints those shards' views now and then and on
//! stop. A checkpoint is the views as of one log sequence, so it can never
//! claim more than was applied.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::OwnedShards;
use crate::domain::{Event, PartitionKey};
use crate::ports::{Checkpoints, DecisionSink, FeedEntry, LogFeed, ShardId};
use crate::telemetry::ViewMetrics;
use crate::views::{decode_checkpoint, Views};
use crate::wire::DecisionMessage;

/// How the views are kept.
#[derive(Debug, Clone)]
pub struct ViewsConfig {
    /// Checkpoint an owned shard's views this often (when they moved).
    pub checkpoint_every: Duration,
    /// Publish the decisions of owned shards on `decisions.<w>.<sku>`.
    pub publish_decisions: bool,
}

impl Default for ViewsConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: Duration::from_secs(60),
            publish_decisions: false,
        }
    }
}

/// This instance's views fed by its own shards' appends as each lands:
/// a batch is visible the moment it is durable, and the EVENTS reader
/// skips it without decoding it (it was ~13% of allot's CPU one order per
/// message). Each batch is still applied once and in order: only when
/// the views are at exactly the batch's `prev`, else the reader does.
#[derive(Clone)]
pub struct OwnAppends {
    views: Arc<Views>,
    metrics: ViewMetrics,
}

impl OwnAppends {
    pub fn new(views: Arc<Views>) -> Self {
        Self {
            views,
            metrics: ViewMetrics::new(),
        }
    }

    /// `shard`'s batch after `prev` landed at `seq`.
    pub fn landed(&self, shard: ShardId, prev: u64, seq: u64, events: &[Event]) {
        let at = std::time::Instant::now();
        if self.views.apply_next(shard, prev, seq, events) {
            self.metrics.applied(at.elapsed());
        }
    }
}

impl std::fmt::Debug for OwnAppends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnAppends").finish_non_exhaustive()
    }
}

/// The checkpoint name of a shard's views.
pub fn checkpoint_name(shard: ShardId) -> String {
    format!("views.{shard}")
}

/// Whether the views have caught up with the log once since start (a
/// read before that may miss orders that exist).
#[derive(Debug, Default)]
pub struct CaughtUp(AtomicBool);

impl CaughtUp {
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Loads every shard's checkpoint into `views`; returns where each shard
/// is, to open the feed from.
pub async fn restore_views<C: Checkpoints>(views: &Views, checkpoints: &C) -> Vec<(ShardId, u64)> {
    let mut at = Vec::new();
    for shard in 0..views.shard_count() {
        let name = checkpoint_name(shard);
        match checkpoints.load_checkpoint(&name).await {
            Ok(Some((seq, bytes))) => match decode_checkpoint(&bytes) {
                Ok(v) if v.last_seq == seq => views.restore(shard, v),
                Ok(_) => warn!(
                    shard,
                    "views checkpoint inconsistent; replaying the shard's log"
                ),
                Err(e) => {
                    warn!(shard, error = %e, "views checkpoint unreadable; replaying the shard's log")
                }
            },
            Ok(None) => {}
            Err(e) => {
                warn!(shard, error = %e, "views checkpoint not loaded; replaying the shard's log")
            }
        }
        at.push((shard, views.last_seq(shard)));
    }
    at
}

/// Follows `feed` into `views` until `stop`.
#[allow(clippy::too_many_arguments)]
pub async fn follow_views<F, C, D>(
    mut feed: F,
    views: Arc<Views>,
    checkpoints: Arc<C>,
    sink: Arc<D>,
    owned: Arc<OwnedShards>,
    caught_up: Arc<CaughtUp>,
    config: ViewsConfig,
    stop: CancellationToken,
) where
    F: LogFeed,
    C: Checkpoints + 'static,
    D: DecisionSink + 'static,
{
    let metrics = ViewMetrics::new();
    // Per shard: the sequence last checkpointed, and when.
    let mut saved: FxHashMap<ShardId, (u64, tokio::time::Instant)> = FxHashMap::default();
    let mut tick = tokio::time::interval(config.checkpoint_every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            _ = tick.tick() => {
                checkpoint_owned(&views, &*checkpoints, &owned, &mut saved).await;
                continue;
            }
            next = feed.next(Duration::from_millis(500)) => next,
        };
        match next {
            Ok(Some(entry)) => {
                let FeedEntry {
                    shard,
                    seq,
                    events,
                    stored,
                } = entry;
                // Not if this instance's append fed it already.
                if !views.apply_unless_applied(shard, seq, &events) {
                    continue;
                }
                metrics.applied(SystemTime::now().duration_since(stored).unwrap_or_default());
                if config.publish_decisions && owned.contains(shard) {
                    let decisions = decisions(&views, shard, &events);
                    if !decisions.is_empty() {
                        sink.publish(decisions).await;
                    }
                }
            }
            Ok(None) => {
                if !caught_up.get() {
                    info!(orders = views.order_count(), "views caught up with the log");
                    caught_up.set();
                }
                metrics.orders(views.order_count());
            }
            Err(e) => {
                warn!(error = %e, "views: log feed failed; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
    // Best effort: a broker going away must not hold up the stop.
    let last = checkpoint_owned(&views, &*checkpoints, &owned, &mut saved);
    let _ = tokio::time::timeout(Duration::from_secs(2), last).await;
}

/// Saves the views of every owned shard that moved since its last save.
async fn checkpoint_owned<C: Checkpoints>(
    views: &Views,
    checkpoints: &C,
    owned: &OwnedShards,
    saved: &mut FxHashMap<ShardId, (u64, tokio::time::Instant)>,
) {
    for shard in owned.list() {
        let at = views.last_seq(shard);
        if saved.get(&shard).is_some_and(|(seq, _)| *seq == at) || at == 0 {
            continue;
        }
        let Some((seq, bytes)) = views.checkpoint(shard) else {
            continue;
        };
        match checkpoints
            .save_checkpoint(&checkpoint_name(shard), seq, bytes)
            .await
        {
            Ok(()) => {
                saved.insert(shard, (seq, tokio::time::Instant::now()));
            }
            Err(e) => {
                warn!(shard, error = %e, "views checkpoint not saved; the next one covers it")
            }
        }
    }
}

/// The decision messages of one shard's batch, each with the partition the
/// views place its order in.
fn decisions(views: &Views, shard: ShardId, events: &[Event]) -> Vec<DecisionMessage> {
    events
        .iter()
        .filter_map(|event| {
            let partition: PartitionKey = match event {
                Event::OrderQueued { order } => order.partition.clone(),
                Event::OrderRejected {
                    partition: Some(p), ..
                } => p.clone(),
                other => views.placed(shard, other.order_id()?)?.0,
            };
            DecisionMessage::from_event(event, &partition)
        })
        .collect()
}
