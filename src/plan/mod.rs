//! Desired vs live: discovery, server-side apply dry-run, normalization, Secret masking and the
//! per-object diff, collected into a serializable [`Plan`].
//!
//! - [`Plan`], [`PlanEntry`], [`compare`]: the result and the pure per-object comparison (masked diff,
//!   field changes). No cluster needed: the offline diff between revisions builds its plan with
//!   [`compare`] too.
//! - [`plan_live`]: the live path. Every desired object is resolved by discovery (an unknown kind is
//!   an error before anything is sent), read live, and sent as a server-side apply **dry-run** with
//!   field manager `kgitops` and force, so that defaults, admission and schema are the server's.
//!   The dry-run result is what apply would store; live and dry-run are normalized
//!   ([`normalize::for_compare`]) and compared. Objects whose live state already proves that an
//!   apply would change nothing ([`fields::apply_is_noop`]: kgitops owns exactly the fields git
//!   sets, with the same values) are not sent: they are never written, so the server's answer
//!   could not change anything ([`PlanOptions::dry_run_unchanged`] sends them anyway). Unless a
//!   mutating admission webhook of the cluster may be called for them ([`admission`]): its change
//!   is not in the live state, so those are dry-run.
//!
//! The live plan of a whole cluster (`apply::plan`) also carries the changes that wait for live state
//! ([`Plan::blocked`], evaluated by [`gate`]): while any waits, nothing of the revision is applied.
//!
//! Secret values never leave: diffs and field changes are masked ([`mask::mask_pair`]), and every
//! error [`plan_live`] returns is scrubbed of every value of every Secret of the render and of the
//! live objects ([`mask::Scrubber`]; server messages echo what was sent).
//!
//! Namespaced objects without `metadata.namespace` are an error naming the object: kgitops does not
//! default them from the kubeconfig context as kubectl does, because the same commit must land in
//! the same place whoever (or whichever daemon) applies it. Cluster-scoped objects lose a namespace
//! they carry (kustomize's `namespace:` sets it on kinds it does not know).

pub mod admission;
pub mod client;
pub mod cluster;
pub mod connect;
pub mod diff;
pub mod fields;
pub mod gate;
pub mod in_effect;
pub mod mask;
pub mod normalize;
pub mod offline;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::{Gvk, ResId};
pub use cluster::{Cluster, RequestError, Resolved};

/// The field manager kgitops applies with.
pub const FIELD_MANAGER: &str = "kgitops";

/// Field manager of client-side `kubectl apply` (operation `Update`).
pub const CSA_MANAGER: &str = "kubectl-client-side-apply";

/// Opt-in annotation: delete and recreate the object when an immutable field changes.
pub const RECREATE_ANNOTATION: &str = "kgitops.io/recreate";

/// From this many objects of one kind in one namespace on, their live state is read with one list
/// instead of one get each.
pub const LIST_THRESHOLD: usize = 4;

/// What applying the plan does to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Not live yet.
    Create,
    /// Live and different.
    Update,
    /// Live and equal (after normalization): not sent at all.
    Unchanged,
    /// An immutable field changes and the object opted in to be deleted and created again.
    Recreate,
    /// Live, in the inventory, no longer in git: deleted by `apply --prune`.
    DeleteCandidate,
}

impl Action {
    /// Whether applying changes the object.
    pub fn is_change(self) -> bool {
        self != Action::Unchanged
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
            Action::Recreate => "recreate",
            Action::DeleteCandidate => "delete-candidate",
        })
    }
}

/// One changed field: its path, the values before and after (masked for Secrets; `None` when
/// absent), and the managers other than kgitops that own the live value, i.e. who changed it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub managers: Vec<String>,
}

/// The plan for one object. Never holds a Secret value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// `Kind/namespace/name`.
    pub object: String,
    pub id: ResId,
    pub action: Action,
    /// Masked unified diff (empty when unchanged).
    pub diff: String,
    /// Changed fields (updates only), with who changed them live.
    pub changes: Vec<FieldChange>,
    /// Remarks: not validated by the server yet, protected from prune, taken over from kubectl, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What applying one revision of one cluster would change. Serializable, masked, and independent
/// of any cluster connection: the offline diff produces the same type.
///
/// JSON (`--output json`), stable:
///
/// ```json
/// {"cluster": "dev", "revision": "HEAD",
///  "entries": [{"object": "Kafka/kafka-dev/main",
///               "id": {"gvk": {"group": "kafka.strimzi.io", "version": "v1beta2", "kind": "Kafka"},
///                      "namespace": "kafka-dev", "name": "main"},
///               "action": "update",            // create | update | unchanged | recreate | delete-candidate
///               "diff": "--- a/Kafka/...",      // masked unified diff, "" when unchanged
///               "changes": [{"path": "spec.kafka.replicas", "before": 7, "after": 3,
///                            "managers": ["kubectl-patch"]}],
///               "notes": ["..."]}],             // omitted when empty
///  "not_in_effect": [{"object": "KafkaNodePool/kafka-dev/brokers", "field": "spec.replicas",
///                     "effect": "ignored", "reason": "ScaleDownPreventionCheck", "message": "...",
///                     "reported_by": "Kafka/kafka-dev/main"}],  // live plans only; omitted when empty
///  "blocked": [{"gate": "kraft-enabled", "object": "Kafka/kafka-prod/main",
///               "change": "strimzi.io/kraft=enabled", "needs": "kafkaMetadataState KRaftPostMigration",
///               "live": "KRaftDualWriting",
///               "watch": {"gvk": {...}, "namespace": "kafka-prod", "name": "main"},
///               "watch_version": "123"}]}     // live plans only; omitted when empty
/// ```
///
/// `not_in_effect` ([`in_effect`]) says what of the live Strimzi objects the operator did not carry
/// out (or warns about), from their status; it describes the live objects, not this plan's changes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Cluster overlay name (`dev`).
    pub cluster: String,
    /// The revision rendered, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub entries: Vec<PlanEntry>,
    /// What the operator did not carry out in the live objects (live plans only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_in_effect: Vec<in_effect::NotInEffect>,
    /// Changes of this revision that wait for live state ([`gate`]; live plans of a whole cluster
    /// only): while any is here, nothing of the revision is applied to the cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<gate::Blocked>,
}

impl Plan {
    /// Whether anything would change.
    pub fn has_changes(&self) -> bool {
        self.entries.iter().any(|e| e.action.is_change())
    }

    /// How many entries have each action.
    pub fn counts(&self) -> BTreeMap<Action, usize> {
        let mut out = BTreeMap::new();
        for e in &self.entries {
            *out.entry(e.action).or_insert(0) += 1;
        }
        out
    }
}

/// Compares two states of one object and builds its plan entry: both sides normalized
/// ([`normalize::for_compare`]) and masked, a unified diff, and for updates the changed fields with
/// the managers owning them in `live` (the raw live object, when there is one).
///
/// `before`/`after` `None` mean absent: `(None, Some)` is a creation, `(Some, None)` a deletion.
pub fn compare(id: &ResId, before: Option<&Value>, after: Option<&Value>, live: Option<&Value>) -> PlanEntry {
    let b = before.map(normalize::for_compare);
    let a = after.map(normalize::for_compare);
    let (mb, ma) = mask::mask_pair(b.as_ref(), a.as_ref());
    let label = id.to_string();
    let action = match (&b, &a) {
        (None, Some(_)) => Action::Create,
        (Some(_), None) => Action::DeleteCandidate,
        (Some(x), Some(y)) if x != y => Action::Update,
        _ => Action::Unchanged,
    };
    let changes = match (&mb, &ma) {
        (Some(x), Some(y)) if action == Action::Update => diff::field_changes(x, y, live, FIELD_MANAGER),
        _ => Vec::new(),
    };
    let diff = if action == Action::Unchanged {
        String::new()
    } else {
        diff::unified(&label, mb.as_ref(), ma.as_ref())
    };
    PlanEntry {
        object: label,
        id: id.clone(),
        action,
        diff,
        changes,
        notes: Vec::new(),
    }
}

/// Why an object could not be dry-run before anything is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deferred {
    /// Its namespace is created by this same revision.
    NamespaceCreated(String),
    /// Its kind is defined by a CRD of this same revision.
    KindCreated,
}

impl fmt::Display for Deferred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Deferred::NamespaceCreated(ns) => write!(
                f,
                "not validated by the server yet: namespace {ns} is created by this revision (checked by dry-run right after it is)"
            ),
            Deferred::KindCreated => f.write_str(
                "not validated by the server yet: its CRD is created by this revision (checked by dry-run once the CRD is established)",
            ),
        }
    }
}

/// One desired object with everything plan learned about it; what apply works from. Holds
/// unmasked objects: never serialized, never printed.
#[derive(Clone, Debug)]
pub struct PlannedObject {
    pub id: ResId,
    /// `None` while its kind is defined by a CRD of this revision that is not established yet.
    pub resolved: Option<Resolved>,
    /// The object as sent (normalized by [`normalize::prepare`], labels added by the caller).
    pub desired: Value,
    pub live: Option<Value>,
    /// The server's dry-run answer; `None` when deferred, to be recreated, or not asked because the
    /// live object proves the apply a no-op (then the answer would be the live object itself).
    pub dry_run: Option<Value>,
    pub action: Action,
    /// Set when the object could not be dry-run yet.
    pub deferred: Option<Deferred>,
    /// The live object has fields owned by client-side `kubectl apply` that kgitops takes over.
    pub takeover: bool,
    /// Index of this object's entry in [`LivePlan::plan`].
    pub entry: usize,
}

/// A plan against a live cluster, with the objects apply needs.
#[derive(Clone, Debug)]
pub struct LivePlan {
    pub plan: Plan,
    pub objects: Vec<PlannedObject>,
    /// Every Secret value of the desired and live objects: what apply scrubs its errors with.
    pub scrubber: mask::Scrubber,
}

/// One object's failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFailure {
    /// `Kind/namespace/name`.
    pub object: String,
    pub message: String,
}

impl ObjectFailure {
    /// The failure with every known Secret value scrubbed from its message.
    pub fn scrubbed(self, scrubber: &mask::Scrubber) -> ObjectFailure {
        ObjectFailure {
            message: scrubber.scrub(&self.message),
            ..self
        }
    }
}

impl fmt::Display for ObjectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.object, self.message)
    }
}

/// What failures are grouped by in messages: their message, except that an apiserver that could not
/// be reached is one error whatever the transport said (refused, reset, closed mid-request).
fn failure_kind(message: &str) -> &str {
    match message.find(" unreachable: ") {
        Some(end) if message[..end].contains("apiserver") => &message[..end],
        _ => message,
    }
}

/// One line per distinct failure: objects that failed alike (an apiserver that went away fails every
/// object still to write) share one line, showing the most common of their messages and counting the
/// other objects.
pub(crate) fn failure_lines(failures: &[ObjectFailure]) -> String {
    let mut groups: Vec<Vec<&ObjectFailure>> = Vec::new(); // first seen first
    let mut by_kind: HashMap<&str, usize> = HashMap::new();
    for f in failures {
        let index = *by_kind.entry(failure_kind(&f.message)).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[index].push(f);
    }
    groups
        .iter()
        .map(|group| {
            let mut counts: HashMap<&str, usize> = HashMap::new();
            for f in group {
                *counts.entry(&f.message).or_default() += 1;
            }
            // The first of the most common messages (max_by_key would take the last).
            let most = counts.values().copied().max().unwrap_or(0);
            let shown = group
                .iter()
                .find(|f| counts[f.message.as_str()] == most)
                .unwrap_or(&group[0]);
            match group.len() {
                1 => shown.to_string(),
                n => format!("{shown} (and {} more object(s) with the same error)", n - 1),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why a plan could not be made. Nothing has been written when any of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("object #{index} of the render: {source}")]
    InvalidObject {
        index: usize,
        #[source]
        source: crate::manifest::IdError,
    },
    #[error("{object}: appears twice in the render")]
    Duplicate { object: String },
    #[error("discovery failed: {0}")]
    Discovery(RequestError),
    #[error("{}", failure_lines(.0))]
    Resolve(Vec<ObjectFailure>),
    #[error("{}", failure_lines(.0))]
    Read(Vec<ObjectFailure>),
    #[error("{}", failure_lines(.0))]
    DryRun(Vec<ObjectFailure>),
    /// CRD updates the apiserver would refuse because they drop a version objects are stored in
    /// ([`crate::manifest::crd::dropped_stored_versions`]); found before anything is written.
    #[error("{}", failure_lines(.0))]
    StoredVersionsDropped(Vec<ObjectFailure>),
}

impl PlanError {
    /// The error with every known Secret value scrubbed from its texts: what [`plan_live`] returns
    /// (server messages echo the objects sent).
    pub fn scrubbed(self, scrubber: &mask::Scrubber) -> PlanError {
        let all = |failures: Vec<ObjectFailure>| failures.into_iter().map(|f| f.scrubbed(scrubber)).collect();
        match self {
            PlanError::Discovery(e) => PlanError::Discovery(RequestError {
                message: scrubber.scrub(&e.message),
                fields: e
                    .fields
                    .into_iter()
                    .map(|(f, m)| (scrubber.scrub(&f), scrubber.scrub(&m)))
                    .collect(),
                ..e
            }),
            PlanError::Resolve(f) => PlanError::Resolve(all(f)),
            PlanError::Read(f) => PlanError::Read(all(f)),
            PlanError::DryRun(f) => PlanError::DryRun(all(f)),
            PlanError::StoredVersionsDropped(f) => PlanError::StoredVersionsDropped(all(f)),
            e @ (PlanError::InvalidObject { .. } | PlanError::Duplicate { .. }) => e,
        }
    }

    /// The failures of objects, when the error is about objects.
    pub fn failures(&self) -> &[ObjectFailure] {
        match self {
            PlanError::Resolve(f) | PlanError::Read(f) | PlanError::DryRun(f) => f,
            _ => &[],
        }
    }
}

/// Options of [`plan_live`].
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Cluster overlay name, recorded in the plan.
    pub cluster: String,
    pub field_manager: String,
    /// Dry-run every object, even those whose live state proves an apply would not change them
    /// ([`fields::apply_is_noop`]). Off by default: such objects are never sent, so their dry-run
    /// answer cannot matter, and skipping it makes a no-op plan cost a few list requests.
    pub dry_run_unchanged: bool,
}

impl PlanOptions {
    pub fn new(cluster: &str) -> PlanOptions {
        PlanOptions {
            cluster: cluster.to_string(),
            field_manager: FIELD_MANAGER.to_string(),
            dry_run_unchanged: false,
        }
    }
}

fn failure(id: &ResId, message: impl fmt::Display) -> ObjectFailure {
    ObjectFailure {
        object: id.to_string(),
        message: format!(" {message}"),
    }
}

/// Refuses CRD updates that drop a version the live CRD's `status.storedVersions` lists: the
/// apiserver would reject them half-way through an apply (after the objects ordered before them),
/// with a message that does not say what to do.
fn check_stored_versions(items: &[Item], lives: &[Option<Value>]) -> Result<(), PlanError> {
    let failures: Vec<ObjectFailure> = items
        .iter()
        .zip(lives)
        .filter(|(item, _)| crate::manifest::crd::is_crd(&item.desired))
        .filter_map(|(item, live)| {
            let dropped = crate::manifest::crd::dropped_stored_versions(&item.desired, live.as_ref()?);
            (!dropped.is_empty()).then(|| {
                failure(
                    &item.id,
                    format_args!(
                        "update drops {} from spec.versions, but status.storedVersions lists it and the \
                         apiserver refuses the update; {}",
                        dropped.join(", "),
                        crate::manifest::crd::migration_hint(&item.id.name, &dropped)
                    ),
                )
            })
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(PlanError::StoredVersionsDropped(failures))
    }
}

fn set_namespace(obj: &mut Value, namespace: Option<&str>) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        match namespace {
            Some(ns) => {
                meta.insert("namespace".into(), Value::String(ns.to_string()));
            }
            None => {
                meta.remove("namespace");
            }
        }
    }
}

/// Whether the live object has fields owned by client-side `kubectl apply`.
pub fn has_csa_fields(live: &Value) -> bool {
    fields::managed_fields(live)
        .iter()
        .any(|e| e.manager == CSA_MANAGER && e.operation == "Update" && e.subresource.is_empty())
}

/// Predicts what apply stores for an object kgitops takes over from client-side `kubectl apply`:
/// the dry-run result minus the fields only `kubectl-client-side-apply` owned that kgitops no
/// longer applies. Apply moves those fields to kgitops before applying (as `kubectl apply
/// --server-side` does, see client-go's csaupgrade), so the server removes them.
pub fn predict_takeover(dry_run: &Value, manager: &str) -> Value {
    let entries = fields::managed_fields(dry_run);
    let empty = Value::Object(serde_json::Map::new());
    let mut csa = empty.clone();
    let mut ours = empty.clone();
    let mut others = empty.clone();
    for e in entries.iter().filter(|e| e.subresource.is_empty()) {
        if e.manager == CSA_MANAGER && e.operation == "Update" {
            csa = fields::union(&csa, &e.fields);
        } else if e.manager == manager && e.operation == "Apply" {
            ours = fields::union(&ours, &e.fields);
        } else {
            others = fields::union(&others, &e.fields);
        }
    }
    let removed = fields::subtract(&fields::subtract(&csa, &ours), &others);
    let mut predicted = dry_run.clone();
    fields::remove_fields(&mut predicted, &removed);
    predicted
}

struct Item {
    id: ResId,
    desired: Value,
    resolved: Option<Resolved>,
    namespaced: bool,
}

/// Plans `desired` against the live cluster. Reads only (GET/LIST and dry-run PATCH): nothing is
/// written. All failures of one phase are reported together.
pub async fn plan_live(
    cluster: &Cluster,
    desired: Vec<Value>,
    opts: &PlanOptions,
) -> Result<LivePlan, PlanError> {
    let mut scrubber = mask::Scrubber::of(&desired);
    match plan_objects(cluster, desired, opts, &mut scrubber).await {
        Ok(mut live) => {
            live.scrubber = scrubber;
            Ok(live)
        }
        Err(e) => Err(e.scrubbed(&scrubber)),
    }
}

/// [`plan_live`] before its errors are scrubbed; adds the live objects' Secret values to
/// `scrubber` as it reads them.
async fn plan_objects(
    cluster: &Cluster,
    desired: Vec<Value>,
    opts: &PlanOptions,
    scrubber: &mut mask::Scrubber,
) -> Result<LivePlan, PlanError> {
    // 1. Identities, normalization of the request, duplicates.
    let mut items: Vec<Item> = Vec::with_capacity(desired.len());
    let mut seen = BTreeSet::new();
    let mut new_kinds: HashMap<(String, String), bool> = HashMap::new();
    let mut new_namespaces: BTreeSet<String> = BTreeSet::new();
    for (index, mut obj) in desired.into_iter().enumerate() {
        normalize::prepare(&mut obj);
        let id = ResId::of(&obj).map_err(|source| PlanError::InvalidObject { index, source })?;
        if let Some((group, kind, namespaced)) = crate::manifest::crd::defined_kind(&obj) {
            new_kinds.insert((group, kind), namespaced);
        }
        if id.gvk.group.is_empty() && id.gvk.kind == "Namespace" {
            new_namespaces.insert(id.name.clone());
        }
        items.push(Item {
            id,
            desired: obj,
            resolved: None,
            namespaced: false,
        });
    }

    // 2. Discovery: resolve every kind; scope decides the namespace.
    let mut failures = Vec::new();
    cluster.refresh_discovery().await.map_err(PlanError::Discovery)?;
    for item in &mut items {
        let resolved = cluster
            .resolve(&item.id.gvk)
            .await
            .map_err(PlanError::Discovery)?;
        let namespaced = match &resolved {
            Some(r) => r.namespaced,
            None => match new_kinds.get(&(item.id.gvk.group.clone(), item.id.gvk.kind.clone())) {
                Some(namespaced) => *namespaced,
                None => {
                    failures.push(failure(
                        &item.id,
                        format_args!(
                            "unknown kind: the server serves no {} in {} (is its CRD installed?)",
                            item.id.gvk.kind,
                            item.id.gvk.api_version()
                        ),
                    ));
                    continue;
                }
            },
        };
        item.resolved = resolved;
        item.namespaced = namespaced;
        if namespaced && item.id.namespace.is_none() {
            failures.push(failure(
                &item.id,
                "has no metadata.namespace but its kind is namespaced (set `namespace:` in the overlay)",
            ));
        } else if !namespaced && item.id.namespace.is_some() {
            set_namespace(&mut item.desired, None);
            item.id.namespace = None;
        }
    }
    if !failures.is_empty() {
        return Err(PlanError::Resolve(failures));
    }
    for item in &items {
        if !seen.insert(item.id.clone()) {
            return Err(PlanError::Duplicate {
                object: item.id.to_string(),
            });
        }
    }

    // 3. Live state: one list per (kind, namespace) with many objects, one get otherwise.
    let lives = read_live(cluster, &items).await?;
    scrubber.extend(lives.iter().flatten());
    check_stored_versions(&items, &lives)?;

    // 4. Namespaces that neither exist nor are created here. The labels of those that exist are
    // kept for the namespace selectors of mutating webhooks (step 5); a Namespace of the revision
    // may change its labels before its objects are applied, so it matches by both.
    let mut missing: BTreeMap<String, bool> = BTreeMap::new();
    let mut namespace_labels = admission::NamespaceLabels::new();
    for (item, live) in items.iter().zip(&lives) {
        if item.id.gvk.group.is_empty() && item.id.gvk.kind == "Namespace" {
            match live {
                Some(ns) => {
                    namespace_labels.insert(item.id.name.clone(), admission::label_sets(ns, &item.desired));
                }
                None => {
                    missing.insert(item.id.name.clone(), true);
                }
            }
        }
    }
    let wanted: BTreeSet<String> = items
        .iter()
        .filter(|i| i.namespaced)
        .filter_map(|i| i.id.namespace.clone())
        .filter(|ns| !new_namespaces.contains(ns))
        .collect();
    if !wanted.is_empty() {
        let ns_kind = cluster
            .resolve(&Gvk::from_api_version("v1", "Namespace"))
            .await
            .map_err(PlanError::Discovery)?
            .ok_or_else(|| {
                PlanError::Discovery(RequestError {
                    code: 0,
                    reason: String::new(),
                    message: "the server serves no v1 Namespace".into(),
                    fields: Vec::new(),
                })
            })?;
        let names: Vec<String> = wanted.into_iter().collect();
        let results = cluster::bounded(cluster.concurrency(), names.clone(), {
            let cluster = cluster.clone();
            let ns_kind = ns_kind.clone();
            move |name: String| {
                let cluster = cluster.clone();
                let ns_kind = ns_kind.clone();
                async move { cluster.get(&ns_kind, None, &name).await }
            }
        })
        .await;
        let mut failures = Vec::new();
        for (name, result) in names.into_iter().zip(results) {
            match result {
                Ok(Some(ns)) => {
                    namespace_labels.insert(name, vec![admission::labels(&ns)]);
                }
                Ok(None) => {
                    for item in items
                        .iter()
                        .filter(|i| i.id.namespace.as_deref() == Some(name.as_str()))
                    {
                        failures.push(failure(
                            &item.id,
                            format_args!("namespace {name} does not exist and is not part of this revision"),
                        ));
                    }
                }
                Err(e) => failures.push(ObjectFailure {
                    object: format!("Namespace/{name}"),
                    message: format!(" read failed: {e}"),
                }),
            }
        }
        if !failures.is_empty() {
            return Err(PlanError::Read(failures));
        }
    }

    // 5. Dry-run every object that can be.
    let mut planned: Vec<PlannedObject> = items
        .into_iter()
        .zip(lives)
        .map(|(item, live)| {
            let deferred = if item.resolved.is_none() {
                Some(Deferred::KindCreated)
            } else {
                match &item.id.namespace {
                    Some(ns) if item.namespaced && missing.contains_key(ns) => {
                        Some(Deferred::NamespaceCreated(ns.clone()))
                    }
                    _ => None,
                }
            };
            PlannedObject {
                takeover: live.as_ref().is_some_and(has_csa_fields),
                id: item.id,
                resolved: item.resolved,
                desired: item.desired,
                live,
                dry_run: None,
                action: Action::Unchanged,
                deferred,
                entry: 0,
            }
        })
        .collect();
    // Objects whose live state proves the apply a no-op: the server would answer the dry-run with
    // the live object itself, so none is sent, and no copy of the live object is kept as the answer
    // (a plan of 1,000 objects would hold each twice).
    let mut noop = vec![false; planned.len()];
    if !opts.dry_run_unchanged {
        for (i, obj) in planned.iter_mut().enumerate() {
            if obj.deferred.is_none()
                && !obj.takeover
                && let Some(live) = &obj.live
                && fields::apply_is_noop(&obj.desired, live, &opts.field_manager)
            {
                noop[i] = true;
                // Answered: dry_run_all skips objects that have an answer.
                obj.dry_run = Some(Value::Null);
            }
        }
        unskip_mutated(cluster, &mut planned, &mut noop, &namespace_labels).await;
    }
    dry_run_all(cluster, &mut planned, &opts.field_manager).await?;
    for (i, obj) in planned.iter_mut().enumerate() {
        if noop[i] {
            obj.dry_run = None;
        }
    }

    // 6. Compare.
    let mut plan = Plan {
        cluster: opts.cluster.clone(),
        revision: None,
        entries: Vec::with_capacity(planned.len()),
        not_in_effect: in_effect::collect(planned.iter().filter_map(|o| Some((&o.id, o.live.as_ref()?)))),
        blocked: Vec::new(),
    };
    for (i, obj) in planned.iter_mut().enumerate() {
        let entry = if noop[i] {
            compare(&obj.id, obj.live.as_ref(), obj.live.as_ref(), obj.live.as_ref())
        } else {
            entry_for(obj, &opts.field_manager)
        };
        obj.action = entry.action;
        obj.entry = i;
        plan.entries.push(entry);
    }
    Ok(LivePlan {
        plan,
        objects: planned,
        scrubber: mask::Scrubber::default(),
    })
}

/// Takes back the no-op proof of objects a mutating admission webhook may change on apply (its
/// change is not in the live state the proof reads): they are dry-run like the others. Costs one
/// LIST when there are objects to skip. `namespaces`: the live labels of the namespaces plan read.
async fn unskip_mutated(
    cluster: &Cluster,
    planned: &mut [PlannedObject],
    noop: &mut [bool],
    namespaces: &admission::NamespaceLabels,
) {
    if !noop.contains(&true) {
        return;
    }
    let webhooks = admission::MutatingWebhooks::read(cluster).await;
    if !webhooks.any() {
        return;
    }
    if let admission::MutatingWebhooks::Unreadable(e) = &webhooks {
        tracing::warn!(
            "mutatingwebhookconfigurations cannot be listed ({e}): every object is dry-run by the server"
        );
    }
    let indices: Vec<usize> = (0..planned.len()).filter(|&i| noop[i]).collect();
    let mutated = {
        let candidates: Vec<admission::Candidate<'_>> = indices
            .iter()
            .filter_map(|&i| {
                let obj = &planned[i];
                Some(admission::Candidate {
                    resolved: obj.resolved.as_ref()?,
                    namespace: obj.id.namespace.as_deref(),
                    desired: &obj.desired,
                    live: obj.live.as_ref()?,
                })
            })
            .collect();
        // Every no-op candidate has a kind and a live object; a mismatch would misalign indices.
        if candidates.len() != indices.len() {
            vec![true; indices.len()]
        } else {
            webhooks.may_mutate(&candidates, namespaces)
        }
    };
    let mut forced = 0;
    for (&i, mutated) in indices.iter().zip(mutated) {
        if mutated {
            noop[i] = false;
            planned[i].dry_run = None;
            forced += 1;
        }
    }
    tracing::debug!(objects = forced, "dry-run forced by mutating admission webhooks");
}

/// The plan entry of one planned object (its dry-run done or deferred).
pub fn entry_for(obj: &PlannedObject, manager: &str) -> PlanEntry {
    let wants_recreate = obj.action == Action::Recreate;
    let after = if wants_recreate || obj.deferred.is_some() {
        obj.desired.clone()
    } else {
        match (&obj.dry_run, obj.takeover) {
            (Some(d), true) => predict_takeover(d, manager),
            (Some(d), false) => d.clone(),
            (None, _) => obj.desired.clone(),
        }
    };
    let mut entry = compare(&obj.id, obj.live.as_ref(), Some(&after), obj.live.as_ref());
    if wants_recreate {
        entry.action = Action::Recreate;
        entry.notes.push(format!(
            "an immutable field changes: deleted and created again ({RECREATE_ANNOTATION}: \"true\")"
        ));
    }
    if let Some(d) = &obj.deferred {
        entry.notes.push(d.to_string());
    }
    if obj.takeover && entry.action == Action::Update {
        entry.notes.push(
            "taken over from client-side kubectl apply: fields no longer in git are removed (server defaults apply)"
                .to_string(),
        );
    }
    entry
}

async fn read_live(cluster: &Cluster, items: &[Item]) -> Result<Vec<Option<Value>>, PlanError> {
    // Group by collection.
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(r) = &item.resolved {
            groups
                .entry(r.collection(item.id.namespace.as_deref()))
                .or_default()
                .push(i);
        }
    }
    enum Read {
        List(Resolved, Option<String>, Vec<usize>),
        Get(Resolved, Option<String>, String, usize),
    }
    let mut reads = Vec::new();
    for indices in groups.into_values() {
        let first = &items[indices[0]];
        let Some(r) = first.resolved.clone() else { continue };
        if indices.len() >= LIST_THRESHOLD {
            reads.push(Read::List(r, first.id.namespace.clone(), indices));
        } else {
            for i in indices {
                reads.push(Read::Get(
                    r.clone(),
                    items[i].id.namespace.clone(),
                    items[i].id.name.clone(),
                    i,
                ));
            }
        }
    }
    let results = cluster::bounded(cluster.concurrency(), reads, {
        let cluster = cluster.clone();
        move |read: Read| {
            let cluster = cluster.clone();
            async move {
                match read {
                    Read::List(r, ns, indices) => {
                        let listed = cluster.list(&r, ns.as_deref(), None).await;
                        (indices, listed.map(Some))
                    }
                    Read::Get(r, ns, name, i) => {
                        let got = cluster.get(&r, ns.as_deref(), &name).await;
                        (vec![i], got.map(|v| v.map(|v| vec![v])))
                    }
                }
            }
        }
    })
    .await;
    let mut lives: Vec<Option<Value>> = vec![None; items.len()];
    let mut failures = Vec::new();
    for (indices, result) in results {
        match result {
            Ok(Some(found)) => {
                // Moved out of the list, not copied.
                let mut by_name: HashMap<String, Value> = found
                    .into_iter()
                    .filter_map(|v| Some((v.pointer("/metadata/name")?.as_str()?.to_string(), v)))
                    .collect();
                for i in indices {
                    lives[i] = by_name.remove(items[i].id.name.as_str());
                }
            }
            Ok(None) => {}
            Err(e) => {
                for i in indices {
                    failures.push(failure(&items[i].id, format_args!("read failed: {e}")));
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(lives)
    } else {
        Err(PlanError::Read(failures))
    }
}

/// Dry-runs every object that is not deferred and has no answer yet, and records the answer; immutable-field refusals
/// become [`Action::Recreate`] when the object opted in, failures otherwise. The failures quote the
/// server as it is: [`plan_live`] and apply scrub them before they leave.
pub async fn dry_run_all(
    cluster: &Cluster,
    objects: &mut [PlannedObject],
    manager: &str,
) -> Result<(), PlanError> {
    let work: Vec<(usize, Resolved, Value)> = objects
        .iter()
        .enumerate()
        .filter(|(_, o)| o.deferred.is_none() && o.dry_run.is_none())
        .filter_map(|(i, o)| Some((i, o.resolved.clone()?, o.desired.clone())))
        .collect();
    let results = cluster::bounded(cluster.concurrency(), work, {
        let cluster = cluster.clone();
        let manager = manager.to_string();
        move |(i, r, obj): (usize, Resolved, Value)| {
            let cluster = cluster.clone();
            let manager = manager.clone();
            async move { (i, cluster.apply(&r, &obj, &manager, true).await) }
        }
    })
    .await;
    let mut failures = Vec::new();
    for (i, result) in results {
        let obj = &mut objects[i];
        match result {
            Ok(answer) => {
                obj.dry_run = Some(answer);
                if obj.action == Action::Recreate {
                    obj.action = Action::Unchanged;
                }
            }
            Err(e) if e.is_immutable() && obj.live.is_some() => {
                if wants_recreate(&obj.desired) {
                    obj.action = Action::Recreate;
                } else {
                    failures.push(immutable_failure(obj, &e));
                }
            }
            Err(e) => failures.push(failure(&obj.id, format_args!("dry-run failed: {}", e.message))),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(PlanError::DryRun(failures))
    }
}

fn wants_recreate(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(RECREATE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("true")
}

fn immutable_failure(obj: &PlannedObject, e: &RequestError) -> ObjectFailure {
    let fields: Vec<&str> = e
        .fields
        .iter()
        .filter(|(f, _)| !f.is_empty())
        .map(|(f, _)| f.as_str())
        .collect();
    let what = if fields.is_empty() {
        "an immutable field".to_string()
    } else {
        format!("immutable field {}", fields.join(", "))
    };
    failure(
        &obj.id,
        format_args!(
            "dry-run failed: {what} cannot change ({}); annotate the object with {RECREATE_ANNOTATION}: \"true\" to delete and recreate it",
            e.message
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(object: &str, message: &str) -> ObjectFailure {
        ObjectFailure {
            object: object.to_string(),
            message: format!(" {message}"),
        }
    }

    #[test]
    fn failures_alike_share_one_line() {
        let refused = "apply failed: apiserver https://127.0.0.1:6443 unreachable: connection refused";
        let closed = "apply failed: apiserver https://127.0.0.1:6443 unreachable: connection closed";
        let failures = vec![
            failure("ConfigMap/ns/a", closed),
            failure("ConfigMap/ns/b", "apply failed: ConfigMap \"b\" is invalid"),
            failure("ConfigMap/ns/c", refused),
            failure("ConfigMap/ns/d", refused),
            failure("ConfigMap/ns/e", "apply failed: ConfigMap \"e\" is invalid"),
            failure(
                "ConfigMap/ns/f",
                "apply failed: the word unreachable: not about the apiserver",
            ),
        ];
        assert_eq!(
            failure_lines(&failures),
            "ConfigMap/ns/c apply failed: apiserver https://127.0.0.1:6443 unreachable: connection refused \
             (and 2 more object(s) with the same error)\n\
             ConfigMap/ns/b apply failed: ConfigMap \"b\" is invalid\n\
             ConfigMap/ns/e apply failed: ConfigMap \"e\" is invalid\n\
             ConfigMap/ns/f apply failed: the word unreachable: not about the apiserver"
        );
    }
}
