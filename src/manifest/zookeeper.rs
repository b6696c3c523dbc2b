//! What only serves a Kafka's ZooKeeper among the objects a platform repository deploys beside its
//! Strimzi resources (zoo-entrance, a ZooKeeper exporter, the ZooKeeper metrics ConfigMap): one
//! reading for the migration rules of `validate` (removed before KRaft?) and the migration gates of
//! the plan (may prune delete it now?), which must agree. Strimzi's own ZooKeeper objects are not in
//! git. The revision-wide part (Services and NetworkPolicies selecting these workloads' pods) is the
//! migration rules', which see a whole revision.

use serde_json::Value;

/// A name of something that only exists for ZooKeeper: it contains `zookeeper` or `zoo-entrance`,
/// or has a `zk` word (`zk-exporter`).
pub fn zookeeper_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("zookeeper")
        || name.contains("zoo-entrance")
        || name.split(['-', '.', '_', '/']).any(|w| w == "zk")
}

/// A value (image, argument, environment value) that names ZooKeeper or zoo-entrance.
pub fn mentions_zookeeper(value: &str) -> bool {
    let value = value.to_ascii_lowercase();
    value.contains("zookeeper") || value.contains("zoo-entrance")
}

/// Why a workload only serves ZooKeeper, if it does: by its name, a container image, or a container
/// argument or environment value naming ZooKeeper (a connect string to `<cluster>-zookeeper-client`
/// or to zoo-entrance).
pub fn zookeeper_workload(w: &Value) -> Option<String> {
    let name = w.pointer("/metadata/name").and_then(Value::as_str)?;
    if zookeeper_name(name) {
        return Some("its name".into());
    }
    let containers = w.pointer("/spec/template/spec/containers")?.as_array()?;
    for c in containers {
        if let Some(image) = c
            .get("image")
            .and_then(Value::as_str)
            .filter(|i| mentions_zookeeper(i))
        {
            return Some(format!("its image {image}"));
        }
        if let Some(arg) = ["command", "args"]
            .iter()
            .filter_map(|f| c.get(*f).and_then(Value::as_array))
            .flatten()
            .filter_map(Value::as_str)
            .find(|a| mentions_zookeeper(a))
        {
            return Some(format!("it connects to ZooKeeper: {arg}"));
        }
        // An environment value may carry credentials: only its name is quoted.
        if let Some(var) = c
            .get("env")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| {
                e.get("value")
                    .and_then(Value::as_str)
                    .is_some_and(mentions_zookeeper)
            })
            .find_map(|e| e.get("name").and_then(Value::as_str))
        {
            return Some(format!("it connects to ZooKeeper: environment variable {var}"));
        }
    }
    None
}

/// The name of the ConfigMap a Kafka component's metrics config refers to
/// (`spec.<component>.metricsConfig.valueFrom.configMapKeyRef.name`).
pub fn metrics_config_map<'v>(kafka: &'v Value, component: &str) -> Option<&'v str> {
    kafka
        .get("spec")?
        .get(component)?
        .pointer("/metricsConfig/valueFrom/configMapKeyRef/name")?
        .as_str()
}

/// Why `obj`, on its own, only serves the ZooKeeper of `kafka` (an object of its namespace), if it
/// does: a ZooKeeper workload ([`zookeeper_workload`]), a ZooKeeper name ([`zookeeper_name`]) or
/// `app.kubernetes.io/name` label, or the ConfigMap `spec.zookeeper.metricsConfig` names when
/// `spec.kafka.metricsConfig` does not name it too.
pub fn zookeeper_only_object(obj: &Value, kafka: &Value) -> Option<String> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    if ["Deployment", "StatefulSet", "DaemonSet"].contains(&kind)
        && let Some(why) = zookeeper_workload(obj)
    {
        return Some(why);
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if zookeeper_name(name) {
        return Some("its name".into());
    }
    if obj
        .pointer("/metadata/labels/app.kubernetes.io~1name")
        .and_then(Value::as_str)
        .is_some_and(zookeeper_name)
    {
        return Some("its app.kubernetes.io/name label".into());
    }
    let core = obj.get("apiVersion").and_then(Value::as_str) == Some("v1");
    (core
        && kind == "ConfigMap"
        && metrics_config_map(kafka, "zookeeper") == Some(name)
        && metrics_config_map(kafka, "kafka") != Some(name))
    .then(|| "spec.zookeeper.metricsConfig names it".to_string())
}
