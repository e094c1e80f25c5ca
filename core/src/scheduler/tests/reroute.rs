//! Reroutes: an exhausted order moves to its next warehouse, each hop is
//! forwarded once, a chain back to this shard is not a duplicate, and an
//! order reusing a rerouted id is not taken for the copy.

use super::*;

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
