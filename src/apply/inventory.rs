//! The inventory of what kgitops applied to a cluster, kept in the cluster as a kubectl ApplySet
//! (KEP-3659), so `kubectl` and other tools understand it:
//!
//! - the parent is a ConfigMap (`kgitops-<cluster>` in the overlay's namespace by default) labelled
//!   `applyset.kubernetes.io/id: applyset-<base64url(sha256(<name>.<namespace>.ConfigMap.))>-v1`
//!   and annotated with `applyset.kubernetes.io/tooling: kgitops/v<version>`,
//!   `applyset.kubernetes.io/contains-group-kinds` (sorted `Kind.group` list) and
//!   `applyset.kubernetes.io/additional-namespaces` (sorted, without the parent's own namespace);
//! - every member carries the label `applyset.kubernetes.io/part-of: <id>`.
//!
//! As kubectl does, the parent is first widened to the union of the old and new kinds and
//! namespaces before any member is written (an interrupted apply leaks nothing), and narrowed to
//! the new set once apply and prune succeeded.

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Label on the parent naming the set.
pub const ID_LABEL: &str = "applyset.kubernetes.io/id";
/// Label on every member naming its set.
pub const PART_OF_LABEL: &str = "applyset.kubernetes.io/part-of";
/// Annotation on the parent naming the tool that manages the set.
pub const TOOLING_ANNOTATION: &str = "applyset.kubernetes.io/tooling";
/// Annotation on the parent listing member group-kinds.
pub const GROUP_KINDS_ANNOTATION: &str = "applyset.kubernetes.io/contains-group-kinds";
/// Annotation on the parent listing member namespaces other than its own.
pub const ADDITIONAL_NAMESPACES_ANNOTATION: &str = "applyset.kubernetes.io/additional-namespaces";

/// Annotation (`"true"`) on the one Namespace of an overlay's render that holds its inventory,
/// when the overlay spans several namespaces ([`InventoryRef::default_for`]).
pub const INVENTORY_NAMESPACE_ANNOTATION: &str = "kgitops.io/inventory-namespace";

/// The tool name in the tooling annotation.
pub const TOOL_NAME: &str = "kgitops";

/// `kgitops/v<crate version>`.
pub fn tooling() -> String {
    format!("{TOOL_NAME}/v{}", env!("CARGO_PKG_VERSION"))
}

/// Where the inventory lives: a ConfigMap parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryRef {
    pub namespace: String,
    pub name: String,
}

impl InventoryRef {
    /// The default parent for a cluster overlay: `kgitops-<cluster>` in the Namespace object of
    /// the render annotated [`INVENTORY_NAMESPACE_ANNOTATION`]` = "true"`, else in the one namespace
    /// of the rendered objects (their common `metadata.namespace`, else the single Namespace object).
    /// `None` when that is ambiguous; the caller then has to name one.
    ///
    /// The annotation lets an overlay that spans namespaces (a Kafka platform and the operator it
    /// installs) say where its inventory lives, so the CLI and the daemon agree without a flag.
    pub fn default_for(cluster: &str, objects: &[Value]) -> Option<InventoryRef> {
        let is_namespace = |o: &&Value| o.get("kind").and_then(Value::as_str) == Some("Namespace");
        let name = |o: &Value| {
            o.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let chosen: Vec<&Value> = objects
            .iter()
            .filter(is_namespace)
            .filter(|o| {
                o.pointer("/metadata/annotations")
                    .and_then(|a| a.get(INVENTORY_NAMESPACE_ANNOTATION))
                    .and_then(Value::as_str)
                    == Some("true")
            })
            .collect();
        if let [one] = chosen.as_slice() {
            return name(one).map(|ns| InventoryRef::for_cluster(cluster, &ns));
        }
        let namespaces: BTreeSet<&str> = objects
            .iter()
            .filter_map(|o| o.pointer("/metadata/namespace").and_then(Value::as_str))
            .filter(|ns| !ns.is_empty())
            .collect();
        let declared: BTreeSet<&str> = objects
            .iter()
            .filter(is_namespace)
            .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
            .collect();
        let namespace = match (namespaces.len(), declared.len()) {
            (1, _) => namespaces.into_iter().next(),
            (0, 1) => declared.into_iter().next(),
            _ => None,
        }?;
        Some(InventoryRef::for_cluster(cluster, namespace))
    }

    /// The parent of a cluster overlay's inventory in `namespace`: `kgitops-<cluster>`.
    pub fn for_cluster(cluster: &str, namespace: &str) -> InventoryRef {
        InventoryRef {
            namespace: namespace.to_string(),
            name: format!("kgitops-{cluster}"),
        }
    }

    /// The name of the write lock's Lease, next to the parent in its namespace (see
    /// [`super::lock`]): `<parent name>-lock`.
    pub fn lock_name(&self) -> String {
        format!("{}-lock", self.name)
    }

    /// The ApplySet id: `applyset-<base64url(sha256(<name>.<namespace>.<kind>.<group>))>-v1`.
    pub fn id(&self) -> String {
        let hashed = Sha256::digest(format!("{}.{}.ConfigMap.", self.name, self.namespace));
        format!(
            "applyset-{}-v1",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hashed)
        )
    }

    /// `ConfigMap/<namespace>/<name>`.
    pub fn display(&self) -> String {
        format!("ConfigMap/{}/{}", self.namespace, self.name)
    }

    /// The parent object to apply for a set of group-kinds and namespaces.
    pub fn parent(&self, group_kinds: &BTreeSet<String>, namespaces: &BTreeSet<String>) -> Value {
        let gks: Vec<&str> = group_kinds.iter().map(String::as_str).collect();
        let nss: Vec<&str> = namespaces
            .iter()
            .map(String::as_str)
            .filter(|ns| *ns != self.namespace)
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {ID_LABEL: self.id()},
                "annotations": {
                    TOOLING_ANNOTATION: tooling(),
                    GROUP_KINDS_ANNOTATION: gks.join(","),
                    ADDITIONAL_NAMESPACES_ANNOTATION: nss.join(","),
                },
            },
        })
    }
}

/// What a live parent says: its group-kinds and namespaces (its own included).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParentState {
    pub group_kinds: BTreeSet<String>,
    pub namespaces: BTreeSet<String>,
}

/// Reads and checks a live parent: it must be an ApplySet of this id managed by kgitops.
pub fn read_parent(inv: &InventoryRef, live: &Value) -> Result<ParentState, String> {
    let label = live
        .pointer("/metadata/labels")
        .and_then(|l| l.get(ID_LABEL))
        .and_then(Value::as_str);
    let annotations = live.pointer("/metadata/annotations");
    let annotation = |key: &str| annotations.and_then(|a| a.get(key)).and_then(Value::as_str);
    let tool = annotation(TOOLING_ANNOTATION).ok_or_else(|| {
        format!(
            "{} exists but is not an ApplySet parent (no {TOOLING_ANNOTATION} annotation)",
            inv.display()
        )
    })?;
    let base = tool.rsplit_once('/').map_or(tool, |(b, _)| b);
    if base != TOOL_NAME {
        return Err(format!(
            "{} is an ApplySet managed by {tool}, not by kgitops",
            inv.display()
        ));
    }
    if label != Some(inv.id().as_str()) {
        return Err(format!(
            "{} has {ID_LABEL}={} but its id is {}",
            inv.display(),
            label.unwrap_or("(none)"),
            inv.id()
        ));
    }
    let split = |v: Option<&str>| -> BTreeSet<String> {
        v.unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut namespaces = split(annotation(ADDITIONAL_NAMESPACES_ANNOTATION));
    namespaces.insert(inv.namespace.clone());
    Ok(ParentState {
        group_kinds: split(annotation(GROUP_KINDS_ANNOTATION)),
        namespaces,
    })
}

/// Whether the live parent already says exactly what `wanted` says (then it is not written).
pub fn parent_is_current(live: Option<&Value>, wanted: &Value) -> bool {
    let Some(live) = live else { return false };
    let get = |v: &Value, p: &str| v.pointer(p).cloned();
    let keys = [
        TOOLING_ANNOTATION,
        GROUP_KINDS_ANNOTATION,
        ADDITIONAL_NAMESPACES_ANNOTATION,
    ];
    get(live, &format!("/metadata/labels/{}", ID_LABEL.replace('/', "~1")))
        == get(
            wanted,
            &format!("/metadata/labels/{}", ID_LABEL.replace('/', "~1")),
        )
        && keys.iter().all(|k| {
            let p = format!("/metadata/annotations/{}", k.replace('/', "~1"));
            get(live, &p) == get(wanted, &p)
        })
}

/// Adds the membership label to a desired object; an object that already carries one is refused
/// (KEP-3659: such a manifest is invalid).
pub fn label_member(obj: &mut Value, id: &str) -> Result<(), String> {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err("has no metadata".into());
    };
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    if let Some(labels) = labels.as_object_mut() {
        if labels.contains_key(PART_OF_LABEL) {
            return Err(format!(
                "sets the label {PART_OF_LABEL} itself; it is reserved for the inventory"
            ));
        }
        labels.insert(PART_OF_LABEL.into(), Value::String(id.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_follows_kep_3659() {
        let inv = InventoryRef {
            namespace: "kafka-dev".into(),
            name: "kgitops-dev".into(),
        };
        // base64url(sha256("kgitops-dev.kafka-dev.ConfigMap.")), computed independently with
        // `printf %s kgitops-dev.kafka-dev.ConfigMap. | openssl dgst -sha256 -binary | basenc --base64url`.
        assert_eq!(
            inv.id(),
            "applyset-A_Gw3oGZ_6WiL4WdU6P9_59MIoFL_MmEn91omGY8Vlw-v1"
        );
        let parent = inv.parent(
            &["Kafka.kafka.strimzi.io".to_string(), "ConfigMap".to_string()].into(),
            &["kafka-dev".to_string(), "other".to_string()].into(),
        );
        assert_eq!(
            parent["metadata"]["annotations"][GROUP_KINDS_ANNOTATION],
            "ConfigMap,Kafka.kafka.strimzi.io"
        );
        assert_eq!(
            parent["metadata"]["annotations"][ADDITIONAL_NAMESPACES_ANNOTATION],
            "other"
        );
        let state = read_parent(&inv, &parent).unwrap();
        assert!(state.namespaces.contains("kafka-dev") && state.namespaces.contains("other"));
        assert!(parent_is_current(Some(&parent), &parent));
    }

    #[test]
    fn other_tools_sets_are_refused() {
        let inv = InventoryRef {
            namespace: "ns".into(),
            name: "p".into(),
        };
        let mut parent = inv.parent(&BTreeSet::new(), &BTreeSet::new());
        parent["metadata"]["annotations"][TOOLING_ANNOTATION] = json!("kubectl/v1.32");
        assert!(
            read_parent(&inv, &parent)
                .unwrap_err()
                .contains("managed by kubectl/v1.32")
        );
    }

    #[test]
    fn default_parent_is_in_the_overlay_namespace() {
        let objs = vec![
            json!({"kind": "Namespace", "metadata": {"name": "kafka-dev"}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "kafka-dev"}}),
        ];
        assert_eq!(
            InventoryRef::default_for("dev", &objs),
            Some(InventoryRef {
                namespace: "kafka-dev".into(),
                name: "kgitops-dev".into()
            })
        );
        let two = vec![
            json!({"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "x"}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "a", "namespace": "y"}}),
        ];
        assert_eq!(InventoryRef::default_for("dev", &two), None);
        let mut annotated = two.clone();
        annotated.push(json!({"kind": "Namespace", "metadata": {"name": "y",
            "annotations": {INVENTORY_NAMESPACE_ANNOTATION: "true"}}}));
        annotated.push(json!({"kind": "Namespace", "metadata": {"name": "x"}}));
        assert_eq!(
            InventoryRef::default_for("dev", &annotated).map(|i| i.namespace),
            Some("y".to_string()),
            "the annotated Namespace holds the inventory of an overlay that spans several"
        );
    }

    #[test]
    fn members_get_the_label_unless_they_set_it() {
        let mut obj = json!({"metadata": {"name": "a"}});
        label_member(&mut obj, "applyset-x-v1").unwrap();
        assert_eq!(obj["metadata"]["labels"][PART_OF_LABEL], "applyset-x-v1");
        assert!(label_member(&mut obj, "applyset-x-v1").is_err());
    }
}
