//! The live cluster as plan and apply see it: discovery (every kind the server serves, CRDs
//! included, in two requests through aggregated discovery) and the few requests they make, on raw
//! JSON values so that nothing is lost or reformatted between the server and the diff.
//!
//! Every request goes through [`Cluster`]; [`Cluster::requests`] counts them (benchmarks print it).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kube::Client;
use kube::api::{DeleteParams, GetParams, ListParams, Patch, PatchParams, PropagationPolicy};
use kube::core::{ApiResource, DynamicObject, Resource};
use kube::discovery::{Discovery, Scope};
use serde_json::Value;
use tokio::sync::RwLock;

use super::client::ApiStats;

use crate::manifest::Gvk;

/// Requests in flight at once, by default: enough to hide round trips, few enough not to swamp an
/// apiserver (kubectl sends one at a time; client-go's default rate limit is 5 QPS / 10 burst).
pub const DEFAULT_CONCURRENCY: usize = 16;

/// A resolved kind: where its objects live on the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

impl Resolved {
    /// URL path of the collection (`/apis/apps/v1/namespaces/ns/deployments`).
    pub fn collection(&self, namespace: Option<&str>) -> String {
        DynamicObject::url_path(&self.resource, if self.namespaced { namespace } else { None })
    }

    /// `Kind.group` (or `Kind` for the core group), as ApplySets name group-kinds.
    pub fn group_kind(&self) -> String {
        if self.resource.group.is_empty() {
            self.resource.kind.clone()
        } else {
            format!("{}.{}", self.resource.kind, self.resource.group)
        }
    }
}

/// A failed request, reduced to what messages need.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RequestError {
    /// HTTP status (0 when the server was not reached).
    pub code: u16,
    /// Machine-readable reason (`Invalid`, `Conflict`, `NotFound`, ...), empty when unknown.
    pub reason: String,
    /// Human-readable message, already explained for the common cases.
    pub message: String,
    /// Fields named by the server (`spec.selector`), for `Invalid` errors.
    pub fields: Vec<(String, String)>,
}

impl RequestError {
    /// `server` (the apiserver's URL, when known) is named when it cannot be reached.
    fn from_kube(err: kube::Error, server: Option<&str>) -> RequestError {
        match err {
            kube::Error::Api(status) => {
                let fields = status
                    .details
                    .as_ref()
                    .map(|d| {
                        d.causes
                            .iter()
                            .map(|c| (c.field.clone(), c.message.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                let message = match status.code {
                    401 => format!(
                        "credentials rejected by the apiserver (expired or invalid): {}",
                        status.message
                    ),
                    403 => format!("forbidden: {}", status.message),
                    _ => status.message.clone(),
                };
                RequestError {
                    code: status.code,
                    reason: status.reason.clone(),
                    message,
                    fields,
                }
            }
            other => RequestError {
                code: 0,
                reason: String::new(),
                message: match server {
                    Some(server) => format!("apiserver {server} unreachable: {}", describe_transport(&other)),
                    None => format!("apiserver unreachable: {}", describe_transport(&other)),
                },
                fields: Vec::new(),
            },
        }
    }

    /// The object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code == 404
    }

    /// The request was refused because a field cannot change (`field is immutable`, or a
    /// StatefulSet's forbidden spec update).
    pub fn is_immutable(&self) -> bool {
        self.code == 422
            && (self.message.contains("immutable")
                || self
                    .message
                    .contains("updates to statefulset spec for fields other than")
                || self.fields.iter().any(|(_, m)| m.contains("immutable")))
    }
}

/// The error and its causes, each said once (hyper repeats `client error (Connect)` a level down).
fn describe_transport(err: &kube::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Sends a request built by `kube::core::Request` through the cluster's client and counts it. A
/// macro rather than a method so that the `http::Request` type is inferred, not named.
macro_rules! send {
    ($cluster:expr, $request:expr) => {{
        match $request {
            Ok(request) => {
                $cluster.count(1);
                $cluster
                    .client
                    .request::<Value>(request)
                    .await
                    .map_err(|e| RequestError::from_kube(e, $cluster.server()))
            }
            Err(e) => Err(RequestError {
                code: 0,
                reason: String::new(),
                message: format!("cannot build request: {e}"),
                fields: Vec::new(),
            }),
        }
    }};
}

#[derive(Default)]
struct DiscoveryCache {
    /// (group, version, kind) -> resolved
    kinds: HashMap<(String, String, String), Resolved>,
    loaded: bool,
}

/// A connection to one cluster, cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    concurrency: usize,
    discovery: Arc<RwLock<DiscoveryCache>>,
    requests: Arc<AtomicU64>,
    /// The apiserver's URL, for messages ([`Cluster::with_server`]).
    server: Option<Arc<str>>,
    /// The apiserver's answers by kind, when the client counts them ([`Cluster::with_stats`]).
    stats: Arc<ApiStats>,
    /// The mutating webhooks kept by a watch, for processes that plan repeatedly
    /// ([`Cluster::with_webhook_watch`]).
    webhooks: Option<super::admission::WebhookWatch>,
}

impl Cluster {
    /// Wraps a client; `concurrency` bounds the requests in flight (at least 1).
    pub fn new(client: Client, concurrency: usize) -> Cluster {
        Cluster {
            client,
            concurrency: concurrency.max(1),
            discovery: Arc::default(),
            requests: Arc::default(),
            server: None,
            stats: Arc::default(),
            webhooks: None,
        }
    }

    /// Keeps the cluster's MutatingWebhookConfigurations in memory with a watch, so plans do not
    /// list them each time (the daemon; a one-shot CLI plan lists them once). Needs RBAC `watch` on
    /// `mutatingwebhookconfigurations`; without it plans list as before.
    pub fn with_webhook_watch(mut self) -> Cluster {
        self.webhooks = Some(super::admission::WebhookWatch::start(self.client.clone()));
        self
    }

    /// The webhook watch, when [`Cluster::with_webhook_watch`] started one.
    pub fn webhook_watch(&self) -> Option<&super::admission::WebhookWatch> {
        self.webhooks.as_ref()
    }

    /// The counts kept by the client's request stack ([`super::client::build`]).
    pub fn with_stats(mut self, stats: Arc<ApiStats>) -> Cluster {
        self.stats = stats;
        self
    }

    /// The apiserver's answers so far: throttled (429) and unavailable (503/504) among them.
    pub fn api_stats(&self) -> &Arc<ApiStats> {
        &self.stats
    }

    /// Names the apiserver (its URL, `kube::Config::cluster_url`) in the messages of requests that
    /// cannot reach it: `apiserver https://10.0.0.1:6443 unreachable: ...`.
    pub fn with_server(mut self, server: &str) -> Cluster {
        self.server = Some(server.trim_end_matches('/').into());
        self
    }

    /// The apiserver's URL, when given with [`Cluster::with_server`].
    pub fn server(&self) -> Option<&str> {
        self.server.as_deref()
    }

    /// A failed request of the underlying client made with [`Cluster::client`] (the apply's write
    /// lock uses typed APIs), explained like the cluster's own requests: naming the apiserver when
    /// it cannot be reached.
    pub fn explain(&self, err: kube::Error) -> RequestError {
        RequestError::from_kube(err, self.server())
    }

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Requests in flight at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Requests sent so far through this cluster (discovery included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self, n: u64) {
        self.requests.fetch_add(n, Ordering::Relaxed);
    }

    /// (Re)reads discovery: every group, version and kind the server serves.
    pub async fn refresh_discovery(&self) -> Result<(), RequestError> {
        // Aggregated discovery answers in two requests; older servers need one per group-version.
        self.count(2);
        let discovery = match Discovery::new(self.client.clone()).run_aggregated().await {
            Ok(d) => d,
            Err(_) => {
                let d = Discovery::new(self.client.clone())
                    .run()
                    .await
                    .map_err(|e| RequestError::from_kube(e, self.server()))?;
                self.count(d.groups().map(|g| g.versions().count() as u64).sum::<u64>() + 2);
                d
            }
        };
        let mut kinds = HashMap::new();
        for group in discovery.groups() {
            for version in group.versions() {
                for (ar, caps) in group.versioned_resources(version) {
                    let key = (ar.group.clone(), ar.version.clone(), ar.kind.clone());
                    kinds.insert(
                        key,
                        Resolved {
                            resource: ar,
                            namespaced: caps.scope == Scope::Namespaced,
                        },
                    );
                }
            }
        }
        let mut cache = self.discovery.write().await;
        cache.kinds = kinds;
        cache.loaded = true;
        Ok(())
    }

    /// Resolves a group/version/kind; `None` when the server does not serve it. Discovery is read
    /// on first use.
    pub async fn resolve(&self, gvk: &Gvk) -> Result<Option<Resolved>, RequestError> {
        if !self.discovery.read().await.loaded {
            self.refresh_discovery().await?;
        }
        let cache = self.discovery.read().await;
        Ok(cache
            .kinds
            .get(&(gvk.group.clone(), gvk.version.clone(), gvk.kind.clone()))
            .cloned())
    }

    /// Resolves a group/kind at any served version (the stable `v1` when served, else the first
    /// one in version order); for objects known only by group and kind, as ApplySets list them.
    pub async fn resolve_group_kind(
        &self,
        group: &str,
        kind: &str,
    ) -> Result<Option<Resolved>, RequestError> {
        if !self.discovery.read().await.loaded {
            self.refresh_discovery().await?;
        }
        let cache = self.discovery.read().await;
        let mut found: Vec<&Resolved> = cache
            .kinds
            .iter()
            .filter(|((g, _, k), _)| g == group && k == kind)
            .map(|(_, r)| r)
            .collect();
        found.sort_by_key(|r| (r.resource.version != "v1", r.resource.version.clone()));
        Ok(found.first().map(|r| (*r).clone()))
    }

    /// Reads one object; `None` when it does not exist.
    pub async fn get(
        &self,
        r: &Resolved,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, RequestError> {
        let req = kube::core::Request::new(r.collection(namespace)).get(name, &GetParams::default());
        match send!(self, req) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists the objects of a kind (in `namespace`, or everywhere / cluster-wide with `None`),
    /// optionally by label selector, following continue tokens. Items get `apiVersion` and `kind`,
    /// which list responses leave out.
    pub async fn list(
        &self,
        r: &Resolved,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, RequestError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut lp = ListParams::default().limit(500);
            if let Some(sel) = label_selector {
                lp = lp.labels(sel);
            }
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let page = send!(self, kube::core::Request::new(r.collection(namespace)).list(&lp))?;
            if let Some(items) = page.get("items").and_then(Value::as_array) {
                for item in items {
                    let mut item = item.clone();
                    if let Some(map) = item.as_object_mut() {
                        map.insert("apiVersion".into(), Value::String(r.resource.api_version.clone()));
                        map.insert("kind".into(), Value::String(r.resource.kind.clone()));
                    }
                    out.push(item);
                }
            }
            token = page
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Server-side apply of `obj` with `manager`, conflicts forced, strict field validation;
    /// `dry_run` asks the server what it would store without storing it.
    pub async fn apply(
        &self,
        r: &Resolved,
        obj: &Value,
        manager: &str,
        dry_run: bool,
    ) -> Result<Value, RequestError> {
        let namespace = obj.pointer("/metadata/namespace").and_then(Value::as_str);
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut pp = PatchParams::apply(manager).force().validation_strict();
        if dry_run {
            pp = pp.dry_run();
        }
        let req = kube::core::Request::new(r.collection(namespace)).patch(name, &pp, &Patch::Apply(obj));
        send!(self, req)
    }

    /// JSON merge patch (not server-side apply) with `manager`; used to rewrite managedFields when
    /// taking objects over. A `metadata.resourceVersion` in the patch makes it conditional.
    pub async fn merge_patch(
        &self,
        r: &Resolved,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        manager: &str,
    ) -> Result<Value, RequestError> {
        let pp = PatchParams {
            field_manager: Some(manager.to_string()),
            ..PatchParams::default()
        };
        let req = kube::core::Request::new(r.collection(namespace)).patch(name, &pp, &Patch::Merge(patch));
        send!(self, req)
    }

    /// Deletes an object (background propagation), only if it still has `uid`. `Ok(false)` when it
    /// was already gone.
    pub async fn delete(
        &self,
        r: &Resolved,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
    ) -> Result<bool, RequestError> {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: uid.map(|u| kube::api::Preconditions {
                uid: Some(u.to_string()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match send!(
            self,
            kube::core::Request::new(r.collection(namespace)).delete(name, &dp)
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Runs `f` over `items` with at most `limit` futures in flight, returning results in input order.
pub async fn bounded<T, R, F, Fut>(limit: usize, items: Vec<T>, f: F) -> Vec<R>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
{
    let semaphore = Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let total = items.len();
    for (i, item) in items.into_iter().enumerate() {
        let fut = f(item);
        let semaphore = semaphore.clone();
        set.spawn(async move {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = semaphore.acquire_owned().await;
            (i, fut.await)
        });
    }
    let mut out: Vec<Option<R>> = (0..total).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => out[i] = Some(r),
            // A panicking request task is a bug; surface it rather than losing a result silently.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out.into_iter().flatten().collect()
}
