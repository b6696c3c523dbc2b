//! A throttled identity on a test control plane, for the tests and the benchmark of issue 21: a
//! ServiceAccount bound to `cluster-admin` whose every request API Priority and Fairness puts into
//! a priority level of its own with about three seats and a short queue, so that a client sending
//! more than that at once gets real 429 answers (with `Retry-After`) from the real apiserver.
//!
//! Why a ServiceAccount: the admin certificate of the control plane is in `system:masters`, which
//! APF (and the max-in-flight filter) exempt from every limit. The objects are cluster-scoped and
//! named after the test's namespace, so tests sharing a control plane do not meet.
#![allow(dead_code)]

use std::path::Path;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

/// The ServiceAccount's name in the namespace.
pub const ACCOUNT: &str = "kgitops-throttled";

/// What [`throttled_identity`] made.
pub struct Throttled {
    /// A kubeconfig for the ServiceAccount (bearer token, the admin kubeconfig's server and CA).
    pub kubeconfig: String,
    /// The FlowSchema and PriorityLevelConfiguration's name.
    pub flow_schema: String,
}

/// Server-side applies `body` as the object `name` of `api`.
async fn apply(api: &Api<DynamicObject>, name: &str, body: serde_json::Value) {
    let ssa = PatchParams::apply("kgitops-tests").force();
    api.patch(name, &ssa, &Patch::Apply(body))
        .await
        .unwrap_or_else(|e| panic!("apply {name}: {e}"));
}

fn api(client: &kube::Client, group: &str, version: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Api::all_with(client.clone(), &ApiResource::from_gvk_with_plural(&gvk, plural))
}

/// Makes the throttled ServiceAccount in `namespace` (which must exist) with `admin`, and returns
/// its kubeconfig once APF classifies its requests into the new FlowSchema.
/// `admin_kubeconfig` is read for the server URL and CA.
pub async fn throttled_identity(admin: &kube::Client, admin_kubeconfig: &Path, namespace: &str) -> Throttled {
    let name = format!("throttled-{namespace}");
    let ssa = PatchParams::apply("kgitops-tests").force();
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    accounts
        .patch(
            ACCOUNT,
            &ssa,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": ACCOUNT, "namespace": namespace}})),
        )
        .await
        .expect("ServiceAccount");
    apply(
        &api(admin, "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings"),
        &name,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": namespace}]}),
    )
    .await;
    // About 3 of the server's 600 seats (1 share of ~246), one queue of 5: the 9th request in
    // flight is answered 429 at once.
    apply(
        &api(admin, "flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration", "prioritylevelconfigurations"),
        &name,
        json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
                "metadata": {"name": name},
                "spec": {"type": "Limited", "limited": {
                    "nominalConcurrencyShares": 1, "lendablePercent": 0, "borrowingLimitPercent": 0,
                    "limitResponse": {"type": "Queue", "queuing": {"queues": 1, "handSize": 1, "queueLengthLimit": 5}}}}}),
    )
    .await;
    let flow_schemas = api(
        admin,
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "FlowSchema",
        "flowschemas",
    );
    apply(
        &flow_schemas,
        &name,
        json!({"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
                "metadata": {"name": name},
                "spec": {"priorityLevelConfiguration": {"name": name}, "matchingPrecedence": 100,
                    "distinguisherMethod": {"type": "ByUser"},
                    "rules": [{
                        "subjects": [{"kind": "ServiceAccount", "serviceAccount": {"name": ACCOUNT, "namespace": namespace}}],
                        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                            "clusterScope": true, "namespaces": ["*"]}],
                        "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}}),
    )
    .await;

    let token = accounts
        .create_token_request(
            ACCOUNT,
            &PostParams::default(),
            &TokenRequest {
                metadata: Default::default(),
                spec: Some(TokenRequestSpec {
                    expiration_seconds: Some(3600),
                    ..TokenRequestSpec::default()
                }),
                status: None,
            },
        )
        .await
        .expect("TokenRequest")
        .status
        .and_then(|s| s.token)
        .expect("token");
    let admin_text = std::fs::read_to_string(admin_kubeconfig).expect("admin kubeconfig");
    let admin_config: serde_json::Value = serde_saphyr::from_str(&admin_text).expect("kubeconfig YAML");
    let cluster = &admin_config["clusters"][0]["cluster"];
    let server = cluster["server"].as_str().expect("server");
    let ca = match (
        cluster["certificate-authority-data"].as_str(),
        cluster["certificate-authority"].as_str(),
    ) {
        (Some(data), _) => format!("certificate-authority-data: {data}"),
        (None, Some(file)) => format!("certificate-authority: {file}"),
        _ => panic!("admin kubeconfig has no CA"),
    };
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: throttled\n  cluster:\n    server: {server}\n    {ca}\n\
         users:\n- name: {ACCOUNT}\n  user:\n    token: {token}\ncontexts:\n- name: throttled\n  context:\n    \
         cluster: throttled\n    user: {ACCOUNT}\ncurrent-context: throttled\n"
    );

    // APF picks new FlowSchemas up asynchronously: wait until a request of the account is
    // classified into ours (the apiserver names the schema's UID in every answer).
    let uid = api(
        admin,
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "FlowSchema",
        "flowschemas",
    )
    .get(&name)
    .await
    .expect("FlowSchema")
    .metadata
    .uid
    .expect("uid");
    let config = kube::Config::from_custom_kubeconfig(
        serde_saphyr::from_str(&kubeconfig).expect("kubeconfig"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("throttled kubeconfig");
    let client = kube::Client::try_from(config).expect("client");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let request = http::Request::get("/version").body(Vec::new()).expect("request");
        let response = client
            .send(request.map(kube::client::Body::from))
            .await
            .expect("GET /version");
        let classified = response
            .headers()
            .get("X-Kubernetes-PF-FlowSchema-UID")
            .and_then(|v| v.to_str().ok())
            == Some(uid.as_str());
        if classified {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "FlowSchema {name} not in effect after 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Throttled {
        kubeconfig,
        flow_schema: name,
    }
}

/// Requests of `flow_schema` that APF rejected with 429 so far, from the apiserver's own metrics.
pub async fn rejected(admin: &kube::Client, flow_schema: &str) -> u64 {
    let text = admin
        .request_text(http::Request::get("/metrics").body(Vec::new()).expect("request"))
        .await
        .expect("GET /metrics");
    let needle = format!("flow_schema=\"{flow_schema}\"");
    text.lines()
        .filter(|l| l.starts_with("apiserver_flowcontrol_rejected_requests_total{") && l.contains(&needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}
