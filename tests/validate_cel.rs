//! CRD validation rules (`x-kubernetes-validations`, CEL) checked offline: for every rule of the
//! Strimzi 0.51.0 (`v1beta2` and `v1`) and 1.2.0 (`v1`) CRDs, objects that break it and objects
//! that satisfy it, judged by kgitops (`check_schemas`) and by the real apiserver (server-side
//! dry-run create against the same CRDs).
//! The verdicts must agree. The rules are enumerated from the CRDs, so a rule of a new release
//! without a case here fails the test.
//!
//! Also, offline only (tests/fixtures/cel/widget-crd.yaml): transition rules (`oldSelf`) run only
//! with a base revision, `messageExpression`/`fieldPath`/`reason`, and rules using a CEL function
//! kgitops lacks (durations) are reported as "cannot check offline", once per cluster and rule.
//! The Kubernetes CEL libraries kgitops evaluates are tested in tests/validate_cel_k8s.rs.

mod common;
mod validate_support;

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kgitops::validate::{Finding, Schemas, Severity, check_schemas, validate_cluster};
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use validate_support::{set, shared, text, yaml};

/// The CRD files of a Strimzi release, the one place that says where they are: the vendored copy
/// in the repository (`infrastructure/strimzi/<release>/`, upstream file names `0NN-Crd-*.yaml`)
/// once the release is vendored there, else the upstream copy `shared/strimzi-crds-<release>`
/// ([`validate_support::shared`]).
fn crd_files(release: &str) -> Vec<PathBuf> {
    let vendored = common::repo_root().join("infrastructure/strimzi").join(release);
    let dir = if vendored.is_dir() {
        vendored
    } else {
        shared(&format!("strimzi-crds-{release}"))
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("-Crd-") && n.ends_with(".yaml"))
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: expected the 10 Strimzi CRD files, found {files:?}",
        dir.display()
    );
    files
}

fn crds(release: &str) -> Vec<Value> {
    crd_files(release)
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            yaml(&text)
        })
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect()
}

fn schemas(release: &str) -> Schemas {
    let mut schemas = Schemas::new().expect("embedded schema");
    for crd in crds(release) {
        schemas
            .add_crd(&crd, &format!("strimzi {release}"))
            .expect("CRD compiles");
    }
    schemas
}

/// One rule where it sits in a CRD.
#[derive(Clone, Debug)]
struct Site {
    group: String,
    version: String,
    kind: String,
    plural: String,
    /// JSON pointer of the node in the object (`/spec/kafka/rack`); `/0` for list items.
    pointer: String,
    rule: String,
    message: String,
}

/// Every `x-kubernetes-validations` rule of the served versions, read from the CRDs directly (not
/// through kgitops' compiler, so a rule the compiler missed still needs a case).
fn sites(crds: &[Value]) -> Vec<Site> {
    fn walk(node: &Value, pointer: &str, base: &Site, out: &mut Vec<Site>) {
        if let Some(rules) = node["x-kubernetes-validations"].as_array() {
            for r in rules {
                out.push(Site {
                    pointer: pointer.to_string(),
                    rule: r["rule"].as_str().unwrap_or_default().to_string(),
                    message: r["message"].as_str().unwrap_or_default().to_string(),
                    ..base.clone()
                });
            }
        }
        if let Some(props) = node["properties"].as_object() {
            for (k, v) in props {
                walk(v, &format!("{pointer}/{k}"), base, out);
            }
        }
        if node["items"].is_object() {
            walk(&node["items"], &format!("{pointer}/0"), base, out);
        }
        assert!(
            !node["additionalProperties"].is_object()
                || node["additionalProperties"]["x-kubernetes-validations"].is_null(),
            "{pointer}: a rule under additionalProperties needs a case builder for map values"
        );
    }
    let mut out = Vec::new();
    for crd in crds {
        for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
            if v["served"] != true {
                continue;
            }
            let base = Site {
                group: crd["spec"]["group"].as_str().unwrap_or_default().into(),
                version: v["name"].as_str().unwrap_or_default().into(),
                kind: crd["spec"]["names"]["kind"].as_str().unwrap_or_default().into(),
                plural: crd["spec"]["names"]["plural"].as_str().unwrap_or_default().into(),
                pointer: String::new(),
                rule: String::new(),
                message: String::new(),
            };
            walk(&v["schema"]["openAPIV3Schema"], "", &base, &mut out);
        }
    }
    out
}

/// A valid object of each kind that has rules, to put the node values of the cases into.
fn base_object(site: &Site, name: &str) -> Value {
    let spec = match site.kind.as_str() {
        "Kafka" => json!({"kafka": {"version": "4.3.1", "metadataVersion": "4.3-IV0",
            "listeners": [{"name": "plain", "port": 9092, "type": "internal", "tls": false}]},
            "entityOperator": {"topicOperator": {}, "userOperator": {}}}),
        "KafkaConnect" => json!({"replicas": 1, "bootstrapServers": "main-kafka-bootstrap:9092",
            "groupId": "connect", "configStorageTopic": "connect-configs",
            "statusStorageTopic": "connect-status", "offsetStorageTopic": "connect-offsets"}),
        "KafkaUser" => json!({"authentication": {"type": "tls"}}),
        "KafkaBridge" => json!({"replicas": 1, "bootstrapServers": "main-kafka-bootstrap:9092"}),
        "KafkaMirrorMaker2" => json!({"replicas": 1,
            "target": {"alias": "target", "bootstrapServers": "target:9092", "groupId": "mm2",
                "configStorageTopic": "mm2-configs", "statusStorageTopic": "mm2-status",
                "offsetStorageTopic": "mm2-offsets"},
            "mirrors": [{"source": {"alias": "source", "bootstrapServers": "source:9092"}}]}),
        other => panic!("no base object for {other}: add one for its rule {:?}", site.rule),
    };
    let mut spec = spec;
    if site.pointer.starts_with("/spec/zookeeper/") {
        spec["zookeeper"] = json!({"replicas": 3, "storage": {"type": "ephemeral"}});
    }
    json!({"apiVersion": format!("{}/{}", site.group, site.version), "kind": site.kind,
        "metadata": {"name": name, "labels": {"strimzi.io/cluster": "main"}}, "spec": spec})
}

/// Values of the rule's node that break it, and values that satisfy it, keyed by the rule text.
fn cases(rule: &str) -> Option<(Vec<Value>, Vec<Value>)> {
    let jmx_ok = json!({"type": "jmxPrometheusExporter",
        "valueFrom": {"configMapKeyRef": {"name": "metrics", "key": "kafka.yaml"}}});
    Some(match rule {
        r#"(has(self.type) && self.type != "topology-label") || self.topologyKey != """# => (
            vec![
                json!({"type": "topology-label", "topologyKey": ""}),
                json!({"topologyKey": ""}),
                // No topologyKey at all: `no such key`, which the apiserver refuses too.
                json!({}),
                json!({"type": "topology-label"}),
            ],
            vec![
                json!({"topologyKey": "topology.kubernetes.io/zone"}),
                json!({"type": "topology-label", "topologyKey": "topology.kubernetes.io/zone"}),
                json!({"type": "environment-variable", "envVarName": "RACK"}),
            ],
        ),
        r#"has(self.type) == false || self.type != "environment-variable" || self.envVarName != """# => (
            vec![
                json!({"type": "environment-variable", "envVarName": ""}),
                json!({"type": "environment-variable"}),
            ],
            vec![
                json!({"type": "environment-variable", "envVarName": "RACK"}),
                json!({"topologyKey": "topology.kubernetes.io/zone", "envVarName": ""}),
            ],
        ),
        "self.type != 'jmxPrometheusExporter' || has(self.valueFrom)" => {
            (vec![json!({"type": "jmxPrometheusExporter"})], vec![jmx_ok])
        }
        "self.type != 'strimziMetricsReporter'" => (
            vec![json!({"type": "strimziMetricsReporter", "values": {"allowList": ["kafka_.*"]}})],
            vec![jmx_ok],
        ),
        "self.type == 'tls' || (!has(self.validityDays) && !has(self.renewalDays))" => (
            vec![
                json!({"type": "scram-sha-512", "validityDays": 30}),
                json!({"type": "tls-external", "renewalDays": 5}),
            ],
            vec![
                json!({"type": "scram-sha-512"}),
                json!({"type": "tls", "validityDays": 30, "renewalDays": 5}),
            ],
        ),
        "self.type != 'tls' || (has(self.renewalDays) == has(self.validityDays))" => (
            vec![
                json!({"type": "tls", "validityDays": 30}),
                json!({"type": "tls", "renewalDays": 5}),
            ],
            vec![
                json!({"type": "tls"}),
                json!({"type": "tls", "validityDays": 30, "renewalDays": 5}),
            ],
        ),
        "self.type != 'tls' || !has(self.renewalDays) || !has(self.validityDays) || self.renewalDays < self.validityDays" => {
            (
                vec![
                    json!({"type": "tls", "validityDays": 5, "renewalDays": 30}),
                    json!({"type": "tls", "validityDays": 30, "renewalDays": 30}),
                ],
                vec![json!({"type": "tls", "validityDays": 31, "renewalDays": 30})],
            )
        }
        _ => return None,
    })
}

/// kgitops' verdict: `Ok` or the error findings.
fn offline(schemas: &Schemas, obj: &Value) -> Result<(), Vec<Finding>> {
    let errors: Vec<Finding> = check_schemas(schemas, "dev", std::slice::from_ref(obj))
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Installs the release's CRDs over the control plane's Strimzi CRDs (those of the harness, or of
/// the release tested before). With `replace` the old ones are deleted first: from 1.0.0 on
/// `v1beta2` is no longer served, and the apiserver refuses a CRD update that drops a stored
/// version. No custom resources exist (the test only dry-runs), yet the apiserver takes about a
/// minute to finish deleting a CRD.
async fn install(client: &kube::Client, release: &str, replace: bool) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crds = crds(release);
    for crd in crds.iter().filter(|_| replace) {
        let name = crd["metadata"]["name"].as_str().expect("CRD name");
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => panic!("deleting CRD {name}: {e}"),
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    for crd in crds.iter().filter(|_| replace) {
        let name = crd["metadata"]["name"].as_str().expect("CRD name");
        while api.get_opt(name).await.expect("get CRD").is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "CRD {name} not deleted after 300 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for file in crd_files(release) {
        common::install_crds(&file).unwrap_or_else(|e| panic!("installing {}: {e}", file.display()));
    }
}

/// The apiserver's verdict: `Ok` or its refusal message.
async fn apiserver(client: &kube::Client, ns: &str, site: &Site, obj: &Value) -> Result<(), String> {
    let gvk = GroupVersionKind::gvk(&site.group, &site.version, &site.kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, &site.plural);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let obj: DynamicObject = serde_json::from_value(obj.clone()).expect("a DynamicObject");
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match api.create(&params, &obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 422 => Err(status.message),
        Err(e) => panic!("dry-run create {} failed unexpectedly: {e}", site.kind),
    }
}

/// Every rule of both generations: 0.51.0 (`v1beta2` and `v1` served, 13 rules) and 1.2.0 (`v1`
/// only, 17 rules). One test, as the releases' CRDs replace each other in the control plane.
#[tokio::test]
async fn every_crd_rule_agrees_with_the_apiserver() {
    let client = common::client().await;
    // 0.51.0 updates the harness' 0.45.2 CRDs in place (it still serves and stores v1beta2); 1.2.0
    // replaces them.
    for (release, replace, rules) in [("0.51.0", false, 13), ("1.2.0", true, 17)] {
        install(&client, release, replace).await;
        agree_with_the_apiserver(release, rules).await;
    }
}

async fn agree_with_the_apiserver(release: &str, rules: usize) {
    let crds = crds(release);
    let sites = sites(&crds);
    assert_eq!(
        sites.len(),
        rules,
        "{release}: the number of rules changed: {sites:#?}"
    );
    let missing: Vec<String> = sites
        .iter()
        .filter(|s| cases(&s.rule).is_none())
        .map(|s| format!("{} {} {}: {}", s.kind, s.version, s.pointer, s.rule))
        .collect();
    assert!(
        missing.is_empty(),
        "{release}: rules without test cases:\n{}",
        missing.join("\n")
    );

    let schemas = schemas(release);
    let ns = common::namespace(&format!("cel-{release}")).await;
    let mut disagreements = Vec::new();
    let mut checked = 0;
    for (i, site) in sites.iter().enumerate() {
        let (bad, good) = cases(&site.rule).expect("checked above");
        let all = bad
            .into_iter()
            .map(|v| (v, false))
            .chain(good.into_iter().map(|v| (v, true)));
        for (j, (value, should_pass)) in all.enumerate() {
            let mut obj = base_object(site, &format!("cel-{i}-{j}"));
            set(&mut obj, &site.pointer, value.clone());
            obj["metadata"]["namespace"] = json!(ns.name);
            let ours = offline(&schemas, &obj);
            let theirs = apiserver(&ns.client, &ns.name, site, &obj).await;
            let case = format!(
                "{release} {} {} {} = {value}  (rule: {})",
                site.kind, site.version, site.pointer, site.rule
            );
            // The case must be what it claims, for the apiserver, with the rule's own message ...
            match (&theirs, should_pass) {
                (Ok(()), false) => disagreements.push(format!(
                    "{case}: the apiserver accepts a case meant to break the rule"
                )),
                (Err(m), true) => {
                    disagreements.push(format!("{case}: the apiserver refuses a case meant to pass: {m}"))
                }
                (Err(m), false) if !m.contains(&site.message) => disagreements.push(format!(
                    "{case}: the apiserver refuses it for another reason: {m}"
                )),
                _ => {}
            }
            // ... and kgitops must agree, naming the rule's message at the node.
            match (&ours, &theirs) {
                (Ok(()), Ok(())) => {}
                (Err(findings), Err(_)) => {
                    let path = site.pointer.trim_start_matches('/').replace('/', ".");
                    let named = findings.iter().any(|f| {
                        f.rule == "schema-cel" && f.message.contains(&site.message) && f.path == path
                    });
                    if !named && !should_pass {
                        disagreements.push(format!(
                            "{case}: both refuse, but kgitops does not name the rule at {path}:\n{}",
                            text(findings.clone())
                        ));
                    }
                }
                (Ok(()), Err(m)) => {
                    disagreements.push(format!("{case}: kgitops accepts, the apiserver refuses: {m}"))
                }
                (Err(findings), Ok(())) => disagreements.push(format!(
                    "{case}: kgitops refuses, the apiserver accepts:\n{}",
                    text(findings.clone())
                )),
            }
            checked += 1;
        }
    }
    assert!(
        disagreements.is_empty(),
        "{release}: {} of {checked} cases disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    eprintln!(
        "{release}: {checked} cases of {} rules agree with the apiserver",
        sites.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Offline semantics on a synthetic CRD.

fn widget_schemas() -> Schemas {
    let path = common::repo_root().join("tests/fixtures/cel/widget-crd.yaml");
    let mut schemas = Schemas::new().expect("embedded schema");
    schemas.load_crds(&path).expect("widget CRD loads");
    schemas
}

fn widget(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "n"}, "spec": spec})
}

fn summary(findings: &[Finding]) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = findings
        .iter()
        .map(|f| (f.rule.clone(), f.path.clone(), f.message.clone()))
        .collect();
    out.sort();
    out
}

#[test]
fn transition_rules_run_only_against_a_base_revision() {
    let schemas = widget_schemas();
    let old = widget(json!({"size": 3, "mode": "fast"}));
    let shrunk = widget(json!({"size": 2, "mode": "fast"}));
    // Alone (a create, or no base render): the transition rule is skipped.
    assert_eq!(
        summary(&check_schemas(&schemas, "dev", std::slice::from_ref(&shrunk))),
        vec![]
    );
    // Against the base revision: `self >= oldSelf` fails with the message expression.
    let findings = validate_cluster(
        &schemas,
        "dev",
        Some(std::slice::from_ref(&old)),
        std::slice::from_ref(&shrunk),
    );
    assert_eq!(
        summary(&findings),
        vec![(
            "schema-cel".into(),
            "spec.size".into(),
            "size may only grow (it was above 2)".into()
        )]
    );
    let grown = widget(json!({"size": 4, "mode": "fast"}));
    assert_eq!(
        summary(&validate_cluster(
            &schemas,
            "dev",
            Some(std::slice::from_ref(&old)),
            std::slice::from_ref(&grown)
        )),
        vec![]
    );
}

#[test]
fn field_path_reason_and_default_messages() {
    let schemas = widget_schemas();
    let findings = check_schemas(
        &schemas,
        "dev",
        &[widget(
            json!({"size": 1, "mode": "slow", "replicas": [{"name": "a", "count": 0}],
            "labels": {"team": ""}}),
        )],
    );
    assert_eq!(
        summary(&findings),
        vec![
            (
                "schema-cel".into(),
                "spec.labels[team]".into(),
                "failed rule: self != ''".into()
            ),
            (
                "schema-cel".into(),
                "spec.mode".into(),
                "slow mode needs at least 2 (FieldValueForbidden)".into()
            ),
            (
                "schema-cel".into(),
                "spec.replicas[0].count".into(),
                "count must be positive".into()
            ),
        ]
    );
}

#[test]
fn rules_kgitops_cannot_evaluate_are_reported_once_never_passed() {
    let schemas = widget_schemas();
    let objects = vec![widget(json!({"size": 1, "timeout": "1m"})), {
        let mut w = widget(json!({"size": 1, "timeout": "2h"}));
        w["metadata"]["name"] = json!("w2");
        w
    }];
    let findings = check_schemas(&schemas, "dev", &objects);
    let unchecked: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule == "schema-cel-unchecked")
        .collect();
    assert_eq!(unchecked.len(), 1, "{}", text(findings.clone()));
    assert_eq!(unchecked[0].severity, Severity::Warning);
    assert_eq!(unchecked[0].path, "spec.timeout");
    assert!(
        unchecked[0].message.contains("duration"),
        "{}",
        unchecked[0].message
    );
    assert_eq!(findings.len(), 1, "{}", text(findings.clone()));
}

// ---------------------------------------------------------------------------------------------
// Cost.

/// The upstream 1.2.0 examples validate clean against the 1.2.0 CRDs with their rules, and the rules
/// cost little: CRDs compile (rules once per process) and objects validate in milliseconds. Prints
/// the figures; the bound is loose (a debug build on a shared machine), the benchmark of `validate`
/// of all overlays is the lead's.
#[test]
fn upstream_examples_validate_clean_and_rules_cost_little() {
    let examples = shared("strimzi-examples-1.2.0");
    let mut objects = Vec::new();
    for dir in ["kafka", "metrics", "user", "topic", "cruise-control"] {
        let path = examples.join(dir);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            objects.extend(yaml(&text));
        }
    }
    assert!(objects.len() > 20, "{} example objects", objects.len());

    let crds = crds("1.2.0");
    let started = std::time::Instant::now();
    let rounds = 10;
    let mut schemas = Schemas::new().expect("embedded schema");
    for _ in 0..rounds {
        schemas = Schemas::new().expect("embedded schema");
        for crd in &crds {
            schemas.add_crd(crd, "strimzi 1.2.0").expect("CRD compiles");
        }
    }
    let compile = started.elapsed() / rounds;

    let started = std::time::Instant::now();
    let mut findings = Vec::new();
    for _ in 0..rounds {
        findings = check_schemas(&schemas, "dev", &objects);
    }
    let validate = started.elapsed() / rounds;
    assert!(findings.is_empty(), "{}", text(findings));
    eprintln!(
        "1.2.0: 10 CRDs compile in {compile:?}; {} example objects validate in {validate:?}",
        objects.len()
    );
    assert!(
        validate < Duration::from_millis(100),
        "validating {} objects took {validate:?}",
        objects.len()
    );
}

/// The synthetic CRD's semantics against the apiserver: messages of `message`, `messageExpression`
/// and the default, `fieldPath` paths, `reason`, and a transition rule on an update (dry-run merge
/// patch of a stored object) — kgitops with the stored object as the base revision agrees. The rule
/// kgitops cannot evaluate (quantity) is a warning whatever the value, never a silent pass.
#[tokio::test]
async fn synthetic_crd_semantics_agree_with_the_apiserver() {
    use kube::api::{Patch, PatchParams};
    let path = common::repo_root().join("tests/fixtures/cel/widget-crd.yaml");
    common::install_crds(&path).unwrap_or_else(|e| panic!("installing {}: {e}", path.display()));
    let ns = common::namespace("cel-widget").await;
    let schemas = widget_schemas();
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let api: Api<DynamicObject> = Api::namespaced_with(
        ns.client.clone(),
        &ns.name,
        &ApiResource::from_gvk_with_plural(&gvk, "widgets"),
    );
    let in_ns = |mut w: Value, name: &str| {
        w["metadata"]["name"] = json!(name);
        w["metadata"]["namespace"] = json!(ns.name);
        w
    };
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };

    // A create breaking three rules: each is named at its path, with its message.
    let bad = in_ns(
        widget(
            json!({"size": 1, "mode": "slow", "replicas": [{"name": "a", "count": 0}],
            "labels": {"team": ""}}),
        ),
        "bad",
    );
    let refusal = match api
        .create(&dry_run, &serde_json::from_value(bad.clone()).expect("object"))
        .await
    {
        Err(kube::Error::Api(status)) if status.code == 422 => status.message,
        other => panic!("expected the apiserver to refuse: {other:?}"),
    };
    let ours = summary(&check_schemas(&schemas, "dev", std::slice::from_ref(&bad)));
    assert_eq!(ours.len(), 3, "{ours:?}");
    for (_, path, message) in &ours {
        let message = message.trim_end_matches(" (FieldValueForbidden)");
        assert!(
            refusal.contains(&format!("{path}: ")) && refusal.contains(message),
            "kgitops says {path}: {message}; the apiserver: {refusal}"
        );
    }
    assert!(refusal.contains("spec.mode: Forbidden"), "{refusal}");

    // A transition rule: on create it does not run; on an update it does, with the old value.
    let stored = in_ns(widget(json!({"size": 3})), "grows");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(stored.clone()).expect("object"),
    )
    .await
    .expect("create the stored widget");
    for (size, accepted) in [(2, false), (4, true)] {
        let patch = PatchParams {
            dry_run: true,
            ..PatchParams::default()
        };
        let theirs = api
            .patch("grows", &patch, &Patch::Merge(&json!({"spec": {"size": size}})))
            .await;
        let mut head = stored.clone();
        head["spec"]["size"] = json!(size);
        let ours = summary(&validate_cluster(
            &schemas,
            "dev",
            Some(std::slice::from_ref(&stored)),
            std::slice::from_ref(&head),
        ));
        match theirs {
            Ok(_) => assert!(accepted && ours.is_empty(), "size {size}: kgitops {ours:?}"),
            Err(kube::Error::Api(status)) if status.code == 422 => {
                assert!(
                    !accepted,
                    "size {size}: the apiserver refuses: {}",
                    status.message
                );
                assert_eq!(ours.len(), 1, "{ours:?}");
                assert_eq!(ours[0].2, "size may only grow (it was above 2)");
                assert!(status.message.contains(&ours[0].2), "{}", status.message);
            }
            Err(e) => panic!("size {size}: {e}"),
        }
        // Without the base revision, kgitops skips the transition rule, as a create does.
        assert!(summary(&check_schemas(&schemas, "dev", std::slice::from_ref(&head))).is_empty());
    }

    // quantity() (a Kubernetes library kgitops evaluates): both decide the same.
    for (limit, accepted) in [("1Gi", true), ("20Gi", false)] {
        let w = in_ns(
            widget(json!({"size": 1, "limit": limit})),
            &format!("limit-{}", limit.to_lowercase()),
        );
        let theirs = api
            .create(&dry_run, &serde_json::from_value(w.clone()).expect("object"))
            .await;
        assert_eq!(theirs.is_ok(), accepted, "{limit}: {theirs:?}");
        let ours = summary(&check_schemas(&schemas, "dev", std::slice::from_ref(&w)));
        if accepted {
            assert_eq!(ours, vec![], "{limit}");
        } else {
            assert_eq!(
                ours,
                vec![(
                    "schema-cel".into(),
                    "spec.limit".into(),
                    "limit must be below 10Gi".into()
                )]
            );
        }
    }

    // duration() (not evaluated offline): the apiserver decides; kgitops warns in both cases.
    for (timeout, accepted) in [("1m", true), ("2h", false)] {
        let w = in_ns(
            widget(json!({"size": 1, "timeout": timeout})),
            &format!("timeout-{timeout}"),
        );
        let theirs = api
            .create(&dry_run, &serde_json::from_value(w.clone()).expect("object"))
            .await;
        assert_eq!(theirs.is_ok(), accepted, "{timeout}: {theirs:?}");
        let ours = check_schemas(&schemas, "dev", std::slice::from_ref(&w));
        assert_eq!(ours.len(), 1, "{}", text(ours.clone()));
        assert_eq!(
            (ours[0].rule.as_str(), ours[0].severity),
            ("schema-cel-unchecked", Severity::Warning)
        );
    }
}
