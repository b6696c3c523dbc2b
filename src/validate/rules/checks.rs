//! The check functions of the rule table, one per Kafka-aware rule. Each reads the render leniently:
//! a value it cannot read (wrong type, unparsable size) is left to the schema rules, not guessed.

use regex::Regex;
use serde_json::Value;

use super::strimzi::{KafkaCr, int, is_strimzi};
use super::{Context, Hit, Snapshot, namespace_of};
use crate::manifest::ResId;
use crate::validate::quantity::{Bytes, Quantity, parse_jvm_size};

fn hit(object: &str, path: impl Into<String>, message: impl Into<String>) -> Hit {
    Hit {
        object: object.to_string(),
        path: path.into(),
        message: message.into(),
        fix: None,
    }
}

fn with_fix(mut h: Hit, fix: impl Into<String>) -> Hit {
    h.fix = Some(fix.into());
    h
}

fn config_path(key: &str) -> String {
    format!("spec.kafka.config[{key}]")
}

fn display(obj: &Value) -> String {
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

fn jvm_size(k: &KafkaCr<'_>, component: &str, option: &str) -> Option<(String, f64)> {
    let text = k.spec(&format!("/{component}/jvmOptions/{option}"))?.as_str()?;
    Some((text.to_string(), parse_jvm_size(text).ok()?))
}

pub(super) fn heap_above_limit(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in &ctx.to.kafkas {
        for component in COMPONENTS {
            let Some((xmx_text, xmx)) = jvm_size(k, component, "-Xmx") else {
                continue;
            };
            let Some(limit_value) = k.spec(&format!("/{component}/resources/limits/memory")) else {
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
                    &k.display,
                    format!("spec.{component}.jvmOptions.-Xmx"),
                    format!(
                        "-Xmx {xmx_text} ({}) is at or above the memory limit {limit_text} ({}): the heap alone \
                         fills the container and the {component} pods get OOM-killed",
                        Bytes(xmx),
                        Bytes(limit.value())
                    ),
                ),
                format!(
                    "lower -Xmx to well below {} (e.g. {}), or raise spec.{component}.resources.limits.memory",
                    Bytes(limit.value()),
                    Bytes((limit.value() * 0.75 / (1024.0 * 1024.0)).floor() * 1024.0 * 1024.0)
                ),
            ));
        }
    }
    hits
}

pub(super) fn xms_above_xmx(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in &ctx.to.kafkas {
        for component in COMPONENTS {
            let (Some((xms_text, xms)), Some((xmx_text, xmx))) =
                (jvm_size(k, component, "-Xms"), jvm_size(k, component, "-Xmx"))
            else {
                continue;
            };
            if xms > xmx {
                hits.push(hit(
                    &k.display,
                    format!("spec.{component}.jvmOptions.-Xms"),
                    format!("-Xms {xms_text} is larger than -Xmx {xmx_text}: the JVM refuses to start"),
                ));
            }
        }
    }
    hits
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

pub(super) fn jmx_services(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in &ctx.to.kafkas {
        // Node-pool pods are named <cluster>-<pool>-<id>; per-pool JMX Services are not checked.
        if k.uses_node_pools() {
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
fn selects(selector: &serde_json::Map<String, Value>, labels: &[(String, String)]) -> bool {
    !selector.is_empty()
        && selector.iter().all(|(k, v)| {
            labels
                .iter()
                .any(|(lk, lv)| lk == k && Some(lv.as_str()) == v.as_str())
        })
}

fn labels_of(map: Option<&Value>) -> Vec<(String, String)> {
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
        let (Some(old), Some(new)) = (from.kafka(k).and_then(|f| f.brokers(from)), k.brokers(&ctx.to)) else {
            continue;
        };
        if new.count >= old.count {
            continue;
        }
        let removed = if k.uses_node_pools() {
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
        for (pointer, path) in [
            ("/kafka/storage", "spec.kafka.storage"),
            ("/zookeeper/storage", "spec.zookeeper.storage"),
        ] {
            if let Some(storage) = k.spec(pointer) {
                sites.push(StorageSite {
                    object: k.display.clone(),
                    path,
                    storage,
                });
            }
        }
    }
    for obj in snap.objects {
        if is_strimzi(obj, "KafkaNodePool")
            && let Some(storage) = obj.pointer("/spec/storage")
        {
            sites.push(StorageSite {
                object: display(obj),
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
