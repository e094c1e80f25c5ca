//! The cart saga coordinator: a sans-IO state machine that sells a cart's
//! lines, held in several partitions, all or nothing (or line by line),
//! with an optional payment hold, per-warehouse enactment and compensation.
//! One [`Carts`] per shard; which shard coordinates a cart (a hash of its
//! id) is the caller's choice. No I/O, no clock, no async.
//!
//! # Drive loop (the contract)
//!
//! ```text
//! loop {
//!     feed inputs:  handle_cart / handle_confirm / handle_cancel   (requests)
//!                   handle_line                                    (partitions)
//!                   handle_enacted                                 (workers)
//!                   handle_appended                                (event log)
//!                   handle_timeout(now) once now >= poll_timeout()
//!     while let Some(out) = carts.poll_output() {
//!         Append(events) -> append them as ONE log entry; once durable,
//!                           handle_appended(). If the append fails or its
//!                           fate is unknown: drop this Carts, recover().
//!         Reserve(line)  -> place the line (id `LineId`) in its partition;
//!                           its answer comes back through handle_line
//!         Release / Commit -> give the line's units back / sell them
//!         Enact          -> give the warehouse's lines to a worker; its
//!                           result comes back through handle_enacted
//!         Revoke         -> undo that warehouse's enactment
//!         Decided        -> publish the cart's final decision
//!         Ack(id)        -> ack that intake message (or answer that request):
//!                           what its input decided is durable now
//!     }
//!     sleep until poll_timeout() or the next input
//! }
//! ```
//!
//! Outputs must be carried out in the order they are polled: an effect
//! output before an `Append` is handed to its transport before that append
//! starts (that is what lets [`CartEvent::Delivered`] record it as sent).
//!
//! Guarantees: every state change is an event, output in an `Append`
//! first (at most one outstanding; what is decided meanwhile goes into the
//! next). Effects (everything but `Append`) are output only once the
//! events deciding them are durable, so a crash loses nothing: the log
//! rebuilds the state ([`Carts::recover`]) and recovery re-sends every
//! effect that may not have gone out. Each cart gets one `Decided`; it is
//! output again only by a recovery after a crash that came before the
//! `Delivered` event covering it was durable, with the same content, so
//! its consumers dedupe by cart id. An all-or-nothing cart never ends
//! with one line committed and another released; no line is both.
//!
//! What the integrator must honour: partitions treat `Reserve`, `Release`
//! and `Commit` idempotently by line id (a re-sent `Reserve` is answered
//! as before; a `Release` or `Commit` of a line already settled that way
//! is a no-op); workers treat `Enact` and `Revoke` idempotently by (cart,
//! warehouse). A cancel is refused once enactment started (the warehouses
//! may have begun shipping); a cart that fails after that revokes them.

mod messages;
mod progress;
mod recover;
mod state;
#[cfg(test)]
mod tests;
mod timers;

use std::collections::{BTreeMap, VecDeque};

pub use crate::domain::cart::{Cart, CartConfig, CartLine, Fill, LineId};
use crate::domain::{OrderId, Timestamp};
/// The runtime's handle for an intake message or request (the shard's).
pub use crate::scheduler::AckId;
use crate::scheduler::Deadlines;
pub use messages::{
    CartEvent, CartOutcome, CartReason, CartReply, CartStats, Decision, EnactResult, LineAnswer,
    LineFate, LineOrder, Output, Refusal,
};
pub use state::{CartState, EnactStatus, LineStatus, Phase, WarehouseEnact};
use timers::Timer;

/// The carts one shard coordinates. See the module docs for the drive loop.
pub struct Carts {
    config: CartConfig,
    carts: BTreeMap<OrderId, CartState>,
    /// Decided, not yet output in an `Append`.
    pending: Vec<CartEvent>,
    /// Effects of `pending`, released with it.
    pending_effects: Vec<Output>,
    /// Effects of the outstanding append, if one is.
    inflight: Option<Vec<Output>>,
    ready: VecDeque<Output>,
    timers: Deadlines<Timer>,
    stats: CartStats,
}

impl Carts {
    /// A coordinator with no history.
    pub fn new(config: CartConfig) -> Self {
        Self {
            config,
            carts: BTreeMap::new(),
            pending: Vec::new(),
            pending_effects: Vec::new(),
            inflight: None,
            ready: VecDeque::new(),
            timers: Deadlines::default(),
            stats: CartStats::default(),
        }
    }

    pub fn config(&self) -> &CartConfig {
        &self.config
    }

    pub fn stats(&self) -> CartStats {
        self.stats
    }

    /// One cart's state.
    pub fn cart(&self, id: &OrderId) -> Option<&CartState> {
        self.carts.get(id)
    }

    /// Every cart's state, by id: equal for a coordinator and one
    /// recovered from its (fully durable) log.
    pub fn carts(&self) -> impl Iterator<Item = &CartState> {
        self.carts.values()
    }

    /// True while events are not yet durable or outputs wait to be taken.
    pub fn has_unwritten(&self) -> bool {
        !self.pending.is_empty() || self.inflight.is_some() || !self.ready.is_empty()
    }

    /// Opens a validated cart: every line is reserved in its partition.
    /// A known id is answered `Duplicate` and nothing happens. `ack` (the
    /// intake message or request) is output as `Ack` once the cart is
    /// durable: ack no earlier, or a crash may lose an accepted cart.
    pub fn handle_cart(&mut self, cart: Cart, ack: Option<AckId>, now: Timestamp) -> CartReply {
        let reply = if self.carts.contains_key(cart.id()) {
            self.stats.duplicate_carts += 1;
            CartReply::Duplicate
        } else {
            self.emit(CartEvent::Opened { cart, at: now });
            CartReply::Accepted
        };
        self.ack_after(ack);
        reply
    }

    /// A partition's answer for a line. Answers for unknown lines and
    /// repeated answers are ignored (and counted).
    pub fn handle_line(&mut self, line: &LineId, answer: LineAnswer, now: Timestamp) {
        self.handle_line_acked(line, answer, None, now);
    }

    /// [`Carts::handle_line`] for an answer that came as an intake message:
    /// `ack` is output once what the answer decided is durable.
    pub fn handle_line_acked(
        &mut self,
        line: &LineId,
        answer: LineAnswer,
        ack: Option<AckId>,
        now: Timestamp,
    ) {
        self.answer(line, answer, now);
        self.drop_stale_resends();
        self.ack_after(ack);
    }

    fn answer(&mut self, line: &LineId, answer: LineAnswer, now: Timestamp) {
        let (cart_id, i) = line.parts();
        let Some(c) = self.carts.get(&cart_id) else {
            self.stats.unknown_answers += 1;
            return;
        };
        match c.lines.get(i as usize) {
            None => self.stats.unknown_answers += 1,
            Some(LineStatus::Pending) => {
                match answer {
                    LineAnswer::Reserved => self.emit(CartEvent::LineReserved {
                        line: line.clone(),
                        at: None,
                    }),
                    LineAnswer::ReservedAt(p) => {
                        let moved = c.cart.lines()[i as usize].partition != p;
                        self.emit(CartEvent::LineReserved {
                            line: line.clone(),
                            at: moved.then_some(p),
                        })
                    }
                    LineAnswer::Rejected(reason) => self.emit(CartEvent::LineRejected {
                        line: line.clone(),
                        reason,
                    }),
                }
                self.advance(&cart_id, Some(line), now);
            }
            Some(_) => self.stats.repeated_answers += 1,
        }
    }

    /// Payment was captured. A held cart goes to enactment; a cart still
    /// reserving skips its hold. Refused for a cart without a hold or
    /// already decided; `Duplicate` if already confirmed. Timers due at
    /// `now` fire first, so a confirm at or after the deadline is refused
    /// (the hold expired). `ack` is output once the reply is durable.
    pub fn handle_confirm(
        &mut self,
        cart: &OrderId,
        ack: Option<AckId>,
        now: Timestamp,
    ) -> CartReply {
        self.handle_timeout(now);
        let reply = self.confirm(cart, now);
        self.ack_after(ack);
        reply
    }

    fn confirm(&mut self, cart: &OrderId, now: Timestamp) -> CartReply {
        let Some(c) = self.carts.get(cart) else {
            return CartReply::Refused(Refusal::UnknownCart);
        };
        if c.cart.hold().is_none() {
            return CartReply::Refused(Refusal::NoHold);
        }
        if c.paid {
            return CartReply::Duplicate;
        }
        if let Phase::Decided(outcome) = &c.phase {
            return CartReply::Refused(Refusal::Decided(outcome_label(outcome)));
        }
        self.emit(CartEvent::Paid { cart: cart.clone() });
        self.advance(cart, None, now);
        CartReply::Accepted
    }

    /// Cancels a cart before enactment: every reserved line is released,
    /// and every line still waiting for its answer once it is reserved.
    /// Refused once enactment started, or once decided otherwise. `ack`
    /// is output once the reply is durable.
    pub fn handle_cancel(
        &mut self,
        cart: &OrderId,
        ack: Option<AckId>,
        _now: Timestamp,
    ) -> CartReply {
        let reply = self.cancel(cart);
        self.ack_after(ack);
        reply
    }

    fn cancel(&mut self, cart: &OrderId) -> CartReply {
        let Some(c) = self.carts.get(cart) else {
            return CartReply::Refused(Refusal::UnknownCart);
        };
        match &c.phase {
            Phase::Reserving | Phase::Held { .. } => {
                self.emit(CartEvent::Cancelled { cart: cart.clone() });
                CartReply::Accepted
            }
            Phase::Enacting => CartReply::Refused(Refusal::Enacting),
            Phase::Decided(CartOutcome::Cancelled) => CartReply::Duplicate,
            Phase::Decided(outcome) => CartReply::Refused(Refusal::Decided(outcome_label(outcome))),
        }
    }

    /// The outstanding append is durable: its effects go out.
    pub fn handle_appended(&mut self, _now: Timestamp) {
        let Some(effects) = self.inflight.take() else {
            return;
        };
        self.stats.appends += 1;
        if !effects.is_empty() {
            // Ahead of whatever was decided since: it records these
            // effects as sent, which is true once the next append starts.
            self.pending.insert(0, CartEvent::Delivered);
            self.ready.extend(effects);
        }
    }

    /// Next thing the runtime must do; `None` until the next input or
    /// [`Carts::poll_timeout`].
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(out) = self.ready.pop_front() {
            return Some(out);
        }
        if self.inflight.is_some() || self.pending.is_empty() {
            return None;
        }
        self.inflight = Some(std::mem::take(&mut self.pending_effects));
        Some(Output::Append(std::mem::take(&mut self.pending)))
    }

    /// `ack` goes out once everything decided so far is durable.
    fn ack_after(&mut self, ack: Option<AckId>) {
        if let Some(ack) = ack {
            self.effect_after(Output::Ack(ack));
        }
    }

    /// `out` goes out once everything decided so far is durable.
    fn effect_after(&mut self, out: Output) {
        if !self.pending.is_empty() {
            self.pending_effects.push(out);
        } else if let Some(effects) = &mut self.inflight {
            effects.push(out);
        } else {
            self.ready.push_back(out);
        }
    }

    /// Decides `event`: folds it, queues it for the log with its effects,
    /// and arms the timer it implies.
    fn emit(&mut self, event: CartEvent) {
        state::apply(&mut self.carts, &event, &mut self.pending_effects);
        self.arm(&event);
        self.pending.push(event);
    }
}

/// Folds one logged event into `carts`, as recovery does, without
/// effects: for read models that follow a shard's log.
pub fn fold(carts: &mut BTreeMap<OrderId, CartState>, event: &CartEvent) {
    let mut effects = Vec::new();
    state::apply(carts, event, &mut effects);
}

fn outcome_label(outcome: &CartOutcome) -> &'static str {
    match outcome {
        CartOutcome::Confirmed => "confirmed",
        CartOutcome::Rejected { .. } => "rejected",
        CartOutcome::Cancelled => "cancelled",
    }
}
