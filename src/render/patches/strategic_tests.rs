//! Unit tests of the strategic merge: the `kubectl kustomize` cases under
//! `testdata/strategic/` (see [`super::super::kubectl_cases`]), then errors and options.

use serde_json::{Value, json};

use super::*;
use crate::render::patches::kubectl_cases::{check_all, same_objects};

/// Every case under `testdata/strategic/`: the target as `resources`, the patch as a `patches`
/// entry targeting it, `expected.yaml` as printed by `kubectl kustomize`.
#[test]
fn kubectl_cases() {
    check_all("strategic", |case| {
        let entry = &case.kustomization["patches"][0];
        let options = Options {
            allow_name_change: entry["options"]["allowNameChange"] == true,
            allow_kind_change: entry["options"]["allowKindChange"] == true,
        };
        let mut target = case.document("target.yaml");
        let patch = case.document(case.patch_path());
        apply_with(&mut target, &patch, options).map_err(|e| e.to_string())?;
        same_objects(&[target], &case.documents("expected.yaml"))
    });
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"finalizers": ["a", "b"], "name": "web", "namespace": "prod"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "args": ["--x", "--y"],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "image": "a:1",
                            "name": "a",
                            "ports": [
                                {"containerPort": 80},
                                {"containerPort": 53, "protocol": "UDP"}
                            ],
                            "resources": {
                                "limits": {"cpu": "1", "memory": "1Gi"},
                                "requests": {"cpu": "500m", "memory": "512Mi"}
                            },
                            "volumeMounts": [
                                {"mountPath": "/data", "name": "data"},
                                {"mountPath": "/etc/cfg", "name": "cfg"}
                            ]
                        },
                        {"image": "b:1", "name": "b"}
                    ],
                    "tolerations": [{"key": "k1", "operator": "Exists"}],
                    "volumes": [
                        {"emptyDir": {}, "name": "data"},
                        {"configMap": {"name": "cfg"}, "name": "cfg"}
                    ]
                }
            }
        }
    })
}

fn deployment_patch(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec})
}

#[test]
fn unknown_directive_on_an_existing_map_is_an_error_naming_the_field() {
    let mut target = deployment();
    let before = target.clone();
    let patch = deployment_patch(json!({"selector": {"$patch": "bogus"}}));
    let err = apply(&mut target, &patch).unwrap_err();
    assert_eq!(
        err,
        PatchError::UnknownDirective {
            path: "spec.selector".into(),
            directive: "bogus".into()
        }
    );
    assert_eq!(target, before, "nothing partial on error");
}

#[test]
fn unknown_directive_on_a_list_element_names_the_element() {
    let mut target = deployment();
    let patch =
        deployment_patch(json!({"template": {"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}}}));
    let err = apply(&mut target, &patch).unwrap_err();
    assert_eq!(
        err.to_string(),
        "strategic merge patch: spec.template.spec.containers[name=a]: unknown patch strategy \
         `$patch: bogus` (expected replace, delete or merge)"
    );
    let patch = deployment_patch(json!({"template": {"spec": {"volumes": [{"$patch": "sideways"}]}}}));
    let err = apply(&mut target, &patch).unwrap_err();
    assert!(
        matches!(err, PatchError::UnknownDirective { ref path, .. } if path == "spec.template.spec.volumes")
    );
}

/// `kubectl kustomize` rejects each of these ("wrong node kind: expected ... but got ...").
#[test]
fn kind_mismatches_are_errors() {
    let cases = [
        (json!({"selector": ["a"]}), "spec.selector", "map", "list"),
        (json!({"replicas": {"a": 1}}), "spec.replicas", "scalar", "map"),
        (json!({"selector": 3}), "spec.selector", "map", "scalar"),
        (
            json!({"template": {"spec": {"containers": {"name": "a"}}}}),
            "spec.template.spec.containers",
            "list",
            "map",
        ),
        (
            json!({"template": {"spec": {"tolerations": "all"}}}),
            "spec.template.spec.tolerations",
            "list",
            "scalar",
        ),
    ];
    for (spec, path, target_kind, patch_kind) in cases {
        let mut target = deployment();
        let err = apply(&mut target, &deployment_patch(spec.clone())).unwrap_err();
        assert_eq!(
            err,
            PatchError::TypeMismatch {
                path: path.into(),
                target: target_kind,
                patch: patch_kind
            },
            "{spec}"
        );
    }
    let mut target = deployment();
    let err = apply(&mut target, &deployment_patch(json!({"replicas": [1]}))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "strategic merge patch: spec.replicas: the target has a scalar but the patch has a list"
    );
}

#[test]
fn null_in_the_target_accepts_any_kind() {
    let mut target =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": null});
    let patch =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    apply(&mut target, &patch).unwrap();
    assert_eq!(target["data"], json!({"a": "1"}));
}

#[test]
fn target_and_patch_must_be_mappings() {
    let mut target = json!(["not", "an", "object"]);
    assert_eq!(
        apply(&mut target, &json!({})).unwrap_err(),
        PatchError::NotAMapping { what: "target" }
    );
    let mut target = deployment();
    let err = apply(&mut target, &json!("spec: {}")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "strategic merge patch: the patch is not a mapping"
    );
}

#[test]
fn absurd_nesting_is_refused_not_overflowed() {
    let mut deep = json!("leaf");
    for _ in 0..(MAX_DEPTH + 10) {
        deep = json!({ "x": deep });
    }
    let mut target = deployment();
    let patch = deployment_patch(deep.clone());
    assert_eq!(
        apply(&mut target, &patch).unwrap_err(),
        PatchError::TooDeep { what: "patch" }
    );
    let mut target =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": deep});
    let patch = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    assert_eq!(
        apply(&mut target, &patch).unwrap_err(),
        PatchError::TooDeep { what: "target" }
    );
}

#[test]
fn patch_takes_the_targets_api_version() {
    // With a target selector kustomize sets the patch's group/version to the target's: the
    // schema (and so the merge keys) is the target's and apiVersion never changes.
    let mut target = deployment();
    let patch = json!({"apiVersion": "apps/v1beta1", "kind": "Deployment", "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a:2"}]}}}});
    apply(&mut target, &patch).unwrap();
    assert_eq!(target["apiVersion"], "apps/v1");
    assert_eq!(target["metadata"]["name"], "web");
    let containers = target["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0]["image"], "a:2");
    assert_eq!(containers[0]["args"], json!(["--x", "--y"]));
}

#[test]
fn kind_change_needs_the_option() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let patch = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c"}});
    let mut target = cm.clone();
    apply(&mut target, &patch).unwrap();
    assert_eq!(target["kind"], "ConfigMap");
    let mut target = cm;
    let options = Options {
        allow_kind_change: true,
        ..Options::default()
    };
    apply_with(&mut target, &patch, options).unwrap();
    assert_eq!(target["kind"], "Secret");
}

/// Nulls written as nothing go wherever the merge walks and stay where it does not (inside a
/// replaced list); `empty_nulls` then names the survivors at their new places.
#[test]
fn empty_written_nulls_are_dropped_where_the_merge_walks() {
    let mut target = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {
            "strategy": null, "paused": null,
            "template": {"spec": {
                "nodeSelector": {"zone": ""},
                "containers": [
                    {"name": "a", "args": ["x", null], "resources": null},
                    {"name": "b", "command": null},
                ],
            }},
        },
    });
    let mut empty = vec![
        "/spec/strategy".to_string(),
        "/spec/template/spec/nodeSelector/zone".to_string(),
        "/spec/template/spec/containers/0/args/1".to_string(),
        "/spec/template/spec/containers/0/resources".to_string(),
        "/spec/template/spec/containers/1/command".to_string(),
        // Stale or wrong places mean nothing.
        "/spec/replicas".to_string(),
        "/metadata/name".to_string(),
    ];
    let patch = json!({"kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "i"}]}}}});
    apply_marked(&mut target, &mut empty, &patch, &[], Options::default()).unwrap();
    assert_eq!(
        target["spec"],
        json!({
            "paused": null,
            "template": {"spec": {
                "nodeSelector": {},
                "containers": [{"name": "b", "image": "i"}, {"name": "a", "args": ["x", null]}],
            }},
        })
    );
    assert_eq!(empty, ["/spec/template/spec/containers/1/args/1"]);

    // A flow-map empty in the patch deletes, as a null does.
    let mut target = json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v", "l": "w"}});
    let patch = json!({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": ""}});
    let mut none = Vec::new();
    apply_marked(
        &mut target,
        &mut none,
        &patch,
        &["/data/k".to_string()],
        Options::default(),
    )
    .unwrap();
    assert_eq!(target["data"], json!({"l": "w"}));
}
