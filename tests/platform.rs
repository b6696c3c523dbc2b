//! The platform data this repository ships (`base/`, `clusters/*`, `deploy/`), rendered by kgitops'
//! own renderer and checked two ways:
//!
//! - Against the real apiserver with the Strimzi 0.45 CRDs: every cluster overlay and `deploy/` pass
//!   a server-side dry-run apply with strict field validation (an unknown field is an error, as in
//!   `kubectl apply --server-side`). With `deploy/` installed, every overlay also passes as kgitops'
//!   own ServiceAccount, so `deploy/rbac.yaml` grants enough (including the RBAC escalation rules
//!   for the RoleBindings it writes), and no more: the escalations a cluster-wide role would allow
//!   (Secrets and RoleBindings in `kube-system`, Strimzi RoleBindings elsewhere, relabelling other
//!   Namespaces) are Forbidden, and the namespaced rights follow the overlays' namespaces.
//! - As data: every cluster contains every component of the platform, one JMX Service per broker,
//!   and Kafka settings that fit together (replication factors, heap, ZooKeeper quorum, ...).
//!
//! The overlays name their own namespaces (`kafka-dev`, ...) and `deploy/` writes cluster-scoped RBAC,
//! so these tests do not use per-test namespaces. That is safe: this test binary has a control plane
//! of its own, and every write here is an idempotent server-side apply of the same objects.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use serde_json::Value;

use kgitops::source::{DirTree, TreePath};

/// One cluster overlay: its directory under `clusters/`, the namespace it deploys to, and the
/// namespace of the Strimzi operator that watches it.
struct Cluster {
    name: &'static str,
    namespace: &'static str,
    operator_namespace: &'static str,
}

const CLUSTERS: [Cluster; 3] = [
    Cluster {
        name: "dev",
        namespace: "kafka-dev",
        operator_namespace: "strimzi-dev",
    },
    Cluster {
        name: "staging",
        namespace: "kafka-staging",
        operator_namespace: "strimzi-staging",
    },
    Cluster {
        name: "prod-eu-west-1",
        namespace: "kafka-prod",
        operator_namespace: "strimzi",
    },
];

/// kgitops' ServiceAccount as `deploy/` installs it.
const KGITOPS_SERVICE_ACCOUNT: &str = "system:serviceaccount:kgitops:kgitops";

/// Kafka versions Strimzi 0.45 supports (its `kafka-versions.yaml`).
const SUPPORTED_KAFKA_VERSIONS: [&str; 5] = ["3.8.0", "3.8.1", "3.9.0", "3.9.1", "3.9.2"];

/// The objects of one platform, by kind and name, besides the per-broker JMX Services (checked
/// against the broker count) and the generated Prometheus ConfigMap (its name has a hash suffix).
const COMPONENTS: [(&str, &str); 16] = [
    ("Kafka", "main"),
    ("ConfigMap", "kafka-metrics"),
    ("Service", "kafka-exporter"),
    ("Deployment", "zoo-entrance"),
    ("Service", "zoo-entrance"),
    ("NetworkPolicy", "zoo-entrance"),
    ("Deployment", "zk-exporter"),
    ("Service", "zk-exporter"),
    ("ServiceAccount", "prometheus"),
    ("Role", "prometheus"),
    ("RoleBinding", "prometheus"),
    ("StatefulSet", "prometheus"),
    ("Service", "prometheus"),
    ("Ingress", "prometheus"),
    ("RoleBinding", "strimzi-cluster-operator"),
    ("RoleBinding", "strimzi-cluster-operator-watched"),
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

// ---------------------------------------------------------------------------------------------
// Against the apiserver

#[tokio::test]
async fn dev_passes_server_side_dry_run() {
    assert_dry_run_passes("clusters/dev").await;
}

#[tokio::test]
async fn staging_passes_server_side_dry_run() {
    assert_dry_run_passes("clusters/staging").await;
}

#[tokio::test]
async fn prod_eu_west_1_passes_server_side_dry_run() {
    assert_dry_run_passes("clusters/prod-eu-west-1").await;
}

#[tokio::test]
async fn deploy_passes_server_side_dry_run() {
    assert_dry_run_passes("deploy").await;
}

/// `deploy/rbac.yaml` is enough for kgitops to apply every cluster: installed for real, then
/// every overlay dry-run as the ServiceAccount. The apiserver checks RBAC escalation on the
/// Roles and RoleBindings here, before any of them exists, as on a fresh cluster.
#[tokio::test]
async fn kgitops_service_account_may_apply_every_cluster() {
    let admin = common::client().await;
    let deploy = render("deploy");
    let failures = server_side_apply(&admin, &deploy, false).await;
    assert!(
        failures.is_empty(),
        "installing deploy/:\n{}",
        failures.join("\n")
    );

    let kgitops = impersonated_client().await;
    for cluster in &CLUSTERS {
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

/// `deploy/` installed, kgitops' ServiceAccount is not cluster-admin in effect: server-side
/// dry-runs of the escalations the old cluster-wide ClusterRole allowed are Forbidden, while the
/// CLI still plans (`apply --dry-run`, `diff --live`) every overlay as that identity.
#[tokio::test]
async fn kgitops_service_account_cannot_escalate() {
    use k8s_openapi::api::core::v1::{Namespace, Secret};
    use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
    use kube::api::{Patch, PostParams};

    let admin = common::client().await;
    let failures = server_side_apply(&admin, &render("deploy"), false).await;
    assert!(
        failures.is_empty(),
        "installing deploy/:\n{}",
        failures.join("\n")
    );
    // A namespace no overlay declares.
    let undeclared = "team-payments";
    let ns: Value =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": undeclared}});
    assert!(server_side_apply(&admin, &[ns], false).await.is_empty());

    let kgitops = impersonated_client().await;
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
    let cluster_binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "kgitops-escalation"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "strimzi-cluster-operator-namespaced"},
        "subjects": [{"kind": "ServiceAccount", "name": "kgitops", "namespace": "kgitops"}],
    }))
    .unwrap();
    forbidden(
        "binding the Strimzi operator ClusterRole cluster-wide",
        Api::<ClusterRoleBinding>::all(kgitops.clone())
            .create(&create, &cluster_binding)
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

    // And every overlay still plans as that identity, through the CLI.
    let kubeconfig = impersonating_kubeconfig();
    for cluster in &CLUSTERS {
        for command in [&["apply", "--dry-run"][..], &["diff", "--live"][..]] {
            let out = common::control_plane()
                .kgitops()
                .args(command)
                .args(["--cluster", cluster.name, "--kubeconfig"])
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
/// the overlays.
#[test]
fn deploy_grants_namespaced_rights_exactly_where_the_overlays_write() {
    let overlays: BTreeSet<String> = CLUSTERS
        .iter()
        .flat_map(|c| render(&format!("clusters/{}", c.name)))
        .filter_map(|o| match kind(&o) {
            "Namespace" => Some(name(&o).to_string()),
            _ => namespace(&o).map(str::to_string),
        })
        .collect();
    let deploy = render("deploy");
    let bound: BTreeSet<String> = deploy
        .iter()
        .filter(|o| kind(o) == "RoleBinding" && o["roleRef"]["name"] == "kgitops-namespaced")
        .filter_map(|o| namespace(o).map(str::to_string))
        .collect();
    assert_eq!(bound, overlays, "RoleBindings of deploy/rbac-namespaces.yaml");
    let writable: BTreeSet<String> = deploy
        .iter()
        .filter(|o| kind(o) == "ClusterRole" && name(o) == "kgitops")
        .flat_map(|o| o["rules"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["resources"] == serde_json::json!(["namespaces"]))
        .flat_map(|r| r["resourceNames"].as_array().cloned().unwrap_or_default())
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    assert_eq!(writable, overlays, "Namespaces the ClusterRole kgitops may write");
    assert!(
        !deploy
            .iter()
            .any(|o| kind(o) == "ClusterRoleBinding" && o["roleRef"]["name"] == "kgitops-namespaced"),
        "kgitops-namespaced must never be bound cluster-wide"
    );
}

/// A client of the test control plane impersonating kgitops' ServiceAccount.
async fn impersonated_client() -> kube::Client {
    let mut config = common::control_plane().config().await;
    config.auth_info.impersonate = Some(KGITOPS_SERVICE_ACCOUNT.to_string());
    kube::Client::try_from(config).expect("client impersonating kgitops")
}

/// The test kubeconfig with `as: <kgitops' ServiceAccount>`, for the CLI. Written as JSON, which
/// is YAML.
fn impersonating_kubeconfig() -> tempfile::NamedTempFile {
    let mut kubeconfig =
        kube::config::Kubeconfig::read_from(common::control_plane().kubeconfig()).expect("test kubeconfig");
    for user in &mut kubeconfig.auth_infos {
        if let Some(auth) = user.auth_info.as_mut() {
            auth.impersonate = Some(KGITOPS_SERVICE_ACCOUNT.to_string());
        }
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&kubeconfig).unwrap()).unwrap();
    file
}

/// Renders `dir`, creates its Namespaces (a dry-run cannot create the namespace the other objects
/// go into), and dry-runs every object; fails with one line per rejected object.
async fn assert_dry_run_passes(dir: &str) {
    let client = common::client().await;
    let objects = render(dir);
    assert!(!objects.is_empty(), "{dir} renders no objects");
    create_namespaces(&client, &objects).await;
    let failures = server_side_apply(&client, &objects, true).await;
    assert!(
        failures.is_empty(),
        "{dir}: {} of {} objects rejected by the apiserver:\n{}",
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
    for_each_cluster(|cluster, platform| platform.check_components(cluster));
}

#[test]
fn every_cluster_has_one_jmx_service_per_broker() {
    for_each_cluster(|_, platform| platform.check_jmx_services());
}

#[test]
fn every_cluster_has_consistent_kafka_settings() {
    for_each_cluster(|_, platform| {
        platform.check_kafka_settings();
        platform.check_zookeeper_exposure();
    });
}

/// Renders every cluster overlay and runs `check` on it.
fn for_each_cluster(check: impl Fn(&Cluster, &Platform)) {
    for cluster in &CLUSTERS {
        let objects = render(&format!("clusters/{}", cluster.name));
        check(cluster, &Platform::new(cluster.name, &objects));
    }
}

/// The overlays really differ where they claim to: broker counts, and so JMX Service counts.
#[test]
fn clusters_are_sized_differently() {
    let brokers: BTreeMap<&str, u64> = CLUSTERS
        .iter()
        .map(|cluster| {
            let objects = render(&format!("clusters/{}", cluster.name));
            (cluster.name, Platform::new(cluster.name, &objects).brokers())
        })
        .collect();
    assert_eq!(
        brokers,
        BTreeMap::from([("dev", 2), ("prod-eu-west-1", 6), ("staging", 3)])
    );
}

/// One rendered cluster, indexed by kind and name.
struct Platform<'a> {
    cluster: &'static str,
    objects: BTreeMap<(&'a str, &'a str), &'a Value>,
}

impl<'a> Platform<'a> {
    fn new(cluster: &'static str, objects: &'a [Value]) -> Self {
        let mut index = BTreeMap::new();
        for object in objects {
            let previous = index.insert((kind(object), name(object)), object);
            assert!(
                previous.is_none(),
                "{cluster}: {} appears twice",
                describe(object)
            );
        }
        Platform {
            cluster,
            objects: index,
        }
    }

    fn get(&self, kind: &str, name: &str) -> &'a Value {
        self.objects
            .get(&(kind, name))
            .unwrap_or_else(|| panic!("{}: no {kind}/{name}", self.cluster))
    }

    fn of_kind(&self, wanted: &'a str) -> impl Iterator<Item = &'a Value> + '_ {
        self.objects
            .iter()
            .filter(move |((kind, _), _)| *kind == wanted)
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

    fn brokers(&self) -> u64 {
        uint(self.kafka(), "/spec/kafka/replicas", self.cluster)
    }

    fn check_components(&self, cluster: &Cluster) {
        let c = self.cluster;
        for (kind, name) in COMPONENTS {
            self.get(kind, name);
        }

        // The Namespace object, and everything else in it.
        let namespaces: Vec<&str> = self.of_kind("Namespace").map(name).collect();
        assert_eq!(namespaces, [cluster.namespace], "{c}: Namespace objects");
        for object in self.objects.values().filter(|o| kind(o) != "Namespace") {
            assert_eq!(
                namespace(object),
                Some(cluster.namespace),
                "{c}: {}",
                describe(object)
            );
        }

        // metricsConfig of Kafka and ZooKeeper point at keys of a ConfigMap the render contains.
        let kafka = self.kafka();
        for component in ["kafka", "zookeeper"] {
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
        // and the alert rules for kgitops.
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
        for job in [
            "kafka-brokers",
            "zookeeper",
            "kafka-exporter",
            "zk-exporter",
            "kgitops",
        ] {
            assert!(
                config["data"]["prometheus.yml"]
                    .as_str()
                    .is_some_and(|p| p.contains(&format!("job_name: {job}\n"))),
                "{c}: no scrape job {job}"
            );
        }
        assert!(
            statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
                .is_string(),
            "{c}: prometheus has no volumeClaimTemplate"
        );

        // The Strimzi operator's RoleBindings name its ServiceAccount in its own namespace.
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

    /// Exactly one NodePort Service on 9999 per broker, selecting that broker's pod.
    fn check_jmx_services(&self) {
        let c = self.cluster;
        let kafka_name = name(self.kafka());
        let mut selected = BTreeSet::new();
        for service in self.of_kind("Service") {
            let Some(pod) = service["spec"]["selector"]["strimzi.io/pod-name"].as_str() else {
                continue;
            };
            let id = describe(service);
            assert_eq!(text(service, "/spec/type", c), "NodePort", "{c}: {id}");
            assert_eq!(uint(service, "/spec/ports/0/port", c), 9999, "{c}: {id}");
            assert_eq!(uint(service, "/spec/ports/0/targetPort", c), 9999, "{c}: {id}");
            assert!(
                selected.insert(pod.to_string()),
                "{c}: two JMX Services select {pod}"
            );
        }
        let brokers = self.brokers();
        let expected: BTreeSet<String> = (0..brokers).map(|i| format!("{kafka_name}-kafka-{i}")).collect();
        assert_eq!(
            selected, expected,
            "{c}: JMX Services must select exactly the {brokers} broker pods"
        );
    }

    fn check_kafka_settings(&self) {
        let c = self.cluster;
        let kafka = self.kafka();
        let version = text(kafka, "/spec/kafka/version", c);
        assert!(
            SUPPORTED_KAFKA_VERSIONS.contains(&version),
            "{c}: Kafka {version}"
        );

        let brokers = self.brokers();
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
