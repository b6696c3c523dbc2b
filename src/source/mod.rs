//! Where manifests come from: a read-only [`FileTree`] at one revision, either git objects read
//! through git2 (never a checkout) or a directory on disk.
//!
//! Paths are [`TreePath`]s: relative, `/`-separated and normalized, so nothing built from them can
//! leave the tree. Each tree resolves symlinks itself and refuses any that point outside it.

mod dir;
mod git;
pub mod layout;
pub mod limits;
mod path;
pub mod remote;
pub mod verify;

pub use dir::DirTree;
pub use git::{GitRepo, GitTree};
pub use limits::InputLimits;
pub use path::{PathError, TreePath};

/// What a path names inside a tree (after following symlinks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
}

/// A failed read from a tree; always names the path.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}: no such file or directory")]
    NotFound(TreePath),
    #[error("{path}: symlink points outside the repository ({target})")]
    SymlinkEscapes { path: TreePath, target: String },
    #[error("{path}: {message}")]
    Read { path: TreePath, message: String },
    #[error("{0}: too many levels of symbolic links")]
    SymlinkLoop(TreePath),
    #[error("{path}: is a git submodule (commit {commit}); submodules are not read")]
    Submodule { path: TreePath, commit: String },
    #[error(transparent)]
    Path(#[from] PathError),
    /// The repository itself could not be opened.
    #[error("{repo}: cannot open git repository: {message}")]
    Open { repo: String, message: String },
    /// `rev` names nothing in the repository.
    #[error("unknown revision '{rev}' in {repo}")]
    UnknownRevision { rev: String, repo: String },
    /// `rev` exists but cannot be used: ambiguous short sha, not a commit, unreadable objects.
    #[error("revision '{rev}' in {repo}: {message}")]
    Revision {
        rev: String,
        repo: String,
        message: String,
    },
    #[error("git: {0}")]
    Git(String),
    /// The file is larger than the caller allows; known from the blob header or the file's
    /// metadata, before anything is read.
    #[error("{path}: file is {size} bytes, more than the {limit} bytes allowed")]
    TooLarge { path: TreePath, size: u64, limit: usize },
    /// Reading directory `path` would take the git tree entries read for one revision past the
    /// limit (a tree bomb: folders shared many times over make millions of paths in a small
    /// repository).
    #[error(
        "{path}: reading this directory ({entries} entries) would take the git tree entries read \
         from {tree} past the limit of {limit} (a repository with this many paths on the way to \
         the overlay is refused; see max_tree_entries in docs/limits.md)"
    )]
    TooManyEntries {
        path: TreePath,
        entries: usize,
        tree: String,
        limit: usize,
    },
}

/// A read-only tree of files at one revision.
pub trait FileTree: Send + Sync {
    /// What `path` is, or `None` when it does not exist.
    fn kind(&self, path: &TreePath) -> Result<Option<EntryKind>, SourceError>;
    /// The bytes of the file at `path`, or [`SourceError::TooLarge`] when it has more than `limit`
    /// bytes: the size is checked before the content is read (blob header, file metadata), so an
    /// oversized file costs no memory.
    fn read(&self, path: &TreePath, limit: usize) -> Result<Vec<u8>, SourceError>;
    /// The names (not paths) of the entries of directory `path`, sorted.
    fn list(&self, path: &TreePath) -> Result<Vec<String>, SourceError>;
    /// Human description for messages: `git <rev> (<sha>)` or the directory.
    fn describe(&self) -> String;
    /// `path` with every symlink on it followed (inside the tree), or `None` when nothing is there.
    /// Load restrictions are checked on this real path, as kustomize checks the file it reads.
    fn real_path(&self, path: &TreePath) -> Result<Option<TreePath>, SourceError> {
        Ok(self.kind(path)?.map(|_| path.clone()))
    }
}
