//! Managed-fields entries of an API version the server no longer serves.
//!
//! Server-side apply converts the object to the API version of every `metadata.managedFields`
//! entry. When a CRD stops serving a version (Strimzi 1.0 serves only `kafka.strimzi.io/v1`; the
//! operators before it wrote the status as `v1beta2`), an entry of that version makes every apply
//! fail with `request to convert CR to an invalid group/version: kafka.strimzi.io/v1beta2`
//! (kubernetes/kubernetes#111937, open): Strimzi's `crd-upgrade` re-stores the objects but leaves
//! the entries. kgitops removes them in a conditional merge patch of `managedFields` (their fields
//! are no one's afterwards: no manager can write that version any more): for the revision's live
//! objects of every CRD it updated, right after stage 1 ([`stale_versions`]: a later revision's
//! dry-run of an unchanged object would fail otherwise), and for an apply that fails with that
//! error ([`unconvertible_version`]), before applying again.

use serde_json::{Value, json};

/// What the apiserver says when an apply meets a managed-fields entry of an unserved version.
const UNCONVERTIBLE: &str = "request to convert CR to an invalid group/version: ";

/// The `group/version` an apply error names as unconvertible, if it is that error.
pub fn unconvertible_version(message: &str) -> Option<&str> {
    let rest = &message[message.find(UNCONVERTIBLE)? + UNCONVERTIBLE.len()..];
    let version = rest
        .split(|c: char| c.is_whitespace() || c == ',' || c == '"')
        .next()
        .unwrap_or_default();
    (version.contains('/')).then_some(version)
}

/// The versions `crd` (a CustomResourceDefinition) serves, with its group and kind.
pub fn served(crd: &Value) -> Option<(&str, &str, Vec<&str>)> {
    let group = crd.pointer("/spec/group")?.as_str()?;
    let kind = crd.pointer("/spec/names/kind")?.as_str()?;
    let versions = crd
        .pointer("/spec/versions")?
        .as_array()?
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect();
    Some((group, kind, versions))
}

/// The `group/version`s of `live`'s managed-fields entries in `group` that are not `served`.
pub fn stale_versions(live: &Value, group: &str, served: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("apiVersion").and_then(Value::as_str))
        .filter(|v| {
            v.split_once('/')
                .is_some_and(|(g, version)| g == group && !served.contains(&version))
        })
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The merge patch that drops `live`'s managed-fields entries of `api_version`, conditional on
/// `live`'s resourceVersion; `None` when it has none.
pub fn drop_version_patch(live: &Value, api_version: &str) -> Option<Value> {
    drop_versions_patch(live, &[api_version])
}

/// [`drop_version_patch`] for several versions at once.
pub fn drop_versions_patch(live: &Value, api_versions: &[&str]) -> Option<Value> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let kept: Vec<Value> = entries
        .iter()
        .filter(|e| {
            !e.get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| api_versions.contains(&v))
        })
        .cloned()
        .collect();
    if kept.len() == entries.len() {
        return None;
    }
    // An empty list in a patch means "leave managedFields alone"; `[{}]` clears them.
    let kept = if kept.is_empty() { vec![json!({})] } else { kept };
    Some(json!({"metadata": {
        "managedFields": kept,
        "resourceVersion": live.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null),
    }}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_the_apiserver_message() {
        assert_eq!(
            unconvertible_version(
                "Internal error occurred: request to convert CR to an invalid group/version: kafka.strimzi.io/v1beta2"
            ),
            Some("kafka.strimzi.io/v1beta2")
        );
        assert_eq!(unconvertible_version("field is immutable"), None);
    }

    #[test]
    fn stale_versions_are_the_group_s_unserved_ones() {
        let crd = json!({"spec": {"group": "kafka.strimzi.io", "names": {"kind": "Kafka"},
            "versions": [{"name": "v1", "served": true}, {"name": "v1beta2", "served": false}]}});
        let (group, kind, versions) = served(&crd).unwrap();
        assert_eq!(
            (group, kind, versions.clone()),
            ("kafka.strimzi.io", "Kafka", vec!["v1"])
        );
        let live = json!({"metadata": {"managedFields": [
            {"apiVersion": "kafka.strimzi.io/v1"}, {"apiVersion": "kafka.strimzi.io/v1beta2"},
            {"apiVersion": "kafka.strimzi.io/v1beta2"}, {"apiVersion": "other.io/v1beta2"}]}});
        assert_eq!(
            stale_versions(&live, group, &versions),
            ["kafka.strimzi.io/v1beta2"]
        );
    }

    #[test]
    fn only_the_entries_of_that_version_are_dropped() {
        let live = json!({"metadata": {"resourceVersion": "42", "managedFields": [
            {"manager": "kgitops", "operation": "Apply", "apiVersion": "kafka.strimzi.io/v1"},
            {"manager": "strimzi-cluster-operator", "operation": "Update", "apiVersion": "kafka.strimzi.io/v1beta2",
             "subresource": "status"},
        ]}});
        assert_eq!(
            drop_version_patch(&live, "kafka.strimzi.io/v1beta2"),
            Some(json!({"metadata": {"resourceVersion": "42", "managedFields": [
                {"manager": "kgitops", "operation": "Apply", "apiVersion": "kafka.strimzi.io/v1"}]}}))
        );
        assert_eq!(drop_version_patch(&live, "kafka.strimzi.io/v1beta1"), None);
        let only_old = json!({"metadata": {"resourceVersion": "7", "managedFields": [
            {"manager": "x", "apiVersion": "kafka.strimzi.io/v1beta2"}]}});
        assert_eq!(
            drop_version_patch(&only_old, "kafka.strimzi.io/v1beta2").unwrap()["metadata"]["managedFields"],
            json!([{}])
        );
    }
}
