//! Normalization, in two places:
//!
//! - [`prepare`]: the desired object before it is sent (dry-run and apply). Each step works around
//!   one upstream quirk that would otherwise make an unchanged object look changed, or fail.
//! - [`for_compare`]: live and dry-run objects before they are compared and diffed. Drops what
//!   the server maintains itself (bookkeeping, status) so that a freshly applied cluster shows no
//!   changes.
//!
//! One named function per quirk, each with the upstream issue it works around.

use base64::Engine as _;
use serde_json::{Map, Value};

/// Annotation written by client-side `kubectl apply`; it holds a full copy of the object (for a
/// Secret: its values), so it is never compared nor shown.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Normalizes a desired object before it is sent to the server.
pub fn prepare(obj: &mut Value) {
    drop_null_fields(obj);
    secret_string_data_to_data(obj);
    service_empty_cluster_ip(obj);
    empty_metadata_maps(obj);
}

/// Normalizes a live or dry-run object for comparison and display.
pub fn for_compare(obj: &Value) -> Value {
    let mut out = obj.clone();
    drop_bookkeeping(&mut out);
    drop_status(&mut out);
    drop_last_applied_annotation(&mut out);
    hpa_dry_run_duplicated_metrics(&mut out);
    empty_metadata_maps(&mut out);
    out
}

/// Server bookkeeping that changes without any change of intent (and on every dry-run):
/// `managedFields` (timestamps), `resourceVersion`, `uid`, `generation` (bumped by a dry-run that
/// changes the spec), `creationTimestamp`, `selfLink`.
pub fn drop_bookkeeping(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "managedFields",
            "resourceVersion",
            "uid",
            "generation",
            "creationTimestamp",
            "selfLink",
        ] {
            meta.remove(key);
        }
    }
}

/// `status` is written by controllers through the status subresource; an apply never changes it.
pub fn drop_status(obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.remove("status");
    }
}

/// The client-side apply annotation: a stale copy of another tool's intent (and of Secret values).
pub fn drop_last_applied_annotation(obj: &mut Value) {
    if let Some(annotations) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

/// `labels: {}` / `annotations: {}` mean the same as absent, but an applied empty map is owned by
/// the applier and makes every apply of an otherwise identical object a write.
/// Works around <https://github.com/kubernetes/kubernetes/issues/124050>. (kgitops would not write
/// anyway, since it compares content and skips unchanged objects; this keeps the field set clean.)
pub fn empty_metadata_maps(obj: &mut Value) {
    fn strip(meta: Option<&mut Value>) {
        if let Some(meta) = meta.and_then(Value::as_object_mut) {
            for key in ["labels", "annotations"] {
                if meta
                    .get(key)
                    .is_some_and(|v| v.is_null() || v.as_object().is_some_and(Map::is_empty))
                {
                    meta.remove(key);
                }
            }
        }
    }
    strip(obj.get_mut("metadata"));
    // Pod templates of workloads carry a second metadata.
    strip(obj.pointer_mut("/spec/template/metadata"));
    strip(obj.pointer_mut("/spec/jobTemplate/spec/template/metadata"));
}

/// Explicit `null`s in an applied configuration are recorded as owned fields and change the
/// managedFields timestamp on every apply although nothing changed; `null` means "not set" here.
/// Works around <https://github.com/kubernetes/kubernetes/issues/108234> (as above, the no-op skip
/// already prevents the write; this keeps nulls out of the owned field set).
pub fn drop_null_fields(obj: &mut Value) {
    match obj {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_null_fields);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null_fields),
        _ => {}
    }
}

/// A Secret's `stringData` is write-only: the server folds it into `data`, but server-side apply
/// tracks ownership of `stringData` keys, so keys removed from `stringData` are never removed from
/// `data` and the dry-run never equals the live object. Sending `data` (base64) instead keeps
/// ownership where the values live.
/// Works around <https://github.com/kubernetes/kubernetes/issues/108008>.
pub fn secret_string_data_to_data(obj: &mut Value) {
    if obj.get("kind").and_then(Value::as_str) != Some("Secret")
        || obj.get("apiVersion").and_then(Value::as_str) != Some("v1")
    {
        return;
    }
    let Some(map) = obj.as_object_mut() else { return };
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return;
    };
    let data = map.entry("data").or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Some(data) = data.as_object_mut() {
        for (key, value) in string_data {
            let plain = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            // stringData wins over data for the same key, as the apiserver does.
            data.insert(
                key,
                Value::String(base64::engine::general_purpose::STANDARD.encode(plain)),
            );
        }
    }
}

/// `spec.clusterIP: ""` (and `clusterIPs: []`) mean "allocate one", which the server does anyway on
/// create; on update the empty value is an attempt to change an immutable field.
/// Works around <https://github.com/kubernetes/kubernetes/issues/68369> and
/// <https://github.com/kubernetes/kubernetes/issues/120937> (servers before 1.20 refuse the update;
/// 1.36 accepts it, the quirk stays for older clusters).
pub fn service_empty_cluster_ip(obj: &mut Value) {
    if obj.get("kind").and_then(Value::as_str) != Some("Service")
        || obj.get("apiVersion").and_then(Value::as_str) != Some("v1")
    {
        return;
    }
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("clusterIP").and_then(Value::as_str) == Some("") {
        spec.remove("clusterIP");
    }
    if spec.get("clusterIPs").is_some_and(|v| {
        v.as_array()
            .is_some_and(|ips| ips.is_empty() || ips.iter().all(|ip| ip.as_str() == Some("")))
    }) {
        spec.remove("clusterIPs");
    }
}

/// Dry-run of a HorizontalPodAutoscaler duplicates the first metric and appends an empty one on
/// servers before 1.27; such a dry-run result never equals the live object (kept for older clusters).
/// Works around <https://github.com/kubernetes/kubernetes/issues/118293>.
pub fn hpa_dry_run_duplicated_metrics(obj: &mut Value) {
    if obj.get("kind").and_then(Value::as_str) != Some("HorizontalPodAutoscaler") {
        return;
    }
    let Some(metrics) = obj.pointer_mut("/spec/metrics").and_then(Value::as_array_mut) else {
        return;
    };
    let mut unique: Vec<Value> = Vec::with_capacity(metrics.len());
    for metric in metrics.drain(..) {
        let empty_type = metric
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if !empty_type && !unique.contains(&metric) {
            unique.push(metric);
        }
    }
    *metrics = unique;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bookkeeping_status_and_last_applied_are_not_compared() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "uid": "u", "resourceVersion": "5", "generation": 2,
                "creationTimestamp": "2024-01-01T00:00:00Z", "managedFields": [],
                "annotations": {LAST_APPLIED_ANNOTATION: "{}"}},
            "data": {"k": "v"}, "status": {"x": 1}});
        assert_eq!(
            for_compare(&live),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn string_data_becomes_base64_data() {
        let mut secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": "eA==", "b": "eQ=="}, "stringData": {"b": "new", "c": "z"}});
        secret_string_data_to_data(&mut secret);
        assert_eq!(secret["data"], json!({"a": "eA==", "b": "bmV3", "c": "eg=="}));
        assert!(secret.get("stringData").is_none());
    }

    #[test]
    fn empty_cluster_ip_is_dropped_but_headless_kept() {
        let mut svc =
            json!({"apiVersion": "v1", "kind": "Service", "spec": {"clusterIP": "", "clusterIPs": []}});
        service_empty_cluster_ip(&mut svc);
        assert_eq!(svc["spec"], json!({}));
        let mut headless = json!({"apiVersion": "v1", "kind": "Service", "spec": {"clusterIP": "None"}});
        service_empty_cluster_ip(&mut headless);
        assert_eq!(headless["spec"]["clusterIP"], "None");
    }

    #[test]
    fn empty_metadata_maps_and_nulls_are_absent() {
        let mut obj = json!({"metadata": {"name": "x", "labels": {}, "annotations": null},
            "spec": {"selector": null, "template": {"metadata": {"annotations": {}}}}});
        drop_null_fields(&mut obj);
        empty_metadata_maps(&mut obj);
        assert_eq!(
            obj,
            json!({"metadata": {"name": "x"}, "spec": {"template": {"metadata": {}}}})
        );
    }

    #[test]
    fn empty_maps_in_custom_resources_are_kept() {
        // `topicOperator: {}` enables the topic operator: an empty map is meaningful outside metadata.
        let mut kafka = json!({"metadata": {"name": "k"}, "spec": {"entityOperator": {"topicOperator": {}}}});
        prepare(&mut kafka);
        assert_eq!(kafka["spec"]["entityOperator"]["topicOperator"], json!({}));
    }

    #[test]
    fn hpa_duplicated_metrics_are_collapsed() {
        let m = json!({"type": "Resource", "resource": {"name": "cpu"}});
        let mut hpa = json!({"kind": "HorizontalPodAutoscaler", "spec": {"metrics": [m, m, {"type": ""}]}});
        hpa_dry_run_duplicated_metrics(&mut hpa);
        assert_eq!(hpa["spec"]["metrics"], json!([m]));
    }
}
