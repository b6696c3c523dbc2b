//! The revisions to apply: a git remote followed through a [`Mirror`] (polled every `interval`,
//! fetched at once when a webhook arrives, at most one fetch in flight and one more queued behind
//! it, paced by [`super::pacing`]; a smart-HTTP remote is probed first, see
//! [`crate::source::remote::probe()`]; a failed fetch keeps the last good revision and retries with
//! backoff, longer while the git host throttles or is down), or a local working tree watched with `notify` (the dev loop). Each new revision
//! is published on a `watch` channel that every cluster worker follows; workers only ever see the
//! newest one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use notify::Watcher as _;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::alerts::Alert;
use super::config::Config;
use super::pacing::{host_backoff, poll_delay};
use super::status::{SourceState, now};
use super::verify::Gate;
use super::{Shared, backoff};
use crate::source::remote::{
    FetchResult, HostState, HostTrouble, Mirror, Probe, RemoteError, RemoteSpec, probe,
};
use crate::source::{DirTree, FileTree, GitTree};

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
    /// Refused by `source.verify` (see [`super::verify`]): why, naming the commit. Workers do not
    /// render it and keep their last good revision.
    pub untrusted: Option<String>,
}

impl std::fmt::Debug for Revision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revision")
            .field("commit", &self.commit)
            .field("tree", &self.tree.describe())
            .field("untrusted", &self.untrusted)
            .finish()
    }
}

/// How often the remote is asked: the poll interval and the least time between two fetches.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    pub interval: Duration,
    pub min_fetch_interval: Duration,
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
            let pacing = Pacing {
                interval: config.source.interval.0,
                min_fetch_interval: config.source.min_fetch_interval.0,
            };
            // Fail closed: without its keys, nothing is published (so nothing is applied).
            let gate = match config.source.verify.clone().map(Gate::new).transpose() {
                Ok(gate) => gate,
                Err(e) => {
                    let message = format!("source.verify: {e}; no revision is applied");
                    tracing::error!("{message}");
                    shared.status.source(|s| s.error = Some(message));
                    return;
                }
            };
            let remote = RemoteSource {
                spec,
                cache: config.cache_dir(),
                pacing,
                gate,
            };
            follow_remote(remote, shared, trigger, tx, shutdown).await
        }
        (None, Some(path)) => follow_local(path, shared, trigger, tx, shutdown).await,
        (None, None) => {}
    }
}

/// Why one attempt to read the remote failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("git task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl AttemptError {
    fn host_trouble(&self) -> Option<HostTrouble> {
        match self {
            AttemptError::Remote(e) => e.host_trouble(),
            AttemptError::Task(_) => None,
        }
    }
}

/// Runs a blocking mirror operation off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RemoteError> + Send + 'static,
) -> Result<T, AttemptError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

/// Waits for the poll timer or a webhook (`false`: shut down).
async fn wait(delay: Duration, trigger: &Notify, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = trigger.notified() => true,
        _ = shutdown.cancelled() => false,
    }
}

/// Sleeps until `until`, webhooks or not (`false`: shut down).
async fn pause_until(until: Instant, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep_until(until.into()) => true,
        _ = shutdown.cancelled() => false,
    }
}

/// What one attempt found.
enum Attempt {
    /// The probe saw the branch where the mirror has it: nothing was fetched.
    Unchanged,
    /// What was fetched and its tree (boxed: a tree holds its caches).
    Fetched(Box<(FetchResult, GitTree)>),
}

/// Probes the remote (smart HTTP only), then opens or clones the mirror and fetches. `published`
/// is the commit already sent to the workers (the mirror's branch is there too): only that one
/// may be skipped, a commit the mirror holds from an earlier run was never published.
async fn attempt(
    spec: &RemoteSpec,
    cache: &Path,
    mirror: &mut Option<Arc<Mirror>>,
    published: Option<&str>,
    cancel: &Arc<AtomicBool>,
) -> Result<Attempt, AttemptError> {
    if probe(spec, published).await? == Probe::Unchanged {
        return Ok(Attempt::Unchanged);
    }
    let m = match mirror {
        Some(m) => m.clone(),
        None => {
            let (spec, cache) = (spec.clone(), cache.to_path_buf());
            let m = Arc::new(blocking(move || Mirror::open_or_clone(spec, &cache)).await?);
            *mirror = Some(m.clone());
            m
        }
    };
    let cancel = cancel.clone();
    // The tree is opened on the blocking thread too: it takes the repository's lock, which a
    // render may hold while it reads an object.
    let (fetched, tree) = blocking(move || {
        let fetched = m.fetch_cancellable(&cancel)?;
        let tree = m.tree(&fetched.sha).map_err(RemoteError::from)?;
        Ok((fetched, tree))
    })
    .await?;
    Ok(Attempt::Fetched(Box::new((fetched, tree))))
}

/// The git host's state as the follower last found it, for `/status`, metrics and alerts.
struct HostWatch {
    state: SourceState,
    since: String,
    /// The first failure message of the current trouble: the alert keeps it, so one episode is
    /// one alert however the messages vary.
    first_message: String,
}

impl HostWatch {
    fn start(shared: &Shared) -> HostWatch {
        let watch = HostWatch {
            state: SourceState::Ok,
            since: now(),
            first_message: String::new(),
        };
        shared.metrics.source_state("ok", unix_now());
        shared.status.source(|s| {
            s.state = SourceState::Ok;
            s.since = Some(watch.since.clone());
        });
        watch
    }

    /// Records `state` (retrying at `retry_at` when in trouble).
    fn set(&mut self, shared: &Shared, state: SourceState, message: &str, retry_at: Option<String>) {
        if state != self.state {
            if state == SourceState::Ok {
                tracing::info!(
                    was = self.state.as_str(),
                    since = self.since.as_str(),
                    "git host ok again"
                );
            }
            self.state = state;
            self.since = now();
            self.first_message = message.to_string();
            shared.metrics.source_state(state.as_str(), unix_now());
        }
        shared.status.source(|s| {
            s.state = state;
            s.since = Some(self.since.clone());
            s.retry_at = retry_at;
        });
    }
}

/// What [`follow_remote`] follows and how.
struct RemoteSource {
    spec: RemoteSpec,
    cache: PathBuf,
    pacing: Pacing,
    /// `source.verify`: every new head is judged before the workers see it.
    gate: Option<Gate>,
}

async fn follow_remote(
    remote: RemoteSource,
    shared: Arc<Shared>,
    trigger: Arc<Notify>,
    tx: watch::Sender<Option<Arc<Revision>>>,
    shutdown: CancellationToken,
) {
    let RemoteSource {
        spec,
        cache,
        pacing,
        gate,
    } = remote;
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        let token = shutdown.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            cancel.store(true, Ordering::Relaxed);
        });
    }
    let location = crate::source::remote::masked_url(&spec.url);
    let mut host = HostWatch::start(&shared);
    let mut failures = 0u32;
    let mut mirror: Option<Arc<Mirror>> = None;
    let mut current: Option<String> = None;
    loop {
        // This fetch sees every push whose webhook arrived before it starts: a webhook still
        // pending would only cause a fetch of the same commit.
        let _ = trigger.notified().now_or_never();
        let started = Instant::now();
        let result = attempt(&spec, &cache, &mut mirror, current.as_deref(), &cancel).await;
        if shutdown.is_cancelled() {
            return;
        }
        let retry = match result {
            Ok(found) => {
                failures = 0;
                host.set(&shared, SourceState::Ok, "", None);
                shared
                    .alerter
                    .resolve("fetch", None, "git fetch works again".into());
                let fetched = match found {
                    Attempt::Unchanged => {
                        shared.metrics.fetched("unchanged");
                        None
                    }
                    Attempt::Fetched(fetched) => {
                        shared.metrics.fetched("ok");
                        Some(*fetched)
                    }
                };
                shared.status.source(|s| {
                    s.last_fetch = Some(now());
                    s.error = None;
                });
                if let Some((f, tree)) = fetched {
                    let new = current.as_deref() != Some(f.sha.as_str());
                    shared.status.source(|s| {
                        s.revision = Some(f.sha.clone());
                        if new {
                            s.forced = f.forced;
                        }
                    });
                    if new {
                        tracing::info!(revision = f.sha.as_str(), forced = f.forced, "new revision");
                        current = Some(f.sha.clone());
                        let untrusted = match &gate {
                            Some(gate) => gate.judge(&shared, tree.repo(), &f.sha).await,
                            None => None,
                        };
                        let _ = tx.send(Some(Arc::new(Revision {
                            commit: Some(f.sha),
                            tree: Arc::new(tree),
                            forced: f.forced,
                            untrusted,
                        })));
                    }
                }
                None
            }
            Err(e) => {
                failures += 1;
                let message = e.to_string();
                shared.status.source(|s| s.error = Some(message.clone()));
                match e.host_trouble() {
                    Some(trouble) => {
                        let delay = host_backoff(failures, pacing.interval, trouble.retry_after);
                        let state = match trouble.state {
                            HostState::Throttled => SourceState::Throttled,
                            HostState::Down => SourceState::Down,
                        };
                        shared.metrics.fetched(state.as_str());
                        host.set(&shared, state, &message, Some(at(delay)));
                        tracing::warn!(
                            error = message.as_str(),
                            state = state.as_str(),
                            retry_in_ms = delay.as_millis() as u64,
                            "git host {}; keeping the last good revision",
                            state.as_str()
                        );
                        shared.alerter.fire(Alert::firing(
                            "fetch",
                            "fetch".into(),
                            None,
                            format!(
                                "{location}: git host {} since {}: {}",
                                state.as_str(),
                                host.since,
                                host.first_message
                            ),
                        ));
                        Some(Instant::now() + delay)
                    }
                    None => {
                        host.set(&shared, SourceState::Ok, "", None);
                        shared.metrics.fetched("error");
                        tracing::warn!(
                            error = message.as_str(),
                            "git fetch failed; keeping the last good revision"
                        );
                        shared
                            .alerter
                            .fire(Alert::firing("fetch", "fetch".into(), None, message));
                        if !wait(backoff(failures).min(pacing.interval), &trigger, &shutdown).await {
                            return;
                        }
                        Some(started + pacing.min_fetch_interval)
                    }
                }
            }
        };
        let next = match retry {
            Some(at) => at,
            None => {
                if !wait(poll_delay(pacing.interval), &trigger, &shutdown).await {
                    return;
                }
                started + pacing.min_fetch_interval
            }
        };
        if !pause_until(next, &shutdown).await {
            return;
        }
    }
}

/// The time `delay` from now, RFC 3339.
fn at(delay: Duration) -> String {
    let later = jiff::SignedDuration::try_from(delay)
        .ok()
        .and_then(|d| jiff::Timestamp::now().checked_add(d).ok())
        .unwrap_or_else(jiff::Timestamp::now);
    later
        .round(jiff::Unit::Millisecond)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
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
                    untrusted: None,
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
