//! Prune rules: which inventory members that left git may be deleted.
//!
//! Data-bearing and cluster-shaping kinds are never pruned unless the live object opts in with the
//! annotation `kgitops.io/prune: allow`: PersistentVolumeClaims (data), Namespaces (everything in
//! them), CRDs (every custom resource of the kind), Strimzi `Kafka` and `KafkaNodePool` (the brokers
//! and, through Strimzi, their volumes), `KafkaTopic` (with the topic operator, deleting it deletes
//! the topic and its messages) and `KafkaUser` (its credentials and ACLs). And a prune that would
//! delete more than [`DEFAULT_MAX_PRUNE`] objects (or another limit the caller sets), or more than
//! half of the inventory, at once is refused without `--allow-mass-prune`: that is what a broken
//! render (an overlay path typo, an emptied kustomization) looks like.
//!
//! Whether a deletion is allowed *now* is the gates' business ([`crate::plan::gate`]): the
//! controller pool, the `kafka` broker pool and ZooKeeper-only objects are deleted only in the
//! live metadata states that make it safe, even when annotated; [`super::plan`] asks them for every
//! candidate when pruning, and a deletion that waits holds back the whole revision.

use serde_json::Value;

use crate::manifest::Gvk;

/// Annotation that allows a protected object to be pruned.
pub const PRUNE_ANNOTATION: &str = "kgitops.io/prune";
/// Its value that allows it.
pub const PRUNE_ALLOW: &str = "allow";

/// Protected group/kinds.
const PROTECTED: &[(&str, &str)] = &[
    ("", "PersistentVolumeClaim"),
    ("", "Namespace"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("kafka.strimzi.io", "Kafka"),
    ("kafka.strimzi.io", "KafkaNodePool"),
    ("kafka.strimzi.io", "KafkaTopic"),
    ("kafka.strimzi.io", "KafkaUser"),
];

/// How many objects one run may prune without `--allow-mass-prune`, unless configured otherwise.
pub const DEFAULT_MAX_PRUNE: usize = 10;

/// Why a live object may not be pruned, or `None` when it may.
pub fn protection(gvk: &Gvk, live: &Value) -> Option<String> {
    let protected = PROTECTED.iter().any(|(g, k)| *g == gvk.group && *k == gvk.kind);
    let allowed = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(PRUNE_ANNOTATION))
        .and_then(Value::as_str)
        == Some(PRUNE_ALLOW);
    (protected && !allowed).then(|| {
        format!(
            "protected: {} objects are never pruned unless annotated {PRUNE_ANNOTATION}: {PRUNE_ALLOW}",
            gvk.kind
        )
    })
}

/// Whether deleting `candidates` of an inventory of `members` objects is a mass prune: more than
/// `max` objects, or more than half of the inventory.
pub fn is_mass_prune(candidates: usize, members: usize, max: usize) -> bool {
    candidates > max || (candidates > 0 && candidates * 2 > members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn protected_kinds_need_the_annotation() {
        let pvc = Gvk::from_api_version("v1", "PersistentVolumeClaim");
        let kafka = Gvk::from_api_version("kafka.strimzi.io/v1beta2", "Kafka");
        let cm = Gvk::from_api_version("v1", "ConfigMap");
        let plain = json!({"metadata": {"name": "x"}});
        let allowed = json!({"metadata": {"name": "x", "annotations": {PRUNE_ANNOTATION: PRUNE_ALLOW}}});
        assert!(protection(&pvc, &plain).is_some());
        assert!(
            protection(&kafka, &plain)
                .unwrap()
                .contains("Kafka objects are never pruned")
        );
        assert!(protection(&kafka, &allowed).is_none());
        assert!(protection(&cm, &plain).is_none());
        for kind in ["KafkaTopic", "KafkaUser"] {
            let gvk = Gvk::from_api_version("kafka.strimzi.io/v1beta2", kind);
            assert!(protection(&gvk, &plain).is_some(), "{kind}");
            assert!(protection(&gvk, &allowed).is_none(), "{kind}");
        }
    }

    #[test]
    fn more_than_half_or_more_than_the_limit_is_a_mass_prune() {
        assert!(!is_mass_prune(0, 0, DEFAULT_MAX_PRUNE));
        assert!(!is_mass_prune(5, 10, DEFAULT_MAX_PRUNE));
        assert!(is_mass_prune(6, 10, DEFAULT_MAX_PRUNE));
        assert!(is_mass_prune(1, 1, DEFAULT_MAX_PRUNE));
        // A small share of a large inventory, but more objects than the limit.
        assert!(!is_mass_prune(10, 1000, DEFAULT_MAX_PRUNE));
        assert!(is_mass_prune(11, 1000, DEFAULT_MAX_PRUNE));
        assert!(!is_mass_prune(11, 1000, 20));
    }
}
