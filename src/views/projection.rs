//! One shard's read model, folded from its EVENTS batches: every order's
//! status and history, every partition's stock. Pure: batches in, state
//! out, so a replay from any checkpoint gives the same views as the live
//! fold (`PartialEq` holds), and views converge after any fault as long as
//! each batch is applied once, in order (the readers' chain check).
//!
//! The stages and history lines it records are in `super::history`.

use std::collections::{BTreeMap, VecDeque};

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::history::describe;
pub use super::history::{Happened, Stage};
use super::lines::History;
use crate::domain::{Event, OrderId, PartitionKey, WarehouseId};
use crate::saga::CartState;

/// An order in one partition of this shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    pub partition: PartitionKey,
    pub quantity: u32,
    pub stage: Stage,
    /// Every decision, oldest first, with the EVENTS sequence of its batch.
    pub history: History,
}

/// A partition's stock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockView {
    pub warehouse: String,
    pub sku: String,
    /// Free units; below zero while the partition is short (a stock count
    /// came in below what workers already enact).
    pub available: i64,
    /// Units the partition is short (`-available` while that is below
    /// zero, else 0): units that come in fill this first.
    #[serde(default)]
    pub short: i64,
    /// Stock changes applied (sets, restocks, adjustments): the `ETag` of
    /// `GET /v1/stock/...`, and the version a set may expect (`If-Match`).
    #[serde(default)]
    pub version: u64,
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
    /// The carts this shard coordinates, folded from their events.
    #[serde(default)]
    carts: BTreeMap<OrderId, CartState>,
}

impl ShardViews {
    pub fn cart(&self, id: &OrderId) -> Option<&CartState> {
        self.carts.get(id)
    }

    pub fn order(&self, id: &OrderId) -> Option<&OrderView> {
        self.orders.get(id)
    }

    pub fn stock(&self, p: &PartitionKey) -> Option<StockView> {
        self.stock.get(p).map(Self::shown)
    }

    pub fn partitions(&self) -> impl Iterator<Item = StockView> + '_ {
        self.stock.values().map(Self::shown)
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

    /// A partition's stock as reads show it.
    fn shown(v: &StockView) -> StockView {
        StockView {
            short: (-v.available).max(0),
            ..v.clone()
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

    /// `p` as the stock map holds it (made if new), for an order to keep.
    fn stock_key(&mut self, p: &PartitionKey, seq: u64) -> PartitionKey {
        self.stock_mut(p, seq);
        self.known_key(p)
    }

    /// `p` as the stock map holds it if it is there.
    fn known_key(&self, p: &PartitionKey) -> PartitionKey {
        self.stock
            .get_key_value(p)
            .map_or_else(|| p.clone(), |(k, _)| k.clone())
    }

    fn event(&mut self, seq: u64, event: &Event) {
        let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        match event {
            Event::Cart { event } => {
                crate::saga::fold(&mut self.carts, event);
                return;
            }
            Event::StockSet { partition, on_hand } => {
                let v = self.stock_mut(partition, seq);
                v.available = signed(*on_hand) - v.reserved;
                v.version += 1;
                return;
            }
            Event::StockRestocked { partition, units } => {
                let v = self.stock_mut(partition, seq);
                v.available += signed(*units);
                v.version += 1;
                return;
            }
            Event::StockAdjusted { partition, delta } => {
                let v = self.stock_mut(partition, seq);
                v.available += delta;
                v.version += 1;
                return;
            }
            Event::OrderQueued { order } => {
                // A new life in this shard (a reroute may bring an order
                // back to a shard it passed): earlier lines stay, spelled
                // out if the partition changes.
                // The stock's own key: every order of a partition shares
                // its names, not a copy each.
                let partition = self.stock_key(&order.partition, seq);
                let view = self.orders.entry(order.id.clone()).or_insert(OrderView {
                    partition: partition.clone(),
                    quantity: order.quantity.get(),
                    stage: Stage::Queued,
                    history: History::default(),
                });
                if view.partition != partition {
                    view.history.name_partition(&view.partition);
                    view.partition = partition.clone();
                }
                view.quantity = order.quantity.get();
                view.stage = Stage::Queued;
                view.history
                    .push(seq, &Happened::Queued { partition: None });
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
                    partition: Box::new(partition.clone()),
                    holder: Box::new(holder.clone()),
                };
                match self.orders.get_mut(id) {
                    Some(view) => view.history.push(seq, &line),
                    None => {
                        let partition = self.known_key(partition);
                        self.orders.insert(
                            id.clone(),
                            OrderView {
                                partition,
                                quantity: 0,
                                stage: Stage::Duplicate,
                                history: History::of(seq, &line),
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
                let partition = self.known_key(partition);
                let view = self.orders.entry(id.clone()).or_insert(OrderView {
                    partition,
                    quantity: 0,
                    stage: Stage::Rejected,
                    history: History::default(),
                });
                view.stage = Stage::Rejected;
                view.history.push(
                    seq,
                    &Happened::Rejected {
                        reason: Box::new(reason.clone()),
                    },
                );
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
                        history: History::of(
                            seq,
                            &Happened::Rejected {
                                reason: Box::new(reason.clone()),
                            },
                        ),
                    },
                );
                self.finals.push_back(id.clone());
            }
            return;
        };
        let before = view.stage;
        let after = stage.unwrap_or(before);
        view.stage = after;
        view.history.push(seq, &happened);
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
            Event::OrderReleased { .. } => Some(|v, q| {
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
