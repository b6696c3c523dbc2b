//! Presentation: plans and change sets as text, Markdown and JSON. The stages never format their
//! own output; they hand values here. Everything here works from the serializable, already masked
//! [`Plan`] and [`ChangeSet`], so the offline PR diff prints with the same functions.

use std::fmt::Write as _;

use serde_json::Value;

use crate::apply::{ChangeSet, Outcome};
use crate::plan::gate::Blocked;
use crate::plan::in_effect::{Effect, NotInEffect};
use crate::plan::{Action, FieldChange, Plan, PlanEntry};

/// Longest diff (in lines) shown per object in Markdown; longer ones are cut with a note.
pub const MARKDOWN_DIFF_LINES: usize = 200;

fn value_text(v: &Option<Value>) -> String {
    match v {
        None => "(absent)".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `spec.kafka.replicas: 7 -> 3, changed by kubectl-patch`
pub fn field_change_line(c: &FieldChange) -> String {
    let mut line = format!(
        "{}: {} -> {}",
        c.path,
        value_text(&c.before),
        value_text(&c.after)
    );
    if !c.managers.is_empty() {
        let _ = write!(line, ", changed by {}", c.managers.join(", "));
    }
    line
}

fn summary(plan: &Plan) -> String {
    let counts = plan.counts();
    let n = |a: Action| counts.get(&a).copied().unwrap_or(0);
    format!(
        "{} to create, {} to update, {} to recreate, {} to delete, {} unchanged",
        n(Action::Create),
        n(Action::Update),
        n(Action::Recreate),
        n(Action::DeleteCandidate),
        n(Action::Unchanged)
    )
}

fn changed(plan: &Plan) -> impl Iterator<Item = &PlanEntry> {
    plan.entries.iter().filter(|e| e.action.is_change())
}

/// The plan as text: per changed object a header, its notes, its drifted fields and its diff; then
/// a summary line.
pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    for e in changed(plan) {
        let _ = writeln!(out, "{} ({})", e.object, e.action);
        for note in &e.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        for c in e.changes.iter().filter(|c| !c.managers.is_empty()) {
            let _ = writeln!(out, "  drift: {}", field_change_line(c));
        }
        out.push_str(&e.diff);
        if !e.diff.is_empty() && !e.diff.ends_with('\n') {
            out.push('\n');
        }
    }
    let _ = writeln!(out, "cluster {}: {}", plan.cluster, summary(plan));
    blocked_text(&mut out, &plan.blocked);
    not_in_effect_text(&mut out, &plan.not_in_effect);
    out
}

/// The heading of the gates a revision waits for ([`crate::plan::gate`]).
pub const WAITING_HEADING: &str =
    "WAITING (nothing of this revision is applied until the live state allows it)";

/// The gates a revision waits for, one line each (nothing when there is none).
pub fn blocked_text(out: &mut String, blocked: &[Blocked]) {
    if blocked.is_empty() {
        return;
    }
    let _ = writeln!(out, "{WAITING_HEADING}:");
    for b in blocked {
        let _ = writeln!(out, "  {b}");
    }
}

fn blocked_markdown(out: &mut String, blocked: &[Blocked]) {
    if blocked.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n#### {WAITING_HEADING}\n");
    for b in blocked {
        let _ = writeln!(
            out,
            "- `{}`: {} needs {}, live: {}",
            b.object, b.change, b.needs, b.live
        );
    }
}

/// The headings of the two effects.
fn heading(effect: Effect) -> &'static str {
    match effect {
        Effect::Ignored => "NOT IN EFFECT (accepted, but the Strimzi operator did not carry it out)",
        Effect::Warned => "Strimzi warns (in effect)",
    }
}

/// What is not in effect as text: one block per effect, one line per entry.
fn not_in_effect_text(out: &mut String, list: &[NotInEffect]) {
    for effect in [Effect::Ignored, Effect::Warned] {
        let mut entries = list.iter().filter(|n| n.effect == effect).peekable();
        if entries.peek().is_none() {
            continue;
        }
        let _ = writeln!(out, "{}:", heading(effect));
        for n in entries {
            let _ = writeln!(out, "  {}", n.line());
        }
    }
}

/// What is not in effect as Markdown: one table per effect.
fn not_in_effect_markdown(out: &mut String, list: &[NotInEffect]) {
    for effect in [Effect::Ignored, Effect::Warned] {
        let entries: Vec<&NotInEffect> = list.iter().filter(|n| n.effect == effect).collect();
        if entries.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n#### {}\n", heading(effect));
        out.push_str("| Object | Field | Reason | Strimzi says |\n|---|---|---|---|\n");
        for n in entries {
            let by = if n.reported_by == n.object {
                String::new()
            } else {
                format!(" (reported by `{}`)", n.reported_by)
            };
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {}{by} |",
                n.object,
                n.field,
                n.reason,
                n.message.replace('|', "\\|")
            );
        }
    }
}

/// The plan as Markdown (a PR comment): a summary table, then a collapsible section per changed
/// object with a fenced diff, cut after [`MARKDOWN_DIFF_LINES`] lines.
pub fn plan_markdown(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### kgitops plan for cluster `{}`\n", plan.cluster);
    let _ = writeln!(out, "{}\n", summary(plan));
    let changed: Vec<&PlanEntry> = changed(plan).collect();
    if changed.is_empty() {
        out.push_str("No changes.\n");
        blocked_markdown(&mut out, &plan.blocked);
        not_in_effect_markdown(&mut out, &plan.not_in_effect);
        return out;
    }
    out.push_str("| Object | Action | Drift |\n|---|---|---|\n");
    for e in &changed {
        let drift: Vec<String> = e
            .changes
            .iter()
            .filter(|c| !c.managers.is_empty())
            .map(|c| format!("`{}` by {}", c.path, c.managers.join(", ")))
            .collect();
        let _ = writeln!(out, "| `{}` | {} | {} |", e.object, e.action, drift.join("<br>"));
    }
    out.push('\n');
    for e in &changed {
        let _ = writeln!(
            out,
            "<details><summary><code>{}</code> ({})</summary>\n",
            e.object, e.action
        );
        object_markdown(&mut out, e);
        out.push_str("\n</details>\n\n");
    }
    blocked_markdown(&mut out, &plan.blocked);
    not_in_effect_markdown(&mut out, &plan.not_in_effect);
    out
}

/// One object's notes and fenced diff, cut after [`MARKDOWN_DIFF_LINES`] lines.
fn object_markdown(out: &mut String, e: &PlanEntry) {
    for note in &e.notes {
        let _ = writeln!(out, "> {note}\n");
    }
    let lines: Vec<&str> = e.diff.lines().collect();
    out.push_str("```diff\n");
    for line in lines.iter().take(MARKDOWN_DIFF_LINES) {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("```\n");
    if lines.len() > MARKDOWN_DIFF_LINES {
        let _ = writeln!(
            out,
            "\n_Diff cut: {} more lines._",
            lines.len() - MARKDOWN_DIFF_LINES
        );
    }
}

/// Largest Markdown comment [`fleet_markdown`] writes, in bytes: GitHub refuses comments over
/// 65,536 characters, so diffs past this budget are left out with a note saying how to see them.
pub const MARKDOWN_COMMENT_BUDGET: usize = 60_000;

/// The offline diff of several clusters between two revisions, as JSON (`--output json`), stable:
///
/// ```json
/// {"from": "main", "to": "HEAD", "changed": true,
///  "clusters": [ /* one Plan per cluster, as `diff --live --output json` prints it */ ]}
/// ```
#[derive(Debug, serde::Serialize)]
pub struct FleetDiff<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub changed: bool,
    pub clusters: &'a [Plan],
}

fn count(plan: &Plan, action: Action) -> usize {
    plan.entries.iter().filter(|e| e.action == action).count()
}

/// Several clusters' plans as text: each cluster's [`plan_text`] in turn.
pub fn fleet_text(plans: &[Plan]) -> String {
    plans.iter().map(plan_text).collect()
}

/// The offline diff as a pull-request comment: a summary table (one row per cluster), then per
/// changed cluster a collapsible section with one fenced diff per changed object. Per-object diffs
/// are cut after [`MARKDOWN_DIFF_LINES`] lines and the whole comment stays under
/// [`MARKDOWN_COMMENT_BUDGET`]; whatever is left out is named with the command that shows it.
pub fn fleet_markdown(plans: &[Plan], from: &str, to: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## kgitops diff `{from}` → `{to}`\n");
    out.push_str("| Cluster | Create | Update | Delete | Unchanged |\n|---|---:|---:|---:|---:|\n");
    for p in plans {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            p.cluster,
            count(p, Action::Create),
            count(p, Action::Update) + count(p, Action::Recreate),
            count(p, Action::DeleteCandidate),
            count(p, Action::Unchanged)
        );
    }
    out.push('\n');
    if !plans.iter().any(Plan::has_changes) {
        out.push_str("No changes in any cluster.\n");
        return out;
    }
    let mut omitted: Vec<String> = Vec::new();
    for p in plans.iter().filter(|p| p.has_changes()) {
        let _ = writeln!(
            out,
            "<details><summary>Cluster <code>{}</code>: {}</summary>\n",
            p.cluster,
            summary(p)
        );
        for e in changed(p) {
            let mut section = String::new();
            let _ = writeln!(section, "#### `{}` ({})\n", e.object, e.action);
            object_markdown(&mut section, e);
            section.push('\n');
            if out.len() + section.len() > MARKDOWN_COMMENT_BUDGET {
                omitted.push(format!("`{}` in `{}`", e.object, p.cluster));
            } else {
                out.push_str(&section);
            }
        }
        out.push_str("</details>\n\n");
    }
    if !omitted.is_empty() {
        let _ = writeln!(
            out,
            "_{} diff(s) left out to keep this comment under GitHub's size limit; run \
             `kgitops diff --from {from} --to {to} --cluster NAME` to see them._",
            omitted.len()
        );
    }
    out
}

/// Any serializable report as pretty JSON (stable field names; Secret values already masked).
pub fn json<T: serde::Serialize>(value: &T) -> String {
    // Plans and change sets are plain data (strings, numbers, maps): serializing cannot fail.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// The change set as text, as `kubectl apply` prints it: one line per object that changed
/// (`Kafka/kafka-dev/main configured`), the fields other managers lost, then the unchanged count and
/// health.
pub fn change_set_text(set: &ChangeSet) -> String {
    let mut out = String::new();
    let suffix = if set.dry_run { " (dry run)" } else { "" };
    let mut unchanged = 0;
    for c in &set.changes {
        if c.outcome == Outcome::Unchanged {
            unchanged += 1;
            continue;
        }
        let _ = writeln!(out, "{} {}{suffix}", c.object, c.outcome);
        for conflict in &c.conflicts {
            let _ = writeln!(out, "  {} lost {}", conflict.manager, conflict.fields.join(", "));
        }
        for note in &c.notes {
            let _ = writeln!(out, "  note: {note}");
        }
    }
    let _ = writeln!(out, "{unchanged} unchanged");
    health_lines(&mut out, set, "", "", "  ");
    not_in_effect_text(&mut out, &set.not_in_effect);
    out
}

/// One line per health result (`<prefix>object healthy: Ready`) and one per warning.
fn health_lines(out: &mut String, set: &ChangeSet, prefix: &str, quote: &str, indent: &str) {
    for h in &set.health {
        let state = match h.state {
            _ if h.healthy => "healthy",
            crate::apply::HealthState::Paused => "paused",
            crate::apply::HealthState::Refused => "refused",
            _ => "unhealthy",
        };
        let _ = writeln!(out, "{prefix}{quote}{}{quote} {state}: {}", h.object, h.message);
        for w in &h.warnings {
            let _ = writeln!(out, "{indent}{prefix}warning: {w}");
        }
    }
}

/// The change set as Markdown: a table of the objects that changed.
pub fn change_set_markdown(set: &ChangeSet) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### kgitops apply to cluster `{}`{}\n",
        set.cluster,
        if set.dry_run { " (dry run)" } else { "" }
    );
    let changed: Vec<_> = set
        .changes
        .iter()
        .filter(|c| c.outcome != Outcome::Unchanged)
        .collect();
    let unchanged = set.changes.len() - changed.len();
    if !changed.is_empty() {
        out.push_str("| Object | Result | Notes |\n|---|---|---|\n");
        for c in &changed {
            let mut notes: Vec<String> = c
                .conflicts
                .iter()
                .map(|k| format!("{} lost {}", k.manager, k.fields.join(", ")))
                .collect();
            notes.extend(c.notes.iter().cloned());
            let _ = writeln!(out, "| `{}` | {} | {} |", c.object, c.outcome, notes.join("<br>"));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{unchanged} unchanged.");
    health_lines(&mut out, set, "- ", "`", "  ");
    not_in_effect_markdown(&mut out, &set.not_in_effect);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{Change, Conflict};
    use crate::manifest::ResId;
    use crate::plan::compare;
    use serde_json::json;

    fn id(kind: &str, name: &str) -> ResId {
        ResId::of(&json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "ns"}}))
            .unwrap()
    }

    fn sample_plan() -> Plan {
        let live = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "ns"},
            "data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="}});
        let desired = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "ns"},
            "data": {"password": "czNjcjN0", "user": "YWRtaW4=", "token": "dG9rZW4="}});
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"},
            "data": {"a": "b"}});
        Plan {
            cluster: "dev".into(),
            revision: None,
            entries: vec![
                compare(&id("Secret", "db"), Some(&live), Some(&desired), None),
                compare(&id("ConfigMap", "c"), None, Some(&cm), None),
                compare(&id("ConfigMap", "same"), Some(&cm), Some(&cm), None),
            ],
            not_in_effect: vec![],
            blocked: vec![],
        }
    }

    #[test]
    fn plan_reports_never_show_secret_values() {
        let plan = sample_plan();
        for text in [plan_text(&plan), plan_markdown(&plan), json(&plan)] {
            for secret in [
                "aHVudGVyMg==",
                "hunter2",
                "czNjcjN0",
                "s3cr3t",
                "dG9rZW4=",
                "YWRtaW4=",
            ] {
                assert!(!text.contains(secret), "{secret} leaked:\n{text}");
            }
            assert!(text.contains("password"), "changed key named:\n{text}");
        }
        insta::assert_snapshot!("plan_text", plan_text(&plan));
        insta::assert_snapshot!("plan_markdown", plan_markdown(&plan));
    }

    #[test]
    fn change_set_text_is_one_line_per_change() {
        let mut configured = Change {
            object: "Kafka/ns/main".into(),
            id: id("Kafka", "main"),
            outcome: Outcome::Configured,
            conflicts: vec![Conflict {
                manager: "kubectl-patch".into(),
                fields: vec!["spec.kafka.replicas".into()],
            }],
            notes: vec![],
        };
        configured.id.gvk = crate::manifest::Gvk::from_api_version("kafka.strimzi.io/v1beta2", "Kafka");
        let set = ChangeSet {
            cluster: "dev".into(),
            revision: None,
            dry_run: false,
            inventory: "ConfigMap/ns/kgitops-dev".into(),
            applyset_id: "applyset-x-v1".into(),
            changes: vec![
                configured,
                Change {
                    object: "ConfigMap/ns/new".into(),
                    id: id("ConfigMap", "new"),
                    outcome: Outcome::Created,
                    conflicts: vec![],
                    notes: vec![],
                },
                Change {
                    object: "ConfigMap/ns/same".into(),
                    id: id("ConfigMap", "same"),
                    outcome: Outcome::Unchanged,
                    conflicts: vec![],
                    notes: vec![],
                },
            ],
            health: vec![],
            not_in_effect: vec![],
        };
        insta::assert_snapshot!("change_set_text", change_set_text(&set));
        insta::assert_snapshot!("change_set_markdown", change_set_markdown(&set));
    }
}
