//! Remembering order ids: [`Horizon`], the recent decisions in full (what
//! was decided, for answers and reroute hand-offs), and [`IdTable`], every
//! id of a time window in 24 bytes (a 128-bit fingerprint, a holder and
//! an epoch), for the promise that an id is decided at most once within
//! the window however many ids that is (up to a cap).
//!
//! Fingerprints are SipHash-1-3 (128 bits) of the id with fixed keys: a
//! new id is taken for a remembered one with a probability of about
//! n / 2^128 (n ids remembered), far below any hardware fault rate.

use std::collections::hash_map::Entry;
use std::collections::VecDeque;
use std::hash::Hasher;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher13};

use super::orders::Final;
use super::types::{OrderId, PartitionKey, Quantity, Timestamp};
use super::Order;

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

/// A remembered decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    pub partition: Option<PartitionIdx>,
    pub quantity: Quantity,
    pub outcome: Final,
    /// For `Rerouted`: the copy handed to the next partition. Only that very
    /// order is taken for it when it arrives; another one reusing the id is
    /// a duplicate.
    pub forwarded: Option<Box<Order>>,
    seq: u64,
}

/// The last `capacity` decided order ids in full, so a repeated id is
/// answered with its decision and a rerouted order's hand-off recognised.
/// About 100 bytes per id; older ids are still refused by the shard's
/// [`IdTable`] of decided ids, only without saying what was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Horizon {
    pub(super) capacity: usize,
    next_seq: u64,
    pub(super) map: FxHashMap<OrderId, Decided>,
    fifo: VecDeque<(u64, OrderId)>,
}

impl Horizon {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            next_seq: 0,
            map: FxHashMap::default(),
            fifo: VecDeque::new(),
        }
    }

    pub fn get(&self, id: &OrderId) -> Option<&Decided> {
        self.map.get(id)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(super) fn insert(
        &mut self,
        id: OrderId,
        partition: Option<PartitionIdx>,
        quantity: Quantity,
        outcome: Final,
    ) -> &mut Decided {
        let seq = self.next_seq;
        self.next_seq += 1;
        while self.fifo.len() >= self.capacity {
            let Some((old_seq, old)) = self.fifo.pop_front() else {
                break;
            };
            if let Entry::Occupied(o) = self.map.entry(old) {
                if o.get().seq == old_seq {
                    o.remove();
                }
            }
        }
        self.fifo.push_back((seq, id.clone()));
        let decided = Decided {
            partition,
            quantity,
            outcome,
            forwarded: None,
            seq,
        };
        match self.map.entry(id) {
            Entry::Occupied(mut o) => {
                o.insert(decided);
                o.into_mut()
            }
            Entry::Vacant(v) => v.insert(decided),
        }
    }

    pub(super) fn remove(&mut self, id: &OrderId) {
        self.map.remove(id);
    }
}

/// Ids of keyed commands applied recently, oldest evicted first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentIds {
    pub(super) set: rustc_hash::FxHashSet<OrderId>,
    fifo: VecDeque<OrderId>,
}

impl RecentIds {
    /// False if `id` is there already.
    pub(super) fn insert(&mut self, id: &OrderId, capacity: usize) -> bool {
        if !self.set.insert(id.clone()) {
            return false;
        }
        self.fifo.push_back(id.clone());
        while self.fifo.len() > capacity.max(1) {
            if let Some(old) = self.fifo.pop_front() {
                self.set.remove(&old);
            }
        }
        true
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u32) -> Fingerprint {
        Fingerprint::of(&OrderId::new(&format!("o-{n}")).unwrap())
    }

    #[test]
    fn fingerprints_are_stable_and_spread_over_owners() {
        // Stored in snapshots and logs' replays: must never change.
        assert_eq!(
            Fingerprint::of(&OrderId::new("o-1").unwrap()),
            Fingerprint::of(&OrderId::new("o-1").unwrap())
        );
        let mut owners = [0u32; 4];
        for n in 0..4000 {
            owners[fp(n).owner(4) as usize] += 1;
        }
        assert!(
            owners.iter().all(|&k| (800..1200).contains(&k)),
            "{owners:?}"
        );
    }

    #[test]
    fn ids_are_remembered_for_the_window_and_forgotten_after() {
        let window = Window::new(Duration::from_secs(24 * 3600), 1000);
        let mut t = IdTable::new(window);
        let start = window.epoch(Timestamp(1_000_000_000_000));
        t.insert(fp(1), 7, start);
        t.advance(start + 24);
        assert_eq!(
            t.holder(fp(1)),
            Some(7),
            "kept for 24 whole epochs after its own"
        );
        t.advance(start + 25);
        assert_eq!(t.holder(fp(1)), None, "forgotten after that");
    }

    #[test]
    fn over_the_cap_the_oldest_epoch_goes_first() {
        let mut t = IdTable::new(Window::new(Duration::from_secs(3600), 3));
        t.insert(fp(1), 0, 10);
        t.insert(fp(2), 0, 11);
        t.insert(fp(3), 0, 12);
        t.insert(fp(4), 0, 12);
        assert_eq!(t.len(), 3);
        assert_eq!(t.holder(fp(1)), None);
        assert!(t.holder(fp(2)).is_some() && t.holder(fp(4)).is_some());
        t.insert(fp(2), 9, 13);
        assert_eq!(t.holder(fp(2)), Some(0), "the first holder stays");
    }
}
