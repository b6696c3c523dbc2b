//! Every Kafka-aware rule of the table with a failing and a passing case, on the example platform
//! render; findings as insta snapshots of the text report.

mod common;
mod validate_support;

use kgitops::validate::{RULES, Report, Scope, check_change, check_rules};
use serde_json::{Value, json};
use validate_support::rule_findings as findings;
use validate_support::*;

fn assert_passes(rule: &str, from: Option<&[Value]>, to: &[Value]) {
    let found = findings(rule, from, to);
    assert!(found.is_empty(), "{rule} should pass:\n{}", text(found));
}

fn fails(rule: &str, from: Option<&[Value]>, to: &[Value]) -> String {
    let found = findings(rule, from, to);
    assert!(!found.is_empty(), "{rule} should fail");
    text(found)
}

fn changed(f: impl FnOnce(&mut Vec<Value>)) -> Vec<Value> {
    let mut objects = platform();
    f(&mut objects);
    objects
}

fn kafka_set(pointer: &str, value: Value) -> Vec<Value> {
    changed(|o| set(kafka(o), pointer, value))
}

#[test]
fn the_platform_passes_every_rule_alone_and_as_a_change() {
    let base = platform();
    let found = check_rules("dev", Some(&base), &base);
    assert!(found.is_empty(), "{}", text(found));
}

#[test]
fn every_rule_is_tested_here() {
    // Release-aware rules are tested per API generation in validate_release.rs, the node-pool rules
    // in validate_node_pools.rs (the controller-quorum ones in validate_controller_quorum.rs), the
    // CRD upgrade rules in crd_upgrade.rs, the ZooKeeper-to-KRaft migration rules in validate_migration.rs, the
    // upgrade-path rules in strimzi_path.rs, the repository rule sops-plaintext-secret in sops.rs.
    let source = concat!(
        include_str!("validate_rules.rs"),
        include_str!("validate_release.rs"),
        include_str!("validate_node_pools.rs"),
        include_str!("validate_controller_quorum.rs"),
        include_str!("crd_upgrade.rs"),
        include_str!("validate_migration.rs"),
        include_str!("strimzi_path.rs"),
        include_str!("sops.rs")
    );
    for rule in RULES.iter().filter(|r| r.scope != Scope::Schema) {
        assert!(
            source.contains(&format!("\"{}\"", rule.id)),
            "no test for {}",
            rule.id
        );
    }
}

#[test]
fn kafka_rf_above_brokers() {
    let rule = "kafka-rf-above-brokers";
    assert_passes(rule, None, &platform());
    // 2 brokers: the default RF 2 fits, the internal topics' RF 3 does not.
    let two = kafka_set("/spec/kafka/replicas", json!(2));
    // Unset internal-topic RFs count with Kafka's default of 3.
    let unset = changed(|o| {
        let k = kafka(o);
        set(k, "/spec/kafka/replicas", json!(1));
        set(
            k,
            "/spec/kafka/config",
            json!({"default.replication.factor": "1"}),
        );
    });
    insta::assert_snapshot!(format!(
        "{}{}",
        fails(rule, None, &two),
        fails(rule, None, &unset)
    ));
}

#[test]
fn kafka_min_isr_above_rf() {
    let rule = "kafka-min-isr-above-rf";
    assert_passes(rule, None, &platform());
    let bad = changed(|o| {
        let k = kafka(o);
        set(k, "/spec/kafka/config/min.insync.replicas", json!(3));
        set(k, "/spec/kafka/config/transaction.state.log.min.isr", json!(4));
    });
    insta::assert_snapshot!(fails(rule, None, &bad));
}

#[test]
fn kafka_min_isr_equals_rf() {
    let rule = "kafka-min-isr-equals-rf";
    assert_passes(rule, None, &platform());
    // RF 1 with min ISR 1 has no replication to lose: not reported.
    let single = kafka_set(
        "/spec/kafka/config",
        json!({"default.replication.factor": 1,
        "offsets.topic.replication.factor": 1, "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1, "min.insync.replicas": 1}),
    );
    assert_passes(rule, None, &single);
    let bad = kafka_set("/spec/kafka/config/min.insync.replicas", json!(2));
    insta::assert_snapshot!(fails(rule, None, &bad));
}

#[test]
fn kafka_version_unsupported() {
    let rule = "kafka-version-unsupported";
    assert_passes(rule, None, &platform());
    assert_passes(rule, None, &kafka_set("/spec/kafka/version", json!("3.8.0")));
    assert_passes(rule, None, &changed(|o| remove(kafka(o), "/spec/kafka/version")));
    insta::assert_snapshot!(fails(
        rule,
        None,
        &kafka_set("/spec/kafka/version", json!("3.7.1"))
    ));
}

#[test]
fn kafka_jvm_heap_above_limit() {
    let rule = "kafka-jvm-heap-above-limit";
    assert_passes(rule, None, &platform());
    // Just below the limit passes (the rule is about >=).
    assert_passes(
        rule,
        None,
        &kafka_set("/spec/kafka/jvmOptions/-Xmx", json!("16383m")),
    );
    let bad = changed(|o| {
        let k = kafka(o);
        set(k, "/spec/kafka/jvmOptions/-Xmx", json!("16g"));
        set(k, "/spec/zookeeper/jvmOptions/-Xmx", json!("3072m"));
    });
    insta::assert_snapshot!(fails(rule, None, &bad));
}

#[test]
fn kafka_jvm_xms_above_xmx() {
    let rule = "kafka-jvm-xms-above-xmx";
    assert_passes(rule, None, &platform());
    insta::assert_snapshot!(fails(
        rule,
        None,
        &kafka_set("/spec/kafka/jvmOptions/-Xms", json!("4g"))
    ));
}

#[test]
fn kafka_metrics_config_missing() {
    let rule = "kafka-metrics-config-missing";
    assert_passes(rule, None, &platform());
    // A configMapGenerator's hash suffix: the Kafka still names the plain ConfigMap.
    let hashed = changed(|o| {
        set(
            object(o, "ConfigMap", "kafka-metrics"),
            "/metadata/name",
            json!("kafka-metrics-5g2h8kk2c7"),
        )
    });
    let wrong_key = kafka_set(
        "/spec/zookeeper/metricsConfig/valueFrom/configMapKeyRef/key",
        json!("zookeeper-metrics.yml"),
    );
    // The ConfigMap in another namespace does not count.
    let other_ns = changed(|o| {
        set(
            object(o, "ConfigMap", "kafka-metrics"),
            "/metadata/namespace",
            json!("x"),
        )
    });
    insta::assert_snapshot!(format!(
        "{}{}{}",
        fails(rule, None, &hashed),
        fails(rule, None, &wrong_key),
        fails(rule, None, &other_ns)
    ));
}

#[test]
fn kafka_jmx_services() {
    let rule = "kafka-jmx-services";
    assert_passes(rule, None, &platform());
    // Without jmxOptions and without JMX Services there is nothing to check.
    let no_jmx = changed(|o| {
        o.retain(|x| {
            !x["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("main-kafka-jmx")
        });
        remove(kafka(o), "/spec/kafka/jmxOptions");
    });
    assert_passes(rule, None, &no_jmx);
    // Scaled to 4 brokers but the Services were not: broker 3 has none.
    let scaled_up = kafka_set("/spec/kafka/replicas", json!(4));
    // Scaled to 2 brokers: the Service of broker 2 selects nothing; and a duplicate for broker 0.
    let scaled_down = changed(|o| {
        set(kafka(o), "/spec/kafka/replicas", json!(2));
        let mut dup = jmx_service(0);
        set(&mut dup, "/metadata/name", json!("main-kafka-jmx-0-copy"));
        o.push(dup);
    });
    // jmxOptions on, no Service at all.
    let none = changed(|o| {
        o.retain(|x| {
            !x["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("main-kafka-jmx")
        })
    });
    insta::assert_snapshot!(format!(
        "{}{}{}",
        fails(rule, None, &scaled_up),
        fails(rule, None, &scaled_down),
        fails(rule, None, &none)
    ));
}

#[test]
fn zookeeper_loadbalancer_open() {
    let rule = "zookeeper-loadbalancer-open";
    assert_passes(rule, None, &platform());
    let lb = |ranges: Option<Value>| {
        changed(|o| {
            let svc = object(o, "Service", "zoo-entrance");
            set(svc, "/spec/type", json!("LoadBalancer"));
            if let Some(r) = ranges {
                set(svc, "/spec/loadBalancerSourceRanges", r);
            }
        })
    };
    assert_passes(rule, None, &lb(Some(json!(["10.0.0.0/8"]))));
    // A LoadBalancer for the brokers is not this rule's business.
    let brokers_lb = changed(|o| {
        o.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kafka-lb", "namespace": "kafka-dev"},
            "spec": {"type": "LoadBalancer", "selector": {"strimzi.io/name": "main-kafka"}, "ports": [{"port": 9092}]}}))
    });
    assert_passes(rule, None, &brokers_lb);
    // Nor one for the ZooKeeper exporter, which serves metrics only.
    let exporter_lb = changed(|o| {
        set(
            object(o, "Service", "zk-exporter"),
            "/spec/type",
            json!("LoadBalancer"),
        )
    });
    assert_passes(rule, None, &exporter_lb);
    // Strimzi's own ZooKeeper pods behind a LoadBalancer.
    let strimzi_zk = changed(|o| {
        o.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "zk-lb", "namespace": "kafka-dev"},
            "spec": {"type": "LoadBalancer", "selector": {"strimzi.io/name": "main-zookeeper"},
                "loadBalancerSourceRanges": [], "ports": [{"port": 2181}]}}))
    });
    insta::assert_snapshot!(format!(
        "{}{}",
        fails(rule, None, &lb(None)),
        fails(rule, None, &strimzi_zk)
    ));
}

#[test]
fn zookeeper_even_replicas() {
    let rule = "zookeeper-even-replicas";
    assert_passes(rule, None, &platform());
    let four = kafka_set("/spec/zookeeper/replicas", json!(4));
    // Already even in the base revision: still a warning, not the change error.
    assert!(findings("zookeeper-replicas-to-even", Some(&four), &four).is_empty());
    insta::assert_snapshot!(fails(rule, Some(&four), &four));
}

#[test]
fn zookeeper_replicas_to_even() {
    let rule = "zookeeper-replicas-to-even";
    let base = platform();
    assert_passes(
        rule,
        Some(&base),
        &kafka_set("/spec/zookeeper/replicas", json!(5)),
    );
    let two = kafka_set("/spec/zookeeper/replicas", json!(2));
    // The change owns it: no second, revision warning for the same field.
    assert!(findings("zookeeper-even-replicas", Some(&base), &two).is_empty());
    // Single-revision validation has no change to blame: the warning only.
    assert_passes(rule, None, &two);
    insta::assert_snapshot!(fails(rule, Some(&base), &two));
}

#[test]
fn kafka_broker_scale_down() {
    let rule = "kafka-broker-scale-down";
    let base = platform();
    assert_passes(rule, Some(&base), &kafka_set("/spec/kafka/replicas", json!(4)));
    insta::assert_snapshot!(fails(
        rule,
        Some(&base),
        &kafka_set("/spec/kafka/replicas", json!(1))
    ));
}

/// The platform with JBOD storage of two volumes.
fn jbod(volume1: Value) -> Vec<Value> {
    kafka_set(
        "/spec/kafka/storage",
        json!({"type": "jbod", "volumes": [
            {"id": 0, "type": "persistent-claim", "size": "100Gi", "class": "standard", "deleteClaim": false},
            volume1]}),
    )
}

#[test]
fn kafka_storage_shrink() {
    let rule = "kafka-storage-shrink";
    let base = platform();
    assert_passes(
        rule,
        Some(&base),
        &kafka_set("/spec/kafka/storage/size", json!("200Gi")),
    );
    // Same size written differently is no shrink.
    assert_passes(
        rule,
        Some(&base),
        &kafka_set("/spec/kafka/storage/size", json!("107374182400")),
    );
    let smaller = changed(|o| {
        let k = kafka(o);
        set(k, "/spec/kafka/storage/size", json!("50Gi"));
        set(k, "/spec/zookeeper/storage/size", json!("49Gi"));
    });
    let jbod_base = jbod(json!({"id": 1, "type": "persistent-claim", "size": "1Ti"}));
    // JBOD volumes match by id, whatever their order.
    let jbod_smaller = kafka_set(
        "/spec/kafka/storage",
        json!({"type": "jbod", "volumes": [
            {"id": 1, "type": "persistent-claim", "size": "500Gi"},
            {"id": 0, "type": "persistent-claim", "size": "100Gi", "class": "standard", "deleteClaim": false}]}),
    );
    insta::assert_snapshot!(format!(
        "{}{}",
        fails(rule, Some(&base), &smaller),
        fails(rule, Some(&jbod_base), &jbod_smaller)
    ));
}

#[test]
fn kafka_storage_type_change() {
    let rule = "kafka-storage-type-change";
    let base = platform();
    let jbod_base = jbod(json!({"id": 1, "type": "persistent-claim", "size": "1Ti"}));
    // Adding a JBOD volume is a supported change.
    let jbod_more = jbod(json!({"id": 1, "type": "persistent-claim", "size": "1Ti"}));
    assert_passes(rule, Some(&jbod_base), &jbod_more);
    let ephemeral = kafka_set("/spec/kafka/storage", json!({"type": "ephemeral"}));
    let volume_ephemeral = jbod(json!({"id": 1, "type": "ephemeral"}));
    insta::assert_snapshot!(format!(
        "{}{}",
        fails(rule, Some(&base), &ephemeral),
        fails(rule, Some(&jbod_base), &volume_ephemeral)
    ));
}

#[test]
fn kafka_storage_class_change() {
    let rule = "kafka-storage-class-change";
    let base = platform();
    assert_passes(
        rule,
        Some(&base),
        &kafka_set("/spec/kafka/storage/size", json!("200Gi")),
    );
    let classed = kafka_set("/spec/kafka/storage/class", json!("fast-ssd"));
    let jbod_base = jbod(json!({"id": 1, "type": "persistent-claim", "size": "1Ti", "class": "standard"}));
    let jbod_fast = jbod(json!({"id": 1, "type": "persistent-claim", "size": "1Ti", "class": "fast"}));
    insta::assert_snapshot!(format!(
        "{}{}",
        fails(rule, Some(&base), &classed),
        fails(rule, Some(&jbod_base), &jbod_fast)
    ));
}

#[test]
fn kafka_storage_delete_claim() {
    let rule = "kafka-storage-delete-claim";
    let base = platform();
    assert_passes(rule, None, &base);
    // deleteClaim means nothing on ephemeral storage.
    assert_passes(
        rule,
        None,
        &kafka_set(
            "/spec/kafka/storage",
            json!({"type": "ephemeral", "deleteClaim": true}),
        ),
    );
    let on = kafka_set("/spec/kafka/storage/deleteClaim", json!(true));
    let jbod_on = jbod(json!({"id": 1, "type": "persistent-claim", "size": "1Ti", "deleteClaim": true}));
    insta::assert_snapshot!(format!(
        "{}{}{}",
        fails(rule, None, &on),
        fails(rule, Some(&base), &on),
        fails(rule, Some(&jbod_on), &jbod_on)
    ));
}

#[test]
fn check_change_runs_only_the_change_rules() {
    let base = platform();
    let head = changed(|o| {
        let k = kafka(o);
        set(k, "/spec/kafka/replicas", json!(2));
        set(k, "/spec/kafka/storage/size", json!("10Gi"));
        set(k, "/spec/kafka/version", json!("2.8.0"));
    });
    let found = check_change("dev", &base, &head);
    let mut rules: Vec<&str> = found.iter().map(|f| f.rule.as_str()).collect();
    rules.sort();
    assert_eq!(rules, ["kafka-broker-scale-down", "kafka-storage-shrink"]);
    // The whole report of the same change, in the stable JSON form.
    let report = Report::new(vec!["dev".into()], check_rules("dev", Some(&base), &head));
    assert!(report.has_errors());
    insta::assert_snapshot!(report.to_json());
}
