//! Sends a workload's orders to JetStream the way allot's own producer does
//! (`Nats-Msg-Id` = order id, at most [`WINDOW`] publish acks outstanding),
//! either as fast as the broker takes them or open loop at a constant rate
//! from a schedule. allot and both raw JetStream baselines use it.

use std::future::IntoFuture as _;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::context::PublishError;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::Context;
use futures::stream::FuturesUnordered;
use futures::StreamExt as _;
use tokio::time::Instant;

use crate::workload::Workload;

/// How orders are sent.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// As fast as the system takes them.
    Max,
    /// Order `n` is due at `start + n / per_sec`, whatever happened before.
    Rate { per_sec: f64 },
}

impl Pace {
    /// When order `n` is due: now under [`Pace::Max`].
    pub fn due(self, start: Instant, n: usize) -> Instant {
        match self {
            Pace::Max => Instant::now(),
            Pace::Rate { per_sec } => start + Duration::from_secs_f64(n as f64 / per_sec),
        }
    }

    pub fn mode(self) -> &'static str {
        match self {
            Pace::Max => "max",
            Pace::Rate { .. } => "open",
        }
    }

    pub fn rate(self) -> Option<f64> {
        match self {
            Pace::Max => None,
            Pace::Rate { per_sec } => Some(per_sec),
        }
    }
}

/// Publish acks outstanding at most (the producer's flow control).
pub const WINDOW: usize = 4_096;

/// Publishes `workload`'s orders; returns each order's intended send time
/// (its scheduled time under [`Pace::Rate`], its actual send time under
/// [`Pace::Max`]).
pub async fn publish(
    js: &Context,
    workload: &Workload,
    pace: Pace,
) -> anyhow::Result<Vec<Instant>> {
    let orders = &workload.orders;
    let mut intended = Vec::with_capacity(orders.len());
    let mut acks = FuturesUnordered::new();
    let start = Instant::now();
    for (n, order) in orders.iter().enumerate() {
        let due = pace.due(start, n);
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
        // TODO(allot-batch): a `--allot-batch N` flag belongs here, to
        // measure allot's batched intake (`Allot-Kind: batch`, one message
        // holding many orders; `allot::wire::encode_orders`, added in
        // a24b000 after this bench was written). For N > 1: gather N
        // consecutive orders of one partition subject that are due by now
        // into one message with the `Allot-Kind: batch` header and one
        // `Nats-Msg-Id` naming the batch, and give every order in it this
        // send time. Not implemented yet: every system here still gets one
        // order per message or request.
        let message = PublishMessage::build()
            .message_id(order.id.as_str())
            .payload(order.body.clone());
        let subject = workload.subjects[order.partition as usize].clone();
        let ack = js
            .send_publish(subject, message)
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

fn settle(ack: Option<Result<PublishAck, PublishError>>) -> anyhow::Result<()> {
    if let Some(ack) = ack {
        ack.context("JetStream refused an order publish")?;
    }
    Ok(())
}
