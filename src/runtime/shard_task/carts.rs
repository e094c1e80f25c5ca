//! The shard's cart coordinator (`saga::Carts`) driven beside the shard:
//! cart items of the intake fed to it, its outputs carried out (its
//! events appended through the shard's log, lines sent to their
//! partitions' intakes, enactments run by the workers), and this shard's
//! side as a line's partition (answering reserves and rejections).

use tracing::{debug, info, warn};

use super::{Msg, Task};
use crate::domain::{
    Attempt, Known, LineId, Order, OrderId, Outcome, PartitionKey, RejectReason, Timestamp, Verdict,
};
use crate::ports::{Delivery, EventLog, Fulfiller, Intake, IntakeQueue, ShardId, Snapshots};
use crate::runtime::feed;
use crate::saga::{CartReply, EnactResult, LineAnswer, LineOrder, Output as CartOutput};
use crate::scheduler::{AckId, Shard};
use crate::wire::cart::{coordinator, placeholder_partition, CartOp};

impl<L, I, S, F> Task<L, I, S, F>
where
    L: EventLog + 'static,
    I: IntakeQueue + 'static,
    S: Snapshots + 'static,
    F: Fulfiller + 'static,
{
    /// Feeds one lined-up delivery: cart items to the coordinator, the
    /// rest (lines and settlements too) to the shard.
    pub(super) fn feed_item(&mut self, shard: &mut Shard, delivery: Delivery, now: Timestamp) {
        let ack = delivery.ack;
        match delivery.item {
            Intake::Cart(cart) => {
                let to = coordinator(cart.id(), self.config.shard.shards);
                if to != self.id {
                    self.hand_on(to, cart, ack);
                } else if self.carts.handle_cart(cart, ack, now) == CartReply::Accepted {
                    self.metrics_carts.opened();
                }
            }
            Intake::Answer { line, answer } => {
                self.carts.handle_line_acked(&line, answer, ack, now);
            }
            Intake::CartCommand { cart, op } => {
                let reply = match op {
                    CartOp::Confirm => self.carts.handle_confirm(&cart, ack, now),
                    CartOp::Cancel => self.carts.handle_cancel(&cart, ack, now),
                };
                if let CartReply::Refused(why) = reply {
                    info!(shard = self.id, cart = %cart, ?op, %why, "cart command refused");
                }
            }
            Intake::Line(order) => {
                let line = order.id.clone();
                let verdict = feed(
                    shard,
                    Delivery {
                        item: Intake::Line(order),
                        ..delivery
                    },
                    now,
                );
                // A line resent after its partition decided it: answer
                // again what was decided (a reservation is answered when
                // it is dispatched, also after a recovery).
                if let Verdict::Duplicate(Known::Decided(crate::domain::Final::Rejected)) = verdict
                {
                    self.answer_rejected(line, RejectReason::OutOfStock);
                }
            }
            item => {
                feed(shard, Delivery { item, ..delivery }, now);
            }
        }
    }

    /// Carries out every output the cart coordinator has now; false if it
    /// had none.
    pub(super) fn drive_carts(&mut self, shard: &mut Shard) -> bool {
        let now = self.config.clock.now();
        let mut any = false;
        while let Some(out) = self.carts.poll_output() {
            any = true;
            match out {
                // Its `Delivered` says every message polled before it was
                // sent: it waits until their intakes took them all.
                CartOutput::Append(events) if self.cart_sends > 0 => {
                    self.cart_append = Some(events);
                }
                CartOutput::Append(events) => shard.handle_cart_events(events, now),
                CartOutput::Reserve(line) => {
                    let to = (self.ports.shard_of)(&line.partition);
                    self.send_for_cart(to, line.partition.clone(), Intake::Line(line.order()));
                }
                CartOutput::Release {
                    line,
                    partition,
                    reason,
                } => {
                    let to = (self.ports.shard_of)(&partition);
                    let item = Intake::Settle {
                        line: line.into(),
                        commit: false,
                        reason: format!("cart {}: {reason}", reason.label()),
                    };
                    self.send_for_cart(to, partition, item);
                }
                CartOutput::Commit { line, partition } => {
                    let to = (self.ports.shard_of)(&partition);
                    let item = Intake::Settle {
                        line: line.into(),
                        commit: true,
                        reason: String::new(),
                    };
                    self.send_for_cart(to, partition, item);
                }
                CartOutput::Enact {
                    cart,
                    warehouse,
                    lines,
                    attempt,
                } => self.enact(cart, warehouse, lines, attempt),
                CartOutput::Revoke { cart, warehouse } => {
                    // The fulfiller has no undo: whoever enacts carts
                    // must watch for carts rejected after enactment began.
                    warn!(shard = self.id, cart = %cart, warehouse = %warehouse, "cart failed after its enactment at this warehouse began: revoke it there");
                    self.metrics_carts.revoked();
                }
                CartOutput::Decided(decision) => {
                    debug!(shard = self.id, cart = %decision.cart, outcome = ?decision.outcome, "cart decided");
                    self.metrics_carts.decided(&decision.outcome);
                }
                CartOutput::Ack(ack) => {
                    self.decided(&[ack]);
                    let (ports, id) = (self.ports.clone(), self.id);
                    self.spawned
                        .spawn(async move { ports.intake.ack(id, &[ack]).await });
                }
            }
        }
        any
    }

    /// A cart a producer published on an order subject, for coordinator
    /// `to`: handed on, and acked once `to`'s intake has it (a redelivery
    /// hands it on again; the coordinator takes a cart id once).
    fn hand_on(&mut self, to: ShardId, cart: crate::domain::Cart, ack: Option<AckId>) {
        if let Some(ack) = ack {
            self.published.remove(&ack);
        }
        let partition = cart.lines()[0].partition.clone();
        let (ports, id) = (self.ports.clone(), self.id);
        self.spawned.spawn(async move {
            ports.intake.send(to, partition, Intake::Cart(cart)).await;
            if let Some(ack) = ack {
                ports.intake.ack(id, &[ack]).await;
            }
        });
    }

    /// A line reserved here (durably): tell its cart's coordinator.
    pub(super) fn answer_reserved(&mut self, order: &Order) {
        let Ok(line) = LineId::try_from(order.id.clone()) else {
            warn!(shard = self.id, order = %order.id, "a line whose id is not <cart>#<index>");
            return;
        };
        let to = coordinator(&line.parts().0, self.config.shard.shards);
        let item = Intake::Answer {
            line,
            answer: LineAnswer::ReservedAt(order.partition.clone()),
        };
        self.send(to, order.partition.clone(), item);
    }

    /// A line rejected here (durably): tell its cart's coordinator. An
    /// order that only looks like a line (a producer's id with `#`) gets
    /// an answer nobody is waiting for, which its coordinator ignores.
    pub(super) fn answer_rejected(&mut self, id: OrderId, reason: RejectReason) {
        let Ok(line) = LineId::try_from(id) else {
            return;
        };
        let to = coordinator(&line.parts().0, self.config.shard.shards);
        let item = Intake::Answer {
            line,
            answer: LineAnswer::Rejected(reason),
        };
        self.send(to, placeholder_partition(), item);
    }

    fn send(&mut self, to: ShardId, partition: PartitionKey, item: Intake) {
        let ports = self.ports.clone();
        self.spawned
            .spawn(async move { ports.intake.send(to, partition, item).await });
    }

    /// One of the coordinator's messages was taken by its intake: once all
    /// are, its waiting append goes to the log.
    pub(super) fn cart_sent(&mut self, shard: &mut Shard, now: Timestamp) {
        self.cart_sends -= 1;
        if self.cart_sends == 0 {
            if let Some(events) = self.cart_append.take() {
                shard.handle_cart_events(events, now);
            }
        }
    }

    /// [`Self::send`] of a coordinator's message, counted until taken.
    fn send_for_cart(&mut self, to: ShardId, partition: PartitionKey, item: Intake) {
        self.cart_sends += 1;
        let (ports, tx) = (self.ports.clone(), self.tx.clone());
        self.spawned.spawn(async move {
            ports.intake.send(to, partition, item).await;
            let _ = tx.send(Msg::CartSent).await;
        });
    }

    /// Enacts a cart's lines at one warehouse: each line through the
    /// workers (the line id is its idempotency key), all must succeed.
    fn enact(
        &mut self,
        cart: OrderId,
        warehouse: crate::domain::WarehouseId,
        lines: Vec<LineOrder>,
        attempt: u32,
    ) {
        let (ports, tx) = (self.ports.clone(), self.tx.clone());
        self.spawned.spawn(async move {
            let runs = lines.iter().map(|l| {
                let order = l.order();
                let ports = ports.clone();
                async move {
                    let attempt = Attempt {
                        ticket: 0,
                        retry: attempt.saturating_sub(1),
                    };
                    ports.workers.run(&order, attempt).await
                }
            });
            let outcomes = futures::future::join_all(runs).await;
            let mut result = EnactResult::Ok;
            for outcome in outcomes {
                match outcome {
                    Outcome::Fulfilled => {}
                    Outcome::Failed {
                        reason,
                        retryable: false,
                    } => {
                        result = EnactResult::Failed(reason);
                        break;
                    }
                    Outcome::Failed { reason, .. } | Outcome::Unknown { reason } => {
                        result = EnactResult::Retryable(reason);
                    }
                }
            }
            let _ = tx
                .send(Msg::Enacted(cart, warehouse, attempt, result))
                .await;
        });
    }
}
