//! Staged server-side apply, health checks, the ApplySet inventory and prune -> [`ChangeSet`].
//!
//! [`plan`] is the plan of a whole cluster: every desired object (labelled as a member of the
//! cluster's ApplySet, see [`inventory`]) planned by [`crate::plan::plan_live`], plus the members of
//! the inventory that left git as delete candidates. [`apply`] carries it out:
//!
//! 1. Pre-flight: the plan dry-ran every object before anything is written; one rejection and
//!    nothing is written. (Objects whose namespace or CRD this same revision creates cannot be
//!    dry-run before those exist: they are dry-run right after stage 1, before anything else.)
//!    Prune safety (mass prune) is checked here too, and the gates on live state
//!    ([`crate::plan::gate`]): a revision with a change (or, with `--prune`, a deletion) waiting for
//!    a live state is refused as a whole with [`ApplyError::Gated`], nothing written.
//! 2. Stage 1: Namespaces and CRDs, then wait for the CRDs to be Established.
//! 3. The inventory parent is widened to cover old and new members (an interrupted apply leaks
//!    nothing: the next run still finds every member).
//! 4. Stage 2: the other objects by kind order, each rank concurrently (bounded). Objects without
//!    changes are not sent: a no-op apply writes nothing. Objects kgitops takes over from
//!    client-side `kubectl apply` get their managed fields upgraded first ([`takeover`]); objects
//!    whose immutable fields change are deleted and created again only when annotated
//!    `kgitops.io/recreate: "true"`.
//! 5. With `--prune`: members that left git are deleted in reverse order, except protected ones
//!    ([`prune`]); then the parent is narrowed to the new set.
//! 6. With `--wait`: Strimzi health ([`health`]) and what the operator did not carry out
//!    ([`crate::plan::in_effect`]).
//!
//! Writers hold the inventory's write lock ([`lock`], a Lease next to the parent) for the whole
//! plan and apply ([`apply_locked`]): two applies at once would each plan against the same
//! inventory and undo each other's parent or prune each other's objects.
//!
//! Every apply is a forced server-side apply with field manager `kgitops`: git wins conflicts and the
//! change set says which manager lost which fields. Interrupted runs converge on the next run: every
//! step is idempotent and recomputed from live state.

pub mod health;
pub mod inventory;
pub mod lock;
pub mod order;
pub mod prune;
pub mod removed_versions;
pub mod takeover;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::manifest::{Gvk, ResId};
use crate::plan::gate::{self, Blocked};
use crate::plan::in_effect::{Effect, NotInEffect};
use crate::plan::{
    self, Action, Cluster, LivePlan, ObjectFailure, Plan, PlanError, PlanOptions, PlannedObject, Resolved,
    cluster::bounded, failure_lines, fields, mask,
};
pub use health::{Health, HealthState};
pub use inventory::InventoryRef;
pub use lock::{LockError, LockOptions};

/// How long stage 1 waits for CRDs to be Established.
pub const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a recreated object may take to disappear.
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(60);

/// What happened (or, in a dry run, would happen) to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
    Recreated,
    Pruned,
    /// Left git but kept: protected, or prune not requested.
    PruneSkipped,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
            Outcome::Recreated => "recreated",
            Outcome::Pruned => "pruned",
            Outcome::PruneSkipped => "prune skipped",
        })
    }
}

/// Fields another manager lost to kgitops (a forced conflict).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub manager: String,
    pub fields: Vec<String>,
}

/// One object's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// `Kind/namespace/name`.
    pub object: String,
    pub id: ResId,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The result of applying one revision to one cluster. Serializable; holds no Secret value.
///
/// JSON (`--output json`), stable: `{"cluster", "revision"?, "dry_run", "inventory",
/// "applyset_id", "changes": [{"object", "id", "outcome": "created" | "configured" | "unchanged" |
/// "recreated" | "pruned" | "prune-skipped", "conflicts"?: [{"manager", "fields": [..]}],
/// "notes"?: [..]}], "health"?: [{"object", "healthy", "state": "ready" | "progressing" | "not-ready" |
/// "refused" | "paused" | "missing", "message", "warnings"?}], "not_in_effect"?: [{"object", "field",
/// "effect": "ignored" | "warned", "reason", "message", "reported_by"}]}` (`health` and
/// `not_in_effect` with `--wait` only; see [`health`] and [`crate::plan::in_effect`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeSet {
    pub cluster: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Nothing was written: what would happen.
    pub dry_run: bool,
    /// The inventory parent, `ConfigMap/<ns>/<name>`, and its ApplySet id.
    pub inventory: String,
    pub applyset_id: String,
    pub changes: Vec<Change>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<Health>,
    /// With `--wait`: what the operator did not carry out (or warns about), read after the wait.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_in_effect: Vec<NotInEffect>,
}

impl ChangeSet {
    /// Whether anything changed (or would).
    pub fn has_changes(&self) -> bool {
        self.changes
            .iter()
            .any(|c| !matches!(c.outcome, Outcome::Unchanged | Outcome::PruneSkipped))
    }

    /// Objects that did not become healthy with `--wait`.
    pub fn unhealthy(&self) -> impl Iterator<Item = &Health> {
        self.health.iter().filter(|h| !h.healthy)
    }

    /// With `--wait`: parts of the applied spec the operator did not carry out.
    pub fn ignored(&self) -> impl Iterator<Item = &NotInEffect> {
        self.not_in_effect.iter().filter(|n| n.effect == Effect::Ignored)
    }
}

/// Options of [`plan`] and [`apply`].
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Cluster overlay name.
    pub cluster: String,
    pub inventory: InventoryRef,
    pub prune: bool,
    pub allow_mass_prune: bool,
    /// A prune of more objects than this is a mass prune (see [`prune::is_mass_prune`]).
    pub max_prune: usize,
    /// Plan and report only: nothing is written.
    pub dry_run: bool,
    /// Wait this long for Strimzi health after applying.
    pub wait: Option<Duration>,
    pub field_manager: String,
    /// See [`PlanOptions::dry_run_unchanged`].
    pub dry_run_unchanged: bool,
}

impl ApplyOptions {
    pub fn new(cluster: &str, inventory: InventoryRef) -> ApplyOptions {
        ApplyOptions {
            cluster: cluster.to_string(),
            inventory,
            prune: false,
            allow_mass_prune: false,
            max_prune: prune::DEFAULT_MAX_PRUNE,
            dry_run: false,
            wait: None,
            field_manager: plan::FIELD_MANAGER.to_string(),
            dry_run_unchanged: false,
        }
    }
}

/// Objects named in full in error messages; more are counted.
const NAMED_IN_ERRORS: usize = 10;

fn applied_note(applied: &[String]) -> String {
    if applied.is_empty() {
        return "nothing was written".to_string();
    }
    let mut named = applied
        .iter()
        .take(NAMED_IN_ERRORS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if applied.len() > NAMED_IN_ERRORS {
        named.push_str(&format!(" and {} more", applied.len() - NAMED_IN_ERRORS));
    }
    format!(
        "{} object(s) were written before the failure ({named}); the next run converges",
        applied.len()
    )
}

/// Why an apply failed. Each names the objects concerned and what was written before.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Inventory(String),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("{}", failure_lines(.0))]
    Label(Vec<ObjectFailure>),
    #[error(
        "refusing to prune {candidates} of the {members} objects of the inventory at once (more than {max} objects or more than half; is the render complete?): {}; pass --allow-mass-prune to do it; nothing was written",
        objects.join(", ")
    )]
    MassPrune {
        candidates: usize,
        members: usize,
        max: usize,
        objects: Vec<String>,
    },
    #[error("{source}\n{}", applied_note(applied))]
    Preflight {
        #[source]
        source: PlanError,
        applied: Vec<String>,
    },
    #[error("{}\n{}", failure_lines(failures), applied_note(applied))]
    Write {
        failures: Vec<ObjectFailure>,
        applied: Vec<String>,
    },
    /// Gates of the revision wait for live state ([`gate`]): nothing of it was written.
    #[error("waiting for live state; nothing of this revision was written:\n{}", blocked_lines(.0))]
    Gated(Vec<Blocked>),
}

fn blocked_lines(blocked: &[Blocked]) -> String {
    blocked
        .iter()
        .map(|b| format!("  {b}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ApplyError {
    /// The error with every known Secret value scrubbed from its texts: what [`plan`] and
    /// [`apply_planned`] return, so every caller (CLI, daemon) prints, logs and reports only
    /// scrubbed text.
    pub fn scrubbed(self, scrubber: &mask::Scrubber) -> ApplyError {
        let all = |failures: Vec<ObjectFailure>| failures.into_iter().map(|f| f.scrubbed(scrubber)).collect();
        match self {
            ApplyError::Plan(e) => ApplyError::Plan(e.scrubbed(scrubber)),
            ApplyError::Inventory(m) => ApplyError::Inventory(scrubber.scrub(&m)),
            ApplyError::Label(f) => ApplyError::Label(all(f)),
            ApplyError::Preflight { source, applied } => ApplyError::Preflight {
                source: source.scrubbed(scrubber),
                applied,
            },
            ApplyError::Write { failures, applied } => ApplyError::Write {
                failures: all(failures),
                applied,
            },
            // Object identities, counts, the lock's holder and live states only.
            e @ (ApplyError::MassPrune { .. } | ApplyError::Lock(_) | ApplyError::Gated(_)) => e,
        }
    }
}

/// A member of the inventory that is no longer in git.
#[derive(Clone, Debug)]
pub struct PruneCandidate {
    pub id: ResId,
    pub resolved: Resolved,
    pub live: Value,
    /// Why it may not be deleted, when it may not.
    pub protection: Option<String>,
}

/// The plan of a whole cluster: objects, inventory and prune candidates.
#[derive(Clone, Debug)]
pub struct ClusterPlan {
    pub live: LivePlan,
    pub parent: Option<Value>,
    pub parent_state: inventory::ParentState,
    pub candidates: Vec<PruneCandidate>,
    /// Live members of the inventory (labelled with its id).
    pub members: usize,
}

impl ClusterPlan {
    /// The serializable plan.
    pub fn plan(&self) -> &Plan {
        &self.live.plan
    }
}

fn group_kind(gvk: &Gvk) -> String {
    if gvk.group.is_empty() {
        gvk.kind.clone()
    } else {
        format!("{}.{}", gvk.kind, gvk.group)
    }
}

/// Group, kind, namespace and name: identity without the version.
fn gknn(id: &ResId) -> (String, String, Option<String>, String) {
    (
        id.gvk.group.clone(),
        id.gvk.kind.clone(),
        id.namespace.clone(),
        id.name.clone(),
    )
}

fn config_map_kind() -> Gvk {
    Gvk::from_api_version("v1", "ConfigMap")
}

/// Plans `desired` against the cluster: labels members, plans every object, reads the inventory and
/// lists its members that left git. Reads only.
pub async fn plan(
    cluster: &Cluster,
    desired: Vec<Value>,
    opts: &ApplyOptions,
) -> Result<ClusterPlan, ApplyError> {
    let scrubber = mask::Scrubber::of(&desired);
    plan_cluster(cluster, desired, opts)
        .await
        .map_err(|e| e.scrubbed(&scrubber))
}

/// [`plan`] before its errors are scrubbed.
async fn plan_cluster(
    cluster: &Cluster,
    mut desired: Vec<Value>,
    opts: &ApplyOptions,
) -> Result<ClusterPlan, ApplyError> {
    let id = opts.inventory.id();
    let mut failures = Vec::new();
    for obj in &mut desired {
        if let Err(message) = inventory::label_member(obj, &id) {
            let object = ResId::of(obj)
                .map(|i| i.to_string())
                .unwrap_or_else(|_| "object".into());
            failures.push(ObjectFailure {
                object,
                message: format!(" {message}"),
            });
        }
    }
    if !failures.is_empty() {
        return Err(ApplyError::Label(failures));
    }
    let mut live = plan::plan_live(
        cluster,
        desired,
        &PlanOptions {
            cluster: opts.cluster.clone(),
            field_manager: opts.field_manager.clone(),
            dry_run_unchanged: opts.dry_run_unchanged,
        },
    )
    .await?;

    let parent = live_parent(cluster, &opts.inventory).await?;
    let parent_state = match &parent {
        Some(p) => inventory::read_parent(&opts.inventory, p).map_err(ApplyError::Inventory)?,
        None => {
            check_parent_namespace(cluster, &live, &opts.inventory).await?;
            inventory::ParentState::default()
        }
    };

    // Members that left git.
    let (candidates, members) = match &parent {
        Some(_) => list_candidates(cluster, &live, &parent_state, &id).await?,
        None => (Vec::new(), 0),
    };
    // Gates on live state: the desired objects against their live state, and with --prune the
    // members that would be deleted.
    let subjects: Vec<gate::Subject<'_>> = live
        .objects
        .iter()
        .map(|o| gate::Subject {
            id: &o.id,
            desired: Some(&o.desired),
            live: o.live.as_ref(),
        })
        .chain(candidates.iter().filter(|_| opts.prune).map(|c| gate::Subject {
            id: &c.id,
            desired: None,
            live: Some(&c.live),
        }))
        .collect();
    let blocked = gate::evaluate(&subjects);
    for c in &candidates {
        let mut entry = plan::compare(&c.id, Some(&c.live), None, Some(&c.live));
        entry.notes.push(match &c.protection {
            Some(p) => format!("left git; {p}"),
            None => "left git: deleted by apply --prune".to_string(),
        });
        let object = c.id.to_string();
        for b in blocked.iter().filter(|b| b.object == object) {
            entry.notes.push(format!(
                "prune waits: {} needs {}, live: {}",
                b.change, b.needs, b.live
            ));
        }
        live.plan.entries.push(entry);
    }
    live.plan.blocked = blocked;
    Ok(ClusterPlan {
        live,
        parent,
        parent_state,
        candidates,
        members,
    })
}

/// The inventory parent as it is in the cluster.
async fn live_parent(cluster: &Cluster, inv: &InventoryRef) -> Result<Option<Value>, ApplyError> {
    let cm = cluster
        .resolve(&config_map_kind())
        .await
        .map_err(|e| ApplyError::Inventory(format!("{} discovery failed: {e}", inv.display())))?
        .ok_or_else(|| ApplyError::Inventory("the server serves no v1 ConfigMap".into()))?;
    cluster
        .get(&cm, Some(&inv.namespace), &inv.name)
        .await
        .map_err(|e| ApplyError::Inventory(format!("{} read failed: {e}", inv.display())))
}

/// A parent that does not exist yet must have a namespace to be created in: an existing one or one
/// of this revision. Checked before anything is written.
async fn check_parent_namespace(
    cluster: &Cluster,
    live: &LivePlan,
    inv: &InventoryRef,
) -> Result<(), ApplyError> {
    let declared = live
        .objects
        .iter()
        .any(|o| o.id.gvk.group.is_empty() && o.id.gvk.kind == "Namespace" && o.id.name == inv.namespace);
    if declared {
        return Ok(());
    }
    let ns_kind = cluster
        .resolve(&Gvk::from_api_version("v1", "Namespace"))
        .await
        .map_err(|e| ApplyError::Inventory(format!("discovery failed: {e}")))?
        .ok_or_else(|| ApplyError::Inventory("the server serves no v1 Namespace".into()))?;
    match cluster.get(&ns_kind, None, &inv.namespace).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ApplyError::Inventory(format!(
            "{}: namespace {} does not exist and is not part of this revision (choose another with --inventory-namespace)",
            inv.display(),
            inv.namespace
        ))),
        Err(e) => Err(ApplyError::Inventory(format!(
            "{} read failed: {e}",
            inv.display()
        ))),
    }
}

async fn list_candidates(
    cluster: &Cluster,
    live: &LivePlan,
    parent: &inventory::ParentState,
    id: &str,
) -> Result<(Vec<PruneCandidate>, usize), ApplyError> {
    let selector = format!("{}={id}", inventory::PART_OF_LABEL);
    let mut gks: BTreeSet<(String, String)> = BTreeSet::new();
    for gk in &parent.group_kinds {
        let (kind, group) = gk.split_once('.').unwrap_or((gk.as_str(), ""));
        gks.insert((group.to_string(), kind.to_string()));
    }
    let mut namespaces = parent.namespaces.clone();
    for o in &live.objects {
        gks.insert((o.id.gvk.group.clone(), o.id.gvk.kind.clone()));
        if let Some(ns) = &o.id.namespace {
            namespaces.insert(ns.clone());
        }
    }
    let mut lists = Vec::new();
    for (group, kind) in gks {
        let resolved = cluster
            .resolve_group_kind(&group, &kind)
            .await
            .map_err(|e| ApplyError::Inventory(format!("discovery failed: {e}")))?;
        // A kind no longer served (its CRD was deleted) has no members left to prune.
        let Some(r) = resolved else { continue };
        if r.namespaced {
            for ns in &namespaces {
                lists.push((r.clone(), Some(ns.clone())));
            }
        } else {
            lists.push((r, None));
        }
    }
    let results = bounded(cluster.concurrency(), lists, {
        let cluster = cluster.clone();
        let selector = selector.clone();
        move |(r, ns): (Resolved, Option<String>)| {
            let cluster = cluster.clone();
            let selector = selector.clone();
            async move {
                let listed = cluster.list(&r, ns.as_deref(), Some(&selector)).await;
                (r, ns, listed)
            }
        }
    })
    .await;
    let wanted: HashSet<_> = live.objects.iter().map(|o| gknn(&o.id)).collect();
    let mut candidates = Vec::new();
    let mut members = 0;
    for (r, ns, listed) in results {
        let items = listed.map_err(|e| {
            ApplyError::Inventory(format!(
                "listing inventory members ({} in {}) failed: {e}",
                r.group_kind(),
                ns.as_deref().unwrap_or("the cluster")
            ))
        })?;
        for item in items {
            let Ok(member) = ResId::of(&item) else { continue };
            members += 1;
            if wanted.contains(&gknn(&member)) {
                continue;
            }
            candidates.push(PruneCandidate {
                protection: prune::protection(&member.gvk, &item),
                id: member,
                resolved: r.clone(),
                live: item,
            });
        }
    }
    candidates.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((candidates, members))
}

fn change(id: &ResId, outcome: Outcome) -> Change {
    Change {
        object: id.to_string(),
        id: id.clone(),
        outcome,
        conflicts: Vec::new(),
        notes: Vec::new(),
    }
}

fn conflicts_between(before: &Value, after: &Value, manager: &str, takeover: bool) -> Vec<Conflict> {
    fields::lost_fields(before, after, manager)
        .into_iter()
        // Taking over from client-side apply moves all its fields on purpose: not a conflict.
        .filter(|(m, _)| !(takeover && m == plan::CSA_MANAGER))
        .map(|(manager, fields)| Conflict { manager, fields })
        .collect()
}

/// Plans and applies `desired` (see the module docs for the steps).
pub async fn apply(
    cluster: &Cluster,
    desired: Vec<Value>,
    opts: &ApplyOptions,
) -> Result<ChangeSet, ApplyError> {
    let cp = plan(cluster, desired, opts).await?;
    apply_planned(cluster, cp, opts).await
}

/// [`apply`] under the inventory's write lock (see [`lock`]): waits up to `lock.timeout` for another
/// writer, then plans and applies while holding it. A dry run writes nothing and takes no lock.
///
/// The Lease lives in the inventory's namespace; when this revision creates that namespace, the
/// plan is made (every object pre-flighted), the namespace alone is applied, and the lock is taken
/// and the plan made again under it.
pub async fn apply_locked(
    cluster: &Cluster,
    desired: Vec<Value>,
    opts: &ApplyOptions,
    lock: &LockOptions,
    observed: &mut lock::Observed,
) -> Result<ChangeSet, ApplyError> {
    if opts.dry_run {
        return apply(cluster, desired, opts).await;
    }
    let (held, created) = match lock::acquire(cluster, &opts.inventory, lock, observed).await {
        Ok(held) => (held, None),
        Err(LockError::NoNamespace { .. }) => {
            let created = create_inventory_namespace(cluster, desired.clone(), opts).await?;
            (
                lock::acquire(cluster, &opts.inventory, lock, observed).await?,
                Some(created),
            )
        }
        Err(e) => return Err(e.into()),
    };
    let mut set = held.run(apply(cluster, desired, opts), observed).await??;
    // The plan under the lock found the namespace unchanged: this run created it.
    if let Some(created) = created
        && let Some(c) = set.changes.iter_mut().find(|c| c.id == created.id)
    {
        *c = created;
    }
    Ok(set)
}

/// [`apply_planned`] under the inventory's write lock. The plan was made without the lock (the
/// daemon plans on every drift event and writes only to heal), so it is applied only if the
/// inventory parent has not changed since; otherwise this fails and the caller plans again.
pub async fn apply_planned_locked(
    cluster: &Cluster,
    cp: ClusterPlan,
    opts: &ApplyOptions,
    lock: &LockOptions,
    observed: &mut lock::Observed,
) -> Result<ChangeSet, ApplyError> {
    let held = lock::acquire(cluster, &opts.inventory, lock, observed).await?;
    held.run(
        async {
            let planned = cp
                .parent
                .as_ref()
                .and_then(|p| p.pointer("/metadata/resourceVersion"))
                .cloned();
            let now = live_parent(cluster, &opts.inventory).await?;
            if now.as_ref().and_then(|p| p.pointer("/metadata/resourceVersion")) != planned.as_ref() {
                return Err(ApplyError::Inventory(format!(
                    "{}: changed by another writer since the plan; planning again",
                    opts.inventory.display()
                )));
            }
            apply_planned(cluster, cp, opts).await
        },
        observed,
    )
    .await?
}

/// Plans `desired` (pre-flight of every object: nothing is written when one is rejected), then
/// applies only the Namespace of the inventory, so its write lock can be created.
async fn create_inventory_namespace(
    cluster: &Cluster,
    desired: Vec<Value>,
    opts: &ApplyOptions,
) -> Result<Change, ApplyError> {
    let cp = plan(cluster, desired, opts).await?;
    let objects = &cp.live.objects;
    let Some(i) = objects.iter().position(|o| {
        o.id.gvk.group.is_empty() && o.id.gvk.kind == "Namespace" && o.id.name == opts.inventory.namespace
    }) else {
        return Err(ApplyError::Inventory(format!(
            "{}: namespace {} does not exist and is not part of this revision",
            opts.inventory.display(),
            opts.inventory.namespace
        )));
    };
    let mut set = ChangeSet::default();
    let results = write_all(cluster, objects, &[i], &opts.field_manager).await;
    collect(results, &mut set, &mut Vec::new())?;
    set.changes
        .pop()
        .ok_or_else(|| ApplyError::Inventory(format!("Namespace/{}: not applied", opts.inventory.namespace)))
}

/// [`apply`] of a plan just made by [`plan`] with the same options (the daemon plans to see drift,
/// then heals with that plan instead of planning twice). Every write is still a server-side apply
/// judged by the server, so a plan that aged a little converges all the same.
pub async fn apply_planned(
    cluster: &Cluster,
    mut cp: ClusterPlan,
    opts: &ApplyOptions,
) -> Result<ChangeSet, ApplyError> {
    let scrubber = std::mem::take(&mut cp.live.scrubber);
    apply_plan(cluster, cp, opts)
        .await
        .map_err(|e| e.scrubbed(&scrubber))
}

/// [`apply_planned`] before its errors are scrubbed.
async fn apply_plan(
    cluster: &Cluster,
    mut cp: ClusterPlan,
    opts: &ApplyOptions,
) -> Result<ChangeSet, ApplyError> {
    let mut set = ChangeSet {
        cluster: opts.cluster.clone(),
        revision: None,
        dry_run: opts.dry_run,
        inventory: opts.inventory.display(),
        applyset_id: opts.inventory.id(),
        changes: Vec::new(),
        health: Vec::new(),
        not_in_effect: Vec::new(),
    };
    let deletable: Vec<&PruneCandidate> = cp.candidates.iter().filter(|c| c.protection.is_none()).collect();
    if opts.prune
        && !opts.allow_mass_prune
        && prune::is_mass_prune(deletable.len(), cp.members, opts.max_prune)
    {
        return Err(ApplyError::MassPrune {
            candidates: deletable.len(),
            members: cp.members,
            max: opts.max_prune,
            objects: deletable.iter().map(|c| c.id.to_string()).collect(),
        });
    }
    // A revision with a gate waiting is not applied at all: a part of a migration step applied
    // early (or another step's objects pruned) is what the gates exist to prevent. After the mass
    // prune check: a broken render is an error to fix, not a state to wait for.
    if !cp.live.plan.blocked.is_empty() {
        return Err(ApplyError::Gated(std::mem::take(&mut cp.live.plan.blocked)));
    }
    if opts.dry_run {
        return Ok(dry_run_change_set(set, &cp, opts));
    }
    let manager = opts.field_manager.as_str();
    // Moved, not copied: a plan of 1,000 objects holds each one live and as dry-run.
    let mut objects = std::mem::take(&mut cp.live.objects);
    let mut applied: Vec<String> = Vec::new();

    // Stage 1: Namespaces and CRDs.
    let stage_one: Vec<usize> = (0..objects.len())
        .filter(|&i| order::is_stage_one(&objects[i].id.gvk) && objects[i].action.is_change())
        .collect();
    let results = write_all(cluster, &objects, &stage_one, manager).await;
    collect(results, &mut set, &mut applied)?;
    let crds: Vec<(ResId, Resolved)> = stage_one
        .iter()
        .map(|&i| &objects[i])
        .filter(|o| o.id.gvk.kind == "CustomResourceDefinition")
        .filter_map(|o| Some((o.id.clone(), o.resolved.clone()?)))
        .collect();
    if !crds.is_empty() {
        health::wait_established(cluster, &crds, ESTABLISH_TIMEOUT)
            .await
            .map_err(|message| write_error("stage 1:", message, &applied))?;
    }
    // Managed fields of versions the updated CRDs no longer serve would fail every later apply of
    // the object, this revision's and, for an object unchanged now, the next one's dry-run.
    for &i in &stage_one {
        let Some((group, kind, served)) = removed_versions::served(&objects[i].desired) else {
            continue;
        };
        for o in objects
            .iter()
            .filter(|o| o.id.gvk.group == group && o.id.gvk.kind == kind)
        {
            let stale = o
                .live
                .as_ref()
                .map(|l| removed_versions::stale_versions(l, group, &served))
                .unwrap_or_default();
            if !stale.is_empty() {
                drop_removed_versions(cluster, o, &stale, manager)
                    .await
                    .map_err(|f| ApplyError::Write {
                        failures: vec![f],
                        applied: applied.clone(),
                    })?;
            }
        }
    }

    // Pre-flight of what could not be dry-run before stage 1.
    if objects.iter().any(|o| o.deferred.is_some()) {
        preflight_deferred(cluster, &mut objects, manager)
            .await
            .map_err(|source| ApplyError::Preflight {
                source,
                applied: applied.clone(),
            })?;
    }

    // Inventory: widen before writing members.
    let new_gks: BTreeSet<String> = objects.iter().map(|o| group_kind(&o.id.gvk)).collect();
    let new_nss: BTreeSet<String> = objects.iter().filter_map(|o| o.id.namespace.clone()).collect();
    let superset_gks: BTreeSet<String> = new_gks.union(&cp.parent_state.group_kinds).cloned().collect();
    let superset_nss: BTreeSet<String> = new_nss.union(&cp.parent_state.namespaces).cloned().collect();
    let parent_live = write_parent(
        cluster,
        &opts.inventory,
        cp.parent.as_ref(),
        &superset_gks,
        &superset_nss,
        manager,
    )
    .await
    .map_err(|message| write_error(&opts.inventory.display(), message, &applied))?;

    // Stage 2 by rank.
    let mut ranks: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, o) in objects.iter().enumerate() {
        if !order::is_stage_one(&o.id.gvk) {
            ranks.entry(order::rank(&o.id.gvk)).or_default().push(i);
        }
    }
    for indices in ranks.into_values() {
        let changed: Vec<usize> = indices
            .into_iter()
            .filter(|&i| objects[i].action.is_change())
            .collect();
        let results = write_all(cluster, &objects, &changed, manager).await;
        collect(results, &mut set, &mut applied)?;
    }
    for o in objects.iter().filter(|o| !o.action.is_change()) {
        set.changes.push(change(&o.id, Outcome::Unchanged));
    }

    // Prune, in reverse order.
    let mut kept_gks = new_gks.clone();
    let mut kept_nss = new_nss.clone();
    for c in &cp.candidates {
        if c.protection.is_some() || !opts.prune {
            let mut ch = change(&c.id, Outcome::PruneSkipped);
            ch.notes.push(
                c.protection
                    .clone()
                    .unwrap_or_else(|| "left git; run apply --prune to delete it".to_string()),
            );
            set.changes.push(ch);
            kept_gks.insert(group_kind(&c.id.gvk));
            if let Some(ns) = &c.id.namespace {
                kept_nss.insert(ns.clone());
            }
        }
    }
    if opts.prune {
        let mut by_rank: BTreeMap<usize, Vec<&PruneCandidate>> = BTreeMap::new();
        for c in deletable {
            by_rank.entry(order::rank(&c.id.gvk)).or_default().push(c);
        }
        for group in by_rank.into_values().rev() {
            let work: Vec<PruneCandidate> = group.into_iter().cloned().collect();
            let results = bounded(cluster.concurrency(), work, {
                let cluster = cluster.clone();
                move |c: PruneCandidate| {
                    let cluster = cluster.clone();
                    async move {
                        let uid = c
                            .live
                            .pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .map(str::to_string);
                        let r = cluster
                            .delete(&c.resolved, c.id.namespace.as_deref(), &c.id.name, uid.as_deref())
                            .await;
                        (c.id, r)
                    }
                }
            })
            .await;
            let mut failures = Vec::new();
            for (id, r) in results {
                match r {
                    Ok(_) => {
                        applied.push(id.to_string());
                        set.changes.push(change(&id, Outcome::Pruned));
                    }
                    Err(e) => failures.push(ObjectFailure {
                        object: id.to_string(),
                        message: format!(" prune failed: {e}"),
                    }),
                }
            }
            if !failures.is_empty() {
                return Err(ApplyError::Write { failures, applied });
            }
        }
        // Narrow the parent to what is left.
        write_parent(
            cluster,
            &opts.inventory,
            parent_live.as_ref(),
            &kept_gks,
            &kept_nss,
            manager,
        )
        .await
        .map_err(|message| write_error(&opts.inventory.display(), message, &applied))?;
    }

    // Health.
    if let Some(timeout) = opts.wait {
        let watched: Vec<(ResId, Resolved)> = objects
            .iter()
            .filter(|o| health::is_watched(&o.id))
            .filter_map(|o| Some((o.id.clone(), o.resolved.clone()?)))
            .collect();
        let waited = health::wait_healthy(cluster, &watched, timeout)
            .await
            .map_err(|e| write_error("health check:", e, &applied))?;
        set.health = waited.health;
        set.not_in_effect = waited.not_in_effect;
    }
    set.changes.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(set)
}

/// A failed write of `object` after `applied` were written.
fn write_error(object: &str, message: impl fmt::Display, applied: &[String]) -> ApplyError {
    ApplyError::Write {
        failures: vec![ObjectFailure {
            object: object.to_string(),
            message: format!(" {message}"),
        }],
        applied: applied.to_vec(),
    }
}

fn collect(
    results: Vec<Result<Change, ObjectFailure>>,
    set: &mut ChangeSet,
    applied: &mut Vec<String>,
) -> Result<(), ApplyError> {
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(c) => {
                applied.push(c.object.clone());
                set.changes.push(c);
            }
            Err(f) => failures.push(f),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::Write {
            failures,
            applied: applied.clone(),
        })
    }
}

/// What the change set of a dry run says: the plan's actions as outcomes.
fn dry_run_change_set(mut set: ChangeSet, cp: &ClusterPlan, opts: &ApplyOptions) -> ChangeSet {
    for o in &cp.live.objects {
        let outcome = match o.action {
            Action::Create => Outcome::Created,
            Action::Update => Outcome::Configured,
            Action::Recreate => Outcome::Recreated,
            Action::Unchanged | Action::DeleteCandidate => Outcome::Unchanged,
        };
        let mut ch = change(&o.id, outcome);
        if let (Some(live), Some(dry)) = (&o.live, &o.dry_run) {
            ch.conflicts = conflicts_between(live, dry, &opts.field_manager, o.takeover);
        }
        if let Some(d) = &o.deferred {
            ch.notes.push(d.to_string());
        }
        set.changes.push(ch);
    }
    for c in &cp.candidates {
        let outcome = if opts.prune && c.protection.is_none() {
            Outcome::Pruned
        } else {
            Outcome::PruneSkipped
        };
        let mut ch = change(&c.id, outcome);
        if let Some(p) = &c.protection {
            ch.notes.push(p.clone());
        } else if !opts.prune {
            ch.notes.push("left git; run apply --prune to delete it".into());
        }
        set.changes.push(ch);
    }
    set.changes.sort_by(|a, b| a.id.cmp(&b.id));
    set
}

/// Resolves kinds whose CRD stage 1 created and dry-runs every deferred object.
async fn preflight_deferred(
    cluster: &Cluster,
    objects: &mut [PlannedObject],
    manager: &str,
) -> Result<(), PlanError> {
    if objects.iter().any(|o| o.resolved.is_none()) {
        cluster.refresh_discovery().await.map_err(PlanError::Discovery)?;
    }
    let mut failures = Vec::new();
    let mut deferred = Vec::new();
    for (i, o) in objects.iter_mut().enumerate() {
        if o.deferred.is_none() {
            continue;
        }
        if o.resolved.is_none() {
            o.resolved = cluster.resolve(&o.id.gvk).await.map_err(PlanError::Discovery)?;
            if o.resolved.is_none() {
                failures.push(ObjectFailure {
                    object: o.id.to_string(),
                    message: format!(
                        " unknown kind: the server serves no {} in {} even after its CRD was applied",
                        o.id.gvk.kind,
                        o.id.gvk.api_version()
                    ),
                });
                continue;
            }
        }
        o.deferred = None;
        deferred.push(i);
    }
    if !failures.is_empty() {
        return Err(PlanError::Resolve(failures));
    }
    let mut subset: Vec<PlannedObject> = deferred.iter().map(|&i| objects[i].clone()).collect();
    plan::dry_run_all(cluster, &mut subset, manager).await?;
    for (k, &i) in deferred.iter().enumerate() {
        let mut o = subset[k].clone();
        o.action = plan::entry_for(&o, manager).action;
        objects[i] = o;
    }
    Ok(())
}

/// Applies the parent for the given set unless the live one already says the same; returns the
/// parent as it now is.
async fn write_parent(
    cluster: &Cluster,
    inv: &InventoryRef,
    live: Option<&Value>,
    gks: &BTreeSet<String>,
    nss: &BTreeSet<String>,
    manager: &str,
) -> Result<Option<Value>, String> {
    let wanted = inv.parent(gks, nss);
    if inventory::parent_is_current(live, &wanted) {
        return Ok(live.cloned());
    }
    let cm = cluster
        .resolve(&config_map_kind())
        .await
        .map_err(|e| format!("discovery failed: {e}"))?
        .ok_or("the server serves no v1 ConfigMap")?;
    cluster
        .apply(&cm, &wanted, manager, false)
        .await
        .map(Some)
        .map_err(|e| format!("inventory update failed: {e}"))
}

async fn write_all(
    cluster: &Cluster,
    objects: &[PlannedObject],
    indices: &[usize],
    manager: &str,
) -> Vec<Result<Change, ObjectFailure>> {
    let work: Vec<PlannedObject> = indices.iter().map(|&i| objects[i].clone()).collect();
    bounded(cluster.concurrency(), work, {
        let cluster = cluster.clone();
        let manager = manager.to_string();
        move |o: PlannedObject| {
            let cluster = cluster.clone();
            let manager = manager.clone();
            async move { write_object(&cluster, &o, &manager).await }
        }
    })
    .await
}

/// Drops `o`'s managed-fields entries of `versions` ([`removed_versions`]), read afresh; a
/// concurrent write (the operator's status) makes the conditional patch fail: read and try again.
async fn drop_removed_versions(
    cluster: &Cluster,
    o: &PlannedObject,
    versions: &[String],
    manager: &str,
) -> Result<(), ObjectFailure> {
    let fail = |e: &dyn fmt::Display| ObjectFailure {
        object: o.id.to_string(),
        message: format!(
            " dropping the managed fields of {} failed: {e}",
            versions.join(", ")
        ),
    };
    let Some(r) = &o.resolved else {
        return Ok(());
    };
    let ns = o.id.namespace.as_deref();
    let versions: Vec<&str> = versions.iter().map(String::as_str).collect();
    let mut attempts = 0;
    loop {
        let Some(live) = cluster.get(r, ns, &o.id.name).await.map_err(|e| fail(&e))? else {
            return Ok(());
        };
        let Some(patch) = removed_versions::drop_versions_patch(&live, &versions) else {
            return Ok(());
        };
        match cluster.merge_patch(r, ns, &o.id.name, &patch, manager).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code == 409 && attempts < 3 => attempts += 1,
            Err(e) => return Err(fail(&e)),
        }
    }
}

/// Writes one object: takeover first when needed, recreate when opted in, then a forced apply.
async fn write_object(cluster: &Cluster, o: &PlannedObject, manager: &str) -> Result<Change, ObjectFailure> {
    let fail = |what: &str, e: &dyn fmt::Display| ObjectFailure {
        object: o.id.to_string(),
        message: format!(" {what} failed: {e}"),
    };
    let Some(r) = &o.resolved else {
        return Err(ObjectFailure {
            object: o.id.to_string(),
            message: " apply failed: its kind is still unknown to the server".into(),
        });
    };
    let ns = o.id.namespace.as_deref();
    let mut before = o.live.clone();
    let mut outcome = if o.live.is_some() {
        Outcome::Configured
    } else {
        Outcome::Created
    };
    if o.action == Action::Recreate {
        let uid = o
            .live
            .as_ref()
            .and_then(|l| l.pointer("/metadata/uid"))
            .and_then(Value::as_str);
        cluster
            .delete(r, ns, &o.id.name, uid)
            .await
            .map_err(|e| fail("delete for recreate", &e))?;
        let deadline = Instant::now() + DELETE_TIMEOUT;
        while cluster
            .get(r, ns, &o.id.name)
            .await
            .map_err(|e| fail("read", &e))?
            .is_some()
        {
            if Instant::now() >= deadline {
                return Err(fail(
                    "recreate",
                    &"the old object is still being deleted (finalizers?)",
                ));
            }
            tokio::time::sleep(health::POLL_INTERVAL).await;
        }
        before = None;
        outcome = Outcome::Recreated;
    } else if o.takeover
        && let Some(live) = &o.live
        && let Some(patch) = takeover::upgrade_patch(live, manager)
    {
        let upgraded = cluster
            .merge_patch(r, ns, &o.id.name, &patch, manager)
            .await
            .map_err(|e| fail("takeover from kubectl client-side apply", &e))?;
        before = Some(upgraded);
    }
    let applied = match cluster.apply(r, &o.desired, manager, false).await {
        Ok(applied) => applied,
        Err(e) => {
            // Managed fields of a version the CRD no longer serves (removed_versions): dropped,
            // then the same apply again.
            let Some(version) = removed_versions::unconvertible_version(&e.message) else {
                return Err(fail("apply", &e));
            };
            let live = cluster
                .get(r, ns, &o.id.name)
                .await
                .map_err(|e| fail("read", &e))?;
            let Some(patch) = live
                .as_ref()
                .and_then(|l| removed_versions::drop_version_patch(l, version))
            else {
                return Err(fail("apply", &e));
            };
            cluster
                .merge_patch(r, ns, &o.id.name, &patch, manager)
                .await
                .map_err(|e| fail(&format!("dropping the managed fields of {version}"), &e))?;
            cluster
                .apply(r, &o.desired, manager, false)
                .await
                .map_err(|e| fail("apply", &e))?
        }
    };
    let mut ch = change(&o.id, outcome);
    if let Some(before) = &before {
        ch.conflicts = conflicts_between(before, &applied, manager, o.takeover);
    }
    if o.takeover {
        ch.notes.push("taken over from kubectl client-side apply".into());
    }
    Ok(ch)
}
