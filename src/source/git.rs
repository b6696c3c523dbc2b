//! Git objects at one revision as a [`FileTree`], read through git2: never the work tree, never a
//! checkout, never the index.
//!
//! [`GitRepo`] is one open repository that hands out [`GitTree`]s for any number of revisions
//! (`kgitops diff --from A --to B` opens one repository and two trees). Opening a tree walks the
//! revision's git tree objects once into an in-memory index (path -> directory listing, blob id,
//! symlink target or submodule), so `kind`, `list` and symlink resolution never touch git again;
//! only `read` inflates a blob. `git2::Repository` is `Send` but not `Sync`, so blob reads go through
//! one mutex per repository; inflating a manifest-sized blob takes microseconds, which keeps the
//! lock short even when many clusters render in parallel. Inflated blobs are kept in a cache shared
//! by every tree of the repository (bounded by [`BLOB_CACHE_BYTES`]), because the trees of one
//! fleet read the same `base/` files once per cluster and per revision.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use git2::{ErrorCode, Oid, Repository, RepositoryOpenFlags, TreeWalkMode, TreeWalkResult};

use super::{EntryKind, FileTree, SourceError, TreePath};

/// How many symbolic links one lookup may follow before it is refused as a loop (Linux's limit).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Upper bound for the bytes of inflated blobs kept per repository; past it the cache starts over.
pub const BLOB_CACHE_BYTES: usize = 16 << 20;

/// Blobs larger than this are never cached (they are not manifests).
const BLOB_CACHE_MAX_ENTRY: usize = 1 << 20;

/// Git tree entry modes (octal, as git stores them).
const MODE_TREE: i32 = 0o040000;
const MODE_LINK: i32 = 0o120000;
const MODE_GITLINK: i32 = 0o160000;

/// One open git repository (work tree or bare). Cheap to clone; every clone shares one handle.
#[derive(Clone)]
pub struct GitRepo {
    shared: Arc<Shared>,
}

struct Shared {
    /// The path as the caller gave it, for messages.
    path: PathBuf,
    repo: Mutex<Repository>,
    blobs: Mutex<BlobCache>,
}

#[derive(Default)]
struct BlobCache {
    bytes: usize,
    blobs: HashMap<Oid, Arc<[u8]>>,
}

impl std::fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRepo")
            .field("path", &self.shared.path)
            .finish()
    }
}

impl GitRepo {
    /// Opens the repository at `path`: a work tree's root, its `.git` directory, or a bare
    /// repository. No search upwards and no `GIT_DIR` from the environment: `path` is the root that
    /// tree paths are relative to.
    pub fn open(path: &Path) -> Result<GitRepo, SourceError> {
        let repo = Repository::open_ext(path, RepositoryOpenFlags::NO_SEARCH, std::iter::empty::<&str>())
            .map_err(|e| SourceError::Open {
                repo: path.display().to_string(),
                message: e.message().to_string(),
            })?;
        Ok(GitRepo {
            shared: Arc::new(Shared {
                path: path.to_path_buf(),
                repo: Mutex::new(repo),
                blobs: Mutex::new(BlobCache::default()),
            }),
        })
    }

    /// The path the repository was opened with.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The full sha of the commit `rev` names (branch, tag, full or short sha, `HEAD~1`,
    /// `origin/main`, ...).
    pub fn resolve(&self, rev: &str) -> Result<String, SourceError> {
        let repo = self.lock();
        Ok(self.peel(&repo, rev)?.id().to_string())
    }

    /// The tree of the commit `rev` names.
    pub fn tree(&self, rev: &str) -> Result<GitTree, SourceError> {
        let repo = self.lock();
        let commit = self.peel(&repo, rev)?;
        let tree = commit.tree().map_err(|e| self.rev_error(rev, &e))?;
        let index = Index::build(&repo, &tree).map_err(|e| self.rev_error(rev, &e))?;
        Ok(GitTree {
            repo: self.clone(),
            rev: rev.to_string(),
            commit: commit.id().to_string(),
            index,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Repository> {
        // A panic while holding the lock cannot leave the handle half-updated: every use is a read.
        self.shared
            .repo
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn peel<'r>(&self, repo: &'r Repository, rev: &str) -> Result<git2::Commit<'r>, SourceError> {
        let object = repo.revparse_single(rev).map_err(|e| match e.code() {
            ErrorCode::NotFound | ErrorCode::InvalidSpec => SourceError::UnknownRevision {
                rev: rev.to_string(),
                repo: self.shared.path.display().to_string(),
            },
            ErrorCode::Ambiguous => SourceError::Revision {
                rev: rev.to_string(),
                repo: self.shared.path.display().to_string(),
                message: "ambiguous: more than one object starts with it, give more of the sha".into(),
            },
            _ => self.rev_error(rev, &e),
        })?;
        let kind = object.kind();
        object.peel_to_commit().map_err(|_| SourceError::Revision {
            rev: rev.to_string(),
            repo: self.shared.path.display().to_string(),
            message: format!(
                "names a {}, not a commit",
                kind.map(|k| k.str()).unwrap_or("object of unknown type")
            ),
        })
    }

    fn rev_error(&self, rev: &str, e: &git2::Error) -> SourceError {
        SourceError::Revision {
            rev: rev.to_string(),
            repo: self.shared.path.display().to_string(),
            message: e.message().to_string(),
        }
    }

    /// The content of blob `oid`, from the cache or inflated under the repository lock.
    fn blob(&self, oid: Oid) -> Result<Arc<[u8]>, git2::Error> {
        if let Some(hit) = self.cache().blobs.get(&oid) {
            return Ok(hit.clone());
        }
        let content: Arc<[u8]> = {
            let repo = self.lock();
            let blob = repo.find_blob(oid)?;
            Arc::from(blob.content())
        };
        if content.len() <= BLOB_CACHE_MAX_ENTRY {
            let mut cache = self.cache();
            if cache.bytes + content.len() > BLOB_CACHE_BYTES {
                *cache = BlobCache::default();
            }
            cache.bytes += content.len();
            cache.blobs.insert(oid, content.clone());
        }
        Ok(content)
    }

    fn cache(&self) -> MutexGuard<'_, BlobCache> {
        self.shared
            .blobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The files of one commit, read from git objects. `Send + Sync`; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct GitTree {
    repo: GitRepo,
    rev: String,
    commit: String,
    index: Index,
}

impl GitTree {
    /// Opens `repo` and takes the tree of revision `rev`. To read several revisions of one
    /// repository, open a [`GitRepo`] once and call [`GitRepo::tree`] for each.
    pub fn open(repo: &Path, rev: &str) -> Result<GitTree, SourceError> {
        GitRepo::open(repo)?.tree(rev)
    }

    /// The full sha of the commit this tree belongs to.
    pub fn commit(&self) -> &str {
        &self.commit
    }

    /// The revision as it was asked for (`main`, `HEAD~1`, a sha, ...).
    pub fn rev(&self) -> &str {
        &self.rev
    }

    /// The repository this tree was read from.
    pub fn repo(&self) -> &GitRepo {
        &self.repo
    }

    /// Follows `path` through the index, resolving symlinks (relative to the link's directory, as
    /// the file system does) and refusing any that leave the tree. `None` when nothing is there.
    fn resolve(&self, path: &TreePath) -> Result<Option<Found<'_>>, SourceError> {
        Ok(self.resolve_real(path)?.map(|(found, _)| found))
    }

    /// [`Self::resolve`], also returning the real path (every symlink followed).
    fn resolve_real(&self, path: &TreePath) -> Result<Option<(Found<'_>, String)>, SourceError> {
        // Components still to walk, in reverse so the next one is at the end.
        let mut pending: Vec<String> = path.parts().map(str::to_string).collect();
        pending.reverse();
        let mut real: Vec<String> = Vec::new();
        let mut hops = 0;
        // The link being followed, `path -> target`, for the message when it leaves the tree.
        let mut link = String::new();
        let mut node = self.index.root();
        while let Some(part) = pending.pop() {
            match part.as_str() {
                "" | "." => continue,
                ".." => {
                    // Only link targets bring `..` here (tree paths are normalized), and `real` is
                    // the resolved directory, so popping it is the parent the file system would see.
                    if real.pop().is_none() {
                        return Err(SourceError::SymlinkEscapes {
                            path: path.clone(),
                            target: link,
                        });
                    }
                    node = self.index.get(&real.join("/")).unwrap_or(self.index.root());
                    continue;
                }
                _ => {}
            }
            match node {
                Node::Dir(_) => {}
                Node::Gitlink(commit) => return Err(submodule(&real, *commit)),
                // A file in the middle of a path: nothing is below it.
                Node::File(_) | Node::Link(_) => return Ok(None),
            }
            real.push(part);
            let here = real.join("/");
            let Some(next) = self.index.get(&here) else {
                return Ok(None);
            };
            if let Node::Link(target) = next {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(SourceError::SymlinkLoop(path.clone()));
                }
                if target.starts_with('/') {
                    return Err(SourceError::SymlinkEscapes {
                        path: path.clone(),
                        target: target.clone(),
                    });
                }
                link = format!("{here} -> {target}");
                real.pop();
                pending.extend(target.split('/').rev().map(str::to_string));
                node = self.index.get(&real.join("/")).unwrap_or(self.index.root());
                continue;
            }
            node = next;
        }
        let found = match node {
            Node::Dir(names) => Found::Dir(names),
            Node::File(oid) => Found::File(*oid),
            Node::Gitlink(commit) => Found::Gitlink(real.join("/"), *commit),
            // Links are replaced by their targets above, never kept as the current node.
            Node::Link(_) => return Ok(None),
        };
        Ok(Some((found, real.join("/"))))
    }

    fn read_error(&self, path: &TreePath, message: impl std::fmt::Display) -> SourceError {
        SourceError::Read {
            path: path.clone(),
            message: format!("{message} (git {} {})", self.rev, short(&self.commit)),
        }
    }
}

impl FileTree for GitTree {
    fn kind(&self, path: &TreePath) -> Result<Option<EntryKind>, SourceError> {
        Ok(self.resolve(path)?.map(|found| match found {
            Found::File(_) => EntryKind::File,
            // A submodule shows as a directory, as in a checkout; reading below it is an error.
            Found::Dir(_) | Found::Gitlink(..) => EntryKind::Dir,
        }))
    }

    fn read(&self, path: &TreePath) -> Result<Vec<u8>, SourceError> {
        match self.resolve(path)? {
            None => Err(SourceError::NotFound(path.clone())),
            Some(Found::File(oid)) => match self.repo.blob(oid) {
                Ok(content) => Ok(content.to_vec()),
                Err(e) => Err(self.read_error(path, format!("blob {oid}: {}", e.message()))),
            },
            Some(Found::Dir(_)) => Err(self.read_error(path, "is a directory")),
            Some(Found::Gitlink(real, commit)) => Err(submodule_at(&real, commit)),
        }
    }

    fn list(&self, path: &TreePath) -> Result<Vec<String>, SourceError> {
        match self.resolve(path)? {
            None => Err(SourceError::NotFound(path.clone())),
            Some(Found::Dir(names)) => Ok(names.to_vec()),
            Some(Found::File(_)) => Err(self.read_error(path, "not a directory")),
            Some(Found::Gitlink(real, commit)) => Err(submodule_at(&real, commit)),
        }
    }

    fn describe(&self) -> String {
        format!("git {} ({})", self.rev, short(&self.commit))
    }

    fn real_path(&self, path: &TreePath) -> Result<Option<TreePath>, SourceError> {
        match self.resolve_real(path)? {
            Some((_, real)) => Ok(Some(TreePath::new(&real)?)),
            None => Ok(None),
        }
    }
}

/// What a path resolves to once every symlink on it is followed.
enum Found<'a> {
    Dir(&'a [String]),
    File(Oid),
    /// The submodule's resolved path and pinned commit.
    Gitlink(String, Oid),
}

fn submodule(real: &[String], commit: Oid) -> SourceError {
    submodule_at(&real.join("/"), commit)
}

fn submodule_at(real: &str, commit: Oid) -> SourceError {
    SourceError::Submodule {
        path: TreePath::new(real).unwrap_or_default(),
        commit: commit.to_string(),
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// One entry of a revision's tree.
#[derive(Debug)]
enum Node {
    /// A directory with its entry names, sorted.
    Dir(Vec<String>),
    /// A regular or executable file.
    File(Oid),
    /// A symlink and its target, as committed.
    Link(String),
    /// A submodule pinned at a commit of another repository.
    Gitlink(Oid),
}

/// Every path of a revision, walked once.
#[derive(Debug)]
struct Index {
    nodes: HashMap<String, Node>,
}

impl Index {
    fn build(repo: &Repository, tree: &git2::Tree<'_>) -> Result<Index, git2::Error> {
        let mut nodes: HashMap<String, Node> = HashMap::new();
        nodes.insert(String::new(), Node::Dir(Vec::new()));
        let mut failure: Option<git2::Error> = None;
        tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
            // `parent` is `""` at the root, else `dir/sub/`.
            let parent = parent.trim_end_matches('/');
            let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
            let path = if parent.is_empty() {
                name.clone()
            } else {
                format!("{parent}/{name}")
            };
            let node = match entry.filemode() {
                MODE_TREE => Node::Dir(Vec::new()),
                MODE_GITLINK => Node::Gitlink(entry.id()),
                MODE_LINK => match repo.find_blob(entry.id()) {
                    Ok(blob) => Node::Link(String::from_utf8_lossy(blob.content()).into_owned()),
                    Err(e) => {
                        failure = Some(e);
                        return TreeWalkResult::Abort;
                    }
                },
                _ => Node::File(entry.id()),
            };
            if let Some(Node::Dir(names)) = nodes.get_mut(parent) {
                names.push(name);
            }
            nodes.insert(path, node);
            TreeWalkResult::Ok
        })
        .map_err(|e| failure.take().unwrap_or(e))?;
        for node in nodes.values_mut() {
            if let Node::Dir(names) = node {
                // git orders `a.yaml` after `a/`; callers get plain byte order, as DirTree gives.
                names.sort();
            }
        }
        Ok(Index { nodes })
    }

    fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    fn root(&self) -> &Node {
        static EMPTY: Node = Node::Dir(Vec::new());
        self.nodes.get("").unwrap_or(&EMPTY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits the files and symlinks of `entries` (`"->"` marks a link target) with git2 alone.
    fn commit(dir: &Path, entries: &[(&str, &str)]) -> String {
        let repo = Repository::init(dir).unwrap();
        for (path, content) in entries {
            let full = dir.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            match content.strip_prefix("->") {
                Some(target) => std::os::unix::fs::symlink(target, &full).unwrap(),
                None => std::fs::write(&full, content).unwrap(),
            }
        }
        let mut index = repo.index().unwrap();
        index.add_all(["*"], git2::IndexAddOption::DEFAULT, None).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@kgitops.invalid").unwrap();
        repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &[])
            .unwrap()
            .to_string()
    }

    #[test]
    fn dot_dot_in_a_link_target_is_the_parent_of_the_resolved_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sha = commit(
            dir.path(),
            &[
                ("README.md", "root"),
                ("base/kafka.yaml", "kafka"),
                ("clusters/dev/base", "->../../base"),
                // `base` is really /base, so `base/..` is the root: README.md, not clusters/dev/README.md.
                ("clusters/dev/readme", "->base/../README.md"),
                ("clusters/dev/README.md", "not this one"),
            ],
        );
        let tree = GitTree::open(dir.path(), &sha).unwrap();
        let read = |p: &str| String::from_utf8(tree.read(&TreePath::new(p).unwrap()).unwrap()).unwrap();
        assert_eq!(read("clusters/dev/readme"), "root");
        assert_eq!(read("clusters/dev/base/kafka.yaml"), "kafka");
    }

    #[test]
    fn listings_are_in_byte_order_not_git_order() {
        let dir = tempfile::tempdir().unwrap();
        // git sorts the tree `a` as `a/`, after `a.yaml` and `a-b`; callers expect plain order.
        let sha = commit(
            dir.path(),
            &[("a/x", "1"), ("a.yaml", "2"), ("a-b", "3"), ("B", "4")],
        );
        let tree = GitTree::open(dir.path(), &sha).unwrap();
        assert_eq!(tree.list(&TreePath::root()).unwrap(), ["B", "a", "a-b", "a.yaml"]);
    }

    #[test]
    fn the_blob_cache_stays_within_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let big = "x".repeat(BLOB_CACHE_MAX_ENTRY / 2);
        let files: Vec<(String, String)> = (0..(BLOB_CACHE_BYTES / big.len() + 8))
            .map(|i| (format!("f{i}"), format!("{i}{big}")))
            .collect();
        let entries: Vec<(&str, &str)> = files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
        let sha = commit(dir.path(), &entries);
        let tree = GitTree::open(dir.path(), &sha).unwrap();
        for (path, content) in &files {
            assert_eq!(
                tree.read(&TreePath::new(path).unwrap()).unwrap(),
                content.as_bytes()
            );
            assert!(tree.repo.cache().bytes <= BLOB_CACHE_BYTES);
        }
    }
}
