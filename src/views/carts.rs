//! Carts as reads show them: the cart's phase from its coordinator's
//! events, and each line's status there with its history in its
//! partition (a line is an order `<cart>#<index>` of that partition).

use serde::Serialize;

use super::{HistoryLine, Views};
use crate::domain::{OrderId, RejectReason};
use crate::saga::{CartOutcome, CartState, LineStatus, Phase};

/// A cart as `GET /v1/orders/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CartStatus {
    pub id: String,
    /// Always `cart`: tells a cart's answer from an order's.
    pub kind: &'static str,
    /// reserving, held, enacting, confirmed, rejected or cancelled.
    pub status: &'static str,
    /// No later decision will change it.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// `all` or `partial`.
    pub fill: &'static str,
    /// While held: when the hold expires (ms since the Unix epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_until_ms: Option<u64>,
    /// Payment was confirmed (`POST /v1/orders/{id}/confirm`).
    pub paid: bool,
    /// Why it was rejected: a stable label (`hold_expired`,
    /// `line_rejected`, `nothing_reserved`, `enact_failed`, `cancelled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The reason in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub lines: Vec<CartLineStatus>,
}

/// One line of a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CartLineStatus {
    /// `<cart>#<index>`: the line's order id in its partition.
    pub id: String,
    /// Where it is reserved (ships from).
    pub warehouse: String,
    pub sku: String,
    pub quantity: u32,
    /// pending (its partition has not answered), reserved, committed
    /// (sold), rejected (by its partition) or released (by the cart).
    pub status: &'static str,
    /// Why its partition rejected it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its decisions in its partition.
    pub history: Vec<HistoryLine>,
}

impl Views {
    /// A cart's status, from the shard that coordinates it.
    pub fn cart(&self, id: &OrderId) -> Option<CartStatus> {
        let state = self
            .shards
            .iter()
            .find_map(|s| s.read().cart(id).cloned())?;
        Some(self.cart_status(&state))
    }

    fn cart_status(&self, c: &CartState) -> CartStatus {
        let (status, outcome) = match &c.phase {
            Phase::Reserving => ("reserving", None),
            Phase::Held { .. } => ("held", None),
            Phase::Enacting => ("enacting", None),
            Phase::Decided(o @ CartOutcome::Confirmed) => ("confirmed", Some(o)),
            Phase::Decided(o @ CartOutcome::Rejected { .. }) => ("rejected", Some(o)),
            Phase::Decided(o @ CartOutcome::Cancelled) => ("cancelled", Some(o)),
        };
        let (reason, detail) = match outcome {
            Some(CartOutcome::Rejected { reason }) => {
                (Some(reason.label()), Some(reason.to_string()))
            }
            Some(CartOutcome::Cancelled) => (Some("cancelled"), None),
            _ => (None, None),
        };
        let lines = c
            .cart
            .lines()
            .iter()
            .zip(&c.lines)
            .enumerate()
            .map(|(i, (line, s))| {
                let id = c.cart.line_id(i);
                let (status, why): (_, Option<&RejectReason>) = match s {
                    LineStatus::Pending => ("pending", None),
                    LineStatus::Reserved => ("reserved", None),
                    LineStatus::Committed => ("committed", None),
                    LineStatus::Rejected(r) => ("rejected", Some(r)),
                    LineStatus::Released => ("released", None),
                };
                CartLineStatus {
                    id: id.to_string(),
                    warehouse: line.partition.warehouse.to_string(),
                    sku: line.partition.sku.to_string(),
                    quantity: line.quantity.get(),
                    status,
                    reason: why.map(ToString::to_string),
                    history: self
                        .order(id.as_order_id())
                        .map(|o| o.history)
                        .unwrap_or_default(),
                }
            })
            .collect();
        CartStatus {
            id: c.id().to_string(),
            kind: "cart",
            status,
            is_final: c.is_decided(),
            fill: match c.cart.fill() {
                crate::domain::Fill::All => "all",
                crate::domain::Fill::Partial => "partial",
            },
            held_until_ms: match c.phase {
                Phase::Held { until } => Some(until.0),
                _ => None,
            },
            paid: c.paid,
            reason,
            detail,
            lines,
        }
    }
}
