//! The Prometheus metrics of a real sale: allot in-process on a real
//! nats-server decides a sale on every shard, with orders through ingress,
//! an invalid message and a broker restart; then the rendered exposition
//! text is checked against what EVENTS and the streams say happened.
//!
//! This binary holds one test: the recorder is process-wide, so the
//! counters see only this sale.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use allot::adapters::nats::EVENTS_STREAM;
use allot::domain::Event;
use allot::telemetry::names::{self, Kind};
use common::allot::{
    exact_fulfiller, one_warehouse, order_id, publish_all, submit, wait_for_streams,
    wait_intake_drained, ConfigFile, InProcess, Ledger, Outgoing, Sale,
};
use common::nats::NatsServer;

/// One sample line of the exposition text.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the exposition text; panics on a line that is not a sample.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
            let value = value
                .parse()
                .unwrap_or_else(|e| panic!("{line}: value: {e}"));
            let (name, labels) = match series.split_once('{') {
                None => (series, BTreeMap::new()),
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').expect("labels end with }");
                    let labels = inner
                        .split(',')
                        .map(|pair| {
                            let (k, v) = pair.split_once('=').expect("label=value");
                            (k.to_owned(), v.trim_matches('"').to_owned())
                        })
                        .collect();
                    (name, labels)
                }
            };
            Sample {
                name: name.to_owned(),
                labels,
                value,
            }
        })
        .collect()
}

/// Sum over the series called `name` whose labels include `with`.
fn sum(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// Polls the rendered metrics until `done` holds; panics after `timeout`.
async fn wait_metric(
    handle: &allot::telemetry::PrometheusHandle,
    what: &str,
    timeout: Duration,
    done: impl Fn(&[Sample]) -> bool,
) {
    let deadline = Instant::now() + timeout;
    while !done(&parse(&handle.render())) {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_of_a_sale_match_what_the_log_decided() {
    let handle = allot::telemetry::install().expect("the recorder installs");
    allot::telemetry::install().expect("a second install returns the same handle");
    let mut server = NatsServer::start();
    let config = ConfigFile::new(&one_warehouse(4));
    let allot = InProcess::serve(&server.url(), &config.config, exact_fulfiller(11));
    let client = async_nats::connect(server.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client.clone());
    wait_for_streams(&js, Duration::from_secs(20)).await;
    wait_metric(&handle, "connected", Duration::from_secs(5), |s| {
        sum(s, names::NATS_CONNECTED, &[]) == 1.0
    })
    .await;

    let sale = Sale::one_sku_per_shard(&config.config, "ams", "M", 60, 20);
    publish_all(&js, &sale.stock_commands(&config.config)).await;
    publish_all(&js, &sale.orders(0..sale.ids.len())).await;
    let sku = sale.partitions[0].sku.to_string();
    assert!(submit(&client, "m-in-1", &sku, 1).await.accepted);
    assert!(submit(&client, "m-in-2", &sku, 1).await.accepted);
    assert!(!submit(&client, "m-in-bad", &sku, 0).await.accepted);
    publish_all(
        &js,
        &[Outgoing::raw(&sale.partitions[1], &b"\xc1 not msgpack"[..])],
    )
    .await;

    let mut ids = sale.ids.clone();
    ids.extend(["m-in-1", "m-in-2"].map(order_id));
    let mut ledger = Ledger::default();
    let undecided = ledger
        .wait_decided(&js, &ids, Duration::from_secs(30))
        .await;
    assert_eq!(undecided, 0, "orders left undecided");
    assert!(
        wait_intake_drained(&js, 4, Duration::from_secs(10)).await,
        "intake left unacked"
    );

    server.restart();
    wait_metric(
        &handle,
        "a reconnect counted",
        Duration::from_secs(20),
        |s| sum(s, names::NATS_RECONNECTS, &[]) >= 1.0 && sum(s, names::NATS_CONNECTED, &[]) == 1.0,
    )
    .await;
    allot.stop().await.expect("allot stops cleanly");

    ledger.catch_up(&js).await.expect("read EVENTS");
    let batches = js
        .get_stream(EVENTS_STREAM)
        .await
        .expect("EVENTS")
        .info()
        .await
        .expect("EVENTS info")
        .state
        .messages;
    let text = handle.render();
    let s = parse(&text);
    let f = ledger.findings(&ids);
    assert!(f.clean(), "{f:?}");
    let count = |pred: fn(&Event) -> bool| ledger.events.iter().filter(|e| pred(e)).count() as f64;

    // Decisions: exactly what EVENTS holds, kind by kind.
    let decisions = |kind| sum(&s, names::DECISIONS, &[("kind", kind)]);
    assert_eq!(decisions("confirmed"), f.confirmed as f64, "{text}");
    assert_eq!(decisions("confirmed"), sale.units() as f64);
    assert_eq!(decisions("rejected"), f.rejected_total() as f64);
    assert_eq!(
        decisions("queued"),
        count(|e| matches!(e, Event::OrderQueued { .. }))
    );
    assert_eq!(
        decisions("reserved"),
        count(|e| matches!(e, Event::OrderReserved { .. }))
    );
    assert_eq!(
        decisions("confirmed") + decisions("rejected"),
        ids.len() as f64 + 1.0,
        "every order and the invalid message decided once"
    );
    for (reason, n) in &f.rejected {
        assert_eq!(
            sum(&s, names::REJECTIONS, &[("kind", reason)]),
            *n as f64,
            "{reason}"
        );
    }
    assert_eq!(sum(&s, names::REJECTIONS, &[("kind", "invalid")]), 1.0);

    // Ingress and intake.
    let received = |outcome| sum(&s, names::ORDERS_RECEIVED, &[("outcome", outcome)]);
    assert_eq!((received("accepted"), received("invalid")), (2.0, 1.0));
    let intake = |kind| sum(&s, names::INTAKE_MESSAGES, &[("kind", kind)]);
    let redeliveries = sum(&s, names::INTAKE_REDELIVERIES, &[]);
    assert!(intake("command") >= 4.0 && intake("command") <= 4.0 + redeliveries);
    assert!(intake("order") >= ids.len() as f64, "{text}");
    assert!(intake("invalid") >= 1.0, "{text}");
    let messages = 4.0 + ids.len() as f64 + 1.0;
    let latency_count = sum(&s, &format!("{}_count", names::DECISION_LATENCY), &[]);
    assert_eq!(
        latency_count, messages,
        "one decision latency per intake message acked"
    );
    let latency_sum = sum(&s, &format!("{}_sum", names::DECISION_LATENCY), &[]);
    assert!(
        latency_sum > 0.0 && latency_sum / latency_count < 30.0,
        "mean publish-to-decision latency {}s",
        latency_sum / latency_count
    );

    // The log: one append per EVENTS message, every event counted once.
    let appends = sum(&s, &format!("{}_count", names::LOG_APPEND_DURATION), &[]);
    assert_eq!(appends, batches as f64);
    assert_eq!(
        sum(&s, &format!("{}_sum", names::LOG_APPEND_EVENTS), &[]),
        ledger.events.len() as f64
    );
    assert_eq!(sum(&s, names::LOG_CONFLICTS, &[]), 0.0);

    // Workers never fail here: one ok attempt per confirmed order.
    let worker_ok = sum(
        &s,
        &format!("{}_count", names::WORKER_DURATION),
        &[("warehouse", "ams"), ("outcome", "ok")],
    );
    assert_eq!(worker_ok, f.confirmed as f64);

    // Gauges after the sell-out: nothing queued, running or left.
    for shard in 0..4 {
        let shard = shard.to_string();
        let at = [("shard", shard.as_str())];
        assert_eq!(sum(&s, names::QUEUE_DEPTH, &at), 0.0, "{text}");
        assert_eq!(sum(&s, names::IN_FLIGHT, &at), 0.0, "{text}");
        let stock = [("shard", shard.as_str()), ("warehouse", "ams")];
        assert!(s
            .iter()
            .any(|x| x.name == names::STOCK_AVAILABLE && x.labels.get("shard") == Some(&shard)));
        assert_eq!(sum(&s, names::STOCK_AVAILABLE, &stock), 0.0, "{text}");
    }
    assert!(sum(&s, names::NATS_DISCONNECTS, &[]) >= 1.0);

    // Exposition format: true histograms with buckets, every series known,
    // no label outside the allowed set.
    for m in names::METRICS.iter().filter(|m| m.kind == Kind::Histogram) {
        assert!(
            text.contains(&format!("# TYPE {} histogram", m.name)),
            "{} is not a histogram:\n{text}",
            m.name
        );
        let buckets: Vec<&Sample> = s
            .iter()
            .filter(|x| x.name == format!("{}_bucket", m.name))
            .collect();
        assert!(buckets
            .iter()
            .any(|b| b.labels.get("le").map(String::as_str) == Some("+Inf")));
        for bound in m.buckets {
            assert!(
                buckets
                    .iter()
                    .any(|b| b.labels["le"].parse::<f64>() == Ok(*bound)),
                "{} has no bucket le={bound}",
                m.name
            );
        }
    }
    for sample in &s {
        let metric = names::metric_of_series(&sample.name)
            .unwrap_or_else(|| panic!("{} is not in names::METRICS", sample.name));
        for label in sample.labels.keys().filter(|l| *l != "le") {
            assert!(
                metric.labels.contains(&label.as_str()),
                "{} has label {label}",
                sample.name
            );
        }
    }
    assert!(text.contains(&format!("# HELP {} ", names::DECISIONS)));
}
