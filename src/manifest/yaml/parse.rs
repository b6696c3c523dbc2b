//! Reading YAML streams into JSON values the way kustomize (go-yaml v3 through kyaml) reads them,
//! with hard limits.
//!
//! Manifests are built from serde-saphyr's event parser (granit) rather than through serde,
//! because kustomize's meaning of a scalar depends on how it is written: plain `2001-12-14` is a
//! timestamp (printed as `"2001-12-14T00:00:00Z"`), quoted `"2001-12-14"` a string, `0755` is 493
//! but `"0755"` is text, and serde's visitors cannot see quoting. The builder is iterative (no
//! recursion, whatever the nesting) and counts depth, nodes and alias expansion as it goes, so
//! hostile input is refused before it costs time or memory.
//!
//! Scalars are read as go-yaml v3 and kyaml read them (`scalar.rs`, `resolve.rs`); the builder
//! adds what kyaml does to mappings before kustomize prints a resource: merge keys resolved and
//! other `<<` keys dropped (`DeAnchor`), and refusals where kustomize fails (non-string and
//! duplicate keys, characters its JSON step cannot carry).
//!
//! Typed configuration (kustomization files, `kgitops run` config) is checked by the same reader,
//! then deserialized by serde-saphyr for its typed errors with line and column: [`parse_typed`].

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, ScanError, Span, StructureStyle};

use super::scalar::{Scalar, has_indentation_indicator, scalar};

/// Hard limits on one YAML input. Each refuses hostile input before it costs real time or memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest accepted file, in bytes. Alias expansion may not produce more scalar text than this
    /// either.
    pub max_bytes: usize,
    /// Deepest nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most alias (`*ref`) uses in one file; kustomize inputs practically never use any.
    pub max_aliases: usize,
    /// Most nodes that alias expansion may add to one file (the billion-laughs defence).
    pub max_alias_nodes: usize,
    /// Most documents in one file.
    pub max_documents: usize,
    /// Most nodes (scalars, mappings, sequences) in one file, aliases expanded.
    pub max_nodes: usize,
}

impl Limits {
    /// Sensible defaults for Kubernetes manifests.
    pub const DEFAULT: Limits = Limits {
        max_bytes: Limits::DEFAULT_MAX_BYTES,
        max_depth: Limits::DEFAULT_MAX_DEPTH,
        max_aliases: Limits::DEFAULT_MAX_ALIASES,
        max_alias_nodes: Limits::DEFAULT_MAX_ALIAS_NODES,
        max_documents: Limits::DEFAULT_MAX_DOCUMENTS,
        max_nodes: Limits::DEFAULT_MAX_NODES,
    };
    /// 64 MiB: far above any real manifest file (the largest Strimzi CRD is under 0.5 MiB).
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
    /// 256 levels: Kubernetes objects nest a few dozen deep at most.
    pub const DEFAULT_MAX_DEPTH: usize = 256;
    /// 1,000 alias uses per file.
    pub const DEFAULT_MAX_ALIASES: usize = 1_000;
    /// 100,000 nodes produced by alias expansion per file: generous for anchors reused in
    /// configuration blocks, tiny next to a billion laughs (10^9 nodes from a 1 KiB file).
    pub const DEFAULT_MAX_ALIAS_NODES: usize = 100_000;
    /// 100,000 documents per file.
    pub const DEFAULT_MAX_DOCUMENTS: usize = 100_000;
    /// 10 million nodes per file (a 20,000-object file has well under 2 million).
    pub const DEFAULT_MAX_NODES: usize = 10_000_000;
    /// 64 levels: the deepest nesting [`parse_typed`] accepts, whatever `max_depth` says. serde's
    /// deserializers recurse, and serde-saphyr's needs enough stack per level to overflow a 2 MiB
    /// thread stack at about 150 levels; configuration files nest a few levels deep.
    pub const TYPED_MAX_DEPTH: usize = 64;
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A YAML input that could not be read; always names the source (file path or description).
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("{source_name}: {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        source_name: String,
        size: usize,
        limit: usize,
    },
    /// Malformed YAML; the message starts with the line (and column where known).
    #[error("{source_name}: {message}")]
    Syntax { source_name: String, message: String },
    /// Well-formed YAML over one of the [`Limits`].
    #[error("{source_name}: line {line}: {message}")]
    LimitExceeded {
        source_name: String,
        line: usize,
        message: String,
    },
    /// Well-formed YAML that kustomize cannot turn into JSON either (non-string keys, `.inf`,
    /// a merge key without a mapping, a scalar that contradicts its tag).
    #[error("{source_name}: line {line}: {message}")]
    Unrepresentable {
        source_name: String,
        line: usize,
        message: String,
    },
}

/// Checks that apply to the raw text: its size, and the characters go-yaml (so kustomize) reads
/// differently from YAML 1.2 or erratically.
fn precheck(text: &str, source_name: &str, limits: &Limits) -> Result<(), YamlError> {
    if text.len() > limits.max_bytes {
        return Err(YamlError::TooLarge {
            source_name: source_name.to_string(),
            size: text.len(),
            limit: limits.max_bytes,
        });
    }
    let Some(at) = find_disputed_char(text.as_bytes()) else {
        return Ok(());
    };
    let c = text[at..].chars().next().unwrap_or('\u{85}');
    let line = text[..at].bytes().filter(|b| *b == b'\n').count() + 1;
    let message = if c == '\u{FEFF}' {
        // go-yaml skips it at the start of a line and otherwise reads it as text, except that its
        // reader garbles one ending on a 512-byte boundary of the input ("did not find expected
        // key"), so kustomize's reading depends on where it falls.
        "raw U+FEFF (byte order mark) after the start of the file: kustomize reads it \
         inconsistently; write it as \\uFEFF in a double-quoted string"
            .to_string()
    } else {
        // NEL, LS and PS are line breaks to go-yaml and content to YAML 1.2.
        format!(
            "raw U+{:04X} character: kustomize (YAML 1.1) reads it as a line break, YAML 1.2 as text; \
             write it as an escape in a double-quoted string (\\N, \\L, \\P)",
            u32::from(c)
        )
    };
    Err(YamlError::Unrepresentable {
        source_name: source_name.to_string(),
        line,
        message,
    })
}

/// Byte offset of the first NEL (C2 85), LS (E2 80 A8), PS (E2 80 A9), or byte order mark
/// (EF BB BF) other than one at the very start; these mean something else to kustomize. Escaped in
/// double quotes (`"\L"`) they mean the same to both. A byte scan, as files are mostly ASCII.
fn find_disputed_char(b: &[u8]) -> Option<usize> {
    let mut from = if b.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    while let Some(i) = b[from..]
        .iter()
        .position(|c| matches!(c, 0xC2 | 0xE2 | 0xEF))
        .map(|i| i + from)
    {
        match (b[i], b.get(i + 1), b.get(i + 2)) {
            (0xC2, Some(0x85), _)
            | (0xE2, Some(0x80), Some(0xA8 | 0xA9))
            | (0xEF, Some(0xBB), Some(0xBF)) => {
                return Some(i);
            }
            _ => from = i + 1,
        }
    }
    None
}

/// Parses every document of a YAML stream as kustomize reads manifests. Empty and `null` documents
/// are dropped, as kustomize drops them.
pub fn parse_documents(text: &str, source_name: &str, limits: &Limits) -> Result<Vec<Value>, YamlError> {
    Ok(build(text, source_name, limits, Reading::OBJECTS)?.documents)
}

/// [`parse_documents`] with plain scalars resolved as sigs.k8s.io/yaml's `YAMLToJSON` (go-yaml
/// v2, YAML 1.1) reads them, which is how kustomize reads JSON 6902 operations written in YAML:
/// `y`, `yes`, `on` are `true`, `n`, `no`, `off` are `false`, timestamps stay
/// their text, and an empty scalar is `null` even in a flow collection.
pub fn parse_documents_yaml11(
    text: &str,
    source_name: &str,
    limits: &Limits,
) -> Result<Vec<Value>, YamlError> {
    Ok(build(
        text,
        source_name,
        limits,
        Reading {
            yaml11: true,
            ..Reading::OBJECTS
        },
    )?
    .documents)
}

/// One document of a stream with where it wrote a scalar as nothing at all (`key:`, `- `,
/// `{key: }`), which the parsed value cannot show: kustomize (kyaml) keeps that spelling in its node
/// (a `!!null` with the text `""`), and a strategic merge patch drops such fields of the object it
/// patches while it keeps `key: null` and `key: ~` (kyaml `Merger.VisitMap`). The value there is
/// `null`, or `""` inside a flow collection (kustomize prints it so; to its merge it is a null).
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub value: Value,
    /// JSON pointers (RFC 6901) of the scalars written empty, in document order; usually none.
    /// Mapping keys, top-level `metadata.annotations` values (kustomize rewrites them as
    /// strings), merged (`<<`) values and alias copies are never listed.
    pub empty_nulls: Vec<String>,
}

/// [`parse_documents`], keeping each document's [`Document::empty_nulls`].
pub fn parse_documents_with_empty_nulls(
    text: &str,
    source_name: &str,
    limits: &Limits,
) -> Result<Vec<Document>, YamlError> {
    Ok(build(
        text,
        source_name,
        limits,
        Reading {
            record_empty_nulls: true,
            ..Reading::OBJECTS
        },
    )?
    .into_documents())
}

/// The documents of a `patches` entry: as [`parse_documents_with_empty_nulls`], except that a
/// null under `metadata.annotations` stays null. kustomize turns the null annotation values of the
/// objects it loads into their text, but not those of a patch, where `key: null` deletes the
/// annotation. The legacy `patchesStrategicMerge` files are loaded as objects, with
/// [`parse_documents`] (`tests/render/patch-null-annotations`).
pub fn parse_patch_documents(
    text: &str,
    source_name: &str,
    limits: &Limits,
) -> Result<Vec<Document>, YamlError> {
    Ok(build(text, source_name, limits, Reading::PATCHES)?.into_documents())
}

/// What [`build`] read: the documents and, when asked, each one's empty-written nulls.
struct Built {
    documents: Vec<Value>,
    empty_nulls: Vec<Vec<String>>,
}

impl Built {
    /// Each document with its empty-written nulls (recorded when `build` was asked to).
    fn into_documents(self) -> Vec<Document> {
        self.documents
            .into_iter()
            .zip(self.empty_nulls)
            .map(|(value, empty_nulls)| Document { value, empty_nulls })
            .collect()
    }
}

/// How [`build`] reads a stream: the differences between the ways kustomize reads objects, patches
/// and JSON 6902 operations.
#[derive(Clone, Copy)]
struct Reading {
    /// Note each document's scalars written empty ([`Document::empty_nulls`]).
    record_empty_nulls: bool,
    /// YAML 1.1 scalars (`yes`, `on`, `y` are booleans), as sigs.k8s.io/yaml reads.
    yaml11: bool,
    /// A null under `metadata.annotations` becomes its text, as kustomize loads objects.
    annotation_null_text: bool,
}

impl Reading {
    /// Objects (resources, generator output): go-yaml v3 scalars, null annotations as text.
    const OBJECTS: Reading = Reading {
        record_empty_nulls: false,
        yaml11: false,
        annotation_null_text: true,
    };
    /// `patches` entries: empty-written nulls noted, a null annotation stays null (it deletes).
    const PATCHES: Reading = Reading {
        record_empty_nulls: true,
        yaml11: false,
        annotation_null_text: false,
    };
}

fn build(text: &str, source_name: &str, limits: &Limits, reading: Reading) -> Result<Built, YamlError> {
    precheck(text, source_name, limits)?;
    let mut options = serde_saphyr::granit_parser::Options::default();
    options.set_emit_comments(false);
    // One more than ours, so that our own limit (with its clearer message) trips first.
    options.block_nesting_limit = limits.max_depth.saturating_add(1);
    options.flow_nesting_limit = limits.max_depth.saturating_add(1);
    // libyaml (and so kustomize) ends a block scalar at end of file without adding a line feed.
    options.block_scalar_eof_without_line_feed = true;
    let mut builder = Builder::new(text, source_name, limits);
    builder.record_empty_nulls = reading.record_empty_nulls;
    builder.yaml11 = reading.yaml11;
    builder.annotation_null_text = reading.annotation_null_text;
    for item in Parser::new_from_str_with_options(text, options) {
        let (event, span) = item.map_err(|e| scan_error(source_name, &e))?;
        builder.event(event, &span)?;
    }
    Ok(Built {
        documents: builder.documents,
        empty_nulls: builder.document_empty_nulls,
    })
}

fn scan_error(source_name: &str, e: &ScanError) -> YamlError {
    YamlError::Syntax {
        source_name: source_name.to_string(),
        message: format!(
            "line {} column {}: {}",
            e.marker().line(),
            e.marker().col() + 1,
            e.info()
        ),
    }
}

/// Parses one document into a typed value (kustomization files, configuration) with serde-saphyr,
/// after [`parse_documents`] has checked it (so the same limits and refusals apply), nested at most
/// [`Limits::TYPED_MAX_DEPTH`] deep. Unknown fields are refused when `T` says
/// `deny_unknown_fields`; errors give line and column.
pub fn parse_typed<T: DeserializeOwned>(
    text: &str,
    source_name: &str,
    limits: &Limits,
) -> Result<T, YamlError> {
    parse_typed_with(text, source_name, limits, false)
}

/// [`parse_typed`] with kustomize's typing of its own files (kustomization, configurations): it
/// reads them with sigs.k8s.io/yaml (YAML 1.1 scalars turned into JSON) and then Go's encoding/json,
/// so a plain number or boolean (`1`, `1.10`, `true`, `yes`) where a string is expected is an error
/// ("cannot unmarshal number into Go struct field ..."), never coerced to its text.
pub fn parse_typed_kustomize<T: DeserializeOwned>(
    text: &str,
    source_name: &str,
    limits: &Limits,
) -> Result<T, YamlError> {
    parse_typed_with(text, source_name, limits, true)
}

fn parse_typed_with<T: DeserializeOwned>(
    text: &str,
    source_name: &str,
    limits: &Limits,
    strings_must_be_strings: bool,
) -> Result<T, YamlError> {
    // serde-saphyr's deserializer recurses per level and expands aliases slowly: our iterative
    // reader refuses hostile input (and what kustomize could not read) first.
    let typed_limits = Limits {
        max_depth: limits.max_depth.min(Limits::TYPED_MAX_DEPTH),
        ..*limits
    };
    parse_documents(text, source_name, &typed_limits)?;
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: typed_limits.max_depth,
            max_aliases: limits.max_aliases,
            max_documents: limits.max_documents,
            max_nodes: limits.max_nodes,
        },
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        with_snippet: false,
        // Comments are never read into typed values. With emission on, the parser buffers the
        // comments between a key and its value and fails past a budget (32 by default: "too many
        // buffered comments while looking ahead"); kubebuilder's config/default kustomization has
        // ~90 commented lines after `replacements:`. Off, no comment count can fail a parse.
        emit_comments: false,
        no_schema: strings_must_be_strings,
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let message = match (&e, e.location()) {
            // What kustomize says ("cannot unmarshal number into Go struct field ... of type
            // string"), with the fix, instead of serde-saphyr's "the string value must be quoted".
            (serde_saphyr::Error::QuotingRequired { value, .. }, Some(at)) => format!(
                "line {} column {}: `{value}` is {} where a string is expected (kustomize refuses it: \
                 cannot unmarshal {} into a string); quote it: \"{value}\"",
                at.line(),
                at.column(),
                if is_yaml11_bool(value) {
                    "a boolean"
                } else {
                    "a number"
                },
                if is_yaml11_bool(value) { "bool" } else { "number" },
            ),
            (_, Some(at)) => format!("line {} column {}: {e}", at.line(), at.column()),
            (_, None) => e.to_string(),
        };
        YamlError::Syntax {
            source_name: source_name.to_string(),
            message,
        }
    })
}

/// The boolean spellings of YAML 1.1, which sigs.k8s.io/yaml (go-yaml v2) reads kustomization
/// files with.
fn is_yaml11_bool(text: &str) -> bool {
    matches!(
        text,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// An anchored node kept for its aliases, with what one expansion costs.
struct Anchored {
    value: Value,
    nodes: usize,
    bytes: usize,
}

/// A mapping key waiting for its value.
enum Key {
    Str(String),
    /// `<<`: the value is merged into the mapping once it is complete.
    Merge,
    /// A `<<` key that is not a merge key (`"<<"`, `!!str <<`): kustomize (kyaml's `DeAnchor`)
    /// deletes every field named `<<` when it resolves merges, so its value is dropped.
    Dropped,
}

enum Frame {
    Seq {
        items: Vec<Value>,
        flow: bool,
        anchor: usize,
        nodes_at_start: usize,
        bytes_at_start: usize,
    },
    Map {
        map: Map<String, Value>,
        flow: bool,
        key: Option<Key>,
        merges: Vec<(Value, usize)>,
        /// A non-merge `<<` key was seen (and dropped).
        dropped: bool,
        anchor: usize,
        nodes_at_start: usize,
        bytes_at_start: usize,
    },
}

/// Builds JSON values from parser events with an explicit stack.
struct Builder<'a> {
    text: &'a str,
    source_name: &'a str,
    limits: &'a Limits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    documents: Vec<Value>,
    /// Whether to note the nulls written empty ([`Document::empty_nulls`]).
    record_empty_nulls: bool,
    /// Whether plain scalars resolve as YAML 1.1 ([`parse_documents_yaml11`]).
    yaml11: bool,
    /// Whether null values of a document's `metadata.annotations` become their text (objects, not
    /// patches: [`parse_patch_documents`]).
    annotation_null_text: bool,
    /// The current document's empty-written nulls.
    empty_nulls: Vec<String>,
    /// One list per kept document, beside `documents` (only when recording).
    document_empty_nulls: Vec<Vec<String>>,
    document_count: usize,
    nodes: usize,
    scalar_bytes: usize,
    aliases: usize,
    alias_nodes: usize,
    alias_bytes: usize,
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a timestamp",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

impl<'a> Builder<'a> {
    fn new(text: &'a str, source_name: &'a str, limits: &'a Limits) -> Self {
        Builder {
            text,
            source_name,
            limits,
            stack: Vec::new(),
            anchors: HashMap::new(),
            documents: Vec::new(),
            record_empty_nulls: false,
            yaml11: false,
            annotation_null_text: true,
            empty_nulls: Vec::new(),
            document_empty_nulls: Vec::new(),
            document_count: 0,
            nodes: 0,
            scalar_bytes: 0,
            aliases: 0,
            alias_nodes: 0,
            alias_bytes: 0,
        }
    }

    fn limit(&self, line: usize, message: String) -> YamlError {
        YamlError::LimitExceeded {
            source_name: self.source_name.to_string(),
            line,
            message,
        }
    }

    fn unrepresentable(&self, line: usize, message: String) -> YamlError {
        YamlError::Unrepresentable {
            source_name: self.source_name.to_string(),
            line,
            message,
        }
    }

    /// `Err` naming the limit when `count` is over it.
    fn within(&self, line: usize, count: usize, limit: usize, what: &str) -> Result<(), YamlError> {
        if count > limit {
            return Err(self.limit(line, format!("more than {limit} {what}")));
        }
        Ok(())
    }

    fn count_node(&mut self, line: usize) -> Result<(), YamlError> {
        self.nodes += 1;
        self.within(line, self.nodes, self.limits.max_nodes, "YAML nodes")
    }

    fn event(&mut self, event: Event<'_>, span: &Span) -> Result<(), YamlError> {
        let line = span.start.line();
        match event {
            Event::DocumentStart(..) => {
                self.document_count += 1;
                if self.document_count > self.limits.max_documents {
                    return Err(
                        self.limit(line, format!("more than {} documents", self.limits.max_documents))
                    );
                }
                // Anchors are scoped to their document.
                self.anchors.clear();
                self.empty_nulls.clear();
            }
            Event::Scalar(value, style, anchor, tag) => {
                self.count_node(line)?;
                self.scalar_bytes += value.len();
                if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
                    && value.trim_start_matches('\n').starts_with('\t')
                    && (value.starts_with('\t') || !has_indentation_indicator(self.text, span))
                {
                    // go-yaml refuses a first line that starts with a tab unless the header gives
                    // the indentation, and kyaml writes no indentation indicator for a value that
                    // starts with a tab, so kustomize fails on its own re-encoding of it.
                    return Err(self.unrepresentable(
                        line,
                        "block scalar whose first line starts with a tab: kustomize refuses it (found a tab \
                         character where an indentation space is expected)"
                            .to_string(),
                    ));
                }
                // The parser reports an empty node as a plain `~` with an empty span.
                let empty = style == ScalarStyle::Plain && span.start.index() == span.end.index();
                let text = if empty { "" } else { value.as_ref() };
                let flow = matches!(
                    self.stack.last(),
                    Some(Frame::Seq { flow: true, .. } | Frame::Map { flow: true, .. })
                );
                let mut parsed = scalar(text, style, tag.as_deref(), flow, self.yaml11)
                    .map_err(|m| self.unrepresentable(line, m))?;
                // kyaml holds an empty scalar as a null with text "" until it encodes the object
                // (in a flow collection it then prints "", which is what `scalar` gives).
                let empty_null = empty
                    && match &parsed {
                        Scalar::Value(Value::Null) => true,
                        Scalar::Value(Value::String(s)) => flow && tag.is_none() && s.is_empty(),
                        _ => false,
                    };
                if empty_null && self.record_empty_nulls && !self.at_object_annotation_value() {
                    self.note_empty_null();
                }
                if matches!(parsed, Scalar::Value(Value::Null)) && self.at_object_annotation_value() {
                    // kustomize rewrites every object's `metadata.annotations` as strings (its
                    // internal annotations go in and out), each from the scalar's text: `x:` is
                    // "", `x: ~` is "~", `x: NULL` is "NULL".
                    parsed = Scalar::Value(Value::String(text.to_string()));
                }
                if anchor != 0 {
                    let value = match &parsed {
                        Scalar::Value(v) | Scalar::NonStringText(v) => v.clone(),
                        Scalar::Merge => Value::String("<<".to_string()),
                    };
                    let bytes = value_len(&value);
                    self.anchors.insert(
                        anchor,
                        Anchored {
                            value,
                            nodes: 1,
                            bytes,
                        },
                    );
                }
                self.scalar_done(parsed, line)?;
            }
            Event::Alias(id) => self.alias(id, line)?,
            Event::SequenceStart(style, anchor, _) => {
                self.open(line)?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    flow: style == StructureStyle::Flow,
                    anchor,
                    nodes_at_start: self.nodes,
                    bytes_at_start: self.scalar_bytes,
                });
            }
            Event::MappingStart(style, anchor, _) => {
                self.open(line)?;
                self.stack.push(Frame::Map {
                    map: Map::new(),
                    flow: style == StructureStyle::Flow,
                    key: None,
                    merges: Vec::new(),
                    dropped: false,
                    anchor,
                    nodes_at_start: self.nodes,
                    bytes_at_start: self.scalar_bytes,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(line)?,
            _ => {}
        }
        Ok(())
    }

    /// A collection starts: it must not be a mapping key, nor nest too deep.
    fn open(&mut self, line: usize) -> Result<(), YamlError> {
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            return Err(self.unrepresentable(
                line,
                "a mapping key is a collection; kustomize requires string keys".to_string(),
            ));
        }
        self.count_node(line)?;
        if self.stack.len() >= self.limits.max_depth {
            return Err(self.limit(
                line,
                format!("nesting deeper than {} levels", self.limits.max_depth),
            ));
        }
        Ok(())
    }

    fn close(&mut self, line: usize) -> Result<(), YamlError> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let (value, anchor, nodes_at_start, bytes_at_start) = match frame {
            Frame::Seq {
                items,
                anchor,
                nodes_at_start,
                bytes_at_start,
                ..
            } => (Value::Array(items), anchor, nodes_at_start, bytes_at_start),
            Frame::Map {
                mut map,
                merges,
                anchor,
                nodes_at_start,
                bytes_at_start,
                ..
            } => {
                // Keys written in the mapping win over merged ones; among merged mappings the
                // first wins (go-yaml v3, YAML merge key spec).
                for (source, merge_line) in merges {
                    let sources = match source {
                        Value::Object(m) => vec![m],
                        Value::Array(items) => {
                            let mut maps = Vec::with_capacity(items.len());
                            for item in items {
                                match item {
                                    Value::Object(m) => maps.push(m),
                                    _ => return Err(self.bad_merge(merge_line)),
                                }
                            }
                            maps
                        }
                        _ => return Err(self.bad_merge(merge_line)),
                    };
                    for m in sources {
                        for (k, v) in m {
                            map.entry(k).or_insert(v);
                        }
                    }
                }
                (Value::Object(map), anchor, nodes_at_start, bytes_at_start)
            }
        };
        if anchor != 0 {
            self.anchors.insert(
                anchor,
                Anchored {
                    value: value.clone(),
                    nodes: self.nodes - nodes_at_start + 1,
                    bytes: self.scalar_bytes - bytes_at_start,
                },
            );
        }
        self.value_done(value, line)
    }

    fn bad_merge(&self, line: usize) -> YamlError {
        self.unrepresentable(
            line,
            "map merge requires map or sequence of maps as the value".to_string(),
        )
    }

    fn alias(&mut self, id: usize, line: usize) -> Result<(), YamlError> {
        self.aliases += 1;
        self.within(line, self.aliases, self.limits.max_aliases, "aliases")?;
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(self.unrepresentable(
                line,
                "alias to a node that contains it (recursive alias)".to_string(),
            ));
        };
        let (nodes, bytes) = (anchored.nodes, anchored.bytes);
        self.alias_nodes = self.alias_nodes.saturating_add(nodes);
        self.alias_bytes = self.alias_bytes.saturating_add(bytes);
        self.nodes = self.nodes.saturating_add(nodes);
        self.within(
            line,
            self.alias_nodes,
            self.limits.max_alias_nodes,
            "nodes from aliases (an alias bomb?)",
        )?;
        self.within(
            line,
            self.alias_bytes,
            self.limits.max_bytes,
            "bytes of text from aliases",
        )?;
        self.within(line, self.nodes, self.limits.max_nodes, "YAML nodes")?;
        self.scalar_bytes += bytes;
        let value = self.anchors.get(&id).map_or(Value::Null, |a| a.value.clone());
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            return match value {
                Value::String(s) => self.key_done(Key::Str(s), line),
                other => Err(self.unrepresentable(
                    line,
                    format!(
                        "a mapping key is {}; kustomize requires string keys",
                        describe(&other)
                    ),
                )),
            };
        }
        self.value_done(value, line)
    }

    /// Notes the JSON pointer of the value being read, an empty-written null; nothing when it is a
    /// mapping key, a whole document, or below a `<<` key (its place is elsewhere once merged).
    fn note_empty_null(&mut self) {
        use std::fmt::Write as _;
        if self.stack.is_empty() || matches!(self.stack.last(), Some(Frame::Map { key: None, .. })) {
            return;
        }
        let mut pointer = String::new();
        for frame in &self.stack {
            pointer.push('/');
            match frame {
                // Children join their sequence when complete: the next index is this one.
                Frame::Seq { items, .. } => {
                    let _ = write!(pointer, "{}", items.len());
                }
                Frame::Map {
                    key: Some(Key::Str(k)),
                    ..
                } => {
                    for c in k.chars() {
                        match c {
                            '~' => pointer.push_str("~0"),
                            '/' => pointer.push_str("~1"),
                            c => pointer.push(c),
                        }
                    }
                }
                Frame::Map { .. } => return,
            }
        }
        self.empty_nulls.push(pointer);
    }

    /// Whether the next value is that of a key of a document's top-level `metadata.annotations`.
    fn at_object_annotation_value(&self) -> bool {
        if !self.annotation_null_text {
            return false;
        }
        let key_is = |frame: &Frame, name: &str| matches!(frame, Frame::Map { key: Some(Key::Str(k)), .. } if k == name);
        match self.stack.as_slice() {
            [root, meta, annotations] => {
                key_is(root, "metadata")
                    && key_is(meta, "annotations")
                    && matches!(
                        annotations,
                        Frame::Map {
                            key: Some(Key::Str(_)),
                            ..
                        }
                    )
            }
            _ => false,
        }
    }

    fn scalar_done(&mut self, parsed: Scalar, line: usize) -> Result<(), YamlError> {
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            return match parsed {
                Scalar::Value(Value::String(s)) => self.key_done(Key::Str(s), line),
                Scalar::Merge => self.key_done(Key::Merge, line),
                Scalar::Value(v) | Scalar::NonStringText(v) => Err(self.unrepresentable(
                    line,
                    format!(
                        "mapping key `{}` is {}; kustomize requires string keys",
                        plain_text(&v),
                        describe(&v)
                    ),
                )),
            };
        }
        let value = match parsed {
            Scalar::Value(v) | Scalar::NonStringText(v) => v,
            Scalar::Merge => Value::String("<<".to_string()),
        };
        self.value_done(value, line)
    }

    fn key_done(&mut self, key: Key, line: usize) -> Result<(), YamlError> {
        let key = match key {
            Key::Str(k) if k == "<<" => Key::Dropped,
            other => other,
        };
        if let Key::Str(k) = &key
            && k.contains('\u{85}')
        {
            // kustomize's JSON text then holds a raw NEL, a line break inside a key to go-yaml v2.
            return Err(self.unrepresentable(
                line,
                "mapping key contains U+0085 (NEL): kustomize cannot print it".to_string(),
            ));
        }
        let duplicate = match (&key, self.stack.last()) {
            (Key::Str(k), Some(Frame::Map { map, .. })) => map.contains_key(k),
            (Key::Merge | Key::Dropped, Some(Frame::Map { merges, dropped, .. })) => {
                !merges.is_empty() || *dropped
            }
            _ => false,
        };
        if duplicate {
            let name = match &key {
                Key::Str(k) => k.as_str(),
                Key::Merge | Key::Dropped => "<<",
            };
            return Err(self.unrepresentable(line, format!("mapping key `{name}` already defined")));
        }
        if let Some(Frame::Map {
            key: slot, dropped, ..
        }) = self.stack.last_mut()
        {
            *dropped |= matches!(key, Key::Dropped);
            *slot = Some(key);
        }
        Ok(())
    }

    fn value_done(&mut self, value: Value, line: usize) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => {
                let empty_nulls = std::mem::take(&mut self.empty_nulls);
                if !value.is_null() {
                    self.documents.push(value);
                    if self.record_empty_nulls {
                        self.document_empty_nulls.push(empty_nulls);
                    }
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { map, key, merges, .. }) => match key.take() {
                Some(Key::Str(k)) => {
                    map.insert(k, value);
                }
                Some(Key::Merge) => merges.push((value, line)),
                Some(Key::Dropped) => {}
                // Keys are routed to key_done before they get here.
                None => {}
            },
        }
        Ok(())
    }
}

fn plain_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn value_len(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<Vec<Value>, YamlError> {
        parse_documents(text, "t.yaml", &Limits::DEFAULT)
    }

    #[test]
    fn multi_document_stream_drops_empty_documents() {
        let docs = parse("a: 1\n---\n---\nb: [x]\n").unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), json!({"b": ["x"]})]);
    }

    #[test]
    fn syntax_error_names_the_file_and_line() {
        let err = parse("a: 1\nb: [1\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("t.yaml: line "), "{text}");
    }

    #[test]
    fn no_comment_count_fails_a_typed_parse() {
        // kubebuilder's config/default kustomization: ~90 commented lines after `replacements:`.
        let comments: String = (0..200).map(|i| format!("# - source: line {i}\n")).collect();
        let text = format!("resources:\n{comments}- a.yaml\nreplacements:\n{comments}");
        let parsed: serde_json::Value = parse_typed(&text, "kustomization.yaml", &Limits::DEFAULT).unwrap();
        assert_eq!(parsed, json!({"resources": ["a.yaml"], "replacements": null}));
    }

    #[test]
    fn typed_kustomize_files_refuse_numbers_and_booleans_for_strings() {
        #[derive(serde::Deserialize, Debug)]
        struct K {
            #[allow(dead_code)]
            namespace: Option<String>,
        }
        for text in [
            "namespace: 123\n",
            "namespace: true\n",
            "namespace: yes\n",
            "namespace: 1.10\n",
        ] {
            assert!(
                parse_typed_kustomize::<K>(text, "k.yaml", &Limits::DEFAULT).is_err(),
                "{text}"
            );
            // Outside kustomize's files, the lenient reading stays.
            assert!(
                parse_typed::<K>(text, "k.yaml", &Limits::DEFAULT).is_ok(),
                "{text}"
            );
        }
        parse_typed_kustomize::<K>("namespace: \"123\"\n", "k.yaml", &Limits::DEFAULT).unwrap();
    }

    #[test]
    fn null_annotation_values_keep_their_text() {
        let docs = parse_documents(
            "kind: A\nmetadata:\n  annotations: {empty: , tilde: ~, word: null}\n  labels: {x: ~}\nspec:\n  annotations: {y: ~}\n",
            "x.yaml",
            &Limits::DEFAULT,
        )
        .unwrap();
        assert_eq!(
            docs[0]["metadata"]["annotations"],
            json!({"empty": "", "tilde": "~", "word": "null"})
        );
        assert_eq!(docs[0]["metadata"]["labels"], json!({"x": null}));
        assert_eq!(docs[0]["spec"]["annotations"], json!({"y": null}));
    }

    #[test]
    fn empty_written_nulls_are_noted_per_document() {
        let docs = parse_documents_with_empty_nulls(
            concat!(
                "a:\nb: ~\nc: null\nd: {e: , f: [x, ~]}\n\"g/h~\":\nl:\n- \n- k:\n",
                "base: &b\n  m:\nmerged:\n  <<: *b\n  n:\n",
                "---\n---\nz:\nq: !!str\nmetadata:\n  annotations: {x: }\n  labels: {y: }\n",
            ),
            "x.yaml",
            &Limits::DEFAULT,
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0].empty_nulls,
            ["/a", "/d/e", "/g~1h~0", "/l/0", "/l/1/k", "/base/m", "/merged/n"]
        );
        // Empty in a flow collection reads as "" (kyaml's encoder quotes it), and is listed.
        assert_eq!(docs[0].value["d"], json!({"e": "", "f": ["x", null]}));
        assert_eq!(docs[0].value["merged"], json!({"m": null, "n": null}));
        assert_eq!(docs[1].empty_nulls, ["/z", "/metadata/labels/y"]);
        assert_eq!(
            parse("a:\n").unwrap(),
            docs_values(&parse_documents_with_empty_nulls("a:\n", "x.yaml", &Limits::DEFAULT).unwrap())
        );
    }

    fn docs_values(docs: &[Document]) -> Vec<Value> {
        docs.iter().map(|d| d.value.clone()).collect()
    }

    #[test]
    fn yaml11_reading_is_that_of_json_patches() {
        let docs = parse_documents_yaml11(
            "a: [y, yes, on, n, no, off, Y, 'y', 0755, 0o17, 0x1F, 1_000, 2001-12-14, ~, {e: }, true]\n",
            "x.yaml",
            &Limits::DEFAULT,
        )
        .unwrap();
        assert_eq!(
            docs[0]["a"],
            json!([true, true, true, false, false, false, true, "y", 493, 15, 31, 1000, "2001-12-14", null, {"e": null}, true])
        );
    }

    #[test]
    fn scalars_resolve_as_kustomize_reads_them() {
        let docs = parse(concat!(
            "yes: yes\nn: n\noct: 0755\nqoct: '0755'\nf: 1.50\ne: 1e3\nnull1: ~\nempty:\n",
            "big: 12345678901234567890123\nu: 18446744073709551615\n",
            "t: 2001-12-14\nqt: \"2001-12-14\"\ns: !!str 123\ni: !!int '7'\nfl: !!float 1\n",
            "b: !!binary aGVsbG8=\ncustom: !foo 12\nns: ! 12\nlit: |\n  x\n",
        ))
        .unwrap();
        assert_eq!(
            docs[0],
            json!({
                "yes": "yes", "n": "n", "oct": 493, "qoct": "0755", "f": 1.5, "e": 1000.0,
                "null1": null, "empty": null, "big": 1.2345678901234568e22, "u": u64::MAX,
                "t": "2001-12-14T00:00:00Z", "qt": "2001-12-14", "s": "123", "i": 7, "fl": 1.0,
                "b": "hello", "custom": "12", "ns": 12, "lit": "x\n",
            })
        );
    }

    #[test]
    fn merge_keys_follow_go_yaml() {
        let docs = parse(concat!(
            "base: &b {x: 1, y: 1}\nother: &o {y: 2, z: 2}\n",
            "m:\n  y: 0\n  <<: [*b, *o]\n",
        ))
        .unwrap();
        assert_eq!(docs[0]["m"], json!({"x": 1, "y": 0, "z": 2}));
    }

    #[test]
    fn what_kustomize_cannot_represent_is_refused() {
        for (text, needle) in [
            ("a: 1\na: 2\n", "already defined"),
            ("1: a\n", "string keys"),
            ("true: a\n", "string keys"),
            ("2001-01-01: a\n", "string keys"),
            ("[a]: b\n", "string keys"),
            ("a: .inf\n", "finite"),
            ("a: !!int x\n", "cannot decode"),
            ("a: {<<: 1}\n", "map merge"),
            ("a: !!binary '!!'\n", "base64"),
            ("a: \"x\\x7f\"\n", "U+007F"),
            ("\"a\\x85b\": 1\n", "U+0085"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.starts_with("t.yaml: line "), "{text:?}: {err}");
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn yaml_1_1_line_breaks_are_refused_with_their_line() {
        let err = parse("a: 1\nb: x\u{2028}y\n").unwrap_err().to_string();
        assert!(err.starts_with("t.yaml: line 2: raw U+2028"), "{err}");
        assert_eq!(parse("b: \"x\\Ly\"\n").unwrap()[0], json!({"b": "x\u{2028}y"}));
    }

    #[test]
    fn byte_order_marks_are_refused_past_the_start() {
        assert_eq!(parse("\u{FEFF}a: 1\n").unwrap()[0], json!({"a": 1}));
        let err = parse("a: 1\nb: \"x\u{FEFF}\"\n").unwrap_err().to_string();
        assert!(err.starts_with("t.yaml: line 2: raw U+FEFF"), "{err}");
        assert_eq!(parse("b: \"x\\uFEFF\"\n").unwrap()[0], json!({"b": "x\u{FEFF}"}));
    }

    #[test]
    fn block_scalars_starting_with_a_tab_are_refused_as_kustomize_refuses_them() {
        for text in [
            "a: |\n  \tx\n",
            "a: |2\n  \tx\n",
            "a: >\n\n  \tx\n",
            "a: | # c\n\n  \tx\n",
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains("starts with a tab"), "{text:?}: {err}");
        }
        // An indentation indicator, and a leading empty line kyaml re-encodes with one.
        assert_eq!(
            parse("a: |2 # c|\n\n  \tx\n").unwrap()[0],
            json!({"a": "\n\tx\n"})
        );
        assert_eq!(parse("a: |\n  x\n  \ty\n").unwrap()[0], json!({"a": "x\n\ty\n"}));
    }

    #[test]
    fn a_quoted_merge_key_is_dropped_as_kustomize_drops_it() {
        assert_eq!(
            parse("a: {\"<<\": 1, b: 2}\n").unwrap()[0],
            json!({"a": {"b": 2}})
        );
    }

    #[test]
    fn block_scalar_at_end_of_file_has_no_added_line_feed() {
        assert_eq!(parse("a: |\n  text").unwrap()[0], json!({"a": "text"}));
        assert_eq!(parse("a: |\n  text\n").unwrap()[0], json!({"a": "text\n"}));
    }

    #[test]
    fn patch_documents_keep_null_annotation_values() {
        let text = "kind: A\nmetadata:\n  annotations:\n    empty:\n    tilde: ~\n    word: null\n    text: \"null\"\n";
        let docs = parse_patch_documents(text, "patch.yaml", &Limits::DEFAULT).unwrap();
        assert_eq!(
            docs[0].value["metadata"]["annotations"],
            json!({"empty": null, "tilde": null, "word": null, "text": "null"})
        );
    }
}
