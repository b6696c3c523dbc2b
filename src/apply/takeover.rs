//! Taking over objects created or last changed by client-side `kubectl apply`.
//!
//! Client-side apply records its fields under manager `kubectl-client-side-apply` with operation
//! `Update` (and a `last-applied-configuration` annotation). A server-side apply by another manager
//! would leave those fields alone, so fields removed from git would stay live forever. As
//! `kubectl apply --server-side` does (client-go `util/csaupgrade`), kgitops first moves the
//! client-side fields into its own `Apply` entry; the following apply then removes every field it
//! no longer sends, the last-applied annotation included.

use serde_json::{Map, Value};

use crate::plan::{CSA_MANAGER, fields};

fn is_csa(entry: &Value) -> bool {
    entry.get("manager").and_then(Value::as_str) == Some(CSA_MANAGER)
        && entry.get("operation").and_then(Value::as_str) == Some("Update")
        && entry
            .get("subresource")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
}

fn is_ours(entry: &Value, manager: &str) -> bool {
    entry.get("manager").and_then(Value::as_str) == Some(manager)
        && entry.get("operation").and_then(Value::as_str) == Some("Apply")
        && entry
            .get("subresource")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
}

/// The upgraded `metadata.managedFields` of `live`: client-side apply's fields merged into
/// `manager`'s `Apply` entry (created from the newest client-side entry when there is none), and
/// the client-side entries removed. `None` when there is nothing to take over.
pub fn upgraded_managed_fields(live: &Value, manager: &str) -> Option<Vec<Value>> {
    let mut entries: Vec<Value> = live.pointer("/metadata/managedFields")?.as_array()?.clone();
    if !entries.iter().any(is_csa) {
        return None;
    }
    let target = match entries.iter().position(|e| is_ours(e, manager)) {
        Some(i) => i,
        None => {
            // Managed fields are sorted newest first: convert the newest client-side entry.
            let i = entries.iter().position(is_csa)?;
            if let Some(map) = entries[i].as_object_mut() {
                map.insert("manager".into(), Value::String(manager.to_string()));
                map.insert("operation".into(), Value::String("Apply".into()));
            }
            i
        }
    };
    let api_version = entries[target].get("apiVersion").cloned();
    let csa_fields = entries
        .iter()
        .find(|e| is_csa(e) && e.get("apiVersion").cloned() == api_version)
        .and_then(|e| e.get("fieldsV1").cloned());
    if let Some(csa_fields) = csa_fields {
        let own = entries[target]
            .get("fieldsV1")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        if let Some(map) = entries[target].as_object_mut() {
            map.insert("fieldsV1".into(), fields::union(&own, &csa_fields));
            map.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        }
    }
    entries.retain(|e| !is_csa(e));
    Some(entries)
}

/// The merge patch that installs the upgraded managedFields, conditional on the live
/// `resourceVersion` (a concurrent change makes it fail with a conflict instead of losing it).
pub fn upgrade_patch(live: &Value, manager: &str) -> Option<Value> {
    let entries = upgraded_managed_fields(live, manager)?;
    let rv = live.pointer("/metadata/resourceVersion")?.clone();
    Some(serde_json::json!({"metadata": {"managedFields": entries, "resourceVersion": rv}}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_side_fields_move_to_kgitops() {
        let live = json!({"metadata": {"resourceVersion": "7", "managedFields": [
            {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:old": {}, "f:keep": {}}}},
            {"manager": "kube-controller", "operation": "Update", "apiVersion": "v1",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:x": {}}}}}
        ]}});
        let patch = upgrade_patch(&live, "kgitops").unwrap();
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
        let entries = patch["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["manager"], "kgitops");
        assert_eq!(entries[0]["operation"], "Apply");
        assert_eq!(
            entries[0]["fieldsV1"],
            json!({"f:data": {"f:old": {}, "f:keep": {}}})
        );
        assert_eq!(entries[1]["manager"], "kube-controller");
    }

    #[test]
    fn merges_into_an_existing_apply_entry() {
        let live = json!({"metadata": {"resourceVersion": "7", "managedFields": [
            {"manager": "kgitops", "operation": "Apply", "apiVersion": "v1", "fieldsV1": {"f:data": {"f:new": {}}}},
            {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
             "fieldsV1": {"f:data": {"f:old": {}}}}
        ]}});
        let entries = upgraded_managed_fields(&live, "kgitops").unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(
            entries[0]["fieldsV1"],
            json!({"f:data": {"f:new": {}, "f:old": {}}})
        );
        let plain = json!({"metadata": {"managedFields": [{"manager": "kgitops", "operation": "Apply"}]}});
        assert!(upgraded_managed_fields(&plain, "kgitops").is_none());
    }
}
