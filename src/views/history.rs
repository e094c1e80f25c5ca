//! What the views say about an order: the [`Stage`] it is at, each
//! decision in its history as a [`Happened`] line, and which of these an
//! order event records.

use serde::{Deserialize, Serialize};

use crate::domain::{Event, PartitionKey, RejectReason, Timestamp, WarehouseId};

/// Where an order is, as the views show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Queued,
    Reserved,
    Backordered,
    /// Released back to stock; its rejection follows.
    Released,
    Confirmed,
    Rejected,
    /// Handed to another warehouse: its later history is there.
    Rerouted,
    /// Confirmed, then cancelled with its units returned.
    Cancelled,
    /// A copy refused here: another partition placed the id first.
    Duplicate,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Queued => "queued",
            Stage::Reserved => "reserved",
            Stage::Backordered => "backordered",
            Stage::Released => "released",
            Stage::Confirmed => "confirmed",
            Stage::Rejected => "rejected",
            Stage::Rerouted => "rerouted",
            Stage::Cancelled => "cancelled",
            Stage::Duplicate => "duplicate",
        }
    }

    /// No later decision in this partition changes it.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Stage::Confirmed
                | Stage::Rejected
                | Stage::Rerouted
                | Stage::Cancelled
                | Stage::Duplicate
        )
    }

    /// Which stock count an order at this stage adds to:
    /// `(queued, in_flight, backordered)`.
    pub(super) fn counts(self) -> (i64, i64, i64) {
        match self {
            Stage::Queued => (1, 0, 0),
            Stage::Reserved => (0, 1, 0),
            Stage::Backordered => (0, 0, 1),
            _ => (0, 0, 0),
        }
    }
}

/// One decision in an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Happened {
    /// Queued in a partition: `None` is the partition of the view that
    /// holds the line (most orders never move, so most lines need not
    /// repeat it; see [`Happened::resolved`]).
    Queued {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        partition: Option<Box<PartitionKey>>,
    },
    Reserved,
    Confirmed,
    Retrying {
        attempt: u32,
        reason: Box<str>,
    },
    Released {
        reason: Box<str>,
    },
    Rejected {
        reason: Box<RejectReason>,
    },
    Backordered {
        until: Timestamp,
    },
    Rerouted {
        to: WarehouseId,
    },
    Forwarded,
    CancelRequested,
    Cancelled,
    Refused {
        partition: Box<PartitionKey>,
        holder: Box<PartitionKey>,
    },
}

impl std::fmt::Display for Happened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Happened::Queued {
                partition: Some(partition),
            } => write!(f, "queued in {partition}"),
            Happened::Queued { partition: None } => f.write_str("queued"),
            Happened::Reserved => f.write_str("reserved"),
            Happened::Confirmed => f.write_str("confirmed"),
            Happened::Retrying { attempt, reason } => write!(f, "retry {attempt}: {reason}"),
            Happened::Released { reason } => write!(f, "released: {reason}"),
            Happened::Rejected { reason } => write!(f, "rejected: {reason}"),
            Happened::Backordered { until } => write!(f, "backordered until {} ms", until.0),
            Happened::Rerouted { to } => write!(f, "rerouted to {to}"),
            Happened::Forwarded => f.write_str("handed to the next warehouse"),
            Happened::CancelRequested => f.write_str("cancel requested"),
            Happened::Cancelled => f.write_str("cancelled, units returned"),
            Happened::Refused { partition, holder } => write!(
                f,
                "a copy for {partition} refused as a duplicate: {holder} placed this id first"
            ),
        }
    }
}

impl Happened {
    /// The line with the partition it happened in spelled out, for a view
    /// whose partition is `here`.
    pub fn resolved(self, here: &PartitionKey) -> Happened {
        match self {
            Happened::Queued { partition: None } => Happened::Queued {
                partition: Some(Box::new(here.clone())),
            },
            line => line,
        }
    }
}

/// What an order event adds to its history, and the stage it moves to
/// (`None`: unchanged).
pub(super) fn describe(event: &Event) -> (Happened, Option<Stage>) {
    match event {
        Event::OrderQueued { order } => (
            Happened::Queued {
                partition: Some(Box::new(order.partition.clone())),
            },
            Some(Stage::Queued),
        ),
        Event::OrderReserved { .. } => (Happened::Reserved, Some(Stage::Reserved)),
        Event::OrderConfirmed { .. } => (Happened::Confirmed, Some(Stage::Confirmed)),
        Event::OrderRetrying {
            attempt, reason, ..
        } => (
            Happened::Retrying {
                attempt: *attempt,
                reason: reason.as_str().into(),
            },
            None,
        ),
        Event::OrderReleased { reason, .. } => (
            Happened::Released {
                reason: reason.as_str().into(),
            },
            Some(Stage::Released),
        ),
        Event::OrderRejected { reason, .. } => (
            Happened::Rejected {
                reason: Box::new(reason.clone()),
            },
            Some(Stage::Rejected),
        ),
        Event::OrderBackordered { until, .. } => (
            Happened::Backordered { until: *until },
            Some(Stage::Backordered),
        ),
        Event::OrderRerouted { to, .. } => {
            (Happened::Rerouted { to: to.clone() }, Some(Stage::Rerouted))
        }
        Event::OrderForwarded { .. } => (Happened::Forwarded, None),
        Event::OrderCancelRequested { .. } => (Happened::CancelRequested, None),
        Event::OrderCancelled { .. } => (Happened::Cancelled, Some(Stage::Cancelled)),
        Event::StockSet { .. }
        | Event::StockRestocked { .. }
        | Event::StockAdjusted { .. }
        | Event::CommandApplied { .. }
        | Event::CommandRefused { .. }
        | Event::StockShort { .. }
        | Event::IdsClaimed { .. }
        | Event::EpochStarted { .. }
        | Event::Cart { .. }
        | Event::DuplicateRefused { .. } => unreachable!("not an order event of a stage"),
    }
}
