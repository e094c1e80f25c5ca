//! A simulated worker pool: seeded latency and failures, idempotent by order
//! id like a real fulfiller must be. The simulation draws from it directly
//! on its virtual clock; as a [`Fulfiller`] it sleeps for real.

use std::time::Duration;

use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use rustc_hash::FxHashSet;

use super::Fulfiller;
use crate::domain::{Attempt, Order, OrderId, Outcome};

/// Worker latency: log-normal with the given median and 99th percentile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub median: Duration,
    pub p99: Duration,
}

impl Latency {
    fn distribution(&self) -> LogNormal<f64> {
        let median = self.median.as_secs_f64().max(1e-6);
        let p99 = self.p99.as_secs_f64().max(median);
        // ln(p99 / median) = z(0.99) * sigma
        let sigma = (p99 / median).ln() / 2.326_348;
        LogNormal::new(median.ln(), sigma).expect("finite parameters")
    }
}

struct Inner {
    rng: ChaCha8Rng,
    enacted: FxHashSet<OrderId>,
    enactments: u64,
}

/// Fails `failure_rate` of calls, `retryable_share` of those retryably.
pub struct SimulatedFulfiller {
    latency: LogNormal<f64>,
    failure_rate: f64,
    retryable_share: f64,
    inner: Mutex<Inner>,
}

impl SimulatedFulfiller {
    pub fn new(latency: Latency, failure_rate: f64, retryable_share: f64, seed: u64) -> Self {
        Self {
            latency: latency.distribution(),
            failure_rate: failure_rate.clamp(0.0, 1.0),
            retryable_share: retryable_share.clamp(0.0, 1.0),
            inner: Mutex::new(Inner {
                rng: ChaCha8Rng::seed_from_u64(seed),
                enacted: FxHashSet::default(),
                enactments: 0,
            }),
        }
    }

    /// Draws how long this call takes and how it ends. An order enacted
    /// before succeeds again without a second enactment (idempotency).
    pub fn sample(&self, order: &Order) -> (Duration, Outcome) {
        let mut inner = self.inner.lock();
        let took = Duration::from_secs_f64(self.latency.sample(&mut inner.rng).min(3600.0));
        if inner.enacted.contains(&order.id) {
            return (took, Outcome::Fulfilled);
        }
        if inner.rng.gen_bool(self.failure_rate) {
            let retryable = inner.rng.gen_bool(self.retryable_share);
            let reason = if retryable {
                "worker timeout"
            } else {
                "payment declined"
            };
            return (
                took,
                Outcome::Failed {
                    reason: reason.to_owned(),
                    retryable,
                },
            );
        }
        inner.enacted.insert(order.id.clone());
        inner.enactments += 1;
        (took, Outcome::Fulfilled)
    }

    /// Orders enacted (each at most once).
    pub fn enactments(&self) -> u64 {
        self.inner.lock().enactments
    }
}

impl Fulfiller for SimulatedFulfiller {
    async fn fulfil(&self, order: &Order, _attempt: Attempt) -> Outcome {
        let (took, outcome) = self.sample(order);
        tokio::time::sleep(took).await;
        outcome
    }
}
