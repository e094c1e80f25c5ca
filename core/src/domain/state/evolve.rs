//! How a shard's state changes: [`ShardState::evolve`] folds one event in,
//! and the helpers it alone uses (partition lookup, tickets, slots, and
//! remembering final decisions).

use super::partition::{LaneKind, Partition};
use super::{LastPartition, ShardState, StateError};
use crate::domain::dedupe::{Decided, PartitionIdx};
use crate::domain::messages::Event;
use crate::domain::orders::{Final, Live, Slot, Status};
use crate::domain::queue::Ticketed;
use crate::domain::reroute::forwarded_order;
use crate::domain::types::{OrderId, PartitionKey, Priority, Quantity};

impl ShardState {
    /// Applies one event. Events the scheduler decided always apply; an
    /// error means the log is not this shard's or is corrupt.
    pub fn evolve(&mut self, event: &Event) -> Result<(), StateError> {
        self.evolve_at(event, None)
    }

    /// [`ShardState::evolve`], for a caller that knows the slot of the
    /// event's order: it saves the id lookup. The hint is checked against
    /// the order's id; a wrong one falls back to the lookup, so the result
    /// is always that of `evolve`.
    pub(crate) fn evolve_at(
        &mut self,
        event: &Event,
        hint: Option<Slot>,
    ) -> Result<(), StateError> {
        self.apply(event, hint).map_err(|why| StateError {
            event: format!("{event:?}"),
            why,
        })
    }

    fn partition_for(&mut self, key: &PartitionKey) -> PartitionIdx {
        let last = self.last_partition.0;
        if self
            .partitions
            .get(last as usize)
            .is_some_and(|p| p.key == *key)
        {
            return last;
        }
        let idx = match self.index.get(key) {
            Some(&idx) => idx,
            None => {
                let idx = self.partitions.len() as PartitionIdx;
                self.partitions.push(Partition::new(key.clone()));
                self.index.insert(key.clone(), idx);
                idx
            }
        };
        self.last_partition = LastPartition(idx);
        idx
    }

    fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    fn slot(&self, id: &OrderId, hint: Option<Slot>) -> Result<Slot, String> {
        if let Some(s) = hint {
            // Ids are unique among live orders, so the slot holding this id
            // is the one the index would give.
            if self.orders.at(s).is_some_and(|l| l.order.id == *id) {
                return Ok(s);
            }
        }
        self.orders
            .slot_of(id)
            .ok_or_else(|| "order is not live".to_owned())
    }

    fn apply(&mut self, event: &Event, hint: Option<Slot>) -> Result<(), String> {
        match event {
            Event::OrderQueued { order } => {
                if self.orders.contains_key(&order.id) {
                    return Err("order is already live".into());
                }
                self.ids.claim_own(&order.id, &order.partition);
                let p = self.partition_for(&order.partition);
                let ticket = self.ticket();
                if !self.decided.is_empty() {
                    self.decided.remove(&order.id);
                }
                let slot = self.orders.insert(Live {
                    order: order.clone(),
                    partition: p,
                    status: Status::Queued,
                    ticket,
                    attempts: 0,
                    cancel_requested: false,
                    rerouted_to: None,
                });
                let part = &mut self.partitions[p as usize];
                part.queue
                    .push_back(order.priority, order.quantity, Ticketed { ticket, slot });
                part.queued += 1;
            }
            Event::OrderReserved { id } => {
                let slot = self.slot(id, hint)?;
                let ticket = self.ticket();
                let (p, qty, was) = self.take_waiting(slot)?;
                let q = u64::from(qty.get());
                let part = &mut self.partitions[p as usize];
                part.available = part.available.checked_sub(q).ok_or_else(|| {
                    format!("reserving {q} with only {} available", part.available)
                })?;
                part.reserved += q;
                part.in_flight += 1;
                let live = self.at(slot);
                live.status = Status::Reserved;
                live.ticket = ticket;
                live.attempts = 0;
                self.trim_lane(p, was);
            }
            Event::OrderConfirmed { id } => {
                let slot = self.slot(id, hint)?;
                let (p, q) = self.unreserve(slot)?;
                self.partitions[p as usize].sold += q;
                let live = self.orders.remove_at(slot).expect("checked by unreserve");
                self.remember(id, Some(p), live.order.quantity, Final::Confirmed);
            }
            Event::OrderRetrying { id, attempt, .. } => {
                let live = self.live_mut(id, |s| matches!(s, Status::Reserved))?;
                live.attempts = *attempt;
            }
            Event::OrderReleased { id, .. } => {
                let slot = self.slot(id, hint)?;
                let (p, q) = self.unreserve(slot)?;
                self.partitions[p as usize].add_free(q);
                self.at(slot).status = Status::Releasing;
            }
            Event::OrderRejected { id, partition, .. } => match self.orders.slot_of(id) {
                None => {
                    if self.decided.get(id).is_some() {
                        return Err("order was decided already".into());
                    }
                    if let Some(p) = partition {
                        self.ids.claim_own(id, p);
                    }
                    self.remember(id, None, Quantity::ONE, Final::Rejected);
                }
                Some(slot) => {
                    let (p, was) = match self.at(slot).status {
                        Status::Reserved | Status::Forwarding => {
                            return Err("a reserved or forwarding order cannot be rejected".into())
                        }
                        Status::Releasing => (self.at(slot).partition, None),
                        _ => {
                            let (p, _, was) = self.take_waiting(slot)?;
                            (p, Some(was))
                        }
                    };
                    let live = self.orders.remove(id).expect("just seen");
                    self.remember(id, Some(p), live.order.quantity, Final::Rejected);
                    if let Some(was) = was {
                        self.trim_lane(p, was);
                    }
                }
            },
            Event::OrderBackordered { id, until } => {
                let slot = self.slot(id, hint)?;
                let ticket = self.ticket();
                let (p, qty, was) = self.take_waiting(slot)?;
                if was != LaneKind::Queue {
                    return Err("only a queued order can be backordered".into());
                }
                let live = self.at(slot);
                live.status = Status::Backordered { until: *until };
                live.ticket = ticket;
                let part = &mut self.partitions[p as usize];
                part.backordered += 1;
                part.backorders
                    .push_back(Priority(0), qty, Ticketed { ticket, slot });
                self.trim_lane(p, LaneKind::Queue);
            }
            Event::OrderRerouted { id, to } => {
                let slot = self.slot(id, hint)?;
                let ticket = self.ticket();
                let (p, _, was) = self.take_waiting(slot)?;
                let live = self.at(slot);
                live.status = Status::Forwarding;
                live.ticket = ticket;
                live.rerouted_to = Some(to.clone());
                self.trim_lane(p, was);
            }
            Event::OrderForwarded { id } => {
                self.live_mut(id, |s| matches!(s, Status::Forwarding))?;
                let live = self.orders.remove(id).expect("just seen");
                let to = live
                    .rerouted_to
                    .clone()
                    .expect("forwarding orders have a target");
                let copy = forwarded_order(&live.order, &to);
                self.remember(
                    id,
                    Some(live.partition),
                    live.order.quantity,
                    Final::Rerouted(to),
                )
                .forwarded = Some(Box::new(copy));
            }
            Event::OrderCancelRequested { id } => {
                self.live_mut(id, |s| matches!(s, Status::Reserved))?
                    .cancel_requested = true;
            }
            Event::OrderCancelled { id } => {
                let d = self
                    .decided
                    .map
                    .get_mut(id)
                    .ok_or("order is not in the horizon")?;
                if d.outcome != Final::Confirmed {
                    return Err(format!("order is {:?}, not confirmed", d.outcome));
                }
                d.outcome = Final::Cancelled;
                let q = u64::from(d.quantity.get());
                let p = d.partition.ok_or("confirmed order without partition")?;
                let part = &mut self.partitions[p as usize];
                part.sold = part
                    .sold
                    .checked_sub(q)
                    .ok_or("cancelling more than was sold")?;
                part.add_free(q);
            }
            Event::StockSet { partition, on_hand } => {
                let p = self.partition_for(partition);
                let part = &mut self.partitions[p as usize];
                part.set_net_free(i128::from(*on_hand) - i128::from(part.reserved));
                part.version += 1;
            }
            Event::StockRestocked { partition, units } => {
                let p = self.partition_for(partition);
                let part = &mut self.partitions[p as usize];
                part.add_free(*units);
                part.version += 1;
            }
            Event::StockShort { .. } | Event::CommandRefused { .. } => {}
            Event::IdsClaimed { claims } => {
                for c in claims {
                    self.ids.claim(&c.id, &c.by);
                }
            }
            Event::DuplicateRefused { .. } => {}
            Event::EpochStarted { epoch } => self.ids.advance(*epoch),
            Event::Cart { .. } => {}
            Event::CommandApplied { id } => {
                let capacity = self.decided.capacity;
                if !self.commands.insert(id, capacity) {
                    return Err("keyed command applied already".into());
                }
            }
            Event::StockAdjusted { partition, delta } => {
                let p = self.partition_for(partition);
                let part = &mut self.partitions[p as usize];
                part.set_net_free(part.net_free() + i128::from(*delta));
                part.version += 1;
            }
        }
        Ok(())
    }

    /// Records a final decision: in full (for answers) and in the
    /// window's table of ids decided here.
    fn remember(
        &mut self,
        id: &OrderId,
        partition: Option<PartitionIdx>,
        quantity: Quantity,
        outcome: Final,
    ) -> &mut Decided {
        self.ids.decide(id, partition);
        self.decided
            .insert(id.clone(), partition, quantity, outcome)
    }

    fn live_mut(&mut self, id: &OrderId, ok: fn(&Status) -> bool) -> Result<&mut Live, String> {
        match self.orders.get_mut(id) {
            Some(l) if ok(&l.status) => Ok(l),
            Some(l) => Err(format!("order is {:?}", l.status)),
            None => Err("order is not live".into()),
        }
    }
}
