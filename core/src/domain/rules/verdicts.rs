//! What the rules answer: the verdict on a command, why a placed order is
//! known already, why a command is refused, and what an outcome or a
//! settle led to. Plain values; deciding them is the `Decider`'s part.

use std::time::Duration;

use super::Attempt;
use crate::domain::orders::{Final, Status};
use crate::domain::state::PartitionIdx;
use crate::domain::types::{OrderId, PartitionKey, WarehouseId};

/// A command the rules refuse: nothing was decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No live order and no remembered decision has this id.
    #[error("order {0}: unknown (never placed here, or older than the dedupe horizon)")]
    UnknownOrder(OrderId),
    /// The order was already decided; its decision stands.
    #[error("order {id}: already {outcome:?}")]
    AlreadyDecided { id: OrderId, outcome: Final },
    /// The order moved to another warehouse; address it there.
    #[error("order {id}: rerouted to warehouse {to}; cancel it there")]
    Rerouted { id: OrderId, to: WarehouseId },
    /// Config forbids cancelling confirmed orders.
    #[error("order {0}: confirmed, and scheduler.cancel_confirmed = \"refuse\"")]
    CancelConfirmedRefused(OrderId),
    /// A stock change would leave negative stock.
    #[error("{partition}: on-hand stock {on_hand} changed by {delta} would be negative")]
    NegativeStock {
        partition: PartitionKey,
        on_hand: i128,
        delta: i64,
    },
    /// A stock set expected another stock version: it was based on a
    /// stale read, or is a late copy of an old set.
    #[error("{partition}: stock is at version {actual}, the set expected {expected}")]
    StaleVersion {
        partition: PartitionKey,
        expected: u64,
        actual: u64,
    },
    /// Not a stock command (an internal misuse of `Decider::stock`).
    #[error("not a stock command")]
    NotStock,
    /// This shard instance lost its log to another writer; retry elsewhere.
    #[error("this instance no longer owns the shard")]
    Fenced,
}

/// The answer to one command, decided at once (durability follows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted: the order is queued, or the command applied.
    Accepted,
    /// The order id is known; the earlier decision stands.
    Duplicate(Known),
    /// Refused; nothing changed.
    Refused(CommandError),
    /// One verdict per command of a batch, in order.
    Batch(Vec<Verdict>),
}

/// A placed order that was not queued because its id is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    Live(Status),
    Decided(Final),
    /// Decided here within the dedupe window, longer ago than the decisions
    /// kept in full: what was decided is not at hand, but it stands.
    Forgotten,
    /// Another partition placed the id first (its copy was refused).
    Claimed(PartitionKey),
    /// A keyed command already applied.
    Applied,
}

/// Where an order to place comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A producer (directly, or through the ingress): its id is checked
    /// against every id decided or claimed within the window.
    Producer,
    /// Another partition rerouted it here: its id was claimed where it was
    /// placed first.
    Forwarded,
}

/// What a worker outcome led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeEffect {
    /// The order was settled (confirmed or rejected) in this partition.
    Settled(PartitionIdx),
    /// Dispatch it again after the backoff.
    Retry { attempt: Attempt, after: Duration },
    /// Not the current dispatch of a reserved order: ignored.
    Stale,
}

/// Whether a partition still has queued orders it cannot serve yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Idle,
    /// Nothing fits, but orders are in flight and may free units.
    Waiting,
}
