//! The `Decider`'s rules for stock: applying a stock command (revoking
//! reservations the new stock no longer covers), settling a partition
//! (reserving for waiting orders while stock allows), resolving an
//! exhausted queue by policy, and expiring backorders.

use super::{CommandError, Decider, Settled};
use crate::domain::messages::{Command, Event, RejectReason};
use crate::domain::orders::{Live, Status};
use crate::domain::policy::Exhaustion;
use crate::domain::reroute::next_hop;
use crate::domain::state::PartitionIdx;
use crate::domain::types::{OrderId, Timestamp, WarehouseId};

impl Decider<'_> {
    /// Applies a stock command; returns the partition it changed.
    pub fn stock(&mut self, command: &Command) -> Result<PartitionIdx, CommandError> {
        let (key, event, new_on_hand) = match command {
            Command::SetStock { partition, on_hand } => (
                partition,
                Event::StockSet {
                    partition: partition.clone(),
                    on_hand: *on_hand,
                },
                Some(*on_hand),
            ),
            Command::Restock { partition, units } => (
                partition,
                Event::StockRestocked {
                    partition: partition.clone(),
                    units: units.get(),
                },
                None,
            ),
            Command::AdjustStock { partition, delta } => {
                let on_hand = self
                    .state
                    .partition_idx(partition)
                    .map_or(0, |p| self.state.partition(p).on_hand());
                let new = on_hand.checked_add_signed(*delta).ok_or_else(|| {
                    CommandError::NegativeStock {
                        partition: partition.clone(),
                        on_hand,
                        delta: *delta,
                    }
                })?;
                (
                    partition,
                    Event::StockAdjusted {
                        partition: partition.clone(),
                        delta: *delta,
                    },
                    Some(new),
                )
            }
            Command::PlaceOrder(_)
            | Command::CancelOrder { .. }
            | Command::Batch { .. }
            | Command::Keyed { .. } => return Err(CommandError::NotStock),
        };
        if let (Some(new), Some(p)) = (new_on_hand, self.state.partition_idx(key)) {
            self.revoke_above(p, new);
        }
        self.emit(event);
        Ok(self
            .state
            .partition_idx(key)
            .expect("stock events create their partition"))
    }

    /// Revokes the newest reservations until at most `limit` units are
    /// reserved; they go back to the front of the queue.
    fn revoke_above(&mut self, p: PartitionIdx, limit: u64) {
        while self.state.partition(p).reserved > limit {
            let part = self.state.partition(p);
            let newest = part
                .reservations
                .iter()
                .rev()
                .find(|(e, _)| self.state.is_current(e))
                .and_then(|(e, _)| self.state.at_slot(e.slot))
                .map(|l| l.order.id.clone())
                .expect("reserved units have a reservation");
            let cancelled = self.state.live(&newest).is_some_and(|l| l.cancel_requested);
            self.emit(Event::ReservationRevoked { id: newest.clone() });
            if cancelled {
                self.emit(Event::OrderRejected {
                    id: newest,
                    reason: RejectReason::Cancelled,
                    partition: None,
                });
            }
        }
    }

    /// Reserves for waiting orders while stock allows (backorders first,
    /// then the queue, each in release order, first fit); once nothing
    /// fits and nothing is in flight, resolves the queue by policy.
    pub fn settle(&mut self, p: PartitionIdx, now: Timestamp) -> Settled {
        loop {
            let part = self.state.partition(p);
            if part.available == 0 {
                break;
            }
            let live = |e: &_| self.state.is_current(e);
            let next = part
                .backorders
                .first_fit(part.available, live)
                .or_else(|| part.queue.first_fit(part.available, live));
            match next {
                Some(e) => {
                    let slot = e.slot;
                    let id = self
                        .state
                        .at_slot(slot)
                        .expect("current entry")
                        .order
                        .id
                        .clone();
                    self.emit_at(Event::OrderReserved { id }, Some(slot));
                }
                None => break,
            }
        }
        let part = self.state.partition(p);
        if part.queued == 0 {
            Settled::Idle
        } else if part.in_flight > 0 {
            Settled::Waiting
        } else {
            self.exhaust(p, now);
            Settled::Idle
        }
    }

    /// Resolves every queued order of the partition in one batch by its
    /// exhaustion policy.
    pub fn exhaust(&mut self, p: PartitionIdx, now: Timestamp) {
        let part = self.state.partition(p);
        let policy = self.rules.exhaustion.for_sku(&part.key.sku).clone();
        let waiting: Vec<OrderId> = part
            .queue
            .iter()
            .filter(|(e, _)| self.state.is_current(e))
            .filter_map(|(e, _)| self.state.at_slot(e.slot))
            .map(|l| l.order.id.clone())
            .collect();
        for id in waiting {
            let event = match &policy {
                Exhaustion::Reject => Event::OrderRejected {
                    id,
                    reason: RejectReason::OutOfStock,
                    partition: None,
                },
                Exhaustion::Backorder { ttl } => Event::OrderBackordered {
                    id,
                    until: now.plus(*ttl),
                },
                Exhaustion::Reroute => match self.next_warehouse(&id) {
                    Some(to) => Event::OrderRerouted { id, to },
                    None => Event::OrderRejected {
                        id,
                        reason: RejectReason::OutOfStock,
                        partition: None,
                    },
                },
            };
            self.emit(event);
        }
    }

    fn next_warehouse(&self, id: &OrderId) -> Option<WarehouseId> {
        next_hop(&self.state.live(id)?.order)
    }

    /// Rejects backorders whose TTL passed, oldest first. Returns the next
    /// backorder deadline of the partition, if any.
    pub fn expire_backorders(&mut self, p: PartitionIdx, now: Timestamp) -> Option<Timestamp> {
        loop {
            let part = self.state.partition(p);
            let front = part
                .backorders
                .iter()
                .find(|(e, _)| self.state.is_current(e));
            let (id, until) = match front {
                Some((e, _)) => match self.state.at_slot(e.slot) {
                    Some(
                        l @ Live {
                            status: Status::Backordered { until },
                            ..
                        },
                    ) => (l.order.id.clone(), *until),
                    _ => unreachable!("current backorder entries are backordered"),
                },
                None => return None,
            };
            if until > now {
                return Some(until);
            }
            self.emit(Event::OrderRejected {
                id,
                reason: RejectReason::BackorderExpired,
                partition: None,
            });
        }
    }
}
