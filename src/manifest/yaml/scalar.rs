//! One scalar as kustomize reads it: go-yaml v3's resolution of its text, tag and style, plus
//! what kyaml's handling does to it before kustomize prints it (folded scalars and plain scalars
//! in flow collections come back changed from kyaml's re-encoding with go-yaml v3), and the
//! scalars kustomize fails on.

use base64::Engine as _;
use serde_json::Value;
use serde_saphyr::granit_parser::{ScalarStyle, Span, Tag};

use super::resolve::{CoreTag, Resolved, resolve_plain, resolve_plain_yaml11, resolve_tagged};

/// A scalar as kyaml reads it.
pub(super) enum Scalar {
    Value(Value),
    /// A value that is not of kind string although it prints as one (a timestamp): it cannot be a
    /// mapping key.
    NonStringText(Value),
    Merge,
}

fn yaml_tag_name(tag: &Tag) -> Option<std::borrow::Cow<'_, str>> {
    tag.suffix_in_namespace("tag:yaml.org,2002:")
}

/// A character kustomize reads but cannot print: its output path writes strings unescaped into
/// JSON text, which go-yaml v2 then refuses ("control characters are not allowed").
fn unprintable_char(s: &str) -> Option<char> {
    // All of them contain a 7F, C2 or EF byte: most strings need no decoding.
    if !s.bytes().any(|b| matches!(b, 0x7F | 0xC2 | 0xEF)) {
        return None;
    }
    s.chars()
        .find(|c| matches!(c, '\u{7F}'..='\u{84}' | '\u{86}'..='\u{9F}' | '\u{FFFE}' | '\u{FFFF}'))
}

/// go-yaml v3's reading of one scalar, tag and style included. `Err` holds the reason kustomize
/// would fail.
pub(super) fn scalar(
    value: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    flow: bool,
    yaml11: bool,
) -> Result<Scalar, String> {
    let parsed = scalar_unchecked(value, style, tag, flow, yaml11)?;
    if let Scalar::Value(Value::String(s)) = &parsed
        && let Some(c) = unprintable_char(s)
    {
        return Err(format!(
            "U+{:04X} in a string: kustomize cannot print it (control characters are not allowed)",
            u32::from(c)
        ));
    }
    Ok(parsed)
}

/// No tag, or the non-specific tag `!` (an empty handle with suffix `!`).
fn non_specific_tag(tag: Option<&Tag>) -> bool {
    tag.is_none_or(|t| t.handle().is_empty() && t.suffix() == "!")
}

fn scalar_unchecked(
    value: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    flow: bool,
    yaml11: bool,
) -> Result<Scalar, String> {
    let text = |v: &str| Scalar::Value(Value::String(v.to_string()));
    if yaml11 && non_specific_tag(tag) && style == ScalarStyle::Plain && value != "<<" {
        // sigs.k8s.io/yaml's YAMLToJSON (go-yaml v2): YAML 1.1 booleans, no `0o` octals, and a
        // timestamp-like scalar decoded into an interface stays its text.
        return Ok(match resolve_plain_yaml11(value) {
            Resolved::Timestamp(_) | Resolved::BadTimestamp => text(value),
            Resolved::Null => Scalar::Value(Value::Null),
            Resolved::Bool(b) => Scalar::Value(Value::Bool(b)),
            Resolved::Int(i) => Scalar::Value(Value::from(i)),
            Resolved::Uint(u) => Scalar::Value(Value::from(u)),
            Resolved::Float(f) => Scalar::Value(Value::from(f)),
            Resolved::NonFinite => {
                return Err(format!(
                    "`{value}` is not a finite number, which JSON cannot represent"
                ));
            }
            Resolved::Str => text(value),
        });
    }
    // The non-specific tag `!` comes as an empty handle with suffix `!`.
    let resolved = if non_specific_tag(tag) {
        if style == ScalarStyle::Folded {
            return Ok(Scalar::Value(Value::String(kyaml_folded_round_trip(value))));
        }
        if style != ScalarStyle::Plain {
            return Ok(text(value));
        }
        // go-yaml v3's parser tags a plain `<<` as the merge key; as a value it stays text.
        if value == "<<" {
            return Ok(Scalar::Merge);
        }
        let resolved = resolve_plain(value);
        // kyaml re-encodes resources with go-yaml v3, which keeps flow collections in flow style
        // and there quotes a plain scalar it may not write plain (empty, or with `:` as in
        // `12:30:00` timestamps): kustomize reads those back as strings.
        if flow && resolved != Resolved::Str && !v3_flow_plain_allowed(value) {
            return Ok(text(value));
        }
        resolved
    } else {
        let Some(name) = tag.and_then(yaml_tag_name) else {
            // Application tags (`!foo`): go-yaml cannot resolve them and keeps the text.
            return Ok(text(value));
        };
        let core = match name.as_ref() {
            "str" => return Ok(text(value)),
            "binary" => return binary(value).map(|s| Scalar::Value(Value::String(s))),
            "merge" if value == "<<" => return Ok(Scalar::Merge),
            "bool" => CoreTag::Bool,
            "int" => CoreTag::Int,
            "float" => CoreTag::Float,
            "null" => CoreTag::Null,
            "timestamp" => CoreTag::Timestamp,
            _ => return Ok(text(value)),
        };
        resolve_tagged(core, value).ok_or_else(|| format!("cannot decode `{value}` as a !!{name}"))?
    };
    Ok(match resolved {
        Resolved::Null => Scalar::Value(Value::Null),
        Resolved::Bool(b) => Scalar::Value(Value::Bool(b)),
        Resolved::Int(i) => Scalar::Value(Value::from(i)),
        Resolved::Uint(u) => Scalar::Value(Value::from(u)),
        Resolved::Float(f) => Scalar::Value(Value::from(f)),
        Resolved::NonFinite => {
            return Err(format!(
                "`{value}` is not a finite number, which JSON cannot represent"
            ));
        }
        Resolved::Timestamp(t) => Scalar::NonStringText(Value::String(t)),
        Resolved::BadTimestamp => {
            return Err(format!(
                "timestamp `{value}` has a zone offset of 24 hours or more"
            ));
        }
        Resolved::Str => text(value),
    })
}

/// go-yaml v3's `flow_plain_allowed` (yaml_emitter_analyze_scalar) for the text of a plain
/// scalar, which has no leading or trailing space and no line break.
fn v3_flow_plain_allowed(v: &str) -> bool {
    let b = v.as_bytes();
    if b.is_empty() || b.starts_with(b"---") || b.starts_with(b"...") {
        return false;
    }
    let blank_at = |i: usize| b.get(i).is_none_or(|c| matches!(c, b' ' | b'\t'));
    match b[0] {
        b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%'
        | b'@' | b'`' | b'?' | b':' => return false,
        b'-' if blank_at(1) => return false,
        _ => {}
    }
    for (i, c) in b.iter().enumerate().skip(1) {
        match c {
            b',' | b'?' | b'[' | b']' | b'{' | b'}' | b':' | b'\t' => return false,
            b'#' if blank_at(i - 1) => return false,
            _ => {}
        }
    }
    v.chars().all(|c| {
        matches!(c, '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}') && c != '\u{FEFF}'
    })
}

/// What a folded (`>`) scalar's value becomes inside kustomize. kyaml re-encodes every resource
/// with go-yaml v3 before decoding it (`RNode.MarshalJSON`), keeping the folded style, and go-yaml
/// v3's `yaml_emitter_write_folded_scalar` decides whether a line break needs an extra empty line
/// by looking at the start of the value instead of at the text after the break. Reading that back
/// adds a line feed before a line that starts with a blank, and before the trailing line feeds of a
/// keep (`>+`) scalar; when the value itself starts with a blank it drops one instead (lines get
/// joined). This writes the value as go-yaml v3 does (without its folding of long lines, which
/// reads back unchanged) and reads it back as libyaml does.
fn kyaml_folded_round_trip(v: &str) -> String {
    let printable = |c: char| {
        matches!(c, '\t' | '\n' | '\u{20}'..='\u{7E}' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            && c != '\u{FEFF}'
    };
    // go-yaml v3 keeps the folded style only where a block scalar is allowed; otherwise it
    // writes double quotes, which read back unchanged.
    if v.is_empty() || v.ends_with(' ') || v.contains(" \n") || !v.chars().all(printable) {
        return v.to_string();
    }
    // The writer, with its test for an extra line break made once, at the start of the value.
    let first = v.trim_start_matches('\n').chars().next();
    let extra = !matches!(first, None | Some(' ' | '\t'));
    let mut text = String::with_capacity(v.len() + 8);
    let (mut breaks, mut leading_spaces) = (true, true);
    for c in v.chars() {
        if c == '\n' {
            if !breaks && !leading_spaces && extra {
                text.push('\n');
            }
            breaks = true;
        } else {
            if breaks {
                leading_spaces = c == ' ' || c == '\t';
            }
            breaks = false;
        }
        text.push(c);
    }
    // Chomping as the writer's block scalar hints choose it.
    let keep = v == "\n" || v.ends_with("\n\n");
    let strip = !v.ends_with('\n');
    // libyaml's yaml_parser_scan_block_scalar on the written lines (indentation removed).
    let mut out = String::with_capacity(v.len());
    let (mut leading_break, mut trailing_breaks, mut leading_blank) = (false, 0, false);
    // Empty lines: line feeds counted, skipped.
    let empty_lines = |rest: &mut &str| {
        let n = rest.len() - rest.trim_start_matches('\n').len();
        *rest = &rest[n..];
        n
    };
    let mut rest = text.as_str();
    trailing_breaks += empty_lines(&mut rest);
    while !rest.is_empty() {
        let trailing_blank = rest.starts_with([' ', '\t']);
        if !leading_blank && !trailing_blank && leading_break {
            if trailing_breaks == 0 {
                out.push(' ');
            }
        } else if leading_break {
            out.push('\n');
        }
        out.extend(std::iter::repeat_n('\n', trailing_breaks));
        trailing_breaks = 0;
        leading_blank = trailing_blank;
        let end = rest.find('\n').unwrap_or(rest.len());
        out.push_str(&rest[..end]);
        // At the end of the value the document goes on with a line break.
        leading_break = true;
        rest = rest.get(end + 1..).unwrap_or("");
        trailing_breaks += empty_lines(&mut rest);
    }
    if !strip && leading_break {
        out.push('\n');
    }
    if keep {
        out.extend(std::iter::repeat_n('\n', trailing_breaks));
    }
    out
}

/// `!!binary`: base64 (line breaks ignored, as Go's decoder does) decoded to text; bytes that are
/// not UTF-8 become U+FFFD, one per byte, as Go's JSON encoder prints them.
fn binary(value: &str) -> Result<String, String> {
    let compact: String = value.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );
    let bytes = engine
        .decode(compact.as_bytes())
        .map_err(|_| "!!binary value contains invalid base64 data".to_string())?;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(std::iter::repeat_n('\u{FFFD}', chunk.invalid().len()));
    }
    Ok(out)
}

/// Whether the header of the block scalar whose content starts at `span` has an explicit
/// indentation indicator (`|2`, `>-1`). The header is the last non-blank line before the content.
pub(super) fn has_indentation_indicator(text: &str, span: &Span) -> bool {
    let Some(start) = span.start.byte_offset() else {
        return false;
    };
    let before = text.get(..start).unwrap_or("");
    // Drop the content line's own indentation, then blank lines, up to the header line.
    let mut lines = before.lines().rev().skip_while(|l| l.trim().is_empty());
    let Some(header) = lines.next() else {
        return false;
    };
    // The indicator is the first `|`/`>` followed only by modifiers, then blanks and maybe a
    // comment (which a blank must precede).
    for (at, _) in header.match_indices(['|', '>']) {
        let rest = &header[at + 1..];
        let tail = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '+' || c == '-');
        let modifiers = &rest[..rest.len() - tail.len()];
        let after_blanks = tail.trim_start_matches([' ', '\t']);
        if after_blanks.is_empty() || (after_blanks.starts_with('#') && after_blanks.len() < tail.len()) {
            return modifiers.bytes().any(|c| c.is_ascii_digit());
        }
    }
    false
}
