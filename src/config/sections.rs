//! The config file's sections as written in TOML. Every section and every
//! key has a default, so any of them (or the whole file) may be left out.
//! Values are typed with the domain's validated types, so a bad SKU pattern
//! or warehouse name fails while parsing, at its key path; rules that span
//! several keys are checked afterwards (see `validate`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::types::DEFAULT_MAX_QUANTITY;
use crate::domain::{CancelConfirmed, Exhaustion, Region, RetryPolicy, SkuPattern, WarehouseId};

/// Largest `shards.count`.
pub const MAX_SHARDS: u32 = 1024;

/// `[shards]`: how partitions are spread over shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShardsConfig {
    /// Number of shards, `1..=1024`. Fixed per deployment: changing it
    /// remaps partitions to other shards.
    pub count: u32,
    /// Hot SKUs on dedicated shards; the first matching pin wins.
    pub pins: Vec<ShardPin>,
}

impl Default for ShardsConfig {
    fn default() -> Self {
        Self {
            count: 4,
            pins: Vec::new(),
        }
    }
}

/// `[[shards.pins]]`: SKUs matching `sku` go to shard `shard` (`< count`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardPin {
    pub sku: SkuPattern,
    pub shard: u32,
}

/// `[routing]`: which warehouse serves an order, and where it may go next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Region used for orders that name neither a warehouse nor a region.
    /// Must be a key of `regions`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_region: Option<Region>,
    /// Region -> warehouses in order of preference: non-empty, no duplicates.
    pub regions: BTreeMap<Region, Vec<WarehouseId>>,
    /// SKUs pinned to one warehouse; the first matching pin wins.
    pub pins: Vec<WarehousePin>,
}

/// `[[routing.pins]]`: SKUs matching `sku` are always served by `warehouse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehousePin {
    pub sku: SkuPattern,
    pub warehouse: WarehouseId,
}

/// `[exhaustion]`: what a partition does once it is out of stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExhaustionConfig {
    /// Policy for SKUs no rule matches.
    #[serde(with = "policy_repr")]
    pub default: Exhaustion,
    /// Per-pattern policies; the first matching rule wins.
    pub rules: Vec<ExhaustionRule>,
}

impl Default for ExhaustionConfig {
    fn default() -> Self {
        Self {
            default: Exhaustion::Reject,
            rules: Vec::new(),
        }
    }
}

/// `[[exhaustion.rules]]`: SKUs matching `sku` get `policy`. Written flat:
/// `{ sku = "PRE-*", policy = "backorder", ttl = "24h" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRule", into = "RawRule")]
pub struct ExhaustionRule {
    pub sku: SkuPattern,
    pub policy: Exhaustion,
}

/// The policy names as written in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PolicyName {
    Reject,
    Backorder,
    Reroute,
}

/// `{ policy = "...", ttl = "..." }`, before checking that `ttl` comes with
/// (and only with) `backorder`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    policy: PolicyName,
    #[serde(
        default,
        with = "super::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    ttl: Option<Duration>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    sku: SkuPattern,
    policy: PolicyName,
    #[serde(
        default,
        with = "super::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    ttl: Option<Duration>,
}

impl TryFrom<RawPolicy> for Exhaustion {
    type Error = String;
    fn try_from(raw: RawPolicy) -> Result<Self, String> {
        match (raw.policy, raw.ttl) {
            (PolicyName::Backorder, Some(ttl)) => Ok(Exhaustion::Backorder { ttl }),
            (PolicyName::Backorder, None) => {
                Err("policy \"backorder\" needs a ttl, e.g. ttl = \"10m\"".to_owned())
            }
            (name, Some(_)) => Err(format!(
                "ttl only applies to policy \"backorder\", not {:?}; remove the ttl",
                policy_name(name)
            )),
            (PolicyName::Reject, None) => Ok(Exhaustion::Reject),
            (PolicyName::Reroute, None) => Ok(Exhaustion::Reroute),
        }
    }
}

fn policy_name(name: PolicyName) -> &'static str {
    match name {
        PolicyName::Reject => "reject",
        PolicyName::Backorder => "backorder",
        PolicyName::Reroute => "reroute",
    }
}

impl From<&Exhaustion> for RawPolicy {
    fn from(e: &Exhaustion) -> Self {
        let (policy, ttl) = match e {
            Exhaustion::Reject => (PolicyName::Reject, None),
            Exhaustion::Backorder { ttl } => (PolicyName::Backorder, Some(*ttl)),
            Exhaustion::Reroute => (PolicyName::Reroute, None),
        };
        RawPolicy { policy, ttl }
    }
}

impl TryFrom<RawRule> for ExhaustionRule {
    type Error = String;
    fn try_from(raw: RawRule) -> Result<Self, String> {
        let policy = RawPolicy {
            policy: raw.policy,
            ttl: raw.ttl,
        }
        .try_into()?;
        Ok(ExhaustionRule {
            sku: raw.sku,
            policy,
        })
    }
}

impl From<ExhaustionRule> for RawRule {
    fn from(r: ExhaustionRule) -> Self {
        let RawPolicy { policy, ttl } = RawPolicy::from(&r.policy);
        RawRule {
            sku: r.sku,
            policy,
            ttl,
        }
    }
}

/// Serde for a bare [`Exhaustion`] in the `{ policy, ttl }` shape; the
/// domain type's own serde shape is the one events use, so it stays as is.
mod policy_repr {
    use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};

    use super::{Exhaustion, RawPolicy};

    pub fn serialize<S: Serializer>(e: &Exhaustion, s: S) -> Result<S::Ok, S::Error> {
        RawPolicy::from(e).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Exhaustion, D::Error> {
        RawPolicy::deserialize(d)?
            .try_into()
            .map_err(D::Error::custom)
    }
}

/// `[retry]`: retries of failed enactments (see [`RetryPolicy`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts after the first; 0 means never retry.
    pub max_retries: u32,
    #[serde(with = "super::duration")]
    pub base_backoff: Duration,
    /// Cap on one wait; at least `base_backoff`.
    #[serde(with = "super::duration")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        let p = RetryPolicy::default();
        Self {
            max_retries: p.max_retries,
            base_backoff: p.base_backoff,
            max_backoff: p.max_backoff,
        }
    }
}

/// `[scheduler]`: the per-shard core's knobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// How long queued orders wait on in-flight work once stock is 0,
    /// before the exhaustion policy resolves them. 0 means do not wait.
    #[serde(with = "super::duration")]
    pub max_wait: Duration,
    /// Decided orders remembered in full per shard (a repeat is answered
    /// with its decision; about 100 bytes each).
    pub dedupe_horizon: usize,
    /// How long every order id is remembered: a repeat within it is never
    /// decided again, on any shard.
    #[serde(with = "super::duration")]
    pub dedupe_window: Duration,
    /// Most ids a shard remembers in the window, per table (ids it decided,
    /// ids it owns; about 30 bytes each): past it the oldest go first.
    pub dedupe_max_ids: usize,
    /// What cancelling a confirmed order does.
    pub cancel_confirmed: CancelConfirmed,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_secs(5),
            dedupe_horizon: 200_000,
            dedupe_window: Duration::from_secs(24 * 3600),
            dedupe_max_ids: 10_000_000,
            cancel_confirmed: CancelConfirmed::Restock,
        }
    }
}

/// `[workers]`: how many enactments run at once per warehouse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    /// Concurrency of warehouses not listed in `warehouses`.
    pub default_concurrency: usize,
    /// Per-warehouse concurrency overrides.
    pub warehouses: BTreeMap<WarehouseId, usize>,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            default_concurrency: 64,
            warehouses: BTreeMap::new(),
        }
    }
}

/// `[limits]`: bounds on what producers may send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest quantity of one order, `1..=4294967295` (u32).
    pub max_quantity: u64,
    /// Largest order message or request body, in bytes.
    pub max_payload_bytes: usize,
    /// Most orders in one batch (HTTP or NATS).
    pub max_batch_size: usize,
    /// Most lines in one cart (an order of envelope version 2).
    pub max_cart_lines: usize,
    /// Longest hold a cart may ask for (its `hold`).
    #[serde(with = "super::duration")]
    pub max_hold: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_quantity: DEFAULT_MAX_QUANTITY.into(),
            max_payload_bytes: 64 * 1024,
            max_batch_size: 1000,
            max_cart_lines: 50,
            max_hold: Duration::from_secs(15 * 60),
        }
    }
}
