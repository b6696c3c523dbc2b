//! `kgitops apply --cluster NAME [--repo DIR] [--rev REV] [--prune] [--dry-run] [--wait]`

use super::{ClusterAccessArgs, Failure, Outcome, OutputFormat, RepoArgs};

/// Server-side apply a cluster overlay.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Cluster overlay under `clusters/`.
    #[arg(long)]
    pub cluster: String,
    /// Revision to render (default: the work tree).
    #[arg(long)]
    pub rev: Option<String>,
    /// Delete objects of the inventory that left git.
    #[arg(long)]
    pub prune: bool,
    /// Allow pruning more than half of the inventory at once.
    #[arg(long, requires = "prune")]
    pub allow_mass_prune: bool,
    /// Server-side dry-run only: nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait for health (Strimzi Kafka Ready) after applying.
    #[arg(long)]
    pub wait: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub access: ClusterAccessArgs,
}

pub fn run(_args: ApplyArgs) -> Result<Outcome, Failure> {
    Err(super::not_yet("apply"))
}
