//! The per-inventory write lock: a `coordination.k8s.io/v1` Lease next to the inventory parent
//! (same namespace, named by [`InventoryRef::lock_name`]), held by every writer of the inventory
//! (`kgitops apply` and the daemon's apply and heal) for the whole plan-and-apply, so two writers
//! never interleave: without it both plan against the same inventory and one narrows the parent
//! to its own set (orphaning the other's objects) or prunes what the other just created.
//!
//! The protocol is client-go's leader election, for a lock instead of a leader:
//! - a missing Lease is created with this holder; a Lease without holder (released) or held by
//!   this holder is taken with a replace carrying the read `resourceVersion` (two writers cannot
//!   both win: the second gets a 409 and reads again);
//! - a Lease held by someone else is taken over only once it has not changed for its
//!   `leaseDurationSeconds`, measured by *this* process's clock from when it first saw that
//!   version (never by comparing the holder's `renewTime` with the local clock: clocks differ);
//!   a crashed holder therefore blocks writers for one lease duration at most;
//! - while held, the Lease is renewed every third of its duration; a holder that cannot renew
//!   within two thirds of the duration, or finds another holder, has lost the lock and its
//!   in-flight apply is stopped ([`WriteLock::hold`]);
//! - at the end the holder releases it (empty holder), so the next writer proceeds at once.
//!
//! A writer that takes the lock again and again (the daemon heals drift object by object) keeps the
//! Lease as it left it on release and takes it next time with one write carrying that
//! `resourceVersion` — no read — and releases it with the `resourceVersion` of its own last write:
//! one round trip each way. Anyone else's write in between makes that write fail with 409, and the
//! writer falls back to reading.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

use super::InventoryRef;
use crate::plan::Cluster;

/// How long a lock lasts without renewal unless configured otherwise.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long `kgitops apply` waits for another writer unless `--lock-timeout` says otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a waiting writer reads the Lease again.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How long releasing may take (a writer must not hang at its end on an unreachable apiserver).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Who takes the lock and how long it waits.
#[derive(Clone, Debug)]
pub struct LockOptions {
    /// Written as the Lease's `holderIdentity`; shown to the writers that wait.
    pub holder: String,
    pub lease_duration: Duration,
    /// How long to wait for another writer; zero tries once.
    pub timeout: Duration,
}

impl LockOptions {
    pub fn new(holder: &str) -> LockOptions {
        LockOptions {
            holder: holder.to_string(),
            lease_duration: DEFAULT_LEASE_DURATION,
            timeout: DEFAULT_LOCK_TIMEOUT,
        }
    }
}

/// The prefix of a `kgitops apply` process's holder name.
const CLI_HOLDER_PREFIX: &str = "kgitops-apply@";

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// The holder name of a `kgitops apply` process: `kgitops-apply@<host>/<pid>`.
pub fn cli_holder() -> String {
    format!("{CLI_HOLDER_PREFIX}{}/{}", host_name(), std::process::id())
}

/// Whether `holder` is a `kgitops apply` process of this host that no longer runs (it failed to
/// release, e.g. because the apiserver went away, or was killed): its lock is taken over at once
/// instead of after the lease duration.
fn is_gone_local_cli(holder: &str, host: &str) -> bool {
    let Some((h, pid)) = holder
        .strip_prefix(CLI_HOLDER_PREFIX)
        .and_then(|rest| rest.rsplit_once('/'))
    else {
        return false;
    };
    h == host
        && pid.parse::<u32>().is_ok_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        })
}

/// Why the lock was not taken or not kept.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "Lease/{namespace}/{name}: another writer holds the lock: {holder} (waited {waited_s}s); nothing was written"
    )]
    Held {
        namespace: String,
        name: String,
        holder: String,
        waited_s: u64,
    },
    /// The inventory's namespace does not exist yet, so neither can the Lease.
    #[error("Lease/{namespace}/{name}: namespace {namespace} does not exist")]
    NoNamespace { namespace: String, name: String },
    #[error("Lease/{namespace}/{name}: {message}")]
    Request {
        namespace: String,
        name: String,
        message: String,
    },
    #[error(
        "Lease/{namespace}/{name}: the lock was lost during the apply ({reason}); the apply was stopped, the next run converges"
    )]
    Lost {
        namespace: String,
        name: String,
        reason: String,
    },
}

/// What a writer remembers of the Lease between its applies: the version of another holder's
/// Lease it saw first, and when — kept across attempts (the daemon retries with backoff) so a
/// crashed holder's Lease expires by this process's clock — and the Lease as this writer last
/// released it, to take it next time with a single write.
#[derive(Debug, Default)]
pub struct Observed {
    seen: Option<(String, Instant)>,
    released: Option<Lease>,
}

impl Observed {
    /// Whether `version` has been seen unchanged for longer than `duration`.
    fn expired(&mut self, version: &str, duration: Duration) -> bool {
        match &self.seen {
            Some((v, at)) if v == version => at.elapsed() > duration,
            _ => {
                self.seen = Some((version.to_string(), Instant::now()));
                false
            }
        }
    }
}

enum Attempt {
    /// Taken; the Lease as written.
    Acquired(Box<Lease>),
    Held(String),
    /// Someone wrote the Lease between our read and write: read again.
    Raced,
}

/// A held lock. Renewed in the background until [`WriteLock::release`] (or drop, which only stops
/// renewing: the Lease then expires after its duration).
pub struct WriteLock {
    api: Api<Lease>,
    namespace: String,
    name: String,
    holder: String,
    stop: CancellationToken,
    lost: CancellationToken,
    renewer: Option<tokio::task::JoinHandle<String>>,
    /// The Lease as last written by this holder (acquire, then each renewal).
    written: Arc<Mutex<Lease>>,
}

/// Takes the lock of `inv`, waiting up to `opts.timeout` for another writer.
pub async fn acquire(
    cluster: &Cluster,
    inv: &InventoryRef,
    opts: &LockOptions,
    observed: &mut Observed,
) -> Result<WriteLock, LockError> {
    let api: Api<Lease> = Api::namespaced(cluster.client().clone(), &inv.namespace);
    let name = inv.lock_name();
    let request = |e: kube::Error| LockError::Request {
        namespace: inv.namespace.clone(),
        name: name.clone(),
        message: cluster.explain(e).message,
    };
    let started = Instant::now();
    let mut taken = match observed.released.take() {
        Some(lease) => retake(&api, &name, lease, opts).await,
        None => None,
    };
    while taken.is_none() {
        match attempt(&api, &name, opts, observed).await {
            Ok(Attempt::Acquired(lease)) => taken = Some(*lease),
            Ok(Attempt::Raced) => continue,
            Ok(Attempt::Held(holder)) => {
                let waited = started.elapsed();
                if waited >= opts.timeout {
                    return Err(LockError::Held {
                        namespace: inv.namespace.clone(),
                        name,
                        holder,
                        waited_s: waited.as_secs(),
                    });
                }
                tokio::time::sleep(POLL_INTERVAL.min(opts.timeout - waited)).await;
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                return Err(LockError::NoNamespace {
                    namespace: inv.namespace.clone(),
                    name,
                });
            }
            Err(e) => return Err(request(e)),
        }
    }
    *observed = Observed::default();
    let written = Arc::new(Mutex::new(taken.unwrap_or_default()));
    let stop = CancellationToken::new();
    let lost = CancellationToken::new();
    let renewer = tokio::spawn(renew(
        api.clone(),
        name.clone(),
        opts.clone(),
        stop.clone(),
        lost.clone(),
        written.clone(),
    ));
    Ok(WriteLock {
        api,
        namespace: inv.namespace.clone(),
        name,
        holder: opts.holder.clone(),
        stop,
        lost,
        renewer: Some(renewer),
        written,
    })
}

/// Takes the Lease this writer released last time with one write on that version. `None` when
/// anything else happened to it since (409), or the write failed: the caller reads it instead.
async fn retake(api: &Api<Lease>, name: &str, mut lease: Lease, opts: &LockOptions) -> Option<Lease> {
    let now = MicroTime(jiff::Timestamp::now());
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref().is_some_and(|h| !h.is_empty()) {
        return None;
    }
    spec.holder_identity = Some(opts.holder.clone());
    spec.acquire_time = Some(now.clone());
    spec.renew_time = Some(now);
    spec.lease_duration_seconds = Some(seconds(opts.lease_duration));
    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    api.replace(name, &PostParams::default(), &lease).await.ok()
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// One read and, when the lock is free, held by us, or expired, one write.
async fn attempt(
    api: &Api<Lease>,
    name: &str,
    opts: &LockOptions,
    observed: &mut Observed,
) -> Result<Attempt, kube::Error> {
    let now = MicroTime(jiff::Timestamp::now());
    let Some(mut lease) = api.get_opt(name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(opts.holder.clone()),
                lease_duration_seconds: Some(seconds(opts.lease_duration)),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(lease) => Ok(Attempt::Acquired(Box::new(lease))),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Raced),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    if let Some(holder) = &holder
        && *holder != opts.holder
    {
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(opts.lease_duration, Duration::from_secs);
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        if !observed.expired(&version, duration) && !is_gone_local_cli(holder, &host_name()) {
            return Ok(Attempt::Held(holder.clone()));
        }
        tracing::warn!(
            lease = name,
            holder = holder.as_str(),
            "taking over a write lock its holder no longer renews"
        );
    }
    if holder.as_deref() != Some(opts.holder.as_str()) {
        spec.holder_identity = Some(opts.holder.clone());
        spec.acquire_time = Some(now.clone());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.renew_time = Some(now);
    spec.lease_duration_seconds = Some(seconds(opts.lease_duration));
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(lease) => Ok(Attempt::Acquired(Box::new(lease))),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Raced),
        Err(e) => Err(e),
    }
}

/// Renews until `stop`; on losing the lock cancels `lost` and returns why.
async fn renew(
    api: Api<Lease>,
    name: String,
    opts: LockOptions,
    stop: CancellationToken,
    lost: CancellationToken,
    written: Arc<Mutex<Lease>>,
) -> String {
    let period = opts.lease_duration / 3;
    // Renewing must succeed well before the Lease runs out by anyone's clock.
    let deadline = opts.lease_duration * 2 / 3;
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return String::new(),
            _ = tokio::time::sleep(period) => {}
        }
        let result = match api.get_opt(&name).await {
            Ok(Some(mut lease)) => {
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                match spec.holder_identity.clone() {
                    Some(h) if h == opts.holder => {
                        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
                        api.replace(&name, &PostParams::default(), &lease)
                            .await
                            .map(|lease| {
                                *written.lock().unwrap_or_else(PoisonError::into_inner) = lease;
                            })
                            .map_err(|e| e.to_string())
                    }
                    other => {
                        let reason = format!(
                            "now held by {}",
                            other.filter(|h| !h.is_empty()).unwrap_or_else(|| "nobody".into())
                        );
                        lost.cancel();
                        return reason;
                    }
                }
            }
            Ok(None) => Err("the Lease was deleted".to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => renewed = Instant::now(),
            Err(e) if renewed.elapsed() >= deadline => {
                lost.cancel();
                return format!("not renewed for {}s: {e}", renewed.elapsed().as_secs());
            }
            Err(e) => tracing::warn!(lease = name.as_str(), "cannot renew the write lock: {e}"),
        }
    }
}

impl WriteLock {
    /// Runs `fut` while the lock is held, then releases it, remembering the released Lease in
    /// `observed` for the next [`acquire`]. `fut` is stopped (dropped) when the lock is lost.
    pub async fn run<F: Future>(mut self, fut: F, observed: &mut Observed) -> Result<F::Output, LockError> {
        let result = self.hold(fut).await;
        observed.released = self.release().await;
        result
    }

    async fn hold<F: Future>(&mut self, fut: F) -> Result<F::Output, LockError> {
        tokio::select! {
            r = fut => Ok(r),
            _ = self.lost.cancelled() => {
                let reason = match self.renewer.take() {
                    Some(task) => task.await.unwrap_or_else(|e| e.to_string()),
                    None => "lost".to_string(),
                };
                Err(LockError::Lost {
                    namespace: self.namespace.clone(),
                    name: self.name.clone(),
                    reason,
                })
            }
        }
    }

    /// Stops renewing and releases the Lease (empty holder) so the next writer proceeds at once:
    /// one write on the version this holder wrote last, or, when someone else wrote since, a read
    /// and a write. Returns the released Lease. A failure to release is only logged (debug): the
    /// Lease then expires after its duration.
    async fn release(mut self) -> Option<Lease> {
        self.stop.cancel();
        if let Some(task) = self.renewer.take() {
            let _ = task.await;
        }
        let written = std::mem::take(&mut *self.written.lock().unwrap_or_else(PoisonError::into_inner));
        let release = async {
            let mut lease = written;
            if lease.metadata.resource_version.is_some() {
                match self
                    .api
                    .replace(&self.name, &PostParams::default(), &released(lease.clone()))
                    .await
                {
                    Ok(lease) => return Ok(Some(lease)),
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => return Err(e),
                }
            }
            lease = match self.api.get_opt(&self.name).await? {
                Some(lease) => lease,
                None => return Ok(None),
            };
            let holder = lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref());
            if holder != Some(self.holder.as_str()) {
                return Ok(None);
            }
            self.api
                .replace(&self.name, &PostParams::default(), &released(lease))
                .await
                .map(Some)
        };
        // Debug, not a warning: this happens when the apiserver went away, which the apply's own
        // error already says, and the Lease expires by itself.
        match tokio::time::timeout(RELEASE_TIMEOUT, release).await {
            Ok(Ok(lease)) => lease,
            Ok(Err(e)) => {
                tracing::debug!(lease = self.name.as_str(), "cannot release the write lock: {e}");
                None
            }
            Err(_) => {
                tracing::debug!(
                    lease = self.name.as_str(),
                    "cannot release the write lock: timed out"
                );
                None
            }
        }
    }
}

/// `lease` without holder: released.
fn released(mut lease: Lease) -> Lease {
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = None;
    spec.renew_time = None;
    spec.acquire_time = None;
    lease
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_holder_expires_only_after_a_locally_observed_duration() {
        let mut seen = Observed::default();
        let d = Duration::from_millis(30);
        assert!(!seen.expired("1", d));
        assert!(!seen.expired("1", d));
        std::thread::sleep(Duration::from_millis(40));
        assert!(seen.expired("1", d));
        // A renewal (new version) starts the observation again.
        assert!(!seen.expired("2", d));
    }

    #[test]
    fn a_finished_apply_of_this_host_is_gone_but_a_running_one_or_another_host_is_not() {
        let host = host_name();
        // pid_max is at most 2^22: this pid never runs.
        assert!(is_gone_local_cli(
            &format!("kgitops-apply@{host}/99999999"),
            &host
        ));
        assert!(!is_gone_local_cli(&cli_holder(), &host));
        assert!(!is_gone_local_cli("kgitops-apply@elsewhere/99999999", &host));
        assert!(!is_gone_local_cli("kgitops-7d9f-abcde", &host));
        // The parent of this test process runs.
        let parent = std::os::unix::process::parent_id();
        assert!(!is_gone_local_cli(
            &format!("kgitops-apply@{host}/{parent}"),
            &host
        ));
    }
}
