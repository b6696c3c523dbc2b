//! The apiserver goes away in the middle of `kgitops apply` (issue 6): the apply fails with a clear
//! error and exit 2, never a panic or a hang; once the apiserver is back (etcd and its data kept) the
//! next apply converges and `diff --live` shows no changes, with nothing lost.
//!
//! The daemon's drift watches survive the same (issue 21): after the apiserver is killed and
//! restarted, each watch lists again at most a few times (no re-listing storm) and a hand edit made
//! afterwards is still seen and healed.
//!
//! Alone in their test binary: they kill and restart the apiserver of the control plane the
//! binary's tests share, one test at a time ([`RESTARTS`]).

mod common;

use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kgitops::apply::inventory::PART_OF_LABEL;
use kube::Api;
use kube::api::ListParams;

/// The tests of this binary take turns: each restarts the apiserver every test shares.
static RESTARTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// ConfigMaps in the overlay's resources, plus the one of its generator.
const OBJECTS: usize = 400;
/// The apiserver is killed once this many of them exist.
const KILL_AFTER: usize = 40;

/// A git repository whose `clusters/restart` overlay puts [`OBJECTS`] ConfigMaps and a generated one
/// into namespace `ns`.
fn repo(ns: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let overlay = dir.path().join("clusters/restart");
    std::fs::create_dir_all(&overlay).expect("overlay dir");
    let mut objects = String::new();
    for i in 0..OBJECTS {
        objects.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:04}\ndata:\n  index: \"{i}\"\n  payload: {}\n",
            "x".repeat(200)
        ));
    }
    std::fs::write(overlay.join("configmaps.yaml"), objects).expect("write configmaps");
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!(
            "namespace: {ns}\nresources:\n  - configmaps.yaml\nconfigMapGenerator:\n  - name: generated\n    literals:\n      - restart=survived\n"
        ),
    )
    .expect("write kustomization");
    common::git(dir.path(), &["init", "-q"]);
    common::git(dir.path(), &["add", "."]);
    common::git(dir.path(), &["commit", "-q", "-m", "a few hundred ConfigMaps"]);
    dir
}

/// `kgitops COMMAND --cluster restart --repo REPO --rev HEAD --kubeconfig ...` with `extra` arguments.
fn kgitops(repo: &Path, command: &[&str], extra: &[&str]) -> std::process::Command {
    let cp = common::control_plane();
    let mut cmd = cp.kgitops();
    cmd.args(command)
        .args(["--cluster", "restart", "--rev", "HEAD", "--repo"])
        .arg(repo)
        .arg("--kubeconfig")
        .arg(cp.kubeconfig())
        .args(extra);
    cmd
}

/// Names of the members of the cluster's ApplySet in `ns`.
async fn members(cms: &Api<ConfigMap>) -> Vec<String> {
    cms.list_metadata(&ListParams::default().labels(PART_OF_LABEL))
        .await
        .expect("list ConfigMaps")
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect()
}

/// Waits for `child` (its output redirected to files in `dir`) for up to `timeout`; kills it and
/// fails when it is still running then.
fn wait_for(mut child: Child, dir: &Path, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kgitops apply still running {timeout:?} after the apiserver went away (a hang); stderr:\n{}",
                std::fs::read_to_string(dir.join("stderr")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: std::fs::read(dir.join("stdout")).expect("stdout file"),
        stderr: std::fs::read(dir.join("stderr")).expect("stderr file"),
    }
}

#[tokio::test]
async fn apiserver_killed_mid_apply_then_restarted_the_next_run_converges() {
    let _turn = RESTARTS.lock().await;
    let cp = common::control_plane();
    let ns = common::namespace("apply-restart").await;
    let repo = repo(&ns.name);
    let dir = repo.path();
    let server = std::fs::read_to_string(cp.kubeconfig())
        .expect("kubeconfig")
        .lines()
        .find_map(|line| line.trim().strip_prefix("server: ").map(str::to_string))
        .expect("kubeconfig names its server");

    // Start the apply (2 requests in flight, so that it takes a while), kill the apiserver once some
    // of the objects exist.
    let logs = tempfile::tempdir().expect("temp dir");
    let child = kgitops(dir, &["apply"], &["--concurrency", "2"])
        .stdout(std::fs::File::create(logs.path().join("stdout")).expect("stdout file"))
        .stderr(std::fs::File::create(logs.path().join("stderr")).expect("stderr file"))
        .spawn()
        .expect("kgitops runs");
    let cms: Api<ConfigMap> = ns.api();
    let deadline = Instant::now() + Duration::from_secs(120);
    let before_kill = loop {
        let members = members(&cms).await;
        if members.len() >= KILL_AFTER {
            cp.kill_apiserver();
            break members.len();
        }
        assert!(
            Instant::now() < deadline,
            "only {} objects after 120 s of apply",
            members.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let out = wait_for(child, logs.path(), Duration::from_secs(120));
    eprintln!(
        "apply killed after {before_kill} objects:\n{}",
        common::output_text(&out)
    );
    assert_eq!(out.status.code(), Some(2), "{}", common::output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{}", common::output_text(&out));
    // The report, without the log lines that may come first (the lock's renewer warns when its
    // renewal meets the dead apiserver before the apply does).
    let report: Vec<&str> = stderr.lines().filter(|l| !is_log_line(l)).collect();
    let first = report.first().copied().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains("apiserver") && first.contains(&server),
        "the first line should say the apiserver {server} could not be reached:\n{}",
        common::output_text(&out)
    );
    // One line for every object the apiserver's absence failed, one saying what was written.
    let rest: Vec<&str> = report[1..].to_vec();
    assert!(
        rest.len() == 1 && rest[0].ends_with("; the next run converges"),
        "one clear error, not one line per object:\n{}",
        common::output_text(&out)
    );

    // While it is down: exit 2 at once, naming the server.
    for command in [&["apply"][..], &["diff", "--live"][..]] {
        let out = kgitops(dir, command, &[]).output().expect("kgitops runs");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{command:?}: {}",
            common::output_text(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{}", common::output_text(&out));
        assert!(
            stderr.starts_with("error: ") && stderr.contains("unreachable") && stderr.contains(&server),
            "{command:?}: {}",
            common::output_text(&out)
        );
    }

    // Back, with etcd's data: nothing written before the kill was lost.
    cp.restart_apiserver();
    let cms: Api<ConfigMap> = Api::namespaced(cp.client().await, &ns.name);
    let after_restart = members(&cms).await.len();
    assert!(
        after_restart >= before_kill,
        "{before_kill} objects before the kill, {after_restart} after the restart"
    );

    // The next run converges, and then there is nothing left to do.
    let out = kgitops(dir, &["apply"], &[]).output().expect("kgitops runs");
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("configured"),
        "objects written before the kill are unchanged:\n{}",
        common::output_text(&out)
    );
    let out = kgitops(dir, &["diff", "--live"], &[])
        .output()
        .expect("kgitops runs");
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    let out = kgitops(dir, &["apply"], &[]).output().expect("kgitops runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{} unchanged\n", OBJECTS + 1),
        "{}",
        common::output_text(&out)
    );

    // Every object exists, with its data.
    let mut names = members(&cms).await;
    names.sort();
    let generated: Vec<&String> = names.iter().filter(|n| n.starts_with("generated-")).collect();
    assert_eq!(generated.len(), 1, "{names:?}");
    let mut expected: Vec<String> = (0..OBJECTS).map(|i| format!("cm-{i:04}")).collect();
    expected.push(generated[0].clone());
    expected.sort();
    assert_eq!(names, expected);
    let last = cms
        .get(&format!("cm-{:04}", OBJECTS - 1))
        .await
        .expect("last ConfigMap");
    assert_eq!(
        last.data.unwrap_or_default().get("index").map(String::as_str),
        Some(&*format!("{}", OBJECTS - 1))
    );
}

/// LIST requests for `resource` the apiserver served since it started (its own metrics).
async fn lists_since_start(client: &kube::Client, resource: &str) -> u64 {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new()).expect("request"))
        .await
        .expect("GET /metrics");
    let needle = format!("resource=\"{resource}\"");
    text.lines()
        .filter(|l| {
            l.starts_with("apiserver_request_total{") && l.contains("verb=\"LIST\"") && l.contains(&needle)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// The `spec.authorization.type` of KafkaUser `name`, or `None` while it does not exist.
async fn user_spec(users: &Api<kube::api::DynamicObject>, name: &str) -> Option<String> {
    let user = users.get_opt(name).await.ok().flatten()?;
    Some(
        user.data["spec"]["authentication"]["type"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_watches_survive_an_apiserver_restart_without_relisting_storms() {
    let _turn = RESTARTS.lock().await;
    let cp = common::control_plane();
    let ns = common::namespace("watch-restart").await;
    // KafkaUsers: a kind the apiserver itself never lists, so every LIST of it is the daemon's.
    let work = tempfile::tempdir().expect("temp dir");
    let overlay = work.path().join("clusters/dev");
    std::fs::create_dir_all(&overlay).expect("overlay dir");
    let mut users = String::new();
    for i in 0..20 {
        users.push_str(&format!(
            "---\napiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaUser\nmetadata:\n  name: user-{i:02}\n  labels:\n    strimzi.io/cluster: main\nspec:\n  authentication:\n    type: tls\n"
        ));
    }
    std::fs::write(overlay.join("users.yaml"), users).expect("write users");
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!("namespace: {}\nresources:\n  - users.yaml\n", ns.name),
    )
    .expect("write kustomization");
    let text = format!(
        "source:\n  path: {}\nclusters:\n  - name: dev\n    kubeconfig: {}\n    drift: heal\nserver:\n  listen: 127.0.0.1:0\n  status_listen: 127.0.0.1:0\n",
        work.path().display(),
        cp.kubeconfig().display()
    );
    let config = kgitops::daemon::Config::parse(&text, &work.path().join("kgitops.yaml"), work.path())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let daemon = kgitops::daemon::Daemon::bind(config).await.expect("daemon binds");
    let token = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(daemon.run(token.clone()));

    let resource = kube::core::ApiResource::from_gvk_with_plural(
        &kube::core::GroupVersionKind::gvk("kafka.strimzi.io", "v1beta2", "KafkaUser"),
        "kafkausers",
    );
    let users: Api<kube::api::DynamicObject> = Api::namespaced_with(ns.client.clone(), &ns.name, &resource);
    let deadline = Instant::now() + Duration::from_secs(60);
    while user_spec(&users, "user-19").await.is_none() {
        assert!(
            Instant::now() < deadline,
            "the daemon did not apply the KafkaUsers within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let the watches start before the apiserver goes.
    tokio::time::sleep(Duration::from_secs(3)).await;

    tokio::task::spawn_blocking(|| {
        let cp = common::control_plane();
        cp.kill_apiserver();
        std::thread::sleep(Duration::from_secs(2));
        cp.restart_apiserver();
    })
    .await
    .expect("restart");
    // The watches reconnect with backoff; give them time to storm if they were going to.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let admin = common::client().await;
    let lists = lists_since_start(&admin, "kafkausers").await;
    eprintln!("LIST kafkausers in the 15 s after the restart: {lists}");
    assert!(
        lists <= 3,
        "the drift watch listed KafkaUsers {lists} times in 15 s after one restart (one watch: at most a few)"
    );

    // The watch still works: a hand edit is seen and healed.
    let users: Api<kube::api::DynamicObject> = Api::namespaced_with(admin, &ns.name, &resource);
    users
        .patch(
            "user-07",
            &kube::api::PatchParams {
                field_manager: Some("kubectl-edit".into()),
                ..kube::api::PatchParams::default()
            },
            &kube::api::Patch::Merge(
                serde_json::json!({"spec": {"authentication": {"type": "scram-sha-512"}}}),
            ),
        )
        .await
        .expect("hand edit");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if user_spec(&users, "user-07").await.as_deref() == Some("tls") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a hand edit after the restart was not healed within 60 s: the drift watch did not survive"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
}

/// A tracing log line (an RFC 3339 timestamp first, coloured or not) rather than a line of the report.
fn is_log_line(line: &str) -> bool {
    let b = line.as_bytes();
    line.starts_with('\u{1b}') || (b.len() > 10 && b[4] == b'-' && b[7] == b'-' && b[10] == b'T')
}
