//! Reads over NATS, for the `allot` command: any running instance answers
//! requests on `allot.views.order` (body: an order id) and
//! `allot.views.stock` (body: `<warehouse>.<sku>`) from its views, as the
//! JSON `GET /v1/orders/{id}` and `GET /v1/stock/{warehouse}/{sku}` give;
//! an unknown one answers `{"error": "not_found", "message": ...}`.
//! Instances share the subjects as a queue group.

use std::sync::Arc;

use async_nats::Client;
use futures::StreamExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::domain::{OrderId, PartitionKey, Sku, WarehouseId};
use crate::views::Views;

pub const ORDER_SUBJECT: &str = "allot.views.order";
pub const STOCK_SUBJECT: &str = "allot.views.stock";

/// Answers view requests until `stop`.
pub async fn serve_reads(
    client: Client,
    views: Arc<Views>,
    stop: CancellationToken,
) -> Result<(), async_nats::SubscribeError> {
    let mut orders = client
        .queue_subscribe(ORDER_SUBJECT, "allot-views".into())
        .await?;
    let mut stock = client
        .queue_subscribe(STOCK_SUBJECT, "allot-views".into())
        .await?;
    loop {
        let (request, answer) = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            Some(r) = orders.next() => {
                let a = order(&views, &r.payload);
                (r, a)
            }
            Some(r) = stock.next() => {
                let a = partition(&views, &r.payload);
                (r, a)
            }
            else => return Ok(()),
        };
        if let Some(reply) = request.reply {
            let body = serde_json::to_vec(&answer).expect("JSON values encode");
            if let Err(e) = client.publish(reply, body.into()).await {
                warn!(error = %e, "views reply not sent");
            }
        }
    }
}

fn not_found(message: String) -> serde_json::Value {
    json!({"error": "not_found", "message": message})
}

fn order(views: &Views, body: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(body);
    match OrderId::new(&text) {
        Ok(id) => views.order(&id).map_or_else(
            || not_found(crate::views::unknown_order(&id)),
            |o| serde_json::to_value(o).expect("a view encodes"),
        ),
        Err(e) => json!({"error": "invalid", "message": format!("id: {e}")}),
    }
}

fn partition(views: &Views, body: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(body);
    let key = text.split_once('.').and_then(|(w, s)| {
        Some(PartitionKey::new(
            WarehouseId::new(w).ok()?,
            Sku::new(s).ok()?,
        ))
    });
    match key {
        Some(p) => views.stock(&p).map_or_else(
            || not_found(format!("{p}: no stock recorded")),
            |v| serde_json::to_value(v).expect("a view encodes"),
        ),
        None => {
            json!({"error": "invalid", "message": format!("{text:?} is not <warehouse>.<sku>")})
        }
    }
}

/// Asks a running instance for a view: `subject` is [`ORDER_SUBJECT`] or
/// [`STOCK_SUBJECT`]. `Ok(None)` when the view does not exist.
pub async fn ask(
    client: &Client,
    subject: &'static str,
    body: String,
) -> Result<Option<serde_json::Value>, ReadsError> {
    let reply = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        client.request(subject, body.into()),
    )
    .await
    .map_err(|_| ReadsError::NoAnswer)?
    .map_err(|e| match e.kind() {
        async_nats::RequestErrorKind::NoResponders => ReadsError::NoInstance,
        _ => ReadsError::Broker(e.to_string()),
    })?;
    answer(&reply.payload)
}

/// What an instance's answer says. serde_json caps nesting at 128 levels
/// itself, so a hostile answer is refused, not recursed into.
fn answer(payload: &[u8]) -> Result<Option<serde_json::Value>, ReadsError> {
    let value: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| ReadsError::Broker(format!("unreadable answer: {e}")))?;
    match value.get("error").and_then(|e| e.as_str()) {
        Some("not_found") => Ok(None),
        Some(_) => Err(ReadsError::Refused(
            value["message"].as_str().unwrap_or("refused").to_owned(),
        )),
        None => Ok(Some(value)),
    }
}

/// Why a view could not be read over NATS.
#[derive(Debug, thiserror::Error)]
pub enum ReadsError {
    /// No `allot serve` is running on this NATS.
    #[error("no allot instance answers on NATS: is `allot serve` running?")]
    NoInstance,
    /// An instance did not answer in time.
    #[error("no answer from allot within 5 s")]
    NoAnswer,
    /// The request itself was refused (a bad id or partition).
    #[error("{0}")]
    Refused(String),
    /// The broker failed the request.
    #[error("NATS: {0}")]
    Broker(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_answer_nested_past_serde_jsons_cap_is_refused() {
        let deep = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
        let e = answer(deep.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("recursion limit exceeded"), "{e}");
        let found = answer(br#"{"id": "o-1"}"#).unwrap();
        assert_eq!(found.unwrap()["id"], "o-1");
        assert!(answer(br#"{"error": "not_found"}"#).unwrap().is_none());
    }

    proptest! {
        #[test]
        fn requests_and_answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let views = Views::new(2, 100);
            for reply in [order(&views, &bytes), partition(&views, &bytes)] {
                prop_assert!(reply["error"].is_string(), "{}", reply);
            }
            if let Err(e) = answer(&bytes) {
                prop_assert!(!e.to_string().trim().is_empty());
            }
        }
    }
}
