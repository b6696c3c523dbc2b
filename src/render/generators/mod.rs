//! `configMapGenerator` and `secretGenerator`: objects made from literals, files and env files
//! ([`sources`]), combined with objects already accumulated per `behavior` (create, merge,
//! replace), and the content-hash name suffix ([`hash`]) added once all transformers have run.

pub mod hash;
pub mod sources;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::error::RenderError;
use super::kustomization::{GeneratorArgs, GeneratorOptions};
use super::load::{KustFile, Loader};
use super::resource::{Behavior, ResMap, Resource};
use super::target::duplicate_error;
use crate::source::TreePath;

/// kustomize's `encodeBase64`: standard base64, broken into lines of 70 characters each ending
/// in a newline when it is longer than one line (a quirk that is part of the hashed content).
pub fn encode_base64(data: &[u8]) -> String {
    const LINE: usize = 70;
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    if encoded.len() < LINE {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / LINE + 1);
    for chunk in encoded.as_bytes().chunks(LINE) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// What a generator makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ConfigMap,
    Secret,
}

impl Kind {
    fn field(self) -> &'static str {
        match self {
            Kind::ConfigMap => "configMapGenerator",
            Kind::Secret => "secretGenerator",
        }
    }
}

/// Builds one generated object (kustomize's `MakeConfigMap` / `MakeSecret`); `global` is the
/// kustomization's `generatorOptions` (none for a built-in generator config).
fn make(
    loader: &Loader<'_>,
    kf: &KustFile,
    kind: Kind,
    args: &GeneratorArgs,
    secret_type: Option<&str>,
    global: Option<&GeneratorOptions>,
) -> Result<Resource, RenderError> {
    let name = args.name.clone().unwrap_or_default();
    let error = |message: String| RenderError::Generator {
        file: kf.file.clone(),
        generator: kind.field(),
        name: name.clone(),
        message,
    };
    if name.is_empty() {
        return Err(error("a configmap must have a name".to_string()));
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), Value::String(name.clone()));
    if let Some(ns) = args.namespace.as_deref().filter(|ns| !ns.is_empty()) {
        metadata.insert("namespace".into(), Value::String(ns.to_string()));
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!("v1"));
    obj.insert("metadata".into(), Value::Object(metadata));

    let pairs = sources::load(loader, kf, args, kind == Kind::Secret)?;
    let mut data = Map::new();
    let mut binary = Map::new();
    for pair in pairs {
        if data.contains_key(&pair.key) || binary.contains_key(&pair.key) {
            return Err(error(format!(
                "configmap {name} illegally repeats the key `{}`",
                pair.key
            )));
        }
        match kind {
            Kind::Secret => {
                data.insert(pair.key, Value::String(encode_base64(&pair.value)));
            }
            Kind::ConfigMap => match String::from_utf8(pair.value) {
                Ok(text) => {
                    data.insert(pair.key, Value::String(text));
                }
                Err(e) => {
                    binary.insert(pair.key, Value::String(encode_base64(e.as_bytes())));
                }
            },
        }
    }
    match kind {
        Kind::ConfigMap => {
            obj.insert("kind".into(), json!("ConfigMap"));
            if !data.is_empty() {
                obj.insert("data".into(), Value::Object(data));
            }
            if !binary.is_empty() {
                obj.insert("binaryData".into(), Value::Object(binary));
            }
        }
        Kind::Secret => {
            obj.insert("kind".into(), json!("Secret"));
            let t = secret_type.filter(|t| !t.is_empty()).unwrap_or("Opaque");
            obj.insert("type".into(), Value::String(t.to_string()));
            obj.insert("data".into(), Value::Object(data));
        }
    }
    let options = GeneratorOptions::merged_with_global(args.options.as_ref(), global);
    let mut res = Resource::new(Value::Object(obj), kf.file.clone());
    let labels: Vec<(String, String)> = options.labels.clone().unwrap_or_default().into_iter().collect();
    let annotations: Vec<(String, String)> = options
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    res.set_string_map("labels", labels);
    res.set_string_map("annotations", annotations);
    if options.immutable == Some(true)
        && let Value::Object(o) = &mut res.obj
    {
        o.insert("immutable".into(), Value::Bool(true));
    }
    res.needs_hash = options.disable_name_suffix_hash != Some(true);
    res.behavior = Behavior::parse(args.behavior.as_deref().unwrap_or(""));
    Ok(res)
}

/// Merges two string maps of an object's field, `newer` winning (kustomize's `mergeStringMaps`).
fn merged(older: Vec<(String, String)>, newer: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut map: std::collections::BTreeMap<String, String> = older.into_iter().collect();
    map.extend(newer);
    map.into_iter().collect()
}

/// kustomize's `CopyMergeMetaDataFieldsFrom`: labels and annotations merged, name, namespace and
/// the tracked build state taken from the object being replaced.
fn copy_merge_metadata(new: &mut Resource, old: &Resource) {
    new.set_string_map(
        "labels",
        merged(old.string_map("labels"), new.string_map("labels")),
    );
    new.set_string_map(
        "annotations",
        merged(old.string_map("annotations"), new.string_map("annotations")),
    );
    new.set_name(old.name());
    new.set_namespace(old.namespace());
    new.prev = old.prev.clone();
    new.prefixes = old.prefixes.clone();
    new.suffixes = old.suffixes.clone();
    new.needs_hash = new.needs_hash && old.needs_hash;
    new.behavior = old.behavior;
    new.ref_vars = old.ref_vars.clone();
}

/// Sets `field` (`data` or `binaryData`) to the merge of the old and new maps, as kustomize's
/// `MergeDataMapFrom`; an empty result removes the field.
fn merge_data(new: &mut Resource, old: &Resource, field: &str) {
    let get = |r: &Resource| -> Vec<(String, String)> {
        match r.obj.get(field) {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| (k.clone(), super::resource::scalar_text(v)))
                .collect(),
            _ => Vec::new(),
        }
    };
    let entries = merged(get(old), get(new));
    if let Value::Object(o) = &mut new.obj {
        o.remove(field);
        if !entries.is_empty() {
            let map = entries.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            o.insert(field.to_string(), Value::Object(map));
        }
    }
}

/// kustomize's `appendReplaceOrMerge`: adds a generated object, or merges it into / replaces the
/// one it names.
fn absorb(
    acc: &mut ResMap,
    mut res: Resource,
    error: impl Fn(String) -> RenderError,
) -> Result<(), RenderError> {
    let id = res.cur_id();
    let matches = acc.positions_by_any_id(&id);
    match matches.as_slice() {
        [] => match res.behavior {
            Behavior::Merge | Behavior::Replace => Err(error(format!(
                "behavior {} needs an existing {} named {:?} in namespace {:?}, and there is none",
                if res.behavior == Behavior::Merge {
                    "merge"
                } else {
                    "replace"
                },
                id.kind,
                id.name,
                id.namespace
            ))),
            _ => acc.append(res).map_err(duplicate_error),
        },
        [at] => {
            let old = &acc.resources()[*at];
            match res.behavior {
                Behavior::Replace => copy_merge_metadata(&mut res, old),
                Behavior::Merge => {
                    copy_merge_metadata(&mut res, old);
                    merge_data(&mut res, old, "data");
                    merge_data(&mut res, old, "binaryData");
                }
                _ => {
                    return Err(error(format!(
                        "{} {} already exists; behavior must be merge or replace",
                        id.kind, id.name
                    )));
                }
            }
            acc.replace(*at, res);
            Ok(())
        }
        _ => Err(error(format!(
            "found {} objects that could accept the merge of {}/{}",
            matches.len(),
            id.kind,
            id.name
        ))),
    }
}

/// Runs a kustomization's generators (ConfigMaps, then Secrets), absorbing their objects into
/// `acc`.
pub fn run(loader: &Loader<'_>, kf: &KustFile, acc: &mut ResMap) -> Result<(), RenderError> {
    let configmaps = kf
        .kust
        .config_map_generator
        .iter()
        .flatten()
        .map(|a| (Kind::ConfigMap, a.clone(), None));
    let secrets = kf
        .kust
        .secret_generator
        .iter()
        .flatten()
        .map(|s| (Kind::Secret, s.generator_args(), s.type_.clone()));
    let global = kf.kust.generator_options.as_ref();
    for (kind, args, secret_type) in configmaps.chain(secrets) {
        generate(loader, kf, kind, &args, secret_type.as_deref(), global, acc)?;
    }
    Ok(())
}

/// Runs one generator: builds its object from `args` (with the `global` options merged in, as
/// the kustomization's fields have them) and absorbs it into `acc` per its `behavior`. The
/// kustomization fields and the built-in ConfigMapGenerator/SecretGenerator configs both run here.
pub fn generate(
    loader: &Loader<'_>,
    kf: &KustFile,
    kind: Kind,
    args: &GeneratorArgs,
    secret_type: Option<&str>,
    global: Option<&GeneratorOptions>,
    acc: &mut ResMap,
) -> Result<(), RenderError> {
    let res = make(loader, kf, kind, args, secret_type, global)?;
    let name = args.name.clone().unwrap_or_default();
    absorb(acc, res, |message| RenderError::Generator {
        file: kf.file.clone(),
        generator: kind.field(),
        name: name.clone(),
        message,
    })
}

/// Appends the content hash to the names of generated objects that want it (kustomize's
/// HashTransformer, run once at the top after every transformer).
pub fn add_hash_suffixes(acc: &mut ResMap, _file: &TreePath) -> Result<(), RenderError> {
    for r in acc.resources_mut() {
        if r.needs_hash {
            let suffix = hash::hash(&r.obj);
            r.store_previous_id();
            let name = format!("{}-{suffix}", r.name());
            r.set_name(&name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_base64_is_broken_into_lines() {
        assert_eq!(encode_base64(b"<&>"), "PCY+");
        let long = encode_base64(&[b'x'; 101]);
        let lines: Vec<&str> = long.split_terminator('\n').collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), 70);
        assert!(long.ends_with('\n'));
        // 72 characters: a full line of 70 and a short one, each with its newline.
        assert_eq!(encode_base64(&[b'x'; 54]).len(), 74);
        assert_eq!(encode_base64(&[b'x'; 51]).len(), 68);
    }
}
