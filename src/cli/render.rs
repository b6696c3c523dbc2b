//! `kgitops render [--repo DIR [--rev REV]] PATH`

use std::path::PathBuf;

use super::{Failure, Outcome};

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

pub fn run(_args: RenderArgs) -> Result<Outcome, Failure> {
    Err(super::not_yet("render"))
}
