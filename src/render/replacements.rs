//! Kustomize `replacements`: copy a field of one object into fields of others, with the semantics
//! of kustomize v5.8.1 (`api/filters/replacement`), checked against it:
//!
//! - the source is selected by exact group/version/kind/name/namespace (no regexes; `""` and
//!   `default` are the same namespace; an object's previous names count, as recorded in
//!   kustomize's `internal.config.kubernetes.io/previous*` annotations) and must select exactly one
//!   object; its `fieldPath` (default `metadata.name`) must exist and not be null or empty; or,
//!   instead of a source, `sourceValue` is a static text (v5.6);
//! - targets are selected by group/version/kind/name/namespace as anchored regexes (v5.7),
//!   matched against any of an object's ids as written (no namespace is `""`, not `default`),
//!   plus label/annotation selectors, minus `reject`s (regexes too);
//! - field paths are dotted (`spec.template.spec.containers`), `\.` escapes a dot in a key,
//!   `[name=value]` selects list elements (in targets `value` is an unanchored regex, in the source
//!   an exact value), `[=value]` a scalar element, `0` an index, `-` (source only) the last
//!   element, `*` (targets only) every element;
//! - `options.delimiter`/`index` pick one part of the source value, or replace (negative index:
//!   prepend; past the end: append) one part of the target value;
//! - `options.create` creates missing target fields; a missing target field is otherwise an error;
//! - a scalar target keeps its type (`replicas: 1` <- `"5"` gives `5`; a string stays a string; a
//!   value that does not fit the type is an error, as kustomize fails to print it); a created
//!   scalar takes the type its text reads as in YAML; maps and lists are replaced by the source;
//! - a target path that goes on below a scalar replaces inside the JSON document held by that
//!   scalar (v5.8, [`set_in_structured_data`]); YAML documents there are refused.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::manifest::ResId;
use crate::manifest::yaml::Limits;
use crate::render::resource::split_api_version;
use crate::render::selector::{LabelSelector, Selector, SelectorError, anchored, null_as_empty, string_map};

/// A `replacements` entry of a kustomization: inline, or `path:` to a file holding one
/// replacement or a list of them (the caller loads it and passes it to [`parse_file`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ReplacementField {
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<TargetSelector>>,
    /// A static value instead of a `source` (kustomize v5.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_value: Option<String>,
}

impl ReplacementField {
    /// The inline replacement, or `None` when the entry names a file (`path`).
    pub fn inline(&self) -> Result<Option<Replacement>, ReplacementError> {
        let has_inline = self.source.is_some() || self.targets.as_ref().is_some_and(|t| !t.is_empty());
        if !self.path.is_empty() && has_inline {
            return Err(ReplacementError::PathAndInline);
        }
        if !self.path.is_empty() {
            return Ok(None);
        }
        Ok(Some(Replacement {
            source: self.source.clone(),
            targets: self.targets.clone(),
            source_value: self.source_value.clone(),
        }))
    }
}

/// One replacement: a source field and where to copy it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Replacement {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<TargetSelector>>,
    /// A static value instead of a `source` (kustomize v5.6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_value: Option<String>,
}

/// The object and field a replacement copies from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SourceSelector {
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Defaults to `metadata.name`.
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub field_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<FieldOptions>,
}

/// Objects and fields a replacement copies to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TargetSelector {
    /// Required: which objects (group/version/kind/name/namespace exact, label/annotation
    /// selectors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select: Option<Selector>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reject: Vec<Selector>,
    /// Defaults to `[metadata.name]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub field_paths: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<FieldOptions>,
}

/// `options` of a source or target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FieldOptions {
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub delimiter: String,
    pub index: i64,
    /// Accepted, unused (as in kustomize v5).
    #[serde(deserialize_with = "null_as_empty", skip_serializing_if = "String::is_empty")]
    pub encoding: String,
    pub create: bool,
}

/// Why replacements failed. Messages name the replacement (by position), the object and the field
/// path; the caller prefixes the kustomization file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplacementError {
    #[error("replacements: cannot specify both path and inline replacement")]
    PathAndInline,
    #[error("replacements file: expected a replacement or a list of replacements, found {found}")]
    BadFile { found: &'static str },
    #[error("replacements file: {message}")]
    BadFileEntry { message: String },
    #[error("replacements[{index}]: must specify a source and at least one target")]
    Incomplete { index: usize },
    #[error(
        "replacements[{index}]: value and resource selectors are mutually exclusive (sourceValue and source)"
    )]
    ValueAndSource { index: usize },
    #[error("replacements[{index}].targets[{target}]: must specify resources to select (`select`)")]
    NoSelect { index: usize, target: usize },
    #[error("replacements[{index}]: {selector}")]
    Selector { index: usize, selector: SelectorError },
    #[error("replacements[{index}]: source ({source_selector}) selects nothing")]
    NoSource { index: usize, source_selector: String },
    #[error(
        "replacements[{index}]: source ({source_selector}) selects more than one object: {first} and {second}"
    )]
    AmbiguousSource {
        index: usize,
        source_selector: String,
        first: String,
        second: String,
    },
    #[error("replacements[{index}]: source {object}: fieldPath `{field_path}` is missing")]
    MissingSourceField {
        index: usize,
        object: String,
        field_path: String,
    },
    #[error("replacements[{index}]: source {object}: fieldPath `{field_path}`: {message}")]
    SourceField {
        index: usize,
        object: String,
        field_path: String,
        message: String,
    },
    #[error("replacements[{index}]: target {object}: fieldPath `{field_path}`: {message}")]
    TargetField {
        index: usize,
        object: String,
        field_path: String,
        message: String,
    },
    #[error("replacements[{index}]: {object}: {message}")]
    PreviousIds {
        index: usize,
        object: String,
        message: String,
    },
}

/// Reads a replacements file (already parsed): one replacement or a list. Like kustomize, fields
/// it does not know are ignored in files (they are errors inline in a kustomization).
pub fn parse_file(doc: &Value) -> Result<Vec<Replacement>, ReplacementError> {
    let entries = match doc {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![doc],
        Value::Null => vec![],
        Value::Bool(_) => return Err(ReplacementError::BadFile { found: "a boolean" }),
        Value::Number(_) => return Err(ReplacementError::BadFile { found: "a number" }),
        Value::String(_) => return Err(ReplacementError::BadFile { found: "a string" }),
    };
    entries
        .into_iter()
        .map(|entry| {
            serde_json::from_value(known_fields(entry, REPLACEMENT_FIELDS)).map_err(|e| {
                ReplacementError::BadFileEntry {
                    message: e.to_string(),
                }
            })
        })
        .collect()
}

/// Field names per level, for the lenient file reading.
struct Fields(&'static [(&'static str, Option<&'static Fields>)]);

const SELECTOR_FIELDS: &Fields = &Fields(&[
    ("group", None),
    ("version", None),
    ("kind", None),
    ("name", None),
    ("namespace", None),
    ("labelSelector", None),
    ("annotationSelector", None),
]);
const OPTION_FIELDS: &Fields = &Fields(&[
    ("delimiter", None),
    ("index", None),
    ("encoding", None),
    ("create", None),
]);
const SOURCE_FIELDS: &Fields = &Fields(&[
    ("group", None),
    ("version", None),
    ("kind", None),
    ("name", None),
    ("namespace", None),
    ("fieldPath", None),
    ("options", Some(OPTION_FIELDS)),
]);
const TARGET_FIELDS: &Fields = &Fields(&[
    ("select", Some(SELECTOR_FIELDS)),
    ("reject", Some(SELECTOR_FIELDS)),
    ("fieldPaths", None),
    ("options", Some(OPTION_FIELDS)),
]);
const REPLACEMENT_FIELDS: &Fields = &Fields(&[
    ("source", Some(SOURCE_FIELDS)),
    ("targets", Some(TARGET_FIELDS)),
    ("sourceValue", None),
]);

/// `value` without the map keys `fields` does not list (recursively; lists apply to elements).
fn known_fields(value: &Value, fields: &Fields) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| {
                    let (_, sub) = fields.0.iter().find(|(name, _)| name == k)?;
                    Some((
                        k.clone(),
                        sub.map_or_else(|| v.clone(), |sub| known_fields(v, sub)),
                    ))
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| known_fields(v, fields)).collect()),
        other => other.clone(),
    }
}

/// Applies `replacements` in order to `objects`; all or nothing.
pub fn apply(objects: &mut [Value], replacements: &[Replacement]) -> Result<(), ReplacementError> {
    let mut work = objects.to_vec();
    for (index, replacement) in replacements.iter().enumerate() {
        apply_one(&mut work, index, replacement)?;
    }
    for (object, done) in objects.iter_mut().zip(work) {
        *object = done;
    }
    Ok(())
}

/// Annotations in which kustomize records an object's earlier names (namePrefix, ...).
pub const PREVIOUS_NAMES: &str = "internal.config.kubernetes.io/previousNames";
/// See [`PREVIOUS_NAMES`].
pub const PREVIOUS_NAMESPACES: &str = "internal.config.kubernetes.io/previousNamespaces";
/// See [`PREVIOUS_NAMES`].
pub const PREVIOUS_KINDS: &str = "internal.config.kubernetes.io/previousKinds";

/// One identity of an object, as kyaml `resid.ResId` (group split from apiVersion).
struct Id {
    group: String,
    version: String,
    kind: String,
    name: String,
    namespace: String,
}

fn text_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    path.iter().fold(obj, |v, k| &v[*k]).as_str().unwrap_or("")
}

/// kustomize `MakeResIds`: the current identity and the previous ones from build annotations.
fn res_ids(obj: &Value) -> Result<Vec<Id>, String> {
    let (group, version) = split_api_version(text_at(obj, &["apiVersion"]));
    let mut ids = vec![Id {
        group: group.into(),
        version: version.into(),
        kind: text_at(obj, &["kind"]).into(),
        name: text_at(obj, &["metadata", "name"]).into(),
        namespace: text_at(obj, &["metadata", "namespace"]).into(),
    }];
    let annotations = &obj["metadata"]["annotations"];
    let Some(names) = annotations[PREVIOUS_NAMES].as_str() else {
        return Ok(ids);
    };
    let names: Vec<&str> = names.split(',').collect();
    let namespaces: Vec<&str> = annotations[PREVIOUS_NAMESPACES]
        .as_str()
        .unwrap_or("")
        .split(',')
        .collect();
    let kinds: Vec<&str> = annotations[PREVIOUS_KINDS]
        .as_str()
        .unwrap_or("")
        .split(',')
        .collect();
    if names.len() != namespaces.len() || names.len() != kinds.len() {
        return Err(
            "number of previous names, number of previous namespaces, number of previous kinds not equal"
                .into(),
        );
    }
    for ((name, namespace), kind) in names.iter().zip(&namespaces).zip(&kinds) {
        ids.push(Id {
            group: group.into(),
            version: version.into(),
            kind: (*kind).into(),
            name: (*name).into(),
            namespace: (*namespace).into(),
        });
    }
    Ok(ids)
}

/// `""` and `default` are the same namespace for replacements (kyaml `IsNsEquals` without schema).
fn same_namespace(a: &str, b: &str) -> bool {
    let effective = |ns: &str| {
        if ns.is_empty() {
            "default".to_string()
        } else {
            ns.to_string()
        }
    };
    effective(a) == effective(b)
}

/// kustomize's `SelectorRegex` for replacement targets (v5.7): group, version, kind, name and
/// namespace are anchored regexes, matched against an id's fields as they are (the namespace of
/// an object without one is `""`, not `default`).
struct IdRegex {
    group: Option<regex::Regex>,
    version: Option<regex::Regex>,
    kind: Option<regex::Regex>,
    name: Option<regex::Regex>,
    namespace: Option<regex::Regex>,
}

impl IdRegex {
    fn new(s: &Selector) -> Result<IdRegex, SelectorError> {
        Ok(IdRegex {
            group: anchored("group", &s.group)?,
            version: anchored("version", &s.version)?,
            kind: anchored("kind", &s.kind)?,
            name: anchored("name", &s.name)?,
            namespace: anchored("namespace", &s.namespace)?,
        })
    }

    fn selects(&self, id: &Id) -> bool {
        let ok = |re: &Option<regex::Regex>, text: &str| re.as_ref().is_none_or(|re| re.is_match(text));
        ok(&self.group, &id.group)
            && ok(&self.version, &id.version)
            && ok(&self.kind, &id.kind)
            && ok(&self.name, &id.name)
            && ok(&self.namespace, &id.namespace)
    }
}

/// kyaml `ResId.IsSelectedBy`: every set field equal.
fn is_selected_by(id: &Id, group: &str, version: &str, kind: &str, name: &str, namespace: &str) -> bool {
    (name.is_empty() || name == id.name)
        && (namespace.is_empty() || same_namespace(namespace, &id.namespace))
        && (group.is_empty() || group == id.group)
        && (version.is_empty() || version == id.version)
        && (kind.is_empty() || kind == id.kind)
}

fn has_res_id(s: &Selector) -> bool {
    [&s.group, &s.version, &s.kind, &s.name, &s.namespace]
        .iter()
        .any(|f| !f.is_empty())
}

fn describe_object(obj: &Value) -> String {
    ResId::of(obj)
        .map(|id| id.to_string())
        .unwrap_or_else(|_| "object without identity".into())
}

fn describe_source(s: &SourceSelector) -> String {
    let selector = Selector {
        group: s.group.clone(),
        version: s.version.clone(),
        kind: s.kind.clone(),
        name: s.name.clone(),
        namespace: s.namespace.clone(),
        ..Selector::default()
    };
    selector.to_string()
}

/// The value a replacement copies: the node, and its text (`yaml.Node.Value`).
struct SourceValue {
    node: Value,
    text: String,
    /// A `sourceValue`: an untagged scalar where it replaces a node.
    static_value: bool,
    /// Read from a Secret: errors never show it.
    secret: bool,
}

/// What an error says instead of a value read from or written into a Secret.
const SECRET_VALUE_HIDDEN: &str = "the value does not fit (values of a Secret are never shown)";

fn apply_one(objects: &mut [Value], index: usize, replacement: &Replacement) -> Result<(), ReplacementError> {
    let Some(targets) = &replacement.targets else {
        return Err(ReplacementError::Incomplete { index });
    };
    let value = match (&replacement.source, &replacement.source_value) {
        (None, None) => return Err(ReplacementError::Incomplete { index }),
        (Some(_), Some(_)) => return Err(ReplacementError::ValueAndSource { index }),
        (Some(source), None) => source_value(objects, index, source)?,
        // A scalar node without a tag: it reads as its text reads in YAML where it replaces a
        // map or list or is created.
        (None, Some(text)) => SourceValue {
            node: resolve_plain(text).unwrap_or_else(|_| Value::String(text.clone())),
            text: text.clone(),
            static_value: true,
            secret: false,
        },
    };
    for (t, target) in targets.iter().enumerate() {
        let Some(select) = &target.select else {
            return Err(ReplacementError::NoSelect { index, target: t });
        };
        let selector_error = |selector| ReplacementError::Selector { index, selector };
        let compile = |s: &Selector| -> Result<(LabelSelector, LabelSelector), ReplacementError> {
            let parse = |field: &'static str, text: &str| {
                LabelSelector::parse(text).map_err(|message| {
                    selector_error(SelectorError::InvalidLabelSelector {
                        field,
                        selector: text.to_string(),
                        message,
                    })
                })
            };
            Ok((
                parse("labelSelector", &s.label_selector)?,
                parse("annotationSelector", &s.annotation_selector)?,
            ))
        };
        let select_labels = compile(select)?;
        let reject_labels = target
            .reject
            .iter()
            .filter(|r| !r.label_selector.is_empty() || !r.annotation_selector.is_empty())
            .map(compile)
            .collect::<Result<Vec<_>, _>>()?;
        let select_ids = IdRegex::new(select).map_err(selector_error)?;
        let reject_ids = target
            .reject
            .iter()
            .filter(|r| has_res_id(r))
            .map(IdRegex::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(selector_error)?;
        let default_paths = ["metadata.name".to_string()];
        let field_paths = if target.field_paths.is_empty() {
            &default_paths[..]
        } else {
            &target.field_paths[..]
        };
        for obj in objects.iter_mut() {
            let ids = res_ids(obj).map_err(|message| ReplacementError::PreviousIds {
                index,
                object: describe_object(obj),
                message,
            })?;
            let labels = string_map(&obj["metadata"]["labels"]);
            let annotations = string_map(&obj["metadata"]["annotations"]);
            let by_labels =
                |(l, a): &(LabelSelector, LabelSelector)| l.matches(&labels) && a.matches(&annotations);
            if !by_labels(&select_labels) || reject_labels.iter().any(by_labels) {
                continue;
            }
            let rejected = reject_ids.iter().any(|r| ids.iter().any(|id| r.selects(id)));
            if rejected || !ids.iter().any(|id| select_ids.selects(id)) {
                continue;
            }
            for field_path in field_paths {
                copy_to_target(obj, &value, target.options.as_ref(), field_path).map_err(|message| {
                    ReplacementError::TargetField {
                        index,
                        object: describe_object(obj),
                        field_path: field_path.clone(),
                        message,
                    }
                })?;
            }
        }
    }
    Ok(())
}

fn source_value(
    objects: &[Value],
    index: usize,
    source: &SourceSelector,
) -> Result<SourceValue, ReplacementError> {
    let mut found: Option<&Value> = None;
    for obj in objects {
        let ids = res_ids(obj).map_err(|message| ReplacementError::PreviousIds {
            index,
            object: describe_object(obj),
            message,
        })?;
        let selected = ids.iter().any(|id| {
            is_selected_by(
                id,
                &source.group,
                &source.version,
                &source.kind,
                &source.name,
                &source.namespace,
            )
        });
        if !selected {
            continue;
        }
        if let Some(first) = found {
            return Err(ReplacementError::AmbiguousSource {
                index,
                source_selector: describe_source(source),
                first: describe_object(first),
                second: describe_object(obj),
            });
        }
        found = Some(obj);
    }
    let Some(obj) = found else {
        return Err(ReplacementError::NoSource {
            index,
            source_selector: describe_source(source),
        });
    };
    let field_path = if source.field_path.is_empty() {
        "metadata.name"
    } else {
        &source.field_path
    };
    let source_error = |message: String| ReplacementError::SourceField {
        index,
        object: describe_object(obj),
        field_path: field_path.to_string(),
        message,
    };
    let node = lookup(obj, &split_path(field_path)).map_err(source_error)?;
    let node = match node {
        Some(v) if !nil_or_empty(v) => v,
        _ => {
            return Err(ReplacementError::MissingSourceField {
                index,
                object: describe_object(obj),
                field_path: field_path.to_string(),
            });
        }
    };
    let text = node_text(node);
    let secret = crate::manifest::is_secret(obj);
    let Some(options) = source.options.as_ref().filter(|o| !o.delimiter.is_empty()) else {
        return Ok(SourceValue {
            node: node.clone(),
            text,
            static_value: false,
            secret,
        });
    };
    if !is_scalar(node) {
        return Err(source_error(
            "delimiter option can only be used with scalar nodes".into(),
        ));
    }
    let parts: Vec<&str> = text.split(options.delimiter.as_str()).collect();
    let part = usize::try_from(options.index)
        .ok()
        .and_then(|i| parts.get(i))
        .ok_or_else(|| {
            source_error(if secret {
                format!("options.index {} is out of bounds for the value", options.index)
            } else {
                format!(
                    "options.index {} is out of bounds for value {text}",
                    options.index
                )
            })
        })?;
    let node = typed_like(node, part).map_err(|e| {
        source_error(if secret {
            SECRET_VALUE_HIDDEN.to_string()
        } else {
            e
        })
    })?;
    Ok(SourceValue {
        node,
        text: part.to_string(),
        static_value: false,
        secret,
    })
}

/// kyaml `IsNilOrEmpty`: null, `{}` or `[]`.
fn nil_or_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

/// The node's text as kyaml sees it (`yaml.Node.Value`): `""` for maps and lists.
fn node_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Object(_) | Value::Array(_) => String::new(),
        other => other.to_string(),
    }
}

/// kustomize `SmarterPathSplitter(path, ".")`: dots split, `\.` escapes, `[a.b=c.d]` stays whole.
pub(crate) fn split_path(path: &str) -> Vec<String> {
    let mut parts: Vec<&str> = path.split('.').collect();
    if parts.len() > 1 && parts[0].is_empty() {
        parts.remove(0);
    }
    let mut split: Vec<String> = Vec::new();
    for part in parts {
        match split.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('.');
                last.push_str(part);
            }
            _ => split.push(part.to_string()),
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < split.len() {
        let elem = &split[i];
        if elem.starts_with('[') && !elem.ends_with(']') {
            let mut bracketed = vec![elem.clone()];
            while i < split.len() - 1 {
                i += 1;
                bracketed.push(split[i].clone());
                if split[i].ends_with(']') {
                    break;
                }
            }
            let joined = bracketed.join(".");
            if joined.contains('=') {
                out.push(joined);
            } else {
                out.push(joined.trim_matches(|c| c == '[' || c == ']').to_string());
            }
        } else {
            out.push(elem.clone());
        }
        i += 1;
    }
    out
}

/// Go `strconv.Atoi`.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

fn is_list_index(part: &str) -> bool {
    part.starts_with('[') && part.ends_with(']')
}

/// `[name=value]` -> (`name`, `value`); `[=value]` -> (``, `value`).
fn split_index_name_value(part: &str) -> Result<(&str, &str), String> {
    let inner = part.strip_suffix(']').unwrap_or(part);
    let inner = inner.strip_prefix('[').unwrap_or(inner);
    inner
        .split_once('=')
        .ok_or_else(|| "list path element must contain fieldName=fieldValue for element to match".to_string())
}

fn kind_noun(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "a map",
        Value::Array(_) => "a list",
        _ => "a scalar",
    }
}

/// kyaml `PathGetter` (the source lookup): `Ok(None)` when something on the way is missing.
pub(crate) fn lookup<'a>(obj: &'a Value, path: &[String]) -> Result<Option<&'a Value>, String> {
    Ok(lookup_steps(obj, path)?.map(|(v, _)| v))
}

/// [`lookup`], with the steps from `obj` to the field found.
fn lookup_steps<'a>(obj: &'a Value, path: &[String]) -> Result<Option<(&'a Value, Vec<Step>)>, String> {
    let mut current = obj;
    let mut steps = Vec::new();
    for part in path.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let next = if let Some(idx) = go_atoi(part) {
            if idx < 0 {
                return Err(format!("array index {idx} cannot be negative"));
            }
            let Value::Array(items) = current else {
                return Err(format!("`{part}` indexes {}, not a list", kind_noun(current)));
            };
            usize::try_from(idx)
                .ok()
                .and_then(|i| items.get(i).map(|v| (Step::Index(i), v)))
        } else if part == "-" {
            let Value::Array(items) = current else {
                return Err(format!("`-` indexes {}, not a list", kind_noun(current)));
            };
            items.last().map(|v| (Step::Index(items.len() - 1), v))
        } else if part == "*" {
            return Err("wildcard is not supported in a source fieldPath".into());
        } else if is_list_index(part) {
            let (name, value) = split_index_name_value(part)?;
            let Value::Array(items) = current else {
                return Err(format!("`{part}` selects in {}, not a list", kind_noun(current)));
            };
            let found = if name.is_empty() {
                items
                    .iter()
                    .position(|item| is_scalar(item) && node_text(item) == value)
            } else {
                items.iter().position(|item| {
                    item.get(name)
                        .is_some_and(|v| is_scalar(v) && node_text(v) == value)
                })
            };
            found.map(|i| (Step::Index(i), &items[i]))
        } else {
            match current {
                Value::Object(map) => map.get(part).map(|v| (Step::Key(part.to_string()), v)),
                Value::Null => None,
                other => return Err(format!("`{part}` is a field of {}, not a map", kind_noun(other))),
            }
        };
        match next {
            Some((step, v)) => {
                steps.push(step);
                current = v;
            }
            None => return Ok(None),
        }
    }
    Ok(Some((current, steps)))
}

/// A step from a node to a child.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// What `options.create` creates at the end of a path: a node of the source's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Create {
    Scalar,
    Map,
    List,
}

/// A matched target field; `created` marks a scalar created empty (it takes its value's YAML type).
struct Match {
    steps: Vec<Step>,
    created: bool,
}

/// kyaml `PathMatcher` with `Create`: every field `path` selects below `node`, creating what is
/// missing when `create` is set.
struct Matcher {
    create: Option<Create>,
    matches: Vec<Match>,
    created_scalars: Vec<Vec<Step>>,
}

fn empty_node(kind: Create) -> Value {
    match kind {
        Create::Scalar => Value::Null,
        Create::Map => Value::Object(Map::new()),
        Create::List => Value::Array(Vec::new()),
    }
}

impl Matcher {
    /// kyaml `getPathPartKind`: what to create for a part, given the part after it.
    fn kind_for(&self, next: Option<&String>, create: Create) -> Create {
        match next {
            Some(n) if is_list_index(n) || go_atoi(n).is_some_and(|i| i >= 0) => Create::List,
            Some(_) => Create::Map,
            None => create,
        }
    }

    fn filter(&mut self, node: &mut Value, path: &[String], at: &mut Vec<Step>) -> Result<(), String> {
        let Some(part) = path.first() else {
            let created = self.created_scalars.contains(at);
            self.matches.push(Match {
                steps: at.clone(),
                created,
            });
            return Ok(());
        };
        if let Some(idx) = go_atoi(part).filter(|i| *i >= 0) {
            return self.index(node, path, usize::try_from(idx).unwrap_or(usize::MAX), at);
        }
        if is_list_index(part) {
            return self.select_elements(node, path, at, false);
        }
        if part == "*" {
            let Value::Array(items) = node else {
                return Err(format!("`*` needs a list, found {}", kind_noun(node)));
            };
            for (i, item) in items.iter_mut().enumerate() {
                at.push(Step::Index(i));
                self.filter(item, &path[1..], at)?;
                at.pop();
            }
            return Ok(());
        }
        self.field(node, path, at)
    }

    fn field(&mut self, node: &mut Value, path: &[String], at: &mut Vec<Step>) -> Result<(), String> {
        let name = &path[0];
        if name.is_empty() {
            return Err("empty field name".into());
        }
        if node.is_null() && self.create.is_some() {
            *node = Value::Object(Map::new());
        }
        let map = match node {
            Value::Object(map) => map,
            Value::Null => return Ok(()),
            other => return Err(format!("`{name}` is a field of {}, not a map", kind_noun(other))),
        };
        if !map.contains_key(name) {
            let Some(create) = self.create else {
                return Ok(());
            };
            let kind = self.kind_for(path.get(1), create);
            map.insert(name.clone(), empty_node(kind));
            if kind == Create::Scalar {
                let mut created = at.clone();
                created.push(Step::Key(name.clone()));
                self.created_scalars.push(created);
            }
        }
        let Some(child) = map.get_mut(name) else {
            return Ok(());
        };
        at.push(Step::Key(name.clone()));
        let result = self.filter(child, &path[1..], at);
        at.pop();
        result
    }

    fn index(
        &mut self,
        node: &mut Value,
        path: &[String],
        idx: usize,
        at: &mut Vec<Step>,
    ) -> Result<(), String> {
        if node.is_null() && self.create.is_some() {
            *node = Value::Array(Vec::new());
        }
        let items = match node {
            Value::Array(items) => items,
            Value::Null => return Err(format!("index {idx} specified but only 0 elements found")),
            other => return Err(format!("index {idx} needs a list, found {}", kind_noun(other))),
        };
        if items.len() == idx
            && let Some(create) = self.create
        {
            let kind = self.kind_for(path.get(1), create);
            items.push(empty_node(kind));
            if kind == Create::Scalar {
                let mut created = at.clone();
                created.push(Step::Index(idx));
                self.created_scalars.push(created);
            }
        }
        let len = items.len();
        let Some(item) = items.get_mut(idx) else {
            return Err(format!("index {idx} specified but only {len} elements found"));
        };
        at.push(Step::Index(idx));
        let result = self.filter(item, &path[1..], at);
        at.pop();
        result
    }

    /// `[name=regex]` (maps whose field matches, unanchored) or `[=regex]` (scalar elements).
    fn select_elements(
        &mut self,
        node: &mut Value,
        path: &[String],
        at: &mut Vec<Step>,
        retried: bool,
    ) -> Result<(), String> {
        let (field, pattern) = split_index_name_value(&path[0])?;
        let re = regex::Regex::new(pattern).map_err(|e| format!("`{}`: {e}", path[0]))?;
        if node.is_null() && self.create.is_some() {
            *node = Value::Array(Vec::new());
        }
        let items = match node {
            Value::Array(items) => items,
            Value::Null => return Ok(()),
            other => return Err(format!("`{}` needs a list, found {}", path[0], kind_noun(other))),
        };
        let before = self.matches.len();
        for (i, item) in items.iter_mut().enumerate() {
            at.push(Step::Index(i));
            let result = if field.is_empty() {
                // A scalar element is the match itself; the rest of the path is not followed.
                if is_scalar(item) && re.is_match(&display_text(item)) {
                    self.matches.push(Match {
                        steps: at.clone(),
                        created: false,
                    });
                }
                Ok(())
            } else {
                match item.get(field) {
                    Some(v) if !v.is_null() && re.is_match(&display_text(v)) => {
                        self.filter(item, &path[1..], at)
                    }
                    _ => Ok(()),
                }
            };
            at.pop();
            result?;
        }
        if self.matches.len() > before || self.create.is_none() {
            return Ok(());
        }
        let created = resolve_plain(pattern)?;
        if retried || !re.is_match(&display_text(&created)) {
            return Err(format!("`{}`: cannot create an element that it selects", path[0]));
        }
        // Nothing matched: create the element (`{field: value}` or the scalar) and select again.
        items.push(if field.is_empty() {
            created
        } else {
            Value::Object(Map::from_iter([(field.to_string(), created)]))
        });
        self.select_elements(node, path, at, true)
    }
}

/// How a node reads in YAML, for the `[field=regex]` match (scalars as written).
fn display_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Object(_) | Value::Array(_) => v.to_string(),
        other => node_text(other),
    }
}

fn node_at<'a>(obj: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    steps.iter().try_fold(obj, |v, step| match step {
        Step::Key(k) => v.get_mut(k.as_str()),
        Step::Index(i) => v.get_mut(*i),
    })
}

/// kustomize `copyValueToTarget` for one field path.
fn copy_to_target(
    obj: &mut Value,
    value: &SourceValue,
    options: Option<&FieldOptions>,
    field_path: &str,
) -> Result<(), String> {
    let create = options.filter(|o| o.create).map(|_| match value.node {
        Value::Object(_) => Create::Map,
        Value::Array(_) => Create::List,
        _ => Create::Scalar,
    });
    let path = split_path(field_path);
    if set_in_structured_data(obj, value, &path, create)? {
        return Ok(());
    }
    let mut matcher = Matcher {
        create,
        matches: Vec::new(),
        created_scalars: Vec::new(),
    };
    let retrieval = if create.is_some() {
        "unable to find or create field"
    } else {
        "unable to find field"
    };
    matcher
        .filter(obj, &path, &mut Vec::new())
        .map_err(|e| format!("{retrieval}: {e}"))?;
    if matcher.matches.is_empty() {
        return Err(format!("{retrieval} in replacement target"));
    }
    let secret = value.secret || crate::manifest::is_secret(obj);
    for found in &matcher.matches {
        let target =
            node_at(obj, &found.steps).ok_or_else(|| format!("{retrieval} in replacement target"))?;
        set_field_value(target, found.created, value, options, secret)?;
    }
    Ok(())
}

/// kustomize v5.8's `setValueInStructuredData`: a field path that goes on below a scalar whose
/// text reads as YAML (the first such scalar on the path) replaces inside that embedded document
/// and writes it back. `Ok(false)` when kustomize falls back to the plain path (no such scalar,
/// nothing found in the document). JSON (text starting with `{` or `[`) is written back as Go's
/// `encoding/json` does (sorted keys, indented by two spaces when the text had line breaks and
/// double spaces); YAML documents are refused, since kustomize writes them back keeping their key
/// order, styles and comments, which the parsed value does not keep.
fn set_in_structured_data(
    obj: &mut Value,
    value: &SourceValue,
    path: &[String],
    create: Option<Create>,
) -> Result<bool, String> {
    if path.len() < 2 {
        return Ok(false);
    }
    let mut found = None;
    for i in 1..path.len() {
        let Ok(Some((node, steps))) = lookup_steps(obj, &path[..i]) else {
            continue;
        };
        if !is_scalar(node) {
            continue;
        }
        let text = node_text(node);
        // kustomize only asks whether the text is YAML (`yaml.Unmarshal` into a node); a document
        // whose values our reader refuses (`!!bool on`, written back by an earlier replacement)
        // is still one, seen through its nodes.
        let docs = crate::manifest::yaml::parse_documents(&text, "embedded data", &Limits::DEFAULT)
            .ok()
            .or_else(|| {
                crate::manifest::yaml::StyledNode::parse(&text, &Limits::DEFAULT)
                    .ok()
                    .flatten()
                    .map(|node| vec![node.to_value()])
            });
        if let Some(docs) = docs {
            found = Some((i, steps, text, docs));
            break;
        }
    }
    let Some((i, steps, original, docs)) = found else {
        return Ok(false);
    };
    let Some(mut root) = docs.into_iter().next() else {
        return Ok(false);
    };
    if is_scalar(&root) {
        return Ok(false);
    }
    let mut matcher = Matcher {
        create,
        matches: Vec::new(),
        created_scalars: Vec::new(),
    };
    if matcher.filter(&mut root, &path[i..], &mut Vec::new()).is_err() || matcher.matches.is_empty() {
        return Ok(false);
    }
    if !original.trim_start().starts_with(['{', '[']) {
        // YAML keeps the target's tag, whatever the text (kyaml then writes e.g. `!!int abc`).
        let text = write_back_yaml(&original, &root, &matcher.matches, value)
            .map_err(|e| format!("`{}` holds YAML: {e}", path[..i].join(".")))?;
        match node_at(obj, &steps) {
            Some(field) => *field = Value::String(text),
            None => return Ok(false),
        }
        return Ok(true);
    }
    for found in &matcher.matches {
        let Some(target) = node_at(&mut root, &found.steps) else {
            return Ok(false);
        };
        if !is_scalar(target) {
            *target = value.node.clone();
            continue;
        }
        // Only the text is copied into a scalar: it keeps its type (a created one reads as YAML).
        let typed = if found.created || target.is_null() {
            resolve_plain(&value.text)
        } else {
            typed_like(target, &value.text)
        };
        match typed {
            Ok(v) => *target = v,
            Err(_) => return Ok(false),
        }
    }
    let json = go_json(&root, original.contains('\n') && original.contains("  "))?;
    match node_at(obj, &steps) {
        Some(field) => *field = Value::String(json),
        None => return Ok(false),
    }
    Ok(true)
}

/// kustomize's `serializeAsYAML` after the replacement: the embedded document `original`, read
/// again as nodes that keep its key order and styles, gets the matched fields (found on its JSON
/// view `root`, where the matcher also created what `options.create` asked for) and is printed
/// as kyaml's encoder prints it, trimmed. A scalar keeps its style and tag and takes the text
/// only; a created node, or a map or list replaced by a static `sourceValue`, is an untagged
/// scalar. Documents with comments, anchors or tags, and maps or lists copied from an object
/// (whose styles the parsed value has lost), are refused.
fn write_back_yaml(
    original: &str,
    root: &Value,
    matches: &[Match],
    value: &SourceValue,
) -> Result<String, String> {
    use crate::manifest::yaml::StyledNode;
    let mut doc = StyledNode::parse(original, &Limits::DEFAULT)
        .map_err(|e| e.to_string())?
        .ok_or("the document is empty")?;
    for found in matches {
        let mut node = &mut doc;
        let mut view = root;
        for step in &found.steps {
            view = match step {
                Step::Key(k) => view.get(k.as_str()),
                Step::Index(i) => view.get(*i),
            }
            .ok_or("the matched field is missing")?;
            let exists = match step {
                Step::Key(k) => node.get_mut(k).is_some(),
                Step::Index(i) => node.item_mut(*i).is_some(),
            };
            if !exists {
                // Created by the matcher: kyaml appends the new key or element.
                let key = match step {
                    Step::Key(k) => k.as_str(),
                    Step::Index(_) => "",
                };
                if !node.append(key, StyledNode::from_value(view)) {
                    return Err("cannot create a field below a scalar".into());
                }
            }
            node = match step {
                Step::Key(k) => node.get_mut(k),
                Step::Index(i) => node.item_mut(*i),
            }
            .ok_or("the matched field is missing")?;
        }
        if node.is_scalar() {
            node.set_text(&value.text);
        } else if value.static_value && is_scalar(&value.node) {
            *node = StyledNode::untagged(&value.text);
        } else {
            return Err(
                "copying a map or list from an object into embedded YAML is not supported by kgitops \
                        (kustomize keeps the source's styles, which the parsed value does not)"
                    .into(),
            );
        }
    }
    Ok(doc.to_kyaml_string())
}

/// Go's `encoding/json` text of `v` (`Marshal`, or `MarshalIndent` with two spaces): sorted keys,
/// integral floats as integers, `<`, `>`, `&`, U+2028 and U+2029 escaped.
fn go_json(v: &Value, pretty: bool) -> Result<String, String> {
    fn integral(v: &mut Value) {
        match v {
            Value::Number(n) if n.is_f64() => {
                if let Some(f) = n.as_f64() {
                    *v = float_value(f);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(integral),
            Value::Object(map) => map.values_mut().for_each(integral),
            _ => {}
        }
    }
    let mut v = v.clone();
    integral(&mut v);
    let text = if pretty {
        serde_json::to_string_pretty(&v)
    } else {
        serde_json::to_string(&v)
    }
    .map_err(|e| format!("cannot write the embedded JSON back: {e}"))?;
    Ok(super::generators::hash::go_escape(&text))
}

/// kustomize `setFieldValue`; `secret` when the value or the target belongs to a Secret (a type
/// error then shows neither).
fn set_field_value(
    target: &mut Value,
    created: bool,
    value: &SourceValue,
    options: Option<&FieldOptions>,
    secret: bool,
) -> Result<(), String> {
    let mut text = value.text.clone();
    if let Some(options) = options.filter(|o| !o.delimiter.is_empty()) {
        if !is_scalar(target) {
            return Err("delimiter option can only be used with scalar nodes".into());
        }
        let current = if created { String::new() } else { node_text(target) };
        let mut parts: Vec<String> = current
            .split(options.delimiter.as_str())
            .map(str::to_string)
            .collect();
        match usize::try_from(options.index) {
            Err(_) => parts.insert(0, text),
            Ok(i) if i >= parts.len() => parts.push(text),
            Ok(i) => parts[i] = text,
        }
        text = parts.join(&options.delimiter);
    }
    if !is_scalar(target) {
        *target = value.node.clone();
        return Ok(());
    }
    let typed = if created {
        resolve_plain(&text)
    } else {
        typed_like(target, &text)
    };
    *target = typed.map_err(|e| {
        if secret {
            SECRET_VALUE_HIDDEN.to_string()
        } else {
            e
        }
    })?;
    Ok(())
}

/// `text` with the YAML type of `like` (a scalar keeps its tag when kustomize copies only the
/// text); an error when the text cannot have that type, where kustomize fails to print it.
fn typed_like(like: &Value, text: &str) -> Result<Value, String> {
    let resolved = match like {
        Value::String(_) => return Ok(Value::String(text.to_string())),
        _ => resolve_plain(text)?,
    };
    let fits = match (like, &resolved) {
        (Value::Number(n), Value::Number(r)) => n.is_f64() || !r.is_f64(),
        (Value::Bool(_), Value::Bool(_)) | (Value::Null, Value::Null) => true,
        _ => false,
    };
    if fits {
        return Ok(resolved);
    }
    let kind = match like {
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::Bool(_) => "a boolean",
        _ => "a null",
    };
    Err(format!("cannot set `{text}` into a field holding {kind}"))
}

/// The value of a plain (untagged) YAML scalar as kustomize reads and prints it: go-yaml v3's
/// resolution (null, booleans, ints in decimal/hex/octal/binary with `_`, floats), then JSON.
/// Timestamps stay strings; `.inf`/`.nan` have no JSON form and are errors.
fn resolve_plain(text: &str) -> Result<Value, String> {
    match text {
        // An empty plain scalar is null (in a flow-style parent kustomize would print "").
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf"
        | "-.Inf" | "-.INF" => return Err(format!("`{text}` has no JSON representation")),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first == b'.' {
        return Ok(text
            .parse::<f64>()
            .ok()
            .map_or_else(|| Value::String(text.into()), float_value));
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return Ok(Value::String(text.to_string()));
    }
    let plain = text.replace('_', "");
    if let Some(n) = parse_go_int(&plain) {
        if let Ok(i) = i64::try_from(n) {
            return Ok(Value::Number(i.into()));
        }
        if let Ok(u) = u64::try_from(n) {
            return Ok(Value::Number(u.into()));
        }
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Ok(float_value(f));
    }
    Ok(Value::String(text.to_string()))
}

/// A float as Go's JSON prints it: integral values without a fraction.
fn float_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        // Exact: |f| < 2^53.
        #[allow(clippy::cast_possible_truncation)]
        return Value::Number((f as i64).into());
    }
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$` (go-yaml's float syntax).
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exponent_ok
}

/// Go `strconv.ParseInt(s, 0, 64)` / `ParseUint` syntax: sign, then `0x`, `0o`, `0b`, a leading
/// `0` (octal) or decimal digits.
fn parse_go_int(s: &str) -> Option<i128> {
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let n = i128::from_str_radix(digits, radix).ok()?;
    if n > i128::from(u64::MAX) {
        return None;
    }
    Some(if negative { -n } else { n })
}

/// The `kubectl kustomize` cases under `patches/testdata/replacements/`, then errors and the
/// pieces (paths, scalar types).
#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::render::patches::kubectl_cases::{Case, check_all, same_objects};

    /// The replacements of a case's kustomization, inline or from `path:` files.
    fn case_replacements(case: &Case) -> Result<Vec<Replacement>, String> {
        let fields: Vec<ReplacementField> =
            serde_json::from_value(case.kustomization["replacements"].clone()).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for field in fields {
            match field.inline().map_err(|e| e.to_string())? {
                Some(replacement) => out.push(replacement),
                None => out.extend(parse_file(&case.document(&field.path)).map_err(|e| e.to_string())?),
            }
        }
        Ok(out)
    }

    /// Every case under `testdata/replacements/`, as printed by `kubectl kustomize`.
    #[test]
    fn kubectl_cases() {
        check_all("replacements", |case| {
            let mut objects = case.documents("resources.yaml");
            apply(&mut objects, &case_replacements(case)?).map_err(|e| e.to_string())?;
            same_objects(&objects, &case.documents("expected.yaml"))
        });
    }

    fn objects() -> Vec<Value> {
        vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "src"},
                "data": {"port": "8080", "host": "kafka:9092", "word": "abc", "empty": ""}}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "src2"}, "data": {"port": "9090"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "paused": false, "template": {"spec": {"containers": [
                {"name": "app", "image": "nginx:1.0", "ports": [{"containerPort": 80}]}
            ]}}}}),
        ]
    }

    fn replacement(value: Value) -> Replacement {
        serde_json::from_value(value).unwrap()
    }

    fn fails(r: Value) -> ReplacementError {
        let mut objs = objects();
        let err = apply(&mut objs, &[replacement(r)]).unwrap_err();
        assert_eq!(objs, objects(), "nothing partial on error");
        err
    }

    #[test]
    fn source_must_select_exactly_one_object() {
        let err =
            fails(json!({"source": {"kind": "Secret"}, "targets": [{"select": {"kind": "Deployment"}}]}));
        assert_eq!(
            err.to_string(),
            "replacements[0]: source (kind=Secret) selects nothing"
        );
        let err = fails(json!({"source": {"kind": "ConfigMap", "fieldPath": "data.port"},
            "targets": [{"select": {"kind": "Deployment"}}]}));
        assert_eq!(
            err.to_string(),
            "replacements[0]: source (kind=ConfigMap) selects more than one object: ConfigMap/src and ConfigMap/src2"
        );
        // Names are exact, not regexes.
        let err =
            fails(json!({"source": {"name": "src.*"}, "targets": [{"select": {"kind": "Deployment"}}]}));
        assert!(matches!(err, ReplacementError::NoSource { .. }), "{err}");
    }

    #[test]
    fn missing_source_field_is_an_error() {
        let err = fails(json!({"source": {"name": "src", "fieldPath": "data.nope"},
            "targets": [{"select": {"kind": "Deployment"}, "fieldPaths": ["spec.replicas"]}]}));
        assert_eq!(
            err.to_string(),
            "replacements[0]: source ConfigMap/src: fieldPath `data.nope` is missing"
        );
        let err = fails(
            json!({"source": {"name": "web", "fieldPath": "spec.template.spec.containers.[name=x].image"},
            "targets": [{"select": {"kind": "Deployment"}}]}),
        );
        assert!(
            matches!(err, ReplacementError::MissingSourceField { .. }),
            "{err}"
        );
        let err = fails(
            json!({"source": {"name": "web", "fieldPath": "spec.template.spec.containers.*.image"},
            "targets": [{"select": {"kind": "Deployment"}}]}),
        );
        assert_eq!(
            err.to_string(),
            "replacements[0]: source Deployment/web: fieldPath `spec.template.spec.containers.*.image`: \
             wildcard is not supported in a source fieldPath"
        );
    }

    #[test]
    fn missing_target_field_is_an_error_without_create() {
        let err = fails(json!({"source": {"name": "src", "fieldPath": "data.port"},
            "targets": [{"select": {"kind": "Deployment"}, "fieldPaths": ["spec.template.spec.containers.[name=app].env.[name=PORT].value"]}]}));
        assert_eq!(
            err.to_string(),
            "replacements[0]: target Deployment/web: fieldPath \
             `spec.template.spec.containers.[name=app].env.[name=PORT].value`: unable to find field in replacement target"
        );
        let err = fails(json!({"source": {"name": "src", "fieldPath": "data.port"},
            "targets": [{"select": {"kind": "Deployment"}, "fieldPaths": ["spec.template.spec.containers.3.image"],
                "options": {"create": true}}]}));
        assert!(
            err.to_string()
                .ends_with("unable to find or create field: index 3 specified but only 1 elements found"),
            "{err}"
        );
        let err = fails(json!({"source": {"name": "src", "fieldPath": "data.port"},
            "targets": [{"select": {"kind": "Deployment"}, "fieldPaths": ["spec.replicas.x"], "options": {"create": true}}]}));
        assert!(
            err.to_string().ends_with("`x` is a field of a scalar, not a map"),
            "{err}"
        );
    }

    #[test]
    fn delimiter_errors() {
        let err = fails(
            json!({"source": {"name": "src", "fieldPath": "data.host", "options": {"delimiter": ":", "index": 2}},
            "targets": [{"select": {"kind": "Deployment"}}]}),
        );
        assert_eq!(
            err.to_string(),
            "replacements[0]: source ConfigMap/src: fieldPath `data.host`: options.index 2 is out of bounds for value kafka:9092"
        );
        let err = fails(
            json!({"source": {"name": "src", "fieldPath": "data", "options": {"delimiter": ":"}},
            "targets": [{"select": {"kind": "Deployment"}}]}),
        );
        assert!(
            err.to_string()
                .ends_with("delimiter option can only be used with scalar nodes"),
            "{err}"
        );
        let err = fails(json!({"source": {"name": "src", "fieldPath": "data.port"},
            "targets": [{"select": {"kind": "Deployment"}, "fieldPaths": ["spec.template"], "options": {"delimiter": ":"}}]}));
        assert!(
            err.to_string()
                .ends_with("delimiter option can only be used with scalar nodes"),
            "{err}"
        );
    }

    /// `kubectl kustomize` fails to print these ("cannot decode !!str `abc` as a !!int").
    #[test]
    fn values_that_do_not_fit_the_target_type_are_errors() {
        for (field, target) in [
            ("word", "spec.replicas"),
            ("word", "spec.paused"),
            ("empty", "spec.replicas"),
        ] {
            let err = fails(
                json!({"source": {"name": "src", "fieldPath": format!("data.{field}")},
                "targets": [{"select": {"kind": "Deployment"}, "fieldPaths": [target]}]}),
            );
            assert!(err.to_string().contains("cannot set"), "{target}: {err}");
        }
    }

    #[test]
    fn errors_never_show_a_value_read_from_a_secret() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
            "stringData": {"password": "s3cret:value"}});
        for r in [
            json!({"source": {"kind": "Secret", "name": "creds", "fieldPath": "stringData.password"},
                "targets": [{"select": {"kind": "Deployment"}, "fieldPaths": ["spec.replicas"]}]}),
            json!({"source": {"kind": "Secret", "name": "creds", "fieldPath": "stringData.password",
                "options": {"delimiter": ":", "index": 5}},
                "targets": [{"select": {"kind": "Deployment"}, "fieldPaths": ["spec.replicas"]}]}),
        ] {
            let mut objs = objects();
            objs.push(secret.clone());
            let err = apply(&mut objs, &[replacement(r)]).unwrap_err().to_string();
            assert!(
                err.starts_with("replacements[0]") && !err.contains("s3cret"),
                "{err}"
            );
        }
    }

    #[test]
    fn incomplete_replacements_are_errors() {
        assert_eq!(
            fails(json!({"source": {"name": "src"}})).to_string(),
            "replacements[0]: must specify a source and at least one target"
        );
        assert_eq!(
            fails(json!({"source": {"name": "src"}, "targets": [{"fieldPaths": ["metadata.name"]}]}))
                .to_string(),
            "replacements[0].targets[0]: must specify resources to select (`select`)"
        );
        let err =
            fails(json!({"source": {"name": "src"}, "targets": [{"select": {"labelSelector": "a in b"}}]}));
        assert!(
            err.to_string()
                .starts_with("replacements[0]: labelSelector `a in b` is invalid"),
            "{err}"
        );
    }

    #[test]
    fn inline_fields_are_strict_and_files_lenient() {
        let err = serde_json::from_value::<ReplacementField>(json!({"source": {"kind": "X", "bogus": 1}}))
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `bogus`"), "{err}");
        let both = ReplacementField {
            path: "r.yaml".into(),
            source: Some(SourceSelector::default()),
            targets: None,
            source_value: None,
        };
        assert_eq!(both.inline().unwrap_err(), ReplacementError::PathAndInline);
        let file = json!({"source": {"kind": "X", "bogus": 1}, "targets": [{"select": {"kind": "Y", "nope": 2}}], "extra": 3});
        let parsed = parse_file(&file).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].source.as_ref().unwrap().kind, "X");
        assert_eq!(
            parse_file(&json!("x")).unwrap_err(),
            ReplacementError::BadFile { found: "a string" }
        );
        assert!(matches!(
            parse_file(&json!([{"targets": "no"}])).unwrap_err(),
            ReplacementError::BadFileEntry { .. }
        ));
    }

    #[test]
    fn previous_names_select_too() {
        let mut objs = objects();
        objs[2]["metadata"]["name"] = json!("dev-web");
        objs[2]["metadata"]["annotations"] =
            json!({PREVIOUS_NAMES: "web", PREVIOUS_NAMESPACES: "", PREVIOUS_KINDS: "Deployment"});
        let r = replacement(
            json!({"source": {"name": "web", "kind": "Deployment", "fieldPath": "spec.template.spec.containers.0.image"},
            "targets": [{"select": {"name": "src"}, "fieldPaths": ["data.image"], "options": {"create": true}}]}),
        );
        apply(&mut objs, &[r]).unwrap();
        assert_eq!(objs[0]["data"]["image"], "nginx:1.0");
        objs[2]["metadata"]["annotations"][PREVIOUS_KINDS] = json!("Deployment,Deployment");
        let r = replacement(json!({"source": {"name": "web"}, "targets": [{"select": {"name": "src"}}]}));
        let err = apply(&mut objs, &[r]).unwrap_err();
        assert!(err.to_string().contains("number of previous names"), "{err}");
    }

    #[test]
    fn paths_split_like_kustomize() {
        assert_eq!(split_path("spec.template.spec"), ["spec", "template", "spec"]);
        assert_eq!(split_path(".spec.a"), ["spec", "a"]);
        assert_eq!(
            split_path(r"metadata.annotations.config\.kubernetes\.io/origin"),
            ["metadata", "annotations", "config.kubernetes.io/origin"]
        );
        assert_eq!(
            split_path("spec.containers.[name=a.b].image"),
            ["spec", "containers", "[name=a.b]", "image"]
        );
        assert_eq!(split_path("spec.[a.b].c"), ["spec", "a.b", "c"]);
    }

    #[test]
    fn plain_scalars_resolve_like_go_yaml_v3() {
        let cases = [
            ("abc", json!("abc")),
            ("", Value::Null),
            ("~", Value::Null),
            ("True", json!(true)),
            ("yes", json!("yes")),
            ("on", json!("on")),
            ("5", json!(5)),
            ("+5", json!(5)),
            ("-0", json!(0)),
            ("0x1F", json!(31)),
            ("0o17", json!(15)),
            ("017", json!(15)),
            ("0b101", json!(5)),
            ("1_000", json!(1000)),
            ("08", json!(8)),
            ("1.5", json!(1.5)),
            ("1.0", json!(1)),
            ("1e3", json!(1000)),
            (".5", json!(0.5)),
            ("18446744073709551615", json!(u64::MAX)),
            ("2001-12-14", json!("2001-12-14")),
            ("1.2.3", json!("1.2.3")),
            ("-", json!("-")),
        ];
        for (text, expected) in cases {
            assert_eq!(resolve_plain(text).unwrap(), expected, "{text:?}");
        }
        assert!(resolve_plain(".inf").is_err());
    }
}
