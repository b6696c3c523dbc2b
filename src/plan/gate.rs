//! Gates on live state: changes of a revision that may only be applied once a live object has
//! reached a state, e.g. Strimzi's ZooKeeper-to-KRaft migration, where each step (an annotation
//! value, a removed field, a deleted node pool) must wait for the operator's
//! `status.kafkaMetadataState` before the next one.
//!
//! This module owns the gates: the table [`GATES`] (generic data: which change of which object
//! class needs which live condition), their evaluation ([`evaluate`]: desired and live objects ->
//! the [`Blocked`] gates, each naming the object, the change and what it waits for), what of a
//! live object a gate reads ([`status_print`], for the daemon's watches) and the wait for a gated
//! object to change ([`wait_for_change`], for `apply --wait`). The apply engine refuses a revision
//! with a blocked gate as a whole (nothing of it is written for that cluster, prune included), the
//! daemon reports it as waiting and applies it by itself once the watched status reaches the state.
//!
//! The states and transitions are Strimzi 0.45's (`KafkaMetadataState`,
//! `KafkaMetadataStateManager`): `ZooKeeper` -(migration)-> `KRaftMigration` -> `KRaftDualWriting`
//! -> `KRaftPostMigration` -(enabled)-> `PreKRaft` -> `KRaft`; from `KRaftPostMigration`,
//! `rollback` goes back to `KRaftDualWriting`, then (controller pool deleted) `disabled` to
//! `ZooKeeper`.
//!
//! A gate only guards a change of an object that exists live: creating a cluster is not a step of
//! a migration. A gate reads live state only, never git: the live status is what the operator did.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Cluster, RequestError};
use crate::manifest::ResId;

/// The Strimzi annotation that drives the migration.
pub const KRAFT_ANNOTATION: &str = "strimzi.io/kraft";
/// The Strimzi annotation that enables node pools on a ZooKeeper Kafka.
pub const NODE_POOLS_ANNOTATION: &str = "strimzi.io/node-pools";

const STRIMZI_GROUP: &str = "kafka.strimzi.io";
const KRAFT_PATH: Path = &["metadata", "annotations", KRAFT_ANNOTATION];
const STATE_PATH: Path = &["status", "kafkaMetadataState"];

/// A path into an object: JSON keys from its root.
pub type Path = &'static [&'static str];

/// One live condition: the value at `path` is one of `values` (any value when `values` is empty),
/// or one of `past` (states beyond the one waited for that open the gate too; not displayed: the
/// line says what the gate waits for).
#[derive(Debug)]
pub struct Condition {
    pub path: Path,
    pub values: &'static [&'static str],
    pub past: &'static [&'static str],
}

/// What a gate guards.
#[derive(Debug)]
pub enum Guarded {
    /// The value at `path` changes to one of `values`; an absent value reads as `absent_as`.
    SetTo {
        path: Path,
        values: &'static [&'static str],
        absent_as: Option<&'static str>,
    },
    /// The value at `path` is live and no longer in git.
    Removed { path: Path },
    /// The object is deleted by prune.
    Pruned,
}

/// Which objects a gate applies to. A gate of a Kafka reads the Kafka itself; the others read the
/// live Kafka they belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// A Strimzi `Kafka`.
    Kafka,
    /// A `KafkaNodePool` with the controller role (read from the live pool).
    ControllerPool,
    /// The `KafkaNodePool` named `kafka` with the broker role: the brokers of a ZooKeeper cluster
    /// moved into node pools (any other name means new nodes without the data).
    KafkaBrokerPool,
    /// An object that only serves ZooKeeper (see [`is_zookeeper_only`]).
    ZooKeeperOnly,
}

/// One gate: a change of an object class that needs a live condition.
#[derive(Debug)]
pub struct Gate {
    /// Stable id (`kraft-enabled`).
    pub id: &'static str,
    pub class: Class,
    pub guarded: Guarded,
    /// Alternatives: the gate is open when every condition of one of them holds.
    pub needs: &'static [&'static [Condition]],
    /// Why, for the docs and the reviewer.
    pub why: &'static str,
}

const fn state(values: &'static [&'static str], past: &'static [&'static str]) -> Condition {
    Condition {
        path: STATE_PATH,
        values,
        past,
    }
}

/// The gates (Strimzi 0.45 ZooKeeper-to-KRaft migration).
pub const GATES: &[Gate] = &[
    Gate {
        id: "kraft-migration",
        class: Class::Kafka,
        guarded: Guarded::SetTo {
            path: KRAFT_PATH,
            values: &["migration"],
            absent_as: Some("disabled"),
        },
        needs: &[&[
            state(&["ZooKeeper"], &[]),
            Condition {
                path: &["metadata", "annotations", NODE_POOLS_ANNOTATION],
                values: &["enabled"],
                past: &[],
            },
            Condition {
                path: &["status", "kafkaNodePools"],
                values: &[],
                past: &[],
            },
        ]],
        why: "a migration starts from a ZooKeeper cluster whose brokers already run in node pools",
    },
    Gate {
        id: "kraft-enabled",
        class: Class::Kafka,
        guarded: Guarded::SetTo {
            path: KRAFT_PATH,
            values: &["enabled"],
            absent_as: Some("disabled"),
        },
        needs: &[&[state(&["KRaftPostMigration"], &["PreKRaft", "KRaft"])]],
        why: "KRaft can only be finalised once the brokers run without ZooKeeper (post-migration); Strimzi ignores it before",
    },
    Gate {
        id: "kraft-rollback",
        class: Class::Kafka,
        guarded: Guarded::SetTo {
            path: KRAFT_PATH,
            values: &["rollback"],
            absent_as: Some("disabled"),
        },
        needs: &[&[state(&["KRaftPostMigration"], &[])]],
        why: "Strimzi rolls a migration back only from post-migration",
    },
    Gate {
        id: "kraft-disabled",
        class: Class::Kafka,
        guarded: Guarded::SetTo {
            path: KRAFT_PATH,
            values: &["disabled"],
            absent_as: Some("disabled"),
        },
        needs: &[&[state(&["ZooKeeper", "KRaftMigration", "KRaftDualWriting"], &[])]],
        why: "back to ZooKeeper only before post-migration or after a rollback (dual writing again)",
    },
    Gate {
        id: "kraft-zookeeper-removed",
        class: Class::Kafka,
        guarded: Guarded::Removed {
            path: &["spec", "zookeeper"],
        },
        needs: &[&[state(&["KRaft"], &[])]],
        why: "spec.zookeeper is needed until the migration is finalised",
    },
    Gate {
        id: "kraft-controller-pool-pruned",
        class: Class::ControllerPool,
        guarded: Guarded::Pruned,
        needs: &[
            &[state(&["ZooKeeper"], &[])],
            &[
                state(&["KRaftDualWriting"], &[]),
                Condition {
                    path: KRAFT_PATH,
                    values: &["rollback"],
                    past: &[],
                },
            ],
        ],
        why: "the controllers hold the metadata from the start of a migration on; they go only after a rollback",
    },
    Gate {
        id: "kraft-broker-pool-pruned",
        class: Class::KafkaBrokerPool,
        guarded: Guarded::Pruned,
        needs: &[&[state(&["ZooKeeper", "KRaft"], &[])]],
        why: "the brokers of the migrated cluster are the `kafka` pool until the migration ends",
    },
    Gate {
        id: "kraft-zookeeper-only-pruned",
        class: Class::ZooKeeperOnly,
        guarded: Guarded::Pruned,
        needs: &[&[state(&["KRaft"], &[])]],
        why: "ZooKeeper serves the cluster until the migration is finalised",
    },
];

/// One object as the gates see it: in git (`desired`), live, or both. A prune candidate has no
/// desired object.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub id: &'a ResId,
    pub desired: Option<&'a Value>,
    pub live: Option<&'a Value>,
}

/// A change of the revision that waits for live state. Serialized in plans (`blocked`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    /// The gate's id.
    pub gate: String,
    /// The object changed, `Kind/namespace/name`.
    pub object: String,
    /// The change: `strimzi.io/kraft=enabled`, `spec.zookeeper removed`, `prune`.
    pub change: String,
    /// What it waits for: `kafkaMetadataState KRaftPostMigration` (prefixed with the object read
    /// when it is another one).
    pub needs: String,
    /// What the read object says now: `KRaftDualWriting`.
    pub live: String,
    /// The object whose change may open the gate.
    pub watch: ResId,
    /// Its resourceVersion when read: a watch started later sees a change it missed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_version: Option<String>,
}

impl Blocked {
    /// The alert and metric key part: the object and the change.
    pub fn key(&self) -> String {
        format!("{} {}", self.object, self.change)
    }
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} needs {}, live: {}",
            self.object, self.change, self.needs, self.live
        )
    }
}

/// Why waiting for a gated object failed.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("discovery failed: {0}")]
    Discovery(RequestError),
    #[error("{0}: its kind is not served")]
    NotServed(String),
    #[error("still waiting after {}s: {}", .waited.as_secs(), lines(.blocked))]
    Timeout { waited: Duration, blocked: Vec<Blocked> },
}

fn lines(blocked: &[Blocked]) -> String {
    blocked
        .iter()
        .map(Blocked::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn at(obj: &Value, path: Path) -> Option<&Value> {
    path.iter().try_fold(obj, |v, key| v.get(*key))
}

fn str_at(obj: &Value, path: Path) -> Option<&str> {
    at(obj, path).and_then(Value::as_str)
}

/// How a path reads in a line: an annotation by its key, else its last key.
fn label(path: Path) -> &'static str {
    path.last().copied().unwrap_or("")
}

fn or_list(values: &[&str]) -> String {
    match values {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

impl Condition {
    fn holds(&self, obj: &Value) -> bool {
        match at(obj, self.path) {
            None | Some(Value::Null) => false,
            Some(v) if self.values.is_empty() => !v.as_array().is_some_and(Vec::is_empty),
            Some(v) => v
                .as_str()
                .is_some_and(|s| self.values.contains(&s) || self.past.contains(&s)),
        }
    }

    fn describe(&self) -> String {
        if self.values.is_empty() {
            format!("{} set", label(self.path))
        } else {
            format!("{} {}", label(self.path), or_list(self.values))
        }
    }

    /// What the object says at this path: its value, or `(none)`.
    fn live(&self, obj: &Value) -> String {
        match at(obj, self.path) {
            None | Some(Value::Null) => "(none)".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => format!("{} item(s)", a.len()),
            Some(v) => v.to_string(),
        }
    }
}

impl Gate {
    fn is_open(&self, read: &Value) -> bool {
        self.needs.iter().any(|all| all.iter().all(|c| c.holds(read)))
    }

    /// `kafkaMetadataState ZooKeeper, or kafkaMetadataState KRaftDualWriting and strimzi.io/kraft rollback`.
    fn describe_needs(&self) -> String {
        self.needs
            .iter()
            .map(|all| {
                all.iter()
                    .map(Condition::describe)
                    .collect::<Vec<_>>()
                    .join(" and ")
            })
            .collect::<Vec<_>>()
            .join(", or ")
    }

    /// The live values of every path the gate reads, the state first: `KRaftDualWriting`, or
    /// `ZooKeeper, strimzi.io/node-pools (none)`: the values that do not hold are named.
    fn describe_live(&self, read: &Value) -> String {
        let mut seen = BTreeSet::new();
        let mut parts = Vec::new();
        for c in self.needs.iter().flat_map(|all| all.iter()) {
            if !seen.insert(c.path) {
                continue;
            }
            let value = c.live(read);
            if c.path == STATE_PATH {
                parts.insert(0, value);
            } else if !c.holds(read) {
                parts.push(format!("{} {value}", label(c.path)));
            }
        }
        parts.join(", ")
    }

    /// The change this gate guards in `subject`, when it has it.
    fn change_of(&self, subject: &Subject<'_>) -> Option<String> {
        let live = subject.live?;
        match &self.guarded {
            Guarded::SetTo {
                path,
                values,
                absent_as,
            } => {
                let desired = subject.desired?;
                let read = |obj: &Value| str_at(obj, path).or(*absent_as).map(str::to_string);
                let want = read(desired)?;
                (values.contains(&want.as_str()) && read(live).as_deref() != Some(want.as_str()))
                    .then(|| format!("{}={want}", label(path)))
            }
            Guarded::Removed { path } => {
                let desired = subject.desired?;
                (at(live, path).is_some_and(|v| !v.is_null()) && at(desired, path).is_none_or(Value::is_null))
                    .then(|| format!("{} removed", path.join(".")))
            }
            Guarded::Pruned => subject.desired.is_none().then(|| "prune".to_string()),
        }
    }
}

fn is_kind(id: &ResId, kind: &str) -> bool {
    id.gvk.group == STRIMZI_GROUP && id.gvk.kind == kind
}

fn roles(pool: &Value) -> Vec<&str> {
    pool.pointer("/spec/roles")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether `obj` (a live object in the namespace of the live `kafka`) only serves ZooKeeper
/// ([`crate::manifest::zookeeper::zookeeper_only_object`], the reading the migration rules share).
pub fn is_zookeeper_only(obj: &Value, kafka: &Value) -> bool {
    crate::manifest::zookeeper::zookeeper_only_object(obj, kafka).is_some()
}

/// The live Kafkas of the subjects, by namespace and name.
type Kafkas<'a> = BTreeMap<(Option<&'a str>, &'a str), (&'a ResId, &'a Value)>;

/// The live Kafkas `subject` (of `class`) belongs to, and the gates' reads of them.
fn owners<'a>(class: Class, subject: &Subject<'a>, kafkas: &Kafkas<'a>) -> Vec<(&'a ResId, &'a Value)> {
    let Some(live) = subject.live else {
        return Vec::new();
    };
    let ns = subject.id.namespace.as_deref();
    match class {
        Class::Kafka => {
            if is_kind(subject.id, "Kafka") {
                vec![(subject.id, live)]
            } else {
                Vec::new()
            }
        }
        Class::ControllerPool | Class::KafkaBrokerPool => {
            if !is_kind(subject.id, "KafkaNodePool") {
                return Vec::new();
            }
            let roles = roles(live);
            let member = match class {
                Class::ControllerPool => roles.contains(&"controller"),
                _ => subject.id.name == "kafka" && roles.contains(&"broker"),
            };
            let cluster = live
                .pointer("/metadata/labels/strimzi.io~1cluster")
                .and_then(Value::as_str);
            match cluster.and_then(|c| kafkas.get(&(ns, c))) {
                Some(&k) if member => vec![k],
                _ => Vec::new(),
            }
        }
        Class::ZooKeeperOnly => {
            if subject.id.gvk.group == STRIMZI_GROUP {
                return Vec::new();
            }
            kafkas
                .iter()
                .filter(|((kns, _), _)| *kns == ns)
                .map(|(_, k)| *k)
                .filter(|(_, kafka)| is_zookeeper_only(live, kafka))
                .collect()
        }
    }
}

/// The gates `subjects` (the desired objects with their live state, and the prune candidates)
/// leave blocked. The pool and ZooKeeper-only gates read the live Kafkas that stay in the revision:
/// an object whose Kafka is not in it (deleted with it, or never kgitops') is not gated.
pub fn evaluate(subjects: &[Subject<'_>]) -> Vec<Blocked> {
    let mut kafkas: Kafkas<'_> = BTreeMap::new();
    for s in subjects {
        if let (true, Some(_), Some(live)) = (is_kind(s.id, "Kafka"), s.desired, s.live) {
            kafkas.insert((s.id.namespace.as_deref(), s.id.name.as_str()), (s.id, live));
        }
    }
    let mut out = Vec::new();
    for s in subjects {
        for gate in GATES {
            let Some(change) = gate.change_of(s) else { continue };
            for (read_id, read) in owners(gate.class, s, &kafkas) {
                if gate.is_open(read) {
                    continue;
                }
                let needs = gate.describe_needs();
                out.push(Blocked {
                    gate: gate.id.to_string(),
                    object: s.id.to_string(),
                    change: change.clone(),
                    needs: if read_id == s.id {
                        needs
                    } else {
                        format!("{read_id} {needs}")
                    },
                    live: gate.describe_live(read),
                    watch: read_id.clone(),
                    watch_version: read
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                });
            }
        }
    }
    out
}

/// What of `obj` the gates read under `status` (for Strimzi objects): a status-only change of it
/// may open a gate, any other status change cannot. The daemon's watches compare it.
pub fn status_print(obj: &Value) -> Value {
    let mut paths: Vec<Path> = GATES
        .iter()
        .flat_map(|g| g.needs.iter().flat_map(|all| all.iter()))
        .map(|c| c.path)
        .filter(|p| p.first() == Some(&"status"))
        .collect();
    paths.sort();
    paths.dedup();
    Value::Array(
        paths
            .into_iter()
            .map(|p| at(obj, p).cloned().unwrap_or(Value::Null))
            .collect(),
    )
}

/// Waits until an object `blocked` watches changes (or is deleted), at most `timeout`: then the
/// caller plans again. A change since the plan read it (another `resourceVersion`) returns at once.
pub async fn wait_for_change(
    cluster: &Cluster,
    blocked: &[Blocked],
    timeout: Duration,
) -> Result<(), GateError> {
    let mut watched: BTreeMap<&ResId, Option<&str>> = BTreeMap::new();
    for b in blocked {
        watched.insert(&b.watch, b.watch_version.as_deref());
    }
    let mut streams = Vec::new();
    for (id, version) in watched {
        let resolved = cluster
            .resolve(&id.gvk)
            .await
            .map_err(GateError::Discovery)?
            .ok_or_else(|| GateError::NotServed(id.to_string()))?;
        let api: Api<DynamicObject> = match &id.namespace {
            Some(ns) if resolved.namespaced => {
                Api::namespaced_with(cluster.client().clone(), ns, &resolved.resource)
            }
            _ => Api::all_with(cluster.client().clone(), &resolved.resource),
        };
        let config = watcher::Config::default().fields(&format!("metadata.name={}", id.name));
        let version = version.map(str::to_string);
        let changed = watcher::watcher(api, config)
            .default_backoff()
            .filter_map(move |event| {
                let changed = match event {
                    Ok(Event::InitApply(obj) | Event::Apply(obj)) => {
                        obj.metadata.resource_version.as_deref() != version.as_deref()
                    }
                    Ok(Event::Delete(_)) => true,
                    Ok(Event::Init | Event::InitDone) | Err(_) => false,
                };
                futures::future::ready(changed.then_some(()))
            });
        streams.push(changed.boxed());
    }
    let mut any = futures::stream::select_all(streams);
    match tokio::time::timeout(timeout, any.next()).await {
        Ok(_) => Ok(()),
        Err(_) => Err(GateError::Timeout {
            waited: timeout,
            blocked: blocked.to_vec(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kafka(annotations: Value, spec: Value, status: Value) -> Value {
        json!({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka",
               "metadata": {"name": "main", "namespace": "kafka-prod", "annotations": annotations,
                            "resourceVersion": "7"},
               "spec": spec, "status": status})
    }

    fn zk_spec() -> Value {
        json!({"kafka": {"listeners": []}, "zookeeper": {"replicas": 3}})
    }

    fn pools_on() -> Value {
        json!({"strimzi.io/node-pools": "enabled"})
    }

    fn with_kraft(value: &str) -> Value {
        json!({"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": value})
    }

    fn state_status(state: &str) -> Value {
        json!({"kafkaMetadataState": state, "kafkaNodePools": [{"name": "kafka"}]})
    }

    fn id(obj: &Value) -> ResId {
        ResId::of(obj).unwrap()
    }

    fn lines_of(desired: &Value, live: &Value) -> Vec<String> {
        let id = id(desired);
        evaluate(&[Subject {
            id: &id,
            desired: Some(desired),
            live: Some(live),
        }])
        .iter()
        .map(Blocked::to_string)
        .collect()
    }

    #[test]
    fn enabled_waits_for_post_migration() {
        let desired = kafka(with_kraft("enabled"), zk_spec(), json!({}));
        let live = kafka(
            with_kraft("migration"),
            zk_spec(),
            state_status("KRaftDualWriting"),
        );
        assert_eq!(
            lines_of(&desired, &live),
            [
                "Kafka/kafka-prod/main: strimzi.io/kraft=enabled needs kafkaMetadataState KRaftPostMigration, live: KRaftDualWriting"
            ]
        );
        let live = kafka(
            with_kraft("migration"),
            zk_spec(),
            state_status("KRaftPostMigration"),
        );
        assert!(lines_of(&desired, &live).is_empty());
        // Already enabled live: no change, no gate, whatever the state.
        let live = kafka(with_kraft("enabled"), zk_spec(), state_status("PreKRaft"));
        assert!(lines_of(&desired, &live).is_empty());
    }

    #[test]
    fn migration_needs_zookeeper_and_node_pools_in_effect() {
        let desired = kafka(with_kraft("migration"), zk_spec(), json!({}));
        let live = kafka(json!({}), zk_spec(), json!({"kafkaMetadataState": "ZooKeeper"}));
        assert_eq!(
            lines_of(&desired, &live),
            [
                "Kafka/kafka-prod/main: strimzi.io/kraft=migration needs kafkaMetadataState ZooKeeper and \
              strimzi.io/node-pools enabled and kafkaNodePools set, live: ZooKeeper, strimzi.io/node-pools (none), \
              kafkaNodePools (none)"
            ]
        );
        let live = kafka(pools_on(), zk_spec(), state_status("ZooKeeper"));
        assert!(lines_of(&desired, &live).is_empty());
        // Absent reads as disabled: setting disabled explicitly on a ZooKeeper cluster is no change.
        let desired = kafka(with_kraft("disabled"), zk_spec(), json!({}));
        assert!(lines_of(&desired, &live).is_empty());
    }

    #[test]
    fn rollback_only_from_post_migration_and_zookeeper_removal_only_in_kraft() {
        let desired = kafka(with_kraft("rollback"), zk_spec(), json!({}));
        let live = kafka(with_kraft("migration"), zk_spec(), state_status("KRaftMigration"));
        assert_eq!(
            lines_of(&desired, &live),
            [
                "Kafka/kafka-prod/main: strimzi.io/kraft=rollback needs kafkaMetadataState KRaftPostMigration, live: KRaftMigration"
            ]
        );
        let desired = kafka(
            with_kraft("enabled"),
            json!({"kafka": {"listeners": []}}),
            json!({}),
        );
        let live = kafka(with_kraft("enabled"), zk_spec(), state_status("PreKRaft"));
        assert_eq!(
            lines_of(&desired, &live),
            ["Kafka/kafka-prod/main: spec.zookeeper removed needs kafkaMetadataState KRaft, live: PreKRaft"]
        );
        let live = kafka(with_kraft("enabled"), zk_spec(), state_status("KRaft"));
        assert!(lines_of(&desired, &live).is_empty());
    }

    #[test]
    fn a_kafka_created_by_the_revision_is_not_gated() {
        let desired = kafka(with_kraft("enabled"), json!({"kafka": {}}), json!({}));
        let id = id(&desired);
        assert!(
            evaluate(&[Subject {
                id: &id,
                desired: Some(&desired),
                live: None
            }])
            .is_empty()
        );
    }

    fn pool(name: &str, roles: &[&str]) -> Value {
        json!({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaNodePool",
               "metadata": {"name": name, "namespace": "kafka-prod", "labels": {"strimzi.io/cluster": "main"}},
               "spec": {"replicas": 3, "roles": roles}})
    }

    fn pruned(kafka_live: &Value, gone: &Value) -> Vec<String> {
        let (kid, gid) = (id(kafka_live), id(gone));
        evaluate(&[
            Subject {
                id: &kid,
                desired: Some(kafka_live),
                live: Some(kafka_live),
            },
            Subject {
                id: &gid,
                desired: None,
                live: Some(gone),
            },
        ])
        .iter()
        .map(Blocked::to_string)
        .collect()
    }

    #[test]
    fn the_controller_pool_goes_only_after_a_rollback() {
        let controllers = pool("controller", &["controller"]);
        for (annotation, state, open) in [
            ("migration", "KRaftMigration", false),
            ("migration", "KRaftPostMigration", false),
            ("enabled", "KRaft", false),
            ("rollback", "KRaftDualWriting", true),
            ("disabled", "ZooKeeper", true),
        ] {
            let live = kafka(with_kraft(annotation), zk_spec(), state_status(state));
            let lines = pruned(&live, &controllers);
            assert_eq!(lines.is_empty(), open, "{annotation} {state}: {lines:?}");
        }
        let live = kafka(
            with_kraft("migration"),
            zk_spec(),
            state_status("KRaftDualWriting"),
        );
        assert_eq!(
            pruned(&live, &controllers),
            [
                "KafkaNodePool/kafka-prod/controller: prune needs Kafka/kafka-prod/main kafkaMetadataState ZooKeeper, \
              or kafkaMetadataState KRaftDualWriting and strimzi.io/kraft rollback, live: KRaftDualWriting, strimzi.io/kraft migration"
            ]
        );
        // The brokers' `kafka` pool: not during the migration; another broker pool is not gated.
        let live = kafka(
            with_kraft("migration"),
            zk_spec(),
            state_status("KRaftPostMigration"),
        );
        assert_eq!(pruned(&live, &pool("kafka", &["broker"])).len(), 1);
        assert!(pruned(&live, &pool("other", &["broker"])).is_empty());
        let live = kafka(with_kraft("enabled"), zk_spec(), state_status("KRaft"));
        assert!(pruned(&live, &pool("kafka", &["broker"])).is_empty());
    }

    #[test]
    fn zookeeper_only_objects_go_once_kraft() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "zoo-entrance", "namespace": "kafka-prod"}});
        let other = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "kafka-ui", "namespace": "kafka-prod"}});
        let elsewhere = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "zk-exporter", "namespace": "monitoring"}});
        let mut spec = zk_spec();
        spec["zookeeper"]["metricsConfig"] = json!({"type": "jmxPrometheusExporter", "valueFrom": {"configMapKeyRef": {"name": "zk-metrics", "key": "k"}}});
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "zk-metrics", "namespace": "kafka-prod"}});
        let live = kafka(with_kraft("enabled"), spec.clone(), state_status("PreKRaft"));
        assert_eq!(
            pruned(&live, &deployment),
            [
                "Deployment/kafka-prod/zoo-entrance: prune needs Kafka/kafka-prod/main kafkaMetadataState KRaft, live: PreKRaft"
            ]
        );
        assert_eq!(pruned(&live, &config).len(), 1);
        assert!(pruned(&live, &other).is_empty());
        assert!(pruned(&live, &elsewhere).is_empty());
        let live = kafka(with_kraft("enabled"), spec, state_status("KRaft"));
        assert!(pruned(&live, &deployment).is_empty());
    }

    #[test]
    fn objects_pruned_with_their_kafka_are_not_gated() {
        let live = kafka(json!({}), zk_spec(), json!({}));
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "zoo-entrance", "namespace": "kafka-prod"}});
        let (kid, did) = (id(&live), id(&deployment));
        let gone = |s: &ResId, v: &Value| {
            evaluate(&[
                Subject {
                    id: &kid,
                    desired: None,
                    live: Some(&live),
                },
                Subject {
                    id: s,
                    desired: None,
                    live: Some(v),
                },
            ])
        };
        assert!(gone(&did, &deployment).is_empty());
        assert_eq!(pruned(&live, &deployment).len(), 1, "kept, it gates");
    }

    #[test]
    fn the_status_print_holds_only_what_gates_read() {
        let a = kafka(
            json!({}),
            zk_spec(),
            json!({"kafkaMetadataState": "ZooKeeper", "clusterId": "a"}),
        );
        let b = kafka(
            json!({}),
            zk_spec(),
            json!({"kafkaMetadataState": "ZooKeeper", "clusterId": "b"}),
        );
        let c = kafka(
            json!({}),
            zk_spec(),
            json!({"kafkaMetadataState": "KRaftMigration", "clusterId": "a"}),
        );
        assert_eq!(status_print(&a), status_print(&b));
        assert_ne!(status_print(&a), status_print(&c));
    }
}
