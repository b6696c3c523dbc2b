//! What the daemon knows about itself, shared between the workers (who write it) and the HTTP
//! server (who reads it): the source's revision, and per cluster the applied revision, the last
//! result, drifted objects, what of the live Strimzi objects is not in effect, and the last changes. Served as JSON and as a small HTML page on
//! `/status`, and as the answer of `/readyz`. Holds no Secret value: object names, field paths,
//! managers and masked messages only.

use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

use super::config::DriftMode;
use crate::apply::Health;
use crate::plan::in_effect::{Effect, NotInEffect};

/// How many changes of the last apply the status keeps per cluster.
pub const LAST_CHANGES_KEPT: usize = 50;

/// The current time, RFC 3339.
pub fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Millisecond)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The whole status (`GET /status`). Stable JSON: new fields may be added, none removed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StatusReport {
    pub source: SourceStatus,
    /// Whether this replica holds the leader Lease (always true without leader election).
    pub leader: bool,
    pub clusters: Vec<ClusterStatus>,
}

/// The git source.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SourceStatus {
    /// The remote URL without credentials, or the local path.
    pub location: String,
    pub branch: Option<String>,
    /// The newest revision seen (commit sha, or `local:<digest>` for a working tree).
    pub revision: Option<String>,
    pub last_fetch: Option<String>,
    /// Why the last fetch failed, if it did (the daemon keeps the last good revision meanwhile).
    pub error: Option<String>,
    /// The last fetch found history rewritten (force-push).
    pub forced: bool,
    /// The git host's state as the last attempt found it: `ok`, `throttled` (HTTP 429) or `down`
    /// (5xx, connection failures).
    pub state: SourceState,
    /// When `state` began (RFC 3339); the daemon's start while it is `ok` from the beginning.
    pub since: Option<String>,
    /// While throttled or down: when the next attempt is made (RFC 3339).
    pub retry_at: Option<String>,
    /// With `source.verify`: the signature verification of the newest revision.
    pub verification: Option<super::verify::VerificationStatus>,
}

/// The git host's state (see [`SourceStatus::state`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    #[default]
    Ok,
    Throttled,
    Down,
}

impl SourceState {
    /// The name `/status` and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Ok => "ok",
            SourceState::Throttled => "throttled",
            SourceState::Down => "down",
        }
    }
}

/// One object that differs from git live.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DriftedObject {
    /// `Kind/namespace/name`.
    pub object: String,
    /// `path: before -> after, changed by manager`, or `deleted`.
    pub fields: Vec<String>,
}

/// The outcome of one reconcile.
#[derive(Clone, Debug, Serialize)]
pub struct LastResult {
    pub at: String,
    pub revision: Option<String>,
    /// `applied` (something changed), `unchanged`, `healed`, `failed`, `suspended`, `standby`,
    /// `waiting` (the revision waits for live state, see [`ClusterStatus::waiting`]).
    pub result: String,
    pub message: Option<String>,
    pub duration_ms: u64,
}

/// One cluster.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterStatus {
    pub name: String,
    pub drift_mode: DriftMode,
    pub suspended: bool,
    /// The revision live in the cluster: the last one applied successfully.
    pub applied_revision: Option<String>,
    /// The applied revision is the newest one, and nothing drifted (or drift is being healed).
    pub synced: bool,
    pub last_result: Option<LastResult>,
    pub drifted: Vec<DriftedObject>,
    /// What the Strimzi operator accepted but did not carry out (`effect: ignored`) or warns about
    /// (`effect: warned`), as of the last plan of the cluster (see [`crate::plan::in_effect`]).
    /// Independent of `synced`: git was applied; the operator did not follow.
    pub not_in_effect: Vec<NotInEffect>,
    /// The Strimzi objects of the render that are not ready (state `progressing`, `not-ready`,
    /// `refused`, `paused`, `missing`, and why), as of the last plan (see [`crate::apply::health`]).
    pub not_ready: Vec<Health>,
    /// While the newest revision waits for gates on live state (last result `waiting`): one line
    /// per change and what it waits for (`Kafka/kafka-prod/main: strimzi.io/kraft=enabled needs
    /// kafkaMetadataState KRaftPostMigration, live: KRaftDualWriting`); see [`crate::plan::gate`].
    pub waiting: Vec<String>,
    /// `Kind/namespace/name outcome` of the last apply that changed something.
    pub last_changes: Vec<String>,
    pub last_changes_revision: Option<String>,
    pub heals: u64,
    /// Whether this replica reconciles the cluster: always without `sharding`; with it, while
    /// this replica holds the cluster's Lease (see [`super::fleet`]).
    pub owned: bool,
    /// With `sharding`: the replica holding the cluster's Lease as this one last saw it.
    pub owner: Option<String>,
}

impl ClusterStatus {
    /// A cluster that has not been reconciled yet.
    pub fn new(name: &str, drift_mode: DriftMode, suspended: bool) -> ClusterStatus {
        ClusterStatus {
            name: name.to_string(),
            drift_mode,
            suspended,
            applied_revision: None,
            synced: suspended,
            last_result: None,
            drifted: Vec::new(),
            not_in_effect: Vec::new(),
            not_ready: Vec::new(),
            waiting: Vec::new(),
            last_changes: Vec::new(),
            last_changes_revision: None,
            heals: 0,
            owned: true,
            owner: None,
        }
    }
}

/// The shared, mutable status.
#[derive(Debug, Default)]
pub struct Status {
    inner: Mutex<StatusReport>,
}

impl Status {
    pub fn new(report: StatusReport) -> Status {
        Status {
            inner: Mutex::new(report),
        }
    }

    fn lock(&self) -> MutexGuard<'_, StatusReport> {
        // A panic while holding the lock cannot leave the report half-written in a way that
        // matters (each update is a few field stores), so a poisoned lock is still used.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the whole status.
    pub fn snapshot(&self) -> StatusReport {
        self.lock().clone()
    }

    /// Changes the source's status.
    pub fn source(&self, f: impl FnOnce(&mut SourceStatus)) {
        f(&mut self.lock().source)
    }

    pub fn set_leader(&self, leader: bool) {
        self.lock().leader = leader;
    }

    /// Reads one cluster's status (`None` for a cluster the report does not have), without
    /// copying the others.
    pub fn read_cluster<T>(&self, name: &str, f: impl FnOnce(&ClusterStatus) -> T) -> Option<T> {
        self.lock().clusters.iter().find(|c| c.name == name).map(f)
    }

    /// Changes one cluster's status.
    pub fn cluster(&self, name: &str, f: impl FnOnce(&mut ClusterStatus)) {
        let mut guard = self.lock();
        if let Some(c) = guard.clusters.iter_mut().find(|c| c.name == name) {
            f(c)
        }
    }

    /// Whether every cluster this replica owns is synced (`/readyz`).
    pub fn ready(&self) -> bool {
        let guard = self.lock();
        guard.clusters.iter().filter(|c| c.owned).all(|c| c.synced)
    }
}

pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn short(revision: Option<&str>) -> String {
    match revision {
        Some(r) if r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()) => r[..12].to_string(),
        Some(r) => r.to_string(),
        None => "-".to_string(),
    }
}

/// The status as a small self-contained HTML page (`GET /status` with `Accept: text/html`).
pub fn html(report: &StatusReport) -> String {
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>kgitops status</title>\
         <meta http-equiv=\"refresh\" content=\"10\"><style>body{font-family:sans-serif;margin:2em}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
         .ok{color:#070}.bad{color:#b00}code{font-size:90%}</style></head><body><h1>kgitops</h1>",
    );
    let s = &report.source;
    let _ = write!(
        out,
        "<p>Source <code>{}</code>{} at <code>{}</code>{}{}{}{}</p>",
        escape(&s.location),
        s.branch
            .as_deref()
            .map(|b| format!(" branch <code>{}</code>", escape(b)))
            .unwrap_or_default(),
        escape(&short(s.revision.as_deref())),
        s.last_fetch
            .as_deref()
            .map(|t| format!(", fetched {}", escape(t)))
            .unwrap_or_default(),
        s.error
            .as_deref()
            .map(|e| format!(" <span class=\"bad\">fetch failed: {}</span>", escape(e)))
            .unwrap_or_default(),
        match s.state {
            SourceState::Ok => String::new(),
            state => format!(
                " <span class=\"bad\">git host {} since {}, next attempt {}</span>",
                state.as_str(),
                escape(s.since.as_deref().unwrap_or("-")),
                escape(s.retry_at.as_deref().unwrap_or("-"))
            ),
        },
        if report.leader {
            " (leader)"
        } else {
            " <span class=\"bad\">(standby: another replica leads)</span>"
        },
    );
    if let Some(v) = &s.verification {
        out.push_str(&super::verify::html(v));
    }
    out.push_str(
        "<table><tr><th>cluster</th><th>applied revision</th><th>last result</th><th>drifted objects</th>\
         <th>not in effect</th><th>last changes</th></tr>",
    );
    for c in &report.clusters {
        let (class, state) = if c.synced {
            ("ok", "synced")
        } else {
            ("bad", "not synced")
        };
        let result = c
            .last_result
            .as_ref()
            .map(|r| {
                format!(
                    "{} at {}{}",
                    escape(&r.result),
                    escape(&r.at),
                    r.message
                        .as_deref()
                        .map(|m| format!("<br><code>{}</code>", escape(m)))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_else(|| "-".into());
        let drifted = if c.drifted.is_empty() {
            "none".to_string()
        } else {
            c.drifted
                .iter()
                .map(|d| {
                    format!(
                        "<code>{}</code>: {}",
                        escape(&d.object),
                        escape(&d.fields.join("; "))
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let not_in_effect = if c.not_in_effect.is_empty() {
            "none".to_string()
        } else {
            c.not_in_effect
                .iter()
                .map(|n| {
                    let class = if n.effect == Effect::Ignored { "bad" } else { "" };
                    format!(
                        "<span class=\"{class}\">{}</span> <code>{}</code> <code>{}</code>: {}: {}",
                        escape(&n.effect.to_string()),
                        escape(&n.object),
                        escape(&n.field),
                        escape(&n.reason),
                        escape(&n.message)
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let not_in_effect = if c.not_ready.is_empty() {
            not_in_effect
        } else {
            let not_ready: Vec<String> = c
                .not_ready
                .iter()
                .map(|h| {
                    format!(
                        "<span class=\"bad\">{}</span> <code>{}</code>: {}",
                        h.state.as_str(),
                        escape(&h.object),
                        escape(&h.message)
                    )
                })
                .collect();
            format!("{not_in_effect}<br>{}", not_ready.join("<br>"))
        };
        let changes = if c.last_changes.is_empty() {
            "-".to_string()
        } else {
            format!(
                "at <code>{}</code>:<br>{}",
                escape(&short(c.last_changes_revision.as_deref())),
                c.last_changes
                    .iter()
                    .map(|l| escape(l))
                    .collect::<Vec<_>>()
                    .join("<br>")
            )
        };
        let _ = write!(
            out,
            "<tr><td>{}<br><span class=\"{class}\">{state}</span>{}{}</td><td><code>{}</code></td><td>{result}</td>\
             <td>{drifted}</td><td>{not_in_effect}</td><td>{changes}</td></tr>",
            escape(&c.name),
            if c.suspended { " (suspended)" } else { "" },
            match (&c.owner, c.owned) {
                (_, true) => String::new(),
                (Some(owner), false) => format!(" (owned by {})", escape(owner)),
                (None, false) => " (no owner)".to_string(),
            },
            escape(&short(c.applied_revision.as_deref())),
        );
    }
    out.push_str("</table></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_cluster_is_synced() {
        let status = Status::new(StatusReport {
            clusters: vec![
                ClusterStatus::new("dev", DriftMode::Heal, false),
                ClusterStatus::new("prod", DriftMode::Alert, true),
            ],
            ..StatusReport::default()
        });
        assert!(!status.ready());
        status.cluster("dev", |c| c.synced = true);
        assert!(status.ready());
    }

    #[test]
    fn html_escapes_what_it_shows() {
        let mut report = StatusReport::default();
        let mut c = ClusterStatus::new("dev", DriftMode::Heal, false);
        c.drifted.push(DriftedObject {
            object: "ConfigMap/ns/<script>".into(),
            fields: vec!["data.a: \"x\" -> \"y\", changed by kubectl-patch".into()],
        });
        report.clusters.push(c);
        let page = html(&report);
        assert!(page.contains("ConfigMap/ns/&lt;script&gt;"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("changed by kubectl-patch"));
    }
}
