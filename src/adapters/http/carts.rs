//! Carts over HTTP: `POST /v1/orders` with a version-2 body (routed here
//! from `orders.rs`), `POST /v1/orders/{id}/confirm`, and a cart's
//! `GET` and `DELETE /v1/orders/{id}`.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::orders::href;
use super::{ApiError, Shared};
use crate::domain::OrderId;
use crate::views::CartStatus;
use crate::wire::cart::CartOp;

/// The answer to a filed (or already known) cart.
#[derive(Debug, Serialize)]
pub struct CartAccepted {
    pub id: String,
    pub kind: &'static str,
    /// The shard that coordinates it (when filed now).
    pub shard: Option<u32>,
    /// `accepted` when filed now; else the existing cart's status.
    pub status: String,
    pub duplicate: bool,
    /// Each line's id, warehouse and SKU, in line order.
    pub lines: Vec<LineRouted>,
    pub href: String,
}

#[derive(Debug, Serialize)]
pub struct LineRouted {
    pub id: String,
    pub warehouse: String,
    pub sku: String,
}

/// A confirm or cancel of a cart, filed for its coordinator.
#[derive(Debug, Serialize)]
pub struct CartCommandFiled {
    pub id: String,
    /// `confirm_requested` or `cancel_requested`.
    pub status: &'static str,
    pub shard: u32,
    pub href: String,
}

/// Files a cart: 202 when filed, 200 with the cart when its id is known.
pub(super) async fn create(api: &Shared, bytes: &[u8]) -> Result<Response, ApiError> {
    let cart = api.ingress.validate_cart_json(bytes)?;
    let (status, body) = match api.views.cart(&cart.id) {
        Some(known) => (
            StatusCode::OK,
            CartAccepted {
                href: href(&known.id),
                id: known.id,
                kind: "cart",
                shard: None,
                status: known.status.into(),
                duplicate: true,
                lines: known
                    .lines
                    .into_iter()
                    .map(|l| LineRouted {
                        id: l.id,
                        warehouse: l.warehouse,
                        sku: l.sku,
                    })
                    .collect(),
            },
        ),
        None => {
            let placed = api.ingress.place_cart(cart).await.map_err(|(_, e)| e)?;
            let id = placed.id.to_string();
            let duplicate = placed.filed.duplicate;
            (
                if duplicate {
                    StatusCode::OK
                } else {
                    StatusCode::ACCEPTED
                },
                CartAccepted {
                    href: href(&id),
                    lines: placed
                        .lines
                        .into_iter()
                        .enumerate()
                        .map(|(i, (warehouse, sku))| LineRouted {
                            id: format!("{id}#{i}"),
                            warehouse,
                            sku,
                        })
                        .collect(),
                    id,
                    kind: "cart",
                    shard: Some(placed.shard),
                    status: if duplicate { "pending" } else { "accepted" }.into(),
                    duplicate,
                },
            )
        }
    };
    let location = body.href.clone();
    let mut response = (status, Json(body)).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

fn cart_of(api: &Shared, id: &str) -> Result<(OrderId, CartStatus), ApiError> {
    let id = OrderId::new(id).map_err(|e| ApiError::field("id", e.to_string()))?;
    match api.views.cart(&id) {
        Some(cart) => Ok((id, cart)),
        None => Err(ApiError::not_found(format!(
            "cart {id} is unknown here: never submitted, or not in the views yet (they lag decisions by moments)"
        ))),
    }
}

fn conflict(message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "conflict", message)
}

/// `POST /v1/orders/{id}/confirm`: payment captured, a held cart goes to
/// its workers. 202: its coordinator decides (a confirm that arrives as
/// the hold expires is refused there, and the cart shows `hold_expired`).
pub async fn confirm(
    State(api): State<Shared>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CartCommandFiled>), ApiError> {
    let (id, cart) = cart_of(&api, &id)?;
    if cart.is_final {
        return Err(conflict(format!(
            "cart {id} is already {}; nothing to confirm",
            cart.status
        )));
    }
    if cart.held_until_ms.is_none() && cart.status != "reserving" {
        return Err(conflict(format!(
            "cart {id} is {}, not held; nothing to confirm",
            cart.status
        )));
    }
    let key = command_key("confirm", &id);
    let shard = api.ingress.cart_command(&id, CartOp::Confirm, &key).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CartCommandFiled {
            href: href(id.as_str()),
            id: id.to_string(),
            status: "confirm_requested",
            shard,
        }),
    ))
}

/// A cart's `DELETE /v1/orders/{id}`: every line is released. Refused
/// once its warehouses began enacting it, or once it is final.
pub(super) async fn cancel(
    api: &Shared,
    id: &OrderId,
    cart: CartStatus,
) -> Result<CartCommandFiled, ApiError> {
    if cart.is_final || cart.status == "enacting" {
        return Err(conflict(format!(
            "cart {id} is {}; it can no longer be cancelled",
            cart.status
        )));
    }
    let key = command_key("cancel", id);
    let shard = api.ingress.cart_command(id, CartOp::Cancel, &key).await?;
    Ok(CartCommandFiled {
        href: href(id.as_str()),
        id: id.to_string(),
        status: "cancel_requested",
        shard,
    })
}

/// One key per cart and command: asking twice files one command.
fn command_key(what: &str, id: &OrderId) -> String {
    let key = format!("{what}-{id}");
    if key.len() <= 64 {
        return key;
    }
    let hash = id.as_str().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{what}-{hash:016x}")
}
