//! `patches`, `patchesStrategicMerge` and `patchesJson6902`: kustomize's PatchTransformer,
//! PatchStrategicMergeTransformer and PatchJson6902Transformer, around the patch functions of
//! [`crate::render::patches`] and the target selection of [`crate::render::selector`].
//!
//! - A `patches` entry (inline `patch` or file `path`) is a strategic merge patch when it reads as
//!   objects, a JSON 6902 patch when it reads as a list of operations. Without `target`, each
//!   strategic merge patch applies to the object with its own group/version/kind/name/namespace
//!   (current or earlier name); with `target`, to every object the selector picks (name and
//!   namespace regexes match the original or the current name), and a JSON 6902 patch needs one.
//! - `patchesStrategicMerge` entries are files or inline YAML, each document patching the object
//!   it names. `patchesJson6902` entries need a target with a name.
//! - `$patch: delete` at the top level removes the object.
//! - A `patches` entry whose text holds no object and no operation (empty, blank, comments only,
//!   `---` only, `{}`) does nothing, as in kustomize v5.8; `patchesStrategicMerge` refuses it.

use rayon::prelude::*;
use serde_json::Value;

use crate::manifest::yaml::{
    Document, parse_documents_with_empty_nulls, parse_documents_yaml11, parse_patch_documents,
};
use crate::manifest::{Gvk, ResId};
use crate::render::error::RenderError;
use crate::render::kustomization::Patch;
use crate::render::load::{KustFile, Loader};
use crate::render::patches::json6902::{self, JsonPatch};
use crate::render::patches::strategic::{self, Options};
use crate::render::resource::{
    DEFAULT_NAMESPACE, Id, NO_NAMESPACE, ResMap, Resource, effective_namespace, split_api_version,
};
use crate::render::selector::Selector;
use crate::render::target::duplicate_error;

/// What a patch text turned out to be.
enum Parsed {
    Strategic(Vec<Document>),
    Json(JsonPatch),
    /// No object and no operation (an empty or comment-only patch): kustomize does nothing.
    Empty,
}

/// The text of a patch and where it came from.
struct Source {
    text: String,
    /// For YAML errors, which carry no other context: the file, or the kustomization for inline
    /// patches.
    name: String,
    /// For messages that already name the kustomization: the file or `inline patch`.
    label: String,
}

impl Source {
    fn inline(kf: &KustFile, text: &str) -> Source {
        Source {
            text: text.to_string(),
            name: format!("{} (inline patch)", kf.file),
            label: "inline patch".to_string(),
        }
    }

    fn file(path: &crate::source::TreePath, text: String) -> Source {
        Source {
            text,
            name: path.to_string(),
            label: path.to_string(),
        }
    }
}

/// Fails a step of one kustomization's patching.
struct Step<'k> {
    kf: &'k KustFile,
    step: &'static str,
}

impl Step<'_> {
    fn fail(&self, message: impl Into<String>) -> RenderError {
        RenderError::Transform {
            file: self.kf.file.clone(),
            step: self.step,
            message: message.into(),
        }
    }
}

/// The id a strategic merge patch names (its own apiVersion, kind, name and namespace).
fn patch_id(doc: &Value) -> Id {
    let api_version = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    let meta = doc.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let (group, version) = split_api_version(api_version);
    Id {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        name: name.into(),
        namespace: effective_namespace(api_version, kind, namespace),
    }
}

fn describe_id(id: &Id) -> String {
    format!("{}/{}/{}", id.kind, id.namespace, id.name)
}

/// The original identity of `r` as the selector wants it.
fn original_res_id(r: &Resource) -> ResId {
    let org = r.org_id();
    let namespace = match org.namespace.as_str() {
        DEFAULT_NAMESPACE | NO_NAMESPACE => None,
        ns => Some(ns.to_string()),
    };
    ResId {
        gvk: Gvk {
            group: org.group,
            version: org.version,
            kind: org.kind,
        },
        namespace,
        name: org.name,
    }
}

/// Positions of the objects `selector` picks (kustomize's `ResMap.Select`).
fn select(resources: &[Resource], selector: &Selector, step: &Step<'_>) -> Result<Vec<usize>, RenderError> {
    let compiled = selector
        .compile()
        .map_err(|e| step.fail(format!("target ({selector}): {e}")))?;
    Ok(resources
        .par_iter()
        .enumerate()
        .filter(|(_, r)| compiled.matches_with_original(&r.obj, || original_res_id(r)))
        .map(|(i, _)| i)
        .collect())
}

/// Whether a JSON 6902 patch records the object's identity before changing it: `patches` entries do
/// (kustomize's PatchTransformer), legacy `patchesJson6902` entries do not.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Previous {
    Record,
    Keep,
}

/// Applies the JSON 6902 operations `ops` to every object `target` selects, in parallel.
fn apply_json_to_targets(
    acc: &mut ResMap,
    target: &Selector,
    ops: &JsonPatch,
    previous: Previous,
    source: &Source,
    step: &Step<'_>,
) -> Result<(), RenderError> {
    let mut selected = vec![false; acc.len()];
    for at in select(acc.resources(), target, step)? {
        selected[at] = true;
    }
    acc.try_for_each_mut(|at, r| {
        if !selected[at] {
            return Ok(());
        }
        if previous == Previous::Record {
            r.store_previous_id();
        }
        // Named as it was before the patch, which may rename it before it fails.
        let id = r.display_id();
        // A failed patch fails the render: the half-patched object is never used.
        ops.apply_in_place(&mut r.obj)
            .map_err(|e| step.fail(format!("{}: {id}: {e}", source.label)))?;
        // kustomize applies the operations to the object's JSON and reads it back: its nulls are
        // all written `null` from then on.
        r.empty_nulls.clear();
        Ok(())
    })
}

/// Reads the patch of a `patches` or `patchesJson6902` entry: exactly one of inline text and file.
fn load_source(
    loader: &Loader<'_>,
    kf: &KustFile,
    step: &Step<'_>,
    path: Option<&str>,
    inline: Option<&str>,
) -> Result<Source, RenderError> {
    let path = path.filter(|p| !p.is_empty());
    let inline = inline.map(str::trim).filter(|p| !p.is_empty());
    match (path, inline) {
        (None, None) => Err(step.fail("must specify one of patch and path")),
        (Some(_), Some(_)) => Err(step.fail("patch and path can't be set at the same time")),
        (None, Some(text)) => Ok(Source::inline(kf, text)),
        (Some(path), None) => {
            let file = loader.resolve_file(kf, "patch", path)?;
            Ok(Source::file(&file, loader.read_text(&file)?))
        }
    }
}

/// A strategic merge patch document must name its object (kind and metadata.name).
fn check_strategic(doc: &Value) -> bool {
    doc.is_object()
        && doc
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| !k.is_empty())
        && doc
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty())
}

/// Tells a strategic merge patch (objects) from a JSON 6902 patch (a list of operations).
fn parse(loader: &Loader<'_>, step: &Step<'_>, source: &Source) -> Result<Parsed, RenderError> {
    let mut docs = parse_patch_documents(&source.text, &source.name, loader.limits())?;
    // kustomize's resource reader drops `{}` documents as it drops empty ones (IsNilOrEmpty).
    docs.retain(|d| !d.value.as_object().is_some_and(serde_json::Map::is_empty));
    if docs.is_empty() {
        return Ok(Parsed::Empty);
    }
    if let [
        Document {
            value: Value::Array(_),
            ..
        },
    ] = docs.as_slice()
    {
        return json_operations(loader, step, source).map(Parsed::Json);
    }
    if !docs.iter().all(|d| check_strategic(&d.value)) {
        return Err(step.fail(format!(
            "{}: unable to parse as a strategic merge patch (objects with kind and metadata.name) \
             or a JSON 6902 patch (a list of operations)",
            source.label
        )));
    }
    Ok(Parsed::Strategic(docs))
}

/// Reads JSON 6902 operations as kustomize does: through sigs.k8s.io/yaml's `YAMLToJSON`, so with
/// YAML 1.1 scalars (`value: yes` is `true`, `value: on` too).
fn json_operations(loader: &Loader<'_>, step: &Step<'_>, source: &Source) -> Result<JsonPatch, RenderError> {
    match parse_documents_yaml11(&source.text, &source.name, loader.limits())?.as_slice() {
        [ops] => json6902::parse(ops).map_err(|e| step.fail(format!("{}: {e}", source.label))),
        _ => Err(step.fail(format!(
            "{}: expected one list of JSON 6902 operations",
            source.label
        ))),
    }
}

/// Applies a strategic merge patch to the object at `at`; a deleted object becomes `Null`.
fn apply_strategic(
    acc: &mut ResMap,
    at: usize,
    doc: &Document,
    options: Options,
    source: &Source,
    step: &Step<'_>,
) -> Result<(), RenderError> {
    let r = &mut acc.resources_mut()[at];
    if options.allow_name_change || options.allow_kind_change {
        r.store_previous_id();
    }
    let id = r.display_id();
    strategic::apply_marked(
        &mut r.obj,
        &mut r.empty_nulls,
        &doc.value,
        &doc.empty_nulls,
        options,
    )
    .map_err(|e| step.fail(format!("{}: {id}: {e}", source.label)))
}

/// Drops objects a patch deleted and checks that no two objects now share an id.
fn settle(acc: &mut ResMap) -> Result<(), RenderError> {
    let resources = std::mem::take(acc.resources_mut());
    let mut fresh = ResMap::new();
    fresh
        .append_all(resources.into_iter().filter(|r| !is_deleted(&r.obj)))
        .map_err(duplicate_error)?;
    *acc = fresh;
    Ok(())
}

fn is_deleted(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// The only object whose current or earlier id equals the patch's (kustomize's `GetById`).
fn by_id(acc: &ResMap, doc: &Value, source: &Source, step: &Step<'_>) -> Result<usize, RenderError> {
    let id = patch_id(doc);
    match acc.positions_by_any_id(&id).as_slice() {
        [at] => Ok(*at),
        [] => Err(step.fail(format!(
            "{}: no resource matches strategic merge patch {} (apiVersion {}/{})",
            source.label,
            describe_id(&id),
            id.group,
            id.version
        ))),
        several => Err(step.fail(format!(
            "{}: strategic merge patch {} matches {} objects",
            source.label,
            describe_id(&id),
            several.len()
        ))),
    }
}

/// Runs one `patches` entry.
pub fn apply_patch(
    loader: &Loader<'_>,
    kf: &KustFile,
    acc: &mut ResMap,
    patch: &Patch,
) -> Result<(), RenderError> {
    let step = Step { kf, step: "patches" };
    let source = load_source(loader, kf, &step, patch.path.as_deref(), patch.patch.as_deref())?;
    let flag = |name: &str| {
        patch
            .options
            .as_ref()
            .and_then(|o| o.get(name))
            .copied()
            .unwrap_or(false)
    };
    let options = Options {
        allow_name_change: flag("allowNameChange"),
        allow_kind_change: flag("allowKindChange"),
    };
    match parse(loader, &step, &source)? {
        Parsed::Strategic(docs) => {
            match &patch.target {
                Some(target) => {
                    let [doc] = docs.as_slice() else {
                        return Err(step.fail(format!(
                            "{}: multiple strategic merge patches in one `patches` entry cannot have a `target`",
                            source.label
                        )));
                    };
                    for at in select(acc.resources(), target, &step)? {
                        apply_strategic(acc, at, doc, options, &source, &step)?;
                    }
                }
                None => {
                    for doc in &docs {
                        let at = by_id(acc, &doc.value, &source, &step)?;
                        apply_strategic(acc, at, doc, options, &source, &step)?;
                    }
                }
            }
            settle(acc)
        }
        Parsed::Empty => Ok(()),
        Parsed::Json(ops) => {
            let Some(target) = &patch.target else {
                return Err(step.fail(format!("{}: must specify a target for JSON patch", source.label)));
            };
            apply_json_to_targets(acc, target, &ops, Previous::Record, &source, &step)?;
            settle(acc)
        }
    }
}

/// Runs a kustomization's `patchesStrategicMerge`: each entry is inline YAML or a file.
pub fn apply_strategic_merge(
    loader: &Loader<'_>,
    kf: &KustFile,
    acc: &mut ResMap,
    entries: &[String],
) -> Result<(), RenderError> {
    let step = Step {
        kf,
        step: "patchesStrategicMerge",
    };
    for entry in entries {
        let inline = parse_documents_with_empty_nulls(entry, &kf.file.to_string(), loader.limits())
            .ok()
            .filter(|docs| !docs.is_empty() && docs.iter().all(|d| d.value.is_object()));
        let (docs, source) = match inline {
            Some(docs) => (docs, Source::inline(kf, entry)),
            None => {
                let file = loader.resolve_file(kf, "patch", entry)?;
                let text = loader.read_text(&file)?;
                let docs = parse_documents_with_empty_nulls(&text, &file.to_string(), loader.limits())?;
                (docs, Source::file(&file, text))
            }
        };
        if docs.is_empty() {
            return Err(step.fail(format!("{}: patch appears to be empty", source.label)));
        }
        for doc in &docs {
            if !check_strategic(&doc.value) {
                return Err(step.fail(format!(
                    "{}: a strategic merge patch needs kind and metadata.name",
                    source.label
                )));
            }
            let at = by_id(acc, &doc.value, &source, &step)?;
            apply_strategic(acc, at, doc, Options::default(), &source, &step)?;
        }
        settle(acc)?;
    }
    Ok(())
}

/// Runs one `patchesJson6902` entry: a target with a name, and operations inline (`patch`) or in
/// a file (`path`), as YAML or JSON.
pub fn apply_json6902(
    loader: &Loader<'_>,
    kf: &KustFile,
    acc: &mut ResMap,
    patch: &Patch,
) -> Result<(), RenderError> {
    let step = Step {
        kf,
        step: "patchesJson6902",
    };
    let target = match &patch.target {
        Some(t) if !t.name.is_empty() => t,
        _ => return Err(step.fail("must specify the target name")),
    };
    let source = load_source(loader, kf, &step, patch.path.as_deref(), patch.patch.as_deref())?;
    let ops = json_operations(loader, &step, &source)?;
    apply_json_to_targets(acc, target, &ops, Previous::Keep, &source, &step)
}
