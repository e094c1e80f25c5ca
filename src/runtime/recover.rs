//! Recovery of a shard: its latest snapshot plus the log after it.

use tracing::info;

use super::RuntimeError;
use crate::domain::{CartEvent, Event, ShardState};
use crate::ports::{EventLog, ShardId, Snapshots};
use crate::saga::CartState;
use crate::scheduler::ShardConfig;
use crate::wire::snapshot::decode_snapshot_with_carts;

/// Rebuilds a shard's state from its latest snapshot plus the log after it.
/// Returns the state and the log sequence it reflects.
pub async fn recover<L: EventLog, S: Snapshots>(
    shard: ShardId,
    log: &L,
    snapshots: &S,
    config: &ShardConfig,
) -> Result<(ShardState, u64), RuntimeError> {
    let r = recover_with_carts(shard, log, snapshots, config).await?;
    Ok((r.state, r.seq))
}

/// A shard rebuilt: its state, the log sequence it reflects, and its
/// cart coordinator's snapshot and events after it.
pub struct Recovered {
    pub state: ShardState,
    pub seq: u64,
    pub carts: Vec<CartState>,
    pub cart_events: Vec<CartEvent>,
}

/// [`recover`], with the shard's carts.
pub async fn recover_with_carts<L: EventLog, S: Snapshots>(
    shard: ShardId,
    log: &L,
    snapshots: &S,
    config: &ShardConfig,
) -> Result<Recovered, RuntimeError> {
    let loaded = snapshots
        .load(shard)
        .await
        .map_err(|source| RuntimeError::Log { shard, source })?;
    let (mut state, mut seq, carts) = match loaded {
        Some((seq, bytes)) => {
            let (state, carts) = decode_snapshot_with_carts(&bytes)
                .map_err(|why| RuntimeError::Snapshot { shard, seq, why })?;
            (state, seq, carts)
        }
        None => (config.empty_state(), 0, Vec::new()),
    };
    let mut cart_events = Vec::new();
    let tail = log
        .read(shard, seq)
        .await
        .map_err(|source| RuntimeError::Log { shard, source })?;
    let entries = tail.len();
    for entry in tail {
        // Each entry once, in order: a log that skips or repeats one is
        // not rebuilt from.
        if entry.prev != seq {
            return Err(RuntimeError::Chain {
                shard,
                seq: entry.seq,
                prev: entry.prev,
                last: seq,
            });
        }
        for event in &entry.events {
            if let Event::Cart { event } = event {
                cart_events.push(event.as_ref().clone());
            }
            state
                .evolve(event)
                .map_err(|source| RuntimeError::Corrupt { shard, source })?;
        }
        seq = entry.seq;
    }
    info!(
        shard,
        seq,
        entries,
        live = state.live_orders().count(),
        "shard recovered"
    );
    Ok(Recovered {
        state,
        seq,
        carts,
        cart_events,
    })
}
