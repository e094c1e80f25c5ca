//! The `Decider`'s rules for placing orders: queueing a new order (or the
//! forwarded copy of a rerouted one), recording invalid orders, admitting
//! a producer's id against the dedupe window and the id claims, and
//! answering other shards' claims.

use rustc_hash::FxHashMap;

use super::{Decider, Known, Origin};
use crate::domain::dedupe::Fingerprint;
use crate::domain::messages::{Claim, ClaimAnswer, Event, FieldError, Order, RejectReason};
use crate::domain::reroute::{is_forwarded_copy, is_forwarded_hop, is_hop_of};
use crate::domain::state::PartitionIdx;
use crate::domain::types::{OrderId, PartitionKey};

/// Claims recorded in one `IdsClaimed` event: a request of thousands (a
/// backlog of batched intake) stays many events an append may be cut
/// between, each far under the broker's message limit.
pub const CLAIMS_PER_EVENT: usize = 256;

impl Decider<'_> {
    /// Queues a producer's new order. A known id is not decided again.
    pub fn place(&mut self, order: Order) -> Result<PartitionIdx, Known> {
        self.place_from(order, Origin::Producer)
    }

    /// Queues a new order from `origin`. A known id is not decided again.
    pub fn place_from(&mut self, order: Order, origin: Origin) -> Result<PartitionIdx, Known> {
        let mut hop = false;
        if let Some(live) = self.state.live(&order.id) {
            // The forwarded copy of an order this shard rerouted, or a later
            // hop of it (rerouted on by another shard, back to a warehouse
            // of this one): its arrival proves the hand-off. Only those
            // exact orders: another order reusing the id is a duplicate.
            if !is_forwarded_hop(live, &order) {
                return Err(Known::Live(live.status));
            }
            self.emit(Event::OrderForwarded {
                id: order.id.clone(),
            });
            hop = true;
        } else if let Some(d) = self.state.decided(&order.id) {
            // Rerouted, and the copy (or a later hop) arrives after the
            // forward was reported.
            if !d.forwarded.as_deref().is_some_and(|f| is_hop_of(f, &order)) {
                return Err(Known::Decided(d.outcome.clone()));
            }
            hop = true;
        }
        if !hop && origin == Origin::Producer {
            self.admit(&order.id, Some(&order.partition))?;
        }
        // Where the order will live, so its partition is read from there
        // rather than looked up again by key.
        let slot = self.state.next_slot();
        self.emit(Event::OrderQueued { order });
        Ok(self
            .state
            .at_slot(slot)
            .expect("the order just queued")
            .partition)
    }

    /// Records an order that failed validation as rejected, unless its id
    /// is known (then the earlier decision stands).
    pub fn reject_invalid(
        &mut self,
        id: OrderId,
        errors: Vec<FieldError>,
        partition: Option<PartitionKey>,
    ) -> Result<(), Known> {
        if let Some(live) = self.state.live(&id) {
            return Err(Known::Live(live.status));
        }
        if let Some(d) = self.state.decided(&id) {
            return Err(Known::Decided(d.outcome.clone()));
        }
        self.admit(&id, partition.as_ref())?;
        self.emit(Event::OrderRejected {
            id,
            reason: RejectReason::Invalid { errors },
            partition,
        });
        Ok(())
    }

    /// Checks a producer's id that is not known in full here: refused if
    /// it was decided here within the window; claimed for `partition` if
    /// this shard owns it (by the decision itself), and refused (with a record) if another
    /// partition placed it first. An id owned elsewhere was claimed there
    /// before the order came in (the runtime's part of the contract).
    fn admit(&mut self, id: &OrderId, partition: Option<&PartitionKey>) -> Result<(), Known> {
        let fp = Fingerprint::of(id);
        let ids = self.state.ids();
        if ids.decided.holder(fp).is_some() {
            return Err(Known::Forgotten);
        }
        let Some(p) = partition.filter(|_| ids.owns(fp)) else {
            return Ok(());
        };
        match ids.claimed_by(fp) {
            // Claimed by the event that queues (or rejects) it: see
            // `Ids::claim_own`.
            None => {}
            Some(holder) if holder == p => {}
            Some(holder) => {
                let holder = holder.clone();
                self.refuse(id.clone(), p.clone(), holder.clone());
                return Err(Known::Claimed(holder));
            }
        }
        Ok(())
    }

    /// Records a refused copy of `id` filed for `partition`: `holder`
    /// placed the id first.
    pub fn refuse(&mut self, id: OrderId, partition: PartitionKey, holder: PartitionKey) {
        self.emit(Event::DuplicateRefused {
            id,
            partition,
            holder,
        });
    }

    /// The owner of these ids answers claims from other shards: each id is
    /// granted to the first partition that claims it (recorded in
    /// `IdsClaimed` events of at most [`CLAIMS_PER_EVENT`] claims, each a
    /// whole decision an append may end after), and refused to any other.
    pub fn claim(&mut self, requests: &[Claim]) -> Vec<ClaimAnswer> {
        let mut new: Vec<Claim> = Vec::new();
        // Ids granted by this request, to their claim in `new`.
        let mut granted: FxHashMap<&OrderId, usize> = FxHashMap::default();
        let answers = requests
            .iter()
            .map(|c| {
                let fp = Fingerprint::of(&c.id);
                let holder = self
                    .state
                    .ids()
                    .claimed_by(fp)
                    .or_else(|| granted.get(&c.id).map(|&i| &new[i].by));
                match holder {
                    None => {
                        granted.insert(&c.id, new.len());
                        new.push(c.clone());
                        ClaimAnswer::Granted
                    }
                    Some(h) if *h == c.by => ClaimAnswer::Granted,
                    Some(h) => ClaimAnswer::Refused { holder: h.clone() },
                }
            })
            .collect();
        drop(granted);
        let mut new = new.into_iter().peekable();
        while new.peek().is_some() {
            let claims: Vec<Claim> = new.by_ref().take(CLAIMS_PER_EVENT).collect();
            self.emit(Event::IdsClaimed { claims });
            self.cuts.push(self.events.len());
        }
        answers
    }

    /// The runtime handed `copy`, a rerouted order, on. Idempotent; a late
    /// call for an earlier hop (the copy arrived first and was rerouted
    /// again) is ignored, so the next hop is still forwarded.
    pub fn forwarded(&mut self, copy: &Order) {
        if self
            .state
            .live(&copy.id)
            .is_some_and(|l| is_forwarded_copy(l, copy))
        {
            self.emit(Event::OrderForwarded {
                id: copy.id.clone(),
            });
        }
    }
}
