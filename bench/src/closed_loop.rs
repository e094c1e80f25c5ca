//! The database baselines' load: a fixed number of clients, each placing one
//! order at a time in arrival order (the next order goes to whichever client
//! is free), timed per order and split at the sell-out moment.

use std::cell::Cell;
use std::future::Future;

use serde::Serialize;
use tokio::time::Instant;

use crate::stats::{histogram, record, Gate, Latency, Throughput};
use crate::workload::Workload;

/// A store that admits orders against stock, one call per order.
pub trait Store {
    /// Places order `id` on partition `key`; true if it got a unit.
    fn place(&mut self, id: &str, key: &str) -> impl Future<Output = anyhow::Result<bool>>;
}

/// What a baseline measured. Speeds are `None` when the gate failed.
#[derive(Debug, Clone, Serialize)]
pub struct StoreRun {
    pub system: String,
    pub clients: usize,
    pub throughput: Option<Throughput>,
    /// One order's round trip as its client saw it (closed loop).
    pub latency: Option<Latency>,
    /// The server's CPU seconds over the run, where the server reports it.
    pub server_cpu_s: Option<f64>,
    pub gate: Gate,
}

/// What the clients did, before the store's own gate check.
pub struct Driven {
    pub start: Instant,
    pub decided: Vec<Instant>,
    pub last_sold: Option<Instant>,
    pub sold: u64,
    pub latency: Latency,
}

/// Runs every order of `workload` through `stores` (one per client);
/// `keys[p]` is partition `p`'s key in the store.
pub async fn drive<S: Store>(
    stores: Vec<S>,
    workload: &Workload,
    keys: &[String],
) -> anyhow::Result<Driven> {
    let next = Cell::new(0usize);
    let start = Instant::now();
    let clients = stores.into_iter().map(|mut store| {
        let next = &next;
        async move {
            let mut done = Vec::new();
            let mut h = histogram();
            loop {
                let n = next.get();
                let Some(order) = workload.orders.get(n) else {
                    break;
                };
                next.set(n + 1);
                let t = Instant::now();
                let sold = store
                    .place(&order.id, &keys[order.partition as usize])
                    .await?;
                let end = Instant::now();
                record(&mut h, t, end);
                done.push((end, sold));
            }
            anyhow::Ok((done, h))
        }
    });
    let mut decided = Vec::with_capacity(workload.orders.len());
    let (mut last_sold, mut sold) = (None, 0);
    let mut latency = histogram();
    for result in futures::future::join_all(clients).await {
        let (done, h) = result?;
        latency.add(&h).expect("same histogram bounds");
        for (t, s) in done {
            decided.push(t);
            if s {
                sold += 1;
                last_sold = last_sold.max(Some(t));
            }
        }
    }
    Ok(Driven {
        start,
        decided,
        last_sold,
        sold,
        latency: Latency::of(&latency),
    })
}

impl Driven {
    /// The run's figures, given what the store's own check found.
    pub fn report(
        self,
        system: &str,
        clients: usize,
        mut gate: Gate,
        server_cpu_s: Option<f64>,
    ) -> StoreRun {
        gate.sold = self.sold;
        if gate.sold != gate.sellable {
            gate.problems.push(format!(
                "clients saw {} units sold, {} were sellable",
                gate.sold, gate.sellable
            ));
        }
        let passed = gate.passed();
        StoreRun {
            system: system.into(),
            clients,
            throughput: passed.then(|| Throughput::of(self.start, &self.decided, self.last_sold)),
            latency: passed.then_some(self.latency),
            server_cpu_s,
            gate,
        }
    }
}
