use allot_core::testkit::Harness;

use super::*;
use crate::domain::{Command, Order, Outcome, Priority, Quantity, Sku, WarehouseId};
use crate::scheduler::ShardConfig;

fn key(w: &str, s: &str) -> PartitionKey {
    PartitionKey::new(WarehouseId::new(w).unwrap(), Sku::new(s).unwrap())
}

fn order(id: &str, p: &PartitionKey, qty: u64) -> Order {
    Order {
        line: false,
        id: OrderId::new(id).unwrap(),
        partition: p.clone(),
        quantity: Quantity::new(qty, 1000).unwrap(),
        region: None,
        priority: Priority(0),
        fallbacks: Vec::new(),
    }
}

fn id(s: &str) -> OrderId {
    OrderId::new(s).unwrap()
}

/// The views folded from the harness's log, batch by batch.
fn views_of(h: &Harness) -> Views {
    let views = Views::new(1, 1_000_000);
    for (i, batch) in h.batches().iter().enumerate() {
        views.apply(0, i as u64 + 1, batch);
    }
    views
}

fn figures(v: &StockView) -> [i64; 6] {
    [
        v.available,
        v.reserved,
        v.sold,
        v.queued,
        v.in_flight,
        v.backordered,
    ]
}

fn harness() -> Harness {
    Harness::new(ShardConfig::default())
}

/// A harness whose partition `p` was set to `on_hand` units.
fn stocked(p: &PartitionKey, on_hand: u64) -> Harness {
    let mut h = harness();
    h.command(Command::SetStock {
        partition: p.clone(),
        on_hand,
        expected_version: None,
    });
    h
}

#[test]
fn cancelling_a_confirmed_order_returns_its_units_in_the_views() {
    let mug = key("ams", "MUG");
    let mut h = stocked(&mug, 10);
    h.place(order("a", &mug, 10));
    h.fulfil_all();
    h.command(Command::CancelOrder {
        id: id("a"),
        partition: mug.clone(),
    });
    let views = views_of(&h);
    assert_eq!(figures(&views.stock(&mug).unwrap()), [10, 0, 0, 0, 0, 0]);
    h.place(order("b", &mug, 10));
    h.fulfil_all();
    let views = views_of(&h);
    assert_eq!(figures(&views.stock(&mug).unwrap()), [0, 0, 10, 0, 0, 0]);
    let a = views.order(&id("a")).unwrap();
    assert_eq!(
        (a.warehouse.as_str(), a.sku.as_str(), a.quantity),
        ("ams", "MUG", 10)
    );
    assert_eq!((a.status.as_str(), a.is_final), ("cancelled", true));
    let lines: Vec<&str> = a.history.iter().map(|l| l.what.as_str()).collect();
    assert_eq!(
        lines,
        [
            "queued in ams/MUG",
            "reserved",
            "confirmed",
            "cancelled, units returned"
        ]
    );
}

#[test]
fn a_cancel_while_the_worker_enacts_ends_with_the_units_back() {
    let mug = key("ams", "MUG");
    let mut h = stocked(&mug, 5);
    h.place(order("a", &mug, 2));
    h.command(Command::CancelOrder {
        id: id("a"),
        partition: mug.clone(),
    });
    h.settle(0, Outcome::Fulfilled);
    let views = views_of(&h);
    assert_eq!(figures(&views.stock(&mug).unwrap()), [5, 0, 0, 0, 0, 0]);
    let a = views.order(&id("a")).unwrap();
    assert_eq!(a.status, "cancelled");
    assert_eq!(a.history.len(), 5, "{a:?}");
}

#[test]
fn an_invalid_order_keeps_the_partition_its_subject_named() {
    let mug = key("ams", "MUG");
    let mut h = harness();
    h.shard.handle_invalid(
        id("bad"),
        vec![crate::domain::FieldError::new(
            "quantity",
            "0 is out of range",
        )],
        Some(mug.clone()),
        None,
        h.now,
    );
    h.flush();
    let bad = views_of(&h).order(&id("bad")).unwrap();
    assert_eq!((bad.warehouse.as_str(), bad.sku.as_str()), ("ams", "MUG"));
    assert_eq!(bad.status, "rejected");
    assert!(bad.history[0].what.contains("quantity: 0 is out of range"));
}

#[test]
fn a_rerouted_order_keeps_its_history_from_before_the_reroute() {
    let views = Views::new(2, 100);
    let (ams, fra) = (key("ams", "MUG"), key("fra", "MUG"));
    let mut first = order("a", &ams, 1);
    first.fallbacks = vec![WarehouseId::new("fra").unwrap()];
    let fra_w = WarehouseId::new("fra").unwrap();
    views.apply(
        0,
        3,
        &[Event::OrderQueued {
            order: first.clone(),
        }],
    );
    views.apply(
        0,
        5,
        &[Event::OrderRerouted {
            id: id("a"),
            to: fra_w.clone(),
        }],
    );
    let copy = crate::domain::rules::forwarded_order(&first, &fra_w);
    views.apply(1, 6, &[Event::OrderQueued { order: copy }]);
    views.apply(0, 7, &[Event::OrderForwarded { id: id("a") }]);
    let a = views.order(&id("a")).unwrap();
    assert_eq!(a.warehouse, "fra");
    assert_eq!(a.status, "queued");
    let seqs: Vec<u64> = a.history.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, [3, 5, 6, 7]);
    assert_eq!(views.stock(&ams).unwrap().queued, 0);
    assert_eq!(views.stock(&fra).unwrap().queued, 1);
}

#[test]
fn each_queued_line_names_its_partition_when_a_reroute_stays_in_the_shard() {
    // Both warehouses in one shard: the view moves to fra, and the line
    // from ams must still say ams (lines store no partition until then).
    let views = Views::new(1, 100);
    let (ams, fra) = (key("ams", "MUG"), key("fra", "MUG"));
    let mut first = order("a", &ams, 1);
    let fra_w = WarehouseId::new("fra").unwrap();
    first.fallbacks = vec![fra_w.clone()];
    let copy = crate::domain::rules::forwarded_order(&first, &fra_w);
    views.apply(0, 1, &[Event::OrderQueued { order: first }]);
    views.apply(
        0,
        2,
        &[Event::OrderRerouted {
            id: id("a"),
            to: fra_w,
        }],
    );
    views.apply(0, 3, &[Event::OrderQueued { order: copy }]);
    let a = views.order(&id("a")).unwrap();
    let lines: Vec<&str> = a.history.iter().map(|l| l.what.as_str()).collect();
    assert_eq!(
        lines,
        ["queued in ams/MUG", "rerouted to fra", "queued in fra/MUG"]
    );
    assert_eq!(a.warehouse, "fra");
    assert_eq!(views.stock(&fra).unwrap().queued, 1);
}

#[test]
fn the_oldest_final_orders_go_first_when_over_the_limit() {
    let mug = key("ams", "MUG");
    let views = Views::new(1, 2);
    let rejected = |n: &str| Event::OrderRejected {
        id: id(n),
        reason: crate::domain::RejectReason::OutOfStock,
        partition: None,
    };
    views.apply(
        0,
        1,
        &[Event::OrderQueued {
            order: order("live", &mug, 1),
        }],
    );
    for (i, n) in ["a", "b", "c"].iter().enumerate() {
        views.apply(
            0,
            i as u64 + 2,
            &[
                Event::OrderQueued {
                    order: order(n, &mug, 1),
                },
                rejected(n),
            ],
        );
    }
    assert!(views.order(&id("live")).is_some(), "live orders stay");
    assert!(views.order(&id("a")).is_none() && views.order(&id("b")).is_none());
    assert!(views.order(&id("c")).is_some());
}

#[test]
fn a_checkpoint_restores_the_same_views() {
    let mug = key("ams", "MUG");
    let mut h = stocked(&mug, 3);
    h.place(order("a", &mug, 1));
    let views = views_of(&h);
    let (seq, bytes) = views.checkpoint(0).unwrap();
    let back = Views::new(1, 1_000_000);
    back.restore(0, decode_checkpoint(&bytes).unwrap());
    assert_eq!(back.last_seq(0), seq);
    assert_eq!(back.order(&id("a")), views.order(&id("a")));
    assert_eq!(back.stock(&mug), views.stock(&mug));
}

use crate::wire::fuzz::{nested, with_unknown_field};

/// The views of a shard that has seen one of everything, as a checkpoint.
fn busy_checkpoint() -> Vec<u8> {
    views_of(&crate::wire::fuzz::busy_shard())
        .checkpoint(0)
        .unwrap()
        .1
}

#[test]
fn a_checkpoint_sits_well_under_its_cap_and_deeper_ones_are_refused() {
    let bytes = busy_checkpoint();
    let depth = crate::wire::msgpack::depth_of::<ShardViews>(&bytes);
    assert!(depth + 8 <= MAX_CHECKPOINT_DEPTH, "{depth}");
    let unknown = |levels| with_unknown_field(&bytes, &nested(levels));
    assert!(decode_checkpoint(&unknown(MAX_CHECKPOINT_DEPTH - 1)).is_ok());
    for deep in [unknown(MAX_CHECKPOINT_DEPTH), unknown(1_000_000)] {
        let why = decode_checkpoint(&deep).unwrap_err();
        assert_eq!(
            why,
            format!("nested more than {MAX_CHECKPOINT_DEPTH} levels deep")
        );
    }
}

proptest::proptest! {
    #[test]
    fn checkpoints_never_panic_and_are_refused_with_a_reason(
        bytes in crate::wire::fuzz::fuzzed(vec![busy_checkpoint()])
    ) {
        if let Err(why) = decode_checkpoint(&bytes) {
            proptest::prop_assert!(!why.trim().is_empty());
        }
    }
}

/// The figure the README quotes for `views.max_orders`: memory per order
/// held, a million confirmed orders (queued, reserved, confirmed) over 100
/// partitions. Run alone, in release:
/// `cargo test --release --lib bytes_per_order -- --ignored --nocapture`.
#[test]
#[ignore = "allocates ~0.3 GB; run by hand for the figure"]
fn bytes_per_order_at_a_million_orders() {
    let n = 1_000_000u32;
    let parts: Vec<PartitionKey> = (0..100).map(|i| key("ams", &format!("SKU-{i}"))).collect();
    let orders: Vec<Order> = (0..n)
        .map(|i| order(&format!("order-{i:08}"), &parts[i as usize % 100], 1))
        .collect();
    let before = crate::telemetry::resident_bytes().expect("Linux /proc");
    let mut views = ShardViews::default();
    for (i, o) in orders.into_iter().enumerate() {
        let id = o.id.clone();
        let seq = 3 * i as u64;
        views.apply(seq + 1, &[Event::OrderQueued { order: o }], usize::MAX);
        views.apply(
            seq + 2,
            &[Event::OrderReserved { id: id.clone() }],
            usize::MAX,
        );
        views.apply(seq + 3, &[Event::OrderConfirmed { id }], usize::MAX);
    }
    let per_order =
        (crate::telemetry::resident_bytes().expect("Linux /proc") - before) as f64 / f64::from(n);
    eprintln!(
        "{} orders held: {per_order:.0} bytes per order",
        views.order_count()
    );
    assert_eq!(views.order_count(), n as usize);
}

/// A batch reaches the views twice in a running instance: from its own
/// append as it lands ([`Views::apply_next`]) and from the EVENTS reader
/// ([`Views::apply_unless_applied`]). Whichever comes first applies it,
/// the other is a no-op, and an append that lands while the views are
/// behind is left to the reader: the views equal a single fold, in any
/// order of arrival. Fails with either check taken out (sold counted
/// twice, or a batch applied out of order).
#[test]
fn each_batch_is_applied_once_whether_its_append_or_the_reader_comes_first() {
    let mug = key("ams", "MUG");
    let mut h = stocked(&mug, 5);
    for n in 0..8 {
        h.place(order(&format!("o-{n}"), &mug, 1));
    }
    h.fulfil_all();
    let batches = h.batches();
    assert!(batches.len() >= 4, "{} batches", batches.len());
    let once = views_of(&h);
    // Appends land for every batch but the first two, which only the
    // reader brings (the views were behind), then the reader reads all.
    let both = Views::new(1, 1_000_000);
    for (i, batch) in batches.iter().enumerate().skip(2) {
        let seq = i as u64 + 1;
        assert!(
            !both.apply_next(0, seq - 1, seq, batch),
            "batch {seq} applied out of order"
        );
    }
    for (i, batch) in batches.iter().enumerate() {
        let seq = i as u64 + 1;
        if i % 3 == 1 {
            // The append lands before the reader gets to it.
            assert!(both.apply_next(0, seq - 1, seq, batch));
            assert!(
                !both.apply_unless_applied(0, seq, batch),
                "batch {seq} applied twice"
            );
        } else {
            assert!(both.apply_unless_applied(0, seq, batch));
            assert!(
                !both.apply_next(0, seq - 1, seq, batch),
                "batch {seq} applied twice"
            );
        }
    }
    assert_eq!(both.stock(&mug), once.stock(&mug));
    assert_eq!(both.order(&id("o-0")), once.order(&id("o-0")));
    assert_eq!(both.last_seq(0), batches.len() as u64);
}
