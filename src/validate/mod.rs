//! Offline validation: OpenAPI/CRD schemas and Kafka-aware rules -> findings.
//!
//! - [`schema`]: every object against its schema — built-in kinds from the pinned Kubernetes OpenAPI
//!   (embedded in the binary), custom resources from CRDs given with `--crds` or found in the render —
//!   with the apiserver's strict field validation (unknown fields are errors).
//! - [`rules`]: the data-driven rule table ([`RULES`], documented in `src/validate/RULES.md`): Kafka-
//!   aware checks of the Strimzi `Kafka` resource and the ConfigMaps and Services around it, on one
//!   revision, or between a base and a head revision (the PR diff calls [`check_change`]).
//! - [`Finding`]/[`Report`]: what is reported, as text or stable JSON.
//! - [`validate_repo`]: every cluster overlay (`clusters/<name>/`) of a repository at one revision, or
//!   between two, rendered by the renderer the caller passes.
//!
//! Everything here works on rendered objects (`serde_json::Value`); rendering and reading git are the
//! callers' business.

mod finding;
pub mod quantity;
mod repo;
pub mod rules;
pub mod schema;

use serde_json::Value;

pub use finding::{Finding, Report, Severity};
pub use repo::{CLUSTERS_DIR, Renderer, ValidateError, cluster_names, validate_repo};
pub use rules::{RULES, Rule, Scope, check as check_rules, check_change, rule};
pub use schema::{IssueKind, SchemaError, SchemaIssue, Schemas};

use crate::manifest::ResId;

/// `Kind/namespace/name` of an object for findings, or its position when it has no identity.
fn object_name(obj: &Value, index: usize) -> String {
    ResId::of(obj)
        .map(|id| id.to_string())
        .unwrap_or_else(|_| format!("document #{}", index + 1))
}

/// Schema-validates one cluster's render. CRDs in the render are compiled and added to a copy of
/// `schemas` first, so custom resources of a CRD the repository ships validate against it.
pub fn check_schemas(schemas: &Schemas, cluster: &str, objects: &[Value]) -> Vec<Finding> {
    check_schemas_change(schemas, cluster, None, objects)
}

/// [`check_schemas`] for a change: with the base render `from`, each object that exists there too is
/// validated as an update of its base version, so CRD transition rules (`oldSelf`) run.
pub fn check_schemas_change(
    schemas: &Schemas,
    cluster: &str,
    from: Option<&[Value]>,
    objects: &[Value],
) -> Vec<Finding> {
    let mut findings = Vec::new();
    // A CRD rule kgitops cannot evaluate is reported once per cluster, on the first object it
    // concerns, not once per object.
    let mut unchecked_seen = std::collections::HashSet::new();
    let mut push = |obj: &str, issue: SchemaIssue| {
        if issue.kind == IssueKind::CelUnchecked && !unchecked_seen.insert(issue.message.clone()) {
            return;
        }
        let rule_id = issue.kind.rule_id();
        findings.push(Finding {
            severity: rule(rule_id).map_or(Severity::Error, |r| r.severity),
            rule: rule_id.to_string(),
            cluster: cluster.to_string(),
            object: obj.to_string(),
            path: issue.path,
            message: issue.message,
            fix: issue.fix,
        })
    };
    let mut local = schemas.clone();
    let crds: Vec<&Value> = objects.iter().filter(|o| schema::crd::is_crd(o)).collect();
    local.compile_ahead(&crds);
    for (i, obj) in objects.iter().enumerate() {
        if schema::crd::is_crd(obj) {
            let name = object_name(obj, i);
            if let Err(err) = local.add_crd(obj, &format!("cluster {cluster}")) {
                let message = match err {
                    SchemaError::InvalidCrd { message, .. } => message,
                    other => other.to_string(),
                };
                push(
                    &name,
                    SchemaIssue {
                        kind: IssueKind::InvalidCrd,
                        path: "spec.versions".into(),
                        message,
                        fix: "fix the CRD's openAPIV3Schema".into(),
                    },
                );
            }
        }
    }
    let base: std::collections::HashMap<ResId, &Value> = from
        .unwrap_or_default()
        .iter()
        .filter_map(|o| ResId::of(o).ok().map(|id| (id, o)))
        .collect();
    for (i, obj) in objects.iter().enumerate() {
        let name = object_name(obj, i);
        let old = ResId::of(obj).ok().and_then(|id| base.get(&id).copied());
        for issue in local.validate_change(obj, old) {
            push(&name, issue);
        }
    }
    findings
}

/// Everything for one cluster: schemas and revision rules on the head render `to`, and with a base
/// render `from` also the change rules.
pub fn validate_cluster(
    schemas: &Schemas,
    cluster: &str,
    from: Option<&[Value]>,
    to: &[Value],
) -> Vec<Finding> {
    let mut findings = check_schemas_change(schemas, cluster, from, to);
    findings.extend(check_rules(cluster, from, to));
    findings
}
