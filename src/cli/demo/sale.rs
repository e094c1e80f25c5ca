//! `allot demo`: a flash sale through a running `allot serve`. It stocks
//! fresh SKUs, sends orders the three ways producers can (a request to the
//! ingress, a publish to `orders.<warehouse>.<sku>`, and a few invalid
//! messages), then reads the decisions back from EVENTS and audits them.

use std::time::{Duration, Instant};

use std::sync::Arc;

use bytes::Bytes;

use allot::adapters::nats::events::EventsReader;
use allot::adapters::nats::producer::Producer;
use allot::adapters::nats::{connect, NatsOptions};
use allot::adapters::nats::{NatsFiler, EVENTS_STREAM, ORDERS_STREAM};
use allot::audit::{Audit, Findings};
use allot::config::Config;
use allot::domain::{Command, OrderId, PartitionKey, Quantity, Region, Sku, WarehouseId};
use allot::ingress::Ingress;
use allot::wire::log::Chains;
use allot::wire::{order_subject, Limits, OrderMessage, ValidatedOrder};

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
    /// Carts sent through the ingress.
    pub carts: u64,
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
    pub carts_sent: u64,
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
        row(f, "carts submitted", self.carts_sent.to_string())?;
        row(f, "carts confirmed", x.carts_confirmed.to_string())?;
        row(
            f,
            "carts rejected (held ones expire)",
            x.carts_rejected.to_string(),
        )?;
        row(f, "carts half sold (must be 0)", x.broken_carts.to_string())?;
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
    let mut producer = Producer::new(client.clone());
    let router = config.router();
    let events = producer.wait_for_stream(EVENTS_STREAM).await?;
    producer.wait_for_stream(ORDERS_STREAM).await?;
    let start_seq = events.cached_info().state.last_sequence;
    let ingress = Ingress::new(
        Arc::new(NatsFiler::for_client(client)),
        router.clone(),
        Limits::from_config(config),
    );

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
            let set = Command::SetStock {
                partition,
                on_hand: o.stock,
                expected_version: None,
            };
            ingress.command(&key, set).await?;
        }
    }

    let mut ids = Vec::with_capacity(o.orders as usize);
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
            priority: allot::domain::Priority(0),
        };
        ids.push(id.clone());
        if n < o.via_ingress {
            let reply = producer.submit(allot::wire::encode_order(&order)).await?;
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
        let body = Bytes::from(allot::wire::encode_order(&routed));
        // Every k-th published order goes twice, from the first: exactly
        // `duplicates` of them when there are that many.
        let published = n - o.via_ingress;
        let every = ((o.orders - o.via_ingress) / o.duplicates.max(1)).max(1);
        let copies = if published.is_multiple_of(every) && duplicates_sent < o.duplicates {
            duplicates_sent += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let subject = order_subject(&route.partition);
            producer
                .publish(subject, Some(id.as_str()), body.clone())
                .await?;
        }
    }
    producer.flush().await?;
    let invalid_sent =
        send_invalid(&mut producer, &warehouses[0], &skus[0], run, o.invalid).await?;
    for n in 0..invalid_sent {
        if n % 2 == 1 {
            ids.push(OrderId::new(&format!("bad{run}-{n}")).expect("valid"));
        }
    }

    let carts = super::carts::send_carts(&ingress, run, &skus, &regions, o.carts).await?;
    ids.extend(carts);
    let findings = read_decisions(events, start_seq, &ids, o.timeout).await?;
    Ok(DemoReport {
        run,
        findings,
        submitted: o.orders,
        invalid_sent,
        duplicates_sent,
        carts_sent: o.carts,
        elapsed: started.elapsed(),
    })
}

/// Sends `n` bad messages: garbage bytes (even) and orders with quantity 0
/// under a valid id (odd), which must come back as rejections.
async fn send_invalid(
    producer: &mut Producer,
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
        producer.publish(subject.clone(), None, payload).await?;
    }
    producer.flush().await?;
    Ok(n)
}

/// Follows EVENTS from `after` until every id in `ids` is decided, each
/// batch once, in its shard's order.
async fn read_decisions(
    events: allot::adapters::nats::EventsStream,
    after: u64,
    ids: &[OrderId],
    timeout: Duration,
) -> anyhow::Result<Findings> {
    let mut reader = EventsReader::new(events, "events.*", Chains::from_anywhere(), after + 1);
    let mut audit = Audit::default();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut waiting: std::collections::HashSet<&OrderId> = ids.iter().collect();
    while !waiting.is_empty() && tokio::time::Instant::now() < deadline {
        let Some(read) = reader.next(Duration::from_millis(500)).await? else {
            continue;
        };
        for event in &read.batch.events {
            use allot::domain::{CartEvent, Event};
            match event {
                Event::OrderConfirmed { id } | Event::OrderRejected { id, .. } => {
                    waiting.remove(id);
                }
                Event::Cart { event } => {
                    if let CartEvent::Confirmed { cart }
                    | CartEvent::Rejected { cart, .. }
                    | CartEvent::Cancelled { cart } = event.as_ref()
                    {
                        waiting.remove(cart);
                    }
                }
                _ => {}
            }
            audit.apply(event);
        }
    }
    Ok(audit.finish(ids))
}
