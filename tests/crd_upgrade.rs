//! An operator upgrade whose CRDs drop a stored API version (Strimzi 0.45 → 1.x: `v1beta2` → `v1`),
//! against the real apiserver: `diff --live` and `apply` refuse it before anything is written, name
//! the CRD and say what to run; once the stored objects were migrated (what Strimzi's `crd-upgrade`
//! does: storage version `v1`, `status.storedVersions: [v1]`) the same revision applies.
//!
//! Offline, `validate --from --to` reports the same change from the two revisions alone
//! (`crd-stored-version-dropped`, `crd-served-version-dropped`).
//!
//! A test binary of its own: it rewrites the cluster-wide `kafkas.kafka.strimzi.io` CRD that the
//! harness installs (Strimzi 0.45.2, stored as `v1beta2`).

mod common;

use std::path::Path;
use std::process::Output;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

/// The Kafka CRD of a Strimzi release as upstream ships it (vendored in `infrastructure/strimzi/`).
fn kafka_crd(release: &str) -> String {
    let path = common::repo_root().join(format!("infrastructure/strimzi/{release}/040-Crd-kafka.yaml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A repository whose `clusters/dev` holds the Strimzi 1.2.0 Kafka CRD and a ConfigMap in `ns`.
fn upgrade_repo(ns: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("clusters/dev");
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(overlay.join("crd.yaml"), kafka_crd("1.2.0")).unwrap();
    std::fs::write(
        overlay.join("marker.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: marker\n  namespace: {ns}\ndata:\n  a: b\n"
        ),
    )
    .unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources:\n  - crd.yaml\n  - marker.yaml\n",
    )
    .unwrap();
    dir
}

fn kgitops(repo: &Path, args: &[&str]) -> Output {
    common::control_plane().kgitops_in(repo, args)
}

fn versions(crd: &CustomResourceDefinition) -> Vec<String> {
    crd.spec.versions.iter().map(|v| v.name.clone()).collect()
}

#[tokio::test]
async fn a_crd_update_dropping_a_stored_version_is_refused_before_any_write_then_applies_after_migration() {
    let ns = common::namespace("crd-upgrade").await;
    let crds: Api<CustomResourceDefinition> = Api::all(ns.client.clone());
    let name = "kafkas.kafka.strimzi.io";
    let before = crds.get(name).await.unwrap();
    assert!(
        before
            .status
            .as_ref()
            .and_then(|s| s.stored_versions.clone())
            .unwrap_or_default()
            .contains(&"v1beta2".to_string()),
        "the harness installs the 0.45.2 CRDs, stored as v1beta2: {:?}",
        before.status
    );
    let repo = upgrade_repo(&ns.name);

    for command in [
        &["diff", "--live", "--cluster", "dev"][..],
        &["apply", "--cluster", "dev"][..],
    ] {
        let out = kgitops(repo.path(), command);
        let text = common::output_text(&out);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {text}");
        assert!(
            text.contains("CustomResourceDefinition/kafkas.kafka.strimzi.io")
                && text.contains("v1beta2")
                && text.contains("status.storedVersions")
                && text.contains("crd-upgrade"),
            "{command:?}: the error names the CRD, the version and what to run: {text}"
        );
    }
    // Nothing was written: the CRD is the one before, the ConfigMap of the same revision not created.
    let after = crds.get(name).await.unwrap();
    assert_eq!(versions(&after), versions(&before));
    assert_eq!(after.metadata.resource_version, before.metadata.resource_version);
    let cms: Api<ConfigMap> = ns.api();
    assert!(
        cms.get_opt("marker").await.unwrap().is_none(),
        "nothing of the revision is applied"
    );

    // What `crd-upgrade` leaves behind: the 1.2.0 CRD's v1 as storage version next to v1beta2, every
    // object re-stored, and v1beta2 removed from status.storedVersions.
    let mut migrated: Value = serde_json::to_value(&after).unwrap();
    let v1: Value =
        serde_saphyr::from_str::<Value>(&kafka_crd("1.2.0")).unwrap()["spec"]["versions"][0].clone();
    assert_eq!(v1["name"], "v1");
    let mut v1beta2 = migrated["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1beta2")
        .unwrap()
        .clone();
    v1beta2["storage"] = json!(false);
    migrated["spec"]["versions"] = json!([v1, v1beta2]);
    migrated["metadata"] = json!({"name": name});
    migrated.as_object_mut().unwrap().remove("status");
    crds.patch(
        name,
        &PatchParams::apply("crd-upgrade-test").force(),
        &Patch::Apply(&migrated),
    )
    .await
    .unwrap();
    crds.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"storedVersions": ["v1"]}})),
    )
    .await
    .unwrap();

    let out = kgitops(repo.path(), &["apply", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    assert_eq!(versions(&crds.get(name).await.unwrap()), ["v1"]);
    assert!(cms.get_opt("marker").await.unwrap().is_some());
}

/// `kgitops validate --from A --to B` over a repository whose `clusters/dev` holds the CRD `from`
/// in commit A and `to` in commit B.
fn validate_change(from: &str, to: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("clusters/dev");
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(overlay.join("kustomization.yaml"), "resources:\n  - crd.yaml\n").unwrap();
    common::git(dir.path(), &["init", "-q", "-b", "main"]);
    for (crd, tag) in [(from, "a"), (to, "b")] {
        std::fs::write(overlay.join("crd.yaml"), crd).unwrap();
        common::git(dir.path(), &["add", "-A"]);
        common::git(dir.path(), &["commit", "-q", "-m", tag]);
        common::git(dir.path(), &["tag", tag]);
    }
    std::process::Command::new(env!("CARGO_BIN_EXE_kgitops"))
        .args(["validate", "--repo"])
        .arg(dir.path())
        .args(["--from", "a", "--to", "b", "--output", "json"])
        .output()
        .expect("kgitops runs")
}

/// The rule ids and severities of a JSON validate report.
fn findings(out: &Output) -> Vec<(String, String)> {
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", common::output_text(out)));
    report["findings"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", common::output_text(out)))
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_string(),
                f["severity"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn validate_across_the_operator_upgrade_reports_the_dropped_storage_version() {
    let out = validate_change(&kafka_crd("0.45.2"), &kafka_crd("1.2.0"));
    assert_eq!(out.status.code(), Some(1), "{}", common::output_text(&out));
    let found = findings(&out);
    assert!(
        found.contains(&("crd-stored-version-dropped".into(), "error".into())),
        "{found:?}\n{}",
        common::output_text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("crd-upgrade"),
        "{}",
        common::output_text(&out)
    );
}

#[test]
fn validate_warns_when_a_served_only_version_is_dropped() {
    // What 0.49–0.51 leave after `crd-upgrade`: v1 stored, v1beta2 still served; then 1.2.0 drops it.
    let mut crd: Value = serde_saphyr::from_str(&kafka_crd("1.2.0")).unwrap();
    let mut v1beta2 = crd["spec"]["versions"][0].clone();
    v1beta2["name"] = json!("v1beta2");
    v1beta2["storage"] = json!(false);
    crd["spec"]["versions"].as_array_mut().unwrap().push(v1beta2);
    let both = serde_json::to_string(&crd).unwrap();
    let out = validate_change(&both, &kafka_crd("1.2.0"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "a warning only: {}",
        common::output_text(&out)
    );
    assert!(
        findings(&out).contains(&("crd-served-version-dropped".into(), "warning".into())),
        "{}",
        common::output_text(&out)
    );
}
