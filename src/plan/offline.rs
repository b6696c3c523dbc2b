//! The offline diff between two revisions of the platform repository, for pull-request review
//! without cluster credentials: every cluster overlay is rendered at both revisions (straight from
//! git objects) and compared object by object with the same [`compare`] the live plan uses, so the
//! result is an ordinary, masked [`Plan`] per cluster.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use serde_json::Value;

use super::{Plan, compare};
use crate::manifest::{IdError, ResId};
use crate::render::{self, RenderError};
use crate::source::{FileTree, PathError, SourceError, layout};

/// Why the offline diff could not be computed (exit code 2); each names the revision and cluster.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("{tree}: listing clusters: {cause}")]
    Clusters { tree: String, cause: SourceError },
    #[error("no cluster overlay clusters/{name} at either revision (clusters: {available})")]
    UnknownCluster { name: String, available: String },
    #[error("{tree}: clusters/{cluster}: {cause}")]
    Path {
        tree: String,
        cluster: String,
        cause: PathError,
    },
    #[error("{tree}: rendering clusters/{cluster}: {cause}")]
    Render {
        tree: String,
        cluster: String,
        cause: Box<RenderError>,
    },
    #[error("starting the render threads: {0}")]
    Threads(Box<RenderError>),
    #[error("{tree}: clusters/{cluster}: rendered object without identity: {cause}")]
    Identity {
        tree: String,
        cluster: String,
        cause: IdError,
    },
}

fn names(tree: &dyn FileTree) -> Result<Vec<String>, OfflineError> {
    layout::cluster_names(tree)
        .map(Option::unwrap_or_default)
        .map_err(|cause| OfflineError::Clusters {
            tree: tree.describe(),
            cause,
        })
}

/// Renders `clusters/<cluster>` of `tree` keyed by identity, in render order; empty when the
/// revision does not have that cluster.
fn render_cluster(
    tree: &dyn FileTree,
    cluster: &str,
    present: bool,
) -> Result<Vec<(ResId, Value)>, OfflineError> {
    if !present {
        return Ok(Vec::new());
    }
    let dir = layout::cluster_dir(cluster).map_err(|cause| OfflineError::Path {
        tree: tree.describe(),
        cluster: cluster.to_string(),
        cause,
    })?;
    let objects = render::render(tree, &dir).map_err(|cause| OfflineError::Render {
        tree: tree.describe(),
        cluster: cluster.to_string(),
        cause: Box::new(cause),
    })?;
    objects
        .into_iter()
        .map(|obj| {
            let id = ResId::of(&obj).map_err(|cause| OfflineError::Identity {
                tree: tree.describe(),
                cluster: cluster.to_string(),
                cause,
            })?;
            Ok((id, obj))
        })
        .collect()
}

/// Compares two renders of one cluster: entries in the head's render order, then what only the base
/// has (deletions), each with its masked diff.
pub fn compare_renders(cluster: &str, before: Vec<(ResId, Value)>, after: Vec<(ResId, Value)>) -> Plan {
    let mut before: BTreeMap<ResId, Value> = before.into_iter().collect();
    let mut entries = Vec::with_capacity(after.len() + before.len());
    for (id, obj) in &after {
        let old = before.remove(id);
        let mut entry = compare(id, old.as_ref(), Some(obj), None);
        entry.notes.extend(encrypted_note(old.as_ref(), Some(obj)));
        entries.push(entry);
    }
    for (id, obj) in &before {
        let mut entry = compare(id, Some(obj), None, None);
        entry.notes.extend(encrypted_note(Some(obj), None));
        entries.push(entry);
    }
    Plan {
        cluster: cluster.to_string(),
        revision: None,
        entries,
        not_in_effect: Vec::new(),
        blocked: Vec::new(),
    }
}

/// For a SOPS-encrypted Secret rendered without the key ([`crate::render::sops::Decryption::Placeholders`]):
/// `encrypted, keys changed: a, b`, the keys whose ciphertext differs between the sides (values
/// are never known). sops keeps a value's ciphertext when `sops edit` leaves it unchanged and
/// writes a new one when it changes or the file is encrypted anew, so a listed key may hold the
/// same value; an unlisted key is certainly unchanged.
fn encrypted_note(before: Option<&Value>, after: Option<&Value>) -> Option<String> {
    use crate::render::sops::is_placeholder;
    let fields = [("data", true), ("stringData", false)];
    let encrypted = |obj: Option<&Value>| {
        obj.filter(|o| crate::manifest::is_secret(o)).is_some_and(|o| {
            fields.iter().any(|(field, b64)| {
                o.get(*field)
                    .and_then(Value::as_object)
                    .is_some_and(|m| m.values().any(|v| is_placeholder(v, *b64)))
            })
        })
    };
    if !encrypted(before) && !encrypted(after) {
        return None;
    }
    let mut changed = BTreeSet::new();
    for (field, _) in fields {
        let side = |o: Option<&Value>| o.and_then(|o| o.get(field)).and_then(Value::as_object).cloned();
        let (b, a) = (side(before).unwrap_or_default(), side(after).unwrap_or_default());
        for key in b.keys().chain(a.keys()) {
            if b.get(key) != a.get(key) {
                changed.insert(key.clone());
            }
        }
    }
    Some(if changed.is_empty() {
        "encrypted, no key changed".to_string()
    } else {
        format!(
            "encrypted, keys changed: {}",
            changed.into_iter().collect::<Vec<_>>().join(", ")
        )
    })
}

/// The plans of the named clusters (all clusters of either revision when `clusters` is empty)
/// between `from` and `to`. A cluster only at `to` is all creations; one only at `from`, all
/// deletions.
pub fn diff_revisions(
    from: &dyn FileTree,
    to: &dyn FileTree,
    clusters: &[String],
) -> Result<Vec<Plan>, OfflineError> {
    let at_from: BTreeSet<String> = names(from)?.into_iter().collect();
    let at_to: BTreeSet<String> = names(to)?.into_iter().collect();
    let available: BTreeSet<&String> = at_from.union(&at_to).collect();
    let selected: Vec<String> = if clusters.is_empty() {
        available.iter().map(|s| s.to_string()).collect()
    } else {
        for name in clusters {
            if !available.contains(name) {
                return Err(OfflineError::UnknownCluster {
                    name: name.clone(),
                    available: available
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        clusters.to_vec()
    };
    // Clusters render in parallel; the error reported is the first cluster's in order, as a
    // sequential loop would report it.
    let plans: Vec<Result<Plan, OfflineError>> = render::in_render_pool(|| {
        selected
            .par_iter()
            .map(|name| {
                let before = render_cluster(from, name, at_from.contains(name))?;
                let after = render_cluster(to, name, at_to.contains(name))?;
                Ok(compare_renders(name, before, after))
            })
            .collect()
    })
    .map_err(|cause| OfflineError::Threads(Box::new(cause)))?;
    plans.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;
    use serde_json::json;

    fn cm(name: &str, data: Value) -> (ResId, Value) {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "kafka-dev"}, "data": data});
        (ResId::of(&obj).unwrap(), obj)
    }

    #[test]
    fn creations_updates_deletions_and_unchanged_objects() {
        let before = vec![
            cm("a", json!({"k": "1"})),
            cm("b", json!({"k": "1"})),
            cm("gone", json!({})),
        ];
        let after = vec![
            cm("new", json!({})),
            cm("a", json!({"k": "2"})),
            cm("b", json!({"k": "1"})),
        ];
        let plan = compare_renders("dev", before, after);
        let actions: Vec<(&str, Action)> = plan
            .entries
            .iter()
            .map(|e| (e.id.name.as_str(), e.action))
            .collect();
        assert_eq!(
            actions,
            vec![
                ("new", Action::Create),
                ("a", Action::Update),
                ("b", Action::Unchanged),
                ("gone", Action::DeleteCandidate)
            ]
        );
        let diff = &plan.entries[1].diff;
        assert!(
            diff.starts_with("--- a/ConfigMap/kafka-dev/a\n+++ b/ConfigMap/kafka-dev/a\n"),
            "{diff}"
        );
        assert!(diff.contains("\n-  k: \"1\"\n+  k: \"2\"\n"), "{diff}");
        assert_eq!(plan.entries[2].diff, "");
        assert!(plan.has_changes());
    }

    #[test]
    fn secret_values_never_reach_the_diff() {
        let secret = |v: &str| {
            let obj = json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "creds", "namespace": "kafka-dev"},
                "data": {"password": v}, "stringData": {"token": format!("plain-{v}")}});
            (ResId::of(&obj).unwrap(), obj)
        };
        let plan = compare_renders("dev", vec![secret("c2VjcmV0MQ==")], vec![secret("c2VjcmV0Mg==")]);
        let text = serde_json::to_string(&plan).unwrap();
        for leaked in ["c2VjcmV0MQ==", "c2VjcmV0Mg==", "secret1", "secret2", "plain-"] {
            assert!(!text.contains(leaked), "{leaked} leaked: {text}");
        }
        assert_eq!(plan.entries[0].action, Action::Update);
    }
}
