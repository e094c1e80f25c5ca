//! Rebuilding a coordinator from its log, and re-sending what may not
//! have gone out before the crash.

use super::state::{self, EnactStatus, LineStatus, Phase};
use super::{CartConfig, CartEvent, CartState, Carts, Output, Timer};
use crate::domain::Timestamp;

impl Carts {
    /// Rebuilds the coordinator from every event its log holds, in order,
    /// and re-arms every hold and retry (a deadline already past fires at
    /// the next `handle_timeout`). Then outputs again every effect that may
    /// not have gone out: a `Reserve` for each line still waiting for its
    /// answer, an `Enact` for each enactment in flight (same attempt), and
    /// the `Release`s, `Commit`s, `Revoke`s and `Decided`s of the events
    /// after the last [`CartEvent::Delivered`]; a `Delivered` follows them.
    /// Re-sending is safe only because partitions and workers honour the
    /// idempotency contract in the module docs.
    pub fn recover(
        config: CartConfig,
        events: impl IntoIterator<Item = CartEvent>,
        now: Timestamp,
    ) -> Self {
        Self::restore(config, Vec::new(), events, now)
    }

    /// [`Carts::recover`] from a snapshot: `states` (taken when every
    /// effect had gone out, see [`Carts::has_unwritten`]) and the events
    /// logged after it.
    pub fn restore(
        config: CartConfig,
        states: Vec<CartState>,
        events: impl IntoIterator<Item = CartEvent>,
        now: Timestamp,
    ) -> Self {
        let mut carts = Carts::new(config);
        carts.carts = states.into_iter().map(|s| (s.id().clone(), s)).collect();
        let mut tail = Vec::new();
        for event in events {
            if event == CartEvent::Delivered {
                tail.clear();
            } else {
                state::apply(&mut carts.carts, &event, &mut tail);
            }
        }
        // Reserves and enactments are re-sent while outstanding, whether
        // or not they were delivered: an answer may have been lost too.
        tail.retain(|o| !matches!(o, Output::Reserve(_) | Output::Enact { .. }));
        let mut resend = Vec::new();
        for c in carts.carts.values() {
            for (i, s) in c.lines.iter().enumerate() {
                if *s == LineStatus::Pending {
                    resend.push(Output::Reserve(c.line_order(i)));
                }
            }
            if !c.all_answered() {
                let at = now.plus(carts.config.resend_every);
                carts.timers.arm(at, Timer::Resend(c.id().clone()));
            }
            match &c.phase {
                Phase::Held { until } => carts.timers.arm(*until, Timer::Hold(c.id().clone())),
                Phase::Enacting => {
                    for e in &c.enacts {
                        match e.status {
                            EnactStatus::InFlight => {
                                resend.push(c.enact_output(&e.warehouse, e.attempt));
                            }
                            EnactStatus::Waiting { at } => carts.timers.arm(
                                at,
                                Timer::Retry(c.id().clone(), e.warehouse.clone(), e.attempt),
                            ),
                            EnactStatus::Done | EnactStatus::Failed => {}
                        }
                    }
                }
                Phase::Reserving | Phase::Decided(_) => {}
            }
        }
        resend.extend(tail);
        if !resend.is_empty() {
            carts.pending.push(CartEvent::Delivered);
            carts.ready.extend(resend);
        }
        carts
    }
}
