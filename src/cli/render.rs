//! `kgitops render [--repo DIR [--rev REV]] PATH`

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Failure, Outcome, VerifyArgs};
use crate::manifest::yaml::Limits;
use crate::manifest::yaml::to_yaml_stream;
use crate::render::render_with_warnings;
use crate::source::{DirTree, FileTree, GitRepo, TreePath};

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
    #[command(flatten)]
    pub verify: VerifyArgs,
}

pub fn run(args: RenderArgs) -> Result<Outcome, Failure> {
    let mut outside_checkout = false;
    let (tree, dir): (Box<dyn FileTree>, TreePath) = match (&args.repo, &args.rev) {
        (Some(repo), Some(rev)) => {
            let git = GitRepo::open(repo)?;
            args.verify.check(&git, Some(rev))?;
            (Box::new(git.tree(rev)?), repo_relative(&args.path)?)
        }
        _ if args.verify.requested() => {
            return Err(
                "--verify-openpgp-keys/--verify-ssh-allowed-signers need --repo and --rev: \
                        only a git revision carries a signature"
                    .into(),
            );
        }
        (Some(repo), None) => (Box::new(DirTree::open(repo)?), repo_relative(&args.path)?),
        (None, _) => {
            let (root, dir) = enclosing_root(&args.path)?;
            outside_checkout = root == Path::new("/");
            (Box::new(DirTree::open(&root)?), dir)
        }
    };
    let (result, warnings) = render_with_warnings(tree.as_ref(), &dir, Limits::DEFAULT);
    // kustomize's warnings go to stderr as it prints them, before the output or the error.
    if !warnings.is_empty() {
        let mut err = std::io::stderr().lock();
        for warning in &warnings {
            writeln!(err, "{warning}")?;
        }
    }
    let objects = result.map_err(|e| -> Failure {
        if outside_checkout {
            with_leading_slash(&e.to_string(), &dir).into()
        } else {
            Box::new(e)
        }
    })?;
    let mut out = std::io::stdout().lock();
    out.write_all(to_yaml_stream(&objects).as_bytes())?;
    out.flush()?;
    // The process ends here: freeing tens of thousands of objects one by one would only cost time.
    std::mem::forget(objects);
    Ok(Outcome::Clean)
}

/// An error of a render rooted at `/` (outside any git work tree) names files relative to `/`
/// (`tmp/x/kustomization.yaml`); the user gave an absolute location, so the paths get their
/// leading `/` back. Paths are recognised by the first component of the kustomization's directory
/// at the start of a word (after a space, quote, backtick or parenthesis).
fn with_leading_slash(message: &str, dir: &TreePath) -> String {
    let Some(top) = dir.parts().next() else {
        return message.to_string();
    };
    let needle = format!("{top}/");
    let mut out = String::with_capacity(message.len() + 8);
    let mut rest = message;
    while let Some(at) = rest.find(&needle) {
        let before = rest[..at].chars().next_back().or_else(|| out.chars().next_back());
        let starts_word =
            before.is_none_or(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '`' | '(' | '['));
        out.push_str(&rest[..at]);
        if starts_word {
            out.push('/');
        }
        out.push_str(&needle);
        rest = &rest[at + needle.len()..];
    }
    out.push_str(rest);
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_a_render_rooted_at_slash_get_their_leading_slash() {
        let dir = TreePath::new("tmp/k/overlay").unwrap();
        assert_eq!(
            with_leading_slash(
                "tmp/k/overlay/kustomization.yaml: resources: 'tmp/k/base' missing; see `tmp/x`",
                &dir
            ),
            "/tmp/k/overlay/kustomization.yaml: resources: '/tmp/k/base' missing; see `/tmp/x`"
        );
        // Not at the start of a word: left alone.
        assert_eq!(with_leading_slash("a/tmp/b xtmp/c", &dir), "a/tmp/b xtmp/c");
    }
}
