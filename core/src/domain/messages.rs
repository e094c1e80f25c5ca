//! Commands (what someone asks for) and events (what was decided). Both are
//! plain data: they nest, batch, queue and travel over any transport.

use std::num::NonZeroU64;

use serde::{Deserialize, Serialize};

use super::types::{OrderId, PartitionKey, Priority, Quantity, Region, Timestamp, WarehouseId};
use super::CartEvent;

/// A validated purchase order for one (warehouse, SKU) partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub partition: PartitionKey,
    pub quantity: Quantity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<Region>,
    #[serde(default)]
    pub priority: Priority,
    /// Warehouses to try next, in order, if this partition reroutes the
    /// order (filled in by the routing rules at ingress).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<WarehouseId>,
    /// A cart's line (its id is `<cart>#<index>`): once reserved it is
    /// answered to the cart's coordinator, which commits or releases it;
    /// no worker enacts it here.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub line: bool,
}

/// What a caller asks allot to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Queue an order; it is released when stock allows.
    PlaceOrder(Order),
    /// Cancel an order: a queued or backordered one is removed, a reserved
    /// one is released when its outcome comes back, a confirmed one is
    /// compensated by returning its units (if the policy allows).
    CancelOrder {
        id: OrderId,
        partition: PartitionKey,
    },
    /// Set the partition's on-hand stock (free plus reserved units). With
    /// `expected_version`, only if the partition's stock version is still
    /// that (a set based on a stale read, or a late copy, is refused);
    /// without, unconditionally.
    SetStock {
        partition: PartitionKey,
        on_hand: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected_version: Option<u64>,
    },
    /// Add units to the partition's stock.
    Restock {
        partition: PartitionKey,
        units: NonZeroU64,
    },
    /// Change on-hand stock by `delta` (shrinkage, counts, corrections).
    AdjustStock { partition: PartitionKey, delta: i64 },
    /// Several commands, applied in order; batches may nest.
    Batch { commands: Vec<Command> },
    /// A command with an idempotency key: applied at most once per shard
    /// within the dedupe horizon, so a redelivered stock change (whose ack
    /// was lost) is not applied twice.
    Keyed { id: OrderId, command: Box<Command> },
}

impl Command {
    /// Deepest nesting of batches a command may have (every edge refuses
    /// deeper ones before decoding them further).
    pub const MAX_NESTING: usize = 8;

    /// The partition a cancel or stock change is about (a keyed one's
    /// inner command's); `None` for orders and batches, which go their own
    /// ways.
    pub fn partition(&self) -> Option<&PartitionKey> {
        match self {
            Command::CancelOrder { partition, .. }
            | Command::SetStock { partition, .. }
            | Command::Restock { partition, .. }
            | Command::AdjustStock { partition, .. } => Some(partition),
            Command::Keyed { command, .. } => command.partition(),
            Command::PlaceOrder(_) | Command::Batch { .. } => None,
        }
    }
}

/// How a worker's enactment of a released order ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Enacted (payment captured, fulfilment requested, ...).
    Fulfilled,
    /// Not enacted. A retryable failure (unavailable, overloaded) is tried
    /// again with the same idempotency key; a permanent one rejects the
    /// order.
    Failed { reason: String, retryable: bool },
    /// No answer (a timeout, a lost or unreadable reply): the work may or
    /// may not have been done. The order stays reserved and is asked again
    /// under the same idempotency key, without limit (backing off up to
    /// `retry.max_backoff`), until a worker answers: rejecting it could undo
    /// an enactment that happened.
    Unknown { reason: String },
}

/// One field of a message or request that breaks its rules: `field` is
/// its name or path (`quantity`, `lines[2].sku`, `payload` for the whole
/// message), `why` says what is wrong and what is allowed. The one type
/// every edge reports a bad field with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub why: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            why: why.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.why)
    }
}

/// Why an order was rejected. In the log it is a map whose `kind` is the
/// reason's label (`{"kind": "out_of_stock"}`, `{"kind": "invalid",
/// "errors": [{"field": "quantity", "why": "..."}]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RejectReason {
    /// No stock left, and the policy rejects (or rerouting ran out of
    /// warehouses).
    OutOfStock,
    /// The order itself is invalid: every bad field, at least one.
    Invalid { errors: Vec<FieldError> },
    /// Cancelled by request before it was enacted.
    Cancelled,
    /// Every attempt failed with a retryable error; the last one is given.
    RetriesExhausted { last: String },
    /// The worker failed it permanently.
    FulfilmentFailed { reason: String },
    /// Backordered, and no restock came within its TTL.
    BackorderExpired,
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OutOfStock => f.write_str("out of stock"),
            Self::Invalid { errors } => {
                f.write_str("invalid ")?;
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Self::Cancelled => f.write_str("cancelled"),
            Self::RetriesExhausted { last } => write!(f, "retries exhausted: {last}"),
            Self::FulfilmentFailed { reason } => write!(f, "fulfilment failed: {reason}"),
            Self::BackorderExpired => f.write_str("backorder expired"),
        }
    }
}

impl RejectReason {
    /// A short stable label, for tables and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::OutOfStock => "out_of_stock",
            Self::Invalid { .. } => "invalid",
            Self::Cancelled => "cancelled",
            Self::RetriesExhausted { .. } => "retries_exhausted",
            Self::FulfilmentFailed { .. } => "fulfilment_failed",
            Self::BackorderExpired => "backorder_expired",
        }
    }
}

/// What the shard decided. The event log is the source of truth: folding
/// these with `evolve` rebuilds every partition of a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Accepted into its partition's queue.
    OrderQueued { order: Order },
    /// Units reserved; the order goes to a worker once this is durable.
    OrderReserved { id: OrderId },
    /// A worker enacted it: final.
    OrderConfirmed { id: OrderId },
    /// Enactment failed with a retryable error; attempt `attempt` follows.
    OrderRetrying {
        id: OrderId,
        attempt: u32,
        reason: String,
    },
    /// Its reservation went back to stock (a failure or a cancel); an
    /// `OrderRejected` follows.
    OrderReleased { id: OrderId, reason: String },
    /// Final: not fulfilled, for `reason`. `partition` is set for an order
    /// rejected before it was queued (invalid): the partition its subject
    /// named, if that was readable.
    OrderRejected {
        id: OrderId,
        reason: RejectReason,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partition: Option<PartitionKey>,
    },
    /// Out of stock: held until restock or `until`.
    OrderBackordered { id: OrderId, until: Timestamp },
    /// Out of stock here: handed to warehouse `to` (final for this
    /// partition; the runtime forwards it once this is durable).
    OrderRerouted { id: OrderId, to: WarehouseId },
    /// The runtime handed a rerouted order to its next partition.
    OrderForwarded { id: OrderId },
    /// A cancel arrived while the order was with a worker; it is settled
    /// when the outcome comes back.
    OrderCancelRequested { id: OrderId },
    /// A confirmed order was cancelled and its units returned to stock.
    OrderCancelled { id: OrderId },
    /// A stock change left the partition `units` short: more is reserved by
    /// orders with workers than is on hand (reservations are never taken
    /// back). Units that come in fill the shortage first. Informs; the
    /// stock event before it already applied.
    StockShort { partition: PartitionKey, units: u64 },
    /// The keyed command `id` was refused (a stale stock version, stock
    /// that would go negative): nothing changed.
    CommandRefused { id: OrderId, reason: String },
    /// On-hand stock set to `on_hand`.
    StockSet {
        partition: PartitionKey,
        on_hand: u64,
    },
    /// `units` added.
    StockRestocked { partition: PartitionKey, units: u64 },
    /// On-hand stock changed by `delta`.
    StockAdjusted { partition: PartitionKey, delta: i64 },
    /// The keyed command `id` is being applied (its events follow).
    CommandApplied { id: OrderId },
    /// This shard owns these ids (by a hash of each) and records which
    /// partition placed each: another partition's copy is a duplicate.
    IdsClaimed { claims: Vec<Claim> },
    /// A copy of order `id` filed for `partition` was refused: `holder`
    /// placed the id first. Not a decision about the order (which stands
    /// where it was placed): the record of a refused copy.
    DuplicateRefused {
        id: OrderId,
        partition: PartitionKey,
        holder: PartitionKey,
    },
    /// Time reached `epoch` (a 24th of the dedupe window): ids recorded
    /// 24 epochs before are forgotten.
    EpochStarted { epoch: u32 },
    /// The shard's cart coordinator decided this: carts share their
    /// shard's log, so one append makes both durable. Partitions ignore it.
    Cart { event: Box<CartEvent> },
}

/// An order id and the partition that placed it first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Claim {
    pub id: OrderId,
    pub by: PartitionKey,
}

/// The owner's answer to a [`Claim`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum ClaimAnswer {
    /// The id is this partition's (now, or already).
    Granted,
    /// Another partition placed the id first.
    Refused { holder: PartitionKey },
}

impl Event {
    /// The order this event is about, if any.
    pub fn order_id(&self) -> Option<&OrderId> {
        match self {
            Event::OrderQueued { order } => Some(&order.id),
            Event::OrderReserved { id }
            | Event::OrderConfirmed { id }
            | Event::OrderRetrying { id, .. }
            | Event::OrderReleased { id, .. }
            | Event::OrderRejected { id, .. }
            | Event::OrderBackordered { id, .. }
            | Event::OrderRerouted { id, .. }
            | Event::OrderForwarded { id }
            | Event::OrderCancelRequested { id }
            | Event::OrderCancelled { id } => Some(id),
            Event::DuplicateRefused { id, .. } => Some(id),
            Event::StockSet { .. }
            | Event::StockRestocked { .. }
            | Event::StockAdjusted { .. }
            | Event::CommandApplied { .. }
            | Event::CommandRefused { .. }
            | Event::StockShort { .. }
            | Event::IdsClaimed { .. }
            | Event::EpochStarted { .. }
            | Event::Cart { .. } => None,
        }
    }

    /// True for the events that end an order's life in a partition.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Event::OrderConfirmed { .. }
                | Event::OrderRejected { .. }
                | Event::OrderRerouted { .. }
        )
    }
}
