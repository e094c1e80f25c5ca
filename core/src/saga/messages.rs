//! What goes in and out of the coordinator as plain data: the answers it
//! is fed, the events its state folds from, and the outputs the runtime
//! carries out.

use serde::{Deserialize, Serialize};

use super::AckId;
use crate::domain::cart::LineId;
pub use crate::domain::{CartEvent, CartReason};
use crate::domain::{Order, OrderId, PartitionKey, Priority, Quantity, RejectReason, WarehouseId};

/// A partition's answer to a [`Output::Reserve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineAnswer {
    /// The line's units are reserved in its partition.
    Reserved,
    /// Reserved in this partition: the line's own rerouted it here.
    ReservedAt(PartitionKey),
    /// The partition will not reserve it (out of stock, invalid, ...).
    Rejected(RejectReason),
}

/// How one warehouse's enactment of its lines ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnactResult {
    /// Enacted.
    Ok,
    /// Not enacted, try again (unavailable, overloaded, no answer).
    Retryable(String),
    /// Not enacted, and it never will be.
    Failed(String),
}

/// A line as its partition sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineOrder {
    pub line: LineId,
    pub partition: PartitionKey,
    pub quantity: Quantity,
}

impl LineOrder {
    /// The line as the order its partition queues (and a worker enacts):
    /// no region, priority 0, no fallbacks.
    pub fn order(&self) -> Order {
        Order {
            id: self.line.as_order_id().clone(),
            partition: self.partition.clone(),
            quantity: self.quantity,
            region: None,
            priority: Priority::default(),
            fallbacks: Vec::new(),
            line: true,
        }
    }
}

/// How each line of a decided cart ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fate", rename_all = "snake_case")]
pub enum LineFate {
    /// Sold, shipping from `warehouse`.
    Committed { warehouse: WarehouseId },
    /// Its partition rejected it, for `reason`.
    Rejected { reason: RejectReason },
    /// Not sold because of the cart: its reservation is (or, if its answer
    /// is still on the way, will be) released.
    Released,
}

/// A cart's final outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CartOutcome {
    /// At least one line is sold (every line, for fill = all).
    Confirmed,
    Rejected {
        reason: CartReason,
    },
    Cancelled,
}

/// A cart's final decision: its outcome and how each line ended, in line
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub cart: OrderId,
    pub outcome: CartOutcome,
    pub lines: Vec<(LineId, LineFate)>,
}

/// What the runtime must do next. Everything but `Append` leaves the
/// process, and is output only once the events deciding it are durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Append these events as one log entry; then `handle_appended`.
    Append(Vec<CartEvent>),
    /// Reserve the line in its partition; the answer comes back through
    /// `handle_line`.
    Reserve(LineOrder),
    /// Give the line's reservation back to its partition's stock.
    Release {
        line: LineId,
        partition: PartitionKey,
        reason: CartReason,
    },
    /// Turn the line's reservation into a sale.
    Commit {
        line: LineId,
        partition: PartitionKey,
    },
    /// Enact these lines of the cart at `warehouse` (idempotency key: cart
    /// and warehouse); the result comes back through `handle_enacted` with
    /// the same `attempt`.
    Enact {
        cart: OrderId,
        warehouse: WarehouseId,
        lines: Vec<LineOrder>,
        attempt: u32,
    },
    /// Undo (or abandon, if still running) the cart's enactment at
    /// `warehouse`: the cart failed after it started.
    Revoke {
        cart: OrderId,
        warehouse: WarehouseId,
    },
    /// The cart's final decision.
    Decided(Decision),
    /// What the input given this handle decided is durable: ack it.
    Ack(AckId),
}

/// Why a confirm or cancel was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No cart with this id is known here.
    #[error("no such cart")]
    UnknownCart,
    /// The cart asked for no hold, so there is nothing to confirm.
    #[error("the cart has no hold")]
    NoHold,
    /// Enactment started: the cart can no longer be cancelled.
    #[error("enactment started, the cart can no longer be cancelled")]
    Enacting,
    /// The cart is already decided (this names how).
    #[error("the cart is already {0}")]
    Decided(&'static str),
}

/// The answer to `handle_cart`, `handle_confirm` or `handle_cancel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CartReply {
    /// Done (its effects follow once durable).
    Accepted,
    /// Already done before: nothing new happens.
    Duplicate,
    Refused(Refusal),
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CartStats {
    /// `handle_cart` with an id already known.
    pub duplicate_carts: u64,
    /// Line answers for no known cart or line.
    pub unknown_answers: u64,
    /// Line answers for a line already answered.
    pub repeated_answers: u64,
    /// Enactment results for no attempt in flight.
    pub stale_enactments: u64,
    pub appends: u64,
}
