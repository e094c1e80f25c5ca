//! The auditor on hand-made logs: a clean one passes, and each kind of
//! broken promise is flagged by the finding that names it.

use super::*;
use crate::domain::{Order, Priority, Quantity, RejectReason, Sku, WarehouseId};

fn key() -> PartitionKey {
    PartitionKey::new(WarehouseId::new("ams").unwrap(), Sku::new("MUG").unwrap())
}

fn id(s: &str) -> OrderId {
    OrderId::new(s).unwrap()
}

fn queued(s: &str, qty: u64) -> Event {
    Event::OrderQueued {
        order: Order {
            line: false,
            id: id(s),
            partition: key(),
            quantity: Quantity::new(qty, 1000).unwrap(),
            region: None,
            priority: Priority(0),
            fallbacks: Vec::new(),
        },
    }
}

fn set(n: u64) -> Event {
    Event::StockSet {
        partition: key(),
        on_hand: n,
    }
}

fn reserved(s: &str) -> Event {
    Event::OrderReserved { id: id(s) }
}

fn confirmed(s: &str) -> Event {
    Event::OrderConfirmed { id: id(s) }
}

fn audit(log: &[Event], submitted: &[&str]) -> Findings {
    let mut a = Audit::default();
    for e in log {
        a.apply(e);
    }
    let ids: Vec<OrderId> = submitted.iter().map(|s| id(s)).collect();
    a.finish(&ids)
}

#[test]
fn a_clean_log_is_clean() {
    let log = [
        set(2),
        queued("a", 1),
        reserved("a"),
        confirmed("a"),
        queued("b", 2),
        Event::OrderRejected {
            id: id("b"),
            reason: RejectReason::OutOfStock,
            partition: None,
        },
    ];
    let f = audit(&log, &["a", "b"]);
    assert!(f.clean(), "{f:?}");
    assert_eq!((f.units_supplied, f.units_sold), (2, 1));
}

#[test]
fn a_reservation_past_stock_is_oversold() {
    let log = [set(1), queued("a", 2), reserved("a"), confirmed("a")];
    let f = audit(&log, &["a"]);
    assert_eq!(f.oversold_units, 1, "{f:?}");
    assert!(!f.clean());
}

#[test]
fn two_confirmations_are_a_duplicate_decision() {
    let log = [
        set(2),
        queued("a", 1),
        reserved("a"),
        confirmed("a"),
        queued("a", 1),
        reserved("a"),
        confirmed("a"),
    ];
    let f = audit(&log, &["a"]);
    assert_eq!(f.duplicate_decisions, 1, "{f:?}");
    assert!(!f.clean());
}

#[test]
fn a_missing_final_decision_is_undecided() {
    let log = [set(1), queued("a", 1), reserved("a")];
    let f = audit(&log, &["a"]);
    assert_eq!(f.undecided, 1, "{f:?}");
    assert!(!f.clean());
}

#[test]
fn a_release_of_an_order_never_reserved_is_illegal() {
    let log = [
        set(1),
        queued("a", 1),
        Event::OrderReleased {
            id: id("a"),
            reason: "failed".into(),
        },
        Event::OrderRejected {
            id: id("a"),
            reason: RejectReason::OutOfStock,
            partition: None,
        },
    ];
    let f = audit(&log, &["a"]);
    assert_eq!(f.illegal_transitions, 1, "{f:?}");
    assert!(!f.clean());
    assert!(f.examples[0].contains("OrderReleased"), "{:?}", f.examples);
}

#[test]
fn a_confirmation_without_a_reservation_is_illegal() {
    let log = [set(1), queued("a", 1), confirmed("a")];
    let f = audit(&log, &["a"]);
    assert_eq!(f.illegal_transitions, 1, "{f:?}");
}

#[test]
fn a_shortage_is_allowed_but_a_reservation_in_it_is_oversold() {
    let short = Event::StockShort {
        partition: key(),
        units: 1,
    };
    let log = [
        set(2),
        queued("a", 2),
        reserved("a"),
        set(1),
        short,
        confirmed("a"),
    ];
    let f = audit(&log, &["a"]);
    assert!(
        f.clean(),
        "a count below what is reserved is a shortage: {f:?}"
    );
    assert_eq!(f.shortages, 1);
    let log = [
        set(2),
        queued("a", 2),
        reserved("a"),
        set(1),
        queued("b", 1),
        reserved("b"),
    ];
    let f = audit(&log, &[]);
    assert_eq!(f.oversold_units, 1, "{f:?}");
}

fn cart_events(
    id: &str,
    fill: crate::domain::Fill,
    decided: crate::domain::CartEvent,
) -> Vec<Event> {
    use crate::domain::{Cart, CartConfig, CartEvent, CartLine, Timestamp};
    let lines = vec![
        CartLine {
            partition: key(),
            quantity: Quantity::new(1, 1000).unwrap(),
        };
        2
    ];
    let cart = Cart::new(
        OrderId::new(id).unwrap(),
        lines,
        fill,
        None,
        &CartConfig::default(),
    )
    .unwrap();
    vec![
        Event::Cart {
            event: Box::new(CartEvent::Opened {
                cart,
                at: Timestamp(0),
            }),
        },
        Event::Cart {
            event: Box::new(decided),
        },
    ]
}

#[test]
fn carts_are_held_to_all_or_nothing_and_one_decision() {
    use crate::domain::{CartEvent, CartReason, Fill};
    let confirmed_cart = |c: &str| CartEvent::Confirmed { cart: id(c) };
    let line = |c: &str, i: u32| format!("{c}#{i}");
    // Both lines sold, the cart confirmed: clean.
    let mut log = vec![set(10)];
    for i in 0..2 {
        let l = line("c", i);
        log.extend([queued(&l, 1), reserved(&l), confirmed(&l)]);
    }
    log.extend(cart_events("c", Fill::All, confirmed_cart("c")));
    let f = audit(&log, &["c"]);
    assert!(f.clean(), "{f:?}");
    assert_eq!((f.carts_confirmed, f.broken_carts), (1, 0));

    // Planted: confirmed all-or-nothing with a line released.
    let mut log = vec![set(10)];
    let (l0, l1) = (line("d", 0), line("d", 1));
    log.extend([queued(&l0, 1), reserved(&l0), confirmed(&l0)]);
    log.extend([
        queued(&l1, 1),
        reserved(&l1),
        Event::OrderReleased {
            id: id(&l1),
            reason: "cart".into(),
        },
        Event::OrderRejected {
            id: id(&l1),
            reason: RejectReason::Cancelled,
            partition: None,
        },
    ]);
    log.extend(cart_events("d", Fill::All, confirmed_cart("d")));
    let f = audit(&log, &["d"]);
    assert_eq!(f.broken_carts, 1, "{f:?}");
    assert!(!f.clean());

    // Planted: a rejected cart with a line sold; and decided twice.
    let mut log = vec![set(10)];
    let l0 = line("e", 0);
    log.extend([queued(&l0, 1), reserved(&l0), confirmed(&l0)]);
    log.extend(cart_events(
        "e",
        Fill::Partial,
        CartEvent::Rejected {
            cart: id("e"),
            reason: CartReason::HoldExpired,
        },
    ));
    log.push(Event::Cart {
        event: Box::new(CartEvent::Cancelled { cart: id("e") }),
    });
    let f = audit(&log, &["e"]);
    assert_eq!((f.broken_carts, f.duplicate_decisions), (1, 1), "{f:?}");

    // A cart opened and never decided is undecided once settled.
    let mut log = cart_events("u", Fill::All, CartEvent::Delivered);
    log.truncate(1);
    assert_eq!(audit(&log, &["u"]).undecided, 1);

    // Planted: a rejected cart whose reserved line was never released.
    let mut log = vec![set(10)];
    let l0 = line("r", 0);
    log.extend([queued(&l0, 1), reserved(&l0)]);
    let rejected = CartEvent::Rejected {
        cart: id("r"),
        reason: CartReason::HoldExpired,
    };
    log.extend(cart_events("r", Fill::All, rejected));
    let f = audit(&log, &["r"]);
    assert_eq!((f.undecided, f.broken_carts), (1, 0), "{f:?}");
    assert!(f.examples[0].contains("line 0"), "{f:?}");
}
