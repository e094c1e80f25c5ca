//! The simulated flash sale through every shard of the demo config: every
//! promise holds, and the same seed replays the same sale.

use std::time::Duration;

use allot::config::Config;
use allot::ports::Latency;
use allot::sim::{self, SimOptions};

fn demo_config() -> Config {
    Config::from_toml(
        include_str!("../config/default.toml"),
        "config/default.toml",
    )
    .unwrap()
}

fn small(seed: u64) -> SimOptions {
    SimOptions {
        orders: 6_000,
        skus: 20,
        preorder_skus: 2,
        stock: 60,
        restock: 10,
        rate: 5_000.0,
        latency: Latency {
            median: Duration::from_millis(10),
            p99: Duration::from_millis(300),
        },
        failure_rate: 0.1,
        retryable_share: 0.5,
        duplicate_rate: 0.05,
        carts: 0.0,
        append_latency: Duration::from_millis(3),
        seed,
        progress: false,
    }
}

#[test]
fn every_promise_holds_in_a_simulated_sale() {
    for seed in [1, 2, 3] {
        let report = sim::run(&demo_config(), &small(seed));
        assert!(report.passed(), "seed {seed}:\n{report}");
        let f = &report.findings;
        assert_eq!(report.submitted, 6_000);
        assert!(report.duplicates_sent > 0, "duplicates were exercised");
        assert!(
            f.confirmed > 0 && f.rerouted > 0 && f.backordered > 0,
            "{report}"
        );
        assert!(f.rejected.contains_key("out_of_stock"), "{report}");
        assert_eq!(
            f.confirmed + f.rejected_total(),
            report.submitted,
            "one final decision each"
        );
        assert_eq!(report.enactments, f.confirmed, "no order enacted twice");
    }
}

#[test]
fn carts_hold_their_promises_in_a_simulated_sale() {
    for seed in [4, 5] {
        let opts = SimOptions {
            carts: 0.2,
            ..small(seed)
        };
        let report = sim::run(&demo_config(), &opts);
        assert!(report.passed(), "seed {seed}:\n{report}");
        let f = &report.findings;
        assert!(report.carts > 1_000, "{report}");
        assert_eq!(f.broken_carts, 0);
        assert_eq!(
            f.carts_confirmed + f.carts_rejected,
            report.carts,
            "one final decision per cart:\n{report}"
        );
        let decided: u64 = report.cart_outcomes.values().sum();
        assert_eq!(decided, report.carts, "{report}");
        for outcome in [
            "confirmed",
            "rejected: line_rejected",
            "rejected: hold_expired",
        ] {
            assert!(
                report.cart_outcomes.get(outcome).is_some_and(|n| *n > 0),
                "no cart {outcome}:\n{report}"
            );
        }
    }
}

#[test]
fn same_seed_same_sale() {
    let a = sim::run(&demo_config(), &small(7));
    let b = sim::run(&demo_config(), &small(7));
    assert_eq!(a.findings, b.findings);
    assert_eq!(
        (a.events, a.appends, a.virtual_time),
        (b.events, b.appends, b.virtual_time)
    );
    let c = sim::run(&demo_config(), &small(8));
    assert_ne!(a.findings, c.findings, "another seed, another sale");
}
