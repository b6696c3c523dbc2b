//! Commit statuses on the git host: after each reconcile of a cluster, the daemon sets a status
//! with context `kgitops/<cluster>` on the revision it reconciled, so the result shows on the
//! commit (and in pull requests and branch views) on GitHub, GitLab or Gitea/Forgejo.
//!
//! This module owns the `commit_status` configuration, the three providers' wire formats, and the
//! delivery: a bounded queue drained by one task of its own, with deduplication, retries with
//! backoff and rate-limit handling. It lives in `daemon/` beside [`super::alerts`] because it is
//! the daemon's reporting to a third party, like alerts: no pipeline stage produces or reads it,
//! and the CLI never sets statuses.
//!
//! What the worker reports ([`Reporter`]):
//!
//! | daemon outcome | state | description |
//! |---|---|---|
//! | a reconcile of a revision not reported yet starts | `pending` | `applying revision to <cluster>` |
//! | applied (or nothing to change) | `success` | `applied: 3 changed, 12 unchanged` |
//! | a later commit whose render is unchanged | `success` | `render unchanged since <sha>; nothing to apply` |
//! | render error, apply rejected (dry-run), heal failed, prune refused | `failure` | `<step> failed: <file or object>` |
//! | waiting on a gate on live state | `failure` | `waiting for live state of <object>` |
//! | drift left in alert mode | `failure` | `drift: 2 object(s) differ from git (alert mode)` |
//! | drift gone or healed after a failure | `success` | `live state matches git again` |
//! | the cluster's apiserver cannot be reached | `error` (GitLab: `failed`) | `connect failed: ...` |
//!
//! A description names the step and the file or object the error is about (the first part of the
//! error, by the crate's error convention), never the error text: apiserver and parser messages
//! may quote values, and a status on a public commit is public. The whole (masked) message is on
//! `/status`, where `target_url` links. At most [`MAX_DESCRIPTION`] characters (GitHub's limit).
//!
//! Delivery never blocks a reconcile: [`Reporter`]'s methods only queue. The queue holds at most
//! [`QUEUE_CAPACITY`] updates; when it is full, the oldest queued update for the same commit and
//! context is replaced by the new one (only the newest state matters), else the oldest update is
//! dropped (`kgitops_commit_status_total{result="dropped"}`). An update equal (state and
//! description) to the last one accepted for its commit and context is not queued at all. One
//! task sends the queue in order: 2xx is `sent`; a rate-limit answer (429, or 403 saying so) waits
//! as the host asks (`Retry-After`, else `x-ratelimit-reset` / GitLab's `RateLimit-Reset`, else
//! [`DEFAULT_RATE_LIMIT_WAIT`]); 5xx, timeouts and connection failures back off
//! ([`super::backoff`]); after [`MAX_ATTEMPTS`] attempts, or at once on any other answer (401,
//! 404, 422: retrying cannot help), the update is `failed` and logged with the host's message.
//! An update still being retried when a newer one for the same commit and context is queued is
//! abandoned for it (`dropped`).
//!
//! The token is read from `token_file` at every request (a few bytes, a few requests per commit),
//! so a rotated Secret is used at once; it is never logged, and errors name the file only.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use tokio::sync::Notify;

use super::alerts::{SEND_TIMEOUT, notify_client};

/// Prefix of the status context; the cluster's name follows.
pub const CONTEXT_PREFIX: &str = "kgitops/";
/// Longest description sent, in characters (GitHub refuses longer ones).
pub const MAX_DESCRIPTION: usize = 140;
/// Updates waiting to be sent.
pub const QUEUE_CAPACITY: usize = 64;
/// Attempts of one update before it is given up.
pub const MAX_ATTEMPTS: u32 = 6;
/// How long to wait after a rate-limit answer that says nothing about when to come back (GitHub's
/// documented advice for secondary rate limits: at least a minute).
pub const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// The longest wait a host's rate-limit answer can impose.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(3600);
/// Revisions per context whose last state is remembered for deduplication.
const REMEMBERED: usize = 32;
/// The GitHub REST API version the requests are written for.
pub const GITHUB_API_VERSION: &str = "2022-11-28";
/// The most of an answer's body read (for the host's error message).
const MAX_ANSWER: usize = 64 * 1024;

/// The git host's API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Github,
    Gitlab,
    /// Gitea and Forgejo (same API).
    Gitea,
}

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::Github => "github",
            Provider::Gitlab => "gitlab",
            Provider::Gitea => "gitea",
        }
    }

    fn default_api_url(self) -> Option<&'static str> {
        match self {
            Provider::Github => Some("https://api.github.com"),
            Provider::Gitlab => Some("https://gitlab.com"),
            Provider::Gitea => None,
        }
    }
}

/// `commit_status` in the daemon configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitStatusConfig {
    pub provider: Provider,
    /// GitHub: the REST API root (default `https://api.github.com`; GitHub Enterprise Server
    /// `https://HOST/api/v3`). GitLab: the instance (default `https://gitlab.com`). Gitea/Forgejo:
    /// the instance, required.
    #[serde(default)]
    pub api_url: Option<String>,
    /// GitHub and Gitea: `owner/repo`. GitLab: the project's numeric id or its path
    /// (`group/subgroup/project`, URL-encoded when sent).
    pub repository: String,
    /// A file holding the API token (a mounted Secret).
    pub token_file: PathBuf,
    /// The daemon's public base URL; statuses link to `<target_url>/status` (used as is when it
    /// already ends with `/status`). Without it, statuses carry no link.
    #[serde(default)]
    pub target_url: Option<String>,
}

impl CommitStatusConfig {
    /// Checks the values.
    pub fn check(&self) -> Result<(), CommitStatusError> {
        let invalid = |key: &'static str, message: String| CommitStatusError::Config { key, message };
        let api = self.api_root()?;
        if !(api.starts_with("https://") || api.starts_with("http://")) {
            return Err(invalid("api_url", "must start with http:// or https://".into()));
        }
        url::Url::parse(&api).map_err(|e| invalid("api_url", e.to_string()))?;
        let repo = self.repository.trim();
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        match self.provider {
            Provider::Github | Provider::Gitea => {
                let parts: Vec<&str> = repo.split('/').collect();
                if parts.len() != 2 || !parts.iter().all(|p| segment_ok(p)) {
                    return Err(invalid(
                        "repository",
                        format!("'{repo}' must be owner/repo for {}", self.provider.name()),
                    ));
                }
            }
            Provider::Gitlab => {
                if !repo.split('/').all(segment_ok) {
                    return Err(invalid(
                        "repository",
                        format!("'{repo}' must be a project id or path (group/project)"),
                    ));
                }
            }
        }
        if let Some(t) = &self.target_url {
            if !(t.starts_with("https://") || t.starts_with("http://")) {
                return Err(invalid(
                    "target_url",
                    "must start with http:// or https://".into(),
                ));
            }
            url::Url::parse(t).map_err(|e| invalid("target_url", e.to_string()))?;
        }
        Ok(())
    }

    /// `api_url` without a trailing slash, or the provider's default.
    fn api_root(&self) -> Result<String, CommitStatusError> {
        match (&self.api_url, self.provider.default_api_url()) {
            (Some(u), _) => Ok(u.trim().trim_end_matches('/').to_string()),
            (None, Some(d)) => Ok(d.to_string()),
            (None, None) => Err(CommitStatusError::Config {
                key: "api_url",
                message: format!("required for {} (the instance's URL)", self.provider.name()),
            }),
        }
    }

    /// The link of every status: the daemon's `/status` page.
    pub fn link(&self) -> Option<String> {
        let base = self.target_url.as_deref()?.trim().trim_end_matches('/');
        if base.ends_with("/status") {
            Some(base.to_string())
        } else {
            Some(format!("{base}/status"))
        }
    }

    /// Where an update for `sha` is POSTed.
    pub fn endpoint(&self, sha: &str) -> Result<String, CommitStatusError> {
        let root = self.api_root()?;
        let repo = self.repository.trim();
        Ok(match self.provider {
            Provider::Github => format!("{root}/repos/{repo}/statuses/{sha}"),
            Provider::Gitea => format!("{root}/api/v1/repos/{repo}/statuses/{sha}"),
            Provider::Gitlab => {
                // The path's segments are checked to be `[A-Za-z0-9._-]`, which this leaves as
                // they are: only the slashes become `%2F`, as GitLab documents.
                let id: String = url::form_urlencoded::byte_serialize(repo.as_bytes()).collect();
                format!("{root}/api/v4/projects/{id}/statuses/{sha}")
            }
        })
    }
}

/// A commit status's state, as kgitops means it; each provider spells it its own way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// A reconcile of the revision started.
    Pending,
    /// The revision is live in the cluster.
    Success,
    /// The revision is not live: it does not render, was rejected, waits, or drifted.
    Failure,
    /// kgitops could not do its part (the cluster's apiserver unreachable).
    Error,
}

impl State {
    /// The provider's word for this state.
    pub fn wire(self, provider: Provider) -> &'static str {
        match (self, provider) {
            (State::Pending, _) => "pending",
            (State::Success, _) => "success",
            (State::Failure, Provider::Gitlab) | (State::Error, Provider::Gitlab) => "failed",
            (State::Failure, _) => "failure",
            (State::Error, _) => "error",
        }
    }
}

/// One status to set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub sha: String,
    /// `kgitops/<cluster>`.
    pub context: String,
    pub state: State,
    pub description: String,
}

impl Update {
    fn same_target(&self, other: &Update) -> bool {
        self.sha == other.sha && self.context == other.context
    }
}

/// The JSON body of an update.
pub fn body(cfg: &CommitStatusConfig, update: &Update) -> serde_json::Value {
    let mut body = serde_json::json!({
        "state": update.state.wire(cfg.provider),
        "description": update.description,
    });
    // GitLab calls the context `name` (it accepts `context` as an alias; `name` is documented).
    let key = match cfg.provider {
        Provider::Gitlab => "name",
        Provider::Github | Provider::Gitea => "context",
    };
    body[key] = serde_json::Value::String(update.context.clone());
    if let Some(link) = cfg.link() {
        body["target_url"] = serde_json::Value::String(link);
    }
    body
}

/// The headers of an update, the token's included (so never log these).
pub fn headers(provider: Provider, token: &str) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("content-type", "application/json".to_string()),
        (
            "user-agent",
            concat!("kgitops/", env!("CARGO_PKG_VERSION")).to_string(),
        ),
    ];
    match provider {
        Provider::Github => {
            h.push(("accept", "application/vnd.github+json".into()));
            h.push(("authorization", format!("Bearer {token}")));
            h.push(("x-github-api-version", GITHUB_API_VERSION.into()));
        }
        Provider::Gitlab => {
            h.push(("accept", "application/json".into()));
            h.push(("private-token", token.to_string()));
        }
        Provider::Gitea => {
            h.push(("accept", "application/json".into()));
            h.push(("authorization", format!("token {token}")));
        }
    }
    h
}

/// `text` cut to [`MAX_DESCRIPTION`] characters (an ellipsis marks the cut).
pub fn truncate(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_DESCRIPTION {
        return text.to_string();
    }
    let mut out: String = text.chars().take(MAX_DESCRIPTION - 1).collect();
    out.push('…');
    out
}

/// The description of a failed `step`: the step and what the error is about (its first part: a
/// file or an object, by the crate's error convention), never the rest of the error, which may
/// quote values.
pub fn failure_description(step: &str, message: &str) -> String {
    let first = message.lines().next().unwrap_or("").trim();
    let subject = first.split(": ").next().unwrap_or("").trim();
    // A subject that is a whole sentence is not a name: say only the step.
    if subject.is_empty() || subject.chars().count() > 100 {
        return truncate(&format!("{step} failed; see the status page"));
    }
    truncate(&format!("{step} failed: {subject}"))
}

/// Whether `revision` is a commit the host knows (a SHA-1 or SHA-256 object name), not a local
/// working tree's `local:<digest>`.
pub fn is_commit(revision: &str) -> bool {
    matches!(revision.len(), 40 | 64) && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The counters of `kgitops_commit_status_total` (see [`super::metrics`]).
#[derive(Clone, Debug, Default)]
pub struct Outcomes {
    pub sent: Counter,
    pub failed: Counter,
    pub dropped: Counter,
}

/// The queue and what was accepted per commit and context.
#[derive(Debug)]
struct Pending {
    queue: VecDeque<Update>,
    capacity: usize,
    /// Per context: (sha, state, description) of the last update accepted, newest last.
    last: HashMap<String, VecDeque<(String, State, String)>>,
}

/// What [`Pending::offer`] did.
#[derive(Debug, PartialEq, Eq)]
enum Offered {
    Queued,
    /// Equal to the last update accepted for its commit and context.
    Duplicate,
    /// Queued; this older update made room for it.
    Replaced(Update),
}

impl Pending {
    fn new(capacity: usize) -> Pending {
        Pending {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            last: HashMap::new(),
        }
    }

    fn last_for(&self, sha: &str, context: &str) -> Option<(State, &str)> {
        self.last
            .get(context)?
            .iter()
            .rev()
            .find(|(s, _, _)| s == sha)
            .map(|(_, state, d)| (*state, d.as_str()))
    }

    fn remember(&mut self, u: &Update) {
        let list = self.last.entry(u.context.clone()).or_default();
        list.retain(|(s, _, _)| s != &u.sha);
        list.push_back((u.sha.clone(), u.state, u.description.clone()));
        while list.len() > REMEMBERED {
            list.pop_front();
        }
    }

    /// Forgets `u` as the last accepted update of its commit and context (it was never sent), so
    /// the same update is accepted again.
    fn forget(&mut self, u: &Update) {
        if self.last_for(&u.sha, &u.context) == Some((u.state, u.description.as_str()))
            && let Some(list) = self.last.get_mut(&u.context)
        {
            list.retain(|(s, _, _)| s != &u.sha);
        }
    }

    fn offer(&mut self, u: Update) -> Offered {
        if self.last_for(&u.sha, &u.context) == Some((u.state, u.description.as_str())) {
            return Offered::Duplicate;
        }
        self.remember(&u);
        if self.queue.len() < self.capacity {
            self.queue.push_back(u);
            return Offered::Queued;
        }
        let old = match self.queue.iter().position(|q| q.same_target(&u)) {
            Some(i) => std::mem::replace(&mut self.queue[i], u),
            None => {
                // Some queued update must go: the oldest, whose commit is likely superseded.
                let old = self.queue.pop_front();
                self.queue.push_back(u);
                match old {
                    Some(old) => {
                        self.forget(&old);
                        old
                    }
                    None => return Offered::Queued,
                }
            }
        };
        Offered::Replaced(old)
    }

    fn has_newer(&self, u: &Update) -> bool {
        self.queue.iter().any(|q| q.same_target(u))
    }
}

/// What the reporter and its sending task share: the configuration, the queue, the counters.
#[derive(Debug)]
struct Queue {
    cfg: CommitStatusConfig,
    pending: Mutex<Pending>,
    wake: Notify,
    outcomes: Outcomes,
}

impl Queue {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Each critical section is a few queue operations; a poisoned lock is still consistent.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reports reconcile outcomes as commit statuses; does nothing without `commit_status`. Cheap to
/// call from a worker: it only queues.
#[derive(Debug, Default)]
pub struct Reporter {
    shared: Option<Arc<Queue>>,
}

impl Reporter {
    /// A reporter for `cfg`; spawns its sending task on the current runtime when configured.
    pub fn start(cfg: Option<&CommitStatusConfig>, outcomes: Outcomes) -> Reporter {
        Reporter::with_capacity(cfg, outcomes, QUEUE_CAPACITY)
    }

    /// [`Reporter::start`] with another queue size.
    pub fn with_capacity(cfg: Option<&CommitStatusConfig>, outcomes: Outcomes, capacity: usize) -> Reporter {
        let Some(cfg) = cfg else {
            return Reporter::default();
        };
        let reporter = Reporter::idle(cfg, outcomes, capacity);
        if let Some(shared) = &reporter.shared {
            tokio::spawn(deliver(shared.clone()));
        }
        reporter
    }

    /// A reporter that queues without a task sending.
    fn idle(cfg: &CommitStatusConfig, outcomes: Outcomes, capacity: usize) -> Reporter {
        Reporter {
            shared: Some(Arc::new(Queue {
                cfg: cfg.clone(),
                pending: Mutex::new(Pending::new(capacity)),
                wake: Notify::new(),
                outcomes,
            })),
        }
    }

    /// Queues `state` with `description` on `revision` for `cluster`, unless it is the last state
    /// accepted for them or `revision` is no commit.
    pub fn report(&self, cluster: &str, revision: &str, state: State, description: &str) {
        let Some(shared) = &self.shared else { return };
        if !is_commit(revision) {
            return;
        }
        let update = Update {
            sha: revision.to_ascii_lowercase(),
            context: format!("{CONTEXT_PREFIX}{cluster}"),
            state,
            description: truncate(description),
        };
        let offered = shared.pending().offer(update);
        match offered {
            Offered::Duplicate => return,
            Offered::Replaced(old) => {
                shared.outcomes.dropped.inc();
                tracing::warn!(
                    sha = old.sha.as_str(),
                    context = old.context.as_str(),
                    "commit status queue full: the update '{}' is dropped",
                    old.description
                );
            }
            Offered::Queued => {}
        }
        shared.wake.notify_one();
    }

    /// A reconcile of `revision` starts: `pending`, when nothing was reported for it yet (a retry
    /// or a re-plan of a waiting revision says nothing new).
    pub fn started(&self, cluster: &str, revision: &str) {
        let Some(shared) = &self.shared else { return };
        let context = format!("{CONTEXT_PREFIX}{cluster}");
        let known = shared
            .pending()
            .last_for(&revision.to_ascii_lowercase(), &context)
            .is_some();
        if !known {
            self.report(
                cluster,
                revision,
                State::Pending,
                &format!("applying revision to {cluster}"),
            );
        }
    }

    /// `revision` is live and matches git again: `success` if its last status said otherwise.
    pub fn recovered(&self, cluster: &str, revision: &str, description: &str) {
        let Some(shared) = &self.shared else { return };
        let context = format!("{CONTEXT_PREFIX}{cluster}");
        let last = shared
            .pending()
            .last_for(&revision.to_ascii_lowercase(), &context)
            .map(|(s, _)| s);
        if last.is_some_and(|s| s != State::Success) {
            self.report(cluster, revision, State::Success, description);
        }
    }

    /// `step` failed on `revision` with `message`: `failure`, or `error` when kgitops could not
    /// reach the cluster.
    pub fn failed(&self, cluster: &str, revision: &str, step: &str, message: &str) {
        let state = if step == "connect" {
            State::Error
        } else {
            State::Failure
        };
        self.report(cluster, revision, state, &failure_description(step, message));
    }
}

/// How one attempt ended.
#[derive(Debug, PartialEq)]
enum Verdict {
    Sent,
    /// Rate limited: wait this long.
    RateLimited(Duration),
    /// 5xx, timeout, connection failure; the host may have said how long to wait.
    Unavailable(Option<Duration>, String),
    /// Any other answer: retrying cannot help.
    Refused(String),
}

/// The host's message in an error answer (`message` for all three, GitLab's `error` too).
fn host_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let message = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(v) => match v.get("message").or_else(|| v.get("error")) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => text.to_string(),
        },
        Err(_) => text.to_string(),
    };
    message.chars().take(300).collect()
}

/// Seconds from `now_unix` until the Unix time in `value` (at least one second).
fn until_reset(value: &str, now_unix: i64) -> Option<Duration> {
    let at: i64 = value.trim().parse().ok()?;
    let secs = u64::try_from(at.saturating_sub(now_unix)).unwrap_or(0).max(1);
    Some(Duration::from_secs(secs))
}

/// Classifies an answer.
fn verdict(status: u16, headers: &http::HeaderMap, body: &[u8], now: jiff::Timestamp) -> Verdict {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if (200..300).contains(&status) {
        return Verdict::Sent;
    }
    let message = host_message(body);
    let retry_after = header("retry-after").and_then(|v| crate::source::remote::parse_retry_after(v, now));
    // GitHub: x-ratelimit-*; GitLab: RateLimit-*; both Unix seconds.
    let remaining = header("x-ratelimit-remaining").or_else(|| header("ratelimit-remaining"));
    let reset = header("x-ratelimit-reset")
        .or_else(|| header("ratelimit-reset"))
        .and_then(|v| until_reset(v, now.as_second()));
    let limited = status == 429
        || (status == 403
            && (retry_after.is_some()
                || remaining == Some("0")
                || message.to_ascii_lowercase().contains("rate limit")));
    if limited {
        let wait = retry_after.or(reset).unwrap_or(DEFAULT_RATE_LIMIT_WAIT);
        return Verdict::RateLimited(wait.min(MAX_RATE_LIMIT_WAIT));
    }
    if status >= 500 {
        return Verdict::Unavailable(
            retry_after.map(|d| d.min(MAX_RATE_LIMIT_WAIT)),
            format!("HTTP {status}: {message}"),
        );
    }
    // GitLab refuses a transition to the state a status already has (a `pending` again while
    // it is pending): the commit shows what was meant.
    if status == 400 && message.contains("Cannot transition status") {
        return Verdict::Sent;
    }
    Verdict::Refused(format!("HTTP {status}: {message}"))
}

/// A `commit_status` configuration that cannot be used, or why an update could not be sent at all.
#[derive(Debug, thiserror::Error)]
pub enum CommitStatusError {
    /// A value of the configuration (`key` below `commit_status`).
    #[error("commit_status.{key}: {message}")]
    Config { key: &'static str, message: String },
    #[error("{} (commit_status.token_file): cannot read: {source}", path.display())]
    Token {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} (commit_status.token_file): is empty", path.display())]
    EmptyToken { path: PathBuf },
    /// The token (or URL) has bytes an HTTP header cannot carry; the value is not shown.
    #[error("{} (commit_status.token_file): the token cannot be sent in an HTTP header", path.display())]
    Unsendable { path: PathBuf },
}

fn read_token(path: &std::path::Path) -> Result<String, CommitStatusError> {
    let text = std::fs::read_to_string(path).map_err(|source| CommitStatusError::Token {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(CommitStatusError::EmptyToken {
            path: path.to_path_buf(),
        });
    }
    Ok(token)
}

async fn attempt(client: &super::alerts::NotifyClient, cfg: &CommitStatusConfig, u: &Update) -> Verdict {
    let token = match read_token(&cfg.token_file) {
        Ok(t) => t,
        // The file may be fixed (a Secret mounted late): retried like an unavailable host.
        Err(e) => return Verdict::Unavailable(None, e.to_string()),
    };
    let url = match cfg.endpoint(&u.sha) {
        Ok(url) => url,
        Err(e) => return Verdict::Refused(e.to_string()),
    };
    let mut request = http::Request::post(url.as_str());
    for (k, v) in headers(cfg.provider, &token) {
        request = request.header(k, v);
    }
    let body = body(cfg, u).to_string();
    let request = match request.body(Full::new(Bytes::from(body))) {
        Ok(r) => r,
        // Only a token with bytes a header cannot carry gets here; its value is not shown.
        Err(_) => {
            let path = cfg.token_file.clone();
            return Verdict::Refused(CommitStatusError::Unsendable { path }.to_string());
        }
    };
    let answered = tokio::time::timeout(SEND_TIMEOUT, async {
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_ANSWER)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok::<_, String>((parts, body))
    })
    .await;
    match answered {
        Ok(Ok((parts, body))) => verdict(
            parts.status.as_u16(),
            &parts.headers,
            &body,
            jiff::Timestamp::now(),
        ),
        Ok(Err(e)) => Verdict::Unavailable(None, e),
        Err(_) => Verdict::Unavailable(None, format!("no answer within {}s", SEND_TIMEOUT.as_secs())),
    }
}

async fn deliver(shared: Arc<Queue>) {
    let client = match notify_client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("commit statuses: no TLS root certificates ({e}); none is sent");
            return;
        }
    };
    let cfg = &shared.cfg;
    loop {
        let next = shared.pending().queue.pop_front();
        let Some(u) = next else {
            shared.wake.notified().await;
            continue;
        };
        let mut tries = 0u32;
        loop {
            tries += 1;
            let verdict = attempt(&client, cfg, &u).await;
            let (wait, why) = match verdict {
                Verdict::Sent => {
                    shared.outcomes.sent.inc();
                    tracing::debug!(
                        sha = u.sha.as_str(),
                        context = u.context.as_str(),
                        state = u.state.wire(cfg.provider),
                        "commit status set"
                    );
                    break;
                }
                Verdict::Refused(why) => {
                    give_up(&shared, &u, &why);
                    break;
                }
                Verdict::RateLimited(wait) => (wait, format!("rate limited for {}s", wait.as_secs())),
                Verdict::Unavailable(wait, why) => (wait.unwrap_or_else(|| super::backoff(tries)), why),
            };
            if tries >= MAX_ATTEMPTS {
                give_up(&shared, &u, &why);
                break;
            }
            tracing::info!(
                provider = cfg.provider.name(),
                sha = u.sha.as_str(),
                context = u.context.as_str(),
                "commit status not set ({why}); retrying in {}s",
                wait.as_secs_f32()
            );
            tokio::time::sleep(wait).await;
            if shared.pending().has_newer(&u) {
                shared.outcomes.dropped.inc();
                break;
            }
        }
    }
}

fn give_up(shared: &Queue, u: &Update, why: &str) {
    shared.outcomes.failed.inc();
    shared.pending().forget(u);
    tracing::error!(
        provider = shared.cfg.provider.name(),
        repository = shared.cfg.repository.as_str(),
        sha = u.sha.as_str(),
        context = u.context.as_str(),
        "commit status '{}' not set: {why}",
        u.state.wire(shared.cfg.provider)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(provider: Provider, repository: &str) -> CommitStatusConfig {
        CommitStatusConfig {
            provider,
            api_url: Some("https://git.example/".into()),
            repository: repository.into(),
            token_file: PathBuf::from("/t"),
            target_url: Some("https://kgitops.example".into()),
        }
    }

    fn update(sha: &str, state: State, d: &str) -> Update {
        Update {
            sha: sha.into(),
            context: "kgitops/dev".into(),
            state,
            description: d.into(),
        }
    }

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn endpoints_follow_each_providers_documented_path() {
        assert_eq!(
            cfg(Provider::Github, "acme/platform").endpoint(SHA).unwrap(),
            format!("https://git.example/repos/acme/platform/statuses/{SHA}")
        );
        assert_eq!(
            cfg(Provider::Gitea, "acme/platform").endpoint(SHA).unwrap(),
            format!("https://git.example/api/v1/repos/acme/platform/statuses/{SHA}")
        );
        assert_eq!(
            cfg(Provider::Gitlab, "acme/infra/platform-x_1.0")
                .endpoint(SHA)
                .unwrap(),
            format!("https://git.example/api/v4/projects/acme%2Finfra%2Fplatform-x_1.0/statuses/{SHA}")
        );
        assert_eq!(
            cfg(Provider::Gitlab, "42").endpoint(SHA).unwrap(),
            format!("https://git.example/api/v4/projects/42/statuses/{SHA}")
        );
        let mut c = cfg(Provider::Github, "a/b");
        c.api_url = None;
        assert!(
            c.endpoint(SHA)
                .unwrap()
                .starts_with("https://api.github.com/repos/a/b/")
        );
        let mut c = cfg(Provider::Gitea, "a/b");
        c.api_url = None;
        assert!(
            c.check()
                .unwrap_err()
                .to_string()
                .starts_with("commit_status.api_url")
        );
    }

    #[test]
    fn bodies_and_headers_per_provider() {
        let u = update(SHA, State::Failure, "render failed: clusters/dev/a.yaml");
        let b = body(&cfg(Provider::Github, "a/b"), &u);
        assert_eq!(
            b,
            serde_json::json!({"state": "failure", "description": "render failed: clusters/dev/a.yaml",
                "context": "kgitops/dev", "target_url": "https://kgitops.example/status"})
        );
        let b = body(&cfg(Provider::Gitlab, "a/b"), &u);
        assert_eq!(b["state"], "failed");
        assert_eq!(b["name"], "kgitops/dev");
        assert!(b.get("context").is_none());
        let b = body(&cfg(Provider::Gitea, "a/b"), &update(SHA, State::Error, "x"));
        assert_eq!(b["state"], "error");
        assert_eq!(b["context"], "kgitops/dev");
        let mut c = cfg(Provider::Gitea, "a/b");
        c.target_url = Some("https://k.example/status/".into());
        assert_eq!(c.link().as_deref(), Some("https://k.example/status"));
        c.target_url = None;
        assert!(body(&c, &u).get("target_url").is_none());

        let h = |p| headers(p, "tok");
        assert!(h(Provider::Github).contains(&("authorization", "Bearer tok".into())));
        assert!(h(Provider::Github).contains(&("accept", "application/vnd.github+json".into())));
        assert!(h(Provider::Github).contains(&("x-github-api-version", GITHUB_API_VERSION.into())));
        assert!(h(Provider::Gitlab).contains(&("private-token", "tok".into())));
        assert!(!h(Provider::Gitlab).iter().any(|(k, _)| *k == "authorization"));
        assert!(h(Provider::Gitea).contains(&("authorization", "token tok".into())));
        for p in [Provider::Github, Provider::Gitlab, Provider::Gitea] {
            assert!(h(p).contains(&("content-type", "application/json".into())));
            assert!(h(p).iter().any(|(k, _)| *k == "user-agent"));
        }
        for (state, github, gitlab) in [
            (State::Pending, "pending", "pending"),
            (State::Success, "success", "success"),
            (State::Failure, "failure", "failed"),
            (State::Error, "error", "failed"),
        ] {
            assert_eq!(state.wire(Provider::Github), github);
            assert_eq!(state.wire(Provider::Gitea), github);
            assert_eq!(state.wire(Provider::Gitlab), gitlab);
        }
    }

    #[test]
    fn configuration_is_checked() {
        assert!(cfg(Provider::Github, "acme/platform").check().is_ok());
        assert!(cfg(Provider::Gitlab, "group/sub/project").check().is_ok());
        for (p, repo) in [
            (Provider::Github, "platform"),
            (Provider::Github, "a/b/c"),
            (Provider::Gitea, "a/../b"),
            (Provider::Github, "a/b?x"),
            (Provider::Gitlab, "a//b"),
        ] {
            let err = cfg(p, repo).check().unwrap_err().to_string();
            assert!(err.starts_with("commit_status.repository:"), "{repo}: {err}");
        }
        let mut c = cfg(Provider::Github, "a/b");
        c.target_url = Some("kgitops.example".into());
        assert!(
            c.check()
                .unwrap_err()
                .to_string()
                .starts_with("commit_status.target_url")
        );
        c.target_url = None;
        c.api_url = Some("ftp://x".into());
        assert!(
            c.check()
                .unwrap_err()
                .to_string()
                .starts_with("commit_status.api_url")
        );
    }

    #[test]
    fn descriptions_name_the_step_and_subject_only_and_fit_140_characters() {
        assert_eq!(
            failure_description(
                "render",
                "clusters/dev/settings.yaml: yaml: line 4: password: hunter2"
            ),
            "render failed: clusters/dev/settings.yaml"
        );
        assert_eq!(
            failure_description(
                "apply",
                "Secret/ns/creds: dry-run rejected: data.password: Invalid value: \"hunter2\""
            ),
            "apply failed: Secret/ns/creds"
        );
        let long = "x".repeat(300);
        assert_eq!(
            failure_description("apply", &long),
            "apply failed; see the status page"
        );
        let d = truncate(&"é".repeat(200));
        assert_eq!(d.chars().count(), MAX_DESCRIPTION);
        assert!(d.ends_with('…'));
        assert!(is_commit(SHA) && is_commit(&"a".repeat(64)));
        assert!(!is_commit("local:0123456789ab") && !is_commit("main"));
    }

    #[test]
    fn the_queue_deduplicates_and_replaces_the_oldest_update_of_the_same_commit_when_full() {
        let mut p = Pending::new(2);
        assert_eq!(p.offer(update("a", State::Pending, "x")), Offered::Queued);
        assert_eq!(p.offer(update("a", State::Pending, "x")), Offered::Duplicate);
        assert_eq!(p.offer(update("b", State::Pending, "x")), Offered::Queued);
        // Full: the newer state of `a` replaces its queued pending, in place.
        assert_eq!(
            p.offer(update("a", State::Success, "ok")),
            Offered::Replaced(update("a", State::Pending, "x"))
        );
        assert_eq!(p.queue[0], update("a", State::Success, "ok"));
        // Full, nothing of `c` queued: the oldest update goes.
        assert_eq!(
            p.offer(update("c", State::Pending, "x")),
            Offered::Replaced(update("a", State::Success, "ok"))
        );
        // `a`'s success was never sent: offered again, it is accepted.
        p.queue.clear();
        assert_eq!(p.offer(update("a", State::Success, "ok")), Offered::Queued);
        // Same state, new description: a new status; back to an earlier one: a new status too.
        assert_eq!(p.offer(update("a", State::Success, "ok 2")), Offered::Queued);
        p.queue.clear();
        assert_eq!(p.offer(update("a", State::Success, "ok")), Offered::Queued);
        assert!(p.has_newer(&update("a", State::Failure, "")));
        assert!(!p.has_newer(&update("z", State::Failure, "")));
        // What is remembered per context is bounded.
        for i in 0..100 {
            p.remember(&update(&format!("s{i}"), State::Success, ""));
        }
        assert_eq!(p.last["kgitops/dev"].len(), REMEMBERED);
    }

    fn headers_of(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn answers_are_classified_with_the_hosts_rate_limit_headers() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(verdict(201, &headers_of(&[]), b"{}", now), Verdict::Sent);
        // GitHub primary rate limit: 403, remaining 0, reset in 30 s.
        let h = headers_of(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", "1800000030"),
        ]);
        assert_eq!(
            verdict(403, &h, br#"{"message":"API rate limit exceeded"}"#, now),
            Verdict::RateLimited(Duration::from_secs(30))
        );
        // Secondary rate limit with retry-after.
        let h = headers_of(&[("retry-after", "7")]);
        assert_eq!(
            verdict(429, &h, b"", now),
            Verdict::RateLimited(Duration::from_secs(7))
        );
        // GitLab: 429 with RateLimit-Reset.
        let h = headers_of(&[("ratelimit-reset", "1800000005"), ("ratelimit-remaining", "0")]);
        assert_eq!(
            verdict(429, &h, b"", now),
            Verdict::RateLimited(Duration::from_secs(5))
        );
        // A reset in the past still waits a second; no header at all: a minute.
        let h = headers_of(&[("x-ratelimit-reset", "1700000000")]);
        assert_eq!(
            verdict(429, &h, b"", now),
            Verdict::RateLimited(Duration::from_secs(1))
        );
        assert_eq!(
            verdict(429, &headers_of(&[]), b"", now),
            Verdict::RateLimited(DEFAULT_RATE_LIMIT_WAIT)
        );
        assert_eq!(
            verdict(
                403,
                &headers_of(&[]),
                br#"{"message":"You have exceeded a secondary rate limit"}"#,
                now
            ),
            Verdict::RateLimited(DEFAULT_RATE_LIMIT_WAIT)
        );
        // A 403 that is not a rate limit: refused, with the host's message.
        assert_eq!(
            verdict(
                403,
                &headers_of(&[("x-ratelimit-remaining", "4999")]),
                br#"{"message":"Resource not accessible by integration"}"#,
                now
            ),
            Verdict::Refused("HTTP 403: Resource not accessible by integration".into())
        );
        assert_eq!(
            verdict(503, &headers_of(&[("retry-after", "2")]), b"busy", now),
            Verdict::Unavailable(Some(Duration::from_secs(2)), "HTTP 503: busy".into())
        );
        assert_eq!(
            verdict(502, &headers_of(&[]), b"", now),
            Verdict::Unavailable(None, "HTTP 502: ".into())
        );
        assert_eq!(
            verdict(
                400,
                &headers_of(&[]),
                br#"{"message":"Cannot transition status via :enqueue from :pending"}"#,
                now
            ),
            Verdict::Sent
        );
        assert_eq!(
            verdict(
                400,
                &headers_of(&[]),
                br#"{"error":"state does not have a valid value"}"#,
                now
            ),
            Verdict::Refused("HTTP 400: state does not have a valid value".into())
        );
        assert_eq!(
            verdict(401, &headers_of(&[]), br#"{"message":{"error":"x"}}"#, now),
            Verdict::Refused("HTTP 401: {\"error\":\"x\"}".into())
        );
    }

    #[test]
    fn the_token_is_trimmed_and_an_empty_or_missing_file_names_the_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "  s3cret-token\n").unwrap();
        assert_eq!(read_token(&f).unwrap(), "s3cret-token");
        std::fs::write(&f, "\n").unwrap();
        let err = read_token(&f).unwrap_err().to_string();
        assert!(err.contains("token") && err.contains("is empty"), "{err}");
        let err = read_token(&dir.path().join("absent")).unwrap_err().to_string();
        assert!(err.contains("absent") && err.contains("cannot read"), "{err}");
    }

    #[test]
    fn the_reporter_reports_pending_once_and_recovers_only_after_a_failure() {
        let c = cfg(Provider::Github, "a/b");
        let r = Reporter::idle(&c, Outcomes::default(), 1000);
        let shared = r.shared.clone().unwrap();
        let accepted = || {
            let p = shared.pending();
            p.last_for(SHA, "kgitops/dev").map(|(s, d)| (s, d.to_string()))
        };
        r.started("dev", SHA);
        assert_eq!(accepted().unwrap().0, State::Pending);
        r.report("dev", SHA, State::Success, "applied");
        r.started("dev", SHA);
        assert_eq!(accepted().unwrap().0, State::Success, "a retry says nothing new");
        r.recovered("dev", SHA, "matches git again");
        assert_eq!(accepted().unwrap().1, "applied");
        r.failed("dev", SHA, "heal", "Secret/ns/x: forbidden: value hunter2");
        assert_eq!(
            accepted().unwrap(),
            (State::Failure, "heal failed: Secret/ns/x".into())
        );
        r.recovered("dev", SHA, "matches git again");
        assert_eq!(accepted().unwrap(), (State::Success, "matches git again".into()));
        r.failed("dev", SHA, "connect", "https://10.0.0.1: connection refused");
        assert_eq!(accepted().unwrap().0, State::Error);
        // No commit, no status.
        r.report("dev", "local:0123456789ab", State::Success, "x");
        assert!(
            shared
                .pending()
                .last_for("local:0123456789ab", "kgitops/dev")
                .is_none()
        );
        // Unconfigured: nothing at all.
        Reporter::default().report("dev", SHA, State::Success, "x");
    }
}
