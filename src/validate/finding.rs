//! What validation reports: [`Finding`]s, and a [`Report`] of them printed as text or JSON.

use std::fmt::Write as _;

use serde::Serialize;

/// How bad a finding is. Errors fail `kgitops validate` (exit 1); warnings are printed only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem in one object of one cluster.
///
/// The JSON form uses these field names, which are stable: `severity` (`error`|`warning`), `rule`
/// (an id from [`crate::validate::RULES`]), `cluster`, `object` (`Kind/namespace/name` or
/// `Kind/name`), `path` (JSON field path in the object, `spec.kafka.replicas`, `spec.ports[0].port`,
/// `metadata.labels[app]`; empty for the object as a whole), `message`, `fix`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub rule: String,
    pub cluster: String,
    pub object: String,
    pub path: String,
    pub message: String,
    pub fix: String,
}

/// The findings of one `validate` run over one or more clusters.
///
/// JSON form (stable): `{"clusters": [names], "errors": n, "warnings": n, "findings": [Finding]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Clusters that were validated, in the order given.
    pub clusters: Vec<String>,
    pub errors: usize,
    pub warnings: usize,
    /// Sorted by cluster, then severity (errors first), object, path and rule.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Builds a report; sorts the findings and counts them.
    pub fn new(clusters: Vec<String>, mut findings: Vec<Finding>) -> Report {
        findings.sort_by(|a, b| {
            (&a.cluster, a.severity, &a.object, &a.path, &a.rule, &a.message)
                .cmp(&(&b.cluster, b.severity, &b.object, &b.path, &b.rule, &b.message))
        });
        findings.dedup();
        let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
        Report {
            clusters,
            errors,
            warnings: findings.len() - errors,
            findings,
        }
    }

    /// True when any finding is an error (exit code 1).
    pub fn has_errors(&self) -> bool {
        self.errors > 0
    }

    /// Human-readable form, one block per finding:
    ///
    /// ```text
    /// error[kafka-rf-above-brokers] dev: Kafka/kafka-dev/main spec.kafka.config[default.replication.factor]
    ///   default.replication.factor is 3 but the cluster has 2 brokers
    ///   fix: ...
    /// ```
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let _ = write!(
                out,
                "{}[{}] {}: {}",
                f.severity.as_str(),
                f.rule,
                f.cluster,
                f.object
            );
            if !f.path.is_empty() {
                let _ = write!(out, " {}", f.path);
            }
            let _ = writeln!(out, "\n  {}", f.message);
            if !f.fix.is_empty() {
                let _ = writeln!(out, "  fix: {}", f.fix);
            }
        }
        let _ = writeln!(
            out,
            "{} error(s), {} warning(s) in {} cluster(s): {}",
            self.errors,
            self.warnings,
            self.clusters.len(),
            self.clusters.join(", ")
        );
        out
    }

    /// The stable JSON form, pretty-printed.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(cluster: &str, severity: Severity, rule: &str) -> Finding {
        Finding {
            severity,
            rule: rule.into(),
            cluster: cluster.into(),
            object: "Kafka/ns/main".into(),
            path: "spec.kafka.replicas".into(),
            message: "m".into(),
            fix: "f".into(),
        }
    }

    #[test]
    fn report_sorts_counts_and_prints() {
        let report = Report::new(
            vec!["dev".into(), "prod".into()],
            vec![
                finding("prod", Severity::Warning, "b"),
                finding("dev", Severity::Warning, "a"),
                finding("dev", Severity::Error, "c"),
            ],
        );
        assert_eq!((report.errors, report.warnings), (1, 2));
        assert!(report.has_errors());
        let rules: Vec<_> = report.findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, ["c", "a", "b"]);
        let text = report.to_text();
        assert!(
            text.starts_with("error[c] dev: Kafka/ns/main spec.kafka.replicas\n  m\n  fix: f\n"),
            "{text}"
        );
        assert!(
            text.ends_with("1 error(s), 2 warning(s) in 2 cluster(s): dev, prod\n"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["findings"][0]["severity"], "error");
        assert_eq!(json["errors"], 1);
    }
}
