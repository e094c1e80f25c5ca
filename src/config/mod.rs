//! Config: the TOML file that sets shards, routing rules, exhaustion and
//! retry policies, scheduler knobs, worker concurrency and limits, and the
//! [`Router`] built from it. It reaches the core as plain domain values
//! ([`ExhaustionRules`], [`RetryPolicy`], ...), never as this type.
//!
//! Loading is two steps. Parsing (unknown keys are errors, values go
//! through the domain's validating constructors) stops at the first
//! problem; then [`Config::problems`] collects every broken rule that spans
//! keys. Each error names its key path, e.g.
//! `config/default.toml: routing.regions.eu[1]: warehouse has '.' at byte 1;
//! allowed: A-Z a-z 0-9 _ -`. An empty file is a valid config.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::Rules;
use crate::domain::{ExhaustionRules, RetryPolicy, WarehouseId, Window};
use crate::scheduler::ShardConfig;

pub(crate) mod duration;
mod error;
mod layers;
mod router;
mod sections;
mod service;
mod validate;

#[cfg(test)]
mod tests;

pub use crate::domain::CancelConfirmed;
pub use error::{ConfigError, Problem};
pub use layers::{Layers, ENV_PREFIX};
pub use router::{nats_partition, Route, RouteError, Router};
pub use sections::{
    ExhaustionConfig, ExhaustionRule, LimitsConfig, RetryConfig, RoutingConfig, SchedulerConfig,
    ShardPin, ShardsConfig, WarehousePin, WorkersConfig, MAX_SHARDS,
};
pub use service::{
    ClusterConfig, FulfillerConfig, FulfillerKind, HttpConfig, LogConfig, LogFormat, NatsConfig,
    RuntimeSection, ViewsSection,
};

/// Where [`check`] looks when given no path, relative to the working
/// directory.
pub const DEFAULT_PATH: &str = "config/default.toml";

/// A whole config file. [`Default`] is what an empty file gives;
/// serializing it gives TOML that parses back to an equal value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub shards: ShardsConfig,
    pub routing: RoutingConfig,
    pub exhaustion: ExhaustionConfig,
    pub retry: RetryConfig,
    pub scheduler: SchedulerConfig,
    pub workers: WorkersConfig,
    pub limits: LimitsConfig,
    pub nats: NatsConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub fulfiller: FulfillerConfig,
    pub runtime: RuntimeSection,
    pub views: ViewsSection,
    pub cluster: ClusterConfig,
}

impl Config {
    /// Parses and validates `text`. `origin` (a path, or a label such as
    /// `<inline>`) starts every error line.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(de)
            .map_err(|e| ConfigError::parse(origin, text, e))?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                origin: origin.to_owned(),
                problems,
            })
        }
    }

    /// Reads, parses and validates the file at `path`; errors start with
    /// the path as given.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            origin: origin.clone(),
            source,
        })?;
        Config::from_toml(&text, &origin)
    }

    /// The config as TOML, every default written out.
    pub fn to_toml(&self) -> String {
        // Every field is a string, integer, table or array of those, and
        // `None`s are skipped, so serializing cannot fail; the round-trip
        // test holds this.
        toml::to_string(self).expect("a Config always serializes to TOML")
    }

    /// The exhaustion policy per SKU pattern, first match wins.
    pub fn exhaustion_rules(&self) -> ExhaustionRules {
        ExhaustionRules {
            rules: self
                .exhaustion
                .rules
                .iter()
                .map(|r| (r.sku.clone(), r.policy.clone()))
                .collect(),
            default: self.exhaustion.default.clone(),
        }
    }

    /// Retries of failed enactments.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.retry.max_retries,
            base_backoff: self.retry.base_backoff,
            max_backoff: self.retry.max_backoff,
        }
    }

    /// How many enactments may run at once for warehouse `w`: its
    /// `workers.warehouses` entry, else `workers.default_concurrency`.
    pub fn concurrency_for(&self, w: &WarehouseId) -> usize {
        self.workers
            .warehouses
            .get(w)
            .copied()
            .unwrap_or(self.workers.default_concurrency)
    }

    /// Every warehouse the config names (regions, SKU pins, worker
    /// concurrency), sorted, once each. Orders may name others.
    pub fn warehouses(&self) -> Vec<WarehouseId> {
        let named = self.routing.regions.values().flatten();
        let pinned = self.routing.pins.iter().map(|p| &p.warehouse);
        let staffed = self.workers.warehouses.keys();
        let all: std::collections::BTreeSet<&WarehouseId> =
            named.chain(pinned).chain(staffed).collect();
        all.into_iter().cloned().collect()
    }

    /// How long queued orders wait on in-flight work once stock is 0.
    pub fn max_wait(&self) -> Duration {
        self.scheduler.max_wait
    }

    /// Decided order ids each shard remembers for dedupe.
    pub fn dedupe_horizon(&self) -> usize {
        self.scheduler.dedupe_horizon
    }

    /// What cancelling a confirmed order does.
    pub fn cancel_confirmed(&self) -> CancelConfirmed {
        self.scheduler.cancel_confirmed
    }

    /// Largest quantity of one order, for [`crate::domain::Quantity::new`].
    /// Validation keeps `limits.max_quantity` within `u32`; an unvalidated
    /// larger value is capped at `u32::MAX`.
    pub fn max_quantity(&self) -> u32 {
        u32::try_from(self.limits.max_quantity).unwrap_or(u32::MAX)
    }

    /// The routing rules of this config.
    pub fn router(&self) -> Router {
        Router::new(self)
    }

    /// What every shard's scheduler reads, as plain values.
    pub fn shard_config(&self) -> ShardConfig {
        ShardConfig {
            rules: Rules {
                exhaustion: self.exhaustion_rules(),
                retry: self.retry_policy(),
                cancel_confirmed: self.cancel_confirmed(),
            },
            max_wait: self.max_wait(),
            dedupe_horizon: self.dedupe_horizon(),
            dedupe_window: Window::new(self.scheduler.dedupe_window, self.scheduler.dedupe_max_ids),
            shard: 0,
            shards: self.shards.count.max(1),
            max_batch_events: ShardConfig::default().max_batch_events,
        }
    }
}

/// `allot config check`: merges and validates every layer, and returns
/// the effective config, defaults filled in and secrets masked, as TOML.
pub fn check(layers: &Layers) -> Result<String, ConfigError> {
    Ok(layers.load()?.redacted().to_toml())
}

impl Config {
    /// A copy with passwords, tokens and seeds replaced by `<redacted>`,
    /// for printing.
    pub fn redacted(&self) -> Config {
        let mut c = self.clone();
        let mask = |s: &mut Option<String>| {
            if s.is_some() {
                *s = Some("<redacted>".into());
            }
        };
        mask(&mut c.nats.password);
        mask(&mut c.nats.token);
        mask(&mut c.nats.nkey);
        mask(&mut c.http.auth_token);
        c
    }
}
