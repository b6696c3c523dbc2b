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
    let mut findings = Vec::new();
    let mut push = |obj: &str, issue: SchemaIssue| {
        findings.push(Finding {
            severity: Severity::Error,
            rule: issue.kind.rule_id().to_string(),
            cluster: cluster.to_string(),
            object: obj.to_string(),
            path: issue.path,
            message: issue.message,
            fix: issue.fix,
        })
    };
    let mut local = schemas.clone();
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
    for (i, obj) in objects.iter().enumerate() {
        let name = object_name(obj, i);
        for issue in local.validate(obj) {
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
    let mut findings = check_schemas(schemas, cluster, to);
    findings.extend(check_rules(cluster, from, to));
    findings
}
