//! A shard's configuration: the rules it applies, how long orders wait on
//! in-flight work, how it remembers ids, and how big a log append may be.

use std::time::Duration;

use crate::domain::{DedupeConfig, Rules, ShardState, Window};

/// What a shard needs to know, as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardConfig {
    pub rules: Rules,
    /// How long queued orders wait on in-flight work when nothing fits.
    pub max_wait: Duration,
    /// Decided order ids remembered in full (answers, reroute hand-offs).
    pub dedupe_horizon: usize,
    /// How long every id decided or claimed is remembered, and how many.
    pub dedupe_window: Window,
    /// This shard and the shard count: ids are claimed at their owner.
    pub shard: u32,
    pub shards: u32,
    /// Most events in one log append.
    pub max_batch_events: usize,
}

impl ShardConfig {
    /// How this shard remembers ids.
    pub fn dedupe(&self) -> DedupeConfig {
        DedupeConfig {
            horizon: self.dedupe_horizon,
            window: self.dedupe_window,
            shard: self.shard,
            shards: self.shards.max(1),
        }
    }

    /// The state of this shard with no history.
    pub fn empty_state(&self) -> ShardState {
        ShardState::with(self.dedupe())
    }
}

impl Default for ShardConfig {
    fn default() -> Self {
        Self {
            rules: Rules::default(),
            max_wait: Duration::from_secs(5),
            dedupe_horizon: 200_000,
            dedupe_window: Window::default(),
            shard: 0,
            shards: 1,
            max_batch_events: 4096,
        }
    }
}
