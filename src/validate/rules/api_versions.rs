//! The `kafka.strimzi.io/v1` API change (Strimzi proposal 113): which API versions a release serves
//! (`v1` from 0.49.0, `v1beta2` until 0.51.x, KafkaMirrorMaker until 0.45.x), and the fields `v1`
//! removed, each with its replacement ([`REMOVED`]). A removed field is an error on a `v1` object and
//! on any object of a release from 1.0.0 (a `v1beta2` object that still has it cannot be converted),
//! and a deprecation warning on `v1beta2` objects of 0.49–0.51, which serve both versions.

use serde_json::Value;

use super::release::{self, Declared, KRAFT_ONLY_SINCE, V1_SINCE, V1BETA2_REMOVED, Version};
use super::strimzi::{STRIMZI_GROUP, strimzi_version_of};
use super::{Context, Hit};
use crate::manifest::ResId;

/// The group of StrimziPodSet, which follows the same version change.
const CORE_GROUP: &str = "core.strimzi.io";

/// One field `v1` no longer has.
struct Removed {
    kind: &'static str,
    /// Dotted path under the object; `[]` walks every item of a list (`spec.mirrors[].pause`).
    path: &'static str,
    /// Only when the field has this string value (`type: opa`); `None`: whenever present.
    value: Option<&'static str>,
    /// What to use instead (or that it goes without replacement).
    instead: &'static str,
    /// From this release the field is refused even on `v1beta2` objects. `KafkaUser`'s ACL
    /// `operation` is refused from 0.49.0, when the User Operator moved to `v1` internally.
    refused_from: Version,
}

const fn removed(kind: &'static str, path: &'static str, instead: &'static str) -> Removed {
    Removed {
        kind,
        path,
        value: None,
        instead,
        refused_from: V1BETA2_REMOVED,
    }
}

const fn removed_value(
    kind: &'static str,
    path: &'static str,
    value: &'static str,
    instead: &'static str,
) -> Removed {
    Removed {
        kind,
        path,
        value: Some(value),
        instead,
        refused_from: V1BETA2_REMOVED,
    }
}

const NO_REPLACEMENT: &str = "remove it (unused, no replacement)";
const TO_CUSTOM_AUTHN: &str = "use `type: custom` authentication with the OAuth callback handler settings in its `sasl`/`listenerConfig`";
const TO_TEMPLATE_ENV: &str =
    "use spec.template.connectContainer.env and spec.template.pod.volumes with connectContainer.volumeMounts";
const NO_JAEGER: &str = "use `type: opentelemetry` tracing (Jaeger tracing is gone)";

/// Proposal 113, "Changes to individual custom resources", plus what the `v1` CRDs of 1.2.0 lack:
/// the broker settings that moved to KafkaNodePools and MirrorMaker 2's `clusters`/`connectCluster`.
static REMOVED: &[Removed] = &[
    removed(
        "Kafka",
        "spec.zookeeper",
        "remove it: ZooKeeper is gone since Strimzi 0.46 (migrate the cluster to KRaft first)",
    ),
    removed(
        "Kafka",
        "spec.kafka.replicas",
        "move it to the broker KafkaNodePools' spec.replicas",
    ),
    removed(
        "Kafka",
        "spec.kafka.storage",
        "move it to the KafkaNodePools' spec.storage",
    ),
    removed(
        "Kafka",
        "spec.kafka.resources",
        "move it to the KafkaNodePools' spec.resources",
    ),
    removed(
        "Kafka",
        "spec.jmxTrans",
        "remove it (JmxTrans is gone); scrape metrics with spec.kafka.metricsConfig",
    ),
    removed("Kafka", "spec.cruiseControl.tlsSidecar", NO_REPLACEMENT),
    removed(
        "Kafka",
        "spec.cruiseControl.template.tlsSidecarContainer",
        NO_REPLACEMENT,
    ),
    removed(
        "Kafka",
        "spec.cruiseControl.brokerCapacity.cpuUtilization",
        NO_REPLACEMENT,
    ),
    removed("Kafka", "spec.cruiseControl.brokerCapacity.disk", NO_REPLACEMENT),
    removed("Kafka", "spec.kafkaExporter.template.service", NO_REPLACEMENT),
    removed("Kafka", "spec.entityOperator.tlsSidecar", NO_REPLACEMENT),
    removed(
        "Kafka",
        "spec.entityOperator.template.tlsSidecarContainer",
        NO_REPLACEMENT,
    ),
    removed(
        "Kafka",
        "spec.entityOperator.topicOperator.reconciliationIntervalSeconds",
        "use reconciliationIntervalMs",
    ),
    removed(
        "Kafka",
        "spec.entityOperator.topicOperator.zookeeperSessionTimeoutSeconds",
        NO_REPLACEMENT,
    ),
    removed(
        "Kafka",
        "spec.entityOperator.topicOperator.topicMetadataMaxAttempts",
        NO_REPLACEMENT,
    ),
    removed(
        "Kafka",
        "spec.entityOperator.userOperator.reconciliationIntervalSeconds",
        "use reconciliationIntervalMs",
    ),
    removed(
        "Kafka",
        "spec.entityOperator.userOperator.zookeeperSessionTimeoutSeconds",
        NO_REPLACEMENT,
    ),
    removed("Kafka", "spec.kafka.template.statefulset", NO_REPLACEMENT),
    removed(
        "Kafka",
        "spec.kafka.listeners[].authentication.secrets",
        "mount the Secrets with spec.kafka.template.pod.volumes and kafkaContainer.volumeMounts",
    ),
    removed_value(
        "Kafka",
        "spec.kafka.authorization.type",
        "opa",
        "use `type: custom` authorization with the OPA authorizer class in authorizerClass",
    ),
    removed_value(
        "Kafka",
        "spec.kafka.authorization.type",
        "keycloak",
        "use `type: custom` authorization with the Keycloak authorizer class in authorizerClass",
    ),
    removed_value(
        "Kafka",
        "spec.kafka.listeners[].authentication.type",
        "oauth",
        TO_CUSTOM_AUTHN,
    ),
    removed("Kafka", "spec.kafka.storage.overrides", NO_REPLACEMENT),
    removed("KafkaNodePool", "spec.storage.overrides", NO_REPLACEMENT),
    removed(
        "KafkaNodePool",
        "spec.storage.volumes[].overrides",
        NO_REPLACEMENT,
    ),
    Removed {
        kind: "KafkaUser",
        path: "spec.authorization.acls[].operation",
        value: None,
        instead: "use operations: [<operation>] (a list)",
        refused_from: V1_SINCE,
    },
    removed(
        "KafkaConnector",
        "spec.pause",
        "use state: paused (or state: running)",
    ),
    removed("KafkaConnect", "spec.template.deployment", NO_REPLACEMENT),
    removed("KafkaConnect", "spec.externalConfiguration", TO_TEMPLATE_ENV),
    removed_value("KafkaConnect", "spec.tracing.type", "jaeger", NO_JAEGER),
    removed(
        "KafkaConnect",
        "spec.build.output.additionalKanikoOptions",
        "use additionalBuildOptions",
    ),
    removed_value(
        "KafkaConnect",
        "spec.authentication.type",
        "oauth",
        TO_CUSTOM_AUTHN,
    ),
    removed(
        "KafkaMirrorMaker2",
        "spec.mirrors[].sourceConnector.pause",
        "use state: paused (or running)",
    ),
    removed(
        "KafkaMirrorMaker2",
        "spec.mirrors[].checkpointConnector.pause",
        "use state: paused (or running)",
    ),
    removed(
        "KafkaMirrorMaker2",
        "spec.mirrors[].heartbeatConnector.pause",
        "use state: paused (or running)",
    ),
    removed(
        "KafkaMirrorMaker2",
        "spec.mirrors[].topicsBlacklistPattern",
        "use topicsExcludePattern",
    ),
    removed(
        "KafkaMirrorMaker2",
        "spec.mirrors[].groupsBlacklistPattern",
        "use groupsExcludePattern",
    ),
    removed(
        "KafkaMirrorMaker2",
        "spec.clusters",
        "describe the target cluster in spec.target and each source in spec.mirrors[].source",
    ),
    removed(
        "KafkaMirrorMaker2",
        "spec.connectCluster",
        "describe the target cluster in spec.target",
    ),
    removed("KafkaMirrorMaker2", "spec.externalConfiguration", TO_TEMPLATE_ENV),
    removed("KafkaMirrorMaker2", "spec.template.deployment", NO_REPLACEMENT),
    removed_value("KafkaMirrorMaker2", "spec.tracing.type", "jaeger", NO_JAEGER),
    removed("KafkaBridge", "spec.enableMetrics", "use spec.metricsConfig"),
    removed_value("KafkaBridge", "spec.tracing.type", "jaeger", NO_JAEGER),
    removed_value(
        "KafkaBridge",
        "spec.authentication.type",
        "oauth",
        TO_CUSTOM_AUTHN,
    ),
];

/// The (field path as findings print it, value) of every place `path` matches in `obj`.
fn matches<'a>(obj: &'a Value, path: &str) -> Vec<(String, &'a Value)> {
    let mut found = vec![(String::new(), obj)];
    for segment in path.split('.') {
        let (name, each) = match segment.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (segment, false),
        };
        let mut next = Vec::new();
        for (at, value) in found {
            let Some(child) = value.get(name) else { continue };
            let at = if at.is_empty() {
                name.to_string()
            } else {
                format!("{at}.{name}")
            };
            if each {
                for (i, item) in child.as_array().into_iter().flatten().enumerate() {
                    next.push((format!("{at}[{i}]"), item));
                }
            } else {
                next.push((at, child));
            }
        }
        found = next;
    }
    found
}

fn display(obj: &Value) -> String {
    ResId::of(obj)
        .map(|id| id.to_string())
        .unwrap_or_else(|_| "<unnamed object>".into())
}

/// Every use of a removed field in the head render: (object, field path, entry, object's API
/// version, the release it is judged by).
fn uses<'c>(ctx: &'c Context<'_>) -> Vec<(&'c Value, String, &'static Removed, &'c str, Option<Declared>)> {
    let mut out = Vec::new();
    for obj in ctx.to.objects {
        let Some(version) = strimzi_version_of(obj) else {
            continue;
        };
        let Some(kind) = obj.get("kind").and_then(Value::as_str) else {
            continue;
        };
        let entries: Vec<&Removed> = REMOVED.iter().filter(|r| r.kind == kind).collect();
        if entries.is_empty() {
            continue;
        }
        let declared = release::release_for_object(&ctx.to, obj);
        for entry in entries {
            for (path, value) in matches(obj, entry.path) {
                if entry.value.is_some_and(|want| value.as_str() != Some(want)) {
                    continue;
                }
                out.push((obj, path, entry, version, declared.clone()));
            }
        }
    }
    out
}

fn what(path: &str, entry: &Removed) -> String {
    match entry.value {
        Some(value) => format!("{path}: {value}"),
        None => path.to_string(),
    }
}

pub(super) fn removed_field(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (obj, path, entry, version, declared) in uses(ctx) {
        let release = declared.as_ref().and_then(Declared::version);
        let refused = release.is_some_and(|r| r >= entry.refused_from);
        if version != "v1" && !refused {
            continue;
        }
        let why = if version == "v1" {
            let on = declared
                .as_ref()
                .map(|d| format!(" (judged against {})", d.describe()))
                .unwrap_or_default();
            format!(
                "the kafka.strimzi.io/v1 {} has no {}{on}",
                entry.kind,
                what(&path, entry)
            )
        } else if entry.refused_from < V1BETA2_REMOVED {
            format!(
                "{} is refused from Strimzi {} on (the User Operator reads the v1 API), and this cluster \
                 runs {}",
                what(&path, entry),
                entry.refused_from,
                declared.as_ref().map(Declared::describe).unwrap_or_default()
            )
        } else {
            format!(
                "{} was removed in kafka.strimzi.io/v1, the only API of {}: this resource cannot be \
                 converted as it is",
                what(&path, entry),
                declared.as_ref().map(Declared::describe).unwrap_or_default()
            )
        };
        hits.push(Hit {
            object: display(obj),
            path,
            message: why,
            fix: Some(entry.instead.to_string()),
        });
    }
    hits
}

pub(super) fn deprecated_field(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (obj, path, entry, version, declared) in uses(ctx) {
        let Some(declared) = declared else { continue };
        let Some(release) = declared.version() else {
            continue;
        };
        // Only where both versions are served and the field is not refused yet.
        if version == "v1" || release < V1_SINCE || release >= entry.refused_from {
            continue;
        }
        hits.push(Hit {
            object: display(obj),
            path: path.clone(),
            message: format!(
                "{} is deprecated on {} and gone from kafka.strimzi.io/v1, the only API from Strimzi 1.0.0: \
                 convert before upgrading the operator to 1.x",
                what(&path, entry),
                declared.describe()
            ),
            fix: Some(entry.instead.to_string()),
        });
    }
    hits
}

pub(super) fn api_version_not_served(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for obj in ctx.to.objects {
        let Some(api) = obj.get("apiVersion").and_then(Value::as_str) else {
            continue;
        };
        let Some((group, version)) = api.split_once('/') else {
            continue;
        };
        if group != STRIMZI_GROUP && group != CORE_GROUP {
            continue;
        }
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let Some(declared) = release::release_for_object(&ctx.to, obj) else {
            continue;
        };
        let Some(release) = declared.version() else {
            continue;
        };
        let (message, fix) = if kind == "KafkaMirrorMaker" && release >= KRAFT_ONLY_SINCE {
            (
                format!(
                    "KafkaMirrorMaker was removed in Strimzi {KRAFT_ONLY_SINCE} (with Kafka 4, which has no \
                     MirrorMaker 1): {} does not serve it",
                    declared.describe()
                ),
                "replace it with a KafkaMirrorMaker2".to_string(),
            )
        } else if version != "v1" && release >= V1BETA2_REMOVED {
            (
                format!(
                    "{kind} {api} is not served by {}: from Strimzi {V1BETA2_REMOVED} the only API is \
                     {group}/v1",
                    declared.describe()
                ),
                format!(
                    "serve {group}/v1: set apiVersion: {group}/v1 and convert the resource (fields v1 removed \
                     are reported by strimzi-v1-removed-field; Strimzi's v1 conversion tool converts resources \
                     and CRDs). \
                     Convert while the operator is still on 0.49-0.51, which serve both"
                ),
            )
        } else if version == "v1" && release < V1_SINCE {
            (
                format!(
                    "{kind} {api} is not served by {}: {group}/v1 is served from Strimzi {V1_SINCE}",
                    declared.describe()
                ),
                format!("use {group}/v1beta2, or upgrade the operator to Strimzi {V1_SINCE} or later first"),
            )
        } else {
            continue;
        };
        hits.push(Hit {
            object: display(obj),
            path: "apiVersion".into(),
            message,
            fix: Some(fix),
        });
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_walk_lists() {
        let obj = json!({"spec": {"authorization": {"acls": [
            {"operation": "Read"}, {"operations": ["Write"]}, {"operation": "Describe"}]}}});
        let found: Vec<String> = matches(&obj, "spec.authorization.acls[].operation")
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            found,
            [
                "spec.authorization.acls[0].operation",
                "spec.authorization.acls[2].operation"
            ]
        );
        assert!(matches(&obj, "spec.zookeeper").is_empty());
    }

    #[test]
    fn every_kind_of_the_table_has_a_v1_crd() {
        for r in REMOVED {
            assert!(
                [
                    "Kafka",
                    "KafkaNodePool",
                    "KafkaUser",
                    "KafkaConnector",
                    "KafkaConnect",
                    "KafkaMirrorMaker2",
                    "KafkaBridge"
                ]
                .contains(&r.kind),
                "{}",
                r.kind
            );
        }
    }
}
