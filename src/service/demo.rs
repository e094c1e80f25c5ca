//! `allot demo`: a flash sale through a running `allot serve`. It stocks
//! fresh SKUs, sends orders the three ways producers can (a request to the
//! ingress, a publish to `orders.<warehouse>.<sku>`, and a few invalid
//! messages), then reads the decisions back from EVENTS and audits them.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::Context;
use bytes::Bytes;
use futures::StreamExt;

use super::{connect, NatsOptions};
use crate::adapters::nats::{
    decode_batch, shard_order_subject, SubmitReply, EVENTS_STREAM, KIND_COMMAND, KIND_HEADER,
    ORDERS_STREAM,
};
use crate::audit::{Audit, Findings};
use crate::config::Config;
use crate::domain::{Command, OrderId, PartitionKey, Quantity, Region, Sku, WarehouseId};
use crate::wire::{order_subject, OrderMessage, ValidatedOrder, SUBMIT_SUBJECT};

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub orders: u64,
    pub skus: u32,
    /// Units of each SKU in each warehouse.
    pub stock: u64,
    /// Orders sent through the ingress request (the rest are published).
    pub via_ingress: u64,
    /// Malformed or invalid messages mixed in.
    pub invalid: u64,
    /// Orders published twice.
    pub duplicates: u64,
    pub timeout: Duration,
}

/// What the demo saw.
#[derive(Debug)]
pub struct DemoReport {
    /// Names this run's SKUs (`DEMO<run>-<i>`) and orders (`demo<run>-<n>`).
    pub run: u32,
    pub findings: Findings,
    pub submitted: u64,
    pub invalid_sent: u64,
    pub duplicates_sent: u64,
    pub elapsed: Duration,
}

impl std::fmt::Display for DemoReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let x = &self.findings;
        writeln!(
            f,
            "sale {}: orders demo{0}-0..demo{0}-{}, SKUs DEMO{0}-<i>",
            self.run,
            self.submitted.saturating_sub(1)
        )?;
        let row =
            |f: &mut std::fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "  {k:<34} {v:>12}");
        row(f, "orders submitted", self.submitted.to_string())?;
        row(f, "duplicates sent", self.duplicates_sent.to_string())?;
        row(f, "invalid messages sent", self.invalid_sent.to_string())?;
        row(f, "confirmed", x.confirmed.to_string())?;
        for (reason, n) in &x.rejected {
            row(f, &format!("rejected: {reason}"), n.to_string())?;
        }
        row(f, "rerouted", x.rerouted.to_string())?;
        row(f, "units supplied", x.units_supplied.to_string())?;
        row(f, "units sold", x.units_sold.to_string())?;
        row(f, "oversold (must be 0)", x.oversold_units.to_string())?;
        row(
            f,
            "duplicate decisions (must be 0)",
            x.duplicate_decisions.to_string(),
        )?;
        row(f, "undecided (must be 0)", x.undecided.to_string())?;
        let secs = self.elapsed.as_secs_f64();
        row(f, "elapsed", format!("{secs:.2}s"))?;
        row(
            f,
            "decided orders/s end to end",
            format!("{:.0}", self.submitted as f64 / secs.max(1e-9)),
        )?;
        write!(
            f,
            "{}",
            if x.clean() {
                "PASS: every promise held"
            } else {
                "FAIL: a promise was broken"
            }
        )
    }
}

/// Runs the demo sale against the allot serving on `nats`.
pub async fn run_demo(
    config: &Config,
    nats: &NatsOptions,
    o: &DemoOptions,
) -> anyhow::Result<DemoReport> {
    let client = connect(nats).await?;
    let js = async_nats::jetstream::new(client.clone());
    let router = config.router();
    let mut events = wait_for_stream(&js, EVENTS_STREAM).await?;
    wait_for_stream(&js, ORDERS_STREAM).await?;
    let start_seq = events.info().await?.state.last_sequence;

    let run: u32 = rand::random::<u32>() % 1_000_000;
    let skus: Vec<Sku> = (0..o.skus)
        .map(|i| Sku::new(&format!("DEMO{run}-{i}")).expect("valid"))
        .collect();
    let regions: Vec<Region> = config.routing.regions.keys().cloned().collect();
    let mut warehouses: Vec<WarehouseId> =
        config.routing.regions.values().flatten().cloned().collect();
    warehouses.sort();
    warehouses.dedup();
    anyhow::ensure!(
        !regions.is_empty(),
        "the demo needs at least one routing region in the config"
    );

    let started = Instant::now();
    for w in &warehouses {
        for sku in &skus {
            let partition = PartitionKey::new(w.clone(), sku.clone());
            let key = format!("stock-{run}-{w}-{sku}");
            send_set_stock(&js, &router, partition, o.stock, &key)
                .await?
                .await?;
        }
    }

    let mut ids = Vec::with_capacity(o.orders as usize);
    let mut acks = Vec::new();
    let mut duplicates_sent = 0;
    for n in 0..o.orders {
        let id = OrderId::new(&format!("demo{run}-{n}")).expect("valid");
        // Skewed popularity: a few hot SKUs sell out, the tail does not.
        let r = (n.wrapping_mul(2_654_435_761) % 10_000) as f64 / 10_000.0;
        let sku = skus[((r * r * skus.len() as f64) as usize).min(skus.len() - 1)].clone();
        let region = regions[n as usize % regions.len()].clone();
        let order = ValidatedOrder {
            id: id.clone(),
            sku: sku.clone(),
            quantity: Quantity::ONE,
            warehouse: None,
            region: Some(region.clone()),
            priority: crate::domain::Priority(0),
        };
        ids.push(id.clone());
        if n < o.via_ingress {
            let reply = client
                .request(SUBMIT_SUBJECT, crate::wire::encode_order(&order).into())
                .await?;
            let reply: SubmitReply = rmp_serde::from_slice(&reply.payload)?;
            anyhow::ensure!(
                reply.accepted,
                "ingress refused demo order {id}: {:?}",
                reply.errors
            );
            continue;
        }
        let route = router.route(&sku, None, Some(&region))?;
        let mut routed = order;
        routed.warehouse = Some(route.partition.warehouse.clone());
        let body = Bytes::from(crate::wire::encode_order(&routed));
        let copies =
            if n % (o.orders / o.duplicates.max(1)).max(1) == 0 && duplicates_sent < o.duplicates {
                duplicates_sent += 1;
                2
            } else {
                1
            };
        for _ in 0..copies {
            let message = PublishMessage::build()
                .message_id(id.to_string())
                .payload(body.clone());
            acks.push(
                js.send_publish(order_subject(&route.partition), message)
                    .await?,
            );
        }
        if acks.len() >= 2_000 {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks.drain(..) {
        ack.await?;
    }
    let invalid_sent = send_invalid(&js, &warehouses[0], &skus[0], run, o.invalid).await?;
    for n in 0..invalid_sent {
        if n % 2 == 1 {
            ids.push(OrderId::new(&format!("bad{run}-{n}")).expect("valid"));
        }
    }

    let findings = read_decisions(&mut events, start_seq, &ids, o.timeout).await?;
    Ok(DemoReport {
        run,
        findings,
        submitted: o.orders,
        invalid_sent,
        duplicates_sent,
        elapsed: started.elapsed(),
    })
}

/// Sends `n` bad messages: garbage bytes (even) and orders with quantity 0
/// under a valid id (odd), which must come back as rejections.
async fn send_invalid(
    js: &Context,
    w: &WarehouseId,
    sku: &Sku,
    run: u32,
    n: u64,
) -> anyhow::Result<u64> {
    let subject = order_subject(&PartitionKey::new(w.clone(), sku.clone()));
    for i in 0..n {
        let payload: Bytes = if i % 2 == 0 {
            Bytes::from_static(b"\xc1 this is not msgpack")
        } else {
            let bad = OrderMessage {
                v: 1,
                id: format!("bad{run}-{i}"),
                sku: sku.to_string(),
                quantity: 0,
                warehouse: Some(w.to_string()),
                region: None,
                priority: None,
            };
            bad.encode().into()
        };
        js.publish(subject.clone(), payload).await?.await?;
    }
    Ok(n)
}

/// Publishes a keyed `SetStock` command for `partition` straight to its
/// shard's intake subject; `key` is its idempotency key and message id.
/// Returns the publish acknowledgement to await.
pub async fn send_set_stock(
    js: &Context,
    router: &crate::config::Router,
    partition: PartitionKey,
    on_hand: u64,
    key: &str,
) -> anyhow::Result<async_nats::jetstream::context::PublishAckFuture> {
    let shard = router.shard_for(&partition);
    let subject = shard_order_subject(shard, &partition);
    let command = Command::Keyed {
        id: OrderId::new(key).with_context(|| format!("stock command key {key:?}"))?,
        command: Box::new(Command::SetStock { partition, on_hand }),
    };
    let message = PublishMessage::build()
        .message_id(key)
        .header(KIND_HEADER, KIND_COMMAND)
        .payload(rmp_serde::to_vec_named(&command)?.into());
    Ok(js.send_publish(subject, message).await?)
}

/// Waits up to 20 s for `allot serve` to have created the stream `name`.
pub async fn wait_for_stream(
    js: &Context,
    name: &str,
) -> anyhow::Result<async_nats::jetstream::stream::Stream> {
    for _ in 0..100 {
        if let Ok(stream) = js.get_stream(name).await {
            return Ok(stream);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("stream {name} not found after 20 s: is `allot serve` running?")
}

/// Every EVENTS batch of every shard after sequence `after`, in order, from
/// an ordered consumer (nothing to ack, gone when dropped).
pub async fn events_after(
    events: &async_nats::jetstream::stream::Stream,
    after: u64,
) -> anyhow::Result<pull::Ordered> {
    let consumer = events
        .create_consumer(pull::OrderedConfig {
            filter_subject: "events.>".into(),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            ..Default::default()
        })
        .await
        .context("creating an ordered consumer on EVENTS")?;
    Ok(consumer.messages().await?)
}

/// Follows EVENTS from `after` until every id in `ids` is decided.
async fn read_decisions(
    events: &mut async_nats::jetstream::stream::Stream,
    after: u64,
    ids: &[OrderId],
    timeout: Duration,
) -> anyhow::Result<Findings> {
    let mut messages = events_after(events, after).await?;
    let mut audit = Audit::default();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut waiting: std::collections::HashSet<&OrderId> = ids.iter().collect();
    while !waiting.is_empty() {
        let next = tokio::time::timeout_at(deadline, messages.next()).await;
        let message = match next {
            Err(_) | Ok(None) => break,
            Ok(Some(m)) => m?,
        };
        for event in decode_batch(&message.payload).context("an EVENTS batch")? {
            if let crate::domain::Event::OrderConfirmed { id }
            | crate::domain::Event::OrderRejected { id, .. } = &event
            {
                waiting.remove(id);
            }
            audit.apply(&event);
        }
    }
    Ok(audit.finish(ids))
}
