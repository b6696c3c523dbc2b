//! `kgitops validate [--repo DIR] [--rev REV | --from REV --to REV] [--cluster NAME]... [--crds PATH]...`

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;

use serde_json::Value;

use super::{Failure, Outcome, RepoArgs, VerifyArgs};
use crate::render::ParseCache;
use crate::source::{DirTree, FileTree, GitRepo, TreePath};
use crate::validate::{Schemas, validate_repo};

/// Report format for findings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FindingsFormat {
    #[default]
    Text,
    Json,
}

/// Validate rendered clusters offline.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Revision to validate (default: the work tree).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub rev: Option<String>,
    /// Base revision, for rules that compare revisions.
    #[arg(long, requires = "to")]
    pub from: Option<String>,
    /// Head revision, for rules that compare revisions.
    #[arg(long, requires = "from")]
    pub to: Option<String>,
    /// Cluster overlay(s) under `clusters/` (repeatable; default: all).
    #[arg(long = "cluster")]
    pub clusters: Vec<String>,
    /// CRD files or directories (repeatable).
    #[arg(long)]
    pub crds: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = FindingsFormat::Text)]
    pub output: FindingsFormat,
    // Verifies the commit validated: `--rev`, or `--to` of a comparison.
    #[command(flatten)]
    pub verify: VerifyArgs,
}

pub fn run(args: ValidateArgs) -> Result<Outcome, Failure> {
    // Pull-request CI validates without the age key: encrypted values are read as placeholders.
    crate::render::sops::keys::placeholders_without_key();
    let mut schemas = Schemas::new()?;
    for path in &args.crds {
        schemas.load_crds(path)?;
    }
    let repo = &args.repo.repo;
    let (from, to): (Option<Box<dyn FileTree>>, Box<dyn FileTree>) = match (&args.rev, &args.from, &args.to) {
        (Some(rev), _, _) => {
            let git = GitRepo::open(repo)?;
            args.verify.check(&git, Some(rev))?;
            (None, Box::new(git.tree(rev)?))
        }
        (None, Some(from), Some(to)) => {
            // One repository for both revisions, so they share its blob cache.
            let git = GitRepo::open(repo)?;
            args.verify.check(&git, Some(to))?;
            (Some(Box::new(git.tree(from)?)), Box::new(git.tree(to)?))
        }
        _ => {
            args.verify.check_work_tree()?;
            (None, Box::new(DirTree::open(repo)?))
        }
    };
    // The clusters of a platform repository share files (a vendored Strimzi release is about 1 MB
    // of CRDs): each is parsed once for the whole run.
    let cache = ParseCache::new();
    let render = |tree: &dyn FileTree, dir: &TreePath| -> Result<Vec<Value>, Box<dyn Error + Send + Sync>> {
        Ok(crate::render::render_cached(tree, dir, &cache)?)
    };
    // On the renderer's threads: clusters are validated in parallel, each rendering on the same pool.
    let report = crate::render::in_render_pool(|| {
        validate_repo(&schemas, from.as_deref(), to.as_ref(), &args.clusters, &render)
    })??;
    let text = match args.output {
        FindingsFormat::Text => report.to_text(),
        FindingsFormat::Json => report.to_json(),
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    // The process exits next: freeing every parsed file one allocation at a time would only
    // delay it (a few percent of a validate run).
    std::mem::forget(cache);
    Ok(if report.has_errors() {
        Outcome::Changes
    } else {
        Outcome::Clean
    })
}
