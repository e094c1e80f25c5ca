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
