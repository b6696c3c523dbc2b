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

use super::config::{TransformerConfig, field_spec, merge_all, merge_one};
use super::fieldspec::{Create, FieldSpec};
use crate::render::kustomization::Label;
use crate::render::resource::{GvkSel, ResMap};

/// The field specs a `labels` entry applies to.
pub fn label_field_specs(label: &Label, config: &TransformerConfig) -> Result<Vec<FieldSpec>, String> {
    let mut specs = Vec::new();
    for f in label.fields.iter().flatten() {
        merge_one(&mut specs, field_spec(f))?;
    }
    merge_all(&mut specs, &config.labels)?;
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
    acc.try_for_each_mut(|_, r| {
        // kustomize sets key by key and spec by spec; setting all keys per spec gives the same maps.
        let mut set = |node: &mut Value| {
            if node.is_null() {
                *node = Value::Object(Map::new());
            }
            let Value::Object(map) = node else {
                return Err(format!(
                    "expected a map to set labels or annotations in, found {node}"
                ));
            };
            for (key, value) in entries {
                map.insert(key.clone(), Value::String(value.clone()));
            }
            Ok(())
        };
        for fs in FieldSpec::selecting(specs, &r.obj) {
            if let Err(e) = fs.apply_unchecked(&mut r.obj, Create::Map, &mut set) {
                return Err(format!("{}: {e}", r.display_id()));
            }
        }
        Ok(())
    })
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
        apply(
            &mut m,
            &pairs(),
            &label_field_specs(&label, &TransformerConfig::builtin()).unwrap(),
        )
        .unwrap();
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
        apply(
            &mut m,
            &pairs(),
            &label_field_specs(&label, &TransformerConfig::builtin()).unwrap(),
        )
        .unwrap();
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
        apply(
            &mut m,
            &pairs(),
            &label_field_specs(&label, &TransformerConfig::builtin()).unwrap(),
        )
        .unwrap();
        assert_eq!(
            m.resources()[0].obj["spec"]["selector"]["matchLabels"]["team"],
            "kafka"
        );
    }
}
