//! The `Decider`'s rules for stock: applying a stock command (a count below
//! what is reserved leaves the partition short), settling a partition
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
    /// Applies a stock command; returns the partition it changed. A stock
    /// count below what is reserved takes no reservation back (its worker
    /// may be enacting it): the partition is short instead, recorded with
    /// a `StockShort`, and units that come in fill that first.
    pub fn stock(&mut self, command: &Command) -> Result<PartitionIdx, CommandError> {
        let existing = |key| {
            self.state
                .partition_idx(key)
                .map(|p| self.state.partition(p))
        };
        let event = match command {
            Command::SetStock {
                partition,
                on_hand,
                expected_version,
            } => {
                let actual = existing(partition).map_or(0, |p| p.version);
                if let Some(expected) = *expected_version {
                    if expected != actual {
                        return Err(CommandError::StaleVersion {
                            partition: partition.clone(),
                            expected,
                            actual,
                        });
                    }
                }
                Event::StockSet {
                    partition: partition.clone(),
                    on_hand: *on_hand,
                }
            }
            Command::Restock { partition, units } => Event::StockRestocked {
                partition: partition.clone(),
                units: units.get(),
            },
            Command::AdjustStock { partition, delta } => {
                let on_hand = existing(partition).map_or(0, |p| p.on_hand());
                if on_hand + i128::from(*delta) < 0 {
                    return Err(CommandError::NegativeStock {
                        partition: partition.clone(),
                        on_hand,
                        delta: *delta,
                    });
                }
                Event::StockAdjusted {
                    partition: partition.clone(),
                    delta: *delta,
                }
            }
            Command::PlaceOrder(_)
            | Command::CancelOrder { .. }
            | Command::Batch { .. }
            | Command::Keyed { .. } => return Err(CommandError::NotStock),
        };
        let key = command
            .partition()
            .expect("stock commands have a partition")
            .clone();
        self.emit(event);
        let p = self
            .state
            .partition_idx(&key)
            .expect("stock events create their partition");
        let short = self.state.partition(p).short;
        if short > 0 {
            self.emit(Event::StockShort {
                partition: key,
                units: short,
            });
        }
        Ok(p)
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
            // Each is a whole decision: an append may end after it.
            self.cuts.push(self.events.len());
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
