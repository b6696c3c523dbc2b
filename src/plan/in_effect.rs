//! "Not in effect": parts of a Strimzi resource's spec that the operator accepted into the resource
//! but did not carry out (or carried out with a warning), read from the `status` the operator
//! wrote. Strimzi then leaves only a `Warning` condition while the resource stays `Ready`: git and
//! the cluster silently disagree. This module turns those conditions into [`NotInEffect`] entries
//! naming the object and field concerned, with Strimzi's reason and message verbatim.
//!
//! It is part of the plan (desired vs live): [`crate::apply::plan`] reads every live object
//! anyway, so `diff --live` and the daemon's drift check get these for free from
//! [`Plan::not_in_effect`](super::Plan::not_in_effect); `apply --wait` reads them from the
//! objects it polls ([`crate::apply::health`]).
//!
//! Two effects ([`Effect`]):
//! - [`Effect::Ignored`]: the operator did not carry out this part of the spec: storage changes it
//!   does not allow (`KafkaStorage`, `ZooKeeperStorage`), a node-pool scale-down or role change it
//!   reverted (`ScaleDownPreventionCheck`), PVC resizes the storage class cannot do
//!   (`PvcResizingWarning`), a metadata version it could not set (`MetadataUpdateFailed`), a
//!   quotas plugin configured twice (`QuotasPluginConflict`), fields it ignores
//!   (`UnusedReplicasConfiguration`, `UnusedStorageConfiguration`, `UnusedZooKeeperConfiguration`,
//!   `UnknownFields`), topic changes the topic operator refuses (`NotSupported`, `InvalidConfig`
//!   "is ignored"), and a KafkaNodePool whose status disagrees with its spec at its current
//!   generation.
//! - [`Effect::Warned`]: the spec is in effect, but Strimzi warns about it: the `KafkaSpecChecker`
//!   warnings (`KafkaDefaultReplicationFactor`, `KafkaMinInsyncReplicas`, `KafkaStorage` on a single
//!   ephemeral node, `KafkaKRaftControllerNodeCount`, `KafkaMetadataVersion`,
//!   `KafkaInterBrokerProtocolVersionInKRaft`, `KafkaLogMessageFormatVersionInKRaft`,
//!   `DeprecatedObjects`), `DeprecatedFields`, the ZooKeeper checker's warnings, and a topic config
//!   that may conflict with throttled rebalances.
//!
//! Conditions are read only when the operator has seen the object's current generation
//! (`status.observedGeneration == metadata.generation`): a warning about an older spec says
//! nothing about the one in git. Warning reasons not listed here are not reported as not in effect
//! (they stay visible as health warnings).
//!
//! The texts matched are Strimzi's own (0.45 to 1.2: `KafkaPool`, `KafkaClusterCreator`,
//! `PvcReconciler`, `KafkaSpecChecker`, `KRaftUtils`, `ZookeeperCluster`, `ValidationVisitor`,
//! `BatchingTopicController`); see docs/strimzi-health.md.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::ResId;

/// Whether the spec is in effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// Not in effect: the operator did not carry out this part of the spec.
    Ignored,
    /// In effect, with a warning from Strimzi.
    Warned,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Ignored => "not in effect",
            Effect::Warned => "Strimzi warns",
        })
    }
}

/// One part of a spec that is not in effect (or that Strimzi warns about). Holds no Secret value:
/// object names, field paths and Strimzi's messages only.
///
/// JSON, stable: `{"object": "KafkaNodePool/kafka-dev/brokers", "field": "spec.replicas",
/// "effect": "ignored" | "warned", "reason": "ScaleDownPreventionCheck", "message": "...",
/// "reported_by": "Kafka/kafka-dev/main"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NotInEffect {
    /// The object whose spec it is, `Kind/namespace/name`.
    pub object: String,
    /// The field path in that object (`spec.storage`), or what it concerns when Strimzi does not say.
    pub field: String,
    pub effect: Effect,
    /// Strimzi's condition reason, verbatim.
    pub reason: String,
    /// Strimzi's condition message, verbatim.
    pub message: String,
    /// The object whose status says so (a Kafka reports its node pools' storage and scale-down).
    pub reported_by: String,
}

impl NotInEffect {
    /// `KafkaNodePool/ns/brokers spec.replicas: ScaleDownPreventionCheck: Reverting ...`
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} {}: {}: {}",
            self.object, self.field, self.reason, self.message
        );
        if self.reported_by != self.object {
            line.push_str(&format!(" (reported by {})", self.reported_by));
        }
        line
    }
}

impl fmt::Display for NotInEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

/// The annotation that pauses reconciliation of a Strimzi resource.
pub const PAUSE_ANNOTATION: &str = "strimzi.io/pause-reconciliation";

/// Whether the object is a Strimzi resource (`kafka.strimzi.io`).
pub fn is_strimzi(id: &ResId) -> bool {
    id.gvk.group == "kafka.strimzi.io"
}

/// The `status.conditions` of an object.
pub fn conditions(obj: &Value) -> impl Iterator<Item = &Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A string field of a condition ("" when absent).
pub fn text<'a>(condition: &'a Value, key: &str) -> &'a str {
    condition.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Whether the operator has seen the object's current generation.
pub fn observed_current(obj: &Value) -> bool {
    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = obj.pointer("/status/observedGeneration").and_then(Value::as_i64);
    observed.is_some() && observed == generation
}

/// What is not in effect in one live Strimzi object, from its status. Empty for other objects and
/// for statuses of an older generation.
pub fn of_live(id: &ResId, live: &Value) -> Vec<NotInEffect> {
    if !is_strimzi(id) || !observed_current(live) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for c in conditions(live) {
        let ty = text(c, "type");
        let warning = ty == "Warning" && text(c, "status") == "True";
        // The topic operator refuses changes with Ready False (reason NotSupported).
        let refused_topic = id.gvk.kind == "KafkaTopic"
            && ty == "Ready"
            && text(c, "status") == "False"
            && text(c, "reason") == "NotSupported";
        if !warning && !refused_topic {
            continue;
        }
        if let Some((object, field, effect)) = classify(id, live, text(c, "reason"), text(c, "message")) {
            out.push(NotInEffect {
                object,
                field,
                effect,
                reason: text(c, "reason").to_string(),
                message: text(c, "message").to_string(),
                reported_by: id.to_string(),
            });
        }
    }
    if id.gvk.kind == "KafkaNodePool" {
        out.extend(node_pool_status(id, live));
    }
    out
}

/// Every entry of every live object, deduplicated: a node pool's storage warning is in the pool's
/// status and in its Kafka's, and a reverted scale-down shows in the Kafka's conditions and in the
/// pool's status; the entry carrying Strimzi's own reason wins. Sorted by object and field.
pub fn collect<'a>(objects: impl IntoIterator<Item = (&'a ResId, &'a Value)>) -> Vec<NotInEffect> {
    let mut all: Vec<NotInEffect> = objects
        .into_iter()
        .flat_map(|(id, live)| of_live(id, live))
        .collect();
    all.sort();
    let mut out: Vec<NotInEffect> = Vec::with_capacity(all.len());
    for n in all {
        let same = out
            .iter()
            .position(|o| o.object == n.object && o.field == n.field && o.effect == n.effect);
        match same {
            None => out.push(n),
            Some(i) if out[i].reason == n.reason && out[i].message == n.message => {}
            // A derived entry gives way to Strimzi's condition about the same field.
            Some(i) if out[i].reason == DERIVED_REASON => out[i] = n,
            Some(_) if n.reason == DERIVED_REASON => {}
            Some(_) => out.push(n),
        }
    }
    out
}

/// The reason of entries kgitops derives from a KafkaNodePool's status (no condition says it).
pub const DERIVED_REASON: &str = "KafkaNodePoolStatus";

fn obj(kind: &str, ns: Option<&str>, name: &str) -> String {
    match ns {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// The text of `message` between `start` and the next `end` (or its end).
fn between<'a>(message: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = message.find(start)? + start.len();
    let rest = &message[from..];
    Some(match rest.find(end) {
        Some(to) => &rest[..to],
        None => rest,
    })
}

/// Maps one Warning (or refused-topic) condition to the object and field it concerns and its effect;
/// `None` for reasons that are not about the spec.
fn classify(id: &ResId, live: &Value, reason: &str, message: &str) -> Option<(String, String, Effect)> {
    let ns = id.namespace.as_deref();
    let me = id.to_string();
    let on_me = |field: &str, effect: Effect| Some((me.clone(), field.to_string(), effect));
    let uses_pools = live.pointer("/spec/kafka/storage").is_none();
    let pool = |name: &str, field: &str| {
        // Before node pools, Strimzi models a Kafka's brokers as a virtual pool named "kafka".
        if name == "kafka" && !uses_pools {
            (
                me.clone(),
                format!("spec.kafka.{}", field.trim_start_matches("spec.")),
                Effect::Ignored,
            )
        } else {
            (obj("KafkaNodePool", ns, name), field.to_string(), Effect::Ignored)
        }
    };
    match reason {
        "KafkaStorage" => {
            if let Some(target) = between(
                message,
                "configuration in the KafkaNodePool resource ",
                " contains changes",
            ) {
                let name = target.rsplit('/').next().unwrap_or(target);
                if id.gvk.kind == "KafkaNodePool" {
                    return on_me("spec.storage", Effect::Ignored);
                }
                Some(pool(name, "spec.storage"))
            } else if message.contains("single broker node and ephemeral storage") {
                on_me("broker storage (KafkaNodePool spec.storage)", Effect::Warned)
            } else if message.contains("single controller node and ephemeral storage") {
                on_me("controller storage (KafkaNodePool spec.storage)", Effect::Warned)
            } else {
                on_me("spec.kafka.storage", Effect::Ignored)
            }
        }
        "ZooKeeperStorage" => {
            if message.contains("contains changes which are not allowed") {
                on_me("spec.zookeeper.storage", Effect::Ignored)
            } else {
                on_me("spec.zookeeper.storage", Effect::Warned)
            }
        }
        "ZooKeeperReplicas" => on_me("spec.zookeeper.replicas", Effect::Warned),
        "ZooKeeperRemoval" => on_me("spec.zookeeper", Effect::Warned),
        "ScaleDownPreventionCheck" => {
            if let Some(name) = between(message, "Reverting scale-down of KafkaNodePool ", " ") {
                Some(pool(name, "spec.replicas"))
            } else if let Some(name) = between(message, "Reverting role change of KafkaNodePool ", " ") {
                Some(pool(name, "spec.roles"))
            } else {
                on_me("spec.kafka.replicas", Effect::Ignored)
            }
        }
        "PvcResizingWarning" => {
            let pvc = between(message, "PVC ", " ").unwrap_or_default();
            Some(pvc_field(id, live, pvc))
        }
        "MetadataUpdateFailed" => on_me("spec.kafka.metadataVersion", Effect::Ignored),
        "QuotasPluginConflict" => on_me("spec.kafka.config.client.quota.callback.class", Effect::Ignored),
        "UnusedReplicasConfiguration" => on_me("spec.kafka.replicas", Effect::Ignored),
        "UnusedStorageConfiguration" => on_me("spec.kafka.storage", Effect::Ignored),
        "UnusedZooKeeperConfiguration" => on_me("spec.zookeeper", Effect::Ignored),
        "KafkaDefaultReplicationFactor" => {
            on_me("spec.kafka.config.default.replication.factor", Effect::Warned)
        }
        "KafkaMinInsyncReplicas" => on_me("spec.kafka.config.min.insync.replicas", Effect::Warned),
        "KafkaKRaftControllerNodeCount" => {
            on_me("controller count (KafkaNodePool spec.replicas)", Effect::Warned)
        }
        "KafkaMetadataVersion" => on_me("spec.kafka.metadataVersion", Effect::Warned),
        "KafkaInterBrokerProtocolVersionInKRaft" => {
            on_me("spec.kafka.config.inter.broker.protocol.version", Effect::Warned)
        }
        "KafkaLogMessageFormatVersionInKRaft" => {
            on_me("spec.kafka.config.log.message.format.version", Effect::Warned)
        }
        "DeprecatedObjects" | "DeprecatedFields" => {
            let field = between(message, " at path ", " ")
                .map(|p| p.trim_end_matches([',', '.']).trim_start_matches('.').to_string())
                .unwrap_or_else(|| {
                    if message.starts_with("ingress type listeners") {
                        "spec.kafka.listeners".to_string()
                    } else {
                        "spec".to_string()
                    }
                });
            Some((me.clone(), field, Effect::Warned))
        }
        "UnknownFields" => {
            let path = between(message, "contains object at path ", " with ")
                .unwrap_or("spec")
                .trim_start_matches('.');
            let properties = message.rsplit(": ").next().unwrap_or_default();
            let field = if properties.contains(", ") {
                format!("{path}.{{{properties}}}")
            } else {
                format!("{path}.{properties}")
            };
            Some((me.clone(), field, Effect::Ignored))
        }
        "InvalidConfig" if id.gvk.kind == "KafkaTopic" => {
            let property = between(message, "Property ", " ").unwrap_or_default();
            let effect = if message.ends_with("is ignored according to alterable config") {
                Effect::Ignored
            } else {
                Effect::Warned
            };
            Some((me.clone(), format!("spec.config.{property}"), effect))
        }
        "NotSupported" if id.gvk.kind == "KafkaTopic" => {
            let field = if message.starts_with("Decreasing partitions") {
                "spec.partitions"
            } else if message.starts_with("Replication factor change") {
                "spec.replicas"
            } else if message.contains("spec.topicName") {
                "spec.topicName"
            } else {
                "spec"
            };
            on_me(field, Effect::Ignored)
        }
        _ => None,
    }
}

/// The storage size a PVC named by `PvcResizingWarning` comes from. Strimzi names a broker's claims
/// `data-<cluster>-<pool>-<id>` and, for JBOD volumes, `data-<volume>-<cluster>-<pool>-<id>`.
fn pvc_field(id: &ResId, live: &Value, pvc: &str) -> (String, String, Effect) {
    let ns = id.namespace.as_deref();
    let cluster = id.name.as_str();
    let rest = pvc.strip_prefix("data-").unwrap_or(pvc);
    let (volume, rest) = match rest.split_once('-') {
        Some((v, r)) if v.chars().all(|c| c.is_ascii_digit()) && r.starts_with(cluster) => (Some(v), r),
        _ => (None, rest),
    };
    let pool = rest
        .strip_prefix(cluster)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.rsplit_once('-'))
        .map(|(pool, _)| pool);
    let size = match volume {
        Some(v) => format!("spec.storage.volumes[id={v}].size"),
        None => "spec.storage.size".to_string(),
    };
    match pool {
        Some("kafka") if live.pointer("/spec/kafka/storage").is_some() => (
            id.to_string(),
            format!("spec.kafka.{}", size.trim_start_matches("spec.")),
            Effect::Ignored,
        ),
        Some(pool) => (obj("KafkaNodePool", ns, pool), size, Effect::Ignored),
        None => (
            id.to_string(),
            format!("storage size of PVC {pvc}"),
            Effect::Ignored,
        ),
    }
}

/// A KafkaNodePool reconciled at its current generation whose status disagrees with its spec: the
/// operator kept other replicas or roles (a reverted scale-down or role change).
fn node_pool_status(id: &ResId, live: &Value) -> Vec<NotInEffect> {
    let mut out = Vec::new();
    let entry = |field: &str, message: String| NotInEffect {
        object: id.to_string(),
        field: field.to_string(),
        effect: Effect::Ignored,
        reason: DERIVED_REASON.to_string(),
        message,
        reported_by: id.to_string(),
    };
    let spec_replicas = live.pointer("/spec/replicas").and_then(Value::as_i64);
    let status_replicas = live.pointer("/status/replicas").and_then(Value::as_i64);
    if let (Some(spec), Some(status)) = (spec_replicas, status_replicas)
        && spec != status
    {
        let ids = live
            .pointer("/status/nodeIds")
            .map(Value::to_string)
            .unwrap_or_else(|| "[]".into());
        out.push(entry(
            "spec.replicas",
            format!("spec.replicas is {spec} but the operator keeps {status} node(s) (status.nodeIds {ids})"),
        ));
    }
    let roles = |p: &str| {
        let mut r: Vec<String> = live
            .pointer(p)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        r.sort();
        r
    };
    let (spec_roles, status_roles) = (roles("/spec/roles"), roles("/status/roles"));
    if !spec_roles.is_empty() && !status_roles.is_empty() && spec_roles != status_roles {
        out.push(entry(
            "spec.roles",
            format!(
                "spec.roles is [{}] but the operator keeps [{}] (status.roles)",
                spec_roles.join(", "),
                status_roles.join(", ")
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(kind: &str, name: &str) -> ResId {
        ResId::of(&json!({"apiVersion": "kafka.strimzi.io/v1", "kind": kind,
            "metadata": {"name": name, "namespace": "kafka-dev"}}))
        .unwrap()
    }

    fn warning(reason: &str, message: &str) -> Value {
        json!({"type": "Warning", "status": "True", "reason": reason, "message": message,
               "lastTransitionTime": "2026-12-07T10:00:00.000Z"})
    }

    fn kafka_with(conditions: Vec<Value>) -> Value {
        json!({"metadata": {"name": "main", "namespace": "kafka-dev", "generation": 4},
               "spec": {"kafka": {"version": "4.3.1"}},
               "status": {"observedGeneration": 4, "conditions": conditions}})
    }

    // Messages verbatim from Strimzi 1.2.0 (KafkaPool, KafkaClusterCreator, PvcReconciler,
    // KafkaSpecChecker).
    const POOL_STORAGE: &str = "The desired Kafka storage configuration in the KafkaNodePool resource kafka-dev/brokers contains changes which are not allowed. As a result, all storage changes will be ignored. Use DEBUG level logging for more information about the detected changes.";
    const SCALE_DOWN: &str =
        "Reverting scale-down of KafkaNodePool brokers by changing number of replicas to 3";
    const ROLE_CHANGE: &str =
        "Reverting role change of KafkaNodePool mixed (setting roles to [broker, controller])";
    const PVC_RESIZE: &str = "Storage Class standard does not support resizing of volumes. PVC data-0-main-brokers-1 cannot be resized.";
    const MIN_ISR: &str = "min.insync.replicas option is not configured. It defaults to 1 which does not guarantee reliability and availability. You should configure this option in .spec.kafka.config.";

    #[test]
    fn kafka_warnings_name_the_pool_and_field_they_concern() {
        let kafka = kafka_with(vec![
            json!({"type": "Ready", "status": "True"}),
            warning("KafkaStorage", POOL_STORAGE),
            warning("ScaleDownPreventionCheck", SCALE_DOWN),
            warning("ScaleDownPreventionCheck", ROLE_CHANGE),
            warning("PvcResizingWarning", PVC_RESIZE),
            warning("KafkaMinInsyncReplicas", MIN_ISR),
            warning("RestartConnector", "not about the spec"),
        ]);
        let got: Vec<(String, String, Effect)> = of_live(&id("Kafka", "main"), &kafka)
            .into_iter()
            .map(|n| (n.object, n.field, n.effect))
            .collect();
        let pool = "KafkaNodePool/kafka-dev/brokers".to_string();
        assert_eq!(
            got,
            vec![
                (pool.clone(), "spec.storage".into(), Effect::Ignored),
                (pool.clone(), "spec.replicas".into(), Effect::Ignored),
                (
                    "KafkaNodePool/kafka-dev/mixed".into(),
                    "spec.roles".into(),
                    Effect::Ignored
                ),
                (pool, "spec.storage.volumes[id=0].size".into(), Effect::Ignored),
                (
                    "Kafka/kafka-dev/main".into(),
                    "spec.kafka.config.min.insync.replicas".into(),
                    Effect::Warned
                ),
            ]
        );
    }

    #[test]
    fn a_status_of_an_older_generation_says_nothing() {
        let mut kafka = kafka_with(vec![warning("KafkaStorage", POOL_STORAGE)]);
        kafka["metadata"]["generation"] = json!(5);
        assert!(of_live(&id("Kafka", "main"), &kafka).is_empty());
    }

    #[test]
    fn zookeeper_era_kafka_maps_to_spec_kafka() {
        let mut kafka = kafka_with(vec![
            warning(
                "ScaleDownPreventionCheck",
                "Reverting scale-down of Kafka main by changing number of replicas to 3",
            ),
            warning(
                "PvcResizingWarning",
                "PVC data-main-kafka-0 does not use any Storage Class and cannot be resized.",
            ),
            warning(
                "KafkaStorage",
                "The desired Kafka storage configuration in the KafkaNodePool resource kafka-dev/kafka contains changes which are not allowed. As a result, all storage changes will be ignored. Use DEBUG level logging for more information about the detected changes.",
            ),
        ]);
        kafka["spec"]["kafka"]["storage"] = json!({"type": "persistent-claim", "size": "10Gi"});
        let fields: Vec<(String, String)> = of_live(&id("Kafka", "main"), &kafka)
            .into_iter()
            .map(|n| (n.object, n.field))
            .collect();
        let me = "Kafka/kafka-dev/main".to_string();
        assert_eq!(
            fields,
            vec![
                (me.clone(), "spec.kafka.replicas".into()),
                (me.clone(), "spec.kafka.storage.size".into()),
                (me, "spec.kafka.storage".into()),
            ]
        );
    }

    #[test]
    fn node_pool_status_and_the_kafka_condition_are_one_entry() {
        let kafka = kafka_with(vec![warning("ScaleDownPreventionCheck", SCALE_DOWN)]);
        let pool = json!({"metadata": {"name": "brokers", "namespace": "kafka-dev", "generation": 2},
            "spec": {"replicas": 2, "roles": ["broker"]},
            "status": {"observedGeneration": 2, "replicas": 3, "nodeIds": [0, 1, 2], "roles": ["broker"],
                       "conditions": [warning("KafkaStorage", POOL_STORAGE)]}});
        let (kid, pid) = (id("Kafka", "main"), id("KafkaNodePool", "brokers"));
        let alone = of_live(&pid, &pool);
        assert!(
            alone
                .iter()
                .any(|n| n.reason == DERIVED_REASON && n.field == "spec.replicas"),
            "{alone:?}"
        );
        let all = collect([(&kid, &kafka), (&pid, &pool)]);
        let lines: Vec<String> = all.iter().map(NotInEffect::line).collect();
        assert_eq!(all.len(), 2, "{lines:#?}");
        assert!(
            all.iter()
                .any(|n| n.field == "spec.replicas" && n.reason == "ScaleDownPreventionCheck")
        );
        assert!(
            all.iter()
                .any(|n| n.field == "spec.storage" && n.reported_by == pid.to_string())
        );
    }

    #[test]
    fn topic_refusals_and_ignored_config() {
        let topic = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 3, "conditions": [
            {"type": "Ready", "status": "False", "reason": "NotSupported", "message": "Decreasing partitions not supported"},
            warning("InvalidConfig", "Property follower.replication.throttled.replicas may conflict with throttled rebalances"),
            warning("InvalidConfig", "Property cleanup.policy is ignored according to alterable config")]}});
        let got: Vec<(String, Effect)> = of_live(&id("KafkaTopic", "orders"), &topic)
            .into_iter()
            .map(|n| (n.field, n.effect))
            .collect();
        assert_eq!(
            got,
            vec![
                ("spec.partitions".into(), Effect::Ignored),
                (
                    "spec.config.follower.replication.throttled.replicas".into(),
                    Effect::Warned
                ),
                ("spec.config.cleanup.policy".into(), Effect::Ignored),
            ]
        );
    }

    #[test]
    fn validation_visitor_paths() {
        let kafka = kafka_with(vec![
            warning(
                "UnknownFields",
                "Resource Kafka(kafka-dev/main) contains object at path spec.kafka with an unknown property: replica",
            ),
            warning(
                "DeprecatedFields",
                "In resource Kafka(kafka-dev/main) in API version kafka.strimzi.io/v1beta2 the replicas property at path spec.kafka.replicas has been deprecated, and should now be configured using KafkaNodePool.",
            ),
            warning("DeprecatedObjects", "ingress type listeners are deprecated."),
        ]);
        let got: Vec<(String, Effect)> = of_live(&id("Kafka", "main"), &kafka)
            .into_iter()
            .map(|n| (n.field, n.effect))
            .collect();
        assert_eq!(
            got,
            vec![
                ("spec.kafka.replica".into(), Effect::Ignored),
                ("spec.kafka.replicas".into(), Effect::Warned),
                ("spec.kafka.listeners".into(), Effect::Warned),
            ]
        );
    }
}
