//! The Kubernetes CEL libraries evaluated offline (src/validate/schema/k8s_cel): a synthetic CRD
//! (tests/fixtures/cel-k8s/gadget-crd.yaml) whose rules call quantity, lists, regex, URL, IP,
//! CIDR, semver, sets and named-format functions and the strings extension, one field per group. For each field,
//! values that break its rules and values that satisfy them are judged by kgitops
//! (`check_schemas`) and by the real apiserver (server-side dry-run create); the verdicts must
//! agree, and every rule must be broken by at least one case, with the rule's message.
//! A rule using a function kgitops does not evaluate (durations, the datetime format) stays a
//! warning, never a verdict.

mod common;
mod validate_support;

use std::collections::BTreeSet;

use kgitops::validate::{Finding, Schemas, Severity, check_schemas};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use validate_support::{text, yaml};

fn crd_path() -> std::path::PathBuf {
    common::repo_root().join("tests/fixtures/cel-k8s/gadget-crd.yaml")
}

fn schemas() -> Schemas {
    let mut schemas = Schemas::new().expect("embedded schema");
    schemas.load_crds(&crd_path()).expect("gadget CRD loads");
    schemas
}

/// Every rule's message per field, read from the CRD.
fn messages() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(crd_path()).expect("gadget CRD");
    let crd = yaml(&text).into_iter().next().expect("one document");
    let props = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    let mut out = Vec::new();
    for (field, schema) in props.as_object().expect("spec properties") {
        for rule in schema["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            out.push((
                field.clone(),
                rule["message"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    out
}

/// (field, value, satisfies every rule of the field).
fn cases() -> Vec<(&'static str, Value, bool)> {
    let s = |f: &'static str, v: &str, ok: bool| (f, json!(v), ok);
    vec![
        // quantity
        s("memory", "1Gi", true),
        s("memory", "9.5Gi", true),
        s("memory", "10Gi", false),
        s("memory", "10737418240", false),
        s("memory", "512Ki", false),
        s("memory", "-1Gi", false),
        s("memory", "16GB", false),
        s("replicas", "3", true),
        s("replicas", "1e3", false),
        s("replicas", "1k", false),
        s("replicas", "1001", true),
        s("replicas", "4", false),
        s("replicas", "3000m", false),
        s("replicas", "1.5", false),
        s("replicas", "abc", false),
        s("cpu", "500m", true),
        s("cpu", "2.4", true),
        s("cpu", "2.5", false),
        s("cpu", "1024", false),
        s("cpu", "0.9999", true),
        s("cpu", "1025", false),
        // lists
        ("ports", json!([1024, 8080, 9090]), true),
        ("ports", json!([8080, 1024]), false),
        ("ports", json!([5000, 6000, 9999]), false),
        ("ports", json!([80, 8080]), false),
        ("ports", json!([2000, 10000]), false),
        ("ports", json!([]), false),
        ("ports", json!([1024, 8080, 8080]), false),
        ("zones", json!(["a", "c"]), true),
        ("zones", json!(["c", "b"]), true),
        ("zones", json!(["a", "d"]), false),
        ("zones", json!(["a", "b"]), false),
        ("zones", json!([]), true),
        // regex
        s("tag", "v12", true),
        s("tag", "abc", false),
        s("tag", "abcd12", false),
        s("tag", "v1", false),
        // URL
        s("endpoint", "https://api.example.com/api/v1?x=1", true),
        s("endpoint", "https://example.com:9443/api", true),
        s("endpoint", "http://api.example.com/api", false),
        s("endpoint", "api.example.com/api", false),
        s("endpoint", "https://api.example.com:8080/api", false),
        s("endpoint", "https://api.example.org/api", false),
        s("endpoint", "https://api.example.com/v1", false),
        s("endpoint", "https://api.example.com/api?debug=1", false),
        s("endpoint", "https://example.com:443/api", false),
        s("endpoint", "https://api.example.com/api%20x", true),
        s("endpoint", "https://exa mple.com/api", false),
        s("endpoint", "https://[fd00::1]:9443/api", false),
        // IP
        s("address", "10.0.0.1", true),
        s("address", "2001:db8::1", true),
        s("address", "fe80::1", true),
        s("address", "127.0.0.1", false),
        s("address", "0.0.0.0", false),
        s("address", "2001:DB8::1", false),
        s("address", "2001:db8:0:0:0:0:0:1", false),
        s("address", "224.0.0.5", false),
        s("address", "ff02::1", false),
        s("address", "::ffff:10.0.0.1", false),
        s("address", "010.0.0.1", false),
        s("address", "not-an-ip", false),
        // CIDR
        s("network", "10.0.0.0/8", true),
        s("network", "10.1.0.0/16", false),
        s("network", "10.0.0.0/16", true),
        s("network", "10.200.0.0/16", true),
        s("network", "fd00::/64", true),
        s("network", "10.0.0.1/24", false),
        s("network", "192.168.0.0/16", false),
        s("network", "10.0.0.0/4", false),
        s("network", "10.0.0.0/33", false),
        s("network", "10.0.0.0/08", false),
        s("network", "fd00:0::/64", false),
        s("network", "10.0.0.0", false),
        // semver
        s("version", "1.3.0", true),
        s("version", "1.5.0-rc.2", true),
        s("version", "1.4.5", false),
        s("version", "1.5.0-rc.1", false),
        s("version", "1.2.0", false),
        s("version", "1.2.1-alpha", true),
        s("version", "2.0.0", false),
        s("version", "v1.3.0", false),
        s("version", "1.3", false),
        s("version", "01.3.0", false),
        s("looseVersion", "v1.2", true),
        s("looseVersion", "1", true),
        s("looseVersion", "01.02.00", true),
        s("looseVersion", "1.10", false),
        s("looseVersion", "1.2.3", false),
        s("looseVersion", "1.2-rc.1", false),
        // named formats
        s("hostname", "my-host.example.com", true),
        s("hostname", "My_Host", false),
        s("hostname", "-x", false),
        s("labelKey", "example.com/My_Name", true),
        s("labelKey", "a/b/c", false),
        s("labelKey", "/x", false),
        s("labelKey", "Example.com/x", false),
        s("generateName", "abc-", true),
        s("generateName", "1abc", false),
        s("id", "123e4567-e89b-12d3-a456-426614174000", true),
        s("id", "123E4567E89B12D3A456426614174000", true),
        s("id", "not-a-uuid", false),
        s("blob", "aGk=", true),
        s("blob", "aGk", false),
        s("blob", "", false),
        s("day", "2024-02-29", true),
        s("day", "2023-02-29", false),
        s("day", "2024-2-1", false),
        s("link", "https://x/y", true),
        s("link", "/y", true),
        s("link", "x", false),
        s("label", "my-label", true),
        s("label", "a.b", false),
        s("label", "My", false),
        // strings extension
        s("name", "kafka-main", true),
        s("name", "Kafka", false),
        s("name", "123", false),
        s("name", "-kafka", false),
        s("name", "kafka-", false),
        s("name", "a--b", false),
        s("name", "a_b", false),
        s("name", "a.b.c", false),
        s("name", "xkafka", false),
        s("name", "x", false),
        s("name", " kafka", false),
        s("name", "a-very-long-name-123", false),
    ]
}

/// kgitops' verdict: the error findings (none: accepted).
fn offline(schemas: &Schemas, obj: &Value) -> Vec<Finding> {
    check_schemas(schemas, "dev", std::slice::from_ref(obj))
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

fn gadget(name: &str, ns: &str, field: &str, value: &Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Gadget",
        "metadata": {"name": name, "namespace": ns}, "spec": {field: value}})
}

#[tokio::test]
async fn kubernetes_cel_libraries_agree_with_the_apiserver() {
    common::install_crds(&crd_path()).unwrap_or_else(|e| panic!("installing the gadget CRD: {e}"));
    let ns = common::namespace("cel-k8s").await;
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Gadget");
    let api: Api<DynamicObject> = Api::namespaced_with(
        ns.client.clone(),
        &ns.name,
        &ApiResource::from_gvk_with_plural(&gvk, "gadgets"),
    );
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let schemas = schemas();
    let rules = messages();
    let mut broken: BTreeSet<(String, String)> = BTreeSet::new();
    let mut disagreements = Vec::new();
    let cases = cases();
    for (i, (field, value, should_pass)) in cases.iter().enumerate() {
        let obj = gadget(&format!("g-{i}"), &ns.name, field, value);
        let ours = offline(&schemas, &obj);
        let theirs = match api
            .create(&dry_run, &serde_json::from_value(obj.clone()).expect("object"))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 422 => Err(status.message),
            Err(e) => panic!("dry-run create of {field} = {value} failed unexpectedly: {e}"),
        };
        let case = format!("spec.{field} = {value}");
        match (&theirs, should_pass) {
            (Ok(()), false) => disagreements.push(format!(
                "{case}: the apiserver accepts a case meant to break a rule"
            )),
            (Err(m), true) => {
                disagreements.push(format!("{case}: the apiserver refuses a case meant to pass: {m}"))
            }
            _ => {}
        }
        match (&theirs, ours.is_empty()) {
            (Ok(()), true) => {}
            (Ok(()), false) => disagreements.push(format!(
                "{case}: kgitops refuses, the apiserver accepts:\n{}",
                text(ours.clone())
            )),
            (Err(m), true) => {
                disagreements.push(format!("{case}: kgitops accepts, the apiserver refuses: {m}"))
            }
            (Err(m), false) => {
                // The same rules fail: each rule message the apiserver names, kgitops names at the
                // field, and no other.
                let path = format!("spec.{field}");
                for (f, message) in rules.iter().filter(|(f, _)| f == field) {
                    let theirs_names = m.contains(message.as_str());
                    let ours_names = ours.iter().any(|x| {
                        x.rule == "schema-cel" && x.path == path && x.message.contains(message.as_str())
                    });
                    if theirs_names != ours_names {
                        disagreements.push(format!(
                            "{case}: rule {message:?}: the apiserver {} it, kgitops {} it\napiserver: {m}\nkgitops:\n{}",
                            if theirs_names { "names" } else { "does not name" },
                            if ours_names { "names" } else { "does not name" },
                            text(ours.clone())
                        ));
                    }
                    if theirs_names {
                        broken.insert((f.clone(), message.clone()));
                    }
                }
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagreements.len(),
        cases.len(),
        disagreements.join("\n")
    );
    let unbroken: Vec<String> = rules
        .iter()
        .filter(|(f, _)| f != "timeout" && f != "when")
        .filter(|r| !broken.contains(*r))
        .map(|(f, m)| format!("spec.{f}: {m}"))
        .collect();
    assert!(
        unbroken.is_empty(),
        "rules no case breaks with their message:\n{}",
        unbroken.join("\n")
    );
    eprintln!(
        "{} cases of {} rules agree with the apiserver",
        cases.len(),
        rules.len() - 2
    );

    // A message expression over validate()'s errors: kgitops' message is the apiserver's.
    for value in ["a.b", "My"] {
        let obj = gadget(
            &format!("label-{}", value.to_lowercase().replace('.', "-")),
            &ns.name,
            "label",
            &json!(value),
        );
        let theirs = match api
            .create(&dry_run, &serde_json::from_value(obj.clone()).expect("object"))
            .await
        {
            Err(kube::Error::Api(status)) if status.code == 422 => status.message,
            other => panic!("label {value}: expected a refusal, got {other:?}"),
        };
        let ours = offline(&schemas, &obj);
        assert_eq!(ours.len(), 1, "{}", text(ours.clone()));
        assert!(ours[0].message.starts_with("label: "), "{}", ours[0].message);
        assert!(
            theirs.contains(&ours[0].message),
            "kgitops: {}\napiserver: {theirs}",
            ours[0].message
        );
    }

    // Durations and the datetime format: the apiserver decides; kgitops warns whatever the value.
    for (field, value, accepted, function) in [
        ("timeout", "30m", true, "duration"),
        ("timeout", "2h", false, "duration"),
        ("when", "2024-01-02T03:04:05Z", true, "format.datetime"),
        ("when", "yesterday", false, "format.datetime"),
    ] {
        let obj = gadget(&format!("{field}-{accepted}"), &ns.name, field, &json!(value));
        let theirs = api
            .create(&dry_run, &serde_json::from_value(obj.clone()).expect("object"))
            .await;
        assert_eq!(theirs.is_ok(), accepted, "{field} = {value}: {theirs:?}");
        let ours = check_schemas(&schemas, "dev", std::slice::from_ref(&obj));
        assert_eq!(ours.len(), 1, "{}", text(ours.clone()));
        let path = format!("spec.{field}");
        assert_eq!(
            (ours[0].rule.as_str(), ours[0].severity, ours[0].path.as_str()),
            ("schema-cel-unchecked", Severity::Warning, path.as_str())
        );
        assert!(ours[0].message.contains(function), "{}", ours[0].message);
    }
}
