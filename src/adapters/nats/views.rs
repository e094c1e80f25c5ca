//! Read views, projected from EVENTS: each order's status with its history
//! (KV bucket `allot_orders`) and each partition's stock (`allot_stock`).
//!
//! One projector per shard follows `events.<shard>` and writes whole values
//! (a re-projected batch writes the same values again: idempotent). Its
//! checkpoint is its state at an EVENTS sequence, saved in the snapshot
//! object store every [`CHECKPOINT_EVERY`] batches; after a restart it
//! resumes from there, so delivery is at least once and views catch up.
//! Views lag the log by moments and may briefly step back while a restarted
//! projector replays; decisions themselves never depend on them.

use std::collections::HashMap;

use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::kv;
use async_nats::jetstream::object_store::{GetErrorKind, ObjectStore};
use async_nats::jetstream::stream::Stream;
use async_nats::jetstream::Context;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{decode_batch, events_subject};
use crate::domain::{Event, OrderId, PartitionKey};
use crate::ports::ShardId;
use crate::wire::{decision_subject, DecisionMessage};

pub const ORDERS_BUCKET: &str = "allot_orders";
pub const STOCK_BUCKET: &str = "allot_stock";
/// Batches between two projector checkpoints.
pub const CHECKPOINT_EVERY: u64 = 200;

/// An order as the views show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    pub id: String,
    pub warehouse: String,
    pub sku: String,
    pub quantity: u32,
    /// The latest decision: queued, reserved, confirmed, rejected, ...
    pub status: String,
    /// Every decision so far, oldest first, with the EVENTS sequence.
    pub history: Vec<(u64, String)>,
}

/// A partition's stock as the views show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockView {
    pub warehouse: String,
    pub sku: String,
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
    /// Orders waiting in the partition's queue.
    #[serde(default)]
    pub queued: i64,
    /// Orders reserved and with a worker (retries included).
    #[serde(default)]
    pub in_flight: i64,
    /// Orders waiting for a restock.
    #[serde(default)]
    pub backordered: i64,
    /// The EVENTS sequence these figures reflect.
    pub as_of: u64,
}

/// Every partition's latest [`StockView`] in this process, by
/// [`stock_key`], kept by the projectors for the HTTP API.
pub type Board = dashmap::DashMap<String, StockView>;

/// Which count of [`StockView`] an order in `status` adds to:
/// `(queued, in_flight, backordered)`.
fn stage(status: &str) -> (i64, i64, i64) {
    match status {
        "queued" => (1, 0, 0),
        "reserved" => (0, 1, 0),
        "backordered" => (0, 0, 1),
        _ => (0, 0, 0),
    }
}

/// The KV key of an order: the id itself when KV allows its characters,
/// else `h.` and its hex.
pub fn order_key(id: &str) -> String {
    let plain = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_=/".contains(&b))
        && !id.starts_with("h.");
    if plain {
        id.to_owned()
    } else {
        format!(
            "h.{}",
            id.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        )
    }
}

pub fn stock_key(p: &PartitionKey) -> String {
    format!("{}.{}", p.warehouse, p.sku)
}

/// What a projector keeps between batches (and checkpoints).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Projection {
    /// Orders not yet finally decided.
    live: HashMap<String, OrderView>,
    stock: HashMap<String, StockView>,
    /// Decisions of the last batch, with their partition, to publish.
    #[serde(skip)]
    decisions: Vec<(PartitionKey, Event)>,
}

/// Creates the view buckets if missing.
pub async fn ensure_view_buckets(
    js: &Context,
    replicas: usize,
) -> Result<(kv::Store, kv::Store), String> {
    let mut stores = Vec::new();
    for (bucket, history) in [(ORDERS_BUCKET, 1), (STOCK_BUCKET, 1)] {
        let store = match js.get_key_value(bucket).await {
            Ok(s) => s,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: bucket.into(),
                    history,
                    storage: async_nats::jetstream::stream::StorageType::File,
                    num_replicas: replicas,
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("KV bucket {bucket}: {e}"))?,
        };
        stores.push(store);
    }
    let stock = stores.pop().expect("two stores");
    let orders = stores.pop().expect("two stores");
    Ok((orders, stock))
}

/// Keeps `view` on the board unless the board already has a later one.
fn update_board(board: &Board, key: &str, view: &StockView) {
    let mut entry = board.entry(key.to_owned()).or_insert_with(|| view.clone());
    if entry.as_of < view.as_of {
        *entry = view.clone();
    }
}

/// Fills the board from the stock view bucket, every partition of every
/// shard, whichever instance projects it, until `stop`.
pub async fn follow_stock(stock: kv::Store, board: std::sync::Arc<Board>, stop: CancellationToken) {
    let mut watch = match stock.watch_all().await {
        Ok(w) => w,
        Err(e) => return warn!(error = %e, "stock views not followed"),
    };
    loop {
        let entry = tokio::select! {
            e = watch.next() => match e {
                Some(Ok(e)) => e,
                Some(Err(e)) => { warn!(error = %e, "stock views: watch error"); continue; }
                None => return,
            },
            () = stop.cancelled() => return,
        };
        if entry.operation != kv::Operation::Put {
            board.remove(&entry.key);
            continue;
        }
        if let Ok(view) = rmp_serde::from_slice::<StockView>(&entry.value) {
            update_board(&board, &entry.key, &view);
        }
    }
}

/// Where a projector writes: the KV views, its checkpoints, and the
/// in-process board.
#[derive(Clone)]
pub struct ViewSinks {
    pub orders: kv::Store,
    pub stock: kv::Store,
    pub checkpoints: ObjectStore,
    pub board: std::sync::Arc<Board>,
}

/// Follows `events.<shard>` and keeps the views, until `stop`. Each
/// decision is also published (at least once) as a `DecisionMessage` on
/// `decisions.<warehouse>.<sku>` for subscribers.
pub async fn project(
    client: async_nats::Client,
    shard: ShardId,
    events: Stream,
    sinks: ViewSinks,
    stop: CancellationToken,
) {
    let ViewSinks {
        orders,
        stock,
        checkpoints,
        board,
    } = sinks;
    let name = format!("views-{shard}");
    let (mut seq, mut state) = load_checkpoint(&checkpoints, &name).await;
    for (key, view) in &state.stock {
        update_board(&board, key, view);
    }
    info!(shard, from = seq, "views projector starting");
    let consumer = match events
        .create_consumer(pull::OrderedConfig {
            filter_subject: events_subject(shard),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: seq + 1,
            },
            ..Default::default()
        })
        .await
    {
        Ok(c) => c,
        Err(e) => return warn!(shard, error = %e, "views projector not started"),
    };
    let Ok(mut messages) = consumer.messages().await else {
        return warn!(shard, "views projector not started: no message stream");
    };
    let mut batches = 0u64;
    loop {
        let message = tokio::select! {
            m = messages.next() => match m {
                Some(Ok(m)) => m,
                Some(Err(e)) => { warn!(shard, error = %e, "views: EVENTS stream error"); continue; }
                None => return,
            },
            () = stop.cancelled() => break,
        };
        let Ok(info) = message.info() else { continue };
        let at = info.stream_sequence;
        let Ok(batch) = decode_batch(&message.payload) else {
            warn!(shard, seq = at, "views: unreadable batch skipped");
            continue;
        };
        let (touched_orders, touched_stock) = state.apply(at, &batch);
        for key in &touched_stock {
            update_board(&board, key, &state.stock[key]);
        }
        let decisions: Vec<_> = state.decisions.drain(..).collect();
        let write = async {
            for (partition, event) in decisions {
                if let Some(d) = DecisionMessage::from_event(&event, &partition) {
                    let _ = client
                        .publish(decision_subject(&partition), d.encode().into())
                        .await;
                }
            }
            let order_puts = touched_orders.iter().filter_map(|view| {
                let bytes = rmp_serde::to_vec_named(view).ok()?;
                Some(orders.put(order_key(&view.id), bytes.into()))
            });
            let stock_puts = touched_stock.iter().filter_map(|key| {
                let bytes = rmp_serde::to_vec_named(&state.stock[key]).ok()?;
                Some(stock.put(key.clone(), bytes.into()))
            });
            let failed = futures::future::join_all(order_puts.chain(stock_puts))
                .await
                .into_iter()
                .filter(Result::is_err)
                .count();
            if failed > 0 {
                warn!(
                    shard,
                    failed,
                    seq = at,
                    "views: values not written; the next checkpoint replay rewrites them"
                );
            }
        };
        // Stopping must not wait out write timeouts against a broker that is
        // going away: unwritten views are rewritten after the checkpoint.
        tokio::select! {
            () = write => {}
            () = stop.cancelled() => return,
        }
        seq = at;
        batches += 1;
        if batches.is_multiple_of(CHECKPOINT_EVERY) {
            save_checkpoint(&checkpoints, &name, seq, &state).await;
        }
    }
    // Best effort: a broker going away must not hold up the stop.
    let save = save_checkpoint(&checkpoints, &name, seq, &state);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), save).await;
}

impl Projection {
    /// Applies a batch; returns the orders and stock keys it changed.
    fn apply(&mut self, seq: u64, batch: &[Event]) -> (Vec<OrderView>, Vec<String>) {
        let mut orders: Vec<OrderView> = Vec::new();
        let mut stock = Vec::new();
        let mut touch_stock = |s: &mut Self, p: &PartitionKey, f: &dyn Fn(&mut StockView)| {
            let key = stock_key(p);
            let view = s.stock.entry(key.clone()).or_insert_with(|| StockView {
                warehouse: p.warehouse.to_string(),
                sku: p.sku.to_string(),
                ..Default::default()
            });
            f(view);
            view.as_of = seq;
            if !stock.contains(&key) {
                stock.push(key);
            }
        };
        for event in batch {
            match event {
                Event::StockSet { partition, on_hand } => {
                    let on_hand = i64::try_from(*on_hand).unwrap_or(i64::MAX);
                    touch_stock(self, partition, &|v| v.available = on_hand - v.reserved);
                }
                Event::StockRestocked { partition, units } => {
                    let units = i64::try_from(*units).unwrap_or(i64::MAX);
                    touch_stock(self, partition, &|v| v.available += units);
                }
                Event::StockAdjusted { partition, delta } => {
                    touch_stock(self, partition, &|v| v.available += delta);
                }
                _ => {}
            }
            let Some(id) = event.order_id() else { continue };
            let (status, line) = describe(event);
            if let Event::OrderQueued { order } = event {
                self.live.insert(
                    id.to_string(),
                    OrderView {
                        id: id.to_string(),
                        warehouse: order.partition.warehouse.to_string(),
                        sku: order.partition.sku.to_string(),
                        quantity: order.quantity.get(),
                        ..Default::default()
                    },
                );
            }
            let Some(view) = self.live.get_mut(id.as_str()) else {
                // Rejected unqueued (invalid) or cancelled after confirmation.
                orders.push(OrderView {
                    id: id.to_string(),
                    status: status.to_owned(),
                    history: vec![(seq, line)],
                    ..Default::default()
                });
                continue;
            };
            let before = stage(&view.status);
            view.status = status.to_owned();
            view.history.push((seq, line));
            let after = stage(status);
            let q = i64::from(view.quantity);
            let partition = PartitionKey::new(
                crate::domain::WarehouseId::new(&view.warehouse).expect("from a valid order"),
                crate::domain::Sku::new(&view.sku).expect("from a valid order"),
            );
            let shift: Option<&dyn Fn(&mut StockView)> = match event {
                Event::OrderReserved { .. } => Some(&|v| {
                    v.available -= q;
                    v.reserved += q;
                }),
                Event::OrderConfirmed { .. } => Some(&|v| {
                    v.reserved -= q;
                    v.sold += q;
                }),
                Event::OrderReleased { .. } | Event::ReservationRevoked { .. } => Some(&|v| {
                    v.reserved -= q;
                    v.available += q;
                }),
                _ => None,
            };
            if let Some(f) = shift {
                touch_stock(self, &partition, f);
            }
            if before != after {
                touch_stock(self, &partition, &|v| {
                    v.queued += after.0 - before.0;
                    v.in_flight += after.1 - before.1;
                    v.backordered += after.2 - before.2;
                });
            }
            self.decisions.push((partition, event.clone()));
            let view = &self.live[id.as_str()];
            orders.retain(|o| o.id != view.id);
            orders.push(view.clone());
            if matches!(
                event,
                Event::OrderRejected { .. } | Event::OrderForwarded { .. }
            ) || matches!(event, Event::OrderConfirmed { .. })
            {
                self.live.remove(id.as_str());
            }
        }
        (orders, stock)
    }
}

fn describe(event: &Event) -> (&'static str, String) {
    match event {
        Event::OrderQueued { order } => ("queued", format!("queued in {}", order.partition)),
        Event::OrderReserved { .. } => ("reserved", "reserved".into()),
        Event::OrderConfirmed { .. } => ("confirmed", "confirmed".into()),
        Event::OrderRetrying {
            attempt, reason, ..
        } => ("reserved", format!("retry {attempt}: {reason}")),
        Event::OrderReleased { reason, .. } => ("released", format!("released: {reason}")),
        Event::OrderRejected { reason, .. } => ("rejected", format!("rejected: {reason}")),
        Event::OrderBackordered { until, .. } => {
            ("backordered", format!("backordered until {} ms", until.0))
        }
        Event::OrderRerouted { to, .. } => ("rerouted", format!("rerouted to {to}")),
        Event::OrderForwarded { .. } => ("rerouted", "handed to the next warehouse".into()),
        Event::OrderCancelRequested { .. } => ("reserved", "cancel requested".into()),
        Event::OrderCancelled { .. } => ("cancelled", "cancelled, units returned".into()),
        Event::ReservationRevoked { .. } => ("queued", "reservation revoked (stock cut)".into()),
        _ => ("", String::new()),
    }
}

async fn load_checkpoint(store: &ObjectStore, name: &str) -> (u64, Projection) {
    let mut object = match store.get(name).await {
        Ok(o) => o,
        Err(e) if e.kind() == GetErrorKind::NotFound => return (0, Projection::default()),
        Err(e) => {
            warn!(error = %e, "views checkpoint unreadable; replaying from the start");
            return (0, Projection::default());
        }
    };
    let mut bytes = Vec::new();
    if object.read_to_end(&mut bytes).await.is_err() || bytes.len() < 8 {
        return (0, Projection::default());
    }
    let seq = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    match rmp_serde::from_slice(&bytes[8..]) {
        Ok(state) => (seq, state),
        Err(_) => (0, Projection::default()),
    }
}

async fn save_checkpoint(store: &ObjectStore, name: &str, seq: u64, state: &Projection) {
    let Ok(body) = rmp_serde::to_vec_named(state) else {
        return;
    };
    let mut data = seq.to_be_bytes().to_vec();
    data.extend_from_slice(&body);
    if let Err(e) = store.put(name, &mut data.as_slice()).await {
        warn!(error = %e, "views checkpoint not saved");
    }
}

/// Reads one order's view.
pub async fn order_view(orders: &kv::Store, id: &OrderId) -> Result<Option<OrderView>, String> {
    let bytes = orders
        .get(order_key(id.as_str()))
        .await
        .map_err(|e| e.to_string())?;
    bytes
        .map(|b| rmp_serde::from_slice(&b).map_err(|e| e.to_string()))
        .transpose()
}

/// Reads one partition's stock view.
pub async fn stock_view(stock: &kv::Store, p: &PartitionKey) -> Result<Option<StockView>, String> {
    let bytes = stock.get(stock_key(p)).await.map_err(|e| e.to_string())?;
    bytes
        .map(|b| rmp_serde::from_slice(&b).map_err(|e| e.to_string()))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Order, Priority, Quantity, RejectReason, Sku, WarehouseId};

    fn key() -> PartitionKey {
        PartitionKey::new(WarehouseId::new("ams").unwrap(), Sku::new("MUG").unwrap())
    }

    fn queued(id: &str, qty: u64) -> Event {
        Event::OrderQueued {
            order: Order {
                id: OrderId::new(id).unwrap(),
                partition: key(),
                quantity: Quantity::new(qty, 10).unwrap(),
                region: None,
                priority: Priority(0),
                fallbacks: Vec::new(),
            },
        }
    }

    #[test]
    fn order_keys_are_valid_kv_keys_and_distinct() {
        assert_eq!(order_key("order-17"), "order-17");
        assert_eq!(order_key("a:b"), "h.613a62");
        assert_eq!(
            order_key("h.1"),
            "h.682e31",
            "the escape prefix is escaped too"
        );
        assert_ne!(order_key("a.b"), order_key("a_b"));
    }

    #[test]
    fn a_batch_projects_order_history_and_stock() {
        let mut p = Projection::default();
        let id = |s: &str| OrderId::new(s).unwrap();
        let batch = vec![
            Event::StockSet {
                partition: key(),
                on_hand: 5,
            },
            queued("a", 2),
            Event::OrderReserved { id: id("a") },
            queued("b", 4),
            Event::OrderRejected {
                id: id("b"),
                reason: RejectReason::OutOfStock,
                partition: None,
            },
        ];
        let (orders, stock) = p.apply(7, &batch);
        assert_eq!(stock, [stock_key(&key())]);
        let s = &p.stock[&stock_key(&key())];
        assert_eq!((s.available, s.reserved, s.sold, s.as_of), (3, 2, 0, 7));
        assert_eq!((s.queued, s.in_flight, s.backordered), (0, 1, 0));
        let a = orders.iter().find(|o| o.id == "a").unwrap();
        assert_eq!(a.status, "reserved");
        assert_eq!(a.history.len(), 2);
        let b = orders.iter().find(|o| o.id == "b").unwrap();
        assert_eq!(b.status, "rejected");
        assert!(
            !p.live.contains_key("b"),
            "decided orders leave the projector's memory"
        );
        let (_, _) = p.apply(8, &[Event::OrderConfirmed { id: id("a") }]);
        let s = &p.stock[&stock_key(&key())];
        assert_eq!((s.available, s.reserved, s.sold), (3, 0, 2));
        assert_eq!((s.queued, s.in_flight, s.backordered), (0, 0, 0));
        assert!(p.live.is_empty());
    }
}
