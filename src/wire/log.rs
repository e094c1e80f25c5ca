//! EVENTS on the wire: one message per decided batch of one shard, on
//! `events.<shard>`, MessagePack with named fields:
//!
//! ```text
//! {"v": 1, "shard": 2, "prev": 1931, "events": [{"type": "order_queued", ...}, ...]}
//! ```
//!
//! `prev` is the stream sequence of the shard's previous batch (0 for its
//! first): the append was made expecting exactly that, so the batches of a
//! shard form a chain, and a reader can tell a batch it already applied
//! (its sequence is not past the last one applied) from one that follows
//! (its `prev` is the last one applied) from a gap (anything else).
//! [`Chains`] keeps that check for every reader: recovery, the views, the
//! audit, the bench and the tests.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::msgpack::{self, read_capped};
use crate::domain::Event;

/// The EVENTS batch version this build writes and reads.
pub const LOG_VERSION: u32 = 1;

/// Deepest nesting in a batch: its map, the events list, an event, an
/// order, its partition and its fallbacks take six; a hostile message on
/// `events.*` must not recurse deeper than this.
pub const MAX_LOG_DEPTH: usize = 12;

/// One decided batch of one shard, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogBatch {
    pub v: u32,
    pub shard: u32,
    /// The stream sequence of the shard's previous batch; 0 for its first.
    pub prev: u64,
    pub events: Vec<Event>,
}

#[derive(Serialize)]
struct LogBatchRef<'a> {
    v: u32,
    shard: u32,
    prev: u64,
    events: &'a [Event],
}

/// Why a stored batch could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// Not a batch this build reads (unreadable, too deep, another `v`).
    #[error("EVENTS sequence {seq}: {why}")]
    Unreadable { seq: u64, why: String },
    /// The shard's chain broke: this batch does not follow the last one
    /// applied, so batches were skipped. Read again from `last` + 1.
    #[error("EVENTS gap on shard {shard}: batch {seq} follows {prev}, but the last applied is {last}; reading again from there")]
    Gap {
        shard: u32,
        seq: u64,
        prev: u64,
        last: u64,
    },
}

/// A batch as stored for `shard` after `prev`.
pub fn encode_batch(shard: u32, prev: u64, events: &[Event]) -> Vec<u8> {
    rmp_serde::to_vec_named(&LogBatchRef {
        v: LOG_VERSION,
        shard,
        prev,
        events,
    })
    .expect("validated events always encode")
}

/// Reads the batch stored at `seq`: nesting capped, version checked.
pub fn decode_batch(seq: u64, bytes: &[u8]) -> Result<LogBatch, LogError> {
    let unreadable = |why: String| LogError::Unreadable { seq, why };
    if bytes
        .first()
        .is_some_and(|b| (0x90..=0x9f).contains(b) || *b == 0xdc || *b == 0xdd)
    {
        return Err(unreadable(
            "a bare list of events: written by allot 0.1, before EVENTS had a version; start on new streams"
                .into(),
        ));
    }
    let batch: LogBatch = read_capped(bytes, MAX_LOG_DEPTH)
        .map_err(|e| unreadable(msgpack::why(&e, MAX_LOG_DEPTH)))?;
    if batch.v != LOG_VERSION {
        return Err(unreadable(format!(
            "batch version {} is not supported; this allot reads {LOG_VERSION}",
            batch.v
        )));
    }
    Ok(batch)
}

/// What to do with a batch read off the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The next batch of its shard: apply it.
    Apply,
    /// Applied already (a redelivery): skip it.
    Seen,
}

/// The last batch applied per shard: every reader of EVENTS applies each
/// batch at most once and in order, and notices a gap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chains {
    last: FxHashMap<u32, u64>,
    /// Shards not in `last` start wherever the reader does (an audit from
    /// a sequence); otherwise they must start at their first batch.
    open_start: bool,
}

impl Chains {
    /// Every shard read from its first batch.
    pub fn from_start() -> Self {
        Self::default()
    }

    /// Reading starts somewhere in the log: the first batch seen of a
    /// shard not given by [`Chains::resume`] is taken as its start.
    pub fn from_anywhere() -> Self {
        Self {
            last: FxHashMap::default(),
            open_start: true,
        }
    }

    /// `shard` was applied up to sequence `last` (a checkpoint).
    pub fn resume(&mut self, shard: u32, last: u64) {
        self.last.insert(shard, last);
    }

    /// The last sequence applied of `shard` (0: none).
    pub fn last(&self, shard: u32) -> u64 {
        self.last.get(&shard).copied().unwrap_or(0)
    }

    /// The lowest sequence any shard is at: where to read again after a
    /// gap. With `shards` listed, shards not yet seen count as 0.
    pub fn floor(&self, shards: impl IntoIterator<Item = u32>) -> u64 {
        shards.into_iter().map(|s| self.last(s)).min().unwrap_or(0)
    }

    /// Checks the batch stored at `seq` against its shard's chain; on
    /// [`Step::Apply`] it becomes the shard's last.
    pub fn check(&mut self, seq: u64, batch: &LogBatch) -> Result<Step, LogError> {
        let known = self.last.get(&batch.shard).copied();
        let last = match known {
            Some(last) => last,
            None if self.open_start => {
                self.last.insert(batch.shard, seq);
                return Ok(Step::Apply);
            }
            None => 0,
        };
        if seq <= last {
            return Ok(Step::Seen);
        }
        if batch.prev != last {
            return Err(LogError::Gap {
                shard: batch.shard,
                seq,
                prev: batch.prev,
                last,
            });
        }
        self.last.insert(batch.shard, seq);
        Ok(Step::Apply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderId;

    fn batch(shard: u32, prev: u64) -> LogBatch {
        LogBatch {
            v: LOG_VERSION,
            shard,
            prev,
            events: vec![Event::OrderConfirmed {
                id: OrderId::new("o-1").unwrap(),
            }],
        }
    }

    #[test]
    fn a_batch_round_trips_and_its_shape_is_named_fields() {
        let b = batch(2, 17);
        let bytes = encode_batch(2, 17, &b.events);
        assert_eq!(decode_batch(30, &bytes).unwrap(), b);
        let value: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"v": 1, "shard": 2, "prev": 17,
                "events": [{"type": "order_confirmed", "id": "o-1"}]})
        );
    }

    #[test]
    fn batches_apply_once_in_order_and_a_gap_is_named() {
        let mut chains = Chains::from_start();
        assert_eq!(chains.check(3, &batch(0, 0)), Ok(Step::Apply));
        assert_eq!(chains.check(5, &batch(1, 0)), Ok(Step::Apply));
        assert_eq!(chains.check(7, &batch(0, 3)), Ok(Step::Apply));
        // The ordered consumer delivers 3 again: seen, not applied twice.
        assert_eq!(chains.check(3, &batch(0, 0)), Ok(Step::Seen));
        assert_eq!(chains.check(7, &batch(0, 3)), Ok(Step::Seen));
        // 9 follows 8, which was never read.
        assert_eq!(
            chains.check(9, &batch(0, 8)),
            Err(LogError::Gap {
                shard: 0,
                seq: 9,
                prev: 8,
                last: 7
            })
        );
        assert_eq!(chains.last(0), 7, "a gap does not move the chain");
        assert_eq!(chains.floor([0, 1, 2]), 0);
        assert_eq!(chains.floor([0, 1]), 5);
    }

    #[test]
    fn a_reader_resumes_from_a_checkpoint_or_anywhere() {
        let mut resumed = Chains::from_start();
        resumed.resume(0, 40);
        assert!(matches!(
            resumed.check(41, &batch(0, 39)),
            Err(LogError::Gap { last: 40, .. })
        ));
        assert_eq!(resumed.check(44, &batch(0, 40)), Ok(Step::Apply));
        let mut anywhere = Chains::from_anywhere();
        assert_eq!(anywhere.check(41, &batch(0, 39)), Ok(Step::Apply));
        assert_eq!(anywhere.check(50, &batch(0, 41)), Ok(Step::Apply));
    }

    #[test]
    fn hostile_and_old_batches_are_refused_by_name() {
        let deep = [vec![0x81, 0xa6], b"events".to_vec(), vec![0x91; 50_000]].concat();
        assert!(matches!(
            decode_batch(1, &deep),
            Err(LogError::Unreadable { .. })
        ));
        let old = rmp_serde::to_vec_named(&batch(0, 0).events).unwrap();
        let e = decode_batch(2, &old).unwrap_err();
        assert!(e.to_string().contains("allot 0.1"), "{e}");
        let v2 = rmp_serde::to_vec_named(&LogBatch {
            v: 2,
            ..batch(0, 0)
        })
        .unwrap();
        assert!(decode_batch(3, &v2)
            .unwrap_err()
            .to_string()
            .contains("version 2"));
    }
}
