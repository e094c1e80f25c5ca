//! Decisions per second of one shard's core, with the log and workers
//! answering at once: what the scheduler itself costs per order.
//!
//! `cargo bench --bench core`. One decision = one order reaching its final
//! decision (confirmed or rejected), including queueing, reservation, the
//! group-committed appends, acks, dispatch and the worker's outcome.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use allot::domain::{
    Command, Order, OrderId, Outcome, PartitionKey, Priority, Quantity, Sku, Timestamp, WarehouseId,
};
use allot::scheduler::{AckId, Output, Shard, ShardConfig};

fn partition(sku: usize) -> PartitionKey {
    PartitionKey::new(
        WarehouseId::new("ams").unwrap(),
        Sku::new(&format!("SKU-{sku:05}")).unwrap(),
    )
}

fn orders(n: usize, skus: usize) -> Vec<Order> {
    let keys: Vec<PartitionKey> = (0..skus).map(partition).collect();
    (0..n)
        .map(|i| Order {
            line: false,
            id: OrderId::new(&format!("o-{i}")).unwrap(),
            // A multiplicative hash spreads orders over SKUs without a pattern.
            partition: keys[(i.wrapping_mul(2_654_435_761)) % skus].clone(),
            quantity: Quantity::ONE,
            region: None,
            priority: Priority(0),
            fallbacks: Vec::new(),
        })
        .collect()
}

fn shard_with_stock(skus: usize, units: u64) -> Shard {
    let config = ShardConfig {
        dedupe_horizon: std::env::var("H").map_or(1_000_000, |v| v.parse().unwrap()),
        ..ShardConfig::default()
    };
    let now = Timestamp(0);
    let mut shard = Shard::new(config, now);
    for s in 0..skus {
        shard.handle_command(
            Command::SetStock {
                partition: partition(s),
                on_hand: units,
                expected_version: None,
            },
            None,
            now,
        );
    }
    drain(&mut shard, &mut 0, &mut Vec::new());
    shard
}

/// Plays the runtime with an instant log and instant workers.
fn drain(shard: &mut Shard, seq: &mut u64, work: &mut Vec<allot::scheduler::Dispatch>) {
    let now = Timestamp(0);
    while let Some(out) = shard.poll_output() {
        match out {
            Output::Append(batch) => {
                black_box(&batch.events);
                *seq += 1;
                shard.handle_appended(*seq, now);
            }
            Output::Dispatch(list) => work.extend(list),
            Output::Ack(acks) => {
                black_box(acks);
            }
            Output::Forward(_) => unreachable!("no reroutes here"),
            Output::Replies(_) => unreachable!("one shard claims its ids itself"),
            Output::CartsDurable | Output::LinesRejected(_) => unreachable!("no carts here"),
        }
    }
}

/// Feeds every order (in intake batches of 256), then every outcome.
fn run_sale(mut shard: Shard, orders: Vec<Order>) -> Shard {
    let now = Timestamp(0);
    let mut seq = shard.log_seq();
    let mut work = Vec::new();
    let mut ack = 0;
    let mut orders = orders.into_iter().peekable();
    while orders.peek().is_some() {
        for order in orders.by_ref().take(256) {
            ack += 1;
            shard.handle_order(order, Some(AckId(ack)), now);
        }
        drain(&mut shard, &mut seq, &mut work);
        for d in std::mem::take(&mut work) {
            shard.handle_outcome(&d.order.id, d.attempt, Outcome::Fulfilled, now);
        }
        drain(&mut shard, &mut seq, &mut work);
    }
    shard
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("decisions");
    g.measurement_time(Duration::from_secs(8)).sample_size(20);
    let cases: [(&str, usize, usize, u64); 3] = [
        // name, orders, SKUs, units per SKU
        ("hot_sku", 100_000, 1, 100_000),
        ("hot_sku_oversold_2x", 100_000, 1, 50_000),
        ("10k_skus", 100_000, 10_000, 10),
    ];
    for (name, n, skus, units) in cases {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(name, |b| {
            b.iter_batched(
                || (shard_with_stock(skus, units), orders(n, skus)),
                |(shard, orders)| run_sale(shard, orders),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
