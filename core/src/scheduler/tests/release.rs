//! Releasing stock to orders and the drive loop: what fits is confirmed,
//! a stock cut below reservations leaves a shortage, backorders and waiting
//! orders resolve, acks wait for the append, a conflict fences, and the
//! pure `decide` agrees with the shard.

use super::*;

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

/// A stock count below what is reserved takes no reservation back (its
/// worker may be enacting it): the partition is short, a worker's success
/// is a sale, and units that come in fill the shortage first.
#[test]
fn a_stock_cut_below_reservations_leaves_a_shortage_filled_first() {
    let mut h = Harness::new(ShardConfig::default());
    set_stock(&mut h, "w1", 50);
    h.place(order("a", "w1", 20));
    h.place(order("b", "w1", 20));
    h.flush();
    assert_eq!(h.shard.state().partition(0).reserved, 40);
    set_stock(&mut h, "w1", 25);
    let p = h.shard.state().partition(0);
    assert_eq!((p.reserved, p.available, p.short), (40, 0, 15));
    assert!(h
        .log()
        .iter()
        .any(|e| matches!(e, Event::StockShort { units: 15, .. })));
    h.fulfil_all();
    assert_eq!(
        h.finals("a") + h.finals("b"),
        2,
        "both sold: the work was done"
    );
    assert_eq!(sold(&h, "w1"), 40);
    h.place(order("c", "w1", 1));
    assert_eq!(
        h.rejection_of("c"),
        Some(RejectReason::OutOfStock),
        "short: none free"
    );
    h.command(Command::Restock {
        partition: key("w1", "SKU"),
        units: NonZeroU64::new(16).unwrap(),
    });
    let p = h.shard.state().partition(0);
    assert_eq!(
        (p.short, p.available),
        (0, 1),
        "15 filled the shortage first"
    );
    h.check_invariants();
}

/// A set expecting another stock version is refused, and the refusal is
/// on the record; without a version it applies whatever the version.
#[test]
fn a_stale_stock_set_is_refused() {
    let mut h = Harness::new(ShardConfig::default());
    set_stock(&mut h, "w1", 5);
    let stale = Command::Keyed {
        id: OrderId::new("k-1").unwrap(),
        command: Box::new(Command::SetStock {
            partition: key("w1", "SKU"),
            on_hand: 100,
            expected_version: Some(0),
        }),
    };
    assert!(matches!(
        h.command(stale),
        Reply::Refused(CommandError::StaleVersion {
            expected: 0,
            actual: 1,
            ..
        })
    ));
    assert!(h
        .log()
        .iter()
        .any(|e| matches!(e, Event::CommandRefused { .. })));
    assert_eq!(h.shard.state().partition(0).available, 5);
    h.command(Command::SetStock {
        partition: key("w1", "SKU"),
        on_hand: 7,
        expected_version: Some(1),
    });
    assert_eq!(h.shard.state().partition(0).version, 2);
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
        claimed, 0,
        "the one shard owns a and b: queueing them claims them, no event: {events:?}"
    );
    assert!(matches!(&verdict, Reply::Batch(v) if matches!(v[2], Reply::Duplicate(_))));
    let mut folded = before.clone();
    for e in &events {
        folded.evolve(e).unwrap();
    }
    assert_eq!(h.command(cmd), verdict);
    assert_eq!(&folded, h.shard.state());
}

/// An append never splits the events of one input: a crash between two
/// appends must not leave half a decision durable (found by the fault
/// simulation: a release landed without its rejection, and the order was
/// never decided).
#[test]
fn an_append_holds_whole_decisions() {
    let config = ShardConfig {
        max_batch_events: 1,
        ..ShardConfig::default()
    };
    let mut shard = Shard::new(config, Timestamp(0));
    let now = Timestamp(0);
    shard.handle_command(
        Command::SetStock {
            partition: key("w1", "SKU"),
            on_hand: 1,
            expected_version: None,
        },
        None,
        now,
    );
    shard.handle_order(order("a", "w1", 1), None, now);
    let mut appends = Vec::new();
    let mut seq = 0;
    while let Some(out) = shard.poll_output() {
        if let Output::Append(batch) = out {
            appends.push(batch.events.len());
            seq += 1;
            shard.handle_appended(seq, now);
        }
    }
    // The set (with its epoch), then the order queued and reserved.
    assert_eq!(appends.last(), Some(&2), "{appends:?}");
}

/// A queue resolved at sell-out decides one event per order in one input;
/// the appends still hold at most `max_batch_events` (whole decisions
/// each), or a big queue made one log message over the broker's limit and
/// the shard retried it forever (found by the bench with batched intake:
/// 18,000 rejections in one append of 1.07 MB).
#[test]
fn a_queue_resolved_at_sell_out_goes_out_in_bounded_appends() {
    let mut h = Harness::new(ShardConfig {
        max_batch_events: 100,
        ..ShardConfig::default()
    });
    h.command(Command::SetStock {
        partition: key("w1", "SKU"),
        on_hand: 1,
        expected_version: None,
    });
    h.place(order("first", "w1", 1));
    for i in 0..1_000 {
        h.place(order(&format!("q{i}"), "w1", 1));
    }
    let before = h.batches().len();
    // The first order's worker succeeds: sold out, the queue is rejected.
    h.fulfil_all();
    let appends = &h.batches()[before..];
    let rejected: usize = appends
        .iter()
        .flatten()
        .filter(|e| matches!(e, Event::OrderRejected { .. }))
        .count();
    assert_eq!(rejected, 1_000, "every queued order rejected");
    assert!(appends.len() >= 10, "{} appends", appends.len());
    assert!(
        appends.iter().all(|a| a.len() <= 101),
        "{:?}",
        appends.iter().map(Vec::len).collect::<Vec<_>>()
    );
}
