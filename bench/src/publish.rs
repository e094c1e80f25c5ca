//! Sends a workload's orders to JetStream the way allot's own producer does
//! (`Nats-Msg-Id` = order id, at most [`WINDOW`] publish acks outstanding),
//! either as fast as the broker takes them or open loop at a constant rate
//! from a schedule, one order per message or (allot, `--allot-batch`) many.
//! allot and both raw JetStream baselines use it.

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

use allot::wire::{KIND_BATCH, KIND_HEADER};
use bytes::Bytes;

use crate::workload::{Order, Workload};

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

/// Publishes `workload`'s orders, `batch` consecutive ones per message
/// (more than 1: allot's batched intake, `Allot-Kind: batch`, one
/// `Nats-Msg-Id` per batch; each order in it is still validated, deduped
/// and decided on its own); returns each order's intended send time (its
/// scheduled time under [`Pace::Rate`], its message's send time under
/// [`Pace::Max`]). A batch goes out when its last order is due.
pub async fn publish(
    js: &Context,
    workload: &Workload,
    pace: Pace,
    batch: usize,
) -> anyhow::Result<Vec<Instant>> {
    let orders = &workload.orders;
    let mut intended = Vec::with_capacity(orders.len());
    let mut acks = FuturesUnordered::new();
    let start = Instant::now();
    let batch = batch.max(1);
    for (first, chunk) in (0..).step_by(batch).zip(orders.chunks(batch)) {
        let due = pace.due(start, first + chunk.len() - 1);
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
        let order = &chunk[0];
        let message = if let [one] = chunk {
            PublishMessage::build()
                .message_id(one.id.as_str())
                .payload(one.body.clone())
        } else {
            PublishMessage::build()
                .message_id(format!("batch-{}", order.id).as_str())
                .header(KIND_HEADER, KIND_BATCH)
                .payload(batch_body(chunk))
        };
        let subject = workload.subjects[order.partition as usize].clone();
        let ack = js
            .send_publish(subject, message)
            .await
            .with_context(|| format!("publishing order {}", order.id))?;
        for n in first..first + chunk.len() {
            intended.push(match pace {
                Pace::Max => sent,
                Pace::Rate { .. } => pace.due(start, n),
            });
        }
        acks.push(ack.into_future());
    }
    while let Some(ack) = acks.next().await {
        settle(Some(ack))?;
    }
    Ok(intended)
}

/// The orders' MessagePack maps as one MessagePack array (what
/// `allot::wire::encode_orders` writes for the same orders).
fn batch_body(orders: &[Order]) -> Bytes {
    let n = orders.len();
    let mut body = Vec::with_capacity(5 + orders.iter().map(|o| o.body.len()).sum::<usize>());
    match n {
        0..16 => body.push(0x90 | n as u8),
        16..65_536 => {
            body.push(0xdc);
            body.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            body.push(0xdd);
            body.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
    for o in orders {
        body.extend_from_slice(&o.body);
    }
    Bytes::from(body)
}

fn settle(ack: Option<Result<PublishAck, PublishError>>) -> anyhow::Result<()> {
    if let Some(ack) = ack {
        ack.context("JetStream refused an order publish")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Scenario;

    #[test]
    fn a_batch_body_is_what_allot_reads_as_a_batch() {
        let w = Workload::build(&Scenario::all(Some(40))[1], 1).unwrap();
        for n in [2, 15, 16, 40] {
            let body = batch_body(&w.orders[..n]);
            let read = allot::wire::decode_orders(&body, &allot::wire::Limits::default()).unwrap();
            let ids: Vec<String> = read
                .into_iter()
                .map(|o| o.unwrap().id.to_string())
                .collect();
            let sent: Vec<String> = w.orders[..n].iter().map(|o| o.id.clone()).collect();
            assert_eq!(ids, sent);
        }
    }
}
