//! Output order: kustomize's default "legacy" order, or FIFO, per `sortOptions`.
//!
//! Legacy order (kustomize's `SortOrderTransformer`): kinds listed in `orderFirst` come first in
//! that order, kinds in `orderLast` last, everything else in between; ties are broken by the
//! `group_version_kind` string (with `~G`/`~V`/`~K` for empty parts) and then by the
//! `Kind.version.group|namespace|name` string (with `~X` for no namespace), compared as bytes.

use std::cmp::Ordering;
use std::collections::HashMap;

use rayon::prelude::*;

use super::kustomization::SortOptions;
use super::resource::{Resource, split_api_version};

/// kustomize's default `orderFirst`.
pub const DEFAULT_ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

/// kustomize's default `orderLast`.
pub const DEFAULT_ORDER_LAST: &[&str] = &["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"];

/// How to order the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// As the objects were accumulated.
    Fifo,
    /// kustomize's legacy order with these first and last kinds.
    Legacy { first: Vec<String>, last: Vec<String> },
}

impl Order {
    /// The order `sortOptions` asks for (legacy with the default kinds when absent). Returns what is
    /// wrong with the options otherwise.
    pub fn from_options(options: Option<&SortOptions>) -> Result<Order, String> {
        let default_legacy = || Order::Legacy {
            first: DEFAULT_ORDER_FIRST.iter().map(|s| s.to_string()).collect(),
            last: DEFAULT_ORDER_LAST.iter().map(|s| s.to_string()).collect(),
        };
        let Some(options) = options else {
            return Ok(default_legacy());
        };
        match options.order.as_deref().unwrap_or("") {
            "fifo" => match options.legacy_sort_options {
                None => Ok(Order::Fifo),
                Some(_) => Err(
                    "sortOptions.legacySortOptions is set but the selected sort order is 'fifo', \
                                not 'legacy'"
                        .to_string(),
                ),
            },
            "legacy" => match &options.legacy_sort_options {
                None => Ok(default_legacy()),
                Some(l) => Ok(Order::Legacy {
                    first: l.order_first.clone().unwrap_or_default(),
                    last: l.order_last.clone().unwrap_or_default(),
                }),
            },
            other => Err(format!(
                "sortOptions.order must be one of [fifo, legacy], not {other:?}"
            )),
        }
    }

    /// Sorts `resources` in place.
    pub fn sort(&self, resources: &mut [Resource]) {
        let Order::Legacy { first, last } = self else {
            return;
        };
        let mut rank: HashMap<&str, i64> = HashMap::new();
        let first_len = first.len() as i64;
        for (i, k) in first.iter().enumerate() {
            rank.insert(k, i as i64 - first_len);
        }
        for (i, k) in last.iter().enumerate() {
            rank.insert(k, 1 + i as i64);
        }
        let mut keyed: Vec<(SortKey, usize)> = resources
            .par_iter()
            .enumerate()
            .map(|(i, r)| (SortKey::of(r, &rank), i))
            .collect();
        // Stable: objects that compare equal keep their build order.
        keyed.par_sort_by(|(a, _), (b, _)| a.cmp_legacy(b));
        let order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
        apply_permutation(resources, order);
    }
}

/// Reorders `items` so that position `n` holds the element that was at `order[n]`.
fn apply_permutation<T>(items: &mut [T], order: Vec<usize>) {
    let mut taken: Vec<Option<usize>> = order.into_iter().map(Some).collect();
    // Follow each cycle of the permutation, swapping elements into place.
    for start in 0..taken.len() {
        let mut current = start;
        while let Some(next) = taken[current].take() {
            if next == start {
                break;
            }
            items.swap(current, next);
            current = next;
        }
    }
}

struct SortKey {
    rank: i64,
    kind: String,
    group: String,
    version: String,
    gvk_string: String,
    id_string: String,
}

impl SortKey {
    fn of(r: &Resource, rank: &HashMap<&str, i64>) -> SortKey {
        let (group, version) = split_api_version(r.api_version());
        let kind = r.kind();
        let or = |s: &str, empty: &'static str| {
            if s.is_empty() {
                empty.to_string()
            } else {
                s.to_string()
            }
        };
        let gvk_string = format!("{}_{}_{}", or(group, "~G"), or(version, "~V"), or(kind, "~K"));
        // kustomize's Gvk.String(): kind.version.group with [noKind]/[noVer]/[noGrp] placeholders.
        let gvk_id = format!(
            "{}.{}.{}",
            or(kind, "[noKind]"),
            or(version, "[noVer]"),
            or(group, "[noGrp]")
        );
        let id_string = format!("{gvk_id}|{}|{}", or(r.namespace(), "~X"), or(r.name(), "~N"));
        SortKey {
            rank: rank.get(kind).copied().unwrap_or(0),
            kind: kind.to_string(),
            group: group.to_string(),
            version: version.to_string(),
            gvk_string,
            id_string,
        }
    }

    fn cmp_legacy(&self, other: &SortKey) -> Ordering {
        let same_gvk = self.group == other.group && self.version == other.version && self.kind == other.kind;
        if !same_gvk {
            if self.rank != other.rank {
                return self.rank.cmp(&other.rank);
            }
            // kustomize puts the core Namespace after other groups' `Namespace` kinds.
            if self.kind == "Namespace"
                && other.kind == "Namespace"
                && (self.group.is_empty() || other.group.is_empty())
            {
                return other.gvk_string.cmp(&self.gvk_string);
            }
            return self.gvk_string.cmp(&other.gvk_string);
        }
        self.id_string.cmp(&other.id_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::TreePath;
    use serde_json::json;

    fn res(api: &str, kind: &str, ns: &str, name: &str) -> Resource {
        let mut meta = json!({"name": name});
        if !ns.is_empty() {
            meta["namespace"] = json!(ns);
        }
        Resource::new(
            json!({"apiVersion": api, "kind": kind, "metadata": meta}),
            TreePath::new("x.yaml").unwrap(),
        )
    }

    #[test]
    fn legacy_order_ranks_kinds_then_gvk_then_id() {
        let mut rs = vec![
            res(
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
                "",
                "v",
            ),
            res("kafka.strimzi.io/v1beta2", "Kafka", "kafka", "main"),
            res("apps/v1", "Deployment", "b", "web"),
            res("apps/v1", "Deployment", "", "web"),
            res("apps/v1", "Deployment", "a", "web"),
            res("v1", "Service", "", "s"),
            res("v1", "Namespace", "", "kafka"),
            res("batch/v1", "Job", "", "j"),
        ];
        Order::from_options(None).unwrap().sort(&mut rs);
        let got: Vec<String> = rs.iter().map(|r| r.display_id()).collect();
        assert_eq!(
            got,
            [
                "Namespace/kafka",
                "Service/s",
                "Deployment/a/web",
                "Deployment/b/web",
                "Deployment/web",
                "Job/j",
                "Kafka/kafka/main",
                "ValidatingWebhookConfiguration/v",
            ]
        );
    }

    #[test]
    fn fifo_keeps_the_order_and_bad_options_are_refused() {
        let opts = SortOptions {
            order: Some("fifo".into()),
            legacy_sort_options: None,
        };
        let mut rs = vec![res("v1", "Service", "", "b"), res("v1", "Namespace", "", "a")];
        Order::from_options(Some(&opts)).unwrap().sort(&mut rs);
        assert_eq!(rs[0].name(), "b");
        let bad = SortOptions {
            order: Some("alphabetical".into()),
            legacy_sort_options: None,
        };
        assert!(Order::from_options(Some(&bad)).is_err());
    }

    #[test]
    fn permutation_is_applied() {
        let mut v = vec!['a', 'b', 'c', 'd'];
        apply_permutation(&mut v, vec![2, 0, 3, 1]);
        assert_eq!(v, ['c', 'a', 'd', 'b']);
    }
}
