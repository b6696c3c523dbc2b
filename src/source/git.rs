//! Git objects at one revision as a [`FileTree`], read through git2: never the work tree, never a
//! checkout, never the index.
//!
//! [`GitRepo`] is one open repository that hands out [`GitTree`]s for any number of revisions
//! (`kgitops diff --from A --to B` opens one repository and two trees). A tree reads git tree
//! objects lazily, one directory when a lookup first passes through it, and keeps what it read
//! (by tree id, so a folder shared by many paths is read once). A render therefore reads only the
//! directories on its paths, never the rest of the commit: a 400 KB repository can hold 10^10
//! paths by sharing subtrees, and walking them all would never end. The entries a tree loads are
//! counted against [`super::InputLimits::max_tree_entries`], checked from the tree object's size before
//! it is inflated.
//!
//! `git2::Repository` is `Send` but not `Sync`, so object reads go through one mutex per
//! repository; inflating a manifest-sized blob takes microseconds, which keeps the lock short even
//! when many clusters render in parallel. A blob's size is read from its header before it is
//! inflated, so a file over the caller's limit costs no memory. Inflated blobs are kept in a cache
//! shared by every tree of the repository (bounded by [`BLOB_CACHE_BYTES`]), because the trees of
//! one fleet read the same `base/` files once per cluster and per revision.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use git2::{ErrorCode, ObjectType, Oid, Repository, RepositoryOpenFlags};

use super::limits;
use super::{EntryKind, FileTree, SourceError, TreePath};

/// How many symbolic links one lookup may follow before it is refused as a loop (Linux's limit).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Upper bound for the bytes of inflated blobs kept per repository; past it the cache starts over.
pub const BLOB_CACHE_BYTES: usize = 16 << 20;

/// Blobs larger than this are never cached (they are not manifests).
const BLOB_CACHE_MAX_ENTRY: usize = 1 << 20;

/// Longest symlink target read (Linux's `PATH_MAX`); a larger link blob is refused unread.
const MAX_LINK_TARGET: usize = 4096;

/// Most bytes one tree entry takes in a tree object (mode, space, a 255-byte name, NUL, 20-byte
/// id): a tree object larger than this many times the entries still allowed is refused before it
/// is inflated.
const MAX_TREE_ENTRY_BYTES: usize = 7 + 1 + 255 + 1 + 20;

/// Git tree entry modes (octal, as git stores them).
const MODE_TREE: i32 = 0o040000;
const MODE_LINK: i32 = 0o120000;
const MODE_GITLINK: i32 = 0o160000;

/// One open git repository (work tree or bare). Cheap to clone; every clone shares one handle.
#[derive(Clone)]
pub struct GitRepo {
    shared: Arc<Shared>,
    /// Entries each tree handed out may load; [`limits::current`] unless set.
    max_tree_entries: Option<usize>,
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
            max_tree_entries: None,
        })
    }

    /// This repository, its trees limited to `max` tree entries each instead of the process-wide
    /// [`super::InputLimits::max_tree_entries`].
    pub fn with_max_tree_entries(mut self, max: usize) -> GitRepo {
        self.max_tree_entries = Some(max);
        self
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

    /// The tree of the commit `rev` names. Nothing below the root is read until it is asked for.
    pub fn tree(&self, rev: &str) -> Result<GitTree, SourceError> {
        let repo = self.lock();
        let commit = self.peel(&repo, rev)?;
        let root = commit.tree_id();
        Ok(GitTree {
            repo: self.clone(),
            rev: rev.to_string(),
            commit: commit.id().to_string(),
            root,
            max_entries: self
                .max_tree_entries
                .unwrap_or_else(|| limits::current().max_tree_entries),
            dirs: Mutex::new(DirCache::default()),
        })
    }

    /// The signature and signed payload of the commit `rev` names, for
    /// [`super::verify::TrustedKeys::verify`]; an unsigned commit has no signature.
    pub fn signed_commit(&self, rev: &str) -> Result<super::verify::SignedCommit, SourceError> {
        let repo = self.lock();
        let commit = self.peel(&repo, rev)?;
        let sha = commit.id();
        let committed_at = commit.committer().when().seconds();
        let (signature, payload) = match repo.extract_signature(&sha, None) {
            Ok((signature, payload)) => (Some(signature.to_vec()), payload.to_vec()),
            Err(e) if e.code() == ErrorCode::NotFound => (None, Vec::new()),
            Err(e) => return Err(self.rev_error(rev, &e)),
        };
        Ok(super::verify::SignedCommit {
            sha: sha.to_string(),
            signature,
            payload,
            committed_at,
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

    /// The content of blob `oid`, from the cache or inflated under the repository lock;
    /// [`Read::TooLarge`] (from the object header, nothing inflated) when it has more than `limit`
    /// bytes.
    fn blob(&self, oid: Oid, limit: usize) -> Result<Arc<[u8]>, Read> {
        if let Some(hit) = self.cache().blobs.get(&oid) {
            if hit.len() > limit {
                return Err(Read::TooLarge(hit.len() as u64));
            }
            return Ok(hit.clone());
        }
        let content: Arc<[u8]> = {
            let repo = self.lock();
            let size = object_size(&repo, oid)?;
            if size > limit as u64 {
                return Err(Read::TooLarge(size));
            }
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

/// The size of object `oid` from its header (for a packed delta, the size it will have), without
/// inflating it.
fn object_size(repo: &Repository, oid: Oid) -> Result<u64, git2::Error> {
    let (size, _kind): (usize, ObjectType) = repo.odb()?.read_header(oid)?;
    Ok(size as u64)
}

/// Why an object was not read.
enum Read {
    /// It has this many bytes, more than allowed.
    TooLarge(u64),
    Git(git2::Error),
}

impl From<git2::Error> for Read {
    fn from(e: git2::Error) -> Self {
        Read::Git(e)
    }
}

/// The files of one commit, read from git objects. `Send + Sync`; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct GitTree {
    repo: GitRepo,
    rev: String,
    commit: String,
    /// The commit's root tree.
    root: Oid,
    /// Most tree entries [`Self::dirs`] may hold.
    max_entries: usize,
    dirs: Mutex<DirCache>,
}

/// The directories of one tree read so far, by tree id.
#[derive(Debug, Default)]
struct DirCache {
    entries: usize,
    dirs: HashMap<Oid, Arc<Dir>>,
}

/// One git tree object: its entries sorted by name in byte order (git orders `a.yaml` after `a/`;
/// callers get plain byte order, as DirTree gives).
#[derive(Debug)]
struct Dir {
    entries: Vec<(String, Node)>,
}

impl Dir {
    fn get(&self, name: &str) -> Option<Node> {
        self.entries
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.entries[i].1)
    }

    fn names(&self) -> Vec<String> {
        self.entries.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// One entry of a git tree.
#[derive(Clone, Copy, Debug)]
enum Node {
    Dir(Oid),
    /// A regular or executable file.
    File(Oid),
    /// A symlink; the blob holds its target.
    Link(Oid),
    /// A submodule pinned at a commit of another repository.
    Gitlink(Oid),
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

    /// The tree entries this tree has loaded so far.
    pub fn entries_read(&self) -> usize {
        self.dir_cache().entries
    }

    fn dir_cache(&self) -> MutexGuard<'_, DirCache> {
        self.dirs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The directory with tree id `oid` (at `path`, for messages), read once and counted against
    /// the entry limit.
    fn dir(&self, oid: Oid, path: &[String]) -> Result<Arc<Dir>, SourceError> {
        if let Some(hit) = self.dir_cache().dirs.get(&oid) {
            return Ok(hit.clone());
        }
        let shown = || TreePath::new(&path.join("/")).unwrap_or_default();
        let too_many = |entries: usize| SourceError::TooManyEntries {
            path: shown(),
            entries,
            tree: self.describe(),
            limit: self.max_entries,
        };
        let git_error = |e: git2::Error| self.read_error(&shown(), format!("tree {oid}: {}", e.message()));
        let allowed = self.max_entries.saturating_sub(self.dir_cache().entries);
        let mut entries = {
            let repo = self.repo.lock();
            let size = object_size(&repo, oid).map_err(git_error)?;
            if size > (allowed as u64).saturating_mul(MAX_TREE_ENTRY_BYTES as u64) {
                // Too big to hold `allowed` entries of any sane name: refused uninflated.
                return Err(too_many(
                    usize::try_from(size / MAX_TREE_ENTRY_BYTES as u64).unwrap_or(usize::MAX),
                ));
            }
            let tree = repo.find_tree(oid).map_err(git_error)?;
            if tree.len() > allowed {
                return Err(too_many(tree.len()));
            }
            tree.iter()
                .map(|entry| {
                    let name = String::from_utf8_lossy(entry.name_bytes()).into_owned();
                    let node = match entry.filemode() {
                        MODE_TREE => Node::Dir(entry.id()),
                        MODE_GITLINK => Node::Gitlink(entry.id()),
                        MODE_LINK => Node::Link(entry.id()),
                        _ => Node::File(entry.id()),
                    };
                    (name, node)
                })
                .collect::<Vec<_>>()
        };
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let dir = Arc::new(Dir { entries });
        let mut cache = self.dir_cache();
        if let Some(raced) = cache.dirs.get(&oid) {
            return Ok(raced.clone());
        }
        if cache.entries + dir.entries.len() > self.max_entries {
            return Err(too_many(dir.entries.len()));
        }
        cache.entries += dir.entries.len();
        cache.dirs.insert(oid, dir.clone());
        Ok(dir)
    }

    /// The target of the symlink whose blob is `oid` (at `path`, for messages).
    fn link_target(&self, oid: Oid, path: &[String]) -> Result<String, SourceError> {
        let shown = || TreePath::new(&path.join("/")).unwrap_or_default();
        match self.repo.blob(oid, MAX_LINK_TARGET) {
            Ok(content) => Ok(String::from_utf8_lossy(&content).into_owned()),
            Err(Read::TooLarge(size)) => Err(self.read_error(
                &shown(),
                format!("symlink target of {size} bytes, longer than {MAX_LINK_TARGET}"),
            )),
            Err(Read::Git(e)) => Err(self.read_error(&shown(), format!("blob {oid}: {}", e.message()))),
        }
    }

    /// Follows `path` through the tree, resolving symlinks (relative to the link's directory, as
    /// the file system does) and refusing any that leave the tree. `None` when nothing is there.
    fn resolve(&self, path: &TreePath) -> Result<Option<Found>, SourceError> {
        Ok(self.resolve_real(path)?.map(|(found, _)| found))
    }

    /// [`Self::resolve`], also returning the real path (every symlink followed).
    fn resolve_real(&self, path: &TreePath) -> Result<Option<(Found, String)>, SourceError> {
        // Components still to walk, in reverse so the next one is at the end.
        let mut pending: Vec<String> = path.parts().map(str::to_string).collect();
        pending.reverse();
        // The resolved path so far; `dirs[i]` is the directory `real[..i]`, so while the walk is
        // in a directory `dirs` has one more element than `real`.
        let mut real: Vec<String> = Vec::new();
        let mut dirs: Vec<Arc<Dir>> = vec![self.dir(self.root, &real)?];
        // The entry the walk stopped on when it is not a directory (its name is `real`'s last).
        let mut leaf: Option<Node> = None;
        let mut hops = 0;
        // The link being followed, `path -> target`, for the message when it leaves the tree.
        let mut link = String::new();
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
                    if leaf.take().is_none() {
                        dirs.pop();
                    }
                    continue;
                }
                _ => {}
            }
            match leaf {
                None => {}
                Some(Node::Gitlink(commit)) => return Err(submodule(&real, commit)),
                // A file in the middle of a path: nothing is below it.
                Some(_) => return Ok(None),
            }
            let Some(next) = dirs.last().and_then(|dir| dir.get(&part)) else {
                return Ok(None);
            };
            real.push(part);
            match next {
                Node::Link(oid) => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(SourceError::SymlinkLoop(path.clone()));
                    }
                    let target = self.link_target(oid, &real)?;
                    if target.starts_with('/') {
                        return Err(SourceError::SymlinkEscapes {
                            path: path.clone(),
                            target,
                        });
                    }
                    link = format!("{} -> {target}", real.join("/"));
                    real.pop();
                    pending.extend(target.split('/').rev().map(str::to_string));
                }
                Node::Dir(oid) => dirs.push(self.dir(oid, &real)?),
                other => leaf = Some(other),
            }
        }
        let found = match leaf {
            None => match dirs.last() {
                Some(dir) => Found::Dir(dir.clone()),
                None => return Ok(None),
            },
            Some(Node::File(oid)) => Found::File(oid),
            Some(Node::Gitlink(commit)) => Found::Gitlink(real.join("/"), commit),
            // Directories and links are never kept as the leaf.
            Some(Node::Dir(_) | Node::Link(_)) => return Ok(None),
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

    fn read(&self, path: &TreePath, limit: usize) -> Result<Vec<u8>, SourceError> {
        match self.resolve(path)? {
            None => Err(SourceError::NotFound(path.clone())),
            Some(Found::File(oid)) => match self.repo.blob(oid, limit) {
                Ok(content) => Ok(content.to_vec()),
                Err(Read::TooLarge(size)) => Err(SourceError::TooLarge {
                    path: path.clone(),
                    size,
                    limit,
                }),
                Err(Read::Git(e)) => Err(self.read_error(path, format!("blob {oid}: {}", e.message()))),
            },
            Some(Found::Dir(_)) => Err(self.read_error(path, "is a directory")),
            Some(Found::Gitlink(real, commit)) => Err(submodule_at(&real, commit)),
        }
    }

    fn list(&self, path: &TreePath) -> Result<Vec<String>, SourceError> {
        match self.resolve(path)? {
            None => Err(SourceError::NotFound(path.clone())),
            Some(Found::Dir(dir)) => Ok(dir.names()),
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
enum Found {
    Dir(Arc<Dir>),
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
        let read =
            |p: &str| String::from_utf8(tree.read(&TreePath::new(p).unwrap(), usize::MAX).unwrap()).unwrap();
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
                tree.read(&TreePath::new(path).unwrap(), usize::MAX).unwrap(),
                content.as_bytes()
            );
            assert!(tree.repo.cache().bytes <= BLOB_CACHE_BYTES);
        }
    }
}
