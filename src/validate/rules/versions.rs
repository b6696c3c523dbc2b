//! Rules that judge a Kafka by its cluster's Strimzi release ([`super::release`]): the Kafka version
//! the release supports, the KRaft `metadataVersion` against the Kafka version and the release, the
//! ZooKeeper-era version settings a KRaft cluster must not carry, and the release declaration itself.
//! Every message names the release it judged against and where that came from. A cluster whose
//! release is unknown is not judged by these rules (see the release module for why).

use std::cmp::Ordering;

use serde_json::Value;

use super::release::{
    self, Declared, KRAFT_ONLY_SINCE, KafkaVersion, MetadataVersion, ReleaseTable, Version,
};
use super::strimzi::KafkaCr;
use super::{Context, Hit};

fn hit(object: &str, path: &str, message: String, fix: String) -> Hit {
    Hit {
        object: object.to_string(),
        path: path.to_string(),
        message,
        fix: Some(fix),
    }
}

/// Every Kafka of the head render whose release kgitops knows, with that release and its table.
fn judged<'c>(ctx: &'c Context<'_>) -> Vec<(&'c KafkaCr<'c>, Declared, &'static ReleaseTable)> {
    ctx.to
        .kafkas
        .iter()
        .filter_map(|k| {
            let declared = release::release_of(&ctx.to, Some(k))?;
            let table = declared.table?;
            Some((k, declared, table))
        })
        .collect()
}

/// The releases (first..last) that support Kafka `version`, for a more useful message.
fn supported_by(version: &str) -> Option<String> {
    let names: Vec<&str> = release::releases()
        .iter()
        .filter(|r| r.kafka_version(version).is_some())
        .map(|r| r.release)
        .collect();
    match names.as_slice() {
        [] => None,
        [one] => Some(format!("Strimzi {one}")),
        [first, .., last] => Some(format!("Strimzi {first} to {last}")),
    }
}

pub(super) fn version_unsupported(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (k, declared, table) in judged(ctx) {
        let Some(version) = k.spec("/kafka/version").and_then(Value::as_str) else {
            continue;
        };
        if table.kafka_version(version).is_some() {
            continue;
        }
        let elsewhere = supported_by(version)
            .map(|r| format!(" (Kafka {version} is supported by {r})"))
            .unwrap_or_default();
        let default = table
            .default_kafka()
            .map(|d| format!(" ({} is Strimzi {}'s default)", d.version, table.release))
            .unwrap_or_default();
        hits.push(hit(
            &k.display,
            "spec.kafka.version",
            format!(
                "Kafka {version} is not supported by {}; it supports {}{elsewhere}",
                declared.describe(),
                table.kafka_list()
            ),
            format!(
                "use one of {}{default}, or run a Strimzi release that supports {version}",
                table.kafka_list()
            ),
        ));
    }
    hits
}

/// The Kafka version a Kafka runs (its `spec.kafka.version`, else the release's default), when the
/// release supports it.
fn kafka_version<'t>(k: &KafkaCr<'_>, table: &'t ReleaseTable) -> Option<&'t KafkaVersion> {
    match k.spec("/kafka/version").and_then(Value::as_str) {
        Some(v) => table.kafka_version(v),
        None => table.default_kafka(),
    }
}

/// The oldest metadata version a release accepts (Strimzi's `validateMetadataVersion`): 3.3-IV3 from
/// 0.46.0 (Kafka 4), 3.3-IV0 before (the oldest whose initial version `kafka-storage.sh` can set).
pub(super) fn oldest_metadata(release: Version) -> MetadataVersion {
    let iv = if release >= KRAFT_ONLY_SINCE { 3 } else { 0 };
    MetadataVersion {
        major: 3,
        minor: 3,
        iv: Some(iv),
    }
}

/// Why a metadata version is not one the release's Kafka knows, if it is not.
fn metadata_invalid(mv_text: &str, table: &ReleaseTable) -> Option<String> {
    let Some(mv) = MetadataVersion::parse(mv_text) else {
        return Some(format!(
            "{mv_text:?} is not a KRaft metadata version (MAJOR.MINOR or MAJOR.MINOR-IVn, like 4.3-IV0)"
        ));
    };
    let oldest = oldest_metadata(table.version);
    let older = match mv.cmp_release(&oldest) {
        Ordering::Less => true,
        Ordering::Equal => mv.iv.is_some_and(|iv| Some(iv) < oldest.iv),
        Ordering::Greater => false,
    };
    if older {
        return Some(format!(
            "{mv_text} is older than {}.{}-IV{}, the oldest metadata version Strimzi {} accepts",
            oldest.major,
            oldest.minor,
            oldest.iv.unwrap_or(0),
            table.release
        ));
    }
    let known: Vec<(MetadataVersion, &str)> = table
        .kafka
        .iter()
        .filter_map(|k| Some((MetadataVersion::parse(k.metadata)?, k.metadata)))
        .collect();
    let (newest, newest_text) = known.iter().max_by(|a, b| a.0.cmp_release(&b.0))?;
    if mv.cmp_release(newest) == Ordering::Greater {
        return Some(format!(
            "{mv_text} is newer than every Kafka of Strimzi {} knows (newest: {newest_text})",
            table.release
        ));
    }
    // The release file names the feature level of a minor (4.2-IV1): a higher one of that minor is
    // not a production metadata version of the Kafka the release ships.
    if let Some(iv) = mv.iv
        && let Some((_, text)) = known
            .iter()
            .filter(|(k, _)| k.cmp_release(&mv) == Ordering::Equal)
            .find(|(k, _)| k.iv.is_some_and(|kiv| iv > kiv))
    {
        return Some(format!(
            "{mv_text} is not a metadata version the Kafka of Strimzi {} knows (its {}.{} level is {text})",
            table.release, mv.major, mv.minor
        ));
    }
    None
}

/// Every KRaft Kafka with a `metadataVersion`, its release table and Kafka version.
fn metadata_sites<'c>(
    ctx: &'c Context<'_>,
) -> Vec<(&'c KafkaCr<'c>, Declared, &'static ReleaseTable, &'c str)> {
    judged(ctx)
        .into_iter()
        .filter(|(k, declared, _)| k.is_kraft(declared.version()))
        .filter_map(|(k, declared, table)| {
            let mv = k.spec("/kafka/metadataVersion")?.as_str()?;
            Some((k, declared, table, mv))
        })
        .collect()
}

pub(super) fn metadata_version_invalid(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (k, declared, table, mv) in metadata_sites(ctx) {
        let Some(why) = metadata_invalid(mv, table) else {
            continue;
        };
        let suggestion = kafka_version(k, table)
            .map(|kv| {
                format!(
                    "use {} (Kafka {}'s), or remove metadataVersion to get it",
                    kv.metadata, kv.version
                )
            })
            .unwrap_or_else(|| "use the metadata version of the cluster's Kafka version".into());
        hits.push(hit(
            &k.display,
            "spec.kafka.metadataVersion",
            format!(
                "{why}; judged against {}: the operator refuses the resource (InvalidResourceException)",
                declared.describe()
            ),
            suggestion,
        ));
    }
    hits
}

/// (Kafka, release, Kafka version, metadata version, ordering of metadataVersion against the Kafka
/// version's) for every valid metadataVersion.
fn metadata_vs_kafka<'c>(
    ctx: &'c Context<'_>,
) -> Vec<(
    &'c KafkaCr<'c>,
    Declared,
    &'static KafkaVersion,
    &'c str,
    Ordering,
)> {
    metadata_sites(ctx)
        .into_iter()
        .filter(|(_, _, table, mv)| metadata_invalid(mv, table).is_none())
        .filter_map(|(k, declared, table, mv)| {
            let kv = kafka_version(k, table)?;
            let ord = MetadataVersion::parse(mv)?.cmp_release(&MetadataVersion::parse(kv.metadata)?);
            Some((k, declared, kv, mv, ord))
        })
        .collect()
}

pub(super) fn metadata_version_above_kafka(ctx: &Context<'_>) -> Vec<Hit> {
    metadata_vs_kafka(ctx)
        .into_iter()
        .filter(|(.., ord)| *ord == Ordering::Greater)
        .map(|(k, declared, kv, mv, _)| {
            hit(
                &k.display,
                "spec.kafka.metadataVersion",
                format!(
                    "metadataVersion {mv} is newer than Kafka {} (metadata {}) on {}: the operator keeps \
                     the current metadata version (or {} on a new cluster), so the setting is not in effect",
                    kv.version,
                    kv.metadata,
                    declared.describe(),
                    kv.metadata
                ),
                format!(
                    "set metadataVersion to at most {} or upgrade spec.kafka.version first (the metadata version \
                     is raised after the brokers run the new Kafka)",
                    kv.metadata
                ),
            )
        })
        .collect()
}

pub(super) fn metadata_version_behind(ctx: &Context<'_>) -> Vec<Hit> {
    metadata_vs_kafka(ctx)
        .into_iter()
        .filter(|(.., ord)| *ord == Ordering::Less)
        .map(|(k, declared, kv, mv, _)| {
            hit(
                &k.display,
                "spec.kafka.metadataVersion",
                format!(
                    "metadataVersion {mv} is older than Kafka {} (metadata {}) on {}: the upgrade is not \
                     finished (Strimzi sets the KafkaMetadataVersion warning condition)",
                    kv.version,
                    kv.metadata,
                    declared.describe()
                ),
                format!(
                    "once the brokers run Kafka {} and no downgrade is planned, set metadataVersion to {}",
                    kv.version, kv.metadata
                ),
            )
        })
        .collect()
}

/// ZooKeeper-era settings KRaft ignores, with Strimzi's `KafkaSpecChecker` condition reason.
const LEGACY_VERSION_KEYS: [(&str, &str); 2] = [
    (
        "inter.broker.protocol.version",
        "KafkaInterBrokerProtocolVersionInKRaft",
    ),
    (
        "log.message.format.version",
        "KafkaLogMessageFormatVersionInKRaft",
    ),
];

pub(super) fn kraft_legacy_version_config(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    for k in &ctx.to.kafkas {
        let declared = release::release_of(&ctx.to, Some(k));
        if !k.is_kraft(declared.as_ref().and_then(Declared::version)) {
            continue;
        }
        let Some(config) = k.spec("/kafka/config").and_then(Value::as_object) else {
            continue;
        };
        let judged = declared
            .map(|d| format!(" on {}", d.describe()))
            .unwrap_or_default();
        for (key, reason) in LEGACY_VERSION_KEYS {
            if config.contains_key(key) {
                hits.push(hit(
                    &k.display,
                    &format!("spec.kafka.config[{key}]"),
                    format!(
                        "{key} is not used by KRaft clusters, and this one runs KRaft{judged}: Strimzi sets \
                         the {reason} warning condition. The KRaft equivalent is spec.kafka.metadataVersion"
                    ),
                    format!("remove {key} from spec.kafka.config"),
                ));
            }
        }
    }
    hits
}

/// A Kafka whose annotation names another release than the operator Deployment of the render, or a
/// render with operators of two releases: validation judged by one release, the cluster runs another.
pub(super) fn release_conflict(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    let operators = release::operators(&ctx.to);
    let mut releases: Vec<&str> = operators.iter().map(|o| o.release.as_str()).collect();
    releases.sort();
    releases.dedup();
    if releases.len() > 1 {
        for o in &operators {
            let release::Source::Operator { object, image } = &o.source else {
                continue;
            };
            hits.push(hit(
                object,
                "spec.template.spec.containers",
                format!(
                    "the render holds cluster operators of Strimzi {} (image {image} here): the release of the \
                     cluster cannot be told",
                    releases.join(" and ")
                ),
                "keep one cluster operator Deployment per cluster render".into(),
            ));
        }
        return hits;
    }
    let Some(operator) = operators.first() else {
        return hits;
    };
    for k in &ctx.to.kafkas {
        let Some(annotated) = release::annotated(k) else {
            continue;
        };
        if annotated.release != operator.release {
            hits.push(hit(
                &k.display,
                &format!("metadata.annotations[{}]", release::RELEASE_ANNOTATION),
                format!(
                    "{} says Strimzi {}, but the render installs {}: this Kafka was judged by {}, the cluster \
                     runs {}",
                    release::RELEASE_ANNOTATION,
                    annotated.release,
                    operator.describe(),
                    annotated.release,
                    operator.release
                ),
                format!(
                    "set {} to \"{}\" (or remove it), or include the operator release the Kafka is written for",
                    release::RELEASE_ANNOTATION,
                    operator.release
                ),
            ));
        }
    }
    hits
}

/// A declared release kgitops has no data for (`latest`, a typo, a release older than 0.45.0 or
/// newer than the table): the release rules are skipped for it, which the user should know.
pub(super) fn release_unknown(ctx: &Context<'_>) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut seen: Vec<Declared> = Vec::new();
    for k in &ctx.to.kafkas {
        seen.extend(release::annotated(k));
    }
    seen.extend(release::operators(&ctx.to));
    let known = || {
        release::releases()
            .iter()
            .map(|r| r.release)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for d in seen.into_iter().filter(|d| d.table.is_none()) {
        let (object, path) = match &d.source {
            release::Source::Annotation { object } => (
                object.clone(),
                format!("metadata.annotations[{}]", release::RELEASE_ANNOTATION),
            ),
            release::Source::Operator { object, .. } => {
                (object.clone(), "spec.template.spec.containers".into())
            }
        };
        hits.push(hit(
            &object,
            &path,
            format!(
                "Strimzi release {:?} ({}) is not one kgitops has data for, so the release-aware rules \
                 (Kafka and metadata versions, served API versions) are skipped for this cluster",
                d.release, d.source
            ),
            format!("name a released version: {}", known()),
        ));
    }
    hits
}
