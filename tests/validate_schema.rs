//! Schema validation against the real Strimzi 0.45 CRDs and the embedded Kubernetes v1.36 schema:
//! the upstream examples are valid, broken variants name the path, built-in kinds are strict.

mod common;
mod validate_support;

use kgitops::validate::{Schemas, check_schemas, validate_cluster};
use serde_json::{Value, json};
use validate_support::*;

fn issues_of(schemas: &Schemas, objects: &[Value]) -> String {
    text(check_schemas(schemas, "dev", objects))
}

#[test]
fn strimzi_examples_are_valid() {
    let schemas = strimzi_schemas();
    for name in ["kafka-persistent.yaml", "kafka-metrics.yaml"] {
        let objects = example(name);
        assert!(!objects.is_empty());
        let findings = check_schemas(&schemas, "dev", &objects);
        assert!(findings.is_empty(), "{name}: {}", text(findings));
    }
}

#[test]
fn the_example_platform_is_valid_and_clean() {
    let schemas = strimzi_schemas();
    let findings = validate_cluster(&schemas, "dev", None, &platform());
    assert!(findings.is_empty(), "{}", text(findings));
}

#[test]
fn broken_kafka_variants_name_the_path() {
    let schemas = strimzi_schemas();
    let mut objects = example("kafka-persistent.yaml");
    let k = &mut objects[0];
    set(k, "/spec/kafka/replicas", json!("three"));
    set(k, "/spec/kafka/replicass", json!(3));
    set(k, "/metadata/labelz", json!({"a": "b"}));
    remove(k, "/spec/zookeeper/storage");
    set(k, "/spec/kafka/listeners/0/type", json!("internall"));
    set(k, "/spec/kafka/resources", json!({"limits": {"memory": "16 GB"}}));
    set(k, "/spec/kafka/jvmOptions", json!({"-Xmx": "3 GB"}));
    set(k, "/spec/kafka/storage/volumes/0/id", json!(-1));
    insta::assert_snapshot!("broken_kafka", issues_of(&schemas, &objects));
}

#[test]
fn replicas_three_alone_is_the_one_error() {
    let schemas = strimzi_schemas();
    let mut objects = example("kafka-persistent.yaml");
    set(&mut objects[0], "/spec/kafka/replicas", json!("three"));
    let findings = check_schemas(&schemas, "dev", &objects);
    assert_eq!(findings.len(), 1, "{}", text(findings.clone()));
    assert_eq!(findings[0].rule, "schema-type");
    assert_eq!(findings[0].object, "Kafka/my-cluster");
    assert_eq!(findings[0].path, "spec.kafka.replicas");
    assert_eq!(findings[0].message, "expected integer, got string \"three\"");
}

#[test]
fn built_in_kinds_are_strict() {
    let schemas = Schemas::new().unwrap();
    let objects = yaml(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: dev, labels: {tier: 3}}
spec:
  replicas: two
  selector: {matchLabels: {app: web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 1}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx
          imagePullPolice: Always
          resources: {limits: {memory: 1GB, cpu: 2}}
          env: [{name: A, value: 1}, {name: B, value: b}, {name: A, value: a}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: dev}
spec:
  type: ClusterIP
  selector: {app: web}
  ports:
    - {port: "80", targetPort: http}
    - {targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: twice, namespace: dev}
spec:
  ports:
    - {name: a, port: 9999, protocol: TCP}
    - {name: b, port: 9999, protocol: TCP}
    - {name: c, port: 9999, protocol: UDP}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: dev}
data: {password: not-base64!}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: dev}
spec:
  rules:
    - host: web.example
      http:
        paths:
          - path: /
            backend: {service: {name: web, port: {number: 80}}}
---
apiVersion: extensions/v1beta1
kind: Ingress
metadata: {name: old, namespace: dev}
---
apiVersion: kafka.strimzi.io/v1beta2
kind: Kafka
metadata: {name: main, namespace: dev}
---
kind: ConfigMap
metadata: {name: nameless-version}
"#,
    );
    let report = issues_of(&schemas, &objects);
    assert!(
        !report.contains("not-base64"),
        "Secret values must never be printed: {report}"
    );
    insta::assert_snapshot!("built_in_kinds", report);
}

#[test]
fn crds_in_the_render_define_their_kinds() {
    let schemas = Schemas::new().unwrap();
    let crd = yaml(&std::fs::read_to_string(crd_dir().join("043-Crd-kafkatopic.yaml")).unwrap());
    let topic = json!({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic",
        "metadata": {"name": "orders", "namespace": "dev", "labels": {"strimzi.io/cluster": "main"}},
        "spec": {"partitions": "twelve", "replicas": 3}});
    // Without the CRD the topic is an unknown kind; with the CRD in the render it is validated.
    let alone = check_schemas(&schemas, "dev", std::slice::from_ref(&topic));
    assert_eq!(alone.len(), 1);
    assert_eq!(alone[0].rule, "schema-unknown-kind");
    let mut objects = crd.clone();
    objects.push(topic);
    let findings = check_schemas(&schemas, "dev", &objects);
    assert_eq!(findings.len(), 1, "{}", text(findings.clone()));
    assert_eq!(findings[0].path, "spec.partitions");
    assert_eq!(findings[0].rule, "schema-type");
    // A CRD whose schema cannot compile is a finding on the CRD, not a failure of the run.
    let mut broken = crd[0].clone();
    set(
        &mut broken,
        "/spec/versions/0/schema/openAPIV3Schema/type",
        json!("thing"),
    );
    let findings = check_schemas(&schemas, "dev", &[broken]);
    assert_eq!(findings.len(), 1, "{}", text(findings.clone()));
    assert_eq!(findings[0].rule, "schema-invalid-crd");
    assert_eq!(
        findings[0].object,
        "CustomResourceDefinition/kafkatopics.kafka.strimzi.io"
    );
    assert!(
        findings[0].message.contains("unsupported type \"thing\""),
        "{}",
        findings[0].message
    );
}

#[test]
fn crd_paths_that_hold_no_crds_are_errors() {
    let mut schemas = Schemas::new().unwrap();
    let missing = std::path::Path::new("/nonexistent/crds");
    let err = schemas.load_crds(missing).unwrap_err();
    assert!(err.to_string().starts_with("/nonexistent/crds: "), "{err}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    let err = schemas.load_crds(dir.path()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("no CustomResourceDefinition (apiextensions.k8s.io/v1) found"),
        "{err}"
    );
    std::fs::write(dir.path().join("bad.yaml"), "a: [1\n").unwrap();
    let err = schemas.load_crds(dir.path()).unwrap_err();
    assert!(err.to_string().contains("bad.yaml"), "{err}");
    // A single file works as well as a directory.
    let n = schemas.load_crds(&crd_dir().join("040-Crd-kafka.yaml")).unwrap();
    assert_eq!(n, 1);
    assert!(schemas.knows("kafka.strimzi.io/v1beta2", "Kafka"));
}
