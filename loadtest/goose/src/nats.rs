//! Scenario "nats": each goose user connects its own NATS client once (an
//! on-start transaction), then publishes orders to JetStream as a trusted
//! producer does: MessagePack on `orders.<warehouse>.<sku>` with
//! `Nats-Msg-Id` = order id, awaiting the PubAck. Goose has no NATS client,
//! so each publish is recorded as a custom request ("NATS publish orders")
//! timed from send to PubAck; a publish error, a missing connection or a
//! PubAck marked duplicate (ids are unique, so that is a bug) is a failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use allot::wire::order_subject;
use async_nats::jetstream::{self, message::PublishMessage};
use goose::prelude::*;

use crate::workload::Workload;

/// Method label and name the publishes are reported under.
const METHOD: &str = "NATS";
const NAME: &str = "publish orders";

/// A user's JetStream handle, kept as goose session data.
#[derive(Clone)]
struct Publisher(jetstream::Context);

/// The "nats" scenario: connect to `url`, then publish `workload`'s orders.
pub fn scenario(workload: Arc<Workload>, url: Arc<str>) -> Scenario {
    let connect = Transaction::new(Arc::new(move |user| {
        let url = Arc::clone(&url);
        Box::pin(async move { connect(user, &url).await })
    }))
    .set_name("connect")
    .set_on_start();
    let publish = Transaction::new(Arc::new(move |user| {
        let workload = Arc::clone(&workload);
        Box::pin(async move { publish(user, &workload).await })
    }))
    .set_name("publish order");
    scenario!("nats")
        .register_transaction(connect)
        .register_transaction(publish)
}

async fn connect(user: &mut GooseUser, url: &str) -> TransactionResult {
    let client = async_nats::connect(url).await.map_err(|e| {
        Box::new(TransactionError::Custom(format!(
            "connecting to NATS at {url}: {e}"
        )))
    })?;
    user.set_session_data(Publisher(jetstream::new(client)));
    Ok(())
}

async fn publish(user: &mut GooseUser, workload: &Workload) -> TransactionResult {
    let Some(Publisher(js)) = user.get_session_data::<Publisher>().cloned() else {
        return record(user, Duration::ZERO, Err("no NATS connection".into())).await;
    };
    let order = workload.next_order();
    let subject = order_subject(&order.partition);
    let publish = PublishMessage::build()
        .message_id(order.message.id.as_str())
        .payload(order.message.encode().into());
    let started = Instant::now();
    let acked = match js.send_publish(subject, publish).await {
        Ok(ack) => ack.await,
        Err(e) => Err(e),
    };
    let outcome = match acked {
        Ok(ack) if ack.duplicate => Err(format!("PubAck duplicate for {}", order.message.id)),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("publish: {e}")),
    };
    record(user, started.elapsed(), outcome).await
}

/// Records one publish; a failure is recorded, not returned, so it counts
/// once, in the request metrics the thresholds read.
async fn record(
    user: &mut GooseUser,
    elapsed: Duration,
    outcome: Result<(), String>,
) -> TransactionResult {
    let error = outcome.as_ref().err().map(String::as_str);
    user.record_custom_request_duration(METHOD, NAME, elapsed, outcome.is_ok(), None, error)
        .await
}
