//! Parsed manifest files shared between the renders of one run.
//!
//! `kgitops validate` renders every cluster, and each cluster of a platform repository includes
//! the same large files: the vendored Strimzi release (about 1 MB of CRDs) is read by every overlay
//! that runs it, and again when a cluster that leaves the CRDs to another is checked against its
//! release. Parsing YAML is most of a render's time, so a [`ParseCache`] lets the renders of one run
//! parse each file once.
//!
//! A file is the same file only when its path, its text and the YAML limits it was read with are
//! the same: the cache compares the whole text, never a hash of it, so no crafted file can stand
//! in for another. Only successful parses are kept; a file that fails is parsed again by each
//! render that reads it, so each gets its own error. Two renders that need the same file at the
//! same moment parse it once: the second waits for the first.
//!
//! The cache lives as long as its owner (one command) and keeps every parsed file: it is for runs
//! that render a bounded set of trees, not for the daemon.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::manifest::yaml::{Document, Limits};
use crate::source::TreePath;

/// What makes two reads the same file.
#[derive(PartialEq, Eq, Hash)]
struct Key {
    path: TreePath,
    limits: Limits,
    text: String,
}

/// One file's parse: set once by the render that parsed it first; `None` when that parse failed.
type Cell = Arc<OnceLock<Option<Arc<Vec<Document>>>>>;

/// Parsed files, shared by the renders of one run (see the module docs).
#[derive(Default)]
pub struct ParseCache {
    files: Mutex<hashbrown::HashMap<Key, Cell>>,
}

impl ParseCache {
    pub fn new() -> ParseCache {
        ParseCache::default()
    }

    /// The objects of `text` read from `path` with `limits`: a copy of an earlier parse of the same
    /// file, or `parse`'s result (kept when it succeeds).
    pub(super) fn objects<E>(
        &self,
        path: &TreePath,
        limits: &Limits,
        text: &str,
        parse: impl Fn(&str) -> Result<Vec<Document>, E>,
    ) -> Result<Vec<Document>, E> {
        let key = Key {
            path: path.clone(),
            limits: *limits,
            text: text.to_string(),
        };
        let cell = {
            // A panic while the lock was held leaves the map itself intact.
            let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(files.entry(key).or_default())
        };
        // The first reader parses (outside the map's lock); readers arriving meanwhile wait here.
        let mut failure = None;
        let parsed = cell.get_or_init(|| match parse(text) {
            Ok(objects) => Some(Arc::new(objects)),
            Err(e) => {
                failure = Some(e);
                None
            }
        });
        match (parsed, failure) {
            (_, Some(e)) => Err(e),
            (Some(objects), None) => Ok(objects.as_ref().clone()),
            // An earlier parse of this file failed: parsing it again gives this render its error.
            (None, None) => parse(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        Document {
            value: serde_json::Value::String(text.to_string()),
            empty_nulls: Vec::new(),
        }
    }

    fn path(p: &str) -> TreePath {
        TreePath::new(p).expect("path")
    }

    #[test]
    fn a_file_is_parsed_once_per_path_text_and_limits() {
        let cache = ParseCache::new();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let parse = |t: &str| -> Result<Vec<Document>, String> {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(vec![doc(t)])
        };
        let limits = Limits::DEFAULT;
        assert_eq!(
            cache.objects(&path("a.yaml"), &limits, "x", parse),
            Ok(vec![doc("x")])
        );
        assert_eq!(
            cache.objects(&path("a.yaml"), &limits, "x", parse),
            Ok(vec![doc("x")])
        );
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
        // Another text, another path, other limits: each is another file.
        cache
            .objects(&path("a.yaml"), &limits, "y", parse)
            .expect("parse");
        cache
            .objects(&path("b.yaml"), &limits, "x", parse)
            .expect("parse");
        let strict = Limits {
            max_depth: 3,
            ..limits
        };
        cache
            .objects(&path("a.yaml"), &strict, "x", parse)
            .expect("parse");
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 4);
    }

    #[test]
    fn failures_are_not_kept_and_each_reader_gets_its_error() {
        let cache = ParseCache::new();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let parse = |_: &str| -> Result<Vec<Document>, String> {
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(format!("failure {n}"))
        };
        let limits = Limits::DEFAULT;
        assert_eq!(
            cache.objects(&path("a.yaml"), &limits, "x", parse),
            Err("failure 0".into())
        );
        assert_eq!(
            cache.objects(&path("a.yaml"), &limits, "x", parse),
            Err("failure 1".into())
        );
    }

    #[test]
    fn concurrent_readers_of_one_file_parse_it_once() {
        let cache = ParseCache::new();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let parse = |t: &str| -> Result<Vec<Document>, String> {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            std::thread::sleep(std::time::Duration::from_millis(50));
            Ok(vec![doc(t)])
        };
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    cache
                        .objects(&path("a.yaml"), &Limits::DEFAULT, "x", parse)
                        .expect("parse")
                });
            }
        });
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 1);
    }
}
