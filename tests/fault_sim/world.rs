//! What every fault-injecting port shares in one seeded run: the one RNG,
//! the per-seed fault rates, the trace, the crash requests to the driver,
//! and what the ports observed that breaks an invariant on the spot.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use allot::domain::{OrderId, PartitionKey};
use allot::ports::{MemLog, ShardId};
use parking_lot::Mutex;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::mpsc;

/// Per-seed chance of each fault at each opportunity.
#[derive(Debug, Clone)]
pub struct Rates {
    /// A port call stops the shard where it stands (crash at that step).
    pub crash_at_step: f64,
    /// Mean virtual time between crashes at an arbitrary moment.
    pub crash_every: Duration,
    pub ack_lost: f64,
    pub redeliver_after_ack: f64,
    pub duplicate_delivery: f64,
    /// The append fails without landing.
    pub append_refused: f64,
    /// The append lands, then the caller gets an error.
    pub append_landed_error: f64,
    /// The append lands, then the caller never hears back (times out).
    pub append_landed_timeout: f64,
    pub snapshot_fails: f64,
    /// The fulfiller enacts the order, then the call times out.
    pub worker_timeout_after_work: f64,
    /// The call is slower than the worker timeout, nothing enacted.
    pub worker_slow: f64,
    pub worker_fails_retryable: f64,
    pub worker_fails_permanently: f64,
    /// Longest delay of a forward between shards (reordering).
    pub forward_delay: Duration,
    /// The broker's ack wait: an unacked delivery comes back after it.
    pub ack_wait: Duration,
}

impl Rates {
    /// Rates drawn from the seed: some seeds are calm, some are storms.
    pub fn draw(rng: &mut ChaCha8Rng) -> Self {
        let mut p = |max: f64| {
            if rng.gen_bool(0.3) {
                0.0
            } else {
                rng.gen_range(0.0..max)
            }
        };
        let rates = Self {
            crash_at_step: p(0.02),
            crash_every: Duration::ZERO,
            ack_lost: p(0.2),
            redeliver_after_ack: p(0.1),
            duplicate_delivery: p(0.15),
            append_refused: p(0.15),
            append_landed_error: p(0.15),
            append_landed_timeout: p(0.1),
            snapshot_fails: p(0.3),
            worker_timeout_after_work: p(0.25),
            worker_slow: p(0.1),
            worker_fails_retryable: p(0.2),
            worker_fails_permanently: p(0.05),
            forward_delay: Duration::ZERO,
            ack_wait: Duration::ZERO,
        };
        Self {
            crash_every: Duration::from_millis(rng.gen_range(100..3_000)),
            forward_delay: Duration::from_millis(rng.gen_range(0..200)),
            ack_wait: Duration::from_millis(rng.gen_range(150..1_000)),
            ..rates
        }
    }
}

/// One run's shared state. Every port holds an `Arc` of it.
pub struct World {
    rng: Mutex<ChaCha8Rng>,
    pub rates: Rates,
    faults: AtomicBool,
    trace: Mutex<String>,
    started: tokio::time::Instant,
    crashes: mpsc::UnboundedSender<(ShardId, &'static str)>,
    /// The durable logs, shared with the checks.
    pub log: Arc<MemLog>,
    /// Orders with a final decision in some log (set as appends land).
    pub decided: Mutex<FxHashSet<OrderId>>,
    /// Order ids the fulfiller enacted, with how many times it did.
    pub enacted: Mutex<FxHashMap<OrderId, u32>>,
    /// What the ports saw that must never happen.
    pub violations: Mutex<Vec<String>>,
    pub shard_of: Box<dyn Fn(&PartitionKey) -> ShardId + Send + Sync>,
}

impl World {
    pub fn new(
        rng: ChaCha8Rng,
        rates: Rates,
        shard_of: Box<dyn Fn(&PartitionKey) -> ShardId + Send + Sync>,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<(ShardId, &'static str)>) {
        let (crashes, requests) = mpsc::unbounded_channel();
        let world = Self {
            rng: Mutex::new(rng),
            rates,
            faults: AtomicBool::new(true),
            trace: Mutex::new(String::new()),
            started: tokio::time::Instant::now(),
            crashes,
            log: Arc::new(MemLog::default()),
            decided: Mutex::default(),
            enacted: Mutex::default(),
            violations: Mutex::default(),
            shard_of,
        };
        (Arc::new(world), requests)
    }

    /// True with probability `rate` while faults are on.
    pub fn fault(&self, rate: f64) -> bool {
        self.faults.load(Ordering::Relaxed) && rate > 0.0 && self.rng.lock().gen_bool(rate)
    }

    pub fn faults_on(&self) -> bool {
        self.faults.load(Ordering::Relaxed)
    }

    /// From now on no fault is injected: the system must settle.
    pub fn stop_faults(&self) {
        self.faults.store(false, Ordering::Relaxed);
        self.note(format_args!("faults off"));
    }

    /// A uniform draw in `0..n` (0 if `n` is 0).
    pub fn below(&self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.rng.lock().gen_range(0..n)
        }
    }

    /// A delay of up to `max`.
    pub fn delay(&self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.as_micros() as u64 + 1))
    }

    /// Appends one trace line, stamped with the virtual time.
    pub fn note(&self, line: std::fmt::Arguments<'_>) {
        let ms = self.started.elapsed().as_micros() as f64 / 1000.0;
        let mut trace = self.trace.lock();
        let _ = writeln!(trace, "{ms:>9.3} {line}");
    }

    pub fn trace(&self) -> String {
        self.trace.lock().clone()
    }

    pub fn violation(&self, what: String) {
        self.note(format_args!("VIOLATION {what}"));
        self.violations.lock().push(what);
    }

    /// A crash at this step: with the seed's chance, asks the driver to kill
    /// `shard` now and never returns (the task is aborted where it stands).
    pub async fn maybe_crash(&self, shard: ShardId, step: &'static str) {
        if self.fault(self.rates.crash_at_step) {
            self.note(format_args!("crash s{shard} at step: {step}"));
            let _ = self.crashes.send((shard, step));
            std::future::pending::<()>().await;
        }
    }
}
