//! The `strimzi-upgrade-*` rules: a commit that leaves the upgrade path ([`super::path`]) — an
//! operator change the running Kafka version does not survive, two steps in one commit, ZooKeeper on
//! a release without it, 1.x reached without the `v1` conversion on a release serving both APIs, a
//! metadata version lowered. Each fix names the next step of the path from the base revision.
//! `v1beta2` resources on 1.x are `strimzi-api-version-not-served`'s (api_versions.rs), not repeated.

use std::cmp::Ordering;

use super::path::{self, Api, Mode};
use super::release::{self, Declared, KRAFT_ONLY_SINCE, ReleaseTable, V1_SINCE, V1BETA2_REMOVED};
use super::strimzi::KafkaCr;
use super::{Context, Hit, Snapshot};

/// A Kafka of the head revision that the base revision has too, with both releases (known ones).
struct Pair<'c> {
    base: &'c KafkaCr<'c>,
    head: &'c KafkaCr<'c>,
    from: &'c Snapshot<'c>,
    base_table: &'static ReleaseTable,
    head_release: Declared,
    head_table: &'static ReleaseTable,
}

fn pairs<'c>(ctx: &'c Context<'_>) -> Vec<Pair<'c>> {
    let Some(from) = &ctx.from else {
        return Vec::new();
    };
    ctx.to
        .kafkas
        .iter()
        .filter_map(|head| {
            let base = from.kafka(head)?;
            let base_release = release::release_of(from, Some(base))?;
            let head_release = release::release_of(&ctx.to, Some(head))?;
            Some(Pair {
                base,
                head,
                from,
                base_table: base_release.table?,
                head_table: head_release.table?,
                head_release,
            })
        })
        .collect()
}

/// "the next step of the path ...", computed from the base revision's state of the Kafka towards
/// `release`; `None` when there is no path (the message then stands alone).
fn next_step(from: &Snapshot<'_>, base: &KafkaCr<'_>, release: &str) -> Option<String> {
    let start = path::start_of(from, base).ok()?;
    let target = path::Target::new(release, None).ok()?;
    let steps = path::path(&start, &target).ok()?;
    let first = steps.first()?;
    Some(format!(
        "the next step of the path to Strimzi {release} (`kgitops strimzi path --to {release}`) is: {first}"
    ))
}

fn fix(step: Option<String>, otherwise: &str) -> String {
    match step {
        Some(step) => format!("one step per commit; {step}"),
        None => otherwise.to_string(),
    }
}

/// Where the head revision states its release, for findings about the operator change.
fn release_site(declared: &Declared) -> (String, String) {
    match &declared.source {
        release::Source::Annotation { object } => (
            object.clone(),
            format!("metadata.annotations[{}]", release::RELEASE_ANNOTATION),
        ),
        release::Source::Operator { object, .. } => (object.clone(), "spec.template.spec.containers".into()),
    }
}

/// `strimzi-upgrade-kafka-unsupported`.
pub(super) fn kafka_unsupported(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for p in pairs(ctx) {
        if p.base_table.release == p.head_table.release {
            continue;
        }
        let (Some(before), Some(after)) = (
            path::running_kafka(p.base, p.base_table),
            path::running_kafka(p.head, p.head_table),
        ) else {
            continue;
        };
        let (from, to) = (p.base_table.release, p.head_table.release);
        let message = if p.head_table.kafka_version(&before).is_none() {
            format!(
                "the operator changes from Strimzi {from} to {to} while the brokers run Kafka {before}, which Strimzi \
                 {to} does not support (it supports {}): the new operator refuses the Kafka until it runs a version \
                 it knows",
                p.head_table.kafka_list()
            )
        } else if after != before && p.base_table.kafka_version(&after).is_none() {
            format!(
                "Kafka {before} -> {after} in the same commit as the operator change Strimzi {from} -> {to}: Strimzi \
                 {from}, which reconciles until the new operator runs, does not support {after} (it supports {})",
                p.base_table.kafka_list()
            )
        } else {
            continue;
        };
        let path = if p.head.spec("/kafka/version").is_some() {
            "spec.kafka.version".to_string()
        } else {
            format!("spec.kafka.version (unset: Strimzi {to}'s default)")
        };
        hits.push(Hit {
            object: p.head.display.clone(),
            path,
            message,
            fix: Some(fix(
                next_step(p.from, p.base, to),
                "change the operator and the Kafka version in separate commits, the Kafka version always one both \
                 releases support",
            )),
        });
    }
    hits
}

/// `strimzi-upgrade-zookeeper` (revision scope: the state is wrong whatever the base).
pub(super) fn zookeeper_on_kraft_only(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in &ctx.to.kafkas {
        let Some(declared) = release::release_of(&ctx.to, Some(k)) else {
            continue;
        };
        let Some(version) = declared.version() else {
            continue;
        };
        let mode = path::mode_of(k);
        if version < KRAFT_ONLY_SINCE || mode == Mode::KRaft {
            continue;
        }
        let step = ctx.from.as_ref().and_then(|from| {
            let base = from.kafka(k)?;
            let base_release = release::release_of(from, Some(base))?.version()?;
            if base_release >= KRAFT_ONLY_SINCE {
                return None;
            }
            next_step(from, base, &declared.release)
        });
        hits.push(Hit {
            object: k.display.clone(),
            path: "spec.zookeeper".into(),
            message: format!(
                "the Kafka keeps its metadata in ZooKeeper ({mode}) but {} has no ZooKeeper support (removed in \
                 Strimzi {KRAFT_ONLY_SINCE}): the operator does not reconcile it, and no release from \
                 {KRAFT_ONLY_SINCE} can migrate it",
                declared.describe()
            ),
            fix: Some(fix(
                step,
                "keep the operator on Strimzi 0.45.x until the migration to KRaft is finished \
                 (strimzi.io/kraft: enabled, status.kafkaMetadataState KRaft, spec.zookeeper removed)",
            )),
        });
    }
    hits
}

/// `strimzi-upgrade-skips-v1-conversion`.
pub(super) fn skips_v1_conversion(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut seen = Vec::new();
    for p in pairs(ctx) {
        let (from, to) = (p.base_table, p.head_table);
        if from.version >= V1BETA2_REMOVED || to.version < V1BETA2_REMOVED {
            continue;
        }
        let why = if from.version < V1_SINCE {
            format!(
                "Strimzi {} does not serve kafka.strimzi.io/v1, so the resources and CRDs were never converted on a \
                 release serving both APIs (0.49-0.51)",
                from.release
            )
        } else if path::api_of(p.from, from.version) == Api::V1beta2 {
            format!(
                "the base revision still has kafka.strimzi.io/v1beta2 resources on Strimzi {}: they were not \
                 converted (and the CRDs do not store v1 only) before the operator change",
                from.release
            )
        } else {
            continue;
        };
        let (object, path) = release_site(&p.head_release);
        if seen.contains(&(object.clone(), path.clone())) {
            continue;
        }
        seen.push((object.clone(), path.clone()));
        hits.push(Hit {
            object,
            path,
            message: format!(
                "the operator changes from Strimzi {} to {}, which serves kafka.strimzi.io/v1 only, but {why}: the \
                 1.x CRDs cannot replace CRDs whose status.storedVersions lists v1beta2",
                from.release, to.release
            ),
            fix: Some(fix(
                next_step(p.from, p.base, to.release),
                "upgrade to 0.49-0.51 first, convert every resource to v1 there and run crd-upgrade, then 1.x",
            )),
        });
    }
    hits
}

/// `strimzi-upgrade-metadata-downgrade`.
pub(super) fn metadata_downgrade(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for p in pairs(ctx) {
        if !p.base.is_kraft(Some(p.base_table.version)) || !p.head.is_kraft(Some(p.head_table.version)) {
            continue;
        }
        let effective = |k: &KafkaCr<'_>, table: &ReleaseTable| {
            path::metadata_of(k).or_else(|| {
                let running = path::running_kafka(k, table)?;
                Some(table.kafka_version(&running)?.metadata.to_string())
            })
        };
        let (Some(before), Some(after)) = (effective(p.base, p.base_table), effective(p.head, p.head_table))
        else {
            continue;
        };
        if path::metadata_cmp(&after, &before) != Some(Ordering::Less) {
            continue;
        }
        let (field, how) = if path::metadata_of(p.head).is_some() {
            ("spec.kafka.metadataVersion", "set to")
        } else {
            (
                "spec.kafka.version",
                "unset, so the operator would move it to the Kafka version's,",
            )
        };
        hits.push(Hit {
            object: p.head.display.clone(),
            path: field.into(),
            message: format!(
                "the metadata version goes from {before} down to {after} (metadataVersion {how} {after}): Kafka and \
                 Strimzi do not lower a KRaft metadata version (the operator keeps {before} and warns)"
            ),
            fix: Some(match next_step(p.from, p.base, p.head_table.release) {
                Some(step) => format!("keep metadataVersion at {before} or higher; {step}"),
                None => format!(
                    "keep metadataVersion at {before} or higher, and a Kafka version whose metadata version is at \
                     least {before}"
                ),
            }),
        });
    }
    hits
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::validate::check_rules;
    use crate::validate::rules::release::RELEASE_ANNOTATION;

    fn kafka(api: &str, release: &str, kafka: Value, zookeeper: bool) -> Value {
        let mut spec = json!({"kafka": kafka});
        if zookeeper {
            spec["zookeeper"] = json!({"replicas": 3});
        }
        json!({"apiVersion": format!("kafka.strimzi.io/{api}"), "kind": "Kafka",
            "metadata": {"name": "main", "namespace": "kafka-prod", "annotations": {RELEASE_ANNOTATION: release}},
            "spec": spec})
    }

    fn found(from: &[Value], to: &[Value]) -> Vec<(String, String, String)> {
        check_rules("prod", Some(from), to)
            .into_iter()
            .filter(|f| f.rule.starts_with("strimzi-upgrade-"))
            .map(|f| (f.rule, f.message, f.fix))
            .collect()
    }

    fn kraft(release: &str, version: &str) -> Value {
        kafka("v1beta2", release, json!({"version": version}), false)
    }

    #[test]
    fn an_operator_change_the_running_kafka_does_not_survive() {
        let f = found(&[kraft("0.45.2", "3.9.2")], &[kraft("0.47.0", "3.9.2")]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, "strimzi-upgrade-kafka-unsupported");
        assert!(
            f[0].1
                .contains("Kafka 3.9.2, which Strimzi 0.47.0 does not support"),
            "{f:?}"
        );
        assert!(f[0].2.contains("Kafka 3.9.2 -> 3.9.1 on Strimzi 0.45.2"), "{f:?}");
        // Both in one commit: the new Kafka version is unknown to the old operator.
        let f = found(&[kraft("0.47.0", "3.9.1")], &[kraft("0.50.1", "4.1.1")]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].1.contains("Kafka 3.9.1, which Strimzi 0.50.1"), "{f:?}");
        let f = found(&[kraft("0.47.0", "4.0.0")], &[kraft("0.50.1", "4.1.1")]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].1.contains("in the same commit"), "{f:?}");
        assert!(f[0].2.contains("operator Strimzi 0.47.0 -> 0.50.1"), "{f:?}");
        // One step per commit is clean.
        assert!(found(&[kraft("0.47.0", "4.0.0")], &[kraft("0.50.1", "4.0.0")]).is_empty());
        assert!(found(&[kraft("0.50.1", "4.0.0")], &[kraft("0.50.1", "4.1.1")]).is_empty());
    }

    #[test]
    fn zookeeper_on_046_and_later() {
        let zk = |release: &str| kafka("v1beta2", release, json!({"version": "3.9.0"}), true);
        let f = found(&[zk("0.45.2")], &[zk("0.46.0")]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, "strimzi-upgrade-zookeeper");
        assert!(f[0].2.contains("[migration]"), "{f:?}");
        assert!(found(&[zk("0.45.0")], &[zk("0.45.2")]).is_empty());
        // Revision scope: reported without a base too.
        let alone: Vec<String> = check_rules("prod", None, &[zk("0.47.0")])
            .into_iter()
            .map(|f| f.rule)
            .filter(|r| r.starts_with("strimzi-upgrade-"))
            .collect();
        assert_eq!(alone, ["strimzi-upgrade-zookeeper"]);
    }

    #[test]
    fn reaching_1x_without_the_conversion() {
        let v1 = |release: &str, version: &str| kafka("v1", release, json!({"version": version}), false);
        // From a release that never served v1 (resources already v1 in the head: still skipped).
        let f = found(&[kraft("0.48.0", "4.1.0")], &[v1("1.0.0", "4.1.0")]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, "strimzi-upgrade-skips-v1-conversion");
        assert!(f[0].2.contains("operator Strimzi 0.48.0 -> 0.51.0"), "{f:?}");
        // From 0.51 with v1beta2 resources: convert there first.
        let f = found(&[kraft("0.51.0", "4.2.0")], &[v1("1.2.0", "4.2.0")]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].2.contains("convert every Strimzi resource"), "{f:?}");
        // Converted on 0.51: clean.
        assert!(found(&[v1("0.51.0", "4.2.0")], &[v1("1.2.0", "4.2.0")]).is_empty());
    }

    #[test]
    fn a_metadata_version_lowered() {
        let mv = |m: &str| {
            kafka(
                "v1",
                "1.2.0",
                json!({"version": "4.3.1", "metadataVersion": m}),
                false,
            )
        };
        let f = found(&[mv("4.3-IV0")], &[mv("4.2-IV1")]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, "strimzi-upgrade-metadata-downgrade");
        assert!(f[0].1.contains("from 4.3-IV0 down to 4.2-IV1"), "{f:?}");
        assert!(found(&[mv("4.2-IV1")], &[mv("4.3-IV0")]).is_empty());
        // Unset (operator-managed at 4.3-IV0) to an explicit older one.
        let unset = kafka("v1", "1.2.0", json!({"version": "4.3.1"}), false);
        assert_eq!(found(&[unset], &[mv("4.2-IV1")]).len(), 1);
    }
}
