//! The discrete-event loop: a heap of timed happenings, each fed to the
//! shard it concerns, whose outputs go through the in-memory ports and come
//! back as later happenings. Worker concurrency per warehouse is enforced
//! as in the real runtime.
//!
//! The sale's workload (stock and the orders that arrive) is in
//! `workload`; carts and their coordinators in `carts`; the summing up at
//! the end (audit, rebuild) in `summary`.

mod carts;
mod summary;
mod workload;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Zipf};
use rustc_hash::FxHashMap;

use super::report::SimReport;
use super::SimOptions;
use crate::config::{Config, Router};
use crate::domain::{
    CartConfig, Command, Order, OrderId, Outcome, PartitionKey, Region, Sku, Timestamp, WarehouseId,
};
use crate::ports::{
    now_or_never, EventLog, IntakeQueue, MemIntake, MemLog, ShardId, SimulatedFulfiller,
};
use crate::saga::Carts;
use crate::scheduler::{Dispatch, Output, Shard};

/// Something due at a virtual time (microseconds).
#[derive(Debug)]
enum Happening {
    Arrive(Order),
    NextArrival,
    Appended {
        shard: ShardId,
        seq: u64,
    },
    Outcome {
        shard: ShardId,
        dispatch: Dispatch,
        outcome: Outcome,
    },
    Timer {
        shard: ShardId,
    },
    Forwarded {
        from: ShardId,
        order: Order,
    },
    Restock,
    /// Something for carts and their coordinators.
    Cart(carts::CartHappening),
}

struct Sim<'a> {
    opts: &'a SimOptions,
    config: &'a Config,
    router: Router,
    rng: ChaCha8Rng,
    now_us: u64,
    seq: u64,
    heap: BinaryHeap<Reverse<(u64, u64, usize)>>,
    slots: Vec<Option<Happening>>,
    free: Vec<usize>,
    shards: Vec<Shard>,
    timer_at: Vec<Option<Timestamp>>,
    /// Each shard's cart coordinator, and when it wants its timer.
    carts: Vec<Carts>,
    cart_timer_at: Vec<Option<Timestamp>>,
    cart_config: CartConfig,
    cart_revokes: u64,
    carts_sent: u64,
    /// Carts decided, by outcome (`confirmed`, `rejected: <reason>`).
    cart_outcomes: std::collections::BTreeMap<String, u64>,
    log: MemLog,
    intake: MemIntake,
    fulfiller: SimulatedFulfiller,
    busy: FxHashMap<WarehouseId, usize>,
    waiting: FxHashMap<WarehouseId, VecDeque<(ShardId, Dispatch)>>,
    skus: Vec<Sku>,
    regions: Vec<Region>,
    zipf: Zipf<f64>,
    gaps: Exp<f64>,
    generated: u64,
    submitted: Vec<OrderId>,
    duplicates_sent: u64,
    core: Duration,
    progress: ProgressBar,
}

/// Runs the sale to the end (every order decided, every timer fired).
pub fn run(config: &Config, opts: &SimOptions) -> SimReport {
    let mut sim = Sim::new(config, opts);
    let wall = Instant::now();
    sim.setup();
    while let Some(Reverse((at, _, slot))) = sim.heap.pop() {
        sim.now_us = at;
        let happening = sim.slots[slot].take().expect("scheduled");
        sim.free.push(slot);
        sim.handle(happening);
    }
    sim.progress.finish_and_clear();
    let wall = wall.elapsed();
    sim.report(wall)
}

impl<'a> Sim<'a> {
    fn new(config: &'a Config, opts: &'a SimOptions) -> Self {
        let router = config.router();
        let count = router.shard_count() as usize;
        let mut skus: Vec<Sku> = (0..opts.skus)
            .map(|i| Sku::new(&format!("SKU-{i:05}")).expect("valid"))
            .collect();
        skus.extend(
            (0..opts.preorder_skus).map(|i| Sku::new(&format!("PRE-{i:03}")).expect("valid")),
        );
        let progress = if opts.progress && opts.orders >= 50_000 {
            let bar = ProgressBar::new(opts.orders);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} simulating [{bar:40}] {pos}/{len} orders ({per_sec}, eta {eta})",
                )
                .expect("valid template"),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        let now = Timestamp(0);
        Self {
            opts,
            config,
            rng: ChaCha8Rng::seed_from_u64(opts.seed),
            now_us: 0,
            seq: 0,
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            shards: (0..count)
                .map(|i| Shard::new(shard_config(config, i as ShardId), now))
                .collect(),
            timer_at: vec![None; count],
            carts: (0..count)
                .map(|_| Carts::new(carts::config(config)))
                .collect(),
            cart_timer_at: vec![None; count],
            cart_config: carts::config(config),
            cart_revokes: 0,
            carts_sent: 0,
            cart_outcomes: Default::default(),
            log: MemLog::default(),
            intake: MemIntake::default(),
            fulfiller: SimulatedFulfiller::new(
                opts.latency,
                opts.failure_rate,
                opts.retryable_share,
                opts.seed ^ 0x5eed,
            ),
            busy: FxHashMap::default(),
            waiting: FxHashMap::default(),
            zipf: Zipf::new(u64::from(opts.skus.max(1)), 1.0).expect("n >= 1"),
            skus,
            regions: config.routing.regions.keys().cloned().collect(),
            gaps: Exp::new(opts.rate.max(1e-3)).expect("positive rate"),
            generated: 0,
            submitted: Vec::with_capacity(opts.orders as usize),
            duplicates_sent: 0,
            core: Duration::ZERO,
            progress,
            router,
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp(self.now_us / 1000)
    }

    fn at(&mut self, delay: Duration, h: Happening) {
        let at = self.now_us + delay.as_micros() as u64;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s] = Some(h);
                s
            }
            None => {
                self.slots.push(Some(h));
                self.slots.len() - 1
            }
        };
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, slot)));
    }

    fn handle(&mut self, h: Happening) {
        match h {
            Happening::NextArrival if self.rng.gen_bool(self.opts.carts.clamp(0.0, 1.0)) => {
                self.arrive_cart();
                self.next_arrival();
            }
            Happening::NextArrival => {
                let order = self.next_order();
                self.submitted.push(order.id.clone());
                self.progress.inc(1);
                if self.rng.gen_bool(self.opts.duplicate_rate.clamp(0.0, 1.0)) {
                    self.duplicates_sent += 1;
                    let later = Duration::from_micros(self.rng.gen_range(0..1_000_000));
                    self.at(later, Happening::Arrive(order.clone()));
                }
                self.arrive(order);
                self.next_arrival();
            }
            Happening::Arrive(order) => self.arrive(order),
            Happening::Appended { shard, seq } => {
                self.core_call(shard, |s, now| s.handle_appended(seq, now))
            }
            Happening::Outcome {
                shard,
                dispatch,
                outcome,
            } => {
                let w = dispatch.order.partition.warehouse.clone();
                *self.busy.get_mut(&w).expect("a worker was busy") -= 1;
                if let Some((s, next)) = self.waiting.get_mut(&w).and_then(VecDeque::pop_front) {
                    self.start_work(s, next);
                }
                self.core_call(shard, |s, now| {
                    s.handle_outcome(&dispatch.order.id, dispatch.attempt, outcome, now)
                });
            }
            Happening::Timer { shard } => {
                self.timer_at[shard as usize] = None;
                self.core_call(shard, |s, now| s.handle_timeout(now));
            }
            Happening::Forwarded { from, order } => {
                self.arrive(order.clone());
                self.core_call(from, |s, now| s.handle_forwarded(&order, now));
            }
            Happening::Restock => {
                for w in self.warehouses() {
                    for sku in self.skus.clone() {
                        let partition = PartitionKey::new(w.clone(), sku);
                        let shard = self.router.shard_for(&partition);
                        let units =
                            std::num::NonZeroU64::new(self.opts.restock).expect("restock > 0");
                        self.core_call(shard, |s, now| {
                            s.handle_command(Command::Restock { partition, units }, None, now);
                        });
                    }
                }
            }
            Happening::Cart(h) => self.handle_cart(h),
        }
    }

    /// The next arrival, or the restock once every order has arrived.
    pub(super) fn next_arrival(&mut self) {
        if self.generated < self.opts.orders {
            let gap = Duration::from_secs_f64(self.gaps.sample(&mut self.rng));
            self.at(gap, Happening::NextArrival);
        } else if self.opts.restock > 0 {
            self.at(Duration::from_secs(60), Happening::Restock);
        }
    }

    /// An order reaches its shard's intake and is handed to the shard.
    fn arrive(&mut self, order: Order) {
        let shard = self.router.shard_for(&order.partition);
        now_or_never(self.intake.submit(shard, order));
        for d in now_or_never(self.intake.fetch(shard, 64)) {
            self.core_call(shard, |s, now| {
                crate::runtime::feed(s, d, now);
            });
        }
    }

    /// Runs one input on a shard (timed as core work), then carries out
    /// everything it outputs.
    fn core_call(&mut self, shard: ShardId, f: impl FnOnce(&mut Shard, Timestamp)) {
        let now = self.now();
        let started = Instant::now();
        let s = &mut self.shards[shard as usize];
        f(s, now);
        let mut outputs = Vec::new();
        while let Some(out) = s.poll_output() {
            outputs.push(out);
        }
        let wake = s.poll_timeout();
        self.core += started.elapsed();
        for out in outputs {
            self.output(shard, out);
        }
        if let Some(t) = wake {
            if self.timer_at[shard as usize].is_none_or(|cur| cur > t) {
                self.timer_at[shard as usize] = Some(t);
                let delay = Duration::from_millis(t.0.saturating_sub(self.now().0));
                self.at(delay, Happening::Timer { shard });
            }
        }
    }

    fn output(&mut self, shard: ShardId, out: Output) {
        match out {
            Output::Append(batch) => {
                let batch_id = format!("{shard}-{}", batch.expected_last);
                let seq = now_or_never(self.log.append(
                    shard,
                    batch.expected_last,
                    &batch_id,
                    &batch.events,
                ))
                .expect("one writer per shard in the simulation");
                self.at(self.opts.append_latency, Happening::Appended { shard, seq });
            }
            Output::Dispatch(list) => {
                for d in list {
                    if d.order.line {
                        self.answer_reserved(&d.order);
                        continue;
                    }
                    let w = d.order.partition.warehouse.clone();
                    if self.busy.get(&w).copied().unwrap_or(0) < self.config.concurrency_for(&w) {
                        self.start_work(shard, d);
                    } else {
                        self.waiting.entry(w).or_default().push_back((shard, d));
                    }
                }
            }
            Output::Forward(orders) => {
                for order in orders {
                    self.at(
                        Duration::from_micros(500),
                        Happening::Forwarded { from: shard, order },
                    );
                }
            }
            Output::Ack(acks) => now_or_never(self.intake.ack(shard, &acks)),
            // The simulation's producers send each id to one partition,
            // so it asks no shard for claims (cross-shard dedupe is the
            // runtime's, tested under tests/faults.rs and tests/intake.rs).
            Output::Replies(_) => {}
            Output::CartsDurable => self.cart_call(shard, |c, now| c.handle_appended(now)),
            Output::LinesRejected(lines) => {
                for (line, why) in lines {
                    self.answer_rejected(line, why);
                }
            }
        }
    }

    fn start_work(&mut self, shard: ShardId, dispatch: Dispatch) {
        *self
            .busy
            .entry(dispatch.order.partition.warehouse.clone())
            .or_default() += 1;
        let (took, outcome) = self.fulfiller.sample(&dispatch.order);
        self.at(
            took,
            Happening::Outcome {
                shard,
                dispatch,
                outcome,
            },
        );
    }
}

/// The core's config of shard `shard`.
fn shard_config(config: &Config, shard: ShardId) -> crate::scheduler::ShardConfig {
    crate::scheduler::ShardConfig {
        shard,
        ..config.shard_config()
    }
}
