//! Smoke tests that prove the test rig is a real Kubernetes apiserver with the real Strimzi CRDs:
//! storage round trips, CRD schema validation, server-side apply bookkeeping, RBAC and the version.

mod common;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::json;

fn kafka_api(ns: &common::TestNamespace) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("kafka.strimzi.io", "v1beta2", "Kafka");
    Api::namespaced_with(ns.client.clone(), &ns.name, &ApiResource::from_gvk(&gvk))
}

/// A small ZooKeeper-based Kafka that the Strimzi 0.45 schema accepts, with `replicas` as given.
fn kafka(name: &str, replicas: serde_json::Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "Kafka",
        "metadata": { "name": name },
        "spec": {
            "kafka": {
                "version": "3.9.0",
                "replicas": replicas,
                "listeners": [{ "name": "plain", "port": 9092, "type": "internal", "tls": false }],
                "storage": { "type": "ephemeral" }
            },
            "zookeeper": { "replicas": 3, "storage": { "type": "ephemeral" } }
        }
    }))
    .expect("a Kafka object")
}

#[tokio::test]
async fn configmap_create_read_delete() {
    let ns = common::namespace("smoke-configmap").await;
    let api: Api<ConfigMap> = ns.api();
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("settings".into());
    cm.data = Some(BTreeMap::from([("color".to_string(), "blue".to_string())]));

    let created = api.create(&PostParams::default(), &cm).await.expect("create");
    assert!(created.metadata.uid.is_some(), "the apiserver assigns a uid");

    let read = api.get("settings").await.expect("get");
    assert_eq!(read.data, cm.data);
    assert_eq!(read.metadata.namespace.as_deref(), Some(ns.name.as_str()));

    api.delete("settings", &DeleteParams::default())
        .await
        .expect("delete");
    match api.get_opt("settings").await.expect("get after delete") {
        None => {}
        Some(left) => panic!("ConfigMap still there after delete: {left:?}"),
    }
}

#[tokio::test]
async fn kafka_with_string_replicas_is_rejected_by_the_crd_schema() {
    let ns = common::namespace("smoke-kafka").await;
    let api = kafka_api(&ns);

    // The same object with an integer is accepted: the rejection below is about `replicas` alone.
    api.create(&PostParams::default(), &kafka("valid", json!(3)))
        .await
        .expect("a valid Kafka is accepted");

    let err = api
        .create(&PostParams::default(), &kafka("invalid", json!("three")))
        .await
        .expect_err("replicas: \"three\" must be rejected");
    let kube::Error::Api(status) = err else {
        panic!("expected an API error status, got {err:?}");
    };
    assert_eq!(status.code, 422, "{status:?}");
    assert_eq!(status.reason, "Invalid", "{status:?}");
    assert!(
        status.message.contains("spec.kafka.replicas") && status.message.contains("integer"),
        "message should name the field and the expected type: {}",
        status.message
    );
    assert!(
        api.get_opt("invalid").await.expect("get").is_none(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn server_side_apply_records_kgitops_in_managed_fields() {
    let ns = common::namespace("smoke-ssa").await;
    let api: Api<ConfigMap> = ns.api();
    let desired = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "applied" },
        "data": { "greeting": "hello" }
    });
    api.patch("applied", &PatchParams::apply("kgitops"), &Patch::Apply(&desired))
        .await
        .expect("server-side apply");

    let live = api.get("applied").await.expect("get");
    let managed = live.metadata.managed_fields.unwrap_or_default();
    let entry = managed
        .iter()
        .find(|entry| entry.manager.as_deref() == Some("kgitops"))
        .unwrap_or_else(|| panic!("no managedFields entry for kgitops: {managed:?}"));
    assert_eq!(entry.operation.as_deref(), Some("Apply"));
    let fields = &entry.fields_v1.as_ref().expect("fieldsV1").0;
    assert!(
        fields["f:data"]["f:greeting"].is_object(),
        "kgitops should own data.greeting: {fields}"
    );
}

#[tokio::test]
async fn rbac_is_enforced_for_other_users() {
    let control_plane = common::control_plane();
    let mut config = control_plane.config().await;
    config.auth_info.impersonate = Some("kgitops-smoke-nobody".to_string());
    let nobody = kube::Client::try_from(config).expect("client");
    let err = Api::<Namespace>::all(nobody)
        .list(&Default::default())
        .await
        .expect_err("a user without RBAC bindings must not list namespaces");
    let kube::Error::Api(status) = err else {
        panic!("expected an API error status, got {err:?}");
    };
    assert_eq!(status.code, 403, "{status:?}");
}

#[tokio::test]
async fn apiserver_is_the_pinned_kubernetes_minor() {
    let info = common::client()
        .await
        .apiserver_version()
        .await
        .expect("/version");
    // Must match the k8s-openapi feature in Cargo.toml (v1_36) and tests/controlplane/go.mod.
    assert_eq!(
        (info.major.as_str(), info.minor.as_str()),
        ("1", "36"),
        "{info:?}"
    );
}
