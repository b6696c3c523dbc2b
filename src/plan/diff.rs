//! Per-object comparison: a unified diff of two (normalized, masked) objects as YAML, and the list of
//! changed fields with the managers that own each one live. Pure: the offline diff between two
//! revisions uses it as it is, without a cluster.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use similar::TextDiff;

use super::FieldChange;
use super::fields::{self, FieldPath, Seg};
use crate::manifest::yaml::to_yaml;

/// Lines of context around each hunk.
pub const CONTEXT_LINES: usize = 3;

/// Objects whose YAML has more lines than this, both sides together, get [`too_large`]'s summary
/// line instead of a diff: a diff that size is unreadable in a terminal or a PR comment, and the
/// diff algorithm (Myers, O(N·D)) could take minutes on it.
pub const MAX_DIFF_LINES: usize = 20_000;

/// How long one object's diff may search for the smallest diff. Past it the diff is finished
/// quickly and is still correct (applying it gives the new side), only less minimal.
pub const DIFF_TIMEOUT: Duration = Duration::from_millis(500);

/// A unified diff between two objects rendered as YAML; `None` stands for "absent" (creation or
/// deletion). Empty when both render the same. Headers are `a/<label>` and `b/<label>`. Bounded in
/// time: [`MAX_DIFF_LINES`] and [`DIFF_TIMEOUT`].
pub fn unified(label: &str, before: Option<&Value>, after: Option<&Value>) -> String {
    let old = before.map(to_yaml).unwrap_or_default();
    let new = after.map(to_yaml).unwrap_or_default();
    if old == new {
        return String::new();
    }
    let lines = old.lines().count() + new.lines().count();
    if lines > MAX_DIFF_LINES {
        return too_large(label, &old, &new, lines);
    }
    let diff = TextDiff::configure().timeout(DIFF_TIMEOUT).diff_lines(&old, &new);
    let old_header = if before.is_some() {
        format!("a/{label}")
    } else {
        "/dev/null".to_string()
    };
    let new_header = if after.is_some() {
        format!("b/{label}")
    } else {
        "/dev/null".to_string()
    };
    diff.unified_diff()
        .context_radius(CONTEXT_LINES)
        .header(&old_header, &new_header)
        .to_string()
}

/// The summary that stands for the diff of an object over [`MAX_DIFF_LINES`]:
/// `ConfigMap/ns/x: 12345 lines removed, 12001 added (diff too large to show: 40000 lines, the
/// limit is 20000)`. Lines are counted as a multiset (linear time): a line that only moved is not
/// counted.
fn too_large(label: &str, old: &str, new: &str, lines: usize) -> String {
    let mut balance: HashMap<&str, i64> = HashMap::new();
    for line in old.lines() {
        *balance.entry(line).or_default() += 1;
    }
    for line in new.lines() {
        *balance.entry(line).or_default() -= 1;
    }
    let removed: i64 = balance.values().filter(|&&n| n > 0).sum();
    let added: i64 = balance.values().filter(|&&n| n < 0).map(|n| -n).sum();
    format!(
        "{label}: {removed} lines removed, {added} added (diff too large to show: {lines} lines, the limit is {MAX_DIFF_LINES})\n"
    )
}

/// The changed leaves between `before` and `after` (both normalized and masked). Each change names
/// the managers that own the field in `live` (the raw live object, with managedFields), except
/// `own_manager`: those are who changed it away from what kgitops applied.
pub fn field_changes(
    before: &Value,
    after: &Value,
    live: Option<&Value>,
    own_manager: &str,
) -> Vec<FieldChange> {
    let mut raw = Vec::new();
    walk(Some(before), Some(after), &mut Vec::new(), &mut raw);
    raw.into_iter()
        .map(|(path, b, a)| {
            let managers = live
                .map(|live| fields::owners(live, &path))
                .unwrap_or_default()
                .into_iter()
                .filter(|m| m != own_manager)
                .collect();
            FieldChange {
                path: path.to_string(),
                before: b,
                after: a,
                managers,
            }
        })
        .collect()
}

type RawChange = (FieldPath, Option<Value>, Option<Value>);

fn element_name(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str)
}

fn walk(before: Option<&Value>, after: Option<&Value>, path: &mut Vec<Seg>, out: &mut Vec<RawChange>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                path.push(Seg::Key(key.clone()));
                walk(b.get(key), a.get(key), path, out);
                path.pop();
            }
        }
        (Some(Value::Array(b)), Some(Value::Array(a))) => {
            let named = |items: &Vec<Value>| items.iter().all(|v| element_name(v).is_some());
            if !b.is_empty() && !a.is_empty() && named(b) && named(a) {
                // Lists of named elements (containers, ports, env, volumes): match by name.
                for (i, item) in b.iter().enumerate() {
                    let name = element_name(item).map(str::to_string);
                    let other = a.iter().find(|o| element_name(o) == name.as_deref());
                    path.push(Seg::Index(i, name));
                    walk(Some(item), other, path, out);
                    path.pop();
                }
                for (i, item) in a.iter().enumerate() {
                    let name = element_name(item);
                    if !b.iter().any(|o| element_name(o) == name) {
                        path.push(Seg::Index(i, name.map(str::to_string)));
                        walk(None, Some(item), path, out);
                        path.pop();
                    }
                }
            } else if a.len() == b.len() && a.iter().all(|v| v.is_object() || v.is_array()) {
                for (i, (bi, ai)) in b.iter().zip(a).enumerate() {
                    path.push(Seg::Index(i, None));
                    walk(Some(bi), Some(ai), path, out);
                    path.pop();
                }
            } else {
                out.push((FieldPath(path.clone()), before.cloned(), after.cloned()));
            }
        }
        _ => out.push((FieldPath(path.clone()), before.cloned(), after.cloned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unified_diff_has_headers_and_hunks() {
        let before = json!({"spec": {"replicas": 3}});
        let after = json!({"spec": {"replicas": 7}});
        let text = unified("Kafka/ns/main", Some(&before), Some(&after));
        assert!(
            text.starts_with("--- a/Kafka/ns/main\n+++ b/Kafka/ns/main\n"),
            "{text}"
        );
        assert!(text.contains("-  replicas: 3\n+  replicas: 7\n"), "{text}");
        assert_eq!(unified("x", Some(&before), Some(&before)), "");
    }

    fn big_config_map(lines: usize, tag: &str) -> Value {
        let text: String = (0..lines).map(|i| format!("{tag} line {i}\n")).collect();
        json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"big": text}})
    }

    #[test]
    fn an_object_over_the_line_limit_gets_a_summary_line() {
        let before = big_config_map(MAX_DIFF_LINES / 2 + 10, "old");
        let after = big_config_map(MAX_DIFF_LINES / 2 + 10, "new");
        let text = unified("ConfigMap/ns/x", Some(&before), Some(&after));
        assert_eq!(
            text,
            format!(
                "ConfigMap/ns/x: 10010 lines removed, 10010 added (diff too large to show: {} lines, the limit is {MAX_DIFF_LINES})\n",
                2 * (MAX_DIFF_LINES / 2 + 10) + 8
            )
        );
    }

    #[test]
    fn creation_diffs_against_dev_null() {
        let text = unified("ConfigMap/ns/a", None, Some(&json!({"data": {"a": "b"}})));
        assert!(
            text.starts_with("--- /dev/null\n+++ b/ConfigMap/ns/a\n"),
            "{text}"
        );
    }

    #[test]
    fn field_changes_name_the_manager_that_owns_the_live_value() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kgitops", "operation": "Apply", "fieldsV1": {"f:spec": {"f:kafka": {"f:version": {}}}}},
            {"manager": "kubectl-patch", "operation": "Update", "fieldsV1": {"f:spec": {"f:kafka": {"f:replicas": {}}}}}
        ]}, "spec": {"kafka": {"replicas": 7, "version": "3.9.0"}}});
        let before = json!({"spec": {"kafka": {"replicas": 7, "version": "3.9.0"}}});
        let after = json!({"spec": {"kafka": {"replicas": 3, "version": "3.9.1"}}});
        let changes = field_changes(&before, &after, Some(&live), "kgitops");
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].path, "spec.kafka.replicas");
        assert_eq!(changes[0].before, Some(json!(7)));
        assert_eq!(changes[0].after, Some(json!(3)));
        assert_eq!(changes[0].managers, vec!["kubectl-patch"]);
        assert_eq!(changes[1].path, "spec.kafka.version");
        assert!(
            changes[1].managers.is_empty(),
            "a change made in git has no other manager"
        );
    }

    #[test]
    fn named_list_elements_are_matched_by_name() {
        let before = json!({"c": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]});
        let after = json!({"c": [{"name": "b", "image": "y:2"}, {"name": "a", "image": "x:1"}]});
        let changes = field_changes(&before, &after, None, "kgitops");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "c[name=b].image");
    }
}
