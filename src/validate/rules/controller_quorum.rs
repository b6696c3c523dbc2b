//! Changes of the KRaft controller quorum of a running cluster (`--from/--to`): a KafkaNodePool that
//! loses the `controller` role, and a controller pool that is removed (or renamed, which is a
//! removal and a new pool).
//!
//! Strimzi 0.45 to 1.2 run every KRaft cluster with a static controller quorum: the operator writes
//! `controller.quorum.voters` from the nodes of the pools with the controller role
//! (`KafkaBrokerConfigurationBuilder`). Its documentation (`assembly-kraft-mode.adoc`, "Limitations
//! with static controller quorums"; `con-config-node-pool-roles.adoc`) lists adding or removing
//! controller pools, adding or removing the controller role and scaling controller pools as not
//! supported, because Kafka cannot move a static quorum to dynamic voters (KIP-853, KAFKA-16538).
//! The operator does not refuse such a change: it rewrites the voters and rolls the nodes, so the
//! rules catch it before it is applied. "Running" means the base revision already has the Kafka as
//! a KRaft cluster; a cluster the change creates, or one in a ZooKeeper migration (the migration
//! rules' business), is not judged here.

use super::checks::{hit, with_fix};
use super::node_pools::{NodePool, Role, base_pool, removed_running, role_removed_from};
use super::strimzi::KafkaCr;
use super::{Context, Hit, Snapshot};

/// What Strimzi does with a changed quorum, for messages.
const CONSEQUENCE: &str = "Strimzi runs KRaft with a static controller quorum and does not support changing it: it \
                           rewrites controller.quorum.voters and rolls the nodes, which then disagree on who votes \
                           (the quorum can be lost: downtime, or metadata that diverges)";

/// The size of a cluster's controller quorum in one revision, for messages (`?` when a replica count
/// is unreadable).
fn quorum_text<'a>(kafka: &KafkaCr<'a>, snapshot: &Snapshot<'a>) -> String {
    kafka
        .controller_pools(snapshot)
        .iter()
        .map(|p| p.replicas().map(|r| r.max(0)))
        .sum::<Option<i64>>()
        .map_or("?".to_string(), |n| n.to_string())
}

/// The head revision's Kafka of `pool` when it runs on node pools and the base revision already
/// ran it as a KRaft cluster, with the base revision's Kafka.
fn running_kraft<'c, 'a>(
    ctx: &'c Context<'a>,
    pool: &NodePool<'_>,
) -> Option<(&'c KafkaCr<'a>, &'c KafkaCr<'a>)> {
    let from = ctx.from.as_ref()?;
    let kafka = ctx
        .to
        .kafkas
        .iter()
        .find(|k| pool.belongs_to(k) && k.uses_node_pools())?;
    let base = from.kafka(kafka)?;
    (base.uses_node_pools() && base.is_kraft(base.release) && kafka.is_kraft(kafka.release))
        .then_some((kafka, base))
}

pub(super) fn role_removed(ctx: &Context<'_>) -> Vec<Hit> {
    let Some(from) = &ctx.from else { return Vec::new() };
    let mut hits = Vec::new();
    for (pool, old, controllers) in role_removed_from(ctx, Role::Controller) {
        let Some((kafka, base)) = running_kraft(ctx, pool) else {
            continue;
        };
        hits.push(with_fix(
            hit(
                &pool.display,
                "spec.roles",
                format!(
                    "roles change from {} to {}: the {controllers} controller(s) of this pool leave the controller \
                     quorum of the running KRaft cluster {} ({} controller(s) before, {} after); {CONSEQUENCE}",
                    old.roles_text(),
                    pool.roles_text(),
                    kafka.display,
                    quorum_text(base, from),
                    quorum_text(kafka, &ctx.to),
                ),
            ),
            "keep the controller role; to separate brokers from controllers keep these nodes as the controllers: add a \
             broker pool, move the partitions off these nodes (KafkaRebalance mode remove-brokers) and remove their \
             broker role instead",
        ));
    }
    hits
}

pub(super) fn pool_removed(ctx: &Context<'_>) -> Vec<Hit> {
    let Some(from) = &ctx.from else { return Vec::new() };
    let mut hits = Vec::new();
    for (old, controllers) in removed_running(ctx, Role::Controller) {
        // The cluster stays: a deleted cluster takes its pools with it, which is another matter.
        let Some((kafka, base)) = running_kraft(ctx, old) else {
            continue;
        };
        let added: Vec<&str> = ctx
            .to
            .pools
            .iter()
            .filter(|p| p.belongs_to(kafka) && base_pool(from, p).is_none() && p.has_role(Role::Controller))
            .map(|p| p.name)
            .collect();
        let renamed = if added.is_empty() {
            String::new()
        } else {
            format!(
                " (new controller pool {} does not take its place: its nodes are new voters)",
                added.join(", ")
            )
        };
        hits.push(with_fix(
            hit(
                &old.display,
                "",
                format!(
                    "KafkaNodePool removed while it runs {controllers} controller(s) of the running KRaft cluster {}{renamed}: \
                     the controller quorum changes ({} controller(s) before, {} after); {CONSEQUENCE}",
                    kafka.display,
                    quorum_text(base, from),
                    quorum_text(kafka, &ctx.to),
                ),
            ),
            "keep the controller pool under its name; a change that needs other controller nodes (storage type, a \
             rename) needs a new cluster until Strimzi supports dynamic controller quorums",
        ));
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn kafka(api: &str, release: &str) -> Value {
        json!({"apiVersion": api, "kind": "Kafka",
            "metadata": {"name": "main", "namespace": "k", "annotations": {"kgitops.io/strimzi-release": release}},
            "spec": {"kafka": {"listeners": []}}})
    }

    fn pool(api: &str, name: &str, replicas: i64, roles: &[&str]) -> Value {
        json!({"apiVersion": api, "kind": "KafkaNodePool",
            "metadata": {"name": name, "namespace": "k", "labels": {"strimzi.io/cluster": "main"}},
            "spec": {"replicas": replicas, "roles": roles, "storage": {"type": "ephemeral"}}})
    }

    fn run(check: fn(&Context<'_>) -> Vec<Hit>, from: &[Value], to: &[Value]) -> Vec<Hit> {
        check(&Context {
            to: Snapshot::new(to),
            from: Some(Snapshot::new(from)),
        })
    }

    #[test]
    fn a_dual_role_pool_losing_the_controller_role_changes_the_quorum() {
        let api = "kafka.strimzi.io/v1";
        let base = [
            kafka(api, "1.2.0"),
            pool(api, "dual", 3, &["controller", "broker"]),
            pool(api, "ctl", 3, &["controller"]),
        ];
        let head = [
            kafka(api, "1.2.0"),
            pool(api, "dual", 3, &["broker"]),
            pool(api, "ctl", 3, &["controller"]),
        ];
        let hits = run(role_removed, &base, &head);
        assert_eq!(hits.len(), 1, "{hits:#?}");
        assert_eq!(
            (hits[0].object.as_str(), hits[0].path.as_str()),
            ("KafkaNodePool/k/dual", "spec.roles")
        );
        assert!(
            hits[0].message.contains("from [controller, broker] to [broker]")
                && hits[0].message.contains("(6 controller(s) before, 3 after)")
                && hits[0].message.contains("static controller quorum"),
            "{}",
            hits[0].message
        );
        // A new cluster has no quorum to change; nor a pool without nodes.
        assert!(run(role_removed, &[], &head).is_empty());
        let empty = [
            kafka(api, "1.2.0"),
            pool(api, "dual", 0, &["controller", "broker"]),
            pool(api, "ctl", 3, &["controller"]),
        ];
        assert!(run(role_removed, &empty, &head).is_empty());
        // Nothing removed: adding the broker role to controllers is Strimzi's supported way.
        let joined = [
            kafka(api, "1.2.0"),
            pool(api, "dual", 3, &["controller", "broker"]),
            pool(api, "ctl", 3, &["controller", "broker"]),
        ];
        assert!(run(role_removed, &base, &joined).is_empty());
    }

    #[test]
    fn a_zookeeper_cluster_is_not_judged() {
        // 0.45 ZooKeeper with node pools (brokers only): no KRaft quorum to change.
        let api = "kafka.strimzi.io/v1beta2";
        let mut zk = kafka(api, "0.45.2");
        zk["metadata"]["annotations"]["strimzi.io/node-pools"] = json!("enabled");
        zk["spec"]["zookeeper"] = json!({"replicas": 3});
        let base = [zk.clone(), pool(api, "a", 3, &["controller", "broker"])];
        let head = [zk, pool(api, "a", 3, &["broker"])];
        assert!(run(role_removed, &base, &head).is_empty());
        assert!(run(pool_removed, &base, &head[..1]).is_empty());
    }
}
