//! A YAML document as a tree of nodes that keeps how it was written (key order, scalar styles,
//! flow or block collections, the tags go-yaml v3 gives its scalars), and its printing by kyaml's
//! encoder (go-yaml v3, indent 2, compact sequences).
//!
//! kustomize v5.8 replaces fields inside YAML embedded in a string (`replacements` into a
//! ConfigMap's `config.yaml`) by parsing that text into a `yaml.Node`, changing the nodes and
//! writing the document back with kyaml's encoder. The JSON values of `parse.rs` lose what that
//! encoder keeps, so this module reads the same text again into [`StyledNode`]s and prints them
//! with a port of the parts of go-yaml v3's `encode.go` (`encoder.node`) and `emitterc.go` the
//! nodes reach: block and flow mappings and sequences, the five scalar styles with their fallbacks
//! (`yaml_emitter_select_scalar_style`), no folding of long lines, and v3's indentation rules
//! (`yaml_emitter_increase_indent_compact`) and comments (`yaml_emitter_process_*_comment`). Only
//! the comment placements of go-yaml v3's parser that are unambiguous are read (head comments right
//! above a key or item, line comments after a scalar or a key): a document with other comments,
//! anchors, aliases or tags other than the core scalar ones (`!!int`, ...) is refused
//! ([`StyledError`]).

use serde_json::Value;
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, StructureStyle};

use super::emit::{at, is_blank, is_blankz, is_break, is_printable, is_space, starts_with_bom, width};
use super::parse::Limits;
use super::resolve::{Resolved, resolve_plain};

/// go-yaml v3's `best_width`: `yaml_emitter_initialize` sets -1, which the stream start turns
/// into `1<<31 - 1`, so kyaml's encoder never folds long lines (go-yaml v2 folds at 80).
const BEST_WIDTH: usize = (1 << 31) - 1;
/// kyaml's indent (`yaml.DefaultIndent`).
const BEST_INDENT: isize = 2;
/// Longest simple key go-yaml writes (`yaml_emitter_check_simple_key`).
const MAX_SIMPLE_KEY: usize = 128;

/// Why a text cannot be held as a [`StyledNode`] tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StyledError {
    /// Not YAML, or over a limit.
    #[error("{0}")]
    Syntax(String),
    /// Something go-yaml keeps that this tree does not (comments, anchors, aliases, tags).
    #[error("it holds {0}, which kgitops cannot write back as kustomize does")]
    Unsupported(&'static str),
}

/// The scalar styles of go-yaml's `yaml.Node.Style`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarKind {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

/// The core tags go-yaml v3 gives a scalar (`!!str`, `!!int`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreTag {
    Str,
    Null,
    Bool,
    Int,
    Float,
    Timestamp,
    Merge,
}

impl CoreTag {
    fn of_plain(value: &str) -> CoreTag {
        if value == "<<" {
            return CoreTag::Merge;
        }
        match resolve_plain(value) {
            Resolved::Null => CoreTag::Null,
            Resolved::Bool(_) => CoreTag::Bool,
            Resolved::Int(_) | Resolved::Uint(_) => CoreTag::Int,
            Resolved::Float(_) | Resolved::NonFinite => CoreTag::Float,
            Resolved::Timestamp(_) | Resolved::BadTimestamp => CoreTag::Timestamp,
            Resolved::Str => CoreTag::Str,
        }
    }

    fn from_suffix(suffix: &str) -> Option<CoreTag> {
        Some(match suffix {
            "str" => CoreTag::Str,
            "null" => CoreTag::Null,
            "bool" => CoreTag::Bool,
            "int" => CoreTag::Int,
            "float" => CoreTag::Float,
            "timestamp" => CoreTag::Timestamp,
            "merge" => CoreTag::Merge,
            _ => return None,
        })
    }

    fn suffix(self) -> &'static str {
        match self {
            CoreTag::Str => "str",
            CoreTag::Null => "null",
            CoreTag::Bool => "bool",
            CoreTag::Int => "int",
            CoreTag::Float => "float",
            CoreTag::Timestamp => "timestamp",
            CoreTag::Merge => "merge",
        }
    }
}

/// One node of a document, as go-yaml's `yaml.Node` holds it (without comments and anchors).
#[derive(Clone, Debug, PartialEq)]
pub enum StyledNode {
    /// `tag` is `None` for a node made without one (kyaml's `NewScalarRNode`, created fields).
    Scalar {
        value: String,
        style: ScalarKind,
        tag: Option<CoreTag>,
        /// The tag was written in the text (go-yaml's `TaggedStyle`): it is always written back.
        explicit: bool,
        comments: Comments,
    },
    Seq {
        items: Vec<StyledNode>,
        flow: bool,
        comments: Comments,
    },
    Map {
        entries: Vec<(StyledNode, StyledNode)>,
        flow: bool,
        comments: Comments,
    },
}

/// go-yaml's `HeadComment` and `LineComment` of a node, each line with its `#`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comments {
    pub head: String,
    pub line: String,
}

/// Line and column arithmetic on the parsed text (byte offsets).
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    fn line_of(&self, at: usize) -> usize {
        self.starts.partition_point(|&s| s <= at).saturating_sub(1)
    }

    fn column_of(&self, at: usize) -> usize {
        at - self.starts[self.line_of(at)]
    }

    fn only_blanks_before(&self, at: usize) -> bool {
        let start = self.starts[self.line_of(at)];
        self.text
            .get(start..at)
            .is_some_and(|s| s.bytes().all(|b| b == b' ' || b == b'\t'))
    }

    /// Spaces before the first character of `line` (a `- ` counts as content).
    fn indentation(&self, line: usize) -> usize {
        let start = self.starts.get(line).copied().unwrap_or(self.text.len());
        self.text[start..].bytes().take_while(|b| *b == b' ').count()
    }
}

impl StyledNode {
    /// The first document of `text` (what go-yaml's `yaml.Unmarshal` into a `yaml.Node` reads);
    /// `None` when the text holds no document.
    ///
    /// Comments are kept where their place is unambiguous, and where go-yaml v3 puts them the
    /// same way: lines of comments right above a block mapping key or a block sequence item, at
    /// its indentation (its head comment), and a comment after a single-line scalar of a block
    /// collection, or after a key whose value is a block below it (its line comment). Any other
    /// comment (separated from its node by a blank line, at another indentation, at the end, in
    /// a flow collection, after a block scalar header) is refused.
    pub fn parse(text: &str, limits: &Limits) -> Result<Option<StyledNode>, StyledError> {
        if text.len() > limits.max_bytes {
            return Err(StyledError::Syntax(format!(
                "larger than {} bytes",
                limits.max_bytes
            )));
        }
        let mut options = serde_saphyr::granit_parser::Options::default();
        options.set_emit_comments(true);
        let lines = Lines::new(text);
        let mut stack: Vec<StyledNode> = Vec::new();
        // Keys waiting for their value, one slot per open mapping.
        let mut keys: Vec<Option<StyledNode>> = Vec::new();
        let mut nodes = 0usize;
        // Full-line comments not yet given to a node: (line, column, text with its `#`).
        let mut pending: Vec<(usize, usize, String)> = Vec::new();
        // The scalar just placed: its last line, and whether a comment after it is its line
        // comment (single-line, in a block collection).
        let mut last: Option<(usize, bool)> = None;
        let refuse = || {
            StyledError::Unsupported(
                "a comment that is not right above a key or list item at its indentation, or after a \
                 scalar on its line (go-yaml v3's placement of the others is not ported)",
            )
        };
        for item in Parser::new_from_str_with_options(text, options) {
            let (event, span) = item.map_err(|e| StyledError::Syntax(e.to_string()))?;
            let start_line = lines.line_of(span.start.index());
            // A node starts: pending comments are its head comment (or its first child's, for a
            // block collection that is a mapping value or the document).
            let mut head = String::new();
            let starts_node = matches!(
                event,
                Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..)
            );
            if starts_node && !pending.is_empty() {
                let awaiting_value = matches!(stack.last(), Some(StyledNode::Map { .. }))
                    && keys.last().is_some_and(Option::is_some);
                let block_collection = matches!(
                    event,
                    Event::SequenceStart(StructureStyle::Block, ..)
                        | Event::MappingStart(StructureStyle::Block, ..)
                );
                let defer = block_collection && (stack.is_empty() || awaiting_value);
                if !defer {
                    let takes_head = match stack.last() {
                        Some(StyledNode::Map { flow: false, .. }) => !awaiting_value,
                        Some(StyledNode::Seq { flow: false, .. }) => true,
                        _ => false,
                    };
                    let indent = lines.indentation(start_line);
                    let adjacent = pending
                        .iter()
                        .enumerate()
                        .all(|(i, (line, col, _))| *col == indent && line + pending.len() - i == start_line);
                    if !takes_head || !adjacent {
                        return Err(refuse());
                    }
                    head = pending
                        .drain(..)
                        .map(|(_, _, c)| c)
                        .collect::<Vec<_>>()
                        .join("\n");
                }
            }
            let node = match event {
                Event::StreamStart | Event::DocumentStart(..) => continue,
                Event::DocumentEnd | Event::StreamEnd => break,
                Event::Comment(payload, _) => {
                    let at = span.start.index();
                    let line = lines.line_of(at);
                    let comment = format!("#{payload}");
                    if lines.only_blanks_before(at) {
                        pending.push((line, lines.column_of(at), comment));
                        continue;
                    }
                    match last {
                        Some((end_line, true)) if end_line == line && pending.is_empty() => {}
                        _ => return Err(refuse()),
                    }
                    // The line comment of the scalar just placed: a value, an item or a key.
                    let target = match stack.last_mut() {
                        Some(StyledNode::Seq { items, .. }) => items.last_mut(),
                        Some(StyledNode::Map { entries, .. }) => match keys.last_mut() {
                            Some(Some(key)) => Some(key),
                            _ => entries.last_mut().map(|(_, v)| v),
                        },
                        _ => None,
                    };
                    match target {
                        Some(node) if node.comments().line.is_empty() => node.comments_mut().line = comment,
                        _ => return Err(refuse()),
                    }
                    last = None;
                    continue;
                }
                Event::Alias(_) | Event::UnresolvedAlias(_) => {
                    return Err(StyledError::Unsupported("aliases"));
                }
                Event::Anchor(..) => return Err(StyledError::Unsupported("anchors")),
                Event::Scalar(value, style, anchor, tag) => {
                    if anchor != 0 {
                        return Err(StyledError::Unsupported("anchors"));
                    }
                    let explicit = match tag.as_deref() {
                        None => None,
                        Some(t) if t.handle() == "tag:yaml.org,2002:" => Some(
                            CoreTag::from_suffix(t.suffix())
                                .ok_or(StyledError::Unsupported("explicit tags"))?,
                        ),
                        Some(_) => return Err(StyledError::Unsupported("explicit tags")),
                    };
                    // The parser reports an empty node as a plain `~` with an empty span.
                    let empty = style == ScalarStyle::Plain && span.start.index() == span.end.index();
                    let value = if empty { String::new() } else { value.into_owned() };
                    let style = match style {
                        ScalarStyle::Plain => ScalarKind::Plain,
                        ScalarStyle::SingleQuoted => ScalarKind::SingleQuoted,
                        ScalarStyle::DoubleQuoted => ScalarKind::DoubleQuoted,
                        ScalarStyle::Literal => ScalarKind::Literal,
                        ScalarStyle::Folded => ScalarKind::Folded,
                    };
                    let tag = if let Some(tag) = explicit {
                        tag
                    } else if style == ScalarKind::Plain {
                        CoreTag::of_plain(&value)
                    } else {
                        CoreTag::Str
                    };
                    let end_line = lines.line_of(span.end.index());
                    let in_block = matches!(
                        stack.last(),
                        Some(StyledNode::Map { flow: false, .. } | StyledNode::Seq { flow: false, .. })
                    );
                    let single_line =
                        end_line == start_line && !matches!(style, ScalarKind::Literal | ScalarKind::Folded);
                    last = Some((end_line, in_block && single_line));
                    StyledNode::Scalar {
                        value,
                        style,
                        tag: Some(tag),
                        explicit: explicit.is_some(),
                        comments: Comments {
                            head,
                            line: String::new(),
                        },
                    }
                }
                Event::SequenceStart(_, anchor, tag) | Event::MappingStart(_, anchor, tag)
                    if anchor != 0 || tag.is_some() =>
                {
                    return Err(StyledError::Unsupported(if anchor != 0 {
                        "anchors"
                    } else {
                        "explicit tags"
                    }));
                }
                Event::SequenceStart(style, ..) | Event::MappingStart(style, ..) => {
                    let map = matches!(event, Event::MappingStart(..));
                    if stack.len() >= limits.max_depth {
                        return Err(StyledError::Syntax(format!(
                            "nested deeper than {} levels",
                            limits.max_depth
                        )));
                    }
                    let flow = style == StructureStyle::Flow;
                    // A comment after a key is its line comment only when a block follows.
                    if flow {
                        last = None;
                    }
                    let comments = Comments {
                        head,
                        line: String::new(),
                    };
                    stack.push(if map {
                        StyledNode::Map {
                            entries: Vec::new(),
                            flow,
                            comments,
                        }
                    } else {
                        StyledNode::Seq {
                            items: Vec::new(),
                            flow,
                            comments,
                        }
                    });
                    keys.push(None);
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    keys.pop();
                    last = None;
                    match stack.pop() {
                        Some(node) => node,
                        None => return Err(StyledError::Syntax("unbalanced collection".into())),
                    }
                }
                // Events of future parser versions: refused rather than guessed at.
                _ => return Err(StyledError::Unsupported("YAML this reader does not know")),
            };
            nodes += 1;
            if nodes > limits.max_nodes {
                return Err(StyledError::Syntax(format!(
                    "more than {} nodes",
                    limits.max_nodes
                )));
            }
            match stack.last_mut() {
                None => {
                    // Comments after the document (foot comments) are not placed.
                    if !pending.is_empty() {
                        return Err(refuse());
                    }
                    return Ok(Some(node));
                }
                Some(StyledNode::Seq { items, .. }) => items.push(node),
                Some(StyledNode::Map { entries, .. }) => {
                    let slot = keys
                        .last_mut()
                        .ok_or_else(|| StyledError::Syntax("unbalanced mapping".into()))?;
                    match slot.take() {
                        None => *slot = Some(node),
                        Some(key) => {
                            // A key's line comment stays only before a block below it.
                            if !key.comments().line.is_empty() && (node.is_scalar() || node.is_flow()) {
                                return Err(refuse());
                            }
                            entries.push((key, node));
                        }
                    }
                }
                Some(StyledNode::Scalar { .. }) => {
                    return Err(StyledError::Syntax("scalar with children".into()));
                }
            }
        }
        Ok(None)
    }

    /// A scalar made without a tag (kyaml's `NewScalarRNode`): printed plain when it can be.
    pub fn untagged(value: &str) -> StyledNode {
        StyledNode::Scalar {
            value: value.to_string(),
            style: ScalarKind::Plain,
            tag: None,
            explicit: false,
            comments: Comments::default(),
        }
    }

    /// A node for a value that has no written form (made by the program): untagged scalars with
    /// the value's text (`""` for null), block collections, keys in the value's order.
    pub fn from_value(v: &Value) -> StyledNode {
        match v {
            Value::Null => StyledNode::untagged(""),
            Value::String(s) => StyledNode::untagged(s),
            Value::Bool(_) | Value::Number(_) => StyledNode::untagged(&v.to_string()),
            Value::Array(items) => StyledNode::Seq {
                items: items.iter().map(StyledNode::from_value).collect(),
                flow: false,
                comments: Comments::default(),
            },
            Value::Object(map) => StyledNode::Map {
                entries: map
                    .iter()
                    .map(|(k, v)| (StyledNode::untagged(k), StyledNode::from_value(v)))
                    .collect(),
                flow: false,
                comments: Comments::default(),
            },
        }
    }

    /// The node as a JSON value, for finding fields in it: plain scalars resolved as go-yaml v3
    /// resolves them (timestamps and non-finite floats as their text), other scalars as text.
    pub fn to_value(&self) -> Value {
        match self {
            StyledNode::Scalar {
                value,
                style,
                explicit,
                ..
            } => {
                if *style != ScalarKind::Plain || *explicit {
                    return Value::String(value.clone());
                }
                match resolve_plain(value) {
                    Resolved::Null => Value::Null,
                    Resolved::Bool(b) => Value::Bool(b),
                    Resolved::Int(i) => Value::from(i),
                    Resolved::Uint(u) => Value::from(u),
                    Resolved::Float(f) => serde_json::Number::from_f64(f)
                        .map_or_else(|| Value::String(value.clone()), Value::Number),
                    Resolved::NonFinite | Resolved::Timestamp(_) | Resolved::BadTimestamp | Resolved::Str => {
                        Value::String(value.clone())
                    }
                }
            }
            StyledNode::Seq { items, .. } => Value::Array(items.iter().map(StyledNode::to_value).collect()),
            StyledNode::Map { entries, .. } => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            StyledNode::Scalar { value, .. } => value.clone(),
                            other => other.to_value().to_string(),
                        };
                        (key, v.to_value())
                    })
                    .collect(),
            ),
        }
    }

    fn comments(&self) -> &Comments {
        match self {
            StyledNode::Scalar { comments, .. }
            | StyledNode::Seq { comments, .. }
            | StyledNode::Map { comments, .. } => comments,
        }
    }

    fn comments_mut(&mut self) -> &mut Comments {
        match self {
            StyledNode::Scalar { comments, .. }
            | StyledNode::Seq { comments, .. }
            | StyledNode::Map { comments, .. } => comments,
        }
    }

    /// A flow collection, or an empty one (go-yaml writes those in flow style).
    fn is_flow(&self) -> bool {
        match self {
            StyledNode::Scalar { .. } => false,
            StyledNode::Seq { items, flow, .. } => *flow || items.is_empty(),
            StyledNode::Map { entries, flow, .. } => *flow || entries.is_empty(),
        }
    }

    pub fn is_scalar(&self) -> bool {
        matches!(self, StyledNode::Scalar { .. })
    }

    /// The value of key `key` of a mapping (a scalar key with that text).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut StyledNode> {
        match self {
            StyledNode::Map { entries, .. } => entries
                .iter_mut()
                .find(|(k, _)| matches!(k, StyledNode::Scalar { value, .. } if value == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Item `i` of a sequence.
    pub fn item_mut(&mut self, i: usize) -> Option<&mut StyledNode> {
        match self {
            StyledNode::Seq { items, .. } => items.get_mut(i),
            _ => None,
        }
    }

    /// Appends `key: value` to a mapping, or `value` to a sequence (`key` ignored); false on a
    /// scalar.
    pub fn append(&mut self, key: &str, value: StyledNode) -> bool {
        match self {
            StyledNode::Map { entries, .. } => entries.push((StyledNode::untagged(key), value)),
            StyledNode::Seq { items, .. } => items.push(value),
            StyledNode::Scalar { .. } => return false,
        }
        true
    }

    /// Replaces a scalar's text, keeping its style and tag (kyaml's `YNode().Value = ...`).
    pub fn set_text(&mut self, text: &str) {
        if let StyledNode::Scalar { value, .. } = self {
            *value = text.to_string();
        }
    }

    /// The document as kyaml's encoder prints it (`RNode.String()`), without the final line
    /// break.
    pub fn to_kyaml_string(&self) -> String {
        let mut e = V3Emitter {
            out: String::new(),
            column: 0,
            whitespace: true,
            indention: true,
            indent: -1,
            indents: Vec::new(),
            flow_level: 0,
            head_comment: String::new(),
            line_comment: String::new(),
            key_line_comment: String::new(),
        };
        e.node(self, Ctx::default());
        let trimmed = e.out.trim_end_matches('\n').len();
        e.out.truncate(trimmed);
        e.out
    }
}

/// Where a node is emitted: go-yaml's `*_context` flags, and whether the state under it is
/// `yaml_EMIT_BLOCK_SEQUENCE_ITEM_STATE` (which changes how indentation grows).
#[derive(Clone, Copy, Default)]
struct Ctx {
    mapping: bool,
    simple_key: bool,
    seq_item: bool,
}

/// go-yaml v3's `yaml_emitter_analyze_scalar` result.
struct Analysis {
    multiline: bool,
    flow_plain_allowed: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn analyze(value: &str) -> Analysis {
    let b = value.as_bytes();
    if b.is_empty() {
        return Analysis {
            multiline: false,
            flow_plain_allowed: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let (mut block_indicators, mut flow_indicators) = (false, false);
    if b.starts_with(b"---") || b.starts_with(b"...") {
        block_indicators = true;
        flow_indicators = true;
    }
    let (mut line_breaks, mut special_characters, mut tab_characters) = (false, false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let mut i = 0;
    while i < b.len() {
        let w = width(b[i]);
        let followed_by_whitespace = i + w >= b.len() || is_blank(b, i + w);
        if i == 0 {
            match b[i] {
                b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"'
                | b'%' | b'@' | b'`' => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                b'?' | b':' => {
                    flow_indicators = true;
                    block_indicators |= followed_by_whitespace;
                }
                b'-' if followed_by_whitespace => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                _ => {}
            }
        } else {
            match b[i] {
                b',' | b'?' | b'[' | b']' | b'{' | b'}' => flow_indicators = true,
                b':' => {
                    flow_indicators = true;
                    block_indicators |= followed_by_whitespace;
                }
                b'#' if preceded_by_whitespace => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                _ => {}
            }
        }
        if b[i] == b'\t' {
            tab_characters = true;
        } else if !is_printable(b, i) {
            special_characters = true;
        }
        if is_space(b, i) {
            leading_space |= i == 0;
            trailing_space |= i + w == b.len();
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(b, i) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= i + w == b.len();
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blankz(b, i);
        i += w;
    }
    let mut a = Analysis {
        multiline: line_breaks,
        flow_plain_allowed: true,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || tab_characters || special_characters {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special_characters {
        a.block_allowed = false;
    }
    if line_breaks {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
    }
    if flow_indicators {
        a.flow_plain_allowed = false;
    }
    if block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// go-yaml v3's emitter state for one document (no comments, anchors or tag directives).
struct V3Emitter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
    indent: isize,
    indents: Vec<isize>,
    flow_level: usize,
    /// Comments of the nodes started and not yet written (go-yaml's `emitter.*_comment`).
    head_comment: String,
    line_comment: String,
    key_line_comment: String,
}

impl V3Emitter {
    /// `yaml_emitter_analyze_event`'s comment part: a node's comments become pending.
    fn analyze(&mut self, node: &StyledNode) {
        let c = node.comments();
        if !c.head.is_empty() {
            self.head_comment.clone_from(&c.head);
        }
        if !c.line.is_empty() {
            self.line_comment.clone_from(&c.line);
        }
    }

    /// `yaml_emitter_process_head_comment` (no tail comments here).
    fn process_head_comment(&mut self) {
        if self.head_comment.is_empty() {
            return;
        }
        self.write_indent();
        let comment = std::mem::take(&mut self.head_comment);
        self.write_comment(&comment);
    }

    /// `yaml_emitter_process_line_comment`.
    fn process_line_comment(&mut self) {
        if self.line_comment.is_empty() {
            return;
        }
        if !self.whitespace {
            self.put(' ');
        }
        let comment = std::mem::take(&mut self.line_comment);
        self.write_comment(&comment);
    }

    /// `yaml_emitter_write_comment`.
    fn write_comment(&mut self, comment: &str) {
        let b = comment.as_bytes();
        let (mut breaks, mut pound) = (false, false);
        let mut i = 0;
        while i < b.len() {
            if is_break(b, i) {
                i += self.write_break(comment, i);
                breaks = true;
                pound = false;
            } else {
                if breaks {
                    self.write_indent();
                }
                if !pound {
                    if b[i] != b'#' {
                        self.put('#');
                        self.put(' ');
                    }
                    pound = true;
                }
                i += self.write(comment, i);
                self.indention = false;
                breaks = false;
            }
        }
        if !breaks {
            self.put_break();
        }
        self.whitespace = true;
    }

    /// A node in a block collection and the comments processed after it: a collection only
    /// starts there (its children come with later events), so its line comment goes first.
    fn node_then_line_comment(&mut self, node: &StyledNode, ctx: Ctx) {
        if node.is_scalar() {
            self.node(node, ctx);
            self.process_line_comment();
        } else {
            self.process_line_comment();
            self.node(node, ctx);
        }
    }

    /// `encoder.node` and `yaml_emitter_emit_node`.
    fn node(&mut self, node: &StyledNode, ctx: Ctx) {
        match node {
            StyledNode::Scalar {
                value,
                style,
                tag,
                explicit,
                ..
            } => self.scalar(value, *style, *tag, *explicit, ctx),
            StyledNode::Seq { items, flow, .. } => {
                if self.flow_level > 0 || *flow || items.is_empty() {
                    self.flow_seq(items, ctx);
                } else {
                    self.block_seq(items, ctx);
                }
            }
            StyledNode::Map { entries, flow, .. } => {
                if self.flow_level > 0 || *flow || entries.is_empty() {
                    self.flow_map(entries, ctx);
                } else {
                    self.block_map(entries, ctx);
                }
            }
        }
    }

    /// `yaml_emitter_increase_indent_compact`.
    fn increase_indent(&mut self, flow: bool, compact_seq: bool, seq_item: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if seq_item {
            // The first indent inside a sequence just skips the "- " indicator.
            self.indent += 2;
        } else {
            self.indent = BEST_INDENT * ((self.indent + BEST_INDENT) / BEST_INDENT);
            if compact_seq {
                self.indent -= 2;
            }
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn block_seq(&mut self, items: &[StyledNode], ctx: Ctx) {
        // kyaml's CompactSeqIndent: a sequence under a key is not indented.
        let compact = ctx.mapping && (self.column == 0 || !self.indention);
        self.increase_indent(false, compact, ctx.seq_item);
        for item in items {
            self.analyze(item);
            self.process_head_comment();
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node_then_line_comment(
                item,
                Ctx {
                    mapping: false,
                    simple_key: false,
                    seq_item: true,
                },
            );
        }
        self.pop_indent();
    }

    fn block_map(&mut self, entries: &[(StyledNode, StyledNode)], ctx: Ctx) {
        self.increase_indent(false, false, ctx.seq_item);
        let value_ctx = Ctx {
            mapping: true,
            simple_key: false,
            seq_item: false,
        };
        for (key, value) in entries {
            self.analyze(key);
            self.process_head_comment();
            self.write_indent();
            if !self.line_comment.is_empty() {
                // Line comments belong to values; a key's waits for its value.
                self.key_line_comment = std::mem::take(&mut self.line_comment);
            }
            if simple_key(key) {
                self.node(
                    key,
                    Ctx {
                        mapping: true,
                        simple_key: true,
                        seq_item: false,
                    },
                );
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.node(key, value_ctx);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.analyze(value);
            if !self.key_line_comment.is_empty() {
                if value.is_scalar() {
                    if self.line_comment.is_empty() {
                        self.line_comment = std::mem::take(&mut self.key_line_comment);
                    }
                } else if !value.is_flow() {
                    // An indented block follows: the key's comment is written now.
                    std::mem::swap(&mut self.line_comment, &mut self.key_line_comment);
                    self.process_line_comment();
                    std::mem::swap(&mut self.line_comment, &mut self.key_line_comment);
                }
            }
            self.node_then_line_comment(value, value_ctx);
        }
        self.pop_indent();
    }

    fn flow_seq(&mut self, items: &[StyledNode], ctx: Ctx) {
        self.write_indicator("[", true, true, false);
        self.increase_indent(true, false, ctx.seq_item);
        self.flow_level += 1;
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.write_indicator(",", false, false, false);
            }
            if self.column == 0 || self.column > BEST_WIDTH {
                self.write_indent();
            }
            self.node(item, Ctx::default());
        }
        self.flow_level -= 1;
        self.pop_indent();
        if self.column == 0 {
            self.write_indent();
        }
        self.write_indicator("]", false, false, false);
    }

    fn flow_map(&mut self, entries: &[(StyledNode, StyledNode)], ctx: Ctx) {
        self.write_indicator("{", true, true, false);
        self.increase_indent(true, false, ctx.seq_item);
        self.flow_level += 1;
        let value_ctx = Ctx {
            mapping: true,
            simple_key: false,
            seq_item: false,
        };
        for (i, (key, value)) in entries.iter().enumerate() {
            if i > 0 {
                self.write_indicator(",", false, false, false);
            }
            if self.column == 0 || self.column > BEST_WIDTH {
                self.write_indent();
            }
            if simple_key(key) {
                self.node(
                    key,
                    Ctx {
                        mapping: true,
                        simple_key: true,
                        seq_item: false,
                    },
                );
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, false);
                self.node(key, value_ctx);
                if self.column > BEST_WIDTH {
                    self.write_indent();
                }
                self.write_indicator(":", true, false, false);
            }
            self.node(value, value_ctx);
        }
        self.flow_level -= 1;
        self.pop_indent();
        self.write_indicator("}", false, false, false);
    }

    /// `encoder.node` for a scalar (the tag it keeps, the style it asks for), then
    /// `yaml_emitter_emit_scalar`.
    fn scalar(&mut self, value: &str, style: ScalarKind, tag: Option<CoreTag>, explicit: bool, ctx: Ctx) {
        let (tag, force_quoting) = scalar_tag(value, style, tag, explicit);
        let requested = match style {
            ScalarKind::Plain if value.contains('\n') => ScalarKind::Literal,
            ScalarKind::Plain if force_quoting => ScalarKind::DoubleQuoted,
            other => other,
        };
        let a = analyze(value);
        // yaml_emitter_select_scalar_style
        let mut style = requested;
        if ctx.simple_key && a.multiline {
            style = ScalarKind::DoubleQuoted;
        }
        let flow = self.flow_level > 0;
        if style == ScalarKind::Plain
            && ((flow && !a.flow_plain_allowed)
                || (!flow && !a.block_plain_allowed)
                || (value.is_empty() && (flow || ctx.simple_key)))
        {
            style = ScalarKind::SingleQuoted;
        }
        if style == ScalarKind::SingleQuoted && !a.single_quoted_allowed {
            style = ScalarKind::DoubleQuoted;
        }
        if matches!(style, ScalarKind::Literal | ScalarKind::Folded)
            && (!a.block_allowed || flow || ctx.simple_key)
        {
            style = ScalarKind::DoubleQuoted;
        }
        if let Some(tag) = tag {
            // yaml_emitter_write_tag_handle + write_tag_content: `!!` and the suffix.
            if !self.whitespace {
                self.put(' ');
            }
            self.out.push_str("!!");
            self.out.push_str(tag.suffix());
            self.column += 2 + tag.suffix().len();
            self.whitespace = false;
            self.indention = false;
        }
        self.increase_indent(true, false, ctx.seq_item);
        let allow_breaks = !ctx.simple_key;
        match style {
            ScalarKind::Plain => self.write_plain(value, allow_breaks),
            ScalarKind::SingleQuoted => self.write_single_quoted(value, allow_breaks),
            ScalarKind::DoubleQuoted => self.write_double_quoted(value, allow_breaks),
            ScalarKind::Literal => self.write_literal(value),
            ScalarKind::Folded => self.write_folded(value),
        }
        self.pop_indent();
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
        self.indention = true;
    }

    /// Copies the character at byte `i`; returns its width.
    fn write(&mut self, s: &str, i: usize) -> usize {
        let w = width(s.as_bytes()[i]).min(s.len() - i);
        self.out.push_str(&s[i..i + w]);
        self.column += 1;
        w
    }

    fn write_break(&mut self, s: &str, i: usize) -> usize {
        if s.as_bytes()[i] == b'\n' {
            self.put_break();
            1
        } else {
            let w = self.write(s, i);
            self.column = 0;
            self.indention = true;
            w
        }
    }

    fn write_indent(&mut self) {
        let indent = usize::try_from(self.indent.max(0)).unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        self.out.push_str(indicator);
        self.column += indicator.chars().count();
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn write_plain(&mut self, s: &str, allow_breaks: bool) {
        let b = s.as_bytes();
        if !b.is_empty() && !self.whitespace {
            self.put(' ');
        }
        let (mut spaces, mut breaks) = (false, false);
        let mut i = 0;
        while i < b.len() {
            if is_space(b, i) {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !is_space(b, i + 1) {
                    self.write_indent();
                    i += width(b[i]);
                } else {
                    i += self.write(s, i);
                }
                spaces = true;
            } else if is_break(b, i) {
                if !breaks && b[i] == b'\n' {
                    self.put_break();
                }
                i += self.write_break(s, i);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                i += self.write(s, i);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        if !b.is_empty() {
            self.whitespace = false;
        }
        self.indention = false;
    }

    fn write_single_quoted(&mut self, s: &str, allow_breaks: bool) {
        let b = s.as_bytes();
        self.write_indicator("'", true, false, false);
        let (mut spaces, mut breaks) = (false, false);
        let mut i = 0;
        while i < b.len() {
            if is_space(b, i) {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i < b.len() - 1
                    && !is_space(b, i + 1)
                {
                    self.write_indent();
                    i += width(b[i]);
                } else {
                    i += self.write(s, i);
                }
                spaces = true;
            } else if is_break(b, i) {
                if !breaks && b[i] == b'\n' {
                    self.put_break();
                }
                i += self.write_break(s, i);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if b[i] == b'\'' {
                    self.put('\'');
                }
                i += self.write(s, i);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double_quoted(&mut self, s: &str, allow_breaks: bool) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let b = s.as_bytes();
        let bom = starts_with_bom(b);
        let mut spaces = false;
        self.write_indicator("\"", true, false, false);
        let mut i = 0;
        while i < b.len() {
            if !is_printable(b, i) || bom || is_break(b, i) || b[i] == b'"' || b[i] == b'\\' {
                let c = s[i..].chars().next().unwrap_or('\0');
                i += c.len_utf8();
                self.put('\\');
                let v = u32::from(c);
                let short = match v {
                    0x00 => Some('0'),
                    0x07 => Some('a'),
                    0x08 => Some('b'),
                    0x09 => Some('t'),
                    0x0A => Some('n'),
                    0x0B => Some('v'),
                    0x0C => Some('f'),
                    0x0D => Some('r'),
                    0x1B => Some('e'),
                    0x22 => Some('"'),
                    0x5C => Some('\\'),
                    0x85 => Some('N'),
                    0xA0 => Some('_'),
                    0x2028 => Some('L'),
                    0x2029 => Some('P'),
                    _ => None,
                };
                if let Some(e) = short {
                    self.put(e);
                } else {
                    let (letter, digits) = match v {
                        0..=0xFF => ('x', 2),
                        0x100..=0xFFFF => ('u', 4),
                        _ => ('U', 8),
                    };
                    self.put(letter);
                    for k in (0..digits).rev() {
                        self.put(char::from(HEX[((v >> (4 * k)) & 0xF) as usize]));
                    }
                }
                spaces = false;
            } else if is_space(b, i) {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i < b.len() - 1 {
                    self.write_indent();
                    if is_space(b, i + 1) {
                        self.put('\\');
                    }
                    i += 1;
                } else {
                    i += self.write(s, i);
                }
                spaces = true;
            } else {
                i += self.write(s, i);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    /// `yaml_emitter_write_block_scalar_hints`.
    fn block_hints(&mut self, s: &str) {
        let b = s.as_bytes();
        if is_space(b, 0) || is_break(b, 0) {
            self.write_indicator("2", false, false, false);
        }
        let chomp = if b.is_empty() {
            Some("-")
        } else {
            let last = last_char_start(b, b.len());
            if !is_break(b, last) {
                Some("-")
            } else if last == 0 || is_break(b, last_char_start(b, last)) {
                Some("+")
            } else {
                None
            }
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
    }

    fn write_literal(&mut self, s: &str) {
        let b = s.as_bytes();
        self.write_indicator("|", true, false, false);
        self.block_hints(s);
        self.put_break();
        self.whitespace = true;
        let mut breaks = true;
        let mut i = 0;
        while i < b.len() {
            if is_break(b, i) {
                i += self.write_break(s, i);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                i += self.write(s, i);
                self.indention = false;
                breaks = false;
            }
        }
    }

    fn write_folded(&mut self, s: &str) {
        let b = s.as_bytes();
        self.write_indicator(">", true, false, false);
        self.block_hints(s);
        self.put_break();
        self.whitespace = true;
        let (mut breaks, mut leading_spaces) = (true, true);
        let mut i = 0;
        while i < b.len() {
            if is_break(b, i) {
                if !breaks && !leading_spaces && b[i] == b'\n' {
                    // go-yaml looks from the start of the value here (k starts at 0), not after
                    // this break: kept, since it decides where kustomize puts blank lines.
                    let mut k = 0;
                    while is_break(b, k) {
                        k += width(at(b, k));
                    }
                    if !is_blankz(b, k) {
                        self.put_break();
                    }
                }
                i += self.write_break(s, i);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                    leading_spaces = is_blank(b, i);
                }
                if !breaks && is_space(b, i) && !is_space(b, i + 1) && self.column > BEST_WIDTH {
                    self.write_indent();
                    i += width(b[i]);
                } else {
                    i += self.write(s, i);
                }
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// The tag `encoder.node` writes for a scalar, and whether it forces double quotes: a tag is
/// dropped when the text resolves to it anyway (or the node is a quoted or block string); a
/// `!!str` whose text would resolve otherwise is quoted instead; any other mismatch is written.
fn scalar_tag(
    value: &str,
    style: ScalarKind,
    tag: Option<CoreTag>,
    explicit: bool,
) -> (Option<CoreTag>, bool) {
    let Some(tag) = tag else {
        return (None, false);
    };
    if explicit {
        return (Some(tag), false);
    }
    if tag == CoreTag::Str && style != ScalarKind::Plain {
        return (None, false);
    }
    let resolved = CoreTag::of_plain(value);
    if resolved == tag {
        (None, false)
    } else if tag == CoreTag::Str {
        (None, true)
    } else {
        (Some(tag), false)
    }
}

/// `yaml_emitter_check_simple_key` for a key node.
fn simple_key(key: &StyledNode) -> bool {
    match key {
        StyledNode::Scalar {
            value,
            style,
            tag,
            explicit,
            ..
        } => {
            let (tag, _) = scalar_tag(value, *style, *tag, *explicit);
            let tag_len = tag.map_or(0, |t| 2 + t.suffix().len());
            !analyze(value).multiline && value.len() + tag_len <= MAX_SIMPLE_KEY
        }
        StyledNode::Seq { items, .. } => items.is_empty(),
        StyledNode::Map { entries, .. } => entries.is_empty(),
    }
}

fn last_char_start(b: &[u8], end: usize) -> usize {
    let mut i = end.saturating_sub(1);
    while i > 0 && b[i] & 0xC0 == 0x80 {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> String {
        StyledNode::parse(text, &Limits::DEFAULT)
            .expect("parses")
            .expect("a document")
            .to_kyaml_string()
    }

    #[test]
    fn keeps_order_and_styles_and_normalises_indentation() {
        let text = "database:\n    port: 5432\n    host: localhost\n    names:\n        - a\n        -   b\n        - {x: 1, y: \"two\"}\n        - [1, 2]\n    q: 'single'\n    lit: |\n      line1\n      line2\n    fold: >\n      folded text\n      more\n    empty:\n    tilde: ~\nother: 1\n";
        assert_eq!(
            round_trip(text),
            "database:\n  port: 5432\n  host: localhost\n  names:\n  - a\n  - b\n  - {x: 1, y: \"two\"}\n  - [1, 2]\n  q: 'single'\n  lit: |\n    line1\n    line2\n  fold: >\n    folded text more\n\n  empty:\n  tilde: ~\nother: 1"
        );
    }

    #[test]
    fn head_and_line_comments_are_kept() {
        let text = "# the database\ndatabase:\n    port: 5432    # the port\n    # names\n    names:   # list\n        # first\n        - a # item\n        -   b\n# other\nother: 1\n";
        assert_eq!(
            round_trip(text),
            "# the database\ndatabase:\n  port: 5432 # the port\n  # names\n  names: # list\n  # first\n  - a # item\n  - b\n# other\nother: 1"
        );
    }

    #[test]
    fn a_string_that_reads_otherwise_is_quoted_and_other_tags_are_written() {
        let mut doc = StyledNode::parse("a: x\nb: 1\n", &Limits::DEFAULT)
            .unwrap()
            .unwrap();
        doc.get_mut("a").unwrap().set_text("5");
        doc.get_mut("b").unwrap().set_text("y");
        assert_eq!(doc.to_kyaml_string(), "a: \"5\"\nb: !!int y");
        // Written tags are kept, so the text reads back the same.
        let again = StyledNode::parse(&doc.to_kyaml_string(), &Limits::DEFAULT)
            .unwrap()
            .unwrap();
        assert_eq!(again.to_kyaml_string(), "a: \"5\"\nb: !!int y");
    }

    #[test]
    fn comments_anchors_and_tags_are_refused() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !foo 1\n",
            "a: !!map {}\n",
            "a:\n  b: 1\n  # foot\nc: 2\n",
            "# head\n\na: 1\n",
            "a: [1, 2] # c\n",
            "a: 1\n# end\n",
        ] {
            assert!(matches!(
                StyledNode::parse(text, &Limits::DEFAULT),
                Err(StyledError::Unsupported(_))
            ));
        }
    }
}
