//! Unit tests of replacements: the `kubectl kustomize` cases under
//! `patches/testdata/replacements/`, then errors and the pieces (paths, scalar types).

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
    let err = fails(json!({"source": {"kind": "Secret"}, "targets": [{"select": {"kind": "Deployment"}}]}));
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
    let err = fails(json!({"source": {"name": "src.*"}, "targets": [{"select": {"kind": "Deployment"}}]}));
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
fn incomplete_replacements_are_errors() {
    assert_eq!(
        fails(json!({"source": {"name": "src"}})).to_string(),
        "replacements[0]: must specify a source and at least one target"
    );
    assert_eq!(
        fails(json!({"source": {"name": "src"}, "targets": [{"fieldPaths": ["metadata.name"]}]})).to_string(),
        "replacements[0].targets[0]: must specify resources to select (`select`)"
    );
    let err = fails(json!({"source": {"name": "src"}, "targets": [{"select": {"labelSelector": "a in b"}}]}));
    assert!(
        err.to_string()
            .starts_with("replacements[0]: labelSelector `a in b` is invalid"),
        "{err}"
    );
}

#[test]
fn inline_fields_are_strict_and_files_lenient() {
    let err =
        serde_json::from_value::<ReplacementField>(json!({"source": {"kind": "X", "bogus": 1}})).unwrap_err();
    assert!(err.to_string().contains("unknown field `bogus`"), "{err}");
    let both = ReplacementField {
        path: "r.yaml".into(),
        source: Some(SourceSelector::default()),
        targets: None,
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
