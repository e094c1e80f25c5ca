//! The shard's side of carts: its coordinator's events made durable in
//! the shard's log, and the lines of carts reserved in its partitions
//! committed or released as their coordinators decide.

use super::group::Mark;
use super::{AckId, Shard};
use crate::domain::{
    Attempt, CartEvent, Event, OrderId, Outcome, OutcomeEffect, Status, Timestamp,
};

impl Shard {
    /// Makes the shard's cart coordinator's events (its `Append`) durable
    /// in this shard's log, in the next append; `CartsDurable` is output
    /// once they are.
    pub fn handle_cart_events(&mut self, events: Vec<CartEvent>, now: Timestamp) {
        if self.fenced {
            return;
        }
        // One coordinator append may hold thousands of carts' events: it
        // may be split between carts (never inside one cart's run of
        // events), each part a state the coordinator could have crashed
        // in, so the log's appends stay under the broker's limit.
        let (pending, cuts) = self.group.pending_and_cuts();
        let mut last: Option<OrderId> = None;
        for event in events {
            let cart = event.cart_id();
            if last.is_some() && cart != last {
                cuts.push(pending.len());
            }
            last = cart;
            pending.push(Event::Cart {
                event: Box::new(event),
            });
        }
        self.group.mark(Mark::Carts);
        self.after_input(None, now);
    }

    /// A cart's coordinator settled line `id`, reserved here: `commit`
    /// sells it (as a worker's success would), otherwise its units go
    /// back to stock and it is rejected for `reason`. A line not reserved
    /// here (unknown, settled already) is left as it is: settling is
    /// idempotent. `ack` is output once the settlement is durable.
    pub fn handle_line_settle(
        &mut self,
        id: &OrderId,
        commit: bool,
        reason: String,
        ack: Option<AckId>,
        now: Timestamp,
    ) {
        self.tick(now);
        let attempt = self
            .state
            .live(id)
            .filter(|l| l.order.line && l.status == Status::Reserved)
            .map(|l| Attempt {
                ticket: l.ticket,
                retry: l.attempts,
            });
        if let (Some(attempt), false) = (attempt, self.fenced) {
            let outcome = if commit {
                Outcome::Fulfilled
            } else {
                Outcome::Failed {
                    reason,
                    retryable: false,
                }
            };
            if let OutcomeEffect::Settled(p) = self.decider().outcome(id, attempt, outcome) {
                self.settle(p, now);
            }
        }
        self.after_input(ack, now);
    }
}
