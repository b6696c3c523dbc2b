//! `kgitops run --config FILE`: loads the configuration, runs the daemon until SIGTERM or SIGINT,
//! exits 0 after a clean shutdown, 2 when it cannot start.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Failure, Outcome};
use crate::daemon::{Config, Daemon};

/// Run the reconciler daemon.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Daemon configuration (YAML).
    #[arg(long)]
    pub config: PathBuf,
}

pub fn run(args: RunArgs) -> Result<Outcome, Failure> {
    let config = Config::load(&args.config)?;
    crate::source::limits::set(config.limits.apply(crate::source::limits::current()));
    crate::render::helm::set(config.helm.apply(crate::render::helm::current()));
    if let Some(decryption) = config
        .decryption
        .as_ref()
        .map(|d| d.load())
        .transpose()?
        .flatten()
    {
        crate::render::sops::keys::set(decryption);
    }
    crate::memory::limit_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(async {
        let daemon = Daemon::bind(config).await?;
        let shutdown = CancellationToken::new();
        tokio::spawn(on_signal(shutdown.clone()));
        daemon.run(shutdown).await
    });
    // A fetch blocked in libgit2 must not hold the process past SIGTERM's deadline.
    runtime.shutdown_timeout(Duration::from_millis(500));
    result?;
    Ok(Outcome::Clean)
}

async fn on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}
