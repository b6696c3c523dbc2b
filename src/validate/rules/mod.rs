//! The rule table: every check `kgitops validate` makes, as data ([`Rule`]: id, severity, what, why,
//! fix, check), documented one row each in `src/validate/RULES.md` (generated from this table and
//! kept in sync by a test).
//!
//! A rule looks at one cluster's render ([`Snapshot`]) and, when validating a change, also at the
//! render of the base revision (`from`). [`Scope::Revision`] rules judge the head revision alone;
//! [`Scope::Change`] rules compare base and head and stay silent without a base. Schema rules are
//! listed here for their documentation; the schema walker in [`super::schema`] reports them.

mod checks;
mod strimzi;

use serde_json::Value;

use super::finding::{Finding, Severity};
pub use strimzi::{KafkaCr, STRIMZI_VERSION, SUPPORTED_KAFKA_VERSIONS};

/// What a rule looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Each object against its schema.
    Schema,
    /// The head revision alone.
    Revision,
    /// Base and head revisions together (`--from/--to`, the PR diff).
    Change,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Schema => "schema",
            Scope::Revision => "revision",
            Scope::Change => "change",
        }
    }
}

/// One rule of the table.
pub struct Rule {
    /// Stable id, printed in findings (`kafka-rf-above-brokers`).
    pub id: &'static str,
    pub severity: Severity,
    pub scope: Scope,
    /// What the rule finds.
    pub what: &'static str,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix it (a finding may say it more precisely).
    pub fix: &'static str,
    /// The check; `None` for schema rules, which the schema walker reports.
    pub(crate) check: Option<CheckFn>,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub(crate) type CheckFn = fn(&Context<'_>) -> Vec<Hit>;

/// What a check found: the object, field path and message; the rule adds id, severity and fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hit {
    pub object: String,
    pub path: String,
    pub message: String,
    /// A fix more precise than the rule's own.
    pub fix: Option<String>,
}

/// One revision of one cluster's render, with the Strimzi `Kafka` resources picked out.
pub struct Snapshot<'a> {
    pub objects: &'a [Value],
    pub kafkas: Vec<KafkaCr<'a>>,
}

impl<'a> Snapshot<'a> {
    pub fn new(objects: &'a [Value]) -> Snapshot<'a> {
        Snapshot {
            objects,
            kafkas: objects.iter().filter_map(KafkaCr::from_object).collect(),
        }
    }

    /// Objects of one kind (core or any group) in one namespace.
    pub(crate) fn of_kind<'s>(
        &'s self,
        api_version: &'s str,
        kind: &'s str,
        namespace: Option<&'s str>,
    ) -> impl Iterator<Item = &'a Value> + 's {
        self.objects.iter().filter(move |o| {
            o.get("kind").and_then(Value::as_str) == Some(kind)
                && o.get("apiVersion").and_then(Value::as_str) == Some(api_version)
                && namespace_of(o) == namespace
        })
    }

    /// The same Kafka in this snapshot (by namespace and name).
    pub(crate) fn kafka(&self, other: &KafkaCr<'_>) -> Option<&KafkaCr<'a>> {
        self.kafkas
            .iter()
            .find(|k| k.name == other.name && k.namespace == other.namespace)
    }
}

pub(crate) fn namespace_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// What a check sees: the head revision and, for a change, the base revision.
pub struct Context<'a> {
    pub to: Snapshot<'a>,
    pub from: Option<Snapshot<'a>>,
}

/// The rule table, in documentation order.
pub static RULES: &[Rule] = &[
    Rule {
        id: "schema-not-an-object",
        severity: Severity::Error,
        scope: Scope::Schema,
        what: "A rendered document without `apiVersion`, `kind` or `metadata.name`.",
        why: "The apiserver cannot identify, store or apply it.",
        fix: "Give every document apiVersion, kind and metadata.name.",
        check: None,
    },
    Rule {
        id: "schema-unknown-kind",
        severity: Severity::Error,
        scope: Scope::Schema,
        what: "An apiVersion/kind that is neither built into the pinned Kubernetes version nor defined by a CRD \
               from `--crds` or the render (also: a CRD version that is not served).",
        why: "The apiserver rejects it (`no matches for kind`), so the whole apply of the revision fails.",
        fix: "Use a served apiVersion, or pass the CRD with `--crds` / include it in the repository.",
        check: None,
    },
    Rule {
        id: "schema-type",
        severity: Severity::Error,
        scope: Scope::Schema,
        what: "A value of the wrong type: `replicas: \"three\"`, a number as a label value, a malformed quantity \
               (`16GB`), non-base64 Secret data, a string where an int-or-string port must be a number or name.",
        why: "The apiserver refuses the object; for Strimzi CRs the operator never sees it.",
        fix: "Write the value with the type the schema names (quote strings, unquote numbers).",
        check: None,
    },
    Rule {
        id: "schema-required",
        severity: Severity::Error,
        scope: Scope::Schema,
        what: "A required field that is missing or null.",
        why: "The apiserver refuses the object.",
        fix: "Add the field.",
        check: None,
    },
    Rule {
        id: "schema-unknown-field",
        severity: Severity::Error,
        scope: Scope::Schema,
        what: "A field the schema does not know, anywhere including `metadata` (what `kubectl apply \
               --validate=strict` refuses and non-strict apply silently drops).",
        why: "A misspelt or mis-indented field is silently pruned: the setting the author meant never applies.",
        fix: "Fix the spelling or indentation (the finding suggests the closest known field), or remove it.",
        check: None,
    },
    Rule {
        id: "schema-value",
        severity: Severity::Error,
        scope: Scope::Schema,
        what: "A value the schema does not allow: not in the enum, not matching the pattern, out of range, too \
               long/short, too many/few items, or not matching the `oneOf`/`anyOf` alternatives.",
        why: "The apiserver refuses the object.",
        fix: "Use an allowed value (the finding lists them).",
        check: None,
    },
    Rule {
        id: "schema-duplicate-key",
        severity: Severity::Error,
        scope: Scope::Schema,
        what: "Two items of a list keyed by fields (`x-kubernetes-list-type: map`: containers and env by `name`, \
               Service ports by `port`+`protocol`, ...) with the same key, or equal items of a list-type set.",
        why: "Server-side apply, which kgitops uses, refuses the object (`duplicate entries for key`); a patch \
              that appends an entry that already exists is the usual cause.",
        fix: "Merge the duplicate entries into one.",
        check: None,
    },
    Rule {
        id: "schema-invalid-crd",
        severity: Severity::Error,
        scope: Scope::Schema,
        what: "A CustomResourceDefinition in the render whose schema cannot be compiled.",
        why: "The apiserver refuses the CRD, and its custom resources cannot be validated.",
        fix: "Fix the CRD's openAPIV3Schema.",
        check: None,
    },
    Rule {
        id: "schema-cel",
        severity: Severity::Error,
        scope: Scope::Schema,
        what: "A custom resource that breaks a validation rule of its CRD (`x-kubernetes-validations`, CEL), \
               evaluated offline as the apiserver evaluates it: e.g. Strimzi 1.x `metricsConfig` of type \
               `jmxPrometheusExporter` without `valueFrom`, `rack` without `topologyKey`, KafkaUser TLS \
               `renewalDays` not below `validityDays`. Transition rules (`oldSelf`) run only when validating \
               a change against a base revision.",
        why: "The apiserver refuses the object with the rule's message, so the apply of the revision fails.",
        fix: "Change the value so that the rule holds (the finding quotes the CRD's message and the rule).",
        check: None,
    },
    Rule {
        id: "schema-cel-unchecked",
        severity: Severity::Warning,
        scope: Scope::Schema,
        what: "A CRD validation rule that kgitops cannot evaluate offline (a Kubernetes CEL library function \
               its CEL evaluator lacks: quantities, URLs, IPs, semver, durations, ...; or `optionalOldSelf`). \
               Reported once per cluster and rule, on the first object it concerns.",
        why: "kgitops does not pretend a rule passed that it did not check; the apiserver will check it.",
        fix: "Check the object with a server-side dry run (`kgitops diff --live`).",
        check: None,
    },
    Rule {
        id: "kafka-rf-above-brokers",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "`default.replication.factor`, `offsets.topic.replication.factor` or \
               `transaction.state.log.replication.factor` larger than the number of brokers (unset values \
               count with Kafka's defaults 1, 3 and 3).",
        why: "Topics with that replication factor cannot be created: consumer groups (`__consumer_offsets`), \
              transactions or auto-created topics fail.",
        fix: "Lower the replication factor to at most the broker count, or add brokers.",
        check: Some(checks::rf_above_brokers),
    },
    Rule {
        id: "kafka-min-isr-above-rf",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "`min.insync.replicas` larger than `default.replication.factor` or \
               `offsets.topic.replication.factor`, or `transaction.state.log.min.isr` larger than \
               `transaction.state.log.replication.factor`.",
        why: "More in-sync replicas than replicas can never exist: every `acks=all` write (and every offset \
              commit) fails with NotEnoughReplicas.",
        fix: "Set min.insync.replicas to at most the replication factor minus one.",
        check: Some(checks::min_isr_above_rf),
    },
    Rule {
        id: "kafka-min-isr-equals-rf",
        severity: Severity::Warning,
        scope: Scope::Revision,
        what: "`min.insync.replicas` equal to a replication factor above 1 (same pairs as \
               `kafka-min-isr-above-rf`).",
        why: "Writes work, but the loss of any single broker (a rolling update is enough) stops all \
              `acks=all` producers: the replication buys no write availability. A warning, not an error: it \
              is a legitimate durability-over-availability choice.",
        fix: "Use min.insync.replicas = replication factor - 1 (e.g. RF 3, min ISR 2).",
        check: Some(checks::min_isr_equals_rf),
    },
    Rule {
        id: "kafka-version-unsupported",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "`spec.kafka.version` not in the Kafka versions Strimzi 0.45 supports (3.8.0, 3.8.1, 3.9.0, \
               3.9.1, 3.9.2).",
        why: "The cluster operator refuses to reconcile the Kafka resource (UnsupportedKafkaVersionException).",
        fix: "Use a supported version (3.9.2 is Strimzi 0.45.2's default).",
        check: Some(checks::version_unsupported),
    },
    Rule {
        id: "kafka-jvm-heap-above-limit",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "`jvmOptions.-Xmx` at or above the container memory limit (Kafka and ZooKeeper; JVM sizes like \
               `3072m`/`3g` against quantities like `4Gi`).",
        why: "The heap alone fills the container; with metaspace, thread stacks and direct buffers on top the \
              kernel OOM-kills the broker under load.",
        fix: "Keep -Xmx well below the limit (Strimzi's own default is about half of it), or raise the limit.",
        check: Some(checks::heap_above_limit),
    },
    Rule {
        id: "kafka-jvm-xms-above-xmx",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "`jvmOptions.-Xms` larger than `-Xmx`.",
        why: "The JVM refuses to start (`Initial heap size set to a larger value than the maximum heap size`).",
        fix: "Set -Xms at most -Xmx (usually equal).",
        check: Some(checks::xms_above_xmx),
    },
    Rule {
        id: "kafka-metrics-config-missing",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "`metricsConfig.valueFrom.configMapKeyRef` (Kafka, ZooKeeper, Cruise Control) naming a ConfigMap \
               or key that the render does not contain in the Kafka's namespace.",
        why: "The operator cannot configure the JMX exporter and the reconciliation fails. Typical cause: a \
              configMapGenerator added a hash suffix that kustomize does not propagate into Strimzi CRs.",
        fix: "Point at the rendered ConfigMap and an existing key, or disable the hash suffix for that \
              generator (options.disableNameSuffixHash) or teach kustomize the reference (configurations).",
        check: Some(checks::metrics_config_missing),
    },
    Rule {
        id: "kafka-jmx-services",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "JMX Services (port 9999, selecting `strimzi.io/pod-name: <cluster>-kafka-<i>`) not exactly one \
               per broker: a broker without one, two for one broker, or one for a broker that does not exist. \
               Checked when the Kafka enables `jmxOptions` or any such Service exists; not for clusters on \
               KafkaNodePools, whose pods are named per pool.",
        why: "Monitoring silently loses brokers (no Service) or scrapes nothing (Service for a pod that does not \
              exist) after a scale change that forgot the per-broker Services.",
        fix: "Keep one JMX Service per broker index 0..replicas-1.",
        check: Some(checks::jmx_services),
    },
    Rule {
        id: "zookeeper-loadbalancer-open",
        severity: Severity::Warning,
        scope: Scope::Revision,
        what: "A Service of type LoadBalancer selecting ZooKeeper pods (Strimzi's `<cluster>-zookeeper` pods, \
               or a zoo-entrance/ZooKeeper proxy; not exporters) without `loadBalancerSourceRanges`.",
        why: "ZooKeeper has no authentication here: anyone who reaches the load balancer can read and rewrite \
              the cluster metadata.",
        fix: "Add spec.loadBalancerSourceRanges with the client CIDRs, or use a ClusterIP Service.",
        check: Some(checks::zookeeper_lb_open),
    },
    Rule {
        id: "zookeeper-even-replicas",
        severity: Severity::Warning,
        scope: Scope::Revision,
        what: "An even `spec.zookeeper.replicas` (reported as `zookeeper-replicas-to-even` instead when the \
               change under review introduces it).",
        why: "A quorum of 2n nodes tolerates no more failures than 2n-1 (2 nodes tolerate none), at the cost of \
              one more node in every write.",
        fix: "Use an odd number of ZooKeeper nodes (3 or 5).",
        check: Some(checks::zookeeper_even),
    },
    Rule {
        id: "zookeeper-replicas-to-even",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "A change of `spec.zookeeper.replicas` to an even number.",
        why: "Same as `zookeeper-even-replicas`, but an error because the change makes the ensemble worse (from \
              3 to 2 it loses all fault tolerance) and nothing forces it; an even count that is already \
              there stays a warning so it does not block unrelated changes.",
        fix: "Scale ZooKeeper to an odd number.",
        check: Some(checks::zookeeper_to_even),
    },
    Rule {
        id: "kafka-broker-scale-down",
        severity: Severity::Warning,
        scope: Scope::Change,
        what: "Fewer brokers than in the base revision (`spec.kafka.replicas`, or the broker KafkaNodePools).",
        why: "Partitions on the removed brokers must be reassigned first; Strimzi refuses the scale-down while \
              they hold replicas, and if forced (skip-broker-scaledown-check) the data is lost. A warning: it is \
              legitimate once the partitions were moved.",
        fix: "Move partitions off the highest-numbered brokers (Cruise Control remove-brokers) before merging.",
        check: Some(checks::broker_scale_down),
    },
    Rule {
        id: "kafka-storage-shrink",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "A persistent-claim storage `size` smaller than in the base revision (Kafka, JBOD volume by id, \
               ZooKeeper, KafkaNodePool).",
        why: "Volumes cannot shrink: Strimzi ignores the whole storage change and only sets a warning condition, \
              so git and the cluster silently disagree from then on.",
        fix: "Keep the old size. To really shrink, add a new JBOD volume or node pool and move the data.",
        check: Some(checks::storage_shrink),
    },
    Rule {
        id: "kafka-storage-type-change",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "A storage `type` change (ephemeral, persistent-claim, jbod; also per JBOD volume).",
        why: "Strimzi does not change storage type of a running cluster: it ignores the change and sets a \
              warning condition.",
        fix: "Revert the type. Migrate through a new KafkaNodePool, or add JBOD volumes instead.",
        check: Some(checks::storage_type_change),
    },
    Rule {
        id: "kafka-storage-class-change",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "A storage `class` change of existing persistent storage (also per JBOD volume).",
        why: "Existing PersistentVolumeClaims keep their class: Strimzi ignores the change and sets a warning \
              condition.",
        fix: "Revert the class. Use a new JBOD volume or node pool with the new class and move the data.",
        check: Some(checks::storage_class_change),
    },
    Rule {
        id: "kafka-storage-delete-claim",
        severity: Severity::Warning,
        scope: Scope::Revision,
        what: "`deleteClaim: true` on persistent-claim storage (Kafka, JBOD volume, ZooKeeper, KafkaNodePool); \
               the message says when the change under review turns it on.",
        why: "Deleting the Kafka resource (a bad prune, a renamed overlay) then deletes every volume: all data \
              is gone with no way back.",
        fix: "Set deleteClaim: false outside throw-away clusters.",
        check: Some(checks::delete_claim),
    },
];

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// Runs the Kafka-aware rules of the table over one cluster: revision rules on `to`, change rules
/// when `from` is given.
pub fn check(cluster: &str, from: Option<&[Value]>, to: &[Value]) -> Vec<Finding> {
    run(cluster, from, to, |_| true)
}

/// Runs only the change rules (the base/head comparisons), for the offline PR diff.
pub fn check_change(cluster: &str, from: &[Value], to: &[Value]) -> Vec<Finding> {
    run(cluster, Some(from), to, |r| r.scope == Scope::Change)
}

fn run(cluster: &str, from: Option<&[Value]>, to: &[Value], select: impl Fn(&Rule) -> bool) -> Vec<Finding> {
    let ctx = Context {
        to: Snapshot::new(to),
        from: from.map(Snapshot::new),
    };
    let mut findings = Vec::new();
    for rule in RULES.iter().filter(|r| select(r)) {
        let Some(check) = rule.check else { continue };
        if rule.scope == Scope::Change && ctx.from.is_none() {
            continue;
        }
        for hit in check(&ctx) {
            findings.push(Finding {
                severity: rule.severity,
                rule: rule.id.to_string(),
                cluster: cluster.to_string(),
                object: hit.object,
                path: hit.path,
                message: hit.message,
                fix: hit.fix.unwrap_or_else(|| rule.fix.to_string()),
            });
        }
    }
    findings
}

/// `src/validate/RULES.md`: the rule table as Markdown, with how findings look.
pub fn rules_markdown() -> String {
    let mut out = String::from(
        "# Validation rules\n\n\
         <!-- Generated from RULES in src/validate/rules/mod.rs; do not edit by hand. Regenerate with\n\
         `KGITOPS_UPDATE_DOCS=1 cargo test --lib rules_md`. -->\n\n\
         `kgitops validate` reports findings with a severity, a rule id, the cluster, the object\n\
         (`Kafka/kafka-dev/main`), the field path (`spec.kafka.replicas`), a message and how to fix it.\n\
         Errors make it exit 1, warnings do not. *Scope* says what a rule looks at: `schema` each object\n\
         against its schema, `revision` the validated revision alone, `change` the base and head revisions\n\
         of `--from/--to` together (and the offline PR diff).\n\n",
    );
    out.push_str("| id | severity | scope | what | why | fix |\n| --- | --- | --- | --- | --- | --- |\n");
    for r in RULES {
        let cell = |s: &str| s.replace('|', "\\|");
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            r.id,
            r.severity.as_str(),
            r.scope.as_str(),
            cell(r.what),
            cell(r.why),
            cell(r.fix)
        ));
    }
    out.push_str(&format!(
        "\nKafka versions supported by Strimzi {} (`kafka-version-unsupported`):\n\n\
         | Kafka | supported since Strimzi |\n| --- | --- |\n",
        STRIMZI_VERSION
    ));
    for (kafka, since) in SUPPORTED_KAFKA_VERSIONS {
        out.push_str(&format!("| {kafka} | {since} |\n"));
    }
    out.push_str(OUTPUT_DOC);
    out
}

const OUTPUT_DOC: &str = r#"
## Output

`--output text` (default) prints one block per finding, errors first, then a summary line:

```text
error[kafka-rf-above-brokers] dev: Kafka/kafka-dev/main spec.kafka.config[offsets.topic.replication.factor]
  offsets.topic.replication.factor is 3 but the cluster has only 2 broker(s) (spec.kafka.replicas)
  fix: set offsets.topic.replication.factor to at most 2 in spec.kafka.config, or run at least 3 brokers
1 error(s), 0 warning(s) in 1 cluster(s): dev
```

`--output json` prints one object with stable field names:

| field | meaning |
| --- | --- |
| `clusters` | the clusters validated, as given or in `clusters/` order |
| `errors`, `warnings` | finding counts |
| `findings[]` | sorted by cluster, severity (errors first), object, path, rule |
| `findings[].severity` | `error` or `warning` |
| `findings[].rule` | a rule id of the table above |
| `findings[].cluster` | the overlay name under `clusters/` |
| `findings[].object` | `Kind/namespace/name` (`Kind/name` without namespace, `document #n` without identity) |
| `findings[].path` | field path in the object: `spec.ports[0].port`, map keys in brackets (`metadata.labels[app]`); empty for the whole object |
| `findings[].message` | what is wrong; Secret values are never quoted |
| `findings[].fix` | how to fix it |

Exit codes: 0 no errors (warnings allowed), 1 at least one error, 2 validation could not run
(unreadable `--crds`, unknown cluster, a render that fails).
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_schema_ids_match_the_walker() {
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
        use super::super::schema::IssueKind::*;
        for kind in [
            NotAnObject,
            UnknownKind,
            WrongType,
            MissingRequired,
            UnknownField,
            InvalidValue,
            InvalidCrd,
            CelRule,
            CelUnchecked,
        ] {
            let r = rule(kind.rule_id()).unwrap();
            assert_eq!(r.scope, Scope::Schema);
        }
        for r in RULES {
            assert_eq!(r.check.is_none(), r.scope == Scope::Schema, "{}", r.id);
        }
    }

    /// RULES.md is generated from the table; `KGITOPS_UPDATE_DOCS=1 cargo test --lib rules_md` rewrites
    /// it (then review the diff).
    #[test]
    fn rules_md_is_generated_from_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/validate/RULES.md");
        let want = rules_markdown();
        if std::env::var_os("KGITOPS_UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "src/validate/RULES.md is out of date: run `KGITOPS_UPDATE_DOCS=1 cargo test --lib rules_md`"
        );
    }
}
