//! The intake messages a shard holds: delivered, not yet acked, each acked
//! on its own once decided durably. (Not one ack-all per batch: while two
//! instances pull a shard's consumer during a takeover, one's ack-all
//! would ack messages the other holds undecided.)

use std::collections::BTreeMap;

use async_nats::jetstream;

/// One shard's held messages.
#[derive(Default)]
pub struct Held {
    /// By stream sequence.
    messages: BTreeMap<u64, jetstream::Message>,
}

impl Held {
    pub fn hold(&mut self, seq: u64, message: jetstream::Message) {
        self.messages.insert(seq, message);
    }

    /// Takes the messages of `seqs`, decided, to ack each.
    pub fn take(&mut self, seqs: impl IntoIterator<Item = u64>) -> Vec<(u64, jetstream::Message)> {
        seqs.into_iter()
            .filter_map(|seq| self.messages.remove(&seq).map(|m| (seq, m)))
            .collect()
    }

    /// Every message still held (the shard stops): to hand back.
    pub fn drain(&mut self) -> Vec<jetstream::Message> {
        std::mem::take(&mut self.messages).into_values().collect()
    }
}
