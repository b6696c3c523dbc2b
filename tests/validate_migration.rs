//! The ZooKeeper-to-KRaft migration rules (`kraft-migration-*`, `src/validate/rules/migration.rs`)
//! offline, on issue 16's path as plain files under `tests/fixtures/migration/`: `step0.yaml` is
//! prod-eu-west-1's `kafka-prod` render (Strimzi 0.45.2, ZooKeeper, six brokers in
//! `spec.kafka.replicas`), then node pools (`step1`), controllers and `migration` (`step2`),
//! `enabled` (`step3`), ZooKeeper gone (`step4`); `rollback1/2/3.yaml` are the way back from step 2.
//! Every step passes the 0.45.2 schemas and every rule; every consecutive pair passes the change
//! rules. Each rule is then broken at least once, and skipping or reordering steps is refused.

mod common;
mod validate_support;

use std::path::Path;
use std::process::Command;

use kgitops::validate::{Finding, Severity, check_rules, check_schemas};
use serde_json::{Value, json};
use validate_support::rule_findings as findings;
use validate_support::{crd_dir, kafka, object, remove, set, strimzi_schemas, text, yaml};

const CLUSTER: &str = "prod-eu-west-1";
const KAFKA: &str = "Kafka/kafka-prod/main";

/// A fixture of the path: `step0`..`step4`, `rollback1`..`rollback3`.
fn step(name: &str) -> Vec<Value> {
    let path = common::repo_root()
        .join("tests/fixtures/migration")
        .join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    yaml(&text)
}

/// A fixture changed by `f`.
fn with(name: &str, f: impl FnOnce(&mut Vec<Value>)) -> Vec<Value> {
    let mut objects = step(name);
    f(&mut objects);
    objects
}

fn annotate(objects: &mut [Value], value: &str) {
    set(
        kafka(objects),
        "/metadata/annotations/strimzi.io~1kraft",
        json!(value),
    );
}

fn without(objects: &mut Vec<Value>, kind: &str, name: &str) {
    let before = objects.len();
    objects.retain(|o| !(o["kind"] == kind && o["metadata"]["name"] == name));
    assert_eq!(
        objects.len() + 1,
        before,
        "no single {kind}/{name} in the fixture"
    );
}

/// The findings of every `kraft-migration-*` rule for a change.
fn migration_findings(from: &[Value], to: &[Value]) -> Vec<Finding> {
    check_rules(CLUSTER, Some(from), to)
        .into_iter()
        .filter(|f| f.rule.starts_with("kraft-migration-"))
        .collect()
}

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

const PATH: [&str; 5] = ["step0", "step1", "step2", "step3", "step4"];
const ROLLBACK: [&str; 4] = ["step2", "rollback1", "rollback2", "rollback3"];

#[test]
fn every_step_passes_schemas_and_rules() {
    let schemas = strimzi_schemas();
    for name in PATH.iter().chain(&ROLLBACK[1..]) {
        let objects = step(name);
        let schema: Vec<Finding> = check_schemas(&schemas, CLUSTER, &objects);
        assert!(schema.is_empty(), "{name}: schema findings\n{}", text(schema));
        let rules = check_rules(CLUSTER, None, &objects);
        assert!(
            errors(&rules).is_empty(),
            "{name}: rule errors\n{}",
            text(rules.clone())
        );
    }
}

#[test]
fn every_commit_of_the_path_and_of_the_rollback_validates_clean() {
    for path in [&PATH[..], &ROLLBACK[..]] {
        for pair in path.windows(2) {
            let (from, to) = (step(pair[0]), step(pair[1]));
            let all = check_rules(CLUSTER, Some(&from), &to);
            assert!(
                errors(&all).is_empty(),
                "{} -> {}: errors\n{}",
                pair[0],
                pair[1],
                text(all.clone())
            );
            let migration = migration_findings(&from, &to);
            assert!(
                migration.is_empty(),
                "{} -> {}: migration findings\n{}",
                pair[0],
                pair[1],
                text(migration)
            );
            // The only warnings: the ZooKeeper-era version config on a cluster that is now KRaft (step 4
            // drops it, as Strimzi's docs say), and the controller pool deleting its PVCs on rollback.
            let warnings: Vec<&str> = all.iter().map(|f| f.rule.as_str()).collect();
            let want: &[&str] = match (pair[0], pair[1]) {
                ("step2", "step3") => &["kafka-kraft-legacy-version-config"],
                ("step2", "rollback1") => &["kafka-storage-delete-claim"],
                _ => &[],
            };
            assert_eq!(
                warnings,
                want,
                "{} -> {}\n{}",
                pair[0],
                pair[1],
                text(all.clone())
            );
        }
    }
}

/// The fixtures are the path they claim to be.
#[test]
fn the_fixtures_follow_the_documented_steps() {
    let kraft = |name: &str| {
        let mut objects = step(name);
        kafka(&mut objects)["metadata"]["annotations"]["strimzi.io/kraft"].clone()
    };
    assert_eq!(kraft("step0"), Value::Null);
    assert_eq!(kraft("step1"), Value::Null);
    assert_eq!(kraft("step2"), "migration");
    assert_eq!(kraft("step3"), "enabled");
    assert_eq!(kraft("step4"), "enabled");
    assert_eq!(kraft("rollback1"), "rollback");
    assert_eq!(kraft("rollback2"), "rollback");
    assert_eq!(kraft("rollback3"), "disabled");
    let mut s0 = step("step0");
    assert_eq!(kafka(&mut s0)["spec"]["kafka"]["replicas"], 6);
    assert!(!s0.iter().any(|o| o["kind"] == "KafkaNodePool"));
    let mut s1 = step("step1");
    assert_eq!(object(&mut s1, "KafkaNodePool", "kafka")["spec"]["replicas"], 6);
    let mut s2 = step("step2");
    assert_eq!(
        object(&mut s2, "KafkaNodePool", "controller")["spec"]["roles"],
        json!(["controller"])
    );
    let s4 = step("step4");
    assert!(
        s4.iter()
            .all(|o| o["metadata"]["name"] != "zoo-entrance" && o["metadata"]["name"] != "zk-exporter")
    );
    let mut s3 = step("step3");
    assert!(kafka(&mut s3)["spec"]["zookeeper"].is_object());
    let mut s4 = s4;
    assert!(kafka(&mut s4)["spec"].get("zookeeper").is_none());
    let r2 = step("rollback2");
    assert!(!r2.iter().any(|o| o["metadata"]["name"] == "controller"));
}

/// Skipping steps or going backwards is refused, with the rules that say why.
#[test]
fn skipped_or_reordered_steps_are_refused() {
    let cases: [(&str, &str, &[&str]); 11] = [
        ("step0", "step2", &["kraft-migration-node-pools-first"]),
        ("step0", "step3", &["kraft-migration-skipped"]),
        (
            "step0",
            "step4",
            &[
                "kraft-migration-skipped",
                "kraft-migration-zookeeper-removed-early",
                "kraft-migration-zookeeper-components-removed",
            ],
        ),
        ("step1", "step3", &["kraft-migration-skipped"]),
        (
            "step1",
            "step4",
            &[
                "kraft-migration-skipped",
                "kraft-migration-zookeeper-removed-early",
                "kraft-migration-zookeeper-components-removed",
            ],
        ),
        (
            "step2",
            "step4",
            &[
                "kraft-migration-zookeeper-removed-early",
                "kraft-migration-zookeeper-components-removed",
            ],
        ),
        (
            "step2",
            "step1",
            &[
                "kraft-migration-controller-pool-removed",
                "kraft-migration-rollback-order",
            ],
        ),
        ("step3", "step2", &["kraft-migration-enabled-is-final"]),
        ("step3", "rollback1", &["kraft-migration-enabled-is-final"]),
        ("step1", "rollback1", &["kraft-migration-rollback-order"]),
        ("step2", "rollback2", &["kraft-migration-controller-pool-removed"]),
    ];
    for (from, to, want) in cases {
        let got = migration_findings(&step(from), &step(to));
        let mut rules: Vec<&str> = got.iter().map(|f| f.rule.as_str()).collect();
        rules.sort();
        rules.dedup();
        let mut want = want.to_vec();
        want.sort();
        assert_eq!(rules, want, "{from} -> {to}:\n{}", text(got.clone()));
        assert!(got.iter().all(|f| f.severity == Severity::Error));
    }
}

#[test]
fn broker_pool_not_named_kafka() {
    let renamed = with("step1", |o| {
        set(
            object(o, "KafkaNodePool", "kafka"),
            "/metadata/name",
            json!("brokers"),
        )
    });
    let got = findings("kraft-migration-broker-pool-name", Some(&step("step0")), &renamed);
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert_eq!(got[0].object, KAFKA);
    assert_eq!(got[0].path, "metadata.annotations[strimzi.io/node-pools]");
    assert!(got[0].message.contains("6 broker(s)"), "{}", got[0].message);
    assert!(got[0].message.contains("main-kafka-0..5"), "{}", got[0].message);
    assert!(
        got[0].message.contains("brokers [broker] x6"),
        "{}",
        got[0].message
    );
    assert!(
        got[0].fix.contains("KafkaNodePool kafka in namespace kafka-prod"),
        "{}",
        got[0].fix
    );
    // A pool named kafka without the broker role.
    let wrong_role = with("step1", |o| {
        set(
            object(o, "KafkaNodePool", "kafka"),
            "/spec/roles",
            json!(["controller"]),
        )
    });
    let got = findings(
        "kraft-migration-broker-pool-name",
        Some(&step("step0")),
        &wrong_role,
    );
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert_eq!(got[0].object, "KafkaNodePool/kafka-prod/kafka");
    assert_eq!(got[0].path, "spec.roles");
    // Once on node pools, the name is the node-pool rules' business.
    assert!(
        findings(
            "kraft-migration-broker-pool-name",
            Some(&step("step1")),
            &step("step2")
        )
        .is_empty()
    );
}

#[test]
fn migration_together_with_node_pools_or_without_them() {
    let got = findings(
        "kraft-migration-node-pools-first",
        Some(&step("step0")),
        &step("step2"),
    );
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert_eq!(got[0].object, KAFKA);
    assert_eq!(got[0].path, "metadata.annotations[strimzi.io/kraft]");
    assert!(got[0].message.contains("in one change"), "{}", got[0].message);
    let no_pools = with("step0", |o| annotate(o, "migration"));
    let got = findings(
        "kraft-migration-node-pools-first",
        Some(&step("step0")),
        &no_pools,
    );
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert!(
        got[0].message.contains("without node pools"),
        "{}",
        got[0].message
    );
}

#[test]
fn controllers_during_the_migration() {
    // Dual-role: the controller pool also runs brokers.
    let dual = with("step2", |o| {
        set(
            object(o, "KafkaNodePool", "controller"),
            "/spec/roles",
            json!(["controller", "broker"]),
        )
    });
    let got = findings("kraft-migration-controllers", None, &dual);
    assert_eq!(got.len(), 2, "{}", text(got.clone()));
    assert_eq!(got[0].object, "KafkaNodePool/kafka-prod/controller");
    assert_eq!(got[0].path, "spec.roles");
    assert!(
        got[0].message.contains("dedicated controller"),
        "{}",
        got[0].message
    );
    // ... which also leaves no dedicated controllers.
    assert_eq!(got[1].object, KAFKA);
    // No controller pool at all while migrating (or finalising).
    for (name, value) in [("step2", "migration"), ("step3", "enabled")] {
        let none = with(name, |o| without(o, "KafkaNodePool", "controller"));
        let got = findings("kraft-migration-controllers", None, &none);
        assert_eq!(got.len(), 1, "{name}: {}", text(got.clone()));
        assert_eq!(got[0].object, KAFKA);
        assert!(
            got[0].message.contains(&format!("strimzi.io/kraft: {value}")),
            "{}",
            got[0].message
        );
    }
    // A single ephemeral controller.
    let single = with("step2", |o| {
        let pool = object(o, "KafkaNodePool", "controller");
        set(pool, "/spec/replicas", json!(1));
        set(pool, "/spec/storage", json!({"type": "ephemeral"}));
    });
    let got = findings("kraft-migration-controllers", None, &single);
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert_eq!(got[0].path, "spec.storage.type");
    assert!(
        got[0].message.contains("single controller on ephemeral"),
        "{}",
        got[0].message
    );
    // Three ephemeral controllers are the node-pool warning's, a single persistent one passes here.
    let three = with("step2", |o| {
        set(
            object(o, "KafkaNodePool", "controller"),
            "/spec/storage",
            json!({"type": "ephemeral"}),
        )
    });
    assert!(findings("kraft-migration-controllers", None, &three).is_empty());
    // During rollback the pool goes on purpose.
    assert!(findings("kraft-migration-controllers", None, &step("rollback2")).is_empty());
    // Not migrating: ZooKeeper, and KRaft without spec.zookeeper.
    for name in ["step0", "step1", "step4"] {
        assert!(
            findings("kraft-migration-controllers", None, &step(name)).is_empty(),
            "{name}"
        );
    }
}

#[test]
fn migration_versions_not_aligned_or_below_3_7() {
    // The seed's step 2: Kafka 3.9.2, inter.broker.protocol.version '3.9', no metadataVersion: clean.
    assert!(findings("kraft-migration-versions", None, &step("step2")).is_empty());
    // A protocol version behind the Kafka version: Strimzi refuses the migration.
    let behind = with("step2", |o| {
        set(
            kafka(o),
            "/spec/kafka/config/inter.broker.protocol.version",
            json!("3.8"),
        )
    });
    let got = findings("kraft-migration-versions", None, &behind);
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert_eq!(got[0].object, KAFKA);
    assert_eq!(got[0].path, "spec.kafka.config[inter.broker.protocol.version]");
    assert!(
        got[0].message.contains("at 3.8 while the others are at 3.9"),
        "{}",
        got[0].message
    );
    // Kafka below 3.7.0 (every setting aligned with it).
    let old = with("step2", |o| {
        let k = kafka(o);
        set(k, "/spec/kafka/version", json!("3.6.2"));
        set(
            k,
            "/spec/kafka/config/inter.broker.protocol.version",
            json!("3.6"),
        );
    });
    let got = findings("kraft-migration-versions", None, &old);
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert_eq!(got[0].path, "spec.kafka.version");
    // Before `migration` (step 1) the same settings are not this rule's business.
    let before = with("step1", |o| {
        set(
            kafka(o),
            "/spec/kafka/config/inter.broker.protocol.version",
            json!("3.8"),
        )
    });
    assert!(findings("kraft-migration-versions", None, &before).is_empty());
}

#[test]
fn enabled_without_migration() {
    for (from, base) in [("step1", "from (none)"), ("rollback3", "from disabled")] {
        let to = with(from, |o| annotate(o, "enabled"));
        let got = findings("kraft-migration-skipped", Some(&step(from)), &to);
        assert_eq!(got.len(), 1, "{from}: {}", text(got.clone()));
        assert_eq!(got[0].path, "metadata.annotations[strimzi.io/kraft]");
        assert!(got[0].message.contains(base), "{}", got[0].message);
    }
    let after_rollback = with("rollback1", |o| annotate(o, "enabled"));
    let got = findings(
        "kraft-migration-skipped",
        Some(&step("rollback1")),
        &after_rollback,
    );
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert!(got[0].message.contains("after rollback"), "{}", got[0].message);
    // Upper case is Strimzi's too (it lower-cases the value).
    let upper = with("step1", |o| annotate(o, "ENABLED"));
    assert_eq!(
        findings("kraft-migration-skipped", Some(&step("step1")), &upper).len(),
        1
    );
}

#[test]
fn zookeeper_removed_before_kraft() {
    let drop_zk = |o: &mut Vec<Value>| remove(kafka(o), "/spec/zookeeper");
    // While migrating.
    let got = findings(
        "kraft-migration-zookeeper-removed-early",
        Some(&step("step2")),
        &with("step2", drop_zk),
    );
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert_eq!(
        (got[0].object.as_str(), got[0].path.as_str()),
        (KAFKA, "spec.zookeeper")
    );
    assert!(got[0].message.contains("not on KRaft"), "{}", got[0].message);
    // In the commit that sets enabled.
    let got = findings(
        "kraft-migration-zookeeper-removed-early",
        Some(&step("step2")),
        &with("step3", drop_zk),
    );
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert!(
        got[0].message.contains("same change that sets"),
        "{}",
        got[0].message
    );
    // Together with the annotation.
    let got = findings(
        "kraft-migration-zookeeper-removed-early",
        Some(&step("step3")),
        &with("step4", |o| {
            remove(kafka(o), "/metadata/annotations/strimzi.io~1kraft")
        }),
    );
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert!(got[0].message.contains("drops"), "{}", got[0].message);
    // On a ZooKeeper cluster.
    let got = findings(
        "kraft-migration-zookeeper-removed-early",
        Some(&step("step0")),
        &with("step0", drop_zk),
    );
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
}

#[test]
fn controller_pool_removed_while_migrating() {
    let no_pool = |o: &mut Vec<Value>| without(o, "KafkaNodePool", "controller");
    for (from, to) in [
        ("step2", with("step2", no_pool)),
        ("step3", with("step3", no_pool)),
    ] {
        let got = findings("kraft-migration-controller-pool-removed", Some(&step(from)), &to);
        assert_eq!(got.len(), 1, "{from}: {}", text(got.clone()));
        assert_eq!(got[0].object, "KafkaNodePool/kafka-prod/controller");
        assert_eq!(got[0].path, "");
    }
    // Removed in the commit that sets rollback: too early.
    let got = findings(
        "kraft-migration-controller-pool-removed",
        Some(&step("step2")),
        &step("rollback2"),
    );
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert!(
        got[0].message.contains("same change that sets rollback"),
        "{}",
        got[0].message
    );
    // After rollback took effect: the documented step.
    assert!(
        findings(
            "kraft-migration-controller-pool-removed",
            Some(&step("rollback1")),
            &step("rollback2")
        )
        .is_empty()
    );
}

#[test]
fn rollback_not_from_migration() {
    let got = findings(
        "kraft-migration-rollback-order",
        Some(&step("step1")),
        &with("step1", |o| annotate(o, "rollback")),
    );
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert_eq!(got[0].path, "metadata.annotations[strimzi.io/kraft]");
    assert!(
        got[0].message.contains("no migration to roll back"),
        "{}",
        got[0].message
    );
    // disabled straight after migration.
    let got = findings(
        "kraft-migration-rollback-order",
        Some(&step("step2")),
        &with("step2", |o| annotate(o, "disabled")),
    );
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert!(got[0].message.contains("without rollback"), "{}", got[0].message);
    // rollback from migration and disabled from rollback are the documented way back.
    assert!(
        findings(
            "kraft-migration-rollback-order",
            Some(&step("step2")),
            &step("rollback1")
        )
        .is_empty()
    );
    assert!(
        findings(
            "kraft-migration-rollback-order",
            Some(&step("rollback2")),
            &step("rollback3")
        )
        .is_empty()
    );
}

#[test]
fn enabled_is_final() {
    for value in ["migration", "rollback", "disabled"] {
        let got = findings(
            "kraft-migration-enabled-is-final",
            Some(&step("step3")),
            &with("step3", |o| annotate(o, value)),
        );
        assert_eq!(got.len(), 1, "{value}: {}", text(got.clone()));
        assert!(
            got[0].message.contains(&format!("to {value}:")),
            "{}",
            got[0].message
        );
    }
    // Dropped while spec.zookeeper is still there (PreKRaft would stall).
    let got = findings(
        "kraft-migration-enabled-is-final",
        Some(&step("step3")),
        &with("step3", |o| {
            remove(kafka(o), "/metadata/annotations/strimzi.io~1kraft")
        }),
    );
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    // Dropped after the migration: fine.
    let done = with("step4", |o| {
        remove(kafka(o), "/metadata/annotations/strimzi.io~1kraft")
    });
    assert!(findings("kraft-migration-enabled-is-final", Some(&step("step4")), &done).is_empty());
}

#[test]
fn zookeeper_components_removed_before_kraft() {
    // zoo-entrance (Deployment, Service, NetworkPolicy) and zk-exporter (Deployment, Service) in the
    // commit that sets enabled.
    let pruned = with("step3", |o| {
        for kind in ["Deployment", "Service"] {
            without(o, kind, "zoo-entrance");
            without(o, kind, "zk-exporter");
        }
        without(o, "NetworkPolicy", "zoo-entrance");
    });
    let got = findings(
        "kraft-migration-zookeeper-components-removed",
        Some(&step("step2")),
        &pruned,
    );
    let mut objects: Vec<&str> = got.iter().map(|f| f.object.as_str()).collect();
    objects.sort();
    assert_eq!(
        objects,
        [
            "Deployment/kafka-prod/zk-exporter",
            "Deployment/kafka-prod/zoo-entrance",
            "NetworkPolicy/kafka-prod/zoo-entrance",
            "Service/kafka-prod/zk-exporter",
            "Service/kafka-prod/zoo-entrance",
        ],
        "{}",
        text(got.clone())
    );
    let why = |object: &str| {
        got.iter()
            .find(|f| f.object == object)
            .map(|f| f.message.clone())
            .unwrap_or_default()
    };
    assert!(why("Deployment/kafka-prod/zoo-entrance").contains("its name"));
    assert!(
        why("Service/kafka-prod/zk-exporter").contains("selects Deployment/kafka-prod/zk-exporter"),
        "{}",
        why("Service/kafka-prod/zk-exporter")
    );
    assert!(
        why("NetworkPolicy/kafka-prod/zoo-entrance").contains("ZooKeeper pods of Kafka/kafka-prod/main"),
        "{}",
        why("NetworkPolicy/kafka-prod/zoo-entrance")
    );
    // The ZooKeeper key of the shared metrics ConfigMap.
    let key_gone = with("step3", |o| {
        remove(
            object(o, "ConfigMap", "kafka-metrics"),
            "/data/zookeeper-metrics-config.yml",
        )
    });
    let got = findings(
        "kraft-migration-zookeeper-components-removed",
        Some(&step("step2")),
        &key_gone,
    );
    assert_eq!(got.len(), 1, "{}", text(got.clone()));
    assert_eq!(got[0].object, "ConfigMap/kafka-prod/kafka-metrics");
    assert_eq!(got[0].path, "data[zookeeper-metrics-config.yml]");
    // Removing zk-exporter from a cluster that stays on ZooKeeper is no migration step.
    let decommissioned = with("step1", |o| {
        without(o, "Deployment", "zk-exporter");
        without(o, "Service", "zk-exporter");
    });
    assert!(
        findings(
            "kraft-migration-zookeeper-components-removed",
            Some(&step("step1")),
            &decommissioned
        )
        .is_empty()
    );
    // But in the commit that starts the migration it is.
    let starting = with("step2", |o| without(o, "Deployment", "zk-exporter"));
    assert_eq!(
        findings(
            "kraft-migration-zookeeper-components-removed",
            Some(&step("step1")),
            &starting
        )
        .len(),
        1
    );
}

/// Commits one fixture as `clusters/prod-eu-west-1/objects.yaml` of a git repository.
fn commit_step(repo: &Path, name: &str) {
    let dir = repo.join("clusters").join(CLUSTER);
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = common::repo_root()
        .join("tests/fixtures/migration")
        .join(format!("{name}.yaml"));
    std::fs::copy(&fixture, dir.join("objects.yaml")).unwrap();
    std::fs::write(dir.join("kustomization.yaml"), "resources:\n- objects.yaml\n").unwrap();
    common::git(repo, &["add", "."]);
    common::git(repo, &["commit", "-qm", name]);
}

/// `kgitops validate --from HEAD~1 --to HEAD` on the repository: exit code and JSON report.
fn validate_last_commit(repo: &Path) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_kgitops"))
        .arg("validate")
        .arg("--repo")
        .arg(repo)
        .arg("--crds")
        .arg(crd_dir())
        .args([
            "--from",
            "HEAD~1",
            "--to",
            "HEAD",
            "--cluster",
            CLUSTER,
            "--output",
            "json",
        ])
        .output()
        .expect("kgitops runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), report)
}

/// The PR check end to end: each commit of the path passes `validate --from --to` on a real git
/// repository (exit 0), a commit that skips a step fails it (exit 1) with the rule's id.
#[test]
fn validate_from_to_follows_the_path_and_refuses_a_skip() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    common::git(repo, &["init", "-q", "-b", "main"]);
    commit_step(repo, "step0");
    for name in &PATH[1..] {
        commit_step(repo, name);
        let (code, report) = validate_last_commit(repo);
        assert_eq!(code, 0, "{name}: {report:#}");
        assert_eq!(report["errors"], 0, "{name}: {report:#}");
    }
    // Back to step 2, then straight to step 4: enabled and ZooKeeper's removal in one commit.
    commit_step(repo, "step2");
    commit_step(repo, "step4");
    let (code, report) = validate_last_commit(repo);
    assert_eq!(code, 1, "{report:#}");
    let mut rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule"].as_str())
        .collect();
    rules.sort();
    rules.dedup();
    assert_eq!(
        rules,
        [
            "kraft-migration-zookeeper-components-removed",
            "kraft-migration-zookeeper-removed-early"
        ],
        "{report:#}"
    );
}
