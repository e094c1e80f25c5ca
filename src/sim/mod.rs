//! A deterministic flash sale: every shard of a config, driven through the
//! in-memory ports on a virtual clock, with seeded arrivals, duplicates,
//! worker latency and failures. Same options and seed, same log. At the end
//! it audits the logs and rebuilds every shard from its log alone.

mod driver;
mod report;

use std::time::Duration;

pub use driver::run;
pub use report::SimReport;

use crate::ports::Latency;

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    /// Unique orders submitted.
    pub orders: u64,
    /// Regular SKUs; order popularity follows a Zipf law (a few hot SKUs).
    pub skus: u32,
    /// Extra pre-order SKUs named `PRE-n` (the demo config backorders them);
    /// a tenth of the orders go to them.
    pub preorder_skus: u32,
    /// Units of each SKU in each warehouse at the start.
    pub stock: u64,
    /// Units added to every partition once, after the last arrival.
    pub restock: u64,
    /// Order arrival rate, per (virtual) second.
    pub rate: f64,
    pub latency: Latency,
    /// Share of enactments that fail.
    pub failure_rate: f64,
    /// Share of failures that are retryable.
    pub retryable_share: f64,
    /// Share of orders sent twice (a producer retry).
    pub duplicate_rate: f64,
    /// Share of arrivals that are carts of 1-5 lines (every fifth
    /// partial, every fifth held: half of those paid, half expire).
    pub carts: f64,
    /// Time for one log append to become durable.
    pub append_latency: Duration,
    pub seed: u64,
    /// Show a progress bar on a terminal.
    pub progress: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            orders: 100_000,
            skus: 50,
            preorder_skus: 2,
            stock: 300,
            restock: 50,
            rate: 20_000.0,
            latency: Latency {
                median: Duration::from_millis(20),
                p99: Duration::from_millis(200),
            },
            failure_rate: 0.02,
            retryable_share: 0.5,
            duplicate_rate: 0.01,
            carts: 0.05,
            append_latency: Duration::from_millis(2),
            seed: 42,
            progress: false,
        }
    }
}
