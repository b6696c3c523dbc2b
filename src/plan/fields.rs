//! Field paths and server-side apply field ownership (`metadata.managedFields`, format `FieldsV1`).
//!
//! A `FieldsV1` set is a trie of JSON objects whose keys name one step each: `f:<field>` a map
//! field, `k:<json>` a list element by its merge keys, `v:<json>` a set element by value, `i:<n>` a
//! list element by index, and `.` the node itself. Leaves are empty objects. This module answers
//! the questions plan and apply ask of it: who owns a path, which fields a manager lost, and the
//! union of two sets (taking over what `kubectl apply` owned client-side).

use std::fmt;

use serde_json::{Map, Value};

/// One step of a path into an object value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// A map key.
    Key(String),
    /// A list index, printed with the element's `name` when it has one.
    Index(usize, Option<String>),
}

/// A path into an object, printed `spec.kafka.replicas`, `spec.template.spec.containers[name=web].image`
/// or `spec.kafka.config["default.replication.factor"]` (keys that contain `.` or `/` are quoted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if k.contains(['.', '/', '[', ']', ' ', '"']) || k.is_empty() => {
                    write!(f, "[{}]", Value::String(k.clone()))?
                }
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?
                }
                Seg::Index(_, Some(name)) => write!(f, "[name={name}]")?,
                Seg::Index(n, None) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// One manager's entry of `metadata.managedFields`, reduced to what ownership questions need.
#[derive(Clone, Debug, PartialEq)]
pub struct ManagerEntry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    /// Empty for the main resource, `status` or `scale` for subresources.
    pub subresource: String,
    /// The `FieldsV1` trie.
    pub fields: Value,
}

/// Reads `metadata.managedFields` of an object; entries in other formats than `FieldsV1` are skipped.
pub fn managed_fields(obj: &Value) -> Vec<ManagerEntry> {
    let Some(entries) = obj.pointer("/metadata/managedFields").and_then(Value::as_array) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|e| e.get("fieldsType").and_then(Value::as_str).unwrap_or("FieldsV1") == "FieldsV1")
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            ManagerEntry {
                manager: s("manager"),
                operation: s("operation"),
                api_version: s("apiVersion"),
                subresource: s("subresource"),
                fields: e
                    .get("fieldsV1")
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Map::new())),
            }
        })
        .collect()
}

/// Finds the child of a `FieldsV1` node that stands for list element `elem` at `index`.
fn list_child<'a>(node: &'a Map<String, Value>, elem: Option<&Value>, index: usize) -> Option<&'a Value> {
    if let Some(child) = node.get(&format!("i:{index}")) {
        return Some(child);
    }
    let elem = elem?;
    node.iter().find_map(|(key, child)| {
        if let Some(json) = key.strip_prefix("k:") {
            let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(json) else {
                return None;
            };
            keys.iter().all(|(k, v)| elem.get(k) == Some(v)).then_some(child)
        } else if let Some(json) = key.strip_prefix("v:") {
            (serde_json::from_str::<Value>(json).ok().as_ref() == Some(elem)).then_some(child)
        } else {
            None
        }
    })
}

/// Whether the `FieldsV1` set `fields` owns `path` of `obj`: the path is in the set, or one of its
/// prefixes is a leaf (an atomic map or list owned as a whole).
pub fn owns(fields: &Value, obj: &Value, path: &FieldPath) -> bool {
    let mut node = fields;
    let mut value = Some(obj);
    for seg in &path.0 {
        let Some(map) = node.as_object() else { return false };
        if map.is_empty() {
            // A leaf before the end of the path: the whole subtree is owned atomically.
            return true;
        }
        let next = match seg {
            Seg::Key(k) => {
                value = value.and_then(|v| v.get(k));
                map.get(&format!("f:{k}"))
            }
            Seg::Index(i, _) => {
                let elem = value.and_then(|v| v.get(*i));
                let child = list_child(map, elem, *i);
                value = elem;
                child
            }
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    true
}

/// The managers (main resource only, not subresources) that own `path` of `obj`, sorted and unique.
pub fn owners(obj: &Value, path: &FieldPath) -> Vec<String> {
    let mut out: Vec<String> = managed_fields(obj)
        .into_iter()
        .filter(|e| e.subresource.is_empty() && owns(&e.fields, obj, path))
        .map(|e| e.manager)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The leaves of a `FieldsV1` set as printable paths (`spec.kafka.replicas`,
/// `spec.template.spec.containers[name=web].image`), sorted.
pub fn leaf_paths(fields: &Value) -> Vec<String> {
    fn walk(node: &Value, prefix: &str, out: &mut Vec<String>) {
        let Some(map) = node.as_object() else { return };
        let children: Vec<_> = map.iter().filter(|(k, _)| k.as_str() != ".").collect();
        if children.is_empty() {
            if !prefix.is_empty() {
                out.push(prefix.to_string());
            }
            return;
        }
        for (key, child) in children {
            let step = if let Some(name) = key.strip_prefix("f:") {
                let path = FieldPath(vec![Seg::Key(name.to_string())]).to_string();
                if prefix.is_empty() || path.starts_with('[') {
                    path
                } else {
                    format!(".{path}")
                }
            } else if let Some(json) = key.strip_prefix("k:") {
                match serde_json::from_str::<Value>(json) {
                    Ok(Value::Object(keys)) => {
                        let parts: Vec<String> = keys
                            .iter()
                            .map(|(k, v)| match v {
                                Value::String(s) => format!("{k}={s}"),
                                other => format!("{k}={other}"),
                            })
                            .collect();
                        format!("[{}]", parts.join(","))
                    }
                    _ => format!("[{json}]"),
                }
            } else if let Some(json) = key.strip_prefix("v:") {
                format!("[={json}]")
            } else if let Some(index) = key.strip_prefix("i:") {
                format!("[{index}]")
            } else {
                format!("[{key}]")
            };
            walk(child, &format!("{prefix}{step}"), out);
        }
    }
    let mut out = Vec::new();
    walk(fields, "", &mut out);
    out.sort();
    out
}

/// The union of two `FieldsV1` sets.
pub fn union(a: &Value, b: &Value) -> Value {
    match (a.as_object(), b.as_object()) {
        (Some(am), Some(bm)) => {
            let mut out = am.clone();
            for (k, bv) in bm {
                let merged = match out.get(k) {
                    Some(av) => union(av, bv),
                    None => bv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Some(_), None) => a.clone(),
        _ => b.clone(),
    }
}

/// Which fields each manager loses between `before` and `after` (e.g. the live object and the
/// server's dry-run of a forced apply): `(manager, [paths])` for every manager, other than
/// `except`, that owned a leaf before and does not after. This is the server's own account of a
/// forced conflict.
pub fn lost_fields(before: &Value, after: &Value, except: &str) -> Vec<(String, Vec<String>)> {
    let after_entries = managed_fields(after);
    let mut out = Vec::new();
    for entry in managed_fields(before) {
        if entry.manager == except || !entry.subresource.is_empty() {
            continue;
        }
        let kept: Vec<String> = after_entries
            .iter()
            .filter(|e| {
                e.manager == entry.manager && e.operation == entry.operation && e.subresource.is_empty()
            })
            .flat_map(|e| leaf_paths(&e.fields))
            .collect();
        let lost: Vec<String> = leaf_paths(&entry.fields)
            .into_iter()
            .filter(|p| !kept.contains(p) && p != "metadata.managedFields")
            .collect();
        if !lost.is_empty() {
            match out
                .iter_mut()
                .find(|(m, _): &&mut (String, Vec<String>)| *m == entry.manager)
            {
                Some((_, paths)) => paths.extend(lost),
                None => out.push((entry.manager, lost)),
            }
        }
    }
    out.sort();
    out
}

/// Removes from `obj` every leaf of `fields` that is still present, pruning maps left empty by the
/// removal. Used to predict what server-side apply removes when kgitops takes over fields it no
/// longer applies. List elements addressed by `k:`/`v:`/`i:` are removed as a whole when their node
/// is a leaf or only held the element itself (`.`).
pub fn remove_fields(obj: &mut Value, fields: &Value) {
    fn walk(value: &mut Value, node: &Map<String, Value>) {
        match value {
            Value::Object(map) => {
                for (key, child) in node {
                    let Some(name) = key.strip_prefix("f:") else {
                        continue;
                    };
                    let Some(child) = child.as_object() else { continue };
                    let whole = child.keys().all(|k| k == ".");
                    if whole {
                        map.remove(name);
                    } else if let Some(v) = map.get_mut(name) {
                        walk(v, child);
                        if v.as_object().is_some_and(Map::is_empty) {
                            map.remove(name);
                        }
                    }
                }
            }
            Value::Array(items) => {
                let mut remove = Vec::new();
                for (i, item) in items.iter_mut().enumerate() {
                    let Some(child) = list_child(node, Some(item), i).and_then(Value::as_object) else {
                        continue;
                    };
                    if child.keys().all(|k| k == ".") {
                        remove.push(i);
                    } else {
                        walk(item, child);
                    }
                }
                for i in remove.into_iter().rev() {
                    items.remove(i);
                }
            }
            _ => {}
        }
    }
    if let Some(node) = fields.as_object() {
        walk(obj, node);
    }
}

/// Removes from the `FieldsV1` set `a` every leaf that is in `b` (and nodes left empty).
pub fn subtract(a: &Value, b: &Value) -> Value {
    fn walk(a: &Map<String, Value>, b: &Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        for (k, av) in a {
            match (av.as_object(), b.get(k).and_then(Value::as_object)) {
                (Some(am), Some(bm)) => {
                    if am.is_empty() || bm.is_empty() {
                        // A leaf in either set: owned by `b`.
                        continue;
                    }
                    let rest = walk(am, bm);
                    if rest.keys().any(|k| k != ".") {
                        out.insert(k.clone(), Value::Object(rest));
                    }
                }
                _ => {
                    out.insert(k.clone(), av.clone());
                }
            }
        }
        out
    }
    match (a.as_object(), b.as_object()) {
        (Some(am), Some(bm)) => Value::Object(walk(am, bm)),
        _ => a.clone(),
    }
}

/// Whether a forced server-side apply of `desired` by `manager` would leave `live` exactly as it
/// is, decided from `live` alone: every field `desired` sets is owned by `manager` in `live` with
/// the same value, and `manager` owns nothing that `desired` leaves out (which the apply would
/// remove). Atomic maps and lists (leaves of the field set holding structures) must be equal as a
/// whole. Conservative: any doubt (a value the server would canonicalize, a defaulted list key that
/// matches two elements, another API version) answers `false`, and the caller asks the server.
pub fn apply_is_noop(desired: &Value, live: &Value, manager: &str) -> bool {
    let api_version = desired.get("apiVersion");
    let Some(entry) = managed_fields(live).into_iter().find(|e| {
        e.manager == manager
            && e.operation == "Apply"
            && e.subresource.is_empty()
            && Some(&Value::String(e.api_version.clone())) == api_version
    }) else {
        return false;
    };
    let (Some(d), Some(fs), Some(l)) = (desired.as_object(), entry.fields.as_object(), live.as_object())
    else {
        return false;
    };
    // Identity is not part of field sets.
    let mut d = d.clone();
    d.remove("apiVersion");
    d.remove("kind");
    if let Some(meta) = d.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("name");
        meta.remove("namespace");
        if meta.is_empty() {
            d.remove("metadata");
        }
    }
    same_as_owned(&Value::Object(d), fs, &Value::Object(l.clone()))
}

fn is_leaf(node: &Map<String, Value>) -> bool {
    node.keys().all(|k| k == ".")
}

fn same_as_owned(desired: &Value, node: &Map<String, Value>, live: &Value) -> bool {
    if is_leaf(node) {
        return desired == live;
    }
    match desired {
        Value::Object(d) => {
            let Some(l) = live.as_object() else { return false };
            let owned: Vec<&String> = node.keys().filter(|k| k.as_str() != ".").collect();
            if owned.len() != d.len() {
                return false;
            }
            d.iter().all(|(key, dv)| {
                match (
                    node.get(&format!("f:{key}")).and_then(Value::as_object),
                    l.get(key),
                ) {
                    (Some(child), Some(lv)) => same_as_owned(dv, child, lv),
                    _ => false,
                }
            })
        }
        Value::Array(d) => {
            let Some(l) = live.as_array() else { return false };
            let children: Vec<(&String, &Value)> = node.iter().filter(|(k, _)| k.as_str() != ".").collect();
            if children.len() != d.len() {
                return false;
            }
            d.iter().enumerate().all(|(i, elem)| {
                let matches: Vec<&(&String, &Value)> = children
                    .iter()
                    .filter(|(key, _)| element_matches(key, elem, i))
                    .collect();
                let [(key, child)] = matches.as_slice() else {
                    return false;
                };
                let Some(child) = child.as_object() else {
                    return false;
                };
                match live_element(key, l, i) {
                    Some(lv) => same_as_owned(elem, child, lv),
                    None => false,
                }
            })
        }
        _ => false,
    }
}

/// Whether field-set list key `key` stands for desired element `elem` at `index`. Merge keys the
/// desired element leaves out (defaulted by the server, like a port's protocol) are not compared.
fn element_matches(key: &str, elem: &Value, index: usize) -> bool {
    if let Some(json) = key.strip_prefix("k:") {
        let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(json) else {
            return false;
        };
        let mut compared = 0;
        for (k, v) in &keys {
            match elem.get(k) {
                Some(ev) if ev == v => compared += 1,
                Some(_) => return false,
                None => {}
            }
        }
        compared > 0
    } else if let Some(json) = key.strip_prefix("v:") {
        serde_json::from_str::<Value>(json).ok().as_ref() == Some(elem)
    } else if let Some(i) = key.strip_prefix("i:") {
        i.parse::<usize>().ok() == Some(index)
    } else {
        false
    }
}

/// The live element a field-set list key stands for.
fn live_element<'a>(key: &str, live: &'a [Value], index: usize) -> Option<&'a Value> {
    if let Some(json) = key.strip_prefix("k:") {
        let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(json) else {
            return None;
        };
        live.iter()
            .find(|e| keys.iter().all(|(k, v)| e.get(k) == Some(v)))
    } else if let Some(json) = key.strip_prefix("v:") {
        let v = serde_json::from_str::<Value>(json).ok()?;
        live.iter().find(|e| **e == v)
    } else {
        key.strip_prefix("i:").and(live.get(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kafka() -> Value {
        json!({
            "apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka",
            "metadata": {"name": "main", "managedFields": [
                {"manager": "kgitops", "operation": "Apply", "apiVersion": "kafka.strimzi.io/v1beta2",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:kafka": {"f:version": {}}}}},
                {"manager": "kubectl-patch", "operation": "Update", "apiVersion": "kafka.strimzi.io/v1beta2",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:kafka": {"f:replicas": {}}}}},
                {"manager": "strimzi", "operation": "Update", "subresource": "status",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}
            ]},
            "spec": {"kafka": {"replicas": 7, "version": "3.9.0"}},
        })
    }

    #[test]
    fn finds_the_owner_of_a_path() {
        let obj = kafka();
        let path = FieldPath(vec![
            Seg::Key("spec".into()),
            Seg::Key("kafka".into()),
            Seg::Key("replicas".into()),
        ]);
        assert_eq!(owners(&obj, &path), vec!["kubectl-patch"]);
        assert_eq!(path.to_string(), "spec.kafka.replicas");
    }

    #[test]
    fn list_elements_by_merge_key() {
        let obj = json!({"metadata": {"managedFields": [{"manager": "m", "operation": "Apply",
            "fieldsV1": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}}]},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
        let path = FieldPath(vec![
            Seg::Key("spec".into()),
            Seg::Key("containers".into()),
            Seg::Index(0, Some("web".into())),
            Seg::Key("image".into()),
        ]);
        assert!(owns(&managed_fields(&obj)[0].fields, &obj, &path));
        assert_eq!(path.to_string(), "spec.containers[name=web].image");
        assert_eq!(
            leaf_paths(&managed_fields(&obj)[0].fields),
            vec!["spec.containers[name=web].image"]
        );
    }

    #[test]
    fn quotes_keys_with_dots() {
        let path = FieldPath(vec![
            Seg::Key("metadata".into()),
            Seg::Key("annotations".into()),
            Seg::Key("kgitops.io/prune".into()),
        ]);
        assert_eq!(path.to_string(), "metadata.annotations[\"kgitops.io/prune\"]");
    }

    #[test]
    fn lost_fields_compares_managers_before_and_after() {
        let before = kafka();
        let mut after = kafka();
        after["metadata"]["managedFields"][1]["fieldsV1"] = json!({});
        assert_eq!(
            lost_fields(&before, &after, "kgitops"),
            vec![(
                "kubectl-patch".to_string(),
                vec!["spec.kafka.replicas".to_string()]
            )]
        );
    }

    #[test]
    fn a_no_op_apply_is_recognized_from_live_state() {
        let live = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "n", "uid": "u", "labels": {"a": "1", "other": "x"},
                "managedFields": [{"manager": "kgitops", "operation": "Apply", "apiVersion": "apps/v1",
                    "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:selector": {},
                        "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}}}]},
            "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"spec": {"containers": [
                {"name": "app", "image": "defaulted?", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}}});
        let desired = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "n", "labels": {"a": "1"}},
            "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"spec": {"containers": [
                {"name": "app", "ports": [{"containerPort": 80}]}]}}}});
        assert!(apply_is_noop(&desired, &live, "kgitops"));
        // A changed value, a field left out (would be removed), a field not owned yet, an atomic
        // map that differs, another manager: all need the server.
        let mut changed = desired.clone();
        changed["metadata"]["labels"]["a"] = json!("2");
        assert!(!apply_is_noop(&changed, &live, "kgitops"));
        let mut dropped = desired.clone();
        dropped["metadata"].as_object_mut().unwrap().remove("labels");
        assert!(!apply_is_noop(&dropped, &live, "kgitops"));
        let mut added = desired.clone();
        added["metadata"]["labels"]["other"] = json!("x");
        assert!(!apply_is_noop(&added, &live, "kgitops"));
        let mut atomic = desired.clone();
        atomic["spec"]["selector"] = json!({"matchLabels": {}});
        assert!(!apply_is_noop(&atomic, &live, "kgitops"));
        assert!(!apply_is_noop(&desired, &live, "someone-else"));
    }

    #[test]
    fn union_subtract_and_remove() {
        let a = json!({"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {"f:x": {}}}});
        let b = json!({"f:data": {"f:b": {}}});
        let u = union(&a, &b);
        assert_eq!(
            u,
            json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:x": {}}}})
        );
        assert_eq!(subtract(&u, &b), a);
        let mut obj = json!({"data": {"a": "1", "b": "2"}, "metadata": {"labels": {"x": "1"}, "name": "n"}});
        remove_fields(&mut obj, &a);
        assert_eq!(obj, json!({"data": {"b": "2"}, "metadata": {"name": "n"}}));
    }
}
