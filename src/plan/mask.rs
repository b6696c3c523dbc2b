//! Secret masking. A Secret's values never leave this module unmasked: diffs, field changes, JSON
//! reports and error messages see keys, and whether a key's value changed, never the value (neither
//! plain nor base64). The client-side apply annotation, a copy of the whole Secret, is masked too.
//! Free text that may quote a Secret (server error messages) goes through a [`Scrubber`]; the rules
//! are written up for users in `docs/secrets.md`.

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::Value;

use super::normalize::LAST_APPLIED_ANNOTATION;

/// Shown for a value that is the same on both sides (or exists on one side only).
pub const MASK: &str = "(masked)";
/// Shown on the old side of a changed value.
pub const MASK_OLD: &str = "(masked, old value)";
/// Shown on the new side of a changed value.
pub const MASK_NEW: &str = "(masked, new value)";

pub use crate::manifest::is_secret;

/// Masks one object on its own (every Secret value becomes [`MASK`]); other kinds are returned as
/// they are.
pub fn mask_object(obj: &Value) -> Value {
    mask_pair(Some(obj), None).0.unwrap_or(Value::Null)
}

/// Masks a before/after pair of the same object for a diff: every Secret value becomes [`MASK`],
/// except values that differ between the sides, which become [`MASK_OLD`] and [`MASK_NEW`] so the
/// diff shows which keys changed.
pub fn mask_pair(before: Option<&Value>, after: Option<&Value>) -> (Option<Value>, Option<Value>) {
    let secret = before.is_some_and(is_secret) || after.is_some_and(is_secret);
    let mut b = before.cloned();
    let mut a = after.cloned();
    if !secret {
        return (b, a);
    }
    for field in ["data", "stringData"] {
        let before_map = before.and_then(|o| o.get(field)).and_then(Value::as_object);
        let after_map = after.and_then(|o| o.get(field)).and_then(Value::as_object);
        if let Some(map) = b
            .as_mut()
            .and_then(|o| o.get_mut(field))
            .and_then(Value::as_object_mut)
        {
            for (key, value) in map.iter_mut() {
                let changed = after_map
                    .and_then(|m| m.get(key))
                    .is_some_and(|other| other != value);
                *value = Value::String(if changed { MASK_OLD } else { MASK }.to_string());
            }
        }
        if let Some(map) = a
            .as_mut()
            .and_then(|o| o.get_mut(field))
            .and_then(Value::as_object_mut)
        {
            for (key, value) in map.iter_mut() {
                let changed = before_map
                    .and_then(|m| m.get(key))
                    .is_some_and(|other| other != value);
                *value = Value::String(if changed { MASK_NEW } else { MASK }.to_string());
            }
        }
        // Anything that is not a map here is malformed; never print it.
        for side in [b.as_mut(), a.as_mut()].into_iter().flatten() {
            if let Some(v) = side.get_mut(field).filter(|v| !v.is_object()) {
                *v = Value::String(MASK.to_string());
            }
        }
    }
    for side in [b.as_mut(), a.as_mut()].into_iter().flatten() {
        if let Some(v) = side
            .pointer_mut("/metadata/annotations")
            .and_then(|a| a.get_mut(LAST_APPLIED_ANNOTATION))
        {
            *v = Value::String(MASK.to_string());
        }
    }
    (b, a)
}

/// Secret values shorter than this many bytes are scrubbed only where they stand as a whole token
/// (see [`Scrubber`]); longer ones wherever they occur.
pub const WHOLE_TOKEN_BELOW: usize = 8;

/// Knows every value of every Secret it was given and replaces them by [`MASK`] in free text: the
/// one filter error texts pass through before they leave the plan and apply stages (server
/// messages echo what was sent, including Secret values of any type).
///
/// What counts as a value: every scalar under `data` and `stringData` (strings, numbers, booleans,
/// also when malformed: nested or not a map), as written, JSON-escaped, and as base64 (`data`
/// values decoded, `stringData` values encoded), and the client-side last-applied annotation.
/// A value of [`WHOLE_TOKEN_BELOW`] bytes or more is replaced wherever it occurs. A shorter one
/// (`1`, `true`, `admin`) only where it stands alone: not joined to a letter, digit or `_`, nor to
/// a `-`, `.`, `/` or `+` that is itself joined to a letter or digit. So `value: 1.` and
/// `"true"` are scrubbed while `kafka-1`, `v1` and `10.96.0.1` stay readable; a short value inside
/// a longer word is not a leak of that value. Short values made only of punctuation or spaces are
/// ignored (they carry no secret and would mangle every message).
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Distinct values, in the matcher's pattern order.
    values: Vec<String>,
    matcher: Option<aho_corasick::AhoCorasick>,
}

/// Never prints the values it holds.
impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} values)", self.values.len())
    }
}

impl Scrubber {
    /// A scrubber for the Secrets among `objects` (other kinds are skipped).
    pub fn of<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Scrubber {
        let mut scrubber = Scrubber::default();
        scrubber.extend(objects);
        scrubber
    }

    /// Adds the values of the Secrets among `objects`.
    pub fn extend<'a>(&mut self, objects: impl IntoIterator<Item = &'a Value>) {
        let mut values: BTreeSet<String> = std::mem::take(&mut self.values).into_iter().collect();
        let before = values.len();
        for obj in objects.into_iter().filter(|o| is_secret(o)) {
            secret_values(obj, &mut values);
        }
        self.values = values.into_iter().collect();
        if self.values.len() != before || self.matcher.is_none() {
            // Overlapping search: every occurrence is found, also one starting inside another
            // value's occurrence that was not a whole token.
            self.matcher = aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::Standard)
                .build(&self.values)
                .ok();
        }
    }

    /// Whether it knows no value (the text is returned as it is).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every occurrence of a known value replaced by [`MASK`]; occurrences that overlap
    /// are replaced as one.
    pub fn scrub(&self, text: &str) -> String {
        let Some(matcher) = self.matcher.as_ref().filter(|_| !self.values.is_empty()) else {
            return text.to_string();
        };
        let mut ranges: Vec<(usize, usize)> = matcher
            .find_overlapping_iter(text)
            .filter(|m| {
                m.len() >= WHOLE_TOKEN_BELOW
                    || (!joined(text[..m.start()].chars().rev()) && !joined(text[m.end()..].chars()))
            })
            .map(|m| (m.start(), m.end()))
            .collect();
        if ranges.is_empty() {
            return text.to_string();
        }
        ranges.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        let mut current: Option<(usize, usize)> = None;
        for (start, end) in ranges {
            match &mut current {
                Some((_, e)) if start <= *e => *e = (*e).max(end),
                _ => {
                    if let Some((s, e)) = current.replace((start, end)) {
                        out.push_str(&text[at..s]);
                        out.push_str(MASK);
                        at = e;
                    }
                }
            }
        }
        if let Some((s, e)) = current {
            out.push_str(&text[at..s]);
            out.push_str(MASK);
            at = e;
        }
        out.push_str(&text[at..]);
        out
    }
}

/// Whether the characters next to an occurrence (walking away from it) join it to a longer word:
/// a letter, digit or `_`, or a `-./+` followed by a letter or digit. Not `:`: the apiserver
/// quotes a rejected value as `{Value:12345}`.
fn joined(mut away: impl Iterator<Item = char>) -> bool {
    match away.next() {
        Some(c) if c.is_alphanumeric() || c == '_' => true,
        Some('-' | '.' | '/' | '+') => away.next().is_some_and(char::is_alphanumeric),
        _ => false,
    }
}

/// Collects every value of one Secret into `out` ([`Scrubber`] says which forms).
fn secret_values(obj: &Value, out: &mut BTreeSet<String>) {
    let b64 = base64::engine::general_purpose::STANDARD;
    for field in ["data", "stringData"] {
        let mut leaves = Vec::new();
        if let Some(v) = obj.get(field) {
            scalar_leaves(v, &mut leaves);
        }
        for (text, is_string) in leaves {
            // `data` holds base64 (its plain form is the secret); anything else is plain text.
            let decoded = (field == "data" && is_string)
                .then(|| b64.decode(text.trim()).ok())
                .flatten()
                .and_then(|plain| String::from_utf8(plain).ok());
            match decoded {
                Some(plain) => add_value(&plain, out),
                None => add_value(&b64.encode(&text), out),
            }
            add_value(&text, out);
        }
    }
    if let Some(last) = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .and_then(Value::as_str)
    {
        add_value(last, out);
        if let Ok(parsed) = serde_json::from_str::<Value>(last) {
            secret_values(&parsed, out);
        }
    }
}

/// The text of every scalar in `v` (a string as it is, a number or boolean as JSON) and whether it
/// was a string; maps and lists are walked (a malformed `data` is still secret).
fn scalar_leaves(v: &Value, out: &mut Vec<(String, bool)>) {
    match v {
        Value::Null => {}
        Value::String(s) => out.push((s.clone(), true)),
        Value::Bool(_) | Value::Number(_) => out.push((v.to_string(), false)),
        Value::Array(items) => items.iter().for_each(|i| scalar_leaves(i, out)),
        Value::Object(map) => map.values().for_each(|i| scalar_leaves(i, out)),
    }
}

/// Adds a value and its JSON-escaped form (how a server message quotes it), unless it is empty or
/// a short value without a letter or digit.
fn add_value(value: &str, out: &mut BTreeSet<String>) {
    if value.is_empty() || (value.len() < WHOLE_TOKEN_BELOW && !value.chars().any(char::is_alphanumeric)) {
        return;
    }
    let escaped = Value::String(value.to_string()).to_string();
    let escaped = &escaped[1..escaped.len() - 1];
    if escaped != value {
        out.insert(escaped.to_string());
    }
    out.insert(value.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_keys_are_visible_values_are_not() {
        let before = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"same": "c2FtZQ==", "changed": "b2xk", "gone": "Z29uZQ=="}});
        let after = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"same": "c2FtZQ==", "changed": "bmV3", "added": "YWRkZWQ="}});
        let (b, a) = mask_pair(Some(&before), Some(&after));
        assert_eq!(
            b.unwrap()["data"],
            json!({"same": MASK, "changed": MASK_OLD, "gone": MASK})
        );
        assert_eq!(
            a.unwrap()["data"],
            json!({"same": MASK, "changed": MASK_NEW, "added": MASK})
        );
    }

    #[test]
    fn last_applied_annotation_is_masked() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s",
            "annotations": {LAST_APPLIED_ANNOTATION: "{\"data\":{\"p\":\"aHVudGVyMg==\"}}", "team": "a"}},
            "stringData": {"p": "hunter2"}});
        let masked = mask_object(&secret);
        let text = masked.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("aHVudGVyMg=="),
            "{text}"
        );
        assert_eq!(masked["metadata"]["annotations"]["team"], "a");
    }

    #[test]
    fn other_kinds_are_untouched() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}});
        assert_eq!(mask_object(&cm), cm);
    }

    #[test]
    fn scrubs_plain_and_base64_values_from_text() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "data": {"p": "aHVudGVyMg=="}});
        let scrubber = Scrubber::of([&secret]);
        let msg = scrubber.scrub("invalid value \"hunter2\" (aHVudGVyMg==)");
        assert_eq!(msg, "invalid value \"(masked)\" ((masked))");
    }

    #[test]
    fn values_of_any_type_and_length_are_scrubbed() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"n": 73519864201_u64, "b": true, "one": 1, "deep": {"x": ["nested-s3cret"]}},
            "stringData": {"short": "pw", "quote": "a\"b\\c-long-enough"}});
        let scrubber = Scrubber::of([&secret]);
        let text = "json: cannot unmarshal number 73519864201 into Go value; data.b: Invalid value: true; \
                    data.one: 1. pw: \"pw\" deep nested-s3cret quote \"a\\\"b\\\\c-long-enough\"";
        let scrubbed = scrubber.scrub(text);
        for leaked in [
            "73519864201",
            "true",
            " 1.",
            "\"pw\"",
            "nested-s3cret",
            "long-enough",
        ] {
            assert!(!scrubbed.contains(leaked), "{leaked} in {scrubbed}");
        }
        // base64 forms: of a number in data, of a short stringData value.
        let b64 = base64::engine::general_purpose::STANDARD;
        for value in ["73519864201", "pw", "true"] {
            let encoded = b64.encode(value);
            assert!(
                !scrubber.scrub(&format!("x {encoded} y")).contains(&encoded),
                "{encoded}"
            );
        }
    }

    #[test]
    fn short_values_are_scrubbed_only_as_whole_tokens() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": 1, "b": "web"}});
        let scrubber = Scrubber::of([&secret]);
        assert_eq!(
            scrubber.scrub("Deployment/ns/web-1 apps/v1 10.96.0.1 kafka-1: value 1, \"web\"."),
            "Deployment/ns/web-1 apps/v1 10.96.0.1 kafka-1: value (masked), \"(masked)\"."
        );
    }

    #[test]
    fn a_short_number_rejected_by_the_server_is_scrubbed() {
        // The apiserver's message for `data: {n: 12345}` (kube-apiserver v1.36).
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "data": {"n": 12345}});
        let scrubbed = Scrubber::of([&secret]).scrub(
            "failed to create typed patch object (ns/numbers; /v1, Kind=Secret): .data.n: expected string, \
             got &value.valueUnstructured{Value:12345}",
        );
        assert!(scrubbed.ends_with("{Value:(masked)}"), "{scrubbed}");
    }

    #[test]
    fn an_occurrence_starting_inside_a_rejected_one_is_still_found() {
        // "ab" (short) sits inside a word; the long value starting one byte later must still go.
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "stringData": {"s": "ab", "l": "bcdefghijk"}});
        let scrubber = Scrubber::of([&secret]);
        assert_eq!(scrubber.scrub("xabcdefghijk"), "xa(masked)");
        assert_eq!(format!("{scrubber:?}"), "Scrubber(4 values)");
    }
}
