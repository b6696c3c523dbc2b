//! `kgitops run` against real parts: git remotes on disk (`file://`) and over smart HTTP with a
//! token, the real control plane with the Strimzi CRDs, the daemon's HTTP endpoints over real
//! sockets on 127.0.0.1, alerts received by a real HTTP server, drift made by another field manager,
//! and the binary itself stopped by SIGTERM.

mod common;
mod gitserver;
#[path = "support/http_client.rs"]
mod http_client;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gitserver::http::{GitHttpServer, served_root};
use gitserver::{BareRemote, WorkRepo};
use http_client::http;
use k8s_openapi::api::core::v1::ConfigMap;
use kgitops::daemon::webhook::github_signature;
use kgitops::daemon::{Config, Daemon};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const SECRET_VALUE: &str = "hunter2-plain-secret";
const WEBHOOK_SECRET: &str = "webhook-s3cret";

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || http(addr, "GET", &path, &[], b""))
        .await
        .unwrap()
}

async fn status(addr: SocketAddr) -> Value {
    let (code, body) = get(addr, "/status").await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"))
}

async fn cluster_status(addr: SocketAddr) -> Value {
    status(addr).await["clusters"][0].clone()
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout` with `what` and the
/// daemon's status.
async fn wait_for<T, F, Fut>(addr: SocketAddr, timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > timeout {
            let s = status(addr).await;
            panic!("timed out after {timeout:?} waiting for {what}; status:\n{s:#}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_applied(addr: SocketAddr, revision: &str) {
    wait_for(
        addr,
        Duration::from_secs(60),
        &format!("revision {revision} applied"),
        || async {
            let c = cluster_status(addr).await;
            (c["applied_revision"] == revision && c["synced"] == true).then_some(())
        },
    )
    .await
}

/// A work repository with `clusters/dev` (a ConfigMap `settings` with `a: <a>` and a Secret) in
/// namespace `ns`, committed.
fn platform_repo(dir: &Path, ns: &str, a: &str) -> WorkRepo {
    let work = WorkRepo::init(dir);
    write_platform(&work, ns, a);
    work.commit("platform");
    work
}

fn write_platform(work: &WorkRepo, ns: &str, a: &str) {
    work.write(
        "clusters/dev/kustomization.yaml",
        &format!("namespace: {ns}\nresources:\n  - settings.yaml\n  - creds.yaml\n"),
    )
    .write(
        "clusters/dev/settings.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"{a}\"\n  b: keep\n"),
    )
    .write(
        "clusters/dev/creds.yaml",
        &format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: {SECRET_VALUE}\n"),
    );
}

/// The daemon configuration for one cluster `dev` on the test control plane.
fn config_text(source: &str, extra_cluster: &str, extra: &str) -> String {
    let kubeconfig = common::control_plane().kubeconfig().display().to_string();
    format!(
        "source:\n{source}\nclusters:\n  - name: dev\n    kubeconfig: {kubeconfig}\n{extra_cluster}\
         server:\n  listen: 127.0.0.1:0\n  webhook_secret_file: webhook-secret\n{extra}"
    )
}

struct Running {
    addr: SocketAddr,
    token: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), kgitops::daemon::DaemonError>>,
}

impl Running {
    async fn stop(self) {
        self.token.cancel();
        let result = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("daemon stops within 10 s")
            .unwrap();
        result.unwrap();
    }
}

/// Starts the daemon in this process with `text` as configuration (paths relative to `dir`).
async fn start(dir: &Path, text: &str) -> Running {
    std::fs::write(dir.join("webhook-secret"), format!("{WEBHOOK_SECRET}\n")).unwrap();
    let mut text = text.to_string();
    if !text.contains("cache_dir") {
        text.push_str(&format!("cache_dir: {}\n", dir.join("cache").display()));
    }
    let config =
        Config::parse(&text, &dir.join("kgitops.yaml"), dir).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let daemon = Daemon::bind(config).await.unwrap();
    let addr = daemon.local_addr();
    let token = CancellationToken::new();
    let task = tokio::spawn(daemon.run(token.clone()));
    Running { addr, token, task }
}

fn push_event(branch: &str) -> Vec<u8> {
    json!({"ref": format!("refs/heads/{branch}"), "after": "0000"})
        .to_string()
        .into_bytes()
}

async fn post_webhook(
    addr: SocketAddr,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        http(addr, "POST", "/webhook", &h, &body)
    })
    .await
    .unwrap()
}

async fn settings(ns: &str) -> Option<ConfigMap> {
    let api: Api<ConfigMap> = Api::namespaced(common::client().await, ns);
    api.get_opt("settings").await.unwrap()
}

async fn settings_a(ns: &str) -> Option<String> {
    settings(ns)
        .await
        .and_then(|cm| cm.data)
        .and_then(|d| d.get("a").cloned())
}

/// Changes `data.a` of `settings` as another field manager would (`kubectl patch`).
async fn hand_edit(ns: &str, value: &str) {
    let api: Api<ConfigMap> = Api::namespaced(common::client().await, ns);
    let params = PatchParams {
        field_manager: Some("kubectl-patch".into()),
        ..PatchParams::default()
    };
    api.patch("settings", &params, &Patch::Merge(json!({"data": {"a": value}})))
        .await
        .unwrap();
}

fn assert_no_secret(what: &str, text: &str) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET_VALUE);
    assert!(
        !text.contains(SECRET_VALUE) && !text.contains(&b64),
        "{what} shows the Secret's value:\n{text}"
    );
}

/// Receives alerts: every POST body, parsed as JSON.
struct AlertSink {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
}

impl AlertSink {
    fn start() -> AlertSink {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for mut request in server.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                if let Ok(v) = serde_json::from_str(&body) {
                    sink.lock().unwrap().push(v);
                }
                let _ = request.respond(tiny_http::Response::empty(200));
            }
        });
        AlertSink {
            url: format!("http://127.0.0.1:{port}/hook/secret-token"),
            received,
        }
    }

    fn alerts(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_webhook_apply_the_new_commit_and_every_endpoint_says_so() {
    let ns = common::namespace("daemon-push").await;
    let tmp = tempfile::tempdir().unwrap();
    let work = platform_repo(&tmp.path().join("work"), &ns.name, "1");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let c1 = work.head();
    // A long interval: only the webhook can make the daemon see the second commit quickly.
    let source = format!("  url: {}\n  branch: main\n  interval: 1h", remote.file_url());
    let d = start(tmp.path(), &config_text(&source, "", "")).await;

    assert_eq!(get(d.addr, "/healthz").await, (200, "ok\n".to_string()));
    wait_applied(d.addr, &c1).await;
    assert_eq!(settings_a(&ns.name).await.as_deref(), Some("1"));
    assert_eq!(get(d.addr, "/readyz").await.0, 200);

    write_platform(&work, &ns.name, "2");
    let c2 = work.commit("a: 2");
    remote.push(&work, "main");

    // Wrong signature: 401, nothing fetched.
    let body = push_event("main");
    let bad = vec![
        ("X-GitHub-Event", "push".to_string()),
        ("X-Hub-Signature-256", github_signature(b"wrong", &body)),
    ];
    assert_eq!(post_webhook(d.addr, bad, body.clone()).await.0, 401);
    let missing = vec![("X-GitHub-Event", "push".to_string())];
    assert_eq!(post_webhook(d.addr, missing, body.clone()).await.0, 401);
    let gitlab_bad = vec![
        ("X-Gitlab-Event", "Push Hook".to_string()),
        ("X-Gitlab-Token", "nope".to_string()),
    ];
    assert_eq!(post_webhook(d.addr, gitlab_bad, body.clone()).await.0, 401);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(cluster_status(d.addr).await["applied_revision"], c1.as_str());
    assert_eq!(settings_a(&ns.name).await.as_deref(), Some("1"));

    // Right signature: fetched and applied at once.
    let good = vec![
        ("X-GitHub-Event", "push".to_string()),
        (
            "X-Hub-Signature-256",
            github_signature(WEBHOOK_SECRET.as_bytes(), &body),
        ),
        ("Content-Type", "application/json".to_string()),
    ];
    let (code, text) = post_webhook(d.addr, good, body).await;
    assert_eq!(code, 202, "{text}");
    wait_applied(d.addr, &c2).await;
    assert_eq!(settings_a(&ns.name).await.as_deref(), Some("2"));

    let s = status(d.addr).await;
    assert_eq!(s["source"]["revision"], c2.as_str());
    assert_eq!(s["leader"], true);
    let c = &s["clusters"][0];
    assert_eq!(c["last_result"]["result"], "applied");
    assert!(
        c["last_changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == &json!(format!("ConfigMap/{}/settings configured", ns.name))),
        "{c:#}"
    );
    assert_no_secret("/status", &s.to_string());

    let (code, html) = get(d.addr, "/status?format=html").await;
    assert_eq!(code, 200);
    assert!(
        html.contains("<table>") && html.contains(&c2[..12]) && html.contains("synced"),
        "{html}"
    );
    assert_no_secret("/status html", &html);

    let (code, metrics) = get(d.addr, "/metrics").await;
    assert_eq!(code, 200);
    for expected in [
        format!("kgitops_applied_revision_info{{cluster=\"dev\",revision=\"{c2}\"}} 1"),
        "kgitops_reconcile_total{cluster=\"dev\",result=\"applied\"} 2".to_string(),
        "kgitops_reconcile_duration_seconds_count{cluster=\"dev\"}".to_string(),
        "kgitops_drift_objects{cluster=\"dev\"} 0".to_string(),
        "kgitops_webhook_requests_total{result=\"unauthorized\"} 3".to_string(),
        "kgitops_webhook_requests_total{result=\"accepted\"} 1".to_string(),
    ] {
        assert!(
            metrics.contains(&expected),
            "{expected} missing in /metrics:\n{metrics}"
        );
    }
    assert!(
        !metrics.contains(&format!("revision=\"{c1}\"")),
        "old revision still exported:\n{metrics}"
    );
    assert_no_secret("/metrics", &metrics);

    // A push to another branch is authentic but ignored.
    let other = push_event("feature");
    let headers = vec![
        ("X-Gitlab-Event", "Push Hook".to_string()),
        ("X-Gitlab-Token", WEBHOOK_SECRET.to_string()),
    ];
    let (code, text) = post_webhook(d.addr, headers, other).await;
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("ignored"), "{text}");

    // A commit that does not change this cluster's render: its revision is live without a write.
    work.write("README.md", "docs only\n");
    let c3 = work.commit("docs");
    remote.push(&work, "main");
    let body = push_event("main");
    let good = vec![
        ("X-GitHub-Event", "push".to_string()),
        (
            "X-Hub-Signature-256",
            github_signature(WEBHOOK_SECRET.as_bytes(), &body),
        ),
    ];
    assert_eq!(post_webhook(d.addr, good, body).await.0, 202);
    wait_applied(d.addr, &c3).await;
    let c = cluster_status(d.addr).await;
    assert_eq!(c["last_result"]["result"], "unchanged", "{c:#}");
    assert!(
        c["last_result"]["message"]
            .as_str()
            .unwrap()
            .contains("render unchanged"),
        "{c:#}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_edits_are_healed_and_deleted_objects_recreated_naming_the_manager() {
    let ns = common::namespace("daemon-heal").await;
    let tmp = tempfile::tempdir().unwrap();
    let work = platform_repo(&tmp.path().join("work"), &ns.name, "1");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let source = format!("  url: {}\n  interval: 1h", remote.file_url());
    let d = start(tmp.path(), &config_text(&source, "    drift: heal\n", "")).await;
    wait_applied(d.addr, &work.head()).await;

    hand_edit(&ns.name, "by-hand").await;
    wait_for(
        d.addr,
        Duration::from_secs(30),
        "the hand edit healed",
        || async { (settings_a(&ns.name).await.as_deref() == Some("1")).then_some(()) },
    )
    .await;
    let c = wait_for(d.addr, Duration::from_secs(10), "the heal recorded", || async {
        let c = cluster_status(d.addr).await;
        (c["heals"].as_u64() >= Some(1)).then_some(c)
    })
    .await;
    let changes = c["last_changes"].to_string();
    assert!(
        changes.contains(&format!("ConfigMap/{}/settings healed", ns.name))
            && changes.contains("data.a")
            && changes.contains("kubectl-patch"),
        "{c:#}"
    );
    // The field kgitops does not own stays as the other manager set it.
    let api: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    let params = PatchParams {
        field_manager: Some("someone-else".into()),
        ..PatchParams::default()
    };
    api.patch(
        "settings",
        &params,
        &Patch::Merge(json!({"data": {"extra": "theirs"}})),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cm = settings(&ns.name).await.unwrap();
    assert_eq!(cm.data.unwrap().get("extra").map(String::as_str), Some("theirs"));

    api.delete("settings", &DeleteParams::default()).await.unwrap();
    wait_for(
        d.addr,
        Duration::from_secs(30),
        "the deleted ConfigMap recreated",
        || async { (settings_a(&ns.name).await.as_deref() == Some("1")).then_some(()) },
    )
    .await;
    let (_, metrics) = get(d.addr, "/metrics").await;
    assert!(
        metrics.contains("kgitops_heals_total{cluster=\"dev\"}"),
        "{metrics}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_in_alert_mode_is_reported_once_and_resolved_once_without_secret_values() {
    let ns = common::namespace("daemon-alert").await;
    let tmp = tempfile::tempdir().unwrap();
    let work = platform_repo(&tmp.path().join("work"), &ns.name, "1");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let sink = AlertSink::start();
    let source = format!("  url: {}\n  interval: 1h", remote.file_url());
    let alerts = format!("alerts:\n  - {{type: webhook, url: \"{}\"}}\n", sink.url);
    let d = start(tmp.path(), &config_text(&source, "    drift: alert\n", &alerts)).await;
    wait_applied(d.addr, &work.head()).await;

    hand_edit(&ns.name, "by-hand").await;
    // The Secret's value changed by hand too: reported by key, never by value.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(ns.client.clone(), &ns.name);
    let params = PatchParams {
        field_manager: Some("kubectl-patch".into()),
        ..PatchParams::default()
    };
    secrets
        .patch(
            "creds",
            &params,
            &Patch::Merge(json!({"stringData": {"password": "stolen-value"}})),
        )
        .await
        .unwrap();
    let c = wait_for(
        d.addr,
        Duration::from_secs(30),
        "two drifted objects reported",
        || async {
            let c = cluster_status(d.addr).await;
            (c["drifted"].as_array().map(Vec::len) == Some(2)).then_some(c)
        },
    )
    .await;
    assert_eq!(c["synced"], false);
    let drifted = c["drifted"].to_string();
    assert!(
        drifted.contains("data.a") && drifted.contains("kubectl-patch"),
        "{drifted}"
    );
    assert!(
        !drifted.contains("stolen-value") && !drifted.contains("c3RvbGVuLXZhbHVl"),
        "{drifted}"
    );
    // Not healed.
    assert_eq!(settings_a(&ns.name).await.as_deref(), Some("by-hand"));
    assert_eq!(get(d.addr, "/readyz").await.0, 503);
    let firing = wait_for(d.addr, Duration::from_secs(10), "two drift alerts", || async {
        let a = sink.alerts();
        (a.len() >= 2).then_some(a)
    })
    .await;
    let settings_key = format!("drift/dev/ConfigMap/{}/settings", ns.name);
    let alert = firing
        .iter()
        .find(|a| a["key"] == settings_key.as_str())
        .expect("alert for settings");
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["kind"], "drift");
    assert!(
        alert["details"].to_string().contains("kubectl-patch"),
        "{alert:#}"
    );
    let all = serde_json::to_string(&firing).unwrap();
    assert!(
        !all.contains("stolen-value") && !all.contains("c3RvbGVuLXZhbHVl"),
        "{all}"
    );
    assert_no_secret("alerts", &all);

    // The same drift touched again: no second alert.
    hand_edit(&ns.name, "by-hand-2").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again: Vec<Value> = sink
        .alerts()
        .into_iter()
        .filter(|a| a["key"] == settings_key.as_str())
        .collect();
    assert_eq!(again.len(), 2, "a changed drift is a new alert: {again:#?}");
    // Set back to git's value: one resolved alert.
    hand_edit(&ns.name, "1").await;
    wait_for(
        d.addr,
        Duration::from_secs(30),
        "the settings drift resolved",
        || async {
            sink.alerts()
                .iter()
                .any(|a| a["key"] == settings_key.as_str() && a["state"] == "resolved")
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let for_settings: Vec<Value> = sink
        .alerts()
        .into_iter()
        .filter(|a| a["key"] == settings_key.as_str())
        .collect();
    assert_eq!(
        for_settings
            .iter()
            .map(|a| a["state"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["firing", "firing", "resolved"],
        "{for_settings:#?}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_commit_applies_nothing_and_the_next_good_one_applies() {
    let ns = common::namespace("daemon-bad").await;
    let tmp = tempfile::tempdir().unwrap();
    let work = platform_repo(&tmp.path().join("work"), &ns.name, "1");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let c1 = work.head();
    let sink = AlertSink::start();
    let source = format!("  url: {}\n  interval: 1s", remote.file_url());
    let alerts = format!("alerts:\n  - {{type: slack, url: \"{}\"}}\n", sink.url);
    let d = start(tmp.path(), &config_text(&source, "", &alerts)).await;
    wait_applied(d.addr, &c1).await;

    // Malformed YAML: the render fails, naming the file.
    work.write(
        "clusters/dev/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n",
    );
    let c2 = work.commit("broken yaml");
    remote.push(&work, "main");
    let c = wait_for(d.addr, Duration::from_secs(30), "the render failure", || async {
        let c = cluster_status(d.addr).await;
        (c["last_result"]["result"] == "failed" && c["last_result"]["revision"] == c2.as_str()).then_some(c)
    })
    .await;
    assert!(
        c["last_result"]["message"]
            .as_str()
            .unwrap()
            .contains("settings.yaml"),
        "{c:#}"
    );
    assert_eq!(c["applied_revision"], c1.as_str());
    assert_eq!(get(d.addr, "/readyz").await.0, 503);

    // Rendered fine but rejected by the server (an invalid port) while the ConfigMap changes:
    // the pre-flight dry-run fails, nothing of the revision is written.
    write_platform(&work, &ns.name, "3");
    work.write(
        "clusters/dev/kustomization.yaml",
        &format!(
            "namespace: {}\nresources:\n  - settings.yaml\n  - creds.yaml\n  - svc.yaml\n",
            ns.name
        ),
    )
    .write(
        "clusters/dev/svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - port: 99999\n",
    );
    let c3 = work.commit("invalid service");
    remote.push(&work, "main");
    let c = wait_for(d.addr, Duration::from_secs(30), "the dry-run failure", || async {
        let c = cluster_status(d.addr).await;
        (c["last_result"]["result"] == "failed" && c["last_result"]["revision"] == c3.as_str()).then_some(c)
    })
    .await;
    let message = c["last_result"]["message"].as_str().unwrap();
    assert!(
        message.contains("Service") && message.contains("web"),
        "{message}"
    );
    assert_eq!(c["applied_revision"], c1.as_str());
    assert_eq!(
        settings_a(&ns.name).await.as_deref(),
        Some("1"),
        "nothing of the rejected revision is applied"
    );
    let failures: Vec<Value> = sink.alerts();
    assert!(
        failures
            .iter()
            .any(|a| a["text"].as_str().is_some_and(|t| t.contains("[dev] firing"))),
        "{failures:#?}"
    );

    // The next good commit applies, and the failure alert is resolved.
    work.remove("clusters/dev/svc.yaml");
    write_platform(&work, &ns.name, "4");
    let c4 = work.commit("fixed");
    remote.push(&work, "main");
    wait_applied(d.addr, &c4).await;
    assert_eq!(settings_a(&ns.name).await.as_deref(), Some("4"));
    wait_for(d.addr, Duration::from_secs(10), "the resolved alert", || async {
        sink.alerts()
            .iter()
            .any(|a| a["text"].as_str().is_some_and(|t| t.contains("[dev] resolved")))
            .then_some(())
    })
    .await;
    assert_no_secret("slack alerts", &serde_json::to_string(&sink.alerts()).unwrap());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_git_keeps_serving_then_converges_and_follows_a_force_push() {
    let ns = common::namespace("daemon-git").await;
    let tmp = tempfile::tempdir().unwrap();
    let remote_dir = tmp.path().join("later.git");
    let source = format!("  url: file://{}\n  interval: 1s", remote_dir.display());
    let d = start(tmp.path(), &config_text(&source, "", "")).await;

    // No repository there yet: the daemon serves, says why, and is not ready.
    let s = wait_for(d.addr, Duration::from_secs(20), "the fetch error", || async {
        let s = status(d.addr).await;
        s["source"]["error"].is_string().then_some(s)
    })
    .await;
    assert!(
        s["source"]["error"].as_str().unwrap().contains("later.git"),
        "{s:#}"
    );
    assert_eq!(get(d.addr, "/healthz").await.0, 200);
    assert_eq!(get(d.addr, "/readyz").await.0, 503);

    let work = platform_repo(&tmp.path().join("work"), &ns.name, "1");
    let c1 = work.head();
    write_platform(&work, &ns.name, "2");
    let c2 = work.commit("a: 2");
    let remote = BareRemote::init(&remote_dir);
    remote.push(&work, "main");
    wait_applied(d.addr, &c2).await;
    assert!(status(d.addr).await["source"]["error"].is_null());

    // History rewritten: back to the first commit, then a new one on top of it.
    work.git(&["reset", "-q", "--hard", &c1]);
    write_platform(&work, &ns.name, "5");
    let c5 = work.commit("rewritten");
    remote.force_push(&work, "main");
    wait_applied(d.addr, &c5).await;
    assert_eq!(settings_a(&ns.name).await.as_deref(), Some("5"));
    assert_eq!(status(d.addr).await["source"]["forced"], true);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_http_remote_with_a_token() {
    let ns = common::namespace("daemon-http").await;
    let tmp = tempfile::tempdir().unwrap();
    let root = served_root(tmp.path());
    let work = platform_repo(&tmp.path().join("work"), &ns.name, "1");
    let remote = BareRemote::init(&root.join("platform.git"));
    remote.push(&work, "main");
    let server = GitHttpServer::start(&root, &[("x-access-token", "tok-123")]);
    std::fs::write(tmp.path().join("token"), "tok-123\n").unwrap();
    let source = format!(
        "  url: {}\n  interval: 1h\n  auth: {{token_file: token}}",
        server.url("platform.git")
    );
    let d = start(tmp.path(), &config_text(&source, "", "")).await;
    wait_applied(d.addr, &work.head()).await;
    assert_eq!(settings_a(&ns.name).await.as_deref(), Some("1"));
    assert!(!status(d.addr).await.to_string().contains("tok-123"));
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_a_standby_takes_over_when_it_stops() {
    let ns = common::namespace("daemon-leader").await;
    let tmp = tempfile::tempdir().unwrap();
    let work = platform_repo(&tmp.path().join("work"), &ns.name, "1");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let source = format!("  url: {}\n  interval: 1s", remote.file_url());
    let leader_cfg = |who: &str| {
        format!(
            "leader_election:\n  namespace: {}\n  lease_duration: 3s\n  identity: {who}\n",
            ns.name
        )
    };
    let dir_a = tmp.path().join("a");
    let dir_b = tmp.path().join("b");
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let a = start(&dir_a, &config_text(&source, "", &leader_cfg("replica-a"))).await;
    wait_applied(a.addr, &work.head()).await;
    let b = start(&dir_b, &config_text(&source, "", &leader_cfg("replica-b"))).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sa = status(a.addr).await;
    let sb = status(b.addr).await;
    assert_eq!(sa["leader"], true, "{sa:#}");
    assert_eq!(sb["leader"], false, "{sb:#}");
    assert!(
        sb["clusters"][0]["applied_revision"].is_null(),
        "a standby applied: {sb:#}"
    );

    // The leader stops and releases the Lease: the standby leads and applies the next commit.
    a.stop().await;
    write_platform(&work, &ns.name, "2");
    let c2 = work.commit("a: 2");
    remote.push(&work, "main");
    wait_for(b.addr, Duration::from_secs(20), "replica-b leading", || async {
        (status(b.addr).await["leader"] == true).then_some(())
    })
    .await;
    wait_applied(b.addr, &c2).await;
    assert_eq!(settings_a(&ns.name).await.as_deref(), Some("2"));
    let lease: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(ns.client.clone(), &ns.name);
    let holder = lease.get("kgitops").await.unwrap().spec.unwrap().holder_identity;
    assert_eq!(holder.as_deref(), Some("replica-b"));
    b.stop().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn kgitops() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_kgitops"))
}

#[test]
fn a_configuration_error_exits_2_naming_the_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.yaml");
    std::fs::write(&file, "source: {path: .}\nclusters: [{name: dev, drif: heal}]\n").unwrap();
    let out = kgitops().args(["run", "--config"]).arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.yaml") && stderr.contains("drif"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The binary on a local working tree (the dev loop): applies, follows a file edit, logs JSON
/// without secrets, and exits 0 soon after SIGTERM.
#[test]
fn the_binary_follows_a_local_tree_and_exits_0_on_sigterm() {
    let ns_name = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { common::namespace("daemon-bin").await.name });
    let tmp = tempfile::tempdir().unwrap();
    let work = platform_repo(&tmp.path().join("work"), &ns_name, "1");
    let port = free_port();
    let config = format!(
        "source:\n  path: work\nclusters:\n  - name: dev\n    kubeconfig: {}\nserver:\n  listen: 127.0.0.1:{port}\n",
        common::control_plane().kubeconfig().display()
    );
    let config_file = tmp.path().join("kgitops.yaml");
    std::fs::write(&config_file, config).unwrap();
    let log = tmp.path().join("log.jsonl");
    let mut child = kgitops()
        .args(["--log-format", "json", "run", "--config"])
        .arg(&config_file)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let ready = |deadline: Duration| {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if TcpStream::connect(addr).is_ok() && http(addr, "GET", "/readyz", &[], b"").0 == 200 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    };
    assert!(
        ready(Duration::from_secs(60)),
        "not ready; log:\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    let first: Value = serde_json::from_str(&http(addr, "GET", "/status", &[], b"").1).unwrap();
    let rev1 = first["clusters"][0]["applied_revision"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(rev1.starts_with("local:"), "{first:#}");

    // An edit in the working tree (no commit) is applied.
    write_platform(&work, &ns_name, "edited");
    let start = Instant::now();
    loop {
        let s: Value = serde_json::from_str(&http(addr, "GET", "/status", &[], b"").1).unwrap();
        let c = &s["clusters"][0];
        if c["applied_revision"] != rev1.as_str() && c["synced"] == true {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "edit not applied: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let stopping = Instant::now();
    // SAFETY: kill(2) with a child's pid and SIGTERM has no memory effects.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if stopping.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("still running 10 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_no_secret("logs", &text);
    for line in text.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    assert!(text.contains("settings configured"), "{text}");
    let _: PathBuf = tmp.path().to_path_buf();
}

#[test]
fn the_configuration_shipped_in_deploy_is_valid() {
    let config =
        Config::load(&common::repo_root().join("deploy/config.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config
            .clusters
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["dev", "staging"]
    );
    assert!(config.server.webhook_secret_file.is_some());
    assert!(config.leader_election.is_some());
}

/// A commit over the render input budget (a generator naming one file many times) is a failed
/// revision like any other: the daemon (the binary, with `limits:` from its configuration) stays
/// up, keeps the last good revision and applies the next good commit.
#[test]
fn a_commit_over_the_render_budget_fails_and_the_daemon_applies_the_next_one() {
    let ns_name = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { common::namespace("daemon-budget").await.name });
    let tmp = tempfile::tempdir().unwrap();
    let work = platform_repo(&tmp.path().join("work"), &ns_name, "1");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let c1 = work.head();
    let port = free_port();
    let config = format!(
        "source:\n  url: {}\n  interval: 1s\nclusters:\n  - name: dev\n    kubeconfig: {}\n\
         server:\n  listen: 127.0.0.1:{port}\nlimits:\n  max_render_input: 2Mi\ncache_dir: {}\n",
        remote.file_url(),
        common::control_plane().kubeconfig().display(),
        tmp.path().join("cache").display()
    );
    let config_file = tmp.path().join("kgitops.yaml");
    std::fs::write(&config_file, config).unwrap();
    let log = tmp.path().join("log.txt");
    /// Stops the daemon however the test ends.
    struct DaemonProcess(std::process::Child);
    impl Drop for DaemonProcess {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = DaemonProcess(
        kgitops()
            .args(["run", "--config"])
            .arg(&config_file)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cluster = || -> Option<Value> {
        TcpStream::connect(addr).ok()?;
        let s: Value = serde_json::from_str(&http(addr, "GET", "/status", &[], b"").1).ok()?;
        Some(s["clusters"][0].clone())
    };
    let wait = |what: &str, done: &dyn Fn(&Value) -> bool| -> Value {
        let start = Instant::now();
        loop {
            if let Some(c) = cluster().filter(|c| done(c)) {
                return c;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}: {:?}\nlog:\n{}",
                cluster(),
                std::fs::read_to_string(&log).unwrap()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait("the first commit applied", &|c| {
        c["applied_revision"] == c1.as_str() && c["synced"] == true
    });

    // 1 MiB read by three generators: 3 MiB, over the 2 MiB budget.
    work.write("clusters/dev/data.txt", &"x".repeat(1 << 20)).write(
        "clusters/dev/kustomization.yaml",
        &format!(
            "namespace: {ns_name}\nresources:\n  - settings.yaml\n  - creds.yaml\nconfigMapGenerator:\n\
             - {{name: big0, files: [data.txt]}}\n- {{name: big1, files: [data.txt]}}\n\
             - {{name: big2, files: [data.txt]}}\n"
        ),
    );
    let c2 = work.commit("one file read three times");
    remote.push(&work, "main");
    let c = wait("the failed render", &|c| {
        c["last_result"]["result"] == "failed" && c["last_result"]["revision"] == c2.as_str()
    });
    let message = c["last_result"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("clusters/dev/data.txt") && message.contains("budget of 2097152 bytes"),
        "{c:#}"
    );
    assert_eq!(c["applied_revision"], c1.as_str());
    assert_eq!(http(addr, "GET", "/healthz", &[], b"").0, 200);

    // The next good commit applies.
    work.remove("clusters/dev/data.txt");
    write_platform(&work, &ns_name, "3");
    let c3 = work.commit("fixed");
    remote.push(&work, "main");
    wait("the good commit applied", &|c| {
        c["applied_revision"] == c3.as_str() && c["synced"] == true
    });
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the daemon is still running"
    );
}
