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
//! Two renders that need the same file at the same moment parse it once: the second waits for the
//! first, and meanwhile runs other work of the renderer's thread pool (`rayon::yield_now`), so that
//! with as many renders as threads (`validate` renders every cluster at once) a thread waiting for
//! a shared file still helps parse the others.
//!
//! The cache lives as long as its owner (one command) and keeps every parsed file: it is for runs
//! that render a bounded set of trees, not for the daemon.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::manifest::yaml::{Document, Limits};
use crate::source::TreePath;

/// What makes two reads the same file.
#[derive(PartialEq, Eq, Hash)]
struct Key {
    path: TreePath,
    limits: Limits,
    text: String,
}

/// Where one file's parse is.
enum State {
    /// A render is parsing it; others wait.
    Parsing,
    Parsed(Arc<Vec<Document>>),
    /// The parse failed (or the thread parsing it panicked): each render parses it again for its
    /// own error.
    Failed,
}

/// One file's state; `None` until a render claims it.
type Cell = Arc<Mutex<Option<State>>>;

/// Parsed files, shared by the renders of one run (see the module docs).
#[derive(Default)]
pub struct ParseCache {
    files: Mutex<hashbrown::HashMap<Key, Cell>>,
}

/// Marks a claimed file failed unless its parse was stored: a panic in the parse must not leave
/// the others waiting for ever.
struct Claim<'a> {
    cell: &'a Mutex<Option<State>>,
    done: bool,
}

impl Claim<'_> {
    fn finish(mut self, state: State) {
        *self.cell.lock().unwrap_or_else(PoisonError::into_inner) = Some(state);
        self.done = true;
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.done {
            *self.cell.lock().unwrap_or_else(PoisonError::into_inner) = Some(State::Failed);
        }
    }
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
        loop {
            let mut state = cell.lock().unwrap_or_else(PoisonError::into_inner);
            match &*state {
                None => {
                    *state = Some(State::Parsing);
                    drop(state);
                    let claim = Claim {
                        cell: &cell,
                        done: false,
                    };
                    return match parse(text) {
                        Ok(objects) => {
                            let objects = Arc::new(objects);
                            claim.finish(State::Parsed(Arc::clone(&objects)));
                            // The cache keeps its copy; this render takes the other.
                            Ok(Arc::unwrap_or_clone(objects))
                        }
                        Err(e) => {
                            claim.finish(State::Failed);
                            Err(e)
                        }
                    };
                }
                Some(State::Parsed(objects)) => return Ok(objects.as_ref().clone()),
                // An earlier parse of this file failed: parsing it again gives this render its error.
                Some(State::Failed) => {
                    drop(state);
                    return parse(text);
                }
                Some(State::Parsing) => {
                    drop(state);
                    // Help with the pool's other work while the first render parses this file.
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        std::thread::sleep(Duration::from_micros(100));
                    }
                }
            }
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
