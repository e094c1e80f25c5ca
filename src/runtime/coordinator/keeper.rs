//! One held shard's lease keeper: a task of its own beside the shard,
//! so nothing the coordinator waits for (a survey, an acquire, a release)
//! delays a renewal, and no renewal waits for another shard's.
//!
//! It renews every sixth of the TTL, each call bounded by a quarter of it,
//! and stops the shard (its abort token) at its deadline: 3/4 of the TTL
//! after the last renewal that went through was *sent* (the store counts
//! its TTL from the write, which comes later), whether or not a call is
//! still in flight. So one slow or lost renewal costs nothing, and the
//! shard is stopped before its lease can lapse and be taken.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::ports::{LeaseError, Leases, ShardId};

/// What the coordinator reads of a kept lease.
#[derive(Debug, Default)]
pub struct Lease {
    revision: AtomicU64,
    lost: AtomicBool,
}

impl Lease {
    /// The revision last written (to release it at).
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Acquire)
    }

    /// Whether the lease was taken, lapsed or not renewed in time: the
    /// shard was aborted.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }
}

/// A running keeper: `done` ends it (after any call in flight), `task`
/// says when it has.
pub struct Keeper {
    pub lease: Arc<Lease>,
    pub done: CancellationToken,
    pub task: JoinHandle<()>,
}

/// Starts keeping shard `shard`'s lease, taken at `revision` by a call
/// sent at `sent`; aborts the shard through `abort` once the lease is not
/// surely ours.
pub fn keep<L: Leases + Clone>(
    leases: &L,
    shard: ShardId,
    ttl: Duration,
    (revision, sent): (u64, Instant),
    abort: CancellationToken,
) -> Keeper {
    let lease = Arc::new(Lease {
        revision: AtomicU64::new(revision),
        lost: AtomicBool::new(false),
    });
    let done = CancellationToken::new();
    let task = tokio::spawn(renew(
        leases.clone(),
        shard,
        ttl,
        sent,
        lease.clone(),
        abort,
        done.clone(),
    ));
    Keeper { lease, done, task }
}

async fn renew<L: Leases>(
    leases: L,
    shard: ShardId,
    ttl: Duration,
    sent: Instant,
    lease: Arc<Lease>,
    abort: CancellationToken,
    done: CancellationToken,
) {
    let (period, call, hold) = (ttl / 6, ttl / 4, ttl * 3 / 4);
    let mut deadline = sent + hold;
    let mut next = sent + period;
    let lose = |why: &str| {
        error!(shard, "shard lease {why}; stopping the shard now");
        lease.lost.store(true, Ordering::Release);
        abort.cancel();
    };
    loop {
        tokio::select! {
            () = sleep_until(next) => {}
            () = sleep_until(deadline) => return lose("not renewed in time"),
            () = done.cancelled() => return,
            () = abort.cancelled() => return,
        }
        let sent = Instant::now();
        // A call in flight is seen through (bounded) even when `done`, so
        // the revision released afterwards is the last one written.
        let renewed = tokio::select! {
            renewed = timeout(call, leases.renew(shard, lease.revision())) => renewed,
            () = sleep_until(deadline) => return lose("not renewed in time"),
        };
        match renewed {
            Ok(Ok(revision)) => {
                lease.revision.store(revision, Ordering::Release);
                deadline = deadline.max(sent + hold);
            }
            Ok(Err(LeaseError::Taken)) => return lose("lost to another instance"),
            Ok(Err(LeaseError::Lapsed)) => return lose("lapsed before it was renewed"),
            Ok(Err(e)) => warn!(shard, error = %e, "shard lease not renewed; trying again"),
            Err(_) => warn!(
                shard,
                "shard lease not renewed: no answer within {call:?}; trying again"
            ),
        }
        next = sent + period;
    }
}
