//! Offline schema validation, as strict as the apiserver with `fieldValidation=Strict`: built-in kinds
//! from the pinned Kubernetes OpenAPI (embedded, see [`builtin`]), custom resources from their CRDs'
//! `openAPIV3Schema` (see [`crd`]).
//!
//! Both compile into one small schema language ([`Node`]s in an [`Arena`]), so one walker checks
//! types, required fields, unknown fields (pruning made visible: what the apiserver would drop or
//! refuse), enums, patterns, ranges, int-or-string, quantities, base64 bytes, nullable,
//! `x-kubernetes-preserve-unknown-fields`, `x-kubernetes-embedded-resource` and the `allOf`/`anyOf`/
//! `oneOf`/`not` junctors, and CRD validation rules (`x-kubernetes-validations`, CEL; see
//! [`validations`]). Not checked: string `format`s other than the ones above, and what only the
//! apiserver's Go validation knows (e.g. that a Service port is within 1..65535).

pub mod builtin;
pub mod crd;
mod k8s_cel;
pub mod validations;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use regex::Regex;
use serde_json::Value;

use super::quantity::Quantity;
use crate::manifest::ResId;
use crate::manifest::yaml::YamlError;

/// The kinds of schema problem; each maps to a rule id of the rule table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IssueKind {
    /// A document that is not an object with `apiVersion`, `kind` and `metadata.name`.
    NotAnObject,
    /// No built-in schema and no CRD for the object's apiVersion and kind.
    UnknownKind,
    /// A value of the wrong type (including malformed quantities and base64).
    WrongType,
    /// A required field that is absent or null.
    MissingRequired,
    /// A field the schema does not know (the apiserver's strict field validation refuses it).
    UnknownField,
    /// A value of the right type that the schema does not allow (enum, pattern, range, length,
    /// item count, `oneOf`/`anyOf`/`not`).
    InvalidValue,
    /// Two items of a list-type map with the same key, or equal items of a list-type set.
    DuplicateKey,
    /// A CustomResourceDefinition in the render whose schema cannot be used.
    InvalidCrd,
    /// A CRD validation rule (`x-kubernetes-validations`, CEL) that the value breaks.
    CelRule,
    /// A CRD validation rule kgitops cannot evaluate offline (reported, never silently passed).
    CelUnchecked,
}

impl IssueKind {
    /// The rule id under which findings of this kind are reported.
    pub fn rule_id(self) -> &'static str {
        match self {
            IssueKind::NotAnObject => "schema-not-an-object",
            IssueKind::UnknownKind => "schema-unknown-kind",
            IssueKind::WrongType => "schema-type",
            IssueKind::MissingRequired => "schema-required",
            IssueKind::UnknownField => "schema-unknown-field",
            IssueKind::InvalidValue => "schema-value",
            IssueKind::DuplicateKey => "schema-duplicate-key",
            IssueKind::InvalidCrd => "schema-invalid-crd",
            IssueKind::CelRule => "schema-cel",
            IssueKind::CelUnchecked => "schema-cel-unchecked",
        }
    }
}

/// One schema problem in one object, with the JSON field path it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaIssue {
    pub kind: IssueKind,
    /// `spec.kafka.replicas`, `spec.ports[0].port`, `metadata.labels[app]`; empty for the object.
    pub path: String,
    pub message: String,
    pub fix: String,
}

/// A schema source that could not be loaded; names the file or CRD.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{path}: {cause}")]
    Read { path: PathBuf, cause: std::io::Error },
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error("{0}: no CustomResourceDefinition (apiextensions.k8s.io/v1) found")]
    NoCrds(PathBuf),
    #[error("{crd} ({source_name}): {message}")]
    InvalidCrd {
        crd: String,
        source_name: String,
        message: String,
    },
    #[error("embedded Kubernetes schema is unusable (regenerate it with scripts/gen-validation-schema): {0}")]
    Embedded(String),
}

// ---------------------------------------------------------------------------------------------
// The schema language.

/// JSON types a node accepts; empty means any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Types(u8);

impl Types {
    pub(crate) const ANY: Types = Types(0);
    pub(crate) const OBJECT: Types = Types(1);
    pub(crate) const ARRAY: Types = Types(2);
    pub(crate) const STRING: Types = Types(4);
    pub(crate) const INTEGER: Types = Types(8);
    pub(crate) const NUMBER: Types = Types(16);
    pub(crate) const BOOLEAN: Types = Types(32);

    pub(crate) fn union(self, other: Types) -> Types {
        Types(self.0 | other.0)
    }

    fn has(self, t: Types) -> bool {
        self.0 & t.0 != 0
    }

    fn admits(self, value: &Value) -> bool {
        if self == Types::ANY {
            return true;
        }
        match value {
            Value::Null => false,
            Value::Bool(_) => self.has(Types::BOOLEAN),
            Value::Number(n) => self.has(Types::NUMBER) || (self.has(Types::INTEGER) && is_integer(n)),
            Value::String(_) => self.has(Types::STRING),
            Value::Array(_) => self.has(Types::ARRAY),
            Value::Object(_) => self.has(Types::OBJECT),
        }
    }

    fn describe(self) -> String {
        let names = [
            (Types::OBJECT, "object"),
            (Types::ARRAY, "array"),
            (Types::INTEGER, "integer"),
            (Types::NUMBER, "number"),
            (Types::STRING, "string"),
            (Types::BOOLEAN, "boolean"),
        ];
        let parts: Vec<&str> = names
            .iter()
            .filter(|(t, _)| self.has(*t))
            .map(|(_, n)| *n)
            .collect();
        parts.join(" or ")
    }
}

/// Integers as JSON carries them: `3`, and `3.0`, which YAML-to-JSON conversion turns into `3` too.
fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.is_finite())
}

/// A value format beyond the JSON type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Format {
    #[default]
    Plain,
    /// `resource.Quantity`: a string in quantity syntax, or a number.
    Quantity,
    /// `[]byte`: a base64 string.
    Bytes,
}

/// What happens to object keys that `properties` does not list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Unlisted {
    /// Unknown field: the apiserver prunes it, or refuses it under strict field validation.
    #[default]
    Unknown,
    /// Kept without validation (`x-kubernetes-preserve-unknown-fields`, free-form objects).
    Kept,
    /// A map: every unlisted key's value is validated against the node.
    Map(Ref),
}

/// How the items of an array are identified (`x-kubernetes-list-type`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum ListType {
    /// Replaced as a whole; items may repeat.
    #[default]
    Atomic,
    /// Items are unique by these fields (`x-kubernetes-list-map-keys`).
    Map(Vec<String>),
    /// Items are unique scalars.
    Set,
}

/// A node reference: in the arena of the node that holds it, or in the built-in arena (CRD roots
/// and embedded resources point at the built-in `ObjectMeta`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ref {
    Same(u32),
    Builtin(u32),
}

/// One schema node.
#[derive(Clone, Debug, Default)]
pub(crate) struct Node {
    pub(crate) types: Types,
    pub(crate) format: Format,
    pub(crate) nullable: bool,
    pub(crate) properties: BTreeMap<String, Ref>,
    pub(crate) unlisted: Unlisted,
    pub(crate) required: Vec<String>,
    pub(crate) items: Option<Ref>,
    pub(crate) list: ListType,
    pub(crate) enumeration: Vec<Value>,
    pub(crate) pattern: Option<Pattern>,
    pub(crate) minimum: Option<(f64, bool)>,
    pub(crate) maximum: Option<(f64, bool)>,
    pub(crate) min_length: Option<u64>,
    pub(crate) max_length: Option<u64>,
    pub(crate) min_items: Option<u64>,
    pub(crate) max_items: Option<u64>,
    pub(crate) min_properties: Option<u64>,
    pub(crate) max_properties: Option<u64>,
    pub(crate) all_of: Vec<Ref>,
    pub(crate) any_of: Vec<Ref>,
    pub(crate) one_of: Vec<Ref>,
    pub(crate) not: Option<Ref>,
    /// `x-kubernetes-validations`, compiled.
    pub(crate) rules: Vec<Arc<validations::CelRule>>,
    /// This node or a node below it (through properties, map values, items) has rules: the CEL
    /// walk skips subtrees without.
    pub(crate) cel_below: bool,
}

/// A `pattern`, compiled on its first use: CRDs carry hundreds of patterns (every `resources`
/// block repeats the quantity pattern) and most are never reached by the objects of a render, while
/// building a regex is the most expensive part of compiling a CRD. Clones share the compiled regex.
#[derive(Clone, Debug)]
pub(crate) struct Pattern(Arc<(String, std::sync::OnceLock<Option<Regex>>)>);

/// Regexes from CRDs are ECMA-262 in theory and RE2 in practice (the apiserver compiles them with
/// Go's regexp); this bounds the compiled size of hostile ones.
const MAX_REGEX_SIZE: usize = 1 << 20;

impl Pattern {
    pub(crate) fn new(source: &str) -> Pattern {
        Pattern(Arc::new((source.to_string(), std::sync::OnceLock::new())))
    }

    /// The compiled regex, or `None` for a pattern Rust's regex cannot compile (look-around): such
    /// a pattern is not checked, as a false "invalid" would be worse than an unchecked pattern.
    pub(crate) fn regex(&self) -> Option<&Regex> {
        self.0
            .1
            .get_or_init(|| {
                regex::RegexBuilder::new(&self.0.0)
                    .size_limit(MAX_REGEX_SIZE)
                    .build()
                    .ok()
            })
            .as_ref()
    }
}

/// Nodes of one schema source (the built-in kinds, or one version of one CRD).
#[derive(Clone, Debug, Default)]
pub(crate) struct Arena {
    pub(crate) nodes: Vec<Node>,
}

impl Arena {
    pub(crate) fn push(&mut self, node: Node) -> u32 {
        self.nodes.push(node);
        (self.nodes.len() - 1) as u32
    }
}

// ---------------------------------------------------------------------------------------------
// The schema set.

/// A compiled CRD version: the schema of one apiVersion/kind.
#[derive(Debug)]
struct CrdSchema {
    arena: Arc<Arena>,
    root: u32,
    /// Where the CRD came from, for messages: a file, or the render.
    source: String,
}

/// What compiling one CRD gave: its served versions, or why it is invalid.
type Compiled = Result<Vec<((String, String), Arc<Arena>, u32)>, String>;

/// CRDs compiled so far, shared by every clone of a [`Schemas`]: `validate` of a repository sees the
/// same release's CRDs in several clusters' renders (with different labels, which compiling ignores),
/// and compiles each once. Keyed by a hash of what compiling reads (group, kind, versions); a hit is
/// confirmed by comparing those values, so two different CRDs never share a schema.
#[derive(Debug, Default)]
struct CompileCache {
    entries: std::sync::Mutex<std::collections::HashMap<u64, Vec<Arc<CacheEntry>>>>,
}

#[derive(Debug)]
struct CacheEntry {
    /// `[group, kind, versions]` of the CRD compiled.
    input: [Value; 3],
    /// Filled once; concurrent callers for the same CRD wait for the first compile.
    compiled: std::sync::OnceLock<Compiled>,
}

impl CompileCache {
    fn compile(&self, crd: &Value, builtin: &builtin::Builtin) -> Compiled {
        // Hashed and compared by reference: the versions hold every schema of the CRD (a Strimzi
        // `Kafka` CRD is about 1 MB of YAML), and a copy is made only for the first of its kind.
        const NULL: Value = Value::Null;
        let input = [
            crd.pointer("/spec/group").unwrap_or(&NULL),
            crd.pointer("/spec/names/kind").unwrap_or(&NULL),
            crd.pointer("/spec/versions").unwrap_or(&NULL),
        ];
        let key = {
            use std::hash::BuildHasher;
            // The key only spreads entries (foldhash, seeded per process); a collision is caught by the
            // comparison below.
            let mut hasher = hashbrown::DefaultHashBuilder::default().build_hasher();
            for part in input {
                hash_value(part, &mut hasher);
            }
            std::hash::Hasher::finish(&hasher)
        };
        let entry = {
            // A poisoned lock only means another compile panicked; the map itself is intact.
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            let bucket = entries.entry(key).or_default();
            match bucket.iter().find(|e| e.input.iter().eq(input)) {
                Some(entry) => entry.clone(),
                None => {
                    let entry = Arc::new(CacheEntry {
                        input: input.map(Value::clone),
                        compiled: std::sync::OnceLock::new(),
                    });
                    bucket.push(entry.clone());
                    entry
                }
            }
        };
        entry
            .compiled
            .get_or_init(|| {
                crd::compile(crd, builtin).map(|versions| {
                    versions
                        .into_iter()
                        .map(|(key, arena, root)| (key, Arc::new(arena), root))
                        .collect()
                })
            })
            .clone()
    }
}

/// Feeds a JSON value into a hasher (serde_json's `Value` has no `Hash`): kinds are tagged, so
/// `"1"` and `1` or `[]` and `{}` differ.
fn hash_value(value: &Value, state: &mut impl std::hash::Hasher) {
    use std::hash::Hash;
    match value {
        Value::Null => 0u8.hash(state),
        Value::Bool(b) => (1u8, b).hash(state),
        Value::Number(n) => (2u8, n).hash(state),
        Value::String(s) => (3u8, s).hash(state),
        Value::Array(items) => {
            (4u8, items.len()).hash(state);
            for item in items {
                hash_value(item, state);
            }
        }
        Value::Object(map) => {
            (5u8, map.len()).hash(state);
            for (k, v) in map {
                k.hash(state);
                hash_value(v, state);
            }
        }
    }
}

/// Schemas for validation: the embedded built-in kinds plus CRDs added from files or the render.
///
/// Cloning is cheap (compiled CRDs are shared), so a per-cluster copy can add the CRDs of that
/// cluster's render without affecting others.
#[derive(Clone, Debug)]
pub struct Schemas {
    builtin: &'static builtin::Builtin,
    crds: BTreeMap<(String, String), Arc<CrdSchema>>,
    compiled: Arc<CompileCache>,
}

impl Schemas {
    /// The built-in kinds of the pinned Kubernetes version, no CRDs.
    pub fn new() -> Result<Schemas, SchemaError> {
        Ok(Schemas {
            builtin: builtin::get()?,
            crds: BTreeMap::new(),
            compiled: Arc::default(),
        })
    }

    /// The Kubernetes version of the built-in schemas (`v1.36.3`).
    pub fn kubernetes_version(&self) -> &str {
        &self.builtin.version
    }

    /// Compiles these CRDs in parallel (on the current rayon pool) so that the [`Schemas::add_crd`]
    /// calls that follow, in the caller's order, find them compiled. A CRD that does not compile is
    /// reported by its `add_crd`.
    pub fn compile_ahead(&self, crds: &[&Value]) {
        use rayon::prelude::*;
        crds.par_iter().for_each(|crd| {
            // The result is kept in the cache; add_crd reports it.
            let _ = self.compiled.compile(crd, self.builtin);
        });
    }

    /// Adds every served version of one CustomResourceDefinition (`apiextensions.k8s.io/v1`); a later
    /// definition of the same apiVersion/kind replaces an earlier one. Returns the versions added.
    pub fn add_crd(&mut self, crd: &Value, source_name: &str) -> Result<usize, SchemaError> {
        let versions =
            self.compiled
                .compile(crd, self.builtin)
                .map_err(|message| SchemaError::InvalidCrd {
                    crd: crd::display_name(crd),
                    source_name: source_name.to_string(),
                    message,
                })?;
        let n = versions.len();
        for (key, arena, root) in versions {
            let schema = CrdSchema {
                arena,
                root,
                source: source_name.to_string(),
            };
            self.crds.insert(key, Arc::new(schema));
        }
        Ok(n)
    }

    /// Loads the CRDs in a file or, recursively, in the `.yaml`/`.yml`/`.json` files of a directory
    /// (other documents are skipped). Returns how many CRDs were added; none at all is an error, as
    /// it means the path is not what the caller thought.
    pub fn load_crds(&mut self, path: &Path) -> Result<usize, SchemaError> {
        let mut files = Vec::new();
        collect_files(path, &mut files)?;
        let mut count = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|cause| SchemaError::Read {
                path: file.clone(),
                cause,
            })?;
            let name = file.display().to_string();
            let limits = crate::manifest::yaml::Limits::DEFAULT;
            for doc in crate::manifest::yaml::parse_documents(&text, &name, &limits)? {
                for item in list_items(&doc) {
                    if crd::is_crd(item) {
                        self.add_crd(item, &name)?;
                        count += 1;
                    }
                }
            }
        }
        if count == 0 {
            return Err(SchemaError::NoCrds(path.to_path_buf()));
        }
        Ok(count)
    }

    /// True when a schema (built-in or CRD) exists for this apiVersion and kind.
    pub fn knows(&self, api_version: &str, kind: &str) -> bool {
        self.builtin.kind(api_version, kind).is_some()
            || self
                .crds
                .contains_key(&(api_version.to_string(), kind.to_string()))
    }

    /// Validates one object; returns its problems, empty when it is valid. CRD transition rules
    /// (those using `oldSelf`) are skipped: see [`Schemas::validate_change`].
    pub fn validate(&self, obj: &Value) -> Vec<SchemaIssue> {
        self.validate_change(obj, None)
    }

    /// Validates one object as an update of `old` (the same object in the base revision), so CRD
    /// transition rules (`oldSelf`) are evaluated too; `None` is a create.
    pub fn validate_change(&self, obj: &Value, old: Option<&Value>) -> Vec<SchemaIssue> {
        let id = match ResId::of(obj) {
            Ok(id) => id,
            Err(err) => {
                return vec![SchemaIssue {
                    kind: IssueKind::NotAnObject,
                    path: String::new(),
                    message: format!("not a Kubernetes object: {err}"),
                    fix: "every document needs apiVersion, kind and metadata.name".into(),
                }];
            }
        };
        let api_version = id.gvk.api_version();
        let secret = id.gvk.group.is_empty() && id.gvk.kind == "Secret";
        let mut walk = Walk::new(&self.builtin.arena, secret, true);
        if let Some(root) = self.builtin.kind(&api_version, &id.gvk.kind) {
            walk.check(&self.builtin.arena, root, obj, &mut String::new());
        } else if let Some(crd) = self.crds.get(&(api_version.clone(), id.gvk.kind.clone())) {
            walk.check(&crd.arena, crd.root, obj, &mut String::new());
            // The apiserver does not run the rules when the object has blocking errors (wrong types,
            // missing required fields, ...); kgitops does, on the values whose type is right, so
            // one run reports everything it can.
            let old = old.filter(|o| o.get("apiVersion") == obj.get("apiVersion"));
            let mut cel = validations::Checker {
                builtin: &self.builtin.arena,
                issues: Vec::new(),
            };
            cel.check(&crd.arena, Ref::Same(crd.root), obj, old, &mut String::new());
            walk.issues.extend(cel.issues);
        } else {
            let served: Vec<&str> = self
                .crds
                .keys()
                .filter(|(v, k)| *k == id.gvk.kind && v.split('/').next() == Some(&id.gvk.group))
                .map(|(v, _)| v.as_str())
                .collect();
            let fix = if !served.is_empty() {
                format!("use a served version: {}", served.join(", "))
            } else if id.gvk.group.contains('.') && !id.gvk.group.ends_with(".k8s.io") {
                "pass the CRD that defines it with --crds, or include it in the repository".to_string()
            } else {
                format!(
                    "use an apiVersion that Kubernetes {} serves for {}",
                    self.builtin.version, id.gvk.kind
                )
            };
            return vec![SchemaIssue {
                kind: IssueKind::UnknownKind,
                path: String::new(),
                message: format!(
                    "no schema for {} {}: not a built-in kind of Kubernetes {} and no CRD defines it",
                    api_version, id.gvk.kind, self.builtin.version
                ),
                fix,
            }];
        }
        walk.issues
    }

    /// Where the CRD for this apiVersion/kind came from, if it is a CRD.
    pub fn crd_source(&self, api_version: &str, kind: &str) -> Option<&str> {
        self.crds
            .get(&(api_version.to_string(), kind.to_string()))
            .map(|c| c.source.as_str())
    }
}

/// The items of a `List` (`kind: List` or `*List` with `items`), or the document itself.
fn list_items(doc: &Value) -> Vec<&Value> {
    match (doc.get("kind").and_then(Value::as_str), doc.get("items")) {
        (Some(kind), Some(Value::Array(items))) if kind.ends_with("List") => items.iter().collect(),
        _ => vec![doc],
    }
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), SchemaError> {
    let read_err = |cause| SchemaError::Read {
        path: path.to_path_buf(),
        cause,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(read_err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_files(&entry, out)?;
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(entry);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The walker.

struct Walk<'a> {
    builtin: &'a Arena,
    /// Secret values never appear in messages.
    hide_values: bool,
    /// Outside `allOf`/`anyOf`/`oneOf`/`not` branches: report unknown fields. Branches only
    /// constrain values (structural schemas forbid them to declare fields).
    strict: bool,
    issues: Vec<SchemaIssue>,
}

impl<'a> Walk<'a> {
    fn new(builtin: &'a Arena, hide_values: bool, strict: bool) -> Walk<'a> {
        Walk {
            builtin,
            hide_values,
            strict,
            issues: Vec::new(),
        }
    }

    fn resolve(&self, arena: &'a Arena, r: Ref) -> (&'a Arena, u32) {
        match r {
            Ref::Same(id) => (arena, id),
            Ref::Builtin(id) => (self.builtin, id),
        }
    }

    fn issue(&mut self, kind: IssueKind, path: &str, message: String, fix: String) {
        self.issues.push(SchemaIssue {
            kind,
            path: path.to_string(),
            message,
            fix,
        });
    }

    fn follow(&mut self, arena: &'a Arena, r: Ref, value: &Value, path: &mut String) {
        let (arena, id) = self.resolve(arena, r);
        self.check(arena, id, value, path);
    }

    /// Does `value` satisfy node `r` (in branch mode: no unknown-field checks)?
    fn passes(&self, arena: &'a Arena, r: Ref, value: &Value, path: &str) -> Result<(), String> {
        let mut sub = Walk::new(self.builtin, self.hide_values, false);
        let mut p = path.to_string();
        sub.follow(arena, r, value, &mut p);
        match sub.issues.into_iter().next() {
            None => Ok(()),
            Some(issue) if issue.path == path => Err(issue.message),
            Some(issue) => Err(format!("{}: {}", issue.path, issue.message)),
        }
    }

    fn check(&mut self, arena: &'a Arena, id: u32, value: &Value, path: &mut String) {
        let Some(node) = arena.nodes.get(id as usize) else {
            return;
        };
        if value.is_null() {
            if !node.nullable && node.types != Types::ANY {
                let expected = expected(node);
                self.issue(
                    IssueKind::WrongType,
                    path,
                    format!("expected {expected}, got null"),
                    format!("set a value of type {expected}, or remove the field"),
                );
            }
            return;
        }
        if !node.types.admits(value) {
            let expected = expected(node);
            let got = describe(value, self.hide_values);
            self.issue(
                IssueKind::WrongType,
                path,
                format!("expected {expected}, got {got}"),
                format!("set a value of type {expected}"),
            );
            return;
        }
        self.check_format(node, value, path);
        self.check_value(node, value, path);
        match value {
            Value::Object(map) => self.check_object(arena, node, map, path),
            Value::Array(items) => {
                self.check_unique(node, items, path);
                if let Some(item) = node.items {
                    for (i, v) in items.iter().enumerate() {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        self.follow(arena, item, v, path);
                        path.truncate(len);
                    }
                }
            }
            _ => {}
        }
        self.check_junctors(arena, node, value, path);
    }

    fn check_format(&mut self, node: &Node, value: &Value, path: &str) {
        let Value::String(s) = value else {
            return;
        };
        match node.format {
            Format::Plain => {}
            Format::Quantity => {
                if Quantity::parse(s).is_err() {
                    let got = describe(value, self.hide_values);
                    self.issue(
                        IssueKind::WrongType,
                        path,
                        format!("expected quantity, got {got}"),
                        "write a Kubernetes quantity such as 16Gi, 500m or 4 (no space, binary \
                         suffixes Ki/Mi/Gi/..., decimal k/M/G/...)"
                            .into(),
                    );
                }
            }
            Format::Bytes => {
                if base64::engine::general_purpose::STANDARD.decode(s).is_err() {
                    self.issue(
                        IssueKind::WrongType,
                        path,
                        "expected base64-encoded bytes, got a string that is not valid base64".into(),
                        "encode the value with base64 (or use stringData for plain text)".into(),
                    );
                }
            }
        }
    }

    /// Server-side apply (and the apiserver) refuse a list-type map with two items of the same key,
    /// and a list-type set with equal items.
    fn check_unique(&mut self, node: &Node, items: &[Value], path: &str) {
        let key_of = |item: &Value| -> Option<String> {
            match &node.list {
                ListType::Atomic => None,
                ListType::Set => Some(item.to_string()),
                ListType::Map(keys) => Some(
                    keys.iter()
                        .map(|k| format!("{k}={}", item.get(k).unwrap_or(&Value::Null)))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            }
        };
        let mut seen: Vec<(String, usize)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let Some(key) = key_of(item) else { return };
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
                let what = if matches!(node.list, ListType::Set) {
                    "duplicate value".to_string()
                } else {
                    format!("duplicate entry for key [{key}]")
                };
                let what = if self.hide_values {
                    "duplicate entry".to_string()
                } else {
                    what
                };
                self.issue(
                    IssueKind::DuplicateKey,
                    &format!("{path}[{i}]"),
                    format!("{what}, also at {path}[{first}]; server-side apply refuses the object"),
                    "merge the two entries into one (a patch probably added an entry that already existed)"
                        .into(),
                );
            } else {
                seen.push((key, i));
            }
        }
    }

    fn check_value(&mut self, node: &Node, value: &Value, path: &str) {
        if !node.enumeration.is_empty() && !node.enumeration.contains(value) {
            let allowed: Vec<String> = node.enumeration.iter().map(|v| v.to_string()).collect();
            let got = describe(value, self.hide_values);
            self.issue(
                IssueKind::InvalidValue,
                path,
                format!(
                    "unsupported value ({got}); supported values: {}",
                    allowed.join(", ")
                ),
                format!("use one of {}", allowed.join(", ")),
            );
        }
        match value {
            Value::String(s) => {
                if let Some(re) = node.pattern.as_ref().and_then(Pattern::regex)
                    && !re.is_match(s)
                {
                    let got = describe(value, self.hide_values);
                    // Long patterns (quantities, DNS names) go into the fix, not the message.
                    let (message, fix) = if re.as_str().len() <= 40 {
                        (
                            format!("{got} does not match the pattern {}", re.as_str()),
                            "write a value that matches the pattern".to_string(),
                        )
                    } else {
                        (
                            format!("{got} does not match the pattern the schema requires"),
                            format!("write a value that matches {}", re.as_str()),
                        )
                    };
                    self.issue(IssueKind::InvalidValue, path, message, fix);
                }
                let len = s.chars().count() as u64;
                self.bounds(path, "length", len, node.min_length, node.max_length);
            }
            Value::Number(n) => {
                let Some(f) = n.as_f64() else { return };
                let low = node
                    .minimum
                    .is_some_and(|(m, excl)| if excl { f <= m } else { f < m });
                let high = node
                    .maximum
                    .is_some_and(|(m, excl)| if excl { f >= m } else { f > m });
                if low || high {
                    let mut range = Vec::new();
                    if let Some((m, excl)) = node.minimum {
                        range.push(format!("{} {m}", if excl { ">" } else { ">=" }));
                    }
                    if let Some((m, excl)) = node.maximum {
                        range.push(format!("{} {m}", if excl { "<" } else { "<=" }));
                    }
                    self.issue(
                        IssueKind::InvalidValue,
                        path,
                        format!("{n} is out of range: must be {}", range.join(" and ")),
                        format!("use a value {}", range.join(" and ")),
                    );
                }
            }
            Value::Array(items) => self.bounds(
                path,
                "item count",
                items.len() as u64,
                node.min_items,
                node.max_items,
            ),
            Value::Object(map) => self.bounds(
                path,
                "field count",
                map.len() as u64,
                node.min_properties,
                node.max_properties,
            ),
            _ => {}
        }
    }

    fn bounds(&mut self, path: &str, what: &str, n: u64, min: Option<u64>, max: Option<u64>) {
        if let Some(min) = min
            && n < min
        {
            self.issue(
                IssueKind::InvalidValue,
                path,
                format!("{what} {n} is below the minimum of {min}"),
                format!("give it at least {min}"),
            );
        }
        if let Some(max) = max
            && n > max
        {
            self.issue(
                IssueKind::InvalidValue,
                path,
                format!("{what} {n} is above the maximum of {max}"),
                format!("give it at most {max}"),
            );
        }
    }

    fn check_object(
        &mut self,
        arena: &'a Arena,
        node: &'a Node,
        map: &serde_json::Map<String, Value>,
        path: &mut String,
    ) {
        for name in &node.required {
            if map.get(name).is_none_or(Value::is_null) {
                let field = child(path, name);
                self.issue(
                    IssueKind::MissingRequired,
                    &field,
                    format!("required field {name:?} is missing"),
                    format!("add {field}"),
                );
            }
        }
        for (key, value) in map {
            // A null field is an absent one: Go decoding leaves the zero value, and CRD pruning
            // drops nulls of non-nullable fields. Required fields were checked above.
            if value.is_null() {
                continue;
            }
            let len = path.len();
            if let Some(r) = node.properties.get(key) {
                *path = child(path, key);
                self.follow(arena, *r, value, path);
            } else {
                match node.unlisted {
                    Unlisted::Kept => {}
                    Unlisted::Map(r) => {
                        path.push('[');
                        path.push_str(key);
                        path.push(']');
                        self.follow(arena, r, value, path);
                    }
                    Unlisted::Unknown if self.strict => {
                        let field = child(path, key);
                        let fix = unknown_field_fix(key, node);
                        self.issue(
                            IssueKind::UnknownField,
                            &field,
                            format!("unknown field {key:?}"),
                            fix,
                        );
                    }
                    Unlisted::Unknown => {}
                }
            }
            path.truncate(len);
        }
    }

    fn check_junctors(&mut self, arena: &'a Arena, node: &'a Node, value: &Value, path: &mut String) {
        for r in &node.all_of {
            let strict = std::mem::replace(&mut self.strict, false);
            self.follow(arena, *r, value, path);
            self.strict = strict;
        }
        if !node.any_of.is_empty() {
            let results: Vec<Result<(), String>> = node
                .any_of
                .iter()
                .map(|r| self.passes(arena, *r, value, path))
                .collect();
            if !results.iter().any(Result::is_ok) {
                let why: Vec<String> = results.into_iter().filter_map(Result::err).collect();
                self.issue(
                    IssueKind::InvalidValue,
                    path,
                    format!("matches none of the allowed alternatives ({})", why.join("; or ")),
                    "make the value match one of the alternatives".into(),
                );
            }
        }
        if !node.one_of.is_empty() {
            let results: Vec<Result<(), String>> = node
                .one_of
                .iter()
                .map(|r| self.passes(arena, *r, value, path))
                .collect();
            let matched = results.iter().filter(|r| r.is_ok()).count();
            if matched == 0 {
                let why: Vec<String> = results.into_iter().filter_map(Result::err).collect();
                self.issue(
                    IssueKind::InvalidValue,
                    path,
                    format!(
                        "must match exactly one alternative, matches none ({})",
                        why.join("; or ")
                    ),
                    "make the value match exactly one of the alternatives".into(),
                );
            } else if matched > 1 {
                self.issue(
                    IssueKind::InvalidValue,
                    path,
                    format!("must match exactly one alternative, matches {matched}"),
                    "keep the fields of only one alternative (e.g. value or valueFrom, not both)".into(),
                );
            }
        }
        if let Some(r) = node.not
            && self.passes(arena, r, value, path).is_ok()
        {
            self.issue(
                IssueKind::InvalidValue,
                path,
                "matches a schema it must not match".into(),
                "change the value".into(),
            );
        }
    }
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn expected(node: &Node) -> String {
    match node.format {
        Format::Quantity => "quantity".into(),
        Format::Bytes => "base64-encoded string".into(),
        Format::Plain if node.types == Types::ANY => "any value".into(),
        Format::Plain => node.types.describe(),
    }
}

/// A value for messages: its type and, unless hidden (Secrets) or large, the value itself.
fn describe(value: &Value, hide: bool) -> String {
    const MAX: usize = 60;
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) if hide => {
            if is_integer(n) {
                "integer".into()
            } else {
                "number".into()
            }
        }
        Value::Number(n) if is_integer(n) => format!("integer {n}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(_) if hide => "string (value hidden)".into(),
        Value::String(s) if s.chars().count() > MAX => {
            let cut: String = s.chars().take(MAX).collect();
            format!("string {:?}...", cut)
        }
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

fn unknown_field_fix(key: &str, node: &Node) -> String {
    let closest = node
        .properties
        .keys()
        .map(|k| (strsim::jaro_winkler(&key.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match closest {
        Some((_, k)) => format!("did you mean {k:?}? Otherwise remove the field"),
        None if node.properties.is_empty() => "remove the field: this object has no fields".into(),
        None if node.properties.len() <= 12 => {
            let known: Vec<&str> = node.properties.keys().map(String::as_str).collect();
            format!("remove the field, or use a known one: {}", known.join(", "))
        }
        None => "remove the field, or fix its spelling or indentation".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issues(obj: Value) -> Vec<(IssueKind, String, String)> {
        let schemas = Schemas::new().unwrap();
        schemas
            .validate(&obj)
            .into_iter()
            .map(|i| (i.kind, i.path, i.message))
            .collect()
    }

    #[test]
    fn describe_hides_secret_values_and_cuts_long_ones() {
        assert_eq!(describe(&json!("three"), false), "string \"three\"");
        assert_eq!(describe(&json!("three"), true), "string (value hidden)");
        assert_eq!(describe(&json!(3), false), "integer 3");
        assert_eq!(describe(&json!(1.5), false), "number 1.5");
        assert_eq!(
            describe(&json!("x".repeat(100)), false),
            format!("string \"{}\"...", "x".repeat(60))
        );
    }

    #[test]
    fn valid_configmap_has_no_issues() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "n", "labels": {"app": "x"}, "creationTimestamp": null},
            "data": {"k": "v"}});
        assert_eq!(issues(cm), vec![]);
    }

    #[test]
    fn wrong_types_unknown_and_missing_fields_name_their_path() {
        let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"tier": 3}, "colour": "red"},
            "spec": {"replicas": "two", "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx", "imagePullPolice": "Always",
                        "ports": [{"containerPort": "80"}],
                        "resources": {"limits": {"memory": "1GB", "cpu": 2}}}, {"image": "x"}]}}}});
        let got = issues(dep);
        let want = [
            (
                IssueKind::UnknownField,
                "metadata.colour",
                "unknown field \"colour\"",
            ),
            (
                IssueKind::WrongType,
                "metadata.labels[tier]",
                "expected string, got integer 3",
            ),
            (
                IssueKind::WrongType,
                "spec.replicas",
                "expected integer, got string \"two\"",
            ),
            (
                IssueKind::UnknownField,
                "spec.template.spec.containers[0].imagePullPolice",
                "unknown field \"imagePullPolice\"",
            ),
            (
                IssueKind::WrongType,
                "spec.template.spec.containers[0].ports[0].containerPort",
                "expected integer, got string \"80\"",
            ),
            (
                IssueKind::WrongType,
                "spec.template.spec.containers[0].resources.limits[memory]",
                "expected quantity, got string \"1GB\"",
            ),
            (
                IssueKind::MissingRequired,
                "spec.template.spec.containers[1].name",
                "required field \"name\" is missing",
            ),
        ];
        let mut got_sorted = got.clone();
        got_sorted.sort_by(|a, b| a.1.cmp(&b.1));
        let want: Vec<_> = want
            .iter()
            .map(|(k, p, m)| (*k, p.to_string(), m.to_string()))
            .collect();
        assert_eq!(got_sorted, want);
    }

    #[test]
    fn unknown_field_suggests_the_closest_known_one() {
        let schemas = Schemas::new().unwrap();
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80}], "selectr": {"app": "x"}}});
        let found = schemas.validate(&svc);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].fix,
            "did you mean \"selector\"? Otherwise remove the field"
        );
    }

    #[test]
    fn int_or_string_and_bytes() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081},
                {"port": 82, "targetPort": true}]}});
        assert_eq!(
            issues(svc),
            vec![(
                IssueKind::WrongType,
                "spec.ports[2].targetPort".into(),
                "expected integer or string, got boolean true".into()
            )]
        );
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"ok": "aGVsbG8=", "bad": "hello!"}, "stringData": {"n": 5}});
        let got = issues(secret);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].1, "data[bad]");
        assert_eq!(
            got[1],
            (
                IssueKind::WrongType,
                "stringData[n]".into(),
                "expected string, got integer".into()
            )
        );
    }

    #[test]
    fn unknown_kind_and_non_objects() {
        let got =
            issues(json!({"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "i"}}));
        assert_eq!(got[0].0, IssueKind::UnknownKind);
        assert!(got[0].2.contains("Kubernetes v1.36"), "{}", got[0].2);
        let got = issues(json!({"apiVersion": "v1", "metadata": {"name": "x"}}));
        assert_eq!(got[0].0, IssueKind::NotAnObject);
    }
}
