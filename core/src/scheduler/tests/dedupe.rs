//! Deciding an id once: a repeated order or keyed command is a duplicate,
//! an id is remembered for the dedupe window, and the owner grants each
//! id to one partition.

use super::*;

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
