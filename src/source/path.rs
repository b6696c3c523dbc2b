//! Normalized paths inside a file tree.

use std::fmt;

/// A path inside a tree: relative to its root, `/`-separated, without `.`, `..` or empty parts.
/// The root itself is the empty path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TreePath(String);

/// A path that cannot name anything inside the tree.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("{0}: path escapes the repository root")]
    Escapes(String),
    #[error("{0}: absolute paths are not allowed")]
    Absolute(String),
    #[error("'{0}': a cluster name is one directory name under clusters/ (no '/', '.' or '..')")]
    ClusterName(String),
}

impl TreePath {
    /// The root of the tree.
    pub fn root() -> TreePath {
        TreePath(String::new())
    }

    /// Parses a path relative to the root.
    pub fn new(path: &str) -> Result<TreePath, PathError> {
        TreePath::root().join(path)
    }

    /// Resolves `rel` against this directory. Absolute paths and `..` beyond the root are errors.
    pub fn join(&self, rel: &str) -> Result<TreePath, PathError> {
        if rel.starts_with('/') {
            return Err(PathError::Absolute(rel.to_string()));
        }
        let mut parts: Vec<&str> = self.parts().collect();
        for part in rel.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(PathError::Escapes(self.display_join(rel)));
                    }
                }
                p => parts.push(p),
            }
        }
        Ok(TreePath(parts.join("/")))
    }

    fn display_join(&self, rel: &str) -> String {
        if self.0.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{}", self.0, rel)
        }
    }

    /// The path's components.
    pub fn parts(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|p| !p.is_empty())
    }

    /// The parent directory (the root's parent is the root).
    pub fn parent(&self) -> TreePath {
        match self.0.rsplit_once('/') {
            Some((p, _)) => TreePath(p.to_string()),
            None => TreePath::root(),
        }
    }

    /// The last component, or `""` for the root.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// True for the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `self` is `dir` or lies below it.
    pub fn starts_with(&self, dir: &TreePath) -> bool {
        dir.0.is_empty() || self.0 == dir.0 || self.0.starts_with(&format!("{}/", dir.0))
    }

    /// The path as a string (`""` for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TreePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str(".")
        } else {
            f.write_str(&self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_and_refuses_escapes() {
        let dir = TreePath::new("clusters/dev").unwrap();
        assert_eq!(
            dir.join("../../base/./kafka.yaml").unwrap().as_str(),
            "base/kafka.yaml"
        );
        assert_eq!(
            dir.join("../../../etc/passwd").unwrap_err(),
            PathError::Escapes("clusters/dev/../../../etc/passwd".into())
        );
        assert!(matches!(dir.join("/etc/passwd"), Err(PathError::Absolute(_))));
        assert!(
            TreePath::new("base/x.yaml")
                .unwrap()
                .starts_with(&TreePath::new("base").unwrap())
        );
        assert!(
            !TreePath::new("based/x.yaml")
                .unwrap()
                .starts_with(&TreePath::new("base").unwrap())
        );
    }
}
