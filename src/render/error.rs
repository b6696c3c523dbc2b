//! What can go wrong while rendering. Every message starts with the file at fault (a kustomization,
//! a manifest, a patch) and says what is wrong with it.

use crate::manifest::yaml::YamlError;
use crate::source::{PathError, SourceError, TreePath};

/// A kustomization that cannot be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Reading a file or directory from the tree failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A file is not valid YAML, too large, or too deeply nested (names the file and line).
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// A SOPS-encrypted file cannot be decrypted, or is refused ([`super::sops`]).
    #[error(transparent)]
    Sops(#[from] super::sops::SopsError),
    /// A directory used as a kustomization has no kustomization file.
    #[error(
        "{dir}: no kustomization file in this directory (looked for kustomization.yaml, kustomization.yml, Kustomization)"
    )]
    NoKustomization { dir: TreePath },
    /// The cluster name is not one directory name under `clusters/`.
    #[error(transparent)]
    ClusterName(PathError),
    /// The tree has no overlay for the cluster.
    #[error("{dir}: no such cluster overlay in {tree}")]
    NoClusterOverlay { dir: TreePath, tree: String },
    /// A directory has more than one kustomization file.
    #[error("{dir}: more than one kustomization file ({names}); kustomize refuses the ambiguity")]
    MultipleKustomizations { dir: TreePath, names: String },
    /// The kustomization file itself is invalid: unknown field, wrong kind, empty, bad value.
    #[error("{file}: {message}")]
    InvalidKustomization { file: TreePath, message: String },
    /// A kustomize feature kgitops does not implement; refused rather than ignored.
    #[error("{file}: `{field}` is not supported by kgitops ({hint})")]
    Unsupported {
        file: TreePath,
        field: &'static str,
        hint: &'static str,
    },
    /// An entry (resource, component, patch file, generator source, ...) could not be loaded.
    #[error("{file}: {what} {entry:?}: {message}")]
    Entry {
        file: TreePath,
        what: &'static str,
        entry: String,
        message: String,
    },
    /// A file outside the kustomization directory (kustomize's `LoadRestrictionsRootOnly`).
    #[error(
        "{file}: {what} {entry:?}: file {path} is not in or below {dir} (kustomize load restrictions: \
         files must be inside the kustomization directory; only directories may be elsewhere)"
    )]
    OutsideRoot {
        file: TreePath,
        what: &'static str,
        entry: String,
        path: String,
        dir: TreePath,
    },
    /// A kustomization refers (directly or through others) to a directory containing itself.
    #[error("{file}: {what} {entry:?}: cycle: {dir} contains {visited}, which is already being rendered")]
    Cycle {
        file: TreePath,
        what: &'static str,
        entry: String,
        dir: TreePath,
        visited: TreePath,
    },
    /// The render thread could not be started.
    #[error("cannot start the render thread: {0}")]
    Thread(String),
    /// A manifest, kustomization or patch file that is not UTF-8 text.
    #[error("{file}: not UTF-8 text ({message})")]
    NotText { file: TreePath, message: String },
    /// Reading `file` would take the bytes this render has read past its input budget
    /// ([`crate::source::InputLimits::max_render_input`]).
    #[error(
        "{file}: reading it ({size} bytes) would take this render's input past its budget of {limit} \
         bytes ({read} bytes read already, every file counted each time it is read); raise \
         max_render_input (docs/limits.md) if the repository really needs it"
    )]
    InputBudget {
        file: TreePath,
        size: u64,
        read: usize,
        limit: usize,
    },
    /// Kustomizations nested deeper than the limit.
    #[error("{dir}: kustomizations are nested more than {limit} deep (MAX_KUSTOMIZATION_DEPTH)")]
    TooDeep { dir: TreePath, limit: usize },
    /// A document of a manifest file is not a usable object.
    #[error("{file}: document {index}: {message}")]
    InvalidObject {
        file: TreePath,
        index: usize,
        message: String,
    },
    /// Two objects with the same group, version, kind, namespace and name.
    #[error("{file}: {id} is defined more than once (first in {existing}); kustomize refuses duplicate ids")]
    DuplicateId {
        file: TreePath,
        id: String,
        existing: TreePath,
    },
    /// A configMapGenerator or secretGenerator entry is invalid.
    #[error("{file}: {generator} {name:?}: {message}")]
    Generator {
        file: TreePath,
        generator: &'static str,
        name: String,
        message: String,
    },
    /// A Helm chart could not be rendered ([`super::helm`]).
    #[error("{file}: helmCharts {chart:?}: {source}")]
    Helm {
        file: TreePath,
        chart: String,
        #[source]
        source: Box<super::helm::HelmError>,
    },
    /// A transformer (namespace, prefix, labels, images, replicas, patches, replacements, name
    /// references) failed.
    #[error("{file}: {step}: {message}")]
    Transform {
        file: TreePath,
        step: &'static str,
        message: String,
    },
    /// A `generators`/`transformers`/`validators` entry: a built-in plugin config that failed, or
    /// a plugin kgitops does not run. `entry` names the field, the config's kind and name, and the
    /// file it was read from.
    #[error("{file}: {entry}: {message}")]
    Plugin {
        /// The kustomization listing the entry.
        file: TreePath,
        entry: String,
        message: String,
    },
}

impl RenderError {
    /// A path that leaves the tree, reported against the kustomization that named it.
    pub(crate) fn from_path(file: &TreePath, what: &'static str, entry: &str, err: PathError) -> RenderError {
        RenderError::Entry {
            file: file.clone(),
            what,
            entry: entry.to_string(),
            message: err.to_string(),
        }
    }
}
