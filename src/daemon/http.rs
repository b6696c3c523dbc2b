//! The HTTP server: `/healthz` (the process serves), `/readyz` (every cluster synced), `/metrics`
//! (OpenMetrics), `/status` (JSON, or HTML for browsers and `?format=html`) and `POST /webhook`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::Notify;

use super::Shared;
use super::deliveries::{Deliveries, delivery_id};
use super::status::html;
use super::webhook::{self, MAX_BODY_BYTES, Verdict, WebhookError};

/// What the handlers share.
pub struct AppState {
    pub shared: Arc<Shared>,
    /// Wakes the source follower for an immediate fetch.
    pub trigger: Arc<Notify>,
    pub webhook_secret_file: Option<PathBuf>,
    pub branch: String,
    /// Recently accepted delivery ids: a replay triggers nothing.
    pub deliveries: Deliveries,
}

/// The router of every endpoint.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/webhook", post(webhook_handler))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.shared.status.ready() {
        return (StatusCode::OK, "ready\n").into_response();
    }
    let report = state.shared.status.snapshot();
    let waiting: Vec<String> = report
        .clusters
        .iter()
        .filter(|c| !c.synced)
        .map(|c| {
            let why = c
                .last_result
                .as_ref()
                .map(|r| r.result.clone())
                .unwrap_or_else(|| "not reconciled yet".into());
            format!("{}: {why}", c.name)
        })
        .collect();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not synced: {}\n", waiting.join(", ")),
    )
        .into_response()
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

async fn webhook_handler(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let metrics = &state.shared.metrics;
    let Some(file) = &state.webhook_secret_file else {
        metrics.webhook("disabled");
        return (
            StatusCode::NOT_FOUND,
            "webhook not configured (server.webhook_secret_file)\n",
        )
            .into_response();
    };
    // Read on every request, so a rotated secret applies without a restart.
    let secret = match tokio::fs::read(file).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("webhook secret {}: {e}", file.display());
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
