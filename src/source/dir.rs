//! A directory on disk as a [`FileTree`]: the work tree of a checkout, or any folder.

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::{EntryKind, FileTree, SourceError, TreePath};

/// A directory on disk, read-only. Symlinks are followed only while they stay inside the root.
#[derive(Debug, Clone)]
pub struct DirTree {
    root: PathBuf,
}

impl DirTree {
    /// Opens `root`; it must be an existing directory.
    pub fn open(root: &Path) -> Result<DirTree, SourceError> {
        let root = fs::canonicalize(root).map_err(|e| SourceError::Read {
            path: TreePath::root(),
            message: format!("{}: {e}", root.display()),
        })?;
        if !root.is_dir() {
            return Err(SourceError::Read {
                path: TreePath::root(),
                message: format!("{}: not a directory", root.display()),
            });
        }
        Ok(DirTree { root })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves `path` on disk, following symlinks, and refuses anything that leaves the root.
    fn resolve(&self, path: &TreePath) -> Result<Option<PathBuf>, SourceError> {
        let joined = self.root.join(path.as_str());
        let real = match fs::canonicalize(&joined) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(SourceError::Read {
                    path: path.clone(),
                    message: e.to_string(),
                });
            }
        };
        if !real.starts_with(&self.root) {
            return Err(SourceError::SymlinkEscapes {
                path: path.clone(),
                target: real.display().to_string(),
            });
        }
        Ok(Some(real))
    }

    fn read_error(path: &TreePath, e: std::io::Error) -> SourceError {
        SourceError::Read {
            path: path.clone(),
            message: e.to_string(),
        }
    }
}

impl FileTree for DirTree {
    fn kind(&self, path: &TreePath) -> Result<Option<EntryKind>, SourceError> {
        Ok(self.resolve(path)?.map(|p| {
            if p.is_dir() {
                EntryKind::Dir
            } else {
                EntryKind::File
            }
        }))
    }

    fn read(&self, path: &TreePath, limit: usize) -> Result<Vec<u8>, SourceError> {
        let real = self
            .resolve(path)?
            .ok_or_else(|| SourceError::NotFound(path.clone()))?;
        let file = fs::File::open(&real).map_err(|e| Self::read_error(path, e))?;
        let meta = file.metadata().map_err(|e| Self::read_error(path, e))?;
        if meta.is_dir() {
            return Err(SourceError::Read {
                path: path.clone(),
                message: "is a directory".into(),
            });
        }
        if !meta.is_file() {
            // A FIFO would block the render forever, a device could be endless.
            return Err(SourceError::Read {
                path: path.clone(),
                message: "not a regular file".into(),
            });
        }
        if meta.len() > limit as u64 {
            return Err(SourceError::TooLarge {
                path: path.clone(),
                size: meta.len(),
                limit,
            });
        }
        // The file may grow after the metadata was read: never read more than the limit allows.
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        file.take(cap)
            .read_to_end(&mut bytes)
            .map_err(|e| Self::read_error(path, e))?;
        if bytes.len() > limit {
            return Err(SourceError::TooLarge {
                path: path.clone(),
                size: bytes.len() as u64,
                limit,
            });
        }
        Ok(bytes)
    }

    fn list(&self, path: &TreePath) -> Result<Vec<String>, SourceError> {
        let real = self
            .resolve(path)?
            .ok_or_else(|| SourceError::NotFound(path.clone()))?;
        let mut names = Vec::new();
        for entry in fs::read_dir(real).map_err(|e| Self::read_error(path, e))? {
            let entry = entry.map_err(|e| Self::read_error(path, e))?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    fn describe(&self) -> String {
        format!("directory {}", self.root.display())
    }

    fn real_path(&self, path: &TreePath) -> Result<Option<TreePath>, SourceError> {
        let Some(real) = self.resolve(path)? else {
            return Ok(None);
        };
        // `resolve` refused anything outside the root, so the prefix is there.
        let rel = real.strip_prefix(&self.root).unwrap_or(&real);
        Ok(Some(TreePath::new(&rel.to_string_lossy())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lists_and_refuses_symlinks_out_of_the_root() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("base")).unwrap();
        std::fs::write(dir.path().join("base/a.yaml"), "a: 1").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("base/leak")).unwrap();
        std::os::unix::fs::symlink("a.yaml", dir.path().join("base/alias.yaml")).unwrap();
        let tree = DirTree::open(dir.path()).unwrap();
        let base = TreePath::new("base").unwrap();
        assert_eq!(tree.kind(&base).unwrap(), Some(EntryKind::Dir));
        assert_eq!(tree.list(&base).unwrap(), vec!["a.yaml", "alias.yaml", "leak"]);
        assert_eq!(
            tree.read(&base.join("alias.yaml").unwrap(), usize::MAX).unwrap(),
            b"a: 1"
        );
        let err = tree.read(&base.join("leak").unwrap(), usize::MAX).unwrap_err();
        assert!(matches!(err, SourceError::SymlinkEscapes { .. }), "{err}");
        assert!(matches!(
            tree.read(&base.join("nope").unwrap(), usize::MAX),
            Err(SourceError::NotFound(_))
        ));
    }
}
