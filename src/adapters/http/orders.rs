//! `POST /v1/orders`, `GET /v1/orders/{id}`, `DELETE /v1/orders/{id}`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::{body, ApiError, Shared};
use crate::domain::{Command, OrderId};
use crate::views::OrderStatus;

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

pub(super) fn href(id: &str) -> String {
    format!("/v1/orders/{id}")
}

/// Validates, routes and files one order: 202 when filed, 200 with the
/// existing order when its id is already known.
pub async fn create(
    State(api): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = body::json_bytes(&headers, body, api.ingress.limits().max_payload_bytes).await?;
    if crate::wire::cart::is_cart(&bytes, true) {
        return super::carts::create(&api, &bytes).await;
    }
    let (status, accepted) = place(&api, &bytes).await?;
    let location = accepted.href.clone();
    let mut response = (status, Json(accepted)).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// One order from JSON bytes: shared by `POST /v1/orders` and batches.
pub(super) async fn place(api: &Shared, bytes: &[u8]) -> Result<(StatusCode, Accepted), ApiError> {
    let order = api.ingress.validate_json(bytes)?;
    // An id the views know is an order that exists: answer with it.
    if let Some(view) = api.views.order(&order.id) {
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
    let placed = api.ingress.place(order).await.map_err(|(_, e)| e)?;
    let id = placed.id.to_string();
    let duplicate = placed.filed.duplicate;
    Ok((
        if duplicate {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        },
        Accepted {
            href: href(&id),
            id,
            warehouse: placed.partition.warehouse.to_string(),
            sku: placed.partition.sku.to_string(),
            shard: Some(placed.shard),
            status: if duplicate { "pending" } else { "accepted" }.into(),
            duplicate,
        },
    ))
}

fn order_id(id: &str) -> Result<OrderId, ApiError> {
    OrderId::new(id).map_err(|e| ApiError::field("id", e.to_string()))
}

fn lookup(api: &Shared, id: &OrderId) -> Result<OrderStatus, ApiError> {
    api.views
        .order(id)
        .ok_or_else(|| ApiError::not_found(crate::views::unknown_order(id)))
}

/// An order's status and history, or a cart's (`"kind": "cart"`).
pub async fn show(State(api): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = order_id(&id)?;
    if let Some(cart) = api.views.cart(&id) {
        return Ok(Json(cart).into_response());
    }
    Ok(Json(lookup(&api, &id)?).into_response())
}

/// Asks the order's shard to cancel it; 202, since the shard decides (a
/// reserved order is settled when its worker answers).
pub async fn cancel(
    State(api): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let order = order_id(&id)?;
    if let Some(cart) = api.views.cart(&order) {
        let filed = super::carts::cancel(&api, &order, cart).await?;
        return Ok((StatusCode::ACCEPTED, Json(filed)).into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(cancel_order(&api, &id).await?)).into_response())
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
    let view = lookup(api, &id)?;
    if matches!(view.status.as_str(), "rejected" | "cancelled") {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("order {id} is already {}; nothing to cancel", view.status),
        ));
    }
    let partition = super::stock::partition(&view.warehouse, &view.sku)?;
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
    let filed = api.ingress.command(&key, command).await?;
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
