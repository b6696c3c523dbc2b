//! `kgitops fleet status --config FILE`: the fleet of a sharded daemon (`sharding:`) as its Leases
//! say, from anywhere that can read them: owner, applied revision and health of every cluster.

use std::path::PathBuf;

use super::apply::block_on;
use super::{Failure, Outcome, OutputFormat};
use crate::daemon::Config;
use crate::daemon::fleet;

/// Sharded daemons: `fleet status`.
#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum FleetCommand {
    /// Show every cluster's owner, applied revision and health, read from the fleet's Leases.
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The daemon configuration (YAML) with a `sharding` section.
    #[arg(long)]
    pub config: PathBuf,
    /// text or json (markdown prints text).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// The configuration has no `sharding` section.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{}: no sharding section: this daemon is not sharded", .0.display())]
    NotSharded(PathBuf),
    #[error("{}: sharding: cluster '{cluster}' is not configured", path.display())]
    NoLeaseCluster { path: PathBuf, cluster: String },
    #[error("sharding: cluster '{cluster}': {message}")]
    Connect { cluster: String, message: String },
    #[error("Leases in namespace {namespace}: {source}")]
    Read {
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

pub fn run(args: FleetArgs) -> Result<Outcome, Failure> {
    let FleetCommand::Status(args) = args.command;
    let config = Config::load(&args.config)?;
    let Some(sharding) = config.sharding.clone() else {
        return Err(FleetError::NotSharded(args.config).into());
    };
    let Some(cc) = sharding.lease_cluster(&config.clusters).cloned() else {
        return Err(FleetError::NoLeaseCluster {
            path: args.config,
            cluster: sharding.cluster.unwrap_or_default(),
        }
        .into());
    };
    let names: Vec<String> = config.clusters.iter().map(|c| c.name.clone()).collect();
    let status = block_on(async move {
        let conn = crate::plan::connect::connect(
            cc.kubeconfig.as_deref(),
            cc.context.as_deref(),
            &crate::plan::client::ClientOptions::with_concurrency(1),
        )
        .await
        .map_err(|e| {
            Failure::from(FleetError::Connect {
                cluster: cc.name.clone(),
                message: e.to_string(),
            })
        })?;
        fleet::read(conn.client().clone(), &sharding.namespace, &names)
            .await
            .map_err(|source| {
                Failure::from(FleetError::Read {
                    namespace: sharding.namespace.clone(),
                    source,
                })
            })
    })?;
    match args.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&status)?),
        OutputFormat::Text | OutputFormat::Markdown => print!("{}", fleet::text(&status)),
    }
    Ok(Outcome::Clean)
}
