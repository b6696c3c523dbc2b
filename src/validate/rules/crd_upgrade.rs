//! CRD upgrades between two revisions (an operator release change): a CRD of the head revision that
//! no longer declares a version the base revision's CRD declared.
//!
//! Offline, the live `status.storedVersions` is unknown; what the base revision says is enough for
//! the sure case: the version the base CRD stores in (`storage: true`) is in every cluster's
//! `storedVersions` while that revision is applied, so dropping it fails unless a migration (for
//! Strimzi, `crd-upgrade`) ran in between — and a migration first needs a revision whose CRD stores
//! in the new version. A dropped version that was only served may have been stored earlier; `diff
//! --live` and `apply` check the live `storedVersions` before writing anything.

use serde_json::Value;

use super::{Context, Hit};
use crate::manifest::crd;

/// `crd-stored-version-dropped`: the head CRD drops the base CRD's storage version.
pub(crate) fn stored_version_dropped(ctx: &Context<'_>) -> Vec<Hit> {
    dropped(ctx, true)
}

/// `crd-served-version-dropped`: the head CRD drops a version the base CRD served but did not store in.
pub(crate) fn served_version_dropped(ctx: &Context<'_>) -> Vec<Hit> {
    dropped(ctx, false)
}

fn dropped(ctx: &Context<'_>, storage: bool) -> Vec<Hit> {
    let Some(from) = &ctx.from else { return Vec::new() };
    let mut hits = Vec::new();
    for head in ctx.to.objects.iter().filter(|o| crd::is_crd(o)) {
        let name = crd_name(head);
        let Some(base) = from
            .objects
            .iter()
            .find(|o| crd::is_crd(o) && crd_name(o) == name)
        else {
            continue;
        };
        let kept = crd::declared_versions(head);
        let stored = crd::storage_version(base);
        let gone: Vec<String> = crd::declared_versions(base)
            .into_iter()
            .filter(|v| !kept.contains(v) && (Some(*v) == stored) == storage)
            .map(str::to_string)
            .collect();
        if gone.is_empty() {
            continue;
        }
        let message = if storage {
            format!(
                "drops {}, the version the base revision stores objects in: the apiserver refuses the CRD update \
                 while status.storedVersions lists it, and the apply of this revision stops there",
                gone.join(", ")
            )
        } else {
            format!(
                "drops {}, which the base revision serves: if objects were ever stored in it, \
                 status.storedVersions still lists it and the apiserver refuses the update (`kgitops diff --live` \
                 checks the live CRD)",
                gone.join(", ")
            )
        };
        hits.push(Hit {
            object: format!("CustomResourceDefinition/{name}"),
            path: "spec.versions".into(),
            message,
            fix: Some(crd::migration_hint(name, &gone)),
        });
    }
    hits
}

fn crd_name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::validate::check_rules;

    fn crd(name: &str, versions: &[(&str, bool)]) -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {"group": "kafka.strimzi.io", "scope": "Namespaced", "names": {"kind": "Kafka"},
                     "versions": versions.iter().map(|(n, s)| json!({"name": n, "served": true, "storage": s})).collect::<Vec<_>>()}
        })
    }

    fn rules(from: &[Value], to: &[Value]) -> Vec<(String, String)> {
        check_rules("dev", Some(from), to)
            .into_iter()
            .filter(|f| f.rule.starts_with("crd-"))
            .map(|f| (f.rule, f.message))
            .collect()
    }

    #[test]
    fn dropping_the_base_storage_version_is_an_error_rule() {
        let name = "kafkas.kafka.strimzi.io";
        let found = rules(&[crd(name, &[("v1beta2", true)])], &[crd(name, &[("v1", true)])]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "crd-stored-version-dropped");
        assert!(found[0].1.contains("v1beta2"), "{found:?}");
    }

    #[test]
    fn dropping_a_served_only_version_is_the_warning_rule() {
        let name = "kafkas.kafka.strimzi.io";
        let found = rules(
            &[crd(name, &[("v1", true), ("v1beta2", false)])],
            &[crd(name, &[("v1", true)])],
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "crd-served-version-dropped");
    }

    #[test]
    fn keeping_every_version_or_a_new_crd_is_silent() {
        let name = "kafkas.kafka.strimzi.io";
        let both = crd(name, &[("v1", true), ("v1beta2", false)]);
        assert!(rules(&[crd(name, &[("v1beta2", true)])], std::slice::from_ref(&both)).is_empty());
        assert!(rules(&[], &[both]).is_empty());
    }
}
