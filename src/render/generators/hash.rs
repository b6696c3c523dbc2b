//! The content-hash name suffix, exactly as kustomize computes it (`api/hasher`): a JSON encoding
//! of the ConfigMap's kind, data (and binaryData) or the Secret's kind, type, data (and
//! stringData), with an always-empty name (kustomize's lookup of the name never finds it), as Go's `encoding/json` writes it (sorted keys, HTML characters escaped),
//! hashed with SHA-256; the first ten hex digits, with `0 1 3 a e` replaced by `g h k m t` so
//! that the suffix never looks like a number or a word.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Go's `json.Marshal` of a value built from maps, strings, numbers and booleans: compact, map
/// keys sorted, and `<`, `>`, `&`, U+2028, U+2029 escaped as `\u003c`-style sequences.
pub fn go_json(v: &Value) -> String {
    go_escape(&v.to_string())
}

/// JSON text as Go's `encoding/json` escapes it on top of serde_json: `<`, `>`, `&`, U+2028 and
/// U+2029 as `\u003c`-style sequences (they can only occur inside strings, so the text stays
/// valid JSON).
pub fn go_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// kustomize's `encode`: ten hex digits of the SHA-256, with letters swapped in for some digits.
pub fn encode(encoded: &str) -> String {
    let digest = hex::encode(Sha256::digest(encoded.as_bytes()));
    digest[..10]
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect()
}

/// A field as kustomize's hasher reads it: missing is `""`, scalars are their text, maps are
/// kept.
fn field(obj: &Value, path: &[&str]) -> Value {
    let mut node = obj;
    for key in path {
        match node.get(key) {
            Some(v) => node = v,
            None => return Value::String(String::new()),
        }
    }
    match node {
        Value::Object(_) => node.clone(),
        Value::Null => Value::String(String::new()),
        Value::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    }
}

/// kustomize looks the name up as the single key `"metadata/name"`, which no object has, so the
/// name it hashes is always empty.
fn unreadable_name() -> Value {
    Value::String(String::new())
}

/// The suffix for a generated object (ConfigMap, Secret; anything else is hashed whole).
pub fn hash(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let mut m = Map::new();
    let encoded = match kind {
        "ConfigMap" => {
            m.insert("kind".into(), Value::String("ConfigMap".into()));
            m.insert("name".into(), unreadable_name());
            m.insert("data".into(), field(obj, &["data"]));
            let binary = field(obj, &["binaryData"]);
            if binary.is_object() {
                m.insert("binaryData".into(), binary);
            }
            go_json(&Value::Object(m))
        }
        "Secret" => {
            m.insert("kind".into(), Value::String("Secret".into()));
            m.insert("type".into(), field(obj, &["type"]));
            m.insert("name".into(), unreadable_name());
            m.insert("data".into(), field(obj, &["data"]));
            let string_data = field(obj, &["stringData"]);
            if string_data.is_object() {
                m.insert("stringData".into(), string_data);
            }
            go_json(&Value::Object(m))
        }
        _ => go_json(obj),
    };
    encode(&encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hash_with(mut obj: Value, extra: Value) -> String {
        obj.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        hash(&obj)
    }

    // Cases and expected values of kustomize's own hasher tests (api/hasher/hasher_test.go).
    #[test]
    fn configmap_hashes_match_kustomize() {
        let cm = |extra: Value| hash_with(json!({"apiVersion": "v1", "kind": "ConfigMap"}), extra);
        assert_eq!(cm(json!({})), "6ct58987ht");
        assert_eq!(cm(json!({"data": {"one": ""}})), "9g67k2htb6");
        assert_eq!(
            cm(json!({"data": {"two": 2, "one": "", "three": 3}})),
            "7757f9kkct"
        );
        assert_eq!(cm(json!({"binaryData": {"one": ""}})), "6mtk2m274t");
        assert_eq!(
            cm(json!({"binaryData": {"two": 2, "one": "", "three": 3}})),
            "9th7kc28dg"
        );
        assert_eq!(
            cm(json!({"data": {"one": ""}, "binaryData": {"two": ""}})),
            "698h7c7t9m"
        );
    }

    #[test]
    fn secret_hashes_match_kustomize() {
        let secret = |extra: Value| {
            hash_with(
                json!({"apiVersion": "v1", "kind": "Secret", "type": "my-type"}),
                extra,
            )
        };
        assert_eq!(secret(json!({})), "5gmgkf8578");
        assert_eq!(secret(json!({"data": {"one": ""}})), "74bd68bm66");
        assert_eq!(
            secret(json!({"data": {"two": 2, "one": "", "three": 3}})),
            "4gf75c7476"
        );
        assert_eq!(
            secret(json!({"data": {"one": ""}, "stringData": {"two": 2}})),
            "c4h4264gdb"
        );
    }

    #[test]
    fn html_characters_are_escaped_like_go() {
        assert_eq!(go_json(&json!({"a": "<&>"})), r#"{"a":"\u003c\u0026\u003e"}"#);
    }
}
