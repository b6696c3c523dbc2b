//! `namePrefix` and `nameSuffix`: kustomize's PrefixTransformer and SuffixTransformer.
//!
//! Every object's name gets the prefix (suffix) except CustomResourceDefinitions, APIServices and
//! Namespaces, which kustomize leaves alone. The prefixes and suffixes each object received are
//! remembered: the name-reference step uses them to pick the right object when several share a
//! name.

use serde_json::Value;

use super::fieldspec::{Create, FieldSpec};
use crate::render::resource::{GvkSel, ResMap, scalar_text};

/// Prefix or suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affix {
    Prefix,
    Suffix,
}

fn skipped() -> [GvkSel; 3] {
    [
        GvkSel::kind("CustomResourceDefinition"),
        GvkSel {
            group: "apiregistration.k8s.io".into(),
            ..GvkSel::kind("APIService")
        },
        GvkSel::kind("Namespace"),
    ]
}

/// Adds `affix` to the names of all objects; returns what went wrong.
pub fn apply(acc: &mut ResMap, affix: Affix, value: &str, specs: &[FieldSpec]) -> Result<(), String> {
    let skip = skipped();
    acc.try_for_each_mut(|_, r| {
        let (group, version, kind) = r.org_gvk();
        if skip.iter().any(|s| s.selects(group, version, kind)) {
            return Ok(());
        }
        for fs in FieldSpec::selected_by(specs, group, version, kind) {
            if fs.path == "metadata/name" {
                let list = match affix {
                    Affix::Prefix => &mut r.prefixes,
                    Affix::Suffix => &mut r.suffixes,
                };
                if !value.is_empty() {
                    list.push(value.to_string());
                    r.store_previous_id();
                }
            }
            let mut set = |node: &mut Value| {
                let current = scalar_text(node);
                *node = Value::String(match affix {
                    Affix::Prefix => format!("{value}{current}"),
                    Affix::Suffix => format!("{current}{value}"),
                });
                Ok(())
            };
            fs.apply(&mut r.obj, Create::Scalar, &mut set)
                .map_err(|e| format!("{}: {e}", r.display_id()))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::resource::Resource;
    use crate::render::transforms::config::TransformerConfig;
    use crate::source::TreePath;
    use serde_json::json;

    #[test]
    fn prefixes_and_suffixes_names_but_not_namespaces_or_crds() {
        let mut m = ResMap::new();
        for obj in [
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kafka"}}),
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "kafkas.kafka.strimzi.io"}}),
        ] {
            m.append(Resource::new(obj, TreePath::new("x.yaml").unwrap()))
                .unwrap();
        }
        apply(
            &mut m,
            Affix::Prefix,
            "dev-",
            &TransformerConfig::builtin().name_prefix,
        )
        .unwrap();
        apply(
            &mut m,
            Affix::Suffix,
            "-1",
            &TransformerConfig::builtin().name_suffix,
        )
        .unwrap();
        let r = m.resources();
        assert_eq!(r[0].name(), "dev-web-1");
        assert_eq!(r[0].prefixes, ["dev-"]);
        assert_eq!(r[0].prev_ids().len(), 2);
        assert_eq!(r[0].org_id().name, "web");
        assert_eq!(r[1].name(), "kafka");
        assert_eq!(r[2].name(), "kafkas.kafka.strimzi.io");
    }
}
