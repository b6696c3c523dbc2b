//! Validating a platform repository: which clusters (the overlays `clusters/<name>/`), rendering each
//! at the head revision (and the base revision for a change), and collecting the findings into one
//! [`Report`].
//!
//! The renderer is passed in ([`Renderer`]; the CLI passes `render::render`) so that validation stays
//! independent of how trees are rendered.
//!
//! The Strimzi releases the overlays include live in the repository (`infrastructure/strimzi/<version>/`,
//! [`RELEASES_DIR`]). A cluster whose render has Strimzi custom resources but not the CRDs that
//! define them (an overlay sharing its Kubernetes cluster with the one that installs them) is
//! schema-checked against the CRDs of the release it declares, rendered from that directory of the
//! same tree.

use std::error::Error;

use rayon::prelude::*;
use serde_json::Value;

use super::{Report, Schemas, schema, validate_cluster};
use crate::source::layout;
use crate::source::{FileTree, SourceError, TreePath};

/// Renders one kustomization directory of a tree (`kgitops::render::render`).
/// Clusters are validated in parallel, so it is called from several threads at once.
pub type Renderer<'a> =
    &'a (dyn Fn(&dyn FileTree, &TreePath) -> Result<Vec<Value>, Box<dyn Error + Send + Sync>> + Sync);

pub use crate::source::layout::CLUSTERS_DIR;

/// Where a platform repository keeps the Strimzi releases its overlays include, one directory per
/// version (`scripts/vendor-strimzi`).
pub const RELEASES_DIR: &str = "infrastructure/strimzi";

/// The API group of the Strimzi kinds whose CRDs a release carries.
const STRIMZI_GROUP: &str = "kafka.strimzi.io";

/// Why a repository could not be validated (exit code 2); each names the tree or cluster.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("{tree}: no {CLUSTERS_DIR}/ directory with cluster overlays")]
    NoClusters { tree: String },
    #[error("{tree}: no cluster overlay {CLUSTERS_DIR}/{name} (clusters: {available})")]
    UnknownCluster {
        tree: String,
        name: String,
        available: String,
    },
    #[error("{tree}: listing {CLUSTERS_DIR}/: {cause}")]
    Source { tree: String, cause: SourceError },
    #[error("{tree}: rendering {CLUSTERS_DIR}/{cluster}: {cause}")]
    Render {
        cluster: String,
        tree: String,
        cause: Box<dyn Error + Send + Sync>,
    },
    #[error(
        "{tree}: rendering the Strimzi release {RELEASES_DIR}/{release} that {CLUSTERS_DIR}/{cluster} declares: {cause}"
    )]
    Release {
        cluster: String,
        release: String,
        tree: String,
        cause: Box<dyn Error + Send + Sync>,
    },
}

/// `schemas` with the CRDs of the release a cluster declares, when its render has Strimzi custom
/// resources but no Strimzi CRD and the tree carries that release; `None` otherwise (the render's
/// own CRDs, or none, are what the schema check uses).
fn with_release_crds(
    schemas: &Schemas,
    tree: &dyn FileTree,
    cluster: &str,
    objects: &[Value],
    render: Renderer<'_>,
) -> Result<Option<Schemas>, ValidateError> {
    let strimzi = |o: &Value| {
        o.get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|a| a.split('/').next() == Some(STRIMZI_GROUP))
    };
    let has_crds = objects.iter().any(|o| {
        schema::crd::is_crd(o) && o.pointer("/spec/group").and_then(Value::as_str) == Some(STRIMZI_GROUP)
    });
    if has_crds || !objects.iter().any(strimzi) {
        return Ok(None);
    }
    // A version, never a path: the annotation is data from the repository.
    let snapshot = super::rules::Snapshot::new(objects);
    let declared = super::rules::release::release_of(&snapshot, None).map(|d| d.release);
    let Some(release) = declared.filter(|r| {
        !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    }) else {
        return Ok(None);
    };
    let err = |cause| ValidateError::Release {
        cluster: cluster.to_string(),
        release: release.clone(),
        tree: tree.describe(),
        cause,
    };
    let dir = TreePath::new(RELEASES_DIR)
        .and_then(|d| d.join(&release))
        .map_err(|e| err(e.into()))?;
    // A release the repository does not carry: nothing to add (the schema check reports the kinds
    // it cannot check, naming --crds).
    if tree.kind(&dir).map_err(|e| err(e.into()))? != Some(crate::source::EntryKind::Dir) {
        return Ok(None);
    }
    let mut local = schemas.clone();
    let objects = render(tree, &dir).map_err(err)?;
    let crds: Vec<&Value> = objects.iter().filter(|o| schema::crd::is_crd(o)).collect();
    local.compile_ahead(&crds);
    for crd in crds {
        local
            .add_crd(crd, &format!("{RELEASES_DIR}/{release}"))
            .map_err(|e| err(e.into()))?;
    }
    Ok(Some(local))
}

/// The cluster overlays of a tree: the directories under `clusters/`, sorted.
pub fn cluster_names(tree: &dyn FileTree) -> Result<Vec<String>, ValidateError> {
    match layout::cluster_names(tree) {
        Ok(Some(names)) => Ok(names),
        Ok(None) => Err(ValidateError::NoClusters {
            tree: tree.describe(),
        }),
        Err(cause) => Err(ValidateError::Source {
            tree: tree.describe(),
            cause,
        }),
    }
}

/// Validates the named clusters (all of `to`'s when `clusters` is empty) at revision `to`; with `from`,
/// also the change rules between `from` and `to`. A cluster that `from` does not have counts as
/// new: every object in it is part of the change.
pub fn validate_repo(
    schemas: &Schemas,
    from: Option<&dyn FileTree>,
    to: &dyn FileTree,
    clusters: &[String],
    render: Renderer<'_>,
) -> Result<Report, ValidateError> {
    let available = cluster_names(to)?;
    let selected = if clusters.is_empty() {
        available.clone()
    } else {
        for name in clusters {
            if !available.contains(name) {
                return Err(ValidateError::UnknownCluster {
                    tree: to.describe(),
                    name: name.clone(),
                    available: available.join(", "),
                });
            }
        }
        clusters.to_vec()
    };
    let from_clusters = match from {
        Some(tree) => match cluster_names(tree) {
            Ok(names) => names,
            Err(ValidateError::NoClusters { .. }) => Vec::new(),
            Err(e) => return Err(e),
        },
        None => Vec::new(),
    };
    let render_cluster = |tree: &dyn FileTree, name: &str| -> Result<Vec<Value>, ValidateError> {
        let err = |cause| ValidateError::Render {
            cluster: name.to_string(),
            tree: tree.describe(),
            cause,
        };
        let dir = layout::cluster_dir(name).map_err(|e| err(e.into()))?;
        render(tree, &dir).map_err(err)
    };
    // Clusters are independent: they are rendered and checked in parallel (on the caller's rayon
    // pool), and their findings and errors kept in cluster order, as a sequential run gives them.
    let validate_one = |name: &String| -> Result<Vec<super::Finding>, ValidateError> {
        let (head, base) = rayon::join(
            || render_cluster(to, name),
            || match from {
                Some(tree) if from_clusters.contains(name) => render_cluster(tree, name).map(Some),
                Some(_) => Ok(Some(Vec::new())),
                None => Ok(None),
            },
        );
        let (head, base) = (head?, base?);
        let release_schemas = with_release_crds(schemas, to, name, &head, render)?;
        Ok(validate_cluster(
            release_schemas.as_ref().unwrap_or(schemas),
            name,
            base.as_deref(),
            &head,
        ))
    };
    let per_cluster: Vec<Result<Vec<super::Finding>, ValidateError>> =
        selected.par_iter().map(validate_one).collect();
    let mut findings = Vec::new();
    for cluster in per_cluster {
        findings.extend(cluster?);
    }
    // Repository-wide: Secrets in plain text where `.sops.yaml` declares files encrypted.
    findings.extend(super::rules::sops_plaintext::check(to));
    Ok(Report::new(selected, findings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml::{Limits, parse_documents};
    use crate::source::DirTree;

    /// A stand-in renderer: the documents of `<dir>/all.yaml`.
    fn concat(tree: &dyn FileTree, dir: &TreePath) -> Result<Vec<Value>, Box<dyn Error + Send + Sync>> {
        let path = dir.join("all.yaml")?;
        let text = String::from_utf8(tree.read(&path, usize::MAX)?)?;
        Ok(parse_documents(&text, path.as_str(), &Limits::DEFAULT)?)
    }

    fn repo(clusters: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in clusters {
            let c = dir.path().join(CLUSTERS_DIR).join(name);
            std::fs::create_dir_all(&c).unwrap();
            std::fs::write(c.join("all.yaml"), text).unwrap();
        }
        std::fs::write(dir.path().join(CLUSTERS_DIR).join("README.md"), "not a cluster").unwrap();
        dir
    }

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ns}\n";
    const BAD: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: ns}\ndata: {k: 1}\n";

    #[test]
    fn validates_every_cluster_or_the_named_ones() {
        let dir = repo(&[("dev", CM), ("prod", BAD)]);
        let tree = DirTree::open(dir.path()).unwrap();
        let schemas = Schemas::new().unwrap();
        assert_eq!(cluster_names(&tree).unwrap(), ["dev", "prod"]);
        let report = validate_repo(&schemas, None, &tree, &[], &concat).unwrap();
        assert_eq!(report.clusters, ["dev", "prod"]);
        assert_eq!(report.errors, 1);
        assert_eq!(report.findings[0].cluster, "prod");
        assert_eq!(report.findings[0].path, "data[k]");
        let report = validate_repo(&schemas, None, &tree, &["dev".into()], &concat).unwrap();
        assert_eq!((report.clusters.len(), report.errors), (1, 0));
        let err = validate_repo(&schemas, None, &tree, &["qa".into()], &concat).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("no cluster overlay clusters/qa (clusters: dev, prod)"),
            "{err}"
        );
    }

    #[test]
    fn render_failures_and_missing_clusters_dir_are_errors() {
        let dir = repo(&[("dev", "a: [1\n")]);
        let tree = DirTree::open(dir.path()).unwrap();
        let schemas = Schemas::new().unwrap();
        let err = validate_repo(&schemas, None, &tree, &[], &concat).unwrap_err();
        assert!(err.to_string().contains(": rendering clusters/dev: "), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let tree = DirTree::open(empty.path()).unwrap();
        let err = validate_repo(&schemas, None, &tree, &[], &concat).unwrap_err();
        assert!(matches!(err, ValidateError::NoClusters { .. }), "{err}");
    }

    #[test]
    fn a_cluster_new_in_the_change_has_an_empty_base() {
        const KAFKA: &str = "apiVersion: kafka.strimzi.io/v1beta2\nkind: Kafka\nmetadata: {name: k, namespace: ns}\n\
                             spec: {zookeeper: {replicas: 2}}\n";
        let base = repo(&[("dev", CM)]);
        let head = repo(&[("dev", CM), ("qa", KAFKA)]);
        let (base, head) = (
            DirTree::open(base.path()).unwrap(),
            DirTree::open(head.path()).unwrap(),
        );
        let schemas = Schemas::new().unwrap();
        let report = validate_repo(&schemas, Some(&base), &head, &[], &concat).unwrap();
        let rules: Vec<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
        // No CRDs given: the Kafka is an unknown kind; the even ensemble is introduced by the change.
        assert_eq!(rules, ["schema-unknown-kind", "zookeeper-replicas-to-even"]);
    }

    /// A cluster without the CRDs of its Strimzi kinds is checked against the release it declares,
    /// from `infrastructure/strimzi/<release>/` of the same tree; without that directory (or a
    /// declared release) its custom resources stay unknown kinds.
    #[test]
    fn a_cluster_without_crds_uses_those_of_the_release_it_declares() {
        const KAFKA: &str = "apiVersion: kafka.strimzi.io/v1\nkind: Kafka\n\
                             metadata: {name: k, namespace: ns, annotations: {kgitops.io/strimzi-release: '9.9.9'}}\n\
                             spec: {kafka: {}, bogus: 1}\n";
        const CRD: &str = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
                           metadata: {name: kafkas.kafka.strimzi.io}\n\
                           spec:\n  group: kafka.strimzi.io\n  names: {kind: Kafka, plural: kafkas}\n  scope: Namespaced\n\
                           \x20 versions:\n  - name: v1\n    served: true\n    storage: true\n\
                           \x20   schema:\n      openAPIV3Schema:\n        type: object\n\
                           \x20       properties:\n          spec:\n            type: object\n\
                           \x20           properties: {kafka: {type: object}}\n";
        let dir = repo(&[("staging", KAFKA)]);
        let schemas = Schemas::new().unwrap();
        let rules = |dir: &tempfile::TempDir| -> Vec<String> {
            let tree = DirTree::open(dir.path()).unwrap();
            let report = validate_repo(&schemas, None, &tree, &[], &concat).unwrap();
            // Schema findings only: the Kafka rules have their own views of this made-up release.
            report
                .findings
                .iter()
                .filter(|f| f.rule.starts_with("schema-"))
                .map(|f| format!("{} {}", f.rule, f.path))
                .collect()
        };
        assert_eq!(rules(&dir), ["schema-unknown-kind "]);
        let release = dir.path().join(RELEASES_DIR).join("9.9.9");
        std::fs::create_dir_all(&release).unwrap();
        std::fs::write(release.join("all.yaml"), CRD).unwrap();
        assert_eq!(rules(&dir), ["schema-unknown-field spec.bogus"]);
    }
}
