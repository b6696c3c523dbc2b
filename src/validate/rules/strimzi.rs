//! What the rules need to know about Strimzi resources: the `Kafka` resource (`kafka.strimzi.io/v1beta2`
//! and `kafka.strimzi.io/v1`, read leniently: schema problems are the schema rules' business; a rule
//! skips what it cannot read), the labels the operator puts on pods, and Kafka's defaults. Which
//! release a cluster runs and the Kafka versions it supports are [`super::release`]'s.

use serde_json::Value;

use super::node_pools::{NodePool, Role};
use super::release::Version;
use super::{Snapshot, namespace_of};
use crate::manifest::ResId;

/// The API group of the Strimzi resources (every kind but StrimziPodSet, which is `core.strimzi.io`).
pub(crate) const STRIMZI_GROUP: &str = "kafka.strimzi.io";

/// The API versions of the Strimzi resources the rules read: `v1beta2` (up to 0.51) and `v1` (from
/// 0.49); which one a release serves is the `strimzi-api-version-not-served` rule's business.
pub(crate) const KAFKA_API_VERSIONS: [&str; 2] = ["kafka.strimzi.io/v1beta2", "kafka.strimzi.io/v1"];

/// The version part of a `kafka.strimzi.io/<version>` object (`v1beta2`, `v1`, `v1alpha1`).
pub(crate) fn strimzi_version_of(obj: &Value) -> Option<&str> {
    obj.get("apiVersion")
        .and_then(Value::as_str)?
        .strip_prefix(STRIMZI_GROUP)?
        .strip_prefix('/')
}

/// True for an object of `kind` in one of [`KAFKA_API_VERSIONS`].
pub(crate) fn is_strimzi(obj: &Value, kind: &str) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some(kind)
        && obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|api| KAFKA_API_VERSIONS.contains(&api))
}

/// Kafka's broker defaults for the settings the rules compare (Kafka 3.x).
pub(crate) fn kafka_default(key: &str) -> Option<i64> {
    match key {
        "default.replication.factor" => Some(1),
        "offsets.topic.replication.factor" => Some(3),
        "transaction.state.log.replication.factor" => Some(3),
        "min.insync.replicas" => Some(1),
        "transaction.state.log.min.isr" => Some(2),
        _ => None,
    }
}

/// Where a Kafka cluster keeps its metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetadataMode {
    ZooKeeper,
    /// A ZooKeeper-to-KRaft migration (or its rollback) in progress.
    Migration,
    KRaft,
}

/// The `strimzi.io/kraft` annotation of a ZooKeeper-era (`v1beta2`) Kafka: where the operator
/// should take the cluster's metadata (Strimzi 0.40–0.45, `KafkaMetadataStateManager`). Strimzi
/// compares the value lower-cased and reads a missing annotation as `disabled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KraftAnnotation {
    /// `disabled` or no annotation: stay on (or go back to) ZooKeeper.
    Disabled,
    /// Start or continue the ZooKeeper-to-KRaft migration.
    Migration,
    /// Finalise the migration (or a KRaft cluster).
    Enabled,
    /// Roll a migration back from KRaftPostMigration.
    Rollback,
    /// Any other value: Strimzi matches none of the four and acts as for `disabled`.
    Other,
}

/// The annotation that drives the ZooKeeper-to-KRaft migration.
pub(crate) const KRAFT_ANNOTATION: &str = "strimzi.io/kraft";

/// One `Kafka` resource of a render.
#[derive(Debug)]
pub struct KafkaCr<'a> {
    pub obj: &'a Value,
    /// `Kafka/kafka-dev/main`.
    pub display: String,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    /// The Strimzi release the render says this Kafka runs ([`super::release::release_of`]), when
    /// kgitops knows it; set by [`Snapshot::new`], which sees the whole render.
    pub(crate) release: Option<Version>,
}

/// A broker count and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Brokers {
    pub count: i64,
    /// `spec.kafka.replicas`, or `KafkaNodePool spec.replicas (pools a, b)`.
    pub source: String,
}

impl<'a> KafkaCr<'a> {
    pub(crate) fn from_object(obj: &'a Value) -> Option<KafkaCr<'a>> {
        if !is_strimzi(obj, "Kafka") {
            return None;
        }
        let id = ResId::of(obj).ok()?;
        Some(KafkaCr {
            obj,
            display: id.to_string(),
            name: obj.pointer("/metadata/name").and_then(Value::as_str)?,
            namespace: namespace_of(obj),
            release: None,
        })
    }

    /// A value under `spec` by JSON pointer (`/kafka/replicas`).
    pub(crate) fn spec(&self, pointer: &str) -> Option<&'a Value> {
        self.obj.get("spec")?.pointer(pointer)
    }

    /// The `kafka.strimzi.io` version of the resource: `v1beta2` or `v1`.
    pub(crate) fn api_version(&self) -> &'a str {
        strimzi_version_of(self.obj).unwrap_or("")
    }

    /// An annotation of the Kafka resource.
    pub(crate) fn annotation(&self, key: &str) -> Option<&'a str> {
        self.obj.get("metadata")?.get("annotations")?.get(key)?.as_str()
    }

    /// True when the cluster runs in KRaft mode: by its resource ([`Self::metadata_mode`]), or by a
    /// release from 0.46 on (ZooKeeper removed).
    pub(crate) fn is_kraft(&self, release: Option<Version>) -> bool {
        self.metadata_mode() == MetadataMode::KRaft
            || release.is_some_and(|r| r >= super::release::KRAFT_ONLY_SINCE)
    }

    /// True when brokers (and controllers) come from KafkaNodePools; the one place that decides it,
    /// by the resource and the cluster's release ([`Self::release`]):
    /// - always for `v1`, which has nowhere else for them;
    /// - always from Strimzi 0.46 (ZooKeeper removed): 0.48 made node pools the default and ignores
    ///   the `strimzi.io/node-pools` annotation (and `spec.zookeeper`, a v1beta2 left-over); 0.46 and
    ///   0.47 refuse a Kafka without the annotation ("supports only KRaft-based Apache Kafka
    ///   clusters"), so pools are all it can run on;
    /// - before 0.46, or when the release is unknown: with the `strimzi.io/node-pools: enabled`
    ///   annotation, or for a Kafka without `spec.zookeeper` (KRaft, which needs node pools).
    pub(crate) fn uses_node_pools(&self) -> bool {
        self.api_version() == "v1"
            || self
                .release
                .is_some_and(|r| r >= super::release::KRAFT_ONLY_SINCE)
            || self
                .annotation("strimzi.io/node-pools")
                .is_some_and(|v| v.eq_ignore_ascii_case("enabled"))
            || self.spec("/zookeeper").is_none()
    }

    /// The `strimzi.io/kraft` annotation as Strimzi reads it.
    pub(crate) fn kraft_annotation(&self) -> KraftAnnotation {
        match self
            .annotation(KRAFT_ANNOTATION)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("disabled") => KraftAnnotation::Disabled,
            Some("migration") => KraftAnnotation::Migration,
            Some("enabled") => KraftAnnotation::Enabled,
            Some("rollback") => KraftAnnotation::Rollback,
            Some(_) => KraftAnnotation::Other,
        }
    }

    /// Where the cluster keeps its metadata, by its resource alone: KRaft for `v1` and for a Kafka
    /// without `spec.zookeeper` or with `strimzi.io/kraft: enabled`; a migration between them
    /// (`strimzi.io/kraft: migration|rollback`, Strimzi 0.40–0.45); else ZooKeeper.
    pub(crate) fn metadata_mode(&self) -> MetadataMode {
        if self.api_version() == "v1" || self.spec("/zookeeper").is_none() {
            return MetadataMode::KRaft;
        }
        match self.kraft_annotation() {
            KraftAnnotation::Enabled => MetadataMode::KRaft,
            KraftAnnotation::Migration | KraftAnnotation::Rollback => MetadataMode::Migration,
            KraftAnnotation::Disabled | KraftAnnotation::Other => MetadataMode::ZooKeeper,
        }
    }

    /// The KafkaNodePools of this cluster (its namespace, `strimzi.io/cluster: <name>`) in the order
    /// the operator lists them (by name), which decides their node IDs.
    pub(crate) fn pools<'s>(&self, snapshot: &'s Snapshot<'a>) -> Vec<&'s NodePool<'a>> {
        let mut pools: Vec<&NodePool<'a>> = snapshot.pools.iter().filter(|p| p.belongs_to(self)).collect();
        pools.sort_by_key(|p| p.name);
        pools
    }

    /// The KafkaNodePools of this cluster with the controller role.
    pub(crate) fn controller_pools<'s>(&self, snapshot: &'s Snapshot<'a>) -> Vec<&'s NodePool<'a>> {
        self.pools(snapshot)
            .into_iter()
            .filter(|p| p.has_role(Role::Controller))
            .collect()
    }

    /// The KafkaNodePools of this cluster with the broker role.
    pub(crate) fn broker_pools<'s>(&self, snapshot: &'s Snapshot<'a>) -> Vec<&'s NodePool<'a>> {
        self.pools(snapshot)
            .into_iter()
            .filter(|p| p.has_role(Role::Broker))
            .collect()
    }

    /// How many brokers the cluster has, if the render says.
    pub(crate) fn brokers(&self, snapshot: &Snapshot<'a>) -> Option<Brokers> {
        if self.uses_node_pools() {
            let pools = self.broker_pools(snapshot);
            if pools.is_empty() {
                return None;
            }
            let mut count = 0;
            let mut names = Vec::new();
            for pool in pools {
                count += pool.replicas()?;
                names.push(pool.name);
            }
            return Some(Brokers {
                count,
                source: format!("KafkaNodePool spec.replicas ({})", names.join(", ")),
            });
        }
        Some(Brokers {
            count: int(self.spec("/kafka/replicas")?)?,
            source: "spec.kafka.replicas".into(),
        })
    }

    /// A broker config integer (`spec.kafka.config` holds numbers or numeric strings), or Kafka's
    /// default; the flag says whether it was set explicitly.
    pub(crate) fn config_or_default(&self, key: &str) -> Option<(i64, bool)> {
        match self.spec("/kafka/config").and_then(|c| c.get(key)) {
            Some(v) => int(v).map(|n| (n, true)),
            None => kafka_default(key).map(|n| (n, false)),
        }
    }

    /// The labels Strimzi puts on this cluster's ZooKeeper pods (Strimzi 0.45 `Labels`), without
    /// the per-pod ones; `pod` adds `strimzi.io/pod-name` for pod `i`.
    pub(crate) fn zookeeper_pod_labels(&self, pod: Option<i64>) -> Vec<(String, String)> {
        let name = self.name;
        let mut labels = vec![
            ("strimzi.io/cluster".to_string(), name.to_string()),
            ("strimzi.io/kind".into(), "Kafka".into()),
            ("strimzi.io/name".into(), format!("{name}-zookeeper")),
            ("strimzi.io/component-type".into(), "zookeeper".into()),
            ("strimzi.io/controller".into(), "strimzipodset".into()),
            ("strimzi.io/controller-name".into(), format!("{name}-zookeeper")),
            ("app.kubernetes.io/name".into(), "zookeeper".into()),
            ("app.kubernetes.io/instance".into(), name.to_string()),
            ("app.kubernetes.io/part-of".into(), format!("strimzi-{name}")),
            (
                "app.kubernetes.io/managed-by".into(),
                "strimzi-cluster-operator".into(),
            ),
        ];
        if let Some(i) = pod {
            labels.push(("strimzi.io/pod-name".into(), format!("{name}-zookeeper-{i}")));
            labels.push((
                "statefulset.kubernetes.io/pod-name".into(),
                format!("{name}-zookeeper-{i}"),
            ));
        }
        labels
    }
}

/// An integer from a number (`3`, `3.0`) or a numeric string (`"3"`).
pub(crate) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn brokers_from_replicas_or_node_pools() {
        let objs = vec![
            json!({"apiVersion": KAFKA_API_VERSIONS[0], "kind": "Kafka",
                "metadata": {"name": "main", "namespace": "k", "annotations": {"strimzi.io/node-pools": "enabled"}},
                "spec": {"kafka": {"replicas": 1, "config": {"min.insync.replicas": "2"}}}}),
            json!({"apiVersion": KAFKA_API_VERSIONS[0], "kind": "KafkaNodePool",
                "metadata": {"name": "a", "namespace": "k", "labels": {"strimzi.io/cluster": "main"}},
                "spec": {"replicas": 2, "roles": ["broker"]}}),
            json!({"apiVersion": KAFKA_API_VERSIONS[0], "kind": "KafkaNodePool",
                "metadata": {"name": "b", "namespace": "k", "labels": {"strimzi.io/cluster": "main"}},
                "spec": {"replicas": 3, "roles": ["controller", "broker"]}}),
            json!({"apiVersion": KAFKA_API_VERSIONS[0], "kind": "KafkaNodePool",
                "metadata": {"name": "c", "namespace": "k", "labels": {"strimzi.io/cluster": "main"}},
                "spec": {"replicas": 3, "roles": ["controller"]}}),
        ];
        let snap = Snapshot::new(&objs);
        let kafka = &snap.kafkas[0];
        assert_eq!(kafka.display, "Kafka/k/main");
        let brokers = kafka.brokers(&snap).unwrap();
        assert_eq!(brokers.count, 5);
        assert_eq!(brokers.source, "KafkaNodePool spec.replicas (a, b)");
        assert_eq!(kafka.config_or_default("min.insync.replicas"), Some((2, true)));
        assert_eq!(
            kafka.config_or_default("offsets.topic.replication.factor"),
            Some((3, false))
        );
    }

    /// A v1beta2 Kafka with `spec.zookeeper` and `spec.kafka.replicas`, and the annotations given.
    fn zookeeper_kafka(annotations: Value) -> Value {
        json!({"apiVersion": KAFKA_API_VERSIONS[0], "kind": "Kafka",
            "metadata": {"name": "main", "namespace": "k", "annotations": annotations},
            "spec": {"kafka": {"replicas": 3}, "zookeeper": {"replicas": 3}}})
    }

    fn uses_node_pools(objects: &[Value]) -> bool {
        Snapshot::new(objects).kafkas[0].uses_node_pools()
    }

    #[test]
    fn node_pools_by_resource_and_release() {
        let release = |r: &str| json!({"kgitops.io/strimzi-release": r});
        // Before 0.46 (or unknown): only with the annotation.
        assert!(!uses_node_pools(&[zookeeper_kafka(json!({}))]));
        assert!(!uses_node_pools(&[zookeeper_kafka(release("0.45.2"))]));
        assert!(uses_node_pools(&[zookeeper_kafka(
            json!({"kgitops.io/strimzi-release": "0.45.2", "strimzi.io/node-pools": "Enabled"})
        )]));
        // A release kgitops has no data for decides nothing.
        assert!(!uses_node_pools(&[zookeeper_kafka(release("latest"))]));
        // From 0.46 always: 0.46/0.47 refuse a Kafka without pools, 0.48+ ignores the annotation
        // and spec.zookeeper.
        for r in ["0.46.0", "0.47.0", "0.48.0", "0.51.0"] {
            assert!(uses_node_pools(&[zookeeper_kafka(release(r))]), "{r}");
            assert!(
                uses_node_pools(&[zookeeper_kafka(
                    json!({"kgitops.io/strimzi-release": r, "strimzi.io/node-pools": "disabled"})
                )]),
                "{r}"
            );
        }
        // The release may come from the operator Deployment of the render instead.
        let operator = |tag: &str| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "strimzi-cluster-operator", "namespace": "strimzi"},
                "spec": {"template": {"spec": {"containers": [
                    {"name": "op", "image": format!("quay.io/strimzi/operator:{tag}")}]}}}})
        };
        assert!(uses_node_pools(&[zookeeper_kafka(json!({})), operator("0.48.0")]));
        assert!(!uses_node_pools(&[
            zookeeper_kafka(json!({})),
            operator("0.45.2")
        ]));
        // By the resource alone: v1, and KRaft (no spec.zookeeper).
        let mut kraft = zookeeper_kafka(json!({}));
        kraft["spec"].as_object_mut().unwrap().remove("zookeeper");
        assert!(uses_node_pools(std::slice::from_ref(&kraft)));
        let mut v1 = zookeeper_kafka(json!({}));
        v1["apiVersion"] = json!(KAFKA_API_VERSIONS[1]);
        assert!(uses_node_pools(&[v1]));
        // Where it matters: brokers of a 0.48 cluster are its pools', not spec.kafka.replicas.
        let pool = json!({"apiVersion": KAFKA_API_VERSIONS[0], "kind": "KafkaNodePool",
            "metadata": {"name": "a", "namespace": "k", "labels": {"strimzi.io/cluster": "main"}},
            "spec": {"replicas": 5, "roles": ["broker"]}});
        for (r, count) in [("0.45.2", 3), ("0.48.0", 5)] {
            let objs = [zookeeper_kafka(release(r)), pool.clone()];
            let snap = Snapshot::new(&objs);
            assert_eq!(snap.kafkas[0].brokers(&snap).map(|b| b.count), Some(count), "{r}");
        }
    }
}
