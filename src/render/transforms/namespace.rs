//! `namespace`: kustomize's NamespaceTransformer.
//!
//! Sets `metadata.namespace` on every object kustomize does not know to be cluster-scoped
//! (overriding any namespace already set), renames `v1` Namespace objects to the namespace, sets
//! the namespace of APIService and CRD-conversion webhook services, and of RoleBinding and
//! ClusterRoleBinding subjects named `default` (kustomize's default `defaultOnly` subject mode).
//! ServiceAccount subjects of other names are updated by the name-reference step when their
//! ServiceAccount is part of the build.

use std::collections::HashSet;

use serde_json::Value;

use super::fieldspec::{Create, FieldSpec};
use crate::render::resource::{ResMap, Resource};

/// Which RoleBinding/ClusterRoleBinding subjects get the namespace (kustomize's
/// `setRoleBindingSubjects`; the `namespace` field always uses `defaultOnly`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubjectMode {
    /// Subjects named `default`.
    #[default]
    DefaultOnly,
    /// Every ServiceAccount subject.
    AllServiceAccounts,
    /// None.
    None,
}

impl SubjectMode {
    /// Reads kustomize's spelling; `""` is the default.
    pub fn parse(s: &str) -> Result<SubjectMode, String> {
        match s {
            "" | "defaultOnly" => Ok(SubjectMode::DefaultOnly),
            "allServiceAccounts" => Ok(SubjectMode::AllServiceAccounts),
            "none" => Ok(SubjectMode::None),
            other => Err(format!(
                "invalid value {other:?} for setRoleBindingSubjects: must be one of \"defaultOnly\", \"none\" \
                 or \"allServiceAccounts\""
            )),
        }
    }
}

/// Options of kustomize's NamespaceTransformer beyond its field specs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Set the namespace only where the field is empty or missing (`unsetOnly`).
    pub unset_only: bool,
    pub subjects: SubjectMode,
}

fn set_string(value: &str, unset_only: bool) -> impl FnMut(&mut Value) -> Result<(), String> + '_ {
    move |node: &mut Value| {
        // kustomize's SetEntryIfEmpty: only an empty (or just created) scalar is set.
        let empty = match node {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            _ => false,
        };
        if !unset_only || empty {
            *node = Value::String(value.to_string());
        }
        Ok(())
    }
}

/// Applies `namespace` to every object; returns what went wrong.
pub fn apply(acc: &mut ResMap, namespace: &str, specs: &[FieldSpec]) -> Result<(), String> {
    apply_with(acc, namespace, specs, Options::default())
}

/// [`apply`] with the options a built-in NamespaceTransformer config may set.
pub fn apply_with(
    acc: &mut ResMap,
    namespace: &str,
    specs: &[FieldSpec],
    options: Options,
) -> Result<(), String> {
    acc.try_for_each_mut(|_, r| apply_one(r, namespace, specs, options))?;
    let mut seen = HashSet::with_capacity(acc.len());
    for r in acc.resources() {
        if !seen.insert(r.id_ref()) {
            return Err(format!(
                "namespace transformation produces ID conflict: more than one {}",
                r.display_id()
            ));
        }
    }
    Ok(())
}

fn apply_one(r: &mut Resource, namespace: &str, specs: &[FieldSpec], options: Options) -> Result<(), String> {
    if r.helm_generated {
        // kustomize: "Don't apply namespace on Helm generated manifest. Helm should take care of it."
        return Ok(());
    }
    r.store_previous_id();
    let core_v1 = r.api_version() == "v1";
    let kind = r.kind().to_string();
    if !r.is_cluster_scoped() && (!options.unset_only || r.namespace().is_empty()) {
        r.set_namespace(namespace);
    }
    if (kind == "RoleBinding" || kind == "ClusterRoleBinding")
        && options.subjects != SubjectMode::None
        && let Some(Value::Array(subjects)) = r.obj.get_mut("subjects")
    {
        let mut set = set_string(namespace, options.unset_only);
        for subject in subjects.iter_mut() {
            let Value::Object(s) = subject else { continue };
            let wanted = match options.subjects {
                SubjectMode::DefaultOnly => s.get("name").and_then(Value::as_str) == Some("default"),
                SubjectMode::AllServiceAccounts => {
                    s.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                }
                SubjectMode::None => false,
            };
            if wanted {
                set(s.entry("namespace").or_insert(Value::Null))?;
            }
        }
    }
    let mut set = set_string(namespace, options.unset_only);
    for fs in FieldSpec::selecting(specs, &r.obj) {
        // metadata.namespace is handled above (cluster scope); metadata.name only for v1 objects.
        if fs.path == "metadata/namespace" || (fs.path == "metadata/name" && !core_v1) {
            continue;
        }
        if (kind == "RoleBinding" || kind == "ClusterRoleBinding")
            && fs.path == "subjects/namespace"
            && (fs.gvk.kind == "RoleBinding" || fs.gvk.kind == "ClusterRoleBinding")
        {
            continue;
        }
        if let Err(e) = fs.apply_unchecked(&mut r.obj, Create::Scalar, &mut set) {
            return Err(format!("{}: {e}", r.display_id()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::transforms::config::TransformerConfig;
    use crate::source::TreePath;
    use serde_json::json;

    fn map(objs: Vec<Value>) -> ResMap {
        let mut m = ResMap::new();
        m.append_all(
            objs.into_iter()
                .map(|o| Resource::new(o, TreePath::new("x.yaml").unwrap())),
        )
        .unwrap();
        m
    }

    #[test]
    fn namespaced_objects_namespaces_and_default_subjects() {
        let mut m = map(vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "old"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "whatever"}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": "crb"},
                   "subjects": [{"kind": "ServiceAccount", "name": "default"},
                                {"kind": "ServiceAccount", "name": "other", "namespace": "x"}]}),
        ]);
        apply(&mut m, "prod", &TransformerConfig::builtin().namespace).unwrap();
        let r = m.resources();
        assert_eq!(r[0].namespace(), "prod");
        assert_eq!(r[0].org_id().namespace, "old");
        assert_eq!(r[1].name(), "prod");
        assert_eq!(r[1].namespace(), "");
        assert_eq!(r[2].namespace(), "");
        assert_eq!(r[2].obj["subjects"][0]["namespace"], "prod");
        assert_eq!(r[2].obj["subjects"][1]["namespace"], "x");
    }

    #[test]
    fn conflicts_are_errors() {
        let mut m = map(vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a"}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "b"}}),
        ]);
        let err = apply(&mut m, "prod", &TransformerConfig::builtin().namespace).unwrap_err();
        assert!(err.contains("ID conflict"), "{err}");
    }
}
