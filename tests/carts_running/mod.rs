//! The harness of `tests/carts.rs`: allot in process on a real
//! nats-server, driven over HTTP. `tests/examples.rs` uses part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use allot::adapters::http::Listening;

use crate::common::allot::{exact_fulfiller, ConfigFile, InProcess};
use crate::common::nats::NatsServer;

/// Four shards, so a cart's lines and its coordinator are on several.
pub const CONFIG: &str = r#"
[shards]
count = 4

[routing]
default_region = "eu"

[routing.regions]
eu = ["ams", "fra"]

[exhaustion]
default = { policy = "reject" }

[limits]
max_cart_lines = 5
max_hold = "1m"
"#;

pub struct Running {
    pub server: NatsServer,
    pub allot: InProcess,
    pub at: Listening,
    pub http: Client,
    pub url: String,
}

impl Running {
    pub async fn start() -> Running {
        Self::start_on(NatsServer::start(), CONFIG).await
    }

    pub async fn start_on(server: NatsServer, toml: &str) -> Running {
        let config = ConfigFile::new(toml);
        let allot = InProcess::serve(&server.url(), &config.config, exact_fulfiller(3));
        let at = allot.listening().await;
        let r = Running {
            url: server.url(),
            server,
            allot,
            at,
            http: Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while r.send(Method::GET, "/readyz", None).await.0 != StatusCode::OK {
            assert!(Instant::now() < deadline, "allot never got ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        r
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let base = if path == "/readyz" {
            self.at.ops()
        } else {
            self.at.api
        };
        let mut request = self.http.request(method, format!("http://{base}{path}"));
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

    /// GETs `path` until `done` holds for the body.
    pub async fn until(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, body) = self.send(Method::GET, path, None).await;
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "GET {path}: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stock(&self, warehouse: &str, sku: &str, on_hand: u64) {
        let path = format!("/v1/stock/{warehouse}/{sku}");
        let (s, body) = self
            .send(Method::PUT, &path, Some(&json!({ "on_hand": on_hand })))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        self.until(&path, |v| {
            v["on_hand"] == on_hand || v["available"] == on_hand
        })
        .await;
    }

    pub async fn available(&self, warehouse: &str, sku: &str, want: i64) -> Value {
        self.until(&format!("/v1/stock/{warehouse}/{sku}"), |v| {
            v["available"] == want && v["in_flight"] == 0
        })
        .await
    }

    pub async fn post_cart(&self, cart: &Value) -> Value {
        let (s, body) = self.send(Method::POST, "/v1/orders", Some(cart)).await;
        assert_eq!(s, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["kind"], "cart", "{body}");
        body
    }

    pub async fn final_cart(&self, id: &str) -> Value {
        self.until(&format!("/v1/orders/{id}"), |v| v["final"] == true)
            .await
    }
}

pub fn statuses(cart: &Value) -> Vec<String> {
    cart["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["status"].as_str().unwrap_or("?").to_owned())
        .collect()
}
