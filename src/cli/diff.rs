//! `kgitops diff --from REV --to REV ...` (offline) and `kgitops diff --live --cluster NAME ...`.

use super::apply::{InventoryArgs, block_on, connect, inventory_for, render_cluster};
use super::{ClusterAccessArgs, Failure, Outcome, OutputFormat, RepoArgs, VerifyArgs};
use crate::apply::{self, ApplyOptions};
use crate::plan::{Plan, offline};
use crate::report;
use crate::source::GitRepo;

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
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub access: ClusterAccessArgs,
    // Verifies the commit that would be applied: `--to`, or `--rev` with `--live`.
    #[command(flatten)]
    pub verify: VerifyArgs,
}

pub fn run(args: DiffArgs) -> Result<Outcome, Failure> {
    if args.live {
        run_live(&args)
    } else {
        run_offline(&args)
    }
}

/// The offline diff between revisions (`--from/--to`): every cluster (or the named ones) rendered
/// from git objects at both revisions; exit 1 when any cluster changes.
fn run_offline(args: &DiffArgs) -> Result<Outcome, Failure> {
    let (Some(from), Some(to)) = (args.from.as_deref(), args.to.as_deref()) else {
        return Err("diff needs either --live or both --from REV and --to REV".into());
    };
    crate::render::sops::keys::placeholders_without_key();
    // One repository for both revisions, so the two trees share its blob cache.
    let git = GitRepo::open(&args.repo.repo)?;
    args.verify.check(&git, Some(to))?;
    let (base, head) = (git.tree(from)?, git.tree(to)?);
    let mut plans = offline::diff_revisions(&base, &head, &args.clusters)?;
    for plan in &mut plans {
        plan.revision = Some(format!("{from}..{to}"));
    }
    let changed = plans.iter().any(Plan::has_changes);
    let text = match args.output {
        OutputFormat::Text => report::fleet_text(&plans),
        OutputFormat::Markdown => report::fleet_markdown(&plans, from, to),
        OutputFormat::Json => report::json(&report::FleetDiff {
            from,
            to,
            changed,
            clusters: &plans,
        }),
    };
    print!("{text}");
    Ok(if changed { Outcome::Changes } else { Outcome::Clean })
}

/// `--live`: the plan of one cluster against the live state, what of the live Strimzi objects is
/// not in effect, and the changes that wait for live state (gates); exit 1 when anything would
/// change, something is not in effect or a gate waits.
fn run_live(args: &DiffArgs) -> Result<Outcome, Failure> {
    let [cluster] = args.clusters.as_slice() else {
        return Err("diff --live needs exactly one --cluster".into());
    };
    let objects = render_cluster(&args.repo, args.rev.as_deref(), cluster, &args.verify)?;
    let inventory = inventory_for(cluster, &objects, &args.inventory)?;
    let opts = ApplyOptions::new(cluster, inventory);
    let mut plan: Plan = block_on(async {
        let c = connect(&args.access).await?;
        let cp = apply::plan(&c, objects, &opts).await.map_err(Failure::from)?;
        Ok(cp.live.plan)
    })?;
    plan.revision = args.rev.clone();
    print!("{}", render_plan(&plan, args.output));
    // A spec the operator did not carry out is a disagreement between git and the cluster, as a
    // change is.
    let ignored = plan
        .not_in_effect
        .iter()
        .any(|n| n.effect == crate::plan::in_effect::Effect::Ignored);
    Ok(if plan.has_changes() || ignored || !plan.blocked.is_empty() {
        Outcome::Changes
    } else {
        Outcome::Clean
    })
}

/// A plan in the requested format (the offline diff prints with this too).
pub fn render_plan(plan: &Plan, format: OutputFormat) -> String {
    match format {
        OutputFormat::Text => report::plan_text(plan),
        OutputFormat::Markdown => report::plan_markdown(plan),
        OutputFormat::Json => report::json(plan),
    }
}
