//! Property tests of one shard's scheduler: random sequences of orders,
//! cancels, stock changes, worker outcomes (late, duplicated, out of
//! order), time, reroutes in transit and crashes, checking an invariant
//! after every step.
//!
//! Each test runs `PROPTEST_CASES` cases if set, else a default that keeps
//! the suite within seconds in a debug build.

mod shard_model;

use std::collections::HashMap;

use allot::domain::{Event, OrderId, Status};
use allot::views::Views;
use proptest::prelude::*;

use shard_model::driver::{play, Sim};
use shard_model::release::check_release_order;
use shard_model::scenario::{cases, scenario, Gen, BIG_HORIZON, CROWDED, GEN};

/// Per partition the counters agree with the live orders, the ledger agrees
/// with the counters, and nothing sold or reserved was not supplied, but
/// for a recorded shortage (a stock count below what workers already
/// enact: reservations are never taken back).
fn check_not_oversold(sim: &Sim, at: &str) {
    let state = sim.state();
    let mut counted: HashMap<u32, [u64; 4]> = HashMap::new();
    for live in state.live_orders() {
        let c = counted.entry(live.partition).or_default();
        match live.status {
            Status::Reserved => {
                c[0] += u64::from(live.order.quantity.get());
                c[1] += 1;
            }
            Status::Queued => c[2] += 1,
            Status::Backordered { .. } => c[3] += 1,
            Status::Releasing | Status::Forwarding => {}
        }
    }
    for (i, p) in state.partitions().iter().enumerate() {
        let c = counted.get(&(i as u32)).copied().unwrap_or_default();
        let got = [
            p.reserved,
            p.in_flight.into(),
            p.queued.into(),
            p.backordered.into(),
        ];
        assert_eq!(got, c, "{at}: {} counters [reserved, in flight, queued, backordered] differ from its live orders", p.key);
        let supplied = sim.ledger.stock(&p.key).map_or(0, |s| s.supplied);
        assert!(
            i128::from(p.sold + p.reserved) <= supplied + i128::from(p.short),
            "{at}: {} sold {} + reserved {} > supplied {supplied} + short {}",
            p.key,
            p.sold,
            p.reserved,
            p.short
        );
        assert!(
            p.short == 0 || p.available == 0,
            "{at}: {} short {} with {} free",
            p.key,
            p.short,
            p.available
        );
    }
    allot_core::testkit::check_audit(&sim.ledger, state);
}

/// What the stock commands put in is what is free, reserved or sold.
fn check_conserved(sim: &Sim, at: &str) {
    let state = sim.state();
    for p in state.partitions() {
        let supplied = sim.supplied.get(&p.key).copied().unwrap_or(0);
        let held = p.net_free() + i128::from(p.reserved + p.sold);
        assert_eq!(supplied, held, "{at}: {}: {p:?}", p.key);
    }
    allot_core::testkit::check_audit(&sim.ledger, state);
}

fn check_rebuilds(sim: &Sim, at: &str) {
    let rebuilt = sim.h.rebuild().unwrap_or_else(|e| panic!("{at}: {e}"));
    assert!(&rebuilt == sim.state(), "{at}: rebuilt state differs");
}

/// Confirmations and rejections per id in the log.
fn finals(sim: &Sim) -> HashMap<OrderId, usize> {
    let mut n = HashMap::new();
    for e in sim.h.events() {
        if let Event::OrderConfirmed { id } | Event::OrderRejected { id, .. } = e {
            *n.entry(id.clone()).or_default() += 1;
        }
    }
    n
}

/// Timers fire on time: no order stays queued past `max_wait` (counted from
/// when it entered the queue, or from the last restart, which re-arms the
/// timers), no backorder outlives its deadline, and none expires before.
fn check_waits_bounded(sim: &Sim, at: &str) {
    let now = sim.h.now;
    for live in sim.state().live_orders() {
        let id = &live.order.id;
        match live.status {
            Status::Queued => {
                let since = sim.entered[id].max(sim.restarted);
                assert!(
                    now < since.plus(sim.max_wait),
                    "{at}: {id} queued since {since:?}, now {now:?}"
                );
            }
            Status::Backordered { until } => {
                assert!(
                    until > now,
                    "{at}: {id} backordered until {until:?}, now {now:?}"
                )
            }
            _ => {}
        }
    }
    for (id, (until, expired)) in &sim.backorders {
        if let Some(t) = expired {
            assert!(
                t >= until,
                "{at}: {id} expired at {t:?}, deadline {until:?}"
            );
        }
    }
}

/// No waiting order could be reserved from its partition's free stock.
fn check_nothing_fits(sim: &Sim, at: &str) {
    let state = sim.state();
    for live in state.live_orders() {
        if matches!(live.status, Status::Queued | Status::Backordered { .. }) {
            let p = state.partition(live.partition);
            assert!(
                u64::from(live.order.quantity.get()) > p.available,
                "{at}: {} ({:?}, qty {}) waits with {} free in {}",
                live.order.id,
                live.status,
                live.order.quantity.get(),
                p.available,
                p.key
            );
        }
    }
}

/// The views folded from the log, batch by batch, agree with the state
/// rebuilt from it: every partition's stock and counts, and every order's
/// whole history (one line per event about it) and stage.
fn check_views_match_the_log(sim: &Sim, at: &str) {
    let views = Views::new(1, usize::MAX);
    for (i, batch) in sim.h.batches().iter().enumerate() {
        views.apply(0, i as u64 + 1, batch);
    }
    let state = sim.state();
    for p in state.partitions() {
        let v = views
            .stock(&p.key)
            .unwrap_or_else(|| panic!("{at}: no view of {}", p.key));
        let got = [
            v.available,
            v.reserved,
            v.sold,
            v.queued,
            v.in_flight,
            v.backordered,
        ];
        let want = [
            i64::try_from(p.net_free()).expect("free units fit in i64"),
            p.reserved as i64,
            p.sold as i64,
            i64::from(p.queued),
            i64::from(p.in_flight),
            i64::from(p.backordered),
        ];
        assert_eq!(got, want, "{at}: {} view [available, reserved, sold, queued, in flight, backordered] differs from the state", p.key);
        assert_eq!(
            v.short, p.short as i64,
            "{at}: {} view short differs",
            p.key
        );
    }
    let mut lines: HashMap<&OrderId, usize> = HashMap::new();
    for e in sim.h.events() {
        if let Some(id) = e.order_id() {
            *lines.entry(id).or_default() += 1;
        }
    }
    for (id, n) in lines {
        let o = views
            .order(id)
            .unwrap_or_else(|| panic!("{at}: no view of order {id}"));
        assert_eq!(o.history.len(), n, "{at}: {id}: {o:?}");
        if let Some(live) = state.live(id) {
            let stage = match live.status {
                Status::Queued => "queued",
                Status::Reserved => "reserved",
                Status::Backordered { .. } => "backordered",
                Status::Releasing => "released",
                Status::Forwarding => "rerouted",
            };
            assert_eq!(o.status, stage, "{at}: {id}");
        }
    }
}

// ---------------------------------------------------------------- properties

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn never_oversells(s in scenario(GEN)) {
        let mut sim = play(&s, BIG_HORIZON, check_not_oversold);
        sim.drain();
        check_not_oversold(&sim, "after draining");
    }

    #[test]
    fn every_order_decided_exactly_once(s in scenario(GEN)) {
        let mut sim = play(&s, BIG_HORIZON, |sim, at| {
            if let Some((id, n)) = finals(sim).into_iter().find(|(_, n)| *n > 1) {
                panic!("{at}: {id} decided {n} times");
            }
        });
        sim.drain();
        let left: Vec<_> = sim.state().live_orders().map(|l| (&l.order.id, l.status)).collect();
        prop_assert!(left.is_empty(), "undecided after draining: {:?}", left);
        let finals = finals(&sim);
        for id in &sim.accepted {
            prop_assert_eq!(finals.get(id).copied().unwrap_or(0), 1, "{}", id);
        }
        for id in finals.keys() {
            prop_assert!(sim.accepted.contains(id), "{} decided but never accepted", id);
        }
    }

    #[test]
    fn stock_is_conserved(s in scenario(GEN)) {
        let mut sim = play(&s, BIG_HORIZON, check_conserved);
        sim.drain();
        check_conserved(&sim, "after draining");
    }

    #[test]
    fn fifo_within_a_partition(s in scenario(CROWDED)) {
        let mut sim = play(&s, BIG_HORIZON, |_, _| {});
        sim.drain();
        check_release_order(&sim.h.log());
    }

    #[test]
    fn first_fit_in_release_order(s in scenario(Gen { max_qty: 5, ..CROWDED })) {
        let mut sim = play(&s, BIG_HORIZON, check_nothing_fits);
        sim.drain();
        check_nothing_fits(&sim, "after draining");
        check_release_order(&sim.h.log());
    }

    #[test]
    fn waits_are_bounded(s in scenario(GEN)) {
        let mut sim = play(&s, BIG_HORIZON, check_waits_bounded);
        sim.drain();
        check_waits_bounded(&sim, "after draining");
    }

    #[test]
    fn rebuild_from_events_equals_live_state(s in scenario(Gen { crashes: 8, ..GEN })) {
        let mut sim = play(&s, BIG_HORIZON, |sim, at| {
            check_rebuilds(sim, at);
            check_not_oversold(sim, at);
            check_conserved(sim, at);
        });
        sim.drain();
        check_rebuilds(&sim, "after draining");
        prop_assert_eq!(sim.state().live_orders().count(), 0);
        prop_assert!(finals(&sim).values().all(|n| *n == 1));
    }

    #[test]
    fn views_equal_the_stock_rebuilt_from_events(s in scenario(Gen { crashes: 4, ..GEN })) {
        let mut sim = play(&s, BIG_HORIZON, check_views_match_the_log);
        sim.drain();
        check_views_match_the_log(&sim, "after draining");
    }

    #[test]
    fn dedupe_horizon_bounds_memory(s in scenario(GEN)) {
        const HORIZON: usize = 4;
        let mut sim = play(&s, HORIZON, |sim, at| {
            let n = sim.state().horizon().len();
            assert!(n <= HORIZON, "{at}: horizon holds {n} ids");
            check_not_oversold(sim, at);
        });
        sim.drain();
        prop_assert!(sim.state().horizon().len() <= HORIZON);
        check_rebuilds(&sim, "after draining");
        check_conserved(&sim, "after draining");
    }
}
