//! Cancels and worker outcomes: a cancel releases queued and reserved
//! orders, retryable failures retry up to the budget, and an unknown
//! outcome is asked again until answered.

use super::*;

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
