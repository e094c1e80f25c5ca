//! `/livez` (the process answers) and `/readyz` (the broker connected,
//! streams verified, this instance's share of the shards owned and
//! recovered, the views caught up with the log): 200 when all hold, else 503
//! with each check's state, so a load balancer stops sending traffic to an
//! instance that cannot file or decide orders.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::runtime::views::CaughtUp;
use crate::runtime::OwnedShards;

/// Whether the broker connection is up.
pub type Connected = Arc<dyn Fn() -> bool + Send + Sync>;

/// What readiness is judged on, filled in as `allot serve` starts.
pub struct Health {
    connected: Connected,
    views: Arc<CaughtUp>,
    streams_verified: AtomicBool,
    owned: Arc<OwnedShards>,
    shard_count: usize,
    /// How many shards this instance should own: all of them, or its fair
    /// share when shards are leased.
    expected: Arc<AtomicUsize>,
}

impl Health {
    pub fn new(
        connected: Connected,
        views: Arc<CaughtUp>,
        owned: Arc<OwnedShards>,
        shard_count: usize,
    ) -> Self {
        Self {
            connected,
            views,
            streams_verified: AtomicBool::new(false),
            owned,
            shard_count,
            expected: Arc::new(AtomicUsize::new(shard_count)),
        }
    }

    /// The count the shard leases keep at this instance's fair share.
    pub fn expected(&self) -> Arc<AtomicUsize> {
        self.expected.clone()
    }

    /// The streams exist with the expected config.
    pub fn set_streams_verified(&self) {
        self.streams_verified.store(true, Ordering::Release);
    }

    pub fn report(&self) -> Readiness {
        let nats = (self.connected)();
        let streams = self.streams_verified.load(Ordering::Acquire);
        let views = self.views.get();
        let owned = self.owned.count();
        let expected = self.expected.load(Ordering::Relaxed);
        Readiness {
            ready: nats && streams && views && owned >= expected,
            nats_connected: nats,
            views_caught_up: views,
            streams_verified: streams,
            shards_owned: owned,
            shards_expected: expected,
            shards: self.shard_count,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub nats_connected: bool,
    pub streams_verified: bool,
    /// The views have read the log up to where it was at start.
    pub views_caught_up: bool,
    pub shards_owned: usize,
    /// This instance's share of the shards.
    pub shards_expected: usize,
    pub shards: usize,
}

pub async fn livez() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(health): State<Arc<Health>>) -> Response {
    let report = health.report();
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}
