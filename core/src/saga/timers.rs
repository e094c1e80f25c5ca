//! The coordinator's timers: hold deadlines and enactment retries. Armed
//! by the events that imply them (`Carts::arm`, and on recovery), fired
//! by [`Carts::handle_timeout`] in deadline order.

use super::{CartEvent, CartReason, Carts, EnactStatus, LineStatus, Output, Phase};
use crate::domain::{OrderId, Timestamp, WarehouseId};

/// Something that must happen at a time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    Hold(OrderId),
    Retry(OrderId, WarehouseId, u32),
    /// Send the reserve of each line still waiting for its answer again.
    Resend(OrderId),
}

impl Carts {
    /// When the coordinator next needs `handle_timeout`.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.next()
    }

    /// Fires every timer due at `now`, in deadline order: holds expire
    /// (every line released with `hold_expired`), retries start.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some((at, timer)) = self.timers.pop_due(now) {
            let Some(c) = self.carts.get(timer_cart(&timer)) else {
                continue;
            };
            match timer {
                Timer::Hold(cart) if c.phase == (Phase::Held { until: at }) => {
                    self.emit(CartEvent::Rejected {
                        cart,
                        reason: CartReason::HoldExpired,
                    });
                }
                Timer::Retry(cart, warehouse, attempt)
                    if c.phase == Phase::Enacting
                        && c.enact(&warehouse).is_some_and(|e| {
                            e.attempt == attempt && e.status == (EnactStatus::Waiting { at })
                        }) =>
                {
                    self.emit(CartEvent::EnactStarted {
                        cart,
                        warehouse,
                        attempt: attempt + 1,
                    });
                }
                Timer::Resend(cart) => {
                    let waiting: Vec<_> = (0..c.lines.len())
                        .filter(|&i| c.lines[i] == LineStatus::Pending)
                        .map(|i| Output::Reserve(c.line_order(i)))
                        .collect();
                    if !waiting.is_empty() {
                        for out in waiting {
                            self.effect_after(out);
                        }
                        self.arm_resend(cart, now);
                    }
                }
                Timer::Hold(_) | Timer::Retry(..) => {}
            }
        }
    }

    /// Drops the earliest resend timers of carts no longer waiting for an
    /// answer, so `poll_timeout` names a deadline that matters.
    pub(super) fn drop_stale_resends(&mut self) {
        let carts = &self.carts;
        self.timers.drop_stale(|t| match t {
            Timer::Resend(cart) => carts.get(cart).is_none_or(|c| c.all_answered()),
            Timer::Hold(_) | Timer::Retry(..) => false,
        });
    }

    /// Resends `cart`'s waiting reserves at `from` plus `resend_every`.
    pub(super) fn arm_resend(&mut self, cart: OrderId, from: Timestamp) {
        let at = from.plus(self.config.resend_every);
        self.timers.arm(at, Timer::Resend(cart));
    }

    pub(super) fn arm(&mut self, event: &CartEvent) {
        match event {
            CartEvent::Opened { cart, at } => self.arm_resend(cart.id().clone(), *at),
            CartEvent::Held { cart, until } => {
                self.timers.arm(*until, Timer::Hold(cart.clone()));
            }
            CartEvent::EnactFailed {
                cart,
                warehouse,
                attempt,
                retry_at: Some(at),
                ..
            } => self
                .timers
                .arm(*at, Timer::Retry(cart.clone(), warehouse.clone(), *attempt)),
            _ => {}
        }
    }
}

fn timer_cart(timer: &Timer) -> &OrderId {
    match timer {
        Timer::Hold(c) | Timer::Retry(c, ..) | Timer::Resend(c) => c,
    }
}
