//! What every stage asks of a CustomResourceDefinition (`apiextensions.k8s.io/v1`): is a document
//! one, which kind it defines, which versions it declares and stores, and which stored versions an
//! update would drop.
//!
//! The last one matters on operator upgrades: the apiserver refuses a CRD update whose
//! `spec.versions` no longer lists a version named in the live `status.storedVersions`
//! (`status.storedVersions[0]: Invalid value: "v1beta2": missing from spec.versions`), because objects
//! may still be stored in it. Strimzi 1.0.0 ships `v1` only, so every cluster that upgrades from 0.4x
//! meets it unless `crd-upgrade` ran first.

use serde_json::Value;

/// Whether a document is a v1 CustomResourceDefinition.
pub fn is_crd(doc: &Value) -> bool {
    doc.get("apiVersion").and_then(Value::as_str) == Some("apiextensions.k8s.io/v1")
        && doc.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
}

/// The kind a CRD defines: `(group, kind, namespaced)`.
pub fn defined_kind(crd: &Value) -> Option<(String, String, bool)> {
    if crd.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
        return None;
    }
    let spec = crd.get("spec")?;
    Some((
        spec.get("group")?.as_str()?.to_string(),
        spec.pointer("/names/kind")?.as_str()?.to_string(),
        spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
    ))
}

/// The versions `spec.versions` declares, in order.
pub fn declared_versions(crd: &Value) -> Vec<&str> {
    versions(crd)
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect()
}

/// The version marked `storage: true`.
pub fn storage_version(crd: &Value) -> Option<&str> {
    versions(crd)
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name").and_then(Value::as_str))
}

/// `status.storedVersions` of a live CRD: every version objects may be stored in.
pub fn stored_versions(live: &Value) -> Vec<&str> {
    live.pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The stored versions of `live` that `desired` no longer declares: applying `desired` fails on them.
pub fn dropped_stored_versions(desired: &Value, live: &Value) -> Vec<String> {
    let declared = declared_versions(desired);
    stored_versions(live)
        .into_iter()
        .filter(|v| !declared.contains(v))
        .map(str::to_string)
        .collect()
}

/// What to run before applying a CRD that drops `dropped`, for messages. Strimzi's CRDs get the
/// command of its v1 API conversion tool (Strimzi proposal 117); others the generic procedure.
pub fn migration_hint(crd_name: &str, dropped: &[String]) -> String {
    let list = dropped.join(", ");
    if crd_name.ends_with(".strimzi.io") {
        format!(
            "objects may still be stored as {list}: with the Strimzi operator still on 0.49–0.51, convert \
             the resources to kafka.strimzi.io/v1 in git and run the v1 API conversion tool's `crd-upgrade` \
             command (it stores every object as v1 and removes {list} from status.storedVersions), then apply"
        )
    } else {
        format!(
            "objects may still be stored as {list}: re-store every object in a version the new CRD keeps \
             (read and write each one back), remove {list} from the CRD's status.storedVersions \
             (`kubectl patch crd {crd_name} --subresource=status`), then apply"
        )
    }
}

fn versions(crd: &Value) -> impl Iterator<Item = &Value> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(versions: &[(&str, bool)]) -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "kafkas.kafka.strimzi.io"},
            "spec": {
                "group": "kafka.strimzi.io",
                "scope": "Namespaced",
                "names": {"kind": "Kafka"},
                "versions": versions.iter().map(|(n, s)| json!({"name": n, "served": true, "storage": s})).collect::<Vec<_>>(),
            }
        })
    }

    #[test]
    fn reads_declared_storage_and_kind() {
        let c = crd(&[("v1", false), ("v1beta2", true)]);
        assert!(is_crd(&c));
        assert_eq!(declared_versions(&c), ["v1", "v1beta2"]);
        assert_eq!(storage_version(&c), Some("v1beta2"));
        assert_eq!(
            defined_kind(&c),
            Some(("kafka.strimzi.io".into(), "Kafka".into(), true))
        );
    }

    #[test]
    fn a_stored_version_missing_from_the_update_is_dropped() {
        let mut live = crd(&[("v1", false), ("v1beta2", true)]);
        live["status"] = json!({"storedVersions": ["v1beta2", "v1"]});
        assert_eq!(dropped_stored_versions(&crd(&[("v1", true)]), &live), ["v1beta2"]);
        live["status"] = json!({"storedVersions": ["v1"]});
        assert!(dropped_stored_versions(&crd(&[("v1", true)]), &live).is_empty());
    }

    #[test]
    fn the_hint_names_strimzi_crd_upgrade_or_the_generic_steps() {
        let dropped = ["v1beta2".to_string()];
        assert!(migration_hint("kafkas.kafka.strimzi.io", &dropped).contains("crd-upgrade"));
        let other = migration_hint("widgets.example.com", &dropped);
        assert!(
            other.contains("storedVersions") && !other.contains("crd-upgrade"),
            "{other}"
        );
    }
}
