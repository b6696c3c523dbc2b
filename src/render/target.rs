//! One kustomization's build, as kustomize's `KustTarget`: accumulate resources, run generators,
//! apply components, run transformers; and the steps done once at the top (hash suffixes, name
//! references, local-config objects, order, final clean-up).

use rayon::prelude::*;
use serde_json::Value;

use super::builtins;
use super::error::RenderError;
use super::generators;
use super::kustomization::KustKind;
use super::load::{Entry, KustFile, Loader};
use super::order::Order;
use super::resource::{Duplicate, ResMap, Resource};
use super::transforms;
use super::transforms::config::{ConfigFile, TransformerConfig};
use super::vars::{VarError, VarSet};
use crate::manifest::yaml::parse_typed_kustomize;
use crate::source::TreePath;
use std::sync::Arc;

/// The annotation that marks an object as local configuration, dropped from the output.
pub const LOCAL_CONFIG_ANNOTATION: &str = "config.kubernetes.io/local-config";

/// Renders the kustomization in `dir` into the final objects.
pub fn build(loader: &Loader<'_>, dir: &TreePath) -> Result<Vec<Value>, RenderError> {
    let kf = loader.load_kustomization(dir, Vec::new())?;
    let order = Order::from_options(kf.kust.sort_options.as_ref()).map_err(|message| {
        RenderError::InvalidKustomization {
            file: kf.file.clone(),
            message,
        }
    })?;
    let Acc {
        mut resources,
        config,
        vars,
    } = accumulate_target(loader, &kf, Acc::new())?;
    generators::add_hash_suffixes(&mut resources, &kf.file)?;
    transforms::namereference::fix(&mut resources, &config.name_reference, &kf.file)?;
    // kustomize resolves vars once names are final, before dropping local-config objects.
    let expansion = vars
        .resolve(&mut resources, &config.var_reference)
        .map_err(|e| vars_error(&kf, e))?;
    for (go_type, value) in expansion.bad_values {
        loader.warn(super::warnings::RenderWarning::VarNotPrimitive {
            file: kf.file.clone(),
            go_type,
            value,
        });
    }
    if !expansion.unused.is_empty() {
        loader.warn(super::warnings::RenderWarning::UnusedVars {
            file: kf.file.clone(),
            names: expansion.unused,
        });
    }
    resources.retain(|r| !is_local_config(r));
    let mut resources = resources.into_resources();
    order.sort(&mut resources);
    Ok(resources.into_par_iter().map(|r| finish(r.obj)).collect())
}

fn is_local_config(r: &Resource) -> bool {
    r.string_map("annotations")
        .iter()
        .any(|(k, v)| k == LOCAL_CONFIG_ANNOTATION && v != "false")
}

/// What kustomize's final clean-up of annotations leaves: values as strings, and no
/// `metadata.annotations` at all when empty.
fn finish(mut obj: Value) -> Value {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        match meta.get_mut("annotations") {
            Some(Value::Null) => {
                meta.remove("annotations");
            }
            Some(Value::Object(a)) if a.is_empty() => {
                meta.remove("annotations");
            }
            Some(Value::Object(a)) => {
                for v in a.values_mut() {
                    if !v.is_string() {
                        *v = Value::String(super::resource::scalar_text(v));
                    }
                }
            }
            _ => {}
        }
    }
    obj
}

/// What a kustomization accumulates (kustomize's `ResAccumulator`): its objects, and the
/// transformer configuration of it and everything it includes.
pub struct Acc {
    pub resources: ResMap,
    pub config: Arc<TransformerConfig>,
    /// The `vars` of it and everything it includes.
    pub vars: VarSet,
}

impl Acc {
    /// Nothing yet, with kustomize's builtin configuration.
    pub fn new() -> Acc {
        Acc {
            resources: ResMap::new(),
            config: TransformerConfig::builtin(),
            vars: VarSet::default(),
        }
    }

    fn merge_config(&mut self, kf: &KustFile, other: &Arc<TransformerConfig>) -> Result<(), RenderError> {
        self.config =
            TransformerConfig::merged(&self.config, other).map_err(|message| RenderError::Transform {
                file: kf.file.clone(),
                step: "configurations",
                message,
            })?;
        Ok(())
    }
}

impl Default for Acc {
    fn default() -> Self {
        Acc::new()
    }
}

/// The builtin configuration plus the kustomization's `configurations` files.
fn own_config(loader: &Loader<'_>, kf: &KustFile) -> Result<Arc<TransformerConfig>, RenderError> {
    let mut config = TransformerConfig::builtin();
    for entry in kf.kust.configurations.iter().flatten() {
        let file = loader.resolve_file(kf, "configuration", entry)?;
        let text = loader.read_text(&file)?;
        let parsed: ConfigFile = parse_typed_kustomize(&text, &file.to_string(), loader.limits())?;
        let extra = parsed
            .config()
            .map_err(|message| RenderError::InvalidKustomization {
                file: file.clone(),
                message,
            })?;
        // A configuration file holds only additions; the accumulated configuration always
        // includes the builtin one.
        config = Arc::new(
            config
                .merge(&extra)
                .map_err(|message| RenderError::InvalidKustomization {
                    file: file.clone(),
                    message,
                })?,
        );
    }
    Ok(config)
}

/// kustomize's `accumulateTarget`: `acc` is empty for a kustomization, the parent's objects for a
/// component.
pub fn accumulate_target(loader: &Loader<'_>, kf: &KustFile, acc: Acc) -> Result<Acc, RenderError> {
    let mut acc = accumulate_resources(loader, kf, acc)?;
    let own = own_config(loader, kf)?;
    acc.merge_config(kf, &own)?;
    // Built-in plugin configs (`generators`, `transformers`, `validators`) are read before the
    // kustomization's own generators and transformers run, as kustomize configures them.
    let plugin_generators = builtins::configure_generators(loader, kf)?;
    generators::run(loader, kf, &mut acc.resources)?;
    super::helm::run(loader, kf, kf.helm_root_namespace.as_deref(), &mut acc.resources)?;
    plugin_generators.run(loader, kf, &mut acc.resources)?;
    let mut acc = accumulate_components(loader, kf, acc)?;
    let plugin_transformers = builtins::configure_transformers(loader, kf)?;
    transforms::run(loader, kf, &mut acc.resources, &acc.config)?;
    plugin_transformers.run(loader, kf, &mut acc.resources)?;
    builtins::configure_validators(loader, kf)?.run(loader, kf, &mut acc.resources)?;
    if let Some(vars) = kf.kust.vars.as_deref() {
        acc.vars
            .merge_vars(vars, &mut acc.resources)
            .map_err(|e| vars_error(kf, e))?;
    }
    Ok(acc)
}

fn vars_error(kf: &KustFile, e: VarError) -> RenderError {
    RenderError::Transform {
        file: kf.file.clone(),
        step: "vars",
        message: e.to_string(),
    }
}

/// Maps a duplicate id to the error naming both places.
pub fn duplicate_error(d: Duplicate) -> RenderError {
    RenderError::DuplicateId {
        id: d.new.display_id(),
        file: d.new.source,
        existing: d.existing_source,
    }
}

fn accumulate_resources(loader: &Loader<'_>, kf: &KustFile, mut acc: Acc) -> Result<Acc, RenderError> {
    // Every entry is resolved first, so that the files among them can be parsed together, in
    // parallel. Resolving stops at the first entry that fails: the loop below returns its error once
    // the entries before it are done, as if it had resolved them one by one.
    let mut resolved = Vec::new();
    for entry in kf.kust.all_resources() {
        let result = loader.resolve_entry(kf, "resource", &entry);
        let failed = result.is_err();
        resolved.push((entry, result));
        if failed {
            break;
        }
    }
    let files: Vec<TreePath> = resolved
        .iter()
        .filter_map(|(_, r)| match r {
            Ok(Entry::File(path)) => Some(path.clone()),
            _ => None,
        })
        .collect();
    let mut parsed = loader.read_objects_parallel(&files).into_iter();
    for (entry, result) in resolved {
        match result? {
            Entry::File(path) => {
                let objects = match parsed.next() {
                    Some(objects) => objects?,
                    None => loader.read_objects(&path)?,
                };
                acc.resources
                    .append_all(objects.into_iter().map(|o| Resource::read(o, path.clone())))
                    .map_err(duplicate_error)?;
            }
            Entry::Dir(dir) => {
                let sub = load_named(loader, kf, "resource", &entry, &dir)?;
                if sub.kind == KustKind::Component {
                    return Err(RenderError::Entry {
                        file: kf.file.clone(),
                        what: "resource",
                        entry,
                        message: format!("{} is a Component; list it under `components`", sub.file),
                    });
                }
                let sub_acc = accumulate_target(loader, &sub, Acc::new())?;
                acc.resources
                    .append_all(sub_acc.resources.into_resources())
                    .map_err(duplicate_error)?;
                acc.merge_config(kf, &sub_acc.config)?;
                acc.vars.merge_set(sub_acc.vars).map_err(|e| vars_error(kf, e))?;
            }
        }
    }
    Ok(acc)
}

/// Loads the kustomization a `resources` or `components` entry names; a directory without one is
/// reported against the entry.
fn load_named(
    loader: &Loader<'_>,
    kf: &KustFile,
    what: &'static str,
    entry: &str,
    dir: &TreePath,
) -> Result<KustFile, RenderError> {
    let mut sub = loader
        .load_kustomization(dir, kf.chain.clone())
        .map_err(|e| match e {
            RenderError::NoKustomization { dir } => RenderError::Entry {
                file: kf.file.clone(),
                what,
                entry: entry.to_string(),
                message: format!(
                    "{dir} is a directory without a kustomization file (kustomization.yaml, \
                     kustomization.yml or Kustomization); list the files in it instead"
                ),
            },
            other => other,
        })?;
    // kustomize's accumulateDirectory hands its namespace (else the inherited one) down to the
    // Helm charts below.
    sub.helm_root_namespace = kf
        .kust
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .or_else(|| kf.helm_root_namespace.clone());
    Ok(sub)
}

fn accumulate_components(loader: &Loader<'_>, kf: &KustFile, mut acc: Acc) -> Result<Acc, RenderError> {
    for entry in kf.kust.components.clone().unwrap_or_default() {
        let dir = loader.resolve_dir(kf, "component", &entry)?;
        let sub = load_named(loader, kf, "component", &entry, &dir)?;
        if sub.kind != KustKind::Component {
            return Err(RenderError::Entry {
                file: kf.file.clone(),
                what: "component",
                entry,
                message: format!(
                    "{} must have `kind: Component` (apiVersion kustomize.config.k8s.io/v1alpha1)",
                    sub.file
                ),
            });
        }
        // A component works on the objects accumulated so far, as if its directives were ours.
        acc = accumulate_target(loader, &sub, acc)?;
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml::Limits;
    use crate::render::memtree::MemTree;

    fn build_tree(files: &[(&str, &str)], dir: &str) -> Result<Vec<Value>, RenderError> {
        let tree = MemTree::new(files);
        build(&Loader::new(&tree, Limits::DEFAULT), &TreePath::new(dir).unwrap())
    }

    fn names(objs: &[Value]) -> Vec<String> {
        objs.iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn nested_kustomizations_components_and_order() {
        let objs = build_tree(
            &[
                ("base/kustomization.yaml", "resources: [svc.yaml, ns.yaml]\n"),
                (
                    "base/svc.yaml",
                    "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n\
                     apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
                ),
                (
                    "base/ns.yaml",
                    "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns1}\n",
                ),
                (
                    "comp/kustomization.yaml",
                    "kind: Component\napiVersion: kustomize.config.k8s.io/v1alpha1\nresources: [cm.yaml]\n",
                ),
                (
                    "comp/cm.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
                ),
                (
                    "overlay/kustomization.yaml",
                    "bases: [../base]\ncomponents: [../comp]\n",
                ),
            ],
            "overlay",
        )
        .unwrap();
        assert_eq!(
            names(&objs),
            ["Namespace/ns1", "ConfigMap/c", "Service/s", "Deployment/d"]
        );
    }

    #[test]
    fn duplicates_cycles_and_wrong_kinds_are_errors() {
        let err = build_tree(
            &[
                ("a/kustomization.yaml", "resources: [x.yaml, ../b]\n"),
                (
                    "a/x.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
                ),
                ("b/kustomization.yaml", "resources: [x.yaml]\n"),
                (
                    "b/x.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: default}\n",
                ),
            ],
            "a",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "b/x.yaml: ConfigMap/default/c is defined more than once (first in a/x.yaml); kustomize refuses duplicate ids"
        );
        let err = build_tree(
            &[
                ("a/kustomization.yaml", "resources: [../b]\n"),
                ("b/kustomization.yaml", "resources: [../a]\n"),
            ],
            "a",
        )
        .unwrap_err();
        assert!(matches!(err, RenderError::Cycle { .. }), "{err}");
        let err = build_tree(
            &[
                ("a/kustomization.yaml", "components: [../b]\n"),
                ("b/kustomization.yaml", "resources: [x.yaml]\n"),
            ],
            "a",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("must have `kind: Component`"), "{err}");
    }

    #[test]
    fn the_first_failing_entry_is_reported_whatever_is_parsed_ahead() {
        let big: String = (0..2000)
            .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c-{i}}}\n---\n"))
            .collect();
        // A file that does not parse, then one that does not exist: the first is the error.
        let err = build_tree(
            &[
                (
                    "kustomization.yaml",
                    "resources: [big.yaml, bad.yaml, missing.yaml]\n",
                ),
                ("big.yaml", &big),
                ("bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"),
            ],
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("bad.yaml: document 1: missing `metadata.name`"),
            "{err}"
        );
        // A directory that fails before a file that does not parse: the directory's error.
        let err = build_tree(
            &[
                ("kustomization.yaml", "resources: [big.yaml, sub, bad.yaml]\n"),
                ("big.yaml", &big),
                ("sub/kustomization.yaml", "resources: [nope.yaml]\n"),
                ("bad.yaml", "[unclosed\n"),
            ],
            "",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("nope.yaml"), "{err}");
        let objs = build_tree(
            &[
                ("kustomization.yaml", "resources: [big.yaml]\n"),
                ("big.yaml", &big),
            ],
            "",
        )
        .unwrap();
        assert_eq!(objs.len(), 2000);
    }

    #[test]
    fn empty_annotations_are_dropped_and_values_become_strings() {
        let objs = build_tree(
            &[
                ("kustomization.yaml", "resources: [x.yaml]\n"),
                (
                    "x.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, annotations: {}, labels: {}}\n---\n\
                     apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, annotations: {n: 1, t: true}}\n---\n\
                     apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, annotations: {config.kubernetes.io/local-config: 'true'}}\n",
                ),
            ],
            "",
        )
        .unwrap();
        assert_eq!(names(&objs), ["ConfigMap/a", "ConfigMap/b"]);
        assert_eq!(
            objs[0]["metadata"],
            serde_json::json!({"name": "a", "labels": {}})
        );
        assert_eq!(
            objs[1]["metadata"]["annotations"],
            serde_json::json!({"n": "1", "t": "true"})
        );
    }
}
