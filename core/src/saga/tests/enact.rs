//! Enactment and its retries, cancels, duplicates and late answers, and
//! recovery from the log.

use super::*;
use crate::domain::RetryPolicy;

fn retrying(max_retries: u32) -> CartConfig {
    CartConfig {
        retry: RetryPolicy {
            max_retries,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(150),
        },
        ..CartConfig::default()
    }
}

#[test]
fn retryable_enactment_backs_off_then_gives_up_and_releases_every_line() {
    let mut d = Drive::with(retrying(2));
    d.open(cart("c", &[("w1", "a"), ("w2", "b")], Fill::All, None));
    d.reserve("c", 0);
    d.reserve("c", 1);
    assert!(d.enacted("c", "w2", 1, EnactResult::Ok).is_empty());
    // Attempt 1 fails: retry 1 after 100 ms.
    assert!(d
        .enacted("c", "w1", 1, EnactResult::Retryable("busy".into()))
        .is_empty());
    assert_eq!(d.carts.poll_timeout(), Some(Timestamp(1_100)));
    assert!(d.advance_to(Timestamp(1_099)).is_empty());
    let out = d.advance_to(Timestamp(1_100));
    assert_eq!(enacts(&out), [("w1".into(), vec!["c#0".into()], 2)]);
    // A late answer to attempt 1 is stale.
    assert!(d.enacted("c", "w1", 1, EnactResult::Ok).is_empty());
    assert_eq!(d.carts.stats().stale_enactments, 1);
    // Attempt 2 fails: retry 2 after 200 ms capped to 150.
    d.enacted("c", "w1", 2, EnactResult::Retryable("busy".into()));
    assert_eq!(d.carts.poll_timeout(), Some(Timestamp(1_250)));
    let out = d.advance_to(Timestamp(1_250));
    assert_eq!(enacts(&out)[0].2, 3);
    // Attempt 3 was the last: the cart is rejected, every line released,
    // both warehouses told to undo.
    let out = d.enacted("c", "w1", 3, EnactResult::Retryable("still busy".into()));
    assert_eq!(
        line_effects(&out),
        [("c#0".into(), "release"), ("c#1".into(), "release")]
    );
    let revoked: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Revoke { warehouse, .. } => Some(warehouse.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(revoked, ["w1", "w2"]);
    assert_eq!(
        decisions(&out)[0].outcome,
        CartOutcome::Rejected {
            reason: CartReason::EnactFailed {
                warehouse: wh("w1"),
                reason: RejectReason::RetriesExhausted {
                    last: "still busy".into()
                },
            },
        }
    );
    // Nothing was committed.
    assert!(!d
        .log
        .iter()
        .any(|e| matches!(e, CartEvent::Confirmed { .. })));
}

#[test]
fn permanent_enactment_failure_rejects_without_retry() {
    let mut d = Drive::with(retrying(5));
    d.open(cart("c", &[("w1", "a")], Fill::Partial, None));
    d.reserve("c", 0);
    let out = d.enacted("c", "w1", 1, EnactResult::Failed("card declined".into()));
    assert_eq!(line_effects(&out), [("c#0".into(), "release")]);
    assert_eq!(d.carts.poll_timeout(), None);
    assert!(matches!(
        &decisions(&out)[0].outcome,
        CartOutcome::Rejected {
            reason: CartReason::EnactFailed {
                reason: RejectReason::FulfilmentFailed { .. },
                ..
            }
        }
    ));
}

#[test]
fn cancel_releases_before_enactment_and_is_refused_after() {
    let mut d = Drive::new();
    d.open(cart("c", &[("w1", "a"), ("w1", "b")], Fill::All, None));
    d.reserve("c", 0);
    assert_eq!(
        d.carts.handle_cancel(&id("c"), None, d.now),
        CartReply::Accepted
    );
    let out = d.pump();
    assert_eq!(line_effects(&out), [("c#0".into(), "release")]);
    assert_eq!(decisions(&out)[0].outcome, CartOutcome::Cancelled);
    assert_eq!(
        d.carts.handle_cancel(&id("c"), None, d.now),
        CartReply::Duplicate
    );
    // The pending line is released once its reservation arrives.
    assert_eq!(
        line_effects(&d.reserve("c", 1)),
        [("c#1".into(), "release")]
    );

    d.open(cart("e", &[("w1", "a")], Fill::All, None));
    d.reserve("e", 0);
    assert_eq!(
        d.carts.handle_cancel(&id("e"), None, d.now),
        CartReply::Refused(Refusal::Enacting)
    );
    assert!(d.pump().is_empty());
    d.enacted("e", "w1", 1, EnactResult::Ok);
    assert_eq!(
        d.carts.handle_cancel(&id("e"), None, d.now),
        CartReply::Refused(Refusal::Decided("confirmed"))
    );
}

#[test]
fn duplicates_and_late_answers_are_counted_not_acted_on() {
    let mut d = Drive::new();
    let c = cart("c", &[("w1", "a"), ("w2", "b")], Fill::All, None);
    d.open(c.clone());
    assert_eq!(d.carts.handle_cart(c, None, d.now), CartReply::Duplicate);
    assert!(d.pump().is_empty(), "a duplicate cart does no new work");
    d.reserve("c", 0);
    assert!(d.reserve("c", 0).is_empty());
    assert!(d
        .answer("c", 0, LineAnswer::Rejected(RejectReason::OutOfStock))
        .is_empty());
    assert!(d.reserve("c", 7).is_empty(), "no such line");
    assert!(d.reserve("other", 0).is_empty(), "no such cart");
    assert!(
        d.enacted("c", "w1", 1, EnactResult::Ok).is_empty(),
        "not enacting"
    );
    let stats = d.carts.stats();
    assert_eq!(
        (
            stats.duplicate_carts,
            stats.repeated_answers,
            stats.unknown_answers,
            stats.stale_enactments
        ),
        (1, 2, 2, 1)
    );
    assert_eq!(
        d.carts.cart(&id("c")).unwrap().lines[0],
        LineStatus::Reserved
    );
}

#[test]
fn recovery_rebuilds_the_state_and_resends_what_may_be_unsent() {
    let mut d = Drive::with(retrying(3));
    d.open(cart("a", &[("w1", "a"), ("w2", "b")], Fill::All, None));
    d.open(cart("h", &[("w1", "c")], Fill::All, Some(5_000)));
    d.open(cart("r", &[("w1", "a"), ("w1", "b")], Fill::All, None));
    d.reserve("a", 0);
    d.reserve("a", 1);
    d.enacted("a", "w1", 1, EnactResult::Retryable("busy".into()));
    d.reserve("h", 0);
    d.reserve("r", 0);
    // The last decision's effects were output; the crash comes before
    // the `Delivered` recording them is durable.
    let before = d.answer("r", 1, LineAnswer::Rejected(RejectReason::OutOfStock));
    assert_eq!(d.log.last(), Some(&CartEvent::Delivered));
    d.log.pop();
    let mut back = Carts::recover(retrying(3), d.log.clone(), d.now);
    assert_eq!(
        back.carts().collect::<Vec<_>>(),
        d.carts.carts().collect::<Vec<_>>()
    );
    let mut out = Vec::new();
    while let Some(o) = back.poll_output() {
        out.push(o);
    }
    let Some(Output::Append(tail)) = out.pop() else {
        panic!("the re-sent effects are recorded as delivered");
    };
    assert_eq!(tail, [CartEvent::Delivered]);
    // w2 of "a" is still in flight; r's release and decision may be unsent.
    assert_eq!(enacts(&out), [("w2".into(), vec!["a#1".into()], 1)]);
    assert_eq!(line_effects(&out), line_effects(&before));
    assert_eq!(decisions(&out), decisions(&before));
    // Timers come back: a's retry (1_100), h's hold (6_000).
    assert_eq!(back.poll_timeout(), Some(Timestamp(1_100)));
    back.handle_timeout(Timestamp(6_000));
    back.handle_appended(d.now);
    let kinds: Vec<_> = std::iter::from_fn(|| back.poll_output())
        .filter_map(|o| match o {
            Output::Append(events) => Some(events),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(kinds.contains(&CartEvent::EnactStarted {
        cart: id("a"),
        warehouse: wh("w1"),
        attempt: 2
    }));
    assert!(kinds.contains(&CartEvent::Rejected {
        cart: id("h"),
        reason: CartReason::HoldExpired
    }));
}
