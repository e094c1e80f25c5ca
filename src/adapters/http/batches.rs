//! `POST /v1/order-batches`: many orders in one request,
//! `{"orders": [<order>, ...]}` (each the body `POST /v1/orders` takes, at
//! most `limits.max_batch_size`). Each order is validated, deduplicated and
//! decided on its own; the valid ones are filed one message per shard, so
//! one broker write covers many orders. The answer lists one result per
//! order, in order, each with the status and body a single `POST
//! /v1/orders` would have had.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::orders::{href, Accepted};
use super::{body, ApiError, Shared};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    orders: Vec<Value>,
}

/// One order's result.
#[derive(Debug, Serialize)]
pub struct Item {
    pub status: u16,
    pub ok: bool,
    pub body: Value,
}

#[derive(Debug, Serialize)]
pub struct Results {
    pub results: Vec<Item>,
}

fn item(status: StatusCode, body: impl Serialize) -> Item {
    Item {
        status: status.as_u16(),
        ok: status.is_success(),
        body: serde_json::to_value(body).unwrap_or(Value::Null),
    }
}

pub async fn create(
    State(api): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Results>, ApiError> {
    let bytes = body::json_bytes(&headers, body, api.max_body_bytes).await?;
    let request: Request = body::parse(&bytes)?;
    let max = api.ingress.limits().max_batch_orders;
    if request.orders.is_empty() {
        return Err(ApiError::field("orders", "holds no orders".to_owned()));
    }
    if request.orders.len() > max {
        return Err(ApiError::field(
            "orders",
            format!(
                "{} orders, more than the {max} allowed (limits.max_batch_size)",
                request.orders.len()
            ),
        ));
    }
    let mut results: Vec<Option<Item>> = (0..request.orders.len()).map(|_| None).collect();
    let mut valid = Vec::new();
    for (i, order) in request.orders.into_iter().enumerate() {
        let bytes = serde_json::to_vec(&order).unwrap_or_default();
        match api.ingress.validate_json(&bytes) {
            Err(e) => results[i] = Some(item(StatusCode::BAD_REQUEST, ApiError::from(e))),
            Ok(order) => match api.views.order(&order.id) {
                // An id the views know is an order that exists.
                Some(view) => {
                    results[i] = Some(item(
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
                    ))
                }
                None => valid.push((i, order)),
            },
        }
    }
    let (at, orders): (Vec<usize>, Vec<_>) = valid.into_iter().unzip();
    for (i, placed) in at.into_iter().zip(api.ingress.place_many(orders).await) {
        results[i] = Some(match placed {
            Ok(p) => {
                let status = if p.filed.duplicate {
                    StatusCode::OK
                } else {
                    StatusCode::ACCEPTED
                };
                let id = p.id.to_string();
                item(
                    status,
                    Accepted {
                        href: href(&id),
                        id,
                        warehouse: p.partition.warehouse.to_string(),
                        sku: p.partition.sku.to_string(),
                        shard: Some(p.shard),
                        status: if p.filed.duplicate {
                            "pending"
                        } else {
                            "accepted"
                        }
                        .into(),
                        duplicate: p.filed.duplicate,
                    },
                )
            }
            Err((_, e)) => {
                let e = ApiError::from(e);
                item(e.status, e)
            }
        });
    }
    Ok(Json(Results {
        results: results
            .into_iter()
            .map(|r| r.expect("every order answered"))
            .collect(),
    }))
}
