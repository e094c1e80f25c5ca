//! The business rules: given a shard's state and what happened, decide the
//! events. Each decided event is applied to the state at once (through
//! `evolve`, the only way state changes), so the next rule sees its effect.
//! Nothing here does I/O or reads a clock.

use std::time::Duration;

use super::dedupe::Fingerprint;
use super::messages::{
    Claim, ClaimAnswer, Command, Event, FieldError, Order, Outcome, RejectReason,
};
use super::orders::Slot;
use super::orders::{Final, Live, Status};
use super::policy::{CancelConfirmed, Exhaustion, ExhaustionRules, RetryPolicy};
pub use super::reroute::{forwarded_order, is_hop_of};
use super::reroute::{is_forwarded_copy, is_forwarded_hop, next_hop};
use super::state::{PartitionIdx, ShardState};
use super::types::{OrderId, PartitionKey, Timestamp, WarehouseId};

/// The policies the rules read, as plain values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub exhaustion: ExhaustionRules,
    pub retry: RetryPolicy,
    pub cancel_confirmed: CancelConfirmed,
}

/// Identifies one dispatch of a reservation, so a late outcome of an earlier
/// one is recognised and ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attempt {
    pub ticket: u64,
    pub retry: u32,
}

/// A command the rules refuse: nothing was decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No live order and no remembered decision has this id.
    #[error("order {0}: unknown (never placed here, or older than the dedupe horizon)")]
    UnknownOrder(OrderId),
    /// The order was already decided; its decision stands.
    #[error("order {id}: already {outcome:?}")]
    AlreadyDecided { id: OrderId, outcome: Final },
    /// The order moved to another warehouse; address it there.
    #[error("order {id}: rerouted to warehouse {to}; cancel it there")]
    Rerouted { id: OrderId, to: WarehouseId },
    /// Config forbids cancelling confirmed orders.
    #[error("order {0}: confirmed, and scheduler.cancel_confirmed = \"refuse\"")]
    CancelConfirmedRefused(OrderId),
    /// A stock change would leave negative stock.
    #[error("{partition}: on-hand stock {on_hand} changed by {delta} would be negative")]
    NegativeStock {
        partition: PartitionKey,
        on_hand: u64,
        delta: i64,
    },
    /// Not a stock command (an internal misuse of `Decider::stock`).
    #[error("not a stock command")]
    NotStock,
    /// This shard instance lost its log to another writer; retry elsewhere.
    #[error("this instance no longer owns the shard")]
    Fenced,
}

/// The answer to one command, decided at once (durability follows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted: the order is queued, or the command applied.
    Accepted,
    /// The order id is known; the earlier decision stands.
    Duplicate(Known),
    /// Refused; nothing changed.
    Refused(CommandError),
    /// One verdict per command of a batch, in order.
    Batch(Vec<Verdict>),
}

/// A placed order that was not queued because its id is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    Live(Status),
    Decided(Final),
    /// Decided here within the dedupe window, longer ago than the decisions
    /// kept in full: what was decided is not at hand, but it stands.
    Forgotten,
    /// Another partition placed the id first (its copy was refused).
    Claimed(PartitionKey),
    /// A keyed command already applied.
    Applied,
}

/// Where an order to place comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A producer (directly, or through the ingress): its id is checked
    /// against every id decided or claimed within the window.
    Producer,
    /// Another partition rerouted it here: its id was claimed where it was
    /// placed first.
    Forwarded,
}

/// What a worker outcome led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeEffect {
    /// The order was settled (confirmed or rejected) in this partition.
    Settled(PartitionIdx),
    /// Dispatch it again after the backoff.
    Retry { attempt: Attempt, after: Duration },
    /// Not the current dispatch of a reserved order: ignored.
    Stale,
}

/// Whether a partition still has queued orders it cannot serve yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Idle,
    /// Nothing fits, but orders are in flight and may free units.
    Waiting,
}

/// Applies the rules to a state, collecting the events.
pub struct Decider<'a> {
    pub state: &'a mut ShardState,
    pub events: &'a mut Vec<Event>,
    pub rules: &'a Rules,
}

impl Decider<'_> {
    fn emit(&mut self, event: Event) {
        self.emit_at(event, None);
    }

    /// `emit`, for an event about the live order at `slot`.
    fn emit_at(&mut self, event: Event, slot: Option<Slot>) {
        if let Err(e) = self.state.evolve_at(&event, slot) {
            panic!("a decided event must apply: {e}");
        }
        self.events.push(event);
    }

    /// Applies a command (a batch's commands in order), settling each
    /// partition it touches; each one and how it settled is added to
    /// `touched`, in order (the last entry of a partition is current).
    pub fn command(
        &mut self,
        command: Command,
        now: Timestamp,
        touched: &mut Vec<(PartitionIdx, Settled)>,
    ) -> Verdict {
        let (verdict, p) = match command {
            Command::PlaceOrder(order) => match self.place(order) {
                Ok(p) => (Verdict::Accepted, Some(p)),
                Err(known) => (Verdict::Duplicate(known), None),
            },
            Command::Keyed { id, command } => {
                if self.state.command_applied(&id) {
                    return Verdict::Duplicate(Known::Applied);
                }
                self.emit(Event::CommandApplied { id });
                return self.command(*command, now, touched);
            }
            Command::Batch { commands } => {
                return Verdict::Batch(
                    commands
                        .into_iter()
                        .map(|c| self.command(c, now, touched))
                        .collect(),
                )
            }
            Command::CancelOrder { id, .. } => match self.cancel(&id) {
                Ok(p) => (Verdict::Accepted, p),
                Err(e) => (Verdict::Refused(e), None),
            },
            stock => match self.stock(&stock) {
                Ok(p) => (Verdict::Accepted, Some(p)),
                Err(e) => (Verdict::Refused(e), None),
            },
        };
        if let Some(p) = p {
            let settled = self.settle(p, now);
            touched.push((p, settled));
        }
        verdict
    }

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
    /// this shard owns it, and refused (with a record) if another
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
            None => self.emit(Event::IdsClaimed {
                claims: vec![Claim {
                    id: id.clone(),
                    by: p.clone(),
                }],
            }),
            Some(holder) if holder == p => {}
            Some(holder) => {
                let holder = holder.clone();
                self.refuse(id.clone(), p.clone(), holder.clone());
                return Err(Known::Claimed(holder));
            }
        }
        Ok(())
    }

    /// Decides `event` as it is (time passing, say).
    pub fn record(&mut self, event: Event) {
        self.emit(event);
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
    /// granted to the first partition that claims it (recorded in one
    /// `IdsClaimed`), and refused to any other.
    pub fn claim(&mut self, requests: &[Claim]) -> Vec<ClaimAnswer> {
        let mut new: Vec<Claim> = Vec::new();
        let answers = requests
            .iter()
            .map(|c| {
                let fp = Fingerprint::of(&c.id);
                let holder = self
                    .state
                    .ids()
                    .claimed_by(fp)
                    .or_else(|| new.iter().find(|n| n.id == c.id).map(|n| &n.by));
                match holder {
                    None => {
                        new.push(c.clone());
                        ClaimAnswer::Granted
                    }
                    Some(h) if *h == c.by => ClaimAnswer::Granted,
                    Some(h) => ClaimAnswer::Refused { holder: h.clone() },
                }
            })
            .collect();
        if !new.is_empty() {
            self.emit(Event::IdsClaimed { claims: new });
        }
        answers
    }

    /// Cancels an order. Returns the partition whose stock may have changed.
    pub fn cancel(&mut self, id: &OrderId) -> Result<Option<PartitionIdx>, CommandError> {
        if let Some(live) = self.state.live(id) {
            let p = live.partition;
            match live.status {
                Status::Queued | Status::Backordered { .. } => self.emit(Event::OrderRejected {
                    id: id.clone(),
                    reason: RejectReason::Cancelled,
                    partition: None,
                }),
                Status::Reserved if !live.cancel_requested => {
                    self.emit(Event::OrderCancelRequested { id: id.clone() })
                }
                Status::Reserved | Status::Releasing => {}
                Status::Forwarding => {
                    return Err(CommandError::Rerouted {
                        id: id.clone(),
                        to: live.rerouted_to.clone().expect("forwarding has a target"),
                    })
                }
            }
            return Ok(Some(p));
        }
        let d = self
            .state
            .decided(id)
            .ok_or_else(|| CommandError::UnknownOrder(id.clone()))?;
        match (&d.outcome, self.rules.cancel_confirmed) {
            (Final::Confirmed, CancelConfirmed::Restock) => {
                let p = d.partition;
                self.emit(Event::OrderCancelled { id: id.clone() });
                Ok(p)
            }
            (Final::Confirmed, CancelConfirmed::Refuse) => {
                Err(CommandError::CancelConfirmedRefused(id.clone()))
            }
            (Final::Rerouted(to), _) => Err(CommandError::Rerouted {
                id: id.clone(),
                to: to.clone(),
            }),
            (outcome, _) => Err(CommandError::AlreadyDecided {
                id: id.clone(),
                outcome: outcome.clone(),
            }),
        }
    }

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

    /// Applies a worker's outcome for one dispatch.
    pub fn outcome(&mut self, id: &OrderId, attempt: Attempt, outcome: Outcome) -> OutcomeEffect {
        let Some(slot) = self.state.slot_of(id) else {
            return OutcomeEffect::Stale;
        };
        let live = self.state.at_slot(slot).expect("slot of a live order");
        if live.status != Status::Reserved
            || live.ticket != attempt.ticket
            || live.attempts != attempt.retry
        {
            return OutcomeEffect::Stale;
        }
        let (p, cancelled, attempts) = (live.partition, live.cancel_requested, live.attempts);
        match outcome {
            Outcome::Fulfilled => {
                self.emit_at(Event::OrderConfirmed { id: id.clone() }, Some(slot));
                if cancelled && self.rules.cancel_confirmed == CancelConfirmed::Restock {
                    self.emit(Event::OrderCancelled { id: id.clone() });
                }
            }
            // Asked again whatever the budget: only an answer may settle an
            // order whose work may have been done.
            Outcome::Unknown { reason } => return self.retry(id, attempt, reason),
            Outcome::Failed { reason, .. } if cancelled => {
                self.release(id, reason, RejectReason::Cancelled)
            }
            Outcome::Failed {
                reason,
                retryable: true,
            } if attempts < self.rules.retry.max_retries => {
                return self.retry(id, attempt, reason);
            }
            Outcome::Failed {
                reason,
                retryable: true,
            } => {
                let why = RejectReason::RetriesExhausted {
                    last: reason.clone(),
                };
                self.release(id, reason, why)
            }
            Outcome::Failed {
                reason,
                retryable: false,
            } => {
                let why = RejectReason::FulfilmentFailed {
                    reason: reason.clone(),
                };
                self.release(id, reason, why)
            }
        }
        OutcomeEffect::Settled(p)
    }

    fn release(&mut self, id: &OrderId, reason: String, why: RejectReason) {
        self.emit(Event::OrderReleased {
            id: id.clone(),
            reason,
        });
        self.emit(Event::OrderRejected {
            id: id.clone(),
            reason: why,
            partition: None,
        });
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

    /// Schedules the next attempt of a reserved order after `attempt`,
    /// under the same ticket (the same idempotency key for the worker).
    fn retry(&mut self, id: &OrderId, attempt: Attempt, reason: String) -> OutcomeEffect {
        let retry = attempt.retry.saturating_add(1);
        self.emit(Event::OrderRetrying {
            id: id.clone(),
            attempt: retry,
            reason,
        });
        OutcomeEffect::Retry {
            attempt: Attempt {
                ticket: attempt.ticket,
                retry,
            },
            after: self.rules.retry.backoff(retry),
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

/// The rules in their pure form: the verdict and the events `command`
/// decides against `state`, which is left as it was.
pub fn decide(
    state: &ShardState,
    rules: &Rules,
    command: Command,
    now: Timestamp,
) -> (Verdict, Vec<Event>) {
    let mut state = state.clone();
    let mut events = Vec::new();
    let mut decider = Decider {
        state: &mut state,
        events: &mut events,
        rules,
    };
    let verdict = decider.command(command, now, &mut Vec::new());
    (verdict, events)
}
