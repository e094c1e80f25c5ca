//! Tests of the shard scheduler, driven through the testkit's `Harness`
//! (a virtual clock and instant workers). This file holds the helpers;
//! the tests are by concern: releasing stock and the drive loop
//! (`release`), cancels and retries (`cancel_retry`), reroutes
//! (`reroute`), and deciding an id once (`dedupe`).

mod cancel_retry;
mod dedupe;
mod release;
mod reroute;

use std::num::NonZeroU64;
use std::time::Duration;

use super::*;
use crate::domain::Known;
use crate::domain::{
    Exhaustion, ExhaustionRules, Final, PartitionKey, Priority, Quantity, RejectReason, Sku,
    WarehouseId,
};
use crate::domain::{Rules, Window};
use crate::testkit::{Forwarding, Harness};

fn key(w: &str, s: &str) -> PartitionKey {
    PartitionKey::new(WarehouseId::new(w).unwrap(), Sku::new(s).unwrap())
}

fn order(id: &str, w: &str, qty: u64) -> Order {
    Order {
        line: false,
        id: OrderId::new(id).unwrap(),
        partition: key(w, "SKU"),
        quantity: Quantity::new(qty, 1000).unwrap(),
        region: None,
        priority: Priority(0),
        fallbacks: Vec::new(),
    }
}

fn rerouted(id: &str, w: &str, fallbacks: &[&str]) -> Order {
    let mut o = order(id, w, 1);
    o.fallbacks = fallbacks
        .iter()
        .map(|w| WarehouseId::new(w).unwrap())
        .collect();
    o
}

fn sold(h: &Harness, w: &str) -> u64 {
    let p = h.shard.state().partition_idx(&key(w, "SKU")).unwrap();
    h.shard.state().partition(p).sold
}

fn with_policy(policy: Exhaustion) -> ShardConfig {
    ShardConfig {
        rules: Rules {
            exhaustion: ExhaustionRules {
                rules: Vec::new(),
                default: policy,
            },
            ..Rules::default()
        },
        ..ShardConfig::default()
    }
}

fn set_stock(h: &mut Harness, w: &str, n: u64) {
    h.command(Command::SetStock {
        partition: key(w, "SKU"),
        on_hand: n,
        expected_version: None,
    });
}
