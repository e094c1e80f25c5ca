//! The worker pool: bounded concurrency per warehouse, shared by every shard
//! of the instance, with a timeout per attempt.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::Semaphore;

use crate::domain::{Attempt, Order, Outcome, WarehouseId};
use crate::ports::Fulfiller;

/// Per-warehouse limits on enactments in flight.
pub struct Workers<F> {
    fulfiller: F,
    limits: DashMap<WarehouseId, Arc<Semaphore>>,
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
            limits: DashMap::new(),
            concurrency: Box::new(concurrency),
            timeout,
        }
    }

    pub fn fulfiller(&self) -> &F {
        &self.fulfiller
    }

    fn semaphore(&self, w: &WarehouseId) -> Arc<Semaphore> {
        if let Some(s) = self.limits.get(w) {
            return s.clone();
        }
        let permits = (self.concurrency)(w).max(1);
        self.limits
            .entry(w.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(permits)))
            .clone()
    }

    /// Enacts `order` once a worker of its warehouse is free. A timeout is
    /// an unknown outcome: retryable, with the same idempotency key.
    pub async fn run(&self, order: &Order, attempt: Attempt) -> Outcome {
        let semaphore = self.semaphore(&order.partition.warehouse);
        let _permit = semaphore
            .acquire()
            .await
            .expect("worker semaphores are never closed");
        match tokio::time::timeout(self.timeout, self.fulfiller.fulfil(order, attempt)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Failed {
                reason: format!("worker timed out after {:?}", self.timeout),
                retryable: true,
            },
        }
    }
}
