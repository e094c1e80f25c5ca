//! Stock per partition (`/v1/stock/{warehouse}/{sku}`: read, set, restock,
//! adjust) and the partitions overview (`/v1/partitions`). Reads come from
//! the views (as of the EVENTS sequence in `as_of`); changes travel to the
//! partition's shard as keyed commands, like orders.

use std::num::NonZeroU64;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::{body, ApiError, Shared};
use crate::domain::{Command, PartitionKey, Sku, WarehouseId};
use crate::ingress::FiledCommand;
use crate::views::StockView;

/// The largest stock-change body; they are a few fields.
const STOCK_BODY_LIMIT: usize = 4096;
/// Header carrying the client's idempotency key for a stock change.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

pub(super) fn partition(warehouse: &str, sku: &str) -> Result<PartitionKey, ApiError> {
    let w = WarehouseId::new(warehouse).map_err(|e| ApiError::field("warehouse", e.to_string()))?;
    let s = Sku::new(sku).map_err(|e| ApiError::field("sku", e.to_string()))?;
    Ok(PartitionKey::new(w, s))
}

pub async fn show(
    State(api): State<Shared>,
    Path((warehouse, sku)): Path<(String, String)>,
) -> Result<([(header::HeaderName, String); 1], Json<StockView>), ApiError> {
    let p = partition(&warehouse, &sku)?;
    let view = api
        .views
        .stock(&p)
        .ok_or_else(|| ApiError::not_found(format!("{p}: no stock recorded")))?;
    Ok((
        [(header::ETAG, format!("\"{}\"", view.version))],
        Json(view),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBody {
    /// Units on hand (free plus reserved).
    pub on_hand: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestockBody {
    /// Units to add, at least 1.
    pub units: NonZeroU64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustBody {
    /// Units to add (positive) or remove (negative).
    pub delta: i64,
}

/// The answer to a stock change: filed on the shard, applied in order.
#[derive(Debug, Serialize)]
pub struct StockChange {
    pub warehouse: String,
    pub sku: String,
    pub command: &'static str,
    #[serde(flatten)]
    pub filed: FiledCommand,
}

/// Sets on-hand stock. With `If-Match: "<version>"` (the `ETag` of a
/// read), only if the stock is still at that version: 412 at once when the
/// views already show another, and the shard refuses it (nothing changes,
/// a `command_refused` is on the record) if another change got in first.
/// Without, unconditionally.
pub async fn set(
    State(api): State<Shared>,
    Path((w, s)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<StockChange>), ApiError> {
    let expected = if_match(&headers)?;
    if let Some(expected) = expected {
        let p = partition(&w, &s)?;
        let actual = api.views.stock(&p).map_or(0, |v| v.version);
        if actual != expected {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "stale_version",
                format!(
                    "{p}: stock is at version {actual}, If-Match names {expected}; read it again"
                ),
            ));
        }
    }
    change(&api, &w, &s, &headers, body, |p, b: SetBody| {
        Command::SetStock {
            partition: p,
            on_hand: b.on_hand,
            expected_version: expected,
        }
    })
    .await
}

/// The version `If-Match: "<n>"` names (`W/"<n>"` too; `*` means any).
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::field("If-Match", "is not visible ASCII"))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let tag = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    tag.parse().map(Some).map_err(|_| {
        ApiError::field(
            "If-Match",
            format!("{text:?} is not a stock version; send the ETag of GET /v1/stock/..."),
        )
    })
}

pub async fn restock(
    State(api): State<Shared>,
    Path((w, s)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<StockChange>), ApiError> {
    change(&api, &w, &s, &headers, body, |p, b: RestockBody| {
        Command::Restock {
            partition: p,
            units: b.units,
        }
    })
    .await
}

pub async fn adjust(
    State(api): State<Shared>,
    Path((w, s)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<StockChange>), ApiError> {
    change(&api, &w, &s, &headers, body, |p, b: AdjustBody| {
        Command::AdjustStock {
            partition: p,
            delta: b.delta,
        }
    })
    .await
}

async fn change<B: serde::de::DeserializeOwned>(
    api: &Shared,
    warehouse: &str,
    sku: &str,
    headers: &HeaderMap,
    body: Body,
    make: impl FnOnce(PartitionKey, B) -> Command,
) -> Result<(StatusCode, Json<StockChange>), ApiError> {
    let p = partition(warehouse, sku)?;
    let parsed: B = body::json(headers, body, STOCK_BODY_LIMIT).await?;
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()
        .map_err(|_| ApiError::field(IDEMPOTENCY_KEY, "is not visible ASCII"))?;
    let change = file_stock(api, key, make(p, parsed)).await?;
    Ok((StatusCode::ACCEPTED, Json(change)))
}

/// Files a stock command under `key` (a fresh random key when none).
pub(super) async fn file_stock(
    api: &Shared,
    key: Option<String>,
    command: Command,
) -> Result<StockChange, ApiError> {
    let (label, p) = match &command {
        Command::SetStock { partition, .. } => ("set_stock", partition.clone()),
        Command::Restock { partition, .. } => ("restock", partition.clone()),
        Command::AdjustStock { partition, .. } => ("adjust_stock", partition.clone()),
        _ => unreachable!("file_stock is only given stock commands"),
    };
    let key = key.unwrap_or_else(|| format!("stock-{:016x}", rand::random::<u64>()));
    if let Err(e) = crate::domain::OrderId::new(&key) {
        return Err(ApiError::field(IDEMPOTENCY_KEY, e.to_string()));
    }
    let filed = api.ingress.command(&key, command).await?;
    Ok(StockChange {
        warehouse: p.warehouse.to_string(),
        sku: p.sku.to_string(),
        command: label,
        filed,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionsQuery {
    /// Only this warehouse's partitions.
    pub warehouse: Option<String>,
    /// How many busiest partitions to list (default 10).
    pub top: Option<usize>,
    /// Most partitions to list (default 1000).
    pub limit: Option<usize>,
}

/// The partitions overview.
#[derive(Debug, Serialize)]
pub struct Partitions {
    /// Partitions matching the filter.
    pub count: usize,
    /// Sums over the matching partitions.
    pub totals: Totals,
    /// The `top` partitions with the most orders queued or in flight.
    pub busiest: Vec<StockView>,
    /// Matching partitions by warehouse and SKU, at most `limit`.
    pub partitions: Vec<StockView>,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
    pub queued: i64,
    pub in_flight: i64,
    pub backordered: i64,
}

const MAX_LIST: usize = 10_000;

pub async fn partitions(
    State(api): State<Shared>,
    query: Result<Query<PartitionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Partitions>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::field("query", e.body_text()))?;
    if let Some(w) = &q.warehouse {
        WarehouseId::new(w).map_err(|e| ApiError::field("warehouse", e.to_string()))?;
    }
    let (top, limit) = (q.top.unwrap_or(10), q.limit.unwrap_or(1000));
    if top > MAX_LIST || limit > MAX_LIST {
        return Err(ApiError::field(
            "top",
            format!("top and limit go up to {MAX_LIST}"),
        ));
    }
    let mut all: Vec<StockView> = api
        .views
        .partitions()
        .into_iter()
        .filter(|v| q.warehouse.as_deref().is_none_or(|w| v.warehouse == w))
        .collect();
    let mut totals = Totals::default();
    for v in &all {
        totals.available += v.available;
        totals.reserved += v.reserved;
        totals.sold += v.sold;
        totals.queued += v.queued;
        totals.in_flight += v.in_flight;
        totals.backordered += v.backordered;
    }
    all.sort_by(|a, b| (&a.warehouse, &a.sku).cmp(&(&b.warehouse, &b.sku)));
    let mut busiest = all.clone();
    busiest.sort_by_key(|v| std::cmp::Reverse(v.queued + v.in_flight + v.backordered));
    busiest.truncate(top);
    let count = all.len();
    all.truncate(limit);
    Ok(Json(Partitions {
        count,
        totals,
        busiest,
        partitions: all,
    }))
}
