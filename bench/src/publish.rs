//! Sends a workload's orders to JetStream, with `Nats-Msg-Id` = order id and
//! a bounded number of unacknowledged publishes, either as fast as the
//! broker takes them or open loop at a constant rate from a schedule.

use std::future::IntoFuture as _;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use futures::stream::FuturesUnordered;
use futures::StreamExt as _;
use tokio::time::Instant;

use crate::workload::Order;

/// How orders are sent.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// As fast as acks come back.
    Max,
    /// Order `n` is due at `start + n / per_sec`, whatever happened before.
    Rate { per_sec: f64 },
}

/// Publish acks outstanding at most (the producer's flow control).
const WINDOW: usize = 4_096;

/// Publishes `orders`; returns each order's intended send time (its
/// scheduled time under [`Pace::Rate`], its actual send time under
/// [`Pace::Max`]).
pub async fn publish(js: &Context, orders: &[Order], pace: Pace) -> anyhow::Result<Vec<Instant>> {
    let mut intended = Vec::with_capacity(orders.len());
    let mut acks = FuturesUnordered::new();
    let start = Instant::now();
    for (n, order) in orders.iter().enumerate() {
        let due = match pace {
            Pace::Max => Instant::now(),
            Pace::Rate { per_sec } => start + Duration::from_secs_f64(n as f64 / per_sec),
        };
        // Collect acks while waiting for the slot, so none sit unread.
        loop {
            let wait = tokio::time::sleep_until(due);
            if Instant::now() >= due && acks.len() < WINDOW {
                break;
            }
            tokio::select! {
                _ = wait, if acks.len() < WINDOW => break,
                ack = acks.next(), if !acks.is_empty() => settle(ack)?,
            }
        }
        let sent = Instant::now();
        let message = PublishMessage::build()
            .message_id(order.id.as_str())
            .payload(order.body.clone());
        let ack = js
            .send_publish(order.subject.clone(), message)
            .await
            .with_context(|| format!("publishing order {}", order.id))?;
        intended.push(match pace {
            Pace::Max => sent,
            Pace::Rate { .. } => due,
        });
        acks.push(ack.into_future());
    }
    while let Some(ack) = acks.next().await {
        settle(Some(ack))?;
    }
    Ok(intended)
}

fn settle(
    ack: Option<
        Result<
            async_nats::jetstream::publish::PublishAck,
            async_nats::jetstream::context::PublishError,
        >,
    >,
) -> anyhow::Result<()> {
    if let Some(ack) = ack {
        ack.context("JetStream refused an order publish")?;
    }
    Ok(())
}
