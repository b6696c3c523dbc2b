//! Commit statuses (issue 17 part 3) against fakes of the three git hosts' APIs: real HTTP servers
//! on 127.0.0.1 (axum) that check every request against the provider's documented API (method,
//! path, authentication header, content type, body) and refuse anything else with the provider's
//! error shape. The sender is driven through the library (wire formats, rate-limit answers with
//! reset headers, 5xx, a slow host), and the daemon through the binary on the real apiserver
//! (`tests/common`): a commit gets `pending` then `success`, a broken one `failure` with a
//! description, no status is posted twice, and a host that never answers delays no reconcile.

mod common;
mod gitserver;
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/settings_overlay.rs"]
mod settings_overlay;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use gitserver::{BareRemote, WorkRepo};
use http_client::{free_ports, http};
use kgitops::daemon::commit_status::{
    CommitStatusConfig, Outcomes, Provider, Reporter, State as CommitState,
};
use serde_json::{Value, json};
use settings_overlay::write_platform;

const TOKEN: &str = "ghp_s3cret-status-token";
const OWNER: &str = "acme";
const REPO: &str = "platform";
const GITLAB_PROJECT: &str = "infra/kafka/platform";

/// One accepted status.
#[derive(Clone, Debug)]
struct Posted {
    sha: String,
    state: String,
    context: String,
    description: String,
    target_url: Option<String>,
}

/// A canned answer the fake gives instead of accepting (rate limits, 5xx).
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

struct HostState {
    provider: Provider,
    token: Mutex<String>,
    accepted: Mutex<Vec<Posted>>,
    refused: Mutex<Vec<String>>,
    attempts: Mutex<Vec<Instant>>,
    canned: Mutex<VecDeque<Canned>>,
    delay: Mutex<Duration>,
}

/// A fake of one provider's commit status API.
struct FakeHost {
    addr: SocketAddr,
    state: Arc<HostState>,
}

impl FakeHost {
    /// Serves on its own thread and runtime, so blocking test code cannot stall it.
    fn start(provider: Provider) -> FakeHost {
        let state = Arc::new(HostState {
            provider,
            token: Mutex::new(TOKEN.to_string()),
            accepted: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
            attempts: Mutex::new(Vec::new()),
            canned: Mutex::new(VecDeque::new()),
            delay: Mutex::new(Duration::ZERO),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        FakeHost { addr, state }
    }

    fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn accepted(&self) -> Vec<Posted> {
        self.state.accepted.lock().unwrap().clone()
    }

    fn refused(&self) -> Vec<String> {
        self.state.refused.lock().unwrap().clone()
    }

    fn attempts(&self) -> Vec<Instant> {
        self.state.attempts.lock().unwrap().clone()
    }

    fn answer_next(&self, status: u16, headers: Vec<(&'static str, String)>, body: Value) {
        self.state.canned.lock().unwrap().push_back(Canned {
            status,
            headers,
            body,
        });
    }

    fn set_delay(&self, d: Duration) {
        *self.state.delay.lock().unwrap() = d;
    }

    fn set_token(&self, t: &str) {
        *self.state.token.lock().unwrap() = t.to_string();
    }

    /// Waits up to `limit` until `n` statuses were accepted.
    fn wait_accepted(&self, n: usize, limit: Duration) -> Vec<Posted> {
        let start = Instant::now();
        loop {
            let a = self.accepted();
            if a.len() >= n {
                return a;
            }
            assert!(
                start.elapsed() < limit,
                "{n} statuses not accepted within {limit:?}: {a:#?}; refused: {:#?}",
                self.refused()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The provider's error answer, in its documented shape.
fn error(provider: Provider, status: StatusCode, message: &str) -> Response {
    let body = match provider {
        Provider::Github => json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest/commits/statuses#create-a-commit-status",
            "status": status.as_u16().to_string(),
        }),
        // GitLab: `message` for authentication and lookups, `error` for parameter validation.
        Provider::Gitlab if status == StatusCode::BAD_REQUEST => json!({"error": message}),
        Provider::Gitlab => json!({"message": format!("{} {message}", status.as_u16())}),
        Provider::Gitea => json!({"message": message, "url": "http://gitea.invalid/api/swagger"}),
    };
    (status, axum::Json(body)).into_response()
}

fn refuse(st: &HostState, status: StatusCode, message: &str) -> Response {
    st.refused.lock().unwrap().push(format!("{status}: {message}"));
    error(st.provider, status, message)
}

/// The documented path for the provider: the commit's sha, or why the path is not one.
fn check_path(provider: Provider, path: &str) -> Result<String, String> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let sha = match (provider, segments.as_slice()) {
        (Provider::Github, ["repos", o, r, "statuses", sha]) if *o == OWNER && *r == REPO => sha,
        (Provider::Gitea, ["api", "v1", "repos", o, r, "statuses", sha]) if *o == OWNER && *r == REPO => sha,
        // The project path URL-encoded, as GitLab documents: `infra%2Fkafka%2Fplatform`.
        (Provider::Gitlab, ["api", "v4", "projects", id, "statuses", sha])
            if *id == GITLAB_PROJECT.replace('/', "%2F") =>
        {
            sha
        }
        _ => return Err(format!("no such route: {path}")),
    };
    if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("not a commit sha: {sha}"));
    }
    Ok(sha.to_string())
}

/// Checks the authentication and other headers the provider documents.
fn check_headers(st: &HostState, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let token = st.token.lock().unwrap().clone();
    let unauthorized = |m: &str| Err((StatusCode::UNAUTHORIZED, m.to_string()));
    match st.provider {
        Provider::Github => {
            if h("authorization") != format!("Bearer {token}") {
                return unauthorized("Bad credentials");
            }
            if h("user-agent").is_empty() {
                return Err((
                    StatusCode::FORBIDDEN,
                    "Request forbidden by administrative rules. Please make sure your request has a User-Agent header".into(),
                ));
            }
            if h("accept") != "application/vnd.github+json" {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("unexpected Accept: {}", h("accept")),
                ));
            }
            if h("x-github-api-version") != "2022-11-28" {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Unsupported 'X-GitHub-Api-Version': {}",
                        h("x-github-api-version")
                    ),
                ));
            }
        }
        Provider::Gitlab => {
            if h("private-token") != token || headers.contains_key("authorization") {
                return unauthorized("Unauthorized");
            }
        }
        Provider::Gitea => {
            if h("authorization") != format!("token {token}") {
                return unauthorized("token is required");
            }
        }
    }
    if !h("content-type").starts_with("application/json") {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {}", h("content-type")),
        ));
    }
    Ok(())
}

/// Checks the body against the provider's documented parameters.
fn check_body(provider: Provider, body: &[u8]) -> Result<Posted, (StatusCode, String)> {
    let invalid = |m: String| {
        let status = match provider {
            Provider::Gitlab => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        Err((status, m))
    };
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Err((StatusCode::BAD_REQUEST, "Problems parsing JSON".into()));
    };
    let (states, context_key): (&[&str], &str) = match provider {
        Provider::Github => (&["error", "failure", "pending", "success"], "context"),
        Provider::Gitlab => (&["pending", "running", "success", "failed", "canceled"], "name"),
        Provider::Gitea => (&["pending", "success", "error", "failure", "warning"], "context"),
    };
    for key in map.keys() {
        if !["state", "target_url", "description", context_key].contains(&key.as_str()) {
            return invalid(format!("unexpected parameter {key}"));
        }
    }
    let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_string);
    let Some(state) = text("state").filter(|s| states.contains(&s.as_str())) else {
        return invalid("state does not have a valid value".into());
    };
    let Some(context) = text(context_key) else {
        return invalid(format!("{context_key} is missing"));
    };
    let description = text("description").unwrap_or_default();
    if description.chars().count() > 140 {
        return invalid("description is too long (maximum is 140 characters)".into());
    }
    if map.get("target_url").is_some_and(|v| !v.is_string()) {
        return invalid("target_url must be a string".into());
    }
    Ok(Posted {
        sha: String::new(),
        state,
        context,
        description,
        target_url: text("target_url"),
    })
}

async fn handle(
    State(st): State<Arc<HostState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    st.attempts.lock().unwrap().push(Instant::now());
    let delay = *st.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let sha = match check_path(st.provider, uri.path()) {
        Ok(sha) if method == Method::POST => sha,
        Ok(_) => {
            return refuse(
                &st,
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{method} not allowed"),
            );
        }
        Err(e) => return refuse(&st, StatusCode::NOT_FOUND, &e),
    };
    if let Err((status, m)) = check_headers(&st, &headers) {
        return refuse(&st, status, &m);
    }
    let mut posted = match check_body(st.provider, &body) {
        Ok(p) => p,
        Err((status, m)) => return refuse(&st, status, &m),
    };
    let canned = st.canned.lock().unwrap().pop_front();
    if let Some(c) = canned {
        let mut response = (StatusCode::from_u16(c.status).unwrap(), axum::Json(c.body)).into_response();
        for (k, v) in c.headers {
            response.headers_mut().insert(k, v.parse().unwrap());
        }
        return response;
    }
    posted.sha = sha.clone();
    st.accepted.lock().unwrap().push(posted.clone());
    let answer = json!({
        "id": 1,
        "sha": sha,
        "state": posted.state,
        "status": posted.state,
        "context": posted.context,
        "name": posted.context,
        "description": posted.description,
        "target_url": posted.target_url,
    });
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

fn repository(provider: Provider) -> String {
    match provider {
        Provider::Gitlab => GITLAB_PROJECT.to_string(),
        _ => format!("{OWNER}/{REPO}"),
    }
}

/// A configuration for `host`, its token in a file under `dir`.
fn config(host: &FakeHost, dir: &Path) -> CommitStatusConfig {
    let token_file = dir.join("status-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    CommitStatusConfig {
        provider: host.state.provider,
        api_url: Some(host.api_url()),
        repository: repository(host.state.provider),
        token_file,
        target_url: Some("https://kgitops.example.com/".into()),
    }
}

const SHA: &str = "3f786850e387550fdab836ed7e6dc881de23001b";
const SHA2: &str = "89e6c98d92887913cadf06b2adb97f26cde4849b";

fn wait_counter(c: &prometheus_client::metrics::counter::Counter, n: u64, limit: Duration) {
    let start = Instant::now();
    while c.get() < n {
        assert!(
            start.elapsed() < limit,
            "counter at {} after {limit:?}, want {n}",
            c.get()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_provider_gets_the_documented_request_and_nothing_twice() {
    for provider in [Provider::Github, Provider::Gitlab, Provider::Gitea] {
        let tmp = tempfile::tempdir().unwrap();
        let host = FakeHost::start(provider);
        let outcomes = Outcomes::default();
        let reporter = Reporter::start(Some(&config(&host, tmp.path())), outcomes.clone());
        reporter.started("dev", SHA);
        reporter.started("dev", SHA);
        reporter.report(
            "dev",
            SHA,
            CommitState::Success,
            "applied: 2 changed, 3 unchanged",
        );
        reporter.report(
            "dev",
            SHA,
            CommitState::Success,
            "applied: 2 changed, 3 unchanged",
        );
        reporter.failed(
            "prod",
            SHA2,
            "render",
            "clusters/prod/creds.yaml: yaml: line 3: password: hunter2",
        );
        let accepted = tokio::task::spawn_blocking({
            let host_accepted = host.state.clone();
            move || {
                let start = Instant::now();
                loop {
                    let a = host_accepted.accepted.lock().unwrap().clone();
                    if a.len() >= 3 || start.elapsed() > Duration::from_secs(10) {
                        return a;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
        .await
        .unwrap();
        assert!(host.refused().is_empty(), "{provider:?}: {:#?}", host.refused());
        let seen: Vec<(String, String, String, String)> = accepted
            .iter()
            .map(|p| {
                (
                    p.sha.clone(),
                    p.context.clone(),
                    p.state.clone(),
                    p.description.clone(),
                )
            })
            .collect();
        let failure = if provider == Provider::Gitlab {
            "failed"
        } else {
            "failure"
        };
        assert_eq!(
            seen,
            vec![
                (
                    SHA.into(),
                    "kgitops/dev".into(),
                    "pending".into(),
                    "applying revision to dev".into()
                ),
                (
                    SHA.into(),
                    "kgitops/dev".into(),
                    "success".into(),
                    "applied: 2 changed, 3 unchanged".into()
                ),
                (
                    SHA2.into(),
                    "kgitops/prod".into(),
                    failure.into(),
                    "render failed: clusters/prod/creds.yaml".into()
                ),
            ],
            "{provider:?}"
        );
        for p in &accepted {
            assert_eq!(
                p.target_url.as_deref(),
                Some("https://kgitops.example.com/status")
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(host.accepted().len(), 3, "{provider:?}: a status was sent twice");
        assert_eq!(
            (outcomes.sent.get(), outcomes.failed.get(), outcomes.dropped.get()),
            (3, 0, 0)
        );
    }
}

#[test]
fn rate_limits_and_5xx_are_waited_out_as_each_host_asks() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let now = || jiff::Timestamp::now().as_second();

    // GitHub: the primary rate limit (403, remaining 0, reset in 2 s), then a secondary one (429
    // with Retry-After: 1), then accepted.
    let tmp = tempfile::tempdir().unwrap();
    let host = FakeHost::start(Provider::Github);
    host.answer_next(
        403,
        vec![
            ("x-ratelimit-limit", "5000".into()),
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", (now() + 2).to_string()),
        ],
        json!({"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
    );
    host.answer_next(
        429,
        vec![("retry-after", "1".into())],
        json!({"message": "You have exceeded a secondary rate limit."}),
    );
    let outcomes = Outcomes::default();
    let _r = rt.block_on(async {
        let r = Reporter::start(Some(&config(&host, tmp.path())), outcomes.clone());
        r.report("dev", SHA, CommitState::Success, "applied");
        r
    });
    host.wait_accepted(1, Duration::from_secs(20));
    let t = host.attempts();
    assert_eq!(t.len(), 3, "{t:?}");
    assert!(
        t[1] - t[0] >= Duration::from_millis(900),
        "reset not waited for: {:?}",
        t[1] - t[0]
    );
    assert!(
        t[2] - t[1] >= Duration::from_millis(950),
        "retry-after not honoured: {:?}",
        t[2] - t[1]
    );
    assert_eq!((outcomes.sent.get(), outcomes.failed.get()), (1, 0));

    // GitLab: 429 with RateLimit-Reset, then 502, then accepted.
    let host = FakeHost::start(Provider::Gitlab);
    host.answer_next(
        429,
        vec![
            ("ratelimit-remaining", "0".into()),
            ("ratelimit-reset", (now() + 2).to_string()),
            ("ratelimit-resettime", "Tue, 08 Dec 2026 00:00:00 GMT".into()),
        ],
        json!({"message": "Retry later"}),
    );
    host.answer_next(502, vec![], json!({"message": "502 Bad Gateway"}));
    let outcomes = Outcomes::default();
    let _r = rt.block_on(async {
        let r = Reporter::start(Some(&config(&host, tmp.path())), outcomes.clone());
        r.report("dev", SHA, CommitState::Failure, "apply failed: Service/ns/web");
        r
    });
    let accepted = host.wait_accepted(1, Duration::from_secs(20));
    assert_eq!(accepted[0].state, "failed");
    let t = host.attempts();
    assert_eq!(t.len(), 3, "{t:?}");
    assert!(t[1] - t[0] >= Duration::from_millis(900), "{:?}", t[1] - t[0]);
    assert!(
        t[2] - t[1] >= Duration::from_millis(900),
        "5xx not backed off: {:?}",
        t[2] - t[1]
    );

    // Gitea: 503 twice (backoff 1 s, then 2 s), then accepted; a newer update queued meanwhile
    // follows it.
    let host = FakeHost::start(Provider::Gitea);
    host.answer_next(503, vec![], json!({"message": "unavailable", "url": "x"}));
    host.answer_next(503, vec![], json!({"message": "unavailable", "url": "x"}));
    let outcomes = Outcomes::default();
    let _r = rt.block_on(async {
        let r = Reporter::start(Some(&config(&host, tmp.path())), outcomes.clone());
        r.report("dev", SHA, CommitState::Pending, "applying revision to dev");
        r
    });
    let accepted = host.wait_accepted(1, Duration::from_secs(20));
    let t = host.attempts();
    assert!(
        t[2] - t[1] >= Duration::from_millis(1900),
        "backoff does not grow: {:?}",
        t[2] - t[1]
    );
    assert_eq!(accepted[0].state, "pending");
    assert_eq!((outcomes.sent.get(), outcomes.failed.get()), (1, 0));
}

#[test]
fn a_refused_status_is_not_retried_and_a_rotated_token_is_used_at_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let host = FakeHost::start(Provider::Github);
    let cfg = config(&host, tmp.path());
    host.set_token("rotated-token");
    let outcomes = Outcomes::default();
    let r = rt.block_on(async { Reporter::start(Some(&cfg), outcomes.clone()) });
    r.report("dev", SHA, CommitState::Success, "applied");
    wait_counter(&outcomes.failed, 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(host.attempts().len(), 1, "a 401 was retried");
    assert_eq!(
        host.refused(),
        vec!["401 Unauthorized: Bad credentials".to_string()]
    );

    // The Secret is rotated: the next update uses the new token; the one refused is accepted
    // again (it was never set).
    std::fs::write(&cfg.token_file, "rotated-token\n").unwrap();
    r.report("dev", SHA, CommitState::Success, "applied");
    let accepted = host.wait_accepted(1, Duration::from_secs(10));
    assert_eq!(accepted[0].state, "success");
    assert_eq!(outcomes.sent.get(), 1);
}

#[test]
fn a_slow_host_never_delays_the_caller_and_only_the_newest_state_waits() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let host = FakeHost::start(Provider::Github);
    host.set_delay(Duration::from_secs(3));
    let outcomes = Outcomes::default();
    let r =
        rt.block_on(async { Reporter::with_capacity(Some(&config(&host, tmp.path())), outcomes.clone(), 4) });
    let start = Instant::now();
    let sha = |i: usize| format!("{i:040x}");
    for i in 0..200 {
        r.started("dev", &sha(i));
        r.report("dev", &sha(i), CommitState::Success, "applied");
    }
    let took = start.elapsed();
    assert!(took < Duration::from_millis(200), "400 reports took {took:?}");
    // All but the queue's worth (and the one in flight) are dropped, not waited for.
    assert!(
        outcomes.dropped.get() >= 390,
        "dropped {}",
        outcomes.dropped.get()
    );
    // While the first request hangs, a commit's later state replaces its earlier one in the full
    // queue: the newest state of the last commit is what is sent for it.
    host.set_delay(Duration::ZERO);
    let accepted = host.wait_accepted(4, Duration::from_secs(20));
    let last = accepted
        .iter()
        .rfind(|p| p.sha == sha(199))
        .expect("the last commit is reported");
    assert_eq!(last.state, "success");
    drop(r);
}

// ---- the daemon, through the binary, on the real apiserver ----

struct ChildDaemon {
    child: std::process::Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl ChildDaemon {
    fn start(dir: &Path, remote: &BareRemote, host: &FakeHost) -> ChildDaemon {
        ChildDaemon::start_with(dir, remote, host, "")
    }

    /// [`ChildDaemon::start`] with `cluster_extra` lines under the cluster.
    fn start_with(dir: &Path, remote: &BareRemote, host: &FakeHost, cluster_extra: &str) -> ChildDaemon {
        let (port, status_port) = free_ports();
        std::fs::write(dir.join("status-token"), format!("{TOKEN}\n")).unwrap();
        let config = format!(
            "source:\n  url: {}\n  interval: 1s\nclusters:\n  - name: dev\n    kubeconfig: {}\n{cluster_extra}\
             server:\n  listen: 127.0.0.1:{port}\n  status_listen: 127.0.0.1:{status_port}\n\
             cache_dir: {}\n\
             commit_status:\n  provider: github\n  api_url: {}\n  repository: {OWNER}/{REPO}\n  \
             token_file: status-token\n  target_url: http://kgitops.test\n",
            remote.file_url(),
            common::control_plane().kubeconfig().display(),
            dir.join("cache").display(),
            host.api_url(),
        );
        let file = dir.join("kgitops.yaml");
        std::fs::write(&file, config).unwrap();
        let log = dir.join("log.txt");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_kgitops"))
            .args(["run", "--config"])
            .arg(&file)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        ChildDaemon {
            child,
            addr: format!("127.0.0.1:{status_port}").parse().unwrap(),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn cluster(&self) -> Option<Value> {
        std::net::TcpStream::connect(self.addr).ok()?;
        let (code, body) = http(self.addr, "GET", "/status", &[], b"");
        (code == 200)
            .then(|| serde_json::from_str::<Value>(&body).ok())?
            .map(|s| s["clusters"][0].clone())
    }

    /// Waits until `check` holds for the cluster's status; fails with the status and log.
    fn wait(&self, what: &str, limit: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(c) = self.cluster()
                && check(&c)
            {
                return c;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}; status: {:#?}\nlog:\n{}",
                self.cluster(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn metrics(&self) -> String {
        http(self.addr, "GET", "/metrics", &[], b"").1
    }
}

impl Drop for ChildDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn test_namespace(prefix: &str) -> String {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { common::namespace(prefix).await.name })
}

/// The statuses the host accepted for `sha`, as (state, description).
fn statuses_of(host: &FakeHost, sha: &str) -> Vec<(String, String)> {
    host.accepted()
        .into_iter()
        .filter(|p| p.sha == sha)
        .map(|p| (p.state, p.description))
        .collect()
}

#[test]
fn the_daemon_sets_pending_then_success_and_failure_on_a_broken_commit_never_twice() {
    let ns = test_namespace("commit-status");
    let tmp = tempfile::tempdir().unwrap();
    let work = WorkRepo::init(&tmp.path().join("work"));
    write_platform(&work, &ns, "1");
    let c1 = work.commit("platform");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let host = FakeHost::start(Provider::Github);
    let d = ChildDaemon::start(tmp.path(), &remote, &host);

    d.wait("c1 applied", Duration::from_secs(60), |c| {
        c["applied_revision"] == c1.as_str()
    });
    host.wait_accepted(2, Duration::from_secs(10));
    let s1 = statuses_of(&host, &c1);
    assert_eq!(
        s1[0],
        ("pending".to_string(), "applying revision to dev".to_string())
    );
    assert_eq!(s1[1].0, "success", "{s1:?}");
    assert!(s1[1].1.starts_with("applied: "), "{s1:?}");
    let p = &host.accepted()[0];
    assert_eq!(p.context, "kgitops/dev");
    assert_eq!(p.target_url.as_deref(), Some("http://kgitops.test/status"));

    // A commit that does not render: failure, naming the file, not its content.
    work.write(
        "clusters/dev/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n",
    );
    let c2 = work.commit("broken");
    remote.push(&work, "main");
    d.wait("c2 failed", Duration::from_secs(30), |c| {
        c["last_result"]["result"] == "failed" && c["last_result"]["revision"] == c2.as_str()
    });
    let start = Instant::now();
    while statuses_of(&host, &c2).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no status on {c2}: {:#?}",
            host.accepted()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        statuses_of(&host, &c2),
        vec![(
            "failure".to_string(),
            "render failed: clusters/dev/settings.yaml".to_string()
        )]
    );

    // A fixed commit: pending, then success. The daemon polls every second meanwhile: nothing
    // is posted again.
    write_platform(&work, &ns, "3");
    let c3 = work.commit("fixed");
    remote.push(&work, "main");
    d.wait("c3 applied", Duration::from_secs(30), |c| {
        c["applied_revision"] == c3.as_str()
    });
    std::thread::sleep(Duration::from_secs(3));
    let s3 = statuses_of(&host, &c3);
    assert_eq!(s3.len(), 2, "{s3:?}");
    assert_eq!((s3[0].0.as_str(), s3[1].0.as_str()), ("pending", "success"));
    let all = host.accepted();
    assert_eq!(all.len(), 5, "{all:#?}");
    assert_eq!(statuses_of(&host, &c1).len(), 2, "c1 got another status");
    assert!(host.refused().is_empty(), "{:#?}", host.refused());
    let metrics = d.metrics();
    assert!(
        metrics.contains("kgitops_commit_status_total{result=\"sent\"} 5"),
        "{metrics}"
    );
    let log = d.log();
    assert!(!log.contains(TOKEN), "the token is logged:\n{log}");
}

#[test]
fn a_git_host_that_never_answers_delays_no_reconcile() {
    let ns = test_namespace("commit-status-slow");
    let tmp = tempfile::tempdir().unwrap();
    let work = WorkRepo::init(&tmp.path().join("work"));
    write_platform(&work, &ns, "1");
    let c1 = work.commit("platform");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let host = FakeHost::start(Provider::Github);
    // Longer than any timeout: every request hangs.
    host.set_delay(Duration::from_secs(600));
    let d = ChildDaemon::start(tmp.path(), &remote, &host);
    let start = Instant::now();
    d.wait("c1 applied", Duration::from_secs(60), |c| {
        c["applied_revision"] == c1.as_str()
    });
    for (i, a) in ["2", "3"].into_iter().enumerate() {
        write_platform(&work, &ns, a);
        let c = work.commit(&format!("a: {a}"));
        remote.push(&work, "main");
        let pushed = Instant::now();
        d.wait(&format!("commit {i} applied"), Duration::from_secs(20), |s| {
            s["applied_revision"] == c.as_str()
        });
        assert!(
            pushed.elapsed() < Duration::from_secs(15),
            "applying took {:?} while the git host hangs",
            pushed.elapsed()
        );
    }
    assert!(host.accepted().is_empty());
    assert!(
        !host.attempts().is_empty(),
        "no status was attempted within {:?}",
        start.elapsed()
    );
}

/// Waits until the host accepted `n` statuses for `sha`; returns them as (state, description).
fn wait_statuses_of(host: &FakeHost, sha: &str, n: usize) -> Vec<(String, String)> {
    let start = Instant::now();
    loop {
        let s = statuses_of(host, sha);
        if s.len() >= n {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{n} statuses on {sha} not accepted: {:#?}",
            host.accepted()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn drift_left_in_alert_mode_fails_the_applied_commit_until_it_is_gone() {
    let ns = test_namespace("commit-status-drift");
    let tmp = tempfile::tempdir().unwrap();
    let work = WorkRepo::init(&tmp.path().join("work"));
    write_platform(&work, &ns, "1");
    let c1 = work.commit("platform");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let host = FakeHost::start(Provider::Github);
    let d = ChildDaemon::start_with(tmp.path(), &remote, &host, "    drift: alert\n");
    d.wait("c1 applied", Duration::from_secs(60), |c| {
        c["applied_revision"] == c1.as_str()
    });
    wait_statuses_of(&host, &c1, 2);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let edit = |value: &'static str| {
        let ns = ns.clone();
        rt.block_on(async move {
            use kube::api::{Api, Patch, PatchParams};
            let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
                Api::namespaced(common::client().await, &ns);
            let params = PatchParams {
                field_manager: Some("kubectl-patch".into()),
                ..PatchParams::default()
            };
            api.patch("settings", &params, &Patch::Merge(json!({"data": {"a": value}})))
                .await
                .unwrap();
        })
    };
    edit("by-hand");
    let s = wait_statuses_of(&host, &c1, 3);
    assert_eq!(
        s[2],
        (
            "failure".to_string(),
            "drift: 1 object(s) differ from git (alert mode)".to_string()
        )
    );
    // Put back by hand: the commit is live again.
    edit("1");
    let s = wait_statuses_of(&host, &c1, 4);
    assert_eq!(
        s[3],
        (
            "success".to_string(),
            "applied; live state matches git again".to_string()
        )
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(statuses_of(&host, &c1).len(), 4, "{:#?}", host.accepted());
    assert!(host.refused().is_empty(), "{:#?}", host.refused());
}

/// Sets the live Kafka `main`'s `status.kafkaMetadataState`, as the Strimzi operator would.
fn set_metadata_state(ns: &str, state: &str) {
    use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let gvk = GroupVersionKind::gvk("kafka.strimzi.io", "v1beta2", "Kafka");
        let api: Api<DynamicObject> =
            Api::namespaced_with(common::client().await, ns, &ApiResource::from_gvk(&gvk));
        let patch = json!({"status": {"kafkaMetadataState": state, "observedGeneration": 1}});
        api.patch_status("main", &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap_or_else(|e| panic!("Kafka/{ns}/main status: {e}"));
    });
}

#[test]
fn a_revision_waiting_on_a_gate_fails_until_the_live_state_allows_it() {
    let ns = test_namespace("commit-status-gate");
    let tmp = tempfile::tempdir().unwrap();
    let fixture =
        std::fs::read_to_string(common::repo_root().join("tests/fixtures/migration-gates/zookeeper.yaml"))
            .unwrap()
            .replace("NS", &ns);
    let work = WorkRepo::init(&tmp.path().join("work"));
    work.write(
        "clusters/dev/kustomization.yaml",
        "resources:\n  - platform.yaml\n",
    )
    .write("clusters/dev/platform.yaml", &fixture);
    let c1 = work.commit("zookeeper platform");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let host = FakeHost::start(Provider::Github);
    let d = ChildDaemon::start(tmp.path(), &remote, &host);
    d.wait("c1 applied", Duration::from_secs(60), |c| {
        c["applied_revision"] == c1.as_str()
    });
    wait_statuses_of(&host, &c1, 2);
    set_metadata_state(&ns, "KRaftMigration");

    // `strimzi.io/kraft: enabled` before post-migration: the revision waits, nothing applied.
    let enabled = fixture.replacen(
        "  name: main\n",
        "  name: main\n  annotations: {strimzi.io/kraft: enabled}\n",
        1,
    );
    work.write("clusters/dev/platform.yaml", &enabled);
    let c2 = work.commit("kraft: enabled");
    remote.push(&work, "main");
    d.wait("c2 waiting", Duration::from_secs(30), |c| {
        c["last_result"]["result"] == "waiting" && c["last_result"]["revision"] == c2.as_str()
    });
    let s2 = wait_statuses_of(&host, &c2, 2);
    assert_eq!(s2[0].0, "pending");
    assert_eq!(
        s2[1],
        (
            "failure".to_string(),
            format!("waiting for live state of Kafka/{ns}/main; nothing applied")
        )
    );

    // The operator reaches post-migration: the daemon applies the waiting revision by itself.
    set_metadata_state(&ns, "KRaftPostMigration");
    d.wait("c2 applied", Duration::from_secs(30), |c| {
        c["applied_revision"] == c2.as_str()
    });
    let s2 = wait_statuses_of(&host, &c2, 3);
    assert_eq!(s2[2].0, "success", "{s2:?}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(statuses_of(&host, &c2).len(), 3, "{:#?}", host.accepted());
    assert!(host.refused().is_empty(), "{:#?}", host.refused());
}
