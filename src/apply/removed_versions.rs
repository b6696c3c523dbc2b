//! Managed-fields entries of an API version the server no longer serves.
//!
//! Server-side apply converts the object to the API version of every `metadata.managedFields`
//! entry. When a CRD stops serving a version (Strimzi 1.0 serves only `kafka.strimzi.io/v1`; the
//! operators before it wrote the status as `v1beta2`), an entry of that version makes every apply
//! fail with `request to convert CR to an invalid group/version: kafka.strimzi.io/v1beta2`
//! (kubernetes/kubernetes#111937, open): Strimzi's `crd-upgrade` re-stores the objects but leaves
//! the entries. kgitops removes exactly the entries of the version the server named, in a
//! conditional merge patch of `managedFields` (their fields are no one's afterwards: no manager
//! can write that version any more), and applies again.

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

/// The merge patch that drops `live`'s managed-fields entries of `api_version`, conditional on
/// `live`'s resourceVersion; `None` when it has none.
pub fn drop_version_patch(live: &Value, api_version: &str) -> Option<Value> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let kept: Vec<Value> = entries
        .iter()
        .filter(|e| e.get("apiVersion").and_then(Value::as_str) != Some(api_version))
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
