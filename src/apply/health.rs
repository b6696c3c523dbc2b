//! Health after apply: CRDs Established (before custom resources are applied) and, with `--wait`,
//! the readiness of every Strimzi kind the operators reconcile, read from the status they write
//! (Strimzi 0.45 to 1.2: `StatusUtils`, `KafkaAssemblyOperator`, `KafkaReconciler`,
//! `KafkaRebalanceAssemblyOperator`, `AbstractConnectOperator`, the topic and user operators):
//!
//! - paused first: annotation `strimzi.io/pause-reconciliation: "true"` or condition
//!   `ReconciliationPaused` (the operator then keeps the old `observedGeneration`) -> [`HealthState::Paused`];
//! - `status.observedGeneration` below `metadata.generation`: the operator has not seen this spec
//!   -> [`HealthState::Progressing`];
//! - Kafka, KafkaConnect, KafkaMirrorMaker2, KafkaBridge, KafkaUser, KafkaConnector, KafkaTopic:
//!   condition `Ready` True -> ready; `NotReady` True (cluster and user operators) or `Ready` False
//!   (topic operator) with reason and message -> [`HealthState::NotReady`], or
//!   [`HealthState::Refused`] when the reason says the spec itself is refused
//!   ([`REFUSED_REASONS`]); the Kafka's initial `NotReady`/`Creating` is progress. A KafkaConnector
//!   (and each connector of a KafkaMirrorMaker2) whose connector or a task is `FAILED` is not ready;
//!   one whose connector state differs from `spec.state` is progressing.
//! - KafkaNodePool: the operator writes no Ready condition for pools (only `observedGeneration`,
//!   `nodeIds`, `replicas`, `roles` and warnings, when its Kafka is reconciled), so a pool is ready
//!   when its status is of the current generation; a status that disagrees with the spec is
//!   reported as not in effect ([`crate::plan::in_effect`]).
//! - KafkaRebalance: its conditions are the states of the rebalance state machine. `ProposalReady`
//!   (a proposal waiting for approval), `Rebalancing` (approved and running, which can take hours)
//!   and `Ready` (done) are healthy; `New` and `PendingProposal` are progress; `NotReady` and
//!   `Stopped` stay so until someone refreshes the rebalance: refused.
//!
//! [`wait_healthy`] polls until all are ready; it stops early when waiting cannot help (paused or
//! refused). `Warning` conditions are reported, healthy or not, and what they say is not in effect is
//! collected for the change set.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::ResId;
use crate::plan::in_effect::{self, NotInEffect, PAUSE_ANNOTATION, conditions, text};
use crate::plan::{Cluster, RequestError, Resolved};

/// How often status is read while waiting.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Strimzi kinds whose health kgitops waits for (pod sets are the operator's own objects).
const STRIMZI_KINDS: &[&str] = &[
    "Kafka",
    "KafkaNodePool",
    "KafkaConnect",
    "KafkaConnector",
    "KafkaMirrorMaker",
    "KafkaMirrorMaker2",
    "KafkaBridge",
    "KafkaTopic",
    "KafkaUser",
    "KafkaRebalance",
];

/// `NotReady` reasons that mean the operator refuses this spec: it says the same on every retry
/// until the spec changes, so waiting cannot help. Exception class names of the cluster and user
/// operators, and the topic operator's reasons.
pub const REFUSED_REASONS: &[&str] = &[
    "InvalidResourceException",
    "InvalidConfigParameterException",
    "InvalidConfigurationException",
    "NotSupported",
    "ResourceConflict",
];

/// Where one object stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthState {
    /// Reconciled at its current generation and ready.
    Ready,
    /// Not there yet: the operator has not seen this generation, or reports progress.
    Progressing,
    /// The operator tried this generation and failed; it retries.
    NotReady,
    /// The operator refuses this spec (or a rebalance stopped): waiting cannot help.
    Refused,
    /// Reconciliation is paused: the operator does not act on the object at all.
    Paused,
    /// The object does not exist.
    Missing,
}

impl HealthState {
    /// The name reports and metrics use (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Ready => "ready",
            HealthState::Progressing => "progressing",
            HealthState::NotReady => "not-ready",
            HealthState::Refused => "refused",
            HealthState::Paused => "paused",
            HealthState::Missing => "missing",
        }
    }

    /// Whether waiting longer cannot change the state.
    pub fn is_final(self) -> bool {
        matches!(self, HealthState::Refused | HealthState::Paused)
    }
}

/// The health of one object after apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `Kind/namespace/name`.
    pub object: String,
    pub healthy: bool,
    pub state: HealthState,
    /// Why it is (not) healthy.
    pub message: String,
    /// `Warning` conditions, as `reason: message`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Whether kgitops waits for this kind's health.
pub fn is_watched(id: &ResId) -> bool {
    in_effect::is_strimzi(id) && STRIMZI_KINDS.contains(&id.gvk.kind.as_str())
}

fn condition<'a>(obj: &'a Value, ty: &str) -> Option<&'a Value> {
    conditions(obj).find(|c| text(c, "type") == ty)
}

fn is_true(obj: &Value, ty: &str) -> bool {
    condition(obj, ty).is_some_and(|c| text(c, "status") == "True")
}

/// `reason message`, trimmed.
fn reason_message(c: &Value) -> String {
    format!("{} {}", text(c, "reason"), text(c, "message"))
        .trim()
        .to_string()
}

/// Whether the object is paused, and why.
fn paused(obj: &Value) -> Option<String> {
    let annotated = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(PAUSE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("true");
    if annotated {
        Some(format!(
            "reconciliation paused (annotation {PAUSE_ANNOTATION}: \"true\"): the operator does not act on this object; remove the annotation to resume"
        ))
    } else if is_true(obj, "ReconciliationPaused") {
        Some("reconciliation paused (condition ReconciliationPaused): the operator does not act on this object".to_string())
    } else {
        None
    }
}

/// The health of a Strimzi resource from its live state.
pub fn strimzi_health(id: &ResId, obj: &Value) -> Health {
    let (state, message) = readiness(id, obj);
    let warnings = conditions(obj)
        .filter(|c| text(c, "type") == "Warning" && text(c, "status") == "True")
        .map(|c| {
            if text(c, "reason").is_empty() {
                text(c, "message").to_string()
            } else {
                format!("{}: {}", text(c, "reason"), text(c, "message"))
            }
        })
        .collect();
    Health {
        object: id.to_string(),
        healthy: state == HealthState::Ready,
        state,
        message,
        warnings,
    }
}

/// The health of an object that does not exist.
pub fn missing(id: &ResId) -> Health {
    Health {
        object: id.to_string(),
        healthy: false,
        state: HealthState::Missing,
        message: "does not exist".into(),
        warnings: Vec::new(),
    }
}

fn readiness(id: &ResId, obj: &Value) -> (HealthState, String) {
    if let Some(why) = paused(obj) {
        return (HealthState::Paused, why);
    }
    if !in_effect::observed_current(obj) {
        let number = |p: &str| {
            obj.pointer(p)
                .and_then(Value::as_i64)
                .map_or("none".to_string(), |g| g.to_string())
        };
        return (
            HealthState::Progressing,
            format!(
                "not reconciled yet (observedGeneration {} of generation {})",
                number("/status/observedGeneration"),
                number("/metadata/generation")
            ),
        );
    }
    match id.gvk.kind.as_str() {
        "KafkaNodePool" => node_pool(obj),
        "KafkaRebalance" => rebalance(obj),
        kind => {
            let (state, message) = ready_condition(obj);
            if state != HealthState::Ready {
                return (state, message);
            }
            match kind {
                "KafkaConnector" => connector(obj.pointer("/status/connectorStatus"), obj.get("spec"), None),
                "KafkaMirrorMaker2" => mirror_maker_2(obj),
                _ => (state, message),
            }
        }
    }
}

/// The `Ready`/`NotReady` conditions of the cluster, user and topic operators.
fn ready_condition(obj: &Value) -> (HealthState, String) {
    let failed = |c: &Value| {
        let state = if REFUSED_REASONS.contains(&text(c, "reason")) {
            HealthState::Refused
        } else {
            HealthState::NotReady
        };
        (
            state,
            format!("not Ready: {}", reason_message(c)).trim().to_string(),
        )
    };
    if let Some(c) = condition(obj, "Ready") {
        return if text(c, "status") == "True" {
            (HealthState::Ready, "Ready".to_string())
        } else {
            failed(c)
        };
    }
    if let Some(c) = condition(obj, "NotReady").filter(|c| text(c, "status") == "True") {
        return if text(c, "reason") == "Creating" {
            (HealthState::Progressing, reason_message(c))
        } else {
            failed(c)
        };
    }
    if is_true(obj, "Unmanaged") {
        return (
            HealthState::Ready,
            "Unmanaged (strimzi.io/managed: \"false\"): the topic operator leaves the topic alone"
                .to_string(),
        );
    }
    (HealthState::Progressing, "no Ready condition yet".to_string())
}

/// A KafkaNodePool's status of the current generation: its nodes and roles.
fn node_pool(obj: &Value) -> (HealthState, String) {
    let replicas = obj
        .pointer("/status/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let ids = obj
        .pointer("/status/nodeIds")
        .map(Value::to_string)
        .unwrap_or_else(|| "[]".into());
    let roles = obj
        .pointer("/status/roles")
        .map(Value::to_string)
        .unwrap_or_else(|| "[]".into());
    (
        HealthState::Ready,
        format!("reconciled: {replicas} node(s) {ids}, roles {roles}"),
    )
}

/// The state of a KafkaRebalance (see the module docs).
fn rebalance(obj: &Value) -> (HealthState, String) {
    let state = conditions(obj).filter(|c| text(c, "status") == "True").find(|c| {
        matches!(
            text(c, "type"),
            "New" | "PendingProposal" | "ProposalReady" | "Rebalancing" | "Stopped" | "NotReady" | "Ready"
        )
    });
    let Some(c) = state else {
        return (HealthState::Progressing, "no rebalance state yet".to_string());
    };
    let detail = reason_message(c);
    let with = |what: &str| {
        if detail.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {detail}")
        }
    };
    match text(c, "type") {
        "ProposalReady" => (
            HealthState::Ready,
            with("ProposalReady (a proposal waits for approval: annotate strimzi.io/rebalance=approve)"),
        ),
        "Rebalancing" => (
            HealthState::Ready,
            with("Rebalancing (approved; the rebalance is not waited for)"),
        ),
        "Ready" => (HealthState::Ready, with("Ready (rebalance complete)")),
        "New" | "PendingProposal" => (HealthState::Progressing, with(text(c, "type"))),
        "Stopped" => (
            HealthState::Refused,
            with("Stopped (annotate strimzi.io/rebalance=refresh to compute a new proposal)"),
        ),
        _ => (
            HealthState::Refused,
            with("NotReady (annotate strimzi.io/rebalance=refresh once fixed)"),
        ),
    }
}

/// A connector's state as Kafka Connect reports it (`connectorStatus` of a KafkaConnector, an
/// entry of a KafkaMirrorMaker2's `connectors`), against the wanted state.
fn connector(status: Option<&Value>, spec: Option<&Value>, name: Option<&str>) -> (HealthState, String) {
    let label = name
        .map(|n| format!("connector {n}"))
        .unwrap_or_else(|| "connector".into());
    let Some(status) = status else {
        return (HealthState::Ready, "Ready".to_string());
    };
    let state = status
        .pointer("/connector/state")
        .and_then(Value::as_str)
        .unwrap_or("UNKNOWN");
    let tasks: Vec<&Value> = status
        .get("tasks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    if state == "FAILED" {
        return (HealthState::NotReady, format!("{label} FAILED"));
    }
    let failed: Vec<String> = tasks
        .iter()
        .filter(|t| t.get("state").and_then(Value::as_str) == Some("FAILED"))
        .map(|t| t.get("id").map(Value::to_string).unwrap_or_else(|| "?".into()))
        .collect();
    if !failed.is_empty() {
        return (
            HealthState::NotReady,
            format!("{label} {state}, task(s) {} FAILED", failed.join(", ")),
        );
    }
    let wanted = spec
        .and_then(|s| s.get("state"))
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase)
        .or_else(|| {
            (spec.and_then(|s| s.get("pause")).and_then(Value::as_bool) == Some(true))
                .then(|| "PAUSED".to_string())
        })
        .unwrap_or_else(|| "RUNNING".to_string());
    if matches!(state, "RUNNING" | "PAUSED" | "STOPPED") && state != wanted {
        return (
            HealthState::Progressing,
            format!(
                "{label} {state}, spec.state wants {}",
                wanted.to_ascii_lowercase()
            ),
        );
    }
    (
        HealthState::Ready,
        format!("Ready ({label} {state}, {} task(s))", tasks.len()),
    )
}

/// Every connector of a KafkaMirrorMaker2 (`status.connectors`).
fn mirror_maker_2(obj: &Value) -> (HealthState, String) {
    let mut states = Vec::new();
    for c in obj
        .pointer("/status/connectors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = c.get("name").and_then(Value::as_str);
        let (state, message) = connector(Some(c), None, name);
        if state != HealthState::Ready {
            return (state, message);
        }
        states.push(format!(
            "{} {}",
            name.unwrap_or("?"),
            c.pointer("/connector/state")
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN")
        ));
    }
    if states.is_empty() {
        (HealthState::Ready, "Ready".to_string())
    } else {
        (HealthState::Ready, format!("Ready ({})", states.join(", ")))
    }
}

/// What [`wait_healthy`] saw last.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Waited {
    /// One per watched object, in the order given.
    pub health: Vec<Health>,
    /// What the operator did not carry out, from the same reads.
    pub not_in_effect: Vec<NotInEffect>,
}

/// Polls every watched object until all are healthy, one is paused or refused (waiting cannot help
/// then), or `timeout` passes; returns the last health of each (unhealthy ones say why) and what
/// is not in effect.
pub async fn wait_healthy(
    cluster: &Cluster,
    objects: &[(ResId, Resolved)],
    timeout: Duration,
) -> Result<Waited, RequestError> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut health = Vec::with_capacity(objects.len());
        let mut live = Vec::with_capacity(objects.len());
        for (id, r) in objects {
            match cluster.get(r, id.namespace.as_deref(), &id.name).await? {
                Some(obj) => {
                    health.push(strimzi_health(id, &obj));
                    live.push((id, obj));
                }
                None => health.push(missing(id)),
            }
        }
        let done = health.iter().all(|h| h.healthy) || health.iter().any(|h| h.state.is_final());
        if done || Instant::now() >= deadline {
            return Ok(Waited {
                health,
                not_in_effect: in_effect::collect(live.iter().map(|(id, obj)| (*id, obj))),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Whether a CRD's `Established` condition is True.
pub fn crd_established(crd: &Value) -> bool {
    is_true(crd, "Established")
}

/// Waits until every CRD is Established; the error names the first one that is not.
pub async fn wait_established(
    cluster: &Cluster,
    crds: &[(ResId, Resolved)],
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    for (id, r) in crds {
        loop {
            let live = cluster
                .get(r, None, &id.name)
                .await
                .map_err(|e| format!("{id} read failed: {e}"))?;
            if live.as_ref().is_some_and(crd_established) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!("{id} is not Established after {}s", timeout.as_secs()));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id_of(kind: &str) -> ResId {
        ResId::of(&json!({"apiVersion": "kafka.strimzi.io/v1", "kind": kind,
            "metadata": {"name": "x", "namespace": "k"}}))
        .unwrap()
    }

    fn obj(generation: i64, status: Value) -> Value {
        json!({"metadata": {"generation": generation}, "status": status})
    }

    fn state_of(kind: &str, o: &Value) -> (HealthState, String) {
        let h = strimzi_health(&id_of(kind), o);
        assert_eq!(h.healthy, h.state == HealthState::Ready);
        (h.state, h.message)
    }

    #[test]
    fn ready_and_observed_is_healthy_with_warnings() {
        let kafka = obj(
            2,
            json!({"observedGeneration": 2, "conditions": [
            {"type": "Warning", "status": "True", "reason": "KafkaStorage", "message": "Changing the storage type is not supported"},
            {"type": "Ready", "status": "True"}]}),
        );
        let h = strimzi_health(&id_of("Kafka"), &kafka);
        assert!(h.healthy, "{h:?}");
        assert_eq!(
            h.warnings,
            vec!["KafkaStorage: Changing the storage type is not supported"]
        );
    }

    /// One row per kind and status the operators write (condition texts from the Strimzi sources).
    #[test]
    fn readiness_per_kind() {
        use HealthState::*;
        let ready = json!([{"type": "Ready", "status": "True"}]);
        let rows: Vec<(&str, Value, HealthState, &str)> = vec![
            (
                "Kafka",
                obj(
                    1,
                    json!({"conditions": [{"type": "NotReady", "status": "True", "reason": "Creating", "message": "Kafka cluster is being deployed"}]}),
                ),
                Progressing,
                "not reconciled yet",
            ),
            (
                "Kafka",
                obj(3, json!({"observedGeneration": 2, "conditions": ready})),
                Progressing,
                "observedGeneration 2 of generation 3",
            ),
            (
                "Kafka",
                obj(2, json!({"observedGeneration": 2, "conditions": ready})),
                Ready,
                "Ready",
            ),
            (
                "Kafka",
                obj(
                    2,
                    json!({"observedGeneration": 2, "conditions": [{"type": "NotReady", "status": "True", "reason": "TimeoutException", "message": "Exceeded timeout of 300000ms while waiting for Pods resource main-brokers-0 in namespace k to be ready"}]}),
                ),
                NotReady,
                "TimeoutException Exceeded timeout",
            ),
            (
                "Kafka",
                obj(
                    2,
                    json!({"observedGeneration": 2, "conditions": [{"type": "NotReady", "status": "True", "reason": "InvalidResourceException", "message": "Tiered storage is not supported"}]}),
                ),
                Refused,
                "InvalidResourceException",
            ),
            (
                "Kafka",
                json!({"metadata": {"generation": 3, "annotations": {"strimzi.io/pause-reconciliation": "true"}}, "status": {"observedGeneration": 2, "conditions": [{"type": "ReconciliationPaused", "status": "True"}]}}),
                Paused,
                "strimzi.io/pause-reconciliation",
            ),
            (
                "KafkaConnect",
                obj(
                    1,
                    json!({"observedGeneration": 1, "conditions": [{"type": "ReconciliationPaused", "status": "True"}]}),
                ),
                Paused,
                "ReconciliationPaused",
            ),
            (
                "KafkaBridge",
                obj(1, json!({"observedGeneration": 1, "conditions": ready})),
                Ready,
                "Ready",
            ),
            (
                "KafkaUser",
                obj(
                    1,
                    json!({"observedGeneration": 1, "conditions": [{"type": "NotReady", "status": "True", "reason": "InvalidResourceException", "message": "Authorization needs to be enabled in the Kafka custom resource"}]}),
                ),
                Refused,
                "Authorization needs",
            ),
            (
                "KafkaTopic",
                obj(
                    4,
                    json!({"observedGeneration": 4, "conditions": [{"type": "Ready", "status": "False", "reason": "NotSupported", "message": "Decreasing partitions not supported"}]}),
                ),
                Refused,
                "Decreasing partitions",
            ),
            (
                "KafkaTopic",
                obj(
                    4,
                    json!({"observedGeneration": 4, "conditions": [{"type": "Ready", "status": "False", "reason": "KafkaError", "message": "org.apache.kafka.common.errors.TimeoutException"}]}),
                ),
                NotReady,
                "KafkaError",
            ),
            (
                "KafkaTopic",
                obj(
                    4,
                    json!({"observedGeneration": 4, "conditions": [{"type": "Unmanaged", "status": "True"}]}),
                ),
                Ready,
                "Unmanaged",
            ),
            (
                "KafkaNodePool",
                obj(
                    2,
                    json!({"observedGeneration": 2, "nodeIds": [0, 1, 2], "replicas": 3, "roles": ["broker"]}),
                ),
                Ready,
                "3 node(s) [0,1,2]",
            ),
            (
                "KafkaNodePool",
                obj(
                    2,
                    json!({"observedGeneration": 1, "nodeIds": [0, 1, 2], "replicas": 3}),
                ),
                Progressing,
                "not reconciled yet",
            ),
            (
                "KafkaRebalance",
                obj(
                    1,
                    json!({"observedGeneration": 1, "conditions": [{"type": "PendingProposal", "status": "True"}]}),
                ),
                Progressing,
                "PendingProposal",
            ),
            (
                "KafkaRebalance",
                obj(
                    1,
                    json!({"observedGeneration": 1, "conditions": [{"type": "ProposalReady", "status": "True"}]}),
                ),
                Ready,
                "approve",
            ),
            (
                "KafkaRebalance",
                obj(
                    1,
                    json!({"observedGeneration": 1, "conditions": [{"type": "Rebalancing", "status": "True"}]}),
                ),
                Ready,
                "Rebalancing",
            ),
            (
                "KafkaRebalance",
                obj(
                    1,
                    json!({"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}),
                ),
                Ready,
                "complete",
            ),
            (
                "KafkaRebalance",
                obj(
                    1,
                    json!({"observedGeneration": 1, "conditions": [{"type": "Stopped", "status": "True"}]}),
                ),
                Refused,
                "refresh",
            ),
            (
                "KafkaRebalance",
                obj(
                    1,
                    json!({"observedGeneration": 1, "conditions": [{"type": "NotReady", "status": "True", "reason": "InvalidResourceException", "message": "Kafka resource lacks 'cruiseControl' declaration"}]}),
                ),
                Refused,
                "cruiseControl",
            ),
            (
                "KafkaConnector",
                obj(
                    1,
                    json!({"observedGeneration": 1, "conditions": ready, "connectorStatus": {"connector": {"state": "RUNNING"}, "tasks": [{"id": 0, "state": "RUNNING"}]}}),
                ),
                Ready,
                "connector RUNNING, 1 task(s)",
            ),
            (
                "KafkaConnector",
                obj(
                    1,
                    json!({"observedGeneration": 1, "conditions": ready, "connectorStatus": {"connector": {"state": "RUNNING"}, "tasks": [{"id": 0, "state": "FAILED"}]}}),
                ),
                NotReady,
                "task(s) 0 FAILED",
            ),
            (
                "KafkaConnector",
                json!({"metadata": {"generation": 1}, "spec": {"state": "stopped"}, "status": {"observedGeneration": 1, "conditions": ready, "connectorStatus": {"connector": {"state": "RUNNING"}, "tasks": []}}}),
                Progressing,
                "spec.state wants stopped",
            ),
            (
                "KafkaMirrorMaker2",
                obj(
                    1,
                    json!({"observedGeneration": 1, "conditions": ready, "connectors": [{"name": "a->b.MirrorSourceConnector", "connector": {"state": "FAILED"}, "tasks": []}]}),
                ),
                NotReady,
                "connector a->b.MirrorSourceConnector FAILED",
            ),
            (
                "KafkaMirrorMaker2",
                obj(
                    1,
                    json!({"observedGeneration": 1, "conditions": ready, "connectors": [{"name": "a->b.MirrorSourceConnector", "connector": {"state": "RUNNING"}, "tasks": []}]}),
                ),
                Ready,
                "a->b.MirrorSourceConnector RUNNING",
            ),
        ];
        for (kind, o, want, says) in rows {
            let (state, message) = state_of(kind, &o);
            assert_eq!(state, want, "{kind} {o}: {message}");
            assert!(message.contains(says), "{kind} {o}: {message:?} lacks {says:?}");
        }
    }

    #[test]
    fn watched_kinds() {
        for kind in STRIMZI_KINDS {
            assert!(is_watched(&id_of(kind)));
        }
        assert!(!is_watched(&id_of("StrimziPodSet")));
    }
}
