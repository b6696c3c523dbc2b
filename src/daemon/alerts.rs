//! Alerts to generic JSON webhooks and Slack incoming webhooks, deduplicated: one alert when a
//! drift or failure first appears (or its content changes), one when it is resolved, nothing while
//! it persists. Alerts are sent in order by one background task; a receiver that fails is logged
//! (without its URL's secret parts) and the daemon goes on.
//!
//! Generic webhook body (stable JSON):
//! `{"source": "kgitops", "state": "firing" | "resolved",
//!   "kind": "drift" | "failure" | "fetch" | "not-in-effect" | "strimzi-health" | "gate" | "verify",
//!   "key": "...", "cluster": "dev" | null, "summary": "...", "details": ["..."], "revision": "..." | null,
//!   "at": "RFC 3339"}`.
//! Slack: `{"text": "..."}` with the same content.
//!
//! `not-in-effect` alerts (key `not-in-effect/<cluster>/<object> <field>`) fire while the Strimzi
//! operator leaves a part of the applied spec undone (see [`crate::plan::in_effect`]) and resolve
//! when it is gone; Strimzi's warnings about specs in effect are not alerted (they are in `/status`
//! and the metrics).
//!
//! `strimzi-health` alerts (key `strimzi-health/<cluster>/<object>`) fire while a Strimzi object of
//! the applied revision is paused (annotation `strimzi.io/pause-reconciliation: "true"` or condition
//! `ReconciliationPaused`) or refused (the operator says it will not act on this spec, e.g.
//! `NotReady` with reason `InvalidResourceException`; a KafkaRebalance `NotReady`/`Stopped`): the
//! states in which waiting cannot help ([`crate::apply::health::HealthState::is_final`]). Summary
//! `Kafka/ns/main is paused: ...` or `... is refused by the Strimzi operator`, details the health
//! message (Strimzi's reason and message). A change of state or message fires again; the alert
//! resolves when the object is neither (or has left git). Objects that are merely progressing or
//! not ready (the operator retries) are only in `/status` and `kgitops_strimzi_objects`.
//!
//! `gate` alerts (key `gate/<cluster>/<object>`) fire once while the newest revision waits for a gate
//! on live state of that object (details: each change and what it needs; the live state, which moves
//! while it waits, is in `/status`), and resolve when the revision is applied (see
//! [`crate::plan::gate`]).
//!
//! The `verify` alert (key `verify`, no cluster) fires when `source.verify` refuses the newest head
//! (summary `commit <sha> is not applied: <reason>`, details the refusal and the signer if any) and
//! resolves when a trusted head follows (see [`super::verify`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio::sync::mpsc;

use super::config::{AlertConfig, AlertType};
use super::status::now;

/// How long one alert delivery may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether an alert starts or ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Firing,
    Resolved,
}

/// One alert as sent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Alert {
    pub source: &'static str,
    pub state: AlertState,
    /// `drift`, `failure`, `fetch`, `not-in-effect` `strimzi-health` or `gate`.
    pub kind: &'static str,
    /// What is deduplicated: `drift/<cluster>/<object>`, `failure/<cluster>`, `fetch`,
    /// `not-in-effect/<cluster>/<object> <field>`, `strimzi-health/<cluster>/<object>`,
    /// `gate/<cluster>/<object>`.
    pub key: String,
    pub cluster: Option<String>,
    pub summary: String,
    pub details: Vec<String>,
    pub revision: Option<String>,
    pub at: String,
}

impl Alert {
    /// A firing alert.
    pub fn firing(kind: &'static str, key: String, cluster: Option<&str>, summary: String) -> Alert {
        Alert {
            source: "kgitops",
            state: AlertState::Firing,
            kind,
            key,
            cluster: cluster.map(str::to_string),
            summary,
            details: Vec::new(),
            revision: None,
            at: String::new(),
        }
    }

    fn slack_text(&self) -> String {
        let icon = match self.state {
            AlertState::Firing => ":rotating_light:",
            AlertState::Resolved => ":white_check_mark:",
        };
        let mut text = format!(
            "{icon} *kgitops* {}{}: {}",
            self.cluster
                .as_deref()
                .map(|c| format!("[{c}] "))
                .unwrap_or_default(),
            match self.state {
                AlertState::Firing => "firing",
                AlertState::Resolved => "resolved",
            },
            self.summary
        );
        for d in &self.details {
            text.push_str("\n• ");
            text.push_str(d);
        }
        if let Some(r) = &self.revision {
            text.push_str(&format!("\nrevision `{r}`"));
        }
        text
    }
}

struct Receiver {
    kind: AlertType,
    url: Option<String>,
    url_file: Option<PathBuf>,
}

impl Receiver {
    fn url(&self) -> Result<String, String> {
        match (&self.url, &self.url_file) {
            (Some(u), _) => Ok(u.clone()),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("{}: cannot read the alert URL: {e}", f.display())),
            (None, None) => Err("no URL".into()),
        }
    }
}

/// The receiver's URL as logs may show it: scheme, host and port only (webhook URLs carry tokens
/// in their paths).
fn masked(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/***",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<unparsable URL>".into(),
    }
}

/// Deduplicates and sends alerts.
pub struct Alerter {
    active: Mutex<HashMap<String, (String, Vec<String>)>>,
    tx: Option<mpsc::UnboundedSender<Alert>>,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter")
            .field("receivers", &self.tx.is_some())
            .finish()
    }
}

impl Alerter {
    /// An alerter for `configs`; spawns its sending task on the current runtime when there are
    /// receivers.
    pub fn start(configs: &[AlertConfig]) -> Alerter {
        let receivers: Vec<Receiver> = configs
            .iter()
            .map(|c| Receiver {
                kind: c.kind,
                url: c.url.clone(),
                url_file: c.url_file.clone(),
            })
            .collect();
        let tx = if receivers.is_empty() {
            None
        } else {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(deliver(receivers, rx));
            Some(tx)
        };
        Alerter {
            active: Mutex::new(HashMap::new()),
            tx,
        }
    }

    fn send(&self, mut alert: Alert) {
        alert.at = now();
        tracing::warn!(
            alert = alert.key.as_str(),
            state = ?alert.state,
            summary = alert.summary.as_str(),
            details = ?alert.details,
            "alert"
        );
        if let Some(tx) = &self.tx {
            // The task ends only with the runtime.
            let _ = tx.send(alert);
        }
    }

    /// Raises `alert` unless the same (same key, summary and details) is already firing.
    pub fn fire(&self, alert: Alert) {
        let content = (alert.summary.clone(), alert.details.clone());
        {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            if active.get(&alert.key) == Some(&content) {
                return;
            }
            active.insert(alert.key.clone(), content);
        }
        self.send(alert);
    }

    /// Makes `alerts` the whole set of firing alerts below `prefix`: fires each (deduplicated as
    /// [`Alerter::fire`] does) and resolves the others below `prefix`. For kinds whose current set
    /// is known at once (a cluster's parts not in effect, Strimzi objects paused or refused, gates).
    pub fn fire_set(&self, prefix: &str, cluster: Option<&str>, alerts: Vec<Alert>) {
        let keys: Vec<String> = alerts.iter().map(|a| a.key.clone()).collect();
        for alert in alerts {
            self.fire(alert);
        }
        self.resolve_except(prefix, &keys, cluster);
    }

    /// Resolves the alert `key` if it is firing.
    pub fn resolve(&self, key: &str, cluster: Option<&str>, summary: String) {
        let was = self.active.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        if was.is_some() {
            let mut alert = Alert::firing("resolved", key.to_string(), cluster, summary);
            alert.kind = key.split('/').next().map(kind_of).unwrap_or("failure");
            alert.state = AlertState::Resolved;
            self.send(alert);
        }
    }

    /// Resolves every firing alert whose key starts with `prefix` and is not in `keep`.
    pub fn resolve_except(&self, prefix: &str, keep: &[String], cluster: Option<&str>) {
        let stale: Vec<String> = self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|k| k.starts_with(prefix) && !keep.contains(k))
            .cloned()
            .collect();
        for key in stale {
            let object = key
                .rsplit_once(prefix)
                .map(|(_, o)| o.to_string())
                .unwrap_or_default();
            self.resolve(&key, cluster, resolved_summary(prefix, &object));
        }
    }
}

fn kind_of(prefix: &str) -> &'static str {
    match prefix {
        "drift" => "drift",
        "fetch" => "fetch",
        "not-in-effect" => "not-in-effect",
        "strimzi-health" => "strimzi-health",
        "gate" => "gate",
        "verify" => "verify",
        _ => "failure",
    }
}

/// What a resolved alert of a per-object kind (`<kind>/<cluster>/`) says about `object`.
fn resolved_summary(prefix: &str, object: &str) -> String {
    match prefix.split('/').next().map(kind_of) {
        Some("not-in-effect") => format!("{object} is in effect now (or left git)"),
        Some("strimzi-health") => format!("{object} is no longer paused or refused (or left git)"),
        Some("gate") => format!("{object}: no longer waiting for live state (applied, or left the revision)"),
        _ => format!("{object} matches git again"),
    }
}

/// The HTTP client of what the daemon sends to third parties (alerts, commit statuses).
pub type NotifyClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A client for [`NotifyClient`]'s uses: HTTP/1.1 over rustls with the system's root
/// certificates, `http://` allowed (in-cluster receivers); fails without root certificates.
pub fn notify_client() -> std::io::Result<NotifyClient> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())?;
    Ok(Client::builder(TokioExecutor::new()).build(
        builder
            .https_or_http()
            .enable_http1()
            .wrap_connector(HttpConnector::new()),
    ))
}

async fn deliver(receivers: Vec<Receiver>, mut rx: mpsc::UnboundedReceiver<Alert>) {
    let client = match notify_client() {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!("alerts: no TLS root certificates ({e}); alerts are only logged");
            None
        }
    };
    while let Some(alert) = rx.recv().await {
        let Some(client) = &client else { continue };
        for r in &receivers {
            let url = match r.url() {
                Ok(u) => u,
                Err(e) => {
                    tracing::error!("alert {} not sent: {e}", alert.key);
                    continue;
                }
            };
            let body = match r.kind {
                AlertType::Webhook => serde_json::to_vec(&alert),
                AlertType::Slack => serde_json::to_vec(&serde_json::json!({"text": alert.slack_text()})),
            };
            let Ok(body) = body else { continue };
            let request = axum::http::Request::post(url.as_str())
                .header("content-type", "application/json")
                .header("user-agent", concat!("kgitops/", env!("CARGO_PKG_VERSION")))
                .body(Full::new(Bytes::from(body)));
            let request = match request {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("alert {} not sent to {}: {e}", alert.key, masked(&url));
                    continue;
                }
            };
            match tokio::time::timeout(SEND_TIMEOUT, client.request(request)).await {
                Ok(Ok(resp)) if resp.status().is_success() => {}
                Ok(Ok(resp)) => {
                    tracing::error!("alert {} to {}: HTTP {}", alert.key, masked(&url), resp.status())
                }
                Ok(Err(e)) => tracing::error!("alert {} to {}: {e}", alert.key, masked(&url)),
                Err(_) => tracing::error!("alert {} to {}: timed out", alert.key, masked(&url)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_urls_keep_only_scheme_host_and_port() {
        assert_eq!(
            masked("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/***"
        );
        assert_eq!(
            masked("http://127.0.0.1:8080/hook?token=1"),
            "http://127.0.0.1:8080/***"
        );
    }

    #[tokio::test]
    async fn deduplicates_until_resolved() {
        let alerter = Alerter::start(&[]);
        let a = || {
            Alert::firing(
                "drift",
                "drift/dev/ConfigMap/ns/a".into(),
                Some("dev"),
                "drifted".into(),
            )
        };
        alerter.fire(a());
        alerter.fire(a());
        assert_eq!(alerter.active.lock().unwrap().len(), 1);
        alerter.resolve_except("drift/dev/", &[], Some("dev"));
        assert!(alerter.active.lock().unwrap().is_empty());
        alerter.fire(a());
        assert_eq!(alerter.active.lock().unwrap().len(), 1);
    }

    #[test]
    fn resolved_alerts_keep_their_kind_and_say_what_ended() {
        assert_eq!(kind_of("strimzi-health"), "strimzi-health");
        assert_eq!(kind_of("not-in-effect"), "not-in-effect");
        assert_eq!(kind_of("failure"), "failure");
        assert_eq!(
            resolved_summary("strimzi-health/dev/", "Kafka/k/main"),
            "Kafka/k/main is no longer paused or refused (or left git)"
        );
        assert_eq!(
            resolved_summary("not-in-effect/dev/", "KafkaNodePool/k/b spec.storage"),
            "KafkaNodePool/k/b spec.storage is in effect now (or left git)"
        );
        assert_eq!(
            resolved_summary("drift/dev/", "ConfigMap/k/a"),
            "ConfigMap/k/a matches git again"
        );
    }

    #[test]
    fn slack_text_says_what_and_where() {
        let mut a = Alert::firing(
            "failure",
            "failure/dev".into(),
            Some("dev"),
            "render failed".into(),
        );
        a.details.push("clusters/dev/kustomization.yaml: line 3".into());
        let t = a.slack_text();
        assert!(
            t.contains("[dev] firing: render failed") && t.contains("• clusters/dev"),
            "{t}"
        );
    }
}
