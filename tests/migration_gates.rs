//! Gates on live state (`kgitops::plan::gate`) on the real apiserver with the Strimzi 0.45.2 CRDs,
//! through the ZooKeeper -> KRaft migration of a cluster like `clusters/prod-eu-west-1`.
//!
//! No operator runs: a test "operator" writes, through the status subresource, what Strimzi 0.45
//! writes (`KafkaMetadataState`, `KafkaStatus.kafkaNodePools`, the pools' `nodeIds`/`roles`, the
//! observed generation and `Ready`), moving `kafkaMetadataState` the way
//! `KafkaMetadataStateManager` does when the test tells it to, with small delays.
//!
//! - the daemon following the migration's commits pushed to a git remote: at each step what is
//!   applied, what waits (`/status` `waiting`, `kgitops_gate_waiting`, one `gate` alert), that
//!   nothing is applied or pruned early, and that the gated step is applied by itself once the
//!   state is written (the latency is printed: target p50 < 1 s);
//! - `apply` without `--wait` exits 2 with nothing written, `apply --wait` waits for the state and
//!   applies, `apply --prune` does not delete the controller pool during the migration, and
//!   `diff --live` prints the waiting lines (exit 1).

#[path = "support/alert_sink.rs"]
mod alert_sink;
mod common;
#[path = "support/daemon_poll.rs"]
mod daemon_poll;
mod gitserver;
#[path = "support/http_client.rs"]
mod http_client;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alert_sink::AlertSink;
use daemon_poll::{cluster_status, eventually, metric, p50, waiting};
use gitserver::{BareRemote, WorkRepo};
use k8s_openapi::api::core::v1::Namespace;
use kgitops::manifest::yaml::{Limits, parse_documents};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// How often the tests poll the daemon and the apiserver: often enough to measure how soon a gated
/// step is applied.
const POLL: Duration = Duration::from_millis(10);

const RELEASE: &str = "0.45.2";

fn control_plane() -> &'static common::ControlPlane {
    common::control_plane_for_release(RELEASE)
}

/// A new namespace `<prefix>-<pid>-<n>` on the 0.45.2 control plane, and a client.
async fn namespace(prefix: &str) -> (String, kube::Client) {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{prefix}-{n}");
    let client = control_plane().client().await;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("namespace {name}: {e}"));
    (name, client)
}

fn strimzi(client: &kube::Client, ns: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("kafka.strimzi.io", "v1beta2", kind);
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

fn core(client: &kube::Client, ns: &str, group: &str, version: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Api::namespaced_with(client.clone(), ns, &ApiResource::from_gvk(&gvk))
}

async fn get(api: &Api<DynamicObject>, name: &str) -> Option<Value> {
    api.get_opt(name)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .map(|o| serde_json::to_value(o).unwrap())
}

async fn kraft_annotation(client: &kube::Client, ns: &str) -> Option<String> {
    let kafka = get(&strimzi(client, ns, "Kafka"), "main").await?;
    kafka
        .pointer("/metadata/annotations/strimzi.io~1kraft")
        .and_then(Value::as_str)
        .map(str::to_string)
}

// ---------------------------------------------------------------------------------------------
// The steps of the path, from the fixture (step 0) on.

fn step0(ns: &str) -> Vec<Value> {
    let path = common::repo_root().join("tests/fixtures/migration-gates/zookeeper.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .replace("NS", ns);
    parse_documents(&text, "zookeeper.yaml", &Limits::DEFAULT).expect("fixture parses")
}

fn kafka_of(objects: &mut [Value]) -> &mut Value {
    objects
        .iter_mut()
        .find(|o| o["kind"] == "Kafka")
        .expect("a Kafka")
}

fn pool(ns: &str, name: &str, role: &str, size: &str) -> Value {
    // The rollback runbook deletes the controller pool: kgitops may prune it (when the gate allows).
    let annotations = if role == "controller" {
        json!({"kgitops.io/prune": "allow"})
    } else {
        json!({})
    };
    json!({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaNodePool",
           "metadata": {"name": name, "namespace": ns, "labels": {"strimzi.io/cluster": "main"},
                        "annotations": annotations},
           "spec": {"replicas": 3, "roles": [role],
                    "storage": {"type": "jbod", "volumes": [{"id": 0, "type": "persistent-claim", "size": size, "deleteClaim": false}]}}})
}

/// Steps of `docs/gates.md`: 1 node pools (`kafka`), 2 controller pool + `migration`, 3 `enabled`,
/// 4 `spec.zookeeper` and the ZooKeeper-only objects removed.
fn step(n: u32, ns: &str) -> Vec<Value> {
    let mut objects = step0(ns);
    if n >= 1 {
        let kafka = kafka_of(&mut objects);
        kafka["metadata"]["annotations"] = json!({"strimzi.io/node-pools": "enabled"});
        let spec = kafka["spec"]["kafka"].as_object_mut().unwrap();
        spec.remove("replicas");
        spec.remove("storage");
        objects.push(pool(ns, "kafka", "broker", "500Gi"));
    }
    if n >= 2 {
        kafka_of(&mut objects)["metadata"]["annotations"]["strimzi.io/kraft"] = json!("migration");
        objects.push(pool(ns, "controller", "controller", "20Gi"));
    }
    if n >= 3 {
        kafka_of(&mut objects)["metadata"]["annotations"]["strimzi.io/kraft"] = json!("enabled");
    }
    if n >= 4 {
        kafka_of(&mut objects)["spec"]
            .as_object_mut()
            .unwrap()
            .remove("zookeeper");
        objects.retain(|o| {
            let name = o["metadata"]["name"].as_str().unwrap_or_default();
            !matches!(name, "zoo-entrance" | "zookeeper-metrics")
        });
    }
    objects
}

/// Writes `objects` as the overlay `clusters/prod` of the repository at `dir`.
fn write_overlay(dir: &Path, objects: &[Value]) {
    let overlay = dir.join("clusters/prod");
    std::fs::create_dir_all(&overlay).unwrap();
    let stream: String = objects
        .iter()
        .map(|o| format!("---\n{}\n", serde_json::to_string(o).unwrap()))
        .collect();
    std::fs::write(overlay.join("platform.yaml"), stream).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources:\n  - platform.yaml\n",
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// The test operator.

/// The metadata state the test operator reports, and when it last wrote each state.
#[derive(Clone)]
struct Operator {
    state: Arc<Mutex<&'static str>>,
    written: Arc<Mutex<Vec<(&'static str, Instant)>>>,
    stop: CancellationToken,
}

impl Operator {
    /// Starts answering in `ns`: every 50 ms, the Kafka and its pools get the status Strimzi 0.45
    /// writes for their generation and the current metadata state.
    fn start(
        client: kube::Client,
        ns: String,
        initial: &'static str,
    ) -> (Operator, tokio::task::JoinHandle<()>) {
        let op = Operator {
            state: Arc::new(Mutex::new(initial)),
            written: Arc::new(Mutex::new(Vec::new())),
            stop: CancellationToken::new(),
        };
        let task = tokio::spawn(op.clone().run(client, ns));
        (op, task)
    }

    /// Moves the metadata state, as the operator's next reconcile does.
    fn set(&self, state: &'static str) {
        *self.state.lock().unwrap() = state;
    }

    /// Waits until the operator has written `state`; returns when.
    async fn written(&self, state: &'static str) -> Instant {
        let start = Instant::now();
        loop {
            if let Some((_, at)) = self
                .written
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|(s, _)| *s == state)
            {
                return *at;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the operator never wrote {state}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn run(self, client: kube::Client, ns: String) {
        let kafkas = strimzi(&client, &ns, "Kafka");
        let pools = strimzi(&client, &ns, "KafkaNodePool");
        let ready =
            json!({"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-07T18:00:00.000Z"});
        while !self.stop.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let Ok(Some(kafka)) = kafkas.get_opt("main").await else {
                continue;
            };
            let kafka = serde_json::to_value(kafka).unwrap();
            let Ok(listed) = pools.list(&Default::default()).await else {
                continue;
            };
            let mut names = Vec::new();
            for (i, p) in listed.items.iter().enumerate() {
                let p = serde_json::to_value(p).unwrap();
                let name = p["metadata"]["name"].as_str().unwrap_or_default().to_string();
                let generation = p["metadata"]["generation"].as_i64().unwrap_or(0);
                names.push(json!({"name": name}));
                if p.pointer("/status/observedGeneration").and_then(Value::as_i64) != Some(generation) {
                    let base = i64::try_from(i).unwrap() * 10;
                    let status = json!({"observedGeneration": generation, "replicas": 3,
                        "nodeIds": [base, base + 1, base + 2], "roles": p["spec"]["roles"].clone(),
                        "clusterId": "prod-cluster-id"});
                    let _ = pools
                        .patch_status(
                            &name,
                            &PatchParams::default(),
                            &Patch::Merge(json!({"status": status})),
                        )
                        .await;
                }
            }
            let node_pools =
                kafka.pointer("/metadata/annotations/strimzi.io~1node-pools") == Some(&json!("enabled"));
            let state = *self.state.lock().unwrap();
            let mut status = json!({"observedGeneration": kafka["metadata"]["generation"].clone(),
                                    "conditions": [ready.clone()], "kafkaMetadataState": state,
                                    "clusterId": "prod-cluster-id", "kafkaVersion": "3.9.0"});
            if node_pools && !names.is_empty() {
                status["kafkaNodePools"] = Value::Array(names);
            }
            let live = kafka.get("status").cloned().unwrap_or(Value::Null);
            let same = ["observedGeneration", "kafkaMetadataState", "kafkaNodePools"]
                .iter()
                .all(|k| live.get(*k) == status.get(*k));
            if same {
                continue;
            }
            if kafkas
                .patch_status(
                    "main",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await
                .is_ok()
            {
                self.written.lock().unwrap().push((state, Instant::now()));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The daemon.

async fn applied(addr: SocketAddr, commit: &str) -> Value {
    eventually(&format!("revision {commit} applied"), POLL, || async move {
        let c = cluster_status(addr).await;
        if c["applied_revision"] == commit {
            Ok(c)
        } else {
            Err(c.to_string())
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_follows_the_migration_and_applies_each_gated_step_by_itself() {
    let (ns, client) = namespace("gates-daemon").await;
    let tmp = tempfile::tempdir().unwrap();
    let work = WorkRepo::init(&tmp.path().join("work"));
    write_overlay(&work.dir, &step(0, &ns));
    let c0 = work.commit("step 0: the ZooKeeper platform");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let sink = AlertSink::start();
    std::fs::write(tmp.path().join("webhook-secret"), "s3cret\n").unwrap();
    let text = format!(
        "source:\n  url: {url}\n  branch: main\n  interval: 1s\nclusters:\n  - name: prod\n    kubeconfig: {kubeconfig}\n    prune: true\n\
         server:\n  listen: 127.0.0.1:0\n  status_listen: 127.0.0.1:0\n  webhook_secret_file: webhook-secret\n\
         alerts:\n  - {{type: webhook, url: \"{sink}\"}}\ncache_dir: {cache}\n",
        url = remote.file_url(),
        kubeconfig = control_plane().kubeconfig().display(),
        sink = sink.url,
        cache = tmp.path().join("cache").display(),
    );
    let config = kgitops::daemon::Config::parse(&text, &tmp.path().join("kgitops.yaml"), tmp.path())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let daemon = kgitops::daemon::Daemon::bind(config).await.unwrap();
    let addr = daemon.status_addr();
    let token = CancellationToken::new();
    let task = tokio::spawn(daemon.run(token.clone()));
    let (op, operator) = Operator::start(client.clone(), ns.clone(), "ZooKeeper");
    let kafka = format!("Kafka/{ns}/main");
    let deployments = core(&client, &ns, "apps", "v1", "Deployment");
    let mut latencies = Vec::new();

    // Step 0: the ZooKeeper platform.
    applied(addr, &c0).await;
    op.written("ZooKeeper").await;

    // Step 1: node pools; nothing gated.
    write_overlay(&work.dir, &step(1, &ns));
    let c1 = work.commit("step 1: brokers in the node pool `kafka`");
    remote.push(&work, "main");
    applied(addr, &c1).await;

    // Step 2 pushed before the operator reported the node pools would wait; it has reported them
    // by now (its next round after step 1): migration starts at once.
    eventually("the node pools in effect", POLL, || async {
        let k = get(&strimzi(&client, &ns, "Kafka"), "main").await.unwrap();
        if k.pointer("/status/kafkaNodePools").is_some() {
            Ok(())
        } else {
            Err(k.to_string())
        }
    })
    .await;
    write_overlay(&work.dir, &step(2, &ns));
    let c2 = work.commit("step 2: controller pool, strimzi.io/kraft: migration");
    remote.push(&work, "main");
    applied(addr, &c2).await;
    assert_eq!(kraft_annotation(&client, &ns).await.as_deref(), Some("migration"));
    op.set("KRaftMigration");
    op.written("KRaftMigration").await;

    // Step 3 (`enabled`) while migrating: waits; nothing of it applied.
    write_overlay(&work.dir, &step(3, &ns));
    let c3 = work.commit("step 3: strimzi.io/kraft: enabled");
    remote.push(&work, "main");
    let line = |live: &str| {
        format!("{kafka}: strimzi.io/kraft=enabled needs kafkaMetadataState KRaftPostMigration, live: {live}")
    };
    let c = waiting(addr, POLL, &[line("KRaftMigration")]).await;
    assert_eq!(c["applied_revision"], c2.as_str(), "{c:#}");
    assert_eq!(c["synced"], false, "{c:#}");
    assert_eq!(c["last_result"]["revision"], c3.as_str(), "{c:#}");
    metric(addr, "kgitops_gate_waiting{cluster=\"prod\"} 1").await;
    let alerts = eventually("one gate alert", POLL, || async {
        let a = sink.of_kind("gate");
        if a.len() == 1 {
            Ok(a)
        } else {
            Err(format!("{a:#?}"))
        }
    })
    .await;
    assert_eq!(alerts[0]["state"], "firing");
    assert_eq!(alerts[0]["key"], format!("gate/prod/{kafka}"));
    assert_eq!(
        alerts[0]["details"],
        json!(["strimzi.io/kraft=enabled needs kafkaMetadataState KRaftPostMigration"])
    );
    assert_eq!(kraft_annotation(&client, &ns).await.as_deref(), Some("migration"));

    // Dual writing: still waiting (the line says so), still nothing applied, no second alert.
    tokio::time::sleep(Duration::from_millis(300)).await;
    op.set("KRaftDualWriting");
    waiting(addr, POLL, &[line("KRaftDualWriting")]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(kraft_annotation(&client, &ns).await.as_deref(), Some("migration"));
    assert_eq!(sink.of_kind("gate").len(), 1, "{:#?}", sink.of_kind("gate"));

    // Post-migration: the revision is applied by itself, no new commit.
    op.set("KRaftPostMigration");
    let reached = op.written("KRaftPostMigration").await;
    eventually("strimzi.io/kraft=enabled applied", POLL, || async {
        match kraft_annotation(&client, &ns).await.as_deref() {
            Some("enabled") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    latencies.push(reached.elapsed());
    let c = applied(addr, &c3).await;
    assert_eq!(c["waiting"], json!([]), "{c:#}");
    metric(addr, "kgitops_gate_waiting{cluster=\"prod\"} 0").await;
    eventually("the gate alert resolved", POLL, || async {
        let a = sink.of_kind("gate");
        if a.len() == 2 && a[1]["state"] == "resolved" {
            Ok(())
        } else {
            Err(format!("{a:#?}"))
        }
    })
    .await;
    op.set("PreKRaft");
    op.written("PreKRaft").await;

    // Step 4 (ZooKeeper removed) before KRaft: waits; nothing pruned.
    write_overlay(&work.dir, &step(4, &ns));
    let c4 = work.commit("step 4: spec.zookeeper and the ZooKeeper-only components removed");
    remote.push(&work, "main");
    let prune_line =
        |object: &str| format!("{object}: prune needs {kafka} kafkaMetadataState KRaft, live: PreKRaft");
    let lines = vec![
        format!("{kafka}: spec.zookeeper removed needs kafkaMetadataState KRaft, live: PreKRaft"),
        prune_line(&format!("ConfigMap/{ns}/zookeeper-metrics")),
        prune_line(&format!("Deployment/{ns}/zoo-entrance")),
        prune_line(&format!("Service/{ns}/zoo-entrance")),
    ];
    let c = waiting(addr, POLL, &lines).await;
    assert_eq!(c["applied_revision"], c3.as_str(), "{c:#}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(get(&deployments, "zoo-entrance").await.is_some(), "pruned early");
    let live = get(&strimzi(&client, &ns, "Kafka"), "main").await.unwrap();
    assert!(
        live.pointer("/spec/zookeeper").is_some(),
        "spec.zookeeper removed early"
    );

    // KRaft: applied by itself, ZooKeeper-only objects pruned.
    op.set("KRaft");
    let reached = op.written("KRaft").await;
    eventually("zoo-entrance pruned", POLL, || async {
        match get(&deployments, "zoo-entrance").await {
            None => Ok(()),
            Some(_) => Err("still there".to_string()),
        }
    })
    .await;
    latencies.push(reached.elapsed());
    applied(addr, &c4).await;
    let live = get(&strimzi(&client, &ns, "Kafka"), "main").await.unwrap();
    assert!(live.pointer("/spec/zookeeper").is_none(), "{live:#}");
    assert!(
        get(&core(&client, &ns, "", "v1", "Service"), "kafka-exporter")
            .await
            .is_some()
    );
    assert!(
        get(&strimzi(&client, &ns, "KafkaNodePool"), "controller")
            .await
            .is_some()
    );

    let median = p50(latencies.clone());
    println!(
        "gates: from status reached to gated step applied: {latencies:?}, p50 {median:?} (target < 1 s)"
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

// ---------------------------------------------------------------------------------------------
// The CLI.

async fn kgitops(repo: &Path, args: &[&str]) -> Output {
    let mut command = control_plane().kgitops();
    command.arg(args[0]).arg("--repo").arg(repo).args(&args[1..]);
    tokio::task::spawn_blocking(move || command.output().expect("kgitops runs"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_exits_2_or_waits_with_wait_and_diff_live_says_what_it_waits_for() {
    let (ns, client) = namespace("gates-cli").await;
    let repo = tempfile::tempdir().unwrap();
    let (op, operator) = Operator::start(client.clone(), ns.clone(), "ZooKeeper");
    let kafka = format!("Kafka/{ns}/main");

    // Step 2 on a new cluster: nothing is live, nothing gated.
    write_overlay(repo.path(), &step(2, &ns));
    let out = kgitops(repo.path(), &["apply", "--cluster", "prod"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    op.set("KRaftDualWriting");
    op.written("KRaftDualWriting").await;

    // Step 3 while dual writing.
    write_overlay(repo.path(), &step(3, &ns));
    let line = format!(
        "{kafka}: strimzi.io/kraft=enabled needs kafkaMetadataState KRaftPostMigration, live: KRaftDualWriting"
    );
    let out = kgitops(repo.path(), &["diff", "--live", "--cluster", "prod"]).await;
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "WAITING (nothing of this revision is applied until the live state allows it):\n  {line}\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{kafka} (update)")),
        "the diff is shown too: {text}"
    );
    let out = kgitops(
        repo.path(),
        &["diff", "--live", "--cluster", "prod", "--output", "json"],
    )
    .await;
    let plan: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", common::output_text(&out)));
    assert_eq!(plan["blocked"][0]["gate"], "kraft-enabled", "{plan:#}");
    assert_eq!(plan["blocked"][0]["live"], "KRaftDualWriting", "{plan:#}");

    let out = kgitops(repo.path(), &["apply", "--cluster", "prod"]).await;
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(&line), "{text}");
    assert!(text.contains("nothing was written"), "{text}");
    assert_eq!(kraft_annotation(&client, &ns).await.as_deref(), Some("migration"));

    // The controller pool removed while migrating: with --prune, not deleted (the whole revision waits).
    let mut without_controllers = step(2, &ns);
    without_controllers.retain(|o| o["metadata"]["name"] != "controller");
    write_overlay(repo.path(), &without_controllers);
    let out = kgitops(repo.path(), &["apply", "--cluster", "prod", "--prune"]).await;
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "KafkaNodePool/{ns}/controller: prune needs {kafka} kafkaMetadataState ZooKeeper, or kafkaMetadataState \
             KRaftDualWriting and strimzi.io/kraft rollback, live: KRaftDualWriting, strimzi.io/kraft migration"
        )),
        "{text}"
    );
    assert!(
        get(&strimzi(&client, &ns, "KafkaNodePool"), "controller")
            .await
            .is_some()
    );

    // --wait: waits for the state, then applies.
    write_overlay(repo.path(), &step(3, &ns));
    let repo_path = repo.path().to_path_buf();
    let started = Instant::now();
    let waiting = tokio::spawn(async move {
        kgitops(
            &repo_path,
            &["apply", "--cluster", "prod", "--wait", "--wait-timeout", "60"],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !waiting.is_finished(),
        "apply --wait returned before the state was reached"
    );
    assert_eq!(kraft_annotation(&client, &ns).await.as_deref(), Some("migration"));
    op.set("KRaftPostMigration");
    let out = waiting.await.unwrap();
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(&line), "it said what it waited for: {text}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(kraft_annotation(&client, &ns).await.as_deref(), Some("enabled"));

    // Nothing waits any more.
    let out = kgitops(repo.path(), &["diff", "--live", "--cluster", "prod"]).await;
    let text = common::output_text(&out);
    assert!(!text.contains("WAITING"), "{text}");

    op.stop.cancel();
    operator.await.unwrap();
}

/// The rollback runbook (Strimzi 0.45 docs): `rollback` from post-migration, then the controller
/// pool deleted (pruned by kgitops once the state is back to dual writing), then `disabled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollback_prunes_the_controller_pool_only_once_dual_writing_again() {
    let (ns, client) = namespace("gates-rollback").await;
    let repo = tempfile::tempdir().unwrap();
    let (op, operator) = Operator::start(client.clone(), ns.clone(), "ZooKeeper");
    let kafka = format!("Kafka/{ns}/main");
    let pools = strimzi(&client, &ns, "KafkaNodePool");
    let apply_prune = ["apply", "--cluster", "prod", "--prune"];

    write_overlay(repo.path(), &step(2, &ns));
    let out = kgitops(repo.path(), &apply_prune).await;
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    op.set("KRaftDualWriting");
    op.written("KRaftDualWriting").await;

    // `rollback` before post-migration: waits.
    let mut rollback = step(2, &ns);
    kafka_of(&mut rollback)["metadata"]["annotations"]["strimzi.io/kraft"] = json!("rollback");
    write_overlay(repo.path(), &rollback);
    let out = kgitops(repo.path(), &apply_prune).await;
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "{kafka}: strimzi.io/kraft=rollback needs kafkaMetadataState KRaftPostMigration, live: KRaftDualWriting"
        )),
        "{text}"
    );
    op.set("KRaftPostMigration");
    op.written("KRaftPostMigration").await;
    let out = kgitops(repo.path(), &apply_prune).await;
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    assert_eq!(kraft_annotation(&client, &ns).await.as_deref(), Some("rollback"));

    // The controller pool removed: not while post-migration (the operator has not rolled back yet).
    rollback.retain(|o| o["metadata"]["name"] != "controller");
    write_overlay(repo.path(), &rollback);
    let out = kgitops(repo.path(), &apply_prune).await;
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("KafkaNodePool/{ns}/controller: prune needs")),
        "{text}"
    );
    assert!(get(&pools, "controller").await.is_some());
    // Back to dual writing with `rollback`: pruned.
    op.set("KRaftDualWriting");
    let reached = Instant::now();
    let out = kgitops(
        repo.path(),
        &[
            "apply",
            "--cluster",
            "prod",
            "--prune",
            "--wait",
            "--wait-timeout",
            "60",
        ],
    )
    .await;
    let text = common::output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("KafkaNodePool/{ns}/controller pruned")),
        "{text}"
    );
    assert!(get(&pools, "controller").await.is_none());
    assert!(reached.elapsed() < Duration::from_secs(30));

    // `disabled`: back to ZooKeeper.
    kafka_of(&mut rollback)["metadata"]["annotations"]["strimzi.io/kraft"] = json!("disabled");
    write_overlay(repo.path(), &rollback);
    let out = kgitops(repo.path(), &apply_prune).await;
    assert_eq!(out.status.code(), Some(0), "{}", common::output_text(&out));
    assert_eq!(kraft_annotation(&client, &ns).await.as_deref(), Some("disabled"));

    op.stop.cancel();
    operator.await.unwrap();
}
