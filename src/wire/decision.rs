//! Decisions on the wire: what subscribers of `decisions.<warehouse>.<sku>`
//! receive, one [`DecisionMessage`] per decision event, as MessagePack with
//! named fields (version 1, like orders).

use serde::{Deserialize, Serialize};

use super::msgpack::{read_capped, MsgpackError};
use super::raw::Scalar;
use super::{order, WireError, VERSION};
use crate::domain::{Event, OrderId, PartitionKey, Sku, Timestamp, WarehouseId};

/// Largest decision message [`DecisionMessage::decode`] reads. Real ones
/// are well under 1 KiB; the longest part is a rejection's detail.
pub const MAX_DECISION_BYTES: usize = 64 * 1024;

/// One decision about one order in one partition: a flat map of `v`,
/// `id`, `warehouse`, `sku`, `decision` and that decision's own fields.
///
/// ```text
/// {"v":1,"id":"o-1","warehouse":"ams","sku":"MUG","decision":"rejected",
///  "reason":"out_of_stock","detail":"out of stock"}
/// ```
///
/// Subscribers should ignore fields they do not know; a `decision` they do
/// not know decodes as [`Decision::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionMessage {
    /// Envelope version: [`VERSION`].
    pub v: u32,
    pub id: OrderId,
    pub warehouse: WarehouseId,
    pub sku: Sku,
    #[serde(flatten)]
    pub decision: Decision,
}

/// What was decided, under the key `decision`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Accepted into its partition's queue.
    Queued,
    /// Units reserved; a worker enacts it next.
    Reserved,
    /// Enacted: final.
    Confirmed,
    /// Final: not fulfilled. `reason` is a stable label (`out_of_stock`,
    /// `invalid`, `cancelled`, `retries_exhausted`, `fulfilment_failed`,
    /// `backorder_expired`); `detail` says it for people.
    Rejected { reason: String, detail: String },
    /// Out of stock: held until a restock, or until `until` (milliseconds
    /// since the Unix epoch), when it is rejected.
    Backordered { until: Timestamp },
    /// Out of stock here: handed to warehouse `to` (final for this
    /// partition; the order is then queued there).
    Rerouted { to: WarehouseId },
    /// A confirmed order was cancelled and its units returned to stock.
    Cancelled,
    /// A copy of the order filed for this partition was refused: the
    /// partition `holder_warehouse`/`holder_sku` placed its id first (not a
    /// decision about the order, which stands there).
    Duplicate {
        holder_warehouse: WarehouseId,
        holder_sku: Sku,
    },
    /// A decision kind newer than this code; allot never sends it.
    #[serde(other)]
    Unknown,
}

impl DecisionMessage {
    /// The message for `event`, a decision about an order in `partition`,
    /// or `None` for events subscribers do not get (stock changes, retries,
    /// releases, forwards, cancel requests, shortages, refused commands).
    pub fn from_event(event: &Event, partition: &PartitionKey) -> Option<Self> {
        let (id, decision) = match event {
            Event::OrderQueued { order } => (&order.id, Decision::Queued),
            Event::OrderReserved { id } => (id, Decision::Reserved),
            Event::OrderConfirmed { id } => (id, Decision::Confirmed),
            Event::OrderRejected { id, reason, .. } => (
                id,
                Decision::Rejected {
                    reason: reason.label().to_owned(),
                    detail: reason.to_string(),
                },
            ),
            Event::OrderBackordered { id, until } => (id, Decision::Backordered { until: *until }),
            Event::OrderRerouted { id, to } => (id, Decision::Rerouted { to: to.clone() }),
            Event::OrderCancelled { id } => (id, Decision::Cancelled),
            Event::DuplicateRefused { id, holder, .. } => (
                id,
                Decision::Duplicate {
                    holder_warehouse: holder.warehouse.clone(),
                    holder_sku: holder.sku.clone(),
                },
            ),
            Event::OrderRetrying { .. }
            | Event::OrderReleased { .. }
            | Event::OrderForwarded { .. }
            | Event::OrderCancelRequested { .. }
            | Event::StockSet { .. }
            | Event::StockRestocked { .. }
            | Event::StockAdjusted { .. }
            | Event::CommandApplied { .. }
            | Event::CommandRefused { .. }
            | Event::StockShort { .. }
            | Event::IdsClaimed { .. }
            | Event::EpochStarted { .. }
            | Event::Cart { .. } => return None,
        };
        Some(Self {
            v: VERSION,
            id: id.clone(),
            warehouse: partition.warehouse.clone(),
            sku: partition.sku.clone(),
            decision,
        })
    }

    /// The partition the decision is about.
    pub fn partition(&self) -> PartitionKey {
        PartitionKey::new(self.warehouse.clone(), self.sku.clone())
    }

    /// MessagePack with named fields.
    pub fn encode(&self) -> Vec<u8> {
        // Validated strings and integers into a Vec: rmp-serde cannot fail
        // here (the round-trip tests hold this).
        rmp_serde::to_vec_named(self).expect("a DecisionMessage always encodes")
    }

    /// Decodes a decision. The version is checked before the rest, so a
    /// newer allot's message gives a clear `v` error rather than a
    /// confusing one about its fields.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_DECISION_BYTES {
            return Err(WireError::TooLarge {
                size: bytes.len(),
                max: MAX_DECISION_BYTES,
            });
        }
        let malformed = |e: MsgpackError| WireError::Malformed {
            id: None,
            field: "payload",
            why: super::msgpack::why(&e, order::MAX_DEPTH),
        };
        let envelope: Envelope = read(bytes).map_err(malformed)?;
        if let Err(p) = order::version(envelope.v.filter(|v| *v != Scalar::Nil)) {
            return Err(WireError::Invalid {
                id: None,
                problems: vec![p],
            });
        }
        read(bytes).map_err(malformed)
    }
}

/// Just the version, every other field skipped.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    v: Option<Scalar>,
}

/// From a slice (lengths checked against what is left, as for orders),
/// nesting capped like orders.
fn read<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, MsgpackError> {
    read_capped(bytes, order::MAX_DEPTH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Order, Priority, Quantity, RejectReason};

    fn partition() -> PartitionKey {
        PartitionKey::new(WarehouseId::new("ams").unwrap(), Sku::new("MUG").unwrap())
    }
    fn id() -> OrderId {
        OrderId::new("o-1").unwrap()
    }

    /// One of each decision event, and what it becomes.
    fn decisions() -> Vec<(Event, Decision)> {
        let order = Order {
            line: false,
            id: id(),
            partition: partition(),
            quantity: Quantity::ONE,
            region: None,
            priority: Priority(0),
            fallbacks: vec![],
        };
        let fra = WarehouseId::new("fra").unwrap();
        vec![
            (Event::OrderQueued { order }, Decision::Queued),
            (Event::OrderReserved { id: id() }, Decision::Reserved),
            (Event::OrderConfirmed { id: id() }, Decision::Confirmed),
            (
                Event::OrderRejected {
                    id: id(),
                    reason: RejectReason::Invalid {
                        errors: vec![crate::domain::FieldError::new(
                            "quantity",
                            "0 is out of range, must be 1..=1000",
                        )],
                    },
                    partition: None,
                },
                Decision::Rejected {
                    reason: "invalid".into(),
                    detail: "invalid quantity: 0 is out of range, must be 1..=1000".into(),
                },
            ),
            (
                Event::OrderBackordered {
                    id: id(),
                    until: Timestamp(1_700_000_000_000),
                },
                Decision::Backordered {
                    until: Timestamp(1_700_000_000_000),
                },
            ),
            (
                Event::OrderRerouted {
                    id: id(),
                    to: fra.clone(),
                },
                Decision::Rerouted { to: fra },
            ),
            (Event::OrderCancelled { id: id() }, Decision::Cancelled),
        ]
    }

    #[test]
    fn every_decision_event_round_trips() {
        for (event, decision) in decisions() {
            let msg = DecisionMessage::from_event(&event, &partition()).unwrap();
            assert_eq!(msg.decision, decision);
            assert_eq!((msg.v, &msg.id, msg.partition()), (1, &id(), partition()));
            assert_eq!(DecisionMessage::decode(&msg.encode()), Ok(msg.clone()));
            let text = serde_json::to_string(&msg).unwrap();
            assert_eq!(serde_json::from_str::<DecisionMessage>(&text).unwrap(), msg);
        }
    }

    #[test]
    fn the_wire_shape_is_a_flat_map() {
        let (event, _) = decisions().swap_remove(3);
        let msg = DecisionMessage::from_event(&event, &partition()).unwrap();
        let value: serde_json::Value = rmp_serde::from_slice(&msg.encode()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "v": 1, "id": "o-1", "warehouse": "ams", "sku": "MUG",
                "decision": "rejected", "reason": "invalid",
                "detail": "invalid quantity: 0 is out of range, must be 1..=1000",
            })
        );
    }

    #[test]
    fn other_events_are_not_published() {
        let p = partition();
        let none = [
            Event::OrderRetrying {
                id: id(),
                attempt: 1,
                reason: "timeout".into(),
            },
            Event::OrderReleased {
                id: id(),
                reason: "failed".into(),
            },
            Event::OrderForwarded { id: id() },
            Event::OrderCancelRequested { id: id() },
            Event::StockSet {
                partition: p.clone(),
                on_hand: 1,
            },
            Event::StockRestocked {
                partition: p.clone(),
                units: 1,
            },
            Event::StockAdjusted {
                partition: p.clone(),
                delta: -1,
            },
        ];
        for event in none {
            assert_eq!(DecisionMessage::from_event(&event, &p), None, "{event:?}");
        }
    }

    fn packed(value: serde_json::Value) -> Vec<u8> {
        rmp_serde::to_vec_named(&value).unwrap()
    }

    #[test]
    fn newer_senders_are_read_or_refused_clearly() {
        let base = serde_json::json!({"v": 1, "id": "o-1", "warehouse": "ams", "sku": "MUG"});
        let mut unknown = base.clone();
        unknown["decision"] = "split".into();
        unknown["parts"] = serde_json::json!([1, 2]);
        let msg = DecisionMessage::decode(&packed(unknown)).unwrap();
        assert_eq!(msg.decision, Decision::Unknown);
        let mut v2 = base.clone();
        v2["v"] = 2.into();
        v2["decision"] = serde_json::json!({"new": "shape"});
        let e = DecisionMessage::decode(&packed(v2)).unwrap_err();
        assert_eq!(
            e.problems()[0].why,
            "version 2 is not supported; this allot reads 1"
        );
    }

    #[test]
    fn bad_decisions_are_errors() {
        let mut bad_id = serde_json::json!({"v": 1, "id": "o 1", "warehouse": "ams", "sku": "MUG"});
        bad_id["decision"] = "queued".into();
        assert_eq!(
            DecisionMessage::decode(&packed(bad_id))
                .unwrap_err()
                .label(),
            "malformed"
        );
        for bytes in [&b""[..], b"\xc1", b"\xdd\xff\xff\xff\xff", &[0x91; 100]] {
            let e = DecisionMessage::decode(bytes).unwrap_err();
            assert_eq!(e.label(), "malformed", "{bytes:?}");
        }
        let e = DecisionMessage::decode(&vec![0; MAX_DECISION_BYTES + 1]).unwrap_err();
        assert_eq!(e.label(), "too_large");
    }
}
