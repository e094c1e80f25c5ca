//! Remembering order ids: [`Horizon`], the recent decisions in full (what
//! was decided, for answers and reroute hand-offs), and [`IdTable`], every
//! id of a time window in 24 bytes (a 128-bit fingerprint, a holder and
//! an epoch), for the promise that an id is decided at most once within
//! the window however many ids that is (up to a cap).
//!
//! Fingerprints are SipHash-1-3 (128 bits) of the id with fixed keys: a
//! new id is taken for a remembered one with a probability of about
//! n / 2^128 (n ids remembered), far below any hardware fault rate.
//!
//! `horizon` holds the decisions kept in full ([`Horizon`]) and the keyed
//! commands applied recently; this file the id window and who owns an id.

mod horizon;
#[cfg(test)]
mod tests;

use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::hash::Hasher;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher13};

use super::types::{OrderId, PartitionKey, Timestamp};
pub use horizon::{Decided, Horizon, RecentIds};

/// Dense index of a partition within its shard.
pub type PartitionIdx = u32;

/// A 128-bit fingerprint of an order id, stable across builds and
/// platforms (it is stored in snapshots).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fingerprint(pub [u64; 2]);

impl Fingerprint {
    pub fn of(id: &OrderId) -> Self {
        let mut h = SipHasher13::new_with_keys(0x616c_6c6f_7420_6964, 0x7320_6f6e_6365_2121);
        h.write(id.as_str().as_bytes());
        let h = h.finish128();
        Fingerprint([h.h1, h.h2])
    }

    /// A shard among `shards` chosen by the id alone: where the id is
    /// claimed, whatever partition its orders are for.
    pub fn owner(self, shards: u32) -> u32 {
        (self.0[0] % u64::from(shards.max(1))) as u32
    }
}

/// How long ids are remembered: at least `window` (24 epochs after the one
/// an id was recorded in, so at most an epoch more); at most `max_ids`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Milliseconds per epoch (a 24th of the window).
    pub epoch_ms: u64,
    /// Epochs an id is kept for after the one it was recorded in.
    pub epochs: u32,
    pub max_ids: usize,
}

impl Window {
    pub fn new(window: Duration, max_ids: usize) -> Self {
        let ms = u64::try_from(window.as_millis())
            .unwrap_or(u64::MAX)
            .max(24);
        Self {
            epoch_ms: ms / 24,
            epochs: 24,
            max_ids: max_ids.max(1),
        }
    }

    /// The epoch `now` falls in.
    pub fn epoch(&self, now: Timestamp) -> u32 {
        u32::try_from(now.0 / self.epoch_ms.max(1)).unwrap_or(u32::MAX)
    }
}

impl Default for Window {
    /// 24 hours, 10 million ids.
    fn default() -> Self {
        Self::new(Duration::from_secs(24 * 3600), 10_000_000)
    }
}

/// Every id recorded in the last `window.epochs` epochs, with a holder
/// (a small number naming who holds it), oldest epochs forgotten first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTable {
    window: Window,
    /// Fingerprint -> (holder, epoch recorded).
    ids: FxHashMap<Fingerprint, (u32, u32)>,
    /// Ids recorded per epoch, oldest first.
    epochs: VecDeque<(u32, usize)>,
}

impl IdTable {
    pub fn new(window: Window) -> Self {
        Self {
            window,
            ids: FxHashMap::default(),
            epochs: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Who holds `fp`, if it is remembered.
    pub fn holder(&self, fp: Fingerprint) -> Option<u32> {
        self.ids.get(&fp).map(|(h, _)| *h)
    }

    /// The epoch of the oldest id remembered.
    pub fn oldest_epoch(&self) -> Option<u32> {
        self.epochs.front().map(|(e, _)| *e)
    }

    /// Records `fp` held by `holder` in epoch `epoch`; an id already there
    /// keeps its first holder and epoch. Over `max_ids`, the oldest epoch
    /// is forgotten.
    pub fn insert(&mut self, fp: Fingerprint, holder: u32, epoch: u32) {
        let Entry::Vacant(v) = self.ids.entry(fp) else {
            return;
        };
        v.insert((holder, epoch));
        match self.epochs.back_mut() {
            Some((e, n)) if *e == epoch => *n += 1,
            _ => self.epochs.push_back((epoch, 1)),
        }
        if self.ids.len() > self.window.max_ids {
            if let Some(&(oldest, _)) = self.epochs.front() {
                self.forget_through(oldest);
            }
        }
    }

    /// Time moved to `epoch`: ids recorded more than `window.epochs`
    /// epochs before it are forgotten, so an id is remembered for at least
    /// the whole window (and at most an epoch longer).
    pub fn advance(&mut self, epoch: u32) {
        if let Some(last) = epoch.checked_sub(self.window.epochs + 1) {
            if self.oldest_epoch().is_some_and(|o| o <= last) {
                self.forget_through(last);
            }
        }
    }

    fn forget_through(&mut self, epoch: u32) {
        while self.epochs.front().is_some_and(|(e, _)| *e <= epoch) {
            self.epochs.pop_front();
        }
        self.ids.retain(|_, (_, e)| *e > epoch);
    }
}

/// Partitions named by a small number, for tables that hold many ids of
/// few partitions (the holders of claims).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holders {
    keys: Vec<PartitionKey>,
    index: FxHashMap<PartitionKey, u32>,
}

impl Holders {
    pub fn intern(&mut self, key: &PartitionKey) -> u32 {
        if let Some(&i) = self.index.get(key) {
            return i;
        }
        let i = self.keys.len() as u32;
        self.keys.push(key.clone());
        self.index.insert(key.clone(), i);
        i
    }

    pub fn key(&self, i: u32) -> Option<&PartitionKey> {
        self.keys.get(i as usize)
    }

    pub fn index(&self, key: &PartitionKey) -> Option<u32> {
        self.index.get(key).copied()
    }
}

/// How a shard remembers ids, and which ids it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupeConfig {
    /// Decisions remembered in full ([`Horizon`]).
    pub horizon: usize,
    /// How long every decided and claimed id is remembered.
    pub window: Window,
    /// This shard, and how many there are: an id is claimed at shard
    /// [`Fingerprint::owner`].
    pub shard: u32,
    pub shards: u32,
}

impl DedupeConfig {
    /// One shard owning every id.
    pub fn single(horizon: usize) -> Self {
        Self {
            horizon,
            window: Window::default(),
            shard: 0,
            shards: 1,
        }
    }
}

/// Every id a shard must not decide again or let be decided elsewhere:
/// the ids it decided, the ids it owns (claimed by some partition), and
/// the epoch they are aged by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ids {
    pub config: DedupeConfig,
    /// The epoch of the last [`super::Event::EpochStarted`].
    pub epoch: u32,
    /// Ids decided here, held by their partition's index
    /// ([`NO_PARTITION`] for an invalid one without).
    pub decided: IdTable,
    /// Ids this shard owns, held by the partition that claimed them.
    pub claims: IdTable,
    pub holders: Holders,
}

/// The holder of an id decided without a partition.
pub const NO_PARTITION: u32 = u32::MAX;

impl Ids {
    pub fn new(config: DedupeConfig) -> Self {
        Self {
            epoch: 0,
            decided: IdTable::new(config.window),
            claims: IdTable::new(config.window),
            holders: Holders::default(),
            config,
        }
    }

    /// The shard that owns `id`'s claim.
    pub fn owner(&self, fp: Fingerprint) -> u32 {
        fp.owner(self.config.shards)
    }

    pub fn owns(&self, fp: Fingerprint) -> bool {
        self.owner(fp) == self.config.shard
    }

    /// Who claimed an id this shard owns.
    pub fn claimed_by(&self, fp: Fingerprint) -> Option<&PartitionKey> {
        self.claims.holder(fp).and_then(|h| self.holders.key(h))
    }

    pub(super) fn advance(&mut self, epoch: u32) {
        self.epoch = self.epoch.max(epoch);
        self.decided.advance(self.epoch);
        self.claims.advance(self.epoch);
    }

    /// An order queued (or rejected unqueued) for `by`: if this shard owns
    /// its id and nobody claimed it yet, `by` has it now. Every order of a
    /// partition here claims its id this way, so an owned id needs no
    /// `IdsClaimed` event (a rerouted copy finds its first claim there).
    pub(in crate::domain) fn claim_own(&mut self, id: &OrderId, by: &PartitionKey) {
        let fp = Fingerprint::of(id);
        if self.owns(fp) && self.claims.holder(fp).is_none() {
            let h = self.holders.intern(by);
            self.claims.insert(fp, h, self.epoch);
        }
    }

    pub(super) fn claim(&mut self, id: &OrderId, by: &PartitionKey) {
        let h = self.holders.intern(by);
        self.claims.insert(Fingerprint::of(id), h, self.epoch);
    }

    pub(super) fn decide(&mut self, id: &OrderId, partition: Option<PartitionIdx>) {
        self.decided.insert(
            Fingerprint::of(id),
            partition.unwrap_or(NO_PARTITION),
            self.epoch,
        );
    }
}
