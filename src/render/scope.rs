//! Which kinds kustomize treats as cluster-scoped.
//!
//! kustomize decides this from its built-in OpenAPI data (Kubernetes 1.21, `kyaml/openapi`), keyed by
//! the exact `apiVersion` and `kind`; anything it does not know, custom resources included, counts
//! as namespaced. The namespace transformer, resource identity (`default` vs. no namespace) and the
//! name-reference rules all depend on this, so the table is kustomize's, not today's API.

/// `(kind, apiVersion)` pairs kustomize knows to be cluster-scoped, sorted (binary search: this is
/// asked several times per object of a build).
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("APIService", "apiregistration.k8s.io/v1"),
    ("APIService", "apiregistration.k8s.io/v1beta1"),
    ("CSIDriver", "storage.k8s.io/v1"),
    ("CSIDriver", "storage.k8s.io/v1beta1"),
    ("CSINode", "storage.k8s.io/v1"),
    ("CSINode", "storage.k8s.io/v1beta1"),
    ("CertificateSigningRequest", "certificates.k8s.io/v1"),
    ("CertificateSigningRequest", "certificates.k8s.io/v1beta1"),
    ("ClusterRole", "rbac.authorization.k8s.io/v1"),
    ("ClusterRole", "rbac.authorization.k8s.io/v1beta1"),
    ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1"),
    ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1beta1"),
    ("ComponentStatus", "v1"),
    ("CustomResourceDefinition", "apiextensions.k8s.io/v1"),
    ("CustomResourceDefinition", "apiextensions.k8s.io/v1beta1"),
    ("FlowSchema", "flowcontrol.apiserver.k8s.io/v1beta1"),
    ("IngressClass", "networking.k8s.io/v1"),
    ("IngressClass", "networking.k8s.io/v1beta1"),
    ("MutatingWebhookConfiguration", "admissionregistration.k8s.io/v1"),
    (
        "MutatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1beta1",
    ),
    ("Namespace", "v1"),
    ("Node", "v1"),
    ("NodeProxyOptions", "v1"),
    ("PersistentVolume", "v1"),
    ("PodSecurityPolicy", "policy/v1beta1"),
    ("PriorityClass", "scheduling.k8s.io/v1"),
    ("PriorityClass", "scheduling.k8s.io/v1beta1"),
    (
        "PriorityLevelConfiguration",
        "flowcontrol.apiserver.k8s.io/v1beta1",
    ),
    ("RuntimeClass", "node.k8s.io/v1"),
    ("RuntimeClass", "node.k8s.io/v1beta1"),
    ("StorageClass", "storage.k8s.io/v1"),
    ("StorageClass", "storage.k8s.io/v1beta1"),
    (
        "ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1",
    ),
    (
        "ValidatingWebhookConfiguration",
        "admissionregistration.k8s.io/v1beta1",
    ),
    ("VolumeAttachment", "storage.k8s.io/v1"),
    ("VolumeAttachment", "storage.k8s.io/v1beta1"),
];

/// True when kustomize knows `apiVersion`/`kind` to be cluster-scoped.
pub fn is_cluster_scoped(api_version: &str, kind: &str) -> bool {
    CLUSTER_SCOPED
        .binary_search_by(|&(k, v)| (k, v).cmp(&(kind, api_version)))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(CLUSTER_SCOPED.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(CLUSTER_SCOPED.len(), 36);
    }

    #[test]
    fn exact_api_version_and_kind() {
        assert!(is_cluster_scoped("v1", "Namespace"));
        assert!(is_cluster_scoped("rbac.authorization.k8s.io/v1", "ClusterRole"));
        assert!(!is_cluster_scoped("v1", "ConfigMap"));
        // Unknown to kustomize's schema, so namespaced as far as kustomize is concerned.
        assert!(!is_cluster_scoped(
            "flowcontrol.apiserver.k8s.io/v1",
            "FlowSchema"
        ));
        assert!(!is_cluster_scoped("kafka.strimzi.io/v1beta2", "Kafka"));
    }
}
