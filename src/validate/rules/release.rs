//! The Strimzi release a cluster runs, and what that release supports. Owns the one decision "which
//! release does this render run" ([`release_of`]) and the per-release Kafka version table
//! ([`table`], generated from each release's own `kafka-versions.yaml` into `strimzi-versions.tsv` by
//! `scripts/gen-strimzi-versions`; never a hand-kept list).
//!
//! How the release is decided, for one Kafka of a render (or for the render as a whole):
//! 1. the annotation `kgitops.io/strimzi-release: "<version>"` on the Kafka (explicit);
//! 2. else the image tag of the Strimzi cluster operator Deployment in the render
//!    (`quay.io/strimzi/operator:<version>`), which a cluster overlay that includes its release from
//!    `infrastructure/strimzi/<version>/` has;
//! 3. else unknown: the rules that need the release stay silent (schema checks still run against
//!    the CRDs in the render). An unknown release is never replaced by a guess such as the newest
//!    release: judging a 0.45 cluster by 1.2 tables would call its every Kafka version unsupported.
//!
//! Objects other than a Kafka (KafkaTopic, KafkaNodePool, ...) are judged by the render's release:
//! the operator Deployment, else the annotation when every annotated Kafka of the render agrees.

use std::cmp::Ordering;
use std::fmt;
use std::sync::OnceLock;

use serde_json::Value;

use super::Snapshot;
use super::strimzi::KafkaCr;
use crate::manifest::ResId;

/// The annotation on a Kafka that states its Strimzi release explicitly.
pub const RELEASE_ANNOTATION: &str = "kgitops.io/strimzi-release";

/// The generated table: `release \t kafka \t metadata \t default(yes|no)`, supported versions only.
const TABLE_TSV: &str = include_str!("strimzi-versions.tsv");

/// A Strimzi (or Kafka) version `major.minor.patch`, ordered numerically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// `1.2.0` → `Version(1, 2, 0)`; anything else (`latest`, `1.2`, `1.2.0-rc1`) → `None`.
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.split('.');
        let v = Version(
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
            parts.next()?.parse().ok()?,
        );
        parts.next().is_none().then_some(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The first release serving `kafka.strimzi.io/v1` (proposal 113, first step).
pub const V1_SINCE: Version = Version(0, 49, 0);
/// The first release that no longer serves `v1beta2` (and stores `v1`; proposal 113, second step).
pub const V1BETA2_REMOVED: Version = Version(1, 0, 0);
/// The first release without ZooKeeper (KRaft only) and without KafkaMirrorMaker.
pub const KRAFT_ONLY_SINCE: Version = Version(0, 46, 0);

/// One Kafka version a release supports, as its `kafka-versions.yaml` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaVersion {
    /// `4.3.1`.
    pub version: &'static str,
    /// The KRaft metadata version that goes with it: `4.3-IV0`, or `3.9` in older files.
    pub metadata: &'static str,
    /// The version the operator uses when `spec.kafka.version` is unset.
    pub default: bool,
}

/// What one Strimzi release supports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseTable {
    /// `1.2.0`.
    pub release: &'static str,
    pub version: Version,
    /// Supported Kafka versions, in the file's order (ascending).
    pub kafka: Vec<KafkaVersion>,
}

impl ReleaseTable {
    /// The supported Kafka version `version`.
    pub fn kafka_version(&self, version: &str) -> Option<&KafkaVersion> {
        self.kafka.iter().find(|k| k.version == version)
    }

    /// The version used when `spec.kafka.version` is unset.
    pub fn default_kafka(&self) -> Option<&KafkaVersion> {
        self.kafka.iter().find(|k| k.default)
    }

    /// `4.2.0, 4.2.1, 4.3.0, 4.3.1`.
    pub fn kafka_list(&self) -> String {
        self.kafka
            .iter()
            .map(|k| k.version)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every release of the embedded table, oldest first.
pub fn releases() -> &'static [ReleaseTable] {
    static TABLE: OnceLock<Vec<ReleaseTable>> = OnceLock::new();
    TABLE.get_or_init(|| parse_table(TABLE_TSV))
}

/// The table of release `release` (`0.45.2`), if kgitops has its data.
pub fn table(release: &str) -> Option<&'static ReleaseTable> {
    releases().iter().find(|r| r.release == release)
}

/// Parses the generated TSV. Lines that are not four fields are skipped: the file is generated and
/// the unit test compares every row with the release files, so a bad line cannot pass unnoticed.
fn parse_table(text: &'static str) -> Vec<ReleaseTable> {
    let mut out: Vec<ReleaseTable> = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let fields: Vec<&'static str> = line.split('\t').collect();
        let [release, version, metadata, default] = fields[..] else {
            continue;
        };
        let Some(parsed) = Version::parse(release) else {
            continue;
        };
        let kafka = KafkaVersion {
            version,
            metadata,
            default: default == "yes",
        };
        match out.last_mut() {
            Some(last) if last.release == release => last.kafka.push(kafka),
            _ => out.push(ReleaseTable {
                release,
                version: parsed,
                kafka: vec![kafka],
            }),
        }
    }
    out.sort_by_key(|r| r.version);
    out
}

/// Where a cluster's release was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `kgitops.io/strimzi-release` on the Kafka (`Kafka/kafka-dev/main`).
    Annotation { object: String },
    /// The image tag of the cluster operator Deployment (`Deployment/strimzi/strimzi-cluster-operator`).
    Operator { object: String, image: String },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Annotation { object } => write!(f, "annotation {RELEASE_ANNOTATION} on {object}"),
            Source::Operator { object, image } => write!(f, "operator image {image} of {object}"),
        }
    }
}

/// A release as a render declares it; `table` is `None` when kgitops has no data for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    /// As written: `1.2.0`, or `latest` for an untagged operator image.
    pub release: String,
    pub source: Source,
    pub table: Option<&'static ReleaseTable>,
}

impl Declared {
    /// The release's version, when it is one kgitops knows.
    pub fn version(&self) -> Option<Version> {
        self.table.map(|t| t.version)
    }

    /// `Strimzi 1.2.0 (annotation kgitops.io/strimzi-release on Kafka/kafka-dev/main)`, for messages.
    pub fn describe(&self) -> String {
        format!("Strimzi {} ({})", self.release, self.source)
    }
}

fn declared(release: &str, source: Source) -> Declared {
    Declared {
        release: release.to_string(),
        table: table(release),
        source,
    }
}

/// The release stated by a Kafka's annotation.
pub(crate) fn annotated(kafka: &KafkaCr<'_>) -> Option<Declared> {
    let release = kafka
        .obj
        .pointer(&format!(
            "/metadata/annotations/{}",
            RELEASE_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str)?
        .trim();
    Some(declared(
        release,
        Source::Annotation {
            object: kafka.display.clone(),
        },
    ))
}

/// The Strimzi cluster operator Deployments of a render, each with the release its image tag names.
pub(crate) fn operators(snapshot: &Snapshot<'_>) -> Vec<Declared> {
    let mut out = Vec::new();
    for obj in snapshot.objects {
        if obj.get("kind").and_then(Value::as_str) != Some("Deployment")
            || obj.get("apiVersion").and_then(Value::as_str) != Some("apps/v1")
        {
            continue;
        }
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let containers = obj
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for image in containers.filter_map(|c| c.get("image").and_then(Value::as_str)) {
            let Some((repository, tag)) = split_image(image) else {
                continue;
            };
            // quay.io/strimzi/operator, or a mirror of it keeping the name, or the upstream
            // Deployment's name with the image moved to another registry path.
            let is_operator = repository.ends_with("strimzi/operator")
                || (name == "strimzi-cluster-operator" && repository.rsplit('/').next() == Some("operator"));
            if is_operator {
                let object = ResId::of(obj)
                    .map(|id| id.to_string())
                    .unwrap_or_else(|_| format!("Deployment/{name}"));
                out.push(declared(
                    tag,
                    Source::Operator {
                        object,
                        image: image.to_string(),
                    },
                ));
            }
        }
    }
    out
}

/// `quay.io/strimzi/operator:1.2.0@sha256:...` → (`quay.io/strimzi/operator`, `1.2.0`); an image
/// without tag has tag `latest`, as the container runtime reads it.
fn split_image(image: &str) -> Option<(&str, &str)> {
    let image = image.split('@').next()?;
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(colon) => Some((&image[..slash + colon], &image[slash + colon + 1..])),
        None => Some((image, "latest")),
    }
}

/// The release one Kafka of a render runs (`kafka: Some`), or the render as a whole (`None`):
/// see the module documentation for the order. `None` when nothing in the render says.
pub fn release_of(snapshot: &Snapshot<'_>, kafka: Option<&KafkaCr<'_>>) -> Option<Declared> {
    if let Some(declared) = kafka.and_then(annotated) {
        return Some(declared);
    }
    let operators = operators(snapshot);
    if let Some(first) = operators.first() {
        // Two operators of different releases in one render: no single answer (reported by
        // `strimzi-release-conflict`).
        return operators
            .iter()
            .all(|o| o.release == first.release)
            .then(|| first.clone());
    }
    if kafka.is_none() {
        let annotations: Vec<Declared> = snapshot.kafkas.iter().filter_map(annotated).collect();
        if let Some(first) = annotations.first() {
            return annotations
                .iter()
                .all(|a| a.release == first.release)
                .then(|| first.clone());
        }
    }
    None
}

/// The release an object of a render is judged by: a Kafka by [`release_of`] for itself; an object
/// labelled `strimzi.io/cluster: <name>` (KafkaNodePool, KafkaTopic, KafkaUser, ...) by the Kafka of
/// that name in its namespace when the render has it; anything else by the render's release.
pub fn release_for_object(snapshot: &Snapshot<'_>, obj: &Value) -> Option<Declared> {
    let namespace = super::namespace_of(obj);
    let own = snapshot.kafkas.iter().find(|k| std::ptr::eq(k.obj, obj));
    let labelled = || {
        let cluster = obj
            .pointer("/metadata/labels/strimzi.io~1cluster")
            .and_then(Value::as_str)?;
        snapshot
            .kafkas
            .iter()
            .find(|k| k.name == cluster && k.namespace == namespace)
    };
    release_of(snapshot, own.or_else(labelled))
}

/// A KRaft metadata version `major.minor` with its optional `-IVn` feature level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataVersion {
    pub major: u32,
    pub minor: u32,
    pub iv: Option<u32>,
}

impl MetadataVersion {
    /// `4.3-IV0`, `3.9` (what Kafka's `MetadataVersion.fromVersionString` reads); not `4.3.1`.
    pub fn parse(text: &str) -> Option<MetadataVersion> {
        let (release, iv) = match text.split_once("-IV") {
            Some((r, iv)) => (r, Some(iv.parse().ok()?)),
            None => (text, None),
        };
        let (major, minor) = release.split_once('.')?;
        Some(MetadataVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
            iv,
        })
    }

    /// Compares major.minor only, as Strimzi's `KafkaVersion.compareMetadataVersions` does.
    pub fn cmp_release(&self, other: &MetadataVersion) -> Ordering {
        (self.major, self.minor).cmp(&(other.major, other.minor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml::{Limits, parse_documents};
    use serde_json::json;

    /// The release files the table is generated from: `KGITOPS_SHARED` (the directory holding
    /// `strimzi-kafka-versions/`), else `../shared` next to the repository.
    fn release_files() -> std::path::PathBuf {
        let shared = match std::env::var_os("KGITOPS_SHARED") {
            Some(dir) if !dir.is_empty() => std::path::PathBuf::from(dir),
            _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
        };
        let dir = shared.join("strimzi-kafka-versions");
        assert!(
            dir.is_dir(),
            "{} not found: set KGITOPS_SHARED to the directory holding strimzi-kafka-versions/",
            dir.display()
        );
        dir
    }

    fn text_of(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    /// The embedded table is exactly the `supported: true` entries of every release file; rerun
    /// `scripts/gen-strimzi-versions` when this fails.
    #[test]
    fn embedded_table_matches_the_release_files() {
        let dir = release_files();
        let mut want: Vec<(String, String, String, bool)> = Vec::new();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".yaml").map(str::to_string))
            .collect();
        names.sort_by_key(|n| Version::parse(n).unwrap());
        assert!(names.len() >= 16, "{names:?}");
        for release in &names {
            let text = std::fs::read_to_string(dir.join(format!("{release}.yaml"))).unwrap();
            let docs = parse_documents(&text, release, &Limits::DEFAULT).unwrap();
            let entries = docs[0].as_array().unwrap();
            assert_eq!(entries.iter().filter(|e| e["default"] == json!(true)).count(), 1);
            for e in entries.iter().filter(|e| e["supported"] == json!(true)) {
                want.push((
                    release.clone(),
                    text_of(&e["version"]),
                    text_of(&e["metadata"]),
                    e["default"] == json!(true),
                ));
            }
        }
        let have: Vec<(String, String, String, bool)> = releases()
            .iter()
            .flat_map(|r| {
                r.kafka.iter().map(|k| {
                    (
                        r.release.to_string(),
                        k.version.to_string(),
                        k.metadata.to_string(),
                        k.default,
                    )
                })
            })
            .collect();
        assert_eq!(
            have, want,
            "src/validate/rules/strimzi-versions.tsv is out of date: run scripts/gen-strimzi-versions"
        );
        let rows = TABLE_TSV.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(rows, have.len(), "unparsable rows in strimzi-versions.tsv");
    }

    #[test]
    fn table_lookups() {
        let t = table("1.2.0").unwrap();
        assert_eq!(t.kafka_list(), "4.2.0, 4.2.1, 4.3.0, 4.3.1");
        assert_eq!(t.default_kafka().unwrap().version, "4.3.1");
        assert_eq!(t.kafka_version("4.3.1").unwrap().metadata, "4.3-IV0");
        assert_eq!(table("0.45.2").unwrap().default_kafka().unwrap().version, "3.9.2");
        assert!(table("0.44.0").is_none());
        assert_eq!(releases().first().unwrap().release, "0.45.0");
        assert_eq!(releases().last().unwrap().release, "1.2.0");
    }

    #[test]
    fn versions_and_images_parse() {
        assert!(Version::parse("0.45.2").unwrap() < Version::parse("0.51.0").unwrap());
        assert!(Version::parse("0.51.0").unwrap() < V1BETA2_REMOVED);
        assert_eq!(Version::parse("1.2"), None);
        assert_eq!(Version::parse("1.2.0-rc1"), None);
        assert_eq!(
            split_image("quay.io/strimzi/operator:1.2.0"),
            Some(("quay.io/strimzi/operator", "1.2.0"))
        );
        assert_eq!(
            split_image("localhost:5000/strimzi/operator@sha256:abc"),
            Some(("localhost:5000/strimzi/operator", "latest"))
        );
        let mv = MetadataVersion::parse("4.3-IV0").unwrap();
        assert_eq!((mv.major, mv.minor, mv.iv), (4, 3, Some(0)));
        assert_eq!(MetadataVersion::parse("3.9").unwrap().iv, None);
        assert_eq!(MetadataVersion::parse("4.3.1"), None);
        assert_eq!(MetadataVersion::parse("4.3-IVx"), None);
        assert_eq!(
            mv.cmp_release(&MetadataVersion::parse("4.3-IV3").unwrap()),
            Ordering::Equal
        );
    }

    #[test]
    fn release_from_annotation_then_operator() {
        let objs = vec![
            json!({"apiVersion": "kafka.strimzi.io/v1", "kind": "Kafka",
                "metadata": {"name": "a", "namespace": "k", "annotations": {RELEASE_ANNOTATION: "0.51.0"}}}),
            json!({"apiVersion": "kafka.strimzi.io/v1", "kind": "Kafka",
                "metadata": {"name": "b", "namespace": "k"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "strimzi-cluster-operator", "namespace": "strimzi"},
                "spec": {"template": {"spec": {"containers": [
                    {"name": "strimzi-cluster-operator", "image": "quay.io/strimzi/operator:1.2.0"}]}}}}),
        ];
        let snap = Snapshot::new(&objs);
        let a = release_of(&snap, Some(&snap.kafkas[0])).unwrap();
        assert_eq!(a.release, "0.51.0");
        assert_eq!(
            a.describe(),
            "Strimzi 0.51.0 (annotation kgitops.io/strimzi-release on Kafka/k/a)"
        );
        let b = release_of(&snap, Some(&snap.kafkas[1])).unwrap();
        assert_eq!(b.version(), Some(Version(1, 2, 0)));
        assert_eq!(
            b.describe(),
            "Strimzi 1.2.0 (operator image quay.io/strimzi/operator:1.2.0 of \
             Deployment/strimzi/strimzi-cluster-operator)"
        );
        assert_eq!(release_of(&snap, None).unwrap().release, "1.2.0");
        let none: Vec<Value> = objs[1..2].to_vec();
        assert_eq!(release_of(&Snapshot::new(&none), None), None);
    }
}
