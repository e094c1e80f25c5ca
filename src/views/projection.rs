//! One shard's read model, folded from its EVENTS batches: every order's
//! status and history, every partition's stock. Pure: batches in, state
//! out, so a replay from any checkpoint gives the same views as the live
//! fold (`PartialEq` holds), and views converge after any fault as long as
//! each batch is applied once, in order (the readers' chain check).

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::domain::{Event, OrderId, PartitionKey, RejectReason, Timestamp, WarehouseId};

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
    fn counts(self) -> (i64, i64, i64) {
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
    Queued {
        partition: PartitionKey,
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
    Revoked,
    Refused {
        partition: PartitionKey,
        holder: PartitionKey,
    },
}

impl std::fmt::Display for Happened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Happened::Queued { partition } => write!(f, "queued in {partition}"),
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
            Happened::Revoked => f.write_str("reservation revoked (stock cut)"),
            Happened::Refused { partition, holder } => write!(
                f,
                "a copy for {partition} refused as a duplicate: {holder} placed this id first"
            ),
        }
    }
}

/// An order in one partition of this shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    pub partition: PartitionKey,
    pub quantity: u32,
    pub stage: Stage,
    /// Every decision, oldest first, with the EVENTS sequence of its batch.
    pub history: Vec<(u64, Happened)>,
}

/// A partition's stock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockView {
    pub warehouse: String,
    pub sku: String,
    /// Free units.
    pub available: i64,
    /// Units held by orders with a worker.
    pub reserved: i64,
    /// Units of confirmed orders.
    pub sold: i64,
    /// Orders waiting in the partition's queue.
    pub queued: i64,
    /// Orders reserved and with a worker (retries included).
    pub in_flight: i64,
    /// Orders waiting for a restock.
    pub backordered: i64,
    /// The EVENTS sequence these figures reflect.
    pub as_of: u64,
}

/// One shard's views.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardViews {
    /// The sequence of the last batch applied (0: none).
    pub last_seq: u64,
    orders: FxHashMap<OrderId, OrderView>,
    /// Final orders, oldest first: the first to go when over `max_orders`.
    finals: VecDeque<OrderId>,
    stock: FxHashMap<PartitionKey, StockView>,
}

impl ShardViews {
    pub fn order(&self, id: &OrderId) -> Option<&OrderView> {
        self.orders.get(id)
    }

    pub fn stock(&self, p: &PartitionKey) -> Option<&StockView> {
        self.stock.get(p)
    }

    pub fn partitions(&self) -> impl Iterator<Item = &StockView> {
        self.stock.values()
    }

    /// Orders held (live and final).
    pub fn order_count(&self) -> usize {
        self.orders.len()
    }

    /// Applies the batch stored at `seq`, keeping at most `max_orders`
    /// orders (the oldest final ones go first).
    pub fn apply(&mut self, seq: u64, events: &[Event], max_orders: usize) {
        for event in events {
            self.event(seq, event);
        }
        self.last_seq = seq;
        while self.orders.len() > max_orders {
            let Some(old) = self.finals.pop_front() else {
                break;
            };
            if self.orders.get(&old).is_some_and(|o| o.stage.is_final()) {
                self.orders.remove(&old);
            }
        }
    }

    fn stock_mut(&mut self, p: &PartitionKey, seq: u64) -> &mut StockView {
        let view = self.stock.entry(p.clone()).or_insert_with(|| StockView {
            warehouse: p.warehouse.to_string(),
            sku: p.sku.to_string(),
            ..StockView::default()
        });
        view.as_of = seq;
        view
    }

    fn event(&mut self, seq: u64, event: &Event) {
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        match event {
            Event::StockSet { partition, on_hand } => {
                let v = self.stock_mut(partition, seq);
                v.available = signed(*on_hand) - v.reserved;
                return;
            }
            Event::StockRestocked { partition, units } => {
                self.stock_mut(partition, seq).available += signed(*units);
                return;
            }
            Event::StockAdjusted { partition, delta } => {
                self.stock_mut(partition, seq).available += delta;
                return;
            }
            Event::OrderQueued { order } => {
                // A new life in this shard (a reroute may bring an order
                // back to a shard it passed): earlier lines stay.
                let view = self.orders.entry(order.id.clone()).or_insert(OrderView {
                    partition: order.partition.clone(),
                    quantity: order.quantity.get(),
                    stage: Stage::Queued,
                    history: Vec::new(),
                });
                view.partition = order.partition.clone();
                view.quantity = order.quantity.get();
                view.stage = Stage::Queued;
                view.history.push((
                    seq,
                    Happened::Queued {
                        partition: order.partition.clone(),
                    },
                ));
                let partition = order.partition.clone();
                // Any earlier life here ended final, which counts nowhere.
                self.shift_counts(&partition, seq, Stage::Rejected, Stage::Queued);
                return;
            }
            Event::DuplicateRefused {
                id,
                partition,
                holder,
            } => {
                let line = Happened::Refused {
                    partition: partition.clone(),
                    holder: holder.clone(),
                };
                match self.orders.get_mut(id) {
                    Some(view) => view.history.push((seq, line)),
                    None => {
                        self.orders.insert(
                            id.clone(),
                            OrderView {
                                partition: partition.clone(),
                                quantity: 0,
                                stage: Stage::Duplicate,
                                history: vec![(seq, line)],
                            },
                        );
                        self.finals.push_back(id.clone());
                    }
                }
                return;
            }
            Event::OrderRejected {
                id,
                reason,
                partition: Some(partition),
            } if self.orders.get(id).is_none_or(|o| o.stage.is_final()) => {
                // Rejected before it was queued (invalid): the view keeps
                // the partition its subject named.
                let view = self.orders.entry(id.clone()).or_insert(OrderView {
                    partition: partition.clone(),
                    quantity: 0,
                    stage: Stage::Rejected,
                    history: Vec::new(),
                });
                view.stage = Stage::Rejected;
                view.history.push((
                    seq,
                    Happened::Rejected {
                        reason: Box::new(reason.clone()),
                    },
                ));
                self.finals.push_back(id.clone());
                return;
            }
            _ => {}
        }
        let Some(id) = event.order_id() else { return };
        let (happened, stage) = describe(event);
        let Some(view) = self.orders.get_mut(id) else {
            // An order this shard never queued: an invalid one without a
            // readable subject, or one forgotten past `max_orders`.
            if let Event::OrderRejected { reason, .. } = event {
                self.orders.insert(
                    id.clone(),
                    OrderView {
                        partition: unknown_partition(),
                        quantity: 0,
                        stage: Stage::Rejected,
                        history: vec![(
                            seq,
                            Happened::Rejected {
                                reason: Box::new(reason.clone()),
                            },
                        )],
                    },
                );
                self.finals.push_back(id.clone());
            }
            return;
        };
        let before = view.stage;
        let after = stage.unwrap_or(before);
        view.stage = after;
        view.history.push((seq, happened));
        let (partition, q) = (view.partition.clone(), i64::from(view.quantity));
        if after.is_final() && !before.is_final() {
            self.finals.push_back(id.clone());
        }
        let units: Option<fn(&mut StockView, i64)> = match event {
            Event::OrderReserved { .. } => Some(|v, q| {
                v.available -= q;
                v.reserved += q;
            }),
            Event::OrderConfirmed { .. } => Some(|v, q| {
                v.reserved -= q;
                v.sold += q;
            }),
            Event::OrderReleased { .. } | Event::ReservationRevoked { .. } => Some(|v, q| {
                v.reserved -= q;
                v.available += q;
            }),
            Event::OrderCancelled { .. } => Some(|v, q| {
                v.sold -= q;
                v.available += q;
            }),
            _ => None,
        };
        if let Some(shift) = units {
            shift(self.stock_mut(&partition, seq), q);
        }
        self.shift_counts(&partition, seq, before, after);
    }

    /// Moves an order's count from the stage it was at to the one it is at.
    fn shift_counts(&mut self, p: &PartitionKey, seq: u64, before: Stage, after: Stage) {
        let (b, a) = (before.counts(), after.counts());
        if b != a {
            let v = self.stock_mut(p, seq);
            v.queued += a.0 - b.0;
            v.in_flight += a.1 - b.1;
            v.backordered += a.2 - b.2;
        }
    }
}

/// The partition of an order whose message named none readable.
fn unknown_partition() -> PartitionKey {
    PartitionKey::new(
        WarehouseId::new("-").expect("a valid token"),
        crate::domain::Sku::new("-").expect("a valid token"),
    )
}

/// What an order event adds to its history, and the stage it moves to
/// (`None`: unchanged).
fn describe(event: &Event) -> (Happened, Option<Stage>) {
    match event {
        Event::OrderQueued { order } => (
            Happened::Queued {
                partition: order.partition.clone(),
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
        Event::ReservationRevoked { .. } => (Happened::Revoked, Some(Stage::Queued)),
        Event::StockSet { .. }
        | Event::StockRestocked { .. }
        | Event::StockAdjusted { .. }
        | Event::CommandApplied { .. }
        | Event::IdsClaimed { .. }
        | Event::EpochStarted { .. }
        | Event::DuplicateRefused { .. } => unreachable!("not an order event of a stage"),
    }
}
