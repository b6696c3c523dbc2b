//! Built-in plugin configs: the `generators:`, `transformers:` and `validators:` entries of a
//! kustomization whose objects have `apiVersion: builtin` (kustomize v5.8.1's
//! `configureExternalGenerators`/`configureExternalTransformers` with its statically linked
//! built-in plugins, which kustomize runs without any flag).
//!
//! This module owns reading those entries and turning each config into a call of the code the
//! matching kustomization field runs (labels, names, namespace, patches, images, replicas,
//! replacements, hash suffixes, configMap/secret generators), with the config's own field specs and
//! options instead of the kustomization's: no default field specs are added, as in kustomize.
//!
//! - Entries are inline YAML objects or paths (a file of configs, or a directory whose
//!   kustomization's output are the configs). As kustomize does, inline configs come first, then
//!   the path entries in order.
//! - Generators run after the kustomization's `configMapGenerator`/`secretGenerator`, transformers
//!   after all of its own transformers, validators last (a validator that changes an object fails).
//! - Every config is read and checked before any of them runs, and before the kustomization's own
//!   generators (transformers) run, as kustomize configures all plugins first. Configs are read leniently (unknown fields ignored, as `yaml.Unmarshal`
//!   does) but typed strictly (a number where a string is expected is refused).
//! - Any other apiVersion is an exec, Go or KRM-function plugin, which kgitops never runs: refused
//!   with a message naming the kind and the file.

use std::collections::BTreeMap;

use super::error::RenderError;
use super::generators::{self, Kind as GeneratorKind};
use super::kustomization::{
    FieldSpecArgs, GeneratorArgs, GeneratorOptions, Image, KustKind, Patch, Replica, string_map,
};
use super::load::{Entry, KustFile, Loader};
use super::replacements::ReplacementField;
use super::resource::{ResMap, Resource, split_api_version};
use super::selector::Selector;
use super::target::{Acc, accumulate_target, duplicate_error};
use super::transforms::config::field_spec;
use super::transforms::fieldspec::FieldSpec;
use super::transforms::{images, labels, names, namespace, patch, replacement, replicas};
use serde::Deserialize;
use serde::de::{
    DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;

/// The `version` of a built-in plugin config's `apiVersion` (with an empty group).
pub const BUILTIN_API_VERSION: &str = "builtin";

/// Annotations that make a config a KRM function (kustomize's `fnplugin.GetFunctionSpec`).
const FUNCTION_ANNOTATIONS: [&str; 2] = ["config.kubernetes.io/function", "config.k8s.io/function"];

/// The kustomization field an entry is listed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Generators,
    Transformers,
    Validators,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Generators => "generators",
            Field::Transformers => "transformers",
            Field::Validators => "validators",
        }
    }

    /// What one entry is called in messages about resolving it.
    fn what(self) -> &'static str {
        match self {
            Field::Generators => "generator",
            Field::Transformers => "transformer",
            Field::Validators => "validator",
        }
    }

    fn entries(self, kf: &KustFile) -> &[String] {
        let list = match self {
            Field::Generators => &kf.kust.generators,
            Field::Transformers => &kf.kust.transformers,
            Field::Validators => &kf.kust.validators,
        };
        list.as_deref().unwrap_or_default()
    }
}

/// The configured `generators` entries of a kustomization, ready to run.
pub struct Generators(Vec<(Context, PluginGenerator)>);

/// The configured `transformers` (or `validators`) entries of a kustomization, ready to run.
pub struct Transformers {
    field: Field,
    list: Vec<(Context, Transformer)>,
}

/// Reads and checks the kustomization's `generators` entries. kustomize configures them before
/// running any generator, so their errors come before those of `configMapGenerator` and friends.
pub fn configure_generators(loader: &Loader<'_>, kf: &KustFile) -> Result<Generators, RenderError> {
    let configs = configs(loader, kf, Field::Generators)?;
    let mut list = Vec::with_capacity(configs.len());
    for config in &configs {
        let context = Context::new(kf, Field::Generators, config);
        let g = generator(&context, config)?;
        list.push((context, g));
    }
    Ok(Generators(list))
}

impl Generators {
    /// Runs the generators in order, absorbing what they make into `acc`.
    pub fn run(self, loader: &Loader<'_>, kf: &KustFile, acc: &mut ResMap) -> Result<(), RenderError> {
        for (context, g) in self.0 {
            match g {
                PluginGenerator::Data(g) => {
                    generators::generate(loader, kf, g.kind, &g.args, g.secret_type.as_deref(), None, acc)
                        .map_err(|e| context.fail(e.to_string()))?
                }
                // Helm's own errors name the chart and the kustomization already.
                PluginGenerator::Helm(config) => {
                    for res in super::helm::generate_from_config(loader, kf, &config)? {
                        acc.append(res).map_err(duplicate_error)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Reads and checks the kustomization's `transformers` entries. kustomize configures them before
/// running the kustomization's own transformers, so their errors come first.
pub fn configure_transformers(loader: &Loader<'_>, kf: &KustFile) -> Result<Transformers, RenderError> {
    configure(loader, kf, Field::Transformers)
}

/// Reads and checks the kustomization's `validators` entries (after its transformers ran, as
/// kustomize's `runValidators`).
pub fn configure_validators(loader: &Loader<'_>, kf: &KustFile) -> Result<Transformers, RenderError> {
    configure(loader, kf, Field::Validators)
}

fn configure(loader: &Loader<'_>, kf: &KustFile, field: Field) -> Result<Transformers, RenderError> {
    let configs = configs(loader, kf, field)?;
    let mut list = Vec::with_capacity(configs.len());
    for config in &configs {
        let context = Context::new(kf, field, config);
        let t = transformer(&context, config)?;
        list.push((context, t));
    }
    Ok(Transformers { field, list })
}

impl Transformers {
    /// Runs the transformers over `acc` in order; validators run on a copy that must come out
    /// unchanged.
    pub fn run(self, loader: &Loader<'_>, kf: &KustFile, acc: &mut ResMap) -> Result<(), RenderError> {
        for (context, t) in self.list {
            let result = match self.field {
                Field::Validators => validate(loader, kf, acc, &t),
                Field::Transformers | Field::Generators => t.run(loader, kf, acc),
            };
            result.map_err(|e| context.fail(e))?;
        }
        Ok(())
    }
}

/// Runs a transformer as a validator: on a copy, which must come out unchanged (kustomize's
/// "validator shouldn't modify the resource map").
fn validate(loader: &Loader<'_>, kf: &KustFile, acc: &ResMap, t: &Transformer) -> Result<(), String> {
    let mut copy = ResMap::new();
    copy.append_all(acc.resources().iter().cloned())
        .map_err(|d| duplicate_error(d).to_string())?;
    t.run(loader, kf, &mut copy)?;
    let changed = copy.len() != acc.len()
        || copy
            .resources()
            .iter()
            .zip(acc.resources())
            .any(|(after, before)| after.obj != before.obj);
    if changed {
        return Err(
            "validator shouldn't modify the resource map (this built-in transformer changes objects; \
                    list it under `transformers`)"
                .to_string(),
        );
    }
    Ok(())
}

/// One config, for messages.
#[derive(Clone, Debug)]
struct Context {
    file: crate::source::TreePath,
    field: Field,
    config: crate::source::TreePath,
    kind: String,
    name: String,
}

impl Context {
    fn new(kf: &KustFile, field: Field, config: &Resource) -> Context {
        Context {
            file: kf.file.clone(),
            field,
            config: config.source.clone(),
            kind: config.kind().to_string(),
            name: config.name().to_string(),
        }
    }

    fn fail(&self, message: impl Into<String>) -> RenderError {
        RenderError::Plugin {
            file: self.file.clone(),
            entry: format!(
                "{} entry {} {:?} ({})",
                self.field.name(),
                self.kind,
                self.name,
                self.config
            ),
            message: message.into(),
        }
    }
}

/// The config objects of `field`: inline entries first, then those of the path entries (files, or
/// directories built as kustomizations), as kustomize accumulates them.
fn configs(loader: &Loader<'_>, kf: &KustFile, field: Field) -> Result<Vec<Resource>, RenderError> {
    let entries = field.entries(kf);
    let mut acc = ResMap::new();
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut paths = Vec::new();
    for entry in entries {
        // kustomize reads an entry as YAML objects first and takes it as a path when that fails.
        match loader.parse_objects(&kf.file, entry) {
            Ok(objects) if !objects.is_empty() => acc
                .append_all(objects.into_iter().map(|o| Resource::read(o, kf.file.clone())))
                .map_err(duplicate_error)?,
            _ => paths.push(entry),
        }
    }
    for entry in paths {
        match loader.resolve_entry(kf, field.what(), entry)? {
            Entry::File(path) => {
                let objects = loader.read_objects(&path)?;
                acc.append_all(objects.into_iter().map(|o| Resource::read(o, path.clone())))
                    .map_err(duplicate_error)?;
            }
            Entry::Dir(dir) => {
                let sub = loader
                    .load_kustomization(&dir, kf.chain.clone())
                    .map_err(|e| match e {
                        RenderError::NoKustomization { dir } => RenderError::Entry {
                            file: kf.file.clone(),
                            what: field.what(),
                            entry: entry.clone(),
                            message: format!("{dir} is a directory without a kustomization file"),
                        },
                        other => other,
                    })?;
                if sub.kind == KustKind::Component {
                    return Err(RenderError::Entry {
                        file: kf.file.clone(),
                        what: field.what(),
                        entry: entry.clone(),
                        message: format!("{} is a Component, not a kustomization", sub.file),
                    });
                }
                let built = accumulate_target(loader, &sub, Acc::new())?;
                acc.append_all(built.resources.into_resources())
                    .map_err(duplicate_error)?;
            }
        }
    }
    Ok(acc.into_resources())
}

/// The kind of a built-in plugin config; any other apiVersion is a plugin kgitops does not run.
fn builtin_kind<'r>(context: &Context, config: &'r Resource) -> Result<&'r str, RenderError> {
    let api_version = config.api_version();
    if is_builtin_api_version(api_version) {
        return Ok(config.kind());
    }
    let annotations = config.string_map("annotations");
    let function = FUNCTION_ANNOTATIONS
        .iter()
        .find(|a| annotations.iter().any(|(k, _)| k == *a));
    let what = match function {
        Some(annotation) => format!("a KRM-function plugin (annotation {annotation})"),
        None => "an exec or Go plugin".to_string(),
    };
    Err(context.fail(format!(
        "apiVersion {api_version:?} makes it {what}; kgitops runs only kustomize's built-in plugins \
         (apiVersion: builtin) and never runs exec, Go or KRM-function plugins"
    )))
}

/// kustomize's `isBuiltinPlugin`: an empty group and the version `builtin` (`builtin`, `/builtin`).
fn is_builtin_api_version(api_version: &str) -> bool {
    split_api_version(api_version) == ("", BUILTIN_API_VERSION)
}

/// Reads a config as the plugin's Go struct: unknown fields ignored, types checked as
/// sigs.k8s.io/yaml checks them ([`Lenient`]).
fn read<T: DeserializeOwned>(context: &Context, config: &Resource) -> Result<T, RenderError> {
    T::deserialize(Lenient(&config.obj)).map_err(|e| context.fail(format!("invalid config: {e}")))
}

/// A config value read as kustomize's `yaml.Unmarshal` (sigs.k8s.io/yaml) reads a plugin config:
/// where the Go field is a string, a number or boolean is taken as its text (`labels: {version:
/// 1}` is the label `"1"`), while a quoted number is still refused where a number is expected.
/// (Kustomization files are read more strictly, see `parse_typed_kustomize`.)
struct Lenient<'v>(&'v Value);

impl<'de> Deserializer<'de> for Lenient<'_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => visitor.visit_u64(u),
                (None, Some(i), _) => visitor.visit_i64(i),
                (None, None, Some(f)) => visitor.visit_f64(f),
                (None, None, None) => visitor.visit_string(n.to_string()),
            },
            Value::String(s) => visitor.visit_str(s),
            Value::Array(items) => visitor.visit_seq(LenientSeq(items.iter())),
            Value::Object(map) => visitor.visit_map(LenientMap {
                entries: map.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Number(n) => visitor.visit_string(n.to_string()),
            Value::Bool(b) => visitor.visit_string(b.to_string()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct
        seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct LenientSeq<'v>(std::slice::Iter<'v, Value>);

impl<'de> SeqAccess<'de> for LenientSeq<'_> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0.next().map(|v| seed.deserialize(Lenient(v))).transpose()
    }
}

struct LenientMap<'v> {
    entries: serde_json::map::Iter<'v>,
    value: Option<&'v Value>,
}

impl<'de> MapAccess<'de> for LenientMap<'_> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(key.as_str().into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(Lenient(value)),
            None => Err(serde::de::Error::custom("a map value without its key")),
        }
    }
}

/// Field specs as a config lists them (no defaults added; kustomize uses them as given).
fn specs(list: &Option<Vec<FieldSpecArgs>>) -> Vec<FieldSpec> {
    list.iter().flatten().map(field_spec).collect()
}

/// `metadata` of a config: its name (generators) and namespace (generators, NamespaceTransformer).
#[derive(Debug, Default, Deserialize)]
struct Meta {
    name: Option<String>,
    namespace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LabelConfig {
    #[serde(default, deserialize_with = "string_map")]
    labels: Option<BTreeMap<String, String>>,
    field_specs: Option<Vec<FieldSpecArgs>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnnotationConfig {
    #[serde(default, deserialize_with = "string_map")]
    annotations: Option<BTreeMap<String, String>>,
    field_specs: Option<Vec<FieldSpecArgs>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AffixConfig {
    prefix: Option<String>,
    suffix: Option<String>,
    field_specs: Option<Vec<FieldSpecArgs>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NamespaceConfig {
    metadata: Option<Meta>,
    field_specs: Option<Vec<FieldSpecArgs>>,
    unset_only: Option<bool>,
    set_role_binding_subjects: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PatchConfig {
    path: Option<String>,
    patch: Option<String>,
    target: Option<Selector>,
    options: Option<BTreeMap<String, bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StrategicMergeConfig {
    paths: Option<Vec<String>>,
    patches: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Json6902Config {
    target: Option<Selector>,
    path: Option<String>,
    json_op: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageConfig {
    image_tag: Option<Image>,
    field_specs: Option<Vec<FieldSpecArgs>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplicaConfig {
    replica: Option<Replica>,
    field_specs: Option<Vec<FieldSpecArgs>>,
}

#[derive(Debug, Deserialize)]
struct ReplacementConfig {
    replacements: Option<Vec<ReplacementField>>,
}

/// ConfigMapGenerator and SecretGenerator: the generator arguments at the top level, `name` and
/// `namespace` defaulting to the config's metadata.
#[derive(Debug, Deserialize)]
struct GeneratorConfig {
    metadata: Option<Meta>,
    name: Option<String>,
    namespace: Option<String>,
    behavior: Option<String>,
    literals: Option<Vec<String>>,
    files: Option<Vec<String>>,
    envs: Option<Vec<String>>,
    env: Option<String>,
    options: Option<GeneratorOptions>,
    #[serde(rename = "type")]
    type_: Option<String>,
}

/// A configured built-in generator.
/// A configured built-in generator.
enum PluginGenerator {
    /// ConfigMapGenerator and SecretGenerator: what `configMapGenerator`/`secretGenerator` run.
    Data(Box<Generator>),
    /// HelmChartInflationGenerator: the config as written, run as a `helmCharts` entry.
    Helm(Value),
}

struct Generator {
    kind: GeneratorKind,
    args: GeneratorArgs,
    secret_type: Option<String>,
}

/// A configured built-in transformer: what the kustomization field of the same concept runs, with
/// the config's field specs and options.
enum Transformer {
    /// LabelTransformer and AnnotationsTransformer: string maps set at the field specs.
    Pairs {
        pairs: BTreeMap<String, String>,
        specs: Vec<FieldSpec>,
    },
    /// PrefixTransformer, SuffixTransformer and PrefixSuffixTransformer (prefix, then suffix).
    Affixes {
        prefix: Option<String>,
        suffix: Option<String>,
        specs: Vec<FieldSpec>,
    },
    Namespace {
        namespace: String,
        specs: Vec<FieldSpec>,
        options: namespace::Options,
    },
    Patch(Patch),
    StrategicMerge(Vec<String>),
    Json6902(Patch),
    Image {
        image: Image,
        specs: Vec<FieldSpec>,
    },
    Replicas {
        replica: Replica,
        specs: Vec<FieldSpec>,
    },
    Replacements(Vec<ReplacementField>),
    Hash,
}

fn is_generator_kind(kind: &str) -> bool {
    matches!(
        kind,
        "ConfigMapGenerator" | "SecretGenerator" | "HelmChartInflationGenerator" | "IAMPolicyGenerator"
    )
}

fn is_transformer_kind(kind: &str) -> bool {
    matches!(
        kind,
        "AnnotationsTransformer"
            | "HashTransformer"
            | "ImageTagTransformer"
            | "LabelTransformer"
            | "NamespaceTransformer"
            | "PatchJson6902Transformer"
            | "PatchStrategicMergeTransformer"
            | "PatchTransformer"
            | "PrefixSuffixTransformer"
            | "PrefixTransformer"
            | "SuffixTransformer"
            | "ReplacementTransformer"
            | "ReplicaCountTransformer"
            | "ValueAddTransformer"
    )
}

/// The refusal of a built-in kind in the wrong place, or of one kgitops does not implement.
fn misplaced(context: &Context, kind: &str) -> RenderError {
    if context.field == Field::Generators && is_transformer_kind(kind) {
        context.fail(format!(
            "{kind} is a transformer, not a generator (kustomize: plugin not a generator); list it under `transformers`"
        ))
    } else if context.field != Field::Generators && is_generator_kind(kind) {
        context.fail(format!(
            "{kind} is a generator, not a transformer (kustomize: plugin not a transformer); list it under `generators`"
        ))
    } else if is_generator_kind(kind) || is_transformer_kind(kind) {
        context.fail(format!(
            "the built-in {kind} is not implemented by kgitops; use the kustomization fields or other built-ins"
        ))
    } else {
        context.fail(format!(
            "kustomize has no built-in plugin of kind {kind:?} (unable to load builtin)"
        ))
    }
}

fn generator(context: &Context, config: &Resource) -> Result<PluginGenerator, RenderError> {
    let kind = builtin_kind(context, config)?;
    let generator_kind = match kind {
        "ConfigMapGenerator" => GeneratorKind::ConfigMap,
        "SecretGenerator" => GeneratorKind::Secret,
        "HelmChartInflationGenerator" => return Ok(PluginGenerator::Helm(config.obj.clone())),
        other => return Err(misplaced(context, other)),
    };
    let c: GeneratorConfig = read(context, config)?;
    let meta = c.metadata.unwrap_or_default();
    let or_meta = |own: Option<String>, meta: Option<String>| own.filter(|s| !s.is_empty()).or(meta);
    let args = GeneratorArgs {
        namespace: or_meta(c.namespace, meta.namespace),
        name: or_meta(c.name, meta.name),
        behavior: c.behavior,
        literals: c.literals,
        files: c.files,
        envs: c.envs,
        env: c.env,
        options: c.options,
    };
    Ok(PluginGenerator::Data(Box::new(Generator {
        kind: generator_kind,
        args,
        // Only SecretGenerator has a type; a ConfigMapGenerator ignores the field.
        secret_type: c.type_.filter(|_| generator_kind == GeneratorKind::Secret),
    })))
}

fn transformer(context: &Context, config: &Resource) -> Result<Transformer, RenderError> {
    let kind = builtin_kind(context, config)?;
    let t = match kind {
        "LabelTransformer" => {
            let c: LabelConfig = read(context, config)?;
            Transformer::Pairs {
                pairs: c.labels.unwrap_or_default(),
                specs: specs(&c.field_specs),
            }
        }
        "AnnotationsTransformer" => {
            let c: AnnotationConfig = read(context, config)?;
            Transformer::Pairs {
                pairs: c.annotations.unwrap_or_default(),
                specs: specs(&c.field_specs),
            }
        }
        "PrefixTransformer" | "SuffixTransformer" | "PrefixSuffixTransformer" => {
            let c: AffixConfig = read(context, config)?;
            if c.field_specs.is_none() {
                return Err(context.fail("fieldSpecs is not expected to be nil"));
            }
            let prefix = (kind != "SuffixTransformer").then(|| c.prefix.unwrap_or_default());
            let suffix = (kind != "PrefixTransformer").then(|| c.suffix.unwrap_or_default());
            Transformer::Affixes {
                prefix,
                suffix,
                specs: specs(&c.field_specs),
            }
        }
        "NamespaceTransformer" => {
            let c: NamespaceConfig = read(context, config)?;
            let subjects =
                namespace::SubjectMode::parse(c.set_role_binding_subjects.as_deref().unwrap_or(""))
                    .map_err(|e| context.fail(e))?;
            Transformer::Namespace {
                namespace: c.metadata.and_then(|m| m.namespace).unwrap_or_default(),
                specs: specs(&c.field_specs),
                options: namespace::Options {
                    unset_only: c.unset_only.unwrap_or(false),
                    subjects,
                },
            }
        }
        "PatchTransformer" => {
            let c: PatchConfig = read(context, config)?;
            Transformer::Patch(Patch {
                path: c.path,
                patch: c.patch,
                target: c.target,
                options: c.options,
            })
        }
        "PatchStrategicMergeTransformer" => {
            let c: StrategicMergeConfig = read(context, config)?;
            let mut entries = c.paths.unwrap_or_default();
            entries.extend(c.patches.filter(|p| !p.is_empty()));
            if entries.is_empty() {
                return Err(context.fail("empty file path and empty patch content"));
            }
            Transformer::StrategicMerge(entries)
        }
        "PatchJson6902Transformer" => {
            let c: Json6902Config = read(context, config)?;
            Transformer::Json6902(Patch {
                path: c.path,
                patch: c.json_op,
                target: c.target,
                options: None,
            })
        }
        "ImageTagTransformer" => {
            let c: ImageConfig = read(context, config)?;
            Transformer::Image {
                image: c.image_tag.unwrap_or_default(),
                specs: specs(&c.field_specs),
            }
        }
        "ReplicaCountTransformer" => {
            let c: ReplicaConfig = read(context, config)?;
            Transformer::Replicas {
                replica: c.replica.unwrap_or_default(),
                specs: specs(&c.field_specs),
            }
        }
        "ReplacementTransformer" => {
            let c: ReplacementConfig = read(context, config)?;
            Transformer::Replacements(c.replacements.unwrap_or_default())
        }
        "HashTransformer" => Transformer::Hash,
        other => return Err(misplaced(context, other)),
    };
    Ok(t)
}

impl Transformer {
    /// Runs the transformer over `acc` with the same code as the kustomization field.
    fn run(&self, loader: &Loader<'_>, kf: &KustFile, acc: &mut ResMap) -> Result<(), String> {
        let text = |e: RenderError| e.to_string();
        match self {
            Transformer::Pairs { pairs, specs } => labels::apply(acc, pairs, specs),
            Transformer::Affixes {
                prefix,
                suffix,
                specs,
            } => {
                if let Some(prefix) = prefix {
                    names::apply(acc, names::Affix::Prefix, prefix, specs)?;
                }
                if let Some(suffix) = suffix {
                    names::apply(acc, names::Affix::Suffix, suffix, specs)?;
                }
                Ok(())
            }
            Transformer::Namespace {
                namespace: ns,
                specs,
                options,
            } => {
                if ns.is_empty() {
                    return Ok(());
                }
                namespace::apply_with(acc, ns, specs, *options)
            }
            Transformer::Patch(p) => patch::apply_patch(loader, kf, acc, p).map_err(text),
            Transformer::StrategicMerge(entries) => {
                patch::apply_strategic_merge(loader, kf, acc, entries).map_err(text)
            }
            Transformer::Json6902(p) => patch::apply_json6902(loader, kf, acc, p).map_err(text),
            Transformer::Image { image, specs } => images::apply(acc, image, specs),
            Transformer::Replicas { replica, specs } => replicas::apply(acc, replica, specs),
            Transformer::Replacements(fields) => {
                replacement::apply_fields(loader, kf, acc, fields).map_err(text)
            }
            Transformer::Hash => generators::add_hash_suffixes(acc, &kf.file).map_err(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml::Limits;
    use crate::render::memtree::MemTree;
    use crate::render::target::build;
    use crate::source::TreePath;

    fn render(files: &[(&str, &str)]) -> Result<Vec<Value>, String> {
        let tree = MemTree::new(files);
        build(&Loader::new(&tree, Limits::DEFAULT), &TreePath::new("").unwrap()).map_err(|e| e.to_string())
    }

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";

    #[test]
    fn inline_configs_run_before_path_entries() {
        let objs = render(&[
            (
                "kustomization.yaml",
                "resources: [cm.yaml]\ntransformers:\n- p.yaml\n- |-\n  apiVersion: builtin\n  kind: PrefixTransformer\n  \
                 metadata: {name: q}\n  prefix: inline-\n  fieldSpecs: [{path: metadata/name}]\n",
            ),
            ("cm.yaml", CM),
            (
                "p.yaml",
                "apiVersion: builtin\nkind: PrefixSuffixTransformer\nmetadata: {name: p}\nprefix: file-\nsuffix: -s\n\
                 fieldSpecs: [{path: metadata/name}]\n",
            ),
        ])
        .unwrap();
        assert_eq!(objs[0]["metadata"]["name"], "file-inline-c-s");
    }

    #[test]
    fn other_plugins_are_refused_by_kind_and_file() {
        let err = render(&[
            (
                "kustomization.yaml",
                "resources: [cm.yaml]\ntransformers: [fn.yaml]\n",
            ),
            ("cm.yaml", CM),
            (
                "fn.yaml",
                "apiVersion: example.com/v1\nkind: SetLabels\nmetadata:\n  name: x\n  annotations:\n    \
                 config.kubernetes.io/function: |\n      container: {image: x}\n",
            ),
        ])
        .unwrap_err();
        assert!(
            err.starts_with("kustomization.yaml: transformers entry SetLabels \"x\" (fn.yaml)"),
            "{err}"
        );
        assert!(err.contains("KRM-function plugin"), "{err}");
        let err = render(&[
            (
                "kustomization.yaml",
                "resources: [cm.yaml]\ngenerators: [g.yaml]\n",
            ),
            ("cm.yaml", CM),
            (
                "g.yaml",
                "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: l}\n",
            ),
        ])
        .unwrap_err();
        assert!(err.contains("is a transformer, not a generator"), "{err}");
    }

    #[test]
    fn validators_must_not_change_objects() {
        let with = |validator: &str| {
            let text =
                format!("apiVersion: builtin\nkind: LabelTransformer\nmetadata: {{name: v}}\n{validator}");
            render(&[
                (
                    "kustomization.yaml",
                    "resources: [cm.yaml]\nvalidators: [v.yaml]\n",
                ),
                ("cm.yaml", CM),
                ("v.yaml", &text),
            ])
        };
        assert!(with("labels: {}\n").is_ok());
        let err = with("labels: {a: b}\nfieldSpecs: [{path: metadata/labels, create: true}]\n").unwrap_err();
        assert!(
            err.contains("validator shouldn't modify the resource map"),
            "{err}"
        );
    }

    #[test]
    fn configs_are_typed_like_kustomize() {
        // A number where a string is expected is its text; unknown fields are ignored.
        let objs = render(&[
            ("kustomization.yaml", "resources: [cm.yaml]\ntransformers: [l.yaml]\n"),
            ("cm.yaml", CM),
            (
                "l.yaml",
                "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: l}\nlabels: {a: 1}\nunknown: ignored\n\
                 fieldSpecs: [{path: metadata/labels, create: true}]\n",
            ),
        ])
        .unwrap();
        assert_eq!(objs[0]["metadata"]["labels"]["a"], "1");
        // A quoted number where a number is expected is refused.
        let err = render(&[
            ("kustomization.yaml", "resources: [cm.yaml]\ntransformers: [r.yaml]\n"),
            ("cm.yaml", CM),
            (
                "r.yaml",
                "apiVersion: builtin\nkind: ReplicaCountTransformer\nmetadata: {name: r}\nreplica: {name: c, count: \"2\"}\n",
            ),
        ])
        .unwrap_err();
        assert!(err.contains("invalid config"), "{err}");
        assert!(is_builtin_api_version("builtin"));
        assert!(is_builtin_api_version("/builtin"));
        assert!(!is_builtin_api_version("builtin/v1"));
    }
}
