//! `kgitops strimzi path --cluster NAME --to RELEASE [--kafka VERSION] [--repo DIR] [--rev REV]
//! [--output text|json]`: the upgrade path of one cluster, from its render (the search is
//! [`crate::validate::rules::path`]'s). Exit 0 when the cluster is already there, 1 when steps
//! remain, 2 when no path can be computed.

use std::io::Write;

use serde_json::{Value, json};

use super::validate::FindingsFormat;
use super::{Failure, Outcome, RepoArgs};
use crate::source::{DirTree, FileTree, GitRepo};
use crate::validate::rules::{Snapshot, path};

/// Strimzi release tooling.
#[derive(Debug, clap::Args)]
pub struct StrimziArgs {
    #[command(subcommand)]
    pub command: StrimziCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum StrimziCommand {
    /// The shortest sequence of commits from what a cluster runs to a Strimzi release: operator and
    /// Kafka version changes, metadata version, the KRaft migration and the v1 conversion.
    Path(PathArgs),
}

#[derive(Debug, clap::Args)]
pub struct PathArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Revision to read the cluster from (default: the work tree).
    #[arg(long)]
    pub rev: Option<String>,
    /// Cluster overlay under `clusters/`.
    #[arg(long)]
    pub cluster: String,
    /// Target Strimzi release (`1.2.0`).
    #[arg(long)]
    pub to: String,
    /// Target Kafka version (default: the target release's default, or the running one if newer).
    #[arg(long)]
    pub kafka: Option<String>,
    #[arg(long, value_enum, default_value_t = FindingsFormat::Text)]
    pub output: FindingsFormat,
}

pub fn run(args: StrimziArgs) -> Result<Outcome, Failure> {
    match args.command {
        StrimziCommand::Path(args) => run_path(args),
    }
}

fn run_path(args: PathArgs) -> Result<Outcome, Failure> {
    let repo = &args.repo.repo;
    let tree: Box<dyn FileTree> = match &args.rev {
        Some(rev) => Box::new(GitRepo::open(repo)?.tree(rev)?),
        None => Box::new(DirTree::open(repo)?),
    };
    let objects = crate::render::render_cluster(tree.as_ref(), &args.cluster)?;
    let snapshot = Snapshot::new(&objects);
    let start = path::start(&snapshot)?;
    let target = path::Target::new(&args.to, args.kafka.as_deref())?;
    let kafka = path::target_kafka(&start.state, &target)?;
    let steps = path::path(&start, &target)?;
    let text = match args.output {
        FindingsFormat::Text => text(&args.cluster, &start, target.release.release, kafka, &steps),
        FindingsFormat::Json => {
            let mut out = serde_json::to_string_pretty(&json_report(
                &args.cluster,
                &start,
                target.release.release,
                kafka,
                &steps,
            )?)?;
            out.push('\n');
            out
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(if steps.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Changes
    })
}

fn text(cluster: &str, start: &path::Start, release: &str, kafka: &str, steps: &[path::Step]) -> String {
    let mut out = format!(
        "{cluster}: {}\n  now:    {}\n          (release from the {})\n  target: Strimzi {release}, Kafka {kafka}\n",
        start.kafka, start.state, start.declared.source
    );
    if steps.is_empty() {
        out.push_str("already there: nothing to do\n");
        return out;
    }
    out.push_str(&format!(
        "{} step(s), one commit each, each applied and finished before the next:\n",
        steps.len()
    ));
    for (i, step) in steps.iter().enumerate() {
        out.push_str(&format!("{:>3}. {step}\n", i + 1));
    }
    out
}

fn json_report(
    cluster: &str,
    start: &path::Start,
    release: &str,
    kafka: &str,
    steps: &[path::Step],
) -> Result<Value, serde_json::Error> {
    let mut numbered = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let mut v = serde_json::to_value(step)?;
        if let Some(map) = v.as_object_mut() {
            map.insert("number".into(), json!(i + 1));
            map.insert("description".into(), json!(step.to_string()));
        }
        numbered.push(v);
    }
    Ok(json!({
        "cluster": cluster,
        "kafka": start.kafka,
        "release_source": start.declared.source.to_string(),
        "from": serde_json::to_value(&start.state)?,
        "kafka_version_pinned": start.kafka_pinned,
        "to": {"release": release, "kafka": kafka},
        "steps": numbered,
    }))
}
