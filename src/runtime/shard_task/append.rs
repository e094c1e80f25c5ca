//! Making decisions durable: appending each batch to the event log
//! (retried under one batch id until it lands or conflicts), and taking
//! and saving snapshots of the state at append boundaries.

use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, debug_span, warn, Instrument};

use super::{Msg, Task};
use crate::ports::{AppendError, EventLog, Fulfiller, IntakeQueue, Snapshots};
use crate::scheduler::{AppendBatch, Shard};
use crate::telemetry::BatchTally;
use crate::wire::snapshot::encode_snapshot_with_carts;

/// Longest a snapshot save may take before its turn goes to another shard.
const SNAPSHOT_SAVE_TIMEOUT: Duration = Duration::from_secs(60);

impl<L, I, S, F> Task<L, I, S, F>
where
    L: EventLog + 'static,
    I: IntakeQueue + 'static,
    S: Snapshots + 'static,
    F: Fulfiller + 'static,
{
    /// Takes a snapshot once enough events were appended, at a moment when
    /// the state holds exactly the durable events plus the outstanding
    /// append: right after that append was sent, with nothing decided since.
    /// It is saved under that append's sequence once it lands.
    pub(super) fn maybe_snapshot(&mut self, shard: &Shard) {
        let by_count = self.config.snapshot_every_events > 0
            && self.events_since_snapshot >= self.config.snapshot_every_events;
        let by_time = self.events_since_snapshot > 0
            && self
                .config
                .snapshot_every
                .is_some_and(|every| self.last_snapshot.elapsed() >= every);
        // The carts are snapshotted with the shard, and only once every
        // effect of theirs went out: a snapshot holds no cart event that
        // is not durable, and recovery from it re-sends nothing it must.
        if !(by_count || by_time) || shard.has_pending_events() || self.carts.has_unwritten() {
            return;
        }
        let Ok(turn) = self.config.snapshots_at_once.clone().try_acquire_owned() else {
            return;
        };
        self.last_snapshot = tokio::time::Instant::now();
        let mut bytes = Vec::with_capacity(self.snapshot_size + self.snapshot_size / 8);
        encode_snapshot_with_carts(&mut bytes, shard.state(), self.carts.carts());
        self.snapshot_size = bytes.len();
        self.events_since_snapshot = 0;
        match self.appending {
            Some(_) => self.snapshot_after_append = Some((bytes, turn)),
            None => self.save_snapshot(shard.log_seq(), bytes, turn),
        }
    }

    /// Saves a snapshot, giving its turn back once it is saved or failed.
    pub(super) fn save_snapshot(&mut self, seq: u64, bytes: Vec<u8>, turn: OwnedSemaphorePermit) {
        let ports = self.ports.clone();
        let id = self.id;
        self.spawned.spawn(async move {
            // Bounded: a save that never ends must not keep every other
            // shard's turn.
            let saved = ports.snapshots.save(id, seq, bytes);
            match tokio::time::timeout(SNAPSHOT_SAVE_TIMEOUT, saved).await {
                Ok(Ok(())) => debug!(shard = id, seq, "snapshot saved"),
                Ok(Err(e)) => warn!(shard = id, seq, error = %e, "snapshot not saved; recovery replays more log"),
                Err(_) => warn!(shard = id, seq, "snapshot save unanswered for {SNAPSHOT_SAVE_TIMEOUT:?}; recovery replays more log"),
            }
            drop(turn);
        });
    }

    /// Appends one batch, retrying an unanswered append with the same batch
    /// id (the log dedupes it) until it lands or conflicts.
    pub(super) fn append(&mut self, batch: AppendBatch) {
        let tally = BatchTally::of(&batch.events);
        self.metrics.appending(&tally);
        self.appending = Some(tally);
        let (ports, tx, id) = (self.ports.clone(), self.tx.clone(), self.id);
        let timeout = self.config.append_timeout;
        let views = self.config.views.clone();
        let batch_id = format!("{:016x}-{id}-{}", self.instance, batch.expected_last);
        let (duration, retries) = (
            self.metrics.append_duration.clone(),
            self.metrics.append_retries.clone(),
        );
        let span = debug_span!(
            "append",
            shard = id,
            events = tally.events,
            decisions = tally.decisions(),
            expected_last = batch.expected_last,
        );
        self.spawned.spawn(
            async move {
                let started = tokio::time::Instant::now();
                let mut backoff = Duration::from_millis(50);
                let result = loop {
                    let attempt =
                        ports
                            .log
                            .append(id, batch.expected_last, &batch_id, &batch.events);
                    match tokio::time::timeout(timeout, attempt).await {
                        Ok(Ok(seq)) => break Ok(seq),
                        Ok(Err(e @ AppendError::Conflict { .. })) => break Err(e),
                        Ok(Err(e)) => warn!(shard = id, error = %e, "append failed; retrying"),
                        Err(_) => warn!(shard = id, ?timeout, "append unanswered; retrying"),
                    }
                    retries.increment(1);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                };
                let elapsed = started.elapsed();
                if let Ok(seq) = result {
                    duration.record(elapsed.as_secs_f64());
                    debug!(seq, ?elapsed, "appended");
                    if let Some(views) = views {
                        views.landed(id, batch.expected_last, seq, &batch.events);
                    }
                }
                let _ = tx.send(Msg::Appended(result)).await;
            }
            .instrument(span),
        );
    }
}
