use std::collections::HashSet;

use super::names::{self, Kind, METRICS};
use super::*;
use crate::domain::{Event, PartitionKey, ShardState, Sku, WarehouseId};
use crate::ports::{Delivery, Intake};
use crate::scheduler::AckId;

const LABELS: [&str; 4] = [names::SHARD, names::WAREHOUSE, names::OUTCOME, names::KIND];
/// Labels Prometheus adds to every series it scrapes: a dashboard may
/// select on them.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

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
            let build = m.name == names::BUILD_INFO;
            assert!(
                LABELS.contains(label) || build && [names::VERSION, names::COMMIT].contains(label),
                "{}: label {label}",
                m.name
            );
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
fn state_is_summed_per_warehouse_follows_new_partitions_and_ends_when_fenced() {
    let text = render_local(|| {
        let mut state = ShardState::new(16);
        let queued = Event::OrderQueued {
            order: crate::domain::Order {
                line: false,
                id: crate::domain::OrderId::new("o-1").unwrap(),
                partition: partition("ams", "B"),
                quantity: crate::domain::Quantity::ONE,
                region: None,
                priority: crate::domain::Priority(0),
                fallbacks: Vec::new(),
            },
        };
        for e in [
            stock_set("ams", "A", 5),
            stock_set("ams", "B", 7),
            stock_set("par", "A", 2),
            queued,
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
        // A fenced shard stops reporting what its new owner reports.
        let mut fenced = ShardMetrics::new(4);
        fenced.gauges(&state, 3, true);
        fenced.disowned();
    });
    for line in [
        "allot_stock_available{shard=\"3\",warehouse=\"ams\"} 12",
        "allot_stock_available{shard=\"3\",warehouse=\"par\"} 12",
        "allot_stock_available{shard=\"3\",warehouse=\"ber\"} 1",
        "allot_in_flight{shard=\"3\"} 1",
        "allot_in_flight{shard=\"4\"} 0",
        "allot_stock_available{shard=\"4\",warehouse=\"ams\"} 0",
        "allot_queue_depth{shard=\"4\",warehouse=\"ams\"} 0",
        "allot_queue_depth{shard=\"3\",warehouse=\"ams\"} 1",
        "allot_queue_depth{shard=\"3\",warehouse=\"par\"} 0",
        "allot_backordered{shard=\"3\",warehouse=\"ber\"} 0",
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
            partition: None,
        },
    ];
    let tally = BatchTally::of(&events);
    assert_eq!((tally.events, tally.decisions()), (2, 1));
    let text = render_local(|| {
        let m = ShardMetrics::new(0);
        m.appending(&tally);
        m.appended(&tally);
        let delivery = |n, count| Delivery {
            ack: Some(AckId(n)),
            item: Intake::Command(crate::domain::Command::SetStock {
                partition: partition("ams", "A"),
                on_hand: 1,
                expected_version: None,
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

/// A file of the repository, for the checks that shipped files and
/// [`METRICS`] agree.
fn repo_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Every PromQL query of the dashboard: panel targets and variables.
fn dashboard_queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match v {
                    serde_json::Value::String(q) if key == "expr" || key == "definition" => {
                        out.push(q.clone())
                    }
                    _ => dashboard_queries(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}

/// Each `allot_*` or `process_*` series a query names, with the label
/// names of the selector right after it (`allot_x{shard=~"$shard"}` gives
/// `["shard"]`).
fn series_in(query: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = query;
    let next = |s: &str| {
        ["allot_", "process_"]
            .iter()
            .filter_map(|p| s.find(p))
            .min()
    };
    while let Some(at) = next(rest) {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let (name, after) = tail.split_at(end);
        let labels = match after.strip_prefix('{') {
            Some(selector) => selector[..selector.find('}').expect("selector closes")]
                .split(',')
                .filter_map(|m| m.split(['=', '!']).next())
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect(),
            None => Vec::new(),
        };
        out.push((name.to_owned(), labels));
        rest = after;
    }
    out
}

#[test]
fn the_dashboard_queries_only_metrics_allot_exports_and_shows_each() {
    let json = repo_file("deploy/grafana/dashboards/allot.json");
    let dashboard: serde_json::Value = serde_json::from_str(&json).expect("the dashboard is JSON");
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    assert!(queries.len() > 20, "{queries:?}");
    let mut shown = HashSet::new();
    for query in &queries {
        for (series, labels) in series_in(query) {
            let metric = names::metric_of_series(&series)
                .unwrap_or_else(|| panic!("{query}: {series} is not in names::METRICS"));
            for label in labels
                .iter()
                .filter(|l| !TARGET_LABELS.contains(&l.as_str()))
            {
                assert!(
                    metric.labels.contains(&label.as_str()),
                    "{query}: {series} has no label {label}"
                );
            }
            shown.insert(metric.name);
        }
    }
    for m in names::all() {
        assert!(
            shown.contains(m.name),
            "no dashboard panel shows {}",
            m.name
        );
    }
}

#[test]
fn docs_list_every_metric_with_its_type_and_labels() {
    let docs = repo_file("docs/metrics.md");
    for m in names::all() {
        let labels = m
            .labels
            .iter()
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let labels = if labels.is_empty() {
            " ".to_owned()
        } else {
            format!(" {labels} ")
        };
        let row = format!("| `{}` | {} |{labels}|", m.name, m.kind.as_str());
        assert!(
            docs.contains(&row),
            "docs/metrics.md lacks the row starting {row}"
        );
    }
}

#[test]
fn configured_warehouses_are_listed_at_zero_and_existing_values_kept() {
    let ams = WarehouseId::new("ams").unwrap();
    let fra = WarehouseId::new("fra").unwrap();
    let text = render_local(|| {
        let mut state = ShardState::new(16);
        state.evolve(&stock_set("ams", "A", 5)).unwrap();
        let mut m = ShardMetrics::new(0);
        m.gauges(&state, 2, true);
        register_warehouses(2, &[ams.clone(), fra.clone()]);
        build_info();
    });
    for line in [
        "allot_stock_available{shard=\"0\",warehouse=\"ams\"} 5",
        "allot_in_flight{shard=\"0\"} 2",
        "allot_stock_available{shard=\"0\",warehouse=\"fra\"} 0",
        "allot_stock_available{shard=\"1\",warehouse=\"ams\"} 0",
        "allot_queue_depth{shard=\"1\",warehouse=\"fra\"} 0",
        "allot_backordered{shard=\"1\",warehouse=\"fra\"} 0",
        "allot_stock_short{shard=\"1\",warehouse=\"fra\"} 0",
        "allot_in_flight{shard=\"1\"} 0",
        "allot_worker_duration_seconds_count{warehouse=\"fra\",outcome=\"ok\"} 0",
        "allot_build_info{version=\"0.1.0\",commit=\"unknown\"} 1",
    ] {
        let line = line.replace("0.1.0", env!("CARGO_PKG_VERSION"));
        let line = line.replace("unknown", GIT_COMMIT);
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
}

#[test]
fn the_exporter_reads_process_metrics_at_each_render() {
    let exporter = Exporter::install().expect("installs");
    let text = exporter.render();
    for m in names::PROCESS_METRICS {
        assert!(
            text.contains(&format!("# TYPE {} {}", m.name, m.kind.as_str())),
            "{} missing from:\n{text}",
            m.name
        );
    }
    let rss = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{} ", names::PROCESS_RSS)))
        .expect("an RSS sample");
    assert!(rss.parse::<f64>().unwrap() > 1e6, "RSS {rss} bytes");
    assert!(text.contains(&format!("{}{{", names::BUILD_INFO)), "{text}");
}
