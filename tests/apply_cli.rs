//! `kgitops apply` and `kgitops diff --live` end to end: a repository with a `clusters/dev` overlay,
//! rendered by the CLI and applied to the real control plane; exit codes as `kubectl diff`
//! (0 no changes, 1 changes, 2 error) and the report formats.

mod common;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

/// A repository whose `clusters/dev` overlay holds the platform fixture in namespace `app`.
fn repo(app: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("clusters/dev");
    std::fs::create_dir_all(&overlay).unwrap();
    let fixture = std::fs::read_to_string(common::repo_root().join("tests/fixtures/apply/platform.yaml"))
        .unwrap()
        .replace("APP", app);
    std::fs::write(overlay.join("platform.yaml"), fixture).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources:\n  - platform.yaml\n",
    )
    .unwrap();
    dir
}

fn kgitops(repo: &Path, args: &[&str]) -> Output {
    common::control_plane()
        .kgitops()
        .arg(args[0])
        .arg("--repo")
        .arg(repo)
        .args(&args[1..])
        .output()
        .expect("kgitops runs")
}

#[tokio::test]
async fn apply_then_diff_live_exit_codes_and_formats() {
    let ns = common::namespace("cli").await;
    let app = format!("{}-app", ns.name);
    let repo = repo(&app);
    let dir = repo.path();

    // Before anything: diff shows creations, exit 1.
    let out = kgitops(dir, &["diff", "--live", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("12 to create"),
        "{}",
        common::output_text(&out)
    );

    // A dry-run apply writes nothing.
    let out = kgitops(dir, &["apply", "--cluster", "dev", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("created (dry run)"),
        "{}",
        common::output_text(&out)
    );
    let out = kgitops(dir, &["diff", "--live", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::output_text(&out));

    // Apply: one line per object.
    let out = kgitops(dir, &["apply", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("Kafka/{app}/main created\n")),
        "{}",
        common::output_text(&out)
    );
    assert!(stdout.ends_with("0 unchanged\n"), "{}", common::output_text(&out));

    // Now clean: exit 0, in every format.
    let out = kgitops(dir, &["diff", "--live", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    let out = kgitops(dir, &["diff", "--live", "--cluster", "dev", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).expect("json plan");
    assert_eq!(plan["cluster"], "dev");
    assert!(
        plan["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] == "unchanged")
    );
    let out = kgitops(
        dir,
        &["diff", "--live", "--cluster", "dev", "--output", "markdown"],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("No changes."),
        "{}",
        common::output_text(&out)
    );
    let out = kgitops(dir, &["apply", "--cluster", "dev"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "12 unchanged\n",
        "{}",
        common::output_text(&out)
    );

    // A change in git: diff exit 1 with the diff, apply says configured.
    let file = dir.join("clusters/dev/platform.yaml");
    let changed = std::fs::read_to_string(&file)
        .unwrap()
        .replace("replicas: 3\n    listeners", "replicas: 5\n    listeners");
    std::fs::write(&file, changed).unwrap();
    let out = kgitops(dir, &["diff", "--live", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("+    replicas: 5"),
        "{}",
        common::output_text(&out)
    );
    let out = kgitops(dir, &["apply", "--cluster", "dev", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    let set: Value = serde_json::from_slice(&out.stdout).expect("json change set");
    let kafka = set["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["object"] == format!("Kafka/{app}/main"))
        .unwrap();
    assert_eq!(kafka["outcome"], "configured");
}

#[tokio::test]
async fn errors_exit_2_naming_the_object() {
    let ns = common::namespace("cli-errors").await;
    let app = format!("{}-app", ns.name);
    let repo = repo(&app);
    let dir = repo.path();

    // A Kafka the CRD schema rejects.
    let file = dir.join("clusters/dev/platform.yaml");
    let bad = std::fs::read_to_string(&file)
        .unwrap()
        .replace("replicas: 3\n    listeners", "replicas: three\n    listeners");
    std::fs::write(&file, &bad).unwrap();
    let out = kgitops(dir, &["apply", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("Kafka/{app}/main dry-run failed")),
        "{}",
        common::output_text(&out)
    );

    // No such overlay; no cluster access.
    let out = kgitops(dir, &["diff", "--live", "--cluster", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::output_text(&out));
    let out = common::control_plane()
        .kgitops()
        .env_remove("KUBECONFIG")
        .args(["diff", "--live", "--cluster", "dev", "--repo"])
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", common::output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not running in a cluster"),
        "{}",
        common::output_text(&out)
    );
}

#[tokio::test]
async fn unreachable_apiserver_exits_2_naming_the_server() {
    let ns = common::namespace("cli-unreachable").await;
    let repo = repo(&format!("{}-app", ns.name));
    let dir = repo.path();
    // The test kubeconfig, pointing at a port nothing listens on.
    let kubeconfig: String = std::fs::read_to_string(common::control_plane().kubeconfig())
        .unwrap()
        .lines()
        .map(|line| match line.trim().strip_prefix("server: ") {
            Some(_) => "    server: https://127.0.0.1:1\n".to_string(),
            None => format!("{line}\n"),
        })
        .collect();
    let path = dir.join("unreachable.kubeconfig");
    std::fs::write(&path, kubeconfig).unwrap();

    for command in [&["apply"][..], &["diff", "--live"][..]] {
        let out = common::control_plane()
            .kgitops()
            .args(command)
            .args(["--cluster", "dev", "--repo"])
            .arg(dir)
            .arg("--kubeconfig")
            .arg(&path)
            .output()
            .expect("kgitops runs");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{command:?}: {}",
            common::output_text(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("error: ")
                && stderr.contains("apiserver https://127.0.0.1:1 unreachable: ")
                && stderr.lines().count() == 1,
            "{command:?}: one line naming the server:\n{}",
            common::output_text(&out)
        );
    }
}

#[tokio::test]
async fn rev_renders_git_objects_not_the_work_tree() {
    let ns = common::namespace("cli-rev").await;
    let app = format!("{}-app", ns.name);
    let repo = repo(&app);
    let dir = repo.path();
    common::git(dir, &["init", "-q"]);
    common::git(dir, &["add", "."]);
    common::git(dir, &["commit", "-q", "-m", "platform"]);
    // Uncommitted edit: only the work tree has it.
    let file = dir.join("clusters/dev/platform.yaml");
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("replicas: 3\n    listeners", "replicas: 9\n    listeners");
    std::fs::write(&file, edited).unwrap();

    let out = kgitops(dir, &["apply", "--cluster", "dev", "--rev", "HEAD"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    let out = kgitops(dir, &["diff", "--live", "--cluster", "dev", "--rev", "HEAD"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    let out = kgitops(dir, &["diff", "--live", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("+    replicas: 9"),
        "{}",
        common::output_text(&out)
    );
}

/// The repository's own `clusters/dev` (the only test of this binary that uses its namespace).
#[tokio::test]
async fn the_repos_dev_cluster_applies_shows_no_changes_and_heals_drift() {
    let cp = common::control_plane();
    let run = |args: &[&str]| cp.kgitops().args(args).output().expect("kgitops runs");

    let out = run(&["apply", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Kafka/kafka-dev/main created\n"),
        "{}",
        common::output_text(&out)
    );
    assert!(
        stdout.contains("Namespace/kafka-dev created\n"),
        "{}",
        common::output_text(&out)
    );

    let out = run(&["diff", "--live", "--cluster", "dev"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a freshly applied cluster shows changes:\n{}",
        common::output_text(&out)
    );
    let out = run(&["apply", "--cluster", "dev"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with(" unchanged\n"),
        "{}",
        common::output_text(&out)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("configured"),
        "{}",
        common::output_text(&out)
    );

    // Drift by hand, as kubectl patch does it.
    let kubectl = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cp.kubeconfig())
        .args([
            "-n",
            "kafka-dev",
            "patch",
            "kafka",
            "main",
            "--type",
            "merge",
            "-p",
        ])
        .arg(r#"{"spec":{"kafka":{"replicas":7}}}"#)
        .output()
        .expect("kubectl runs");
    assert!(
        kubectl.status.success(),
        "{}",
        String::from_utf8_lossy(&kubectl.stderr)
    );
    let out = run(&["diff", "--live", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(1), "{}", common::output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("drift: spec.kafka.replicas: 7 -> "),
        "{}",
        common::output_text(&out)
    );
    assert!(
        stdout.contains(", changed by kubectl-patch"),
        "{}",
        common::output_text(&out)
    );
    let out = run(&["apply", "--cluster", "dev"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("Kafka/kafka-dev/main configured\n  kubectl-patch lost spec.kafka.replicas\n"),
        "{}",
        common::output_text(&out)
    );
    let out = run(&["diff", "--live", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
}
