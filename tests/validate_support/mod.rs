//! Shared by the `validate_*` integration tests (next to the harness `common`, which says where the
//! Strimzi CRDs are): the Strimzi examples, loading YAML, and the example platform render the rule
//! tests mutate.
#![allow(dead_code)]

use std::path::PathBuf;

use kgitops::manifest::yaml::{Limits, parse_documents};
use kgitops::validate::{Finding, RULES, Report, Schemas, check_rules};
use serde_json::{Value, json};

/// The Strimzi 0.45 CRDs the harness installs: `KGITOPS_TEST_CRDS`, else the vendored
/// `infrastructure/strimzi/0.45.2/`.
pub fn crd_dir() -> PathBuf {
    let path = crate::common::crds_path();
    assert!(
        path.exists(),
        "Strimzi CRDs not found at {} (set KGITOPS_TEST_CRDS to their directory)",
        path.display()
    );
    path
}

/// The Strimzi 0.45 examples: `KGITOPS_TEST_EXAMPLES`, else [`shared`]`("strimzi-examples")`.
pub fn examples_dir() -> PathBuf {
    let path = match std::env::var_os("KGITOPS_TEST_EXAMPLES") {
        Some(dir) if !dir.is_empty() => crate::common::repo_root().join(dir),
        _ => shared("strimzi-examples"),
    };
    assert!(
        path.is_dir(),
        "Strimzi examples not found at {} (set KGITOPS_TEST_EXAMPLES to their directory)",
        path.display()
    );
    path
}

/// A directory of the upstream reference data (`shared/`: CRDs of other releases, examples, version
/// files): `KGITOPS_SHARED/<name>`, else `shared/<name>` next to the repository or any parent of it
/// (a worktree's). Panics naming where it looked.
pub fn shared(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("KGITOPS_SHARED").filter(|d| !d.is_empty()) {
        let path = PathBuf::from(dir).join(name);
        assert!(path.is_dir(), "{} not found (KGITOPS_SHARED)", path.display());
        return path;
    }
    let root = crate::common::repo_root();
    root.ancestors()
        .skip(1)
        .map(|dir| dir.join("shared").join(name))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| panic!("no shared/{name} next to {} (set KGITOPS_SHARED)", root.display()))
}

/// Findings of one rule (which must exist) for a head render, and a base render for change rules.
pub fn rule_findings(rule: &str, from: Option<&[Value]>, to: &[Value]) -> Vec<Finding> {
    assert!(RULES.iter().any(|r| r.id == rule), "unknown rule {rule}");
    check_rules("dev", from, to)
        .into_iter()
        .filter(|f| f.rule == rule)
        .collect()
}

/// Built-in schemas plus the Strimzi CRDs.
pub fn strimzi_schemas() -> Schemas {
    let mut schemas = Schemas::new().expect("embedded schema");
    schemas.load_crds(&crd_dir()).expect("Strimzi CRDs load");
    assert!(
        schemas.knows("kafka.strimzi.io/v1beta2", "Kafka"),
        "no Kafka CRD in {}",
        crd_dir().display()
    );
    schemas
}

pub fn yaml(text: &str) -> Vec<Value> {
    parse_documents(text, "test.yaml", &Limits::DEFAULT).expect("test YAML parses")
}

pub fn example(name: &str) -> Vec<Value> {
    let path = examples_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_documents(&text, name, &Limits::DEFAULT).expect("example parses")
}

/// Findings as the text report prints them, for snapshots.
pub fn text(findings: Vec<Finding>) -> String {
    Report::new(vec!["dev".into()], findings).to_text()
}

/// One JMX NodePort Service for broker `i` of Kafka `main`.
pub fn jmx_service(i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("main-kafka-jmx-{i}"), "namespace": "kafka-dev"},
        "spec": {"type": "NodePort", "selector": {"strimzi.io/pod-name": format!("main-kafka-{i}")},
            "ports": [{"name": "jmx", "port": 9999, "targetPort": 9999, "protocol": "TCP"}]}})
}

/// A render of the example platform in namespace `kafka-dev` that every rule accepts: Kafka `main`
/// (3 brokers, ZooKeeper 3, annotated as running Strimzi 0.45.2), its metrics ConfigMap, one JMX
/// Service per broker, zoo-entrance.
pub fn platform() -> Vec<Value> {
    let mut objects = yaml(PLATFORM);
    objects.extend((0..3).map(jmx_service));
    objects
}

/// The object of `kind` named `name` in a render.
pub fn object<'a>(objects: &'a mut [Value], kind: &str, name: &str) -> &'a mut Value {
    objects
        .iter_mut()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind}/{name} in the render"))
}

/// The Kafka `main` of a render.
pub fn kafka(objects: &mut [Value]) -> &mut Value {
    object(objects, "Kafka", "main")
}

/// Sets the value at a JSON pointer, creating objects on the way (array elements must exist).
pub fn set(obj: &mut Value, pointer: &str, value: Value) {
    let mut cur = obj;
    for part in pointer.trim_start_matches('/').split('/') {
        let part = part.replace("~1", "/").replace("~0", "~");
        cur = match cur {
            Value::Array(items) => {
                let i: usize = part.parse().expect("array index");
                &mut items[i]
            }
            other => {
                if !other.is_object() {
                    *other = json!({});
                }
                other.as_object_mut().unwrap().entry(part).or_insert(Value::Null)
            }
        };
    }
    *cur = value;
}

/// Removes the value at a JSON pointer.
pub fn remove(obj: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    if let Some(Value::Object(map)) = obj.pointer_mut(parent) {
        map.remove(&key.replace("~1", "/"));
    }
}

const PLATFORM: &str = r#"
apiVersion: kafka.strimzi.io/v1beta2
kind: Kafka
metadata:
  name: main
  namespace: kafka-dev
  annotations:
    kgitops.io/strimzi-release: "0.45.2"
spec:
  kafka:
    version: 3.9.2
    replicas: 3
    listeners:
      - {name: plain, port: 9093, type: internal, tls: false}
      - {name: external, port: 9092, type: nodeport, tls: false}
    resources:
      requests: {memory: 16Gi, cpu: "4"}
      limits: {memory: 16Gi, cpu: "4"}
    jvmOptions:
      -Xms: 3072m
      -Xmx: 3072m
    jmxOptions: {}
    config:
      default.replication.factor: 2
      offsets.topic.replication.factor: 3
      transaction.state.log.replication.factor: 3
      transaction.state.log.min.isr: 2
      min.insync.replicas: 1
    storage:
      type: persistent-claim
      size: 100Gi
      deleteClaim: false
    metricsConfig:
      type: jmxPrometheusExporter
      valueFrom:
        configMapKeyRef: {name: kafka-metrics, key: kafka-metrics-config.yml}
  zookeeper:
    replicas: 3
    resources:
      limits: {memory: 2Gi}
    jvmOptions:
      -Xmx: 1g
    storage:
      type: persistent-claim
      size: 50Gi
      deleteClaim: false
    metricsConfig:
      type: jmxPrometheusExporter
      valueFrom:
        configMapKeyRef: {name: kafka-metrics, key: zookeeper-metrics-config.yml}
  entityOperator:
    topicOperator: {}
    userOperator: {}
  kafkaExporter: {}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: kafka-metrics
  namespace: kafka-dev
data:
  kafka-metrics-config.yml: |
    lowercaseOutputName: true
  zookeeper-metrics-config.yml: |
    lowercaseOutputName: true
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: zoo-entrance
  namespace: kafka-dev
spec:
  replicas: 1
  selector:
    matchLabels: {app: zoo-entrance}
  template:
    metadata:
      labels: {app: zoo-entrance}
    spec:
      containers:
        - name: zoo-entrance
          image: ghcr.io/scholzj/zoo-entrance:latest
          ports: [{containerPort: 2181, name: zoo}]
---
apiVersion: v1
kind: Service
metadata:
  name: zoo-entrance
  namespace: kafka-dev
spec:
  type: ClusterIP
  selector: {app: zoo-entrance}
  ports:
    - {name: zoo, port: 2181, targetPort: 2181, protocol: TCP}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: zk-exporter
  namespace: kafka-dev
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: zk-exporter}
  template:
    metadata:
      labels: {app.kubernetes.io/name: zk-exporter}
    spec:
      containers:
        - name: zk-exporter
          image: docker.io/dabealu/zookeeper-exporter:v0.1.13
---
apiVersion: v1
kind: Service
metadata:
  name: zk-exporter
  namespace: kafka-dev
spec:
  selector: {app.kubernetes.io/name: zk-exporter}
  ports:
    - {name: metrics, port: 9141}
"#;
