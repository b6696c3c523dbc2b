//! Hostile YAML: every input here must be refused with an error that names the file (and the
//! line where there is one), without hanging, overflowing the stack or exhausting memory. Also
//! the emitter on values no parser would produce (100,000 levels deep).

use kgitops::manifest::yaml::{Limits, YamlError, parse_documents, parse_typed, to_yaml, to_yaml_stream};
use serde_json::Value;

const FILE: &str = "clusters/dev/hostile.yaml";

fn refused(text: &str) -> YamlError {
    match parse_documents(text, FILE, &Limits::DEFAULT) {
        Ok(docs) => panic!("accepted {} documents", docs.len()),
        Err(e) => {
            assert!(
                e.to_string().starts_with(FILE),
                "error does not name the file: {e}"
            );
            e
        }
    }
}

fn typed_refused(text: &str) -> YamlError {
    match parse_typed::<Value>(text, FILE, &Limits::DEFAULT) {
        Ok(_) => panic!("accepted"),
        Err(e) => {
            assert!(
                e.to_string().starts_with(FILE),
                "error does not name the file: {e}"
            );
            e
        }
    }
}

/// The classic billion laughs: nine levels of ten aliases each, 10^9 strings from 1 KiB.
fn billion_laughs() -> String {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..=9 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text
}

#[test]
fn billion_laughs_is_refused_as_an_alias_bomb() {
    let text = billion_laughs();
    let e = refused(&text);
    assert!(matches!(e, YamlError::LimitExceeded { .. }), "{e}");
    assert!(e.to_string().contains("alias"), "{e}");
}

#[test]
fn typed_files_nest_less_deep() {
    let depth = Limits::TYPED_MAX_DEPTH;
    let ok = format!("{}x\n", "- ".repeat(depth));
    assert!(parse_typed::<Value>(&ok, FILE, &Limits::DEFAULT).is_ok());
    typed_refused(&format!("{}x\n", "- ".repeat(depth + 1)));
}

#[test]
fn billion_laughs_is_refused_in_typed_files() {
    // Kustomization files go through serde-saphyr's own budget.
    typed_refused(&billion_laughs());
}

#[test]
fn long_strings_multiplied_by_aliases_are_refused() {
    // 1 MiB of text repeated by 100 aliases: few nodes, 100 MiB of text.
    let mut text = format!("a: &big \"{}\"\nlist:\n", "x".repeat(1 << 20));
    for _ in 0..100 {
        text.push_str("- *big\n");
    }
    let e = refused(&text);
    assert!(e.to_string().contains("bytes of text from aliases"), "{e}");
}

#[test]
fn too_many_aliases_are_refused() {
    let mut text = String::from("a: &a x\nlist:\n");
    for _ in 0..=Limits::DEFAULT_MAX_ALIASES {
        text.push_str("- *a\n");
    }
    let e = refused(&text);
    assert!(e.to_string().contains("more than 1000 aliases"), "{e}");
}

#[test]
fn an_alias_inside_its_own_anchor_is_refused() {
    refused("a: &a [1, *a]\n");
}

#[test]
fn a_hundred_thousand_levels_of_block_nesting_are_refused() {
    // Block sequences nest on one line: `- - - ... x`.
    let text = format!("{}x\n", "- ".repeat(100_000));
    let e = refused(&text);
    assert!(e.to_string().contains("deeper than 256"), "{e}");
}

#[test]
fn a_hundred_thousand_levels_of_block_nesting_are_refused_in_typed_files() {
    typed_refused(&format!("{}x\n", "- ".repeat(100_000)));
}

#[test]
fn a_hundred_thousand_levels_of_flow_nesting_are_refused() {
    for text in [
        format!("{}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
        format!("{}x{}\n", "{a: ".repeat(100_000), "}".repeat(100_000)),
        format!("a: {}\n", "[".repeat(100_000)),
    ] {
        let e = refused(&text);
        assert!(e.to_string().contains("line 1"), "{e}");
        typed_refused(&text);
    }
}

#[test]
fn nesting_at_the_limit_is_accepted() {
    let depth = Limits::DEFAULT_MAX_DEPTH;
    let text = format!("{}x{}\n", "[".repeat(depth), "]".repeat(depth));
    let docs = parse_documents(&text, FILE, &Limits::DEFAULT).unwrap();
    assert_eq!(docs.len(), 1);
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_parsing() {
    let limits = Limits {
        max_bytes: 1024,
        ..Limits::DEFAULT
    };
    let text = format!("a: {}\n", "x".repeat(2048));
    let e = parse_documents(&text, FILE, &limits).unwrap_err();
    assert!(
        matches!(
            e,
            YamlError::TooLarge {
                size: 2052,
                limit: 1024,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        format!("{FILE}: 2052 bytes is larger than the limit of 1024 bytes")
    );
    // The default limit, exceeded by one byte.
    let text = "#".repeat(Limits::DEFAULT_MAX_BYTES + 1);
    let e = refused(&text);
    assert!(matches!(e, YamlError::TooLarge { .. }), "{e}");
    typed_refused(&text);
}

#[test]
fn too_many_documents_are_refused() {
    let limits = Limits {
        max_documents: 10,
        ..Limits::DEFAULT
    };
    let text = "---\na: 1\n".repeat(11);
    let e = parse_documents(&text, FILE, &limits).unwrap_err();
    assert!(e.to_string().contains("more than 10 documents"), "{e}");
}

#[test]
fn too_many_nodes_are_refused() {
    let limits = Limits {
        max_nodes: 1000,
        ..Limits::DEFAULT
    };
    let text = format!("[{}]\n", vec!["1"; 1000].join(","));
    let e = parse_documents(&text, FILE, &limits).unwrap_err();
    assert!(e.to_string().contains("more than 1000 YAML nodes"), "{e}");
}

#[test]
fn malformed_yaml_names_file_and_line() {
    for (text, line) in [
        ("apiVersion: v1\nkind: ConfigMap\ndata: [a\n", 3),
        ("a: 1\nb: 'unterminated\n", 2),
        ("a: 1\n  b: 2\n", 2),
        ("a: *undefined\n", 1),
        ("a:\n- x\n y: 1\n", 3),
    ] {
        let e = refused(text);
        assert!(matches!(e, YamlError::Syntax { .. }), "{text:?}: {e}");
        let s = e.to_string();
        assert!(s.starts_with(&format!("{FILE}: line {line} ")), "{text:?}: {s}");
    }
    let e = typed_refused("a: [1\n");
    assert!(e.to_string().contains("line "), "{e}");
}

/// Deep values built in code: the emitter must not recurse.
#[test]
fn the_emitter_does_not_overflow_on_deep_values() {
    let mut seq = Value::String("leaf".into());
    for _ in 0..100_000 {
        seq = Value::Array(vec![seq]);
    }
    let text = to_yaml(&seq);
    assert!(
        text.starts_with("- - - ") && text.ends_with("- leaf\n"),
        "{}",
        &text[..40]
    );
    // Mappings indent by two per level: the text grows quadratically, so 3,000 levels.
    let mut map = Value::from(1);
    for _ in 0..3_000 {
        let mut m = serde_json::Map::new();
        m.insert("k".into(), map);
        map = Value::Object(m);
    }
    let text = to_yaml_stream(std::slice::from_ref(&map));
    assert_eq!(text.lines().count(), 3_000);
    // Nested mappings inside sequences inside mappings.
    let mut mixed = Value::Null;
    for i in 0..6_000 {
        mixed = if i % 2 == 0 {
            Value::Array(vec![mixed])
        } else {
            let mut m = serde_json::Map::new();
            m.insert("k".into(), mixed);
            Value::Object(m)
        };
    }
    assert!(to_yaml(&mixed).ends_with("null\n"));
    for v in [seq, map, mixed] {
        dismantle(v);
    }
}

/// Drops a deep value without recursion (serde_json's own drop recurses).
fn dismantle(v: Value) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}
