//! `kgitops run` against real parts: git remotes on disk (`file://`) and over smart HTTP with a
//! token, the real control plane with the Strimzi CRDs, the daemon's HTTP endpoints over real
//! sockets on 127.0.0.1, alerts received by a real HTTP server, drift made by another field manager,
//! and the binary itself stopped by SIGTERM.

#[path = "support/alert_sink.rs"]
mod alert_sink;
mod common;
mod gitserver;
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/partition.rs"]
mod partition;

use alert_sink::AlertSink;

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gitserver::http::{GitHttpServer, served_root};
use gitserver::{BareRemote, WorkRepo};
use http_client::{free_ports, http};
use k8s_openapi::api::core::v1::ConfigMap;
use kgitops::daemon::webhook::github_signature;
use kgitops::daemon::{Config, Daemon};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use partition::{Partition, apiserver_addr};
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
         server:\n  listen: 127.0.0.1:0\n  status_listen: 127.0.0.1:0\n  webhook_secret_file: webhook-secret\n{extra}"
    )
}

struct Running {
    /// The internal listener: `/status`, `/metrics`.
    addr: SocketAddr,
    /// The public listener: `/webhook`.
    hook: SocketAddr,
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
    let (addr, hook) = (daemon.status_addr(), daemon.local_addr());
    let token = CancellationToken::new();
    let task = tokio::spawn(daemon.run(token.clone()));
    Running {
        addr,
        hook,
        token,
        task,
    }
}

/// `/readyz` means "the process serves", on both listeners, whatever the clusters' state.
async fn assert_ready(d: &Running) {
    for addr in [d.addr, d.hook] {
        assert_eq!(get(addr, "/readyz").await, (200, "ready\n".to_string()), "{addr}");
    }
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
    assert_eq!(get(d.hook, "/healthz").await, (200, "ok\n".to_string()));
    // The public listener offers only the webhook and the probes; status stays internal.
    assert_eq!(get(d.hook, "/status").await.0, 404);
    assert_eq!(get(d.hook, "/metrics").await.0, 404);
    assert_eq!(post_webhook(d.addr, vec![], push_event("main")).await.0, 404);
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
    assert_eq!(post_webhook(d.hook, bad, body.clone()).await.0, 401);
    let missing = vec![("X-GitHub-Event", "push".to_string())];
    assert_eq!(post_webhook(d.hook, missing, body.clone()).await.0, 401);
    let gitlab_bad = vec![
        ("X-Gitlab-Event", "Push Hook".to_string()),
        ("X-Gitlab-Token", "nope".to_string()),
    ];
    assert_eq!(post_webhook(d.hook, gitlab_bad, body.clone()).await.0, 401);
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
    let (code, text) = post_webhook(d.hook, good, body).await;
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
    let (code, text) = post_webhook(d.hook, headers, other).await;
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
    assert_eq!(post_webhook(d.hook, good, body).await.0, 202);
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
    // Drifted, yet ready: the pod stays in its Service (sync state is in /status and alerts).
    assert_ready(&d).await;
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
    // Failed, yet ready: the webhook with the fix must reach this pod.
    assert_ready(&d).await;

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

    // A newer commit that does not render supersedes the rejected one: the rejected revision is
    // not retried over it (its retry was due within a few seconds).
    work.write(
        "clusters/dev/settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops\n",
    );
    let c3b = work.commit("broken yaml again");
    remote.push(&work, "main");
    wait_for(
        d.addr,
        Duration::from_secs(30),
        "the second render failure",
        || async {
            let c = cluster_status(d.addr).await;
            (c["last_result"]["result"] == "failed" && c["last_result"]["revision"] == c3b.as_str())
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let c = cluster_status(d.addr).await;
    assert_eq!(
        c["last_result"]["revision"],
        c3b.as_str(),
        "an older failing revision was retried over the newest one: {c:#}"
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
    assert_ready(&d).await;

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

/// A platform repository served over smart HTTP behind token `tok-123`, which is written to
/// `<tmp>/token`: the work tree, the served bare remote and the server.
fn served_platform(tmp: &Path, ns: &str) -> (WorkRepo, BareRemote, GitHttpServer) {
    let root = served_root(tmp);
    let work = platform_repo(&tmp.join("work"), ns, "1");
    let remote = BareRemote::init(&root.join("platform.git"));
    remote.push(&work, "main");
    let server = GitHttpServer::start(&root, &[("x-access-token", "tok-123")]);
    std::fs::write(tmp.join("token"), "tok-123\n").unwrap();
    (work, remote, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_http_remote_with_a_token() {
    let ns = common::namespace("daemon-http").await;
    let tmp = tempfile::tempdir().unwrap();
    let (work, _remote, server) = served_platform(tmp.path(), &ns.name);
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

/// Two replicas' setting: a platform repository pushed to a remote, and leader election on a
/// Lease `kgitops` in the test namespace.
struct LeaderRig {
    ns: common::TestNamespace,
    tmp: tempfile::TempDir,
    work: WorkRepo,
    remote: BareRemote,
    lease_duration: &'static str,
}

impl LeaderRig {
    async fn new(prefix: &str, lease_duration: &'static str) -> LeaderRig {
        let ns = common::namespace(prefix).await;
        let tmp = tempfile::tempdir().unwrap();
        let work = platform_repo(&tmp.path().join("work"), &ns.name, "1");
        let remote = BareRemote::init(&tmp.path().join("remote.git"));
        remote.push(&work, "main");
        LeaderRig {
            ns,
            tmp,
            work,
            remote,
            lease_duration,
        }
    }

    /// The directory and configuration of replica `who`.
    fn replica(&self, who: &str) -> (PathBuf, String) {
        let dir = self.tmp.path().join(who);
        std::fs::create_dir_all(&dir).unwrap();
        let source = format!("  url: {}\n  interval: 1s", self.remote.file_url());
        let leader = format!(
            "leader_election:\n  namespace: {}\n  lease_duration: {}\n  identity: {who}\n",
            self.ns.name, self.lease_duration
        );
        (dir, config_text(&source, "", &leader))
    }

    /// Commits and pushes `a: <a>`; returns the commit.
    fn push(&self, a: &str) -> String {
        write_platform(&self.work, &self.ns.name, a);
        let commit = self.work.commit(&format!("a: {a}"));
        self.remote.push(&self.work, "main");
        commit
    }

    async fn holder(&self) -> Option<String> {
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(self.ns.client.clone(), &self.ns.name);
        leases.get("kgitops").await.unwrap().spec.unwrap().holder_identity
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_a_standby_takes_over_when_it_stops() {
    let rig = LeaderRig::new("daemon-leader", "3s").await;
    let ((dir_a, text_a), (dir_b, text_b)) = (rig.replica("replica-a"), rig.replica("replica-b"));
    let a = start(&dir_a, &text_a).await;
    wait_applied(a.addr, &rig.work.head()).await;
    let b = start(&dir_b, &text_b).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sa = status(a.addr).await;
    let sb = status(b.addr).await;
    assert_eq!(sa["leader"], true, "{sa:#}");
    assert_eq!(sb["leader"], false, "{sb:#}");
    assert!(
        sb["clusters"][0]["applied_revision"].is_null(),
        "a standby applied: {sb:#}"
    );
    // A rollout: the new pod (a standby) must be ready for the old one (the leader) to go.
    assert_ready(&b).await;
    assert_ready(&a).await;

    // The leader stops and releases the Lease: the standby leads and applies the next commit.
    a.stop().await;
    let c2 = rig.push("2");
    wait_for(b.addr, Duration::from_secs(20), "replica-b leading", || async {
        (status(b.addr).await["leader"] == true).then_some(())
    })
    .await;
    wait_applied(b.addr, &c2).await;
    assert_eq!(settings_a(&rig.ns.name).await.as_deref(), Some("2"));
    assert_eq!(rig.holder().await.as_deref(), Some("replica-b"));
    b.stop().await;
}

/// Two daemons; the leader is cut off from the apiserver (its renewals and its apply of a new
/// commit hang). It must stop leading at its renew deadline, before the standby may take over,
/// so that at no moment both lead; the standby then applies the commit, and the old leader, back
/// on the network, stays a standby.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_renew_steps_down_before_the_standby_takes_over() {
    let rig = LeaderRig::new("daemon-partition", "6s").await;
    let partition = Partition::start(apiserver_addr(common::control_plane().kubeconfig())).await;
    let ((dir_a, text_a), (dir_b, text_b)) = (rig.replica("replica-a"), rig.replica("replica-b"));
    let direct = common::control_plane().kubeconfig().display().to_string();
    let text_a = text_a.replace(&direct, &partition.kubeconfig(&dir_a).display().to_string());
    let a = start(&dir_a, &text_a).await;
    wait_applied(a.addr, &rig.work.head()).await;
    let b = start(&dir_b, &text_b).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status(a.addr).await["leader"], true);
    assert_eq!(status(b.addr).await["leader"], false);

    partition.freeze();
    let c2 = rig.push("2");
    let start_at = Instant::now();
    let mut a_stepped_down = None;
    loop {
        let (sa, sb) = (status(a.addr).await, status(b.addr).await);
        assert!(
            !(sa["leader"] == true && sb["leader"] == true),
            "both lead after {:?}:\n{sa:#}\n{sb:#}",
            start_at.elapsed()
        );
        if sa["leader"] == false && a_stepped_down.is_none() {
            a_stepped_down = Some(start_at.elapsed());
        }
        let c = &sb["clusters"][0];
        if sb["leader"] == true && c["applied_revision"] == c2.as_str() {
            break;
        }
        assert!(
            start_at.elapsed() < Duration::from_secs(60),
            "replica-b did not take over and apply:\n{sa:#}\n{sb:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(a_stepped_down.is_some());
    assert_eq!(settings_a(&rig.ns.name).await.as_deref(), Some("2"));

    // Back on the network: the old leader sees replica-b hold the Lease and stays a standby.
    partition.heal();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(status(a.addr).await["leader"], false);
    assert_eq!(rig.holder().await.as_deref(), Some("replica-b"));
    b.stop().await;
    a.stop().await;
}

/// A live leader whose clock is an hour behind (its `renewTime` is an hour old by ours, but it
/// renews every 500 ms): a standby must not take the Lease from it, and must take it once the
/// renewals stop (expiry counts from when the standby saw the Lease change, as in client-go).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_does_not_take_the_lease_of_a_live_leader_whose_clock_is_behind() {
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
    let ns = common::namespace("daemon-skew").await;
    let leases: Api<Lease> = Api::namespaced(ns.client.clone(), &ns.name);
    let skewed = || MicroTime(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3600));
    leases
        .create(
            &Default::default(),
            &Lease {
                metadata: ObjectMeta {
                    name: Some("kgitops".into()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some("skewed-leader".into()),
                    lease_duration_seconds: Some(3),
                    renew_time: Some(skewed()),
                    ..LeaseSpec::default()
                }),
            },
        )
        .await
        .unwrap();
    let renewing = CancellationToken::new();
    let renewer = {
        let (leases, renewing) = (leases.clone(), renewing.clone());
        tokio::spawn(async move {
            while !renewing.is_cancelled() {
                let mut lease = leases.get("kgitops").await.unwrap();
                let spec = lease.spec.as_mut().unwrap();
                if spec.holder_identity.as_deref() != Some("skewed-leader") {
                    return false;
                }
                spec.renew_time = Some(skewed());
                // A conflict with the standby's attempt is retried at the next tick.
                let _ = leases.replace("kgitops", &Default::default(), &lease).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            true
        })
    };

    let tmp = tempfile::tempdir().unwrap();
    let work = platform_repo(&tmp.path().join("work"), &ns.name, "1");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let source = format!("  url: {}\n  interval: 1s", remote.file_url());
    let leader_cfg = format!(
        "leader_election:\n  namespace: {}\n  lease_duration: 3s\n  identity: replica-b\n",
        ns.name
    );
    let b = start(tmp.path(), &config_text(&source, "", &leader_cfg)).await;
    // Three lease durations while the skewed leader renews: the standby waits.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let sb = status(b.addr).await;
    assert_eq!(sb["leader"], false, "took the Lease of a live leader: {sb:#}");
    assert!(sb["clusters"][0]["applied_revision"].is_null(), "{sb:#}");
    assert_ready(&b).await;
    renewing.cancel();
    assert!(
        renewer.await.unwrap(),
        "the standby took the Lease while it was renewed"
    );

    // The renewals stopped: the standby takes over after the lease duration and applies.
    wait_for(b.addr, Duration::from_secs(30), "replica-b leading", || async {
        (status(b.addr).await["leader"] == true).then_some(())
    })
    .await;
    wait_applied(b.addr, &work.head()).await;
    let holder = leases.get("kgitops").await.unwrap().spec.unwrap().holder_identity;
    assert_eq!(holder.as_deref(), Some("replica-b"));
    b.stop().await;
}

/// A daemon without `leader_election` next to another writer (a second replica, or an operator's
/// `kgitops apply`) holding the cluster's write lock: the reconcile fails naming the holder,
/// nothing is written, and it is retried; once the other writer releases the lock it applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_writer_holding_the_write_lock_is_reported_and_waited_for() {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::PostParams;

    let ns = common::namespace("daemon-lock").await;
    let leases: Api<Lease> = ns.api();
    let mut lease = common::hold_write_lock(&ns, "kgitops-dev-lock", "replica-other").await;
    let tmp = tempfile::tempdir().unwrap();
    let work = platform_repo(&tmp.path().join("work"), &ns.name, "1");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let source = format!("  url: {}\n  interval: 1s", remote.file_url());
    let d = start(tmp.path(), &config_text(&source, "", "")).await;
    let c = wait_for(d.addr, Duration::from_secs(30), "the lock failure", || async {
        let c = cluster_status(d.addr).await;
        (c["last_result"]["result"] == "failed").then_some(c)
    })
    .await;
    let message = c["last_result"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!(
            "Lease/{}/kgitops-dev-lock: another writer holds the lock: replica-other",
            ns.name
        )),
        "{c:#}"
    );
    assert_eq!(
        settings_a(&ns.name).await,
        None,
        "written while another writer held the lock"
    );

    // The other writer is done: the retry applies.
    lease.spec.as_mut().unwrap().holder_identity = None;
    leases
        .replace("kgitops-dev-lock", &PostParams::default(), &lease)
        .await
        .unwrap();
    wait_applied(d.addr, &work.head()).await;
    assert_eq!(settings_a(&ns.name).await.as_deref(), Some("1"));
    d.stop().await;
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

/// `kgitops run` as a child process on a local working tree of `platform_repo` (cluster dev).
struct ChildDaemon {
    child: std::process::Child,
    /// The public listener.
    hook: SocketAddr,
    /// The internal listener.
    addr: SocketAddr,
    log: PathBuf,
}

impl ChildDaemon {
    /// Starts the binary in `dir` (which holds `work/`), with `server_extra` lines under `server:`.
    fn start(dir: &Path, server_extra: &str) -> ChildDaemon {
        let (port, status_port) = free_ports();
        let config = format!(
            "source:\n  path: work\nclusters:\n  - name: dev\n    kubeconfig: {}\nserver:\n  listen: 127.0.0.1:{port}\n  status_listen: 127.0.0.1:{status_port}\n{server_extra}",
            common::control_plane().kubeconfig().display()
        );
        let config_file = dir.join("kgitops.yaml");
        std::fs::write(&config_file, config).unwrap();
        let log = dir.join("log.jsonl");
        let child = kgitops()
            .args(["--log-format", "json", "run", "--config"])
            .arg(&config_file)
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        ChildDaemon {
            child,
            hook: format!("127.0.0.1:{port}").parse().unwrap(),
            addr: format!("127.0.0.1:{status_port}").parse().unwrap(),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn status(&self) -> Value {
        serde_json::from_str(&http(self.addr, "GET", "/status", &[], b"").1).unwrap()
    }

    /// Waits until the cluster is synced at a revision other than `not`; returns it.
    fn wait_synced(&self, not: Option<&str>, deadline: Duration) -> String {
        let start = Instant::now();
        loop {
            if TcpStream::connect(self.addr).is_ok() {
                let s = self.status();
                let c = &s["clusters"][0];
                if let Some(rev) = c["applied_revision"].as_str()
                    && Some(rev) != not
                    && c["synced"] == true
                {
                    return rev.to_string();
                }
            }
            assert!(start.elapsed() < deadline, "not synced; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The daemon's resident memory, bytes (VmRSS).
    fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in {status}"));
        kb * 1024
    }

    /// Sends SIGTERM; returns the exit code and how long the process took to exit (killed after 20 s).
    #[allow(unsafe_code)] // each unsafe block below says why it is sound (SAFETY)
    fn terminate(&mut self) -> (Option<i32>, Duration) {
        let stopping = Instant::now();
        // SAFETY: kill(2) with a child's pid and SIGTERM has no memory effects.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), stopping.elapsed());
            }
            if stopping.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                panic!("still running 20 s after SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
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

/// The binary on a local working tree (the dev loop): applies, follows a file edit, logs JSON
/// without secrets, and exits 0 soon after SIGTERM.
#[test]
fn the_binary_follows_a_local_tree_and_exits_0_on_sigterm() {
    let ns_name = test_namespace("daemon-bin");
    let tmp = tempfile::tempdir().unwrap();
    let work = platform_repo(&tmp.path().join("work"), &ns_name, "1");
    let mut d = ChildDaemon::start(tmp.path(), "");
    let rev1 = d.wait_synced(None, Duration::from_secs(60));
    assert!(rev1.starts_with("local:"), "{rev1}");

    // An edit in the working tree (no commit) is applied.
    write_platform(&work, &ns_name, "edited");
    d.wait_synced(Some(&rev1), Duration::from_secs(30));

    let (code, took) = d.terminate();
    assert!(took < Duration::from_secs(10), "exited {took:?} after SIGTERM");
    assert_eq!(code, Some(0));
    let text = d.log();
    assert_no_secret("logs", &text);
    for line in text.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    assert!(text.contains("settings configured"), "{text}");
}

/// An empty or missing webhook secret (or any configured file) stops the start with exit 2,
/// naming the key and the file; a world-readable one is only a warning.
#[test]
fn a_missing_or_empty_secret_file_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("work")).unwrap();
    std::fs::write(tmp.path().join("empty"), "\n").unwrap();
    for (server, key, file, expected) in [
        (
            "webhook_secret_file: empty",
            "server.webhook_secret_file",
            "empty",
            "is empty",
        ),
        (
            "webhook_secret_file: absent",
            "server.webhook_secret_file",
            "absent",
            "cannot read",
        ),
    ] {
        let config = format!(
            "source: {{path: work}}\nclusters: [{{name: dev, kubeconfig: {}}}]\nserver: {{{server}, listen: 127.0.0.1:0, status_listen: 127.0.0.1:0}}\n",
            common::control_plane().kubeconfig().display()
        );
        let file_path = tmp.path().join(file);
        std::fs::write(tmp.path().join("kgitops.yaml"), config).unwrap();
        let out = kgitops()
            .args(["run", "--config"])
            .arg(tmp.path().join("kgitops.yaml"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{server}: {stderr}");
        assert!(
            stderr.contains(key)
                && stderr.contains(&file_path.display().to_string())
                && stderr.contains(expected),
            "{server}: {stderr}"
        );
    }
}

fn rss_mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Sends a request head announcing a ~5 MB body with a bogus signature, then the body in 64 KiB
/// writes until the server stops taking it; returns the status line's code (0 if none came).
fn flood_one(hook: SocketAddr, chunked: bool) -> u16 {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(hook).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let size = 5_000_000usize;
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {size}")
    };
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: x\r\nX-GitHub-Event: push\r\nX-Hub-Signature-256: sha256={}\r\n{framing}\r\n\r\n",
        "00".repeat(32)
    );
    if stream.write_all(head.as_bytes()).is_err() {
        return 0;
    }
    let chunk = vec![b'{'; 64 * 1024];
    let mut sent = 0;
    while sent < size {
        let written = if chunked {
            stream
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .and_then(|_| stream.write_all(&chunk))
                .and_then(|_| stream.write_all(b"\r\n"))
        } else {
            stream.write_all(&chunk)
        };
        if written.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Opens a connection, sends half a request head and waits; returns how long until the server
/// closed it.
fn half_sent(hook: SocketAddr) -> Duration {
    use std::io::{Read, Write};
    let start = Instant::now();
    let mut stream = TcpStream::connect(hook).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = stream.write_all(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Le");
    let mut buf = [0u8; 1024];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
    start.elapsed()
}

/// The flood of issue 13: 100 connections sending ~5 MB bodies with a bogus signature (80 with a
/// Content-Length, 20 chunked) and 500 half-sent requests. The daemon (the binary, measured
/// through /proc) stays under 100 MB, answers /healthz meanwhile, closes the half-sent requests
/// after its header timeout, keeps reconciling, and exits 0 within 10 s of a SIGTERM although a
/// client holds a stalled request.
#[test]
fn a_webhook_flood_leaves_the_daemon_small_serving_and_stoppable() {
    let ns_name = test_namespace("daemon-flood");
    let tmp = tempfile::tempdir().unwrap();
    let work = platform_repo(&tmp.path().join("work"), &ns_name, "1");
    std::fs::write(tmp.path().join("secret"), "flood-s3cret\n").unwrap();
    let mut d = ChildDaemon::start(
        tmp.path(),
        "  webhook_secret_file: secret\n  header_read_timeout: 2s\n  request_timeout: 5s\n",
    );
    let rev1 = d.wait_synced(None, Duration::from_secs(60));
    let before = d.rss();

    let hook = d.hook;
    let flooders: Vec<_> = (0..100)
        .map(|i| std::thread::spawn(move || flood_one(hook, i % 5 == 0)))
        .collect();
    let stalled: Vec<_> = (0..500)
        .map(|_| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || half_sent(hook))
                .unwrap()
        })
        .collect();
    // While the flood goes on: the probes answer, and the memory is sampled.
    let mut peak = before;
    let healthz = Instant::now();
    assert_eq!(
        http(d.addr, "GET", "/healthz", &[], b""),
        (200, "ok\n".to_string())
    );
    let healthz = healthz.elapsed();
    let flood_start = Instant::now();
    while !flooders.iter().all(|t| t.is_finished()) {
        peak = peak.max(d.rss());
        assert!(
            flood_start.elapsed() < Duration::from_secs(120),
            "flood not over after 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let codes: Vec<u16> = flooders.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        codes.iter().all(|c| matches!(c, 0 | 413 | 503)),
        "a 5 MB body was not refused: {codes:?}"
    );
    assert!(codes.contains(&413), "{codes:?}");
    let closed: Vec<Duration> = stalled.into_iter().map(|t| t.join().unwrap()).collect();
    peak = peak.max(d.rss());
    let slowest = closed.iter().max().copied().unwrap_or_default();
    // 500 connections, at most 256 at a time, each closed 2 s after it was accepted.
    assert!(
        slowest < Duration::from_secs(30),
        "a half-sent request stayed open {slowest:?}"
    );
    assert!(
        peak < 100_000_000,
        "RSS {:.0} MB before, {:.0} MB peak during the flood",
        rss_mb(before),
        rss_mb(peak)
    );
    assert_eq!(http(hook, "GET", "/healthz", &[], b""), (200, "ok\n".to_string()));
    eprintln!(
        "flood: RSS {:.1} MB before, {:.1} MB peak, {:.1} MB after; /healthz during it in {healthz:?}; \
         half-sent requests closed after {:?} at most",
        rss_mb(before),
        rss_mb(peak),
        rss_mb(d.rss()),
        slowest
    );

    // Still reconciling.
    write_platform(&work, &ns_name, "after-flood");
    d.wait_synced(Some(&rev1), Duration::from_secs(60));

    // A stalled request does not hold the shutdown.
    let stalled = std::thread::spawn(move || half_sent(hook));
    let mut slow_body = TcpStream::connect(hook).unwrap();
    std::io::Write::write_all(
        &mut slow_body,
        b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Gitlab-Token: t\r\nContent-Length: 1000\r\n\r\n{",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (code, took) = d.terminate();
    assert_eq!(code, Some(0), "{}", d.log());
    assert!(took < Duration::from_secs(10), "exited {took:?} after SIGTERM");
    stalled.join().unwrap();
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
    assert!(config.sharding.is_some() && config.leader_election.is_none());
    // The webhook port is public, status and metrics are on their own port (the NetworkPolicy's).
    assert_eq!(config.server.listen.port(), 9464);
    assert_eq!(config.server.status_listen.port(), 9465);
}

/// Values of the Secrets below, one per leak path of issue 13, and their base64 forms.
const FOUND_BY_TEST_OP: &str = SECRET_VALUE;
const NUMBER_IN_DATA: &str = "73519864201";
const ENV_LINE_WITHOUT_KEY: &str = "envline-s3cret-without-key";

fn assert_no_secret_value(what: &str, text: &str) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    for value in [FOUND_BY_TEST_OP, NUMBER_IN_DATA, ENV_LINE_WITHOUT_KEY] {
        let encoded = b64.encode(value);
        assert!(
            !text.contains(value) && !text.contains(&encoded),
            "{what} shows the Secret value {value} (or {encoded}):\n{text}"
        );
    }
}

/// Every way a Secret value reached an output (issue 13, items 7-9): a JSON 6902 `test` failing on
/// a Secret (the render error once printed the value found), a Secret whose `data` holds a number
/// (the server's dry-run error echoes it), a secretGenerator env line without `=` (the line became
/// a key name). The binary runs each bad commit; then every channel is searched for the plain and
/// base64 values: its stdout and JSON logs, the Events in the cluster, the alerts received, `/status`
/// JSON and HTML, and `kgitops diff --from --to` in every output format.
#[test]
#[allow(unsafe_code)] // each unsafe block below says why it is sound (SAFETY)
fn secret_values_reach_no_output_channel() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let ns_name = runtime.block_on(async { common::namespace("daemon-leak").await.name });
    let tmp = tempfile::tempdir().unwrap();
    let work = platform_repo(&tmp.path().join("work"), &ns_name, "1");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let c1 = work.head();
    let sink = AlertSink::start();
    let (port, status_port) = free_ports();
    let config = format!(
        "source:\n  url: {}\n  interval: 1s\nclusters:\n  - name: dev\n    kubeconfig: {}\n\
         server:\n  listen: 127.0.0.1:{port}\n  status_listen: 127.0.0.1:{status_port}\nalerts:\n  - {{type: webhook, url: \"{}\"}}\ncache_dir: {}\n",
        remote.file_url(),
        common::control_plane().kubeconfig().display(),
        sink.url,
        tmp.path().join("cache").display()
    );
    let config_file = tmp.path().join("kgitops.yaml");
    std::fs::write(&config_file, config).unwrap();
    let (stdout, stderr) = (tmp.path().join("stdout"), tmp.path().join("stderr.jsonl"));
    let mut child = kgitops()
        .args(["--log-format", "json", "run", "--config"])
        .arg(&config_file)
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let logs = || std::fs::read_to_string(&stderr).unwrap_or_default();
    // The first result the daemon logs for `revision`: `result` "applied" or level ERROR, with its
    // message. (Read from the log, not /status: after a render failure the worker retries the
    // previous failed revision, which overwrites /status's last result at once.)
    let result_of = |revision: &str| -> (String, String) {
        let start = Instant::now();
        loop {
            for line in logs().lines() {
                let Ok(v) = serde_json::from_str::<Value>(line) else {
                    continue;
                };
                let f = &v["fields"];
                if f["revision"] == revision && (f["result"] == "applied" || v["level"] == "ERROR") {
                    let result = if v["level"] == "ERROR" {
                        "failed"
                    } else {
                        "applied"
                    };
                    return (
                        result.to_string(),
                        f["message"].as_str().unwrap_or_default().to_string(),
                    );
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no result for {revision}; log:\n{}",
                logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    assert_eq!(result_of(&c1).0, "applied", "{}", logs());

    // Commits and pushes the work tree; its revision must fail with a message naming `names`.
    let push_failing = |what: &str, names: &[&str]| -> String {
        let revision = work.commit(what);
        remote.push(&work, "main");
        let (result, message) = result_of(&revision);
        assert_eq!(result, "failed", "{what}: {message}");
        assert!(names.iter().all(|n| message.contains(n)), "{what}: {message}");
        revision
    };

    // 7. A JSON 6902 `test` on the Secret fails: the render error names the path only.
    let kustomization = format!("namespace: {ns_name}\nresources:\n  - settings.yaml\n  - creds.yaml\n");
    work.write(
        "clusters/dev/kustomization.yaml",
        &format!(
            "{kustomization}patches:\n  - target: {{kind: Secret, name: creds}}\n    patch: |-\n      \
             - {{op: test, path: /stringData/password, value: wrong-guess}}\n"
        ),
    );
    let c2 = push_failing("test op on a Secret", &["/stringData/password"]);

    // 8. A number in a Secret's data: the server rejects it in the dry-run.
    work.write(
        "clusters/dev/kustomization.yaml",
        &format!("{kustomization}  - numbers.yaml\n"),
    )
    .write(
        "clusters/dev/numbers.yaml",
        &format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: numbers\ndata:\n  n: {NUMBER_IN_DATA}\n"),
    );
    let c3 = push_failing("a number in a Secret's data", &["Secret/", "numbers"]);

    // 9. A secretGenerator env line without `=`: refused, naming the line by number.
    work.remove("clusters/dev/numbers.yaml")
        .write(
            "clusters/dev/kustomization.yaml",
            &format!("{kustomization}secretGenerator:\n  - name: generated\n    envs: [gen.env]\n"),
        )
        .write(
            "clusters/dev/gen.env",
            &format!("user=admin\n{ENV_LINE_WITHOUT_KEY}\n"),
        );
    let c4 = push_failing("an env line without a key", &["gen.env", "line 2"]);

    // Every channel. /status, JSON and HTML:
    let status_addr: SocketAddr = format!("127.0.0.1:{status_port}").parse().unwrap();
    let (code, status_json) = http(status_addr, "GET", "/status", &[], b"");
    assert_eq!(code, 200, "{status_json}");
    assert_no_secret_value("/status", &status_json);
    let (code, html) = http(status_addr, "GET", "/status?format=html", &[], b"");
    assert_eq!(code, 200, "{html}");
    assert!(html.contains("<"), "{html}");
    assert_no_secret_value("/status html", &html);
    // Alerts received by a real HTTP server: one per failure at least.
    let alerts = serde_json::to_string(&sink.alerts()).unwrap();
    assert!(alerts.contains("failed"), "{alerts}");
    assert_no_secret_value("alerts", &alerts);
    // Events in the cluster (readable by the `view` role), in both API groups' views.
    let events = runtime.block_on(async {
        let client = common::client().await;
        let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), &ns_name);
        let new: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client, &ns_name);
        let lp = kube::api::ListParams::default();
        format!(
            "{}\n{}",
            serde_json::to_string(&core.list(&lp).await.unwrap().items).unwrap(),
            serde_json::to_string(&new.list(&lp).await.unwrap().items).unwrap()
        )
    });
    assert!(events.contains("ReconcileFailed"), "{events}");
    assert_no_secret_value("Events", &events);
    // The binary's stdout and JSON logs, after SIGTERM.
    // SAFETY: kill(2) with a child's pid and SIGTERM has no memory effects.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let stopping = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if stopping.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("still running 10 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = logs();
    assert!(log.contains("/stringData/password"), "{log}");
    assert_no_secret_value("JSON logs", &log);
    assert_no_secret_value("stdout", &std::fs::read_to_string(&stdout).unwrap());

    // The pull-request diff of each bad commit, in every format.
    let mut numbers_shown = false;
    for to in [&c2, &c3, &c4] {
        for output in ["text", "markdown", "json"] {
            let out = kgitops()
                .args(["diff", "--from", &c1, "--to", to, "--output", output, "--repo"])
                .arg(&work.dir)
                .output()
                .unwrap();
            let text = format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(matches!(out.status.code(), Some(1 | 2)), "{text}");
            numbers_shown |= text.contains("Secret/") && text.contains("numbers");
            assert_no_secret_value(&format!("diff --to {to} --output {output}"), &text);
        }
    }
    assert!(
        numbers_shown,
        "the diff to {c3} shows the Secret `numbers` (masked)"
    );
}

/// The sum of `kgitops_fetch_total` over its results: every attempt to read the remote.
async fn fetch_attempts(addr: SocketAddr) -> u64 {
    let (code, metrics) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    metrics
        .lines()
        .filter(|l| l.starts_with("kgitops_fetch_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A signed push webhook for `main` with delivery id `id`: GitHub's signature and
/// `X-GitHub-Delivery`, or GitLab's token and `X-Gitlab-Event-UUID`.
fn delivery(id: &str, gitlab: bool) -> (Vec<(&'static str, String)>, Vec<u8>) {
    let body = push_event("main");
    let headers = if gitlab {
        vec![
            ("X-Gitlab-Event", "Push Hook".to_string()),
            ("X-Gitlab-Token", WEBHOOK_SECRET.to_string()),
            ("X-Gitlab-Event-UUID", id.to_string()),
        ]
    } else {
        vec![
            ("X-GitHub-Event", "push".to_string()),
            (
                "X-Hub-Signature-256",
                github_signature(WEBHOOK_SECRET.as_bytes(), &body),
            ),
            ("X-GitHub-Delivery", id.to_string()),
        ]
    };
    (headers, body)
}

// Issue 21: 200 webhooks made 159 fetches, and a replayed delivery fetched again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_storm_fetches_at_most_twice_and_a_replayed_delivery_nothing() {
    let ns = common::namespace("daemon-storm").await;
    let tmp = tempfile::tempdir().unwrap();
    let work = platform_repo(&tmp.path().join("work"), &ns.name, "1");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    // No polls during the test; the spacing is longer than the default 1 s so that a burst sent
    // slowly on a loaded machine is still one burst.
    let spacing = Duration::from_secs(5);
    let source = format!(
        "  url: {}\n  interval: 1h\n  min_fetch_interval: {}s",
        remote.file_url(),
        spacing.as_secs()
    );
    let d = start(tmp.path(), &config_text(&source, "", "")).await;
    wait_applied(d.addr, &work.head()).await;
    let before = fetch_attempts(d.addr).await;

    write_platform(&work, &ns.name, "2");
    work.commit("a: 2");
    remote.push(&work, "main");
    let hook = d.hook;
    let (elapsed, c3) = {
        let work_dir = work.dir.clone();
        let remote_dir = remote.dir.clone();
        let ns = ns.name.clone();
        tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let mut c3 = String::new();
            for i in 0..200 {
                if i == 100 {
                    // A newer commit in the middle of the storm: the one that must end up applied.
                    let work = WorkRepo {
                        dir: work_dir.clone(),
                    };
                    write_platform(&work, &ns, "3");
                    c3 = work.commit("a: 3");
                    BareRemote {
                        dir: remote_dir.clone(),
                    }
                    .push(&work, "main");
                }
                let (headers, body) = delivery(&format!("storm-{i}"), i % 2 == 1);
                let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let (code, text) = http(hook, "POST", "/webhook", &h, &body);
                assert_eq!(code, 202, "webhook {i}: {text}");
            }
            (start.elapsed(), c3)
        })
        .await
        .unwrap()
    };
    assert!(
        elapsed < spacing,
        "sending 200 webhooks took {elapsed:?}: the machine is too loaded for this test"
    );
    wait_applied(d.addr, &c3).await;
    assert_eq!(settings_a(&ns.name).await.as_deref(), Some("3"));

    // Replays of deliveries already received (GitHub's and GitLab's ids): nothing happens.
    for (id, gitlab) in [("storm-10", false), ("storm-11", true)] {
        let (headers, body) = delivery(id, gitlab);
        let (code, text) = post_webhook(d.hook, headers, body).await;
        assert_eq!(code, 200, "{text}");
        assert!(text.contains("already received"), "{text}");
    }
    // Longer than the spacing: a fetch still queued would have run by now.
    tokio::time::sleep(spacing + Duration::from_secs(2)).await;
    let fetches = fetch_attempts(d.addr).await - before;
    assert!(
        fetches <= 2,
        "{fetches} fetches for 200 webhooks sent in {elapsed:?} and 2 replays"
    );
    let (_, metrics) = get(d.addr, "/metrics").await;
    for expected in [
        "kgitops_webhook_requests_total{result=\"accepted\"} 200",
        "kgitops_webhook_requests_total{result=\"duplicate\"} 2",
    ] {
        assert!(metrics.contains(expected), "{expected} missing in\n{metrics}");
    }
    d.stop().await;
}

// Issue 21: nothing handled HTTP 429 or Retry-After from the git host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_then_failing_git_host_is_backed_off_reported_and_alerted_once() {
    let ns = common::namespace("daemon-throttled").await;
    let tmp = tempfile::tempdir().unwrap();
    let (work, remote, server) = served_platform(tmp.path(), &ns.name);
    let sink = AlertSink::start();
    let interval = Duration::from_secs(1);
    let source = format!(
        "  url: {}\n  interval: 1s\n  auth: {{token_file: token}}",
        server.url("platform.git")
    );
    let alerts = format!("alerts:\n  - {{type: webhook, url: \"{}\"}}\n", sink.url);
    let d = start(tmp.path(), &config_text(&source, "", &alerts)).await;
    wait_applied(d.addr, &work.head()).await;
    let s = status(d.addr).await;
    assert_eq!(s["source"]["state"], "ok", "{s:#}");

    // The host throttles once (Retry-After: 3), then fails twice with 503, then recovers.
    let retry_after = Duration::from_secs(3);
    server.fail_next(429, Some("3"), 1);
    server.fail_next(503, None, 2);
    write_platform(&work, &ns.name, "2");
    let c2 = work.commit("a: 2");
    remote.push(&work, "main");
    let s = wait_for(d.addr, Duration::from_secs(20), "source throttled", || async {
        let s = status(d.addr).await;
        (s["source"]["state"] == "throttled").then_some(s)
    })
    .await;
    let source = &s["source"];
    assert!(
        source["since"].is_string() && source["retry_at"].is_string(),
        "{s:#}"
    );
    assert!(source["error"].as_str().unwrap().contains("429"), "{s:#}");
    assert_no_secret("/status", &s.to_string());
    assert!(!s.to_string().contains("tok-123"), "{s:#}");
    // Webhooks while throttled do not make the daemon ask sooner.
    for i in 0..20 {
        let (headers, body) = delivery(&format!("throttled-{i}"), false);
        assert_eq!(post_webhook(d.hook, headers, body).await.0, 202);
    }
    wait_for(d.addr, Duration::from_secs(30), "source down", || async {
        (status(d.addr).await["source"]["state"] == "down").then_some(())
    })
    .await;
    wait_applied(d.addr, &c2).await;
    let s = status(d.addr).await;
    assert_eq!(s["source"]["state"], "ok", "{s:#}");
    assert!(
        s["source"]["retry_at"].is_null() && s["source"]["error"].is_null(),
        "{s:#}"
    );

    // The requests the host saw: none within Retry-After of the 429, none within one poll
    // interval of a 503.
    let log = server.timed_log();
    let lines: Vec<&String> = log.iter().map(|(_, l)| l).collect();
    let first_fault = log
        .iter()
        .position(|(_, l)| l.ends_with("-> 429"))
        .unwrap_or_else(|| panic!("no 429 answered: {lines:#?}"));
    let faults = &log[first_fault..first_fault + 4];
    assert!(
        faults[1].1.ends_with("-> 503") && faults[2].1.ends_with("-> 503"),
        "{lines:#?}"
    );
    let gap = |i: usize| faults[i + 1].0 - faults[i].0;
    assert!(
        gap(0) >= retry_after,
        "asked again {:?} after a 429 with Retry-After: 3\n{lines:#?}",
        gap(0)
    );
    for i in [1, 2] {
        assert!(
            gap(i) >= interval,
            "asked again {:?} after a 503\n{lines:#?}",
            gap(i)
        );
    }

    let (_, metrics) = get(d.addr, "/metrics").await;
    for expected in [
        "kgitops_fetch_total{result=\"throttled\"} 1",
        "kgitops_fetch_total{result=\"down\"} 2",
        "kgitops_source_state{state=\"ok\"} 1",
        "kgitops_source_state{state=\"down\"} 0",
        "kgitops_source_state_since_seconds ",
    ] {
        assert!(metrics.contains(expected), "{expected} missing in\n{metrics}");
    }
    // One alert when throttling starts, one when it turns into an outage, one resolved.
    let fetch_alerts = wait_for(d.addr, Duration::from_secs(10), "the resolved alert", || async {
        let alerts: Vec<Value> = sink
            .alerts()
            .into_iter()
            .filter(|a| a["kind"] == "fetch")
            .collect();
        alerts.iter().any(|a| a["state"] == "resolved").then_some(alerts)
    })
    .await;
    let states: Vec<(String, String)> = fetch_alerts
        .iter()
        .map(|a| {
            (
                a["state"].as_str().unwrap().to_string(),
                a["summary"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(states.len(), 3, "{states:#?}");
    assert!(
        states[0].0 == "firing" && states[0].1.contains("throttled since"),
        "{states:#?}"
    );
    assert!(
        states[1].0 == "firing" && states[1].1.contains("down since"),
        "{states:#?}"
    );
    assert_eq!(states[2].0, "resolved", "{states:#?}");
    assert!(!serde_json::to_string(&fetch_alerts).unwrap().contains("tok-123"));
    d.stop().await;
}

// A restarted daemon whose first fetch fails after the probe succeeded must still publish the
// commit its old mirror holds (the probe may skip only commits already published).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_daemon_applies_the_commit_its_mirror_holds_after_a_failed_first_fetch() {
    let ns = common::namespace("daemon-restart-mirror").await;
    let tmp = tempfile::tempdir().unwrap();
    let (work, _remote, server) = served_platform(tmp.path(), &ns.name);
    let source = format!(
        "  url: {}\n  interval: 1s\n  auth: {{token_file: token}}",
        server.url("platform.git")
    );
    let text = config_text(&source, "", "");
    let d = start(tmp.path(), &text).await;
    wait_applied(d.addr, &work.head()).await;
    d.stop().await;

    // Same cache: the mirror is opened, not cloned. The probe passes, libgit2's fetch gets a 503.
    server.pass_next(1);
    server.fail_next(503, None, 1);
    let d = start(tmp.path(), &text).await;
    wait_for(d.addr, Duration::from_secs(20), "source down", || async {
        (status(d.addr).await["source"]["state"] == "down").then_some(())
    })
    .await;
    wait_applied(d.addr, &work.head()).await;
    d.stop().await;
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
    let (port, status_port) = free_ports();
    let config = format!(
        "source:\n  url: {}\n  interval: 1s\nclusters:\n  - name: dev\n    kubeconfig: {}\n\
         server:\n  listen: 127.0.0.1:{port}\n  status_listen: 127.0.0.1:{status_port}\nlimits:\n  max_render_input: 2Mi\ncache_dir: {}\n",
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
    let addr: SocketAddr = format!("127.0.0.1:{status_port}").parse().unwrap();
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
