//! The saga's promises, checked over the model (`model`) for many seeds.
//! A failure names the seed; rerun it with `run(seed, ..)` to debug.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{Held, World};
use super::*;

const SEEDS: u64 = 300;
const STEPS: usize = 400;

fn run(seed: u64, crashes: bool) -> World {
    let mut w = World::new(seed);
    w.crashes_allowed = crashes;
    for _ in 0..STEPS {
        w.step();
    }
    w.settle_all();
    w.check_recovery();
    w
}

/// Every promise of the module docs, from what the world saw.
fn check(w: &World) -> Result<(), String> {
    if let Some(v) = w.violations.first() {
        return Err(v.clone());
    }
    for (cart_id, cart) in &w.opened {
        let decided = w.decided.get(cart_id).map_or(&[][..], |d| &d[..]);
        // Exactly one decision; a crash may repeat it, never change it.
        let Some(first) = decided.first() else {
            return Err(format!("{cart_id}: never decided"));
        };
        if decided.iter().any(|d| d != first) {
            return Err(format!("{cart_id}: differing decisions {decided:?}"));
        }
        if decided.len() as u32 > 1 + w.crashes {
            return Err(format!("{cart_id}: decided {} times", decided.len()));
        }
        let state = w.carts.cart(cart_id).ok_or("cart lost")?;
        if !state.is_decided() || !state.all_answered() {
            return Err(format!("{cart_id}: not settled: {state:?}"));
        }
        let lines: Vec<LineId> = (0..cart.lines().len()).map(|i| cart.line_id(i)).collect();
        let committed: BTreeSet<&LineId> = lines
            .iter()
            .filter(|l| w.partitions.get(*l) == Some(&Held::Committed))
            .collect();
        // A reserved line ends committed or released.
        if let Some(l) = lines
            .iter()
            .find(|l| w.partitions.get(*l) == Some(&Held::Reserved))
        {
            return Err(format!("{l}: still reserved"));
        }
        if cart.fill() == Fill::All && !committed.is_empty() && committed.len() != lines.len() {
            return Err(format!("{cart_id}: all-or-nothing sold {committed:?} only"));
        }
        let said: BTreeSet<&LineId> = first
            .lines
            .iter()
            .filter(|(_, f)| matches!(f, LineFate::Committed { .. }))
            .map(|(l, _)| l)
            .collect();
        if said != committed {
            return Err(format!("{cart_id}: decided {said:?}, sold {committed:?}"));
        }
        let confirmed = first.outcome == CartOutcome::Confirmed;
        if confirmed == committed.is_empty() {
            return Err(format!("{cart_id}: {:?} with {committed:?}", first.outcome));
        }
        // A failed cart undoes every enactment it started.
        for (c, wh) in &w.enacted {
            if c == cart_id && !confirmed && !w.revoked.contains(&(c.clone(), wh.clone())) {
                return Err(format!("{cart_id}: enactment at {wh} not revoked"));
            }
        }
        // A hold ends confirmed (paid), expired or cancelled.
        let ev = |f: &dyn Fn(&CartEvent) -> bool| w.log.iter().any(f);
        let held = ev(&|e| matches!(e, CartEvent::Held { cart, .. } if cart == cart_id));
        let ended = ev(&|e| match e {
            CartEvent::Paid { cart } | CartEvent::Cancelled { cart } => cart == cart_id,
            CartEvent::Rejected { cart, reason } => {
                cart == cart_id && *reason == CartReason::HoldExpired
            }
            _ => false,
        });
        if held && !ended {
            return Err(format!("{cart_id}: hold neither confirmed nor expired"));
        }
    }
    Ok(())
}

#[test]
fn every_cart_decided_once_never_half_sold_and_recovered_equal() {
    let mut crashes = 0;
    let mut outcomes = BTreeMap::<&str, u32>::new();
    for seed in 0..SEEDS {
        let w = run(seed, true);
        crashes += w.crashes;
        if let Err(e) = check(&w) {
            panic!("seed {seed}: {e}");
        }
        for d in w.decided.values() {
            let label = match &d[0].outcome {
                CartOutcome::Rejected { reason } => reason.label(),
                CartOutcome::Confirmed
                    if d[0].lines.iter().any(|(_, f)| f == &LineFate::Released) =>
                {
                    "confirmed_with_released"
                }
                CartOutcome::Confirmed => "confirmed",
                CartOutcome::Cancelled => "cancelled",
            };
            *outcomes.entry(label).or_default() += 1;
        }
    }
    // The runs exercised what they claim to.
    assert!(crashes > SEEDS as u32 / 2, "only {crashes} crashes");
    for label in [
        "confirmed",
        "line_rejected",
        "nothing_reserved",
        "hold_expired",
        "cancelled",
        "enact_failed",
    ] {
        assert!(outcomes.get(label) > Some(&10), "{label}: {outcomes:?}");
    }
    assert!(
        !outcomes.contains_key("confirmed_with_released"),
        "{outcomes:?}"
    );
}

#[test]
fn without_crashes_every_cart_is_decided_exactly_once() {
    for seed in 0..SEEDS {
        let w = run(seed, false);
        if let Err(e) = check(&w) {
            panic!("seed {seed}: {e}");
        }
        for (cart, d) in &w.decided {
            assert_eq!(d.len(), 1, "seed {seed}: {cart} decided {} times", d.len());
        }
    }
}
