//! The check functions of the rule table, one per Kafka-aware rule. Each reads the render leniently:
//! a value it cannot read (wrong type, unparsable size) is left to the schema rules, not guessed.

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::Value;

use super::node_pools::{NodePool, REMOVE_NODE_IDS, Role, assign_node_ids, base_pool, ids_text};
use super::strimzi::{KafkaCr, MetadataMode, int};
use super::{Context, Hit, Snapshot, namespace_of};
use crate::manifest::ResId;
use crate::validate::quantity::{Bytes, Quantity, parse_jvm_size};

pub(super) fn hit(object: &str, path: impl Into<String>, message: impl Into<String>) -> Hit {
    Hit {
        object: object.to_string(),
        path: path.into(),
        message: message.into(),
        fix: None,
    }
}

pub(super) fn with_fix(mut h: Hit, fix: impl Into<String>) -> Hit {
    h.fix = Some(fix.into());
    h
}

fn config_path(key: &str) -> String {
    format!("spec.kafka.config[{key}]")
}

pub(super) fn display(obj: &Value) -> String {
    ResId::of(obj)
        .map(|id| id.to_string())
        .unwrap_or_else(|_| "<unnamed object>".into())
}

const RF_KEYS: [&str; 3] = [
    "default.replication.factor",
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
];

pub(super) fn rf_above_brokers(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in &ctx.to.kafkas {
        let Some(brokers) = k.brokers(&ctx.to) else {
            continue;
        };
        for key in RF_KEYS {
            let Some((rf, explicit)) = k.config_or_default(key) else {
                continue;
            };
            if rf <= brokers.count {
                continue;
            }
            let value = if explicit {
                format!("{key} is {rf}")
            } else {
                format!("{key} is not set, so Kafka's default of {rf} applies,")
            };
            hits.push(with_fix(
                hit(
                    &k.display,
                    config_path(key),
                    format!(
                        "{value} but the cluster has only {} broker(s) ({})",
                        brokers.count, brokers.source
                    ),
                ),
                format!(
                    "set {key} to at most {} in spec.kafka.config, or run at least {rf} brokers",
                    brokers.count
                ),
            ));
        }
    }
    hits
}

/// (min ISR key, replication factor key) pairs that must be ordered.
const ISR_PAIRS: [(&str, &str); 3] = [
    ("min.insync.replicas", "default.replication.factor"),
    ("min.insync.replicas", "offsets.topic.replication.factor"),
    (
        "transaction.state.log.min.isr",
        "transaction.state.log.replication.factor",
    ),
];

/// Every (kafka, isr key, isr, rf key, rf) where the ISR is at least the RF.
fn isr_vs_rf<'c>(ctx: &'c Context<'_>) -> Vec<(&'c KafkaCr<'c>, &'static str, i64, &'static str, i64)> {
    let mut out = Vec::new();
    for k in &ctx.to.kafkas {
        for (isr_key, rf_key) in ISR_PAIRS {
            let (Some((isr, isr_set)), Some((rf, rf_set))) =
                (k.config_or_default(isr_key), k.config_or_default(rf_key))
            else {
                continue;
            };
            // Kafka's own defaults are consistent; only a setting in the resource can break them.
            if (isr_set || rf_set) && isr >= rf {
                out.push((k, isr_key, isr, rf_key, rf));
            }
        }
    }
    out
}

pub(super) fn min_isr_above_rf(ctx: &Context<'_>) -> Vec<Hit> {
    isr_vs_rf(ctx)
        .into_iter()
        .filter(|(_, _, isr, _, rf)| isr > rf)
        .map(|(k, isr_key, isr, rf_key, rf)| {
            with_fix(
                hit(
                    &k.display,
                    config_path(isr_key),
                    format!(
                        "{isr_key} is {isr} but {rf_key} is {rf}: there can never be {isr} in-sync replicas, \
                         so every acks=all write to those topics fails"
                    ),
                ),
                format!("set {isr_key} to at most {} (or raise {rf_key})", (rf - 1).max(1)),
            )
        })
        .collect()
}

pub(super) fn min_isr_equals_rf(ctx: &Context<'_>) -> Vec<Hit> {
    isr_vs_rf(ctx)
        .into_iter()
        .filter(|(_, _, isr, _, rf)| isr == rf && *rf > 1)
        .map(|(k, isr_key, isr, rf_key, rf)| {
            with_fix(
                hit(
                    &k.display,
                    config_path(isr_key),
                    format!(
                        "{isr_key} equals {rf_key} ({isr} = {rf}): losing any one broker, even during a \
                         rolling update, stops acks=all writes to those topics"
                    ),
                ),
                format!("set {isr_key} to {}", rf - 1),
            )
        })
        .collect()
}

/// Components whose `jvmOptions`, `resources` and `metricsConfig` the rules read.
const COMPONENTS: [&str; 3] = ["kafka", "zookeeper", "cruiseControl"];

/// One `jvmOptions` and the memory limit of the containers that run with it: a component of the
/// Kafka resource, or a KafkaNodePool, whose pods take the pool's `jvmOptions` and `resources` when
/// it sets them and the Kafka's `spec.kafka` ones otherwise (Strimzi's `KafkaPool.fromCrd`; each
/// object replaces the other whole, the fields are not merged).
struct JvmSite<'a> {
    /// The object and path of the `jvmOptions`.
    object: String,
    jvm_path: String,
    jvm: &'a Value,
    /// The memory limit, and where it is written relative to `object`.
    limit: Option<(&'a Value, String)>,
    /// Whose pods: `kafka`, `zookeeper`, `KafkaNodePool broker`.
    pods: String,
}

fn jvm_sites<'a>(snap: &Snapshot<'a>) -> Vec<JvmSite<'a>> {
    let mut sites = Vec::new();
    for k in &snap.kafkas {
        let pools = k.uses_node_pools();
        for component in COMPONENTS {
            // With node pools the pools' own settings (or spec.kafka's as their fallback) apply.
            if pools && component == "kafka" {
                continue;
            }
            let Some(jvm) = k.spec(&format!("/{component}/jvmOptions")) else {
                continue;
            };
            let limit_path = format!("spec.{component}.resources.limits.memory");
            sites.push(JvmSite {
                object: k.display.clone(),
                jvm_path: format!("spec.{component}.jvmOptions"),
                jvm,
                limit: k
                    .spec(&format!("/{component}/resources/limits/memory"))
                    .map(|v| (v, limit_path)),
                pods: component.to_string(),
            });
        }
        if !pools {
            continue;
        }
        for pool in k.pools(snap) {
            let (object, jvm_path, jvm) = match pool.spec("/jvmOptions") {
                Some(jvm) => (pool.display.clone(), "spec.jvmOptions".to_string(), jvm),
                None => match k.spec("/kafka/jvmOptions") {
                    Some(jvm) => (k.display.clone(), "spec.kafka.jvmOptions".to_string(), jvm),
                    None => continue,
                },
            };
            let limit = match pool.spec("/resources") {
                Some(res) => res
                    .pointer("/limits/memory")
                    .map(|v| (v, (pool.display.clone(), "spec.resources.limits.memory"))),
                None => k
                    .spec("/kafka/resources/limits/memory")
                    .map(|v| (v, (k.display.clone(), "spec.kafka.resources.limits.memory"))),
            };
            let limit = limit.map(|(v, (owner, path))| {
                let at = if owner == object {
                    path.to_string()
                } else {
                    format!("{path} of {owner}")
                };
                (v, at)
            });
            sites.push(JvmSite {
                object,
                jvm_path,
                jvm,
                limit,
                pods: format!("KafkaNodePool {}", pool.name),
            });
        }
    }
    sites
}

fn jvm_size(site: &JvmSite<'_>, option: &str) -> Option<(String, f64)> {
    let text = site.jvm.get(option)?.as_str()?;
    Some((text.to_string(), parse_jvm_size(text).ok()?))
}

/// Hits in first-seen order without repeats (pools that share the Kafka's settings report once).
fn dedup(hits: Vec<Hit>) -> Vec<Hit> {
    let mut out: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits {
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

pub(super) fn heap_above_limit(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for site in jvm_sites(&ctx.to) {
        let Some((xmx_text, xmx)) = jvm_size(&site, "-Xmx") else {
            continue;
        };
        let Some((limit_value, limit_path)) = &site.limit else {
            continue;
        };
        let Ok(limit) = Quantity::from_value(limit_value) else {
            continue;
        };
        if xmx < limit.value() {
            continue;
        }
        let limit_text = match limit_value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        hits.push(with_fix(
            hit(
                &site.object,
                format!("{}.-Xmx", site.jvm_path),
                format!(
                    "-Xmx {xmx_text} ({}) is at or above the memory limit {limit_text} ({}): the heap alone \
                     fills the container and the {} pods get OOM-killed",
                    Bytes(xmx),
                    Bytes(limit.value()),
                    site.pods
                ),
            ),
            format!(
                "lower -Xmx to well below {} (e.g. {}), or raise {limit_path}",
                Bytes(limit.value()),
                Bytes((limit.value() * 0.75 / (1024.0 * 1024.0)).floor() * 1024.0 * 1024.0)
            ),
        ));
    }
    dedup(hits)
}

pub(super) fn xms_above_xmx(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for site in jvm_sites(&ctx.to) {
        let (Some((xms_text, xms)), Some((xmx_text, xmx))) =
            (jvm_size(&site, "-Xms"), jvm_size(&site, "-Xmx"))
        else {
            continue;
        };
        if xms > xmx {
            hits.push(hit(
                &site.object,
                format!("{}.-Xms", site.jvm_path),
                format!("-Xms {xms_text} is larger than -Xmx {xmx_text}: the JVM refuses to start"),
            ));
        }
    }
    dedup(hits)
}

/// A kustomize content-hash suffix: `-` and 10 characters of its alphabet.
fn hashed_name_of(base: &str, name: &str) -> bool {
    name.strip_prefix(base)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|h| h.len() == 10 && h.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

pub(super) fn metrics_config_missing(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in &ctx.to.kafkas {
        for component in COMPONENTS {
            let Some(cm_ref) = k.spec(&format!("/{component}/metricsConfig/valueFrom/configMapKeyRef"))
            else {
                continue;
            };
            let path = format!("spec.{component}.metricsConfig.valueFrom.configMapKeyRef");
            let name = cm_ref.get("name").and_then(Value::as_str);
            let key = cm_ref.get("key").and_then(Value::as_str);
            let (Some(name), Some(key)) = (name, key) else {
                hits.push(hit(&k.display, path, "configMapKeyRef needs both name and key"));
                continue;
            };
            let maps: Vec<&Value> = ctx.to.of_kind("v1", "ConfigMap", k.namespace).collect();
            let ns = k.namespace.unwrap_or("(no namespace)");
            let Some(cm) = maps
                .iter()
                .find(|c| c.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
            else {
                let hashed: Vec<&str> = maps
                    .iter()
                    .filter_map(|c| c.pointer("/metadata/name").and_then(Value::as_str))
                    .filter(|n| hashed_name_of(name, n))
                    .collect();
                let (message, fix) = match hashed.first() {
                    Some(found) => (
                        format!(
                            "ConfigMap {name:?} is not in the render of namespace {ns}, but {found:?} is: a \
                             configMapGenerator added a hash suffix that kustomize does not write into Kafka \
                             resources"
                        ),
                        format!(
                            "set options.disableNameSuffixHash: true on the {name} generator, or add a \
                             kustomize nameReference configuration for Kafka {path}.name"
                        ),
                    ),
                    None => (
                        format!("ConfigMap {name:?} is not in the render of namespace {ns}"),
                        format!("add the ConfigMap {name} to the cluster's resources, or fix the name"),
                    ),
                };
                hits.push(with_fix(hit(&k.display, format!("{path}.name"), message), fix));
                continue;
            };
            let has_key = ["data", "binaryData"]
                .iter()
                .any(|field| cm.get(*field).and_then(|d| d.get(key)).is_some());
            if !has_key {
                let mut keys: Vec<&str> = ["data", "binaryData"]
                    .iter()
                    .filter_map(|f| cm.get(*f).and_then(Value::as_object))
                    .flat_map(|m| m.keys().map(String::as_str))
                    .collect();
                keys.sort();
                let keys = if keys.is_empty() {
                    "none".to_string()
                } else {
                    keys.join(", ")
                };
                hits.push(with_fix(
                    hit(
                        &k.display,
                        format!("{path}.key"),
                        format!("ConfigMap {name:?} has no key {key:?} (its keys: {keys})"),
                    ),
                    "use one of the ConfigMap's keys, or add the key to the ConfigMap",
                ));
            }
        }
    }
    hits
}

/// The JMX exporter port Strimzi opens on brokers when `jmxOptions` is set.
const JMX_PORT: i64 = 9999;

fn has_jmx_port(svc: &Value) -> bool {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .is_some_and(|ports| {
            ports.iter().any(|p| {
                p.get("port").and_then(int) == Some(JMX_PORT)
                    || p.get("targetPort").and_then(int) == Some(JMX_PORT)
            })
        })
}

/// The pod a Service selects by `strimzi.io/pod-name`.
fn selected_pod(svc: &Value) -> Option<&str> {
    svc.pointer("/spec/selector/strimzi.io~1pod-name")
        .and_then(Value::as_str)
}

/// `(pool, node ID)` of a pod name `<cluster>-<pool>-<id>` of Kafka `k`; `None` for other pods,
/// including those of another Kafka of the namespace whose name extends `k`'s (`main-x-broker-0`
/// belongs to `main-x`, not to pool `x-broker` of `main`).
fn pool_pod<'p>(snap: &Snapshot<'_>, k: &KafkaCr<'_>, pod: &'p str) -> Option<(&'p str, i64)> {
    let rest = pod.strip_prefix(k.name)?.strip_prefix('-')?;
    let longer = snap.kafkas.iter().any(|o| {
        o.namespace == k.namespace
            && o.name.len() > k.name.len()
            && pod.strip_prefix(o.name).is_some_and(|r| r.starts_with('-'))
    });
    if longer {
        return None;
    }
    let (pool, id) = rest.rsplit_once('-')?;
    if pool.is_empty() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((pool, id.parse().ok()?))
}

/// `kafka-jmx-services` for a cluster on KafkaNodePools: pods `<cluster>-<pool>-<id>`. The count per
/// pool is certain; which node IDs the pods have is certain only when the pools carry their status
/// or the change creates the cluster (see [`assign_node_ids`]), and otherwise not guessed.
fn jmx_services_of_pools(ctx: &Context<'_>, k: &KafkaCr<'_>, hits: &mut Vec<Hit>) {
    let pools = k.pools(&ctx.to);
    // (pool, node ID, Service) of every JMX Service selecting a pod of this cluster.
    let mut services: Vec<(&NodePool<'_>, i64, &Value)> = Vec::new();
    let mut any = false;
    for svc in ctx.to.of_kind("v1", "Service", k.namespace) {
        if !has_jmx_port(svc) {
            continue;
        }
        let Some(pod) = selected_pod(svc) else { continue };
        let Some((pool_name, id)) = pool_pod(&ctx.to, k, pod) else {
            continue;
        };
        any = true;
        match pools.iter().find(|p| p.name == pool_name) {
            Some(pool) => services.push((*pool, id, svc)),
            None => {
                let names: Vec<&str> = pools.iter().map(|p| p.name).collect();
                hits.push(with_fix(
                    hit(
                        &display(svc),
                        "spec.selector[strimzi.io/pod-name]",
                        format!(
                            "selects pod {pod}, but {} has no KafkaNodePool {pool_name:?} (its pools: {}): the Service \
                             selects nothing",
                            k.display,
                            if names.is_empty() { "none".to_string() } else { names.join(", ") }
                        ),
                    ),
                    format!(
                        "select a pod {}-<pool>-<node id> of one of the cluster's pools, or remove the Service",
                        k.name
                    ),
                ));
            }
        }
    }
    if !any && k.spec("/kafka/jmxOptions").is_none() {
        return;
    }
    let new_cluster = ctx.from.as_ref().is_some_and(|from| from.kafka(k).is_none());
    let assigned = assign_node_ids(&pools);
    let exact = assigned.as_ref().filter(|ids| ids.from_status || new_cluster);
    let origin = match exact {
        Some(ids) if ids.from_status => "the pools' status.nodeIds",
        _ => "the IDs Strimzi gives a cluster created from this revision",
    };
    for pool in &pools {
        let is_broker = pool.has_role(Role::Broker);
        let mut seen: Vec<(i64, String)> = Vec::new();
        for (_, id, svc) in services.iter().filter(|(p, _, _)| p.name == pool.name) {
            let svc_name = display(svc);
            if let Some((_, first)) = seen.iter().find(|(j, _)| j == id) {
                hits.push(with_fix(
                    hit(
                        &svc_name,
                        "spec.selector[strimzi.io/pod-name]",
                        format!(
                            "pod {} already has the JMX Service {first}",
                            pool.pod_name(k.name, *id)
                        ),
                    ),
                    "keep one JMX Service per broker: remove the duplicate",
                ));
            } else {
                seen.push((*id, svc_name));
            }
        }
        let Some(replicas) = pool.replicas() else { continue };
        let have: BTreeSet<i64> = seen.iter().map(|(id, _)| *id).collect();
        if let Some(ids) = exact.and_then(|e| e.of(pool.name)) {
            if is_broker {
                for id in ids.difference(&have) {
                    let pod = pool.pod_name(k.name, *id);
                    hits.push(with_fix(
                        hit(
                            &pool.display,
                            "spec.replicas",
                            format!(
                                "broker {pod} has no JMX Service (port {JMX_PORT}, selector strimzi.io/pod-name: {pod}); \
                                 the pool's {replicas} broker(s) have node IDs {} ({origin}), {} JMX Service(s)",
                                ids_text(ids),
                                have.len()
                            ),
                        ),
                        format!("add a JMX Service for {pod}, like the ones for the other brokers"),
                    ));
                }
            }
            for (id, svc_name) in seen.iter().filter(|(id, _)| !ids.contains(id)) {
                hits.push(with_fix(
                    hit(
                        svc_name,
                        "spec.selector[strimzi.io/pod-name]",
                        format!(
                            "selects pod {}, which does not exist: {} has node IDs {} ({origin})",
                            pool.pod_name(k.name, *id),
                            pool.display,
                            if ids.is_empty() {
                                "none".to_string()
                            } else {
                                ids_text(ids)
                            }
                        ),
                    ),
                    "select an existing pod of the pool, or remove this Service",
                ));
            }
            continue;
        }
        let count = i64::try_from(have.len()).unwrap_or(i64::MAX);
        let fresh = assigned
            .as_ref()
            .and_then(|a| a.of(pool.name))
            .map(|ids| {
                format!(
                    "; a cluster created from this revision would give the pool node IDs {}",
                    if ids.is_empty() {
                        "none".to_string()
                    } else {
                        ids_text(ids)
                    }
                )
            })
            .unwrap_or_default();
        let unknown = format!(
            "which node IDs the pool's nodes have is in its status.nodeIds, not in the render{fresh}"
        );
        if is_broker && count < replicas {
            hits.push(with_fix(
                hit(
                    &pool.display,
                    "spec.replicas",
                    format!(
                        "{replicas} broker(s) but JMX Services (port {JMX_PORT}) for only {count} of them (node IDs {}): \
                         {} broker(s) have none; {unknown}",
                        if have.is_empty() { "none".to_string() } else { ids_text(&have) },
                        replicas - count
                    ),
                ),
                format!(
                    "add a JMX Service per broker, selecting strimzi.io/pod-name: {}-{}-<node id> (IDs from \
                     `kubectl get kafkanodepool {} -o jsonpath='{{.status.nodeIds}}'`)",
                    k.name, pool.name, pool.name
                ),
            ));
        } else if count > replicas {
            hits.push(with_fix(
                hit(
                    &pool.display,
                    "spec.replicas",
                    format!(
                        "{count} JMX Services select pods of this pool (node IDs {}) but it has only {replicas} node(s): \
                         at least {} of them select pods that do not exist; {unknown}",
                        ids_text(&have),
                        count - replicas
                    ),
                ),
                "remove the JMX Services of the nodes the pool no longer has",
            ));
        }
    }
}

pub(super) fn jmx_services(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in &ctx.to.kafkas {
        if k.uses_node_pools() {
            jmx_services_of_pools(ctx, k, &mut hits);
            continue;
        }
        let Some(brokers) = k.brokers(&ctx.to) else {
            continue;
        };
        let Ok(pod) = Regex::new(&format!("^{}-kafka-([0-9]+)$", regex::escape(k.name))) else {
            continue;
        };
        // (broker index, Service) for every JMX Service of this cluster.
        let mut services: Vec<(i64, &Value)> = Vec::new();
        for svc in ctx.to.of_kind("v1", "Service", k.namespace) {
            let selected = svc
                .pointer("/spec/selector/strimzi.io~1pod-name")
                .and_then(Value::as_str)
                .and_then(|p| pod.captures(p))
                .and_then(|c| c[1].parse::<i64>().ok());
            if let Some(i) = selected
                && has_jmx_port(svc)
            {
                services.push((i, svc));
            }
        }
        if services.is_empty() && k.spec("/kafka/jmxOptions").is_none() {
            continue;
        }
        let n = brokers.count;
        for i in 0..n {
            if !services.iter().any(|(j, _)| *j == i) {
                hits.push(with_fix(
                    hit(
                        &k.display,
                        brokers.source.clone(),
                        format!(
                            "broker {}-kafka-{i} has no JMX Service (port {JMX_PORT}, selector strimzi.io/pod-name: \
                             {}-kafka-{i}); {n} broker(s), {} JMX Service(s)",
                            k.name,
                            k.name,
                            services.len()
                        ),
                    ),
                    format!("add a JMX Service for broker {i}, like the ones for the other brokers"),
                ));
            }
        }
        let mut seen: Vec<(i64, String)> = Vec::new();
        for (i, svc) in &services {
            let svc_name = display(svc);
            if *i >= n {
                hits.push(with_fix(
                    hit(
                        &svc_name,
                        "spec.selector[strimzi.io/pod-name]",
                        format!(
                            "selects broker pod {}-kafka-{i}, which does not exist: {} has {n} broker(s) ({})",
                            k.name, k.display, brokers.source
                        ),
                    ),
                    "remove this Service (the brokers were scaled down), or scale the brokers up",
                ));
            } else if let Some((_, first)) = seen.iter().find(|(j, _)| j == i) {
                hits.push(with_fix(
                    hit(
                        &svc_name,
                        "spec.selector[strimzi.io/pod-name]",
                        format!(
                            "broker pod {}-kafka-{i} already has the JMX Service {first}",
                            k.name
                        ),
                    ),
                    "keep one JMX Service per broker: remove the duplicate",
                ));
            } else {
                seen.push((*i, svc_name));
            }
        }
    }
    hits
}

/// Does a Service selector select a pod with these labels?
pub(super) fn selects(selector: &serde_json::Map<String, Value>, labels: &[(String, String)]) -> bool {
    !selector.is_empty()
        && selector.iter().all(|(k, v)| {
            labels
                .iter()
                .any(|(lk, lv)| lk == k && Some(lv.as_str()) == v.as_str())
        })
}

pub(super) fn labels_of(map: Option<&Value>) -> Vec<(String, String)> {
    map.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// A name or image of ZooKeeper itself or a proxy to it (zoo-entrance); exporters only serve metrics.
fn zookeeperish(s: &str) -> bool {
    (s.contains("zookeeper") || s.contains("zoo-entrance")) && !s.contains("exporter")
}

/// What ZooKeeper pods a Service selector selects in its namespace, described; `None` if none.
fn zookeeper_selected(
    snap: &Snapshot<'_>,
    namespace: Option<&str>,
    selector: &serde_json::Map<String, Value>,
) -> Option<String> {
    for k in snap.kafkas.iter().filter(|k| k.namespace == namespace) {
        if k.spec("/zookeeper").is_none() {
            continue;
        }
        let replicas = k.spec("/zookeeper/replicas").and_then(int).unwrap_or(1).max(1);
        if (0..replicas).any(|i| selects(selector, &k.zookeeper_pod_labels(Some(i)))) {
            return Some(format!("the ZooKeeper pods of {}", k.display));
        }
    }
    for kind in ["Deployment", "StatefulSet", "DaemonSet"] {
        for w in snap.of_kind("apps/v1", kind, namespace) {
            let name = w
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let images = w
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| c.get("image").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            if !(zookeeperish(name) || images.iter().any(|i| zookeeperish(i))) {
                continue;
            }
            if selects(selector, &labels_of(w.pointer("/spec/template/metadata/labels"))) {
                return Some(format!("the pods of {}", display(w)));
            }
        }
    }
    selector
        .values()
        .filter_map(Value::as_str)
        .find(|v| zookeeperish(v))
        .map(|v| format!("pods labelled {v:?}"))
}

pub(super) fn zookeeper_lb_open(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for svc in ctx.to.objects.iter().filter(|o| {
        o.get("apiVersion").and_then(Value::as_str) == Some("v1")
            && o.get("kind").and_then(Value::as_str) == Some("Service")
            && o.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
    }) {
        let ranges = svc
            .pointer("/spec/loadBalancerSourceRanges")
            .and_then(Value::as_array)
            .is_some_and(|r| !r.is_empty());
        if ranges {
            continue;
        }
        let Some(selector) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
            continue;
        };
        if let Some(what) = zookeeper_selected(&ctx.to, namespace_of(svc), selector) {
            hits.push(hit(
                &display(svc),
                "spec.loadBalancerSourceRanges",
                format!(
                    "LoadBalancer Service exposes {what} to every source address; ZooKeeper has no \
                     authentication here"
                ),
            ));
        }
    }
    hits
}

fn zookeeper_replicas(k: &KafkaCr<'_>) -> Option<i64> {
    k.spec("/zookeeper/replicas").and_then(int)
}

/// Every Kafka with an even ZooKeeper ensemble, with its size and the base revision's size when the
/// change under review sets it (`Some(None)` for a Kafka the change adds).
fn even_zookeepers<'c>(ctx: &'c Context<'_>) -> Vec<(&'c KafkaCr<'c>, i64, Option<Option<i64>>)> {
    let mut out = Vec::new();
    for k in &ctx.to.kafkas {
        let Some(n) = zookeeper_replicas(k) else { continue };
        if n == 0 || n % 2 != 0 {
            continue;
        }
        let before = ctx
            .from
            .as_ref()
            .map(|from| from.kafka(k).and_then(zookeeper_replicas));
        let changed = before.filter(|b| *b != Some(n));
        out.push((k, n, changed));
    }
    out
}

fn tolerance(n: i64) -> String {
    format!(
        "{n} ZooKeeper nodes tolerate {} failure(s), no more than {}",
        n / 2 - 1,
        n - 1
    )
}

pub(super) fn zookeeper_even(ctx: &Context<'_>) -> Vec<Hit> {
    even_zookeepers(ctx)
        .into_iter()
        .filter(|(_, _, changed)| changed.is_none())
        .map(|(k, n, _)| hit(&k.display, "spec.zookeeper.replicas", tolerance(n)))
        .collect()
}

pub(super) fn zookeeper_to_even(ctx: &Context<'_>) -> Vec<Hit> {
    even_zookeepers(ctx)
        .into_iter()
        .filter_map(|(k, n, changed)| {
            let before = match changed? {
                Some(b) => format!("from {b} to {n}"),
                None => format!("to {n} in a new cluster"),
            };
            Some(hit(
                &k.display,
                "spec.zookeeper.replicas",
                format!("ZooKeeper replicas change {before}: {}", tolerance(n)),
            ))
        })
        .collect()
}

pub(super) fn broker_scale_down(ctx: &Context<'_>) -> Vec<Hit> {
    let Some(from) = &ctx.from else { return Vec::new() };
    let mut hits = Vec::new();
    for k in &ctx.to.kafkas {
        if let Some(base) = from.kafka(k)
            && base.uses_node_pools()
            && k.uses_node_pools()
        {
            pool_scale_downs(from, &ctx.to, k, &mut hits);
            continue;
        }
        let (Some(old), Some(new)) = (from.kafka(k).and_then(|f| f.brokers(from)), k.brokers(&ctx.to)) else {
            continue;
        };
        if new.count >= old.count {
            continue;
        }
        // A move between spec.kafka.replicas and node pools changes pod names too: count only.
        let removed = if k.uses_node_pools() || from.kafka(k).is_some_and(KafkaCr::uses_node_pools) {
            format!("{} broker(s) removed", old.count - new.count)
        } else {
            let pods: Vec<String> = (new.count..old.count)
                .map(|i| format!("{}-kafka-{i}", k.name))
                .collect();
            format!("removes {}", pods.join(", "))
        };
        hits.push(hit(
            &k.display,
            new.source.clone(),
            format!(
                "brokers scale down from {} to {}: {removed}; their partitions must be moved first",
                old.count, new.count
            ),
        ));
    }
    hits
}

/// `kafka-broker-scale-down` for a cluster on node pools in both revisions: per broker pool, since
/// Strimzi checks (and reverts) each pool's scale-down on its own; removed pools and pools losing the
/// broker role are the node-pool rules' business.
fn pool_scale_downs(from: &Snapshot<'_>, to: &Snapshot<'_>, k: &KafkaCr<'_>, hits: &mut Vec<Hit>) {
    for pool in k.broker_pools(to) {
        let Some(old) = base_pool(from, pool).filter(|p| p.cluster == pool.cluster) else {
            continue;
        };
        let (Some(before), Some(after)) = (old.runs(Role::Broker), pool.replicas()) else {
            continue;
        };
        if after >= before {
            continue;
        }
        let which = match pool.id_range(REMOVE_NODE_IDS) {
            Some(Ok(range)) if !range.spans.is_empty() => {
                format!("Strimzi removes the node IDs of {REMOVE_NODE_IDS} {range} first, then the highest")
            }
            _ => "Strimzi removes the pool's highest node IDs".to_string(),
        };
        hits.push(hit(
            &pool.display,
            "spec.replicas",
            format!(
                "brokers of {} scale down from {before} to {after}: {which}; their partitions must be moved first, or \
                 Strimzi reverts the scale-down and only sets a ScaleDownPreventionCheck warning condition",
                k.display
            ),
        ));
    }
}

/// One storage configuration: `spec.kafka.storage`, `spec.zookeeper.storage`, or a KafkaNodePool's
/// `spec.storage`.
struct StorageSite<'a> {
    object: String,
    path: &'static str,
    storage: &'a Value,
}

fn storage_sites<'a>(snap: &Snapshot<'a>) -> Vec<StorageSite<'a>> {
    let mut sites = Vec::new();
    for k in &snap.kafkas {
        // What the operator ignores is not checked: spec.kafka.storage once node pools hold the
        // storage, spec.zookeeper on KRaft.
        let kafka = (!k.uses_node_pools()).then_some(("/kafka/storage", "spec.kafka.storage"));
        let zookeeper = (k.metadata_mode() != MetadataMode::KRaft)
            .then_some(("/zookeeper/storage", "spec.zookeeper.storage"));
        for (pointer, path) in kafka.into_iter().chain(zookeeper) {
            if let Some(storage) = k.spec(pointer) {
                sites.push(StorageSite {
                    object: k.display.clone(),
                    path,
                    storage,
                });
            }
        }
    }
    for pool in &snap.pools {
        if let Some(storage) = pool.storage() {
            sites.push(StorageSite {
                object: pool.display.clone(),
                path: "spec.storage",
                storage,
            });
        }
    }
    sites
}

/// The single volumes of a storage: itself, or a JBOD's volumes with their ids.
fn volumes<'a>(path: &str, storage: &'a Value) -> Vec<(String, Option<i64>, &'a Value)> {
    if storage_type(storage) == Some("jbod") {
        storage
            .get("volumes")
            .and_then(Value::as_array)
            .map(|vols| {
                vols.iter()
                    .enumerate()
                    .map(|(i, v)| (format!("{path}.volumes[{i}]"), v.get("id").and_then(int), v))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        vec![(path.to_string(), None, storage)]
    }
}

fn storage_type(storage: &Value) -> Option<&str> {
    storage.get("type").and_then(Value::as_str)
}

/// Pairs of (base, head) single volumes of the same site: the storage itself when neither is JBOD,
/// JBOD volumes matched by id when both are.
fn volume_pairs<'a>(from: &'a Value, to: &'a Value, path: &str) -> Vec<(&'a Value, &'a Value, String)> {
    match (
        storage_type(from) == Some("jbod"),
        storage_type(to) == Some("jbod"),
    ) {
        (false, false) => vec![(from, to, path.to_string())],
        (true, true) => {
            let old = volumes(path, from);
            volumes(path, to)
                .into_iter()
                .filter_map(|(p, id, v)| {
                    let id = id?;
                    let (_, _, o) = old.iter().find(|(_, oid, _)| *oid == Some(id))?;
                    Some((*o, v, p))
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Every site present in both revisions: (object, path, base storage, head storage).
fn site_pairs<'a>(ctx: &'a Context<'a>) -> Vec<(String, &'static str, &'a Value, &'a Value)> {
    let Some(from) = &ctx.from else { return Vec::new() };
    let old = storage_sites(from);
    storage_sites(&ctx.to)
        .into_iter()
        .filter_map(|site| {
            let before = old
                .iter()
                .find(|o| o.object == site.object && o.path == site.path)?;
            Some((site.object, site.path, before.storage, site.storage))
        })
        .collect()
}

/// Every persistent-claim volume in both revisions: (object, volume path, base, head).
fn persistent_pairs<'a>(ctx: &'a Context<'a>) -> Vec<(String, String, &'a Value, &'a Value)> {
    let persistent = |v: &Value| storage_type(v) == Some("persistent-claim");
    site_pairs(ctx)
        .into_iter()
        .flat_map(|(object, path, from, to)| {
            volume_pairs(from, to, path)
                .into_iter()
                .filter(|(old, new, _)| persistent(old) && persistent(new))
                .map(move |(old, new, vpath)| (object.clone(), vpath, old, new))
        })
        .collect()
}

pub(super) fn storage_shrink(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (object, vpath, old, new) in persistent_pairs(ctx) {
        let (Some(old_size), Some(new_size)) = (old.get("size"), new.get("size")) else {
            continue;
        };
        let (Ok(a), Ok(b)) = (Quantity::from_value(old_size), Quantity::from_value(new_size)) else {
            continue;
        };
        if b.value() < a.value() {
            let text = |v: &Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            hits.push(with_fix(
                hit(
                    &object,
                    format!("{vpath}.size"),
                    format!(
                        "storage size shrinks from {} to {}: volumes cannot shrink, Strimzi ignores the \
                         storage change",
                        text(old_size),
                        text(new_size)
                    ),
                ),
                format!("keep size {} (sizes can only grow)", text(old_size)),
            ));
        }
    }
    hits
}

pub(super) fn storage_type_change(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (object, path, from, to) in site_pairs(ctx) {
        let mut changes = Vec::new();
        if storage_type(from) != storage_type(to) {
            changes.push((format!("{path}.type"), storage_type(from), storage_type(to)));
        } else {
            for (old, new, vpath) in volume_pairs(from, to, path) {
                if vpath != path && storage_type(old) != storage_type(new) {
                    changes.push((format!("{vpath}.type"), storage_type(old), storage_type(new)));
                }
            }
        }
        for (p, a, b) in changes {
            hits.push(with_fix(
                hit(
                    &object,
                    p,
                    format!(
                        "storage type changes from {} to {}: Strimzi does not change the storage type of a \
                         running cluster and ignores the change",
                        a.unwrap_or("(none)"),
                        b.unwrap_or("(none)")
                    ),
                ),
                format!("keep type {}", a.unwrap_or("(none)")),
            ));
        }
    }
    hits
}

pub(super) fn storage_class_change(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (object, vpath, old, new) in persistent_pairs(ctx) {
        let class = |v: &Value| v.get("class").and_then(Value::as_str).map(str::to_string);
        let (a, b) = (class(old), class(new));
        if a == b {
            continue;
        }
        let show = |c: &Option<String>| {
            c.as_ref()
                .map_or("(cluster default)".to_string(), |c| format!("{c:?}"))
        };
        hits.push(with_fix(
            hit(
                &object,
                format!("{vpath}.class"),
                format!(
                    "storage class changes from {} to {}: existing volumes keep their class, Strimzi \
                     ignores the change",
                    show(&a),
                    show(&b)
                ),
            ),
            match &a {
                Some(c) => format!("keep class {c:?}"),
                None => "remove class (keep the cluster default)".to_string(),
            },
        ));
    }
    hits
}

pub(super) fn delete_claim(ctx: &Context<'_>) -> Vec<Hit> {
    let old_sites = ctx.from.as_ref().map(storage_sites).unwrap_or_default();
    let mut hits = Vec::new();
    for site in storage_sites(&ctx.to) {
        for (vpath, id, vol) in volumes(site.path, site.storage) {
            if storage_type(vol) != Some("persistent-claim")
                || vol.get("deleteClaim").and_then(Value::as_bool) != Some(true)
            {
                continue;
            }
            // Was it already on in the base revision?
            let before = old_sites
                .iter()
                .find(|o| o.object == site.object && o.path == site.path)
                .and_then(|o| {
                    volumes(o.path, o.storage)
                        .into_iter()
                        .find(|(_, oid, _)| *oid == id)
                        .map(|(_, _, v)| v.get("deleteClaim").and_then(Value::as_bool) == Some(true))
                });
            let when = match (&ctx.from, before) {
                (Some(_), Some(false) | None) => "this change turns on deleteClaim: ",
                _ => "",
            };
            hits.push(hit(
                &site.object,
                format!("{vpath}.deleteClaim"),
                format!("{when}deleting the Kafka resource will delete this persistent volume and its data"),
            ));
        }
    }
    hits
}
