//! For the tests of every decoder of allot's own messages: the bytes to
//! fuzz them with ([`fuzzed`]: arbitrary bytes, and valid encodings
//! mutated, cut short or with deep nesting spliced in) and a shard with one
//! of everything in its log and state ([`busy_shard`]), whose encodings are
//! as deep as valid ones go.

use std::time::Duration;

use allot_core::testkit::{Forwarding, Harness};
use proptest::prelude::*;

use crate::domain::{
    Claim, Command, Exhaustion, ExhaustionRules, FieldError, Order, OrderId, Outcome, PartitionKey,
    Priority, Quantity, Region, RetryPolicy, Rules, Sku, SkuPattern, WarehouseId,
};
use crate::scheduler::{ReplyId, ShardConfig};

/// Bytes a decoder must refuse by name or read, never panic on: arbitrary
/// bytes, or one of `valid` with up to three bytes changed, maybe cut
/// short, maybe with a run of nested arrays or maps (up to 3,000 deep)
/// spliced in somewhere.
pub fn fuzzed(valid: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let arbitrary = proptest::collection::vec(any::<u8>(), 0..512);
    let nesting = (
        any::<prop::sample::Index>(),
        prop_oneof![Just(0x91u8), Just(0x81), Just(0xc7)],
        1..3_000usize,
    );
    let mutated = (
        prop::sample::select(valid),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        proptest::option::of(any::<prop::sample::Index>()),
        proptest::option::of(nesting),
    )
        .prop_map(|(mut bytes, edits, cut, nesting)| {
            for (at, byte) in edits {
                let i = at.index(bytes.len().max(1));
                if let Some(b) = bytes.get_mut(i) {
                    *b = byte;
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            if let Some((at, marker, levels)) = nesting {
                let i = at.index(bytes.len() + 1);
                bytes.splice(i..i, std::iter::repeat_n(marker, levels));
            }
            bytes
        });
    prop_oneof![1 => arbitrary, 3 => mutated]
}

/// `levels` arrays, each holding the next.
pub fn nested(levels: usize) -> Vec<u8> {
    let mut bytes = vec![0x91; levels - 1];
    bytes.push(0x90);
    bytes
}

/// `message` (a map of up to 14 fields) with one more field `x`: `value`,
/// which no decoder knows and each skips by reading it whole.
pub fn with_unknown_field(message: &[u8], value: &[u8]) -> Vec<u8> {
    assert!((0x80..0x8f).contains(&message[0]), "a small map");
    [&[message[0] + 1, 0xa1, b'x'][..], value, &message[1..]].concat()
}

pub fn key(w: &str, s: &str) -> PartitionKey {
    PartitionKey::new(WarehouseId::new(w).unwrap(), Sku::new(s).unwrap())
}

fn id(s: &str) -> OrderId {
    OrderId::new(s).unwrap()
}

fn order(n: &str, p: &PartitionKey, fallbacks: &[&str]) -> Order {
    Order {
        line: false,
        id: id(n),
        partition: p.clone(),
        quantity: Quantity::ONE,
        region: Some(Region::new("eu").unwrap()),
        priority: Priority(2),
        fallbacks: fallbacks
            .iter()
            .map(|w| WarehouseId::new(w).unwrap())
            .collect(),
    }
}

/// A shard that has seen one of everything: keyed, batched and plain stock
/// changes; orders confirmed, rejected (failed, invalid), cancelled while
/// queued, rerouted (its copy in transit), and live: queued, reserved and
/// retrying after a failure, after an unknown outcome with a cancel
/// requested, backordered; and claims answered for another shard.
pub fn busy_shard() -> Harness {
    let (rej, bo, rr) = (key("ams", "REJ"), key("ams", "BO"), key("ams", "RR"));
    let rules = vec![
        (
            SkuPattern::new("BO").unwrap(),
            Exhaustion::Backorder {
                ttl: Duration::from_secs(60),
            },
        ),
        (SkuPattern::new("RR").unwrap(), Exhaustion::Reroute),
    ];
    let mut h = Harness::new(ShardConfig {
        rules: Rules {
            exhaustion: ExhaustionRules {
                rules,
                default: Exhaustion::Reject,
            },
            retry: RetryPolicy {
                max_retries: 3,
                base_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(40),
            },
            ..Rules::default()
        },
        ..ShardConfig::default()
    });
    h.forwarding = Forwarding::Held;
    h.command(Command::Keyed {
        id: id("k-1"),
        command: Box::new(Command::Batch {
            commands: vec![
                Command::SetStock {
                    partition: rej.clone(),
                    on_hand: 4,
                    expected_version: Some(0),
                },
                Command::Restock {
                    partition: bo.clone(),
                    units: 1.try_into().unwrap(),
                },
            ],
        }),
    });
    h.command(Command::AdjustStock {
        partition: rej.clone(),
        delta: -1,
    });
    for n in ["r-1", "r-2", "r-3", "r-4"] {
        h.place(order(n, &rej, &[]));
    }
    settle(&mut h, "r-1", Outcome::Fulfilled);
    settle(&mut h, "r-2", fail(true));
    let unknown = Outcome::Unknown {
        reason: "no answer".into(),
    };
    settle(&mut h, "r-3", unknown);
    for n in ["r-3", "r-4"] {
        h.command(Command::CancelOrder {
            id: id(n),
            partition: rej.clone(),
        });
    }
    h.place(order("r-5", &rej, &[]));
    h.place(order("b-1", &bo, &[]));
    h.place(order("b-2", &bo, &[]));
    settle(&mut h, "b-1", fail(false));
    settle(&mut h, "b-2", Outcome::Fulfilled);
    h.place(order("b-3", &bo, &[]));
    h.place(order("x-1", &rr, &["fra", "lis"]));
    h.shard.handle_invalid(
        id("bad-1"),
        vec![FieldError::new("quantity", "0, must be 1..=1000")],
        Some(rej.clone()),
        None,
        h.now,
    );
    let claims = [Claim {
        id: id("c-1"),
        by: key("fra", "REJ"),
    }];
    h.shard.handle_claims(&claims, ReplyId(1), h.now);
    h.flush();
    h
}

/// Settles the dispatch of order `n`.
fn settle(h: &mut Harness, n: &str, outcome: Outcome) {
    let i = h
        .dispatched
        .iter()
        .position(|d| d.order.id.as_str() == n)
        .unwrap_or_else(|| panic!("{n} is not dispatched"));
    h.settle(i, outcome);
}

fn fail(retryable: bool) -> Outcome {
    Outcome::Failed {
        reason: "declined".into(),
        retryable,
    }
}
