//! Issue 16's whole path for `clusters/prod-eu-west-1` on the real apiserver: from the seed's
//! ZooKeeper platform on Strimzi 0.45.2 / Kafka 3.9.2 to Strimzi 1.2.0 / Kafka 4.3.1, every step
//! of `kgitops strimzi path --cluster prod-eu-west-1 --to 1.2.0` as a commit pushed to a bare git
//! remote, the daemon (`kgitops run`, in process) following it.
//!
//! The repository is a copy of this one's prod overlay: `clusters/prod-eu-west-1/operator/` (the
//! real overlay, pointed at `infrastructure/strimzi/<release>/`, the vendored releases copied
//! unchanged) and `clusters/prod-eu-west-1/kafka/platform.yaml`, the rendered `kafka-prod` objects
//! (`tests/fixtures/migration/step0..4.yaml` for the migration, then the changes each later step
//! names; see `tests/fixtures/migration-path/README.md`). The real namespaces `kafka-prod` and
//! `strimzi`: this test binary has the control plane to itself.
//!
//! No operator runs. A test operator writes, through the status subresource and with a delay of a
//! few hundred ms after each spec change, what Strimzi writes: the Kafka's `observedGeneration`,
//! `Ready`, `kafkaNodePools`, `kafkaMetadataState` (`v1beta2` only: `kafka.strimzi.io/v1` has no
//! such field), `kafkaVersion`, `kafkaMetadataVersion` (KRaft), `operatorLastSuccessfulVersion`
//! (the release of the operator Deployment kgitops applied) and the pools' `nodeIds`/`roles`; the
//! metadata state moves when the test says so (`KafkaMetadataStateManager`'s transitions). For the
//! CRD storage step it does what `v1-api-conversion.sh crd-upgrade` does (Strimzi 0.50.1
//! `CrdUpgradeCommand`): `v1` stored in every Strimzi CRD, every object re-stored, and
//! `status.storedVersions: [v1]`.
//!
//! At each step: what is live (the objects and fields of the step), what waits (`/status`
//! `waiting`, `kgitops_gate_waiting`, the `gate` alert), that a gated step pushed before its state
//! stays unapplied until the test writes the state, that the pools and the ZooKeeper-only objects
//! are never pruned while needed, and at the end that `kgitops validate --from PREV --to STEP`
//! passes every step. The latencies from "status written" to "gated step live" are printed.

#[path = "support/alert_sink.rs"]
mod alert_sink;
mod common;
#[path = "support/daemon_poll.rs"]
mod daemon_poll;
mod gitserver;
#[path = "support/http_client.rs"]
mod http_client;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alert_sink::AlertSink;
use daemon_poll::{cluster_status, eventually, eventually_within, metric, p50, waiting};
use gitserver::{BareRemote, WorkRepo};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kgitops::manifest::yaml::{Limits, parse_documents};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const CLUSTER: &str = "prod-eu-west-1";
const NS: &str = "kafka-prod";
const KAFKA: &str = "Kafka/kafka-prod/main";
const OVERLAY: &str = "clusters/prod-eu-west-1";
/// The releases of the path (`strimzi path`), copied into the test repository.
const RELEASES: [&str; 5] = ["0.45.2", "0.47.0", "0.50.1", "1.0.1", "1.2.0"];
/// How often the test polls the daemon and the apiserver.
const POLL: Duration = Duration::from_millis(10);
/// How long applying one revision may take: a release's CRDs (up to 1.7 MB) on a loaded 2-core machine.
const APPLY_LIMIT: Duration = Duration::from_secs(120);
/// How long the test operator takes to reconcile a spec change (a realistic, short delay).
const OPERATOR_DELAY: Duration = Duration::from_millis(300);

fn control_plane() -> &'static common::ControlPlane {
    common::control_plane_for_release("0.45.2")
}

fn api(
    client: &kube::Client,
    group: &str,
    version: &str,
    kind: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

async fn get(api: &Api<DynamicObject>, name: &str) -> Option<Value> {
    api.get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .map(|o| serde_json::to_value(o).unwrap())
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

// ---------------------------------------------------------------------------------------------
// The steps as repository states.

/// What `clusters/prod-eu-west-1` holds at one step.
#[derive(Clone)]
struct Platform {
    /// The `kafka-prod` objects (`kafka/platform.yaml`).
    objects: Vec<Value>,
    /// The vendored release the operator overlay includes.
    release: &'static str,
    /// The operator overlay patches the Strimzi CRDs to store `v1` (what `crd-upgrade` sets).
    crd_storage_v1: bool,
}

fn migration_fixture(name: &str) -> Vec<Value> {
    let path = common::repo_root().join(format!("tests/fixtures/migration/{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_documents(&text, name, &Limits::DEFAULT).expect("fixture parses")
}

impl Platform {
    fn migration(step: u32) -> Platform {
        Platform {
            objects: migration_fixture(&format!("step{step}")),
            release: "0.45.2",
            crd_storage_v1: false,
        }
    }

    fn kafka(&mut self) -> &mut Value {
        self.objects
            .iter_mut()
            .find(|o| o["kind"] == "Kafka")
            .expect("a Kafka")
    }

    /// `spec.kafka.version`.
    fn kafka_version(mut self, version: &str) -> Platform {
        self.kafka()["spec"]["kafka"]["version"] = json!(version);
        self
    }

    /// The operator overlay on `release`, and the Kafka's `kgitops.io/strimzi-release`.
    fn operator(mut self, release: &'static str) -> Platform {
        self.release = release;
        self.kafka()["metadata"]["annotations"]["kgitops.io/strimzi-release"] = json!(release);
        self
    }

    /// What the v1 conversion tool's `convert-file` produces, after the one manual change it asks
    /// for (Strimzi 0.50.1 `KafkaConversions.enforceKafkaResources`: `spec.kafka.resources` is
    /// refused, it belongs to the node pools): every Strimzi object `kafka.strimzi.io/v1`.
    fn convert_to_v1(mut self) -> Platform {
        let resources = self.kafka()["spec"]["kafka"]
            .as_object_mut()
            .unwrap()
            .remove("resources")
            .expect("spec.kafka.resources in the fixture");
        for o in &mut self.objects {
            if o["kind"] == "KafkaNodePool" && o["metadata"]["name"] == "kafka" {
                o["spec"]["resources"] = resources.clone();
            }
            if o["apiVersion"] == "kafka.strimzi.io/v1beta2" {
                o["apiVersion"] = json!("kafka.strimzi.io/v1");
            }
        }
        self
    }

    fn crd_storage_v1(mut self, on: bool) -> Platform {
        self.crd_storage_v1 = on;
        self
    }
}

/// The commits of the path, in order: label and platform. Steps 1-4 are `strimzi path`'s first
/// step (the migration), the others one printed step each.
fn path_steps() -> Vec<(&'static str, Platform)> {
    let zk_gone = Platform::migration(4);
    let s5 = zk_gone.clone().kafka_version("3.9.1");
    let s6 = s5.clone().operator("0.47.0");
    let s7 = s6.clone().kafka_version("4.0.0");
    let s8 = s7.clone().operator("0.50.1");
    let s9 = s8.clone().kafka_version("4.1.1");
    let s10 = s9.clone().convert_to_v1();
    let s11 = s10.clone().crd_storage_v1(true);
    let s12 = s11.clone().operator("1.0.1").crd_storage_v1(false);
    let s13 = s12.clone().kafka_version("4.2.0");
    let s14 = s13.clone().operator("1.2.0");
    let s15 = s14.clone().kafka_version("4.3.1");
    vec![
        (
            "step 0: the seed's ZooKeeper platform on Strimzi 0.45.2",
            Platform::migration(0),
        ),
        ("step 1: brokers in the node pool `kafka`", Platform::migration(1)),
        (
            "step 2: controller pool, strimzi.io/kraft: migration",
            Platform::migration(2),
        ),
        ("step 3: strimzi.io/kraft: enabled", Platform::migration(3)),
        (
            "step 4: spec.zookeeper and the ZooKeeper-only objects removed",
            zk_gone,
        ),
        ("step 5: Kafka 3.9.2 -> 3.9.1 on Strimzi 0.45.2", s5),
        ("step 6: operator Strimzi 0.45.2 -> 0.47.0", s6),
        ("step 7: Kafka 3.9.1 -> 4.0.0 on Strimzi 0.47.0", s7),
        ("step 8: operator Strimzi 0.47.0 -> 0.50.1", s8),
        ("step 9: Kafka 4.0.0 -> 4.1.1 on Strimzi 0.50.1", s9),
        (
            "step 10: every Strimzi resource converted to kafka.strimzi.io/v1",
            s10,
        ),
        ("step 11: the Strimzi CRDs store v1 (crd-upgrade)", s11),
        ("step 12: operator Strimzi 0.50.1 -> 1.0.1", s12),
        ("step 13: Kafka 4.1.1 -> 4.2.0 on Strimzi 1.0.1", s13),
        ("step 14: operator Strimzi 1.0.1 -> 1.2.0", s14),
        ("step 15: Kafka 4.2.0 -> 4.3.1 on Strimzi 1.2.0", s15),
    ]
}

/// The test's platform repository and its remote.
struct Repo {
    work: WorkRepo,
    remote: BareRemote,
    /// The real operator overlay's kustomization, with the 0.45.2 release in it.
    operator_kustomization: String,
    commits: Vec<String>,
}

impl Repo {
    fn init(dir: &std::path::Path) -> Repo {
        let work = WorkRepo::init(&dir.join("work"));
        let root = common::repo_root();
        for release in RELEASES {
            common::copy_dir(
                &common::release_dir(release),
                &work.dir.join("infrastructure/strimzi").join(release),
            );
        }
        common::copy_dir(
            &root.join("clusters/prod-eu-west-1/operator"),
            &work.dir.join(OVERLAY).join("operator"),
        );
        let patch =
            std::fs::read_to_string(root.join("tests/fixtures/migration-path/crd-storage-v1.yaml")).unwrap();
        work.write(&format!("{OVERLAY}/operator/patches/crd-storage-v1.yaml"), &patch);
        work.write(
            &format!("{OVERLAY}/kustomization.yaml"),
            "# prod-eu-west-1 as tests/migration_path.rs walks it: the kafka-prod render and the operator overlay.\n\
             resources:\n  - kafka\n  - operator\n",
        );
        work.write(
            &format!("{OVERLAY}/kafka/kustomization.yaml"),
            "resources:\n  - platform.yaml\n",
        );
        let operator_kustomization =
            std::fs::read_to_string(work.dir.join(OVERLAY).join("operator/kustomization.yaml")).unwrap();
        assert!(
            operator_kustomization.contains("../../../infrastructure/strimzi/0.45.2\n"),
            "the prod operator overlay includes the 0.45.2 release"
        );
        let remote = BareRemote::init(&dir.join("remote.git"));
        Repo {
            work,
            remote,
            operator_kustomization,
            commits: Vec::new(),
        }
    }

    /// Writes `platform`, commits it and pushes; returns the commit.
    fn push(&mut self, message: &str, platform: &Platform) -> String {
        let stream: String = platform
            .objects
            .iter()
            .map(|o| format!("---\n{}\n", serde_json::to_string(o).unwrap()))
            .collect();
        self.work
            .write(&format!("{OVERLAY}/kafka/platform.yaml"), &stream);
        let mut operator = self.operator_kustomization.replace(
            "infrastructure/strimzi/0.45.2\n",
            &format!("infrastructure/strimzi/{}\n", platform.release),
        );
        if platform.crd_storage_v1 {
            operator.push_str(
                "  # JSON 6902 on every Strimzi CRD: v1 stored, the other versions served only (what\n  \
                 # v1-api-conversion.sh crd-upgrade sets; kgitops would revert it otherwise).\n  \
                 - path: patches/crd-storage-v1.yaml\n    target:\n      group: apiextensions.k8s.io\n      \
                 version: v1\n      kind: CustomResourceDefinition\n      labelSelector: strimzi.io/crd-install=true\n",
            );
        }
        self.work
            .write(&format!("{OVERLAY}/operator/kustomization.yaml"), &operator);
        let commit = self.work.commit(message);
        self.remote.push(&self.work, "main");
        self.commits.push(commit.clone());
        commit
    }
}

// ---------------------------------------------------------------------------------------------
// The test operator.

/// The metadata version Strimzi reports for a Kafka version (the release's `kafka-versions.yaml`
/// default, as the broker reports it).
fn metadata_version(kafka: &str) -> &'static str {
    match kafka.get(..3) {
        Some("3.9") => "3.9-IV0",
        Some("4.0") => "4.0-IV3",
        Some("4.1") => "4.1-IV1",
        Some("4.2") => "4.2-IV1",
        Some("4.3") => "4.3-IV0",
        other => panic!("no metadata version for Kafka {other:?}"),
    }
}

struct OperatorState {
    /// `kafkaMetadataState`, moved by the test.
    state: &'static str,
    /// The API version it reads and writes the Strimzi objects with.
    api: &'static str,
    /// While paused it writes nothing (a reconcile that has not come round yet).
    paused: bool,
    /// Each metadata state written, and when.
    written: Vec<(&'static str, Instant)>,
    /// Spec generations first seen, by object: the status follows `OPERATOR_DELAY` later.
    seen: BTreeMap<String, (i64, Instant)>,
}

#[derive(Clone)]
struct Operator {
    inner: Arc<Mutex<OperatorState>>,
    stop: CancellationToken,
}

impl Operator {
    fn start(client: kube::Client) -> (Operator, tokio::task::JoinHandle<()>) {
        let op = Operator {
            inner: Arc::new(Mutex::new(OperatorState {
                state: "ZooKeeper",
                api: "v1beta2",
                paused: false,
                written: Vec::new(),
                seen: BTreeMap::new(),
            })),
            stop: CancellationToken::new(),
        };
        let task = tokio::spawn(op.clone().run(client));
        (op, task)
    }

    fn set(&self, state: &'static str) {
        self.inner.lock().unwrap().state = state;
    }

    fn use_api(&self, api: &'static str) {
        self.inner.lock().unwrap().api = api;
    }

    fn pause(&self, paused: bool) {
        self.inner.lock().unwrap().paused = paused;
    }

    /// Waits until the operator has written `state`; returns when.
    async fn written(&self, state: &'static str) -> Instant {
        eventually(
            &format!("the operator writing {state}"),
            Duration::from_millis(5),
            || async {
                let inner = self.inner.lock().unwrap();
                match inner.written.iter().rev().find(|(s, _)| *s == state) {
                    Some((_, at)) => Ok(*at),
                    None => Err(format!(
                        "{:?}",
                        inner.written.iter().map(|(s, _)| s).collect::<Vec<_>>()
                    )),
                }
            },
        )
        .await
    }

    /// Whether the status for `generation` of `object` may be written: the operator saw it at least
    /// `OPERATOR_DELAY` ago.
    fn due(&self, object: &str, generation: i64) -> bool {
        let mut inner = self.inner.lock().unwrap();
        let seen = inner
            .seen
            .entry(object.to_string())
            .or_insert((generation, Instant::now()));
        if seen.0 != generation {
            *seen = (generation, Instant::now());
        }
        seen.1.elapsed() >= OPERATOR_DELAY
    }

    async fn run(self, client: kube::Client) {
        let deployments = api(&client, "apps", "v1", "Deployment", Some("strimzi"));
        while !self.stop.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(25)).await;
            let (state, version, paused) = {
                let inner = self.inner.lock().unwrap();
                (inner.state, inner.api, inner.paused)
            };
            if paused {
                continue;
            }
            // The operator that runs is the one whose Deployment kgitops applied.
            let release = match deployments.get_opt("strimzi-cluster-operator").await {
                Ok(Some(d)) => serde_json::to_value(d).unwrap()["spec"]["template"]["spec"]["containers"][0]
                    ["image"]
                    .as_str()
                    .and_then(|image| image.rsplit(':').next())
                    .unwrap_or_default()
                    .to_string(),
                _ => continue,
            };
            let kafkas = api(&client, "kafka.strimzi.io", version, "Kafka", Some(NS));
            let pools = api(&client, "kafka.strimzi.io", version, "KafkaNodePool", Some(NS));
            let Ok(Some(kafka)) = kafkas.get_opt("main").await else {
                continue;
            };
            let kafka = serde_json::to_value(kafka).unwrap();
            let Ok(listed) = pools.list(&ListParams::default()).await else {
                continue;
            };
            let mut names = Vec::new();
            for p in &listed.items {
                let p = serde_json::to_value(p).unwrap();
                let name = p["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let generation = p["metadata"]["generation"].as_i64().unwrap_or(0);
                names.push(json!({"name": name}));
                if p.pointer("/status/observedGeneration").and_then(Value::as_i64) == Some(generation)
                    || !self.due(&format!("KafkaNodePool/{name}"), generation)
                {
                    continue;
                }
                let ids: Vec<i64> = if name == "kafka" {
                    (0..6).collect()
                } else {
                    (6..9).collect()
                };
                let status = json!({"observedGeneration": generation, "replicas": ids.len(), "nodeIds": ids,
                    "roles": p["spec"]["roles"].clone(), "clusterId": "prod-cluster-id",
                    "labelSelector": format!("strimzi.io/cluster=main,strimzi.io/name=main-{name},strimzi.io/kind=Kafka"),
                    "conditions": []});
                let _ = pools
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": status})),
                    )
                    .await;
            }
            let generation = kafka["metadata"]["generation"].as_i64().unwrap_or(0);
            let live = kafka.get("status").cloned().unwrap_or(Value::Null);
            let mut status = live.clone();
            if live.get("observedGeneration").and_then(Value::as_i64) != Some(generation) {
                if !self.due("Kafka/main", generation) {
                    continue;
                }
                // A finished reconcile of the new spec: the versions it rolled the brokers to.
                let kafka_version = kafka["spec"]["kafka"]["version"].clone();
                status = json!({"observedGeneration": generation, "kafkaVersion": kafka_version});
            }
            names.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            let node_pools = text(&kafka, "/metadata/annotations/strimzi.io~1node-pools") == Some("enabled")
                || version == "v1";
            let kraft = state == "KRaft";
            status["conditions"] = json!([{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-07T18:00:00.000Z"}]);
            status["clusterId"] = json!("prod-cluster-id");
            status["operatorLastSuccessfulVersion"] = json!(release);
            status["kafkaNodePools"] = if node_pools && !names.is_empty() {
                Value::Array(names)
            } else {
                Value::Null
            };
            status["kafkaMetadataState"] = if version == "v1beta2" {
                json!(state)
            } else {
                Value::Null
            };
            status["kafkaMetadataVersion"] = match status["kafkaVersion"].as_str() {
                Some(v) if kraft => json!(metadata_version(v)),
                _ => Value::Null,
            };
            let keys = [
                "observedGeneration",
                "kafkaMetadataState",
                "kafkaNodePools",
                "kafkaVersion",
                "kafkaMetadataVersion",
                "operatorLastSuccessfulVersion",
            ];
            let same = keys
                .iter()
                .all(|k| live.get(*k).unwrap_or(&Value::Null) == status.get(*k).unwrap_or(&Value::Null));
            if same {
                continue;
            }
            let pools_reported =
                live.get("kafkaNodePools").is_none_or(Value::is_null) && !status["kafkaNodePools"].is_null();
            if kafkas
                .patch_status(
                    "main",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await
                .is_ok()
            {
                let mut inner = self.inner.lock().unwrap();
                if version == "v1beta2" {
                    inner.written.push((state, Instant::now()));
                }
                if pools_reported {
                    inner.written.push(("kafkaNodePools", Instant::now()));
                }
            }
        }
    }
}

/// What Strimzi 0.50.1's `v1-api-conversion.sh crd-upgrade` does (`CrdUpgradeCommand`): every
/// Strimzi CRD stores `v1` (the others served only), every custom resource is replaced through `v1`
/// so that it is stored as `v1`, and every CRD's `status.storedVersions` becomes `[v1]`.
async fn crd_upgrade(client: &kube::Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let strimzi: Vec<CustomResourceDefinition> = crds
        .list(&ListParams::default().labels("strimzi.io/crd-install=true"))
        .await
        .unwrap()
        .items;
    assert!(strimzi.len() >= 10, "{} Strimzi CRDs", strimzi.len());
    // The Strimzi kinds of the running release (a CRD left from an older release without v1, such
    // as 0.45's KafkaMirrorMaker, is not one of them).
    let strimzi: Vec<CustomResourceDefinition> = strimzi
        .into_iter()
        .filter(|crd| crd.spec.versions.iter().any(|v| v.name == "v1"))
        .collect();
    for crd in &strimzi {
        let name = crd.metadata.name.clone().unwrap();
        let mut changed = crd.clone();
        for v in &mut changed.spec.versions {
            v.served = true;
            v.storage = v.name == "v1";
        }
        crds.replace(&name, &PostParams::default(), &changed)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for crd in &strimzi {
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
            &crd.spec.group,
            "v1",
            &crd.spec.names.kind,
        ));
        let objects: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        for mut o in objects.list(&ListParams::default()).await.unwrap().items {
            o.types = Some(kube::api::TypeMeta {
                api_version: ar.api_version.clone(),
                kind: ar.kind.clone(),
            });
            let ns = o.metadata.namespace.clone().unwrap();
            let name = o.metadata.name.clone().unwrap();
            Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &ar)
                .replace(&name, &PostParams::default(), &o)
                .await
                .unwrap_or_else(|e| panic!("{ns}/{name}: {e}"));
        }
    }
    for crd in &strimzi {
        let name = crd.metadata.name.clone().unwrap();
        crds.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"storedVersions": ["v1"]}})),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// The daemon.

async fn applied(addr: SocketAddr, commit: &str) -> Value {
    let c = eventually_within(
        &format!("revision {commit} applied"),
        POLL,
        APPLY_LIMIT,
        || async move {
            let c = cluster_status(addr).await;
            if c["applied_revision"] == commit && c["last_result"]["revision"] == commit {
                Ok(c)
            } else {
                Err(c.to_string())
            }
        },
    )
    .await;
    // Progress, for a slow or failing run.
    eprintln!("applied {commit} in {} ms", c["last_result"]["duration_ms"]);
    c
}

/// The live world the assertions read.
struct Live {
    client: kube::Client,
}

impl Live {
    async fn kafka(&self, version: &str) -> Value {
        get(
            &api(&self.client, "kafka.strimzi.io", version, "Kafka", Some(NS)),
            "main",
        )
        .await
        .expect("Kafka/kafka-prod/main live")
    }

    async fn exists(&self, group: &str, version: &str, kind: &str, ns: Option<&str>, name: &str) -> bool {
        get(&api(&self.client, group, version, kind, ns), name)
            .await
            .is_some()
    }

    async fn pool(&self, version: &str, name: &str) -> bool {
        self.exists("kafka.strimzi.io", version, "KafkaNodePool", Some(NS), name)
            .await
    }

    /// The ZooKeeper-only objects step 4 removes, and whether each is live.
    async fn zookeeper_only(&self) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        for (group, kind, name) in [
            ("apps", "Deployment", "zoo-entrance"),
            ("", "Service", "zoo-entrance"),
            ("networking.k8s.io", "NetworkPolicy", "zoo-entrance"),
            ("apps", "Deployment", "zk-exporter"),
            ("", "Service", "zk-exporter"),
        ] {
            let live = self.exists(group, "v1", kind, Some(NS), name).await;
            out.push((format!("{kind}/{NS}/{name}"), live));
        }
        out
    }

    async fn operator_image(&self) -> String {
        let d = get(
            &api(&self.client, "apps", "v1", "Deployment", Some("strimzi")),
            "strimzi-cluster-operator",
        )
        .await
        .expect("the operator Deployment");
        text(&d, "/spec/template/spec/containers/0/image")
            .unwrap()
            .to_string()
    }

    async fn crd(&self, name: &str) -> Value {
        let crd = Api::<CustomResourceDefinition>::all(self.client.clone())
            .get(name)
            .await
            .unwrap();
        serde_json::to_value(crd).unwrap()
    }

    /// The Kafka CRD's versions as (name, served, storage), and its `status.storedVersions`.
    async fn kafka_crd_versions(&self) -> (Vec<(String, bool, bool)>, Vec<String>) {
        let crd = self.crd("kafkas.kafka.strimzi.io").await;
        let versions = crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["name"].as_str().unwrap().to_string(),
                    v["served"] == true,
                    v["storage"] == true,
                )
            })
            .collect();
        let stored = serde_json::from_value(crd["status"]["storedVersions"].clone()).unwrap();
        (versions, stored)
    }
}

/// Waits until the live Kafka's status says the operator finished `kafka_version` on `release`.
async fn finished(live: &Live, version: &str, release: &str, kafka_version: &str) -> Value {
    eventually(
        &format!("the operator {release} running Kafka {kafka_version}"),
        POLL,
        || async {
            let k = live.kafka(version).await;
            let s = &k["status"];
            let generation = k["metadata"]["generation"].clone();
            if s["observedGeneration"] == generation
                && s["kafkaVersion"] == kafka_version
                && s["operatorLastSuccessfulVersion"] == release
            {
                Ok(k)
            } else {
                Err(s.to_string())
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_walks_prod_eu_west_1_from_zookeeper_on_0_45_to_kraft_on_1_2_gated_by_live_state() {
    let started = Instant::now();
    let client = control_plane().client().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut repo = Repo::init(tmp.path());
    let steps = path_steps();
    let sink = AlertSink::start();
    let live = Live {
        client: client.clone(),
    };

    let c0 = repo.push(steps[0].0, &steps[0].1);
    std::fs::write(tmp.path().join("webhook-secret"), "s3cret\n").unwrap();
    let config_text = format!(
        "source:\n  url: {url}\n  branch: main\n  interval: 1s\nclusters:\n  - name: {CLUSTER}\n    kubeconfig: {kubeconfig}\n    \
         prune: true\n    inventory_namespace: {NS}\n\
         server:\n  listen: 127.0.0.1:0\n  status_listen: 127.0.0.1:0\n  webhook_secret_file: webhook-secret\n\
         alerts:\n  - {{type: webhook, url: \"{sink}\"}}\ncache_dir: {cache}\n",
        url = repo.remote.file_url(),
        kubeconfig = control_plane().kubeconfig().display(),
        sink = sink.url,
        cache = tmp.path().join("cache").display(),
    );
    let config = kgitops::daemon::Config::parse(&config_text, &tmp.path().join("kgitops.yaml"), tmp.path())
        .unwrap_or_else(|e| panic!("{e}\n{config_text}"));
    let daemon = kgitops::daemon::Daemon::bind(config).await.unwrap();
    let addr = daemon.status_addr();
    let token = CancellationToken::new();
    let task = tokio::spawn(daemon.run(token.clone()));
    let (op, operator) = Operator::start(client.clone());
    let mut latencies = Vec::new();

    // Step 0: the ZooKeeper platform and the 0.45.2 operator.
    applied(addr, &c0).await;
    assert_eq!(live.operator_image().await, "quay.io/strimzi/operator:0.45.2");
    assert!(live.kafka("v1beta2").await.pointer("/spec/zookeeper").is_some());
    assert!(live.zookeeper_only().await.iter().all(|(_, l)| *l));
    op.written("ZooKeeper").await;
    finished(&live, "v1beta2", "0.45.2", "3.9.2").await;

    // Step 1: node pools; nothing gated. The operator is held back so that step 2 arrives before
    // the node pools are in effect.
    op.pause(true);
    let c1 = repo.push(steps[1].0, &steps[1].1);
    applied(addr, &c1).await;
    assert!(live.pool("v1beta2", "kafka").await);
    assert_eq!(
        text(
            &live.kafka("v1beta2").await,
            "/metadata/annotations/strimzi.io~1node-pools"
        ),
        Some("enabled")
    );

    // Step 2 pushed before the operator reported the node pools: waits, nothing of it applied.
    let c2 = repo.push(steps[2].0, &steps[2].1);
    let c = waiting(
        addr,
        POLL,
        &[format!(
            "{KAFKA}: strimzi.io/kraft=migration needs kafkaMetadataState ZooKeeper and strimzi.io/node-pools enabled \
             and kafkaNodePools set, live: ZooKeeper, kafkaNodePools (none)"
        )],
    )
    .await;
    assert_eq!(c["applied_revision"], c1.as_str(), "{c:#}");
    metric(addr, &format!("kgitops_gate_waiting{{cluster=\"{CLUSTER}\"}} 1")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !live.pool("v1beta2", "controller").await,
        "the controller pool applied early"
    );
    assert_eq!(
        text(
            &live.kafka("v1beta2").await,
            "/metadata/annotations/strimzi.io~1kraft"
        ),
        None
    );
    op.pause(false);
    let reached = op.written("kafkaNodePools").await;
    eventually("the controller pool applied", POLL, || async {
        if live.pool("v1beta2", "controller").await {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    })
    .await;
    latencies.push(reached.elapsed());
    applied(addr, &c2).await;
    assert_eq!(
        text(
            &live.kafka("v1beta2").await,
            "/metadata/annotations/strimzi.io~1kraft"
        ),
        Some("migration")
    );
    op.set("KRaftMigration");
    op.written("KRaftMigration").await;

    // Step 3 (`enabled`) while migrating: waits through migration and dual writing.
    let c3 = repo.push(steps[3].0, &steps[3].1);
    let line = |live: &str| {
        format!("{KAFKA}: strimzi.io/kraft=enabled needs kafkaMetadataState KRaftPostMigration, live: {live}")
    };
    let c = waiting(addr, POLL, &[line("KRaftMigration")]).await;
    assert_eq!(c["applied_revision"], c2.as_str(), "{c:#}");
    assert_eq!(c["synced"], false, "{c:#}");
    metric(addr, &format!("kgitops_gate_waiting{{cluster=\"{CLUSTER}\"}} 1")).await;
    let gate_alerts = || {
        sink.of_kind("gate")
            .into_iter()
            .filter(|a| a["key"] == format!("gate/{CLUSTER}/{KAFKA}"))
            .collect::<Vec<_>>()
    };
    eventually("a firing gate alert", POLL, || async {
        let a = gate_alerts();
        match a.last() {
            Some(last)
                if last["state"] == "firing"
                    && last["details"]
                        == json!([
                            "strimzi.io/kraft=enabled needs kafkaMetadataState KRaftPostMigration"
                        ]) =>
            {
                Ok(())
            }
            _ => Err(format!("{a:#?}")),
        }
    })
    .await;
    let fired = gate_alerts().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    op.set("KRaftDualWriting");
    waiting(addr, POLL, &[line("KRaftDualWriting")]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        text(
            &live.kafka("v1beta2").await,
            "/metadata/annotations/strimzi.io~1kraft"
        ),
        Some("migration"),
        "enabled applied early"
    );
    assert_eq!(
        gate_alerts().len(),
        fired,
        "no second alert while the state moves"
    );
    assert!(live.pool("v1beta2", "controller").await && live.pool("v1beta2", "kafka").await);
    op.set("KRaftPostMigration");
    let reached = op.written("KRaftPostMigration").await;
    eventually("strimzi.io/kraft=enabled applied", POLL, || async {
        let k = live.kafka("v1beta2").await;
        match text(&k, "/metadata/annotations/strimzi.io~1kraft") {
            Some("enabled") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    latencies.push(reached.elapsed());
    let c = applied(addr, &c3).await;
    assert_eq!(c["waiting"], json!([]), "{c:#}");
    metric(addr, &format!("kgitops_gate_waiting{{cluster=\"{CLUSTER}\"}} 0")).await;
    eventually("the gate alert resolved", POLL, || async {
        match gate_alerts().last() {
            Some(last) if last["state"] == "resolved" => Ok(()),
            _ => Err(format!("{:#?}", gate_alerts())),
        }
    })
    .await;
    op.set("PreKRaft");
    op.written("PreKRaft").await;

    // Step 4 (ZooKeeper removed) before KRaft: waits; nothing pruned.
    let c4 = repo.push(steps[4].0, &steps[4].1);
    let prune_line =
        |object: &str| format!("{object}: prune needs {KAFKA} kafkaMetadataState KRaft, live: PreKRaft");
    let mut lines = vec![format!(
        "{KAFKA}: spec.zookeeper removed needs kafkaMetadataState KRaft, live: PreKRaft"
    )];
    for (object, _) in live.zookeeper_only().await {
        lines.push(prune_line(&object));
    }
    let c = waiting(addr, POLL, &lines).await;
    assert_eq!(c["applied_revision"], c3.as_str(), "{c:#}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let zk = live.zookeeper_only().await;
    assert!(zk.iter().all(|(_, l)| *l), "pruned early: {zk:?}");
    assert!(
        live.kafka("v1beta2").await.pointer("/spec/zookeeper").is_some(),
        "spec.zookeeper removed early"
    );
    op.set("KRaft");
    let reached = op.written("KRaft").await;
    eventually("the ZooKeeper-only objects pruned", POLL, || async {
        let zk = live.zookeeper_only().await;
        if zk.iter().all(|(_, l)| !*l) {
            Ok(())
        } else {
            Err(format!("{zk:?}"))
        }
    })
    .await;
    latencies.push(reached.elapsed());
    applied(addr, &c4).await;
    let k = live.kafka("v1beta2").await;
    assert!(k.pointer("/spec/zookeeper").is_none(), "{k:#}");
    assert!(live.pool("v1beta2", "controller").await && live.pool("v1beta2", "kafka").await);
    let k = finished(&live, "v1beta2", "0.45.2", "3.9.2").await;
    assert_eq!(k["status"]["kafkaMetadataVersion"], "3.9-IV0", "{k:#}");

    // Steps 5 to 10: Kafka and operator upgrades, ungated, each finished before the next.
    for (i, release, kafka_version, api_version) in [
        (5, "0.45.2", "3.9.1", "v1beta2"),
        (6, "0.47.0", "3.9.1", "v1beta2"),
        (7, "0.47.0", "4.0.0", "v1beta2"),
        (8, "0.50.1", "4.0.0", "v1beta2"),
        (9, "0.50.1", "4.1.1", "v1beta2"),
        (10, "0.50.1", "4.1.1", "v1"),
    ] {
        let commit = repo.push(steps[i].0, &steps[i].1);
        let c = applied(addr, &commit).await;
        assert_eq!(c["waiting"], json!([]), "{}: {c:#}", steps[i].0);
        if api_version == "v1" {
            op.use_api("v1");
        }
        assert_eq!(
            live.operator_image().await,
            format!("quay.io/strimzi/operator:{release}")
        );
        let k = finished(&live, api_version, release, kafka_version).await;
        assert_eq!(k["spec"]["kafka"]["version"], kafka_version, "{}", steps[i].0);
        assert_eq!(
            k["metadata"]["annotations"]["kgitops.io/strimzi-release"],
            release
        );
        assert_eq!(
            k["status"]["kafkaMetadataVersion"],
            metadata_version(kafka_version),
            "{k:#}"
        );
        assert!(live.pool(api_version, "controller").await && live.pool(api_version, "kafka").await);
    }
    // The conversion moved the broker resources to the `kafka` pool (v1 has no spec.kafka.resources).
    let kafka_pool = get(
        &api(&client, "kafka.strimzi.io", "v1", "KafkaNodePool", Some(NS)),
        "kafka",
    )
    .await
    .unwrap();
    assert_eq!(
        kafka_pool["spec"]["resources"]["requests"]["memory"], "32Gi",
        "{kafka_pool:#}"
    );
    assert!(live.kafka("v1").await.pointer("/spec/kafka/resources").is_none());
    let (versions, stored) = live.kafka_crd_versions().await;
    assert_eq!(
        versions,
        [
            ("v1".to_string(), true, false),
            ("v1beta2".to_string(), true, true)
        ],
        "0.50.1 serves both, stores v1beta2"
    );
    assert_eq!(stored, ["v1beta2"]);

    // Step 11: the CRDs store v1 in git; the test runs crd-upgrade.
    let c11 = repo.push(steps[11].0, &steps[11].1);
    applied(addr, &c11).await;
    let (versions, stored) = live.kafka_crd_versions().await;
    assert_eq!(
        versions,
        [
            ("v1".to_string(), true, true),
            ("v1beta2".to_string(), true, false)
        ]
    );
    assert_eq!(
        stored,
        ["v1beta2", "v1"],
        "objects may still be stored as v1beta2"
    );

    // Step 12 (operator 1.0.1, CRDs serving v1 only) pushed before crd-upgrade ran: refused before
    // anything is written (a stored version would be dropped), retried, applied once it ran.
    let c12 = repo.push(steps[12].0, &steps[12].1);
    let c = eventually_within("step 12 refused", POLL, APPLY_LIMIT, || async {
        let c = cluster_status(addr).await;
        if c["last_result"]["revision"] == c12.as_str() && c["last_result"]["result"] != "applied" {
            Ok(c)
        } else {
            Err(c.to_string())
        }
    })
    .await;
    let message = c["last_result"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("CustomResourceDefinition/")
            && message.contains("drops v1beta2")
            && message.contains("storedVersions")
            && message.contains("crd-upgrade"),
        "{c:#}"
    );
    assert_eq!(c["applied_revision"], c11.as_str(), "{c:#}");
    assert_eq!(
        live.operator_image().await,
        "quay.io/strimzi/operator:0.50.1",
        "applied early"
    );
    assert_eq!(
        live.kafka_crd_versions().await.0.len(),
        2,
        "the CRD updated early"
    );
    crd_upgrade(&client).await;
    let reached = Instant::now();
    applied(addr, &c12).await;
    let crd_wait = reached.elapsed();
    let (versions, stored) = live.kafka_crd_versions().await;
    assert_eq!(versions, [("v1".to_string(), true, true)]);
    assert_eq!(stored, ["v1"]);
    finished(&live, "v1", "1.0.1", "4.1.1").await;

    // Steps 13 to 15: up to Strimzi 1.2.0 and Kafka 4.3.1.
    for (i, release, kafka_version) in [
        (13, "1.0.1", "4.2.0"),
        (14, "1.2.0", "4.2.0"),
        (15, "1.2.0", "4.3.1"),
    ] {
        let commit = repo.push(steps[i].0, &steps[i].1);
        let c = applied(addr, &commit).await;
        assert_eq!(c["waiting"], json!([]), "{}: {c:#}", steps[i].0);
        assert_eq!(
            live.operator_image().await,
            format!("quay.io/strimzi/operator:{release}")
        );
        let k = finished(&live, "v1", release, kafka_version).await;
        assert_eq!(
            k["status"]["kafkaMetadataVersion"],
            metadata_version(kafka_version),
            "{k:#}"
        );
        assert!(live.pool("v1", "controller").await && live.pool("v1", "kafka").await);
    }
    let c = cluster_status(addr).await;
    assert_eq!(c["synced"], true, "{c:#}");
    metric(addr, &format!("kgitops_gate_waiting{{cluster=\"{CLUSTER}\"}} 0")).await;
    let walked = started.elapsed();

    // Offline: every commit passes `validate --from PREV --to STEP`, and the path is walked.
    let work = repo.work.dir.clone();
    let commits = repo.commits.clone();
    let outputs = tokio::task::spawn_blocking(move || {
        let mut outputs = Vec::new();
        for pair in commits.windows(2) {
            let out = control_plane()
                .kgitops()
                .args(["validate", "--repo"])
                .arg(&work)
                .args(["--cluster", CLUSTER, "--from", &pair[0], "--to", &pair[1]])
                .output()
                .expect("kgitops runs");
            outputs.push(out);
        }
        let path = control_plane()
            .kgitops()
            .args(["strimzi", "path", "--repo"])
            .arg(&work)
            .args(["--cluster", CLUSTER, "--to", "1.2.0"])
            .output()
            .expect("kgitops runs");
        (outputs, path)
    })
    .await
    .unwrap();
    for (i, out) in outputs.0.iter().enumerate() {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            steps[i + 1].0,
            common::output_text(out)
        );
    }
    let path = common::output_text(&outputs.1);
    assert_eq!(outputs.1.status.code(), Some(0), "{path}");
    assert!(path.contains("already there: nothing to do"), "{path}");

    let median = p50(latencies.clone());
    println!(
        "migration path: 16 commits walked in {walked:?}; gated steps from status written to applied: {latencies:?}, \
         p50 {median:?} (target < 1 s); operator 1.0.1 applied {crd_wait:?} after crd-upgrade (daemon retry backoff)"
    );
    assert!(median < Duration::from_secs(5), "{latencies:?}");

    op.stop.cancel();
    operator.await.unwrap();
    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("daemon stops")
        .unwrap()
        .unwrap();
}
