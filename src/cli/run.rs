//! `kgitops run --config FILE`

use std::path::PathBuf;

use super::{Failure, Outcome};

/// Run the reconciler daemon.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Daemon configuration (YAML).
    #[arg(long)]
    pub config: PathBuf,
}

pub fn run(_args: RunArgs) -> Result<Outcome, Failure> {
    Err(super::not_yet("run"))
}
