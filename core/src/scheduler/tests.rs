use std::num::NonZeroU64;
use std::time::Duration;

use super::*;
use crate::domain::Known;
use crate::domain::{
    Exhaustion, ExhaustionRules, Final, PartitionKey, Priority, Quantity, RejectReason, Sku,
    WarehouseId,
};
use crate::testkit::{Forwarding, Harness};

fn key(w: &str, s: &str) -> PartitionKey {
    PartitionKey::new(WarehouseId::new(w).unwrap(), Sku::new(s).unwrap())
}

fn order(id: &str, w: &str, qty: u64) -> Order {
    Order {
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
    });
}

#[test]
fn equal_quantity_succeeds_larger_fails() {
    let mut h = Harness::new(ShardConfig::default());
    set_stock(&mut h, "w1", 5);
    h.place(order("a", "w1", 5));
    h.fulfil_all();
    set_stock(&mut h, "w1", 5);
    h.place(order("b", "w1", 6));
    h.fulfil_all();
    assert_eq!(
        h.final_of("a"),
        Some(Event::OrderConfirmed {
            id: OrderId::new("a").unwrap()
        })
    );
    assert_eq!(h.rejection_of("b"), Some(RejectReason::OutOfStock));
    h.check_invariants();
}

#[test]
fn same_order_twice_is_one_decision() {
    let mut h = Harness::new(ShardConfig::default());
    set_stock(&mut h, "w1", 10);
    h.place(order("a", "w1", 1));
    assert!(matches!(h.place(order("a", "w1", 1)), Reply::Duplicate(_)));
    h.fulfil_all();
    assert!(matches!(h.place(order("a", "w1", 1)), Reply::Duplicate(_)));
    h.fulfil_all();
    assert_eq!(h.finals("a"), 1);
    assert_eq!(h.shard.state().partition(0).sold, 1);
    h.check_invariants();
}

#[test]
fn reallocation_revokes_the_newest_reservation() {
    let mut h = Harness::new(ShardConfig::default());
    set_stock(&mut h, "w1", 50);
    h.place(order("a", "w1", 20));
    h.place(order("b", "w1", 20));
    h.flush();
    assert_eq!(h.shard.state().partition(0).reserved, 40);
    set_stock(&mut h, "w1", 25);
    let p = h.shard.state().partition(0);
    assert_eq!((p.reserved, p.available, p.queued), (20, 5, 1));
    assert!(h.log().contains(&Event::ReservationRevoked {
        id: OrderId::new("b").unwrap()
    }));
    assert_eq!(
        h.shard
            .state()
            .live(&OrderId::new("b").unwrap())
            .unwrap()
            .status,
        Status::Queued
    );
    h.check_invariants();
}

#[test]
fn cancel_releases_queued_and_reserved_orders() {
    let mut h = Harness::new(ShardConfig::default());
    set_stock(&mut h, "w1", 1);
    h.place(order("a", "w1", 1));
    h.place(order("b", "w1", 1));
    h.flush();
    let cancel = |id: &str| Command::CancelOrder {
        id: OrderId::new(id).unwrap(),
        partition: key("w1", "SKU"),
    };
    assert_eq!(h.command(cancel("b")), Reply::Accepted);
    assert_eq!(h.rejection_of("b"), Some(RejectReason::Cancelled));
    assert_eq!(h.command(cancel("a")), Reply::Accepted);
    h.fail_all("card declined", false);
    assert_eq!(h.rejection_of("a"), Some(RejectReason::Cancelled));
    assert_eq!(h.shard.state().partition(0).available, 1);
    h.check_invariants();
}

#[test]
fn backorders_release_fifo_on_restock() {
    let mut h = Harness::new(with_policy(Exhaustion::Backorder {
        ttl: Duration::from_secs(60),
    }));
    set_stock(&mut h, "w1", 0);
    for id in ["a", "b", "c"] {
        h.place(order(id, "w1", 1));
    }
    h.flush();
    assert_eq!(h.shard.state().partition(0).backordered, 3);
    h.command(Command::Restock {
        partition: key("w1", "SKU"),
        units: NonZeroU64::new(2).unwrap(),
    });
    h.fulfil_all();
    assert_eq!(h.confirmed_in_order(), ["a", "b"]);
    h.advance(Duration::from_secs(61));
    assert_eq!(h.rejection_of("c"), Some(RejectReason::BackorderExpired));
    h.check_invariants();
}

#[test]
fn reroute_to_the_next_warehouse_then_reject() {
    let mut h = Harness::new(with_policy(Exhaustion::Reroute));
    set_stock(&mut h, "w1", 0);
    set_stock(&mut h, "w2", 0);
    let mut o = order("a", "w1", 1);
    o.fallbacks = vec![WarehouseId::new("w2").unwrap()];
    h.place(o);
    h.fulfil_all();
    let rerouted: Vec<_> = h
        .log()
        .into_iter()
        .filter(|e| matches!(e, Event::OrderRerouted { .. }))
        .collect();
    assert_eq!(
        rerouted,
        [Event::OrderRerouted {
            id: OrderId::new("a").unwrap(),
            to: WarehouseId::new("w2").unwrap()
        }]
    );
    assert_eq!(h.rejection_of("a"), Some(RejectReason::OutOfStock));
    h.check_invariants();
}

#[test]
fn retryable_failures_retry_then_exhaust() {
    let mut h = Harness::new(ShardConfig::default());
    set_stock(&mut h, "w1", 1);
    h.place(order("a", "w1", 1));
    for _ in 0..=Rules::default().retry.max_retries {
        h.fail_all("timeout", true);
        h.advance(Duration::from_secs(10));
    }
    assert_eq!(
        h.rejection_of("a"),
        Some(RejectReason::RetriesExhausted {
            last: "timeout".into()
        })
    );
    assert_eq!(h.shard.state().partition(0).available, 1);
    h.check_invariants();
}

/// A worker that does not answer may have done the work: the order stays
/// reserved and is asked again, past the retry budget, until an answer
/// settles it. Rejecting it would put sold units back on sale.
#[test]
fn unknown_outcomes_are_asked_again_past_the_retry_budget() {
    let mut h = Harness::new(ShardConfig::default());
    set_stock(&mut h, "w1", 1);
    h.place(order("a", "w1", 1));
    h.flush();
    let budget = Rules::default().retry.max_retries;
    for _ in 0..budget + 3 {
        let d = h
            .settle(
                0,
                Outcome::Unknown {
                    reason: "worker timed out".into(),
                },
            )
            .expect("a dispatch is outstanding");
        assert_eq!(d.order.id.as_str(), "a");
        assert_eq!(h.finals("a"), 0, "undecided while the outcome is unknown");
        h.advance(Duration::from_secs(10));
    }
    assert_eq!(h.shard.state().partition(0).available, 0, "still reserved");
    h.fulfil_all();
    assert!(matches!(
        h.final_of("a"),
        Some(Event::OrderConfirmed { .. })
    ));
    h.check_invariants();
}

#[test]
fn queued_orders_wait_for_in_flight_work_then_resolve_in_one_batch() {
    let mut h = Harness::new(ShardConfig::default());
    set_stock(&mut h, "w1", 1);
    for id in ["a", "b", "c"] {
        h.place(order(id, "w1", 1));
    }
    h.flush();
    assert_eq!(h.shard.state().partition(0).queued, 2);
    h.fail_all("declined", false);
    assert_eq!(
        h.shard.state().partition(0).in_flight,
        1,
        "the freed unit went to b"
    );
    h.advance(ShardConfig::default().max_wait + Duration::from_millis(1));
    assert_eq!(h.rejection_of("c"), Some(RejectReason::OutOfStock));
    h.check_invariants();
}

#[test]
fn acks_wait_for_the_append() {
    let mut h = Harness::new(ShardConfig::default());
    h.shard
        .handle_order(order("a", "w1", 1), Some(AckId(7)), h.now);
    let first = h.shard.poll_output();
    assert!(matches!(first, Some(Output::Append(_))), "{first:?}");
    h.shard
        .handle_order(order("b", "w1", 1), Some(AckId(8)), h.now);
    assert_eq!(h.shard.poll_output(), None, "one append at a time");
    h.shard.handle_appended(1, h.now);
    assert_eq!(h.shard.poll_output(), Some(Output::Ack(vec![AckId(7)])));
    assert!(matches!(h.shard.poll_output(), Some(Output::Append(b)) if b.expected_last == 1));
}

#[test]
fn a_conflict_fences_the_shard() {
    let mut h = Harness::new(ShardConfig::default());
    h.shard
        .handle_order(order("a", "w1", 1), Some(AckId(1)), h.now);
    assert!(matches!(h.shard.poll_output(), Some(Output::Append(_))));
    h.shard.handle_conflict();
    assert!(h.shard.is_fenced());
    assert_eq!(h.shard.poll_output(), None);
    assert_eq!(
        h.shard.handle_order(order("b", "w1", 1), None, h.now),
        Reply::Refused(CommandError::Fenced)
    );
}

#[test]
fn decide_is_pure_and_agrees_with_the_shard() {
    let mut h = Harness::new(ShardConfig::default());
    set_stock(&mut h, "w1", 2);
    let before = h.shard.state().clone();
    let cmd = Command::Batch {
        commands: vec![
            Command::PlaceOrder(order("a", "w1", 1)),
            Command::PlaceOrder(order("b", "w1", 5)),
            Command::PlaceOrder(order("a", "w1", 1)),
        ],
    };
    let rules = ShardConfig::default().rules;
    let (verdict, events) = crate::domain::decide(&before, &rules, cmd.clone(), h.now);
    assert_eq!(h.shard.state(), &before, "decide leaves the state alone");
    let id = |s: &str| OrderId::new(s).unwrap();
    let kinds: Vec<_> = events
        .iter()
        .filter(|e| !matches!(e, crate::domain::Event::IdsClaimed { .. }))
        .map(|e| (e.order_id().cloned(), e.is_final()))
        .collect();
    assert_eq!(
        kinds,
        [
            (Some(id("a")), false),
            (Some(id("a")), false),
            (Some(id("b")), false)
        ],
        "a queued and reserved, b queued to wait for in-flight work: {events:?}"
    );
    let claimed = events
        .iter()
        .filter(|e| matches!(e, crate::domain::Event::IdsClaimed { .. }))
        .count();
    assert_eq!(
        claimed, 2,
        "the one shard owns and claims a and b: {events:?}"
    );
    assert!(matches!(&verdict, Reply::Batch(v) if matches!(v[2], Reply::Duplicate(_))));
    let mut folded = before.clone();
    for e in &events {
        folded.evolve(e).unwrap();
    }
    assert_eq!(h.command(cmd), verdict);
    assert_eq!(&folded, h.shard.state());
}

#[test]
fn a_late_forward_report_does_not_drop_the_next_hop() {
    // The copy reaches w2 before the runtime reports the forward, and w2
    // reroutes it on to w3 at once: the late report is about the hop to
    // w2 and must not count as the hop to w3.
    let mut h = Harness::new(with_policy(Exhaustion::Reroute));
    h.forwarding = Forwarding::CopyFirst;
    for w in ["w1", "w2", "w3"] {
        set_stock(&mut h, w, 0);
    }
    h.place(rerouted("a", "w1", &["w2", "w3"]));
    h.fulfil_all();
    let hops: Vec<_> = h
        .log()
        .into_iter()
        .filter_map(|e| match e {
            Event::OrderRerouted { to, .. } => Some(to.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(hops, ["w2", "w3"]);
    assert_eq!(h.rejection_of("a"), Some(RejectReason::OutOfStock));
    assert_eq!(h.finals("a"), 1);
    h.check_invariants();
}

#[test]
fn a_reroute_chain_back_to_this_shard_is_not_a_duplicate() {
    // w1 and w3 are this shard's, w2 another's. The order is rerouted
    // w1 -> w2; the other shard reroutes it on to w3, back here. Found by
    // the fault simulation (tests/faults.rs): that hop was acked as a
    // duplicate of the rerouted order and never decided.
    let hop = || rerouted("a", "w3", &[]);
    // The hop arrives after the forward to w2 was reported.
    let mut h = Harness::new(with_policy(Exhaustion::Reroute));
    h.forwarding = Forwarding::Held;
    set_stock(&mut h, "w1", 0);
    set_stock(&mut h, "w3", 1);
    h.place(rerouted("a", "w1", &["w2", "w3"]));
    assert_eq!(h.in_transit.len(), 1, "the copy for w2, another shard's");
    assert_eq!(h.place(hop()), Reply::Accepted);
    h.fulfil_all();
    assert_eq!(sold(&h, "w3"), 1);
    assert_eq!(h.finals("a"), 1);
    assert!(matches!(h.place(hop()), Reply::Duplicate(_)), "once only");
    h.check_invariants();

    // The hop arrives before the forward to w2 was reported.
    let mut h = Harness::new(with_policy(Exhaustion::Reroute));
    set_stock(&mut h, "w1", 0);
    set_stock(&mut h, "w3", 1);
    let reply = h.command(Command::Batch {
        commands: vec![
            Command::PlaceOrder(rerouted("a", "w1", &["w2", "w3"])),
            Command::PlaceOrder(hop()),
        ],
    });
    assert_eq!(reply, Reply::Batch(vec![Reply::Accepted, Reply::Accepted]));
    h.fulfil_all();
    assert_eq!(sold(&h, "w3"), 1);
    assert_eq!(h.finals("a"), 1);
    h.check_invariants();
}

#[test]
fn an_order_reusing_a_rerouted_id_is_not_taken_for_the_copy() {
    // While rerouting, within one batch.
    let mut h = Harness::new(with_policy(Exhaustion::Reroute));
    set_stock(&mut h, "w1", 0);
    set_stock(&mut h, "w2", 5);
    let reply = h.command(Command::Batch {
        commands: vec![
            Command::PlaceOrder(rerouted("a", "w1", &["w2"])),
            Command::PlaceOrder(order("a", "w2", 3)),
        ],
    });
    assert_eq!(
        reply,
        Reply::Batch(vec![
            Reply::Accepted,
            Reply::Duplicate(Known::Live(Status::Forwarding))
        ])
    );
    h.fulfil_all();
    assert_eq!(sold(&h, "w2"), 1, "the rerouted order, not the other one");
    h.check_invariants();

    // While the copy is in transit, after the forward was reported.
    let mut h = Harness::new(with_policy(Exhaustion::Reroute));
    h.forwarding = Forwarding::Held;
    set_stock(&mut h, "w1", 0);
    set_stock(&mut h, "w2", 5);
    h.place(rerouted("a", "w1", &["w2"]));
    assert_eq!(h.in_transit.len(), 1);
    assert!(matches!(
        h.place(order("a", "w2", 3)),
        Reply::Duplicate(Known::Decided(Final::Rerouted(_)))
    ));
    assert_eq!(h.deliver_forwarded(0), Some(Reply::Accepted));
    h.fulfil_all();
    assert_eq!(sold(&h, "w2"), 1, "the rerouted order, not the other one");
    assert_eq!(h.finals("a"), 1);
    h.check_invariants();
}

#[test]
fn a_keyed_stock_command_applies_once() {
    let mut h = Harness::new(ShardConfig::default());
    let restock = Command::Keyed {
        id: OrderId::new("restock-1").unwrap(),
        command: Box::new(Command::Restock {
            partition: key("w1", "SKU"),
            units: NonZeroU64::new(5).unwrap(),
        }),
    };
    assert_eq!(h.command(restock.clone()), Reply::Accepted);
    assert_eq!(
        h.command(restock),
        Reply::Duplicate(Known::Applied),
        "a redelivery is a no-op"
    );
    assert_eq!(h.shard.state().partition(0).available, 5);
    h.check_invariants();
}

/// An id is remembered for the dedupe window, not a count: past the full
/// horizon (4 decisions here) a repeat is still refused, until the window
/// (1 hour here) has passed; then it is a new order.
#[test]
fn an_id_is_remembered_for_the_window_then_forgotten() {
    let config = ShardConfig {
        dedupe_horizon: 4,
        dedupe_window: Window::new(Duration::from_secs(3600), 1_000_000),
        ..ShardConfig::default()
    };
    let mut h = Harness::new(config);
    set_stock(&mut h, "w1", 100);
    h.place(order("old", "w1", 1));
    h.fulfil_all();
    for i in 0..10 {
        h.place(order(&format!("filler-{i}"), "w1", 1));
        h.fulfil_all();
    }
    assert!(h
        .shard
        .state()
        .decided(&OrderId::new("old").unwrap())
        .is_none());
    h.advance(Duration::from_secs(3600) * 23 / 24);
    assert_eq!(
        h.place(order("old", "w1", 1)),
        Reply::Duplicate(Known::Forgotten),
        "within the window, past the full horizon"
    );
    h.advance(Duration::from_secs(3600) / 12);
    assert_eq!(
        h.place(order("old", "w1", 1)),
        Reply::Accepted,
        "a window later, the id is new again"
    );
    h.check_invariants();
}

/// Claims: the owner grants an id to the first partition that claims it,
/// again to the same, and refuses others; answers come out only once the
/// claims are durable.
#[test]
fn the_owner_grants_an_id_once_and_answers_once_durable() {
    use crate::domain::{Claim, ClaimAnswer};
    let mut h = Harness::new(ShardConfig::default());
    let claim = |id: &str, w: &str| Claim {
        id: OrderId::new(id).unwrap(),
        by: key(w, "SKU"),
    };
    let asked = [claim("x", "w1"), claim("x", "w2"), claim("y", "w2")];
    h.shard.handle_claims(&asked, ReplyId(7), h.now);
    assert!(h.replies.is_empty(), "nothing answered before the append");
    h.flush();
    assert_eq!(
        h.replies,
        [(
            ReplyId(7),
            vec![
                ClaimAnswer::Granted,
                ClaimAnswer::Refused {
                    holder: key("w1", "SKU")
                },
                ClaimAnswer::Granted
            ]
        )]
    );
    h.shard
        .handle_claims(&[claim("x", "w1")], ReplyId(8), h.now);
    h.flush();
    assert_eq!(h.replies[1], (ReplyId(8), vec![ClaimAnswer::Granted]));
    // An order of another partition with a claimed id: refused, recorded.
    assert_eq!(
        h.place(order("y", "w1", 1)),
        Reply::Duplicate(Known::Claimed(key("w2", "SKU")))
    );
    assert!(h
        .log()
        .iter()
        .any(|e| matches!(e, Event::DuplicateRefused { id, .. } if id.as_str() == "y")));
    assert_eq!(h.finals("y"), 0, "a refused copy is not a decision");
    h.check_invariants();
}
