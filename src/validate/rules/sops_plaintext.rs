//! `sops-plaintext-secret`: a Secret kept in plain text at a path the repository declares
//! encrypted (a `creation_rules[].path_regex` of the `.sops.yaml` at its root, as sops chooses the
//! rule for a file). This rule reads the repository's files, not a render: a plain Secret there
//! renders the same as a decrypted one, so only the file tells them apart.

use serde_json::Value;

use super::super::finding::{Finding, Severity};
use crate::manifest::yaml::{Limits, parse_documents};
use crate::render::sops;
use crate::source::{EntryKind, FileTree, TreePath};

/// The rule's id in the table.
pub const ID: &str = "sops-plaintext-secret";

/// What a finding of this rule names as its cluster.
pub const REPOSITORY: &str = "(repository)";

/// The part of `.sops.yaml` this rule reads.
#[derive(Debug, serde::Deserialize)]
struct SopsConfig {
    #[serde(default)]
    creation_rules: Vec<CreationRule>,
}

#[derive(Debug, serde::Deserialize)]
struct CreationRule {
    #[serde(default)]
    path_regex: Option<String>,
}

/// Most files this check reads (a tree is bounded by the source limits; this keeps a huge
/// vendored tree from costing more than the renders do).
const MAX_FILES: usize = 20_000;

/// The findings for `tree`: one error per plain-text Secret file under an encrypted path, and one
/// when `.sops.yaml` cannot be read. Nothing when the repository has no `.sops.yaml`.
pub fn check(tree: &dyn FileTree) -> Vec<Finding> {
    let limits = Limits::DEFAULT;
    let finding = |object: String, message: String| Finding {
        severity: Severity::Error,
        rule: ID.to_string(),
        // About the repository, not one cluster's render.
        cluster: REPOSITORY.to_string(),
        object,
        path: String::new(),
        message,
        fix: super::rule(ID).map(|r| r.fix.to_string()).unwrap_or_default(),
    };
    let Ok(config_path) = TreePath::new(".sops.yaml") else {
        return Vec::new();
    };
    let text = match tree.read(&config_path, limits.max_bytes) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => return Vec::new(),
    };
    let config: SopsConfig = match crate::manifest::yaml::parse_typed(&text, ".sops.yaml", &limits) {
        Ok(c) => c,
        Err(e) => return vec![finding(".sops.yaml".into(), format!("cannot be read: {e}"))],
    };
    let mut regexes = Vec::new();
    for rule in &config.creation_rules {
        // A rule without path_regex matches every file (sops' catch-all).
        let pattern = rule.path_regex.as_deref().unwrap_or("");
        match regex::Regex::new(pattern) {
            Ok(r) => regexes.push(r),
            Err(e) => {
                return vec![finding(
                    ".sops.yaml".into(),
                    format!("path_regex {pattern:?}: {e}"),
                )];
            }
        }
    }
    if regexes.is_empty() {
        return Vec::new();
    }
    let mut findings = Vec::new();
    let mut files = Vec::new();
    collect_files(tree, TreePath::root(), 0, &mut files);
    for path in files.into_iter().take(MAX_FILES) {
        let name = path.to_string();
        if !(name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
            || name == ".sops.yaml"
        {
            continue;
        }
        if !regexes.iter().any(|r| r.is_match(&name)) {
            continue;
        }
        let Ok(bytes) = tree.read(&path, limits.max_bytes) else {
            continue;
        };
        if sops::is_encrypted(&path, &bytes, &limits) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        let Ok(docs) = parse_documents(text, &name, &limits) else {
            continue;
        };
        for doc in docs.iter().filter(|d| crate::manifest::is_secret(d)) {
            let secret = doc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("?");
            findings.push(finding(
                name.clone(),
                format!(
                    "Secret {secret:?} is in plain text, but .sops.yaml declares files matching this path encrypted"
                ),
            ));
        }
    }
    findings
}

/// Deepest directory walked (a symlinked directory loop ends here).
const MAX_DEPTH: usize = 64;

fn collect_files(tree: &dyn FileTree, dir: TreePath, depth: usize, out: &mut Vec<TreePath>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(names) = tree.list(&dir) else {
        return;
    };
    for name in names {
        if out.len() >= MAX_FILES || name == ".git" {
            continue;
        }
        let Ok(path) = dir.join(&name) else {
            continue;
        };
        match tree.kind(&path) {
            Ok(Some(EntryKind::Dir)) => collect_files(tree, path, depth + 1, out),
            Ok(Some(EntryKind::File)) => out.push(path),
            _ => {}
        }
    }
}
