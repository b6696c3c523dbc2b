//! Printing values byte for byte as `kubectl kustomize` prints them.
//!
//! kustomize prints each object as JSON, converts it with sigs.k8s.io/yaml `JSONToYAML` (go-yaml
//! v2 `Unmarshal` of the JSON, then `Marshal`). So: numbers are whatever go-yaml v2 reads back
//! from Go's JSON text (an integral float is an integer, others print as Go's `%g`), map keys are
//! sorted by go-yaml v2's `keyList.Less`, and the emitter is libyaml's, as ported to Go. This is a
//! port of the parts of go-yaml v2's `encode.go` and `emitterc.go` that JSON values reach: block
//! mappings and sequences (flow only for `{}` and `[]`), scalar style selection
//! (`yaml_emitter_analyze_scalar` / `select_scalar_style`), the plain, single-quoted,
//! double-quoted and literal writers with folding at 80 columns, and the quirks that come with
//! them (keys over 128 bytes or with line breaks become `? ` keys, a leading BOM escapes every
//! character of a double-quoted string).
//!
//! The walk over the value is iterative, so no nesting depth can overflow the stack.

use std::borrow::Cow;

use rayon::prelude::*;
use serde_json::{Number, Value};

use super::resolve::plain_is_string_v2;

/// go-yaml v2's `best_width`.
const BEST_WIDTH: usize = 80;
/// go-yaml v2's `best_indent`.
const BEST_INDENT: isize = 2;
/// Longest key (in bytes) go-yaml writes as a simple `key:`; longer ones become `? key`.
const MAX_SIMPLE_KEY: usize = 128;

/// One document, without a leading `---`, ending in a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut emitter = Emitter::new(String::new());
    emitter.document(value, &mut Walk::default());
    emitter.out
}

/// Documents per share when a stream is printed in parallel; a stream of fewer than two shares is
/// printed on the calling thread (a large render spends a tenth of its time here).
pub const PARALLEL_EMIT_DOCUMENTS: usize = 2_000;

/// Several documents separated by `---` lines, as `kubectl kustomize` prints a stream (no `---`
/// before the first document).
pub fn to_yaml_stream(values: &[Value]) -> String {
    if values.len() < 2 * PARALLEL_EMIT_DOCUMENTS {
        return emit_stream(values);
    }
    // The walk is iterative, so rayon's default thread stacks are enough.
    let shares: Vec<String> = values
        .par_chunks(PARALLEL_EMIT_DOCUMENTS)
        .map(emit_stream)
        .collect();
    shares.join("---\n")
}

fn emit_stream(values: &[Value]) -> String {
    let mut emitter = Emitter::new(String::with_capacity(values.len() * 768));
    let mut walk = Walk::default();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            emitter.out.push_str("---\n");
        }
        emitter.document(value, &mut walk);
    }
    emitter.out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

/// The result of `yaml_emitter_analyze_scalar`, for block context (JSON values never put a
/// scalar inside a flow collection).
#[derive(Clone, Copy, Debug)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

enum Frame<'a> {
    Seq(std::slice::Iter<'a, Value>),
    /// Sorted entries and the index of the next one.
    Map(Vec<(&'a str, &'a Value)>, usize),
}

/// The walk's explicit stack, and entry vectors to reuse (one allocation per nesting level, not
/// per mapping).
#[derive(Default)]
struct Walk<'a> {
    stack: Vec<Frame<'a>>,
    spare: Vec<Vec<(&'a str, &'a Value)>>,
}

struct Emitter {
    out: String,
    /// Column in characters, as go-yaml counts.
    column: usize,
    whitespace: bool,
    indention: bool,
    indent: isize,
    indents: Vec<isize>,
    /// Scratch buffer for number formatting.
    number: String,
}

// Byte classes from go-yaml's yamlprivateh.go, bounds-checked (Go would read past the end only
// on paths valid UTF-8 never reaches).
pub(super) fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

pub(super) fn is_space(b: &[u8], i: usize) -> bool {
    at(b, i) == b' '
}

pub(super) fn is_blank(b: &[u8], i: usize) -> bool {
    matches!(at(b, i), b' ' | b'\t')
}

pub(super) fn is_break(b: &[u8], i: usize) -> bool {
    match at(b, i) {
        b'\r' | b'\n' => true,
        0xC2 => at(b, i + 1) == 0x85,
        0xE2 => at(b, i + 1) == 0x80 && matches!(at(b, i + 2), 0xA8 | 0xA9),
        _ => false,
    }
}

pub(super) fn is_blankz(b: &[u8], i: usize) -> bool {
    is_blank(b, i) || is_break(b, i) || at(b, i) == 0
}

pub(super) fn is_printable(b: &[u8], i: usize) -> bool {
    let c = at(b, i);
    c == 0x0A
        || (0x20..=0x7E).contains(&c)
        || (c == 0xC2 && at(b, i + 1) >= 0xA0)
        || (c > 0xC2 && c < 0xED)
        || (c == 0xED && at(b, i + 1) < 0xA0)
        || c == 0xEE
        || (c == 0xEF
            && !(at(b, i + 1) == 0xBB && at(b, i + 2) == 0xBF)
            && !(at(b, i + 1) == 0xBF && matches!(at(b, i + 2), 0xBE | 0xBF)))
}

/// go-yaml's `is_bom(b, i)` looks at the start of the string whatever `i` is.
pub(super) fn starts_with_bom(b: &[u8]) -> bool {
    b.starts_with(&[0xEF, 0xBB, 0xBF])
}

pub(super) fn width(c: u8) -> usize {
    if c & 0x80 == 0 {
        1
    } else if c & 0xE0 == 0xC0 {
        2
    } else if c & 0xF0 == 0xE0 {
        3
    } else {
        4
    }
}

/// Bytes that are no indicator anywhere, printable, and neither space nor break.
const fn quiet_bytes() -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'_' | b'/' | b'=' | b'+' | b'(' | b')' | b'$' | b'^' | b'~' | b';' | b'<'
            );
        c += 1;
    }
    t
}
static QUIET: [bool; 256] = quiet_bytes();

fn analyze(value: &str) -> Analysis {
    let b = value.as_bytes();
    // Fast path for the common word-like string: only `-` alone and a `---`/`...` start matter.
    if !b.is_empty() && b.iter().all(|c| QUIET[usize::from(*c)]) {
        return Analysis {
            multiline: false,
            block_plain_allowed: !(b == b"-" || b.starts_with(b"---") || b.starts_with(b"...")),
            single_quoted_allowed: true,
            block_allowed: true,
        };
    }
    if b.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = b.starts_with(b"---") || b.starts_with(b"...");
    let (mut line_breaks, mut special_characters) = (false, false);
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
                | b'%' | b'@' | b'`' => block_indicators = true,
                b'?' | b':' | b'-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match b[i] {
                b':' if followed_by_whitespace => block_indicators = true,
                b'#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(b, i) {
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
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special_characters {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// go-yaml v2 `encoder.stringv`: the style asked for before the emitter has its say.
fn requested_style(s: &str) -> Style {
    if s.contains('\n') {
        Style::Literal
    } else if plain_is_string_v2(s) {
        Style::Plain
    } else {
        Style::DoubleQuoted
    }
}

/// `yaml_emitter_select_scalar_style` in block context, for untagged implicit scalars.
fn select_style(requested: Style, a: &Analysis, empty: bool, simple_key: bool) -> Style {
    let mut style = requested;
    if simple_key && a.multiline {
        style = Style::DoubleQuoted;
    }
    if style == Style::Plain && (!a.block_plain_allowed || (empty && simple_key)) {
        style = Style::SingleQuoted;
    }
    if style == Style::SingleQuoted && !a.single_quoted_allowed {
        style = Style::DoubleQuoted;
    }
    if style == Style::Literal && (!a.block_allowed || simple_key) {
        style = Style::DoubleQuoted;
    }
    style
}

impl Emitter {
    fn new(out: String) -> Self {
        Emitter {
            out,
            column: 0,
            whitespace: true,
            indention: true,
            indent: -1,
            indents: Vec::new(),
            number: String::new(),
        }
    }

    /// One `yaml.Marshal` call: a fresh emitter state, an implicit document start and end.
    fn document<'v>(&mut self, root: &'v Value, walk: &mut Walk<'v>) {
        self.column = 0;
        self.whitespace = true;
        self.indention = true;
        self.indent = -1;
        self.indents.clear();
        if let Some(frame) = self.node(root, false, &mut walk.spare) {
            walk.stack.push(frame);
        }
        while let Some(top) = walk.stack.last_mut() {
            let child = match top {
                Frame::Seq(items) => match items.next() {
                    None => {
                        self.pop_indent();
                        walk.stack.pop();
                        continue;
                    }
                    Some(item) => {
                        self.write_indent();
                        self.write_indicator("-", true, false, true);
                        self.node(item, false, &mut walk.spare)
                    }
                },
                Frame::Map(entries, next) => match entries.get(*next).copied() {
                    None => {
                        self.pop_indent();
                        if let Some(Frame::Map(mut entries, _)) = walk.stack.pop() {
                            entries.clear();
                            walk.spare.push(entries);
                        }
                        continue;
                    }
                    Some((key, value)) => {
                        *next += 1;
                        self.write_indent();
                        let a = analyze(key);
                        if !a.multiline && key.len() <= MAX_SIMPLE_KEY {
                            self.string(key, &a, true);
                            self.write_indicator(":", false, false, false);
                        } else {
                            self.write_indicator("?", true, false, true);
                            self.string(key, &a, false);
                            self.write_indent();
                            self.write_indicator(":", true, false, true);
                        }
                        self.node(value, true, &mut walk.spare)
                    }
                },
            };
            if let Some(frame) = child {
                walk.stack.push(frame);
            }
        }
        // Implicit document end.
        self.write_indent();
    }

    /// Starts a node; returns the frame to continue with for a non-empty collection.
    fn node<'v>(
        &mut self,
        value: &'v Value,
        mapping_context: bool,
        spare: &mut Vec<Vec<(&'v str, &'v Value)>>,
    ) -> Option<Frame<'v>> {
        match value {
            Value::Null => self.plain_atom("null"),
            Value::Bool(true) => self.plain_atom("true"),
            Value::Bool(false) => self.plain_atom("false"),
            Value::Number(n) => {
                let mut text = std::mem::take(&mut self.number);
                text.clear();
                format_number(n, &mut text);
                self.plain_atom(&text);
                self.number = text;
            }
            Value::String(s) => {
                let s = fold_nel(s);
                let a = analyze(&s);
                self.string(&s, &a, false);
            }
            Value::Array(items) if items.is_empty() => self.empty_flow("[", "]"),
            Value::Object(map) if map.is_empty() => self.empty_flow("{", "}"),
            Value::Array(items) => {
                // A sequence that is a mapping value is not indented under its key.
                let indentless = mapping_context && !self.indention;
                self.increase_indent(false, indentless);
                return Some(Frame::Seq(items.iter()));
            }
            Value::Object(map) => {
                self.increase_indent(false, false);
                // Keys are not folded: a key with NEL makes kustomize fail (its JSON text then has
                // a multi-line key), and the parser refuses such keys.
                let mut entries = spare.pop().unwrap_or_default();
                entries.extend(map.iter().map(|(k, v)| (k.as_str(), v)));
                sort_keys(&mut entries);
                return Some(Frame::Map(entries, 0));
            }
        }
        None
    }

    fn empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.write_indicator(close, false, false, false);
    }

    /// A plain scalar without spaces or special characters (null, booleans, numbers).
    fn plain_atom(&mut self, text: &str) {
        if !self.whitespace {
            self.put(' ');
        }
        self.out.push_str(text);
        self.column += text.len();
        self.whitespace = false;
        self.indention = false;
    }

    fn string(&mut self, s: &str, a: &Analysis, simple_key: bool) {
        let style = select_style(requested_style(s), a, s.is_empty(), simple_key);
        self.increase_indent(true, false);
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.write_plain_or_single_quoted(s, allow_breaks, false),
            Style::SingleQuoted => self.write_plain_or_single_quoted(s, allow_breaks, true),
            Style::DoubleQuoted => self.write_double_quoted(s, allow_breaks),
            Style::Literal => self.write_literal(s),
        }
        self.pop_indent();
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    /// Copies the character starting at byte `i`; returns its width.
    fn write(&mut self, s: &str, i: usize) -> usize {
        let w = width(s.as_bytes()[i]);
        self.out.push_str(&s[i..i + w]);
        self.column += 1;
        w
    }

    /// Copies `run`, `chars` characters long, as consecutive `write` calls would.
    fn write_run(&mut self, run: &str, chars: usize) {
        self.out.push_str(run);
        self.column += chars;
    }

    fn write_break(&mut self, s: &str, i: usize) -> usize {
        if s.as_bytes()[i] == b'\n' {
            self.put_break();
            1
        } else {
            let w = self.write(s, i);
            self.column = 0;
            w
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        const SPACES: &str = "                                                                ";
        while self.column < indent {
            let n = (indent - self.column).min(SPACES.len());
            self.out.push_str(&SPACES[..n]);
            self.column += n;
        }
        self.whitespace = true;
        self.indention = true;
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
        self.column += indicator.len();
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    /// go-yaml's `yaml_emitter_write_plain_scalar` and, with `single`,
    /// `yaml_emitter_write_single_quoted_scalar`: the same loop, which folds long lines at a
    /// single space and writes line breaks doubled.
    fn write_plain_or_single_quoted(&mut self, s: &str, allow_breaks: bool, single: bool) {
        let b = s.as_bytes();
        if single {
            self.write_indicator("'", true, false, false);
        } else if !self.whitespace {
            self.put(' ');
        }
        let (mut spaces, mut breaks) = (false, false);
        let mut i = 0;
        while i < b.len() {
            if is_space(b, i) {
                // A single-quoted scalar never folds at its first or last character.
                let inner = !single || (i > 0 && i < b.len() - 1);
                if allow_breaks && !spaces && self.column > BEST_WIDTH && inner && !is_space(b, i + 1) {
                    self.write_indent();
                    i += 1;
                } else {
                    i += self.write(s, i);
                }
                spaces = true;
            } else if is_break(b, i) {
                if !breaks && b[i] == b'\n' {
                    self.put_break();
                }
                i += self.write_break(s, i);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if single && b[i] == b'\'' {
                    self.put('\'');
                    i += self.write(s, i);
                } else {
                    // The characters up to the next space, break or quote, in one go.
                    let start = i;
                    let mut chars = 0;
                    let ordinary =
                        |i: usize| !(is_space(b, i) || is_break(b, i) || (single && b[i] == b'\''));
                    while i < b.len() && ordinary(i) {
                        i += width(b[i]);
                        chars += 1;
                    }
                    self.write_run(&s[start..i], chars);
                }
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        if single {
            self.write_indicator("'", false, false, false);
        }
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
                let start = i;
                let mut chars = 0;
                while i < b.len()
                    && is_printable(b, i)
                    && !bom
                    && !is_break(b, i)
                    && !matches!(b[i], b'"' | b'\\' | b' ')
                {
                    i += width(b[i]);
                    chars += 1;
                }
                self.write_run(&s[start..i], chars);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, s: &str) {
        let b = s.as_bytes();
        self.write_indicator("|", true, false, false);
        // yaml_emitter_write_block_scalar_hints
        if is_space(b, 0) || is_break(b, 0) {
            self.write_indicator("2", false, false, false);
        }
        let last = last_char_start(b, b.len());
        // Strip without a final break; keep when the value is one break or ends in two.
        let chomp = if !is_break(b, last) {
            Some("-")
        } else if last == 0 || is_break(b, last_char_start(b, last)) {
            Some("+")
        } else {
            None
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        let mut i = 0;
        while i < b.len() {
            if is_break(b, i) {
                i += self.write_break(s, i);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                let start = i;
                let mut chars = 0;
                while i < b.len() && !is_break(b, i) {
                    i += width(b[i]);
                    chars += 1;
                }
                self.write_run(&s[start..i], chars);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// What a string becomes on its way through Go's JSON text and go-yaml v2's parser: JSON does not
/// escape NEL (U+0085), and YAML 1.1 folds that line break inside a double-quoted scalar (with the
/// spaces around it) into a space, or into line feeds when several follow each other. Every other
/// line break JSON escapes, so only NEL changes anything.
fn fold_nel(s: &str) -> Cow<'_, str> {
    const NEL: char = '\u{85}';
    // NEL is C2 85: without a 0x85 byte there is none.
    if !s.as_bytes().contains(&0x85) || !s.contains(NEL) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let mut whitespaces = String::new();
    loop {
        while let Some(&c) = chars.peek() {
            if c == ' ' || c == NEL {
                break;
            }
            out.push(c);
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let (mut leading_blanks, mut trailing_breaks) = (false, 0);
        while let Some(&c) = chars.peek() {
            match c {
                ' ' if !leading_blanks => whitespaces.push(' '),
                ' ' => {}
                NEL if !leading_blanks => {
                    whitespaces.clear();
                    leading_blanks = true;
                }
                NEL => trailing_breaks += 1,
                _ => break,
            }
            chars.next();
        }
        if leading_blanks {
            if trailing_breaks == 0 {
                out.push(' ');
            } else {
                out.extend(std::iter::repeat_n('\n', trailing_breaks));
            }
        } else {
            out.push_str(&whitespaces);
            whitespaces.clear();
        }
    }
    Cow::Owned(out)
}

/// Start of the character that ends before byte `end` (`end` > 0).
fn last_char_start(b: &[u8], end: usize) -> usize {
    let mut i = end.saturating_sub(1);
    while i > 0 && b[i] & 0xC0 == 0x80 {
        i -= 1;
    }
    i
}

/// A JSON number as kustomize prints it: Go's `encoding/json` text of the number, read back by
/// go-yaml v2 (integer if it parses as one, otherwise a float printed with Go's
/// `strconv.FormatFloat(f, 'g', -1, 64)`).
fn format_number(n: &Number, out: &mut String) {
    use std::fmt::Write as _;
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        format_float(f, out);
    }
}

fn format_float(f: f64, out: &mut String) {
    use std::fmt::Write as _;
    if f.fract() == 0.0 && f.abs() < 1e21 {
        // Go's JSON text for it has no exponent ('f' format, shortest digits padded with zeros),
        // which is what Rust's Display prints; go-yaml then reads an integer if one fits.
        let start = out.len();
        let _ = write!(out, "{f}");
        let text = &out[start..];
        if let Ok(i) = text.parse::<i64>() {
            out.truncate(start);
            let _ = write!(out, "{i}");
            return;
        }
        if text.parse::<u64>().is_ok() {
            return;
        }
        out.truncate(start);
    }
    format_float_g(f, out);
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` for finite `f`.
fn format_float_g(f: f64, out: &mut String) {
    use std::fmt::Write as _;
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: d[.ddd]e[-]x
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    let nd = digits.len() as i32;
    let dp = exp + 1;
    if neg {
        out.push('-');
    }
    // %e is used if the exponent is less than -4 or at least the precision, 6 for shortest.
    if !(-4..6).contains(&exp) {
        out.push(char::from(digits[0]));
        if nd > 1 {
            out.push('.');
            out.extend(digits[1..].iter().map(|d| char::from(*d)));
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else {
        if dp > 0 {
            for k in 0..dp {
                out.push(digits.get(k as usize).map_or('0', |d| char::from(*d)));
            }
        } else {
            out.push('0');
        }
        let frac = (nd - dp).max(0);
        if frac > 0 {
            out.push('.');
            for k in 1..=frac {
                let j = dp + k - 1;
                out.push(if (0..nd).contains(&j) {
                    char::from(digits[j as usize])
                } else {
                    '0'
                });
            }
        }
    }
}

/// Sorts map keys as go-yaml v2's `keyList.Less` orders strings.
///
/// That order is not always transitive (`a1b` < `a2` < `a10` < `a1b`), and Go hands the keys to
/// `sort.Sort` in random map order, so for such keys kustomize's own output varies from run to
/// run. A merge sort never panics on such an order and gives the one answer whenever the order
/// is consistent. JSON maps arrive in byte order, which is mostly go-yaml's order already: that
/// case costs one comparison per key.
fn sort_keys<'a>(entries: &mut Vec<(&'a str, &'a Value)>) {
    if entries.windows(2).all(|w| key_less(w[0].0, w[1].0)) {
        return;
    }
    merge_sort(entries);
}

fn merge_sort<'a>(entries: &mut Vec<(&'a str, &'a Value)>) {
    let n = entries.len();
    if n <= 1 {
        return;
    }
    let mut src = std::mem::take(entries);
    let mut dst: Vec<(&str, &Value)> = Vec::with_capacity(n);
    let mut run = 1;
    while run < n {
        dst.clear();
        let mut lo = 0;
        while lo < n {
            let mid = (lo + run).min(n);
            let hi = (lo + 2 * run).min(n);
            let (mut i, mut j) = (lo, mid);
            while i < mid && j < hi {
                if key_less(src[j].0, src[i].0) {
                    dst.push(src[j]);
                    j += 1;
                } else {
                    dst.push(src[i]);
                    i += 1;
                }
            }
            dst.extend_from_slice(&src[i..mid]);
            dst.extend_from_slice(&src[j..hi]);
            lo = hi;
        }
        std::mem::swap(&mut src, &mut dst);
        run *= 2;
    }
    *entries = src;
}

/// Go's `unicode.IsLetter` and `unicode.IsDigit` (general categories L and Nd) for a non-ASCII
/// character.
fn unicode_letter_digit(c: u32) -> (bool, bool) {
    static CLASSES: std::sync::LazyLock<Option<regex::RegexSet>> =
        std::sync::LazyLock::new(|| regex::RegexSet::new([r"^\p{L}$", r"^\p{Nd}$"]).ok());
    let mut buf = [0u8; 4];
    match (CLASSES.as_ref(), char::from_u32(c)) {
        (Some(set), Some(c)) => {
            let m = set.matches(c.encode_utf8(&mut buf));
            (m.matched(0), m.matched(1))
        }
        _ => (false, false),
    }
}

fn is_letter(c: u32) -> bool {
    if c < 0x80 {
        u8::try_from(c).is_ok_and(|b| b.is_ascii_alphabetic())
    } else {
        unicode_letter_digit(c).0
    }
}

fn is_digit(c: u32) -> bool {
    if c < 0x80 {
        u8::try_from(c).is_ok_and(|b| b.is_ascii_digit())
    } else {
        unicode_letter_digit(c).1
    }
}

/// go-yaml v2 `keyList.Less` for two string keys: letters sort after other characters, runs of
/// digits compare as numbers. Compares bytes when both keys are ASCII, characters otherwise.
fn key_less(a: &str, b: &str) -> bool {
    // Most neighbours first differ in two ASCII letters, or one is a prefix of the other.
    match a.bytes().zip(b.bytes()).find(|(x, y)| x != y) {
        None => return a.len() < b.len(),
        Some((x, y)) if x.is_ascii_alphabetic() && y.is_ascii_alphabetic() => return x < y,
        Some(_) => {}
    }
    if a.is_ascii() && b.is_ascii() {
        return runes_less(a.as_bytes(), b.as_bytes());
    }
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    runes_less(&ar, &br)
}

fn runes_less<C: Copy + Into<u32>>(ar: &[C], br: &[C]) -> bool {
    let zero = u32::from('0');
    for i in 0..ar.len().min(br.len()) {
        let (a, b): (u32, u32) = (ar[i].into(), br[i].into());
        if a == b {
            continue;
        }
        let (al, bl) = (is_letter(a), is_letter(b));
        if al && bl {
            return a < b;
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if a == zero || b == zero {
            let mut j = i;
            while j > 0 && is_digit(ar[j - 1].into()) {
                j -= 1;
                if ar[j].into() != zero {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && is_digit(ar[ai].into()) {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai].into()) - i64::from(zero));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && is_digit(br[bi].into()) {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi].into()) - i64::from(zero));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return a < b;
    }
    ar.len() < br.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_as_go_yaml_reads_back_go_json() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (1e6, "1000000"),
            (-0.0, "0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e-7, "1e-07"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (123456789.5, "1.234567895e+08"),
            (123456.5, "123456.5"),
            (1e20, "1e+20"),
            (1e21, "1e+21"),
            (1.5e19, "15000000000000000000"),
            (2e19, "2e+19"),
            (-1e19, "-1e+19"),
            (1152921504606846976.0, "1152921504606847000"),
            (1.2345678901234568e22, "1.2345678901234568e+22"),
            (-2.5e-300, "-2.5e-300"),
        ];
        for (f, want) in cases {
            let mut s = String::new();
            format_float(*f, &mut s);
            assert_eq!(&s, want, "{f:e}");
        }
    }

    #[test]
    fn a_stream_printed_in_shares_is_the_stream_printed_at_once() {
        let values: Vec<Value> = (0..PARALLEL_EMIT_DOCUMENTS * 3 + 7)
            .map(|i| serde_json::json!({"kind": "ConfigMap", "metadata": {"name": format!("c-{i}")}, "data": {"n": i}}))
            .collect();
        assert_eq!(to_yaml_stream(&values), emit_stream(&values));
        assert_eq!(to_yaml_stream(&values[..3]), emit_stream(&values[..3]));
        assert_eq!(to_yaml_stream(&[]), "");
    }

    #[test]
    fn keys_sort_as_go_yaml_v2() {
        // Checked against kubectl kustomize (keys whose go-yaml order is not transitive, such as
        // `a1x` next to `a2` and `a10`, make kustomize's own output vary and are left out).
        let mut keys = vec![
            "b", "a_b", "aB", "a10", "a2", "a1", "A", "_x", "1", "10", "9", "a01",
        ];
        let v = Value::Null;
        let mut entries: Vec<(&str, &Value)> = keys.iter().map(|k| (*k, &v)).collect();
        merge_sort(&mut entries);
        keys = entries.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [
                "_x", "1", "9", "10", "A", "a_b", "a1", "a01", "a2", "a10", "aB", "b"
            ]
        );
    }

    #[test]
    fn basic_shapes() {
        let v = json!({"a": [1, {"b": null, "c": []}], "d": {}, "e": "x\ny", "f": "", "g": "yes"});
        assert_eq!(
            to_yaml(&v),
            "a:\n- 1\n- b: null\n  c: []\nd: {}\ne: |-\n  x\n  y\nf: \"\"\ng: \"yes\"\n"
        );
        assert_eq!(
            to_yaml_stream(&[json!({"a": 1}), json!({"b": 2})]),
            "a: 1\n---\nb: 2\n"
        );
    }

    #[test]
    fn deep_values_print_without_recursion() {
        // 100,000 levels are in tests/yaml_hostile.rs (they need an iterative drop, too).
        let mut v = json!("leaf");
        for _ in 0..1_000 {
            v = json!([v, {"k": []}]);
        }
        let text = to_yaml(&v);
        assert!(text.starts_with("- - - "), "{}", &text[..20]);
        assert!(text.ends_with("- k: []\n"));
    }
}
