//! Release-aware validation: each rule that depends on the cluster's Strimzi release, on both API
//! generations — `v1beta2` on 0.45.2 and on 0.51.0, `v1` on 0.51.0 and on 1.2.0 (fixtures under
//! tests/fixtures/release/, the release stated by an annotation or by the operator Deployment) —
//! plus the upstream 1.2.0 examples judged as a Strimzi maintainer would.
//!
//! The release CRDs and examples are read from `KGITOPS_SHARED` (the directory holding
//! `strimzi-crds*/` and `strimzi-examples-1.2.0/`), else `../shared` next to the repository.

mod common;
mod validate_support;

use std::path::PathBuf;

use kgitops::manifest::yaml::{Limits, parse_documents};
use kgitops::validate::rules::Snapshot;
use kgitops::validate::rules::release::{self, Version};
use kgitops::validate::{Finding, Schemas, check_rules, validate_cluster};
use serde_json::{Value, json};
use validate_support::{remove, set, shared, text, yaml};

/// One fixture: a cluster of one API generation on one release.
struct Gen {
    file: &'static str,
    release: &'static str,
    api: &'static str,
    /// The CRD directory of the release under the shared directory.
    crds: &'static str,
}

const V1BETA2_045: Gen = Gen {
    file: "v1beta2-0.45.2.yaml",
    release: "0.45.2",
    api: "v1beta2",
    crds: "strimzi-crds",
};
const V1BETA2_051: Gen = Gen {
    file: "v1beta2-0.51.0.yaml",
    release: "0.51.0",
    api: "v1beta2",
    crds: "strimzi-crds-0.51.0",
};
const V1_051: Gen = Gen {
    file: "v1-0.51.0.yaml",
    release: "0.51.0",
    api: "v1",
    crds: "strimzi-crds-0.51.0",
};
const V1_120: Gen = Gen {
    file: "v1-1.2.0.yaml",
    release: "1.2.0",
    api: "v1",
    crds: "strimzi-crds-1.2.0",
};
const GENS: [&Gen; 4] = [&V1BETA2_045, &V1BETA2_051, &V1_051, &V1_120];

impl Gen {
    fn objects(&self) -> Vec<Value> {
        let path = common::repo_root().join("tests/fixtures/release").join(self.file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        yaml(&text)
    }

    fn schemas(&self) -> Schemas {
        let mut schemas = Schemas::new().expect("embedded schema");
        schemas.load_crds(&shared(self.crds)).expect("release CRDs load");
        schemas
    }

    fn name(&self) -> String {
        format!("{} on {}", self.api, self.release)
    }
}

/// The first object of `kind` in a render.
fn of_kind<'a>(objects: &'a mut [Value], kind: &str) -> &'a mut Value {
    objects
        .iter_mut()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the render"))
}

fn kafka(objects: &mut [Value]) -> &mut Value {
    of_kind(objects, "Kafka")
}

/// The fixture with `f` applied.
fn changed(g: &Gen, f: impl FnOnce(&mut Vec<Value>)) -> Vec<Value> {
    let mut objects = g.objects();
    f(&mut objects);
    objects
}

fn findings(rule: &str, objects: &[Value]) -> Vec<Finding> {
    validate_support::rule_findings(rule, None, objects)
}

fn assert_passes(rule: &str, g: &Gen, objects: &[Value]) {
    let found = findings(rule, objects);
    assert!(
        found.is_empty(),
        "{rule} should pass for {}:\n{}",
        g.name(),
        text(found)
    );
}

/// The findings' text; asserts there are some and that each names the release judged against.
fn fails(rule: &str, g: &Gen, objects: &[Value]) -> String {
    let found = findings(rule, objects);
    assert!(!found.is_empty(), "{rule} should fail for {}", g.name());
    text(found)
}

/// Moves a fixture to another release: the operator image tag, or the annotation.
fn on_release(objects: &mut [Value], to: &str) {
    for o in objects.iter_mut() {
        if o["kind"] == "Deployment" {
            set(
                o,
                "/spec/template/spec/containers/0/image",
                json!(format!("quay.io/strimzi/operator:{to}")),
            );
        }
        if o["kind"] == "Kafka"
            && o.pointer("/metadata/annotations/kgitops.io~1strimzi-release")
                .is_some()
        {
            set(o, "/metadata/annotations/kgitops.io~1strimzi-release", json!(to));
        }
    }
}

#[test]
fn every_fixture_is_clean_against_its_release() {
    for g in GENS {
        let objects = g.objects();
        let findings = validate_cluster(&g.schemas(), "dev", None, &objects);
        assert!(findings.is_empty(), "{}:\n{}", g.name(), text(findings));
    }
}

#[test]
fn the_release_is_read_from_the_annotation_or_the_operator() {
    for g in GENS {
        let objects = g.objects();
        let snap = Snapshot::new(&objects);
        let declared = release::release_of(&snap, Some(&snap.kafkas[0])).expect("release");
        assert_eq!(declared.release, g.release, "{}", g.name());
        assert_eq!(declared.table.map(|t| t.release), Some(g.release));
        let by_operator = objects.iter().any(|o| o["kind"] == "Deployment");
        assert_eq!(
            matches!(declared.source, release::Source::Operator { .. }),
            by_operator,
            "{}",
            g.name()
        );
        // Objects labelled with the cluster are judged by the same release.
        let user = objects.iter().find(|o| o["kind"] == "KafkaUser").unwrap();
        assert_eq!(
            release::release_for_object(&snap, user).unwrap().release,
            g.release
        );
    }
    // Nothing in the render says: unknown, and the release rules stay silent.
    let mut objects = V1BETA2_045.objects();
    remove(kafka(&mut objects), "/metadata/annotations");
    set(kafka(&mut objects), "/spec/kafka/version", json!("2.8.0"));
    let snap = Snapshot::new(&objects);
    assert_eq!(release::release_of(&snap, Some(&snap.kafkas[0])), None);
    assert_eq!(check_rules("dev", None, &objects), vec![]);
}

#[test]
fn kafka_version_unsupported() {
    let rule = "kafka-version-unsupported";
    let mut out = String::new();
    for g in GENS {
        assert_passes(rule, g, &g.objects());
        // Unset: the release's default applies.
        assert_passes(rule, g, &changed(g, |o| remove(kafka(o), "/spec/kafka/version")));
        out += &fails(
            rule,
            g,
            &changed(g, |o| set(kafka(o), "/spec/kafka/version", json!("3.7.1"))),
        );
    }
    // Every release's own versions pass; the neighbours' are named.
    for g in GENS {
        let table = release::table(g.release).unwrap();
        for k in &table.kafka {
            assert_passes(
                rule,
                g,
                &changed(g, |o| set(kafka(o), "/spec/kafka/version", json!(k.version))),
            );
        }
    }
    out += &fails(
        rule,
        &V1BETA2_045,
        &changed(&V1BETA2_045, |o| {
            set(kafka(o), "/spec/kafka/version", json!("4.3.1"))
        }),
    );
    out += &fails(
        rule,
        &V1_120,
        &changed(&V1_120, |o| {
            set(kafka(o), "/spec/kafka/version", json!("4.2.0-custom"))
        }),
    );
    insta::assert_snapshot!(out);
}

#[test]
fn kafka_metadata_version_invalid() {
    let rule = "kafka-metadata-version-invalid";
    for g in GENS {
        assert_passes(rule, g, &g.objects());
    }
    // ZooKeeper mode ignores metadataVersion: nothing to judge on the 0.45 ZooKeeper cluster.
    let zk = changed(&V1BETA2_045, |o| {
        set(kafka(o), "/spec/kafka/metadataVersion", json!("4.3.1"))
    });
    assert_passes(rule, &V1BETA2_045, &zk);
    // The same cluster in KRaft mode (0.45's strimzi.io/kraft) is judged.
    let kraft_045 = |mv: &str| {
        changed(&V1BETA2_045, |o| {
            let k = kafka(o);
            set(k, "/metadata/annotations/strimzi.io~1kraft", json!("enabled"));
            set(k, "/spec/kafka/metadataVersion", json!(mv));
        })
    };
    assert_passes(rule, &V1BETA2_045, &kraft_045("3.9-IV0"));
    assert_passes(rule, &V1BETA2_045, &kraft_045("3.3-IV0"));
    let mut out = fails(rule, &V1BETA2_045, &kraft_045("3.2-IV0"));
    out += &fails(rule, &V1BETA2_045, &kraft_045("4.0-IV1"));
    for g in [&V1BETA2_051, &V1_051, &V1_120] {
        let with = |mv: &str| changed(g, |o| set(kafka(o), "/spec/kafka/metadataVersion", json!(mv)));
        out += &fails(rule, g, &with("4.2.0"));
        out += &fails(rule, g, &with("3.3-IV2"));
        assert_passes(rule, g, &with("3.3-IV3"));
        assert_passes(rule, g, &with("4.1-IV0"));
    }
    out += &fails(
        rule,
        &V1_051,
        &changed(&V1_051, |o| {
            set(kafka(o), "/spec/kafka/metadataVersion", json!("4.3-IV0"))
        }),
    );
    // 1.2.0's file names 4.3-IV0 (the newest) and 4.2-IV1: higher feature levels are unknown.
    out += &fails(
        rule,
        &V1_120,
        &changed(&V1_120, |o| {
            set(kafka(o), "/spec/kafka/metadataVersion", json!("4.3-IV1"))
        }),
    );
    out += &fails(
        rule,
        &V1_120,
        &changed(&V1_120, |o| {
            set(kafka(o), "/spec/kafka/metadataVersion", json!("4.4"))
        }),
    );
    insta::assert_snapshot!(out);
}

#[test]
fn kafka_metadata_version_above_kafka() {
    let rule = "kafka-metadata-version-above-kafka";
    for g in GENS {
        assert_passes(rule, g, &g.objects());
    }
    let zk = changed(&V1BETA2_045, |o| {
        set(kafka(o), "/spec/kafka/version", json!("3.8.1"));
        set(kafka(o), "/spec/kafka/metadataVersion", json!("3.9-IV0"));
    });
    assert_passes(rule, &V1BETA2_045, &zk);
    let mut kraft = zk.clone();
    set(
        kafka(&mut kraft),
        "/metadata/annotations/strimzi.io~1kraft",
        json!("enabled"),
    );
    let mut out = fails(rule, &V1BETA2_045, &kraft);
    for g in [&V1BETA2_051, &V1_051] {
        out += &fails(
            rule,
            g,
            &changed(g, |o| {
                set(kafka(o), "/spec/kafka/version", json!("4.1.1"));
                set(kafka(o), "/spec/kafka/metadataVersion", json!("4.2"));
            }),
        );
    }
    out += &fails(
        rule,
        &V1_120,
        &changed(&V1_120, |o| set(kafka(o), "/spec/kafka/version", json!("4.2.1"))),
    );
    // Unset version: the release default (4.3.1 on 1.2.0) is what metadataVersion is compared to.
    assert_passes(
        rule,
        &V1_120,
        &changed(&V1_120, |o| remove(kafka(o), "/spec/kafka/version")),
    );
    insta::assert_snapshot!(out);
}

#[test]
fn kafka_metadata_version_behind() {
    let rule = "kafka-metadata-version-behind";
    for g in GENS {
        assert_passes(rule, g, &g.objects());
    }
    let mut out = String::new();
    for g in [&V1BETA2_051, &V1_051] {
        out += &fails(
            rule,
            g,
            &changed(g, |o| {
                set(kafka(o), "/spec/kafka/metadataVersion", json!("4.1-IV1"))
            }),
        );
    }
    out += &fails(
        rule,
        &V1_120,
        &changed(&V1_120, |o| {
            set(kafka(o), "/spec/kafka/metadataVersion", json!("4.2-IV1"))
        }),
    );
    // Same MAJOR.MINOR, lower feature level: Strimzi compares MAJOR.MINOR only.
    assert_passes(
        rule,
        &V1_120,
        &changed(&V1_120, |o| {
            set(kafka(o), "/spec/kafka/metadataVersion", json!("4.3"))
        }),
    );
    assert_passes(
        rule,
        &V1BETA2_045,
        &changed(&V1BETA2_045, |o| {
            set(kafka(o), "/spec/kafka/metadataVersion", json!("3.8"))
        }),
    );
    insta::assert_snapshot!(out);
}

#[test]
fn kafka_kraft_legacy_version_config() {
    let rule = "kafka-kraft-legacy-version-config";
    // The 0.45 ZooKeeper fixture sets inter.broker.protocol.version, which ZooKeeper mode uses.
    for g in GENS {
        assert_passes(rule, g, &g.objects());
    }
    let mut out = fails(
        rule,
        &V1BETA2_045,
        &changed(&V1BETA2_045, |o| {
            set(
                kafka(o),
                "/metadata/annotations/strimzi.io~1kraft",
                json!("enabled"),
            )
        }),
    );
    for g in [&V1BETA2_051, &V1_051, &V1_120] {
        out += &fails(
            rule,
            g,
            &changed(g, |o| {
                set(
                    kafka(o),
                    "/spec/kafka/config/inter.broker.protocol.version",
                    json!("4.0"),
                );
                set(
                    kafka(o),
                    "/spec/kafka/config/log.message.format.version",
                    json!("3.0"),
                );
            }),
        );
    }
    insta::assert_snapshot!(out);
}

#[test]
fn strimzi_api_version_not_served() {
    let rule = "strimzi-api-version-not-served";
    for g in GENS {
        assert_passes(rule, g, &g.objects());
    }
    // Both v1beta2 fixtures on 1.0.0 / 1.2.0: every Strimzi object is refused.
    let mut out = String::new();
    for (g, to) in [(&V1BETA2_045, "1.0.0"), (&V1BETA2_051, "1.2.0")] {
        let objects = changed(g, |o| on_release(o, to));
        let found = findings(rule, &objects);
        let strimzi = objects
            .iter()
            .filter(|o| o["apiVersion"].as_str().unwrap().starts_with("kafka.strimzi.io/"))
            .count();
        assert_eq!(found.len(), strimzi, "{}", text(found));
        out += &text(
            found
                .into_iter()
                .filter(|f| f.object.starts_with("Kafka/"))
                .collect(),
        );
    }
    // v1 before 0.49.0.
    for g in [&V1_051, &V1_120] {
        out += &text(
            findings(rule, &changed(g, |o| on_release(o, "0.48.0")))
                .into_iter()
                .filter(|f| f.object.starts_with("KafkaUser/"))
                .collect(),
        );
    }
    // KafkaMirrorMaker: served on 0.45, gone from 0.46.
    let mm = json!({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaMirrorMaker",
        "metadata": {"name": "mm", "namespace": "kafka"}, "spec": {"replicas": 1}});
    let with_mm = |g: &Gen| changed(g, |o| o.push(mm.clone()));
    assert_passes(rule, &V1BETA2_045, &with_mm(&V1BETA2_045));
    out += &fails(rule, &V1BETA2_051, &with_mm(&V1BETA2_051));
    insta::assert_snapshot!(out);
}

#[test]
fn strimzi_v1_removed_field() {
    let rule = "strimzi-v1-removed-field";
    for g in GENS {
        assert_passes(rule, g, &g.objects());
    }
    // The v1beta2 ZooKeeper cluster uses spec.zookeeper and spec.kafka.replicas/storage: fine on
    // 0.45, an error once the release is 1.0.0 (it cannot be converted).
    let mut out = fails(
        rule,
        &V1BETA2_045,
        &changed(&V1BETA2_045, |o| on_release(o, "1.0.0")),
    );
    let broken = |o: &mut Vec<Value>| {
        let k = kafka(o);
        set(k, "/spec/zookeeper", json!({"replicas": 3}));
        set(
            k,
            "/spec/kafka/authorization",
            json!({"type": "opa", "url": "http://opa:8181"}),
        );
        set(
            k,
            "/spec/kafka/listeners/0/authentication",
            json!({"type": "oauth"}),
        );
        set(of_kind(o, "KafkaConnector"), "/spec/pause", json!(true));
        // The 0.45 ZooKeeper fixture has no pools.
        if let Some(pool) = o.iter_mut().find(|p| p["kind"] == "KafkaNodePool") {
            set(pool, "/spec/storage/volumes/0/overrides", json!([]));
        }
        set(
            of_kind(o, "KafkaUser"),
            "/spec/authorization/acls/0",
            json!({"resource": {"type": "topic", "name": "orders"}, "operation": "Read"}),
        );
    };
    // On v1 objects, on 0.51 and on 1.2: every one.
    for g in [&V1_051, &V1_120] {
        let found = findings(rule, &changed(g, broken));
        assert_eq!(found.len(), 6, "{}: {}", g.name(), text(found));
        out += &text(found);
    }
    // A v1beta2 cluster on 0.51 serves v1beta2: only the KafkaUser ACL `operation` is refused (the
    // User Operator reads v1 since 0.49); the rest are deprecation warnings.
    let found = findings(rule, &changed(&V1BETA2_051, broken));
    assert_eq!(found.len(), 1, "{}", text(found));
    assert_eq!(found[0].path, "spec.authorization.acls[0].operation");
    out += &text(found);
    // On 0.45 the same v1beta2 objects are fine (only the ZooKeeper cluster's own fields).
    assert_passes(rule, &V1BETA2_045, &changed(&V1BETA2_045, broken));
    insta::assert_snapshot!(out);
}

#[test]
fn strimzi_deprecated_field() {
    let rule = "strimzi-deprecated-field";
    for g in GENS {
        assert_passes(rule, g, &g.objects());
    }
    let deprecated = |o: &mut Vec<Value>| {
        set(kafka(o), "/spec/kafka/template/statefulset", json!({}));
        set(of_kind(o, "KafkaConnector"), "/spec/pause", json!(false));
    };
    // v1beta2 on 0.45 (v1 not there yet): nothing; v1beta2 on 0.51: warnings; v1: errors instead.
    assert_passes(rule, &V1BETA2_045, &changed(&V1BETA2_045, deprecated));
    let found = findings(rule, &changed(&V1BETA2_051, deprecated));
    assert_eq!(found.len(), 2, "{}", text(found));
    for g in [&V1_051, &V1_120] {
        assert_passes(rule, g, &changed(g, deprecated));
    }
    insta::assert_snapshot!(text(found));
}

#[test]
fn strimzi_release_unknown() {
    let rule = "strimzi-release-unknown";
    for g in GENS {
        assert_passes(rule, g, &g.objects());
    }
    let mut out = fails(
        rule,
        &V1BETA2_045,
        &changed(&V1BETA2_045, |o| on_release(o, "0.44.0")),
    );
    out += &fails(rule, &V1_120, &changed(&V1_120, |o| on_release(o, "latest")));
    // With an unknown release the release rules stay silent, even for a version no release has.
    let objects = changed(&V1_120, |o| {
        on_release(o, "latest");
        set(kafka(o), "/spec/kafka/version", json!("9.9.9"));
    });
    let rules: Vec<String> = check_rules("dev", None, &objects)
        .into_iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(rules, ["strimzi-release-unknown"]);
    insta::assert_snapshot!(out);
}

#[test]
fn strimzi_release_conflict() {
    let rule = "strimzi-release-conflict";
    for g in GENS {
        assert_passes(rule, g, &g.objects());
    }
    let objects = changed(&V1_120, |o| {
        set(
            kafka(o),
            "/metadata/annotations/kgitops.io~1strimzi-release",
            json!("0.51.0"),
        )
    });
    let mut out = fails(rule, &V1_120, &objects);
    // The annotation wins for the Kafka itself.
    let snap = Snapshot::new(&objects);
    assert_eq!(
        release::release_of(&snap, Some(&snap.kafkas[0]))
            .unwrap()
            .version(),
        Some(Version(0, 51, 0))
    );
    let mut two = V1_120.objects();
    let mut second = of_kind(&mut two, "Deployment").clone();
    set(
        &mut second,
        "/metadata/name",
        json!("strimzi-cluster-operator-old"),
    );
    set(
        &mut second,
        "/spec/template/spec/containers/0/image",
        json!("quay.io/strimzi/operator:0.51.0"),
    );
    two.push(second);
    out += &fails(rule, &V1_120, &two);
    insta::assert_snapshot!(out);
}

/// The rules that existed before node pools keep working on `v1` objects: brokers come from the
/// broker pools, storage changes are read per pool.
#[test]
fn existing_rules_read_v1_objects() {
    for g in [&V1_051, &V1_120] {
        let two_brokers = changed(g, |o| {
            let pool = o.iter_mut().find(|p| p["metadata"]["name"] == "broker").unwrap();
            set(pool, "/spec/replicas", json!(2));
        });
        let found = findings("kafka-rf-above-brokers", &two_brokers);
        assert_eq!(found.len(), 3, "{}: {}", g.name(), text(found));
        assert!(
            found[0].message.contains("KafkaNodePool spec.replicas (broker)"),
            "{}",
            found[0].message
        );
        let base = g.objects();
        let shrunk = changed(g, |o| {
            let pool = o.iter_mut().find(|p| p["metadata"]["name"] == "broker").unwrap();
            set(pool, "/spec/storage/volumes/0/size", json!("50Gi"));
        });
        let found: Vec<Finding> = check_rules("dev", Some(&base), &shrunk)
            .into_iter()
            .filter(|f| f.rule == "kafka-storage-shrink")
            .collect();
        assert_eq!(found.len(), 1, "{}", text(found));
        assert_eq!(found[0].object, "KafkaNodePool/kafka/broker");
    }
}

/// The upstream Strimzi 1.2.0 examples, read from the reference data (never copied), each file a
/// render with the 1.2.0 operator Deployment added, against the 1.2.0 CRDs: the exact findings a
/// Strimzi maintainer expects.
#[test]
fn upstream_1_2_0_examples() {
    let dir = shared("strimzi-examples-1.2.0");
    let operator = V1_120
        .objects()
        .into_iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap();
    let schemas = V1_120.schemas();
    let mut files = Vec::new();
    collect_yaml(&dir, &mut files);
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    let mut out = String::new();
    let mut kafkas = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.strip_prefix(&dir).unwrap().display().to_string();
        let mut objects = parse_documents(&text, &name, &Limits::DEFAULT).expect("example parses");
        objects.push(operator.clone());
        // Not vacuous: every Kafka of the examples is judged by 1.2.0, with its brokers read from
        // the pools.
        let snap = Snapshot::new(&objects);
        for k in &snap.kafkas {
            let declared = release::release_of(&snap, Some(k)).expect("release");
            assert_eq!(declared.release, "1.2.0", "{name}");
            kafkas += 1;
        }
        let findings = validate_cluster(&schemas, "examples", None, &objects);
        for f in findings {
            out += &format!(
                "{name}: {}[{}] {} {}\n  {}\n",
                f.severity.as_str(),
                f.rule,
                f.object,
                f.path,
                f.message
            );
        }
    }
    assert!(kafkas >= 9, "{kafkas} Kafkas in the examples");
    // The examples are what users start from and run without warning conditions: the Kafka and
    // metadata versions are 1.2.0's default pair, every object is v1, the replication settings fit
    // the pools. A maintainer expects no finding from the release rules (and none from the others).
    insta::assert_snapshot!(out);
}

/// The same examples turned into the mistakes of an upgrade: a Kafka version of the old release, and
/// the v1beta2 API the 1.2.0 operator no longer serves.
#[test]
fn upstream_1_2_0_examples_with_upgrade_mistakes() {
    let path = shared("strimzi-examples-1.2.0").join("kafka/kafka-persistent.yaml");
    let source = std::fs::read_to_string(&path).unwrap();
    let mut objects = parse_documents(&source, "kafka-persistent.yaml", &Limits::DEFAULT).unwrap();
    objects.extend(V1_120.objects().into_iter().filter(|o| o["kind"] == "Deployment"));
    for o in objects
        .iter_mut()
        .filter(|o| o["apiVersion"] == "kafka.strimzi.io/v1")
    {
        set(o, "/apiVersion", json!("kafka.strimzi.io/v1beta2"));
    }
    set(kafka(&mut objects), "/spec/kafka/version", json!("3.9.2"));
    let mut rules: Vec<(String, String)> = check_rules("dev", None, &objects)
        .into_iter()
        .map(|f| (f.rule, f.object))
        .collect();
    rules.sort();
    let want = [
        ("kafka-version-unsupported", "Kafka/my-cluster"),
        ("strimzi-api-version-not-served", "Kafka/my-cluster"),
        ("strimzi-api-version-not-served", "KafkaNodePool/broker"),
        ("strimzi-api-version-not-served", "KafkaNodePool/controller"),
    ];
    assert_eq!(
        rules,
        want.map(|(r, o)| (r.to_string(), o.to_string())),
        "{}",
        text(check_rules("dev", None, &objects))
    );
}

fn collect_yaml(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_yaml(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
}
