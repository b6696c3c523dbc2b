//! The platform repository's layout: one kustomization overlay per cluster, `clusters/<name>/`.

use super::{EntryKind, FileTree, PathError, SourceError, TreePath};

/// The directory that holds one overlay per cluster.
pub const CLUSTERS_DIR: &str = "clusters";

/// The overlay directory of cluster `name`, which must be one plain directory name (so that
/// `../base` cannot name another part of the repository, nor an inventory `kgitops-../base`).
pub fn cluster_dir(name: &str) -> Result<TreePath, PathError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\\') {
        return Err(PathError::ClusterName(name.to_string()));
    }
    TreePath::new(CLUSTERS_DIR)?.join(name)
}

/// The cluster overlays of a tree: the directories under `clusters/`, sorted; `None` when the tree
/// has no `clusters/` directory at all.
pub fn cluster_names(tree: &dyn FileTree) -> Result<Option<Vec<String>>, SourceError> {
    let dir = TreePath::new(CLUSTERS_DIR)?;
    if tree.kind(&dir)? != Some(EntryKind::Dir) {
        return Ok(None);
    }
    let mut names = Vec::new();
    for name in tree.list(&dir)? {
        if tree.kind(&dir.join(&name)?)? == Some(EntryKind::Dir) {
            names.push(name);
        }
    }
    names.sort();
    Ok(Some(names))
}
