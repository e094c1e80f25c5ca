//! `POST /v1/commands`: a batch of orders, cancels and stock changes, which
//! may nest, carried out in order, with one result per command in the same
//! order (a nested batch answers with a nested list). One bad command gets
//! its own error; the others still run. The body as a whole is refused
//! (400) only when it is not a list of commands, holds more than
//! `limits.max_batch_size` commands in all, or nests deeper than
//! [`Command::MAX_NESTING`].
//!
//! ```json
//! {"commands": [
//!   {"set_stock": {"warehouse": "ams", "sku": "MUG", "on_hand": 10}},
//!   {"place_order": {"v": 1, "id": "o-1", "sku": "MUG", "quantity": 1}},
//!   {"batch": [{"cancel_order": {"id": "o-0"}}]}
//! ]}
//! ```

use std::num::NonZeroU64;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::stock::{file_stock, partition};
use super::{body, orders, ApiError, Shared};
use crate::domain::Command;

/// Deepest nesting of batches.
const MAX_NESTING: usize = Command::MAX_NESTING;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    commands: Vec<Value>,
}

/// One command, as written in a batch ([`parse_command`]).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchItem {
    /// An order as `POST /v1/orders` takes it.
    PlaceOrder(Value),
    CancelOrder {
        id: String,
    },
    SetStock {
        warehouse: String,
        sku: String,
        on_hand: u64,
        #[serde(default)]
        key: Option<String>,
        /// Apply only if the stock is still at this version.
        #[serde(default)]
        expected_version: Option<u64>,
    },
    Restock {
        warehouse: String,
        sku: String,
        units: NonZeroU64,
        #[serde(default)]
        key: Option<String>,
    },
    AdjustStock {
        warehouse: String,
        sku: String,
        delta: i64,
        #[serde(default)]
        key: Option<String>,
    },
    Batch(Vec<Value>),
}

/// The result of one command: its HTTP-style status and the body a
/// single request would have had, or a nested list for a batch.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Outcome {
    Done { status: u16, ok: bool, body: Value },
    Batch { status: u16, batch: Vec<Outcome> },
}

#[derive(Debug, Serialize)]
pub struct Results {
    results: Vec<Outcome>,
}

pub async fn run(
    State(api): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Results>, ApiError> {
    let bytes = body::json_bytes(&headers, body, api.max_body_bytes).await?;
    let commands = parse_batch(&bytes, api.max_batch_size)?;
    Ok(Json(Results {
        results: run_all(&api, commands).await,
    }))
}

/// Parses a `POST /v1/commands` body into its top-level commands, not yet
/// read one by one ([`parse_command`] does that, so one bad command does
/// not refuse the others). Refuses a body that is not `{"commands": [...]}`,
/// holds more than `max_batch_size` commands in all or nests deeper than
/// [`Command::MAX_NESTING`]. Pure: no I/O, so the fuzz target `http_bodies` runs it.
pub fn parse_batch(bytes: &[u8], max_batch_size: usize) -> Result<Vec<Value>, ApiError> {
    let request: Request = body::parse(bytes)?;
    let count = count(&request.commands, 1)?;
    if count > max_batch_size {
        return Err(ApiError::field(
            "commands",
            format!(
                "{count} commands in all, more than the {max_batch_size} allowed (limits.max_batch_size)"
            ),
        ));
    }
    Ok(request.commands)
}

/// Reads command number `index` of a batch; the error names it.
pub fn parse_command(index: usize, item: Value) -> Result<BatchItem, ApiError> {
    serde_json::from_value(item).map_err(|e| {
        ApiError::field(
            &format!("commands[{index}]"),
            format!("{e}; expected one of place_order, cancel_order, set_stock, restock, adjust_stock, batch"),
        )
    })
}

/// Commands in `items`, nested ones included; refuses nesting deeper than
/// [`Command::MAX_NESTING`].
fn count(items: &[Value], depth: usize) -> Result<usize, ApiError> {
    if depth > MAX_NESTING {
        return Err(ApiError::field(
            "commands",
            format!("batches nest deeper than {MAX_NESTING} levels"),
        ));
    }
    let mut n = 0;
    for item in items {
        n += 1;
        if let Some(inner) = item.get("batch").and_then(Value::as_array) {
            n += count(inner, depth + 1)?;
        }
    }
    Ok(n)
}

fn run_all(api: &Shared, items: Vec<Value>) -> BoxFuture<'_, Vec<Outcome>> {
    async move {
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            out.push(run_one(api, i, item).await);
        }
        out
    }
    .boxed()
}

async fn run_one(api: &Shared, index: usize, item: Value) -> Outcome {
    let item = match parse_command(index, item) {
        Ok(item) => item,
        Err(e) => return failed(e),
    };
    let done = match item {
        BatchItem::Batch(inner) => {
            return Outcome::Batch {
                status: 200,
                batch: run_all(api, inner).await,
            }
        }
        BatchItem::PlaceOrder(order) => {
            let bytes = serde_json::to_vec(&order).unwrap_or_default();
            orders::place(api, &bytes)
                .await
                .map(|(status, accepted)| (status.as_u16(), to_value(accepted)))
        }
        BatchItem::CancelOrder { id } => orders::cancel_order(api, &id)
            .await
            .map(|c| (202, to_value(c))),
        BatchItem::SetStock {
            warehouse,
            sku,
            on_hand,
            key,
            expected_version,
        } => {
            stock(api, &warehouse, &sku, key, |partition| Command::SetStock {
                partition,
                on_hand,
                expected_version,
            })
            .await
        }
        BatchItem::Restock {
            warehouse,
            sku,
            units,
            key,
        } => {
            stock(api, &warehouse, &sku, key, |partition| Command::Restock {
                partition,
                units,
            })
            .await
        }
        BatchItem::AdjustStock {
            warehouse,
            sku,
            delta,
            key,
        } => {
            stock(api, &warehouse, &sku, key, |partition| {
                Command::AdjustStock { partition, delta }
            })
            .await
        }
    };
    match done {
        Ok((status, body)) => Outcome::Done {
            status,
            ok: true,
            body,
        },
        Err(e) => failed(e),
    }
}

async fn stock(
    api: &Shared,
    warehouse: &str,
    sku: &str,
    key: Option<String>,
    make: impl FnOnce(crate::domain::PartitionKey) -> Command,
) -> Result<(u16, Value), ApiError> {
    let p = partition(warehouse, sku)?;
    let change = file_stock(api, key, make(p)).await?;
    Ok((202, to_value(change)))
}

fn failed(e: ApiError) -> Outcome {
    Outcome::Done {
        status: e.status.as_u16(),
        ok: false,
        body: to_value(e),
    }
}

fn to_value(v: impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_parses_into_its_top_level_commands() {
        let body = br#"{"commands":[{"cancel_order":{"id":"o-1"}},{"batch":[{"cancel_order":{"id":"o-2"}}]}]}"#;
        let commands = parse_batch(body, 3).expect("a valid batch");
        assert_eq!(commands.len(), 2);
        let second = parse_command(1, commands[1].clone()).expect("a batch item");
        assert!(matches!(second, BatchItem::Batch(ref inner) if inner.len() == 1));
    }

    #[test]
    fn nested_commands_count_against_the_batch_size() {
        let body = br#"{"commands":[{"cancel_order":{"id":"o-1"}},{"batch":[{"cancel_order":{"id":"o-2"}}]}]}"#;
        let e = parse_batch(body, 2).expect_err("3 commands in all");
        assert!(e.message.contains("3 commands in all"), "{}", e.message);
    }

    #[test]
    fn batches_nested_too_deep_are_refused() {
        let mut body = String::from(r#"{"cancel_order":{"id":"o"}}"#);
        for _ in 0..MAX_NESTING {
            body = format!(r#"{{"batch":[{body}]}}"#);
        }
        let body = format!(r#"{{"commands":[{body}]}}"#);
        let e = parse_batch(body.as_bytes(), 1000).expect_err("too deep");
        assert!(e.message.contains("nest deeper"), "{}", e.message);
    }

    #[test]
    fn a_bad_command_is_named_by_its_index() {
        let e = parse_command(4, serde_json::json!({"sell": {}})).expect_err("unknown command");
        assert!(e.message.contains("commands[4]"), "{}", e.message);
    }
}
