//! The worker pool: bounded concurrency per warehouse, shared by every shard
//! of the instance, with a timeout per attempt and its duration recorded by
//! outcome.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::Semaphore;

use crate::domain::{Attempt, Order, Outcome, WarehouseId};
use crate::ports::Fulfiller;
use crate::telemetry::WorkerMetrics;

/// One warehouse's workers.
struct Pool {
    permits: Semaphore,
    metrics: WorkerMetrics,
}

/// Per-warehouse limits on enactments in flight.
pub struct Workers<F> {
    fulfiller: F,
    pools: DashMap<WarehouseId, Arc<Pool>>,
    concurrency: Box<dyn Fn(&WarehouseId) -> usize + Send + Sync>,
    timeout: Duration,
}

impl<F: Fulfiller> Workers<F> {
    pub fn new(
        fulfiller: F,
        concurrency: impl Fn(&WarehouseId) -> usize + Send + Sync + 'static,
        timeout: Duration,
    ) -> Self {
        Self {
            fulfiller,
            pools: DashMap::new(),
            concurrency: Box::new(concurrency),
            timeout,
        }
    }

    pub fn fulfiller(&self) -> &F {
        &self.fulfiller
    }

    fn pool(&self, w: &WarehouseId) -> Arc<Pool> {
        if let Some(pool) = self.pools.get(w) {
            return pool.clone();
        }
        let permits = (self.concurrency)(w).max(1);
        self.pools
            .entry(w.clone())
            .or_insert_with(|| {
                Arc::new(Pool {
                    permits: Semaphore::new(permits),
                    metrics: WorkerMetrics::new(w),
                })
            })
            .clone()
    }

    /// Enacts `order` once a worker of its warehouse is free. A timeout is
    /// an unknown outcome: retryable, with the same idempotency key.
    pub async fn run(&self, order: &Order, attempt: Attempt) -> Outcome {
        let pool = self.pool(&order.partition.warehouse);
        let _permit = pool
            .permits
            .acquire()
            .await
            .expect("worker semaphores are never closed");
        let started = Instant::now();
        let answer =
            tokio::time::timeout(self.timeout, self.fulfiller.fulfil(order, attempt)).await;
        let timed_out = answer.is_err();
        let outcome = answer.unwrap_or_else(|_| Outcome::Unknown {
            reason: format!("worker timed out after {:?}", self.timeout),
        });
        pool.metrics.record(&outcome, timed_out, started.elapsed());
        outcome
    }
}
