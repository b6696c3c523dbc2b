//! `kgitops apply --cluster NAME [--repo DIR] [--rev REV] [--prune] [--dry-run] [--wait]` (exit 0
//! applied, 1 applied but with `--wait` something is not in effect, 2 error or not healthy, or a
//! gate waiting for live state: without `--wait` nothing is written and what it waits for is
//! printed; with `--wait` the gated objects are watched until the gates open, within
//! `--wait-timeout`, then the revision is planned again and applied), and the
//! wiring `diff --live` shares with it: the kube client from `--kubeconfig`/`--context`, else
//! `KUBECONFIG`, else in-cluster; the render of `clusters/NAME`; the tokio runtime.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use super::{ClusterAccessArgs, Failure, Outcome, OutputFormat, RepoArgs, VerifyArgs};
use crate::apply::{self, ApplyOptions, InventoryRef};
use crate::plan::{Cluster, gate};
use crate::render;
use crate::report;
use crate::source::{DirTree, FileTree, GitRepo};

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
    /// Allow pruning more than `--max-prune` objects, or more than half of the inventory, at once.
    #[arg(long, requires = "prune")]
    pub allow_mass_prune: bool,
    /// A prune of more objects than this in one run is refused without `--allow-mass-prune`.
    #[arg(long, default_value_t = apply::prune::DEFAULT_MAX_PRUNE)]
    pub max_prune: usize,
    /// Server-side dry-run only: nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait for the gates on live state to open before applying (see `docs/gates.md`), and for the
    /// health of every Strimzi resource after applying; exit 1 when a change is not in effect (the
    /// operator accepted but did not carry it out), 2 when not healthy or still gated.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits, in seconds (for the gates, then again for health).
    #[arg(long, default_value_t = 300)]
    pub wait_timeout: u64,
    /// How long to wait, in seconds, for another writer holding the cluster's write lock (the Lease
    /// `kgitops-<cluster>-lock` next to the inventory) before failing with exit 2.
    #[arg(long, default_value_t = apply::lock::DEFAULT_LOCK_TIMEOUT.as_secs())]
    pub lock_timeout: u64,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub access: ClusterAccessArgs,
    #[command(flatten)]
    pub verify: VerifyArgs,
}

/// Where the inventory (ApplySet parent ConfigMap) lives.
#[derive(Debug, Clone, clap::Args)]
pub struct InventoryArgs {
    /// Namespace of the inventory ConfigMap `kgitops-<cluster>` (default: the overlay's namespace).
    #[arg(long)]
    pub inventory_namespace: Option<String>,
}

pub fn run(args: ApplyArgs) -> Result<Outcome, Failure> {
    let objects = render_cluster(&args.repo, args.rev.as_deref(), &args.cluster, &args.verify)?;
    let inventory = inventory_for(&args.cluster, &objects, &args.inventory)?;
    let mut opts = ApplyOptions::new(&args.cluster, inventory);
    opts.prune = args.prune;
    opts.allow_mass_prune = args.allow_mass_prune;
    opts.max_prune = args.max_prune;
    opts.dry_run = args.dry_run;
    opts.wait = args.wait.then(|| Duration::from_secs(args.wait_timeout));
    let mut lock = apply::LockOptions::new(&apply::lock::cli_holder());
    lock.timeout = Duration::from_secs(args.lock_timeout);
    let set = block_on(async {
        let cluster = connect(&args.access).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait_timeout);
        loop {
            let result =
                apply::apply_locked(&cluster, objects.clone(), &opts, &lock, &mut Default::default()).await;
            let blocked = match result {
                Err(apply::ApplyError::Gated(blocked)) => blocked,
                other => break other.map_err(Failure::from),
            };
            let mut text = String::new();
            report::blocked_text(&mut text, &blocked);
            print!("{text}");
            if !args.wait {
                return Err(format!(
                    "{} change(s) wait for live state; nothing was written (apply --wait waits for them)",
                    blocked.len()
                )
                .into());
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            // A change of a watched object: plan again (the gate may be open now, or wait again).
            gate::wait_for_change(&cluster, &blocked, left).await?;
        }
    })?;
    let mut set = set;
    set.revision = args.rev.clone();
    print!(
        "{}",
        match args.output {
            OutputFormat::Text => report::change_set_text(&set),
            OutputFormat::Markdown => report::change_set_markdown(&set),
            OutputFormat::Json => report::json(&set),
        }
    );
    let unhealthy: Vec<String> = set
        .unhealthy()
        .map(|h| format!("{} {}", h.object, h.message))
        .collect();
    if !unhealthy.is_empty() {
        // Paused or refused objects end the wait early: say so rather than blame the timeout.
        let early = set.unhealthy().any(|h| h.state.is_final());
        return Err(if early {
            format!("not healthy (waiting cannot help): {}", unhealthy.join("; "))
        } else {
            format!(
                "not healthy after {}s: {}",
                args.wait_timeout,
                unhealthy.join("; ")
            )
        }
        .into());
    }
    // Applied, but the operator did not carry all of it out: git and the cluster disagree. Not a
    // failure to apply (exit 2), a finding (exit 1), as validate's error findings are.
    let ignored = set.ignored().count();
    if ignored > 0 {
        eprintln!("{ignored} part(s) of the applied spec are not in effect (see \"NOT IN EFFECT\" above)");
        return Ok(Outcome::Changes);
    }
    Ok(Outcome::Clean)
}

/// The inventory for a cluster: `kgitops-<cluster>` in `--inventory-namespace` or the overlay's
/// one namespace.
pub(super) fn inventory_for(
    cluster: &str,
    objects: &[Value],
    args: &InventoryArgs,
) -> Result<InventoryRef, Failure> {
    match &args.inventory_namespace {
        Some(ns) => Ok(InventoryRef::for_cluster(cluster, ns)),
        None => InventoryRef::default_for(cluster, objects).ok_or_else(|| {
            format!(
                "clusters/{cluster}: its objects span several namespaces; name the inventory's with --inventory-namespace"
            )
            .into()
        }),
    }
}

/// Runs a future on a runtime made for this command.
pub(super) fn block_on<T>(fut: impl Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(fut)
}

/// A cluster connection from `--kubeconfig`/`--context`, else `KUBECONFIG`, else the in-cluster
/// service account.
pub(super) async fn connect(access: &ClusterAccessArgs) -> Result<Cluster, Failure> {
    Ok(crate::plan::connect::connect(
        access.kubeconfig.as_deref(),
        access.context.as_deref(),
        &access.client_options(),
    )
    .await?)
}

/// Renders `clusters/<cluster>` of the repository, at `rev` (git objects, never the work tree) or
/// from the work tree; with `verify` requested, only a trusted commit is rendered.
pub(super) fn render_cluster(
    repo: &RepoArgs,
    rev: Option<&str>,
    cluster: &str,
    verify: &VerifyArgs,
) -> Result<Vec<Value>, Failure> {
    let tree: Box<dyn FileTree> = match rev {
        Some(rev) => {
            let git = GitRepo::open(&repo.repo)?;
            verify.check(&git, Some(rev))?;
            Box::new(git.tree(rev)?)
        }
        None => {
            verify.check_work_tree()?;
            Box::new(DirTree::open(&repo.repo)?)
        }
    };
    Ok(render::render_cluster(tree.as_ref(), cluster)?)
}
