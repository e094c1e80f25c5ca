//! How a cart moves on: from its lines' answers to a hold, to one
//! enactment per warehouse, to its decision; and the workers' results,
//! retried per the retry policy.

use super::{
    CartEvent, CartReason, Carts, EnactResult, EnactStatus, Fill, LineId, LineStatus, Phase,
};
use crate::domain::{OrderId, RejectReason, Timestamp, WarehouseId};

impl Carts {
    /// A worker's result for attempt `attempt` of a warehouse's
    /// enactment. Results for no attempt in flight are ignored (counted).
    pub fn handle_enacted(
        &mut self,
        cart: &OrderId,
        warehouse: &WarehouseId,
        attempt: u32,
        result: EnactResult,
        now: Timestamp,
    ) {
        let current = self.carts.get(cart).and_then(|c| {
            let e = c.enact(warehouse)?;
            (c.phase == Phase::Enacting
                && e.attempt == attempt
                && e.status == EnactStatus::InFlight)
                .then_some(())
        });
        if current.is_none() {
            self.stats.stale_enactments += 1;
            return;
        }
        let (cart, warehouse) = (cart.clone(), warehouse.clone());
        let give_up = match result {
            EnactResult::Ok => {
                self.emit(CartEvent::EnactSucceeded {
                    cart: cart.clone(),
                    warehouse,
                    attempt,
                });
                self.advance(&cart, None, now);
                return;
            }
            EnactResult::Retryable(reason) if attempt <= self.config.retry.max_retries => {
                let at = now.plus(self.config.retry.backoff(attempt));
                self.emit(CartEvent::EnactFailed {
                    cart,
                    warehouse,
                    attempt,
                    reason,
                    retry_at: Some(at),
                });
                return;
            }
            EnactResult::Retryable(last) => (last.clone(), RejectReason::RetriesExhausted { last }),
            EnactResult::Failed(reason) => {
                (reason.clone(), RejectReason::FulfilmentFailed { reason })
            }
        };
        self.emit(CartEvent::EnactFailed {
            cart: cart.clone(),
            warehouse: warehouse.clone(),
            attempt,
            reason: give_up.0,
            retry_at: None,
        });
        self.emit(CartEvent::Rejected {
            cart,
            reason: CartReason::EnactFailed {
                warehouse,
                reason: give_up.1,
            },
        });
    }

    /// Moves a cart on after a line answer (`line`), a payment or an
    /// enactment success.
    pub(super) fn advance(&mut self, cart: &OrderId, line: Option<&LineId>, now: Timestamp) {
        let Some(c) = self.carts.get(cart) else {
            return;
        };
        let all_done = || c.enacts.iter().all(|e| e.status == EnactStatus::Done);
        let event = match &c.phase {
            Phase::Reserving => {
                let rejected = line.and_then(|l| match &c.lines[l.parts().1 as usize] {
                    LineStatus::Rejected(reason) => Some((l.clone(), reason.clone())),
                    _ => None,
                });
                match rejected {
                    Some((line, reason)) if c.cart.fill() == Fill::All => CartEvent::Rejected {
                        cart: cart.clone(),
                        reason: CartReason::LineRejected { line, reason },
                    },
                    _ if !c.all_answered() => return,
                    // Partial, every line rejected.
                    _ if !c.lines.contains(&LineStatus::Reserved) => CartEvent::Rejected {
                        cart: cart.clone(),
                        reason: CartReason::NothingReserved,
                    },
                    _ => match c.cart.hold() {
                        Some(hold) if !c.paid => CartEvent::Held {
                            cart: cart.clone(),
                            until: now.plus(hold),
                        },
                        _ => return self.start_enactment(cart),
                    },
                }
            }
            Phase::Held { .. } if c.paid => return self.start_enactment(cart),
            Phase::Enacting if all_done() => CartEvent::Confirmed { cart: cart.clone() },
            Phase::Held { .. } | Phase::Enacting | Phase::Decided(_) => return,
        };
        self.emit(event);
    }

    /// One enactment per warehouse, with that warehouse's reserved lines.
    fn start_enactment(&mut self, cart: &OrderId) {
        for warehouse in self.carts[cart].reserved_warehouses() {
            self.emit(CartEvent::EnactStarted {
                cart: cart.clone(),
                warehouse,
                attempt: 1,
            });
        }
    }
}
