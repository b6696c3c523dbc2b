//! The rule table: every check `kgitops validate` makes, as data ([`Rule`]: id, severity, what, why,
//! fix, check), documented one row each in `src/validate/RULES.md` (generated from this table and
//! kept in sync by a test).
//!
//! A rule looks at one cluster's render ([`Snapshot`]) and, when validating a change, also at the
//! render of the base revision (`from`). [`Scope::Revision`] rules judge the head revision alone;
//! [`Scope::Change`] rules compare base and head and stay silent without a base. Schema rules are
//! listed here for their documentation; the schema walker in [`super::schema`] reports them.

mod api_versions;
mod checks;
mod controller_quorum;
mod crd_upgrade;
mod migration;
mod node_pools;
pub mod path;
pub mod release;
pub mod sops_plaintext;
mod strimzi;
mod upgrade_path;
mod versions;

use serde_json::Value;

use super::finding::{Finding, Severity};
pub use strimzi::KafkaCr;

/// What a rule looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Each object against its schema.
    Schema,
    /// The head revision alone.
    Revision,
    /// Base and head revisions together (`--from/--to`, the PR diff).
    Change,
    /// The repository's files rather than a render (reported by their own walk, like schema rules
    /// by the schema walker): [`sops_plaintext`].
    Repository,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Schema => "schema",
            Scope::Revision => "revision",
            Scope::Change => "change",
            Scope::Repository => "repository",
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

/// One revision of one cluster's render, with the Strimzi `Kafka` and `KafkaNodePool` resources
/// picked out.
pub struct Snapshot<'a> {
    pub objects: &'a [Value],
    pub kafkas: Vec<KafkaCr<'a>>,
    pub(crate) pools: Vec<node_pools::NodePool<'a>>,
}

impl<'a> Snapshot<'a> {
    pub fn new(objects: &'a [Value]) -> Snapshot<'a> {
        let mut snapshot = Snapshot {
            objects,
            kafkas: objects.iter().filter_map(KafkaCr::from_object).collect(),
            pools: objects
                .iter()
                .filter_map(node_pools::NodePool::from_object)
                .collect(),
        };
        // Each Kafka's release, decided once over the whole render (KafkaCr::uses_node_pools needs it).
        let releases: Vec<_> = snapshot
            .kafkas
            .iter()
            .map(|k| release::release_of(&snapshot, Some(k)).and_then(|d| d.version()))
            .collect();
        for (kafka, release) in snapshot.kafkas.iter_mut().zip(releases) {
            kafka.release = release;
        }
        snapshot
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
        what: "A CRD validation rule that kgitops cannot evaluate offline (a CEL function it does not \
               implement: durations, timestamps, two-variable comprehensions, `format.datetime()`; or \
               `optionalOldSelf`). The Kubernetes libraries for quantities, lists, regex, URLs, IPs, CIDRs, \
               semver, sets and named formats are evaluated. Reported once per cluster and rule, on the \
               first object it concerns.",
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
        id: "strimzi-release-unknown",
        severity: Severity::Warning,
        scope: Scope::Revision,
        what: "A Strimzi release declared by the `kgitops.io/strimzi-release` annotation of a Kafka or by the \
               cluster operator Deployment's image tag that kgitops has no data for (`latest`, a typo, a release \
               outside the table below).",
        why: "The release-aware rules (Kafka and metadata versions, served API versions, fields removed in v1) \
              are then skipped for the cluster: validation would pass what the operator refuses.",
        fix: "Name a released version (see the tables below).",
        check: Some(versions::release_unknown),
    },
    Rule {
        id: "strimzi-release-conflict",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "A Kafka whose `kgitops.io/strimzi-release` annotation names another release than the cluster \
               operator Deployment of the same render, or a render with operators of two releases.",
        why: "The Kafka is judged by the release it states while the cluster runs another: versions and APIs the \
              running operator refuses pass validation.",
        fix: "Make the annotation match the operator release the overlay includes (or remove it).",
        check: Some(versions::release_conflict),
    },
    Rule {
        id: "kafka-version-unsupported",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "`spec.kafka.version` not among the Kafka versions the cluster's Strimzi release supports (its \
               `kafka-versions.yaml`, tables below). The message names the release and where it was read from.",
        why: "The cluster operator refuses to reconcile the Kafka resource (UnsupportedKafkaVersionException).",
        fix: "Use a version the release supports, or run a release that supports the version.",
        check: Some(versions::version_unsupported),
    },
    Rule {
        id: "kafka-metadata-version-invalid",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "A KRaft `spec.kafka.metadataVersion` that is not a metadata version (`4.3-IV0`, `3.9`), older than \
               the oldest the release accepts (3.3-IV3 from Strimzi 0.46, Kafka 4; 3.3-IV0 before), newer than \
               every Kafka of the release knows, or a feature level (`-IVn`) above the one the release file names \
               for that minor.",
        why: "The operator refuses the resource (`Metadata version ... is invalid`, InvalidResourceException).",
        fix: "Use the metadata version of the cluster's Kafka version (tables below), or remove it to get that.",
        check: Some(versions::metadata_version_invalid),
    },
    Rule {
        id: "kafka-metadata-version-above-kafka",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "A KRaft `spec.kafka.metadataVersion` newer (by MAJOR.MINOR, as Strimzi compares) than the \
               metadata version of the Kafka version the cluster runs (`spec.kafka.version`, else the release's \
               default).",
        why: "Strimzi keeps the current metadata version (or the Kafka version's own on a new cluster) and only \
              logs it: the setting in git is silently not in effect. Usually metadataVersion was raised before \
              spec.kafka.version.",
        fix: "Upgrade spec.kafka.version first; raise metadataVersion once the brokers run the new Kafka.",
        check: Some(versions::metadata_version_above_kafka),
    },
    Rule {
        id: "kafka-metadata-version-behind",
        severity: Severity::Warning,
        scope: Scope::Revision,
        what: "A KRaft `spec.kafka.metadataVersion` older (by MAJOR.MINOR) than the Kafka version's metadata \
               version.",
        why: "The Kafka upgrade is not finished: new features stay off; Strimzi sets the KafkaMetadataVersion \
              warning condition. Legitimate while a downgrade must stay possible.",
        fix: "Raise metadataVersion to the Kafka version's once no downgrade is planned.",
        check: Some(versions::metadata_version_behind),
    },
    Rule {
        id: "kafka-kraft-legacy-version-config",
        severity: Severity::Warning,
        scope: Scope::Revision,
        what: "`inter.broker.protocol.version` or `log.message.format.version` in `spec.kafka.config` of a KRaft \
               cluster (a `v1` Kafka, `strimzi.io/kraft: enabled`, or any Kafka on Strimzi 0.46 or later).",
        why: "KRaft ignores both; they are left-overs of the ZooKeeper era and suggest the version is governed by \
              them. Strimzi's KafkaSpecChecker sets a warning condition for each.",
        fix: "Remove them; KRaft's equivalent is spec.kafka.metadataVersion.",
        check: Some(versions::kraft_legacy_version_config),
    },
    Rule {
        id: "strimzi-api-version-not-served",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "A Strimzi resource in an API version its cluster's release does not serve: `v1beta2` (or older) \
               from Strimzi 1.0.0, `v1` before 0.49.0, KafkaMirrorMaker from 0.46.0.",
        why: "The apiserver refuses the object (`no matches for kind`) once the release's CRDs are installed, and \
              the whole apply of the revision fails.",
        fix: "Serve kafka.strimzi.io/v1 from 1.0.0 (convert the resources while on 0.49-0.51); keep v1beta2 before \
              0.49.0.",
        check: Some(api_versions::api_version_not_served),
    },
    Rule {
        id: "strimzi-v1-removed-field",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "A field or value removed in `kafka.strimzi.io/v1` (proposal 113): `spec.zookeeper`, \
               `spec.kafka.replicas/storage/resources` (→ KafkaNodePools), `jmxTrans`, authorization `opa`/`keycloak` \
               and authentication `oauth` (→ `custom`), `tlsSidecar`, `storage.overrides`, KafkaUser \
               `acls[].operation` (→ `operations`), KafkaConnector `spec.pause` (→ `state`), MirrorMaker 2 \
               `clusters` (→ `target`), ... On a `v1` object, or on any object from Strimzi 1.0.0 (KafkaUser \
               `operation`: from 0.49.0, when the User Operator reads v1).",
        why: "The v1 schema does not have it: the apiserver refuses (or prunes) it, and a v1beta2 object using it \
              cannot be converted to v1.",
        fix: "Use the replacement the finding names.",
        check: Some(api_versions::removed_field),
    },
    Rule {
        id: "strimzi-deprecated-field",
        severity: Severity::Warning,
        scope: Scope::Revision,
        what: "A `v1beta2` object on Strimzi 0.49-0.51 (which serve v1beta2 and v1) using a field removed in v1 \
               (same table as `strimzi-v1-removed-field`).",
        why: "It works today, but blocks the conversion to v1 that Strimzi 1.0.0 requires.",
        fix: "Use the replacement the finding names before upgrading the operator to 1.x.",
        check: Some(api_versions::deprecated_field),
    },
    Rule {
        id: "strimzi-upgrade-kafka-unsupported",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "An operator release change while the brokers run a Kafka version the new release does not support \
               (`spec.kafka.version`, else the old release's default), or a Kafka version change in the same commit \
               to a version the old release does not support.",
        why: "The new operator refuses the Kafka (unsupported Kafka version) until it runs a version it knows; the \
              old one, which reconciles until the new one runs, refuses a version it does not know. One step per \
              commit keeps every state in between supported (`kgitops strimzi path`).",
        fix: "Change the operator and the Kafka version in separate commits, the Kafka version always one both \
              releases support; the finding names the next step of the path.",
        check: Some(upgrade_path::kafka_unsupported),
    },
    Rule {
        id: "strimzi-upgrade-zookeeper",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "A Kafka that still keeps its metadata in ZooKeeper (`spec.zookeeper` without `strimzi.io/kraft: \
               enabled`, or a migration in progress) on Strimzi 0.46.0 or later.",
        why: "ZooKeeper support and the ZooKeeper-to-KRaft migration are gone from 0.46.0: the operator does not \
              reconcile the cluster, and the migration is only possible on 0.45.x.",
        fix: "Keep the operator on 0.45.x until the migration is finished (state KRaft, spec.zookeeper removed); \
              with a base revision the finding names the next step of the path.",
        check: Some(upgrade_path::zookeeper_on_kraft_only),
    },
    Rule {
        id: "strimzi-upgrade-skips-v1-conversion",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "An operator change to Strimzi 1.0.0 or later from a release that does not serve `kafka.strimzi.io/v1` \
               (before 0.49.0), or from 0.49-0.51 while the base revision still has `v1beta2` resources. (`v1beta2` \
               resources on 1.x are `strimzi-api-version-not-served`.)",
        why: "1.x serves and stores `v1` only: the resources must be converted, and the CRDs must store `v1` only \
              (`crd-upgrade`), on a release that serves both APIs; otherwise the 1.x CRDs are refused \
              (status.storedVersions lists v1beta2) and the new operator runs against the old CRDs.",
        fix: "Upgrade to 0.49-0.51 first, convert every resource to v1 there, run crd-upgrade, then 1.x; the finding \
              names the next step of the path.",
        check: Some(upgrade_path::skips_v1_conversion),
    },
    Rule {
        id: "strimzi-upgrade-metadata-downgrade",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "A KRaft metadata version lower in the head revision than in the base (`spec.kafka.metadataVersion`, \
               else the running Kafka version's, which the operator sets when it is unset).",
        why: "Kafka and Strimzi do not lower a metadata version: the operator keeps the old one and warns, so git \
              says something that is not in effect, and a Kafka downgrade below it cannot happen.",
        fix: "Keep the metadata version; it is raised after a Kafka upgrade, never lowered.",
        check: Some(upgrade_path::metadata_downgrade),
    },
    Rule {
        id: "kafka-jvm-heap-above-limit",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "`jvmOptions.-Xmx` at or above the container memory limit (Kafka, ZooKeeper, Cruise Control, and \
               each KafkaNodePool with its own `jvmOptions`/`resources` or the Kafka's `spec.kafka` ones it \
               falls back to; JVM sizes like `3072m`/`3g` against quantities like `4Gi`).",
        why: "The heap alone fills the container; with metaspace, thread stacks and direct buffers on top the \
              kernel OOM-kills the broker under load.",
        fix: "Keep -Xmx well below the limit (Strimzi's own default is about half of it), or raise the limit.",
        check: Some(checks::heap_above_limit),
    },
    Rule {
        id: "kafka-jvm-xms-above-xmx",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "`jvmOptions.-Xms` larger than `-Xmx` (Kafka components, KafkaNodePools).",
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
        what: "JMX Services (port 9999, selecting `strimzi.io/pod-name`) not exactly one per broker: a broker \
               without one, two for one broker, or one for a pod that does not exist. Pods are \
               `<cluster>-kafka-<i>`, or `<cluster>-<pool>-<node id>` on KafkaNodePools, where the count per pool \
               is checked and the node IDs only when they are certain (pools with `status.nodeIds`, or a cluster \
               the change creates: Strimzi's NodeIdAssignor); otherwise the finding says the IDs are unknown \
               offline. Checked when the Kafka enables `jmxOptions` or any such Service exists.",
        why: "Monitoring silently loses brokers (no Service) or scrapes nothing (Service for a pod that does not \
              exist) after a scale change that forgot the per-broker Services.",
        fix: "Keep one JMX Service per broker: indexes 0..replicas-1, or each pool's node IDs.",
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
        what: "Fewer brokers than in the base revision: `spec.kafka.replicas`, or per broker KafkaNodePool \
               (`spec.replicas`; the finding says which node IDs Strimzi removes: `strimzi.io/remove-node-ids` \
               first, then the highest).",
        why: "Partitions on the removed brokers must be reassigned first; Strimzi refuses the scale-down while \
              they hold replicas (on node pools it reverts it and only sets a ScaleDownPreventionCheck warning \
              condition), and if forced (skip-broker-scaledown-check) the data is lost. A warning: it is \
              legitimate once the partitions were moved.",
        fix: "Move partitions off the highest-numbered brokers (Cruise Control remove-brokers) before merging.",
        check: Some(checks::broker_scale_down),
    },
    Rule {
        id: "kafka-storage-shrink",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "A persistent-claim storage `size` smaller than in the base revision (Kafka, JBOD volume by id, \
               ZooKeeper, KafkaNodePool; not the `spec.kafka.storage` a cluster on node pools ignores, nor \
               `spec.zookeeper` on KRaft).",
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
    Rule {
        id: "crd-stored-version-dropped",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "A CustomResourceDefinition that no longer declares the version the base revision's CRD stores \
               objects in (`storage: true`), as when an operator release moves to a new API version (Strimzi \
               1.0.0 ships `kafka.strimzi.io/v1` only).",
        why: "Every object written under the base revision is stored in that version, so the CRD's \
              `status.storedVersions` lists it and the apiserver refuses the update: the apply stops at the CRD \
              and the new operator runs against the old CRDs.",
        fix: "Ship a revision whose CRD stores the new version first, migrate the stored objects (Strimzi: the v1 \
              API conversion tool's `crd-upgrade`), then drop the old version.",
        check: Some(crd_upgrade::stored_version_dropped),
    },
    Rule {
        id: "crd-served-version-dropped",
        severity: Severity::Warning,
        scope: Scope::Change,
        what: "A CustomResourceDefinition that no longer declares a version the base revision's CRD serves but \
               does not store in.",
        why: "If objects were ever stored in it (under an older revision), `status.storedVersions` still lists it \
              and the apiserver refuses the update. Only the live CRD can tell: `diff --live` and `apply` check it \
              before anything is written.",
        fix: "Run `kgitops diff --live` against each cluster; migrate the stored objects if it reports them.",
        check: Some(crd_upgrade::served_version_dropped),
    },
    Rule {
        id: "node-pool-dangling",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "A KafkaNodePool whose `strimzi.io/cluster` label is missing or names no Kafka in its namespace, \
               or names a Kafka that does not use node pools (v1beta2 with `spec.zookeeper` and without \
               `strimzi.io/node-pools: enabled`, on a release before 0.46 or an unknown one; from 0.46 every \
               Kafka runs on node pools).",
        why: "The operator selects a cluster's pools by that label in the Kafka's namespace: a dangling pool is \
              never reconciled, and the brokers, storage or resources it was meant to add silently do not exist.",
        fix: "Label the pool `strimzi.io/cluster: <its Kafka>` in the Kafka's namespace, or remove it.",
        check: Some(node_pools::dangling),
    },
    Rule {
        id: "node-pool-roles",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "A cluster on node pools that Strimzi refuses for its roles: a pool without `spec.roles`; on KRaft no \
               pool with replicas and the broker role, or none with the controller role (a controller quorum); \
               no pool with replicas at all; on ZooKeeper (0.45, node pools enabled) a pool with the controller \
               role (Strimzi's `NodePoolUtils.validateNodePools`).",
        why: "The operator stops reconciling the whole Kafka cluster (InvalidResourceException) until it is fixed.",
        fix: "Give every pool roles; on KRaft run at least one broker pool and one controller pool (or a \
              dual-role pool) with replicas.",
        check: Some(node_pools::roles),
    },
    Rule {
        id: "kraft-controller-count",
        severity: Severity::Warning,
        scope: Scope::Revision,
        what: "A KRaft controller quorum (the replicas of all pools with the controller role) that is even or a \
               single node (Strimzi warns about even ones: `KafkaKRaftControllerNodeCount`).",
        why: "A quorum of 2n nodes tolerates no more failures than 2n-1 (two tolerate none); a single controller \
              stops the cluster whenever it restarts. A warning: fine for throw-away clusters.",
        fix: "Run an odd number of controllers, 3 or 5, outside throw-away clusters.",
        check: Some(node_pools::controller_count),
    },
    Rule {
        id: "node-pool-node-ids-overlap",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "Two KafkaNodePools of one cluster whose `strimzi.io/next-node-ids` ranges (`[0-9, 100-199]`) \
               share node IDs.",
        why: "Node IDs are unique per cluster: whichever pool scales up first takes the shared IDs and the other \
              falls back to other IDs, so node IDs, pod names `<cluster>-<pool>-<id>` and everything keyed by \
              them (JMX Services, rack placement, Cruise Control plans) depend on the order of changes.",
        fix: "Give each pool of the cluster its own, disjoint node ID range.",
        check: Some(node_pools::node_ids_overlap),
    },
    Rule {
        id: "node-pool-node-ids-invalid",
        severity: Severity::Warning,
        scope: Scope::Revision,
        what: "A `strimzi.io/next-node-ids` or `strimzi.io/remove-node-ids` annotation that is not a range in \
               Strimzi's syntax (`[0, 3, 10-19, 29-20]`, IDs up to 2^31-1).",
        why: "Strimzi logs a warning and ignores it: new nodes get the lowest free IDs, scale-downs remove the \
              highest, not the ones the annotation meant.",
        fix: "Write the range as `[` items `]`, each item an ID or `from-to`, separated by commas.",
        check: Some(node_pools::node_ids_invalid),
    },
    Rule {
        id: "node-pool-ephemeral-controllers",
        severity: Severity::Warning,
        scope: Scope::Revision,
        what: "A KafkaNodePool with the controller role whose KRaft metadata log is on ephemeral storage (the \
               pool's storage, or the JBOD volume with `kraftMetadata: shared`, else the lowest id).",
        why: "Each controller restart wipes its copy of the cluster metadata (topics, configs, ACLs); with a \
              single controller every restart loses it all (Strimzi's `KafkaStorage` warning). A warning: fine \
              for throw-away clusters.",
        fix: "Use persistent-claim storage for controllers outside throw-away clusters.",
        check: Some(node_pools::ephemeral_controllers),
    },
    Rule {
        id: "node-pool-broker-role-removed",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "A KafkaNodePool that runs brokers in the base revision and loses the broker role in the head \
               revision (e.g. `[broker, controller]` to `[controller]`).",
        why: "While those brokers hold partition replicas Strimzi reverts the role change and only sets a \
              ScaleDownPreventionCheck warning condition: the resource stays Ready, git and the cluster disagree.",
        fix: "Empty the pool's brokers first (KafkaRebalance mode remove-brokers), then drop the role; or add a \
              new controller-only pool instead.",
        check: Some(node_pools::broker_role_removed),
    },
    Rule {
        id: "node-pool-removed-with-brokers",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "A KafkaNodePool that runs brokers in the base revision and is gone from the head revision while its \
               Kafka stays (also: a pool renamed, which is a removal and a new pool).",
        why: "The pool owns its StrimziPodSet: deleting it deletes the broker pods with their partition replicas \
              still on them (under-replicated or lost partitions); Strimzi's scale-down check cannot stop it.",
        fix: "Keep the pool, move its partitions away (KafkaRebalance mode remove-brokers), scale it to 0 \
              replicas, and remove it in a later change.",
        check: Some(node_pools::removed_with_brokers),
    },
    Rule {
        id: "node-pool-controller-role-removed",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "A KafkaNodePool with controllers (controller role, replicas > 0) in the base revision that loses the \
               `controller` role in the head revision, on a KRaft cluster the base revision already runs (e.g. a \
               dual-role pool changed to `[broker]`).",
        why: "Strimzi 0.45 to 1.2 run KRaft with a static controller quorum (`controller.quorum.voters` from the \
              controller nodes) and document removing the controller role as unsupported: Kafka cannot move a \
              static quorum to dynamic voters (KIP-853, KAFKA-16538). The operator does not refuse it; it \
              rewrites the voters and rolls the nodes, which then disagree on who votes: the quorum can be lost \
              (downtime) or metadata diverge.",
        fix: "Keep the controller role. To separate brokers from controllers, keep these nodes as the controllers: \
              add a broker pool, move the partitions off them (KafkaRebalance mode remove-brokers), and remove \
              their broker role instead.",
        check: Some(controller_quorum::role_removed),
    },
    Rule {
        id: "node-pool-controller-pool-removed",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "A KafkaNodePool with controllers (controller role, replicas > 0) in the base revision that is gone \
               from the head revision while its KRaft cluster stays (also: a controller pool renamed, which is a \
               removal and a new pool with new voters).",
        why: "The controller quorum changes, which Strimzi 0.45 to 1.2 do not support (static quorum; its docs \
              list adding or removing controller pools as unsupported): the operator rewrites \
              `controller.quorum.voters` and rolls the nodes, and the quorum can be lost (downtime) or metadata \
              diverge.",
        fix: "Keep the controller pool under its name. A change that needs other controller nodes (a storage type, \
              a rename) needs a new cluster until Strimzi supports dynamic controller quorums.",
        check: Some(controller_quorum::pool_removed),
    },
    Rule {
        id: "kraft-migration-broker-pool-name",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "A ZooKeeper-based Kafka whose brokers move from `spec.kafka.replicas` to KafkaNodePools \
               (`strimzi.io/node-pools: enabled` added) without a pool named `kafka` with the broker role.",
        why: "Strimzi's implicit pool of a Kafka without node pools is `kafka`: only a pool of that name takes over \
              the pods `<cluster>-kafka-<i>` and their volumes. Any other name starts new, empty brokers and the \
              data stays behind.",
        fix: "Name the broker pool `kafka` (roles [broker], the replicas and storage of spec.kafka).",
        check: Some(migration::broker_pool_name),
    },
    Rule {
        id: "kraft-migration-node-pools-first",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "`strimzi.io/kraft: migration` set on a Kafka whose base revision does not use node pools (node pools \
               enabled in the same change, or not at all).",
        why: "Strimzi migrates only clusters on KafkaNodePools (it refuses one without) and documents the move to \
              node pools as a prerequisite: done together, a failure of either leaves the cluster half converted \
              with no reviewed state to return to.",
        fix: "Merge the move to a broker pool `kafka` with `strimzi.io/node-pools: enabled` first; add the \
              controller pool and `migration` in a later change.",
        check: Some(migration::node_pools_first),
    },
    Rule {
        id: "kraft-migration-versions",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "A ZooKeeper-based Kafka set to `strimzi.io/kraft: migration` whose `spec.kafka.version` is below 3.7.0, \
               or whose written metadataVersion, `inter.broker.protocol.version` or `log.message.format.version` is \
               another version than the others (unset values are the Kafka version's).",
        why: "Strimzi 0.45 (`KRaftUtils.validateVersionsForKRaftMigration`) refuses to start the migration unless all \
              four are the same version, 3.7.0 or later: the Kafka goes NotReady with InvalidResourceException and \
              nothing migrates.",
        fix: "Upgrade Kafka and align (or remove) the three settings in an earlier change; then set `migration`.",
        check: Some(migration::versions),
    },
    Rule {
        id: "kraft-migration-controllers",
        severity: Severity::Error,
        scope: Scope::Revision,
        what: "A Kafka migrating to KRaft (`strimzi.io/kraft` `migration` or `rollback`, or `enabled` while \
               `spec.zookeeper` is still there) with a KafkaNodePool that has both the broker and the controller \
               role, without a dedicated controller pool with replicas (not checked during `rollback`, when the \
               pool is removed on purpose), or with a single controller on ephemeral storage.",
        why: "Strimzi migrates only to dedicated controllers; it refuses a migrating cluster without controllers; \
              and a single ephemeral controller loses the metadata copied from ZooKeeper on its first restart \
              (Strimzi: \"will not work\").",
        fix: "Run a controller-only KafkaNodePool with 3 replicas on persistent-claim storage, and broker pools with \
              the broker role only.",
        check: Some(migration::controllers),
    },
    Rule {
        id: "kraft-migration-skipped",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "`strimzi.io/kraft` set to `enabled` on a ZooKeeper-based Kafka whose base revision has `disabled`, no \
               annotation, or `rollback`: the `migration` step is skipped.",
        why: "Strimzi only finalises a migration from KRaftPostMigration: on a ZooKeeper cluster (or after a \
              rollback) it refuses `enabled` and only sets a KafkaMetadataStateWarning condition, so git and the \
              cluster disagree and nothing migrates.",
        fix: "Set `migration` (with a dedicated controller pool) first; set `enabled` in a later change, once \
              status.kafkaMetadataState is KRaftPostMigration.",
        check: Some(migration::skipped),
    },
    Rule {
        id: "kraft-migration-zookeeper-removed-early",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "`spec.zookeeper` removed from a Kafka unless `strimzi.io/kraft` is `enabled` in both the base and \
               the head revision (removed before the migration is finalised, in the same change that sets \
               `enabled`, or together with the annotation).",
        why: "Until the operator reports KRaft, ZooKeeper holds the cluster's metadata and is what a rollback \
              returns to; Strimzi 0.45 refuses a ZooKeeper-based or migrating Kafka without `spec.zookeeper`.",
        fix: "Remove spec.zookeeper in a change after the one that sets `enabled`, once the operator reports \
              KRaft, keeping the annotation `enabled`.",
        check: Some(migration::zookeeper_removed_early),
    },
    Rule {
        id: "kraft-migration-controller-pool-removed",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "A KafkaNodePool with the controller role removed from a Kafka that still has `spec.zookeeper` while \
               its base revision has `strimzi.io/kraft` `migration` or `enabled`, including the change that sets \
               `rollback` (removing it after `rollback` took effect is the documented rollback step).",
        why: "The controllers hold the migrated metadata and, from KRaftDualWriting on, are the brokers' only \
              controller quorum: deleting the pool deletes them and the cluster loses its metadata.",
        fix: "Keep the pool. To abandon the migration: `rollback` (from KRaftPostMigration), then remove the pool in \
              a later change, then `disabled`.",
        check: Some(migration::controller_pool_removed),
    },
    Rule {
        id: "kraft-migration-rollback-order",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "`strimzi.io/kraft: rollback` on a Kafka whose base revision is not migrating (`disabled` or no \
               annotation), or `disabled` straight after `migration` without `rollback`.",
        why: "Strimzi rolls back only from KRaftPostMigration (the base revision had `migration`), through \
              `rollback`; anything else it refuses with a KafkaMetadataStateWarning condition, and brokers already \
              on KRaft are not taken back to ZooKeeper.",
        fix: "From `migration`: set `rollback`; once the state is KRaftDualWriting remove the controller pool, then \
              set `disabled`.",
        check: Some(migration::rollback_order),
    },
    Rule {
        id: "kraft-migration-enabled-is-final",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "`strimzi.io/kraft` changed from `enabled` to `migration`, `rollback`, `disabled` or another value (or \
               removed while `spec.zookeeper` is still there) on a `v1beta2` Kafka.",
        why: "`enabled` finalises the migration (PreKRaft deletes ZooKeeper): there is no way back. Strimzi refuses \
              any other value with a KafkaMetadataStateWarning condition, and a migration still in PreKRaft stops \
              there.",
        fix: "Keep `strimzi.io/kraft: enabled` (a finished KRaft cluster without spec.zookeeper may drop it).",
        check: Some(migration::enabled_is_final),
    },
    Rule {
        id: "kraft-migration-zookeeper-components-removed",
        severity: Severity::Error,
        scope: Scope::Change,
        what: "An object that only serves a Kafka's ZooKeeper removed while the Kafka is migrating or starts \
               migrating (base revision not `enabled`): in the Kafka's namespace, workloads whose name, image, \
               arguments or environment name ZooKeeper or zoo-entrance (zoo-entrance, zk-exporter), Services and \
               NetworkPolicies selecting their pods or Strimzi's ZooKeeper pods, the ConfigMap (or, when shared \
               with the brokers, the key) `spec.zookeeper.metricsConfig` names, and objects named `*zookeeper*`, \
               `*zoo-entrance*` or with a `zk` word. Removing them from a cluster that stays on ZooKeeper is not \
               reported.",
        why: "Until the operator reports KRaft, ZooKeeper holds the metadata and is what a rollback returns to: its \
              proxy, exporter, metrics and the Services in front of them are still needed.",
        fix: "Remove them in the change that removes spec.zookeeper, after `enabled` took effect.",
        check: Some(migration::zookeeper_components_removed),
    },
    Rule {
        id: sops_plaintext::ID,
        severity: Severity::Error,
        scope: Scope::Repository,
        what: "A Secret in plain text in a YAML or JSON file whose path matches a `creation_rules[].path_regex` \
               of the repository's `.sops.yaml` (a rule without `path_regex` matches every file). Reported for \
               the cluster `(repository)`, from its files rather than a render.",
        why: "The repository declares those files SOPS-encrypted: a plain Secret there is a credential committed \
              in clear, readable by everyone with access to the repository and its history.",
        fix: "Encrypt the file with `sops encrypt --in-place FILE` (and rotate the credential: the clear \
              text stays in git history).",
        check: None,
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
         of `--from/--to` together (and the offline PR diff), `repository` the files of the validated\n\
         revision (not a render).\n\n",
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
    out.push_str(&release_tables_markdown());
    out.push_str(OUTPUT_DOC);
    out
}

/// The per-release Kafka version tables of [`release::releases`], for RULES.md.
fn release_tables_markdown() -> String {
    let mut out = String::from(
        "\n## Strimzi releases\n\n\
         The release-aware rules judge each cluster by its Strimzi release: the annotation\n\
         `kgitops.io/strimzi-release: \"<version>\"` on its Kafka, else the image tag of the cluster operator\n\
         Deployment in its render (`quay.io/strimzi/operator:<version>`), else unknown (those rules are then\n\
         skipped). Kafka versions each release supports, from its own `kafka-versions.yaml`\n\
         (`src/validate/rules/strimzi-versions.tsv`, generated by `scripts/gen-strimzi-versions`); the default\n\
         is used when `spec.kafka.version` is unset. APIs: `v1beta2` up to 0.51.x, `v1` from 0.49.0.\n\n\
         | Strimzi | Kafka (metadata version) | default | API versions |\n| --- | --- | --- | --- |\n",
    );
    for r in release::releases() {
        let kafka: Vec<String> = r
            .kafka
            .iter()
            .map(|k| format!("{} ({})", k.version, k.metadata))
            .collect();
        let apis = match (
            r.version >= release::V1_SINCE,
            r.version >= release::V1BETA2_REMOVED,
        ) {
            (_, true) => "v1",
            (true, false) => "v1beta2, v1",
            (false, false) => "v1beta2",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.release,
            kafka.join(", "),
            r.default_kafka().map_or("", |k| k.version),
            apis
        ));
    }
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
            assert_eq!(
                r.check.is_none(),
                matches!(r.scope, Scope::Schema | Scope::Repository),
                "{}",
                r.id
            );
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
