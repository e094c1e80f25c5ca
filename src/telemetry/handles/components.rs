//! Metric handles of the components beside the shards: worker attempt
//! durations per warehouse, ingress outcomes, the NATS connection's state
//! changes, the views' lag and size, and the dead letters waiting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

use crate::domain::{CartReason, Outcome, WarehouseId};
use crate::saga::CartOutcome;
use crate::telemetry::names::*;

/// Worker attempt durations of one warehouse, by outcome.
pub struct WorkerMetrics {
    ok: Histogram,
    failed: Histogram,
    retryable: Histogram,
    timeout: Histogram,
}

impl WorkerMetrics {
    pub fn new(warehouse: &WarehouseId) -> Self {
        let w = warehouse.to_string();
        let by = |outcome: &'static str| histogram!(WORKER_DURATION, WAREHOUSE => w.clone(), OUTCOME => outcome);
        Self {
            ok: by("ok"),
            failed: by("failed"),
            retryable: by("retryable"),
            timeout: by("timeout"),
        }
    }

    /// One attempt took `elapsed`; `timed_out` if the runtime gave up on it.
    pub fn record(&self, outcome: &Outcome, timed_out: bool, elapsed: Duration) {
        let h = match outcome {
            _ if timed_out => &self.timeout,
            Outcome::Unknown { .. } => &self.timeout,
            Outcome::Fulfilled => &self.ok,
            Outcome::Failed {
                retryable: true, ..
            } => &self.retryable,
            Outcome::Failed { .. } => &self.failed,
        };
        h.record(elapsed.as_secs_f64());
    }
}

/// How ingress answered a submitted order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Accepted,
    /// It failed validation.
    Invalid,
    /// Valid, but no warehouse serves its region.
    Unroutable,
    /// The broker did not store it; the producer should retry.
    NotFiled,
}

/// Ingress counters by outcome.
#[derive(Clone)]
pub struct IngressMetrics {
    by_outcome: [Counter; 4],
}

impl Default for IngressMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl IngressMetrics {
    pub fn new() -> Self {
        let by = ["accepted", "invalid", "unroutable", "not_filed"]
            .map(|outcome| counter!(ORDERS_RECEIVED, OUTCOME => outcome));
        Self { by_outcome: by }
    }

    pub fn received(&self, outcome: Received) {
        let i = match outcome {
            Received::Accepted => 0,
            Received::Invalid => 1,
            Received::Unroutable => 2,
            Received::NotFiled => 3,
        };
        self.by_outcome[i].increment(1);
    }
}

/// The NATS connection's state changes.
#[derive(Clone)]
pub struct NatsMetrics {
    connected: Gauge,
    reconnects: Counter,
    disconnects: Counter,
    was_connected: Arc<AtomicBool>,
}

impl Default for NatsMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl NatsMetrics {
    pub fn new() -> Self {
        Self {
            connected: gauge!(NATS_CONNECTED),
            reconnects: counter!(NATS_RECONNECTS),
            disconnects: counter!(NATS_DISCONNECTS),
            was_connected: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn connected(&self) {
        self.connected.set(1.0);
        if self.was_connected.swap(true, Ordering::Relaxed) {
            self.reconnects.increment(1);
        }
    }

    pub fn disconnected(&self) {
        self.connected.set(0.0);
        self.disconnects.increment(1);
    }
}

/// The views' lag and size.
#[derive(Clone)]
pub struct ViewMetrics {
    lag: Histogram,
    orders: Gauge,
}

impl Default for ViewMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ViewMetrics {
    pub fn new() -> Self {
        Self {
            lag: histogram!(VIEW_LAG),
            orders: gauge!(VIEW_ORDERS),
        }
    }

    /// A batch became visible `lag` after the log stored it.
    pub fn applied(&self, lag: Duration) {
        self.lag.record(lag.as_secs_f64());
    }

    pub fn orders(&self, n: usize) {
        self.orders.set(n as f64);
    }
}

/// Messages waiting in the DLQ stream.
#[derive(Clone)]
pub struct DeadLetterMetrics {
    waiting: Gauge,
}

impl Default for DeadLetterMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl DeadLetterMetrics {
    pub fn new() -> Self {
        Self {
            waiting: gauge!(DEAD_LETTERS),
        }
    }

    /// The DLQ stream holds `n` messages.
    pub fn waiting(&self, n: u64) {
        self.waiting.set(n as f64);
    }
}

/// Cart counters by outcome.
#[derive(Clone)]
pub struct CartMetrics {
    by_outcome: [Counter; 5],
    revokes: Counter,
}

impl Default for CartMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl CartMetrics {
    pub fn new() -> Self {
        let by = [
            "opened",
            "confirmed",
            "rejected",
            "hold_expired",
            "cancelled",
        ]
        .map(|outcome| counter!(CARTS, OUTCOME => outcome));
        Self {
            by_outcome: by,
            revokes: counter!(CART_REVOKES),
        }
    }

    pub fn opened(&self) {
        self.by_outcome[0].increment(1);
    }

    pub fn decided(&self, outcome: &CartOutcome) {
        let i = match outcome {
            CartOutcome::Confirmed => 1,
            CartOutcome::Rejected {
                reason: CartReason::HoldExpired,
            } => 3,
            CartOutcome::Rejected { .. } => 2,
            CartOutcome::Cancelled => 4,
        };
        self.by_outcome[i].increment(1);
    }

    pub fn revoked(&self) {
        self.revokes.increment(1);
    }
}
