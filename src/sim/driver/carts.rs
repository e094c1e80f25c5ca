//! Carts in the simulated sale: a coordinator (`saga::Carts`) beside each
//! shard, as in the runtime. Its events go in its shard's log; its lines,
//! settlements and the partitions' answers travel as timed happenings
//! (the intake hop); each warehouse's enactment runs every line through
//! the simulated fulfiller. Arrivals are carts of 1-5 lines at
//! `SimOptions::carts`: every fifth partial, every fifth held (half of
//! those paid before the deadline, the rest expire).

use std::time::Duration;

use rand::Rng;
use rand_distr::Distribution;

use super::{Happening, Sim};
use crate::config::Config;
use crate::domain::{
    Cart, CartConfig, CartLine, Fill, LineId, Order, OrderId, Outcome, Quantity, RejectReason,
    WarehouseId,
};
use crate::ports::ShardId;
use crate::saga::{CartOutcome, EnactResult, LineAnswer, Output as CartOutput};
use crate::wire::cart::coordinator;

/// How long cart traffic takes from one shard to another.
const HOP: Duration = Duration::from_micros(500);
/// How long a held cart waits for payment.
pub(super) const HOLD: Duration = Duration::from_secs(2);

/// What happens to carts, at a time.
#[derive(Debug)]
pub(super) enum CartHappening {
    /// Cart traffic reaches shard `to`.
    Mail {
        to: ShardId,
        mail: Mail,
    },
    /// A warehouse's enactment of a cart's lines ended.
    Enacted {
        shard: ShardId,
        cart: OrderId,
        warehouse: WarehouseId,
        attempt: u32,
        result: EnactResult,
    },
    Timer {
        shard: ShardId,
    },
    /// A held cart's payment is captured.
    Paid {
        shard: ShardId,
        cart: OrderId,
    },
}

/// The coordinators' config: the config's limits and `[retry]`.
pub(super) fn config(config: &Config) -> CartConfig {
    CartConfig {
        retry: config.retry_policy(),
        ..crate::wire::cart::cart_config(&crate::wire::Limits::from_config(config))
    }
}

/// Cart traffic between coordinators and partitions.
#[derive(Debug)]
pub(super) enum Mail {
    Line(Order),
    Settle {
        line: OrderId,
        commit: bool,
        reason: String,
    },
    Answer {
        line: LineId,
        answer: LineAnswer,
    },
}

impl Sim<'_> {
    /// A cart arrives at its coordinator (a held one may be paid later).
    pub(super) fn arrive_cart(&mut self) {
        let n = self.generated;
        self.generated += 1;
        let (cart, shard) = self.next_cart(n);
        self.submitted.push(cart.id().clone());
        self.carts_sent += 1;
        self.progress.inc(1);
        if cart.hold().is_some() && n % 10 == 2 {
            let cart = cart.id().clone();
            self.at(
                HOLD / 2,
                Happening::Cart(CartHappening::Paid { shard, cart }),
            );
        }
        self.cart_call(shard, |c, now| {
            c.handle_cart(cart, None, now);
        });
    }

    pub(super) fn handle_cart(&mut self, h: CartHappening) {
        match h {
            CartHappening::Mail { to, mail } => self.deliver_mail(to, mail),
            CartHappening::Enacted {
                shard,
                cart,
                warehouse,
                attempt,
                result,
            } => self.cart_call(shard, |c, now| {
                c.handle_enacted(&cart, &warehouse, attempt, result, now)
            }),
            CartHappening::Timer { shard } => {
                self.cart_timer_at[shard as usize] = None;
                self.cart_call(shard, |c, now| c.handle_timeout(now));
            }
            CartHappening::Paid { shard, cart } => self.cart_call(shard, |c, now| {
                c.handle_confirm(&cart, None, now);
            }),
        }
    }

    /// Cart number `n`: 1-5 lines of distinct SKUs, routed by a region.
    pub(super) fn next_cart(&mut self, n: u64) -> (Cart, ShardId) {
        let id = OrderId::new(&format!("c-{n}")).expect("valid");
        let region = (!self.regions.is_empty())
            .then(|| self.regions[self.rng.gen_range(0..self.regions.len())].clone());
        let fallback = self.warehouses()[0].clone();
        let warehouse = region.is_none().then_some(&fallback);
        let mut lines: Vec<CartLine> = Vec::new();
        for _ in 0..self.rng.gen_range(1..=5) {
            let sku = self.skus[self.zipf.sample(&mut self.rng) as usize - 1].clone();
            if lines.iter().any(|l| l.partition.sku == sku) {
                continue;
            }
            let route = self
                .router
                .route(&sku, warehouse, region.as_ref())
                .expect("the simulation routes by the config's own regions");
            lines.push(CartLine {
                partition: route.partition,
                quantity: Quantity::ONE,
            });
        }
        let fill = if n % 5 == 4 { Fill::Partial } else { Fill::All };
        let hold = (n % 5 == 2).then_some(HOLD);
        let config = &self.cart_config;
        let cart = Cart::new(id, lines, fill, hold, config).expect("within the limits");
        let shard = coordinator(cart.id(), self.shards.len() as u32);
        (cart, shard)
    }

    /// Runs one input on shard `shard`'s coordinator, then carries out
    /// everything it outputs.
    pub(super) fn cart_call(
        &mut self,
        shard: ShardId,
        f: impl FnOnce(&mut crate::saga::Carts, crate::domain::Timestamp),
    ) {
        let now = self.now();
        let carts = &mut self.carts[shard as usize];
        f(carts, now);
        let mut outputs = Vec::new();
        while let Some(out) = carts.poll_output() {
            outputs.push(out);
        }
        let wake = carts.poll_timeout();
        for out in outputs {
            self.cart_output(shard, out);
        }
        if let Some(t) = wake {
            if self.cart_timer_at[shard as usize].is_none_or(|cur| cur > t) {
                self.cart_timer_at[shard as usize] = Some(t);
                let delay = Duration::from_millis(t.0.saturating_sub(self.now().0));
                self.at(delay, Happening::Cart(CartHappening::Timer { shard }));
            }
        }
    }

    fn cart_output(&mut self, shard: ShardId, out: CartOutput) {
        match out {
            // The mail polled before it is in the heap already: taken.
            CartOutput::Append(events) => {
                self.core_call(shard, |s, now| s.handle_cart_events(events, now));
            }
            CartOutput::Reserve(line) => {
                let to = self.router.shard_for(&line.partition);
                self.mail(to, Mail::Line(line.order()));
            }
            CartOutput::Release {
                line,
                partition,
                reason,
            } => {
                let to = self.router.shard_for(&partition);
                let reason = format!("cart {}: {reason}", reason.label());
                let line = line.into();
                self.mail(
                    to,
                    Mail::Settle {
                        line,
                        commit: false,
                        reason,
                    },
                );
            }
            CartOutput::Commit { line, partition } => {
                let to = self.router.shard_for(&partition);
                let (line, reason) = (line.into(), String::new());
                self.mail(
                    to,
                    Mail::Settle {
                        line,
                        commit: true,
                        reason,
                    },
                );
            }
            CartOutput::Enact {
                cart,
                warehouse,
                lines,
                attempt,
            } => {
                let mut took = Duration::ZERO;
                let mut result = EnactResult::Ok;
                for line in &lines {
                    let (t, outcome) = self.fulfiller.sample(&line.order());
                    took = took.max(t);
                    match outcome {
                        Outcome::Fulfilled => {}
                        Outcome::Failed {
                            reason,
                            retryable: false,
                        } => result = EnactResult::Failed(reason),
                        Outcome::Failed { reason, .. } | Outcome::Unknown { reason } => {
                            if result == EnactResult::Ok {
                                result = EnactResult::Retryable(reason);
                            }
                        }
                    }
                }
                let enacted = Happening::Cart(CartHappening::Enacted {
                    shard,
                    cart,
                    warehouse,
                    attempt,
                    result,
                });
                self.at(took, enacted);
            }
            CartOutput::Revoke { .. } => self.cart_revokes += 1,
            CartOutput::Decided(decision) => {
                let outcome = match decision.outcome {
                    CartOutcome::Confirmed => "confirmed".to_owned(),
                    CartOutcome::Rejected { reason } => format!("rejected: {}", reason.label()),
                    CartOutcome::Cancelled => "cancelled".to_owned(),
                };
                *self.cart_outcomes.entry(outcome).or_default() += 1;
            }
            CartOutput::Ack(_) => {}
        }
    }

    fn mail(&mut self, to: ShardId, mail: Mail) {
        self.at(HOP, Happening::Cart(CartHappening::Mail { to, mail }));
    }

    /// Cart traffic reaches its shard: lines and settlements its
    /// partitions, answers its coordinator.
    pub(super) fn deliver_mail(&mut self, to: ShardId, mail: Mail) {
        match mail {
            Mail::Line(order) => {
                let line = order.id.clone();
                let mut verdict = None;
                self.core_call(to, |s, now| {
                    verdict = Some(s.handle_order(order, None, now))
                });
                // A line resent after its partition rejected it: answer
                // again (as the runtime does).
                if let Some(crate::domain::Verdict::Duplicate(crate::domain::Known::Decided(
                    crate::domain::Final::Rejected,
                ))) = verdict
                {
                    self.answer_rejected(line, RejectReason::OutOfStock);
                }
            }
            Mail::Settle {
                line,
                commit,
                reason,
            } => self.core_call(to, |s, now| {
                s.handle_line_settle(&line, commit, reason, None, now)
            }),
            Mail::Answer { line, answer } => {
                self.cart_call(to, |c, now| c.handle_line(&line, answer, now));
            }
        }
    }

    /// A line reserved in its partition: tell its coordinator.
    pub(super) fn answer_reserved(&mut self, order: &Order) {
        if let Ok(line) = LineId::try_from(order.id.clone()) {
            let to = coordinator(&line.parts().0, self.shards.len() as u32);
            let answer = LineAnswer::ReservedAt(order.partition.clone());
            self.mail(to, Mail::Answer { line, answer });
        }
    }

    pub(super) fn answer_rejected(&mut self, id: OrderId, reason: RejectReason) {
        if let Ok(line) = LineId::try_from(id) {
            let to = coordinator(&line.parts().0, self.shards.len() as u32);
            let answer = LineAnswer::Rejected(reason);
            self.mail(to, Mail::Answer { line, answer });
        }
    }
}
