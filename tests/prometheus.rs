//! The shipped monitoring, checked against the real thing: `allot serve`
//! (the binary) on a real nats-server, scraped by a real Prometheus running
//! `deploy/prometheus/prometheus.yml` (targets rewritten to loopback,
//! intervals to 1 s) with `deploy/prometheus/rules.yml`.
//!
//! - `promtool check metrics` accepts allot's live exposition.
//! - On the fresh instance, before any stock or order, the dashboard's
//!   variables list every configured warehouse and every shard.
//! - After a small sale over the HTTP API, every expression of the Grafana
//!   dashboard (with its variables set to "All" and to one value) is valid
//!   PromQL and returns data, except the NATS exporter's panels (no
//!   exporter here: they must only be valid).
//! - Every alert rule loads and evaluates without error, and every metric
//!   it names has live series; two alerts are then made to fire for real:
//!   a dead letter in `DLQ` fires `AllotDeadLetters`, and stopping
//!   nats-server makes `AllotNatsDisconnected` pending.
//!
//! Without Prometheus installed it says it is skipped (see
//! `common::prometheus`).

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use common::allot::{AllotProcess, ConfigFile};
use common::nats::NatsServer;
use common::prometheus::{check_metrics, tools_or_skip, Prometheus};

const CONFIG: &str = r#"
[shards]
count = 4

[routing]
default_region = "eu"

[routing.regions]
eu = ["ams", "fra"]
us = ["nyc"]

[exhaustion]
default = { policy = "reject" }
"#;
const WAREHOUSES: [&str; 3] = ["ams", "fra", "nyc"];
const SHARDS: [&str; 4] = ["0", "1", "2", "3"];
/// What Grafana's `$__rate_interval` becomes: the whole test fits in it.
const RATE_INTERVAL: &str = "2m";

fn repo_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// `text` with `from` replaced by `to`, which must occur exactly once.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} once in the config");
    text.replacen(from, to, 1)
}

/// Polls `f` every 200 ms until it gives `Some`; panics with `what` after
/// `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The single value of an instant query's one-sample result.
fn scalar(result: &Value) -> Option<f64> {
    result.as_array()?.first()?["value"][1]
        .as_str()?
        .parse()
        .ok()
}

/// A panel's `(title, expr)`.
type PanelQuery = (String, String);
/// A dashboard variable's `(name, metric, label)`.
type Variable = (String, String, String);

/// Every panel's `(title, expr)` of the dashboard, and its variables'
/// `(name, metric, label)` from `label_values(metric, label)`.
fn dashboard() -> (Vec<PanelQuery>, Vec<Variable>) {
    let d: Value = serde_json::from_str(&repo_file("deploy/grafana/dashboards/allot.json"))
        .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in d["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a target has expr");
            exprs.push((panel["title"].as_str().unwrap().to_owned(), expr.to_owned()));
        }
    }
    let mut variables = Vec::new();
    for v in d["templating"]["list"].as_array().expect("variables") {
        let def = v["definition"].as_str().expect("a query variable");
        let args = def
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{def}: only label_values(metric, label) is handled"));
        let (metric, label) = args.split_once(',').expect("metric, label");
        let name = v["name"].as_str().unwrap().to_owned();
        variables.push((name, metric.trim().to_owned(), label.trim().to_owned()));
    }
    (exprs, variables)
}

/// The metric names an expression selects (`allot_*`, `process_*`, `up`).
fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("allot_") || w.starts_with("process_") || *w == "up")
        .map(str::to_owned)
        .collect()
}

/// Label values of `label` on series of `metric`, as Grafana's
/// `label_values(metric, label)` asks Prometheus.
async fn label_values(prom: &Prometheus, metric: &str, label: &str) -> BTreeSet<String> {
    let data = prom
        .api(
            &format!("/api/v1/label/{label}/values"),
            &[("match[]", metric)],
        )
        .await
        .unwrap_or_else(|e| panic!("label_values({metric}, {label}): {e}"));
    data.as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

async fn alert_state(prom: &Prometheus, name: &str) -> Option<String> {
    let data = prom.api("/api/v1/alerts", &[]).await.ok()?;
    data["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == name)
        .map(|a| a["state"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_and_alert_rule_works_on_a_live_allot() {
    let test = "every_dashboard_query_and_alert_rule_works_on_a_live_allot";
    let Some(tools) = tools_or_skip(test) else {
        return;
    };
    let mut nats = NatsServer::start();
    let config = ConfigFile::new(CONFIG);
    let flags = ["--latency-p50", "2ms", "--latency-p99", "20ms"];
    let allot = AllotProcess::serve(
        &nats.url(),
        &config,
        &[&flags[..], &["--failure-rate", "0.05"]].concat(),
    );
    let api = allot.bound("HTTP API", Duration::from_secs(60)).await;
    let ops = allot
        .bound("operations endpoints", Duration::from_secs(60))
        .await;
    let http = reqwest::Client::new();
    eventually("allot ready", Duration::from_secs(60), || async {
        let r = http.get(format!("http://{ops}/readyz")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;

    let exposition = http
        .get(format!("http://{ops}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the exposition");
    if let Err(report) = check_metrics(&tools.promtool, &exposition) {
        panic!("promtool check metrics rejects allot's /metrics:\n{report}\n{exposition}");
    }

    let shipped = repo_file("deploy/prometheus/prometheus.yml");
    let closed = format!("127.0.0.1:{}", common::nats::free_port());
    let mut yml = replace_once(&shipped, "scrape_interval: 5s", "scrape_interval: 1s");
    yml = replace_once(&yml, "evaluation_interval: 15s", "evaluation_interval: 1s");
    yml = replace_once(&yml, "\"allot:9100\"", &format!("\"{ops}\""));
    yml = replace_once(&yml, "\"nats-exporter:7777\"", &format!("\"{closed}\""));
    let rules = repo_file("deploy/prometheus/rules.yml");
    let prom = Prometheus::start(&tools.prometheus, &yml, &[("rules.yml", rules.clone())]).await;
    eventually(
        "Prometheus scrapes allot",
        Duration::from_secs(30),
        || async {
            let up = prom.query("up{job=\"allot\"}").await.ok()?;
            (scalar(&up) == Some(1.0)).then_some(())
        },
    )
    .await;

    // A fresh instance already lists its warehouses and shards.
    let (exprs, variables) = dashboard();
    let expected = |name: &str| -> BTreeSet<String> {
        let values: &[&str] = if name == "warehouse" {
            &WAREHOUSES
        } else {
            &SHARDS
        };
        values.iter().map(|s| s.to_string()).collect()
    };
    for (name, metric, label) in &variables {
        let values = label_values(&prom, metric, label).await;
        assert_eq!(values, expected(name), "${name} on a fresh instance");
    }

    // A small sale over the HTTP API: 4 SKUs in ams, 1 in fra, 130 orders
    // for 45 units, and 3 invalid ones (400, never filed).
    let stock = [
        ("ams", "P-0", 10),
        ("ams", "P-1", 10),
        ("ams", "P-2", 10),
        ("ams", "P-3", 10),
        ("fra", "P-F", 5),
    ];
    for (w, sku, on_hand) in stock {
        let r = http
            .put(format!("http://{api}/v1/stock/{w}/{sku}"))
            .json(&json!({ "on_hand": on_hand }))
            .send()
            .await
            .expect("PUT stock");
        assert!(
            r.status().is_success(),
            "PUT stock {w}/{sku}: {}",
            r.status()
        );
    }
    let mut orders: Vec<Value> = (0..130)
        .map(|i| {
            let (w, sku) = if i < 120 {
                ("ams", format!("P-{}", i % 4))
            } else {
                ("fra", "P-F".into())
            };
            json!({"v": 1, "id": format!("pm-{i}"), "sku": sku, "quantity": 1, "warehouse": w})
        })
        .collect();
    orders.extend(
        (0..3).map(|i| json!({"v": 1, "id": format!("pm-bad-{i}"), "sku": "P-0", "quantity": 0})),
    );
    let r = http
        .post(format!("http://{api}/v1/order-batches"))
        .json(&json!({ "orders": orders }))
        .send()
        .await
        .expect("POST /v1/order-batches");
    assert!(r.status().is_success(), "order batch: {}", r.status());
    let decided = "sum(allot_decisions_total{kind=~\"confirmed|rejected\"})";
    eventually(
        "130 orders decided and scraped",
        Duration::from_secs(60),
        || async { (scalar(&prom.query(decided).await.ok()?) == Some(130.0)).then_some(()) },
    )
    .await;
    // A few more scrapes, so every rate sees the sale end.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Every dashboard expression, variables on "All" and on one value.
    let mut failures = Vec::new();
    for (title, expr) in &exprs {
        let exporter = expr.contains("gnatsd_");
        for (shard, warehouse) in [(".*", ".*"), ("1", "ams")] {
            let q = expr
                .replace("$__rate_interval", RATE_INTERVAL)
                .replace("$shard", shard)
                .replace("$warehouse", warehouse);
            match prom.query(&q).await {
                Err(e) => failures.push(format!("{title}: {q}: invalid: {e}")),
                Ok(result) if !exporter => {
                    let finite = result.as_array().into_iter().flatten().any(|s| {
                        s["value"][1]
                            .as_str()
                            .and_then(|v| v.parse::<f64>().ok())
                            .is_some_and(f64::is_finite)
                    });
                    if !finite {
                        failures.push(format!("{title}: {q}: no data ({result})"));
                    }
                }
                Ok(_) => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "dashboard queries failing:\n{}",
        failures.join("\n")
    );

    // Every rule loaded, evaluated without error, and on live series.
    let loaded = eventually("every rule evaluated", Duration::from_secs(30), || async {
        let data = prom.api("/api/v1/rules", &[]).await.ok()?;
        let rules: Vec<Value> = data["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rules.iter().all(|r| r["health"] == "ok").then_some(rules)
    })
    .await;
    assert_eq!(
        loaded.len(),
        rules.matches("- alert:").count(),
        "rules loaded: {loaded:?}"
    );
    for rule in &loaded {
        let (name, expr) = (
            rule["name"].as_str().unwrap(),
            rule["query"].as_str().unwrap(),
        );
        assert_eq!(rule["lastError"].as_str().unwrap_or(""), "", "{name}");
        prom.query(expr)
            .await
            .unwrap_or_else(|e| panic!("{name}: {expr}: {e}"));
        for metric in metric_names(expr) {
            let series = prom
                .query(&format!("count({{__name__=\"{metric}\"}})"))
                .await
                .unwrap();
            assert!(
                scalar(&series).is_some_and(|n| n > 0.0),
                "{name}: no series of {metric}"
            );
        }
        // A debug build on shared cores may well miss the latency targets:
        // those two may be pending; nothing else may be.
        let measured = name.ends_with("LatencyHigh") || name.ends_with("LagHigh");
        if !(measured && rule["state"] == "pending") {
            assert_eq!(
                rule["state"], "inactive",
                "{name} on a healthy allot: {rule}"
            );
        }
    }

    // A dead letter fires AllotDeadLetters (allot recounts DLQ every 5 s).
    let client = async_nats::connect(nats.url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    js.publish("dlq.0", "a dead letter".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    eventually(
        "AllotDeadLetters firing",
        Duration::from_secs(30),
        || async {
            (alert_state(&prom, "AllotDeadLetters").await.as_deref() == Some("firing"))
                .then_some(())
        },
    )
    .await;

    // No broker: allot reports it, and the alert waits out its minute.
    nats.stop();
    eventually(
        "AllotNatsDisconnected pending",
        Duration::from_secs(30),
        || async {
            (alert_state(&prom, "AllotNatsDisconnected").await.as_deref() == Some("pending"))
                .then_some(())
        },
    )
    .await;
    drop(allot);
}
