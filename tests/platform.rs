//! The platform data this repository ships (`base/`, `clusters/*`, `infrastructure/`, `deploy/`),
//! rendered by kgitops' own renderer and checked three ways:
//!
//! - Against `kubectl kustomize` (the pinned kustomize v5.5.0): every cluster overlay renders to
//!   the same bytes.
//! - Against the real apiserver with the CRDs of the Strimzi release each overlay declares (dev and
//!   staging: 1.2.0, `kafka.strimzi.io/v1`; prod-eu-west-1: 0.45.2, `v1beta2`), from
//!   `infrastructure/strimzi/<release>/`: every cluster overlay and `deploy/` pass a server-side
//!   dry-run apply with strict field validation (an unknown field is an error, as in
//!   `kubectl apply --server-side`). With `deploy/` installed, every overlay also passes as kgitops'
//!   own ServiceAccount, so `deploy/rbac.yaml` grants enough (including the RBAC escalation rules
//!   for the RoleBindings, ClusterRoles and ClusterRoleBindings of the operator it installs), and
//!   no more: the escalations a cluster-wide role would allow (Secrets and RoleBindings in
//!   `kube-system`, Strimzi RoleBindings elsewhere, relabelling other Namespaces) are Forbidden,
//!   and the namespaced rights follow the overlays' namespaces.
//! - As data: every cluster contains every component of its platform (KRaft with node pools, or
//!   the seed's ZooKeeper platform) and the operator release it runs, one JMX Service per broker
//!   pod, and Kafka settings that fit together (replication factors, heap, controller quorum,
//!   Kafka and metadata versions of the release table `validate` uses, generated from the release's
//!   own `kafka-versions.yaml`, ...).
//!
//! The overlays name their own namespaces (`kafka-dev`, `strimzi-dev`, ...) and `deploy/` writes
//! cluster-scoped RBAC, so these tests do not use per-test namespaces. That is safe: this test
//! binary has control planes of its own (one per Strimzi release), and every write here is an
//! idempotent server-side apply of the same objects.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use serde_json::Value;

use kgitops::source::{DirTree, TreePath};
use kgitops::validate::rules::release::table as release_table;

/// Which of the two platforms of `base/` a cluster runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Platform {
    /// `base/kraft`: KRaft, KafkaNodePools, `kafka.strimzi.io/v1`.
    Kraft,
    /// `base/`: the seed's ZooKeeper platform, `kafka.strimzi.io/v1beta2`.
    ZooKeeper,
}

/// One cluster overlay: its directory under `clusters/`, the namespace it deploys Kafka to, the
/// namespace of the Strimzi operator it installs, that operator's release and the platform.
struct Cluster {
    name: &'static str,
    namespace: &'static str,
    operator_namespace: &'static str,
    release: &'static str,
    platform: Platform,
}

static CLUSTERS: [Cluster; 3] = [
    Cluster {
        name: "dev",
        namespace: "kafka-dev",
        operator_namespace: "strimzi-dev",
        release: "1.2.0",
        platform: Platform::Kraft,
    },
    Cluster {
        name: "staging",
        namespace: "kafka-staging",
        operator_namespace: "strimzi-staging",
        release: "1.2.0",
        platform: Platform::Kraft,
    },
    Cluster {
        name: "prod-eu-west-1",
        namespace: "kafka-prod",
        operator_namespace: "strimzi",
        release: "0.45.2",
        platform: Platform::ZooKeeper,
    },
];

/// dev and staging share one (non-production) Kubernetes cluster: their cluster-scoped objects
/// must not collide.
const SHARED_KUBERNETES_CLUSTER: [&str; 2] = ["dev", "staging"];

fn cluster(name: &str) -> &'static Cluster {
    CLUSTERS
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no cluster {name} in CLUSTERS"))
}

/// kgitops' ServiceAccount as `deploy/` installs it.
const KGITOPS_SERVICE_ACCOUNT: &str = "system:serviceaccount:kgitops:kgitops";

/// The annotation on a Kafka stating the Strimzi release its cluster runs.
const RELEASE_ANNOTATION: &str = "kgitops.io/strimzi-release";

/// The objects of the Kafka namespace of every platform, by kind and name, besides the per-broker
/// JMX Services (checked against the broker pods) and the generated Prometheus ConfigMap (its name
/// has a hash suffix).
const COMPONENTS: [(&str, &str); 11] = [
    ("Kafka", "main"),
    ("ConfigMap", "kafka-metrics"),
    ("Service", "kafka-exporter"),
    ("ServiceAccount", "prometheus"),
    ("Role", "prometheus"),
    ("RoleBinding", "prometheus"),
    ("StatefulSet", "prometheus"),
    ("Service", "prometheus"),
    ("Ingress", "prometheus"),
    ("RoleBinding", "strimzi-cluster-operator"),
    ("RoleBinding", "strimzi-cluster-operator-watched"),
];

/// What only the ZooKeeper platform has: zoo-entrance and zk-exporter.
const ZOOKEEPER_COMPONENTS: [(&str, &str); 5] = [
    ("Deployment", "zoo-entrance"),
    ("Service", "zoo-entrance"),
    ("NetworkPolicy", "zoo-entrance"),
    ("Deployment", "zk-exporter"),
    ("Service", "zk-exporter"),
];

/// The Strimzi operator's RoleBindings in a watched namespace (install files 020, 023, 031) and
/// the ClusterRole each binds.
const OPERATOR_ROLE_BINDINGS: [(&str, &str); 3] = [
    ("strimzi-cluster-operator", "strimzi-cluster-operator-namespaced"),
    (
        "strimzi-cluster-operator-watched",
        "strimzi-cluster-operator-watched",
    ),
    (
        "strimzi-cluster-operator-entity-operator-delegation",
        "strimzi-entity-operator",
    ),
];

/// Prometheus scrape jobs of each platform.
const KRAFT_SCRAPE_JOBS: [&str; 4] = ["kafka-brokers", "kafka-controllers", "kafka-exporter", "kgitops"];
const ZOOKEEPER_SCRAPE_JOBS: [&str; 5] = [
    "kafka-brokers",
    "zookeeper",
    "kafka-exporter",
    "zk-exporter",
    "kgitops",
];

// ---------------------------------------------------------------------------------------------
// Against kubectl kustomize

/// `kgitops render` of every overlay is byte for byte what the pinned kustomize (`kubectl
/// kustomize`, kustomize v5.5.0, as tests/render/regen) prints, so any kustomize-based tool
/// deploys the same objects.
#[test]
fn every_overlay_renders_as_kubectl_kustomize() {
    let version = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .expect("kubectl runs (the pinned kustomize is kubectl's)");
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.contains("Kustomize Version: v5.5.0"),
        "kubectl must bundle kustomize v5.5.0 (tests/render/regen), got:\n{version}"
    );
    for cluster in &CLUSTERS {
        let dir = format!("clusters/{}", cluster.name);
        let out = std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(&dir)
            .current_dir(common::repo_root())
            .output()
            .expect("kubectl runs");
        assert!(
            out.status.success(),
            "kubectl kustomize {dir}: {}",
            common::output_text(&out)
        );
        let expected = String::from_utf8_lossy(&out.stdout);
        let actual = kgitops::manifest::yaml::to_yaml_stream(&render(&dir));
        if expected != actual {
            let diff = similar::TextDiff::from_lines(expected.as_ref(), actual.as_str())
                .unified_diff()
                .header("kubectl kustomize", "kgitops render")
                .to_string();
            panic!("{dir}: kgitops render differs from kubectl kustomize:\n{diff}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Against the apiserver

#[tokio::test]
async fn dev_passes_server_side_dry_run() {
    assert_dry_run_passes(cluster("dev")).await;
}

#[tokio::test]
async fn staging_passes_server_side_dry_run() {
    assert_dry_run_passes(cluster("staging")).await;
}

#[tokio::test]
async fn prod_eu_west_1_passes_server_side_dry_run() {
    assert_dry_run_passes(cluster("prod-eu-west-1")).await;
}

#[tokio::test]
async fn deploy_passes_server_side_dry_run() {
    // Any of this binary's control planes: deploy/ has no custom resources.
    let client = common::control_plane_for_release("1.2.0").client().await;
    let objects = render("deploy");
    create_namespaces(&client, &objects).await;
    let failures = server_side_apply(&client, &objects, true).await;
    assert!(failures.is_empty(), "deploy: {}", failures.join("\n"));
}

/// A KRaft cluster's objects are refused by an apiserver with the 0.45.2 CRDs (they do not serve
/// `kafka.strimzi.io/v1`): the dry-runs above really check against the release each overlay
/// declares.
#[tokio::test]
async fn kraft_objects_are_refused_by_the_0_45_2_crds() {
    let client = common::control_plane_for_release("0.45.2").client().await;
    let objects: Vec<Value> = render("clusters/dev")
        .into_iter()
        .filter(|o| matches!(kind(o), "Kafka" | "KafkaNodePool" | "Namespace"))
        .collect();
    create_namespaces(&client, &objects).await;
    let custom: Vec<Value> = objects.into_iter().filter(|o| kind(o) != "Namespace").collect();
    let failures = server_side_apply(&client, &custom, true).await;
    assert_eq!(
        failures.len(),
        custom.len(),
        "every v1 Kafka/KafkaNodePool must be refused by the 0.45.2 CRDs: {failures:?}"
    );
}

/// `deploy/rbac.yaml` is enough for kgitops to apply every cluster: installed for real, then
/// every overlay dry-run as the ServiceAccount, on a control plane with the CRDs of the overlay's
/// release. The apiserver checks RBAC escalation on the Roles, ClusterRoles and their bindings
/// here, before any of them exists, as on a fresh cluster.
#[tokio::test]
async fn kgitops_service_account_may_apply_every_cluster() {
    for cluster in &CLUSTERS {
        let control_plane = common::control_plane_for_release(cluster.release);
        let admin = control_plane.client().await;
        install_deploy(&admin).await;
        let kgitops = impersonated_client(control_plane).await;
        let objects = render(&format!("clusters/{}", cluster.name));
        create_namespaces(&admin, &objects).await;
        let failures = server_side_apply(&kgitops, &objects, true).await;
        assert!(
            failures.is_empty(),
            "clusters/{} as {KGITOPS_SERVICE_ACCOUNT}:\n{}",
            cluster.name,
            failures.join("\n")
        );
    }
}

/// Installs `deploy/` for real (idempotent).
async fn install_deploy(admin: &kube::Client) {
    let failures = server_side_apply(admin, &render("deploy"), false).await;
    assert!(
        failures.is_empty(),
        "installing deploy/:\n{}",
        failures.join("\n")
    );
}

/// `deploy/` installed, kgitops' ServiceAccount is not cluster-admin in effect: server-side
/// dry-runs of the escalations the old cluster-wide ClusterRole allowed are Forbidden, while the
/// CLI still plans (`apply --dry-run`, `diff --live`) every overlay as that identity.
#[tokio::test]
async fn kgitops_service_account_cannot_escalate() {
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PostParams};

    let control_plane = common::control_plane_for_release("1.2.0");
    let admin = control_plane.client().await;
    install_deploy(&admin).await;
    // A namespace no overlay declares.
    let undeclared = "team-payments";
    let ns: Value =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": undeclared}});
    assert!(server_side_apply(&admin, &[ns], false).await.is_empty());

    let kgitops = impersonated_client(control_plane).await;
    let create = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let forbidden = |what: &str, result: Result<(), kube::Error>| match result {
        Err(kube::Error::Api(e)) if e.code == 403 => {}
        other => panic!("{what} as {KGITOPS_SERVICE_ACCOUNT}: expected Forbidden, got {other:?}"),
    };
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "stolen", "namespace": "kube-system"},
        "stringData": {"token": "x"},
    }))
    .unwrap();
    forbidden(
        "creating a Secret in kube-system",
        Api::<Secret>::namespaced(kgitops.clone(), "kube-system")
            .create(&create, &secret)
            .await
            .map(drop),
    );
    let binding = |namespace: &str, kind: &str, role: &str| -> RoleBinding {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "kgitops-escalation", "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "kgitops", "namespace": "kgitops"}],
        }))
        .unwrap()
    };
    forbidden(
        "creating a RoleBinding in kube-system",
        Api::<RoleBinding>::namespaced(kgitops.clone(), "kube-system")
            .create(&create, &binding("kube-system", "ClusterRole", "view"))
            .await
            .map(drop),
    );
    forbidden(
        "binding the Strimzi operator ClusterRole in an undeclared namespace",
        Api::<RoleBinding>::namespaced(kgitops.clone(), undeclared)
            .create(
                &create,
                &binding(undeclared, "ClusterRole", "strimzi-cluster-operator-namespaced"),
            )
            .await
            .map(drop),
    );
    let cluster_binding = |name: &str, role: &str| -> ClusterRoleBinding {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "kgitops", "namespace": "kgitops"}],
        }))
        .unwrap()
    };
    forbidden(
        "binding the Strimzi operator's namespaced ClusterRole cluster-wide",
        Api::<ClusterRoleBinding>::all(kgitops.clone())
            .create(
                &create,
                &cluster_binding("kgitops-escalation", "strimzi-cluster-operator-namespaced"),
            )
            .await
            .map(drop),
    );
    // The operator's ClusterRoleBindings are writable by name only: another name, even for a role
    // kgitops may bind, is Forbidden; and cluster-admin is never bindable.
    forbidden(
        "a ClusterRoleBinding of another name to the operator's global ClusterRole",
        Api::<ClusterRoleBinding>::all(kgitops.clone())
            .create(
                &create,
                &cluster_binding("kgitops-escalation", "strimzi-cluster-operator-global"),
            )
            .await
            .map(drop),
    );
    // By name (server-side apply, as kgitops writes): the name is allowed, the role is not.
    let admin_binding = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "strimzi-cluster-operator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "kgitops", "namespace": "kgitops"}],
    });
    forbidden(
        "binding cluster-admin under the operator's ClusterRoleBinding name",
        Api::<ClusterRoleBinding>::all(kgitops.clone())
            .patch(
                "strimzi-cluster-operator",
                &PatchParams::apply("kgitops").force().dry_run(),
                &Patch::Apply(&admin_binding),
            )
            .await
            .map(drop),
    );
    let cluster_role: ClusterRole = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "kgitops-escalation"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }))
    .unwrap();
    forbidden(
        "creating a ClusterRole that is not the operator's",
        Api::<ClusterRole>::all(kgitops.clone())
            .create(&create, &cluster_role)
            .await
            .map(drop),
    );
    let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object"}}}],
        },
    }))
    .unwrap();
    forbidden(
        "creating a CRD that is not Strimzi's",
        Api::<CustomResourceDefinition>::all(kgitops.clone())
            .create(&create, &crd)
            .await
            .map(drop),
    );
    let relabel = Patch::Merge(serde_json::json!({"metadata": {"labels": {"owned-by": "kgitops"}}}));
    for namespace in ["default", "kube-system", undeclared] {
        forbidden(
            &format!("relabelling Namespace {namespace}"),
            Api::<Namespace>::all(kgitops.clone())
                .patch(namespace, &PatchParams::default().dry_run(), &relabel)
                .await
                .map(drop),
        );
    }

    // And every overlay still plans as that identity, through the CLI, on a control plane with
    // the CRDs of its release (the inventory in the Kafka namespace: an overlay spans two).
    for cluster in &CLUSTERS {
        let control_plane = common::control_plane_for_release(cluster.release);
        install_deploy(&control_plane.client().await).await;
        let kubeconfig = impersonating_kubeconfig(control_plane);
        for command in [&["apply", "--dry-run"][..], &["diff", "--live"][..]] {
            let out = control_plane
                .kgitops()
                .args(command)
                .args(["--cluster", cluster.name])
                .arg("--kubeconfig")
                .arg(kubeconfig.path())
                .output()
                .expect("kgitops runs");
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "kgitops {command:?} --cluster {} as {KGITOPS_SERVICE_ACCOUNT}:\n{}",
                cluster.name,
                common::output_text(&out)
            );
        }
    }
}

/// Every namespace a cluster overlay writes to has kgitops' RoleBinding in `deploy/`, and no other
/// namespace has one (besides kgitops' own, for leader election): the namespaced rights follow
/// the overlays. The same for the cluster-scoped objects the overlays write: `deploy/` grants
/// writing exactly those CRDs, ClusterRoles and ClusterRoleBindings, by name.
#[test]
fn deploy_grants_rights_exactly_where_the_overlays_write() {
    let rendered: Vec<Value> = CLUSTERS
        .iter()
        .flat_map(|c| render(&format!("clusters/{}", c.name)))
        .collect();
    let overlays: BTreeSet<String> = rendered
        .iter()
        .filter_map(|o| match kind(o) {
            "Namespace" => Some(name(o).to_string()),
            _ => namespace(o).map(str::to_string),
        })
        .collect();
    let deploy = render("deploy");
    let bound: BTreeSet<String> = deploy
        .iter()
        .filter(|o| kind(o) == "RoleBinding" && o["roleRef"]["name"] == "kgitops-namespaced")
        .filter_map(|o| namespace(o).map(str::to_string))
        .collect();
    assert_eq!(bound, overlays, "RoleBindings of deploy/rbac-namespaces.yaml");
    let rules: Vec<Value> = deploy
        .iter()
        .filter(|o| kind(o) == "ClusterRole" && name(o) == "kgitops")
        .flat_map(|o| o["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    let writable = |resource: &str| -> BTreeSet<String> {
        rules
            .iter()
            .filter(|r| {
                r["resources"]
                    .as_array()
                    .is_some_and(|rs| rs.iter().any(|x| x == resource))
            })
            .filter(|r| {
                r["verbs"]
                    .as_array()
                    .is_some_and(|vs| vs.iter().any(|v| v == "create"))
            })
            .flat_map(|r| r["resourceNames"].as_array().cloned().unwrap_or_default())
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(
        writable("namespaces"),
        overlays,
        "Namespaces the ClusterRole kgitops may write"
    );
    for (resource, object_kind) in [
        ("clusterroles", "ClusterRole"),
        ("clusterrolebindings", "ClusterRoleBinding"),
    ] {
        let written: BTreeSet<String> = rendered
            .iter()
            .filter(|o| kind(o) == object_kind)
            .map(|o| name(o).to_string())
            .collect();
        assert_eq!(
            writable(resource),
            written,
            "{object_kind}s the ClusterRole kgitops may write"
        );
    }
    // CRDs: every release vendored, so that an overlay may move to any of them.
    let crds: BTreeSet<String> = ["0.45.2", "1.2.0"]
        .iter()
        .flat_map(|release| release_crds(release))
        .map(|o| name(&o).to_string())
        .collect();
    assert_eq!(
        writable("customresourcedefinitions"),
        crds,
        "CRDs the ClusterRole kgitops may write"
    );
    assert!(
        !deploy
            .iter()
            .any(|o| kind(o) == "ClusterRoleBinding" && o["roleRef"]["name"] == "kgitops-namespaced"),
        "kgitops-namespaced must never be bound cluster-wide"
    );
}

/// A client of `control_plane` impersonating kgitops' ServiceAccount.
async fn impersonated_client(control_plane: &common::ControlPlane) -> kube::Client {
    let mut config = control_plane.config().await;
    config.auth_info.impersonate = Some(KGITOPS_SERVICE_ACCOUNT.to_string());
    kube::Client::try_from(config).expect("client impersonating kgitops")
}

/// The kubeconfig of `control_plane` with `as: <kgitops' ServiceAccount>`, for the CLI. Written as
/// JSON, which is YAML.
fn impersonating_kubeconfig(control_plane: &common::ControlPlane) -> tempfile::NamedTempFile {
    let mut kubeconfig =
        kube::config::Kubeconfig::read_from(control_plane.kubeconfig()).expect("test kubeconfig");
    for user in &mut kubeconfig.auth_infos {
        if let Some(auth) = user.auth_info.as_mut() {
            auth.impersonate = Some(KGITOPS_SERVICE_ACCOUNT.to_string());
        }
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&kubeconfig).unwrap()).unwrap();
    file
}

/// Renders the cluster's overlay, creates its Namespaces (a dry-run cannot create the namespace
/// the other objects go into) on a control plane with the CRDs of the cluster's Strimzi release,
/// and dry-runs every object; fails with one line per rejected object.
async fn assert_dry_run_passes(cluster: &Cluster) {
    let client = common::control_plane_for_release(cluster.release).client().await;
    let dir = format!("clusters/{}", cluster.name);
    let objects = render(&dir);
    assert!(!objects.is_empty(), "{dir} renders no objects");
    create_namespaces(&client, &objects).await;
    let failures = server_side_apply(&client, &objects, true).await;
    assert!(
        failures.is_empty(),
        "{dir} (Strimzi {}): {} of {} objects rejected by the apiserver:\n{}",
        cluster.release,
        failures.len(),
        objects.len(),
        failures.join("\n")
    );
}

async fn create_namespaces(client: &kube::Client, objects: &[Value]) {
    let namespaces: Vec<Value> = objects
        .iter()
        .filter(|o| kind(o) == "Namespace")
        .cloned()
        .collect();
    let failures = server_side_apply(client, &namespaces, false).await;
    assert!(
        failures.is_empty(),
        "creating namespaces:\n{}",
        failures.join("\n")
    );
}

/// Server-side applies `objects` one by one with field manager `kgitops` and strict field
/// validation, as a dry-run or for real. Returns one line per object the apiserver rejected.
async fn server_side_apply(client: &kube::Client, objects: &[Value], dry_run: bool) -> Vec<String> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("API discovery against the test apiserver");
    let mut params = PatchParams::apply("kgitops").force().validation_strict();
    if dry_run {
        params = params.dry_run();
    }
    let mut failures = Vec::new();
    for object in objects {
        let id = describe(object);
        let Some((resource, capabilities)) = discovery.resolve_gvk(&gvk(object)) else {
            failures.push(format!("{id}: kind not served by the apiserver"));
            continue;
        };
        let api: Api<DynamicObject> = match (capabilities.scope, namespace(object)) {
            (Scope::Cluster, _) => Api::all_with(client.clone(), &resource),
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &resource),
            (Scope::Namespaced, None) => {
                failures.push(format!("{id}: namespaced kind without metadata.namespace"));
                continue;
            }
        };
        if let Err(err) = api.patch(name(object), &params, &Patch::Apply(object)).await {
            failures.push(format!("{id}: {err}"));
        }
    }
    failures
}

// ---------------------------------------------------------------------------------------------
// As data

#[test]
fn every_cluster_has_every_component() {
    for_each_cluster(|cluster, rendered| rendered.check_components(cluster));
}

#[test]
fn every_cluster_runs_the_operator_release_it_declares() {
    for_each_cluster(|cluster, rendered| rendered.check_operator(cluster));
}

#[test]
fn every_cluster_has_one_jmx_service_per_broker() {
    for_each_cluster(|_, rendered| rendered.check_jmx_services());
}

#[test]
fn every_cluster_has_consistent_kafka_settings() {
    for_each_cluster(|cluster, rendered| {
        rendered.check_kafka_settings(cluster);
        match cluster.platform {
            Platform::Kraft => rendered.check_node_pools(),
            Platform::ZooKeeper => {
                rendered.check_zookeeper();
                rendered.check_zookeeper_exposure();
            }
        }
    });
}

/// Renders every cluster overlay and runs `check` on it.
fn for_each_cluster(check: impl Fn(&Cluster, &Rendered)) {
    for cluster in &CLUSTERS {
        let objects = render(&format!("clusters/{}", cluster.name));
        check(cluster, &Rendered::new(cluster, &objects));
    }
}

/// The overlays really differ where they claim to: broker counts, and so JMX Service counts.
#[test]
fn clusters_are_sized_differently() {
    let brokers: BTreeMap<&str, u64> = CLUSTERS
        .iter()
        .map(|cluster| {
            let objects = render(&format!("clusters/{}", cluster.name));
            (
                cluster.name,
                Rendered::new(cluster, &objects).broker_pods().len() as u64,
            )
        })
        .collect();
    assert_eq!(
        brokers,
        BTreeMap::from([("dev", 2), ("prod-eu-west-1", 6), ("staging", 3)])
    );
}

/// dev and staging share a Kubernetes cluster: no cluster-scoped object is written by both (two
/// writers of one object would undo each other's labels, and the ApplySet of each would claim
/// it). The CRDs and ClusterRoles are dev's; each has its own ClusterRoleBindings.
#[test]
fn clusters_sharing_a_kubernetes_cluster_write_no_common_cluster_scoped_object() {
    let mut owners: BTreeMap<(String, String), &str> = BTreeMap::new();
    for name in SHARED_KUBERNETES_CLUSTER {
        for object in render(&format!("clusters/{name}")) {
            if namespace(&object).is_some() {
                continue;
            }
            let key = (kind(&object).to_string(), self::name(&object).to_string());
            if let Some(other) = owners.insert(key.clone(), name) {
                panic!(
                    "{}/{} is written by both clusters/{other} and clusters/{name}",
                    key.0, key.1
                );
            }
        }
    }
    // The shared cluster still gets every CRD of the release, once.
    let crds: BTreeSet<String> = owners
        .keys()
        .filter(|(k, _)| k == "CustomResourceDefinition")
        .map(|(_, n)| n.clone())
        .collect();
    let release: BTreeSet<String> = release_crds("1.2.0")
        .iter()
        .map(|o| name(o).to_string())
        .collect();
    assert_eq!(crds, release, "CRDs in the Kubernetes cluster of dev and staging");
}

/// The vendored releases are upstream's files unchanged (the CRDs in the test harness and in
/// `validate` come from there): every CRD carries Strimzi's labels and the release's versions,
/// and the operator Deployment runs the release's image.
#[test]
fn vendored_releases_are_what_they_claim() {
    for (release, served) in [
        ("0.45.2", "v1beta2"),
        ("0.47.0", "v1beta2"),
        ("0.50.1", "v1"),
        ("1.0.1", "v1"),
        ("1.2.0", "v1"),
    ] {
        let crds = release_crds(release);
        assert!(crds.len() >= 10, "{release}: {} CRDs", crds.len());
        for crd in &crds {
            let versions: Vec<&str> = crd["spec"]["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| v["served"] == true)
                .filter_map(|v| v["name"].as_str())
                .collect();
            assert!(
                versions.contains(&served),
                "{release}: CRD {} serves {versions:?}",
                name(crd)
            );
        }
        let dir = format!("infrastructure/strimzi/{release}");
        let deployment = render(&dir)
            .into_iter()
            .find(|o| kind(o) == "Deployment")
            .unwrap_or_else(|| panic!("{dir}: no Deployment"));
        assert_eq!(
            text(&deployment, "/spec/template/spec/containers/0/image", &dir),
            format!("quay.io/strimzi/operator:{release}")
        );
        let origin = std::fs::read_to_string(common::release_dir(release).join("ORIGIN.md"))
            .unwrap_or_else(|e| panic!("{dir}/ORIGIN.md: {e}"));
        for needle in [
            format!("Tag: `{release}`"),
            "Apache License 2.0".to_string(),
            "unchanged".to_string(),
        ] {
            assert!(origin.contains(&needle), "{dir}/ORIGIN.md does not say {needle}");
        }
        assert!(
            common::release_dir(release).join("kafka-versions.yaml").is_file(),
            "{dir}/kafka-versions.yaml"
        );
        assert!(
            release_table(release).is_some(),
            "kgitops has no version table for the vendored release {release}"
        );
    }
}

/// One rendered cluster, indexed by kind, namespace and name.
struct Rendered<'a> {
    cluster: &'static str,
    namespace: &'static str,
    objects: BTreeMap<(&'a str, Option<&'a str>, &'a str), &'a Value>,
}

impl<'a> Rendered<'a> {
    fn new(cluster: &'static Cluster, objects: &'a [Value]) -> Self {
        let mut index = BTreeMap::new();
        for object in objects {
            let previous = index.insert((kind(object), namespace(object), name(object)), object);
            assert!(
                previous.is_none(),
                "{}: {} appears twice",
                cluster.name,
                describe(object)
            );
        }
        Rendered {
            cluster: cluster.name,
            namespace: cluster.namespace,
            objects: index,
        }
    }

    /// `kind/name` in the Kafka namespace.
    fn get(&self, kind: &str, name: &str) -> &'a Value {
        self.get_in(Some(self.namespace), kind, name)
    }

    /// `kind/name` in `namespace` (`None`: cluster-scoped).
    fn get_in(&self, namespace: Option<&str>, kind: &str, name: &str) -> &'a Value {
        self.objects
            .iter()
            .find(|((k, ns, n), _)| *k == kind && *ns == namespace && *n == name)
            .map(|(_, object)| *object)
            .unwrap_or_else(|| {
                panic!(
                    "{}: no {kind}/{}{name}",
                    self.cluster,
                    namespace.map(|ns| format!("{ns}/")).unwrap_or_default()
                )
            })
    }

    fn of_kind(&self, wanted: &'a str) -> impl Iterator<Item = &'a Value> + '_ {
        self.objects
            .iter()
            .filter(move |((kind, _, _), _)| *kind == wanted)
            .map(|(_, object)| *object)
    }

    fn kafka(&self) -> &'a Value {
        let mut kafkas = self.of_kind("Kafka");
        let kafka = kafkas
            .next()
            .unwrap_or_else(|| panic!("{}: no Kafka", self.cluster));
        assert!(kafkas.next().is_none(), "{}: more than one Kafka", self.cluster);
        kafka
    }

    /// The KafkaNodePools of the Kafka (label strimzi.io/cluster), and those that have a role.
    fn pools(&self, role: &str) -> Vec<&'a Value> {
        self.of_kind("KafkaNodePool")
            .filter(|p| {
                p["spec"]["roles"]
                    .as_array()
                    .is_some_and(|roles| roles.iter().any(|r| r == role))
            })
            .collect()
    }

    /// The broker pods Strimzi will create: `<cluster>-kafka-<i>` without node pools, else
    /// `<cluster>-<pool>-<id>` with the IDs of the pool's `strimzi.io/next-node-ids` range.
    fn broker_pods(&self) -> BTreeSet<String> {
        let c = self.cluster;
        let kafka = self.kafka();
        let cluster_name = name(kafka);
        let brokers = self.pools("broker");
        if brokers.is_empty() {
            let replicas = uint(kafka, "/spec/kafka/replicas", c);
            return (0..replicas)
                .map(|i| format!("{cluster_name}-kafka-{i}"))
                .collect();
        }
        brokers
            .iter()
            .flat_map(|pool| {
                let range = pool["metadata"]["annotations"]["strimzi.io/next-node-ids"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{c}: {} has no strimzi.io/next-node-ids", describe(pool)));
                let (first, last) = node_id_range(range);
                let replicas = uint(pool, "/spec/replicas", c);
                assert!(
                    last - first + 1 >= replicas,
                    "{c}: {} has {replicas} replicas, its ID range {range} is smaller",
                    describe(pool)
                );
                (first..first + replicas).map(move |id| format!("{cluster_name}-{}-{id}", name(pool)))
            })
            .collect()
    }

    fn check_components(&self, cluster: &Cluster) {
        let c = self.cluster;
        for (kind, name) in COMPONENTS {
            self.get(kind, name);
        }
        match cluster.platform {
            Platform::ZooKeeper => {
                for (kind, name) in ZOOKEEPER_COMPONENTS {
                    self.get(kind, name);
                }
            }
            Platform::Kraft => {
                for (kind, _) in ZOOKEEPER_COMPONENTS {
                    assert!(
                        !self.of_kind(kind).any(|o| namespace(o) == Some(cluster.namespace)
                            && (name(o).starts_with("zoo") || name(o).starts_with("zk-"))),
                        "{c}: a KRaft cluster has no ZooKeeper tooling"
                    );
                }
            }
        }

        // The two Namespace objects, and everything else in one of them or cluster-scoped.
        let namespaces: BTreeSet<&str> = self.of_kind("Namespace").map(name).collect();
        assert_eq!(
            namespaces,
            BTreeSet::from([cluster.namespace, cluster.operator_namespace]),
            "{c}: Namespace objects"
        );
        for object in self.objects.values() {
            let expected: Vec<Option<&str>> = match kind(object) {
                "Namespace" | "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding" => vec![None],
                "Deployment" if name(object) == "strimzi-cluster-operator" => {
                    vec![Some(cluster.operator_namespace)]
                }
                "ServiceAccount" | "ConfigMap" | "RoleBinding"
                    if name(object).starts_with("strimzi-cluster-operator") =>
                {
                    vec![Some(cluster.namespace), Some(cluster.operator_namespace)]
                }
                _ => vec![Some(cluster.namespace)],
            };
            assert!(
                expected.contains(&namespace(object)),
                "{c}: {} not in {expected:?}",
                describe(object)
            );
        }

        // metricsConfig of every component points at a key of a ConfigMap the render contains.
        let kafka = self.kafka();
        let components: &[&str] = match cluster.platform {
            Platform::Kraft => &["kafka"],
            Platform::ZooKeeper => &["kafka", "zookeeper"],
        };
        for component in components {
            let metrics = &kafka["spec"][component]["metricsConfig"];
            assert_eq!(
                metrics["type"], "jmxPrometheusExporter",
                "{c}: {component} metricsConfig"
            );
            let reference = &metrics["valueFrom"]["configMapKeyRef"];
            let config_map = self.get("ConfigMap", text(reference, "/name", c));
            let key = text(reference, "/key", c);
            assert!(
                config_map["data"][key]
                    .as_str()
                    .is_some_and(|rules| rules.contains("rules:")),
                "{c}: {component} metricsConfig names key {key} of {}, which has no JMX exporter rules",
                describe(config_map)
            );
        }
        if cluster.platform == Platform::Kraft {
            let metrics = self.get("ConfigMap", "kafka-metrics");
            assert!(
                metrics["data"]
                    .as_object()
                    .is_some_and(|data| data.keys().all(|k| !k.contains("zookeeper"))),
                "{c}: KRaft metrics without ZooKeeper rules"
            );
        }
        assert!(
            kafka["spec"]["kafka"]["jmxOptions"].is_object(),
            "{c}: spec.kafka.jmxOptions must be set, or the brokers open no JMX port"
        );
        assert!(
            kafka["spec"]["entityOperator"]["topicOperator"].is_object(),
            "{c}: topic operator"
        );
        assert!(
            kafka["spec"]["entityOperator"]["userOperator"].is_object(),
            "{c}: user operator"
        );
        assert!(kafka["spec"]["kafkaExporter"].is_object(), "{c}: kafkaExporter");

        // kafka-exporter Service selects the exporter pods Strimzi creates.
        let exporter = self.get("Service", "kafka-exporter");
        let cluster_name = name(kafka);
        assert_eq!(
            exporter["spec"]["selector"],
            serde_json::json!({ "strimzi.io/name": format!("{cluster_name}-kafka-exporter") }),
            "{c}: kafka-exporter selector"
        );
        assert!(
            exporter["spec"]["type"].is_null() || exporter["spec"]["type"] == "ClusterIP",
            "{c}: kafka-exporter must be ClusterIP"
        );
        assert_eq!(
            uint(exporter, "/spec/ports/0/port", c),
            9404,
            "{c}: kafka-exporter port"
        );

        // Prometheus: its RoleBinding names its own ServiceAccount in this namespace; the
        // StatefulSet mounts a generated ConfigMap that is in the render, with the scrape config
        // of the platform and the alert rules for kgitops.
        let binding = self.get("RoleBinding", "prometheus");
        assert_eq!(
            text(binding, "/subjects/0/namespace", c),
            cluster.namespace,
            "{c}: prometheus"
        );
        let statefulset = self.get("StatefulSet", "prometheus");
        let volumes = statefulset["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap_or_else(|| panic!("{c}: prometheus StatefulSet has no volumes"));
        let config_name = volumes
            .iter()
            .find_map(|volume| volume["configMap"]["name"].as_str())
            .unwrap_or_else(|| panic!("{c}: prometheus StatefulSet mounts no ConfigMap"));
        let config = self.get("ConfigMap", config_name);
        for key in [
            "prometheus.yml",
            "kgitops.rules.yml",
            "kafka.rules.yml",
            "environment.rules.yml",
        ] {
            assert!(config["data"][key].is_string(), "{c}: {config_name} has no {key}");
        }
        for needle in [
            "kgitops_drift_objects",
            "kgitops_reconcile_total{result=\"error\"}",
        ] {
            assert!(
                config["data"]["kgitops.rules.yml"]
                    .as_str()
                    .is_some_and(|r| r.contains(needle)),
                "{c}: no kgitops alert on {needle}"
            );
        }
        let prometheus_yml = config["data"]["prometheus.yml"].as_str().unwrap_or_default();
        let jobs: BTreeSet<&str> = prometheus_yml
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- job_name: "))
            .filter(|job| *job != "prometheus")
            .collect();
        let expected: BTreeSet<&str> = match cluster.platform {
            Platform::Kraft => KRAFT_SCRAPE_JOBS.into_iter().collect(),
            Platform::ZooKeeper => ZOOKEEPER_SCRAPE_JOBS.into_iter().collect(),
        };
        assert_eq!(jobs, expected, "{c}: Prometheus scrape jobs");
        if cluster.platform == Platform::Kraft {
            let rules = config["data"]["kafka.rules.yml"].as_str().unwrap_or_default();
            let zookeeper = rules
                .lines()
                .filter(|l| !l.trim_start().starts_with('#'))
                .find(|l| l.to_lowercase().contains("zookeeper"));
            assert_eq!(zookeeper, None, "{c}: ZooKeeper alerts on KRaft");
        }
        assert!(
            statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
                .is_string(),
            "{c}: prometheus has no volumeClaimTemplate"
        );

        // The Strimzi operator's RoleBindings in the Kafka namespace name its ServiceAccount in
        // its own namespace.
        for (binding, cluster_role) in OPERATOR_ROLE_BINDINGS {
            let binding = self.get("RoleBinding", binding);
            let id = describe(binding);
            assert_eq!(text(binding, "/roleRef/kind", c), "ClusterRole", "{c}: {id}");
            assert_eq!(text(binding, "/roleRef/name", c), cluster_role, "{c}: {id}");
            assert_eq!(
                binding["subjects"],
                serde_json::json!([{
                    "kind": "ServiceAccount",
                    "name": "strimzi-cluster-operator",
                    "namespace": cluster.operator_namespace,
                }]),
                "{c}: {id} subjects"
            );
        }
    }

    /// The operator: its Deployment runs the release's image in the operator namespace and watches
    /// the Kafka namespace; every binding of its ServiceAccount names the operator namespace; the
    /// Kafka states the same release; the CRDs in the render are the release's, unchanged.
    fn check_operator(&self, cluster: &Cluster) {
        let c = self.cluster;
        let deployment = self.get_in(
            Some(cluster.operator_namespace),
            "Deployment",
            "strimzi-cluster-operator",
        );
        let container = &deployment["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            text(container, "/image", c),
            format!("quay.io/strimzi/operator:{}", cluster.release),
            "{c}: operator image"
        );
        let watched: Vec<&Value> = container["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["name"] == "STRIMZI_NAMESPACE")
            .collect();
        assert_eq!(
            watched,
            [&serde_json::json!({"name": "STRIMZI_NAMESPACE", "value": cluster.namespace})],
            "{c}: the operator must watch the Kafka namespace"
        );
        self.get_in(
            Some(cluster.operator_namespace),
            "ServiceAccount",
            "strimzi-cluster-operator",
        );
        self.get_in(
            Some(cluster.operator_namespace),
            "RoleBinding",
            "strimzi-cluster-operator-leader-election",
        );
        for binding in self
            .of_kind("RoleBinding")
            .chain(self.of_kind("ClusterRoleBinding"))
        {
            for subject in binding["subjects"].as_array().into_iter().flatten() {
                if subject["name"] == "strimzi-cluster-operator" {
                    assert_eq!(
                        subject["namespace"],
                        cluster.operator_namespace,
                        "{c}: {} subjects",
                        describe(binding)
                    );
                }
            }
        }
        let cluster_bindings: BTreeSet<&str> = self.of_kind("ClusterRoleBinding").map(name).collect();
        assert_eq!(
            cluster_bindings.len(),
            3,
            "{c}: the operator's ClusterRoleBindings: {cluster_bindings:?}"
        );

        let kafka = self.kafka();
        assert_eq!(
            kafka["metadata"]["annotations"][RELEASE_ANNOTATION],
            cluster.release,
            "{c}: {} must state {RELEASE_ANNOTATION}",
            describe(kafka)
        );
        let expected_api = match cluster.platform {
            Platform::Kraft => "kafka.strimzi.io/v1",
            Platform::ZooKeeper => "kafka.strimzi.io/v1beta2",
        };
        for object in self.objects.values() {
            if object["apiVersion"]
                .as_str()
                .is_some_and(|a| a.starts_with("kafka.strimzi.io/"))
            {
                assert_eq!(object["apiVersion"], expected_api, "{c}: {}", describe(object));
            }
        }

        // The CRDs: byte for byte (as JSON) those of the release, or none (a cluster sharing its
        // Kubernetes cluster with the owner of the CRDs).
        let crds: Vec<&Value> = self.of_kind("CustomResourceDefinition").collect();
        if !crds.is_empty() {
            let vendored = release_crds(cluster.release);
            assert_eq!(
                crds.len(),
                vendored.len(),
                "{c}: CRDs of Strimzi {}",
                cluster.release
            );
            for crd in vendored {
                let rendered = self.get_in(None, "CustomResourceDefinition", name(&crd));
                let mut without_labels = (*rendered).clone();
                // Overlays add their metadata labels (environment, ...); nothing else changes.
                if let Some(meta) = without_labels["metadata"].as_object_mut() {
                    meta.insert("labels".into(), crd["metadata"]["labels"].clone());
                }
                assert_eq!(
                    without_labels,
                    crd,
                    "{c}: CRD {} differs from the release's",
                    name(&crd)
                );
            }
        } else {
            assert!(
                SHARED_KUBERNETES_CLUSTER.contains(&c),
                "{c}: no CRDs, yet it has a Kubernetes cluster of its own"
            );
        }
    }

    /// Exactly one NodePort Service on 9999 per broker pod, selecting that pod.
    fn check_jmx_services(&self) {
        let c = self.cluster;
        let mut selected = BTreeSet::new();
        for service in self.of_kind("Service") {
            let Some(pod) = service["spec"]["selector"]["strimzi.io/pod-name"].as_str() else {
                continue;
            };
            let id = describe(service);
            assert_eq!(text(service, "/spec/type", c), "NodePort", "{c}: {id}");
            assert_eq!(uint(service, "/spec/ports/0/port", c), 9999, "{c}: {id}");
            assert_eq!(uint(service, "/spec/ports/0/targetPort", c), 9999, "{c}: {id}");
            assert_eq!(
                name(service),
                format!("{pod}-jmx"),
                "{c}: {id} is named for its pod"
            );
            assert!(
                selected.insert(pod.to_string()),
                "{c}: two JMX Services select {pod}"
            );
        }
        let expected = self.broker_pods();
        assert_eq!(
            selected, expected,
            "{c}: JMX Services must select exactly the broker pods"
        );
    }

    fn check_kafka_settings(&self, cluster: &Cluster) {
        let c = self.cluster;
        let kafka = self.kafka();
        let version = text(kafka, "/spec/kafka/version", c);
        // The release table validate judges by (generated from the release's kafka-versions.yaml;
        // supported versions only).
        let table = release_table(cluster.release).unwrap_or_else(|| {
            panic!(
                "{c}: kgitops has no version table for Strimzi {}",
                cluster.release
            )
        });
        let Some(entry) = table.kafka_version(version) else {
            panic!(
                "{c}: Kafka {version} is not supported by Strimzi {} ({})",
                cluster.release,
                table.kafka_list()
            );
        };
        if cluster.platform == Platform::Kraft {
            assert_eq!(
                kafka["spec"]["kafka"]["metadataVersion"], entry.metadata,
                "{c}: metadataVersion of Kafka {version}"
            );
            for key in ["inter.broker.protocol.version", "log.message.format.version"] {
                assert!(
                    kafka["spec"]["kafka"]["config"][key].is_null(),
                    "{c}: {key} has no meaning on KRaft"
                );
            }
            for removed in ["replicas", "storage", "resources", "jvmOptions"] {
                assert!(
                    kafka["spec"]["kafka"][removed].is_null(),
                    "{c}: spec.kafka.{removed} is a node pool setting in v1"
                );
            }
            assert!(
                kafka["spec"]["zookeeper"].is_null(),
                "{c}: spec.zookeeper on KRaft"
            );
        }

        let brokers = self.broker_pods().len() as u64;
        let config = &kafka["spec"]["kafka"]["config"];
        let setting = |key: &str| {
            config[key]
                .as_u64()
                .unwrap_or_else(|| panic!("{c}: spec.kafka.config.{key} is not set as a number"))
        };
        let replication = setting("default.replication.factor");
        for key in ["default.replication.factor", "offsets.topic.replication.factor"] {
            assert!(
                setting(key) <= brokers,
                "{c}: {key} {} > {brokers} brokers",
                setting(key)
            );
        }
        let transactions = setting("transaction.state.log.replication.factor");
        assert!(
            transactions <= brokers,
            "{c}: transaction log RF {transactions} > {brokers} brokers"
        );
        assert_eq!(
            setting("offsets.topic.replication.factor"),
            replication,
            "{c}: offsets RF"
        );
        assert_eq!(transactions, replication, "{c}: transaction log RF");
        let min_isr = setting("min.insync.replicas");
        assert!(
            min_isr >= 1 && min_isr < replication,
            "{c}: min.insync.replicas {min_isr}, RF {replication}"
        );
        let log_min_isr = setting("transaction.state.log.min.isr");
        assert!(
            log_min_isr >= 1 && log_min_isr < transactions,
            "{c}: transaction.state.log.min.isr {log_min_isr}, RF {transactions}"
        );

        let listeners: BTreeSet<(String, u64, String)> = kafka["spec"]["kafka"]["listeners"]
            .as_array()
            .unwrap_or_else(|| panic!("{c}: no listeners"))
            .iter()
            .map(|l| {
                (
                    text(l, "/name", c).to_string(),
                    uint(l, "/port", c),
                    text(l, "/type", c).to_string(),
                )
            })
            .collect();
        assert_eq!(
            listeners,
            BTreeSet::from([
                ("external".to_string(), 9092, "nodeport".to_string()),
                ("plain".to_string(), 9093, "internal".to_string()),
            ]),
            "{c}: listeners"
        );
    }

    /// Node pools: each names the Kafka, brokers and a controller quorum (odd, >= 3, dedicated),
    /// persistent storage with the KRaft metadata on exactly one volume, requests = limits and the
    /// heap below the limit, node-ID ranges that do not overlap.
    fn check_node_pools(&self) {
        let c = self.cluster;
        let kafka = self.kafka();
        let pools: Vec<&Value> = self.of_kind("KafkaNodePool").collect();
        assert!(!self.pools("broker").is_empty(), "{c}: no broker pool");
        let controllers: u64 = self
            .pools("controller")
            .iter()
            .map(|p| uint(p, "/spec/replicas", c))
            .sum();
        assert!(
            controllers >= 3 && controllers % 2 == 1,
            "{c}: {controllers} KRaft controllers: a quorum needs an odd number, at least 3"
        );
        let mut ranges: Vec<(u64, u64, String)> = Vec::new();
        for pool in &pools {
            let id = describe(pool);
            assert_eq!(
                pool["metadata"]["labels"]["strimzi.io/cluster"], kafka["metadata"]["name"],
                "{c}: {id} must name the Kafka"
            );
            let roles = pool["spec"]["roles"].as_array().cloned().unwrap_or_default();
            assert_eq!(
                roles.len(),
                1,
                "{c}: {id}: dedicated roles (broker or controller), got {roles:?}"
            );
            let storage = &pool["spec"]["storage"];
            assert_eq!(storage["type"], "jbod", "{c}: {id} storage");
            let volumes = storage["volumes"].as_array().cloned().unwrap_or_default();
            assert!(!volumes.is_empty(), "{c}: {id} has no volumes");
            for volume in &volumes {
                assert_eq!(
                    volume["type"], "persistent-claim",
                    "{c}: {id} volume {}",
                    volume["id"]
                );
                assert_eq!(
                    volume["deleteClaim"], false,
                    "{c}: {id} volume {} deleteClaim",
                    volume["id"]
                );
            }
            let metadata = volumes.iter().filter(|v| v["kraftMetadata"] == "shared").count();
            assert_eq!(
                metadata, 1,
                "{c}: {id}: exactly one volume holds the KRaft metadata"
            );

            let limit = bytes(text(pool, "/spec/resources/limits/memory", c));
            let heap = jvm_bytes(text(pool, "/spec/jvmOptions/-Xmx", c));
            assert!(
                heap < limit,
                "{c}: {id} -Xmx {heap} not below the memory limit {limit}"
            );
            assert_eq!(
                pool["spec"]["resources"]["requests"], pool["spec"]["resources"]["limits"],
                "{c}: {id} requests must equal limits"
            );
            let range = pool["metadata"]["annotations"]["strimzi.io/next-node-ids"]
                .as_str()
                .unwrap_or_else(|| panic!("{c}: {id} has no strimzi.io/next-node-ids"));
            let (first, last) = node_id_range(range);
            for (other_first, other_last, other) in &ranges {
                assert!(
                    last < *other_first || first > *other_last,
                    "{c}: node IDs {range} of {id} overlap those of {other}"
                );
            }
            ranges.push((first, last, id));
        }
    }

    /// The ZooKeeper platform: sizing of brokers and ZooKeeper in the Kafka.
    fn check_zookeeper(&self) {
        let c = self.cluster;
        let kafka = self.kafka();
        for component in ["kafka", "zookeeper"] {
            let spec = &kafka["spec"][component];
            let path = format!("/spec/{component}");
            let limit = bytes(text(kafka, &format!("{path}/resources/limits/memory"), c));
            let heap = jvm_bytes(text(kafka, &format!("{path}/jvmOptions/-Xmx"), c));
            assert!(
                heap < limit,
                "{c}: {component} -Xmx {heap} not below the memory limit {limit}"
            );
            assert_eq!(
                spec["resources"]["requests"], spec["resources"]["limits"],
                "{c}: {component} requests must equal limits"
            );
            assert_eq!(
                spec["storage"]["type"], "persistent-claim",
                "{c}: {component} storage"
            );
            assert_eq!(
                spec["storage"]["deleteClaim"], false,
                "{c}: {component} deleteClaim"
            );
        }
        let zookeepers = uint(kafka, "/spec/zookeeper/replicas", c);
        assert!(
            zookeepers % 2 == 1,
            "{c}: {zookeepers} ZooKeeper members: a quorum needs an odd number"
        );
    }

    /// zoo-entrance is unauthenticated ZooKeeper access: a LoadBalancer only with source ranges.
    fn check_zookeeper_exposure(&self) {
        let c = self.cluster;
        let service = self.get("Service", "zoo-entrance");
        if service["spec"]["type"] == "LoadBalancer" {
            let ranges = service["spec"]["loadBalancerSourceRanges"].as_array();
            assert!(
                ranges.is_some_and(|r| !r.is_empty()),
                "{c}: zoo-entrance LoadBalancer without loadBalancerSourceRanges"
            );
        }
    }
}

/// `strimzi.io/next-node-ids: "[first-last]"` (the one form the overlays use).
fn node_id_range(range: &str) -> (u64, u64) {
    let inner = range
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or_else(|| panic!("node-ID range {range:?}: expected [first-last]"));
    let (first, last) = inner
        .split_once('-')
        .unwrap_or_else(|| panic!("node-ID range {range:?}: expected [first-last]"));
    let parse = |n: &str| {
        n.trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("node-ID range {range:?}: {n:?} is not a number"))
    };
    (parse(first), parse(last))
}

/// The CustomResourceDefinitions of the vendored release.
fn release_crds(release: &str) -> Vec<Value> {
    render(&format!("infrastructure/strimzi/{release}"))
        .into_iter()
        .filter(|o| kind(o) == "CustomResourceDefinition")
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn render(dir: &str) -> Vec<Value> {
    let tree = DirTree::open(common::repo_root()).unwrap_or_else(|err| panic!("repository root: {err}"));
    let path = TreePath::new(dir).unwrap_or_else(|err| panic!("{dir}: {err}"));
    kgitops::render::render(&tree, &path).unwrap_or_else(|err| panic!("rendering {dir}: {err}"))
}

fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

fn name(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

fn namespace(object: &Value) -> Option<&str> {
    object["metadata"]["namespace"].as_str()
}

fn describe(object: &Value) -> String {
    match namespace(object) {
        Some(ns) => format!("{}/{ns}/{}", kind(object), name(object)),
        None => format!("{}/{}", kind(object), name(object)),
    }
}

fn gvk(object: &Value) -> GroupVersionKind {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind(object))
}

fn text<'v>(value: &'v Value, pointer: &str, cluster: &str) -> &'v str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{cluster}: {pointer} is not a string in {}", describe(value)))
}

fn uint(value: &Value, pointer: &str, cluster: &str) -> u64 {
    value
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{cluster}: {pointer} is not a number in {}", describe(value)))
}

/// A Kubernetes memory quantity (`16Gi`, `512Mi`, plain bytes) in bytes.
fn bytes(quantity: &str) -> u64 {
    let units = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
    ];
    scaled(quantity, &units)
}

/// A JVM heap size (`3072m`, `6g`) in bytes.
fn jvm_bytes(size: &str) -> u64 {
    let units = [
        ("k", 1u64 << 10),
        ("K", 1 << 10),
        ("m", 1 << 20),
        ("M", 1 << 20),
        ("g", 1 << 30),
        ("G", 1 << 30),
    ];
    scaled(size, &units)
}

fn scaled(quantity: &str, units: &[(&str, u64)]) -> u64 {
    let (number, factor) = units
        .iter()
        .find_map(|(suffix, factor)| quantity.strip_suffix(suffix).map(|n| (n, *factor)))
        .unwrap_or((quantity, 1));
    let number: u64 = number
        .parse()
        .unwrap_or_else(|_| panic!("cannot read the size {quantity:?}"));
    number * factor
}

#[test]
fn sizes_are_read_with_their_units() {
    assert_eq!(bytes("16Gi"), 16 << 30);
    assert_eq!(bytes("512Mi"), 512 << 20);
    assert_eq!(bytes("1024"), 1024);
    assert_eq!(jvm_bytes("3072m"), 3072 << 20);
    assert_eq!(jvm_bytes("6g"), 6 << 30);
}
