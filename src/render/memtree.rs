//! An in-memory [`FileTree`] for unit tests of the engine.

use std::collections::BTreeMap;

use crate::source::{EntryKind, FileTree, SourceError, TreePath};

/// An in-memory tree: path -> content (directories are implied).
pub struct MemTree(pub BTreeMap<String, Vec<u8>>);

impl MemTree {
    pub fn new(files: &[(&str, &str)]) -> MemTree {
        MemTree(
            files
                .iter()
                .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
                .collect(),
        )
    }
}

impl FileTree for MemTree {
    fn kind(&self, path: &TreePath) -> Result<Option<EntryKind>, SourceError> {
        let p = path.as_str();
        if self.0.contains_key(p) {
            return Ok(Some(EntryKind::File));
        }
        let prefix = if p.is_empty() {
            String::new()
        } else {
            format!("{p}/")
        };
        Ok(self
            .0
            .keys()
            .any(|k| k.starts_with(&prefix))
            .then_some(EntryKind::Dir))
    }
    fn read(&self, path: &TreePath, limit: usize) -> Result<Vec<u8>, SourceError> {
        let bytes = self
            .0
            .get(path.as_str())
            .ok_or_else(|| SourceError::NotFound(path.clone()))?;
        if bytes.len() > limit {
            return Err(SourceError::TooLarge {
                path: path.clone(),
                size: bytes.len() as u64,
                limit,
            });
        }
        Ok(bytes.clone())
    }
    fn list(&self, path: &TreePath) -> Result<Vec<String>, SourceError> {
        let prefix = if path.is_root() {
            String::new()
        } else {
            format!("{}/", path.as_str())
        };
        let mut names: Vec<String> = self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_string())
            .collect();
        names.dedup();
        Ok(names)
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}
