//! The saga's paths: all or nothing, partial, compensation, holds.

use super::*;

#[test]
fn effects_wait_until_the_append_is_durable() {
    let mut carts = Carts::new(CartConfig::default());
    let c = cart("c", &[("w1", "a"), ("w2", "b")], Fill::All, None);
    assert_eq!(
        carts.handle_cart(c.clone(), Some(AckId(7)), Timestamp(1)),
        CartReply::Accepted
    );
    let Some(Output::Append(events)) = carts.poll_output() else {
        panic!("an append comes first");
    };
    assert!(matches!(events[..], [CartEvent::Opened { .. }]));
    // A redelivered copy is acked with the original, not before it.
    assert_eq!(
        carts.handle_cart(c, Some(AckId(8)), Timestamp(1)),
        CartReply::Duplicate
    );
    // Nothing leaves the process until the append is durable.
    assert_eq!(carts.poll_output(), None);
    carts.handle_line(&lid("c", 0), LineAnswer::Reserved, Timestamp(2));
    assert_eq!(
        carts.poll_output(),
        None,
        "one append outstanding at a time"
    );
    carts.handle_appended(Timestamp(3));
    let mut effects = Vec::new();
    while let Some(out) = carts.poll_output() {
        effects.push(out);
        if matches!(effects.last(), Some(Output::Append(_))) {
            break;
        }
    }
    assert_eq!(
        line_effects(&effects),
        [("c#0".into(), "reserve"), ("c#1".into(), "reserve")]
    );
    assert_eq!(
        effects[2..4],
        [Output::Ack(AckId(7)), Output::Ack(AckId(8))]
    );
    // The next append records those as sent, ahead of the answer.
    let Some(Output::Append(next)) = effects.pop() else {
        panic!("then the next append");
    };
    assert!(matches!(
        next[..],
        [CartEvent::Delivered, CartEvent::LineReserved { .. }]
    ));
}

#[test]
fn all_reserved_enacts_once_per_warehouse_then_commits_every_line() {
    let mut d = Drive::new();
    let c = cart(
        "c",
        &[("w1", "a"), ("w2", "b"), ("w1", "c")],
        Fill::All,
        None,
    );
    assert_eq!(line_effects(&d.open(c)).len(), 3);
    assert!(d.reserve("c", 2).is_empty());
    assert!(d.reserve("c", 0).is_empty());
    let out = d.reserve("c", 1);
    assert_eq!(
        enacts(&out),
        [
            ("w1".into(), vec!["c#0".into(), "c#2".into()], 1),
            ("w2".into(), vec!["c#1".into()], 1),
        ]
    );
    assert!(d.enacted("c", "w2", 1, EnactResult::Ok).is_empty());
    let out = d.enacted("c", "w1", 1, EnactResult::Ok);
    assert_eq!(
        line_effects(&out),
        [
            ("c#0".into(), "commit"),
            ("c#1".into(), "commit"),
            ("c#2".into(), "commit"),
        ]
    );
    let decided = decisions(&out);
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].outcome, CartOutcome::Confirmed);
    assert_eq!(
        decided[0].lines[1],
        (
            lid("c", 1),
            LineFate::Committed {
                warehouse: wh("w2")
            }
        )
    );
    assert_eq!(d.phase("c"), Phase::Decided(CartOutcome::Confirmed));
}

#[test]
fn one_rejected_line_releases_every_other_reservation_even_late_ones() {
    let mut d = Drive::new();
    d.open(cart(
        "c",
        &[("w1", "a"), ("w1", "b"), ("w2", "c")],
        Fill::All,
        None,
    ));
    d.reserve("c", 0);
    let out = d.answer("c", 1, LineAnswer::Rejected(RejectReason::OutOfStock));
    assert_eq!(line_effects(&out), [("c#0".into(), "release")]);
    let Output::Release { reason, .. } = &out[0] else {
        panic!("release first");
    };
    assert_eq!(reason.label(), "line_rejected");
    let decided = decisions(&out);
    assert_eq!(
        decided[0].outcome,
        CartOutcome::Rejected {
            reason: CartReason::LineRejected {
                line: lid("c", 1),
                reason: RejectReason::OutOfStock,
            },
        }
    );
    assert_eq!(
        decided[0]
            .lines
            .iter()
            .map(|(_, f)| f.clone())
            .collect::<Vec<_>>(),
        [
            LineFate::Released,
            LineFate::Rejected {
                reason: RejectReason::OutOfStock
            },
            LineFate::Released,
        ]
    );
    // Line 2's answer was still on the way: it is released when it comes.
    let late = d.reserve("c", 2);
    assert_eq!(line_effects(&late), [("c#2".into(), "release")]);
    assert!(decisions(&late).is_empty(), "decided exactly once");
    assert!(d
        .log
        .iter()
        .all(|e| !matches!(e, CartEvent::EnactStarted { .. })));
}

#[test]
fn partial_sells_what_was_reserved_and_reports_each_line() {
    let mut d = Drive::new();
    d.open(cart(
        "p",
        &[("w1", "a"), ("w2", "b"), ("w2", "c")],
        Fill::Partial,
        None,
    ));
    assert!(
        decisions(&d.answer("p", 0, LineAnswer::Rejected(RejectReason::OutOfStock))).is_empty()
    );
    d.reserve("p", 2);
    let out = d.reserve("p", 1);
    assert_eq!(
        enacts(&out),
        [("w2".into(), vec!["p#1".into(), "p#2".into()], 1)]
    );
    let out = d.enacted("p", "w2", 1, EnactResult::Ok);
    assert_eq!(
        line_effects(&out),
        [("p#1".into(), "commit"), ("p#2".into(), "commit")]
    );
    let decided = decisions(&out)[0];
    assert_eq!(decided.outcome, CartOutcome::Confirmed);
    assert_eq!(
        decided.lines[0].1,
        LineFate::Rejected {
            reason: RejectReason::OutOfStock
        }
    );
    assert_eq!(
        decided.lines[2].1,
        LineFate::Committed {
            warehouse: wh("w2")
        }
    );
}

#[test]
fn partial_with_every_line_rejected_is_rejected() {
    let mut d = Drive::new();
    d.open(cart("p", &[("w1", "a"), ("w2", "b")], Fill::Partial, None));
    d.answer("p", 1, LineAnswer::Rejected(RejectReason::OutOfStock));
    let out = d.answer("p", 0, LineAnswer::Rejected(RejectReason::BackorderExpired));
    assert!(line_effects(&out).is_empty());
    assert_eq!(
        decisions(&out)[0].outcome,
        CartOutcome::Rejected {
            reason: CartReason::NothingReserved
        }
    );
}

#[test]
fn held_cart_waits_for_payment_then_enacts() {
    let mut d = Drive::new();
    d.open(cart("h", &[("w1", "a")], Fill::All, Some(60_000)));
    assert!(d.reserve("h", 0).is_empty());
    assert_eq!(
        d.phase("h"),
        Phase::Held {
            until: Timestamp(61_000)
        }
    );
    assert_eq!(d.carts.poll_timeout(), Some(Timestamp(61_000)));
    assert!(d.advance_to(Timestamp(60_999)).is_empty());
    assert_eq!(
        d.carts.handle_confirm(&id("h"), None, d.now),
        CartReply::Accepted
    );
    assert_eq!(enacts(&d.pump()).len(), 1);
    assert_eq!(
        d.carts.handle_confirm(&id("h"), None, d.now),
        CartReply::Duplicate
    );
    // The deadline passing no longer matters.
    assert!(d.advance_to(Timestamp(70_000)).is_empty());
    let out = d.enacted("h", "w1", 1, EnactResult::Ok);
    assert_eq!(decisions(&out)[0].outcome, CartOutcome::Confirmed);
}

#[test]
fn confirm_at_the_deadline_is_too_late() {
    let mut d = Drive::new();
    d.open(cart("h", &[("w1", "a")], Fill::All, Some(500)));
    d.reserve("h", 0);
    // The runtime has not called handle_timeout yet; the confirm does.
    d.now = Timestamp(1_500);
    assert_eq!(
        d.carts.handle_confirm(&id("h"), None, d.now),
        CartReply::Refused(Refusal::Decided("rejected"))
    );
    let out = d.pump();
    assert_eq!(line_effects(&out), [("h#0".into(), "release")]);
    assert!(enacts(&out).is_empty());
}

#[test]
fn confirm_before_every_line_is_reserved_skips_the_hold() {
    let mut d = Drive::new();
    d.open(cart(
        "h",
        &[("w1", "a"), ("w1", "b")],
        Fill::All,
        Some(60_000),
    ));
    d.reserve("h", 0);
    assert_eq!(
        d.carts.handle_confirm(&id("h"), None, d.now),
        CartReply::Accepted
    );
    let out = d.reserve("h", 1);
    assert_eq!(enacts(&out).len(), 1);
    assert!(!d.log.iter().any(|e| matches!(e, CartEvent::Held { .. })));
}

#[test]
fn holds_expire_in_deadline_order_releasing_every_line() {
    let mut d = Drive::new();
    // "late" is held first but with the longer hold.
    d.open(cart(
        "late",
        &[("w1", "a"), ("w2", "b")],
        Fill::All,
        Some(5_000),
    ));
    d.reserve("late", 0);
    d.reserve("late", 1);
    d.now = Timestamp(2_000);
    d.open(cart("early", &[("w1", "a")], Fill::Partial, Some(1_000)));
    d.reserve("early", 0);
    assert_eq!(d.carts.poll_timeout(), Some(Timestamp(3_000)));
    let out = d.advance_to(Timestamp(10_000));
    let order: Vec<_> = decisions(&out).iter().map(|d| d.cart.to_string()).collect();
    assert_eq!(order, ["early", "late"]);
    assert_eq!(
        line_effects(&out),
        [
            ("early#0".into(), "release"),
            ("late#0".into(), "release"),
            ("late#1".into(), "release"),
        ]
    );
    for o in &out {
        if let Output::Release { reason, .. } = o {
            assert_eq!(reason.label(), "hold_expired");
        }
    }
    assert_eq!(
        d.carts.handle_confirm(&id("late"), None, d.now),
        CartReply::Refused(Refusal::Decided("rejected"))
    );
    assert_eq!(
        d.carts.handle_confirm(&id("nope"), None, d.now),
        CartReply::Refused(Refusal::UnknownCart)
    );
}
