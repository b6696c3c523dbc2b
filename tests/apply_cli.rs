//! `kgitops apply` and `kgitops diff --live` end to end: a repository with a `clusters/dev` overlay,
//! rendered by the CLI and applied to the real control plane; exit codes as `kubectl diff`
//! (0 no changes, 1 changes, 2 error) and the report formats.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use serde_json::Value;

/// A repository whose `clusters/dev` overlay holds the platform fixture in namespace `app`.
fn repo(app: &str) -> tempfile::TempDir {
    let fixture = std::fs::read_to_string(common::repo_root().join("tests/fixtures/apply/platform.yaml"))
        .unwrap()
        .replace("APP", app);
    overlay_repo(&fixture)
}

/// A repository whose `clusters/dev` overlay holds the YAML stream `objects`.
fn overlay_repo(objects: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let overlay = dir.path().join("clusters/dev");
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(overlay.join("platform.yaml"), objects).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources:\n  - platform.yaml\n",
    )
    .unwrap();
    dir
}

fn kgitops(repo: &Path, args: &[&str]) -> Output {
    common::control_plane().kgitops_in(repo, args)
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

/// The repository's own `clusters/dev` (the only test of this binary that uses its namespaces):
/// the KRaft platform with its Strimzi 1.2.0 operator and CRDs, on a control plane that has the
/// 1.2.0 CRDs (the default one has 0.45.2's, which serve only `v1beta2`). Its objects span the
/// Kafka and the operator namespace, so the inventory's is named.
#[tokio::test]
async fn the_repos_dev_cluster_applies_shows_no_changes_and_heals_drift() {
    let cp = common::control_plane_for_release("1.2.0");
    let run = |args: &[&str]| {
        // No --inventory-namespace: the overlay's kafka-dev Namespace is annotated as its home.
        cp.kgitops().args(args).output().expect("kgitops runs")
    };

    let out = run(&["apply", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Kafka/kafka-dev/main created\n"),
        "{}",
        common::output_text(&out)
    );
    for created in [
        "Namespace/kafka-dev created\n",
        "KafkaNodePool/kafka-dev/broker created\n",
        "Deployment/strimzi-dev/strimzi-cluster-operator created\n",
    ] {
        assert!(stdout.contains(created), "{}", common::output_text(&out));
    }

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
            "kafkanodepool",
            "broker",
            "--type",
            "merge",
            "-p",
        ])
        .arg(r#"{"spec":{"replicas":7}}"#)
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
        stdout.contains("drift: spec.replicas: 7 -> "),
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
        stdout.starts_with("KafkaNodePool/kafka-dev/broker configured\n  kubectl-patch lost spec.replicas\n"),
        "{}",
        common::output_text(&out)
    );
    let out = run(&["diff", "--live", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
}

/// A repository whose `clusters/dev` overlay holds the ConfigMap `shared` and `count` objects of
/// `kind` (`<kind>-<i>`), all in namespace `ns`.
fn repo_of(ns: &str, kind: &str, count: usize) -> tempfile::TempDir {
    let object = |kind: &str, name: &str| {
        format!("---\napiVersion: v1\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {ns}\n")
    };
    let mut objects = object("ConfigMap", "shared");
    for i in 0..count {
        objects.push_str(&object(kind, &format!("{}-{i}", kind.to_lowercase())));
    }
    overlay_repo(&objects)
}

/// The members of the inventory `kgitops-dev` in `ns` (`Kind/name`, of the kinds `repo_of` writes),
/// and those of them whose kind the parent does not list: orphans, which no later prune finds.
async fn members_and_orphans(ns: &str) -> (BTreeSet<String>, Vec<String>) {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
    use kube::api::{Api, ListParams};
    let client = common::client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let parent = cms.get("kgitops-dev").await.expect("the inventory parent");
    let id = parent.metadata.labels.unwrap_or_default()["applyset.kubernetes.io/id"].clone();
    let annotations = parent.metadata.annotations.unwrap_or_default();
    let kinds: BTreeSet<&str> = annotations["applyset.kubernetes.io/contains-group-kinds"]
        .split(',')
        .collect();
    let selector = ListParams::default().labels(&format!("applyset.kubernetes.io/part-of={id}"));
    let mut members = labelled::<ConfigMap>(&client, ns, &selector).await;
    members.extend(labelled::<Secret>(&client, ns, &selector).await);
    members.extend(labelled::<ServiceAccount>(&client, ns, &selector).await);
    let orphans = members
        .iter()
        .filter(|m| !kinds.contains(m.split('/').next().unwrap_or_default()))
        .cloned()
        .collect();
    (members.into_iter().collect(), orphans)
}

/// `Kind/name` of the objects of kind `K` in `ns` that `selector` selects.
async fn labelled<K>(client: &kube::Client, ns: &str, selector: &kube::api::ListParams) -> Vec<String>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    kube::Api::<K>::namespaced(client.clone(), ns)
        .list(selector)
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|o| o.meta().name.clone())
        .map(|n| format!("{}/{n}", K::kind(&())))
        .collect()
}

/// Two `kgitops apply --prune` of the same cluster started at the same moment, with different
/// objects. They take turns on the cluster's write lock (the Lease `kgitops-dev-lock`), so the
/// result is that of one apply after the other: the second writer's objects exactly, the first's
/// pruned, every member listed by the inventory. Without the lock both planned against the same
/// inventory, neither pruned the other's objects, and the last to narrow the parent dropped the
/// other's kind from it: its objects stayed, orphaned, and both runs exited 0.
#[tokio::test]
async fn concurrent_applies_take_turns_on_the_write_lock() {
    for round in 0..3 {
        let ns = common::namespace("cli-lock").await;
        let start = repo_of(&ns.name, "Secret", 0);
        let out = kgitops(start.path(), &["apply", "--cluster", "dev"]);
        assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));

        let a = repo_of(&ns.name, "Secret", 15);
        let b = repo_of(&ns.name, "ServiceAccount", 15);
        let spawn = |repo: &Path| {
            common::control_plane()
                .kgitops()
                .args([
                    "apply",
                    "--cluster",
                    "dev",
                    "--prune",
                    "--allow-mass-prune",
                    "--repo",
                ])
                .arg(repo)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("kgitops starts")
        };
        let (pa, pb) = (spawn(a.path()), spawn(b.path()));
        let (oa, ob) = (pa.wait_with_output().unwrap(), pb.wait_with_output().unwrap());
        for out in [&oa, &ob] {
            assert_eq!(
                out.status.code(),
                Some(0),
                "round {round}: {}",
                common::output_text(out)
            );
        }
        let (members, orphans) = members_and_orphans(&ns.name).await;
        assert!(
            orphans.is_empty(),
            "round {round}: members the inventory does not list: {orphans:?}\nA: {}\nB: {}",
            common::output_text(&oa),
            common::output_text(&ob)
        );
        let only = |kind: &str| -> BTreeSet<String> {
            std::iter::once("ConfigMap/shared".to_string())
                .chain((0..15).map(|i| format!("{kind}/{}-{i}", kind.to_lowercase())))
                .collect()
        };
        assert!(
            members == only("Secret") || members == only("ServiceAccount"),
            "round {round}: the cluster is neither A's nor B's revision: {members:?}\nA: {}\nB: {}",
            common::output_text(&oa),
            common::output_text(&ob)
        );
    }
}

/// Another writer holds the cluster's write lock: `apply` waits `--lock-timeout`, then exits 2
/// naming the holder and writes nothing; a dry run takes no lock. A holder that stopped renewing
/// (crashed) is taken over once its lease duration has passed by this process's clock, and the
/// lock is released after the apply.
#[tokio::test]
async fn a_held_write_lock_fails_clearly_and_an_expired_one_is_taken_over() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams};

    let ns = common::namespace("cli-held").await;
    let repo = repo_of(&ns.name, "Secret", 1);
    let leases: Api<Lease> = ns.api();
    let mut lease = common::hold_write_lock(&ns, "kgitops-dev-lock", "ops-laptop/4242").await;

    let out = kgitops(repo.path(), &["apply", "--cluster", "dev", "--lock-timeout", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "Lease/{}/kgitops-dev-lock: another writer holds the lock: ops-laptop/4242",
            ns.name
        )),
        "{}",
        common::output_text(&out)
    );
    let cms: Api<ConfigMap> = ns.api();
    assert!(
        cms.get_opt("shared").await.unwrap().is_none(),
        "written without the lock"
    );
    let out = kgitops(repo.path(), &["apply", "--cluster", "dev", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));

    // The holder crashed: its Lease (1 s) is no longer renewed.
    lease.spec.as_mut().unwrap().lease_duration_seconds = Some(1);
    leases
        .replace("kgitops-dev-lock", &PostParams::default(), &lease)
        .await
        .unwrap();
    let out = kgitops(repo.path(), &["apply", "--cluster", "dev"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    assert!(cms.get_opt("shared").await.unwrap().is_some());
    let released = leases.get("kgitops-dev-lock").await.unwrap();
    assert_eq!(
        released.spec.as_ref().and_then(|s| s.holder_identity.clone()),
        None,
        "the lock is released after the apply"
    );

    // An apply of this machine that could not release (the apiserver went away) and exited: its
    // lock is taken at once, not after its 600 s.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut gone = released;
    let spec = gone.spec.as_mut().unwrap();
    spec.holder_identity = Some(format!("kgitops-apply@{}/99999999", host.trim()));
    spec.lease_duration_seconds = Some(600);
    leases
        .replace("kgitops-dev-lock", &PostParams::default(), &gone)
        .await
        .unwrap();
    let out = kgitops(repo.path(), &["apply", "--cluster", "dev", "--lock-timeout", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
}
