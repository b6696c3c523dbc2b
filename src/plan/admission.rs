//! Mutating admission webhooks: which objects of a plan the cluster's MutatingWebhookConfigurations
//! may change when they are applied.
//!
//! Plan skips the server dry-run of an object when its live state proves the apply a no-op
//! ([`super::fields::apply_is_noop`]). That proof only covers what the apply itself writes: a
//! mutating webhook called on the apply (installed after the object was last applied, or
//! reconfigured since) can make the server store something else, so the skipped dry-run would have
//! shown a change. [`MutatingWebhooks::read`] reads the webhook configurations and
//! [`MutatingWebhooks::may_mutate`] tells which objects a webhook may be called for; plan dry-runs
//! those whatever the proof says. A one-shot plan (the CLI) lists the configurations (one LIST); a
//! long-running process (the daemon, which plans on every drift event) keeps them in memory with a
//! [`WebhookWatch`] and lists only while that watch is not in sync.
//!
//! The matching over-approximates the apiserver's (a dry-run too many costs a request; one too few
//! is a false "unchanged"): rules match CREATE and UPDATE (a server-side apply is either), any API
//! version and group of a resource under `matchPolicy: Equivalent` (the default), `resource/*` and
//! `*/*` like the resource itself, selectors on the live and the desired labels alike, and
//! `matchConditions` (CEL) are taken to be true. When the configurations cannot be read (no RBAC
//! `list` on `mutatingwebhookconfigurations`, or the server failed), every object may be mutated.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use serde_json::{Map, Value};

use super::cluster::{Cluster, RequestError, Resolved};
use crate::manifest::Gvk;

/// The label sets of namespaces, by name, as `namespaceSelector`s see them during an apply: the
/// live labels, and for a Namespace of the revision also those it gets ([`label_sets`]).
pub type NamespaceLabels = BTreeMap<String, Vec<Map<String, Value>>>;

/// One object a plan would skip the dry-run of, as the webhook rules see it.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    pub resolved: &'a Resolved,
    pub namespace: Option<&'a str>,
    pub desired: &'a Value,
    pub live: &'a Value,
}

/// The cluster's mutating webhooks, as far as plan needs them.
#[derive(Clone, Debug)]
pub enum MutatingWebhooks {
    /// Read from the cluster (empty: there are none).
    Known(Vec<Webhook>),
    /// Could not be read: any object may be mutated.
    Unreadable(RequestError),
}

/// One webhook of a MutatingWebhookConfiguration.
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    /// `<configuration>/<webhook>`.
    pub name: String,
    rules: Vec<Rule>,
    /// `matchPolicy: Exact` (versions and groups must match as written).
    exact: bool,
    namespace_selector: Selector,
    object_selector: Selector,
}

#[derive(Clone, Debug, PartialEq)]
struct Rule {
    operations: Vec<String>,
    api_groups: Vec<String>,
    api_versions: Vec<String>,
    resources: Vec<String>,
    /// `*`, `Cluster` or `Namespaced`.
    scope: String,
}

/// A label selector (`matchLabels`, `matchExpressions`); absent and `{}` match everything.
#[derive(Clone, Debug, Default, PartialEq)]
struct Selector(Value);

/// The cluster's MutatingWebhookConfigurations kept in memory by a watch (a kube-runtime
/// reflector), so that a process planning again and again does not list them for every plan.
/// Cloning shares the watch; it stops when the last clone is dropped.
#[derive(Clone)]
pub struct WebhookWatch {
    store: Store<MutatingWebhookConfiguration>,
    /// The watch has listed and has not failed since: the store is the cluster's state (as of the
    /// watch's latency). Cleared on every watch error (e.g. no RBAC `watch`), until the next event.
    synced: Arc<AtomicBool>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for WebhookWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookWatch")
            .field("synced", &self.synced.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl WebhookWatch {
    /// Starts watching the configurations with `client` (needs a tokio runtime).
    pub fn start(client: kube::Client) -> WebhookWatch {
        let (store, writer) = reflector::store();
        let synced = Arc::new(AtomicBool::new(false));
        let flag = synced.clone();
        let api: Api<MutatingWebhookConfiguration> = Api::all(client);
        let task = tokio::spawn(async move {
            let mut events = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .reflect(writer)
                .boxed();
            while let Some(event) = events.next().await {
                match event {
                    // A (re)list in progress: the store still holds the previous state until
                    // `InitDone` swaps it in, but whether it is current is not known.
                    Ok(watcher::Event::Init) => flag.store(false, Ordering::Relaxed),
                    Ok(watcher::Event::InitApply(_)) => {}
                    Ok(_) => flag.store(true, Ordering::Relaxed),
                    Err(e) => {
                        if flag.swap(false, Ordering::Relaxed) {
                            tracing::debug!(
                                "mutatingwebhookconfigurations watch failed ({e}); listing per plan"
                            );
                        }
                    }
                }
            }
        });
        WebhookWatch {
            store,
            synced,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    /// The webhooks, when the watch is in sync.
    fn current(&self) -> Option<MutatingWebhooks> {
        if !self.synced.load(Ordering::Relaxed) {
            return None;
        }
        let mut hooks = Vec::new();
        for config in self.store.state() {
            match serde_json::to_value(config.as_ref()) {
                Ok(v) => hooks.extend(parse_configuration(&v)),
                Err(_) => return None,
            }
        }
        Some(MutatingWebhooks::Known(hooks))
    }
}

impl MutatingWebhooks {
    /// The MutatingWebhookConfigurations: from the cluster's [`WebhookWatch`] when it has one in
    /// sync, else listed (one request; none when the server does not serve the kind). Never fails:
    /// an error makes the answer [`MutatingWebhooks::Unreadable`].
    pub async fn read(cluster: &Cluster) -> MutatingWebhooks {
        if let Some(known) = cluster.webhook_watch().and_then(WebhookWatch::current) {
            return known;
        }
        let gvk = Gvk::from_api_version("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration");
        let resolved = match cluster.resolve(&gvk).await {
            Ok(Some(r)) => r,
            Ok(None) => return MutatingWebhooks::Known(Vec::new()),
            Err(e) => return MutatingWebhooks::Unreadable(e),
        };
        match cluster.list(&resolved, None, None).await {
            Ok(configs) => MutatingWebhooks::Known(configs.iter().flat_map(parse_configuration).collect()),
            Err(e) => MutatingWebhooks::Unreadable(e),
        }
    }

    /// Whether there is a webhook at all (or the configurations could not be read).
    pub fn any(&self) -> bool {
        match self {
            MutatingWebhooks::Known(hooks) => !hooks.is_empty(),
            MutatingWebhooks::Unreadable(_) => true,
        }
    }

    /// For each candidate, whether a webhook may be called when it is applied. `namespaces` holds
    /// the labels of the candidates' namespaces (plan has read them already); a namespace missing
    /// there matches every namespace selector.
    pub fn may_mutate(&self, candidates: &[Candidate<'_>], namespaces: &NamespaceLabels) -> Vec<bool> {
        match self {
            MutatingWebhooks::Unreadable(_) => vec![true; candidates.len()],
            MutatingWebhooks::Known(hooks) => candidates
                .iter()
                .map(|c| {
                    hooks.iter().any(|h| {
                        h.matches_kind(c.resolved)
                            && h.matches_namespace(c, namespaces)
                            && h.matches_object(c)
                    })
                })
                .collect(),
        }
    }
}

impl Webhook {
    fn matches_kind(&self, r: &Resolved) -> bool {
        self.rules.iter().any(|rule| rule.matches(r, self.exact))
    }

    /// `namespaceSelector`: namespaced objects by their namespace's labels, Namespaces by their own,
    /// other cluster-scoped objects always.
    fn matches_namespace(&self, c: &Candidate<'_>, namespaces: &NamespaceLabels) -> bool {
        if self.namespace_selector.is_everything() {
            return true;
        }
        if c.resolved.namespaced {
            match c.namespace.and_then(|ns| namespaces.get(ns)) {
                Some(sets) => sets.iter().any(|labels| self.namespace_selector.matches(labels)),
                None => true,
            }
        } else if c.resolved.resource.group.is_empty() && c.resolved.resource.kind == "Namespace" {
            self.namespace_selector.matches_any(c)
        } else {
            true
        }
    }

    /// `objectSelector`: the apiserver calls the webhook if the old or the new object matches.
    fn matches_object(&self, c: &Candidate<'_>) -> bool {
        self.object_selector.is_everything() || self.object_selector.matches_any(c)
    }
}

impl Rule {
    fn matches(&self, r: &Resolved, exact: bool) -> bool {
        let any = |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
        let operation = self
            .operations
            .iter()
            .any(|op| matches!(op.as_str(), "*" | "CREATE" | "UPDATE"));
        // Equivalent: the apiserver converts the request to the version (and group, for kinds
        // served by several) the webhook asked for, so only the resource name is compared.
        let group_version = !exact
            || (any(&self.api_groups, &r.resource.group) && any(&self.api_versions, &r.resource.version));
        let resource = self.resources.iter().any(|pattern| {
            let (name, sub) = match pattern.split_once('/') {
                Some((name, sub)) => (name, Some(sub)),
                None => (pattern.as_str(), None),
            };
            (name == "*" || name == r.resource.plural) && matches!(sub, None | Some("*"))
        });
        let scope = match self.scope.as_str() {
            "Cluster" => !r.namespaced,
            "Namespaced" => r.namespaced,
            _ => true,
        };
        operation && group_version && resource && scope
    }
}

impl Selector {
    fn is_everything(&self) -> bool {
        self.0.as_object().is_none_or(|m| {
            m.get("matchLabels")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
                && m.get("matchExpressions")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
        })
    }

    /// Whether the selector matches any of the candidate's [`label_sets`].
    fn matches_any(&self, c: &Candidate<'_>) -> bool {
        label_sets(c.live, c.desired)
            .iter()
            .any(|labels| self.matches(labels))
    }

    fn matches(&self, labels: &Map<String, Value>) -> bool {
        let Some(sel) = self.0.as_object() else {
            return true;
        };
        let label = |key: &str| labels.get(key).and_then(Value::as_str);
        let match_labels = sel
            .get("matchLabels")
            .and_then(Value::as_object)
            .is_none_or(|m| m.iter().all(|(k, v)| label(k) == v.as_str()));
        let expressions = sel
            .get("matchExpressions")
            .and_then(Value::as_array)
            .is_none_or(|exprs| {
                exprs.iter().all(|e| {
                    let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
                    let values: Vec<&str> = e
                        .get("values")
                        .and_then(Value::as_array)
                        .map(|v| v.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
                        "In" => label(key).is_some_and(|v| values.contains(&v)),
                        "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
                        "Exists" => label(key).is_some(),
                        "DoesNotExist" => label(key).is_none(),
                        // An operator this code does not know: assume a match (dry-run, not skip).
                        _ => true,
                    }
                })
            });
        match_labels && expressions
    }
}

/// The labels an object may have while the webhooks of its apply are called: the live ones (the old
/// object), git's, and git's on top of the live ones (the new object keeps labels others own).
pub fn label_sets(live: &Value, desired: &Value) -> Vec<Map<String, Value>> {
    let live = labels(live);
    let desired = labels(desired);
    let mut merged = live.clone();
    merged.extend(desired.clone());
    vec![live, desired, merged]
}

/// `metadata.labels` of an object (empty when it has none).
pub fn labels(obj: &Value) -> Map<String, Value> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// The webhooks of one MutatingWebhookConfiguration.
fn parse_configuration(config: &Value) -> Vec<Webhook> {
    let name = config
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(hooks) = config.get("webhooks").and_then(Value::as_array) else {
        return Vec::new();
    };
    hooks
        .iter()
        .map(|h| Webhook {
            name: format!(
                "{name}/{}",
                h.get("name").and_then(Value::as_str).unwrap_or_default()
            ),
            rules: h
                .get("rules")
                .and_then(Value::as_array)
                .map(|rules| {
                    rules
                        .iter()
                        .map(|r| Rule {
                            operations: strings(r.get("operations")),
                            api_groups: strings(r.get("apiGroups")),
                            api_versions: strings(r.get("apiVersions")),
                            resources: strings(r.get("resources")),
                            scope: r.get("scope").and_then(Value::as_str).unwrap_or("*").to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            exact: h.get("matchPolicy").and_then(Value::as_str) == Some("Exact"),
            namespace_selector: Selector(h.get("namespaceSelector").cloned().unwrap_or(Value::Null)),
            object_selector: Selector(h.get("objectSelector").cloned().unwrap_or(Value::Null)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::ApiResource;
    use serde_json::json;

    fn resolved(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Resolved {
        Resolved {
            resource: ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: if group.is_empty() {
                    version.into()
                } else {
                    format!("{group}/{version}")
                },
                kind: kind.into(),
                plural: plural.into(),
            },
            namespaced,
        }
    }

    fn hooks(webhooks: Value) -> MutatingWebhooks {
        MutatingWebhooks::Known(parse_configuration(
            &json!({"metadata": {"name": "cfg"}, "webhooks": webhooks}),
        ))
    }

    fn deployment() -> Resolved {
        resolved("apps", "v1", "Deployment", "deployments", true)
    }

    fn check(webhooks: &MutatingWebhooks, r: &Resolved, ns_labels: Value, obj_labels: Value) -> bool {
        let namespaces: NamespaceLabels = match ns_labels {
            Value::Object(m) => [("team".to_string(), vec![m])].into(),
            _ => BTreeMap::new(),
        };
        check_in(webhooks, r, &namespaces, obj_labels)
    }

    /// Whether `webhooks` may mutate an object of kind `r` with `obj_labels` in namespace `team`.
    fn check_in(
        webhooks: &MutatingWebhooks,
        r: &Resolved,
        namespaces: &NamespaceLabels,
        obj_labels: Value,
    ) -> bool {
        let obj = json!({"metadata": {"labels": obj_labels}});
        let candidate = Candidate {
            resolved: r,
            namespace: Some("team"),
            desired: &obj,
            live: &obj,
        };
        webhooks.may_mutate(&[candidate], namespaces)[0]
    }

    /// A webhook on Deployments in namespaces labelled `inject: yes`.
    fn by_namespace_label() -> MutatingWebhooks {
        let r = rule(
            json!(["CREATE", "UPDATE"]),
            json!(["apps"]),
            json!(["v1"]),
            json!(["deployments"]),
        );
        hooks(json!([{"name": "h", "rules": [r], "namespaceSelector": {"matchLabels": {"inject": "yes"}}}]))
    }

    fn rule(operations: Value, groups: Value, versions: Value, resources: Value) -> Value {
        json!({"operations": operations, "apiGroups": groups, "apiVersions": versions, "resources": resources})
    }

    #[test]
    fn rules_match_create_or_update_of_the_resource_or_any_resource() {
        let cm = resolved("", "v1", "ConfigMap", "configmaps", true);
        let on = |r: Value| hooks(json!([{"name": "h", "rules": [r]}]));
        let deployments = on(rule(
            json!(["CREATE"]),
            json!(["apps"]),
            json!(["v1"]),
            json!(["deployments"]),
        ));
        assert!(check(&deployments, &deployment(), Value::Null, json!({})));
        assert!(!check(&deployments, &cm, Value::Null, json!({})));
        let every = on(rule(json!(["*"]), json!(["*"]), json!(["*"]), json!(["*"])));
        assert!(check(&every, &cm, Value::Null, json!({})));
        let all_sub = on(rule(
            json!(["UPDATE"]),
            json!(["*"]),
            json!(["*"]),
            json!(["*/*"]),
        ));
        assert!(check(&all_sub, &deployment(), Value::Null, json!({})));
        let own_sub = on(rule(
            json!(["UPDATE"]),
            json!(["apps"]),
            json!(["v1"]),
            json!(["deployments/*"]),
        ));
        assert!(check(&own_sub, &deployment(), Value::Null, json!({})));
        // A subresource only, or operations an apply never is: not called.
        let status = on(rule(
            json!(["*"]),
            json!(["apps"]),
            json!(["v1"]),
            json!(["deployments/status"]),
        ));
        assert!(!check(&status, &deployment(), Value::Null, json!({})));
        let delete = on(rule(
            json!(["DELETE", "CONNECT"]),
            json!(["*"]),
            json!(["*"]),
            json!(["*"]),
        ));
        assert!(!check(&delete, &deployment(), Value::Null, json!({})));
    }

    #[test]
    fn other_versions_match_unless_the_policy_is_exact() {
        let r = rule(
            json!(["CREATE"]),
            json!(["apps"]),
            json!(["v1beta1"]),
            json!(["deployments"]),
        );
        let equivalent = hooks(json!([{"name": "h", "rules": [r]}]));
        assert!(check(&equivalent, &deployment(), Value::Null, json!({})));
        let exact = hooks(json!([{"name": "h", "matchPolicy": "Exact", "rules": [r]}]));
        assert!(!check(&exact, &deployment(), Value::Null, json!({})));
    }

    #[test]
    fn scope_limits_the_rule() {
        let mut r = rule(json!(["*"]), json!(["*"]), json!(["*"]), json!(["*"]));
        r["scope"] = json!("Cluster");
        let cluster_only = hooks(json!([{"name": "h", "rules": [r]}]));
        assert!(!check(&cluster_only, &deployment(), Value::Null, json!({})));
        let ns = resolved("", "v1", "Namespace", "namespaces", false);
        assert!(check(&cluster_only, &ns, Value::Null, json!({})));
    }

    #[test]
    fn selectors_decide_on_namespace_and_object_labels() {
        let r = rule(
            json!(["CREATE", "UPDATE"]),
            json!(["apps"]),
            json!(["v1"]),
            json!(["deployments"]),
        );
        let by_ns = by_namespace_label();
        assert!(check(&by_ns, &deployment(), json!({"inject": "yes"}), json!({})));
        assert!(!check(&by_ns, &deployment(), json!({"inject": "no"}), json!({})));
        // Labels unknown: assume the webhook is called.
        assert!(check(&by_ns, &deployment(), Value::Null, json!({})));

        let by_obj = hooks(
            json!([{"name": "h", "rules": [r], "objectSelector": {"matchExpressions": [
            {"key": "sidecar", "operator": "NotIn", "values": ["off"]},
            {"key": "tier", "operator": "Exists"}]}}]),
        );
        assert!(check(&by_obj, &deployment(), Value::Null, json!({"tier": "web"})));
        assert!(!check(
            &by_obj,
            &deployment(),
            Value::Null,
            json!({"tier": "web", "sidecar": "off"})
        ));
        assert!(!check(&by_obj, &deployment(), Value::Null, json!({})));
    }

    #[test]
    fn a_namespace_relabelled_by_the_revision_matches_by_its_new_labels_too() {
        let live_ns = json!({"metadata": {"labels": {"team": "a"}}});
        let git_ns = json!({"metadata": {"labels": {"inject": "yes"}}});
        let only_live: NamespaceLabels = [("team".to_string(), vec![labels(&live_ns)])].into();
        assert!(!check_in(
            &by_namespace_label(),
            &deployment(),
            &only_live,
            json!({})
        ));
        let relabelled: NamespaceLabels = [("team".to_string(), label_sets(&live_ns, &git_ns))].into();
        assert!(check_in(
            &by_namespace_label(),
            &deployment(),
            &relabelled,
            json!({})
        ));
    }

    #[test]
    fn unreadable_configurations_mean_any_object_may_be_mutated() {
        let unreadable = MutatingWebhooks::Unreadable(RequestError {
            code: 403,
            reason: "Forbidden".into(),
            message: "forbidden".into(),
            fields: Vec::new(),
        });
        assert!(unreadable.any());
        assert!(check(&unreadable, &deployment(), Value::Null, json!({})));
        assert!(!hooks(json!([])).any());
    }
}
