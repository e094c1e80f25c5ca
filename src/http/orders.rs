//! `POST /v1/orders`, `GET /v1/orders/{id}`, `DELETE /v1/orders/{id}`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::{body, ApiError, Shared};
use crate::adapters::nats::views::{order_view, OrderView};
use crate::adapters::nats::{file_command, file_order, SubmitReply};
use crate::domain::{Command, OrderId, PartitionKey, Sku, WarehouseId};
use crate::telemetry::Received;
use crate::wire::decode_order_json;

/// The answer to a filed (or already known) order.
#[derive(Debug, Serialize)]
pub struct Accepted {
    pub id: String,
    pub warehouse: String,
    pub sku: String,
    pub shard: Option<u32>,
    /// `accepted` when filed now; else the existing order's status
    /// (`pending` while its first decision is on the way).
    pub status: String,
    /// True when the id was known: this request changed nothing.
    pub duplicate: bool,
    /// Where to follow the order.
    pub href: String,
}

/// An order's status and history, as `GET /v1/orders/{id}` shows it.
#[derive(Debug, Serialize)]
pub struct OrderStatus {
    pub id: String,
    pub warehouse: String,
    pub sku: String,
    pub quantity: u32,
    pub status: String,
    /// No later decision will change it (confirmed, rejected, cancelled).
    #[serde(rename = "final")]
    pub is_final: bool,
    pub history: Vec<HistoryLine>,
}

#[derive(Debug, Serialize)]
pub struct HistoryLine {
    /// The EVENTS sequence of the decision.
    pub seq: u64,
    pub what: String,
}

impl From<OrderView> for OrderStatus {
    fn from(v: OrderView) -> Self {
        Self {
            is_final: matches!(v.status.as_str(), "confirmed" | "rejected" | "cancelled"),
            id: v.id,
            warehouse: v.warehouse,
            sku: v.sku,
            quantity: v.quantity,
            status: v.status,
            history: v
                .history
                .into_iter()
                .map(|(seq, what)| HistoryLine { seq, what })
                .collect(),
        }
    }
}

pub(super) fn href(id: &str) -> String {
    format!("/v1/orders/{id}")
}

/// Validates, routes and files one order: 202 when filed, 200 with the
/// existing order when its id is already known.
pub async fn create(State(api): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let bytes = match body::json_bytes(&headers, body, api.limits.max_payload_bytes).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match place(&api, &bytes).await {
        Ok((status, accepted)) => {
            let location = accepted.href.clone();
            let mut response = (status, Json(accepted)).into_response();
            if let Ok(v) = header::HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            response
        }
        Err(e) => e.into_response(),
    }
}

/// One order from JSON bytes: shared by `POST /v1/orders` and batches.
pub(super) async fn place(api: &Shared, bytes: &[u8]) -> Result<(StatusCode, Accepted), ApiError> {
    let order = decode_order_json(bytes, &api.limits).map_err(|e| {
        api.ingress.received(Received::Invalid);
        ApiError::invalid(SubmitReply::invalid(&e).errors)
    })?;
    // An id the views know is an order that exists: answer with it.
    if let Ok(Some(view)) = order_view(&api.orders_view, &order.id).await {
        return Ok((
            StatusCode::OK,
            Accepted {
                href: href(&view.id),
                id: view.id,
                warehouse: view.warehouse,
                sku: view.sku,
                shard: None,
                status: view.status,
                duplicate: true,
            },
        ));
    }
    let (reply, received) = file_order(&api.js, &api.router, order).await;
    api.ingress.received(received);
    if !reply.accepted {
        let broker = reply.errors.iter().any(|e| e.field == "broker");
        return Err(if broker {
            ApiError::unavailable(reply.errors[0].why.clone())
        } else {
            ApiError::invalid(reply.errors)
        });
    }
    let id = reply.id.unwrap_or_default();
    let status = if reply.duplicate {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((
        status,
        Accepted {
            href: href(&id),
            id,
            warehouse: reply.warehouse.unwrap_or_default(),
            sku: reply.sku.unwrap_or_default(),
            shard: reply.shard,
            status: if reply.duplicate {
                "pending"
            } else {
                "accepted"
            }
            .into(),
            duplicate: reply.duplicate,
        },
    ))
}

fn order_id(id: &str) -> Result<OrderId, ApiError> {
    OrderId::new(id).map_err(|e| ApiError::field("id", e.to_string()))
}

async fn lookup(api: &Shared, id: &OrderId) -> Result<OrderView, ApiError> {
    match order_view(&api.orders_view, id).await {
        Ok(Some(view)) => Ok(view),
        Ok(None) => Err(ApiError::not_found(format!(
            "order {id} is unknown (never submitted, or not decided yet)"
        ))),
        Err(e) => Err(ApiError::unavailable(format!("reading the views: {e}"))),
    }
}

pub async fn show(State(api): State<Shared>, Path(id): Path<String>) -> Response {
    let found = async { lookup(&api, &order_id(&id)?).await };
    match found.await {
        Ok(view) => Json(OrderStatus::from(view)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Asks the order's shard to cancel it; 202, since the shard decides (a
/// reserved order is settled when its worker answers).
pub async fn cancel(State(api): State<Shared>, Path(id): Path<String>) -> Response {
    match cancel_order(&api, &id).await {
        Ok(body) => (StatusCode::ACCEPTED, Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Serialize)]
pub struct CancelRequested {
    pub id: String,
    pub status: &'static str,
    pub shard: u32,
    pub href: String,
}

pub(super) async fn cancel_order(api: &Shared, id: &str) -> Result<CancelRequested, ApiError> {
    let id = order_id(id)?;
    let view = lookup(api, &id).await?;
    if matches!(view.status.as_str(), "rejected" | "cancelled") {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("order {id} is already {}; nothing to cancel", view.status),
        ));
    }
    let partition = PartitionKey::new(
        WarehouseId::new(&view.warehouse).map_err(|e| ApiError::unavailable(e.to_string()))?,
        Sku::new(&view.sku).map_err(|e| ApiError::unavailable(e.to_string()))?,
    );
    // One key per order: cancelling twice files one command.
    let key = format!("cancel-{}", view.id);
    let key = if key.len() <= 64 {
        key
    } else {
        format!("cancel-{:016x}", fnv(view.id.as_bytes()))
    };
    let command = Command::CancelOrder {
        id: id.clone(),
        partition,
    };
    let filed = file_command(&api.js, &api.router, &key, command)
        .await
        .map_err(|e| ApiError::unavailable(format!("cancel not filed, retry: {e}")))?;
    Ok(CancelRequested {
        href: href(id.as_str()),
        id: id.to_string(),
        status: "cancel_requested",
        shard: filed.shard,
    })
}

/// FNV-1a, to shorten a key that would pass the id length limit.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
