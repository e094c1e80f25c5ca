//! Rules that span keys or need a range the type cannot state, checked after
//! a config parsed. Every broken rule is collected, so one run of
//! `allot config check` shows them all.

use std::time::Duration;

use super::duration;
use super::error::Problem;
use super::sections::MAX_SHARDS;
use super::Config;
use crate::domain::{Exhaustion, Region};

impl Config {
    /// Every rule this config breaks, in file order; empty if it is valid.
    /// [`Config::from_toml`] runs this; call it on a config built in code.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        self.check_shards(&mut out);
        self.check_routing(&mut out);
        self.check_exhaustion(&mut out);
        self.check_retry(&mut out);
        positive(
            &mut out,
            "scheduler.dedupe_horizon",
            self.scheduler.dedupe_horizon as u64,
        );
        positive(
            &mut out,
            "workers.default_concurrency",
            self.workers.default_concurrency as u64,
        );
        for (w, &n) in &self.workers.warehouses {
            positive(&mut out, &format!("workers.warehouses.{w}"), n as u64);
        }
        self.check_limits(&mut out);
        self.check_service(&mut out);
        out
    }

    fn check_service(&self, out: &mut Vec<Problem>) {
        if self.nats.url.trim().is_empty() {
            out.push(Problem::new(
                "nats.url",
                "is empty; give a server URL such as \"nats://127.0.0.1:4222\"",
            ));
        }
        positive(out, "nats.max_deliver", self.nats.max_deliver.max(0) as u64);
        if self.nats.tls_cert.is_some() != self.nats.tls_key.is_some() {
            out.push(Problem::new(
                "nats.tls_cert",
                "tls_cert and tls_key go together; set both or neither",
            ));
        }
        if !(1..=5).contains(&self.nats.replicas) {
            out.push(Problem::new(
                "nats.replicas",
                format!("{} is out of range, must be 1..=5", self.nats.replicas),
            ));
        }
        if self.nats.ack_wait.is_zero() {
            out.push(Problem::new("nats.ack_wait", "is 0s, must be positive"));
        }
        let http = &self.http;
        if http.ops_bind == Some(http.bind) && http.bind.port() != 0 {
            out.push(Problem::new(
                "http.ops_bind",
                format!(
                    "is the same address as http.bind ({}); leave it out to serve both there",
                    http.bind
                ),
            ));
        }
        if http
            .auth_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            out.push(Problem::new(
                "http.auth_token",
                "is empty; leave it out for no auth, or set a secret",
            ));
        }
        positive(out, "http.max_body_bytes", http.max_body_bytes as u64);
        if http.request_timeout.is_zero() {
            out.push(Problem::new(
                "http.request_timeout",
                "is 0s, must be positive",
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            out.push(Problem::new(
                "log.filter",
                format!("{e}; write an env-filter such as \"info,allot=debug\""),
            ));
        }
        let f = &self.fulfiller;
        if !(0.0..=1.0).contains(&f.failure_rate) {
            out.push(Problem::new(
                "fulfiller.failure_rate",
                format!("{} is out of range, must be 0..=1", f.failure_rate),
            ));
        }
        at_least(
            out,
            ("fulfiller.latency_p99", f.latency_p99),
            ("fulfiller.latency_p50", f.latency_p50),
        );
        if f.timeout.is_zero() {
            out.push(Problem::new("fulfiller.timeout", "is 0s, must be positive"));
        }
        positive(out, "views.max_orders", self.views.max_orders as u64);
        positive(
            out,
            "scheduler.dedupe_max_ids",
            self.scheduler.dedupe_max_ids as u64,
        );
        at_least(
            out,
            ("scheduler.dedupe_window", self.scheduler.dedupe_window),
            ("1m", Duration::from_secs(60)),
        );
        if self.views.checkpoint_interval.is_zero() {
            out.push(Problem::new(
                "views.checkpoint_interval",
                "is 0s, must be positive",
            ));
        }
        let c = &self.cluster;
        at_least(
            out,
            ("cluster.lease_ttl", c.lease_ttl),
            ("1s", Duration::from_secs(1)),
        );
        if let Some(id) = &c.instance_id {
            let ok = (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                out.push(Problem::new(
                    "cluster.instance_id",
                    format!("{id:?}: use 1-64 characters of A-Z a-z 0-9 _ -"),
                ));
            }
        }
    }

    fn check_shards(&self, out: &mut Vec<Problem>) {
        let count = self.shards.count;
        if !(1..=MAX_SHARDS).contains(&count) {
            out.push(Problem::new(
                "shards.count",
                format!("{count} is out of range, must be 1..={MAX_SHARDS}"),
            ));
            // Pins cannot be judged against a count that is itself wrong.
            return;
        }
        for (i, pin) in self.shards.pins.iter().enumerate() {
            if pin.shard >= count {
                out.push(Problem::new(
                    format!("shards.pins[{i}].shard"),
                    format!(
                        "shard {} does not exist, must be 0..={} (shards.count is {count})",
                        pin.shard,
                        count - 1
                    ),
                ));
            }
        }
    }

    fn check_routing(&self, out: &mut Vec<Problem>) {
        let routing = &self.routing;
        if let Some(region) = &routing.default_region {
            if !routing.regions.contains_key(region) {
                out.push(Problem::new(
                    "routing.default_region",
                    format!(
                        "region {:?} is not in routing.regions; {}",
                        region.as_str(),
                        known_regions(routing.regions.keys())
                    ),
                ));
            }
        }
        for (region, warehouses) in &routing.regions {
            if warehouses.is_empty() {
                out.push(Problem::new(
                    format!("routing.regions.{region}"),
                    "lists no warehouses; give at least one, in order of preference",
                ));
            }
            for (i, w) in warehouses.iter().enumerate() {
                if let Some(first) = warehouses[..i].iter().position(|x| x == w) {
                    out.push(Problem::new(
                        format!("routing.regions.{region}[{i}]"),
                        format!(
                            "warehouse {:?} is already listed at [{first}]; list each warehouse once",
                            w.as_str()
                        ),
                    ));
                }
            }
        }
    }

    fn check_exhaustion(&self, out: &mut Vec<Problem>) {
        let ex = &self.exhaustion;
        backorder_ttl(out, "exhaustion.default.ttl", &ex.default);
        for (i, rule) in ex.rules.iter().enumerate() {
            backorder_ttl(out, &format!("exhaustion.rules[{i}].ttl"), &rule.policy);
        }
    }

    fn check_retry(&self, out: &mut Vec<Problem>) {
        let r = &self.retry;
        at_least(
            out,
            ("retry.max_backoff", r.max_backoff),
            ("retry.base_backoff", r.base_backoff),
        );
    }

    fn check_limits(&self, out: &mut Vec<Problem>) {
        let l = &self.limits;
        if !(1..=u64::from(u32::MAX)).contains(&l.max_quantity) {
            out.push(Problem::new(
                "limits.max_quantity",
                format!(
                    "{} is out of range, must be 1..={}",
                    l.max_quantity,
                    u32::MAX
                ),
            ));
        }
        positive(out, "limits.max_payload_bytes", l.max_payload_bytes as u64);
        positive(out, "limits.max_batch_size", l.max_batch_size as u64);
        positive(out, "limits.max_cart_lines", l.max_cart_lines as u64);
        if l.max_cart_lines > 1000 {
            out.push(Problem::new(
                "limits.max_cart_lines",
                format!("{} is more than 1000", l.max_cart_lines),
            ));
        }
        if l.max_hold < Duration::from_secs(1) {
            out.push(Problem::new("limits.max_hold", "must be at least 1s"));
        }
    }
}

/// `key` must be at least `floor`.
fn at_least(out: &mut Vec<Problem>, (key, d): (&str, Duration), (floor, min): (&str, Duration)) {
    if d < min {
        out.push(Problem::new(
            key,
            format!(
                "{} is below {floor} ({}); must be at least that",
                duration::format(d),
                duration::format(min)
            ),
        ));
    }
}

fn positive(out: &mut Vec<Problem>, path: &str, n: u64) {
    if n == 0 {
        out.push(Problem::new(path, "is 0, must be at least 1"));
    }
}

fn backorder_ttl(out: &mut Vec<Problem>, path: &str, e: &Exhaustion) {
    if let Exhaustion::Backorder { ttl } = e {
        if *ttl == Duration::ZERO {
            out.push(Problem::new(
                path,
                "backorder ttl is 0, must be positive, e.g. \"10m\"",
            ));
        }
    }
}

/// `known regions: eu, us`, or a hint that none are configured.
pub(super) fn known_regions<'a>(regions: impl Iterator<Item = &'a Region>) -> String {
    let names: Vec<&str> = regions.map(Region::as_str).collect();
    if names.is_empty() {
        "no regions are configured (routing.regions is empty)".to_owned()
    } else {
        format!("known regions: {}", names.join(", "))
    }
}
