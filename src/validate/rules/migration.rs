//! The ZooKeeper-to-KRaft migration of a Strimzi 0.40–0.45 cluster as a sequence of reviewed
//! commits, judged offline between a base and a head revision (`validate --from --to`, the PR
//! diff): brokers on node pools first, in a pool named `kafka`; then a dedicated, persistent
//! controller pool with `strimzi.io/kraft: migration`; then `enabled`; then `spec.zookeeper` and the
//! objects that only served ZooKeeper go. Rollback is `migration` -> `rollback` -> (controller pool
//! removed) -> `disabled`. Each check knows one way a commit skips or reorders that path.
//!
//! These rules see only the two revisions. Whether the live cluster has reached the
//! `status.kafkaMetadataState` a step needs (KRaftPostMigration before `enabled`, KRaft before
//! `spec.zookeeper` goes) is the apply gates' business. The engineer's notes, with the reasons from
//! Strimzi's `KafkaMetadataStateManager`, are in `docs/kraft-migration.md`.

use std::collections::HashSet;

use serde_json::Value;

use super::checks::{display, hit, labels_of, selects, with_fix};
use super::node_pools::{NodePool, Role, annotation_path, base_pool, metadata_volume, pools_text};
use super::strimzi::{KRAFT_ANNOTATION, KafkaCr, KraftAnnotation, MetadataMode, int};
use super::{Context, Hit, Snapshot};
use crate::manifest::ResId;
use crate::manifest::zookeeper::{zookeeper_name, zookeeper_workload};

/// The name the broker pool must have when it takes over `spec.kafka.replicas`: Strimzi's virtual
/// node pool of a Kafka without node pools is `kafka`, so only a pool of that name keeps the pods
/// `<cluster>-kafka-<i>` and their volumes.
const BROKER_POOL: &str = "kafka";

/// The annotation that makes a ZooKeeper-based Kafka read its brokers from KafkaNodePools.
const NODE_POOLS_ANNOTATION: &str = "strimzi.io/node-pools";

/// `strimzi.io/kraft: migration`, or `no strimzi.io/kraft annotation`, for messages.
fn kraft_text(k: &KafkaCr<'_>) -> String {
    match k.annotation(KRAFT_ANNOTATION) {
        Some(v) => format!("{KRAFT_ANNOTATION}: {v}"),
        None => format!("no {KRAFT_ANNOTATION} annotation"),
    }
}

/// The `strimzi.io/kraft` value as written, `(none)` without the annotation, for messages.
fn kraft_value<'k>(k: &KafkaCr<'k>) -> &'k str {
    k.annotation(KRAFT_ANNOTATION).unwrap_or("(none)")
}

/// A ZooKeeper-era Kafka that still has `spec.zookeeper` (`v1` has no ZooKeeper at all).
fn has_zookeeper(k: &KafkaCr<'_>) -> bool {
    k.api_version() != "v1" && k.spec("/zookeeper").is_some()
}

/// True while the resource says a migration is under way: `migration` or `rollback`, or `enabled`
/// with `spec.zookeeper` still there (PreKRaft until the operator reports KRaft).
fn migrating(k: &KafkaCr<'_>) -> bool {
    has_zookeeper(k)
        && matches!(
            k.kraft_annotation(),
            KraftAnnotation::Migration | KraftAnnotation::Rollback | KraftAnnotation::Enabled
        )
}

/// The Kafkas present in both revisions (same namespace and name): (base, head).
fn pairs<'c, 'a>(ctx: &'c Context<'a>) -> Vec<(&'c KafkaCr<'a>, &'c KafkaCr<'a>)> {
    let Some(from) = &ctx.from else {
        return Vec::new();
    };
    ctx.to
        .kafkas
        .iter()
        .filter_map(|k| Some((from.kafka(k)?, k)))
        .collect()
}

pub(super) fn broker_pool_name(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (old, new) in pairs(ctx) {
        // Only the change that moves brokers from spec.kafka into pools.
        if old.uses_node_pools() || !new.uses_node_pools() || !has_zookeeper(old) {
            continue;
        }
        let Some(replicas) = old.spec("/kafka/replicas").and_then(int).filter(|r| *r > 0) else {
            continue;
        };
        let pools = new.pools(&ctx.to);
        let named = pools.iter().find(|p| p.name == BROKER_POOL);
        if named.is_some_and(|p| p.has_role(Role::Broker)) {
            continue;
        }
        let ns = new.namespace.unwrap_or("(no namespace)");
        let (object, path, what) = match named {
            Some(pool) => (
                pool.display.clone(),
                "spec.roles".to_string(),
                format!(
                    "KafkaNodePool {BROKER_POOL} does not have the broker role (roles {})",
                    pool.roles_text()
                ),
            ),
            None => (
                new.display.clone(),
                annotation_path(NODE_POOLS_ANNOTATION),
                format!(
                    "no KafkaNodePool of the cluster is named {BROKER_POOL} (pools: {})",
                    pools_text(&pools)
                ),
            ),
        };
        hits.push(with_fix(
            hit(
                &object,
                path,
                format!(
                    "{} moves its {replicas} broker(s) from spec.kafka.replicas to KafkaNodePools, but {what}: only a \
                     broker pool named {BROKER_POOL} takes over the pods {name}-kafka-0..{last} and their volumes; a \
                     pool of any other name starts new, empty brokers (pods and PVCs {name}-<pool>-<id>) and the \
                     data stays behind on the old volumes",
                    new.display,
                    name = new.name,
                    last = replicas - 1
                ),
            ),
            format!(
                "name the broker pool {BROKER_POOL}: KafkaNodePool {BROKER_POOL} in namespace {ns}, labelled \
                 strimzi.io/cluster: {}, roles [broker], replicas {replicas} and the storage of spec.kafka.storage",
                new.name
            ),
        ));
    }
    hits
}

pub(super) fn node_pools_first(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (old, new) in pairs(ctx) {
        if new.kraft_annotation() != KraftAnnotation::Migration
            || old.kraft_annotation() == KraftAnnotation::Migration
            || !has_zookeeper(new)
            || old.uses_node_pools()
        {
            continue;
        }
        let message = if new.uses_node_pools() {
            format!(
                "{} enables node pools ({NODE_POOLS_ANNOTATION}: enabled) and starts the KRaft migration \
                 ({KRAFT_ANNOTATION}: migration) in one change: Strimzi wants the brokers on node pools first (the \
                 pool {BROKER_POOL} takes over the running brokers without a rolling update), then the controllers \
                 and the migration; together, a failure of either leaves the cluster half converted with no \
                 reviewed state to return to",
                new.display
            )
        } else {
            format!(
                "{} starts the KRaft migration ({KRAFT_ANNOTATION}: migration) without node pools: Strimzi refuses it \
                 (\"KRaft can only be used with a Kafka cluster that uses KafkaNodePool resources\")",
                new.display
            )
        };
        hits.push(with_fix(
            hit(&new.display, annotation_path(KRAFT_ANNOTATION), message),
            format!(
                "first merge a change that only moves the brokers into a KafkaNodePool named {BROKER_POOL} and sets \
                 {NODE_POOLS_ANNOTATION}: enabled; once {} is Ready, add the controller pool and {KRAFT_ANNOTATION}: \
                 migration",
                new.display
            ),
        ));
    }
    hits
}

/// `major.minor` of a Kafka, metadata, protocol or message format version (`3.9.2`, `3.9-IV0`, `3.9`;
/// YAML may have read `3.9` as a number).
fn minor_of(v: &Value) -> Option<(u32, u32)> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let mut parts = text.split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Strimzi's `KRaftUtils.validateVersionsForKRaftMigration` (0.45.2), checked where the resource
/// alone decides it: a Kafka set to `migration` must run Kafka 3.7.0 or later, and its metadata
/// version, `inter.broker.protocol.version` and `log.message.format.version` must be the same
/// version. Unset values are the Kafka version's own (the same minor); only written values can
/// disagree. Values of one minor with different `-IV` suffixes are left to the operator.
pub(super) fn versions(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in ctx
        .to
        .kafkas
        .iter()
        .filter(|k| has_zookeeper(k) && k.kraft_annotation() == KraftAnnotation::Migration)
    {
        let kafka = k.spec("/kafka/version").and_then(minor_of);
        let version_text = k
            .spec("/kafka/version")
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
        if let (Some(minor), Some(text)) = (kafka, &version_text)
            && minor < (3, 7)
        {
            hits.push(with_fix(
                hit(
                    &k.display,
                    "spec.kafka.version",
                    format!(
                        "{} starts the KRaft migration on Kafka {text}: Strimzi refuses a migration below Kafka \
                         3.7.0 (InvalidResourceException \"Migration cannot be performed with Kafka version ...\")",
                        k.display
                    ),
                ),
                "upgrade Kafka (and its metadata version) to 3.7.0 or later in an earlier change, then migrate".to_string(),
            ));
        }
        let written = [
            ("spec.kafka.metadataVersion", k.spec("/kafka/metadataVersion")),
            (
                "spec.kafka.config[inter.broker.protocol.version]",
                k.spec("/kafka/config/inter.broker.protocol.version"),
            ),
            (
                "spec.kafka.config[log.message.format.version]",
                k.spec("/kafka/config/log.message.format.version"),
            ),
        ];
        let effective: Vec<(&str, (u32, u32))> = written
            .iter()
            .filter_map(|(path, v)| v.and_then(minor_of).map(|m| (*path, m)))
            .collect();
        let own = kafka.or_else(|| effective.first().map(|(_, m)| *m));
        let Some(own) = own else { continue };
        if let Some((path, (major, minor))) = effective.iter().find(|(_, m)| *m != own) {
            hits.push(with_fix(
                hit(
                    &k.display,
                    *path,
                    format!(
                        "{} starts the KRaft migration with {path} at {major}.{minor} while the others are at {}.{}: \
                         Strimzi refuses a migration unless the Kafka version, metadata version, \
                         inter.broker.protocol.version and log.message.format.version are all the same version",
                        k.display, own.0, own.1
                    ),
                ),
                "align metadataVersion, inter.broker.protocol.version and log.message.format.version with the Kafka \
                 version (or remove them) in an earlier change, then migrate"
                    .to_string(),
            ));
        }
    }
    hits
}

pub(super) fn controllers(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in ctx.to.kafkas.iter().filter(|k| migrating(k)) {
        let pools = k.pools(&ctx.to);
        for pool in &pools {
            if pool.has_role(Role::Broker) && pool.has_role(Role::Controller) {
                hits.push(with_fix(
                    hit(
                        &pool.display,
                        "spec.roles",
                        format!(
                            "{} is migrating to KRaft ({}), and this pool has both roles {}: Strimzi migrates only to \
                             dedicated controller nodes, not to nodes that are brokers and controllers at once",
                            k.display,
                            kraft_text(k),
                            pool.roles_text()
                        ),
                    ),
                    "keep the broker pool [broker] and give the controllers their own KafkaNodePool with roles \
                     [controller]",
                ));
            }
        }
        let dedicated: Vec<&NodePool<'_>> = pools
            .iter()
            .copied()
            .filter(|p| p.has_role(Role::Controller) && !p.has_role(Role::Broker))
            .collect();
        let Some(quorum) = dedicated.iter().map(|p| p.replicas()).sum::<Option<i64>>() else {
            continue;
        };
        // During a rollback the controller pool is deleted on purpose (after `rollback` took effect).
        if quorum <= 0 && k.kraft_annotation() != KraftAnnotation::Rollback {
            hits.push(with_fix(
                hit(
                    &k.display,
                    "",
                    format!(
                        "{} is migrating to KRaft ({}) without a dedicated controller pool with replicas (pools: {}): \
                         Strimzi refuses the cluster (a KafkaNodePool with the controller role and at least one \
                         replica is required from the start of the migration) and the migration cannot proceed",
                        k.display,
                        kraft_text(k),
                        pools_text(&pools)
                    ),
                ),
                format!(
                    "add a KafkaNodePool labelled strimzi.io/cluster: {} with roles [controller], 3 replicas and \
                     persistent-claim storage",
                    k.name
                ),
            ));
        }
        if quorum != 1 {
            continue;
        }
        for pool in dedicated.iter().filter(|p| p.replicas() == Some(1)) {
            let Some((path, volume)) = pool.storage().and_then(metadata_volume) else {
                continue;
            };
            if volume.get("type").and_then(Value::as_str) != Some("ephemeral") {
                continue;
            }
            hits.push(with_fix(
                hit(
                    &pool.display,
                    format!("{path}.type"),
                    format!(
                        "{} is migrating to KRaft ({}) to a single controller on ephemeral storage, which Strimzi says \
                         will not work: a controller restart during the migration loses the metadata copied from \
                         ZooKeeper (topics, ACLs, configs)",
                        k.display,
                        kraft_text(k)
                    ),
                ),
                "run 3 controllers on persistent-claim storage",
            ));
        }
    }
    hits
}

pub(super) fn skipped(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (old, new) in pairs(ctx) {
        if !has_zookeeper(old) || new.kraft_annotation() != KraftAnnotation::Enabled {
            continue;
        }
        let why = match old.kraft_annotation() {
            KraftAnnotation::Migration | KraftAnnotation::Enabled => continue,
            KraftAnnotation::Rollback => {
                "after rollback the brokers are back on ZooKeeper (KRaftDualWriting), and Strimzi refuses 'enabled' \
                 during a migration: it only sets a KafkaMetadataStateWarning condition"
            }
            KraftAnnotation::Disabled | KraftAnnotation::Other => {
                "the cluster is ZooKeeper-based, and Strimzi refuses 'enabled' on it (KafkaMetadataStateWarning: \
                 \"apply the 'migration' value instead\"): nothing migrates and git and the cluster disagree"
            }
        };
        hits.push(with_fix(
            hit(
                &new.display,
                annotation_path(KRAFT_ANNOTATION),
                format!(
                    "{KRAFT_ANNOTATION} goes from {} (base revision) to enabled without the migration step: {why}",
                    kraft_value(old)
                ),
            ),
            format!(
                "set {KRAFT_ANNOTATION}: migration first (with a dedicated controller pool); set enabled in a later \
                 change, once status.kafkaMetadataState is KRaftPostMigration"
            ),
        ));
    }
    hits
}

pub(super) fn zookeeper_removed_early(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (old, new) in pairs(ctx) {
        if !has_zookeeper(old) || new.spec("/zookeeper").is_some() {
            continue;
        }
        let old_enabled = old.kraft_annotation() == KraftAnnotation::Enabled;
        let new_enabled = new.kraft_annotation() == KraftAnnotation::Enabled || new.api_version() == "v1";
        let when = match (old_enabled, new_enabled) {
            (true, true) => continue,
            (false, true) => format!(
                "in the same change that sets {KRAFT_ANNOTATION}: enabled (base revision: {})",
                kraft_text(old)
            ),
            (false, false) => format!(
                "while the cluster is not on KRaft ({} in the base revision, {} here)",
                kraft_text(old),
                kraft_text(new)
            ),
            (true, false) => format!(
                "and the same change drops {KRAFT_ANNOTATION}: enabled ({} here; Strimzi 0.45 reads a missing \
                 annotation as disabled, which stops a migration still in PreKRaft)",
                kraft_text(new)
            ),
        };
        hits.push(with_fix(
            hit(
                &new.display,
                "spec.zookeeper",
                format!(
                    "spec.zookeeper removed {when}: until the operator reports status.kafkaMetadataState KRaft, \
                     ZooKeeper still holds the cluster's metadata (and is what a rollback returns to), and Strimzi \
                     refuses a ZooKeeper-based or migrating Kafka without spec.zookeeper"
                ),
            ),
            format!(
                "keep spec.zookeeper until a change that sets {KRAFT_ANNOTATION}: enabled was merged and the operator \
                 reports KRaft; remove it in a later change that keeps the annotation enabled"
            ),
        ));
    }
    hits
}

pub(super) fn controller_pool_removed(ctx: &Context<'_>) -> Vec<Hit> {
    let Some(from) = &ctx.from else {
        return Vec::new();
    };
    let mut hits = Vec::new();
    for pool in &from.pools {
        if !pool.has_role(Role::Controller) || base_pool(&ctx.to, pool).is_some() {
            continue;
        }
        let Some(old) = from.kafkas.iter().find(|k| pool.belongs_to(k)) else {
            continue;
        };
        // A deleted cluster takes its pools with it, which is another matter.
        let Some(new) = ctx.to.kafka(old) else {
            continue;
        };
        if !has_zookeeper(old) {
            continue;
        }
        let when = match (old.kraft_annotation(), new.kraft_annotation()) {
            // The documented rollback: `rollback` took effect in an earlier change, now the pool goes.
            (KraftAnnotation::Rollback, _) => continue,
            (KraftAnnotation::Migration, KraftAnnotation::Rollback) => {
                "in the same change that sets rollback: the brokers run in KRaft mode against these controllers \
                 until the rollback has brought them back to ZooKeeper (KRaftDualWriting)"
            }
            (KraftAnnotation::Migration, _) => {
                "while the migration runs (strimzi.io/kraft: migration in the base revision): the controllers hold \
                 the migrated metadata and, from KRaftDualWriting on, are the brokers' only controller quorum"
            }
            (KraftAnnotation::Enabled, _) => {
                "while the migration is being finalised (strimzi.io/kraft: enabled with spec.zookeeper in the base \
                 revision): the controllers are the cluster's metadata quorum"
            }
            (KraftAnnotation::Disabled | KraftAnnotation::Other, _) => continue,
        };
        hits.push(with_fix(
            hit(
                &pool.display,
                "",
                format!(
                    "controller pool of {} removed {when}; deleting it deletes the controllers and the cluster loses \
                     its metadata",
                    old.display
                ),
            ),
            "keep the controller pool; to abandon the migration set rollback (from KRaftPostMigration), and once the \
             state is back in KRaftDualWriting remove the pool in a later change (deleteClaim: true, or delete its \
             PVCs), then set disabled",
        ));
    }
    hits
}

pub(super) fn rollback_order(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (old, new) in pairs(ctx) {
        if !has_zookeeper(old) {
            continue;
        }
        // Going back after `enabled` is `kraft-migration-enabled-is-final`'s.
        let why = match (old.kraft_annotation(), new.kraft_annotation()) {
            (KraftAnnotation::Disabled | KraftAnnotation::Other, KraftAnnotation::Rollback) => {
                "rollback on a ZooKeeper-based cluster: there is no migration to roll back; Strimzi refuses it and only \
                 sets a KafkaMetadataStateWarning condition"
            }
            (KraftAnnotation::Migration, KraftAnnotation::Disabled | KraftAnnotation::Other) => {
                "back to ZooKeeper without rollback: from KRaftPostMigration Strimzi refuses it (KafkaMetadataStateWarning) \
                 and the brokers, already on KRaft, are not taken back to ZooKeeper; the controller pool is still there"
            }
            _ => continue,
        };
        hits.push(with_fix(
            hit(
                &new.display,
                annotation_path(KRAFT_ANNOTATION),
                format!(
                    "{KRAFT_ANNOTATION} goes from {} (base revision) to {}: {why}",
                    kraft_value(old),
                    kraft_value(new)
                ),
            ),
            format!(
                "roll back only from migration: set {KRAFT_ANNOTATION}: rollback (live state KRaftPostMigration); once \
                 the state is KRaftDualWriting remove the controller pool, then set disabled"
            ),
        ));
    }
    hits
}

pub(super) fn enabled_is_final(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (old, new) in pairs(ctx) {
        if old.api_version() == "v1"
            || new.api_version() == "v1"
            || old.kraft_annotation() != KraftAnnotation::Enabled
            || new.kraft_annotation() == KraftAnnotation::Enabled
        {
            continue;
        }
        let explicit = new.annotation(KRAFT_ANNOTATION).is_some();
        // A finished KRaft cluster may drop the annotation (0.46+ ignores it); while ZooKeeper is still in
        // the resource the operator may be in PreKRaft, where anything but `enabled` stalls it. A dropped
        // spec.zookeeper is `kraft-migration-zookeeper-removed-early`'s.
        let zookeeper_stays = has_zookeeper(old) && has_zookeeper(new);
        if !(explicit || zookeeper_stays) {
            continue;
        }
        hits.push(with_fix(
            hit(
                &new.display,
                annotation_path(KRAFT_ANNOTATION),
                format!(
                    "{KRAFT_ANNOTATION} goes from enabled (base revision) to {}: enabled finalises the migration \
                     (PreKRaft deletes ZooKeeper) and there is no way back; Strimzi refuses any other value \
                     (KafkaMetadataStateWarning) and a migration still in PreKRaft stops there",
                    kraft_value(new)
                ),
            ),
            format!("keep {KRAFT_ANNOTATION}: enabled"),
        ));
    }
    hits
}

/// The objects of a revision that only serve the ZooKeeper of Kafka `k` (its namespace), each with
/// why: workloads by [`zookeeper_workload`]; Services and NetworkPolicies selecting their pods or
/// Strimzi's ZooKeeper pods; the ConfigMap `spec.zookeeper.metricsConfig` names when no other
/// component of the Kafka uses it; and any other object whose name is ZooKeeper's
/// ([`zookeeper_name`]). Strimzi's own objects are not in git and the Kafka's pools are not
/// ZooKeeper's.
fn zookeeper_only<'a>(snap: &Snapshot<'a>, k: &KafkaCr<'_>) -> Vec<(&'a Value, String)> {
    let mut found: Vec<(&'a Value, String)> = Vec::new();
    let mut pod_labels: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for kind in ["Deployment", "StatefulSet", "DaemonSet"] {
        for w in snap.of_kind("apps/v1", kind, k.namespace) {
            if let Some(why) = zookeeper_workload(w) {
                pod_labels.push((display(w), labels_of(w.pointer("/spec/template/metadata/labels"))));
                found.push((w, why));
            }
        }
    }
    let replicas = k
        .spec("/zookeeper/replicas")
        .and_then(int)
        .unwrap_or(1)
        .clamp(1, 100);
    for i in 0..replicas {
        pod_labels.push((
            format!("the ZooKeeper pods of {}", k.display),
            k.zookeeper_pod_labels(Some(i)),
        ));
    }
    let selected = |selector: Option<&Value>| -> Option<String> {
        let selector = selector?.as_object()?;
        pod_labels
            .iter()
            .find(|(_, labels)| selects(selector, labels))
            .map(|(whose, _)| format!("it selects {whose}"))
    };
    for svc in snap.of_kind("v1", "Service", k.namespace) {
        if let Some(why) = selected(svc.pointer("/spec/selector")) {
            found.push((svc, why));
        }
    }
    for np in snap.of_kind("networking.k8s.io/v1", "NetworkPolicy", k.namespace) {
        if let Some(why) = selected(np.pointer("/spec/podSelector/matchLabels")) {
            found.push((np, why));
        }
    }
    if let Some(cm) = zookeeper_metrics_config(snap, k).filter(|m| !m.shared) {
        found.push((
            cm.map,
            format!("spec.zookeeper.metricsConfig of {} names it", k.display),
        ));
    }
    let skip = |o: &Value| {
        ["Kafka", "KafkaNodePool"].contains(&o.get("kind").and_then(Value::as_str).unwrap_or_default())
    };
    for obj in snap
        .objects
        .iter()
        .filter(|o| super::namespace_of(o) == k.namespace && !skip(o))
    {
        let by_name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_some_and(zookeeper_name);
        if by_name && !found.iter().any(|(f, _)| std::ptr::eq(*f, obj)) {
            found.push((obj, "its name".into()));
        }
    }
    found
}

/// The ConfigMap `spec.zookeeper.metricsConfig` of a Kafka names, with its key, and whether another
/// component of the Kafka (`spec.kafka`, `spec.cruiseControl`) names the same ConfigMap.
struct ZooKeeperMetrics<'a> {
    map: &'a Value,
    key: &'a str,
    shared: bool,
}

fn zookeeper_metrics_config<'a>(snap: &Snapshot<'a>, k: &KafkaCr<'_>) -> Option<ZooKeeperMetrics<'a>> {
    let reference = k.spec("/zookeeper/metricsConfig/valueFrom/configMapKeyRef")?;
    let name = reference.get("name")?.as_str()?;
    let key = reference.get("key")?.as_str()?;
    let map = snap
        .of_kind("v1", "ConfigMap", k.namespace)
        .find(|c| c.pointer("/metadata/name").and_then(Value::as_str) == Some(name))?;
    let shared = ["kafka", "cruiseControl"].iter().any(|c| {
        k.spec(&format!("/{c}/metricsConfig/valueFrom/configMapKeyRef/name"))
            .and_then(Value::as_str)
            == Some(name)
    });
    // The key as the ConfigMap holds it, so the hit can outlive the Kafka's borrow.
    let key = ["data", "binaryData"]
        .iter()
        .filter_map(|f| map.get(*f).and_then(Value::as_object))
        .find_map(|m| m.keys().find(|have| have.as_str() == key))?
        .as_str();
    Some(ZooKeeperMetrics { map, key, shared })
}

pub(super) fn zookeeper_components_removed(ctx: &Context<'_>) -> Vec<Hit> {
    let Some(from) = &ctx.from else {
        return Vec::new();
    };
    let kept: HashSet<ResId> = ctx.to.objects.iter().filter_map(|o| ResId::of(o).ok()).collect();
    let mut hits = Vec::new();
    for old in &from.kafkas {
        // A deleted cluster takes its ZooKeeper with it, which is another matter.
        let Some(new) = ctx.to.kafka(old) else {
            continue;
        };
        match (old.metadata_mode(), new.metadata_mode()) {
            // KRaft in the base revision (`enabled`): ZooKeeper's objects may go with spec.zookeeper.
            (MetadataMode::KRaft, _) => continue,
            // Decommissioning a proxy or exporter of a ZooKeeper cluster is no migration step.
            (MetadataMode::ZooKeeper, MetadataMode::ZooKeeper) => continue,
            _ => {}
        }
        let consequence = format!(
            "is removed while {} is not on KRaft ({} in the base revision): until the operator reports \
             status.kafkaMetadataState KRaft, ZooKeeper still holds the metadata and is what a rollback returns to, so \
             what reaches and watches it is still needed",
            old.display,
            kraft_text(old)
        );
        let fix = format!(
            "keep it until {KRAFT_ANNOTATION}: enabled was merged and the operator reports KRaft; remove it then, \
             together with spec.zookeeper"
        );
        for (obj, why) in zookeeper_only(from, old) {
            let Ok(id) = ResId::of(obj) else { continue };
            if kept.contains(&id) {
                continue;
            }
            hits.push(with_fix(
                hit(
                    &display(obj),
                    "",
                    format!("only serves ZooKeeper ({why}) and {consequence}"),
                ),
                fix.clone(),
            ));
        }
        // The ZooKeeper key of a metrics ConfigMap the Kafka's brokers share.
        let Some(metrics) = zookeeper_metrics_config(from, old).filter(|m| m.shared) else {
            continue;
        };
        let Ok(id) = ResId::of(metrics.map) else { continue };
        let Some(map) = ctx
            .to
            .objects
            .iter()
            .find(|o| ResId::of(o).is_ok_and(|i| i == id))
        else {
            continue;
        };
        let has_key = ["data", "binaryData"]
            .iter()
            .any(|f| map.get(*f).and_then(|d| d.get(metrics.key)).is_some());
        if !has_key {
            hits.push(with_fix(
                hit(
                    &display(map),
                    format!("data[{}]", metrics.key),
                    format!(
                        "the ZooKeeper metrics configuration (spec.zookeeper.metricsConfig of {}) {consequence}",
                        old.display
                    ),
                ),
                fix.clone(),
            ));
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_minor() {
        assert_eq!(minor_of(&json!("3.9.2")), Some((3, 9)));
        assert_eq!(minor_of(&json!("3.7-IV4")), Some((3, 7)));
        assert_eq!(minor_of(&json!(3.8)), Some((3, 8)));
        assert_eq!(minor_of(&json!("latest")), None);
    }

    #[test]
    fn zookeeper_names() {
        for name in [
            "zk-exporter",
            "zoo-entrance",
            "main-zookeeper-client",
            "ZooKeeper-metrics",
            "ops.zk",
        ] {
            assert!(zookeeper_name(name), "{name}");
        }
        for name in ["kafka-exporter", "zkafka", "main-kafka-0-jmx", "prometheus"] {
            assert!(!zookeeper_name(name), "{name}");
        }
    }

    #[test]
    fn zookeeper_workloads_by_name_image_args_or_env() {
        let workload = |name: &str, container: Value| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                "spec": {"template": {"spec": {"containers": [container]}}}})
        };
        let cases = [
            (workload("zoo-entrance", json!({"image": "x"})), Some("its name")),
            (
                workload(
                    "exporter",
                    json!({"image": "registry:5000/dabealu/zookeeper-exporter:v1"}),
                ),
                Some("its image registry:5000/dabealu/zookeeper-exporter:v1"),
            ),
            (
                workload(
                    "proxy",
                    json!({"image": "x", "args": ["-hosts=zoo-entrance:2181"]}),
                ),
                Some("it connects to ZooKeeper: -hosts=zoo-entrance:2181"),
            ),
            (
                workload(
                    "proxy",
                    json!({"image": "x", "env": [{"name": "C", "value": "main-zookeeper-client:2181"}]}),
                ),
                Some("it connects to ZooKeeper: environment variable C"),
            ),
            (
                workload(
                    "kafka-ui",
                    json!({"image": "provectus/kafka-ui", "args": ["--bootstrap=main-kafka-bootstrap:9092"]}),
                ),
                None,
            ),
        ];
        for (w, want) in cases {
            assert_eq!(zookeeper_workload(&w).as_deref(), want, "{w}");
        }
    }
}
