//! The HTTP API against a real nats-server and an in-process allot: every
//! route, every error status, the OpenAPI document's examples sent as
//! written, bearer auth, and readiness.

mod common;

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use tokio::time::Instant;

use allot::adapters::http::{Listening, OPENAPI};
use common::allot::{exact_fulfiller, ConfigFile, InProcess};
use common::nats::NatsServer;

/// Two regions; rejects when out of stock, so every order is decided fast.
const CONFIG: &str = r#"
[shards]
count = 4

[routing]
default_region = "eu"

[routing.regions]
eu = ["ams", "fra"]

[exhaustion]
default = { policy = "reject" }

[limits]
max_batch_size = 20
max_payload_bytes = 512

[views]
publish_decisions = true
"#;

struct Running {
    server: NatsServer,
    allot: InProcess,
    at: Listening,
    http: Client,
}

impl Running {
    async fn start(toml: &str) -> Running {
        let server = NatsServer::start();
        let config = ConfigFile::new(toml);
        let handle = allot::telemetry::install().expect("the metrics recorder installs");
        let metrics: allot::adapters::http::RenderMetrics =
            std::sync::Arc::new(move || handle.render());
        let allot = InProcess::serve_with(
            &server.url(),
            &config.config,
            exact_fulfiller(3),
            Some(metrics),
        );
        let at = allot.listening().await;
        let r = Running {
            server,
            allot,
            at,
            http: Client::new(),
        };
        r.wait_ready().await;
        r
    }

    fn url(&self, path: &str) -> String {
        let base = if ["/livez", "/readyz", "/metrics"].contains(&path) {
            self.at.ops()
        } else {
            self.at.api
        };
        format!("http://{base}{path}")
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Sends until the status is `want` (views lag decisions by moments).
    async fn eventually(&self, method: Method, path: &str, want: StatusCode) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.send(method.clone(), path, None).await;
            if status == want {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{method} {path}: {status} {body}, not {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// GETs `path` until `done` holds for the body.
    async fn until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, body) = self.send(Method::GET, path, None).await;
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "GET {path}: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_ready(&self) {
        self.eventually(Method::GET, "/readyz", StatusCode::OK)
            .await;
    }

    async fn raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> StatusCode {
        let mut request = self.http.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        request.send().await.expect("the API answers").status()
    }
}

fn field_errors(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["field"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every request example in docs/openapi.json that names an expected
/// status is sent as written: writes first, then reads, then cancels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_examples_answer_as_documented() {
    let r = Running::start(CONFIG).await;
    let doc: Value = serde_json::from_str(OPENAPI).unwrap();
    let mut requests = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let url = fill_path(path, item, op);
            let bodies = op["requestBody"]["content"]["application/json"]["examples"]
                .as_object()
                .map(|e| {
                    e.values()
                        .map(|x| (Some(x["value"].clone()), &x["x-expect-status"]))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_else(|| vec![(None, &op["x-expect-status"])]);
            for (body, status) in bodies {
                let Some(status) = status.as_u64() else {
                    continue;
                };
                let rank = match method {
                    Method::PUT | Method::POST => 0,
                    Method::GET => 1,
                    _ => 2,
                };
                requests.push((rank, method.clone(), url.clone(), body, status as u16));
            }
        }
    }
    requests.sort_by_key(|(rank, ..)| *rank);
    assert!(requests.len() >= 18, "only {} examples", requests.len());
    for (_, method, url, body, want) in requests {
        let want = StatusCode::from_u16(want).unwrap();
        if body.is_none() {
            r.eventually(method, &url, want).await;
            continue;
        }
        let (status, answer) = r.send(method.clone(), &url, body.as_ref()).await;
        assert_eq!(status, want, "{method} {url} {body:?}: {answer}");
    }
    r.allot.stop().await.unwrap();
}

/// `/v1/orders/{id}` with its parameters' examples (an operation's own
/// parameter wins over the path's).
fn fill_path(path: &str, item: &Value, op: &Value) -> String {
    let mut url = path.to_owned();
    for params in [&op["parameters"], &item["parameters"]] {
        for p in params.as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap();
            let example = p["example"].as_str().unwrap_or_default();
            match p["in"].as_str() {
                Some("path") => url = url.replace(&format!("{{{name}}}"), example),
                Some("query") if !example.is_empty() && !url.contains(&format!("{name}=")) => {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    url = format!("{url}{sep}{name}={example}");
                }
                _ => {}
            }
        }
    }
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_filed_decided_shown_and_cancelled() {
    let r = Running::start(CONFIG).await;
    let (s, _) = r
        .send(
            Method::PUT,
            "/v1/stock/ams/KETTLE",
            Some(&json!({"on_hand": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    r.eventually(Method::GET, "/v1/stock/ams/KETTLE", StatusCode::OK)
        .await;

    let order = json!({"v": 1, "id": "k-1", "sku": "KETTLE", "quantity": 1, "region": "eu"});
    let (s, body) = r.send(Method::POST, "/v1/orders", Some(&order)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["warehouse"], "ams");
    assert_eq!(body["href"], "/v1/orders/k-1");
    // The same id again, at once: the stream drops it; nothing new.
    let (s, body) = r.send(Method::POST, "/v1/orders", Some(&order)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["duplicate"], true);

    let shown = r
        .eventually(Method::GET, "/v1/orders/k-1", StatusCode::OK)
        .await;
    assert_eq!(shown["sku"], "KETTLE");
    assert_eq!(shown["quantity"], 1);
    // Once decided, a repeat answers with the order as the views have it.
    let decided = wait_final(&r, "k-1").await;
    assert_eq!(decided["status"], "confirmed", "{decided}");
    let (s, body) = r.send(Method::POST, "/v1/orders", Some(&order)).await;
    assert_eq!((s, &body["status"]), (StatusCode::OK, &json!("confirmed")));

    // Cancelling the confirmed order returns its unit (policy "restock").
    let (s, body) = r.send(Method::DELETE, "/v1/orders/k-1", None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, o) = r.send(Method::GET, "/v1/orders/k-1", None).await;
        if o["status"] == "cancelled" {
            break;
        }
        assert!(Instant::now() < deadline, "not cancelled: {o}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Cancelling it again: it is already cancelled.
    let (s, body) = r.send(Method::DELETE, "/v1/orders/k-1", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let (s, body) = r.send(Method::GET, "/v1/orders/never-sent", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "not_found");
    let (s, _) = r.send(Method::DELETE, "/v1/orders/never-sent", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    r.allot.stop().await.unwrap();
}

/// Issue 10, bug 2: set stock 10, confirm an order for 10, cancel it: the
/// stock view shows the 10 units back (not sold), the next order for 10
/// confirms and the view shows it sold once; the cancelled order keeps its
/// partition, quantity and whole history, and a `cancelled` decision is
/// published for subscribers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_confirmed_order_returns_its_units_in_the_views() {
    let r = Running::start(CONFIG).await;
    let client = async_nats::connect(r.server.url()).await.expect("connect");
    let mut decisions = client
        .subscribe("decisions.ams.TOASTER")
        .await
        .expect("subscribe");
    r.send(
        Method::PUT,
        "/v1/stock/ams/TOASTER",
        Some(&json!({"on_hand": 10})),
    )
    .await;
    let first = json!({"v": 1, "id": "t-1", "sku": "TOASTER", "quantity": 10, "warehouse": "ams"});
    let (s, body) = r.send(Method::POST, "/v1/orders", Some(&first)).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(wait_final(&r, "t-1").await["status"], "confirmed");
    let (s, body) = r.send(Method::DELETE, "/v1/orders/t-1", None).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    let cancelled = r
        .until("/v1/orders/t-1", |o| o["status"] == "cancelled")
        .await;
    assert_eq!(
        (
            &cancelled["warehouse"],
            &cancelled["sku"],
            &cancelled["quantity"]
        ),
        (&json!("ams"), &json!("TOASTER"), &json!(10)),
        "{cancelled}"
    );
    let lines: Vec<&str> = cancelled["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["what"].as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "queued in ams/TOASTER",
            "reserved",
            "confirmed",
            "cancelled, units returned"
        ]
    );
    let v = r
        .until("/v1/stock/ams/TOASTER", |v| v["available"] == 10)
        .await;
    assert_eq!(
        (&v["available"], &v["sold"]),
        (&json!(10), &json!(0)),
        "{v}"
    );

    let second = json!({"v": 1, "id": "t-2", "sku": "TOASTER", "quantity": 10, "warehouse": "ams"});
    r.send(Method::POST, "/v1/orders", Some(&second)).await;
    assert_eq!(wait_final(&r, "t-2").await["status"], "confirmed");
    let v = r.until("/v1/stock/ams/TOASTER", |v| v["sold"] == 10).await;
    assert_eq!(
        (&v["available"], &v["sold"]),
        (&json!(0), &json!(10)),
        "{v}"
    );

    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(&("t-1".to_owned(), "cancelled".to_owned())) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(m)) =
            tokio::time::timeout(left, futures::StreamExt::next(&mut decisions)).await
        else {
            panic!("no cancelled decision for t-1 on decisions.ams.TOASTER: {seen:?}");
        };
        let d = allot::wire::DecisionMessage::decode(&m.payload).expect("a decision");
        seen.push((
            d.id.to_string(),
            serde_json::to_value(&d).unwrap()["decision"]
                .as_str()
                .unwrap()
                .to_owned(),
        ));
    }
    r.allot.stop().await.unwrap();
}

/// Issue 10, item 5: stock has a version; `GET` gives it as `ETag`, and a
/// `PUT` with `If-Match` of a stale version is refused with 412 (a later
/// copy of an old set can no longer reset the level).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stock_set_with_a_stale_version_is_refused() {
    let r = Running::start(CONFIG).await;
    let path = "/v1/stock/ams/KETTLE2";
    r.send(Method::PUT, path, Some(&json!({"on_hand": 5})))
        .await;
    let v = r.until(path, |v| v["version"] == 1).await;
    assert_eq!(v["available"], 5, "{v}");
    let get = r.http.get(r.url(path)).send().await.unwrap();
    assert_eq!(get.headers()["etag"], "\"1\"");
    let put = |tag: &'static str, n: u64| {
        r.http
            .put(r.url(path))
            .header("if-match", tag)
            .json(&json!({"on_hand": n}))
            .send()
    };
    let stale = put("\"0\"", 100).await.unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["error"], "stale_version", "{body}");
    let fresh = put("\"1\"", 7).await.unwrap();
    assert_eq!(fresh.status(), StatusCode::ACCEPTED);
    let v = r.until(path, |v| v["version"] == 2).await;
    assert_eq!(v["available"], 7, "{v}");
    // Keys under the reserved prefix are allot's (commands filed without
    // one are keyed `invalid:<sequence>`): refused, by name.
    let reserved = r
        .http
        .put(r.url(path))
        .header("idempotency-key", "invalid:9")
        .json(&json!({"on_hand": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(reserved.status(), StatusCode::BAD_REQUEST);
    let body: Value = reserved.json().await.unwrap();
    assert!(body.to_string().contains("reserved"), "{body}");
    r.allot.stop().await.unwrap();
}

async fn wait_final(r: &Running, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, o) = r.send(Method::GET, &format!("/v1/orders/{id}"), None).await;
        if o["final"] == true {
            return o;
        }
        assert!(Instant::now() < deadline, "{id} not decided: {o}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_status_says_what_was_wrong() {
    let r = Running::start(CONFIG).await;
    // 400: every bad field listed.
    let bad = json!({"v": 1, "id": "", "sku": "no spaces", "quantity": 0});
    let (s, body) = r.send(Method::POST, "/v1/orders", Some(&bad)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid");
    let fields = field_errors(&body);
    for f in ["id", "sku", "quantity"] {
        assert!(fields.iter().any(|x| x == f), "{f} not in {body}");
    }
    // 400: string lengths; ids, SKUs and warehouses are at most 64 bytes.
    let long = json!({"v": 1, "id": "i".repeat(65), "sku": "S".repeat(65), "quantity": 1});
    let (s, body) = r.send(Method::POST, "/v1/orders", Some(&long)).await;
    assert_eq!(
        (s, field_errors(&body)),
        (StatusCode::BAD_REQUEST, vec!["id".into(), "sku".into()]),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("65"), "{body}");
    let long_path = format!("/v1/stock/ams/{}", "S".repeat(65));
    let (s, body) = r
        .send(Method::PUT, &long_path, Some(&json!({"on_hand": 1})))
        .await;
    assert_eq!(
        (s, field_errors(&body)),
        (StatusCode::BAD_REQUEST, vec!["sku".into()])
    );
    // 400: unknown region.
    let lost = json!({"v": 1, "id": "r-1", "sku": "MUG", "quantity": 1, "region": "mars"});
    let (s, body) = r.send(Method::POST, "/v1/orders", Some(&lost)).await;
    assert_eq!(
        (s, field_errors(&body)),
        (StatusCode::BAD_REQUEST, vec!["region".into()])
    );
    // 400: not JSON at all.
    assert_eq!(
        r.raw("/v1/orders", Some("application/json"), b"{nope".to_vec())
            .await,
        StatusCode::BAD_REQUEST
    );
    // 413: over limits.max_payload_bytes (512 here).
    let big = format!(
        r#"{{"v":1,"id":"big","sku":"MUG","quantity":1,"pad":"{}"}}"#,
        "x".repeat(600)
    );
    assert_eq!(
        r.raw("/v1/orders", Some("application/json"), big.into_bytes())
            .await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // 415: not JSON by content type, or none.
    let ok = br#"{"v":1,"id":"t-1","sku":"MUG","quantity":1}"#.to_vec();
    assert_eq!(
        r.raw("/v1/orders", Some("text/plain"), ok.clone()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        r.raw("/v1/orders", None, ok).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // 400 on the stock routes: bad path values, bad bodies, unknown fields.
    for (method, path, body) in [
        (Method::PUT, "/v1/stock/a.b/MUG", json!({"on_hand": 1})),
        (Method::PUT, "/v1/stock/ams/MUG", json!({"on_hand": -1})),
        (
            Method::PUT,
            "/v1/stock/ams/MUG",
            json!({"on_hand": 1, "extra": 1}),
        ),
        (
            Method::POST,
            "/v1/stock/ams/MUG/restock",
            json!({"units": 0}),
        ),
        (Method::POST, "/v1/stock/ams/MUG/adjust", json!({})),
    ] {
        let (s, body) = r.send(method.clone(), path, Some(&body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {path}: {body}");
        assert!(!field_errors(&body).is_empty(), "{body}");
    }
    // 404: unknown partition, unknown route.
    let (s, _) = r.send(Method::GET, "/v1/stock/ams/NOPE", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = r.send(Method::GET, "/v2/orders", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        body["message"].as_str().unwrap().contains("openapi"),
        "{body}"
    );
    // 400: bad query.
    let (s, _) = r.send(Method::GET, "/v1/partitions?top=x", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    r.allot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answers_each_command_in_order_and_nests() {
    let r = Running::start(CONFIG).await;
    let batch = json!({"commands": [
        {"set_stock": {"warehouse": "fra", "sku": "CUP", "on_hand": 2, "key": "b-set-1"}},
        {"place_order": {"v": 1, "id": "b-1", "sku": "CUP", "quantity": 1, "warehouse": "fra"}},
        {"batch": [
            {"place_order": {"v": 1, "id": "b-2", "sku": "CUP", "quantity": 1, "warehouse": "fra"}},
            {"batch": [{"place_order": {"v": 1, "id": "b-3", "sku": "CUP", "quantity": 0}}]}
        ]},
        {"teleport": {}},
        {"cancel_order": {"id": "unknown-order"}}
    ]});
    let (s, body) = r.send(Method::POST, "/v1/commands", Some(&batch)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|x| x["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [202, 202, 200, 400, 404], "{body}");
    let nested = &results[2]["batch"];
    assert_eq!(nested[0]["status"], 202);
    assert_eq!(nested[1]["batch"][0]["status"], 400);
    assert!(results[3]["body"]["message"]
        .as_str()
        .unwrap()
        .contains("place_order"));
    // Both orders sell the two cups.
    assert_eq!(wait_final(&r, "b-1").await["status"], "confirmed");
    assert_eq!(wait_final(&r, "b-2").await["status"], "confirmed");

    // Too many commands in all (21 > 20), and too deep.
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"cancel_order": {"id": format!("x-{i}")}}))
        .collect();
    let (s, body) = r
        .send(
            Method::POST,
            "/v1/commands",
            Some(&json!({ "commands": many })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let mut deep = json!({"cancel_order": {"id": "d"}});
    for _ in 0..9 {
        deep = json!({ "batch": [deep] });
    }
    let (s, body) = r
        .send(
            Method::POST,
            "/v1/commands",
            Some(&json!({ "commands": [deep] })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("nest"), "{body}");
    // 413: over http.max_body_bytes (1 MiB by default).
    let huge = format!(r#"{{"commands":[],"pad":"{}"}}"#, "x".repeat(1024 * 1024));
    assert_eq!(
        r.raw("/v1/commands", Some("application/json"), huge.into_bytes())
            .await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    r.allot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_show_stock_queues_and_the_busiest() {
    let r = Running::start(CONFIG).await;
    for (w, sku, units) in [("ams", "A", 5), ("ams", "B", 1), ("fra", "C", 7)] {
        let (s, _) = r
            .send(
                Method::PUT,
                &format!("/v1/stock/{w}/{sku}"),
                Some(&json!({"on_hand": units})),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    for i in 0..3 {
        let o =
            json!({"v": 1, "id": format!("p-{i}"), "sku": "A", "quantity": 1, "warehouse": "ams"});
        let (s, _) = r.send(Method::POST, "/v1/orders", Some(&o)).await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    for i in 0..3 {
        wait_final(&r, &format!("p-{i}")).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (s, body) = r
            .send(Method::GET, "/v1/partitions?warehouse=ams&top=1", None)
            .await;
        assert_eq!(s, StatusCode::OK);
        if body["totals"]["sold"] == 3 && body["count"] == 2 {
            break body;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["totals"]["available"], 3, "5 + 1 - 3 sold: {body}");
    assert_eq!(body["busiest"].as_array().unwrap().len(), 1);
    let skus: Vec<&str> = body["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect();
    assert_eq!(skus, ["A", "B"], "fra is filtered out");
    let (_, all) = r.send(Method::GET, "/v1/partitions", None).await;
    assert_eq!(all["count"], 3);
    // The sale shows on /metrics, with its labels, on the ops address.
    let (s, text) = r.send(Method::GET, "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = text.as_str().expect("Prometheus text");
    for series in [
        "allot_orders_received_total{outcome=\"accepted\"}",
        "allot_decisions_total{",
        "allot_decision_latency_seconds_bucket{",
        "allot_log_append_duration_seconds_bucket{",
        "allot_stock_available{",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    assert!(text.contains("warehouse=\"ams\""), "{text}");
    r.allot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_token_guards_the_mutating_routes_only() {
    let toml = format!("{CONFIG}\n[http]\nauth_token = \"s3cret\"\n");
    let r = Running::start(&toml).await;
    let order = json!({"v": 1, "id": "a-1", "sku": "MUG", "quantity": 1});
    let (s, body) = r.send(Method::POST, "/v1/orders", Some(&order)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let wrong = r
        .http
        .post(r.url("/v1/orders"))
        .bearer_auth("guess")
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.headers()["www-authenticate"], "Bearer");
    let right = r
        .http
        .post(r.url("/v1/orders"))
        .bearer_auth("s3cret")
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::ACCEPTED);
    for path in ["/v1/partitions", "/v1/openapi.json", "/livez", "/readyz"] {
        let (s, _) = r.send(Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "{path} stays open");
    }
    for (method, path) in [
        (Method::DELETE, "/v1/orders/a-1"),
        (Method::PUT, "/v1/stock/ams/MUG"),
        (Method::POST, "/v1/commands"),
    ] {
        let (s, _) = r.send(method.clone(), path, Some(&json!({}))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    r.allot.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_broker_is_down() {
    let mut r = Running::start(&format!("{CONFIG}\n[http]\nrequest_timeout = \"2s\"\n")).await;
    let (_, ready) = r.send(Method::GET, "/readyz", None).await;
    assert_eq!(ready["shards_owned"], 4, "{ready}");
    r.server.stop();
    let body = r
        .eventually(Method::GET, "/readyz", StatusCode::SERVICE_UNAVAILABLE)
        .await;
    assert_eq!(body["nats_connected"], false, "{body}");
    let (s, _) = r.send(Method::GET, "/livez", None).await;
    assert_eq!(s, StatusCode::OK, "alive all the same");
    // An order that cannot be filed: 503, retry later with the same id.
    let order = json!({"v": 1, "id": "down-1", "sku": "MUG", "quantity": 1});
    let response = r
        .http
        .post(r.url("/v1/orders"))
        .json(&order)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    r.server.restart();
    r.wait_ready().await;
    r.allot.stop().await.unwrap();
}
