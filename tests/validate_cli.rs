//! `kgitops validate` end to end: a real git repository with two commits and a dirty work tree,
//! rendered by the render engine, validated against the Strimzi CRDs; exit codes 0, 1 and 2.

mod common;
mod validate_support;

use std::path::Path;
use std::process::Command;

use kgitops::manifest::yaml::to_yaml_stream;
use serde_json::{Value, json};
use validate_support::{crd_dir, kafka, platform, remove, set};

/// The example platform without namespaces (the overlays set them) as YAML, its Kafka changed by `f`.
fn platform_yaml(f: impl FnOnce(&mut Value)) -> String {
    let mut objects = platform();
    for obj in &mut objects {
        remove(obj, "/metadata/namespace");
    }
    f(kafka(&mut objects));
    to_yaml_stream(&objects)
}

fn write(repo: &Path, path: &str, text: &str) {
    let path = repo.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A platform repo: base/ with the example platform, overlays dev and prod; commit 1 valid, commit
/// 2 scales the brokers down and shrinks the storage.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    common::git(r, &["init", "-q", "-b", "main"]);
    write(r, "base/platform.yaml", &platform_yaml(|_| {}));
    write(r, "base/kustomization.yaml", "resources:\n- platform.yaml\n");
    for (cluster, ns) in [("dev", "kafka-dev"), ("prod", "kafka-prod")] {
        write(
            r,
            &format!("clusters/{cluster}/kustomization.yaml"),
            &format!("namespace: {ns}\nresources:\n- ../../base\n"),
        );
    }
    common::git(r, &["add", "."]);
    common::git(r, &["commit", "-qm", "platform"]);
    let shrunk = platform_yaml(|k| {
        set(k, "/spec/kafka/replicas", json!(2));
        set(k, "/spec/kafka/storage/size", json!("50Gi"));
    });
    write(r, "base/platform.yaml", &shrunk);
    common::git(r, &["commit", "-qam", "smaller"]);
    dir
}

fn kgitops(repo: &Path, args: &[&str]) -> (i32, String, String) {
    let crds = crd_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_kgitops"))
        .arg("validate")
        .arg("--repo")
        .arg(repo)
        .arg("--crds")
        .arg(&crds)
        .args(args)
        .output()
        .expect("kgitops runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_clean_revision_exits_0() {
    let dir = repo();
    let (code, out, err) = kgitops(dir.path(), &["--rev", "HEAD~1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.ends_with("0 error(s), 0 warning(s) in 2 cluster(s): dev, prod\n"),
        "{out}"
    );
}

#[test]
fn a_dangerous_change_exits_1_with_stable_json() {
    let dir = repo();
    let (code, out, err) = kgitops(
        dir.path(),
        &[
            "--from",
            "HEAD~1",
            "--to",
            "HEAD",
            "--cluster",
            "prod",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 1, "{out}{err}");
    insta::assert_snapshot!(out);
}

#[test]
fn the_work_tree_is_the_default_and_schema_errors_exit_1() {
    let dir = repo();
    let broken = platform_yaml(|k| set(k, "/spec/kafka/replicas", json!("three")));
    write(dir.path(), "base/platform.yaml", &broken);
    let (code, out, err) = kgitops(dir.path(), &["--cluster", "dev"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("error[schema-type] dev: Kafka/kafka-dev/main spec.kafka.replicas\n  expected integer, got string \"three\"\n"),
        "{out}"
    );
    // HEAD itself is unaffected by the work tree.
    let (code, out, err) = kgitops(dir.path(), &["--rev", "HEAD", "--cluster", "dev"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("error[kafka-rf-above-brokers]"), "{out}");
    assert!(!out.contains("schema-type"), "{out}");
}

#[test]
fn what_cannot_run_exits_2() {
    let dir = repo();
    let (code, _, err) = kgitops(dir.path(), &["--cluster", "staging"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no cluster overlay clusters/staging (clusters: dev, prod)"),
        "{err}"
    );
    let (code, _, err) = kgitops(dir.path(), &["--rev", "no-such-rev"]);
    assert_eq!(code, 2);
    assert!(err.contains("no-such-rev"), "{err}");
    write(
        dir.path(),
        "clusters/dev/kustomization.yaml",
        "resources:\n- missing.yaml\n",
    );
    let (code, _, err) = kgitops(dir.path(), &["--cluster", "dev"]);
    assert_eq!(code, 2);
    assert!(err.contains("rendering clusters/dev"), "{err}");
    let (code, _, err) = kgitops(dir.path(), &["--crds", "/nonexistent/crds"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/crds"), "{err}");
}
