//! `labels`, `commonLabels` and `commonAnnotations`: kustomize's LabelTransformer and
//! AnnotationsTransformer with the field specs kustomize configures for each.
//!
//! - `commonLabels`: object metadata, label selectors and pod templates (and their creation
//!   where kustomize creates them);
//! - `labels` entries: object metadata only, plus templates with `includeTemplates`, plus selectors
//!   and templates with `includeSelectors`, plus any `fields` given;
//! - `commonAnnotations`: object metadata and pod templates.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::config::TransformerConfig;
use super::fieldspec::{Create, FieldSpec};
use crate::render::kustomization::Label;
use crate::render::resource::{GvkSel, ResMap};

/// kustomize's `FsSlice.MergeOne`: a spec already present is skipped; the same field with a
/// different `create` is a conflict.
fn merge_one(specs: &mut Vec<FieldSpec>, fs: FieldSpec) -> Result<(), String> {
    match specs.iter().find(|s| s.same_field(&fs)) {
        Some(existing) if existing.create != fs.create => Err(format!(
            "conflicting fieldspecs for '{}' (create: {} and {})",
            fs.path, existing.create, fs.create
        )),
        Some(_) => Ok(()),
        None => {
            specs.push(fs);
            Ok(())
        }
    }
}

fn merge_all(specs: &mut Vec<FieldSpec>, more: &[FieldSpec]) -> Result<(), String> {
    more.iter().try_for_each(|fs| merge_one(specs, fs.clone()))
}

/// The field specs a `labels` entry applies to.
pub fn label_field_specs(label: &Label) -> Result<Vec<FieldSpec>, String> {
    let config = TransformerConfig::builtin();
    let mut specs = Vec::new();
    for f in label.fields.iter().flatten() {
        let gvk = GvkSel {
            group: f.group.clone().unwrap_or_default(),
            version: f.version.clone().unwrap_or_default(),
            kind: f.kind.clone().unwrap_or_default(),
        };
        let fs = FieldSpec::new(gvk, f.path.as_deref().unwrap_or(""), f.create.unwrap_or(false));
        merge_one(&mut specs, fs)?;
    }
    if label.include_selectors == Some(true) {
        merge_all(&mut specs, &config.common_labels)?;
    } else {
        if label.include_templates == Some(true) {
            merge_all(&mut specs, &config.template_labels)?;
        }
        merge_one(
            &mut specs,
            FieldSpec::new(GvkSel::default(), "metadata/labels", true),
        )?;
    }
    Ok(specs)
}

/// Sets each of `entries` in the maps at `specs` of every object.
pub fn apply(
    acc: &mut ResMap,
    entries: &BTreeMap<String, String>,
    specs: &[FieldSpec],
) -> Result<(), String> {
    if entries.is_empty() {
        return Ok(());
    }
    for r in acc.resources_mut() {
        for (key, value) in entries {
            let mut set = |node: &mut Value| match node {
                Value::Object(map) => {
                    map.insert(key.clone(), Value::String(value.clone()));
                    Ok(())
                }
                Value::Null => {
                    *node = Value::Object(Map::from_iter([(key.clone(), Value::String(value.clone()))]));
                    Ok(())
                }
                other => Err(format!("expected a map to set {key:?} in, found {other}")),
            };
            for fs in specs {
                fs.apply(&mut r.obj, Create::Map, &mut set)
                    .map_err(|e| format!("{}: {e}", r.display_id()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::resource::Resource;
    use crate::source::TreePath;
    use serde_json::json;

    fn deployment() -> ResMap {
        let mut m = ResMap::new();
        m.append(Resource::new(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                   "spec": {"selector": {}, "template": {"metadata": {}}}}),
            TreePath::new("x.yaml").unwrap(),
        ))
        .unwrap();
        m
    }

    fn pairs() -> BTreeMap<String, String> {
        BTreeMap::from([("team".to_string(), "kafka".to_string())])
    }

    #[test]
    fn labels_without_selectors_touch_metadata_only() {
        let mut m = deployment();
        let label = Label {
            pairs: Some(pairs()),
            ..Label::default()
        };
        apply(&mut m, &pairs(), &label_field_specs(&label).unwrap()).unwrap();
        let obj = &m.resources()[0].obj;
        assert_eq!(obj["metadata"]["labels"], json!({"team": "kafka"}));
        assert_eq!(obj["spec"]["selector"], json!({}));
        assert_eq!(obj["spec"]["template"]["metadata"], json!({}));
    }

    #[test]
    fn include_templates_and_selectors() {
        let mut m = deployment();
        let label = Label {
            include_templates: Some(true),
            ..Label::default()
        };
        apply(&mut m, &pairs(), &label_field_specs(&label).unwrap()).unwrap();
        assert_eq!(
            m.resources()[0].obj["spec"]["template"]["metadata"]["labels"]["team"],
            "kafka"
        );
        assert_eq!(m.resources()[0].obj["spec"]["selector"], json!({}));

        let mut m = deployment();
        let label = Label {
            include_selectors: Some(true),
            ..Label::default()
        };
        apply(&mut m, &pairs(), &label_field_specs(&label).unwrap()).unwrap();
        assert_eq!(
            m.resources()[0].obj["spec"]["selector"]["matchLabels"]["team"],
            "kafka"
        );
    }
}
