//! The upgrade path of one Strimzi cluster: from what its render runs (operator release, Kafka
//! version, metadata version, ZooKeeper or KRaft, `v1beta2` or `v1` resources) to a target release,
//! the shortest sequence of steps, each one commit (or, for the CRD storage version, one command),
//! in which every state in between is one the operator accepts. Owns that search and the reading of
//! a render into its start state; the per-release Kafka tables and `release_of` are
//! [`super::release`]'s, the Kafka resource model [`super::strimzi`]'s.
//!
//! The constraints, from the Strimzi upgrade documentation and CHANGELOG of every release 0.45–1.2:
//! - an operator change (never a downgrade) only while the running Kafka version is supported by
//!   the release before and after it (Strimzi tolerates the other order with an "unsupported Kafka
//!   version" error on the Kafka until `spec.kafka.version` is fixed; kgitops does not plan errors);
//! - ZooKeeper is gone from 0.46.0: the KRaft migration happens on 0.45.x, as one marked step (its
//!   commits and gates are the migration rules' and the gates' business);
//! - `v1` is served from 0.49.0, `v1beta2` no longer from 1.0.0: the resources are converted on
//!   0.49–0.51, then the CRDs store `v1` only (Strimzi's `crd-upgrade`), as the last step before 1.x;
//! - a Kafka version change is an upgrade, or a patch downgrade that keeps the metadata version
//!   (0.45.2 runs Kafka 3.9.2, which no later release supports: 3.9.1 is the way out);
//! - the metadata version is never lowered and is raised after the Kafka upgrade; unset, the
//!   operator raises it itself after each Kafka upgrade.
//!
//! Among the shortest paths the search prefers the newest release and the newest Kafka version at
//! each step (fewer patch releases to run later, fewer known bugs), which makes it deterministic.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use super::Snapshot;
use super::release::{
    self, Declared, KRAFT_ONLY_SINCE, MetadataVersion, ReleaseTable, V1_SINCE, V1BETA2_REMOVED, Version,
};
use super::strimzi::{KafkaCr, MetadataMode, STRIMZI_GROUP};
use crate::manifest::crd;

/// The group of StrimziPodSet, which changes API version with the others.
const CORE_GROUP: &str = "core.strimzi.io";

/// The oldest Kafka version Strimzi migrates from ZooKeeper to KRaft (`proc-deploy-migrate-kraft`).
const MIGRATION_MIN_KAFKA: Version = Version(3, 7, 0);

/// Why no path could be computed (exit code 2 in the CLI).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("the render has no Kafka resource (kafka.strimzi.io/v1beta2 or v1)")]
    NoKafka,
    #[error("the render has several Kafka resources ({0}): the path is computed for a cluster with one")]
    SeveralKafkas(String),
    #[error(
        "{kafka}: its Strimzi release is not known (no {} annotation, no cluster operator Deployment in the render)",
        release::RELEASE_ANNOTATION
    )]
    ReleaseNotDeclared { kafka: String },
    #[error("Strimzi release {release:?} is not one kgitops has data for (known: {known})")]
    UnknownRelease { release: String, known: String },
    #[error("{kafka}: Kafka {version} is not supported by Strimzi {release} (it supports {supported})")]
    KafkaUnsupported {
        kafka: String,
        version: String,
        release: String,
        supported: String,
    },
    #[error("{kafka}: metadataVersion {value:?} is not a KRaft metadata version")]
    InvalidMetadata { kafka: String, value: String },
    #[error("Strimzi {from} -> {to} is an operator downgrade: the path only goes forward")]
    ReleaseDowngrade { from: String, to: String },
    #[error(
        "Kafka {from} -> {to} is a downgrade across minor versions, which Kafka and Strimzi do not support"
    )]
    KafkaDowngrade { from: String, to: String },
    #[error(
        "metadata version {from} -> {to} (Kafka {kafka}'s) would lower the metadata version, which Kafka and \
         Strimzi do not allow"
    )]
    MetadataDowngrade { from: String, to: String, kafka: String },
    #[error("{kafka}: {why}; no step of the path can start from there")]
    Stuck { kafka: String, why: String },
    #[error("no upgrade path from {from} to {to} satisfies the release tables")]
    NoPath { from: String, to: String },
}

/// Where a Kafka keeps its metadata, as the path sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Mode {
    ZooKeeper,
    /// `strimzi.io/kraft: migration` (or `rollback`) in progress.
    Migration,
    KRaft,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::ZooKeeper => "ZooKeeper",
            Mode::Migration => "ZooKeeper-to-KRaft migration in progress",
            Mode::KRaft => "KRaft",
        })
    }
}

/// Which Strimzi API the cluster's resources (and CRDs) are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Api {
    /// At least one Strimzi resource is still `v1beta2` (or older).
    #[serde(rename = "v1beta2")]
    V1beta2,
    /// Every Strimzi resource is `v1`; the CRDs may still store `v1beta2`.
    #[serde(rename = "v1")]
    V1,
    /// Every resource `v1` and the CRDs store `v1` only: a release from 1.0.0, CRDs in the render
    /// with `v1` as storage version, or after the `crd-upgrade` step.
    #[serde(rename = "v1-stored")]
    V1Stored,
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Api::V1beta2 => "kafka.strimzi.io/v1beta2",
            Api::V1 => "kafka.strimzi.io/v1 (CRDs storing v1beta2)",
            Api::V1Stored => "kafka.strimzi.io/v1",
        })
    }
}

/// One point of the path: what the cluster runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct State {
    /// The operator release (`0.45.2`).
    pub release: &'static str,
    /// The Kafka version the brokers run (`3.9.2`).
    pub kafka: &'static str,
    /// `spec.kafka.metadataVersion`; `None` when unset (the operator keeps it at the Kafka version's).
    pub metadata: Option<String>,
    pub mode: Mode,
    pub api: Api,
}

impl State {
    fn table(&self) -> &'static ReleaseTable {
        // Every state's release comes from the table (start: checked; steps: from `releases()`).
        release::table(self.release).unwrap_or_else(|| &release::releases()[0])
    }

    /// The metadata version of the running Kafka version, as the release's file names it.
    fn kafka_metadata(&self) -> &'static str {
        self.table().kafka_version(self.kafka).map_or("", |k| k.metadata)
    }

    /// The metadata version in effect: the explicit one, else the running Kafka version's.
    fn effective_metadata(&self) -> String {
        self.metadata
            .clone()
            .unwrap_or_else(|| self.kafka_metadata().to_string())
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Strimzi {}, Kafka {}", self.release, self.kafka)?;
        if self.mode != Mode::ZooKeeper {
            match &self.metadata {
                Some(mv) => write!(f, ", metadata {mv}")?,
                None => write!(f, ", metadata {} (unset)", self.kafka_metadata())?,
            }
        }
        write!(f, ", {}, {}", self.mode, self.api)
    }
}

/// One step of a path. Each is one commit, except [`Step::CrdUpgrade`] (a commit and a command)
/// and [`Step::KraftMigration`] (the migration's own sequence of commits).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Step {
    /// `spec.kafka.version` is unset: set it to what runs, so that operator changes do not change
    /// Kafka with them.
    PinKafkaVersion { release: String, kafka: String },
    /// The marked step: ZooKeeper to KRaft, on a release up to 0.45.
    KraftMigration {
        release: String,
        kafka: String,
        /// `strimzi.io/kraft: migration` (or `rollback`) is already set: finish it (or roll back and
        /// start over) before anything else.
        in_progress: bool,
    },
    /// `spec.kafka.version` from -> to (`downgrade`: a patch downgrade keeping the metadata version).
    KafkaVersion {
        release: String,
        from: String,
        to: String,
        downgrade: bool,
        /// The metadata version the operator moves to itself (metadataVersion unset).
        metadata_follows: Option<String>,
    },
    /// `spec.kafka.metadataVersion` from -> to, once the brokers run the Kafka version.
    MetadataVersion {
        release: String,
        kafka: String,
        from: String,
        to: String,
    },
    /// The cluster operator (CRDs, RBAC, Deployment: `infrastructure/strimzi/<to>/`) from -> to.
    Operator {
        from: String,
        to: String,
        kafka: String,
        /// Crossing 0.49.0, where the User Operator refuses KafkaUser `acls[].operation`.
        kafka_user_operations: bool,
    },
    /// Every Strimzi resource to `kafka.strimzi.io/v1`, on a release serving both.
    ConvertToV1 { release: String },
    /// The CRDs to `v1` as storage version and `status.storedVersions: [v1]` (`crd-upgrade`).
    CrdUpgrade { release: String },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::PinKafkaVersion { release, kafka } => write!(
                f,
                "set spec.kafka.version: {kafka} (what Strimzi {release} runs by default), so that the operator \
                 changes below do not change Kafka with them"
            ),
            Step::KraftMigration {
                release,
                kafka,
                in_progress,
            } => write!(
                f,
                "[migration] {} from ZooKeeper to KRaft on Strimzi {release} with Kafka {kafka} (0.45.x is the \
                 last line that can; no operator upgrade before it is finished): brokers in a KafkaNodePool named \
                 `kafka` with `strimzi.io/node-pools: enabled`; a dedicated controller pool and \
                 `strimzi.io/kraft: migration` until status.kafkaMetadataState is KRaftPostMigration; \
                 `strimzi.io/kraft: enabled` until it is KRaft; then remove spec.zookeeper, the ZooKeeper-only \
                 objects and inter.broker.protocol.version/log.message.format.version",
                if *in_progress {
                    "finish the migration"
                } else {
                    "migrate"
                }
            ),
            Step::KafkaVersion {
                release,
                from,
                to,
                downgrade,
                metadata_follows,
            } => {
                write!(f, "Kafka {from} -> {to} on Strimzi {release} (spec.kafka.version")?;
                if *downgrade {
                    write!(
                        f,
                        "; a patch downgrade keeping the metadata version: no later release supports {from}"
                    )?;
                }
                if let Some(mv) = metadata_follows {
                    write!(f, "; the operator then raises the metadata version to {mv}")?;
                }
                f.write_str(")")
            }
            Step::MetadataVersion {
                release,
                kafka,
                from,
                to,
            } => write!(
                f,
                "metadata version {from} -> {to} on Strimzi {release} (spec.kafka.metadataVersion, once every \
                 broker runs Kafka {kafka}; it cannot be lowered afterwards)"
            ),
            Step::Operator {
                from,
                to,
                kafka,
                kafka_user_operations,
            } => {
                write!(
                    f,
                    "operator Strimzi {from} -> {to} (its CRDs, RBAC and Deployment from infrastructure/strimzi/{to}/, \
                     vendored by scripts/vendor-strimzi, and the Kafka's {} annotation; Kafka {kafka} is supported \
                     by both",
                    release::RELEASE_ANNOTATION
                )?;
                if *kafka_user_operations {
                    write!(
                        f,
                        "; every KafkaUser uses acls[].operations, not operation, before it: {V1_SINCE} refuses the \
                         singular"
                    )?;
                }
                f.write_str(")")
            }
            Step::ConvertToV1 { release } => write!(
                f,
                "convert every Strimzi resource to kafka.strimzi.io/v1 on Strimzi {release}, which serves v1beta2 and \
                 v1 (the v1 API conversion tool's convert-file; `kgitops validate` shows any field v1 removed)"
            ),
            Step::CrdUpgrade { release } => write!(
                f,
                "CRD storage version v1 on Strimzi {release}: the CRDs in git with v1 as storage version (what \
                 `v1-api-conversion.sh crd-upgrade` sets, so that kgitops does not revert it) and `crd-upgrade` run \
                 against the cluster (every object stored as v1, status.storedVersions [v1]); the last step before \
                 1.x"
            ),
        }
    }
}

/// Where the path should end.
#[derive(Clone, Debug)]
pub struct Target {
    pub release: &'static ReleaseTable,
    /// The Kafka version to end on; `None`: the release's default (or the running one if the
    /// release supports it and it is newer).
    pub kafka: Option<String>,
}

impl Target {
    /// The target release `release` (`1.2.0`), with an optional Kafka version.
    pub fn new(release: &str, kafka: Option<&str>) -> Result<Target, PathError> {
        Ok(Target {
            release: known(release)?,
            kafka: kafka.map(str::to_string),
        })
    }
}

fn known(release: &str) -> Result<&'static ReleaseTable, PathError> {
    release::table(release).ok_or_else(|| PathError::UnknownRelease {
        release: release.to_string(),
        known: release::releases()
            .iter()
            .map(|r| r.release)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// What a render runs, read for the path.
#[derive(Clone, Debug)]
pub struct Start {
    /// `Kafka/kafka-prod/main`.
    pub kafka: String,
    /// Where the release was read from (`annotation ...` or `operator image ...`).
    pub declared: Declared,
    pub state: State,
    /// `spec.kafka.version` is set (else the release's default runs).
    pub kafka_pinned: bool,
}

/// Orders two metadata versions: by MAJOR.MINOR, then by feature level when both name one
/// (`3.9` and `3.9-IV0` are the same production version).
pub(crate) fn metadata_cmp(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (MetadataVersion::parse(a)?, MetadataVersion::parse(b)?);
    Some(match a.cmp_release(&b) {
        Ordering::Equal => match (a.iv, b.iv) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => Ordering::Equal,
        },
        other => other,
    })
}

/// `spec.kafka.metadataVersion` as written (a string; a YAML number like `3.9` read as such).
pub(crate) fn metadata_of(k: &KafkaCr<'_>) -> Option<String> {
    match k.spec("/kafka/metadataVersion")? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The Kafka version a Kafka runs on `table`: `spec.kafka.version`, else the release's default.
pub(crate) fn running_kafka(k: &KafkaCr<'_>, table: &ReleaseTable) -> Option<String> {
    match k.spec("/kafka/version").and_then(Value::as_str) {
        Some(v) => Some(v.trim().to_string()),
        None => table.default_kafka().map(|d| d.version.to_string()),
    }
}

/// The path's view of a Kafka's metadata mode.
pub(crate) fn mode_of(k: &KafkaCr<'_>) -> Mode {
    match k.metadata_mode() {
        MetadataMode::ZooKeeper => Mode::ZooKeeper,
        MetadataMode::Migration => Mode::Migration,
        MetadataMode::KRaft => Mode::KRaft,
    }
}

/// Which API the render's Strimzi resources and CRDs are on (see [`Api`]).
pub(crate) fn api_of(snapshot: &Snapshot<'_>, release: Version) -> Api {
    let old = snapshot.objects.iter().any(|o| {
        o.get("apiVersion")
            .and_then(Value::as_str)
            .and_then(|api| api.split_once('/'))
            .is_some_and(|(group, version)| {
                (group == STRIMZI_GROUP || group == CORE_GROUP) && version != "v1"
            })
    });
    if old {
        return Api::V1beta2;
    }
    let strimzi_crds: Vec<&Value> = snapshot
        .objects
        .iter()
        .filter(|o| {
            crd::is_crd(o)
                && o.pointer("/spec/group")
                    .and_then(Value::as_str)
                    .is_some_and(|g| g == STRIMZI_GROUP || g == CORE_GROUP)
        })
        .collect();
    let crds_store_v1 =
        !strimzi_crds.is_empty() && strimzi_crds.iter().all(|c| crd::storage_version(c) == Some("v1"));
    if release >= V1BETA2_REMOVED || crds_store_v1 {
        Api::V1Stored
    } else {
        Api::V1
    }
}

/// Reads the start state of a render with one Kafka.
pub fn start(snapshot: &Snapshot<'_>) -> Result<Start, PathError> {
    let k = match snapshot.kafkas.as_slice() {
        [] => return Err(PathError::NoKafka),
        [one] => one,
        several => {
            return Err(PathError::SeveralKafkas(
                several
                    .iter()
                    .map(|k| k.display.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
    };
    start_of(snapshot, k)
}

/// Reads the start state of one Kafka of a render.
pub fn start_of(snapshot: &Snapshot<'_>, k: &KafkaCr<'_>) -> Result<Start, PathError> {
    let declared = release::release_of(snapshot, Some(k)).ok_or_else(|| PathError::ReleaseNotDeclared {
        kafka: k.display.clone(),
    })?;
    let table = known(&declared.release)?;
    let version = running_kafka(k, table).unwrap_or_default();
    let kafka = table
        .kafka_version(&version)
        .ok_or_else(|| PathError::KafkaUnsupported {
            kafka: k.display.clone(),
            version: version.clone(),
            release: table.release.to_string(),
            supported: table.kafka_list(),
        })?
        .version;
    let metadata = metadata_of(k);
    if let Some(mv) = &metadata
        && MetadataVersion::parse(mv).is_none()
    {
        return Err(PathError::InvalidMetadata {
            kafka: k.display.clone(),
            value: mv.clone(),
        });
    }
    let mode = mode_of(k);
    let api = api_of(snapshot, table.version);
    let stuck = |why: String| PathError::Stuck {
        kafka: k.display.clone(),
        why,
    };
    if mode != Mode::KRaft && table.version >= KRAFT_ONLY_SINCE {
        return Err(stuck(format!(
            "it is not KRaft ({mode}) but Strimzi {} has no ZooKeeper support (since {KRAFT_ONLY_SINCE}): move \
             the operator back to 0.45.x and migrate there",
            table.release
        )));
    }
    if api == Api::V1beta2 && table.version >= V1BETA2_REMOVED {
        return Err(stuck(format!(
            "it has kafka.strimzi.io/v1beta2 resources, which Strimzi {} does not serve",
            table.release
        )));
    }
    Ok(Start {
        kafka: k.display.clone(),
        declared,
        kafka_pinned: k.spec("/kafka/version").is_some(),
        state: State {
            release: table.release,
            kafka,
            metadata,
            mode,
            api,
        },
    })
}

/// The Kafka version the path ends on, checked against the start.
pub fn target_kafka(from: &State, target: &Target) -> Result<&'static str, PathError> {
    let table = target.release;
    let running = Version::parse(from.kafka);
    let chosen = match &target.kafka {
        Some(v) => table
            .kafka_version(v)
            .ok_or_else(|| PathError::KafkaUnsupported {
                kafka: "the target".into(),
                version: v.clone(),
                release: table.release.to_string(),
                supported: table.kafka_list(),
            })?,
        None => {
            let default = table.default_kafka().ok_or_else(|| PathError::NoPath {
                from: from.to_string(),
                to: format!("Strimzi {}", table.release),
            })?;
            // Keep a newer running version the target supports rather than plan a downgrade.
            match table.kafka_version(from.kafka) {
                Some(k) if Version::parse(k.version) > Version::parse(default.version) => k,
                _ => default,
            }
        }
    };
    let to = Version::parse(chosen.version);
    if let (Some(a), Some(b)) = (running, to)
        && b < a
        && (b.0, b.1) != (a.0, a.1)
    {
        return Err(PathError::KafkaDowngrade {
            from: from.kafka.to_string(),
            to: chosen.version.to_string(),
        });
    }
    if metadata_cmp(&from.effective_metadata(), chosen.metadata) == Some(Ordering::Greater)
        && from.mode == Mode::KRaft
    {
        return Err(PathError::MetadataDowngrade {
            from: from.effective_metadata(),
            to: chosen.metadata.to_string(),
            kafka: chosen.version.to_string(),
        });
    }
    Ok(chosen.version)
}

/// True when `s` is where the path should end.
fn reached(s: &State, target: &Target, kafka: &str) -> bool {
    let table = target.release;
    s.release == table.release
        && s.kafka == kafka
        && s.mode != Mode::Migration
        && (table.version < KRAFT_ONLY_SINCE || s.mode == Mode::KRaft)
        && (table.version < V1BETA2_REMOVED || s.api == Api::V1Stored)
        && s.metadata.as_deref().is_none_or(|mv| {
            s.mode != Mode::KRaft || metadata_cmp(mv, s.kafka_metadata()) == Some(Ordering::Equal)
        })
}

/// Every step possible from `s`, with the state it leads to and its preference penalty (lower is
/// preferred among paths of the same length).
fn steps_from(s: &State) -> Vec<(Step, State, u32)> {
    let table = s.table();
    let mut out = Vec::new();
    // The migration.
    if s.mode != Mode::KRaft
        && table.version < KRAFT_ONLY_SINCE
        && Version::parse(s.kafka).is_some_and(|v| v >= MIGRATION_MIN_KAFKA)
    {
        out.push((
            Step::KraftMigration {
                release: s.release.into(),
                kafka: s.kafka.into(),
                in_progress: s.mode == Mode::Migration,
            },
            State {
                mode: Mode::KRaft,
                ..s.clone()
            },
            0,
        ));
    }
    // Kafka version changes (none while a migration runs).
    if s.mode != Mode::Migration
        && let Some(cur) = Version::parse(s.kafka)
    {
        let n = table.kafka.len();
        for (i, kv) in table.kafka.iter().enumerate() {
            let Some(new) = Version::parse(kv.version) else {
                continue;
            };
            let downgrade = new < cur;
            let allowed = if downgrade {
                (new.0, new.1) == (cur.0, cur.1)
                    && metadata_cmp(&s.effective_metadata(), kv.metadata) != Some(Ordering::Greater)
            } else {
                new > cur
            };
            if !allowed {
                continue;
            }
            let next = State {
                kafka: kv.version,
                ..s.clone()
            };
            let follows = (s.metadata.is_none()
                && s.mode == Mode::KRaft
                && metadata_cmp(kv.metadata, s.kafka_metadata()) == Some(Ordering::Greater))
            .then(|| kv.metadata.to_string());
            out.push((
                Step::KafkaVersion {
                    release: s.release.into(),
                    from: s.kafka.into(),
                    to: kv.version.into(),
                    downgrade,
                    metadata_follows: follows,
                },
                next,
                (n - 1 - i) as u32,
            ));
        }
    }
    // The metadata version, raised to the running Kafka version's.
    if s.mode == Mode::KRaft
        && let Some(mv) = &s.metadata
        && metadata_cmp(mv, s.kafka_metadata()) == Some(Ordering::Less)
    {
        out.push((
            Step::MetadataVersion {
                release: s.release.into(),
                kafka: s.kafka.into(),
                from: mv.clone(),
                to: s.kafka_metadata().into(),
            },
            State {
                metadata: Some(s.kafka_metadata().to_string()),
                ..s.clone()
            },
            0,
        ));
    }
    // The operator.
    if s.mode != Mode::Migration {
        let releases = release::releases();
        for (i, r) in releases.iter().enumerate() {
            if r.version <= table.version || r.kafka_version(s.kafka).is_none() {
                continue;
            }
            if r.version >= KRAFT_ONLY_SINCE && s.mode != Mode::KRaft {
                continue;
            }
            // 1.x only with the CRDs storing v1; and crd-upgrade is the last step before 1.x.
            if (r.version >= V1BETA2_REMOVED) != (s.api == Api::V1Stored) {
                continue;
            }
            if s.mode == Mode::KRaft
                && let Some(mv) = s.metadata.as_deref().and_then(MetadataVersion::parse)
                && mv.cmp_release(&super::versions::oldest_metadata(r.version)) == Ordering::Less
            {
                continue;
            }
            out.push((
                Step::Operator {
                    from: s.release.into(),
                    to: r.release.into(),
                    kafka: s.kafka.into(),
                    kafka_user_operations: table.version < V1_SINCE && r.version >= V1_SINCE,
                },
                State {
                    release: r.release,
                    ..s.clone()
                },
                (releases.len() - 1 - i) as u32,
            ));
        }
    }
    // The v1 conversion and the CRD storage version, on a release serving both APIs.
    if table.version >= V1_SINCE && table.version < V1BETA2_REMOVED && s.mode == Mode::KRaft {
        let next = match s.api {
            Api::V1beta2 => Some((
                Step::ConvertToV1 {
                    release: s.release.into(),
                },
                Api::V1,
            )),
            Api::V1 => Some((
                Step::CrdUpgrade {
                    release: s.release.into(),
                },
                Api::V1Stored,
            )),
            Api::V1Stored => None,
        };
        if let Some((step, api)) = next {
            out.push((step, State { api, ..s.clone() }, 0));
        }
    }
    out
}

/// The shortest path from `start` to `target` (empty when already there).
pub fn path(start: &Start, target: &Target) -> Result<Vec<Step>, PathError> {
    let from = &start.state;
    let table = from.table();
    if target.release.version < table.version {
        return Err(PathError::ReleaseDowngrade {
            from: from.release.into(),
            to: target.release.release.into(),
        });
    }
    let kafka = target_kafka(from, target)?;
    let mut steps = search(from, target, kafka)?;
    // Operator changes with an unset spec.kafka.version would change Kafka with them.
    if !start.kafka_pinned && steps.iter().any(|s| matches!(s, Step::Operator { .. })) {
        steps.insert(
            0,
            Step::PinKafkaVersion {
                release: from.release.into(),
                kafka: from.kafka.into(),
            },
        );
    }
    Ok(steps)
}

/// Dijkstra over the states, by (steps, preference penalty); ties broken by discovery order.
fn search(from: &State, target: &Target, kafka: &str) -> Result<Vec<Step>, PathError> {
    let mut states: Vec<State> = vec![from.clone()];
    let mut index: HashMap<State, usize> = HashMap::from([(from.clone(), 0)]);
    let mut cost: Vec<(u32, u32)> = vec![(0, 0)];
    let mut prev: Vec<Option<(usize, Step)>> = vec![None];
    let mut done: Vec<bool> = vec![false];
    let mut queue = BinaryHeap::from([Reverse((0u32, 0u32, 0usize))]);
    while let Some(Reverse((n, penalty, at))) = queue.pop() {
        if done[at] || (n, penalty) != cost[at] {
            continue;
        }
        done[at] = true;
        if reached(&states[at], target, kafka) {
            let mut steps = Vec::new();
            let mut cur = at;
            while let Some((before, step)) = prev[cur].take() {
                steps.push(step);
                cur = before;
            }
            steps.reverse();
            return Ok(steps);
        }
        let here = states[at].clone();
        for (step, next, p) in steps_from(&here) {
            let c = (n + 1, penalty + p);
            let id = match index.get(&next) {
                Some(&id) => id,
                None => {
                    states.push(next.clone());
                    index.insert(next, states.len() - 1);
                    cost.push((u32::MAX, u32::MAX));
                    prev.push(None);
                    done.push(false);
                    states.len() - 1
                }
            };
            if !done[id] && c < cost[id] {
                cost[id] = c;
                prev[id] = Some((at, step));
                queue.push(Reverse((c.0, c.1, id)));
            }
        }
    }
    Err(PathError::NoPath {
        from: from.to_string(),
        to: format!("Strimzi {}, Kafka {kafka}", target.release.release),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kafka(api: &str, annotations: Value, kafka: Value, zookeeper: bool) -> Value {
        let mut spec = json!({"kafka": kafka});
        if zookeeper {
            spec["zookeeper"] = json!({"replicas": 3, "storage": {"type": "ephemeral"}});
        }
        json!({"apiVersion": format!("kafka.strimzi.io/{api}"), "kind": "Kafka",
            "metadata": {"name": "main", "namespace": "kafka-prod", "annotations": annotations},
            "spec": spec})
    }

    fn start_for(objects: &[Value]) -> Start {
        start(&Snapshot::new(objects)).unwrap()
    }

    fn kinds(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::PinKafkaVersion { kafka, .. } => format!("pin {kafka}"),
                Step::KraftMigration { release, .. } => format!("migrate on {release}"),
                Step::KafkaVersion { release, to, .. } => format!("kafka {to} on {release}"),
                Step::MetadataVersion { to, .. } => format!("metadata {to}"),
                Step::Operator { to, .. } => format!("operator {to}"),
                Step::ConvertToV1 { release } => format!("v1 on {release}"),
                Step::CrdUpgrade { release } => format!("crd-upgrade on {release}"),
            })
            .collect()
    }

    /// The seed's production cluster: 0.45.2, Kafka 3.9.2 on ZooKeeper, v1beta2.
    fn prod() -> Vec<Value> {
        vec![kafka(
            "v1beta2",
            json!({release::RELEASE_ANNOTATION: "0.45.2"}),
            json!({"version": "3.9.2", "config": {"inter.broker.protocol.version": "3.9"}}),
            true,
        )]
    }

    const PROD_PATH: [&str; 12] = [
        "migrate on 0.45.2",
        "kafka 3.9.1 on 0.45.2",
        "operator 0.47.0",
        "kafka 4.0.0 on 0.47.0",
        "operator 0.50.1",
        "kafka 4.1.1 on 0.50.1",
        "v1 on 0.50.1",
        "crd-upgrade on 0.50.1",
        "operator 1.0.1",
        "kafka 4.2.0 on 1.0.1",
        "operator 1.2.0",
        "kafka 4.3.1 on 1.2.0",
    ];

    #[test]
    fn zookeeper_on_045_to_120_migrates_downgrades_the_patch_and_converts_on_a_release_serving_both() {
        let objects = prod();
        let s = start_for(&objects);
        assert_eq!(s.kafka, "Kafka/kafka-prod/main");
        assert_eq!(
            s.state.to_string(),
            "Strimzi 0.45.2, Kafka 3.9.2, ZooKeeper, kafka.strimzi.io/v1beta2"
        );
        let steps = path(&s, &Target::new("1.2.0", None).unwrap()).unwrap();
        assert_eq!(kinds(&steps), PROD_PATH);
        // The downgrade says why; the metadata follows the Kafka version (metadataVersion unset).
        assert!(
            steps[1]
                .to_string()
                .contains("a patch downgrade keeping the metadata version"),
            "{}",
            steps[1]
        );
        assert!(
            steps[3]
                .to_string()
                .contains("raises the metadata version to 4.0"),
            "{}",
            steps[3]
        );
        assert!(steps[4].to_string().contains("acls[].operations"), "{}", steps[4]);
        assert!(!steps[2].to_string().contains("acls[].operations"));
        // Every operator change keeps the running Kafka supported before and after.
        let mut kafka_now = "3.9.2".to_string();
        let mut release_now = "0.45.2".to_string();
        for step in &steps {
            match step {
                Step::KafkaVersion { to, .. } => kafka_now = to.clone(),
                Step::Operator { from, to, kafka, .. } => {
                    assert_eq!((from, kafka), (&release_now, &kafka_now));
                    assert!(release::table(from).unwrap().kafka_version(kafka).is_some());
                    assert!(release::table(to).unwrap().kafka_version(kafka).is_some());
                    release_now = to.clone();
                }
                _ => {}
            }
        }
    }

    #[test]
    fn an_explicit_metadata_version_is_raised_once_at_the_end_and_an_unset_kafka_version_pinned_first() {
        let mut objects = prod();
        objects[0]["spec"]["kafka"]["metadataVersion"] = json!("3.9");
        objects[0]["spec"]["kafka"]
            .as_object_mut()
            .unwrap()
            .remove("version");
        let steps = path(&start_for(&objects), &Target::new("1.2.0", None).unwrap()).unwrap();
        let mut want = vec!["pin 3.9.2".to_string()];
        want.extend(PROD_PATH.iter().map(|s| s.to_string()));
        want.push("metadata 4.3-IV0".into());
        assert_eq!(kinds(&steps), want);
        assert!(!steps.iter().any(|s| matches!(
            s,
            Step::KafkaVersion {
                metadata_follows: Some(_),
                ..
            }
        )));
    }

    #[test]
    fn already_at_the_target_is_an_empty_path() {
        let objects = vec![kafka(
            "v1",
            json!({release::RELEASE_ANNOTATION: "1.2.0"}),
            json!({"version": "4.3.1", "metadataVersion": "4.3-IV0"}),
            false,
        )];
        let s = start_for(&objects);
        assert_eq!(s.state.api, Api::V1Stored);
        assert!(path(&s, &Target::new("1.2.0", None).unwrap()).unwrap().is_empty());
        // A metadata version behind is the one step left.
        let mut behind = objects.clone();
        behind[0]["spec"]["kafka"]["metadataVersion"] = json!("4.2-IV1");
        let steps = path(&start_for(&behind), &Target::new("1.2.0", None).unwrap()).unwrap();
        assert_eq!(kinds(&steps), ["metadata 4.3-IV0"]);
    }

    #[test]
    fn a_converted_cluster_on_051_runs_crd_upgrade_just_before_1x() {
        let objects = vec![kafka(
            "v1",
            json!({release::RELEASE_ANNOTATION: "0.51.0"}),
            json!({"version": "4.2.0"}),
            false,
        )];
        let steps = path(&start_for(&objects), &Target::new("1.2.0", None).unwrap()).unwrap();
        assert_eq!(
            kinds(&steps),
            ["crd-upgrade on 0.51.0", "operator 1.2.0", "kafka 4.3.1 on 1.2.0"]
        );
    }

    #[test]
    fn impossible_targets_are_typed_errors() {
        let objects = vec![kafka(
            "v1",
            json!({release::RELEASE_ANNOTATION: "1.2.0"}),
            json!({"version": "4.3.1", "metadataVersion": "4.3-IV0"}),
            false,
        )];
        let s = start_for(&objects);
        assert_eq!(
            path(&s, &Target::new("0.51.0", None).unwrap()),
            Err(PathError::ReleaseDowngrade {
                from: "1.2.0".into(),
                to: "0.51.0".into()
            })
        );
        assert!(matches!(
            path(&s, &Target::new("1.2.0", Some("4.2.1")).unwrap()),
            Err(PathError::KafkaDowngrade { .. })
        ));
        assert!(matches!(
            Target::new("9.9.9", None),
            Err(PathError::UnknownRelease { .. })
        ));
        // A patch downgrade keeping the metadata version is a step, not an error.
        assert_eq!(
            kinds(&path(&s, &Target::new("1.2.0", Some("4.3.0")).unwrap()).unwrap()),
            ["kafka 4.3.0 on 1.2.0"]
        );
        // An explicit metadata version above the target Kafka version's (4.2-IV1).
        let on_110 = vec![kafka(
            "v1",
            json!({release::RELEASE_ANNOTATION: "1.1.0"}),
            json!({"version": "4.2.1", "metadataVersion": "4.3-IV0"}),
            false,
        )];
        assert!(matches!(
            path(&start_for(&on_110), &Target::new("1.2.0", Some("4.2.1")).unwrap()),
            Err(PathError::MetadataDowngrade { .. })
        ));
        // ZooKeeper on a release without it: nothing can start there.
        let zk_on_046 = vec![kafka(
            "v1beta2",
            json!({release::RELEASE_ANNOTATION: "0.46.0"}),
            json!({"version": "3.9.0"}),
            true,
        )];
        assert!(matches!(
            start(&Snapshot::new(&zk_on_046)),
            Err(PathError::Stuck { .. })
        ));
        assert_eq!(start(&Snapshot::new(&[])).unwrap_err(), PathError::NoKafka);
    }

    #[test]
    fn a_migration_in_progress_is_finished_first() {
        let mut objects = prod();
        objects[0]["metadata"]["annotations"]["strimzi.io/kraft"] = json!("migration");
        let s = start_for(&objects);
        assert_eq!(s.state.mode, Mode::Migration);
        let steps = path(&s, &Target::new("1.2.0", None).unwrap()).unwrap();
        assert_eq!(kinds(&steps), PROD_PATH);
        assert!(
            steps[0]
                .to_string()
                .starts_with("[migration] finish the migration from ZooKeeper to KRaft"),
            "{}",
            steps[0]
        );
        // Nothing else may happen during it.
        assert!(
            steps_from(&s.state)
                .iter()
                .all(|(step, ..)| matches!(step, Step::KraftMigration { .. }))
        );
    }

    #[test]
    fn a_target_on_045_needs_no_migration() {
        let objects = vec![kafka(
            "v1beta2",
            json!({release::RELEASE_ANNOTATION: "0.45.0"}),
            json!({"version": "3.8.0"}),
            true,
        )];
        let steps = path(&start_for(&objects), &Target::new("0.45.2", None).unwrap()).unwrap();
        assert_eq!(kinds(&steps), ["operator 0.45.2", "kafka 3.9.2 on 0.45.2"]);
    }
}
