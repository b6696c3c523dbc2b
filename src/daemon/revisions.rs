//! The revisions to apply: a git remote followed through a [`Mirror`] (polled every `interval`,
//! fetched at once when a webhook arrives; a failed fetch keeps the last good revision and retries
//! with backoff), or a local working tree watched with `notify` (the dev loop). Each new revision
//! is published on a `watch` channel that every cluster worker follows; workers only ever see the
//! newest one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use notify::Watcher as _;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::alerts::Alert;
use super::config::Config;
use super::status::now;
use super::{Shared, backoff};
use crate::source::remote::{Mirror, RemoteSpec};
use crate::source::{DirTree, FileTree};

/// How long a burst of file events is gathered before a local tree is rendered again.
pub const LOCAL_DEBOUNCE: Duration = Duration::from_millis(200);

/// One revision of the repository.
pub struct Revision {
    /// The commit sha; `None` for a local working tree (workers name it by a digest of what
    /// they render).
    pub commit: Option<String>,
    pub tree: Arc<dyn FileTree>,
    /// History was rewritten to reach it (force-push).
    pub forced: bool,
}

impl std::fmt::Debug for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revision")
            .field("commit", &self.commit)
            .field("tree", &self.tree.describe())
            .finish()
    }
}

/// The latest revision, `None` until the first one is read.
pub type Latest = watch::Receiver<Option<Arc<Revision>>>;

/// Follows the configured source until `shutdown`, publishing revisions on `tx`.
pub async fn follow(
    config: &Config,
    shared: Arc<Shared>,
    trigger: Arc<Notify>,
    tx: watch::Sender<Option<Arc<Revision>>>,
    shutdown: CancellationToken,
) {
    match (config.remote_spec(), &config.source.path) {
        (Some(spec), _) => {
            follow_remote(
                spec,
                config.cache_dir(),
                config.source.interval.0,
                shared,
                trigger,
                tx,
                shutdown,
            )
            .await
        }
        (None, Some(path)) => follow_local(path, shared, trigger, tx, shutdown).await,
        (None, None) => {}
    }
}

/// Runs a blocking mirror operation off the async threads; the flag cancels a fetch in flight.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("git task failed: {e}")))
}

async fn wait(delay: Duration, trigger: &Notify, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = trigger.notified() => true,
        _ = shutdown.cancelled() => false,
    }
}

async fn follow_remote(
    spec: RemoteSpec,
    cache: PathBuf,
    interval: Duration,
    shared: Arc<Shared>,
    trigger: Arc<Notify>,
    tx: watch::Sender<Option<Arc<Revision>>>,
    shutdown: CancellationToken,
) {
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        let token = shutdown.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            cancel.store(true, Ordering::Relaxed);
        });
    }
    let mut failures = 0u32;
    let mut mirror: Option<Arc<Mirror>> = None;
    let mut current: Option<String> = None;
    loop {
        let result = match &mirror {
            Some(m) => Ok(m.clone()),
            None => {
                let (spec, cache) = (spec.clone(), cache.clone());
                blocking(move || Mirror::open_or_clone(spec, &cache).map_err(|e| e.to_string()))
                    .await
                    .map(Arc::new)
            }
        };
        let fetched = match result {
            Ok(m) => {
                mirror = Some(m.clone());
                let cancel = cancel.clone();
                // The tree is opened on the blocking thread too: it takes the repository's lock,
                // which a render may hold while it reads an object.
                blocking(move || {
                    let f = m.fetch_cancellable(&cancel).map_err(|e| e.to_string())?;
                    m.tree(&f.sha).map(|t| (f, t)).map_err(|e| e.to_string())
                })
                .await
            }
            Err(e) => Err(e),
        };
        if shutdown.is_cancelled() {
            return;
        }
        match fetched {
            Ok((f, tree)) => {
                failures = 0;
                shared.metrics.fetched(true);
                shared
                    .alerter
                    .resolve("fetch", None, "git fetch works again".into());
                let new = current.as_deref() != Some(f.sha.as_str());
                shared.status.source(|s| {
                    s.revision = Some(f.sha.clone());
                    s.last_fetch = Some(now());
                    s.error = None;
                    if new {
                        s.forced = f.forced;
                    }
                });
                if new {
                    tracing::info!(revision = f.sha.as_str(), forced = f.forced, "new revision");
                    current = Some(f.sha.clone());
                    let _ = tx.send(Some(Arc::new(Revision {
                        commit: Some(f.sha),
                        tree: Arc::new(tree),
                        forced: f.forced,
                    })));
                }
                if !wait(interval, &trigger, &shutdown).await {
                    return;
                }
            }
            Err(message) => {
                failures += 1;
                shared.metrics.fetched(false);
                tracing::warn!(
                    error = message.as_str(),
                    "git fetch failed; keeping the last good revision"
                );
                shared.status.source(|s| s.error = Some(message.clone()));
                shared
                    .alerter
                    .fire(Alert::firing("fetch", "fetch".into(), None, message));
                if !wait(backoff(failures).min(interval), &trigger, &shutdown).await {
                    return;
                }
            }
        }
    }
}

/// Whether a file event concerns the platform sources (not git's own files or build output).
fn relevant(path: &Path, root: &Path) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    !rel.components().any(|c| {
        let s = c.as_os_str();
        s == ".git" || s == "target"
    })
}

async fn follow_local(
    path: &Path,
    shared: Arc<Shared>,
    trigger: Arc<Notify>,
    tx: watch::Sender<Option<Arc<Revision>>>,
    shutdown: CancellationToken,
) {
    let changed = Arc::new(Notify::new());
    let root = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let watcher = {
        let changed = changed.clone();
        let root = root.clone();
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && event.paths.iter().any(|p| relevant(p, &root))
            {
                changed.notify_one();
            }
        })
    };
    // Kept alive for the whole loop: dropping it stops the watch.
    let _watcher = match watcher {
        Ok(mut w) => match w.watch(&root, notify::RecursiveMode::Recursive) {
            Ok(()) => Some(w),
            Err(e) => {
                let message = format!(
                    "{}: cannot watch for changes ({e}); polling instead",
                    root.display()
                );
                tracing::warn!("{message}");
                None
            }
        },
        Err(e) => {
            tracing::warn!("cannot watch files ({e}); polling instead");
            None
        }
    };
    let mut failures = 0u32;
    loop {
        match DirTree::open(&root) {
            Ok(tree) => {
                failures = 0;
                shared.status.source(|s| {
                    s.revision = Some("working tree".into());
                    s.last_fetch = Some(now());
                    s.error = None;
                });
                let _ = tx.send(Some(Arc::new(Revision {
                    commit: None,
                    tree: Arc::new(tree),
                    forced: false,
                })));
            }
            Err(e) => {
                failures += 1;
                shared.status.source(|s| s.error = Some(e.to_string()));
            }
        }
        let delay = if failures > 0 {
            backoff(failures)
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            _ = changed.notified() => {}
            _ = trigger.notified() => {}
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return,
        }
        // Gather the rest of a burst (an editor saving, a git checkout).
        loop {
            tokio::select! {
                _ = changed.notified() => {}
                _ = tokio::time::sleep(LOCAL_DEBOUNCE) => break,
                _ = shutdown.cancelled() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_and_build_output_do_not_trigger_renders() {
        let root = Path::new("/repo");
        assert!(relevant(Path::new("/repo/clusters/dev/kustomization.yaml"), root));
        assert!(!relevant(Path::new("/repo/.git/index"), root));
        assert!(!relevant(Path::new("/repo/target/debug/x"), root));
    }
}
