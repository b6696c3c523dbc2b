//! Apply order: Namespaces and CRDs first (stage 1, then wait for CRDs to be Established), then the
//! rest by kind so that what others refer to exists first (ServiceAccounts, Secrets, ConfigMaps and
//! RBAC before workloads, custom resources last). Prune deletes in the reverse order.

use crate::manifest::Gvk;

/// Kinds in the order they are applied (the order Helm and Flux use). Kinds not listed (custom
/// resources) come after all of them.
const KIND_ORDER: &[&str] = &[
    "Namespace",
    "CustomResourceDefinition",
    "ResourceQuota",
    "LimitRange",
    "PriorityClass",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Whether a kind belongs to stage 1 (applied, and CRDs established, before anything else).
pub fn is_stage_one(gvk: &Gvk) -> bool {
    (gvk.group.is_empty() && gvk.kind == "Namespace")
        || (gvk.group == "apiextensions.k8s.io" && gvk.kind == "CustomResourceDefinition")
}

/// The apply rank of a kind: lower first. Objects of equal rank are applied concurrently.
pub fn rank(gvk: &Gvk) -> usize {
    let builtin = gvk.group.is_empty() || gvk.group.ends_with(".k8s.io") || !gvk.group.contains('.');
    match KIND_ORDER.iter().position(|k| *k == gvk.kind) {
        Some(i) if builtin => i,
        _ => KIND_ORDER.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_and_crds_first_custom_resources_last() {
        let ns = Gvk::from_api_version("v1", "Namespace");
        let crd = Gvk::from_api_version("apiextensions.k8s.io/v1", "CustomResourceDefinition");
        let cm = Gvk::from_api_version("v1", "ConfigMap");
        let deploy = Gvk::from_api_version("apps/v1", "Deployment");
        let kafka = Gvk::from_api_version("kafka.strimzi.io/v1beta2", "Kafka");
        // A custom kind that happens to be called Service is still a custom resource.
        let custom_service = Gvk::from_api_version("example.com/v1", "Service");
        assert!(is_stage_one(&ns) && is_stage_one(&crd) && !is_stage_one(&cm));
        assert!(rank(&ns) < rank(&crd) && rank(&crd) < rank(&cm) && rank(&cm) < rank(&deploy));
        assert!(rank(&deploy) < rank(&kafka));
        assert_eq!(rank(&custom_service), rank(&kafka));
    }
}
