//! `kgitops diff --from REV --to REV` end to end, as pull-request CI runs it: a real git repository
//! holding this repo's own `base/`, `clusters/` and `infrastructure/` (the Strimzi releases the
//! overlays include), a second commit that changes both platforms of the base, one overlay and adds
//! a Secret; then the PR workflow's two steps (diff as Markdown, validate the change).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;

const PASSWORD: &str = "hunter2-s3cr3t-value";

fn edit(repo: &Path, path: &str, from: &str, to: &str) {
    let path = repo.join(path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// The platform at HEAD~1, and at HEAD: the kafka-exporter port renamed in both platforms of the
/// base (every cluster), dev's broker pool 2 -> 3 (with the third JMX Service no longer deleted),
/// a generated Secret added to dev.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    common::git(r, &["init", "-q", "-b", "main"]);
    common::copy_dir(&common::repo_root().join("base"), &r.join("base"));
    common::copy_dir(&common::repo_root().join("clusters"), &r.join("clusters"));
    common::copy_dir(
        &common::repo_root().join("infrastructure"),
        &r.join("infrastructure"),
    );
    common::git(r, &["add", "."]);
    common::git(r, &["commit", "-qm", "platform"]);
    edit(
        r,
        "base/kafka/kafka-exporter-service.yaml",
        "- name: metrics",
        "- name: http-metrics",
    );
    edit(
        r,
        "base/kraft/kafka/kafka-exporter-service.yaml",
        "- name: metrics",
        "- name: http-metrics",
    );
    edit(
        r,
        "clusters/dev/kafka/patches/node-pools-size.yaml",
        "replicas: 2",
        "replicas: 3",
    );
    edit(
        r,
        "clusters/dev/kafka/kustomization.yaml",
        "  - path: patches/delete-jmx-broker-2.yaml\n",
        "",
    );
    let kustomization = r.join("clusters/dev/kafka/kustomization.yaml");
    let mut text = std::fs::read_to_string(&kustomization).unwrap();
    text.push_str(&format!(
        "\nsecretGenerator:\n  - name: kafka-admin\n    literals:\n      - password={PASSWORD}\n"
    ));
    std::fs::write(&kustomization, text).unwrap();
    common::git(
        r,
        &[
            "commit",
            "-qam",
            "dev: three brokers, admin secret; base: exporter port name",
        ],
    );
    dir
}

fn kgitops(repo: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kgitops"))
        .args(args)
        .arg("--repo")
        .arg(repo)
        .output()
        .expect("kgitops runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_no_secret(text: &str) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(PASSWORD);
    assert!(!text.contains(PASSWORD), "plain secret value leaked:\n{text}");
    assert!(!text.contains(&b64), "base64 secret value leaked:\n{text}");
}

#[test]
fn a_change_exits_1_with_per_cluster_diffs_and_no_secret_values() {
    let repo = repo();
    let out = kgitops(repo.path(), &["diff", "--from", "HEAD~1", "--to", "HEAD"]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secret(&text);
    assert!(text.contains("KafkaNodePool/kafka-dev/broker (update)"), "{text}");
    assert!(text.contains("-  replicas: 2\n+  replicas: 3\n"), "{text}");
    assert!(
        text.contains("Service/kafka-dev/main-broker-2-jmx (create)"),
        "{text}"
    );
    for cluster in ["dev", "staging", "prod"] {
        let exporter = format!("Service/kafka-{cluster}/kafka-exporter (update)");
        assert!(text.contains(&exporter), "{exporter} missing:\n{text}");
    }
    assert!(
        text.contains("-  - name: metrics\n+  - name: http-metrics\n"),
        "{text}"
    );
    assert!(
        text.contains("cluster prod-eu-west-1: 0 to create, 1 to update,"),
        "{text}"
    );

    let out = kgitops(
        repo.path(),
        &["diff", "--from", "HEAD~1", "--to", "HEAD", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_no_secret(&json.to_string());
    assert_eq!(json["changed"], true);
    let clusters: Vec<&str> = json["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(clusters, ["dev", "prod-eu-west-1", "staging"]);
    let dev_secret = json["clusters"][0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"]["gvk"]["kind"] == "Secret")
        .expect("the generated Secret is in dev's plan");
    assert_eq!(dev_secret["action"], "create");
}

#[test]
fn markdown_is_a_pr_comment_with_a_table_and_a_section_per_cluster() {
    let repo = repo();
    let out = kgitops(
        repo.path(),
        &[
            "diff",
            "--from",
            "HEAD~1",
            "--to",
            "HEAD",
            "--cluster",
            "dev",
            "--output",
            "markdown",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert_no_secret(&text);
    insta::assert_snapshot!(text);
}

#[test]
fn the_same_revision_exits_0_and_errors_exit_2() {
    let repo = repo();
    let out = kgitops(
        repo.path(),
        &["diff", "--from", "HEAD", "--to", "HEAD", "--output", "markdown"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("No changes in any cluster."));

    let out = kgitops(
        repo.path(),
        &["diff", "--from", "HEAD~1", "--to", "HEAD", "--cluster", "nope"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no cluster overlay clusters/nope"), "{err}");

    let out = kgitops(repo.path(), &["diff", "--from", "no-such-rev", "--to", "HEAD"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-rev"));
}

/// The flow of `.github/workflows/kgitops-diff.yml`: the Markdown diff for the comment, then
/// validation of the change, which fails the job on errors.
#[test]
fn the_pull_request_workflow_flow() {
    let repo = repo();
    let diff = kgitops(
        repo.path(),
        &["diff", "--from", "HEAD~1", "--to", "HEAD", "--output", "markdown"],
    );
    assert_eq!(
        diff.status.code(),
        Some(1),
        "changes are not a failure of the diff step"
    );
    assert!(stdout(&diff).starts_with("## kgitops diff `HEAD~1` → `HEAD`"));
    // No --crds: the repository carries the Strimzi releases. dev and prod render the CRDs of
    // theirs; staging shares dev's Kubernetes cluster and its CRDs, so validate takes those of the
    // release it declares from infrastructure/strimzi/.
    let validate = kgitops(repo.path(), &["validate", "--from", "HEAD~1", "--to", "HEAD"]);
    let report = stdout(&validate);
    // dev's broker pool grew to three brokers and its third JMX Service came back: the change is
    // valid.
    assert_eq!(
        validate.status.code(),
        Some(0),
        "{report}\n{}",
        String::from_utf8_lossy(&validate.stderr)
    );

    // A dangerous follow-up: shrinking prod's broker storage must fail the job.
    edit(
        repo.path(),
        "clusters/prod-eu-west-1/kafka/patches/kafka-size.yaml",
        "size: 500Gi",
        "size: 400Gi",
    );
    common::git(repo.path(), &["commit", "-qam", "prod: smaller disks"]);
    let validate = kgitops(repo.path(), &["validate", "--from", "HEAD~1", "--to", "HEAD"]);
    let report = stdout(&validate);
    assert_eq!(validate.status.code(), Some(1), "{report}");
    assert!(report.contains("kafka-storage-shrink"), "{report}");
}
