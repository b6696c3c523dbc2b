//! Plan and apply against the real control plane (Strimzi CRDs installed): a realistic platform
//! applied then clean, drift with its manager healed, Secrets never shown, zero writes on a no-op,
//! prune and its protections, takeover from client-side apply, immutable fields, health, and a
//! real mutating admission webhook (the no-op shortcut must not hide what it changes).

mod common;
#[path = "support/mutating_webhook.rs"]
mod mutating_webhook;

use std::collections::BTreeMap;
use std::time::Duration;

use kgitops::apply::{self, ApplyError, ApplyOptions, ChangeSet, InventoryRef, Outcome};
use kgitops::manifest::yaml::{Limits, parse_documents};
use kgitops::plan::{Action, Cluster, Plan};
use kgitops::report;
use serde_json::{Value, json};

/// The platform fixture with its namespace set to `app`.
fn platform(app: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(common::repo_root().join("tests/fixtures/apply/platform.yaml"))
        .expect("fixture")
        .replace("APP", app);
    parse_documents(&text, "platform.yaml", &Limits::DEFAULT).expect("fixture parses")
}

fn options(app: &str) -> ApplyOptions {
    ApplyOptions::new(
        "dev",
        InventoryRef {
            namespace: app.to_string(),
            name: "kgitops-dev".into(),
        },
    )
}

async fn cluster() -> Cluster {
    Cluster::new(common::client().await, 8)
}

async fn apply_ok(cluster: &Cluster, objects: Vec<Value>, opts: &ApplyOptions) -> ChangeSet {
    match apply::apply(cluster, objects, opts).await {
        Ok(set) => set,
        Err(e) => panic!("apply failed: {e}"),
    }
}

async fn plan_of(cluster: &Cluster, objects: Vec<Value>, opts: &ApplyOptions) -> Plan {
    match apply::plan(cluster, objects, opts).await {
        Ok(cp) => cp.live.plan,
        Err(e) => panic!("plan failed: {e}"),
    }
}

fn outcomes(set: &ChangeSet) -> BTreeMap<String, Outcome> {
    set.changes
        .iter()
        .map(|c| (c.object.clone(), c.outcome))
        .collect()
}

fn changed(plan: &Plan) -> Vec<String> {
    plan.entries
        .iter()
        .filter(|e| e.action.is_change())
        .map(|e| format!("{} {}\n{}", e.object, e.action, e.diff))
        .collect()
}

/// resourceVersion of every object of the namespace and of the inventory, by `Kind/name`.
async fn resource_versions(cluster: &Cluster, app: &str, objects: &[Value]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for obj in objects {
        let id = kgitops::manifest::ResId::of(obj).unwrap();
        let r = cluster.resolve(&id.gvk).await.unwrap().unwrap();
        let ns = if r.namespaced { Some(app) } else { None };
        let live = cluster
            .get(&r, ns, &id.name)
            .await
            .unwrap()
            .expect("object exists");
        out.insert(
            id.to_string(),
            live["metadata"]["resourceVersion"].as_str().unwrap().to_string(),
        );
    }
    out
}

#[tokio::test]
async fn platform_applies_then_shows_no_changes_and_a_no_op_writes_nothing() {
    let ns = common::namespace("apply-platform").await;
    let app = format!("{}-app", ns.name);
    let cluster = cluster().await;
    let opts = options(&app);

    // First apply: the namespace is created by the same revision.
    let first = apply_ok(&cluster, platform(&app), &opts).await;
    let created = outcomes(&first);
    assert_eq!(created.len(), platform(&app).len(), "{created:?}");
    assert!(created.values().all(|o| *o == Outcome::Created), "{created:?}");

    // A freshly applied cluster shows no changes at all: with every object dry-run by the server
    // (normalization alone must make live and dry-run equal) and with the live-state shortcut.
    let mut every = opts.clone();
    every.dry_run_unchanged = true;
    let requests = cluster.requests();
    let plan = plan_of(&cluster, platform(&app), &every).await;
    let sent_every = cluster.requests() - requests;
    assert!(
        changed(&plan).is_empty(),
        "false drift:\n{}",
        changed(&plan).join("\n")
    );
    assert_eq!(plan.entries.len(), platform(&app).len());
    let requests = cluster.requests();
    let plan = plan_of(&cluster, platform(&app), &opts).await;
    let sent = cluster.requests() - requests;
    assert!(
        changed(&plan).is_empty(),
        "false drift:\n{}",
        changed(&plan).join("\n")
    );
    // The shortcut saves the dry-run of every object but the StatefulSet: its volumeClaimTemplates
    // are an atomic list the server adds defaults to, so only the server can tell. It costs the
    // one LIST of mutating webhook configurations (none of them matches this namespace).
    assert_eq!(sent + plan.entries.len() as u64 - 1, sent_every + 1);

    // A no-op apply sends no write: no resourceVersion moves (the inventory's included).
    let mut watched = platform(&app);
    watched.push(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kgitops-dev", "namespace": app}}));
    let before = resource_versions(&cluster, &app, &watched).await;
    let requests_before = cluster.requests();
    let again = apply_ok(&cluster, platform(&app), &opts).await;
    assert!(!again.has_changes(), "{:?}", outcomes(&again));
    assert!(again.changes.iter().all(|c| c.outcome == Outcome::Unchanged));
    assert_eq!(resource_versions(&cluster, &app, &watched).await, before);
    assert!(cluster.requests() > requests_before, "the request counter counts");
    assert_eq!(
        report::change_set_text(&again),
        format!("{} unchanged\n", platform(&app).len())
    );
}

/// A JSON merge patch sent by another field manager, as `kubectl patch` does.
async fn patch_as(cluster: &Cluster, obj: &Value, patch: Value, manager: &str) {
    let id = kgitops::manifest::ResId::of(obj).unwrap();
    let r = cluster.resolve(&id.gvk).await.unwrap().unwrap();
    cluster
        .merge_patch(&r, id.namespace.as_deref(), &id.name, &patch, manager)
        .await
        .unwrap_or_else(|e| panic!("patch {id}: {e}"));
}

/// The live object of a fixture kind, if any.
async fn live(cluster: &Cluster, kind: &str, ns: Option<&str>, name: &str) -> Option<Value> {
    let api_version = match kind {
        "Kafka" | "KafkaTopic" | "KafkaUser" => "kafka.strimzi.io/v1beta2",
        "Deployment" | "StatefulSet" => "apps/v1",
        "Ingress" => "networking.k8s.io/v1",
        _ => "v1",
    };
    let gvk = kgitops::manifest::Gvk::from_api_version(api_version, kind);
    let r = cluster.resolve(&gvk).await.unwrap().unwrap();
    cluster.get(&r, ns, name).await.unwrap()
}

fn find<'a>(plan: &'a Plan, object: &str) -> &'a kgitops::plan::PlanEntry {
    plan.entries
        .iter()
        .find(|e| e.object == object)
        .unwrap_or_else(|| {
            panic!(
                "{object} not in plan: {:?}",
                plan.entries.iter().map(|e| &e.object).collect::<Vec<_>>()
            )
        })
}

#[tokio::test]
async fn drift_by_another_manager_is_attributed_then_healed() {
    let ns = common::namespace("apply-drift").await;
    let app = format!("{}-app", ns.name);
    let cluster = cluster().await;
    let opts = options(&app);
    apply_ok(&cluster, platform(&app), &opts).await;
    let kafka = platform(&app).into_iter().find(|o| o["kind"] == "Kafka").unwrap();

    // Someone scales the brokers by hand; someone else (an HPA-like controller) adds a field git
    // does not set: that one is not drift.
    patch_as(
        &cluster,
        &kafka,
        json!({"spec": {"kafka": {"replicas": 7}}}),
        "kubectl-patch",
    )
    .await;
    patch_as(
        &cluster,
        &kafka,
        json!({"metadata": {"labels": {"team": "platform"}}}),
        "strimzi-operator",
    )
    .await;

    let plan = plan_of(&cluster, platform(&app), &opts).await;
    let object = format!("Kafka/{app}/main");
    assert_eq!(changed(&plan).len(), 1, "{}", changed(&plan).join("\n"));
    let entry = find(&plan, &object);
    assert_eq!(entry.action, Action::Update);
    assert_eq!(entry.changes.len(), 1, "{:?}", entry.changes);
    assert_eq!(
        report::field_change_line(&entry.changes[0]),
        "spec.kafka.replicas: 7 -> 3, changed by kubectl-patch"
    );
    assert!(
        entry.diff.contains("-    replicas: 7\n+    replicas: 3\n"),
        "{}",
        entry.diff
    );
    let text = report::plan_text(&plan);
    assert!(
        text.contains("drift: spec.kafka.replicas: 7 -> 3, changed by kubectl-patch"),
        "{text}"
    );

    // Apply heals it and says who lost the field; the label set by the other manager stays.
    let set = apply_ok(&cluster, platform(&app), &opts).await;
    let healed = set.changes.iter().find(|c| c.object == object).unwrap();
    assert_eq!(healed.outcome, Outcome::Configured);
    assert_eq!(healed.conflicts.len(), 1, "{:?}", healed.conflicts);
    assert_eq!(healed.conflicts[0].manager, "kubectl-patch");
    assert_eq!(healed.conflicts[0].fields, vec!["spec.kafka.replicas"]);
    assert!(report::change_set_text(&set).contains(&format!(
        "{object} configured\n  kubectl-patch lost spec.kafka.replicas\n"
    )));
    let now = live(&cluster, "Kafka", Some(&app), "main").await.unwrap();
    assert_eq!(now["spec"]["kafka"]["replicas"], 3);
    assert_eq!(now["metadata"]["labels"]["team"], "platform");
    assert!(changed(&plan_of(&cluster, platform(&app), &opts).await).is_empty());
}

#[tokio::test]
async fn secret_values_never_appear_in_any_output() {
    let ns = common::namespace("apply-secret").await;
    let app = format!("{}-app", ns.name);
    let cluster = cluster().await;
    let opts = options(&app);
    apply_ok(&cluster, platform(&app), &opts).await;

    // Change a value, add a Secret; a hand edit adds a live-only value too.
    let secret_obj = platform(&app)
        .into_iter()
        .find(|o| o["kind"] == "Secret")
        .unwrap();
    patch_as(
        &cluster,
        &secret_obj,
        json!({"stringData": {"extra": "hand-made-t0ken"}}),
        "kubectl-edit",
    )
    .await;
    let mut objects = platform(&app);
    for o in &mut objects {
        if o["kind"] == "Secret" {
            o["stringData"]["password"] = json!("changed-pa55word");
        }
    }
    objects.push(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "new-creds", "namespace": app},
        "data": {"token": "c3VwZXItc2VjcmV0LXRva2Vu"}}),
    );

    let plan = plan_of(&cluster, objects.clone(), &opts).await;
    let set = apply_ok(&cluster, objects.clone(), &opts).await;
    let dry = {
        let mut o = opts.clone();
        o.dry_run = true;
        for o in &mut objects {
            if o["kind"] == "Secret" && o["metadata"]["name"] == "zoo-entrance-auth" {
                o["stringData"]["password"] = json!("third-pa55word");
            }
        }
        apply::apply(&cluster, objects.clone(), &o)
            .await
            .expect("dry run")
    };
    let outputs = [
        report::plan_text(&plan),
        report::plan_markdown(&plan),
        report::json(&plan),
        report::change_set_text(&set),
        report::change_set_markdown(&set),
        report::json(&set),
        report::json(&dry),
    ];
    for out in &outputs {
        for secret in [
            "initial-pa55word",
            "changed-pa55word",
            "third-pa55word",
            "hand-made-t0ken",
            "super-secret-token",
            "c3VwZXItc2VjcmV0LXRva2Vu",
            "aW5pdGlhbC1wYTU1d29yZA==",
            "Y2hhbmdlZC1wYTU1d29yZA==",
        ] {
            assert!(!out.contains(secret), "{secret} leaked in:\n{out}");
        }
    }
    let entry = find(&plan, &format!("Secret/{app}/zoo-entrance-auth"));
    assert!(
        entry.diff.contains("password: (masked, new value)"),
        "{}",
        entry.diff
    );
    assert!(
        find(&plan, &format!("Secret/{app}/new-creds"))
            .diff
            .contains("token: (masked)")
    );
    insta::assert_snapshot!(
        "secret_plan_text",
        report::plan_text(&plan)
            .replace(&opts.inventory.id(), "APPLYSET-ID")
            .replace(&app, "APP")
    );
}

#[tokio::test]
async fn prune_removes_what_left_git_but_never_protected_kinds() {
    let ns = common::namespace("apply-prune").await;
    let app = format!("{}-app", ns.name);
    let cluster = cluster().await;
    let mut opts = options(&app);
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": app},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let mut objects = platform(&app);
    objects.push(pvc);
    apply_ok(&cluster, objects, &opts).await;

    // The inventory parent follows KEP-3659 so kubectl can read it.
    let parent = live(&cluster, "ConfigMap", Some(&app), "kgitops-dev")
        .await
        .unwrap();
    assert_eq!(
        parent["metadata"]["labels"]["applyset.kubernetes.io/id"],
        opts.inventory.id()
    );
    assert_eq!(
        parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap,Deployment.apps,Ingress.networking.k8s.io,Kafka.kafka.strimzi.io,Namespace,PersistentVolumeClaim,RoleBinding.rbac.authorization.k8s.io,Secret,Service,ServiceAccount,StatefulSet.apps"
    );
    let tooling = parent["metadata"]["annotations"]["applyset.kubernetes.io/tooling"]
        .as_str()
        .unwrap();
    assert!(tooling.starts_with("kgitops/v"), "{tooling}");
    let cm = live(&cluster, "ConfigMap", Some(&app), "kafka-metrics")
        .await
        .unwrap();
    assert_eq!(
        cm["metadata"]["labels"]["applyset.kubernetes.io/part-of"],
        opts.inventory.id()
    );

    // Remove the Ingress, the exporter Service, the Kafka and the PVC from git.
    let keep = |o: &Value| {
        !matches!(o["kind"].as_str(), Some("Ingress" | "Kafka")) && o["metadata"]["name"] != "kafka-exporter"
    };
    let remaining: Vec<Value> = platform(&app).into_iter().filter(keep).collect();
    let plan = plan_of(&cluster, remaining.clone(), &opts).await;
    let candidates: Vec<&str> = plan
        .entries
        .iter()
        .filter(|e| e.action == Action::DeleteCandidate)
        .map(|e| e.object.as_str())
        .collect();
    assert_eq!(candidates.len(), 4, "{candidates:?}");
    assert!(find(&plan, &format!("Kafka/{app}/main")).notes[0].contains("protected"));

    // Without --prune nothing is deleted.
    let set = apply_ok(&cluster, remaining.clone(), &opts).await;
    assert!(set.changes.iter().all(|c| c.outcome != Outcome::Pruned));
    assert!(
        live(&cluster, "Ingress", Some(&app), "prometheus")
            .await
            .is_some()
    );

    opts.prune = true;
    let set = apply_ok(&cluster, remaining.clone(), &opts).await;
    let out = outcomes(&set);
    assert_eq!(out[&format!("Ingress/{app}/prometheus")], Outcome::Pruned);
    assert_eq!(out[&format!("Service/{app}/kafka-exporter")], Outcome::Pruned);
    assert_eq!(out[&format!("Kafka/{app}/main")], Outcome::PruneSkipped);
    assert_eq!(
        out[&format!("PersistentVolumeClaim/{app}/data")],
        Outcome::PruneSkipped
    );
    assert!(
        live(&cluster, "Ingress", Some(&app), "prometheus")
            .await
            .is_none()
    );
    assert!(
        live(&cluster, "Service", Some(&app), "kafka-exporter")
            .await
            .is_none()
    );
    assert!(live(&cluster, "Kafka", Some(&app), "main").await.is_some());
    assert!(
        live(&cluster, "PersistentVolumeClaim", Some(&app), "data")
            .await
            .is_some()
    );
    let parent = live(&cluster, "ConfigMap", Some(&app), "kgitops-dev")
        .await
        .unwrap();
    let gks = parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
        .as_str()
        .unwrap();
    assert!(
        !gks.contains("Ingress") && gks.contains("Kafka.kafka.strimzi.io"),
        "{gks}"
    );

    // Annotated, the Kafka may go.
    let kafka = platform(&app).into_iter().find(|o| o["kind"] == "Kafka").unwrap();
    patch_as(
        &cluster,
        &kafka,
        json!({"metadata": {"annotations": {"kgitops.io/prune": "allow"}}}),
        "kubectl-annotate",
    )
    .await;
    let set = apply_ok(&cluster, remaining, &opts).await;
    assert_eq!(outcomes(&set)[&format!("Kafka/{app}/main")], Outcome::Pruned);
    assert!(live(&cluster, "Kafka", Some(&app), "main").await.is_none());
}

#[tokio::test]
async fn mass_prune_is_refused_without_the_flag() {
    let ns = common::namespace("apply-mass").await;
    let app = format!("{}-app", ns.name);
    let cluster = cluster().await;
    let mut opts = options(&app);
    apply_ok(&cluster, platform(&app), &opts).await;
    opts.prune = true;
    // A broken render: only the Namespace is left.
    let only_ns: Vec<Value> = platform(&app).into_iter().take(1).collect();
    let err = apply::apply(&cluster, only_ns.clone(), &opts).await.unwrap_err();
    assert!(matches!(err, ApplyError::MassPrune { .. }), "{err}");
    assert!(err.to_string().contains("--allow-mass-prune"), "{err}");
    assert!(
        live(&cluster, "ConfigMap", Some(&app), "kafka-metrics")
            .await
            .is_some()
    );
    opts.allow_mass_prune = true;
    let set = apply_ok(&cluster, only_ns, &opts).await;
    assert_eq!(
        outcomes(&set)[&format!("ConfigMap/{app}/kafka-metrics")],
        Outcome::Pruned
    );
}

/// KafkaTopic and KafkaUser are protected like Kafka (with the topic operator, deleting a KafkaTopic
/// deletes the topic and its messages), and a prune of more than `max_prune` objects (default 10)
/// is a mass prune even when it is less than half of the inventory.
#[tokio::test]
async fn topics_and_users_are_protected_and_more_than_ten_prunes_is_a_mass_prune() {
    let ns = common::namespace("apply-topics").await;
    let app = format!("{}-app", ns.name);
    let cluster = cluster().await;
    let mut opts = options(&app);
    let labels = json!({"strimzi.io/cluster": "main"});
    let topic = json!({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic",
        "metadata": {"name": "orders", "namespace": app, "labels": labels},
        "spec": {"partitions": 3, "replicas": 3}});
    let user = json!({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaUser",
        "metadata": {"name": "billing", "namespace": app, "labels": labels},
        "spec": {"authentication": {"type": "tls"}}});
    let extra: Vec<Value> = (0..11)
        .map(|i| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("extra-{i}"), "namespace": app}}))
        .collect();
    let mut objects = platform(&app);
    objects.extend([topic, user]);
    objects.extend(extra);
    apply_ok(&cluster, objects, &opts).await;

    // 11 ConfigMaps leave git (11 of 25 members: less than half), and the topic and the user.
    opts.prune = true;
    let err = apply::apply(&cluster, platform(&app), &opts).await.unwrap_err();
    assert!(
        matches!(
            err,
            ApplyError::MassPrune {
                candidates: 11,
                max: 10,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("more than 10 objects"), "{err}");
    assert!(live(&cluster, "ConfigMap", Some(&app), "extra-0").await.is_some());

    opts.max_prune = 11;
    let set = apply_ok(&cluster, platform(&app), &opts).await;
    let out = outcomes(&set);
    assert_eq!(out[&format!("ConfigMap/{app}/extra-0")], Outcome::Pruned);
    assert_eq!(out[&format!("KafkaTopic/{app}/orders")], Outcome::PruneSkipped);
    assert_eq!(out[&format!("KafkaUser/{app}/billing")], Outcome::PruneSkipped);
    assert!(live(&cluster, "KafkaTopic", Some(&app), "orders").await.is_some());
    assert!(live(&cluster, "KafkaUser", Some(&app), "billing").await.is_some());
}

/// A writer that loses its write lock (another writer took the Lease: it had stopped renewing, or
/// the Lease was broken by hand) stops its apply at once instead of writing on without the lock,
/// and does not release the other writer's lock.
#[tokio::test]
async fn an_apply_stops_when_its_write_lock_is_lost() {
    use k8s_openapi::api::coordination::v1::Lease;
    use kgitops::apply::{LockError, LockOptions};
    use kube::api::{Api, PostParams};

    let ns = common::namespace("apply-lost").await;
    let cluster = cluster().await;
    let inv = InventoryRef::for_cluster("dev", &ns.name);
    let mut lock = LockOptions::new("writer-a");
    lock.lease_duration = Duration::from_secs(3);
    let held = apply::lock::acquire(&cluster, &inv, &lock, &mut Default::default())
        .await
        .unwrap();
    let leases: Api<Lease> = ns.api();
    loop {
        // writer-a renews every second: retry on a conflict with its renewal.
        let mut lease = leases.get("kgitops-dev-lock").await.unwrap();
        assert_eq!(
            lease.spec.as_ref().unwrap().holder_identity.as_deref(),
            Some("writer-a")
        );
        lease.spec.as_mut().unwrap().holder_identity = Some("writer-b".into());
        match leases
            .replace("kgitops-dev-lock", &PostParams::default(), &lease)
            .await
        {
            Ok(_) => break,
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => panic!("{e}"),
        }
    }
    let started = std::time::Instant::now();
    let err = held
        .run(
            tokio::time::sleep(Duration::from_secs(120)),
            &mut Default::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, LockError::Lost { .. }), "{err}");
    assert!(err.to_string().contains("now held by writer-b"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let lease = leases.get("kgitops-dev-lock").await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("writer-b"));
}

/// A writer takes a lock it released itself with one write on the version it left (the daemon's
/// heals); when anyone wrote the Lease since, that write fails and the writer reads it again, so
/// a lock another writer took in between is never taken from it.
#[tokio::test]
async fn a_writer_retakes_its_released_lock_only_when_nobody_else_holds_it() {
    use k8s_openapi::api::coordination::v1::Lease;
    use kgitops::apply::lock::Observed;
    use kgitops::apply::{LockError, LockOptions};
    use kube::api::Api;

    let ns = common::namespace("apply-retake").await;
    let cluster = cluster().await;
    let inv = InventoryRef::for_cluster("dev", &ns.name);
    let leases: Api<Lease> = ns.api();
    let holder = |lease: Lease| lease.spec.and_then(|s| s.holder_identity);
    let mut a = LockOptions::new("writer-a");
    a.timeout = Duration::ZERO;
    let mut b = LockOptions::new("writer-b");
    b.timeout = Duration::ZERO;
    let mut observed_a = Observed::default();

    // Twice in a row: the second take is the single write on the released version.
    for _ in 0..2 {
        let held = apply::lock::acquire(&cluster, &inv, &a, &mut observed_a)
            .await
            .unwrap();
        let lease = leases.get("kgitops-dev-lock").await.unwrap();
        assert_eq!(holder(lease).as_deref(), Some("writer-a"));
        held.run(async {}, &mut observed_a).await.unwrap();
        let lease = leases.get("kgitops-dev-lock").await.unwrap();
        assert_eq!(holder(lease), None, "released");
    }

    // writer-b takes the lock writer-a released; writer-a's remembered version is stale now.
    let held_b = apply::lock::acquire(&cluster, &inv, &b, &mut Observed::default())
        .await
        .unwrap();
    let err = apply::lock::acquire(&cluster, &inv, &a, &mut observed_a)
        .await
        .err()
        .expect("writer-b holds the lock");
    assert!(matches!(err, LockError::Held { .. }), "{err}");
    assert!(err.to_string().contains("writer-b"), "{err}");
    let lease = leases.get("kgitops-dev-lock").await.unwrap();
    assert_eq!(holder(lease).as_deref(), Some("writer-b"));
    drop(held_b);
}

#[tokio::test]
async fn objects_created_by_client_side_kubectl_apply_are_taken_over() {
    let ns = common::namespace("apply-takeover").await;
    let cluster = cluster().await;
    let app = ns.name.clone();
    let manifest = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: legacy\n  namespace: {app}\n  labels:\n    old-label: x\ndata:\n  kept: \"1\"\n  removed-in-git: \"2\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("legacy.yaml");
    std::fs::write(&file, manifest).unwrap();
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(common::control_plane().kubeconfig())
        .args(["apply", "-f"])
        .arg(&file)
        .output()
        .expect("kubectl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let desired = vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "legacy", "namespace": app}, "data": {"kept": "1", "added": "3"}})];
    let opts = options(&app);
    let plan = plan_of(&cluster, desired.clone(), &opts).await;
    let entry = find(&plan, &format!("ConfigMap/{app}/legacy"));
    assert!(entry.diff.contains("-  removed-in-git: \"2\""), "{}", entry.diff);
    assert!(entry.diff.contains("-    old-label: x"), "{}", entry.diff);
    assert!(
        entry.notes.iter().any(|n| n.contains("client-side")),
        "{:?}",
        entry.notes
    );

    apply_ok(&cluster, desired.clone(), &opts).await;
    let now = live(&cluster, "ConfigMap", Some(&app), "legacy").await.unwrap();
    assert_eq!(now["data"], json!({"kept": "1", "added": "3"}));
    assert!(now["metadata"]["labels"].get("old-label").is_none(), "{now}");
    assert!(
        now["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .is_none(),
        "{now}"
    );
    let managers: Vec<&str> = now["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, vec!["kgitops"]);
    assert!(changed(&plan_of(&cluster, desired, &opts).await).is_empty());
}

#[tokio::test]
async fn immutable_field_changes_fail_clearly_unless_recreate_is_annotated() {
    let ns = common::namespace("apply-immutable").await;
    let app = format!("{}-app", ns.name);
    let cluster = cluster().await;
    let opts = options(&app);
    apply_ok(&cluster, platform(&app), &opts).await;

    let with_selector = |label: &str, annotate: bool| -> Vec<Value> {
        let mut objects = platform(&app);
        for o in &mut objects {
            if o["kind"] == "Deployment" {
                o["spec"]["selector"]["matchLabels"]["app"] = json!(label);
                o["spec"]["template"]["metadata"]["labels"]["app"] = json!(label);
                if annotate {
                    o["metadata"]["annotations"] = json!({"kgitops.io/recreate": "true"});
                }
            }
        }
        objects
    };
    let before = live(&cluster, "Deployment", Some(&app), "zoo-entrance")
        .await
        .unwrap();
    let err = apply::apply(&cluster, with_selector("zoo-entrance-v2", false), &opts)
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "Deployment/{app}/zoo-entrance dry-run failed: immutable field spec.selector"
        )),
        "{message}"
    );
    assert!(message.contains("kgitops.io/recreate"), "{message}");
    let after = live(&cluster, "Deployment", Some(&app), "zoo-entrance")
        .await
        .unwrap();
    assert_eq!(
        before["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"],
        "nothing written"
    );

    let set = apply_ok(&cluster, with_selector("zoo-entrance-v2", true), &opts).await;
    assert_eq!(
        outcomes(&set)[&format!("Deployment/{app}/zoo-entrance")],
        Outcome::Recreated
    );
    let recreated = live(&cluster, "Deployment", Some(&app), "zoo-entrance")
        .await
        .unwrap();
    assert_ne!(recreated["metadata"]["uid"], before["metadata"]["uid"]);
    assert_eq!(
        recreated["spec"]["selector"]["matchLabels"]["app"],
        "zoo-entrance-v2"
    );
}

#[tokio::test]
async fn rejected_objects_unknown_kinds_and_missing_namespaces_write_nothing() {
    let ns = common::namespace("apply-reject").await;
    let app = format!("{}-app", ns.name);
    let cluster = cluster().await;
    let opts = options(&app);

    // A Kafka the CRD schema rejects: nothing of the revision is written, not even the Namespace.
    let mut objects = platform(&app);
    objects.retain(|o| o["kind"] != "Namespace");
    let mut bad = objects.clone();
    for o in &mut bad {
        if o["kind"] == "Kafka" {
            o["metadata"]["namespace"] = json!(ns.name);
            o["spec"]["kafka"]["replicas"] = json!("three");
        }
    }
    let bad: Vec<Value> = bad.into_iter().filter(|o| o["kind"] == "Kafka").collect();
    let err = apply::apply(&cluster, bad, &options(&ns.name)).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("Kafka/{}/main dry-run failed: ", ns.name)),
        "{err}"
    );
    assert!(live(&cluster, "Kafka", Some(&ns.name), "main").await.is_none());

    // An unknown kind is named before anything is sent.
    let mut unknown = objects.clone();
    unknown.push(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": app}}));
    let err = apply::apply(&cluster, unknown, &opts).await.unwrap_err();
    assert!(
        err.to_string().contains(&format!("Widget/{app}/w unknown kind")),
        "{err}"
    );

    // An inventory in a namespace that neither exists nor is part of the revision.
    let elsewhere = ApplyOptions::new(
        "dev",
        InventoryRef {
            namespace: format!("{app}-missing"),
            name: "kgitops-dev".into(),
        },
    );
    let err = apply::apply(&cluster, platform(&app), &elsewhere)
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "ConfigMap/{app}-missing/kgitops-dev: namespace {app}-missing does not exist"
        )),
        "{err}"
    );

    // A namespace that neither exists nor is part of the revision: every object in it fails alike,
    // so the error is one line naming the namespace and counting the other objects.
    let err = apply::apply(&cluster, objects, &opts).await.unwrap_err();
    let text = err.to_string();
    assert_eq!(text.lines().count(), 1, "{err}");
    assert!(
        text.contains(&format!(
            "namespace {app} does not exist and is not part of this revision (and "
        )) && text.ends_with(" more object(s) with the same error)"),
        "{err}"
    );
    assert!(live(&cluster, "Namespace", None, &app).await.is_none());
}

#[tokio::test]
async fn wait_reports_strimzi_health_and_warnings() {
    let ns = common::namespace("apply-health").await;
    let app = format!("{}-app", ns.name);
    let cluster = cluster().await;
    let mut opts = options(&app);
    apply_ok(&cluster, platform(&app), &opts).await;

    // No operator runs: the test plays Strimzi through the status subresource.
    let kafka = live(&cluster, "Kafka", Some(&app), "main").await.unwrap();
    let generation = kafka["metadata"]["generation"].clone();
    let status = json!({"status": {"observedGeneration": generation, "conditions": [
        {"type": "Warning", "status": "True", "reason": "KafkaStorage", "message": "Changing the storage size is not supported"},
        {"type": "Ready", "status": "True"}]}});
    let mut req = kube::core::Request::new(format!("/apis/kafka.strimzi.io/v1beta2/namespaces/{app}/kafkas"))
        .patch_subresource(
            "status",
            "main",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&status),
        )
        .unwrap();
    req.headers_mut().remove("accept");
    let _: Value = cluster.client().request(req).await.expect("status patch");

    opts.wait = Some(Duration::from_secs(5));
    let set = apply_ok(&cluster, platform(&app), &opts).await;
    assert_eq!(set.health.len(), 1, "{:?}", set.health);
    assert!(set.health[0].healthy, "{:?}", set.health);
    assert_eq!(
        set.health[0].warnings,
        vec!["KafkaStorage: Changing the storage size is not supported"]
    );
    assert!(report::change_set_text(&set).contains("warning: KafkaStorage"));

    // A spec change the operator has not seen yet is not healthy.
    let mut objects = platform(&app);
    for o in &mut objects {
        if o["kind"] == "Kafka" {
            o["spec"]["kafka"]["replicas"] = json!(5);
        }
    }
    opts.wait = Some(Duration::from_secs(1));
    let set = apply_ok(&cluster, objects, &opts).await;
    assert!(!set.health[0].healthy);
    assert!(
        set.health[0].message.contains("not reconciled yet"),
        "{:?}",
        set.health
    );
}

/// A cluster connection from the test kubeconfig, edited.
async fn cluster_with(edit: impl FnOnce(&mut Value)) -> Cluster {
    let path = common::control_plane().kubeconfig();
    let text = std::fs::read_to_string(path).unwrap();
    let mut kubeconfig: Value = serde_saphyr::from_str(&text).unwrap();
    edit(&mut kubeconfig);
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&kubeconfig.to_string()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    Cluster::new(kube::Client::try_from(config).unwrap(), 4)
}

#[tokio::test]
async fn unreachable_apiserver_and_rejected_credentials_are_clear_errors() {
    let ns = common::namespace("apply-failures").await;
    let app = ns.name.clone();
    let objects = vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": app}, "data": {"k": "v"}})];

    let down = cluster_with(|k| k["clusters"][0]["cluster"]["server"] = json!("https://127.0.0.1:1")).await;
    let err = apply::apply(&down, objects.clone(), &options(&app))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("apiserver unreachable"), "{err}");

    let expired = cluster_with(|k| k["users"][0]["user"] = json!({"token": "expired-token"})).await;
    let err = apply::apply(&expired, objects.clone(), &options(&app))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("credentials rejected"), "{err}");
    assert!(!err.to_string().contains("expired-token"), "{err}");

    // Nothing was written by either; a good run then converges.
    let cluster = cluster().await;
    assert!(live(&cluster, "ConfigMap", Some(&app), "a").await.is_none());
    let set = apply_ok(&cluster, objects, &options(&app)).await;
    assert_eq!(outcomes(&set)[&format!("ConfigMap/{app}/a")], Outcome::Created);
}

#[tokio::test]
async fn upstream_quirks_cause_no_false_drift_and_no_writes() {
    let ns = common::namespace("apply-quirks").await;
    let app = ns.name.clone();
    let cluster = cluster().await;
    let mut opts = options(&app);
    opts.dry_run_unchanged = true;
    let objects = |keys: &[&str]| -> Vec<Value> {
        let string_data: serde_json::Map<String, Value> = keys
            .iter()
            .map(|k| (k.to_string(), json!(format!("value-of-{k}"))))
            .collect();
        vec![
            // clusterIP "" means "allocate": on update it would be an immutable-field error.
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc", "namespace": app},
                "spec": {"clusterIP": "", "selector": {"app": "x"}, "ports": [{"port": 80}]}}),
            // An empty annotations map and explicit nulls would make every apply a write.
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": app, "labels": null},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
                    "metadata": {"labels": {"app": "web"}, "annotations": {}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "args": null}]}}}}),
            // stringData keys removed from git must disappear from data (fails without
            // normalize::secret_string_data_to_data on 1.36; the quirks above are fixed upstream or
            // covered by the no-op skip, and stay covered here).
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": app},
                "stringData": string_data}),
        ]
    };
    apply_ok(&cluster, objects(&["a", "b"]), &opts).await;
    let plan = plan_of(&cluster, objects(&["a", "b"]), &opts).await;
    assert!(
        changed(&plan).is_empty(),
        "false drift:\n{}",
        changed(&plan).join("\n")
    );
    let before = resource_versions(&cluster, &app, &objects(&["a"])).await;
    let set = apply_ok(&cluster, objects(&["a", "b"]), &opts).await;
    assert!(!set.has_changes(), "{:?}", outcomes(&set));
    assert_eq!(resource_versions(&cluster, &app, &objects(&["a"])).await, before);

    apply_ok(&cluster, objects(&["a"]), &opts).await;
    let secret = live(&cluster, "Secret", Some(&app), "creds").await.unwrap();
    let keys: Vec<&String> = secret["data"].as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["a"]);
}

#[tokio::test]
async fn more_cluster_ip_services_than_a_slash_24_holds_apply() {
    // A /24 Service range (the rig's until issue 13) is full after 254 ClusterIPs: "range is full".
    // The rig has kubeadm's 10.96.0.0/12, as a real cluster does.
    let ns = common::namespace("apply-clusterips").await;
    let app = ns.name.clone();
    let cluster = cluster().await;
    let services: Vec<Value> = (0..300)
        .map(|i| {
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("svc-{i:03}"), "namespace": app},
                "spec": {"selector": {"app": format!("svc-{i:03}")}, "ports": [{"port": 80, "targetPort": 8080}]}})
        })
        .collect();
    let set = apply_ok(&cluster, services.clone(), &options(&app)).await;
    assert_eq!(set.changes.len(), 300);
    assert!(set.changes.iter().all(|c| c.outcome == Outcome::Created));
    let last = live(&cluster, "Service", Some(&app), "svc-299")
        .await
        .expect("created");
    let ip = last["spec"]["clusterIP"]
        .as_str()
        .expect("a ClusterIP is allocated");
    let ip: std::net::Ipv4Addr = ip.parse().expect("an IPv4 ClusterIP");
    assert!(
        ip.octets()[0] == 10 && (96..112).contains(&ip.octets()[1]),
        "{ip} is not in 10.96.0.0/12"
    );
    let plan = plan_of(&cluster, services, &options(&app)).await;
    assert!(changed(&plan).is_empty(), "{}", changed(&plan).join("\n"));
}

/// Starts the rig's mutating webhook for Deployments in `namespace` and installs it.
async fn install_webhook(cluster: &Cluster, namespace: &str) -> mutating_webhook::MutatingWebhook {
    let webhook = mutating_webhook::MutatingWebhook::start(
        &common::control_plane().dir().join(format!("webhook-{namespace}")),
    );
    webhook.install(cluster, namespace).await;
    webhook
}

fn web_deployment(app: &str, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": app, "labels": {"app": "web"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": image}]}}}})
}

fn conf_map(app: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf", "namespace": app}, "data": {"a": "1"}})
}

#[tokio::test]
async fn a_mutating_webhook_is_not_hidden_by_the_no_op_shortcut() {
    let ns = common::namespace("apply-webhook").await;
    let app = ns.name.clone();
    let cluster = cluster().await;
    let opts = options(&app);
    let objects = |image: &str| vec![web_deployment(&app, image), conf_map(&app)];
    let web = format!("Deployment/{app}/web");
    let conf = format!("ConfigMap/{app}/conf");

    // Applied before the webhook exists: the live state proves a re-apply a no-op, but the webhook
    // installed since would add its label. Without the webhook check: a false "unchanged".
    apply_ok(&cluster, objects("nginx:1.27"), &opts).await;
    let webhook = install_webhook(&cluster, &app).await;
    let plan = plan_of(&cluster, objects("nginx:1.27"), &opts).await;
    let entry = find(&plan, &web);
    assert_eq!(entry.action, Action::Update, "{}", entry.diff);
    assert!(
        entry.diff.contains(mutating_webhook::INJECTED_LABEL),
        "{}",
        entry.diff
    );
    assert_eq!(find(&plan, &conf).action, Action::Unchanged);

    // Apply stores the webhook's label; right after, diff shows nothing and a second apply writes
    // nothing (no endless re-apply of what the webhook adds).
    let set = apply_ok(&cluster, objects("nginx:1.27"), &opts).await;
    assert_eq!(outcomes(&set)[&web], Outcome::Configured);
    let live_web = live(&cluster, "Deployment", Some(&app), "web").await.unwrap();
    assert_eq!(
        live_web["metadata"]["labels"][mutating_webhook::INJECTED_LABEL],
        "true"
    );
    let plan = plan_of(&cluster, objects("nginx:1.27"), &opts).await;
    assert!(
        changed(&plan).is_empty(),
        "false drift:\n{}",
        changed(&plan).join("\n")
    );
    let before = resource_versions(&cluster, &app, &objects("nginx:1.27")).await;
    let calls = webhook.calls();
    let again = apply_ok(&cluster, objects("nginx:1.27"), &opts).await;
    assert!(!again.has_changes(), "{:?}", outcomes(&again));
    assert_eq!(
        resource_versions(&cluster, &app, &objects("nginx:1.27")).await,
        before
    );
    assert!(
        webhook.calls() > calls,
        "the Deployment was dry-run through the webhook"
    );

    // Drift: a hand edit of a field kgitops owns is the only change shown, never the webhook's
    // label; healing it converges.
    patch_as(
        &cluster,
        &web_deployment(&app, "x"),
        json!({"spec": {"replicas": 3}}),
        "kubectl-edit",
    )
    .await;
    let plan = plan_of(&cluster, objects("nginx:1.27"), &opts).await;
    let paths: Vec<&str> = find(&plan, &web)
        .changes
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(paths, vec!["spec.replicas"], "{}", find(&plan, &web).diff);
    apply_ok(&cluster, objects("nginx:1.27"), &opts).await;
    let plan = plan_of(&cluster, objects("nginx:1.27"), &opts).await;
    assert!(changed(&plan).is_empty(), "{}", changed(&plan).join("\n"));

    // A change in git is seen, and only it.
    let plan = plan_of(&cluster, objects("nginx:1.28"), &opts).await;
    let paths: Vec<&str> = find(&plan, &web)
        .changes
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(
        paths,
        vec!["spec.template.spec.containers[name=web].image"],
        "{}",
        find(&plan, &web).diff
    );
    assert_eq!(find(&plan, &conf).action, Action::Unchanged);
}

#[tokio::test]
async fn a_mutating_webhook_costs_one_dry_run_per_object_it_matches() {
    // Two namespaces with the same objects, the webhook selecting only the first: a no-op plan of
    // the first dry-runs its Deployments (not its ConfigMaps), the second none.
    let hooked = common::namespace("apply-webhook-cost").await.name;
    let plain = common::namespace("apply-webhook-plain").await.name;
    let cluster = cluster().await;
    let objects = |ns: &str| -> Vec<Value> {
        (0..3)
            .flat_map(|i| {
                let mut d = web_deployment(ns, "nginx:1.27");
                d["metadata"]["name"] = json!(format!("web-{i}"));
                let mut c = conf_map(ns);
                c["metadata"]["name"] = json!(format!("conf-{i}"));
                [d, c]
            })
            .collect()
    };
    let _webhook = install_webhook(&cluster, &hooked).await;
    for ns in [&hooked, &plain] {
        apply_ok(&cluster, objects(ns), &options(ns)).await;
    }
    let mut sent = BTreeMap::new();
    for ns in [&hooked, &plain] {
        let requests = cluster.requests();
        let plan = plan_of(&cluster, objects(ns), &options(ns)).await;
        assert!(changed(&plan).is_empty(), "{}", changed(&plan).join("\n"));
        sent.insert(ns.clone(), cluster.requests() - requests);
    }
    assert_eq!(sent[&hooked], sent[&plain] + 3, "{sent:?}");
}

#[tokio::test]
async fn a_watched_webhook_is_seen_without_a_list_per_plan() {
    // The daemon's clusters keep the webhook configurations by a watch: a webhook installed after
    // the watch started is still honoured, and a plan costs one request (the LIST) less than the
    // CLI's.
    let ns = common::namespace("apply-webhook-watch").await;
    let app = ns.name.clone();
    let listed = cluster().await;
    let watched = cluster().await.with_webhook_watch();
    let opts = options(&app);
    let objects = || vec![web_deployment(&app, "nginx:1.27"), conf_map(&app)];
    let web = format!("Deployment/{app}/web");
    apply_ok(&listed, objects(), &opts).await;
    // Both plans warm (discovery) and agree before the webhook exists.
    for cluster in [&listed, &watched] {
        let plan = plan_of(cluster, objects(), &opts).await;
        assert!(changed(&plan).is_empty(), "{}", changed(&plan).join("\n"));
    }
    let _webhook = install_webhook(&listed, &app).await;
    // The watch delivers the new configuration within its latency; no plan may call it unchanged
    // once it has (bounded generously: a loaded machine).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let plan = plan_of(&watched, objects(), &opts).await;
        if find(&plan, &web).action == Action::Update {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the watched cluster never saw the webhook installed after it started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut sent = Vec::new();
    for cluster in [&listed, &watched] {
        let requests = cluster.requests();
        let plan = plan_of(cluster, objects(), &opts).await;
        assert_eq!(
            find(&plan, &web).action,
            Action::Update,
            "{}",
            find(&plan, &web).diff
        );
        sent.push(cluster.requests() - requests);
    }
    assert_eq!(sent[0], sent[1] + 1, "listed, watched: {sent:?}");
}
