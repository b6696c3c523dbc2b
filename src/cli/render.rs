//! `kgitops render [--repo DIR [--rev REV]] PATH`

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Failure, Outcome};
use crate::manifest::yaml::to_yaml_stream;
use crate::render::render;
use crate::source::{DirTree, FileTree, GitTree, TreePath};

/// Render a kustomization to multi-document YAML on stdout.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// Repository root; PATH is then relative to it. Without it PATH is a directory on disk.
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// Git revision to read (branch, tag, sha, `HEAD~1`): git objects, never the work tree.
    #[arg(long, requires = "repo")]
    pub rev: Option<String>,
    /// The kustomization directory.
    pub path: PathBuf,
}

pub fn run(args: RenderArgs) -> Result<Outcome, Failure> {
    let (tree, dir): (Box<dyn FileTree>, TreePath) = match (&args.repo, &args.rev) {
        (Some(repo), Some(rev)) => (Box::new(GitTree::open(repo, rev)?), repo_relative(&args.path)?),
        (Some(repo), None) => (Box::new(DirTree::open(repo)?), repo_relative(&args.path)?),
        (None, _) => {
            let (root, dir) = enclosing_root(&args.path)?;
            (Box::new(DirTree::open(&root)?), dir)
        }
    };
    let objects = render(tree.as_ref(), &dir)?;
    let mut out = std::io::stdout().lock();
    out.write_all(to_yaml_stream(&objects).as_bytes())?;
    out.flush()?;
    // The process ends here: freeing tens of thousands of objects one by one would only cost time.
    std::mem::forget(objects);
    Ok(Outcome::Clean)
}

/// PATH given with `--repo`: relative to the repository root.
fn repo_relative(path: &Path) -> Result<TreePath, Failure> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("{}: path is not UTF-8", path.display()))?;
    Ok(TreePath::new(text)?)
}

/// A bare PATH is read through a tree rooted at the git work tree that contains it (so that
/// overlays can reach `../../base`), or at `/` outside any work tree.
fn enclosing_root(path: &Path) -> Result<(PathBuf, TreePath), Failure> {
    let dir = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let root = dir
        .ancestors()
        .find(|a| a.join(".git").exists())
        .unwrap_or_else(|| Path::new("/"))
        .to_path_buf();
    let rel = dir.strip_prefix(&root).unwrap_or(Path::new(""));
    let rel = rel
        .to_str()
        .ok_or_else(|| format!("{}: path is not UTF-8", path.display()))?;
    Ok((root, TreePath::new(rel)?))
}
