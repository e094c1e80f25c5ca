//! Deciding each id at most once across shards: which shard owns an id's
//! claim, answering other shards' claims, recording a copy another
//! partition placed first, and starting each dedupe epoch as time passes.

use super::{AckId, Mark, Reply, ReplyId, Shard};
use crate::domain::{Claim, CommandError, Event, Fingerprint, OrderId, PartitionKey, Timestamp};

impl Shard {
    /// The shard that must grant `id` before a producer's order with it is
    /// handed to [`Shard::handle_order`], when that is another shard and
    /// the id is not known here (a known one is answered here).
    pub fn claim_owner(&self, id: &OrderId) -> Option<u32> {
        let fp = Fingerprint::of(id);
        let ids = self.state.ids();
        let owner = ids.owner(fp);
        let known = self.state.live(id).is_some()
            || self.state.decided(id).is_some()
            || ids.decided.holder(fp).is_some();
        (owner != self.config.shard && !known).then_some(owner)
    }

    /// Another shard's owner refused the id of a producer's order filed
    /// for `partition`: `holder` placed it first. Recorded, not decided.
    pub fn handle_refused(
        &mut self,
        id: OrderId,
        partition: PartitionKey,
        holder: PartitionKey,
        ack: Option<AckId>,
        now: Timestamp,
    ) -> Reply {
        self.tick(now);
        let reply = if self.fenced {
            Reply::Refused(CommandError::Fenced)
        } else {
            self.decider().refuse(id, partition, holder.clone());
            self.stats.duplicates += 1;
            Reply::Duplicate(crate::domain::Known::Claimed(holder))
        };
        self.after_input(ack, now);
        reply
    }

    /// Claims from other shards' partitions for ids this shard owns. The
    /// answers come out as [`Output::Replies`](super::Output::Replies) under
    /// `reply` once the claims are durable.
    pub fn handle_claims(&mut self, claims: &[Claim], reply: ReplyId, now: Timestamp) {
        self.tick(now);
        if self.fenced {
            return;
        }
        let answers = self.decider().claim(claims);
        self.group.mark(Mark::Reply(reply, answers));
        self.after_input(None, now);
    }

    /// Starts a new dedupe epoch if `now` reached one.
    pub(super) fn tick(&mut self, now: Timestamp) {
        let epoch = self.config.dedupe_window.epoch(now);
        if epoch > self.state.ids().epoch && !self.fenced {
            self.decider().record(Event::EpochStarted { epoch });
        }
    }
}
