//! What a cart coordinator decided, as events: its state is the fold of
//! these, and they travel in its shard's log (as [`super::Event::Cart`]),
//! so the log alone rebuilds every cart.

use serde::{Deserialize, Serialize};

use super::cart::{Cart, LineId};
use super::{OrderId, PartitionKey, RejectReason, Timestamp, WarehouseId};

/// Why a whole cart was rejected or cancelled; also the reason every
/// released line is given. `label()` is the stable name (`hold_expired`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CartReason {
    /// All-or-nothing: this line, the first to be rejected, was.
    LineRejected { line: LineId, reason: RejectReason },
    /// Partial: every line was rejected.
    NothingReserved,
    /// The hold's deadline passed before payment was confirmed.
    HoldExpired,
    /// Cancelled by request before enactment.
    Cancelled,
    /// A warehouse's enactment failed for good
    /// (`RetriesExhausted` or `FulfilmentFailed`).
    EnactFailed {
        warehouse: WarehouseId,
        reason: RejectReason,
    },
}

impl CartReason {
    /// A short stable label, for tables and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::LineRejected { .. } => "line_rejected",
            Self::NothingReserved => "nothing_reserved",
            Self::HoldExpired => "hold_expired",
            Self::Cancelled => "cancelled",
            Self::EnactFailed { .. } => "enact_failed",
        }
    }
}

impl std::fmt::Display for CartReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LineRejected { line, reason } => write!(f, "line {line} rejected: {reason}"),
            Self::NothingReserved => f.write_str("no line could be reserved"),
            Self::HoldExpired => f.write_str("hold expired"),
            Self::Cancelled => f.write_str("cancelled"),
            Self::EnactFailed { warehouse, reason } => {
                write!(f, "enactment at {warehouse} failed: {reason}")
            }
        }
    }
}

/// What the coordinator decided; its state is the fold of these, in log
/// order (see [`super::Carts::recover`]). In the log each is a map whose
/// `type` is the variant in snake case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CartEvent {
    /// A cart was accepted; each line is reserved in its partition.
    Opened { cart: Cart, at: Timestamp },
    /// A line's partition reserved it. For a cart already rejected or
    /// cancelled this folds to released (and a `Release` follows).
    LineReserved {
        line: LineId,
        /// Where it is reserved, if not the partition it was sent to (its
        /// partition rerouted it): its commit or release goes there, and
        /// it ships from there.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<PartitionKey>,
    },
    /// A line's partition rejected it.
    LineRejected { line: LineId, reason: RejectReason },
    /// Every line is decided; the cart waits for payment until `until`.
    Held { cart: OrderId, until: Timestamp },
    /// Payment was captured (`handle_confirm`): the hold is over, or will
    /// be skipped.
    Paid { cart: OrderId },
    /// Attempt `attempt` (1-based) of a warehouse's enactment began.
    EnactStarted {
        cart: OrderId,
        warehouse: WarehouseId,
        attempt: u32,
    },
    /// That attempt enacted the warehouse's lines.
    EnactSucceeded {
        cart: OrderId,
        warehouse: WarehouseId,
        attempt: u32,
    },
    /// That attempt failed; with `retry_at` the next one starts then,
    /// without the cart's `Rejected` follows.
    EnactFailed {
        cart: OrderId,
        warehouse: WarehouseId,
        attempt: u32,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_at: Option<Timestamp>,
    },
    /// Final: every enactment succeeded; every reserved line is sold.
    Confirmed { cart: OrderId },
    /// Final: no line is sold; every reserved line is released (a hold
    /// expiry is this with `HoldExpired`).
    Rejected { cart: OrderId, reason: CartReason },
    /// Final: cancelled before enactment; every reserved line is released.
    Cancelled { cart: OrderId },
    /// The effects of every event before this one were handed to their
    /// transports: recovery re-sends only what follows the last of these.
    Delivered,
}

impl CartEvent {
    /// The cart the event is about; `None` for `Delivered`.
    pub fn cart_id(&self) -> Option<OrderId> {
        match self {
            Self::Opened { cart, .. } => Some(cart.id().clone()),
            Self::LineReserved { line, .. } | Self::LineRejected { line, .. } => {
                Some(line.parts().0)
            }
            Self::Held { cart, .. }
            | Self::Paid { cart }
            | Self::EnactStarted { cart, .. }
            | Self::EnactSucceeded { cart, .. }
            | Self::EnactFailed { cart, .. }
            | Self::Confirmed { cart }
            | Self::Rejected { cart, .. }
            | Self::Cancelled { cart } => Some(cart.clone()),
            Self::Delivered => None,
        }
    }
}
