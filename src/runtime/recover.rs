//! Recovery of a shard: its latest snapshot plus the log after it.

use tracing::info;

use super::RuntimeError;
use crate::domain::ShardState;
use crate::ports::{EventLog, ShardId, Snapshots};
use crate::scheduler::ShardConfig;
use crate::wire::snapshot::decode_snapshot;

/// Rebuilds a shard's state from its latest snapshot plus the log after it.
/// Returns the state and the log sequence it reflects.
pub async fn recover<L: EventLog, S: Snapshots>(
    shard: ShardId,
    log: &L,
    snapshots: &S,
    config: &ShardConfig,
) -> Result<(ShardState, u64), RuntimeError> {
    let loaded = snapshots
        .load(shard)
        .await
        .map_err(|source| RuntimeError::Log { shard, source })?;
    let (mut state, mut seq) = match loaded {
        Some((seq, bytes)) => {
            let state = decode_snapshot(&bytes).map_err(|why| RuntimeError::Snapshot {
                shard,
                seq,
                why,
            })?;
            (state, seq)
        }
        None => (config.empty_state(), 0),
    };
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
    Ok((state, seq))
}
