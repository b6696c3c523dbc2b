//! `replacements`: kustomize's ReplacementTransformer around [`crate::render::replacements`].
//!
//! Entries are inline, or `path:` to a file holding one replacement or a list. Sources and targets
//! may be selected by an object's earlier names: the replacement function reads those from
//! kustomize's `internal.config.kubernetes.io/previous*` build annotations, which are put on the
//! objects for the call and taken off again.

use serde_json::{Map, Value};

use crate::manifest::yaml::parse_documents;
use crate::render::error::RenderError;
use crate::render::load::{KustFile, Loader};
use crate::render::replacements::{
    self, PREVIOUS_KINDS, PREVIOUS_NAMES, PREVIOUS_NAMESPACES, Replacement, ReplacementField,
};
use crate::render::resource::{ResMap, Resource};

fn fail(kf: &KustFile, message: String) -> RenderError {
    RenderError::Transform {
        file: kf.file.clone(),
        step: "replacements",
        message,
    }
}

/// The replacements `fields` of a kustomization (or a built-in ReplacementTransformer config),
/// files loaded relative to the kustomization.
fn load(
    loader: &Loader<'_>,
    kf: &KustFile,
    fields: &[ReplacementField],
) -> Result<Vec<Replacement>, RenderError> {
    let mut out = Vec::new();
    for field in fields {
        match field.inline().map_err(|e| fail(kf, e.to_string()))? {
            Some(inline) => out.push(inline),
            None => {
                let file = loader.resolve_file(kf, "replacements file", &field.path)?;
                let text = loader.read_text(&file)?;
                let docs = parse_documents(&text, &file.to_string(), loader.limits())?;
                let doc = docs.into_iter().next().unwrap_or(Value::Null);
                out.extend(replacements::parse_file(&doc).map_err(|e| fail(kf, format!("{file}: {e}")))?);
            }
        }
    }
    Ok(out)
}

const BUILD_ANNOTATIONS: [&str; 3] = [PREVIOUS_NAMES, PREVIOUS_NAMESPACES, PREVIOUS_KINDS];

/// The object with its earlier names as build annotations.
fn annotated(r: &mut Resource) -> Value {
    let mut obj = std::mem::take(&mut r.obj);
    if r.prev.is_empty() {
        return obj;
    }
    let join =
        |f: fn(&super::super::resource::PrevId) -> &str| r.prev.iter().map(f).collect::<Vec<_>>().join(",");
    let values = [join(|p| &p.name), join(|p| &p.namespace), join(|p| &p.kind)];
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !annotations.is_object() {
            *annotations = Value::Object(Map::new());
        }
        if let Value::Object(a) = annotations {
            for (key, value) in BUILD_ANNOTATIONS.iter().zip(values) {
                a.insert((*key).to_string(), Value::String(value));
            }
        }
    }
    obj
}

/// Takes the build annotations off again (an annotation map left empty goes too).
fn unannotated(mut obj: Value) -> Value {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(Value::Object(a)) = meta.get_mut("annotations")
    {
        let had = BUILD_ANNOTATIONS.iter().any(|k| a.contains_key(*k));
        for key in BUILD_ANNOTATIONS {
            a.remove(key);
        }
        if had && a.is_empty() {
            meta.remove("annotations");
        }
    }
    obj
}

/// Runs a kustomization's replacements over every object.
pub fn apply(loader: &Loader<'_>, kf: &KustFile, acc: &mut ResMap) -> Result<(), RenderError> {
    apply_fields(
        loader,
        kf,
        acc,
        kf.kust.replacements.as_deref().unwrap_or_default(),
    )
}

/// Runs the replacements `fields` over every object (the `replacements` field and built-in
/// ReplacementTransformer configs alike).
pub fn apply_fields(
    loader: &Loader<'_>,
    kf: &KustFile,
    acc: &mut ResMap,
    fields: &[ReplacementField],
) -> Result<(), RenderError> {
    let list = load(loader, kf, fields)?;
    if list.is_empty() {
        return Ok(());
    }
    let resources = acc.resources_mut();
    let mut objects: Vec<Value> = resources.iter_mut().map(annotated).collect();
    let result = replacements::apply(&mut objects, &list);
    for (r, obj) in resources.iter_mut().zip(objects) {
        r.obj = unannotated(obj);
    }
    result.map_err(|e| fail(kf, e.to_string()))
}
