//! The apiserver goes away in the middle of `kgitops apply` (issue 6): the apply fails with a clear
//! error and exit 2, never a panic or a hang; once the apiserver is back (etcd and its data kept) the
//! next apply converges and `diff --live` shows no changes, with nothing lost.
//!
//! Alone in its test binary: it kills and restarts the apiserver of the control plane the binary's
//! tests share.

mod common;

use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kgitops::apply::inventory::PART_OF_LABEL;
use kube::Api;
use kube::api::ListParams;

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
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains("apiserver") && first.contains(&server),
        "the first line should say the apiserver {server} could not be reached:\n{}",
        common::output_text(&out)
    );
    // One line for every object the apiserver's absence failed, one saying what was written.
    let rest: Vec<&str> = stderr.lines().skip(1).collect();
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
