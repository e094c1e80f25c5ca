//! Drives a database baseline: `connections` connections, each in its own
//! task, each keeping up to `depth` requests in flight (PostgreSQL: 64 x 1;
//! Redis: 8 x 512 pipelined, about as many in flight as allot's publisher).
//! Orders are handed out in arrival order to whichever connection has a
//! free slot, as fast as the store answers ([`Pace::Max`]) or each at its
//! scheduled time ([`Pace::Rate`]); latency runs from that intended time,
//! so a stalled store cannot hide its stall.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::stream::FuturesUnordered;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::gate::Gate;
use crate::publish::Pace;
use crate::stats::{histogram, record, Latency, Run, Throughput};
use crate::workload::Workload;

/// One connection of a store that admits orders against stock.
pub trait Store: Send + Sync + 'static {
    /// Places order `id` on partition `key`; true if it got a unit. May be
    /// called again before an earlier call finished (pipelining).
    fn place(&self, id: &str, key: &str) -> impl Future<Output = anyhow::Result<bool>> + Send;
}

/// What the clients saw, before the store's own record is checked.
pub struct Driven {
    pub start: Instant,
    /// Each answered order's index, answer time and whether it sold.
    pub answered: Vec<(u32, Instant, bool)>,
    /// Intended send time to answer.
    pub latency: Latency,
}

impl Driven {
    pub fn sold(&self) -> u64 {
        self.answered.iter().filter(|a| a.2).count() as u64
    }

    /// Throughput from the first send to the last answer, split where the
    /// last unit was sold.
    /// The run of a baseline that keeps its own stock (PostgreSQL, Redis):
    /// `gate` from its record, plus stock conservation (`sold + left =
    /// supplied`) and what its clients were told against what its
    /// `record` says; the speed only if every check passed.
    pub fn into_run(
        self,
        mut gate: Gate,
        left: i64,
        record: &str,
        pace: Pace,
        workload: &Workload,
    ) -> Run {
        let supplied = workload.scenario.supplied() as i64;
        if gate.sold as i64 + left != supplied {
            gate.problem(format!(
                "stock not conserved: {} sold + {left} left != {supplied} supplied",
                gate.sold
            ));
        }
        if self.sold() != gate.sold {
            gate.problem(format!(
                "clients were told {} sold, the {record} says {}",
                self.sold(),
                gate.sold
            ));
        }
        let passed = gate.passed();
        let latency = passed.then_some(self.latency);
        Run {
            mode: pace.mode(),
            target_rate: pace.rate(),
            orders: workload.orders.len() as u64,
            throughput: passed.then(|| self.throughput()),
            admission: latency,
            final_decision: latency,
            gate,
            ..Run::default()
        }
    }

    pub fn throughput(&self) -> Throughput {
        let decided: Vec<Instant> = self.answered.iter().map(|a| a.1).collect();
        let last_sold = self.answered.iter().filter(|a| a.2).map(|a| a.1).max();
        Throughput::of(self.start, &decided, last_sold)
    }
}

/// What every connection task shares.
struct Plan {
    workload: Arc<Workload>,
    /// `keys[p]` is partition `p`'s key in the store.
    keys: Arc<Vec<String>>,
    next: AtomicUsize,
    start: Instant,
    pace: Pace,
    depth: usize,
}

/// Runs every order of `workload` through `stores` (one per connection).
pub async fn drive<S: Store>(
    stores: Vec<S>,
    depth: usize,
    workload: Arc<Workload>,
    keys: Arc<Vec<String>>,
    pace: Pace,
) -> anyhow::Result<Driven> {
    let n = workload.orders.len();
    let plan = Arc::new(Plan {
        workload,
        keys,
        next: AtomicUsize::new(0),
        start: Instant::now(),
        pace,
        depth: depth.max(1),
    });
    let tasks: Vec<_> = stores
        .into_iter()
        .map(|store| tokio::spawn(connection(store, plan.clone())))
        .collect();
    let mut answered = Vec::with_capacity(n);
    let mut latency = histogram();
    for task in tasks {
        let (done, h) = task.await??;
        answered.extend(done);
        latency.add(&h).expect("same histogram bounds");
    }
    Ok(Driven {
        start: plan.start,
        answered,
        latency: Latency::of(&latency),
    })
}

type Answer = (u32, Instant, Instant, bool);

/// One connection: takes the next order whenever it has a free slot.
async fn connection<S: Store>(
    store: S,
    shared: Arc<Plan>,
) -> anyhow::Result<(Vec<(u32, Instant, bool)>, Histogram<u64>)> {
    let plan = &*shared;
    let orders = &plan.workload.orders;
    let mut done = Vec::new();
    let mut h = histogram();
    let mut note = |answer: Option<anyhow::Result<Answer>>| -> anyhow::Result<()> {
        if let Some(answer) = answer {
            let (n, intended, at, sold) = answer?;
            record(&mut h, intended, at);
            done.push((n, at, sold));
        }
        Ok(())
    };
    let store = &store;
    let mut in_flight = FuturesUnordered::new();
    let mut handing_out = true;
    while handing_out || !in_flight.is_empty() {
        if !handing_out || in_flight.len() >= plan.depth {
            note(in_flight.next().await)?;
            continue;
        }
        let n = plan.next.fetch_add(1, Ordering::Relaxed);
        let Some(order) = orders.get(n) else {
            handing_out = false;
            continue;
        };
        let due = plan.pace.due(plan.start, n);
        // Keep collecting answers while the order is not due yet.
        while Instant::now() < due {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => break,
                answer = in_flight.next(), if !in_flight.is_empty() => note(answer)?,
            }
        }
        let key = &plan.keys[order.partition as usize];
        in_flight.push(async move {
            let intended = match plan.pace {
                Pace::Max => Instant::now(),
                Pace::Rate { .. } => due,
            };
            let sold = store.place(&order.id, key).await?;
            anyhow::Ok((n as u32, intended, Instant::now(), sold))
        });
    }
    Ok((done, h))
}
