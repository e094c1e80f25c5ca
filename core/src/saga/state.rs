//! The carts' state, folded from [`CartEvent`]s: [`apply`] is the only
//! thing that changes it, both live and on recovery, and says which
//! effects each event implies (the caller decides when they go out).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::messages::{CartEvent, CartOutcome, CartReason, Decision, LineFate, LineOrder, Output};
use crate::domain::cart::Cart;
use crate::domain::{OrderId, RejectReason, Timestamp, WarehouseId};

/// Where one line is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineStatus {
    /// Reserve sent, no answer yet.
    Pending,
    Reserved,
    Rejected(RejectReason),
    Committed,
    Released,
}

/// Where a cart is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Waiting for line answers.
    Reserving,
    /// Every line decided; waiting for payment until `until`.
    Held { until: Timestamp },
    /// Warehouses are enacting their lines.
    Enacting,
    /// Final.
    Decided(CartOutcome),
}

/// Where one warehouse's enactment is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EnactStatus {
    InFlight,
    /// Failed, retrying at `at`.
    Waiting {
        at: Timestamp,
    },
    Done,
    Failed,
}

/// One warehouse's enactment of its lines of a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarehouseEnact {
    pub warehouse: WarehouseId,
    pub attempt: u32,
    pub status: EnactStatus,
}

/// One cart's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartState {
    pub cart: Cart,
    pub opened: Timestamp,
    /// One per line, in line order.
    pub lines: Vec<LineStatus>,
    pub phase: Phase,
    /// Payment was confirmed.
    pub paid: bool,
    /// Once enactment started: one per warehouse, in order of first line.
    pub enacts: Vec<WarehouseEnact>,
}

impl CartState {
    pub fn id(&self) -> &OrderId {
        self.cart.id()
    }

    pub fn is_decided(&self) -> bool {
        matches!(self.phase, Phase::Decided(_))
    }

    /// True once no line waits for its partition's answer.
    pub fn all_answered(&self) -> bool {
        !self.lines.contains(&LineStatus::Pending)
    }

    pub(super) fn line_order(&self, i: usize) -> LineOrder {
        let line = &self.cart.lines()[i];
        LineOrder {
            line: self.cart.line_id(i),
            partition: line.partition.clone(),
            quantity: line.quantity,
        }
    }

    /// The warehouses of the reserved lines, in order of their first line.
    pub(super) fn reserved_warehouses(&self) -> Vec<WarehouseId> {
        let mut out: Vec<WarehouseId> = Vec::new();
        for (i, s) in self.lines.iter().enumerate() {
            let w = &self.cart.lines()[i].partition.warehouse;
            if *s == LineStatus::Reserved && !out.contains(w) {
                out.push(w.clone());
            }
        }
        out
    }

    pub(super) fn enact(&self, warehouse: &WarehouseId) -> Option<&WarehouseEnact> {
        self.enacts.iter().find(|e| &e.warehouse == warehouse)
    }

    fn enact_mut(&mut self, warehouse: &WarehouseId) -> Option<&mut WarehouseEnact> {
        self.enacts.iter_mut().find(|e| &e.warehouse == warehouse)
    }

    pub(super) fn enact_output(&self, warehouse: &WarehouseId, attempt: u32) -> Output {
        let lines = (0..self.lines.len())
            .filter(|&i| {
                self.lines[i] == LineStatus::Reserved
                    && &self.cart.lines()[i].partition.warehouse == warehouse
            })
            .map(|i| self.line_order(i))
            .collect();
        Output::Enact {
            cart: self.id().clone(),
            warehouse: warehouse.clone(),
            lines,
            attempt,
        }
    }

    /// The reason released lines are given, once the cart failed.
    fn failure(&self) -> Option<CartReason> {
        match &self.phase {
            Phase::Decided(CartOutcome::Rejected { reason }) => Some(reason.clone()),
            Phase::Decided(CartOutcome::Cancelled) => Some(CartReason::Cancelled),
            _ => None,
        }
    }

    fn release(&self, i: usize, reason: CartReason) -> Output {
        Output::Release {
            line: self.cart.line_id(i),
            partition: self.cart.lines()[i].partition.clone(),
            reason,
        }
    }

    /// Settles every reserved line (committed or released), then reports.
    fn decide(&mut self, outcome: CartOutcome, effects: &mut Vec<Output>) {
        self.phase = Phase::Decided(outcome.clone());
        let sell = outcome == CartOutcome::Confirmed;
        let failure = self.failure();
        for i in 0..self.lines.len() {
            if self.lines[i] != LineStatus::Reserved {
                continue;
            }
            if sell {
                self.lines[i] = LineStatus::Committed;
                effects.push(Output::Commit {
                    line: self.cart.line_id(i),
                    partition: self.cart.lines()[i].partition.clone(),
                });
            } else {
                self.lines[i] = LineStatus::Released;
                effects.push(self.release(i, failure.clone().expect("not sold")));
            }
        }
        if !sell {
            for e in &self.enacts {
                effects.push(Output::Revoke {
                    cart: self.id().clone(),
                    warehouse: e.warehouse.clone(),
                });
            }
        }
        effects.push(Output::Decided(self.decision(outcome)));
    }

    fn decision(&self, outcome: CartOutcome) -> Decision {
        let lines = self
            .lines
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let fate = match s {
                    LineStatus::Committed => LineFate::Committed {
                        warehouse: self.cart.lines()[i].partition.warehouse.clone(),
                    },
                    LineStatus::Rejected(reason) => LineFate::Rejected {
                        reason: reason.clone(),
                    },
                    _ => LineFate::Released,
                };
                (self.cart.line_id(i), fate)
            })
            .collect();
        Decision {
            cart: self.id().clone(),
            outcome,
            lines,
        }
    }
}

/// Folds one event into `carts`, pushing the effects it implies. Total:
/// an event that does not fit the state (which the coordinator never
/// writes) changes nothing.
pub(super) fn apply(
    carts: &mut BTreeMap<OrderId, CartState>,
    event: &CartEvent,
    effects: &mut Vec<Output>,
) {
    if let CartEvent::Opened { cart, at } = event {
        if carts.contains_key(cart.id()) {
            return;
        }
        let state = CartState {
            cart: cart.clone(),
            opened: *at,
            lines: vec![LineStatus::Pending; cart.lines().len()],
            phase: Phase::Reserving,
            paid: false,
            enacts: Vec::new(),
        };
        effects.extend((0..state.lines.len()).map(|i| Output::Reserve(state.line_order(i))));
        carts.insert(cart.id().clone(), state);
        return;
    }
    let Some(c) = event.cart_id().and_then(|id| carts.get_mut(&id)) else {
        return;
    };
    match event {
        CartEvent::Opened { .. } | CartEvent::Delivered => {}
        CartEvent::LineReserved { line, at } => {
            let i = line.parts().1 as usize;
            if c.lines.get(i) != Some(&LineStatus::Pending) {
                return;
            }
            if let Some(at) = at {
                c.cart.move_line(i, at.clone());
            }
            match c.failure() {
                Some(reason) => {
                    c.lines[i] = LineStatus::Released;
                    effects.push(c.release(i, reason));
                }
                None => c.lines[i] = LineStatus::Reserved,
            }
        }
        CartEvent::LineRejected { line, reason } => {
            let i = line.parts().1 as usize;
            if c.lines.get(i) == Some(&LineStatus::Pending) {
                c.lines[i] = LineStatus::Rejected(reason.clone());
            }
        }
        CartEvent::Held { until, .. } => c.phase = Phase::Held { until: *until },
        CartEvent::Paid { .. } => c.paid = true,
        CartEvent::EnactStarted {
            warehouse, attempt, ..
        } => {
            c.phase = Phase::Enacting;
            let started = WarehouseEnact {
                warehouse: warehouse.clone(),
                attempt: *attempt,
                status: EnactStatus::InFlight,
            };
            match c.enact_mut(warehouse) {
                Some(e) => *e = started,
                None => c.enacts.push(started),
            }
            effects.push(c.enact_output(warehouse, *attempt));
        }
        CartEvent::EnactSucceeded { warehouse, .. } => {
            if let Some(e) = c.enact_mut(warehouse) {
                e.status = EnactStatus::Done;
            }
        }
        CartEvent::EnactFailed {
            warehouse,
            retry_at,
            ..
        } => {
            if let Some(e) = c.enact_mut(warehouse) {
                e.status = match retry_at {
                    Some(at) => EnactStatus::Waiting { at: *at },
                    None => EnactStatus::Failed,
                };
            }
        }
        CartEvent::Confirmed { .. } => c.decide(CartOutcome::Confirmed, effects),
        CartEvent::Rejected { reason, .. } => c.decide(
            CartOutcome::Rejected {
                reason: reason.clone(),
            },
            effects,
        ),
        CartEvent::Cancelled { .. } => c.decide(CartOutcome::Cancelled, effects),
    }
}
