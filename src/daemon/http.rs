//! The HTTP servers, and the limits that keep a hostile network from exhausting the daemon.
//!
//! Two listeners (configured in [`super::config::ServerConfig`]):
//! - public (`server.listen`): `POST /webhook`, `/healthz`, `/readyz`;
//! - internal (`server.status_listen`, loopback unless configured): `/status` (JSON, or HTML for
//!   browsers and `?format=html`), `/metrics` (OpenMetrics), `/healthz`, `/readyz`.
//!
//! `/healthz` and `/readyz` both mean "the process serves". Whether the clusters are synced is in
//! `/status`, the metrics and the alerts, never in readiness: a standby, or a replica whose last
//! commit failed, must stay in its Service so that the webhook with the fix reaches it.
//!
//! Every listener runs its own accept loop. It holds at most `max_connections` connections (more
//! wait in the kernel's backlog, so a flood cannot make the daemon allocate per connection without
//! bound), closes a connection whose headers do not arrive within `header_read_timeout` (hyper
//! runs with a timer) and answers 408 to a request not done within `request_timeout`. Webhook
//! bodies are limited to [`MAX_BODY_BYTES`] (checked on Content-Length before reading, and while
//! streaming) and at most [`WEBHOOK_BODIES`] are read at once. On shutdown the loop stops
//! accepting, lets requests in progress finish for [`DRAIN`], then closes every connection,
//! whatever the clients do.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::Shared;
use super::deliveries::{Deliveries, delivery_id};
use super::status::html;
use super::webhook::{self, MAX_BODY_BYTES, Verdict, WebhookError};

/// How many webhook bodies are read at once; more requests get 503 at once (a git host retries).
/// Bounds what the webhook can hold in memory to `WEBHOOK_BODIES * MAX_BODY_BYTES` (2 MiB).
pub const WEBHOOK_BODIES: usize = 8;
/// Largest request head (request line and headers) a connection may buffer.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// How long requests in progress may go on after shutdown was asked for.
pub const DRAIN: Duration = Duration::from_secs(2);
/// After this many connections, the last one to close hands freed memory back to the kernel.
const TRIM_AFTER_CONNECTIONS: usize = 64;

/// The limits of one listener.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

/// What the handlers share.
pub struct AppState {
    pub shared: Arc<Shared>,
    /// Wakes the source follower for an immediate fetch.
    pub trigger: Arc<Notify>,
    pub webhook_secret_file: Option<PathBuf>,
    pub branch: String,
    /// Permits to read a webhook body ([`WEBHOOK_BODIES`]).
    pub bodies: Semaphore,
    /// Recently accepted delivery ids: a replay triggers nothing.
    pub deliveries: Deliveries,
}

/// The endpoints of the public listener.
pub fn public_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(serving))
        .route("/readyz", get(ready))
        .route("/webhook", post(webhook_handler))
        .with_state(state)
}

/// The endpoints of the internal listener.
pub fn status_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(serving))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(state)
}

async fn serving() -> &'static str {
    "ok\n"
}

async fn ready() -> &'static str {
    "ready\n"
}

/// Serves `router` on `listener` within `limits` until `shutdown`; returns at most [`DRAIN`]
/// after it. Accept errors (out of file descriptors) are logged and retried after a pause.
pub async fn serve(listener: TcpListener, router: Router, limits: Limits, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let accepted_since_trim = Arc::new(AtomicUsize::new(0));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES);
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        while connections.try_join_next().is_some() {}
        accepted_since_trim.fetch_add(1, Ordering::Relaxed);
        let service = hyper::service::service_fn({
            let router = router.clone();
            move |request: Request<hyper::body::Incoming>| {
                let router = router.clone();
                async move { Ok::<_, Infallible>(within(limits.request_timeout, router, request).await) }
            }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let (token, slots, accepted) = (shutdown.clone(), slots.clone(), accepted_since_trim.clone());
        let max = limits.max_connections;
        connections.spawn(async move {
            tokio::pin!(connection);
            let result = tokio::select! {
                r = connection.as_mut() => r,
                _ = token.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "connection closed: {e}");
            }
            drop(permit);
            // A burst of connections is over: hand its buffers back to the kernel. The accept
            // loop holds one permit while it waits for the next connection, so "none open" is
            // all permits but one.
            if slots.available_permits() + 1 >= max
                && accepted.load(Ordering::Relaxed) >= TRIM_AFTER_CONNECTIONS
            {
                accepted.store(0, Ordering::Relaxed);
                crate::memory::release_freed();
            }
        });
    }
    drop(listener);
    let drained =
        tokio::time::timeout(DRAIN, async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::info!(
            open = connections.len(),
            "shutdown: closing connections still open after {}s",
            DRAIN.as_secs()
        );
        connections.shutdown().await;
    }
}

/// Answers `request` with `router`, or 408 when that takes longer than `timeout`.
async fn within(timeout: Duration, router: Router, request: Request<hyper::body::Incoming>) -> Response {
    match tokio::time::timeout(timeout, router.oneshot(request.map(Body::new))).await {
        Ok(Ok(response)) => response,
        Ok(Err(never)) => match never {},
        Err(_) => closing(StatusCode::REQUEST_TIMEOUT, "request not completed in time\n"),
    }
}

/// A response after which the connection is closed (the request body may be unread).
fn closing(code: StatusCode, text: &'static str) -> Response {
    let mut response = (code, text).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.shared.metrics.encode(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct StatusQuery {
    format: Option<String>,
}

async fn status(
    State(state): State<Arc<AppState>>,
    Query(q): Query<StatusQuery>,
    headers: HeaderMap,
) -> Response {
    let report = state.shared.status.snapshot();
    let wants_html = match q.format.as_deref() {
        Some(f) => f == "html",
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html")),
    };
    if wants_html {
        Html(html(&report)).into_response()
    } else {
        axum::Json(report).into_response()
    }
}

/// The declared body length, when the client declared one.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

async fn webhook_handler(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let metrics = &state.shared.metrics;
    let Some(file) = &state.webhook_secret_file else {
        metrics.webhook("disabled");
        return (
            StatusCode::NOT_FOUND,
            "webhook not configured (server.webhook_secret_file)\n",
        )
            .into_response();
    };
    if content_length(&headers).is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        metrics.webhook("too_large");
        return closing(
            StatusCode::PAYLOAD_TOO_LARGE,
            "webhook body larger than 256 KiB\n",
        );
    }
    let Ok(_permit) = state.bodies.try_acquire() else {
        metrics.webhook("busy");
        return closing(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many webhook requests at once\n",
        );
    };
    let body = match http_body_util::Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            metrics.webhook("too_large");
            return closing(
                StatusCode::PAYLOAD_TOO_LARGE,
                "webhook body larger than 256 KiB\n",
            );
        }
        Err(_) => {
            metrics.webhook("bad_request");
            return closing(StatusCode::BAD_REQUEST, "webhook body not received\n");
        }
    };
    // Read on every request, so a rotated secret applies without a restart.
    let secret = match tokio::fs::read(file).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{} (server.webhook_secret_file): {e}", file.display());
            metrics.webhook("error");
            return (StatusCode::INTERNAL_SERVER_ERROR, "webhook secret unreadable\n").into_response();
        }
    };
    let secret = secret.strip_suffix(b"\n").unwrap_or(&secret);
    match webhook::check(&headers, &body, secret, &state.branch) {
        Ok(Verdict::Fetch { provider }) => {
            if let Some(id) = delivery_id(&headers)
                && !state.deliveries.first_time(id, std::time::Instant::now())
            {
                metrics.webhook("duplicate");
                return (StatusCode::OK, "ignored: delivery already received\n").into_response();
            }
            tracing::info!(provider, "webhook: push, fetching now");
            metrics.webhook("accepted");
            state.trigger.notify_one();
            (StatusCode::ACCEPTED, "fetching\n").into_response()
        }
        Ok(Verdict::Ignore(why)) => {
            tracing::debug!("webhook ignored: {why}");
            metrics.webhook("ignored");
            (StatusCode::OK, format!("ignored: {why}\n")).into_response()
        }
        Err(e @ WebhookError::Unauthorized(_)) => {
            tracing::warn!("webhook refused: {e}");
            metrics.webhook("unauthorized");
            (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response()
        }
        Err(e @ WebhookError::BadRequest(_)) => {
            metrics.webhook("bad_request");
            (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
        }
    }
}

/// The address `listener` is bound to, or `fallback` (for messages).
pub fn bound(listener: &TcpListener, fallback: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(fallback)
}
