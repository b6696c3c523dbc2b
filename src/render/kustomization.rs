//! The kustomization file as a typed value: every field of kustomize v5's `Kustomization` (and
//! `Component`), unknown fields refused as kustomize refuses them.
//!
//! Fields whose feature kgitops does not implement are still parsed (so a misspelling next to them is
//! reported as such) and then refused by [`Kustomization::unsupported`] with a clear message instead
//! of being ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::replacements::ReplacementField;
use super::selector::Selector;

/// `apiVersion` of a kustomization file.
pub const KUSTOMIZATION_VERSION: &str = "kustomize.config.k8s.io/v1beta1";
/// `kind` of a kustomization file.
pub const KUSTOMIZATION_KIND: &str = "Kustomization";
/// `apiVersion` of a component.
pub const COMPONENT_VERSION: &str = "kustomize.config.k8s.io/v1alpha1";
/// `kind` of a component.
pub const COMPONENT_KIND: &str = "Component";

/// The file names kustomize recognizes in a directory, in its lookup order.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// A kustomization (or component) file. Field names and meaning as in kustomize's
/// `api/types/kustomization.go`. Absent and `null` fields are empty.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Kustomization {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<ObjectMeta>,
    #[serde(default, deserialize_with = "string_map")]
    pub openapi: Option<BTreeMap<String, String>>,

    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub namespace: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    pub common_labels: Option<BTreeMap<String, String>>,
    pub labels: Option<Vec<Label>>,
    #[serde(default, deserialize_with = "string_map")]
    pub common_annotations: Option<BTreeMap<String, String>>,
    pub patches_strategic_merge: Option<Vec<String>>,
    #[serde(rename = "patchesJson6902")]
    pub patches_json6902: Option<Vec<Patch>>,
    pub patches: Option<Vec<Patch>>,
    pub images: Option<Vec<Image>>,
    pub image_tags: Option<Vec<Image>>,
    /// Inline replacements or `{path: file}` entries.
    pub replacements: Option<Vec<ReplacementField>>,
    pub replicas: Option<Vec<Replica>>,
    pub vars: Option<Vec<super::vars::Var>>,
    pub sort_options: Option<SortOptions>,

    pub resources: Option<Vec<String>>,
    pub components: Option<Vec<String>>,
    pub crds: Option<Vec<String>>,
    pub bases: Option<Vec<String>>,

    pub config_map_generator: Option<Vec<GeneratorArgs>>,
    pub secret_generator: Option<Vec<SecretArgs>>,
    pub helm_globals: Option<Value>,
    pub helm_charts: Option<Vec<Value>>,
    pub helm_chart_inflation_generator: Option<Vec<Value>>,
    pub generator_options: Option<GeneratorOptions>,

    pub configurations: Option<Vec<String>>,
    pub generators: Option<Vec<String>>,
    pub transformers: Option<Vec<String>>,
    pub validators: Option<Vec<String>>,
    pub build_metadata: Option<Vec<String>>,
}

/// `metadata` of a kustomization: accepted and ignored, as kustomize does.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "string_map")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// One entry of `labels`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Label {
    #[serde(default, deserialize_with = "string_map")]
    pub pairs: Option<BTreeMap<String, String>>,
    pub include_selectors: Option<bool>,
    pub include_templates: Option<bool>,
    pub fields: Option<Vec<FieldSpecArgs>>,
}

/// A field spec as written in a kustomization (`labels[].fields`) or a configuration file.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpecArgs {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub path: Option<String>,
    pub create: Option<bool>,
}

/// One entry of `patches` or `patchesJson6902`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    pub path: Option<String>,
    pub patch: Option<String>,
    /// Which objects the patch applies to (see [`Selector`]).
    pub target: Option<Selector>,
    pub options: Option<BTreeMap<String, bool>>,
}

/// One entry of `images`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Image {
    pub name: Option<String>,
    pub new_name: Option<String>,
    pub tag_suffix: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
}

/// One entry of `replicas`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replica {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "strict_int")]
    pub count: Option<i64>,
}

/// `sortOptions`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SortOptions {
    pub order: Option<String>,
    pub legacy_sort_options: Option<LegacySortOptions>,
}

/// `sortOptions.legacySortOptions`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LegacySortOptions {
    pub order_first: Option<Vec<String>>,
    pub order_last: Option<Vec<String>>,
}

/// One entry of `configMapGenerator` (and, with `type`, of `secretGenerator`).
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorArgs {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub behavior: Option<String>,
    pub literals: Option<Vec<String>>,
    pub files: Option<Vec<String>>,
    pub envs: Option<Vec<String>>,
    /// Older singular form of `envs`; appended to it.
    pub env: Option<String>,
    pub options: Option<GeneratorOptions>,
}

/// One entry of `secretGenerator`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretArgs {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub behavior: Option<String>,
    pub literals: Option<Vec<String>>,
    pub files: Option<Vec<String>>,
    pub envs: Option<Vec<String>>,
    pub env: Option<String>,
    pub options: Option<GeneratorOptions>,
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

impl SecretArgs {
    /// The generator arguments shared with `configMapGenerator`.
    pub fn generator_args(&self) -> GeneratorArgs {
        GeneratorArgs {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            behavior: self.behavior.clone(),
            literals: self.literals.clone(),
            files: self.files.clone(),
            envs: self.envs.clone(),
            env: self.env.clone(),
            options: self.options.clone(),
        }
    }
}

/// `generatorOptions`, or `options` of one generator.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GeneratorOptions {
    #[serde(default, deserialize_with = "string_map")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "string_map")]
    pub annotations: Option<BTreeMap<String, String>>,
    pub disable_name_suffix_hash: Option<bool>,
    pub immutable: Option<bool>,
}

impl GeneratorOptions {
    /// kustomize's `MergeGlobalOptionsIntoLocal`: local labels and annotations win, the global
    /// flags switch on.
    pub fn merged_with_global(local: Option<&GeneratorOptions>, global: Option<&GeneratorOptions>) -> Self {
        let mut out = local.cloned().unwrap_or_default();
        let Some(global) = global else { return out };
        for (mine, theirs) in [
            (&mut out.labels, &global.labels),
            (&mut out.annotations, &global.annotations),
        ] {
            if let Some(theirs) = theirs {
                let mine = mine.get_or_insert_with(BTreeMap::new);
                for (k, v) in theirs {
                    mine.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        if global.disable_name_suffix_hash == Some(true) {
            out.disable_name_suffix_hash = Some(true);
        }
        if global.immutable == Some(true) {
            out.immutable = Some(true);
        }
        out
    }
}

/// A `map[string]string` of kustomize: a null value (`x: ~`, `x:`) is Go's zero value `""`, as
/// encoding/json leaves it; numbers and booleans are refused by [`parse_typed_kustomize`].
///
/// [`parse_typed_kustomize`]: crate::manifest::yaml::parse_typed_kustomize
pub(crate) fn string_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    let map: Option<BTreeMap<String, Option<String>>> = Option::deserialize(d)?;
    Ok(map.map(|m| m.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect()))
}

/// An `int64` of kustomize: a quoted number (`count: "2"`) is a string, which encoding/json refuses
/// ("cannot unmarshal string into Go struct field Replica.replicas.count of type int64").
fn strict_int<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Int;
    impl<'de> serde::de::Visitor<'de> for Int {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an integer (not a quoted string)")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("{v} does not fit an int64")))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Int)
        }
    }
    d.deserialize_any(Int)
}

/// Whether a kustomization is a `Kustomization` or a `Component`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KustKind {
    Kustomization,
    Component,
}

impl Kustomization {
    /// kustomize's `EnforceFields`: `kind` and `apiVersion` must be the kustomization or component
    /// ones. Returns what is wrong.
    pub fn check_kind(&self) -> Result<KustKind, String> {
        let kind = self.kind.as_deref().unwrap_or("");
        let (kind, required) = match kind {
            "" | KUSTOMIZATION_KIND => (KustKind::Kustomization, KUSTOMIZATION_VERSION),
            COMPONENT_KIND => (KustKind::Component, COMPONENT_VERSION),
            other => {
                return Err(format!(
                    "kind should be {KUSTOMIZATION_KIND} or {COMPONENT_KIND}, not {other:?}"
                ));
            }
        };
        match self.api_version.as_deref() {
            None | Some("") => Ok(kind),
            Some(v) if v == required => Ok(kind),
            Some(v) => Err(format!(
                "apiVersion for {} should be {required}, not {v:?}",
                self.kind.as_deref().unwrap_or(KUSTOMIZATION_KIND)
            )),
        }
    }

    /// The first field set whose feature kgitops does not implement, with what to do instead.
    pub fn unsupported(&self) -> Option<(&'static str, &'static str)> {
        fn set<T>(v: &Option<Vec<T>>) -> bool {
            v.as_ref().is_some_and(|v| !v.is_empty())
        }
        let checks = [
            (
                set(&self.crds),
                "crds",
                "use configurations for custom resource fields",
            ),
            (
                self.openapi.as_ref().is_some_and(|m| !m.is_empty()),
                "openapi",
                // kustomize downloads a schema given by URL; kgitops never reads the network.
                if self
                    .openapi
                    .iter()
                    .flatten()
                    .any(|(_, v)| v.starts_with("http://") || v.starts_with("https://"))
                {
                    "a remote OpenAPI schema (a URL) is not fetched, and custom schemas are not loaded"
                } else {
                    "custom OpenAPI schemas are not loaded"
                },
            ),
            (
                set(&self.build_metadata),
                "buildMetadata",
                "origin and transformer annotations are not produced",
            ),
        ];
        checks
            .into_iter()
            .find(|(is_set, _, _)| *is_set)
            .map(|(_, field, hint)| (field, hint))
    }

    /// kustomize's `CheckEmpty`: a kustomization with nothing but `apiVersion`/`kind` is an error.
    pub fn is_empty(&self) -> bool {
        let bare = Kustomization {
            api_version: None,
            kind: None,
            ..self.clone()
        };
        bare == Kustomization::default()
    }

    /// `resources` followed by the legacy `bases`, as kustomize's `FixKustomization` orders them.
    pub fn all_resources(&self) -> Vec<String> {
        let mut out = self.resources.clone().unwrap_or_default();
        out.extend(self.bases.clone().unwrap_or_default());
        out
    }

    /// `images` followed by the legacy `imageTags`.
    pub fn all_images(&self) -> Vec<Image> {
        let mut out = self.images.clone().unwrap_or_default();
        out.extend(self.image_tags.clone().unwrap_or_default());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml::{Limits, parse_typed_kustomize};

    fn parse(text: &str) -> Result<Kustomization, String> {
        parse_typed_kustomize::<Kustomization>(text, "k/kustomization.yaml", &Limits::DEFAULT)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn misspelled_fields_are_errors_at_every_level() {
        let err = parse("resource:\n- a.yaml\n").unwrap_err();
        assert!(err.contains("unknown field `resource`"), "{err}");
        let err = parse("configMapGenerator:\n- name: x\n  literal: [a=b]\n").unwrap_err();
        assert!(err.contains("unknown field `literal`"), "{err}");
        let err = parse("patches:\n- path: p.yaml\n  target: {kinds: Deployment}\n").unwrap_err();
        assert!(err.contains("unknown field `kinds`"), "{err}");
    }

    #[test]
    fn kind_and_api_version_are_checked() {
        let k =
            parse("kind: Component\napiVersion: kustomize.config.k8s.io/v1alpha1\nresources: [a]\n").unwrap();
        assert_eq!(k.check_kind(), Ok(KustKind::Component));
        let k = parse("kind: Component\napiVersion: kustomize.config.k8s.io/v1beta1\n").unwrap();
        assert!(
            k.check_kind()
                .unwrap_err()
                .contains("should be kustomize.config.k8s.io/v1alpha1")
        );
        let k = parse("kind: Kustomize\n").unwrap();
        assert!(k.check_kind().is_err());
    }

    #[test]
    fn empty_and_unsupported() {
        assert!(
            parse("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n")
                .unwrap()
                .is_empty()
        );
        assert!(!parse("namespace: x\n").unwrap().is_empty());
        let k = parse("resources: [a]\nbuildMetadata: [originAnnotations]\n").unwrap();
        assert_eq!(k.unsupported().map(|u| u.0), Some("buildMetadata"));
        assert_eq!(parse("resources: [a]\n").unwrap().unsupported(), None);
    }

    #[test]
    fn global_generator_options_fill_in_local_ones() {
        let local = GeneratorOptions {
            labels: Some(BTreeMap::from([("a".into(), "local".into())])),
            ..Default::default()
        };
        let global = GeneratorOptions {
            labels: Some(BTreeMap::from([
                ("a".into(), "global".into()),
                ("b".into(), "g".into()),
            ])),
            disable_name_suffix_hash: Some(true),
            ..Default::default()
        };
        let merged = GeneratorOptions::merged_with_global(Some(&local), Some(&global));
        assert_eq!(merged.labels.unwrap()["a"], "local");
        assert_eq!(merged.disable_name_suffix_hash, Some(true));
    }
}
