//! An order's history as the views hold it: every line packed into one
//! small allocation. The views hold up to `views.max_orders` orders, and
//! most histories are three lines (queued, reserved, confirmed): as a
//! `Vec<(u64, Happened)>` that was a 96-byte allocation per order, packed
//! it is 12 bytes.
//!
//! Each line is its EVENTS sequence (LEB128) and a tag byte; the lines
//! that carry data (a reason, a partition, a warehouse) follow their tag
//! with their length (LEB128) and MessagePack. Checkpoints still hold a
//! history as the list of `(seq, line)` it always was.

use std::fmt;

use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, SerializeSeq, Serializer};

use super::history::Happened;
use crate::domain::PartitionKey;

const QUEUED_HERE: u8 = 0;
const RESERVED: u8 = 1;
const CONFIRMED: u8 = 2;
const FORWARDED: u8 = 3;
const CANCEL_REQUESTED: u8 = 4;
const CANCELLED: u8 = 5;
const WITH_DATA: u8 = 6;

/// An order's history lines, oldest first, each with the EVENTS sequence
/// of its batch.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct History(Box<[u8]>);

impl History {
    pub fn of(seq: u64, line: &Happened) -> Self {
        let mut h = Self::default();
        h.push(seq, line);
        h
    }

    /// Adds a line after the others.
    pub fn push(&mut self, seq: u64, line: &Happened) {
        let mut bytes = std::mem::take(&mut self.0).into_vec();
        put_line(&mut bytes, seq, line);
        self.0 = bytes.into_boxed_slice();
    }

    /// The lines, oldest first.
    pub fn lines(&self) -> Vec<(u64, Happened)> {
        let mut lines = Vec::new();
        let mut rest = &self.0[..];
        while !rest.is_empty() {
            lines.push(take_line(&mut rest));
        }
        lines
    }

    /// The sequence of the newest line.
    pub fn last_seq(&self) -> Option<u64> {
        let mut rest = &self.0[..];
        let mut last = None;
        while !rest.is_empty() {
            last = Some(take_seq(&mut rest));
            if take_tag(&mut rest) == WITH_DATA {
                let len = take_varint(&mut rest) as usize;
                rest = &rest[len..];
            }
        }
        last
    }

    /// Spells out `here` in the lines that say "queued" with no partition:
    /// the order moves on to another partition of this shard.
    pub fn name_partition(&mut self, here: &PartitionKey) {
        let lines = self.lines();
        let mut bytes = Vec::with_capacity(self.0.len());
        for (seq, line) in lines {
            put_line(&mut bytes, seq, &line.resolved(here));
        }
        self.0 = bytes.into_boxed_slice();
    }
}

fn put_line(bytes: &mut Vec<u8>, seq: u64, line: &Happened) {
    put_varint(bytes, seq);
    let tag = match line {
        Happened::Queued { partition: None } => QUEUED_HERE,
        Happened::Reserved => RESERVED,
        Happened::Confirmed => CONFIRMED,
        Happened::Forwarded => FORWARDED,
        Happened::CancelRequested => CANCEL_REQUESTED,
        Happened::Cancelled => CANCELLED,
        _ => {
            let data = rmp_serde::to_vec_named(line).expect("a history line always encodes");
            bytes.push(WITH_DATA);
            put_varint(bytes, data.len() as u64);
            bytes.extend_from_slice(&data);
            return;
        }
    };
    bytes.push(tag);
}

fn take_line(rest: &mut &[u8]) -> (u64, Happened) {
    let seq = take_seq(rest);
    let line = match take_tag(rest) {
        QUEUED_HERE => Happened::Queued { partition: None },
        RESERVED => Happened::Reserved,
        CONFIRMED => Happened::Confirmed,
        FORWARDED => Happened::Forwarded,
        CANCEL_REQUESTED => Happened::CancelRequested,
        CANCELLED => Happened::Cancelled,
        _ => {
            let len = take_varint(rest) as usize;
            let (data, after) = rest.split_at(len);
            *rest = after;
            rmp_serde::from_slice(data).expect("a history line reads back as written")
        }
    };
    (seq, line)
}

fn take_seq(rest: &mut &[u8]) -> u64 {
    take_varint(rest)
}

fn take_tag(rest: &mut &[u8]) -> u8 {
    let (tag, after) = rest.split_first().expect("a tag after each sequence");
    *rest = after;
    *tag
}

fn put_varint(bytes: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        bytes.push((n as u8) | 0x80);
        n >>= 7;
    }
    bytes.push(n as u8);
}

fn take_varint(rest: &mut &[u8]) -> u64 {
    let mut n = 0u64;
    for (i, b) in rest.iter().enumerate() {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *rest = &rest[i + 1..];
            return n;
        }
    }
    unreachable!("a history holds only whole lines")
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.lines()).finish()
    }
}

/// As the list of `(seq, line)` pairs checkpoints have always held.
impl Serialize for History {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let lines = self.lines();
        let mut seq = serializer.serialize_seq(Some(lines.len()))?;
        for line in &lines {
            seq.serialize_element(line)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for History {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let lines = Vec::<(u64, Happened)>::deserialize(deserializer)?;
        let mut bytes = Vec::new();
        for (seq, line) in &lines {
            put_line(&mut bytes, *seq, line);
        }
        Ok(Self(bytes.into_boxed_slice()))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::{RejectReason, Timestamp, WarehouseId};

    fn partition(w: &str) -> PartitionKey {
        PartitionKey::new(
            WarehouseId::new(w).unwrap(),
            crate::domain::Sku::new("sku-1").unwrap(),
        )
    }

    fn line() -> impl Strategy<Value = Happened> {
        prop_oneof![
            Just(Happened::Queued { partition: None }),
            Just(Happened::Queued {
                partition: Some(Box::new(partition("w2")))
            }),
            Just(Happened::Reserved),
            Just(Happened::Confirmed),
            (0u32..10, "[a-z ]{0,30}").prop_map(|(attempt, r)| Happened::Retrying {
                attempt,
                reason: r.into()
            }),
            "[a-z ]{0,30}".prop_map(|r| Happened::Released { reason: r.into() }),
            Just(Happened::Rejected {
                reason: Box::new(RejectReason::OutOfStock)
            }),
            any::<u64>().prop_map(|t| Happened::Backordered {
                until: Timestamp(t)
            }),
            Just(Happened::Rerouted {
                to: WarehouseId::new("w3").unwrap()
            }),
            Just(Happened::Forwarded),
            Just(Happened::CancelRequested),
            Just(Happened::Cancelled),
            Just(Happened::Refused {
                partition: Box::new(partition("w1")),
                holder: Box::new(partition("w4")),
            }),
        ]
    }

    proptest! {
        /// Every line reads back as pushed, in order, at any sequence, and
        /// a checkpoint of it is the list it always was.
        #[test]
        fn a_history_reads_back_as_written(lines in prop::collection::vec((any::<u64>(), line()), 0..8)) {
            let mut h = History::default();
            for (seq, line) in &lines {
                h.push(*seq, line);
            }
            prop_assert_eq!(h.lines(), lines.clone());
            prop_assert_eq!(h.last_seq(), lines.last().map(|(s, _)| *s));
            let as_list = rmp_serde::to_vec_named(&lines).unwrap();
            prop_assert_eq!(rmp_serde::to_vec_named(&h).unwrap(), as_list.clone());
            let back: History = rmp_serde::from_slice(&as_list).unwrap();
            prop_assert_eq!(back, h);
        }
    }

    #[test]
    fn the_usual_history_takes_a_few_bytes() {
        let mut h = History::default();
        for (seq, line) in [
            (1_200_000, Happened::Queued { partition: None }),
            (1_200_001, Happened::Reserved),
            (1_200_007, Happened::Confirmed),
        ] {
            h.push(seq, &line);
        }
        assert_eq!(h.0.len(), 12);
    }

    #[test]
    fn naming_the_partition_spells_out_only_queued_here() {
        let mut h = History::of(3, &Happened::Queued { partition: None });
        h.push(
            4,
            &Happened::Rerouted {
                to: WarehouseId::new("w2").unwrap(),
            },
        );
        h.name_partition(&partition("w1"));
        assert_eq!(
            h.lines(),
            vec![
                (
                    3,
                    Happened::Queued {
                        partition: Some(Box::new(partition("w1")))
                    }
                ),
                (
                    4,
                    Happened::Rerouted {
                        to: WarehouseId::new("w2").unwrap()
                    }
                ),
            ]
        );
    }
}
