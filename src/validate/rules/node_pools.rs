//! KafkaNodePools (`kafka.strimzi.io/v1beta2` since Strimzi 0.36, and `v1`): the pool model of a
//! render — each pool with its cluster (`strimzi.io/cluster` label), roles, replicas, storage,
//! resources, jvmOptions and node-ID annotations — what can be known offline about node IDs (the
//! logic of Strimzi's `NodeIdAssignor` and `NodeIdRange`), and the checks of the node-pool rules.
//!
//! Node IDs are not in git: the operator keeps each pool's IDs in `status.nodeIds` and only hands out
//! new ones on scale-up. So the IDs a render implies are exact only for a cluster created from it (or
//! for objects that carry their status); checks that need them say so instead of guessing.

use std::collections::BTreeSet;

use serde_json::Value;
use thiserror::Error;

use super::checks::{display, hit, with_fix};
use super::strimzi::{KafkaCr, MetadataMode, int, is_strimzi};
use super::{Context, Hit, Snapshot, namespace_of};

/// The label naming the Kafka cluster a pool belongs to.
pub(crate) const CLUSTER_LABEL: &str = "strimzi.io/cluster";
/// Node IDs the next nodes of a pool should get (`[0-9, 100-199]`).
pub(crate) const NEXT_NODE_IDS: &str = "strimzi.io/next-node-ids";
/// Node IDs a pool's scale-down should remove first.
pub(crate) const REMOVE_NODE_IDS: &str = "strimzi.io/remove-node-ids";

/// More nodes than this in one cluster are not simulated (a hostile `replicas: 2000000000` would
/// otherwise make the ID assignment loop for minutes).
const MAX_NODES: i64 = 10_000;

/// Why a node-ID range annotation cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum NodePoolError {
    #[error("{value:?} is not a node ID range like [0, 3, 10-19]")]
    InvalidRange { value: String },
    #[error("node ID {item:?} in {value:?} is not a 32-bit integer")]
    IdTooLarge { item: String, value: String },
}

/// One item of a node-ID range annotation: a single ID (`start == end`) or an inclusive span, which
/// Strimzi walks from `start` to `end`, downwards when `start > end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IdSpan {
    pub start: i64,
    pub end: i64,
}

impl IdSpan {
    fn low(self) -> i64 {
        self.start.min(self.end)
    }

    fn high(self) -> i64 {
        self.start.max(self.end)
    }
}

impl std::fmt::Display for IdSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// A parsed `strimzi.io/next-node-ids` / `remove-node-ids` value, with Strimzi's syntax: `[` items
/// separated by commas `]`, each item `N` or `N-M`, whitespace anywhere between tokens; a blank value
/// or `[]` is an empty range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NodeIdRange {
    pub spans: Vec<IdSpan>,
}

impl NodeIdRange {
    pub(crate) fn parse(value: &str) -> Result<NodeIdRange, NodePoolError> {
        let invalid = || NodePoolError::InvalidRange {
            value: value.to_string(),
        };
        let text = value.trim();
        if text.is_empty() {
            return Ok(NodeIdRange { spans: Vec::new() });
        }
        let inner = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .ok_or_else(invalid)?
            .trim();
        if inner.is_empty() {
            return Ok(NodeIdRange { spans: Vec::new() });
        }
        let id = |item: &str| -> Result<i64, NodePoolError> {
            let item = item.trim();
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            // Strimzi parses with Integer.parseInt: larger numbers make the range invalid.
            item.parse::<i32>()
                .map(i64::from)
                .map_err(|_| NodePoolError::IdTooLarge {
                    item: item.to_string(),
                    value: value.to_string(),
                })
        };
        let mut spans = Vec::new();
        for item in inner.split(',') {
            let span = match item.split_once('-') {
                Some((a, b)) => IdSpan {
                    start: id(a)?,
                    end: id(b)?,
                },
                None => {
                    let n = id(item)?;
                    IdSpan { start: n, end: n }
                }
            };
            spans.push(span);
        }
        Ok(NodeIdRange { spans })
    }

    /// The IDs in the order Strimzi hands them out.
    fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.spans.iter().flat_map(|s| {
            let up = s.start <= s.end;
            let len = s.high() - s.low();
            (0..=len).map(move |i| if up { s.start + i } else { s.start - i })
        })
    }

    /// The first ID both ranges contain, with the spans it comes from.
    fn overlap(&self, other: &NodeIdRange) -> Option<(IdSpan, IdSpan)> {
        self.spans.iter().find_map(|a| {
            other
                .spans
                .iter()
                .find(|b| a.low() <= b.high() && b.low() <= a.high())
                .map(|b| (*a, *b))
        })
    }
}

impl std::fmt::Display for NodeIdRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let items: Vec<String> = self.spans.iter().map(ToString::to_string).collect();
        write!(f, "[{}]", items.join(", "))
    }
}

/// A process role of a pool's nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Broker,
    Controller,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Broker => "broker",
            Role::Controller => "controller",
        }
    }
}

/// One `KafkaNodePool` of a render, read leniently (a value it cannot read is the schema rules'
/// business and reads as absent).
#[derive(Debug)]
pub(crate) struct NodePool<'a> {
    pub obj: &'a Value,
    /// `KafkaNodePool/kafka-dev/broker`.
    pub display: String,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    /// The `strimzi.io/cluster` label: the Kafka this pool belongs to.
    pub cluster: Option<&'a str>,
}

impl<'a> NodePool<'a> {
    pub(crate) fn from_object(obj: &'a Value) -> Option<NodePool<'a>> {
        if !is_strimzi(obj, "KafkaNodePool") {
            return None;
        }
        Some(NodePool {
            obj,
            display: display(obj),
            name: obj.pointer("/metadata/name").and_then(Value::as_str)?,
            namespace: namespace_of(obj),
            cluster: obj
                .get("metadata")
                .and_then(|m| m.get("labels"))
                .and_then(|l| l.get(CLUSTER_LABEL))
                .and_then(Value::as_str),
        })
    }

    /// A value under `spec` by JSON pointer (`/storage/type`).
    pub(crate) fn spec(&self, pointer: &str) -> Option<&'a Value> {
        self.obj.get("spec")?.pointer(pointer)
    }

    pub(crate) fn replicas(&self) -> Option<i64> {
        self.spec("/replicas").and_then(int)
    }

    /// `spec.roles` as written; `None` when missing or not a list of strings.
    pub(crate) fn roles(&self) -> Option<Vec<&'a str>> {
        self.spec("/roles")?
            .as_array()?
            .iter()
            .map(Value::as_str)
            .collect()
    }

    pub(crate) fn has_role(&self, role: Role) -> bool {
        self.roles().is_some_and(|r| r.contains(&role.as_str()))
    }

    /// How many nodes of `role` the pool runs: the role and at least one replica.
    pub(crate) fn runs(&self, role: Role) -> Option<i64> {
        self.replicas().filter(|r| *r > 0 && self.has_role(role))
    }

    pub(crate) fn storage(&self) -> Option<&'a Value> {
        self.spec("/storage")
    }

    /// True when the pool is labelled for this Kafka and lives in its namespace.
    pub(crate) fn belongs_to(&self, kafka: &KafkaCr<'_>) -> bool {
        self.namespace == kafka.namespace && self.cluster == Some(kafka.name)
    }

    fn annotation(&self, key: &str) -> Option<&'a str> {
        self.obj.get("metadata")?.get("annotations")?.get(key)?.as_str()
    }

    /// A node-ID range annotation, parsed; `None` when not set.
    pub(crate) fn id_range(&self, key: &str) -> Option<Result<NodeIdRange, NodePoolError>> {
        self.annotation(key).map(NodeIdRange::parse)
    }

    /// `status.nodeIds`, present only on objects read from a cluster.
    pub(crate) fn status_node_ids(&self) -> Option<Vec<i64>> {
        self.obj
            .pointer("/status/nodeIds")?
            .as_array()?
            .iter()
            .map(int)
            .collect()
    }

    /// The pod of node `id`: `<cluster>-<pool>-<id>` (Strimzi's `KafkaPool.componentName` + ID).
    pub(crate) fn pod_name(&self, cluster: &str, id: i64) -> String {
        format!("{cluster}-{}-{id}", self.name)
    }

    /// `spec.roles` for messages: `[broker, controller]`.
    pub(crate) fn roles_text(&self) -> String {
        self.roles()
            .map(|r| format!("[{}]", r.join(", ")))
            .unwrap_or_else(|| "(none)".into())
    }
}

/// The node IDs of the pools of one cluster.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NodeIds<'p> {
    /// Pool name and its IDs, in pool order.
    pub by_pool: Vec<(&'p str, BTreeSet<i64>)>,
    /// True when every pool carried `status.nodeIds` (objects read from a cluster): the IDs are the
    /// ones the operator uses. False: the IDs of a cluster created from this render.
    pub from_status: bool,
}

impl NodeIds<'_> {
    pub(crate) fn of(&self, pool: &str) -> Option<&BTreeSet<i64>> {
        self.by_pool.iter().find(|(p, _)| *p == pool).map(|(_, ids)| ids)
    }
}

/// Hands out IDs from a pool's range first, then the lowest free ID; one per pool, like Strimzi's
/// stateful `NodeIdRange` object.
struct NextIds<'r> {
    range: Option<Box<dyn Iterator<Item = i64> + 'r>>,
}

impl NextIds<'_> {
    /// `NodeIdAssignor.provideNextId`.
    fn next(&mut self, in_use: &mut BTreeSet<i64>) -> i64 {
        let from_range = self
            .range
            .as_mut()
            .and_then(|r| r.by_ref().find(|id| !in_use.contains(id)));
        let id = from_range.unwrap_or_else(|| lowest_unused(in_use));
        in_use.insert(id);
        id
    }
}

/// `NodeIdAssignor.nextUnusedId`: 0, or one above the highest when there are no gaps, or the lowest
/// gap.
fn lowest_unused(in_use: &BTreeSet<i64>) -> i64 {
    match in_use.last() {
        None => 0,
        Some(last) if i64::try_from(in_use.len()).is_ok_and(|n| n == last + 1) => last + 1,
        Some(_) => (0..).find(|i| !in_use.contains(i)).unwrap_or(0),
    }
}

/// The node IDs Strimzi's `NodeIdAssignor` gives `pools` (one cluster's, in operator list order):
/// pools with `status.nodeIds` keep them and scale from there; pools without get new IDs, from their
/// `strimzi.io/next-node-ids` range first (skipping used IDs), then the lowest unused ID; scale-downs
/// remove `strimzi.io/remove-node-ids` first, then the highest ID. An invalid range is ignored, as
/// Strimzi does. `None` when a replica count is unreadable, the cluster too large to simulate, or
/// two pools claim the same ID in their status (Strimzi refuses that too).
pub(crate) fn assign_node_ids<'p>(pools: &[&'p NodePool<'_>]) -> Option<NodeIds<'p>> {
    let mut total = 0;
    for pool in pools {
        total += pool.replicas()?.max(0);
        if total > MAX_NODES {
            return None;
        }
    }
    let statuses: Vec<Option<Vec<i64>>> = pools.iter().map(|p| p.status_node_ids()).collect();
    let mut in_use = BTreeSet::new();
    for ids in statuses.iter().flatten() {
        for id in ids {
            if !in_use.insert(*id) {
                return None;
            }
        }
    }
    let ranges = |key: &str, pool: &NodePool<'_>| pool.id_range(key).and_then(Result::ok);
    let mut by_pool = Vec::new();
    for (pool, status) in pools.iter().zip(&statuses) {
        let replicas = usize::try_from(pool.replicas()?.max(0)).ok()?;
        let next_range = ranges(NEXT_NODE_IDS, pool);
        let mut next = NextIds {
            range: next_range
                .as_ref()
                .map(|r| Box::new(r.ids()) as Box<dyn Iterator<Item = i64> + '_>),
        };
        let desired = match status {
            Some(current) => {
                let mut desired: BTreeSet<i64> = current.iter().copied().collect();
                if replicas < desired.len() {
                    let remove_range = ranges(REMOVE_NODE_IDS, pool);
                    let mut remove = remove_range.as_ref().map(|r| r.ids());
                    for _ in 0..desired.len() - replicas {
                        let from_range = remove
                            .as_mut()
                            .and_then(|r| r.by_ref().find(|id| desired.contains(id)));
                        match from_range {
                            Some(id) => {
                                desired.remove(&id);
                            }
                            None => {
                                desired.pop_last();
                            }
                        }
                    }
                } else {
                    for _ in desired.len()..replicas {
                        desired.insert(next.next(&mut in_use));
                    }
                }
                desired
            }
            None => (0..replicas).map(|_| next.next(&mut in_use)).collect(),
        };
        by_pool.push((pool.name, desired));
    }
    Some(NodeIds {
        by_pool,
        from_status: !pools.is_empty() && statuses.iter().all(Option::is_some),
    })
}

/// IDs for messages: `0, 1, 2`.
pub(crate) fn ids_text(ids: &BTreeSet<i64>) -> String {
    let items: Vec<String> = ids.iter().map(ToString::to_string).collect();
    items.join(", ")
}

fn label_path() -> String {
    format!("metadata.labels[{CLUSTER_LABEL}]")
}

pub(super) fn annotation_path(key: &str) -> String {
    format!("metadata.annotations[{key}]")
}

/// Kafka clusters that read their nodes from KafkaNodePools.
fn pool_clusters<'s, 'a>(snap: &'s Snapshot<'a>) -> impl Iterator<Item = &'s KafkaCr<'a>> {
    snap.kafkas.iter().filter(|k| k.uses_node_pools())
}

pub(super) fn dangling(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for pool in &ctx.to.pools {
        let ns = pool.namespace.unwrap_or("(no namespace)");
        let here: Vec<&KafkaCr<'_>> = ctx
            .to
            .kafkas
            .iter()
            .filter(|k| k.namespace == pool.namespace)
            .collect();
        let suggestion = match here.as_slice() {
            [only] => format!("label the pool {CLUSTER_LABEL}: {}", only.name),
            _ => format!("label the pool {CLUSTER_LABEL}: <the name of its Kafka in namespace {ns}>"),
        };
        let Some(cluster) = pool.cluster else {
            hits.push(with_fix(
                hit(
                    &pool.display,
                    label_path(),
                    format!(
                        "KafkaNodePool has no {CLUSTER_LABEL} label: no Kafka cluster selects it, the operator \
                         never reconciles it"
                    ),
                ),
                suggestion,
            ));
            continue;
        };
        match here.iter().find(|k| k.name == cluster) {
            None => {
                let others: Vec<&str> = here.iter().map(|k| k.name).collect();
                let there = if others.is_empty() {
                    "no Kafka".to_string()
                } else {
                    format!("only {}", others.join(", "))
                };
                hits.push(with_fix(
                    hit(
                        &pool.display,
                        label_path(),
                        format!(
                            "{CLUSTER_LABEL}: {cluster} names no Kafka in namespace {ns} (the render has {there} \
                             there): the pool is never reconciled"
                        ),
                    ),
                    format!("{suggestion}, or add Kafka {cluster} to namespace {ns}"),
                ));
            }
            Some(k) if !k.uses_node_pools() => hits.push(with_fix(
                hit(
                    &pool.display,
                    label_path(),
                    format!(
                        "{} does not use node pools (no strimzi.io/node-pools: enabled annotation, it has \
                         spec.zookeeper, and its release is before Strimzi 0.46 or unknown): the operator ignores \
                         this pool",
                        k.display
                    ),
                ),
                format!(
                    "annotate {} with strimzi.io/node-pools: enabled (and move replicas and storage into the \
                     pools), or remove the pool",
                    k.display
                ),
            )),
            Some(_) => {}
        }
    }
    hits
}

/// `pool [roles] replicas` for messages.
pub(super) fn pools_text(pools: &[&NodePool<'_>]) -> String {
    if pools.is_empty() {
        return "none".into();
    }
    let items: Vec<String> = pools
        .iter()
        .map(|p| {
            let replicas = p.replicas().map_or("?".to_string(), |r| r.to_string());
            format!("{} {} x{replicas}", p.name, p.roles_text())
        })
        .collect();
    items.join(", ")
}

pub(super) fn roles(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in pool_clusters(&ctx.to) {
        let pools = k.pools(&ctx.to);
        let ns = k.namespace.unwrap_or("(no namespace)");
        for pool in &pools {
            if pool.roles().is_none_or(|r| r.is_empty()) {
                hits.push(with_fix(
                    hit(
                        &pool.display,
                        "spec.roles",
                        format!(
                            "KafkaNodePool has no role: Strimzi refuses to reconcile {}",
                            k.display
                        ),
                    ),
                    "set spec.roles to [broker], [controller] or [controller, broker]",
                ));
            }
        }
        if pools.iter().any(|p| p.replicas().is_none()) {
            // Whether a pool has nodes is unknown; the schema rules report the unreadable replicas.
            continue;
        }
        let running: Vec<&NodePool<'_>> = pools
            .iter()
            .copied()
            .filter(|p| p.replicas().is_some_and(|r| r > 0))
            .collect();
        if running.is_empty() {
            hits.push(with_fix(
                hit(
                    &k.display,
                    "",
                    format!(
                        "the cluster uses node pools, but no KafkaNodePool in namespace {ns} with {CLUSTER_LABEL}: \
                         {} has replicas (pools: {}): Strimzi refuses to reconcile it",
                        k.name,
                        pools_text(&pools)
                    ),
                ),
                format!(
                    "add KafkaNodePools labelled {CLUSTER_LABEL}: {} in namespace {ns} (a controller pool and a broker \
                     pool)",
                    k.name
                ),
            ));
            continue;
        }
        let has = |role: Role| running.iter().any(|p| p.has_role(role));
        match k.metadata_mode() {
            MetadataMode::KRaft => {
                for role in [Role::Broker, Role::Controller] {
                    if has(role) {
                        continue;
                    }
                    let r = role.as_str();
                    hits.push(with_fix(
                        hit(
                            &k.display,
                            "",
                            format!(
                                "KRaft cluster without a {r}: no KafkaNodePool with the {r} role and at least one \
                                 replica (pools: {}); Strimzi refuses to reconcile it",
                                pools_text(&pools)
                            ),
                        ),
                        format!("add the {r} role to a pool with replicas, or add a {r} pool"),
                    ));
                }
            }
            MetadataMode::ZooKeeper => {
                for pool in pools.iter().filter(|p| p.has_role(Role::Controller)) {
                    hits.push(with_fix(
                        hit(
                            &pool.display,
                            "spec.roles",
                            format!(
                                "{} keeps its metadata in ZooKeeper: its node pools may only have the broker role \
                                 (roles {}); Strimzi refuses the cluster",
                                k.display,
                                pool.roles_text()
                            ),
                        ),
                        "set spec.roles to [broker] (controllers come with the move to KRaft)",
                    ));
                }
                if !has(Role::Broker) {
                    hits.push(hit(
                        &k.display,
                        "",
                        format!(
                            "no KafkaNodePool with the broker role and at least one replica (pools: {}); Strimzi \
                             refuses to reconcile the cluster",
                            pools_text(&pools)
                        ),
                    ));
                }
            }
            // The migration's own rules judge the pools during a ZooKeeper-to-KRaft migration.
            MetadataMode::Migration => {}
        }
    }
    hits
}

pub(super) fn controller_count(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in pool_clusters(&ctx.to) {
        if k.metadata_mode() != MetadataMode::KRaft {
            continue;
        }
        let controllers = k.controller_pools(&ctx.to);
        let Some(n) = controllers.iter().map(|p| p.replicas()).sum::<Option<i64>>() else {
            continue;
        };
        let why = match n {
            0 => continue, // no quorum at all: node-pool-roles
            1 => "a single controller: the quorum has no redundancy, the cluster stops whenever it restarts",
            2 => {
                "Running KRaft controller quorum with two nodes is not advisable as both nodes will be needed to \
                 avoid downtime (Strimzi's KafkaKRaftControllerNodeCount warning)"
            }
            n if n % 2 == 0 => {
                "an even quorum tolerates no more failures than one node less (Strimzi's \
                 KafkaKRaftControllerNodeCount warning)"
            }
            _ => continue,
        };
        let (object, path) = match controllers.as_slice() {
            [only] => (only.display.clone(), "spec.replicas"),
            _ => (k.display.clone(), ""),
        };
        hits.push(hit(
            &object,
            path,
            format!(
                "{} has {n} KRaft controller(s) (pools: {}): {why}",
                k.display,
                pools_text(&controllers)
            ),
        ));
    }
    hits
}

pub(super) fn node_ids_invalid(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for pool in &ctx.to.pools {
        for (key, effect) in [
            (NEXT_NODE_IDS, "assigns new node IDs sequentially"),
            (REMOVE_NODE_IDS, "removes the highest node IDs on scale-down"),
        ] {
            if let Some(Err(err)) = pool.id_range(key) {
                hits.push(hit(
                    &pool.display,
                    annotation_path(key),
                    format!("{err}: Strimzi ignores the annotation and {effect}"),
                ));
            }
        }
    }
    hits
}

pub(super) fn node_ids_overlap(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in pool_clusters(&ctx.to) {
        let ranged: Vec<(&NodePool<'_>, NodeIdRange)> = k
            .pools(&ctx.to)
            .into_iter()
            .filter_map(|p| Some((p, p.id_range(NEXT_NODE_IDS)?.ok()?)))
            .collect();
        for (i, (pool, range)) in ranged.iter().enumerate() {
            for (other, other_range) in &ranged[..i] {
                let Some((mine, theirs)) = range.overlap(other_range) else {
                    continue;
                };
                hits.push(with_fix(
                    hit(
                        &pool.display,
                        annotation_path(NEXT_NODE_IDS),
                        format!(
                            "{NEXT_NODE_IDS} {range} overlaps {}'s {other_range} ({mine} and {theirs}): both pools \
                             of {} draw from the same IDs, so which pool gets them depends on the order of \
                             scale-ups, and node IDs and pod names stop following the ranges",
                            other.display, k.display
                        ),
                    ),
                    "give each pool of the cluster its own, disjoint node ID range",
                ));
            }
        }
    }
    hits
}

/// The base revision's pool of the same namespace and name.
pub(super) fn base_pool<'s, 'a>(from: &'s Snapshot<'a>, pool: &NodePool<'_>) -> Option<&'s NodePool<'a>> {
    from.pools
        .iter()
        .find(|p| p.name == pool.name && p.namespace == pool.namespace)
}

/// The pools of the head revision that ran nodes of `role` in the base revision and no longer have
/// that role (their roles still readable): (head pool, base pool, how many nodes ran it).
pub(super) fn role_removed_from<'c, 'a>(
    ctx: &'c Context<'a>,
    role: Role,
) -> Vec<(&'c NodePool<'a>, &'c NodePool<'a>, i64)> {
    let Some(from) = &ctx.from else { return Vec::new() };
    ctx.to
        .pools
        .iter()
        .filter_map(|pool| {
            let old = base_pool(from, pool)?;
            let nodes = old.runs(role)?;
            (pool.roles().is_some() && !pool.has_role(role)).then_some((pool, old, nodes))
        })
        .collect()
}

/// The pools of the base revision that ran nodes of `role` and are gone from the head revision,
/// with how many nodes ran it.
pub(super) fn removed_running<'c, 'a>(ctx: &'c Context<'a>, role: Role) -> Vec<(&'c NodePool<'a>, i64)> {
    let Some(from) = &ctx.from else { return Vec::new() };
    from.pools
        .iter()
        .filter_map(|old| {
            let nodes = old.runs(role)?;
            base_pool(&ctx.to, old).is_none().then_some((old, nodes))
        })
        .collect()
}

pub(super) fn broker_role_removed(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (pool, old, brokers) in role_removed_from(ctx, Role::Broker) {
        hits.push(with_fix(
            hit(
                &pool.display,
                "spec.roles",
                format!(
                    "roles change from {} to {}: {brokers} broker(s) of this pool lose the broker role; while they \
                     hold partition replicas Strimzi reverts the role change and only sets a \
                     ScaleDownPreventionCheck warning condition, and git and the cluster disagree",
                    old.roles_text(),
                    pool.roles_text()
                ),
            ),
            "keep the broker role until the pool's brokers are empty (KafkaRebalance mode remove-brokers with \
             their node IDs), then remove it; or add a new controller-only pool instead",
        ));
    }
    hits
}

pub(super) fn removed_with_brokers(ctx: &Context<'_>) -> Vec<Hit> {
    let Some(from) = &ctx.from else { return Vec::new() };
    let mut hits = Vec::new();
    for (old, brokers) in removed_running(ctx, Role::Broker) {
        // The cluster stays: a deleted cluster takes its pools with it, which is another matter.
        let Some(k) = ctx
            .to
            .kafkas
            .iter()
            .find(|k| old.belongs_to(k) && k.uses_node_pools())
        else {
            continue;
        };
        let renamed = ctx
            .to
            .pools
            .iter()
            .filter(|p| p.belongs_to(k) && base_pool(from, p).is_none())
            .map(|p| p.name)
            .collect::<Vec<_>>();
        let renamed = if renamed.is_empty() {
            String::new()
        } else {
            format!(
                " (a rename to {} is a removal too: the new pool gets new nodes)",
                renamed.join(", ")
            )
        };
        hits.push(with_fix(
            hit(
                &old.display,
                "",
                format!(
                    "KafkaNodePool removed while it runs {brokers} broker(s) of {}{renamed}: the pool owns its \
                     StrimziPodSet, so deleting it deletes the broker pods with their partition replicas still on \
                     them (under-replicated or lost partitions); Strimzi's scale-down check cannot stop it",
                    k.display
                ),
            ),
            "keep the pool; move its partitions away (KafkaRebalance mode remove-brokers), scale it to 0 replicas, \
             and remove it in a later change",
        ));
    }
    hits
}

/// The volume that holds a pool's KRaft metadata log: the storage itself, or the JBOD volume marked
/// `kraftMetadata: shared`, else the one with the lowest id (`VolumeUtils.kraftMetadataPath`).
pub(super) fn metadata_volume(storage: &Value) -> Option<(String, &Value)> {
    if storage.get("type").and_then(Value::as_str) != Some("jbod") {
        return Some(("spec.storage".into(), storage));
    }
    let volumes: Vec<(usize, &Value)> = storage.get("volumes")?.as_array()?.iter().enumerate().collect();
    let shared = volumes
        .iter()
        .find(|(_, v)| v.get("kraftMetadata").and_then(Value::as_str) == Some("shared"));
    let chosen = match shared {
        Some(v) => *v,
        None => *volumes
            .iter()
            .min_by_key(|(_, v)| v.get("id").and_then(int).unwrap_or(i64::MAX))?,
    };
    Some((format!("spec.storage.volumes[{}]", chosen.0), chosen.1))
}

pub(super) fn ephemeral_controllers(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in pool_clusters(&ctx.to) {
        if k.metadata_mode() == MetadataMode::ZooKeeper {
            continue;
        }
        let controllers = k.controller_pools(&ctx.to);
        let quorum: Option<i64> = controllers.iter().map(|p| p.replicas()).sum();
        for pool in controllers {
            let Some((path, volume)) = pool.storage().and_then(metadata_volume) else {
                continue;
            };
            if volume.get("type").and_then(Value::as_str) != Some("ephemeral") {
                continue;
            }
            let consequence = if quorum == Some(1) {
                "with a single controller the cluster loses all its metadata (topics, ACLs, configs) on any \
                 restart or rolling update (Strimzi's KafkaStorage warning)"
                    .to_string()
            } else {
                "every restart (a rolling update restarts them all) wipes the controller's copy of the metadata \
                 log, and a quorum that restarts faster than it re-replicates loses the cluster's metadata"
                    .to_string()
            };
            hits.push(hit(
                &pool.display,
                format!("{path}.type"),
                format!(
                    "controllers of {} keep the KRaft metadata log on ephemeral storage: {consequence}",
                    k.display
                ),
            ));
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pool(name: &str, replicas: i64, roles: &[&str], annotations: Value, status: Option<Value>) -> Value {
        let mut p = json!({"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaNodePool",
            "metadata": {"name": name, "namespace": "k", "labels": {"strimzi.io/cluster": "main"},
                "annotations": annotations},
            "spec": {"replicas": replicas, "roles": roles, "storage": {"type": "ephemeral"}}});
        if let Some(s) = status {
            p["status"] = s;
        }
        p
    }

    fn assigned(objects: &[Value]) -> Vec<(String, Vec<i64>)> {
        let pools: Vec<NodePool<'_>> = objects.iter().filter_map(NodePool::from_object).collect();
        let mut refs: Vec<&NodePool<'_>> = pools.iter().collect();
        refs.sort_by_key(|p| p.name);
        assign_node_ids(&refs)
            .unwrap()
            .by_pool
            .into_iter()
            .map(|(p, ids)| (p.to_string(), ids.into_iter().collect()))
            .collect()
    }

    #[test]
    fn ranges_parse_like_strimzi() {
        let r = NodeIdRange::parse(" [ 0 , 3, 10 - 12, 7-5 ] ").unwrap();
        assert_eq!(r.to_string(), "[0, 3, 10-12, 7-5]");
        assert_eq!(r.ids().collect::<Vec<_>>(), [0, 3, 10, 11, 12, 7, 6, 5]);
        assert!(NodeIdRange::parse("").unwrap().spans.is_empty());
        assert!(NodeIdRange::parse("[ ]").unwrap().spans.is_empty());
        for bad in ["0-9", "[1,]", "[a]", "[1-2-3]", "[-1]", "[1 2]", "[1],"] {
            assert!(
                matches!(NodeIdRange::parse(bad), Err(NodePoolError::InvalidRange { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            NodeIdRange::parse("[2147483648]"),
            Err(NodePoolError::IdTooLarge { .. })
        ));
        let a = NodeIdRange::parse("[0-9, 100-199]").unwrap();
        let b = NodeIdRange::parse("[50, 199-150]").unwrap();
        assert_eq!(
            a.overlap(&b).map(|(x, y)| (x.to_string(), y.to_string())),
            Some(("100-199".into(), "199-150".into()))
        );
        assert_eq!(a.overlap(&NodeIdRange::parse("[10-99]").unwrap()), None);
    }

    #[test]
    fn new_clusters_get_ids_in_pool_name_order() {
        // The broker pool sorts first, so it gets 0-2 and the controllers 3-5.
        let objs = [
            pool("controller", 3, &["controller"], json!({}), None),
            pool("broker", 3, &["broker"], json!({}), None),
        ];
        assert_eq!(
            assigned(&objs),
            [
                ("broker".to_string(), vec![0, 1, 2]),
                ("controller".to_string(), vec![3, 4, 5])
            ]
        );
        // Ranges first; an ID another pool took is skipped; a depleted range falls back to the lowest
        // free ID.
        let objs = [
            pool("a", 2, &["broker"], json!({NEXT_NODE_IDS: "[5, 0]"}), None),
            pool("b", 3, &["broker"], json!({NEXT_NODE_IDS: "[0-1]"}), None),
            pool(
                "c",
                1,
                &["controller"],
                json!({NEXT_NODE_IDS: "not a range"}),
                None,
            ),
        ];
        assert_eq!(
            assigned(&objs),
            [
                ("a".to_string(), vec![0, 5]),
                ("b".to_string(), vec![1, 2, 3]),
                ("c".to_string(), vec![4])
            ]
        );
    }

    #[test]
    fn status_ids_are_kept_and_scaled_like_the_operator() {
        let objs = [
            // Scale-down by one: remove-node-ids names 10 first.
            pool(
                "a",
                2,
                &["broker"],
                json!({REMOVE_NODE_IDS: "[10]"}),
                Some(json!({"nodeIds": [3, 10, 11]})),
            ),
            // Scale-down without a range: the highest goes.
            pool("b", 1, &["broker"], json!({}), Some(json!({"nodeIds": [0, 1]}))),
            // Scale-up fills the lowest gap (2).
            pool("c", 2, &["controller"], json!({}), Some(json!({"nodeIds": [4]}))),
        ];
        let pools: Vec<NodePool<'_>> = objs.iter().filter_map(NodePool::from_object).collect();
        let refs: Vec<&NodePool<'_>> = pools.iter().collect();
        let ids = assign_node_ids(&refs).unwrap();
        assert!(ids.from_status);
        assert_eq!(ids_text(ids.of("a").unwrap()), "3, 11");
        assert_eq!(ids_text(ids.of("b").unwrap()), "0");
        assert_eq!(ids_text(ids.of("c").unwrap()), "2, 4");
        // Two pools claiming one ID: Strimzi refuses, so do we.
        let dup = [
            pool("a", 1, &["broker"], json!({}), Some(json!({"nodeIds": [0]}))),
            pool("b", 1, &["broker"], json!({}), Some(json!({"nodeIds": [0]}))),
        ];
        let pools: Vec<NodePool<'_>> = dup.iter().filter_map(NodePool::from_object).collect();
        let refs: Vec<&NodePool<'_>> = pools.iter().collect();
        assert_eq!(assign_node_ids(&refs), None);
        // Absurd replica counts are not simulated.
        let huge = [pool("a", 2_000_000_000, &["broker"], json!({}), None)];
        let pools: Vec<NodePool<'_>> = huge.iter().filter_map(NodePool::from_object).collect();
        let refs: Vec<&NodePool<'_>> = pools.iter().collect();
        assert_eq!(assign_node_ids(&refs), None);
    }
}
