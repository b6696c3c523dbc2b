//! kgitops against a busy apiserver (issue 21): a real kube-apiserver whose API Priority and
//! Fairness gives kgitops' identity about three seats and a short queue, so that many of its
//! requests are answered 429 with `Retry-After`. An apply of 1,000 objects must still complete,
//! write every object, report success only then, and leave nothing to change.

mod common;
#[path = "support/throttle.rs"]
mod throttle;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ListParams;

/// A repository with `clusters/<cluster>` holding `n` ConfigMaps in `namespace`.
fn repo_with_configmaps(cluster: &str, namespace: &str, n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let overlay = dir.path().join("clusters").join(cluster);
    std::fs::create_dir_all(&overlay).expect("mkdir");
    let mut objects = String::new();
    for i in 0..n {
        let _ = write!(
            objects,
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:04}\n  namespace: {namespace}\ndata:\n  id: \"{i}\"\n"
        );
    }
    std::fs::write(overlay.join("objects.yaml"), objects).expect("write");
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - objects.yaml\n",
    )
    .expect("write");
    dir
}

/// `kgitops <command> --repo <repo> --cluster <cluster> <args>` against the test control plane.
fn kgitops(command: &[&str], repo: &Path, cluster: &str, args: &[&std::ffi::OsStr]) -> std::process::Output {
    common::control_plane()
        .kgitops()
        .args(command)
        .arg("--repo")
        .arg(repo)
        .args(["--cluster", cluster])
        .args(args)
        .output()
        .expect("kgitops runs")
}

#[tokio::test]
async fn apply_of_1000_objects_completes_under_apf_throttling_and_leaves_nothing_to_change() {
    let cp = common::control_plane();
    let ns = common::namespace("throttled").await;
    let throttled = throttle::throttled_identity(&ns.client, cp.kubeconfig(), &ns.name).await;
    let kubeconfig = tempfile::NamedTempFile::new().expect("tempfile");
    std::fs::write(kubeconfig.path(), &throttled.kubeconfig).expect("write kubeconfig");
    let repo = repo_with_configmaps("busy", &ns.name, 1000);

    let before = throttle::rejected(&ns.client, &throttled.flow_schema).await;
    let started = Instant::now();
    // 32 requests in flight against ~3 seats and a queue of 5: most of each wave is answered 429.
    let throttled_args = [
        "--concurrency".as_ref(),
        "32".as_ref(),
        "--kubeconfig".as_ref(),
        kubeconfig.path().as_os_str(),
    ];
    let out = kgitops(&["apply"], repo.path(), "busy", &throttled_args);
    let took = started.elapsed();
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let rejected = throttle::rejected(&ns.client, &throttled.flow_schema).await - before;
    eprintln!("apply of 1,000 objects under throttling: {took:?}, {rejected} requests answered 429");
    assert!(
        rejected > 0,
        "the apiserver throttled nothing: the test does not test throttling\n{text}"
    );

    let cms: kube::Api<ConfigMap> = ns.api();
    let live = cms.list(&ListParams::default()).await.expect("list");
    let names: Vec<_> = live
        .items
        .iter()
        .filter_map(|cm| cm.metadata.name.as_deref())
        .filter(|n| n.starts_with("cm-"))
        .collect();
    assert_eq!(names.len(), 1000, "every object written");

    // Nothing left to change, also as seen through the throttled identity.
    let diff = kgitops(&["diff", "--live"], repo.path(), "busy", &throttled_args);
    assert_eq!(diff.status.code(), Some(0), "{}", common::output_text(&diff));
}

#[tokio::test]
async fn a_client_side_rate_limit_spaces_the_requests() {
    let ns = common::namespace("qps").await;
    let repo = repo_with_configmaps("slow", &ns.name, 40);
    let started = Instant::now();
    // 40 objects: discovery, a list, 40 dry-runs, 40 applies and the inventory: about 90 requests,
    // which at 20 per second after a burst of 20 cannot take less than 3 s.
    let limit = ["--qps".as_ref(), "20".as_ref(), "--burst".as_ref(), "20".as_ref()];
    let out = kgitops(&["apply"], repo.path(), "slow", &limit);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    assert!(
        took.as_secs_f64() >= 3.0,
        "--qps 20 --burst 20 did not limit: 40 objects applied in {took:?}"
    );
}
