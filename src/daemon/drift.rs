//! Drift watches: one kube-runtime watcher per kind and namespace of a cluster's applied objects,
//! selecting the members of its ApplySet by label (`applyset.kubernetes.io/part-of=<id>`). Watches,
//! not polling: after the initial list, an idle cluster costs one open watch per kind and
//! namespace and no list calls. A change signals the cluster's worker, which plans against git to
//! see whether a field kgitops owns changed (changes to fields it does not own, e.g. `status` or
//! what an HPA sets, are not drift) and heals or reports.
//!
//! Updates that change nothing but `status` or bookkeeping metadata (resourceVersion,
//! managedFields, generation) are filtered here by a fingerprint of the rest of the object, so a
//! busy operator writing status does not make the worker plan. Except what a Strimzi operator
//! says about a spec (its conditions without their timestamps, the generation it observed, and a
//! node pool's replicas and roles): a new `Warning` means a change is not in effect, a new
//! condition or observed generation a change of health, which the worker reports (see
//! [`crate::plan::in_effect`], [`crate::apply::health`]); the operator rewriting the same
//! conditions changes nothing. A watch that restarts (apiserver
//! restarted, watch expired) signals once after its new list, since events may have been missed.
//!
//! A status-only change of what a gate on live state reads (a Kafka's `kafkaMetadataState`, see
//! [`crate::plan::gate::status_print`]) is signalled apart, as [`Signal::Status`]: only a worker
//! whose revision waits for a gate plans on it, so a migration's status changes wake the gated
//! cluster at once and cost the others nothing.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Why the worker is woken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// This object changed or was deleted (`Kind/namespace/name`).
    Changed(String),
    /// A watch restarted: events may have been missed.
    Resync,
    /// Only what a gate reads in this object's status changed (`Kind/namespace/name`).
    Status(String),
}

/// What one watch covers: a kind and, for namespaced kinds, a namespace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TargetKey {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub namespace: Option<String>,
}

/// The set of watches wanted for a cluster.
pub type Targets = BTreeMap<TargetKey, ApiResource>;

/// Running watches; dropping them stops them.
pub struct DriftWatch {
    targets: Targets,
    _tasks: JoinSet<()>,
}

impl std::fmt::Debug for DriftWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriftWatch")
            .field("targets", &self.targets.len())
            .finish()
    }
}

impl DriftWatch {
    /// Starts one watcher per target, selecting `selector`, signalling `tx`.
    pub fn start(
        client: &kube::Client,
        targets: Targets,
        selector: &str,
        tx: mpsc::Sender<Signal>,
    ) -> DriftWatch {
        let mut tasks = JoinSet::new();
        for (key, resource) in &targets {
            let api: Api<DynamicObject> = match &key.namespace {
                Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
                None => Api::all_with(client.clone(), resource),
            };
            let config = watcher::Config::default().labels(selector);
            let strimzi = resource.group == "kafka.strimzi.io";
            tasks.spawn(watch_one(api, config, resource.kind.clone(), strimzi, tx.clone()));
        }
        DriftWatch {
            targets,
            _tasks: tasks,
        }
    }

    /// Whether these watches cover exactly `targets`.
    pub fn covers(&self, targets: &Targets) -> bool {
        self.targets.keys().eq(targets.keys())
    }
}

/// A fingerprint of what the object's owners set: everything but status and bookkeeping metadata;
/// for Strimzi objects (`strimzi`, or their apiVersion says so) what the status says about the spec.
pub fn fingerprint(obj: &Value, strimzi: bool) -> u64 {
    let mut copy = obj.clone();
    if let Some(map) = copy.as_object_mut() {
        let status = map.remove("status");
        // List items may come without apiVersion: the watch passes its group in.
        let strimzi = strimzi
            || map
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("kafka.strimzi.io/"));
        if strimzi && let Some(status) = status {
            map.insert("status".into(), strimzi_status_print(&status));
        }
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in ["resourceVersion", "managedFields", "generation"] {
                meta.remove(key);
            }
        }
    }
    let mut hasher = DefaultHasher::new();
    copy.to_string().hash(&mut hasher);
    hasher.finish()
}

/// A hash of what the gates read in the object's status ([`crate::plan::gate::status_print`]).
fn gate_print(obj: &Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    crate::plan::gate::status_print(obj).to_string().hash(&mut hasher);
    hasher.finish()
}

/// What of a Strimzi status says something about the spec and its health: the conditions without
/// their timestamps, the generation observed, and a node pool's replicas and roles.
fn strimzi_status_print(status: &Value) -> Value {
    let conditions: Vec<Value> = status
        .get("conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            let mut c = c.clone();
            if let Some(m) = c.as_object_mut() {
                m.remove("lastTransitionTime");
            }
            c
        })
        .collect();
    serde_json::json!({
        "conditions": conditions,
        "observedGeneration": status.get("observedGeneration"),
        "replicas": status.get("replicas"),
        "roles": status.get("roles"),
    })
}

fn name_of(kind: &str, obj: &DynamicObject) -> String {
    let name = obj.metadata.name.as_deref().unwrap_or("");
    match obj.metadata.namespace.as_deref() {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

async fn watch_one(
    api: Api<DynamicObject>,
    config: watcher::Config,
    kind: String,
    strimzi: bool,
    tx: mpsc::Sender<Signal>,
) {
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    // Per object: the drift fingerprint, and (Strimzi objects) a hash of what the gates read.
    let mut prints: HashMap<String, (u64, u64)> = HashMap::new();
    let mut listing: HashMap<String, (u64, u64)> = HashMap::new();
    let print_of = |obj: &DynamicObject| -> (u64, u64) {
        serde_json::to_value(obj)
            .map(|v| (fingerprint(&v, strimzi), if strimzi { gate_print(&v) } else { 0 }))
            .unwrap_or_default()
    };
    let mut listed_once = false;
    while let Some(event) = stream.next().await {
        let signal = match event {
            Ok(Event::Init) => {
                listing.clear();
                None
            }
            Ok(Event::InitApply(obj)) => {
                listing.insert(name_of(&kind, &obj), print_of(&obj));
                None
            }
            Ok(Event::InitDone) => {
                // The first list: the watch starts after the apply, so a change made in between
                // is in this list and would never be an event; one plan of the cluster finds it.
                // A later list (the watch restarted: apiserver restart, expired resourceVersion):
                // only when what it lists differs from what was watched.
                let signal = !listed_once || listing != prints;
                prints = std::mem::take(&mut listing);
                listed_once = true;
                signal.then_some(Signal::Resync)
            }
            Ok(Event::Apply(obj)) => {
                let name = name_of(&kind, &obj);
                let print = print_of(&obj);
                match prints.insert(name.clone(), print) {
                    Some(before) if before == print => None,
                    Some(before) if before.0 == print.0 => Some(Signal::Status(name)),
                    _ => Some(Signal::Changed(name)),
                }
            }
            Ok(Event::Delete(obj)) => {
                let name = name_of(&kind, &obj);
                prints.remove(&name);
                Some(Signal::Changed(name))
            }
            Err(e) => {
                tracing::debug!(kind = kind.as_str(), "drift watch: {e}");
                None
            }
        };
        if let Some(signal) = signal {
            tracing::debug!(?signal, "drift watch event");
            // A full channel already holds a wake-up: the worker plans the whole cluster anyway.
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(signal) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_and_bookkeeping_do_not_change_the_fingerprint() {
        let a = json!({"kind": "Kafka", "metadata": {"name": "m", "resourceVersion": "1", "generation": 1},
                       "spec": {"replicas": 3}, "status": {"ready": false}});
        let b = json!({"kind": "Kafka", "metadata": {"name": "m", "resourceVersion": "2", "generation": 1,
                       "managedFields": [{"manager": "strimzi"}]}, "spec": {"replicas": 3}, "status": {"ready": true}});
        let c = json!({"kind": "Kafka", "metadata": {"name": "m", "resourceVersion": "3"}, "spec": {"replicas": 7}});
        assert_eq!(fingerprint(&a, false), fingerprint(&b, false));
        assert_ne!(fingerprint(&a, false), fingerprint(&c, false));
    }

    #[test]
    fn a_strimzi_warning_changes_the_fingerprint_its_timestamp_does_not() {
        let with = |conditions: Value| {
            json!({"apiVersion": "kafka.strimzi.io/v1", "kind": "Kafka", "metadata": {"name": "m"},
                   "spec": {"kafka": {}}, "status": {"observedGeneration": 1, "conditions": conditions}})
        };
        let ready =
            with(json!([{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-07T10:00:00Z"}]));
        let ready_later =
            with(json!([{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-07T11:00:00Z"}]));
        let warned = with(json!([{"type": "Ready", "status": "True"},
            {"type": "Warning", "status": "True", "reason": "KafkaStorage", "message": "m"}]));
        assert_eq!(fingerprint(&ready, false), fingerprint(&ready_later, false));
        assert_ne!(fingerprint(&ready, false), fingerprint(&warned, false));
    }
}
