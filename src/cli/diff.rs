//! `kgitops diff --from REV --to REV ...` (offline) and `kgitops diff --live --cluster NAME ...`.

use super::{ClusterAccessArgs, Failure, Outcome, OutputFormat, RepoArgs};

/// Show what changes: between two revisions offline, or against a live cluster.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Base revision (offline diff).
    #[arg(long, requires = "to", conflicts_with = "live")]
    pub from: Option<String>,
    /// Head revision (offline diff).
    #[arg(long, requires = "from", conflicts_with = "live")]
    pub to: Option<String>,
    /// Diff against the live cluster (server-side apply dry-run).
    #[arg(long)]
    pub live: bool,
    /// Revision to render for `--live` (default: the work tree).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub rev: Option<String>,
    /// Cluster overlay(s) under `clusters/` (repeatable; offline default: all).
    #[arg(long = "cluster")]
    pub clusters: Vec<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub access: ClusterAccessArgs,
}

pub fn run(_args: DiffArgs) -> Result<Outcome, Failure> {
    Err(super::not_yet("diff"))
}
