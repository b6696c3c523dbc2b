//! `kgitops validate [--repo DIR] [--rev REV | --from REV --to REV] [--cluster NAME]... [--crds PATH]...`

use std::path::PathBuf;

use super::{Failure, Outcome, RepoArgs};

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
}

pub fn run(_args: ValidateArgs) -> Result<Outcome, Failure> {
    Err(super::not_yet("validate"))
}
