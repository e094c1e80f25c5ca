use std::collections::HashSet;

use super::names::{self, Kind, METRICS};
use super::*;
use crate::domain::{Event, PartitionKey, ShardState, Sku, WarehouseId};
use crate::ports::{Delivery, Intake};
use crate::scheduler::AckId;

const LABELS: [&str; 4] = [names::SHARD, names::WAREHOUSE, names::OUTCOME, names::KIND];

#[test]
fn names_follow_prometheus_conventions() {
    let mut seen = HashSet::new();
    for m in METRICS {
        assert!(seen.insert(m.name), "{} listed twice", m.name);
        assert!(m.name.starts_with("allot_"), "{}", m.name);
        assert_eq!(
            m.kind == Kind::Counter,
            m.name.ends_with("_total"),
            "{}: only counters end with _total",
            m.name
        );
        if m.unit == Some(metrics::Unit::Seconds) {
            assert!(m.name.ends_with("_seconds"), "{}: base unit", m.name);
        }
        for label in m.labels {
            assert!(LABELS.contains(label), "{}: label {label}", m.name);
        }
        assert_eq!(
            m.kind == Kind::Histogram,
            !m.buckets.is_empty(),
            "{}",
            m.name
        );
        assert!(
            m.buckets.windows(2).all(|w| w[0] < w[1]),
            "{}: buckets ascend",
            m.name
        );
    }
}

#[test]
fn install_twice_gives_one_recorder() {
    let first = install().expect("installs");
    let second = install().expect("the second call returns the first handle");
    metrics::counter!(names::LOG_CONFLICTS, names::SHARD => "99").increment(3);
    let line = format!("{}{{shard=\"99\"}} 3", names::LOG_CONFLICTS);
    assert!(first.render().contains(&line), "{}", first.render());
    assert!(second.render().contains(&line));
}

fn partition(warehouse: &str, sku: &str) -> PartitionKey {
    PartitionKey::new(WarehouseId::new(warehouse).unwrap(), Sku::new(sku).unwrap())
}

fn stock_set(warehouse: &str, sku: &str, on_hand: u64) -> Event {
    Event::StockSet {
        partition: partition(warehouse, sku),
        on_hand,
    }
}

/// Renders what `f` records on a recorder of its own.
fn render_local(f: impl FnOnce()) -> String {
    let recorder = recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        describe();
        f();
    });
    handle.render()
}

#[test]
fn stock_is_summed_per_warehouse_and_follows_new_partitions() {
    let text = render_local(|| {
        let mut state = ShardState::new(16);
        for e in [
            stock_set("ams", "A", 5),
            stock_set("ams", "B", 7),
            stock_set("par", "A", 2),
        ] {
            state.evolve(&e).unwrap();
        }
        let mut m = ShardMetrics::new(3);
        m.gauges(&state, 4, true);
        state.evolve(&stock_set("par", "C", 10)).unwrap();
        // Not due yet, not forced: only in-flight moves.
        m.gauges(&state, 2, false);
        state.evolve(&stock_set("ber", "C", 1)).unwrap();
        m.gauges(&state, 1, true);
    });
    for line in [
        "allot_stock_available{shard=\"3\",warehouse=\"ams\"} 12",
        "allot_stock_available{shard=\"3\",warehouse=\"par\"} 12",
        "allot_stock_available{shard=\"3\",warehouse=\"ber\"} 1",
        "allot_in_flight{shard=\"3\"} 1",
        "allot_queue_depth{shard=\"3\"} 0",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[test]
fn a_batch_counts_only_once_durable() {
    let events = [
        stock_set("ams", "A", 1),
        Event::OrderRejected {
            id: crate::domain::OrderId::new("o-1").unwrap(),
            reason: crate::domain::RejectReason::OutOfStock,
        },
    ];
    let tally = BatchTally::of(&events);
    assert_eq!((tally.events, tally.decisions()), (2, 1));
    let text = render_local(|| {
        let m = ShardMetrics::new(0);
        m.appending(&tally);
        m.appended(&tally);
        let delivery = |n, count| Delivery {
            ack: AckId(n),
            item: Intake::Command(crate::domain::Command::SetStock {
                partition: partition("ams", "A"),
                on_hand: 1,
            }),
            delivery_count: count,
            published: None,
        };
        m.intake(&[delivery(1, 1), delivery(2, 3)]);
    });
    for line in [
        "allot_decisions_total{shard=\"0\",kind=\"rejected\"} 1",
        "allot_rejections_total{shard=\"0\",kind=\"out_of_stock\"} 1",
        "allot_decisions_total{shard=\"0\",kind=\"queued\"} 0",
        "allot_intake_messages_total{shard=\"0\",kind=\"command\"} 2",
        "allot_intake_redeliveries_total{shard=\"0\"} 1",
        "allot_log_append_events_bucket{shard=\"0\",le=\"2\"} 1",
        "allot_log_append_events_bucket{shard=\"0\",le=\"1\"} 0",
        "# TYPE allot_log_append_events histogram",
        "# HELP allot_decisions_total Durable order decisions",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}
