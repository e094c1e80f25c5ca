//! The intake messages a shard holds: delivered, not yet acked, each acked
//! on its own once decided durably. (Not one ack-all per batch: while two
//! instances pull a shard's consumer during a takeover, one's ack-all
//! would ack messages the other holds undecided.)
//!
//! A message of several items (a producer's batch, a hand-on, a shard's
//! cart mail) gives each item an ack of its own and is acked once every
//! one of them is: the items may be decided in any order (a cart for the
//! coordinator, a line for a partition, the same shard's two state
//! machines), and a message acked on its last item's decision could lose
//! an earlier item still undecided in a crash.

use std::collections::BTreeMap;

use async_nats::jetstream;
use rustc_hash::FxHashMap;

use crate::scheduler::AckId;

/// The ack of one item of a message of several: this bit set, a counter
/// below it (stream sequences never reach 2^63).
const ITEM: u64 = 1 << 63;

/// One shard's held messages.
pub struct Held<M = jetstream::Message> {
    /// By stream sequence: the message, and how many of its items are
    /// not decided yet.
    messages: BTreeMap<u64, (M, usize)>,
    /// Item acks of messages of several items, to their sequence.
    items: FxHashMap<u64, u64>,
    next_item: u64,
}

impl<M> Default for Held<M> {
    fn default() -> Self {
        Self {
            messages: BTreeMap::new(),
            items: FxHashMap::default(),
            next_item: 0,
        }
    }
}

impl<M> Held<M> {
    /// Holds the message at `seq` of `items` items; returns each item's
    /// ack (the sequence itself for a message of one).
    pub fn hold(&mut self, seq: u64, message: M, items: usize) -> Vec<AckId> {
        let acks = if items <= 1 {
            vec![AckId(seq)]
        } else {
            (0..items)
                .map(|_| {
                    let id = ITEM | self.next_item;
                    self.next_item = (self.next_item + 1) & !ITEM;
                    self.items.insert(id, seq);
                    AckId(id)
                })
                .collect()
        };
        self.messages.insert(seq, (message, items.max(1)));
        acks
    }

    /// Counts `acks` decided; returns the messages whose every item is,
    /// to ack each.
    pub fn take(&mut self, acks: impl IntoIterator<Item = AckId>) -> Vec<(u64, M)> {
        let mut done = Vec::new();
        for AckId(id) in acks {
            let seq = if id & ITEM == 0 {
                id
            } else {
                match self.items.remove(&id) {
                    Some(seq) => seq,
                    None => continue,
                }
            };
            let Some((_, left)) = self.messages.get_mut(&seq) else {
                continue;
            };
            *left -= 1;
            if *left == 0 {
                let (message, _) = self.messages.remove(&seq).expect("found above");
                done.push((seq, message));
            }
        }
        done
    }

    /// Every message still held (the shard stops): to hand back.
    pub fn drain(&mut self) -> Vec<M> {
        self.items.clear();
        std::mem::take(&mut self.messages)
            .into_values()
            .map(|(m, _)| m)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_of_several_items_is_acked_once_every_item_is() {
        let mut held: Held<&str> = Held::default();
        assert_eq!(held.hold(7, "one", 1), vec![AckId(7)]);
        let acks = held.hold(9, "three", 3);
        assert_eq!(acks.len(), 3);
        // Decided out of order, one twice: acked after the third.
        assert!(held.take([acks[2], acks[2], acks[0]]).is_empty());
        assert_eq!(held.take([AckId(7)]), vec![(7, "one")]);
        assert_eq!(held.take([acks[1]]), vec![(9, "three")]);
        assert!(held.take([acks[1], AckId(9)]).is_empty());
        held.hold(11, "two", 2);
        assert_eq!(held.drain(), vec!["two"]);
    }
}
