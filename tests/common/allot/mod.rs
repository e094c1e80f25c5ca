//! allot under test against a [`super::nats::NatsServer`]: the `allot`
//! binary as a child process (when a test must SIGKILL it) or
//! `allot::service::serve` in-process, the producer side of a sale, and
//! [`Ledger`], which reads EVENTS back and audits what was decided; and
//! a sale under way for the fault tests to break (`faults`).
//!
//! Only child processes spawned here are ever signalled, by their pid, and
//! each is killed on drop. Waiting on a real broker and a real process
//! cannot use virtual time: waits poll with a deadline instead.

mod faults;
mod ledger;
mod process;
mod sale;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream::{self, Context};
use tempfile::TempDir;

use allot::config::Config;
use allot::domain::{OrderId, PartitionKey, Sku, WarehouseId};
use allot::ports::Latency;
use allot::service::FulfillerChoice;

pub use faults::{few_workers, first_half_under_way, slow_exact_and, sold_out_after, SLOW_EXACT};
pub use ledger::{wait_intake_drained, Ledger};
pub use process::{AllotProcess, InProcess};
pub use sale::{publish_all, submit, wait_for_streams, Outgoing, Sale};

/// One region with one warehouse and `shards` shards; out of stock means
/// rejected, so an order with no stock is decided at once.
pub fn one_warehouse(shards: u32) -> String {
    format!(
        r#"
[shards]
count = {shards}

[routing]
default_region = "eu"

[routing.regions]
eu = ["ams"]

[exhaustion]
default = {{ policy = "reject" }}
"#
    )
}

/// How often the waits look again.
const POLL: Duration = Duration::from_millis(50);

/// A validated config, also written to a file for the `allot` binary.
pub struct ConfigFile {
    pub config: Config,
    path: PathBuf,
    _dir: TempDir,
}

impl ConfigFile {
    pub fn new(toml: &str) -> ConfigFile {
        let config = Config::from_toml(toml, "<test config>").expect("the test config is valid");
        let dir = tempfile::Builder::new()
            .prefix("allot-config-")
            .tempdir()
            .expect("create a temp dir for the config");
        let path = dir.path().join("allot.toml");
        std::fs::write(&path, toml).expect("write the config");
        ConfigFile {
            config,
            path,
            _dir: dir,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The simulated fulfiller that never fails, so a sale's counts are exact.
pub fn exact_fulfiller(seed: u64) -> FulfillerChoice {
    FulfillerChoice::Simulated {
        latency: Latency {
            median: Duration::from_millis(2),
            p99: Duration::from_millis(20),
        },
        failure_rate: 0.0,
        seed,
    }
}

/// A JetStream context on `url`, a server URL or a comma-separated list.
pub async fn jetstream(url: &str) -> Context {
    let servers: Vec<async_nats::ServerAddr> = url
        .split(',')
        .map(|u| u.parse().expect("a nats:// URL"))
        .collect();
    let client = async_nats::connect(servers)
        .await
        .expect("connect to the test nats-server");
    jetstream::new(client)
}

pub fn partition(warehouse: &str, sku: &str) -> PartitionKey {
    PartitionKey::new(
        WarehouseId::new(warehouse).expect("valid warehouse"),
        Sku::new(sku).expect("valid sku"),
    )
}

pub fn order_id(id: &str) -> OrderId {
    OrderId::new(id).expect("valid order id")
}

pub fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

pub fn order_ids(ids: &[String]) -> Vec<OrderId> {
    ids.iter().map(|id| order_id(id)).collect()
}
