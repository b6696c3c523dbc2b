//! Secret masking. A Secret's values never leave this module unmasked: diffs, field changes, JSON
//! reports and error messages see keys, and whether a key's value changed, never the value (neither
//! plain nor base64). The client-side apply annotation, a copy of the whole Secret, is masked too.

use base64::Engine as _;
use serde_json::Value;

use super::normalize::LAST_APPLIED_ANNOTATION;

/// Shown for a value that is the same on both sides (or exists on one side only).
pub const MASK: &str = "(masked)";
/// Shown on the old side of a changed value.
pub const MASK_OLD: &str = "(masked, old value)";
/// Shown on the new side of a changed value.
pub const MASK_NEW: &str = "(masked, new value)";

/// Whether an object is a core/v1 Secret.
pub fn is_secret(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
        && obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(|v| v == "v1")
}

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

/// Every secret value an object carries, plain and base64 (from `data`, `stringData` and the
/// last-applied annotation), to scrub from free text such as server error messages. Values shorter
/// than 4 characters are left out: scrubbing them would mangle ordinary words without protecting
/// anything.
pub fn secret_values(obj: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if !is_secret(obj) {
        return out;
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut push = |s: &str| {
        if s.len() >= 4 && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        for value in data.values().filter_map(Value::as_str) {
            push(value);
            if let Ok(plain) = b64.decode(value)
                && let Ok(plain) = String::from_utf8(plain)
            {
                push(&plain);
            }
        }
    }
    if let Some(data) = obj.get("stringData").and_then(Value::as_object) {
        for value in data.values().filter_map(Value::as_str) {
            push(value);
            push(&b64.encode(value));
        }
    }
    if let Some(last) = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED_ANNOTATION))
        .and_then(Value::as_str)
    {
        push(last);
        if let Ok(parsed) = serde_json::from_str::<Value>(last) {
            for value in secret_values(&parsed) {
                push(&value);
            }
        }
    }
    // Longest first, so a value containing another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// Replaces every occurrence of the given secret values in `text` by [`MASK`].
pub fn scrub(text: &str, values: &[String]) -> String {
    let mut out = text.to_string();
    for value in values {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), MASK);
        }
    }
    out
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
        let values = secret_values(&secret);
        let msg = scrub("invalid value \"hunter2\" (aHVudGVyMg==)", &values);
        assert_eq!(msg, "invalid value \"(masked)\" ((masked))");
    }
}
