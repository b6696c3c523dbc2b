//! Strimzi health and "not in effect" on the real apiserver with the Strimzi CRDs. No operator runs:
//! the tests write, through the status subresource, the statuses and conditions the Strimzi
//! operators write (texts verbatim from the Strimzi 1.2.0 sources: `KafkaAssemblyOperator`,
//! `KafkaClusterCreator`, `KafkaPool`, `KafkaSpecChecker`, `BatchingTopicController`,
//! `StatusUtils`), so the apiserver's status schema judges them too.
//!
//! - readiness of every kind, one row per status (a table);
//! - `apply --wait` (the CLI) with a test "operator" answering each new generation: a reverted
//!   node-pool scale-down is NOT IN EFFECT (exit 1), `diff --live` says so too (exit 1, all
//!   formats), and a paused Kafka ends the wait at once (exit 2);
//! - the daemon: `/status` and `/metrics` report the objects not ready, and with alerts a storage
//!   change Strimzi ignores while its warning is there, resolved when it is gone; a paused and a
//!   refused Kafka alert once each (kind `strimzi-health`) and resolve once.
//!
//! Objects are written in the API version the control plane serves (`v1` with the 1.x CRDs,
//! `v1beta2` with 0.45): fixtures in `tests/fixtures/strimzi-health/`.

#[path = "support/alert_sink.rs"]
mod alert_sink;
mod common;
#[path = "support/daemon_poll.rs"]
mod daemon_poll;
#[path = "support/http_client.rs"]
mod http_client;

use alert_sink::AlertSink;
use daemon_poll::{cluster_status, eventually, get_ok};

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;

use std::time::{Duration, Instant};

use kgitops::apply::health::{self, HealthState};
use kgitops::apply::{self, ApplyOptions, InventoryRef};
use kgitops::manifest::ResId;
use kgitops::manifest::yaml::{Limits, parse_documents};
use kgitops::plan::{Cluster, Resolved};
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// How often the tests poll the daemon and the apiserver.
const POLL: Duration = Duration::from_millis(100);

/// Strimzi 1.2.0 `KafkaClusterCreator.revertScaleDown`.
const SCALE_DOWN: &str = "Reverting scale-down of KafkaNodePool brokers by changing number of replicas to 3";
/// Strimzi 1.2.0 `KafkaPool` (storage change not allowed), for pool `brokers` in `{ns}`.
fn pool_storage_message(ns: &str) -> String {
    format!(
        "The desired Kafka storage configuration in the KafkaNodePool resource {ns}/brokers contains changes which are not allowed. As a result, all storage changes will be ignored. Use DEBUG level logging for more information about the detected changes."
    )
}
/// Strimzi 1.2.0 `KafkaSpecChecker.checkKafkaReplicationConfig`.
const MIN_ISR: &str = "min.insync.replicas option is not configured. It defaults to 1 which does not guarantee reliability and availability. You should configure this option in .spec.kafka.config.";

/// The Strimzi API version the control plane serves: `v1` when it does, else `v1beta2`.
async fn served_version(client: &kube::Client) -> &'static str {
    let groups = client.list_api_groups().await.expect("API groups");
    let group = groups
        .groups
        .iter()
        .find(|g| g.name == "kafka.strimzi.io")
        .expect("the Strimzi CRDs are installed");
    if group.versions.iter().any(|v| v.version == "v1") {
        "v1"
    } else {
        "v1beta2"
    }
}

/// The fixture objects (one of every kind) for `version`, in namespace `ns`.
fn objects(version: &str, ns: &str) -> Vec<Value> {
    let path = common::repo_root().join(format!("tests/fixtures/strimzi-health/objects-{version}.yaml"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("NS", ns);
    parse_documents(&text, "objects.yaml", &Limits::DEFAULT).expect("fixture parses")
}

fn pick(objects: &[Value], kinds: &[&str]) -> Vec<Value> {
    objects
        .iter()
        .filter(|o| kinds.contains(&o["kind"].as_str().unwrap_or_default()))
        .cloned()
        .collect()
}

/// The resource of `id`'s kind. A CRD created a moment ago may not be in discovery yet (the
/// apiserver serves a new version once the CRD is established): discovery is read again for up to
/// 10 s before the kind counts as not served.
async fn resolved(cluster: &Cluster, id: &ResId) -> Resolved {
    let start = Instant::now();
    loop {
        if let Some(r) = cluster.resolve(&id.gvk).await.expect("discovery") {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} is not served",
            id.gvk.api_version()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        cluster.refresh_discovery().await.expect("discovery");
    }
}

async fn live(cluster: &Cluster, id: &ResId) -> Value {
    let r = resolved(cluster, id).await;
    cluster
        .get(&r, id.namespace.as_deref(), &id.name)
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("{id} does not exist"))
}

/// Replaces the object's status, as the operator does (the status subresource: spec and
/// generation untouched).
async fn write_status(cluster: &Cluster, id: &ResId, status: Value) {
    let r = resolved(cluster, id).await;
    for body in [json!({"status": null}), json!({ "status": status })] {
        let mut req = kube::core::Request::new(r.collection(id.namespace.as_deref()))
            .patch_subresource("status", &id.name, &PatchParams::default(), &Patch::Merge(&body))
            .unwrap();
        req.headers_mut().remove("accept");
        let _: Value = cluster
            .client()
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("{id}: status {body}: {e}"));
    }
}

fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().expect("generation")
}

fn id_of(obj: &Value) -> ResId {
    ResId::of(obj).expect("identity")
}

fn options(ns: &str) -> ApplyOptions {
    ApplyOptions::new(
        "health",
        InventoryRef {
            namespace: ns.to_string(),
            name: "kgitops-health".into(),
        },
    )
}

fn ready() -> Value {
    json!({"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-07T10:00:00.000Z"})
}

fn warning(reason: &str, message: &str) -> Value {
    json!({"type": "Warning", "status": "True", "reason": reason, "message": message,
           "lastTransitionTime": "2026-12-07T10:00:00.000Z"})
}

fn state(ty: &str) -> Value {
    json!({"type": ty, "status": "True", "lastTransitionTime": "2026-12-07T10:00:00.000Z"})
}

/// A row of the readiness table: kind, the status written for the live generation, the state
/// expected and a text its message says.
type Row = (&'static str, fn(i64) -> Value, HealthState, &'static str);

fn row(kind: &'static str, status: fn(i64) -> Value, want: HealthState, says: &'static str) -> Row {
    (kind, status, want, says)
}

#[tokio::test]
async fn readiness_of_every_kind_from_the_status_its_operator_writes() {
    let ns = common::namespace("health-kinds").await;
    let cluster = Cluster::new(ns.client.clone(), 8);
    let version = served_version(&ns.client).await;
    let all = objects(version, &ns.name);
    apply::apply(&cluster, all.clone(), &options(&ns.name))
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));

    // (kind, status written for the live generation, expected state, text the message says)
    let rows: Vec<Row> = vec![
        row(
            "Kafka",
            |_| {
                json!({"conditions": [{"type": "NotReady", "status": "True", "reason": "Creating",
            "message": "Kafka cluster is being deployed", "lastTransitionTime": "2026-12-07T10:00:00.000Z"}]})
            },
            HealthState::Progressing,
            "not reconciled yet",
        ),
        row(
            "Kafka",
            |g| json!({"observedGeneration": g, "conditions": [ready()]}),
            HealthState::Ready,
            "Ready",
        ),
        row(
            "Kafka",
            |g| {
                json!({"observedGeneration": g, "conditions": [{"type": "NotReady", "status": "True",
            "reason": "TimeoutException", "message": "Exceeded timeout of 300000ms while waiting for Pods resource main-brokers-0 to be ready",
            "lastTransitionTime": "2026-12-07T10:00:00.000Z"}]})
            },
            HealthState::NotReady,
            "TimeoutException",
        ),
        row(
            "Kafka",
            |g| {
                json!({"observedGeneration": g, "conditions": [{"type": "NotReady", "status": "True",
            "reason": "InvalidResourceException", "message": "The Kafka cluster main is invalid: [At least one KafkaNodePool with the broker role and at least one replica is required when KRaft mode is enabled]",
            "lastTransitionTime": "2026-12-07T10:00:00.000Z"}]})
            },
            HealthState::Refused,
            "InvalidResourceException",
        ),
        row(
            "Kafka",
            |g| json!({"observedGeneration": g - 1, "conditions": [state("ReconciliationPaused")]}),
            HealthState::Paused,
            "paused",
        ),
        row(
            "KafkaNodePool",
            |g| {
                json!({"observedGeneration": g, "nodeIds": [0, 1, 2], "replicas": 3, "roles": ["broker"],
            "clusterId": "abc"})
            },
            HealthState::Ready,
            "3 node(s) [0,1,2]",
        ),
        row(
            "KafkaNodePool",
            |g| json!({"observedGeneration": g - 1, "nodeIds": [0, 1], "replicas": 2}),
            HealthState::Progressing,
            "not reconciled yet",
        ),
        row(
            "KafkaTopic",
            |g| json!({"observedGeneration": g, "topicName": "orders", "conditions": [ready()]}),
            HealthState::Ready,
            "Ready",
        ),
        row(
            "KafkaTopic",
            |g| {
                json!({"observedGeneration": g, "conditions": [{"type": "Ready", "status": "False",
            "reason": "NotSupported", "message": "Decreasing partitions not supported",
            "lastTransitionTime": "2026-12-07T10:00:00.000Z"}]})
            },
            HealthState::Refused,
            "Decreasing partitions",
        ),
        row(
            "KafkaUser",
            |g| json!({"observedGeneration": g, "username": "CN=alice", "secret": "alice", "conditions": [ready()]}),
            HealthState::Ready,
            "Ready",
        ),
        row(
            "KafkaConnect",
            |g| {
                json!({"observedGeneration": g, "conditions": [{"type": "NotReady", "status": "True",
            "reason": "ConnectRestException", "message": "GET /connector-plugins returned 500 (Internal Server Error)",
            "lastTransitionTime": "2026-12-07T10:00:00.000Z"}]})
            },
            HealthState::NotReady,
            "ConnectRestException",
        ),
        row(
            "KafkaConnector",
            |g| {
                json!({"observedGeneration": g, "conditions": [ready()], "tasksMax": 1,
            "connectorStatus": {"name": "sink", "connector": {"state": "RUNNING", "worker_id": "10.0.0.1:8083"},
                "tasks": [{"id": 0, "state": "FAILED", "worker_id": "10.0.0.1:8083"}], "type": "sink"}})
            },
            HealthState::NotReady,
            "task(s) 0 FAILED",
        ),
        row(
            "KafkaConnector",
            |g| {
                json!({"observedGeneration": g, "conditions": [ready()], "tasksMax": 1,
            "connectorStatus": {"name": "sink", "connector": {"state": "RUNNING", "worker_id": "10.0.0.1:8083"},
                "tasks": [{"id": 0, "state": "RUNNING", "worker_id": "10.0.0.1:8083"}], "type": "sink"}})
            },
            HealthState::Ready,
            "connector RUNNING, 1 task(s)",
        ),
        row(
            "KafkaMirrorMaker2",
            |g| {
                json!({"observedGeneration": g, "conditions": [ready()],
            "connectors": [{"name": "source->target.MirrorSourceConnector", "connector": {"state": "RUNNING"}, "tasks": []}]})
            },
            HealthState::Ready,
            "source->target.MirrorSourceConnector RUNNING",
        ),
        row(
            "KafkaBridge",
            |g| json!({"observedGeneration": g, "conditions": [ready()], "url": "http://bridge-bridge-service.ns.svc:8080"}),
            HealthState::Ready,
            "Ready",
        ),
        row(
            "KafkaRebalance",
            |g| json!({"observedGeneration": g, "conditions": [state("PendingProposal")]}),
            HealthState::Progressing,
            "PendingProposal",
        ),
        row(
            "KafkaRebalance",
            |g| {
                json!({"observedGeneration": g, "conditions": [state("ProposalReady")],
            "optimizationResult": {"numReplicaMovements": 12}})
            },
            HealthState::Ready,
            "ProposalReady",
        ),
        row(
            "KafkaRebalance",
            |g| json!({"observedGeneration": g, "conditions": [state("Stopped")]}),
            HealthState::Refused,
            "refresh",
        ),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (kind, status, want, says) in rows {
        seen.insert(kind);
        let obj = all
            .iter()
            .find(|o| o["kind"] == kind)
            .expect("fixture of every kind");
        let id = id_of(obj);
        let g = generation(&live(&cluster, &id).await);
        let written = status(g);
        write_status(&cluster, &id, written.clone()).await;
        let r = resolved(&cluster, &id).await;
        let waited = health::wait_healthy(&cluster, &[(id.clone(), r)], Duration::ZERO)
            .await
            .expect("read");
        let h = &waited.health[0];
        assert_eq!(h.state, want, "{id} with status {written}: {h:?}");
        assert!(
            h.message.contains(says),
            "{id} with status {written}: {h:?} lacks {says:?}"
        );
    }
    assert_eq!(seen.len(), 9, "a row for every kind: {seen:?}");
}

#[tokio::test]
async fn a_paused_or_refused_object_ends_the_wait_at_once() {
    let ns = common::namespace("health-paused").await;
    let cluster = Cluster::new(ns.client.clone(), 8);
    let version = served_version(&ns.client).await;
    let objects = pick(&objects(version, &ns.name), &["Kafka", "KafkaTopic"]);
    let mut opts = options(&ns.name);
    apply::apply(&cluster, objects.clone(), &opts)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    let topic = id_of(&objects[1]);
    let g = generation(&live(&cluster, &topic).await);
    write_status(
        &cluster,
        &topic,
        json!({"observedGeneration": g, "conditions": [{"type": "Ready", "status": "False", "reason": "NotSupported",
            "message": "Decreasing partitions not supported", "lastTransitionTime": "2026-12-07T10:00:00.000Z"}]}),
    )
    .await;
    // The Kafka is paused by git itself: no status needed.
    let mut paused = objects.clone();
    paused[0]["metadata"]["annotations"]["strimzi.io/pause-reconciliation"] = json!("true");
    opts.wait = Some(Duration::from_secs(60));
    let started = Instant::now();
    let set = apply::apply(&cluster, paused, &opts)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let mut states: Vec<(String, HealthState)> =
        set.health.iter().map(|h| (h.object.clone(), h.state)).collect();
    states.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        states,
        vec![
            (format!("Kafka/{}/main", ns.name), HealthState::Paused),
            (format!("KafkaTopic/{}/orders", ns.name), HealthState::Refused),
        ],
        "{:?}",
        set.health
    );
    // The topic's refusal is also a change not in effect, naming the field.
    let lines: Vec<String> = set.not_in_effect.iter().map(|n| n.line()).collect();
    assert_eq!(
        lines,
        vec![format!(
            "KafkaTopic/{}/orders spec.partitions: NotSupported: Decreasing partitions not supported",
            ns.name
        )]
    );
}

/// Plays the cluster operator for Kafka `main` and node pool `brokers` in `ns`: whenever either has
/// a generation it has not answered, it writes both statuses as Strimzi 1.2.0 does: a pool scaled
/// below 3 brokers is reverted (`ScaleDownPreventionCheck` on the Kafka, the pool keeps 3 nodes);
/// a paused Kafka gets `ReconciliationPaused` and keeps its old `observedGeneration`.
async fn play_operator(cluster: Cluster, ns: String, version: &'static str, stop: CancellationToken) {
    let gvk =
        |kind: &str| kgitops::manifest::Gvk::from_api_version(&format!("kafka.strimzi.io/{version}"), kind);
    let kafka_id = ResId {
        gvk: gvk("Kafka"),
        namespace: Some(ns.clone()),
        name: "main".into(),
    };
    let pool_id = ResId {
        gvk: gvk("KafkaNodePool"),
        namespace: Some(ns.clone()),
        name: "brokers".into(),
    };
    let (kr, pr) = (
        resolved(&cluster, &kafka_id).await,
        resolved(&cluster, &pool_id).await,
    );
    while !stop.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (Ok(Some(kafka)), Ok(Some(pool))) = (
            cluster.get(&kr, Some(ns.as_str()), "main").await,
            cluster.get(&pr, Some(ns.as_str()), "brokers").await,
        ) else {
            continue;
        };
        let answered = |o: &Value| {
            o.pointer("/status/observedGeneration").and_then(Value::as_i64) == Some(generation(o))
        };
        let paused =
            kafka.pointer("/metadata/annotations/strimzi.io~1pause-reconciliation") == Some(&json!("true"));
        if paused {
            if kafka.pointer("/status/conditions/0/type") != Some(&json!("ReconciliationPaused")) {
                let old = kafka
                    .pointer("/status/observedGeneration")
                    .cloned()
                    .unwrap_or(json!(0));
                write_status(
                    &cluster,
                    &kafka_id,
                    json!({"observedGeneration": old, "conditions": [state("ReconciliationPaused")]}),
                )
                .await;
            }
            continue;
        }
        if answered(&kafka) && answered(&pool) {
            continue;
        }
        let wanted = pool["spec"]["replicas"].as_i64().unwrap_or(0);
        let mut conditions = vec![warning("KafkaMinInsyncReplicas", MIN_ISR)];
        if wanted < 3 {
            conditions.push(warning("ScaleDownPreventionCheck", SCALE_DOWN));
        }
        conditions.push(ready());
        // The Kafka first: a reader that sees the pool answered sees the Kafka's warning too.
        write_status(
            &cluster,
            &kafka_id,
            json!({"observedGeneration": generation(&kafka), "conditions": conditions,
                   "kafkaNodePools": [{"name": "brokers"}], "clusterId": "abc"}),
        )
        .await;
        write_status(
            &cluster,
            &pool_id,
            json!({"observedGeneration": generation(&pool), "nodeIds": [0, 1, 2], "replicas": 3,
                   "roles": ["broker"], "clusterId": "abc"}),
        )
        .await;
    }
}

/// A repository whose `clusters/health` overlay holds `objects`.
fn write_repo(dir: &Path, objects: &[Value]) {
    let overlay = dir.join("clusters/health");
    std::fs::create_dir_all(&overlay).unwrap();
    let stream: String = objects
        .iter()
        .map(|o| format!("---\n{}\n", serde_json::to_string(o).unwrap()))
        .collect();
    std::fs::write(overlay.join("strimzi.yaml"), stream).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources:\n  - strimzi.yaml\n",
    )
    .unwrap();
}

async fn kgitops(repo: &Path, args: &[&str]) -> Output {
    let mut command = common::control_plane().kgitops();
    command.arg(args[0]).arg("--repo").arg(repo).args(&args[1..]);
    tokio::task::spawn_blocking(move || command.output().expect("kgitops runs"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_wait_and_diff_live_report_a_reverted_scale_down_as_not_in_effect() {
    let ns = common::namespace("health-cli").await;
    let cluster = Cluster::new(ns.client.clone(), 8);
    let version = served_version(&ns.client).await;
    let mut objects = pick(&objects(version, &ns.name), &["Kafka", "KafkaNodePool"]);
    let repo = tempfile::tempdir().unwrap();
    write_repo(repo.path(), &objects);
    let stop = CancellationToken::new();
    let operator = tokio::spawn(play_operator(
        cluster.clone(),
        ns.name.clone(),
        version,
        stop.clone(),
    ));
    let apply_wait = ["apply", "--cluster", "health", "--wait", "--wait-timeout", "60"];

    // 3 brokers: in effect; Strimzi's advice is reported, not failed.
    let out = kgitops(repo.path(), &apply_wait).await;
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("Kafka/{}/main healthy: Ready", ns.name)),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "KafkaNodePool/{}/brokers healthy: reconciled: 3 node(s)",
            ns.name
        )),
        "{text}"
    );
    assert!(text.contains("Strimzi warns (in effect):"), "{text}");
    assert!(!text.contains("NOT IN EFFECT"), "{text}");

    // Scaled down to 2 in git: Strimzi reverts it, the pool stays at 3.
    objects[1]["spec"]["replicas"] = json!(2);
    write_repo(repo.path(), &objects);
    let out = kgitops(repo.path(), &apply_wait).await;
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = format!(
        "  KafkaNodePool/{ns}/brokers spec.replicas: ScaleDownPreventionCheck: {SCALE_DOWN} (reported by Kafka/{ns}/main)\n",
        ns = ns.name
    );
    assert!(
        text.contains("NOT IN EFFECT (accepted, but the Strimzi operator did not carry it out):\n"),
        "{text}"
    );
    assert!(text.contains(&line), "{text}");
    assert!(
        text.contains("not in effect"),
        "stderr says why the exit code is 1: {text}"
    );

    // diff --live: nothing to apply, yet git and the cluster disagree.
    let out = kgitops(repo.path(), &["diff", "--live", "--cluster", "health"]).await;
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("0 to create, 0 to update") && text.contains(&line),
        "{text}"
    );
    let out = kgitops(
        repo.path(),
        &["diff", "--live", "--cluster", "health", "--output", "json"],
    )
    .await;
    let plan: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", common::output_text(&out)));
    let entries = plan["not_in_effect"].as_array().expect("not_in_effect in JSON");
    let ignored: Vec<&Value> = entries.iter().filter(|n| n["effect"] == "ignored").collect();
    assert_eq!(ignored.len(), 1, "{plan:#}");
    assert_eq!(
        ignored[0],
        &json!({"object": format!("KafkaNodePool/{}/brokers", ns.name), "field": "spec.replicas",
                "effect": "ignored", "reason": "ScaleDownPreventionCheck", "message": SCALE_DOWN,
                "reported_by": format!("Kafka/{}/main", ns.name)})
    );
    assert!(
        entries
            .iter()
            .any(|n| n["effect"] == "warned" && n["field"] == "spec.kafka.config.min.insync.replicas"),
        "{plan:#}"
    );
    let out = kgitops(
        repo.path(),
        &["diff", "--live", "--cluster", "health", "--output", "markdown"],
    )
    .await;
    let text = common::output_text(&out);
    assert!(
        text.contains(&format!(
            "| `KafkaNodePool/{ns}/brokers` | `spec.replicas` | ScaleDownPreventionCheck | {SCALE_DOWN} (reported by `Kafka/{ns}/main`) |",
            ns = ns.name
        )),
        "{text}"
    );

    // Back to 3: in effect again.
    objects[1]["spec"]["replicas"] = json!(3);
    write_repo(repo.path(), &objects);
    let out = kgitops(repo.path(), &apply_wait).await;
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));

    // Paused in git: the wait ends at once with the reason, exit 2.
    objects[0]["metadata"]["annotations"]["strimzi.io/pause-reconciliation"] = json!("true");
    write_repo(repo.path(), &objects);
    let started = Instant::now();
    let out = kgitops(repo.path(), &apply_wait).await;
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}: {text}",
        started.elapsed()
    );
    assert!(
        text.contains(&format!("Kafka/{}/main paused: reconciliation paused", ns.name)),
        "{text}"
    );
    assert!(text.contains("waiting cannot help"), "{text}");

    stop.cancel();
    operator.await.unwrap();
}

/// A daemon (cluster `health`, drift `alert`) applying a repository of `objects`, with its alerts
/// going to an [`AlertSink`].
struct TestDaemon {
    addr: SocketAddr,
    sink: AlertSink,
    token: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), kgitops::daemon::DaemonError>>,
    _tmp: tempfile::TempDir,
}

impl TestDaemon {
    /// Starts the daemon and waits until it applied the repository.
    async fn start(objects: &[Value]) -> TestDaemon {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        write_repo(&repo, objects);
        let sink = AlertSink::start();
        std::fs::write(tmp.path().join("webhook-secret"), "s3cret\n").unwrap();
        let text = format!(
            "source:\n  path: {repo}\nclusters:\n  - name: health\n    kubeconfig: {kubeconfig}\n    drift: alert\n\
             server:\n  listen: 127.0.0.1:0\n  status_listen: 127.0.0.1:0\n  webhook_secret_file: webhook-secret\n\
             alerts:\n  - {{type: webhook, url: \"{url}\"}}\ncache_dir: {cache}\n",
            repo = repo.display(),
            kubeconfig = common::control_plane().kubeconfig().display(),
            url = sink.url,
            cache = tmp.path().join("cache").display(),
        );
        let config = kgitops::daemon::Config::parse(&text, &tmp.path().join("kgitops.yaml"), tmp.path())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let daemon = kgitops::daemon::Daemon::bind(config).await.unwrap();
        let addr = daemon.status_addr();
        let token = CancellationToken::new();
        let task = tokio::spawn(daemon.run(token.clone()));
        eventually("the overlay applied", POLL, || async move {
            let c = cluster_status(addr).await;
            if c["applied_revision"].is_string() {
                Ok(())
            } else {
                Err(c.to_string())
            }
        })
        .await;
        TestDaemon {
            addr,
            sink,
            token,
            task,
            _tmp: tmp,
        }
    }

    /// Waits until exactly `n` alerts of `kind` arrived, the last one in `state`; returns them.
    async fn alerts(&self, kind: &str, n: usize, state: &str) -> Vec<Value> {
        eventually(
            &format!("{n} {kind} alert(s), the last {state}"),
            POLL,
            || async {
                let a = self.sink.of_kind(kind);
                if a.len() == n && a[n - 1]["state"] == state {
                    Ok(a)
                } else {
                    Err(format!("{a:#?}"))
                }
            },
        )
        .await
    }

    async fn stop(self) {
        self.token.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("daemon stops")
            .unwrap()
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_reports_an_ignored_storage_change_until_it_is_gone() {
    let ns = common::namespace("health-daemon").await;
    let cluster = Cluster::new(ns.client.clone(), 8);
    let version = served_version(&ns.client).await;
    let objects = pick(&objects(version, &ns.name), &["Kafka", "KafkaNodePool"]);
    let daemon = TestDaemon::start(&objects).await;
    let (addr, sink) = (daemon.addr, &daemon.sink);

    // No operator has answered yet: both objects are progressing.
    let c = eventually(
        "/status lists the Strimzi objects not ready",
        POLL,
        || async move {
            let c = cluster_status(addr).await;
            let n = c["not_ready"].as_array().map(Vec::len).unwrap_or(0);
            if n == 2 { Ok(c) } else { Err(c.to_string()) }
        },
    )
    .await;
    assert!(
        c["not_ready"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["state"] == "progressing"),
        "{c:#}"
    );
    let metrics = get_ok(addr, "/metrics").await;
    assert!(
        metrics.contains("kgitops_strimzi_objects{cluster=\"health\",state=\"progressing\"} 2"),
        "{metrics}"
    );

    // The operator refuses the pool's storage change: its warning on the Kafka and on the pool.
    let (kafka, pool) = (id_of(&objects[0]), id_of(&objects[1]));
    let message = pool_storage_message(&ns.name);
    let kg = generation(&live(&cluster, &kafka).await);
    let pg = generation(&live(&cluster, &pool).await);
    // The Kafka first: the entry it reports is the one kept when the pool says the same.
    write_status(
        &cluster,
        &kafka,
        json!({"observedGeneration": kg, "conditions": [warning("KafkaStorage", &message), ready()]}),
    )
    .await;
    write_status(
        &cluster,
        &pool,
        json!({"observedGeneration": pg, "nodeIds": [0, 1, 2], "replicas": 3, "roles": ["broker"],
               "conditions": [warning("KafkaStorage", &message)]}),
    )
    .await;
    let pool_name = format!("KafkaNodePool/{}/brokers", ns.name);
    let c = eventually("/status lists the storage change", POLL, || async move {
        let c = cluster_status(addr).await;
        let n = c["not_in_effect"].as_array().map(Vec::len).unwrap_or(0);
        if n == 1 { Ok(c) } else { Err(c.to_string()) }
    })
    .await;
    assert_eq!(
        c["not_in_effect"][0],
        json!({"object": pool_name, "field": "spec.storage", "effect": "ignored", "reason": "KafkaStorage",
               "message": message, "reported_by": format!("Kafka/{}/main", ns.name)}),
        "{c:#}"
    );
    let metrics = get_ok(addr, "/metrics").await;
    assert!(
        metrics.contains("kgitops_not_in_effect{cluster=\"health\",reason=\"KafkaStorage\"} 1"),
        "{metrics}"
    );
    eventually("both objects ready", POLL, || async move {
        let c = cluster_status(addr).await;
        if c["not_ready"] == json!([]) {
            Ok(())
        } else {
            Err(c.to_string())
        }
    })
    .await;
    let metrics = get_ok(addr, "/metrics").await;
    assert!(
        metrics.contains("kgitops_strimzi_objects{cluster=\"health\",state=\"ready\"} 2"),
        "{metrics}"
    );
    let html = get_ok(addr, "/status?format=html").await;
    assert!(
        html.contains("not in effect") && html.contains("spec.storage"),
        "{html}"
    );
    let firing = eventually("a not-in-effect alert", POLL, || async {
        let a = sink.of_kind("not-in-effect");
        if a.len() == 1 {
            Ok(a)
        } else {
            Err(format!("{a:#?}"))
        }
    })
    .await;
    assert_eq!(firing[0]["state"], "firing");
    assert_eq!(
        firing[0]["summary"],
        format!("{pool_name} spec.storage is not in effect")
    );
    assert_eq!(firing[0]["details"][0], format!("KafkaStorage: {message}"));

    // Strimzi carried it out after all (the warning is gone): resolved, once.
    write_status(
        &cluster,
        &pool,
        json!({"observedGeneration": pg, "nodeIds": [0, 1, 2], "replicas": 3, "roles": ["broker"]}),
    )
    .await;
    write_status(
        &cluster,
        &kafka,
        json!({"observedGeneration": kg, "conditions": [ready()]}),
    )
    .await;
    eventually("the alert resolved", POLL, || async {
        let a = sink.of_kind("not-in-effect");
        if a.len() == 2 && a[1]["state"] == "resolved" {
            Ok(())
        } else {
            Err(format!("{a:#?}"))
        }
    })
    .await;
    let c = cluster_status(addr).await;
    assert_eq!(c["not_in_effect"], json!([]), "{c:#}");
    let metrics = get_ok(addr, "/metrics").await;
    assert!(
        metrics.contains("kgitops_not_in_effect{cluster=\"health\",reason=\"KafkaStorage\"} 0"),
        "{metrics}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.of_kind("not-in-effect").len(), 2, "no repeated alerts");
    assert_eq!(
        sink.of_kind("strimzi-health"),
        Vec::<Value>::new(),
        "nothing was paused or refused"
    );
    daemon.stop().await;
}

/// Strimzi 1.2.0 `NodePoolUtils.validateKRaftProcessRoles` for Kafka `main` with only a broker pool,
/// as `StatusUtils.buildConditionFromException` writes it (reason: the exception's class).
const NO_CONTROLLER: &str = "The Kafka cluster main is invalid: [At least one KafkaNodePool with the controller role and at least one replica is required when KRaft mode is enabled]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_alerts_once_while_a_kafka_is_paused_or_refused() {
    let ns = common::namespace("health-final").await;
    let cluster = Cluster::new(ns.client.clone(), 8);
    let version = served_version(&ns.client).await;
    let objects = pick(&objects(version, &ns.name), &["Kafka", "KafkaNodePool"]);
    let daemon = TestDaemon::start(&objects).await;
    let addr = daemon.addr;
    let (kafka, pool) = (id_of(&objects[0]), id_of(&objects[1]));
    let kafka_name = format!("Kafka/{}/main", ns.name);
    let key = format!("strimzi-health/health/{kafka_name}");
    let kg = generation(&live(&cluster, &kafka).await);
    let pg = generation(&live(&cluster, &pool).await);
    let reconciled = || json!({"observedGeneration": kg, "conditions": [ready()]});
    write_status(&cluster, &kafka, reconciled()).await;
    write_status(
        &cluster,
        &pool,
        json!({"observedGeneration": pg, "nodeIds": [0, 1, 2], "replicas": 3, "roles": ["broker"]}),
    )
    .await;
    eventually("both objects ready", POLL, || async move {
        let c = cluster_status(addr).await;
        if c["not_ready"] == json!([]) {
            Ok(())
        } else {
            Err(c.to_string())
        }
    })
    .await;

    // Someone paused it (`strimzi.io/pause-reconciliation` set by hand): Strimzi's
    // AbstractOperator writes ReconciliationPaused and keeps the old observedGeneration.
    write_status(
        &cluster,
        &kafka,
        json!({"observedGeneration": kg, "conditions": [state("ReconciliationPaused")]}),
    )
    .await;
    let a = daemon.alerts("strimzi-health", 1, "firing").await;
    assert_eq!(a[0]["key"], key.as_str());
    assert_eq!(a[0]["cluster"], "health");
    assert_eq!(
        a[0]["summary"],
        format!("{kafka_name} is paused: the Strimzi operator does not reconcile it")
    );
    assert!(
        a[0]["details"][0]
            .as_str()
            .is_some_and(|d| d.contains("condition ReconciliationPaused")),
        "{a:#?}"
    );
    assert!(a[0]["revision"].is_string(), "{a:#?}");
    let c = cluster_status(addr).await;
    assert_eq!(c["not_ready"][0]["state"], "paused", "{c:#}");

    // Resumed and reconciled: resolved, once.
    write_status(&cluster, &kafka, reconciled()).await;
    let a = daemon.alerts("strimzi-health", 2, "resolved").await;
    assert_eq!(a[1]["key"], key.as_str());
    assert_eq!(
        a[1]["summary"],
        format!("{kafka_name} is no longer paused or refused (or left git)")
    );

    // The operator refuses the cluster (no controller pool): a new alert, resolved when fixed.
    write_status(
        &cluster,
        &kafka,
        json!({"observedGeneration": kg, "conditions": [{"type": "NotReady", "status": "True",
            "reason": "InvalidResourceException", "message": NO_CONTROLLER,
            "lastTransitionTime": "2026-12-07T10:00:00.000Z"}]}),
    )
    .await;
    let a = daemon.alerts("strimzi-health", 3, "firing").await;
    assert_eq!(
        a[2]["summary"],
        format!("{kafka_name} is refused by the Strimzi operator")
    );
    assert_eq!(
        a[2]["details"][0],
        format!("not Ready: InvalidResourceException {NO_CONTROLLER}")
    );
    write_status(&cluster, &kafka, reconciled()).await;
    daemon.alerts("strimzi-health", 4, "resolved").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        daemon.sink.of_kind("strimzi-health").len(),
        4,
        "no repeated alerts"
    );
    assert_eq!(
        daemon.sink.of_kind("drift"),
        Vec::<Value>::new(),
        "a status is no drift"
    );
    daemon.stop().await;
}
