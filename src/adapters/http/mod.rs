//! The HTTP API: JSON under `/v1` (orders, batches of commands, stock,
//! partitions) and the operations endpoints (`/livez`, `/readyz`,
//! `/metrics`), which may listen on their own address. The API is a thin
//! front on the same paths NATS producers use: orders and commands go
//! through the [`Ingress`], reads come from the in-memory [`Views`]. No
//! transport other than HTTP is known here. The OpenAPI document is
//! `docs/openapi.json`, served at `/v1/openapi.json`.
//!
//! Mutating routes need `Authorization: Bearer <http.auth_token>` when a
//! token is configured; reads, health and metrics stay open.

mod batches;
mod body;
mod carts;
mod commands;
mod error;
mod health;
mod orders;
mod stock;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tracing::info;

pub use body::parse as parse_json;
pub use commands::{parse_batch, parse_command, BatchItem};
pub use error::ApiError;
pub use health::Health;
pub use stock::{AdjustBody, RestockBody, SetBody};

use crate::ingress::Ingress;
use crate::views::Views;

/// The OpenAPI document, checked in and served as is.
pub const OPENAPI: &str = include_str!("../../../docs/openapi.json");

/// Renders the metrics registry as Prometheus text.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// What the API handlers share.
pub struct Api {
    pub ingress: Arc<Ingress>,
    pub views: Arc<Views>,
    pub auth_token: Option<String>,
    /// Largest body of `POST /v1/commands`.
    pub max_body_bytes: usize,
    /// Most commands in one batch, nested ones included.
    pub max_batch_size: usize,
}

type Shared = Arc<Api>;

/// The `/v1` routes.
pub fn api_routes(api: Api, request_timeout: Duration) -> axum::Router {
    let api = Arc::new(api);
    axum::Router::new()
        .route("/v1/orders", post(orders::create))
        .route("/v1/order-batches", post(batches::create))
        .route("/v1/orders/{id}", get(orders::show).delete(orders::cancel))
        .route("/v1/orders/{id}/confirm", post(carts::confirm))
        .route("/v1/commands", post(commands::run))
        .route(
            "/v1/stock/{warehouse}/{sku}",
            get(stock::show).put(stock::set),
        )
        .route("/v1/stock/{warehouse}/{sku}/restock", post(stock::restock))
        .route("/v1/stock/{warehouse}/{sku}/adjust", post(stock::adjust))
        .route("/v1/partitions", get(stock::partitions))
        .route("/v1/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(api.clone(), authorize))
        // Bodies are read by `body::json` with the limit of each route.
        .layer(DefaultBodyLimit::disable())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(middleware::map_response(retry_after))
        .layer(TraceLayer::new_for_http())
        .with_state(api)
}

/// `/livez`, `/readyz` and `/metrics`, never behind auth.
pub fn ops_routes(health: Arc<Health>, metrics: Option<RenderMetrics>) -> axum::Router {
    axum::Router::new()
        .route("/livez", get(health::livez))
        .route("/readyz", get(health::readyz))
        .route(
            "/metrics",
            get(move || async move {
                match &metrics {
                    Some(render) => (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        render(),
                    )
                        .into_response(),
                    None => ApiError::new(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "metrics are not enabled in this process",
                    )
                    .into_response(),
                }
            }),
        )
        .with_state(health)
}

/// Binds `addr` and serves `app` until `stop`, then finishes the requests
/// under way. Returns the bound address (port 0 picks one) and the task.
pub async fn listen(
    what: &'static str,
    addr: SocketAddr,
    app: axum::Router,
    stop: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ListenError> {
    let failed = |source| ListenError { what, addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    info!(%bound, "{what} listening");
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "{what} stopped");
        }
    });
    Ok((bound, task))
}

/// A server could not listen.
#[derive(Debug, thiserror::Error)]
#[error("{what}: cannot listen on {addr}: {source}")]
pub struct ListenError {
    what: &'static str,
    addr: SocketAddr,
    source: std::io::Error,
}

/// Where the HTTP servers of one `allot serve` listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    pub api: SocketAddr,
    /// `None` when the operations endpoints share the API's address.
    pub ops: Option<SocketAddr>,
}

impl Listening {
    /// The address serving `/metrics` and the health checks.
    pub fn ops(&self) -> SocketAddr {
        self.ops.unwrap_or(self.api)
    }
}

/// Every 503 (a timeout included) tells the client when to retry.
async fn retry_after(mut response: Response) -> Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(header::RETRY_AFTER)
            .or_insert(header::HeaderValue::from_static("1"));
    }
    response
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {method} {}; see /v1/openapi.json", uri.path()),
    )
}

/// Mutating requests need the bearer token, when one is configured.
async fn authorize(State(api): State<Shared>, request: Request, next: Next) -> Response {
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    let Some(token) = api.auth_token.as_deref().filter(|_| !reading) else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), token.as_bytes()) => {
            next.run(request).await
        }
        Some(_) => ApiError::unauthorized("the bearer token is wrong").into_response(),
        None => ApiError::unauthorized(
            "this route needs an Authorization: Bearer <token> header (http.auth_token)",
        )
        .into_response(),
    }
}

/// Compares without stopping at the first differing byte, so response
/// times do not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn the_openapi_document_is_json_with_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
        let paths = doc["paths"].as_object().expect("paths");
        for p in [
            "/v1/orders",
            "/v1/order-batches",
            "/v1/orders/{id}",
            "/v1/commands",
            "/v1/stock/{warehouse}/{sku}",
            "/v1/stock/{warehouse}/{sku}/restock",
            "/v1/stock/{warehouse}/{sku}/adjust",
            "/v1/partitions",
            "/livez",
            "/readyz",
            "/metrics",
        ] {
            assert!(paths.contains_key(p), "openapi.json lacks {p}");
        }
    }
}
