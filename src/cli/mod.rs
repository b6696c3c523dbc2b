//! Command-line wiring: one file per subcommand, each turning its arguments into calls to the
//! pipeline stages and their results into an [`Outcome`]. No logic of its own beyond that.

pub mod apply;
pub mod diff;
pub mod fleet;
pub mod render;
pub mod run;
pub mod strimzi;
pub mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// kgitops: git is the source of truth for Kafka-on-Kubernetes platforms.
#[derive(Debug, Parser)]
#[command(name = "kgitops", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Most bytes of files one render may read, every read counted (e.g. 32Mi; default 12Mi).
    #[arg(long, global = true, env = "KGITOPS_MAX_RENDER_INPUT", value_parser = crate::source::limits::parse_bytes)]
    pub max_render_input: Option<usize>,
    /// Most git tree entries one revision may load (default 250000).
    #[arg(long, global = true, env = "KGITOPS_MAX_TREE_ENTRIES")]
    pub max_tree_entries: Option<usize>,
    /// Render `helmCharts` by running `helm template` on charts kept in the repository (like
    /// kustomize's --enable-helm; off by default). Used by render, diff, validate and apply.
    #[arg(long, global = true)]
    pub enable_helm: bool,
    /// The helm (v3 or v4) executable for --enable-helm.
    #[arg(long, global = true, value_name = "PATH", default_value = "helm")]
    pub helm_command: std::path::PathBuf,
    /// Kubernetes API versions helm sees as `Capabilities.APIVersions` (repeatable; kustomize's
    /// --helm-api-versions): used for charts whose `apiVersions` is empty.
    #[arg(long, global = true, value_name = "GROUP/VERSION")]
    pub helm_api_versions: Vec<String>,
    /// Kubernetes version helm sees as `Capabilities.KubeVersion` (kustomize's
    /// --helm-kube-version): used for charts without `kubeVersion`.
    #[arg(long, global = true, value_name = "VERSION", default_value = "")]
    pub helm_kube_version: String,
    /// Run `helm template` with --debug for every chart (kustomize's --helm-debug).
    #[arg(long, global = true)]
    pub helm_debug: bool,
    /// age identities (X25519 `AGE-SECRET-KEY-1...` lines, or an unencrypted OpenSSH ed25519/RSA
    /// key) that decrypt SOPS-encrypted files when a render reads them (same meaning as sops'
    /// SOPS_AGE_KEY_FILE). Without it, `diff --from/--to` and `validate` read encrypted values as
    /// placeholders; other commands refuse encrypted files.
    #[arg(long, global = true, value_name = "PATH", env = "SOPS_AGE_KEY_FILE")]
    pub age_key_file: Option<std::path::PathBuf>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render a kustomization (like `kubectl kustomize`), from a directory or a git revision.
    Render(render::RenderArgs),
    /// Show what would change: offline between two revisions, or against a live cluster.
    Diff(diff::DiffArgs),
    /// Server-side apply a cluster's overlay; optionally prune what left git.
    Apply(apply::ApplyArgs),
    /// Validate rendered objects against schemas and Kafka-aware rules.
    Validate(validate::ValidateArgs),
    /// Run the reconciler daemon.
    Run(run::RunArgs),
    /// Strimzi release tooling: `strimzi path`, a cluster's upgrade path to a release.
    Strimzi(strimzi::StrimziArgs),
    /// Sharded daemons (`sharding:`): `fleet status`, every cluster's owner, revision and health.
    Fleet(fleet::FleetArgs),
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Report format for diff, apply and validate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Markdown,
    Json,
}

/// How a successful command ended; maps to the exit codes of `kubectl diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0: nothing to change, no findings.
    Clean,
    /// Exit 1: changes (diff) or error findings (validate).
    Changes,
}

/// Any failure of a subcommand; printed on stderr and mapped to exit code 2.
pub type Failure = Box<dyn std::error::Error + Send + Sync + 'static>;

fn init_logging(format: LogFormat) {
    // kube's client logs every failed request at ERROR ("failed with error client error (Connect)").
    // kgitops reports each failure itself, naming the object, so by default that line is left out: an
    // apiserver going away mid-apply would print it once per object still to write.
    let filter = tracing_subscriber::EnvFilter::try_from_env("KGITOPS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_client::client::builder=off"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests calling `run` twice) is harmless, so its error is ignored.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs a parsed command line and returns the process exit code (0 clean, 1 changes, 2 error).
pub fn run(cli: Cli) -> ExitCode {
    if !matches!(cli.command, Command::Run(_)) {
        crate::memory::grow_in_large_steps();
    }
    init_logging(cli.log_format);
    let defaults = crate::source::InputLimits::DEFAULT;
    crate::source::limits::set(crate::source::InputLimits {
        max_render_input: cli.max_render_input.unwrap_or(defaults.max_render_input),
        max_tree_entries: cli.max_tree_entries.unwrap_or(defaults.max_tree_entries),
    });
    crate::render::helm::set(crate::render::helm::HelmSettings {
        enabled: cli.enable_helm,
        command: cli.helm_command.clone(),
        api_versions: cli.helm_api_versions.clone(),
        kube_version: cli.helm_kube_version.clone(),
        debug: cli.helm_debug,
        ..crate::render::helm::HelmSettings::default()
    });
    if let Some(file) = &cli.age_key_file {
        match crate::render::sops::Keys::from_file(file) {
            Ok(keys) => crate::render::sops::keys::set(crate::render::sops::Decryption::Keys(
                std::sync::Arc::new(keys),
            )),
            Err(err) => {
                eprintln!("error: {err}");
                return ExitCode::from(2);
            }
        }
    }
    let result = match cli.command {
        Command::Render(args) => render::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Apply(args) => apply::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Run(args) => run::run(args),
        Command::Strimzi(args) => strimzi::run(args),
        Command::Fleet(args) => fleet::run(args),
    };
    match result {
        Ok(Outcome::Clean) => ExitCode::from(0),
        Ok(Outcome::Changes) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::from(2)
        }
    }
}

/// Arguments shared by every command that reads the platform repository.
#[derive(Debug, Clone, clap::Args)]
pub struct RepoArgs {
    /// Repository root (a git work tree). Defaults to the current directory.
    #[arg(long, default_value = ".")]
    pub repo: std::path::PathBuf,
}

/// Commit signature verification of the git revision a command reads (`--rev`, or `--to` of a
/// comparison): with any of these flags, that commit must carry a valid signature by a trusted key
/// (see docs/commit-verification.md), else the command fails with exit 2 naming the commit, the
/// signer and why. The work tree (no `--rev`) has no signature and is refused.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VerifyArgs {
    /// Trust commits signed by the OpenPGP public keys in FILE (armored; repeatable).
    #[arg(long = "verify-openpgp-keys", value_name = "FILE")]
    pub openpgp_keys: Vec<std::path::PathBuf>,
    /// Trust commits signed by the SSH keys of FILE, in `allowed_signers` format (as
    /// `ssh-keygen -Y verify` reads it; namespace `git`).
    #[arg(long = "verify-ssh-allowed-signers", value_name = "FILE")]
    pub ssh_allowed_signers: Option<std::path::PathBuf>,
}

impl VerifyArgs {
    /// Whether verification was asked for.
    pub fn requested(&self) -> bool {
        !self.openpgp_keys.is_empty() || self.ssh_allowed_signers.is_some()
    }

    /// Checks the commit `rev` of `repo` when verification was asked for: `Ok` when it is not, or
    /// when the commit is trusted (the signer is logged).
    pub fn check(&self, repo: &crate::source::GitRepo, rev: Option<&str>) -> Result<(), Failure> {
        let Some(rev) = rev else {
            return self.check_work_tree();
        };
        if !self.requested() {
            return Ok(());
        }
        let keys = crate::source::verify::TrustedKeys::load(
            &self.openpgp_keys,
            self.ssh_allowed_signers.as_deref(),
        )?;
        let commit = repo.signed_commit(rev)?;
        let signer = keys.require(&commit)?;
        tracing::info!(commit = commit.sha.as_str(), "commit signed by {signer}: trusted");
        Ok(())
    }

    /// Reading the work tree: refused when verification was asked for (it has no signature).
    pub fn check_work_tree(&self) -> Result<(), Failure> {
        if self.requested() {
            return Err(
                "--verify-openpgp-keys/--verify-ssh-allowed-signers: verification needs a \
                        git revision (--rev); the work tree carries no signature"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Arguments shared by every command that talks to a cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterAccessArgs {
    /// Path to a kubeconfig; defaults to `KUBECONFIG`, then in-cluster configuration.
    #[arg(long)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    pub context: Option<String>,
    /// Requests in flight at once.
    #[arg(long, default_value_t = crate::plan::cluster::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Client-side limit of requests per second (default: none; the apiserver's priority and
    /// fairness throttles, and its 429 answers are retried with backoff).
    #[arg(long)]
    pub qps: Option<std::num::NonZeroU32>,
    /// Requests that may go at once above `--qps` (default: the `--qps` value).
    #[arg(long, requires = "qps")]
    pub burst: Option<std::num::NonZeroU32>,
}

impl ClusterAccessArgs {
    /// The request stack's options these flags ask for.
    pub fn client_options(&self) -> crate::plan::client::ClientOptions {
        crate::plan::client::ClientOptions {
            concurrency: self.concurrency,
            qps: self.qps,
            burst: self.burst,
            ..crate::plan::client::ClientOptions::default()
        }
    }
}
