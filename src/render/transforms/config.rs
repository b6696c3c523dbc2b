//! kustomize's builtin transformer configuration: which fields of which kinds each builtin
//! transformer touches (`api/internal/konfig/builtinpluginconsts` in kustomize). The data is
//! kustomize's; it is written here in a compact form (pod-spec locations are expanded per
//! workload kind) rather than as YAML.

use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use super::fieldspec::FieldSpec;
use crate::render::kustomization::FieldSpecArgs;
use crate::render::resource::GvkSel;

/// Field specs per transformer, and the name back-references.
#[derive(Clone, Debug, Default)]
pub struct TransformerConfig {
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub namespace: Vec<FieldSpec>,
    /// `commonLabels` and `labels` with `includeSelectors`: metadata, selectors and templates.
    pub common_labels: Vec<FieldSpec>,
    /// `labels` with `includeTemplates`: metadata labels of objects and their templates.
    pub template_labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    /// Extra fields every `labels` entry sets (empty unless a `configurations` file adds some).
    pub labels: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
    /// Where `vars` are substituted (`$(NAME)`).
    pub var_reference: Vec<FieldSpec>,
    pub name_reference: Vec<NameBackReference>,
}

/// Objects of kind `target` may be named by the `referrers` fields of other objects.
#[derive(Clone, Debug)]
pub struct NameBackReference {
    pub target: GvkSel,
    pub referrers: Vec<FieldSpec>,
}

fn gvk(group: &str, version: &str, kind: &str) -> GvkSel {
    GvkSel {
        group: group.to_string(),
        version: version.to_string(),
        kind: kind.to_string(),
    }
}

fn spec(group: &str, version: &str, kind: &str, path: &str, create: bool) -> FieldSpec {
    FieldSpec::new(gvk(group, version, kind), path, create)
}

/// Where a pod spec sits in each workload kind, with the GVK kustomize's name references use.
const POD_SPECS: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "Pod", "spec"),
    ("", "", "PodTemplate", "template/spec"),
    ("", "", "Deployment", "spec/template/spec"),
    ("", "", "ReplicaSet", "spec/template/spec"),
    ("", "", "DaemonSet", "spec/template/spec"),
    ("", "", "StatefulSet", "spec/template/spec"),
    ("", "", "Job", "spec/template/spec"),
    ("", "", "CronJob", "spec/jobTemplate/spec/template/spec"),
];

/// Pod-spec fields that name a ConfigMap.
const CONFIGMAP_IN_POD: &[&str] = &[
    "volumes/configMap/name",
    "containers/env/valueFrom/configMapKeyRef/name",
    "initContainers/env/valueFrom/configMapKeyRef/name",
    "containers/envFrom/configMapRef/name",
    "initContainers/envFrom/configMapRef/name",
    "volumes/projected/sources/configMap/name",
];

/// Pod-spec fields that name a Secret.
const SECRET_IN_POD: &[&str] = &[
    "volumes/secret/secretName",
    "containers/env/valueFrom/secretKeyRef/name",
    "initContainers/env/valueFrom/secretKeyRef/name",
    "containers/envFrom/secretRef/name",
    "initContainers/envFrom/secretRef/name",
    "imagePullSecrets/name",
    "volumes/projected/sources/secret/name",
];

fn in_pod_specs(fields: &[&str], kinds: &[&str]) -> Vec<FieldSpec> {
    POD_SPECS
        .iter()
        .filter(|(_, _, kind, _)| kinds.is_empty() || kinds.contains(kind))
        .flat_map(|(g, v, kind, prefix)| {
            fields
                .iter()
                .map(move |f| spec(g, v, kind, &format!("{prefix}/{f}"), false))
        })
        .collect()
}

fn specs(rows: &[(&str, &str, &str, &str)], create: bool) -> Vec<FieldSpec> {
    rows.iter().map(|(g, v, k, p)| spec(g, v, k, p, create)).collect()
}

fn name_references() -> Vec<NameBackReference> {
    let mut out = Vec::new();
    for kind in ["Deployment", "ReplicationController", "ReplicaSet", "StatefulSet"] {
        out.push(NameBackReference {
            target: gvk("", "", kind),
            referrers: specs(
                &[("", "", "HorizontalPodAutoscaler", "spec/scaleTargetRef/name")],
                false,
            ),
        });
    }
    let mut configmap = in_pod_specs(CONFIGMAP_IN_POD, &[]);
    configmap.extend(specs(
        &[
            ("", "", "Node", "spec/configSource/configMap"),
            ("", "", "Role", "rules/resourceNames"),
            ("", "", "ClusterRole", "rules/resourceNames"),
            (
                "",
                "",
                "Ingress",
                "metadata/annotations/nginx.ingress.kubernetes.io\\/fastcgi-params-configmap",
            ),
        ],
        false,
    ));
    out.push(NameBackReference {
        target: gvk("", "v1", "ConfigMap"),
        referrers: configmap,
    });
    let mut secret = in_pod_specs(SECRET_IN_POD, &[]);
    secret.extend(specs(
        &[
            ("", "", "Ingress", "spec/tls/secretName"),
            (
                "",
                "",
                "Ingress",
                "metadata/annotations/ingress.kubernetes.io\\/auth-secret",
            ),
            (
                "",
                "",
                "Ingress",
                "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-secret",
            ),
            (
                "",
                "",
                "Ingress",
                "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-tls-secret",
            ),
            ("", "", "ServiceAccount", "imagePullSecrets/name"),
            ("", "", "StorageClass", "parameters/secretName"),
            ("", "", "StorageClass", "parameters/adminSecretName"),
            ("", "", "StorageClass", "parameters/userSecretName"),
            ("", "", "StorageClass", "parameters/secretRef"),
            ("", "", "Role", "rules/resourceNames"),
            ("", "", "ClusterRole", "rules/resourceNames"),
            (
                "serving.knative.dev",
                "v1",
                "Service",
                "spec/template/spec/containers/env/valueFrom/secretKeyRef/name",
            ),
            ("", "", "PersistentVolume", "spec/azureFile/secretName"),
        ],
        false,
    ));
    out.push(NameBackReference {
        target: gvk("", "v1", "Secret"),
        referrers: secret,
    });
    out.push(NameBackReference {
        target: gvk("", "v1", "Service"),
        referrers: specs(
            &[
                ("apps", "", "StatefulSet", "spec/serviceName"),
                ("", "", "Ingress", "spec/rules/http/paths/backend/serviceName"),
                ("", "", "Ingress", "spec/backend/serviceName"),
                ("", "", "Ingress", "spec/rules/http/paths/backend/service/name"),
                ("", "", "Ingress", "spec/defaultBackend/service/name"),
                ("apiregistration.k8s.io", "", "APIService", "spec/service/name"),
                (
                    "admissionregistration.k8s.io",
                    "",
                    "ValidatingWebhookConfiguration",
                    "webhooks/clientConfig/service",
                ),
                (
                    "admissionregistration.k8s.io",
                    "",
                    "MutatingWebhookConfiguration",
                    "webhooks/clientConfig/service",
                ),
            ],
            false,
        ),
    });
    const RBAC: &str = "rbac.authorization.k8s.io";
    out.push(NameBackReference {
        target: gvk(RBAC, "", "Role"),
        referrers: specs(&[(RBAC, "", "RoleBinding", "roleRef/name")], false),
    });
    out.push(NameBackReference {
        target: gvk(RBAC, "", "ClusterRole"),
        referrers: specs(
            &[
                (RBAC, "", "RoleBinding", "roleRef/name"),
                (RBAC, "", "ClusterRoleBinding", "roleRef/name"),
            ],
            false,
        ),
    });
    let workloads_with = |field: &str| -> Vec<FieldSpec> {
        [
            ("Pod", "spec"),
            ("StatefulSet", "spec/template/spec"),
            ("Deployment", "spec/template/spec"),
            ("ReplicationController", "spec/template/spec"),
            ("CronJob", "spec/jobTemplate/spec/template/spec"),
            ("Job", "spec/template/spec"),
            ("DaemonSet", "spec/template/spec"),
        ]
        .iter()
        .map(|(kind, prefix)| spec("", "", kind, &format!("{prefix}/{field}"), false))
        .collect()
    };
    let mut service_account = specs(
        &[
            (RBAC, "", "RoleBinding", "subjects"),
            (RBAC, "", "ClusterRoleBinding", "subjects"),
        ],
        false,
    );
    service_account.extend(workloads_with("serviceAccountName"));
    out.push(NameBackReference {
        target: gvk("", "v1", "ServiceAccount"),
        referrers: service_account,
    });
    out.push(NameBackReference {
        target: gvk("", "v1", "PersistentVolumeClaim"),
        referrers: workloads_with("volumes/persistentVolumeClaim/claimName"),
    });
    out.push(NameBackReference {
        target: gvk("", "v1", "PersistentVolume"),
        referrers: specs(
            &[
                ("", "", "PersistentVolumeClaim", "spec/volumeName"),
                ("", "", "ClusterRole", "rules/resourceNames"),
            ],
            false,
        ),
    });
    out.push(NameBackReference {
        target: gvk("storage.k8s.io", "v1", "StorageClass"),
        referrers: specs(
            &[
                ("", "", "PersistentVolume", "spec/storageClassName"),
                ("", "", "PersistentVolumeClaim", "spec/storageClassName"),
                (
                    "",
                    "",
                    "StatefulSet",
                    "spec/volumeClaimTemplates/spec/storageClassName",
                ),
            ],
            false,
        ),
    });
    out.push(NameBackReference {
        target: gvk("scheduling.k8s.io", "v1", "PriorityClass"),
        referrers: workloads_with("priorityClassName"),
    });
    out.push(NameBackReference {
        // kustomize's config says `group: networking.k8s.io/v1`, which no object's group equals,
        // so IngressClass references are never updated; kept as is to render identically.
        target: gvk("networking.k8s.io/v1", "v1", "IngressClass"),
        referrers: specs(&[("", "", "Ingress", "spec/ingressClassName")], false),
    });
    out.push(NameBackReference {
        target: gvk("admissionregistration.k8s.io", "", "ValidatingAdmissionPolicy"),
        referrers: specs(
            &[(
                "admissionregistration.k8s.io",
                "",
                "ValidatingAdmissionPolicyBinding",
                "spec/policyName",
            )],
            false,
        ),
    });
    out
}

/// Metadata labels of objects and of the templates inside them.
const TEMPLATE_LABELS: &[(&str, &str, &str, &str)] = &[
    ("", "", "", "metadata/labels"),
    ("", "v1", "ReplicationController", "spec/template/metadata/labels"),
    ("", "", "Deployment", "spec/template/metadata/labels"),
    ("", "", "ReplicaSet", "spec/template/metadata/labels"),
    ("", "", "DaemonSet", "spec/template/metadata/labels"),
    ("apps", "", "StatefulSet", "spec/template/metadata/labels"),
    (
        "apps",
        "",
        "StatefulSet",
        "spec/volumeClaimTemplates[]/metadata/labels",
    ),
    ("batch", "", "Job", "spec/template/metadata/labels"),
    ("batch", "", "CronJob", "spec/jobTemplate/metadata/labels"),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/spec/template/metadata/labels",
    ),
];

/// Label selectors that `commonLabels` extends (created when missing where kustomize does).
const SELECTORS_CREATED: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "Service", "spec/selector"),
    ("", "v1", "ReplicationController", "spec/selector"),
    ("", "", "Deployment", "spec/selector/matchLabels"),
    ("", "", "ReplicaSet", "spec/selector/matchLabels"),
    ("", "", "DaemonSet", "spec/selector/matchLabels"),
    ("apps", "", "StatefulSet", "spec/selector/matchLabels"),
];

/// Label selectors that `commonLabels` extends only when present.
const SELECTORS_EXISTING: &[(&str, &str, &str, &str)] = &[
    ("batch", "", "Job", "spec/selector/matchLabels"),
    (
        "batch",
        "",
        "CronJob",
        "spec/jobTemplate/spec/selector/matchLabels",
    ),
    ("policy", "", "PodDisruptionBudget", "spec/selector/matchLabels"),
    (
        "networking.k8s.io",
        "",
        "NetworkPolicy",
        "spec/podSelector/matchLabels",
    ),
    (
        "networking.k8s.io",
        "",
        "NetworkPolicy",
        "spec/ingress/from/podSelector/matchLabels",
    ),
    (
        "networking.k8s.io",
        "",
        "NetworkPolicy",
        "spec/egress/to/podSelector/matchLabels",
    ),
];

/// Pod affinity and topology selectors inside apps/v1 Deployment and StatefulSet templates.
const AFFINITY_SELECTORS: &[&str] = &[
    "spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution/labelSelector/matchLabels",
    "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels",
];

fn common_labels() -> Vec<FieldSpec> {
    let mut out = specs(SELECTORS_CREATED, true);
    for kind in ["Deployment", "StatefulSet"] {
        out.extend(
            AFFINITY_SELECTORS
                .iter()
                .map(|p| spec("apps", "", kind, p, false)),
        );
    }
    out.extend(specs(SELECTORS_EXISTING, false));
    out.extend(specs(TEMPLATE_LABELS, true));
    out
}

fn common_annotations() -> Vec<FieldSpec> {
    specs(
        &[
            ("", "", "", "metadata/annotations"),
            (
                "",
                "v1",
                "ReplicationController",
                "spec/template/metadata/annotations",
            ),
            ("", "", "Deployment", "spec/template/metadata/annotations"),
            ("", "", "ReplicaSet", "spec/template/metadata/annotations"),
            ("", "", "DaemonSet", "spec/template/metadata/annotations"),
            ("", "", "StatefulSet", "spec/template/metadata/annotations"),
            ("batch", "", "Job", "spec/template/metadata/annotations"),
            ("batch", "", "CronJob", "spec/jobTemplate/metadata/annotations"),
            (
                "batch",
                "",
                "CronJob",
                "spec/jobTemplate/spec/template/metadata/annotations",
            ),
        ],
        true,
    )
}

/// kustomize's `FsSlice.MergeOne`: a spec for a field already present is skipped; the same field
/// with a different `create` is a conflict.
pub fn merge_one(specs: &mut Vec<FieldSpec>, fs: FieldSpec) -> Result<(), String> {
    match specs.iter().find(|s| s.same_field(&fs)) {
        Some(existing) if existing.create != fs.create => Err(format!(
            "conflicting fieldspecs for '{}' (create: {} and {})",
            fs.path, existing.create, fs.create
        )),
        Some(_) => Ok(()),
        None => {
            specs.push(fs);
            Ok(())
        }
    }
}

/// [`merge_one`] for each of `more`.
pub fn merge_all(specs: &mut Vec<FieldSpec>, more: &[FieldSpec]) -> Result<(), String> {
    more.iter().try_for_each(|fs| merge_one(specs, fs.clone()))
}

/// A field spec as written in a kustomization or configuration file.
pub fn field_spec(args: &FieldSpecArgs) -> FieldSpec {
    FieldSpec::new(
        gvk(
            args.group.as_deref().unwrap_or(""),
            args.version.as_deref().unwrap_or(""),
            args.kind.as_deref().unwrap_or(""),
        ),
        args.path.as_deref().unwrap_or(""),
        args.create.unwrap_or(false),
    )
}

/// A `configurations` file (kustomize's `TransformerConfig` YAML, read strictly).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConfigFile {
    name_prefix: Option<Vec<FieldSpecArgs>>,
    name_suffix: Option<Vec<FieldSpecArgs>>,
    namespace: Option<Vec<FieldSpecArgs>>,
    common_labels: Option<Vec<FieldSpecArgs>>,
    labels: Option<Vec<FieldSpecArgs>>,
    template_labels: Option<Vec<FieldSpecArgs>>,
    common_annotations: Option<Vec<FieldSpecArgs>>,
    name_reference: Option<Vec<NameReferenceArgs>>,
    var_reference: Option<Vec<FieldSpecArgs>>,
    images: Option<Vec<FieldSpecArgs>>,
    replicas: Option<Vec<FieldSpecArgs>>,
}

/// A `nameReference` entry of a configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NameReferenceArgs {
    group: Option<String>,
    version: Option<String>,
    kind: Option<String>,
    field_specs: Option<Vec<FieldSpecArgs>>,
}

impl ConfigFile {
    /// The configuration the file describes.
    pub fn config(&self) -> Result<TransformerConfig, String> {
        let list = |v: &Option<Vec<FieldSpecArgs>>| -> Result<Vec<FieldSpec>, String> {
            let mut out = Vec::new();
            for args in v.iter().flatten() {
                merge_one(&mut out, field_spec(args))?;
            }
            Ok(out)
        };
        let mut name_reference: Vec<NameBackReference> = Vec::new();
        for nr in self.name_reference.iter().flatten() {
            let incoming = NameBackReference {
                target: gvk(
                    nr.group.as_deref().unwrap_or(""),
                    nr.version.as_deref().unwrap_or(""),
                    nr.kind.as_deref().unwrap_or(""),
                ),
                referrers: list(&nr.field_specs)?,
            };
            merge_back_reference(&mut name_reference, incoming)?;
        }
        Ok(TransformerConfig {
            name_prefix: list(&self.name_prefix)?,
            name_suffix: list(&self.name_suffix)?,
            namespace: list(&self.namespace)?,
            common_labels: list(&self.common_labels)?,
            template_labels: list(&self.template_labels)?,
            common_annotations: list(&self.common_annotations)?,
            labels: list(&self.labels)?,
            images: list(&self.images)?,
            replicas: list(&self.replicas)?,
            var_reference: list(&self.var_reference)?,
            name_reference,
        })
    }
}

/// kustomize's `nbrSlice.mergeOne`: referrers of the same target GVK are merged.
fn merge_back_reference(
    list: &mut Vec<NameBackReference>,
    incoming: NameBackReference,
) -> Result<(), String> {
    match list.iter_mut().find(|b| b.target == incoming.target) {
        Some(existing) => merge_all(&mut existing.referrers, &incoming.referrers),
        None => {
            list.push(incoming);
            Ok(())
        }
    }
}

impl TransformerConfig {
    /// This configuration with `other` merged in (kustomize's `TransformerConfig.Merge`).
    pub fn merge(&self, other: &TransformerConfig) -> Result<TransformerConfig, String> {
        let mut out = self.clone();
        for (mine, theirs) in [
            (&mut out.name_prefix, &other.name_prefix),
            (&mut out.name_suffix, &other.name_suffix),
            (&mut out.namespace, &other.namespace),
            (&mut out.common_labels, &other.common_labels),
            (&mut out.template_labels, &other.template_labels),
            (&mut out.common_annotations, &other.common_annotations),
            (&mut out.labels, &other.labels),
            (&mut out.images, &other.images),
            (&mut out.replicas, &other.replicas),
            (&mut out.var_reference, &other.var_reference),
        ] {
            merge_all(mine, theirs)?;
        }
        for b in &other.name_reference {
            merge_back_reference(&mut out.name_reference, b.clone())?;
        }
        Ok(out)
    }

    /// Two accumulated configurations merged. Every accumulated configuration contains the builtin
    /// one, so merging with the builtin one changes nothing and copies nothing.
    pub fn merged(
        a: &Arc<TransformerConfig>,
        b: &Arc<TransformerConfig>,
    ) -> Result<Arc<TransformerConfig>, String> {
        let builtin = TransformerConfig::builtin();
        if Arc::ptr_eq(a, b) || Arc::ptr_eq(b, &builtin) {
            return Ok(a.clone());
        }
        if Arc::ptr_eq(a, &builtin) {
            return Ok(b.clone());
        }
        Ok(Arc::new(a.merge(b)?))
    }

    /// kustomize's default configuration, built once.
    pub fn builtin() -> Arc<TransformerConfig> {
        static CONFIG: OnceLock<Arc<TransformerConfig>> = OnceLock::new();
        CONFIG
            .get_or_init(|| {
                Arc::new(TransformerConfig {
                    name_prefix: specs(&[("", "", "", "metadata/name")], false),
                    name_suffix: specs(&[("", "", "", "metadata/name")], false),
                    namespace: vec![
                        spec("", "", "Namespace", "metadata/name", true),
                        spec(
                            "apiregistration.k8s.io",
                            "",
                            "APIService",
                            "spec/service/namespace",
                            true,
                        ),
                        spec(
                            "apiextensions.k8s.io",
                            "",
                            "CustomResourceDefinition",
                            "spec/conversion/webhook/clientConfig/service/namespace",
                            false,
                        ),
                    ],
                    common_labels: common_labels(),
                    template_labels: specs(TEMPLATE_LABELS, true),
                    common_annotations: common_annotations(),
                    images: specs(
                        &[
                            ("", "", "", "spec/containers[]/image"),
                            ("", "", "", "spec/initContainers[]/image"),
                            ("", "", "", "spec/template/spec/containers[]/image"),
                            ("", "", "", "spec/template/spec/initContainers[]/image"),
                        ],
                        true,
                    ),
                    replicas: ["Deployment", "ReplicationController", "ReplicaSet", "StatefulSet"]
                        .iter()
                        .map(|k| spec("", "", k, "spec/replicas", true))
                        .collect(),
                    labels: Vec::new(),
                    var_reference: crate::render::vars::builtin_var_references(),
                    name_reference: name_references(),
                })
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_tables_have_kustomizes_sizes() {
        let c = TransformerConfig::builtin();
        // Counted from kustomize v5.5.0's builtinpluginconsts.
        assert_eq!(c.common_labels.len(), 32);
        assert_eq!(c.template_labels.len(), 10);
        assert_eq!(c.common_annotations.len(), 9);
        let refs: usize = c.name_reference.iter().map(|b| b.referrers.len()).sum();
        let secret = c
            .name_reference
            .iter()
            .find(|b| b.target.kind == "Secret")
            .map(|b| b.referrers.len());
        // kustomize lists Ingress spec/tls/secretName twice; once is enough.
        assert_eq!(secret, Some(56 + 13));
        assert_eq!(refs, 4 + 52 + 69 + 8 + 1 + 2 + 9 + 7 + 2 + 3 + 7 + 1 + 1);
    }
}
