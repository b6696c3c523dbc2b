//! Health after apply: CRDs Established (before custom resources are applied) and, with `--wait`,
//! Strimzi resources reconciled by the operator: `status.observedGeneration ==
//! metadata.generation` and condition `Ready` True. `Warning` conditions (e.g. a storage change
//! Strimzi ignores) are reported, healthy or not.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::ResId;
use crate::plan::{Cluster, RequestError, Resolved};

/// How often status is read while waiting.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Strimzi kinds whose operator reports `Ready` (node pools and pod sets have no Ready condition).
const STRIMZI_READY_KINDS: &[&str] = &[
    "Kafka",
    "KafkaConnect",
    "KafkaConnector",
    "KafkaMirrorMaker",
    "KafkaMirrorMaker2",
    "KafkaBridge",
    "KafkaTopic",
    "KafkaUser",
];

/// The health of one object after apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `Kind/namespace/name`.
    pub object: String,
    pub healthy: bool,
    /// Why it is (not) healthy.
    pub message: String,
    /// `Warning` conditions, as `reason: message`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Whether kgitops waits for this kind's health.
pub fn is_watched(id: &ResId) -> bool {
    id.gvk.group == "kafka.strimzi.io" && STRIMZI_READY_KINDS.contains(&id.gvk.kind.as_str())
}

fn conditions(obj: &Value) -> impl Iterator<Item = &Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The health of a Strimzi resource from its live state.
pub fn strimzi_health(id: &ResId, obj: &Value) -> Health {
    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = obj.pointer("/status/observedGeneration").and_then(Value::as_i64);
    let ready = conditions(obj).find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"));
    let warnings: Vec<String> = conditions(obj)
        .filter(|c| {
            c.get("type").and_then(Value::as_str) == Some("Warning")
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
        .map(|c| {
            let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
            if s("reason").is_empty() {
                s("message").to_string()
            } else {
                format!("{}: {}", s("reason"), s("message"))
            }
        })
        .collect();
    let (healthy, message) = if observed.is_none() || observed != generation {
        (
            false,
            format!(
                "not reconciled yet (observedGeneration {} of generation {})",
                observed.map_or("none".to_string(), |g| g.to_string()),
                generation.map_or("none".to_string(), |g| g.to_string())
            ),
        )
    } else {
        match ready {
            Some(c) if c.get("status").and_then(Value::as_str) == Some("True") => (true, "Ready".to_string()),
            Some(c) => (
                false,
                format!(
                    "not Ready: {} {}",
                    c.get("reason").and_then(Value::as_str).unwrap_or_default(),
                    c.get("message").and_then(Value::as_str).unwrap_or_default()
                )
                .trim_end()
                .to_string(),
            ),
            None => (false, "no Ready condition yet".to_string()),
        }
    };
    Health {
        object: id.to_string(),
        healthy,
        message,
        warnings,
    }
}

/// Polls every watched object until all are healthy or `timeout` passes; returns the last health of
/// each (unhealthy ones say why).
pub async fn wait_healthy(
    cluster: &Cluster,
    objects: &[(ResId, Resolved)],
    timeout: Duration,
) -> Result<Vec<Health>, RequestError> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut out = Vec::with_capacity(objects.len());
        for (id, r) in objects {
            let health = match cluster.get(r, id.namespace.as_deref(), &id.name).await? {
                Some(live) => strimzi_health(id, &live),
                None => Health {
                    object: id.to_string(),
                    healthy: false,
                    message: "does not exist".into(),
                    warnings: Vec::new(),
                },
            };
            out.push(health);
        }
        if out.iter().all(|h| h.healthy) || Instant::now() >= deadline {
            return Ok(out);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Whether a CRD's `Established` condition is True.
pub fn crd_established(crd: &Value) -> bool {
    conditions(crd).any(|c| {
        c.get("type").and_then(Value::as_str) == Some("Established")
            && c.get("status").and_then(Value::as_str) == Some("True")
    })
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

    fn id() -> ResId {
        ResId::of(&json!({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka",
            "metadata": {"name": "main", "namespace": "k"}}))
        .unwrap()
    }

    #[test]
    fn ready_and_observed_is_healthy_with_warnings() {
        let kafka = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2, "conditions": [
            {"type": "Warning", "status": "True", "reason": "KafkaStorage", "message": "Changing the storage type is not supported"},
            {"type": "Ready", "status": "True"}]}});
        let h = strimzi_health(&id(), &kafka);
        assert!(h.healthy, "{h:?}");
        assert_eq!(
            h.warnings,
            vec!["KafkaStorage: Changing the storage type is not supported"]
        );
    }

    #[test]
    fn stale_generation_or_not_ready_is_unhealthy() {
        let stale = json!({"metadata": {"generation": 3}, "status": {"observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True"}]}});
        assert!(!strimzi_health(&id(), &stale).healthy);
        let not_ready = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 2,
            "conditions": [{"type": "NotReady", "status": "True"}, {"type": "Ready", "status": "False", "reason": "Creating"}]}});
        let h = strimzi_health(&id(), &not_ready);
        assert!(!h.healthy && h.message.contains("Creating"), "{h:?}");
        assert!(!strimzi_health(&id(), &json!({"metadata": {"generation": 1}})).healthy);
    }
}
