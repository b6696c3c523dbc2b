//! One cluster's reconcile loop. It follows the newest revision, renders its overlay (a render
//! error keeps the last good revision live and is reported), applies it with the apply engine
//! (pre-flight dry-run of everything: a rejected object means nothing of that revision is written),
//! watches the applied objects for drift and heals or reports it. Failures are retried with
//! backoff; a newer revision replaces a failing one. Only the leader writes, and every write holds
//! the cluster's write lock (see [`apply::lock`]).
//!
//! A revision refused by `source.verify` ([`super::verify`]) is never rendered: the cluster keeps
//! its last good revision and records `refused` (with an Event on its inventory).
//!
//! A revision with a gate on live state waiting ([`crate::plan::gate`]) is not applied and not a
//! failure: the cluster is `waiting` (`/status` lists what for, metric `kgitops_gate_waiting`, one
//! `gate` alert per object), and the worker plans it again whenever a watched object changes,
//! including a status-only change of what a gate reads ([`Signal::Status`], ignored by clusters
//! that wait for nothing): the revision is applied by itself once the live state allows it.
//!
//! Each outcome is also a commit status on the revision (`pending`, `success`, `failure`, `error`)
//! when `commit_status` is configured; the mapping is in [`super::commit_status`], which only
//! queues: a slow git host never holds up this loop.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::alerts::Alert;
use super::commit_status::State as CommitState;
use super::config::{ClusterConfig, DriftMode};
use super::drift::{DriftWatch, Signal, TargetKey, Targets};
use super::revisions::{Latest, Revision};
use super::status::{DriftedObject, LAST_CHANGES_KEPT, LastResult, now};
use super::{SHUTDOWN_GRACE, Shared, backoff};
use crate::apply::{self, ApplyOptions, InventoryRef, Outcome};
use crate::manifest::yaml::to_yaml_stream;
use crate::manifest::{Gvk, ResId};
use crate::plan::gate::Blocked;
use crate::plan::in_effect::{Effect, NotInEffect};
use crate::plan::{Action, Cluster, connect};
use crate::report;

/// How long drift events are gathered before the worker plans (a `kubectl edit` of several
/// objects, or the events of kgitops' own apply, become one plan).
pub const DRIFT_DEBOUNCE: Duration = Duration::from_millis(50);

/// A rendered revision of this cluster.
#[derive(Clone, Debug)]
struct Desired {
    /// Commit sha, or `local:<digest>` for a working tree.
    revision: String,
    digest: String,
    objects: Arc<Vec<Value>>,
    inventory: InventoryRef,
}

/// A failed step, and whether retrying the same revision can help.
struct Failed {
    retry: bool,
}

/// The reconcile loop of one cluster.
pub struct Worker {
    cfg: ClusterConfig,
    shared: Arc<Shared>,
    leader: watch::Receiver<bool>,
    shutdown: CancellationToken,
    cluster: Option<Cluster>,
    recorder: Option<Recorder>,
    desired: Option<Desired>,
    applied: Option<Desired>,
    watch: Option<DriftWatch>,
    drift_tx: mpsc::Sender<Signal>,
    /// Another writer's write lock as this worker saw it (see [`apply::lock::Observed`]).
    lock_observed: apply::lock::Observed,
    /// The gates the desired revision waits for (empty when it waits for none).
    gated: Vec<Blocked>,
}

impl Worker {
    /// Runs the loop until `shutdown`.
    pub async fn run(
        cfg: ClusterConfig,
        shared: Arc<Shared>,
        mut latest: Latest,
        leader: watch::Receiver<bool>,
        shutdown: CancellationToken,
    ) {
        let (drift_tx, mut drift_rx) = mpsc::channel(64);
        let mut w = Worker {
            cfg,
            shared,
            leader,
            shutdown,
            cluster: None,
            recorder: None,
            desired: None,
            applied: None,
            watch: None,
            drift_tx,
            lock_observed: apply::lock::Observed::default(),
            gated: Vec::new(),
        };
        latest.mark_changed();
        let mut pending = false;
        let mut drift = false;
        let mut failures = 0u32;
        let mut retry_at: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                biased;
                _ = w.shutdown.cancelled() => return,
                changed = latest.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let revision = latest.borrow_and_update().clone();
                    if let Some(revision) = revision
                        && w.take(&revision).await
                    {
                        pending = true;
                        failures = 0;
                    }
                }
                leading = w.leader.changed() => {
                    if leading.is_err() {
                        return;
                    }
                    if *w.leader.borrow_and_update() {
                        pending = pending || w.desired.is_some();
                    }
                }
                Some(signal) = drift_rx.recv() => {
                    tracing::debug!(cluster = w.cfg.name.as_str(), ?signal, "drift signal");
                    tokio::time::sleep(DRIFT_DEBOUNCE).await;
                    let mut signals = vec![signal];
                    while let Ok(more) = drift_rx.try_recv() {
                        signals.push(more);
                    }
                    for signal in signals {
                        // A gated revision is planned again on any change of what it watches; a
                        // status-only change wakes nobody else.
                        let gated = !w.gated.is_empty();
                        match signal {
                            Signal::Status(_) => pending = pending || gated,
                            Signal::Changed(_) | Signal::Resync => {
                                drift = true;
                                pending = pending || gated;
                            }
                        }
                    }
                }
                _ = sleep_until(retry_at), if retry_at.is_some() => {
                    retry_at = None;
                    pending = w.desired.is_some();
                }
            }
            if w.cfg.suspend {
                pending = false;
                drift = false;
                w.record(
                    "suspended",
                    w.desired.as_ref().map(|d| d.revision.clone()),
                    None,
                    Duration::ZERO,
                );
                continue;
            }
            if !*w.leader.borrow() {
                if pending {
                    w.record(
                        "standby",
                        w.desired.as_ref().map(|d| d.revision.clone()),
                        Some("another replica leads; this one does not write".into()),
                        Duration::ZERO,
                    );
                }
                drift = false;
                continue;
            }
            let outcome = if pending {
                pending = false;
                drift = false;
                w.reconcile().await
            } else if drift {
                drift = false;
                w.check_drift().await
            } else {
                continue;
            };
            crate::memory::release_freed();
            match outcome {
                Ok(()) => failures = 0,
                Err(Failed { retry }) => {
                    failures += 1;
                    if retry {
                        let delay = backoff(failures);
                        tracing::info!(
                            cluster = w.cfg.name.as_str(),
                            "retrying in {}s",
                            delay.as_secs_f32()
                        );
                        retry_at = Some(tokio::time::Instant::now() + delay);
                    }
                }
            }
        }
    }

    fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Renders `revision`; returns whether there is something new to apply.
    async fn take(&mut self, revision: &Arc<Revision>) -> bool {
        if let Some(why) = &revision.untrusted {
            self.refuse(revision.commit.clone(), why);
            return false;
        }
        let tree = revision.tree.clone();
        let name = self.cfg.name.clone();
        // One render at a time in the process: the input budget bounds one render's memory, so
        // this bounds the daemon's. Renders share the render pool's threads anyway.
        static RENDER_TURN: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
        // The semaphore is never closed, so acquiring cannot fail; without a permit it renders.
        let _turn = RENDER_TURN.acquire().await.ok();
        let rendered = tokio::task::spawn_blocking(move || {
            crate::render::render_cluster(tree.as_ref(), &name).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("render task failed: {e}")));
        let objects = match rendered {
            Ok(objects) => objects,
            Err(message) => {
                let label = revision.commit.clone();
                self.fail(label, "render", &message, Duration::ZERO);
                self.supersede();
                return false;
            }
        };
        let digest = hex::encode(Sha256::digest(to_yaml_stream(&objects).as_bytes()));
        let label = revision
            .commit
            .clone()
            .unwrap_or_else(|| format!("local:{}", &digest[..12]));
        let inventory = match &self.cfg.inventory_namespace {
            Some(ns) => Some(InventoryRef::for_cluster(&self.cfg.name, ns)),
            None => InventoryRef::default_for(&self.cfg.name, &objects),
        };
        let Some(inventory) = inventory else {
            let message = format!(
                "clusters/{}: its objects span several namespaces; set inventory_namespace for this cluster",
                self.cfg.name
            );
            self.fail(Some(label), "render", &message, Duration::ZERO);
            self.supersede();
            return false;
        };
        if revision.forced {
            tracing::warn!(
                cluster = self.name(),
                revision = label.as_str(),
                "history was rewritten (force-push)"
            );
        }
        let desired = Desired {
            revision: label,
            digest,
            objects: Arc::new(objects),
            inventory,
        };
        let same_render = self
            .applied
            .as_ref()
            .is_some_and(|a| a.digest == desired.digest && a.inventory == desired.inventory);
        if same_render {
            // The cluster's render did not change (a commit touching other clusters, a revert to
            // what is live): nothing to apply; the cluster is at this revision too. Drift is the
            // watches' business, so no request is sent.
            self.adopt(&desired);
            self.unwait(&desired.revision);
            self.desired = Some(desired);
            return false;
        }
        self.desired = Some(desired);
        true
    }

    /// A newer revision failed to render: the one wanted before it (applied or still failing) is
    /// no longer the one to apply, so a retry of an older failing revision cannot run over the
    /// newer failure, and nothing is applied until a revision renders. Drift is still healed
    /// against what is applied.
    fn supersede(&mut self) {
        self.desired = None;
        self.unwait("(none)");
    }

    /// A revision refused by `source.verify` (see [`super::verify`], which reported it for the
    /// source: status, metrics, alert): not rendered, nothing of it applied; the cluster keeps its
    /// last good revision, records `refused` and says so in an Event on its inventory. Like a
    /// render failure it supersedes the revision wanted before it.
    fn refuse(&mut self, revision: Option<String>, why: &str) {
        let kept = self.applied.as_ref().map(|a| a.revision.clone());
        tracing::warn!(
            cluster = self.name(),
            revision = revision.as_deref().unwrap_or("-"),
            kept = kept.as_deref().unwrap_or("-"),
            "{why}; the cluster keeps its last good revision"
        );
        self.record("refused", revision, Some(why.to_string()), Duration::ZERO);
        if let Some(applied) = &self.applied {
            self.event(
                EventType::Warning,
                "UntrustedRevision",
                "Verify",
                format!("{why}; not applied, keeping revision {}", applied.revision),
                inventory_ref(&applied.inventory),
            );
        }
        self.supersede();
    }

    /// Records `desired`, whose render equals the applied one, as the applied revision.
    fn adopt(&mut self, desired: &Desired) {
        let Some(applied) = self.applied.as_mut() else {
            return;
        };
        if applied.revision == desired.revision {
            return;
        }
        let previous = std::mem::replace(&mut applied.revision, desired.revision.clone());
        let message = format!(
            "revision {}: render unchanged since {previous}, nothing to apply",
            desired.revision
        );
        tracing::info!(
            cluster = self.cfg.name.as_str(),
            revision = desired.revision.as_str(),
            "{message}"
        );
        self.shared
            .metrics
            .applied_revision(&self.cfg.name, &desired.revision);
        self.shared.status.cluster(&self.cfg.name, |c| {
            c.applied_revision = Some(desired.revision.clone());
            c.synced = c.drifted.is_empty();
        });
        self.record(
            "unchanged",
            Some(desired.revision.clone()),
            Some(message),
            Duration::ZERO,
        );
        self.shared.alerter.resolve(
            &format!("failure/{}", self.cfg.name),
            Some(&self.cfg.name),
            format!("revision {} is live", desired.revision),
        );
        self.shared.commit_status.report(
            &self.cfg.name,
            &desired.revision,
            CommitState::Success,
            &format!(
                "render unchanged since {}; nothing to apply",
                previous.get(..12).unwrap_or(&previous)
            ),
        );
    }

    async fn connect(&mut self) -> Result<Cluster, String> {
        if let Some(c) = &self.cluster {
            return Ok(c.clone());
        }
        let cluster = connect::connect(
            self.cfg.kubeconfig.as_deref(),
            self.cfg.context.as_deref(),
            &self.cfg.api.client_options(),
        )
        .await
        .map_err(|e| e.to_string())?
        .with_webhook_watch();
        self.shared
            .metrics
            .watch_apiserver(&self.cfg.name, cluster.api_stats().clone());
        self.recorder = Some(Recorder::new(
            cluster.client().clone(),
            Reporter {
                controller: "kgitops".into(),
                instance: Some(self.shared.identity.clone()),
            },
        ));
        self.cluster = Some(cluster.clone());
        Ok(cluster)
    }

    /// The write lock as this replica takes it: without waiting. Another writer (`kgitops apply`, or
    /// a second replica running without `leader_election`) makes the reconcile fail naming it, and
    /// it is retried with backoff; a holder that stopped renewing is taken over after its lease
    /// duration as this worker observed it across retries.
    fn lock_options(&self) -> apply::LockOptions {
        let mut lock = apply::LockOptions::new(&self.shared.identity);
        lock.timeout = Duration::ZERO;
        lock
    }

    /// Runs `fut` (an apply); cancels it at once when this replica stops leading (another one may
    /// be writing already), and on shutdown lets it finish within [`SHUTDOWN_GRACE`], else
    /// abandons it. Every apply step is idempotent: whoever leads next converges.
    async fn graceful<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        let mut leader = self.leader.clone();
        let lost = async move {
            let closed = leader.wait_for(|leading| !*leading).await.is_err();
            if closed {
                // No election (the sender is gone only at shutdown): never lost.
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(fut);
        tokio::pin!(lost);
        let cancelled = |why: &str| {
            tracing::warn!(
                cluster = self.name(),
                "{why}: the apply in progress is cancelled; the next run converges"
            );
            None
        };
        tokio::select! {
            r = &mut fut => Some(r),
            _ = &mut lost => cancelled("leadership lost"),
            _ = self.shutdown.cancelled() => {
                tokio::select! {
                    r = &mut fut => Some(r),
                    _ = &mut lost => cancelled("leadership lost"),
                    _ = tokio::time::sleep(SHUTDOWN_GRACE) => cancelled("shutdown"),
                }
            }
        }
    }

    /// Applies the desired revision.
    async fn reconcile(&mut self) -> Result<(), Failed> {
        let Some(desired) = self.desired.clone() else {
            return Ok(());
        };
        self.shared
            .commit_status
            .started(&self.cfg.name, &desired.revision);
        let started = Instant::now();
        let cluster = match self.connect().await {
            Ok(c) => c,
            Err(message) => {
                self.fail(
                    Some(desired.revision.clone()),
                    "connect",
                    &message,
                    started.elapsed(),
                );
                return Err(Failed { retry: true });
            }
        };
        // One cluster plans or applies at a time: a plan holds every object of its cluster live and
        // as desired, so this bounds the daemon's memory by its largest cluster, not their sum.
        let shared = self.shared.clone();
        let _slot = shared.reconcile_slots.acquire().await;
        let mut opts = ApplyOptions::new(&self.cfg.name, desired.inventory.clone());
        opts.prune = self.cfg.prune;
        opts.max_prune = self.cfg.max_prune;
        let objects = (*desired.objects).clone();
        let lock = self.lock_options();
        let mut observed = std::mem::take(&mut self.lock_observed);
        let applied = apply::apply_locked(&cluster, objects, &opts, &lock, &mut observed);
        let Some(result) = self.graceful(applied).await else {
            return Ok(());
        };
        self.lock_observed = observed;
        let elapsed = started.elapsed();
        match result {
            Ok(mut set) => {
                set.revision = Some(desired.revision.clone());
                let changed: Vec<String> = set
                    .changes
                    .iter()
                    .filter(|c| c.outcome != Outcome::Unchanged)
                    .map(|c| format!("{} {}", c.object, c.outcome))
                    .collect();
                for c in set.changes.iter().filter(|c| c.outcome != Outcome::Unchanged) {
                    tracing::info!(
                        cluster = self.name(),
                        revision = desired.revision.as_str(),
                        "{} {}",
                        c.object,
                        c.outcome
                    );
                    for conflict in &c.conflicts {
                        tracing::info!(
                            cluster = self.name(),
                            "{}: {} lost {} to git",
                            c.object,
                            conflict.manager,
                            conflict.fields.join(", ")
                        );
                    }
                }
                let result = if set.has_changes() { "applied" } else { "unchanged" };
                let unchanged = set
                    .changes
                    .iter()
                    .filter(|c| c.outcome == Outcome::Unchanged)
                    .count();
                let summary = format!(
                    "revision {}: {} changed, {unchanged} unchanged",
                    desired.revision,
                    changed.len()
                );
                tracing::info!(
                    cluster = self.name(),
                    revision = desired.revision.as_str(),
                    result,
                    "{summary}"
                );
                self.shared
                    .metrics
                    .applied_revision(self.name(), &desired.revision);
                self.shared.metrics.managed(self.name(), desired.objects.len());
                self.shared.metrics.drift(self.name(), 0);
                self.shared.status.cluster(&self.cfg.name, |c| {
                    c.applied_revision = Some(desired.revision.clone());
                    c.synced = true;
                    c.drifted.clear();
                    if !changed.is_empty() {
                        c.last_changes = changed.iter().take(LAST_CHANGES_KEPT).cloned().collect();
                        c.last_changes_revision = Some(desired.revision.clone());
                    }
                });
                self.record(
                    result,
                    Some(desired.revision.clone()),
                    Some(summary.clone()),
                    elapsed,
                );
                self.shared.alerter.resolve(
                    &format!("failure/{}", self.cfg.name),
                    Some(&self.cfg.name),
                    format!("revision {} applied", desired.revision),
                );
                self.shared.alerter.resolve_except(
                    &format!("drift/{}/", self.cfg.name),
                    &[],
                    Some(&self.cfg.name),
                );
                self.unwait(&desired.revision);
                self.shared.commit_status.report(
                    &self.cfg.name,
                    &desired.revision,
                    CommitState::Success,
                    &format!("applied: {} changed, {unchanged} unchanged", changed.len()),
                );
                if set.has_changes() {
                    self.event(
                        EventType::Normal,
                        "Applied",
                        "Apply",
                        summary,
                        inventory_ref(&desired.inventory),
                    );
                }
                self.applied = Some(desired);
                self.ensure_watch(&cluster).await;
                Ok(())
            }
            Err(apply::ApplyError::Gated(blocked)) => {
                self.wait(&desired, blocked, elapsed);
                // The gated objects must be watched even when nothing was applied yet (a restart).
                if self.watch.is_none() {
                    self.ensure_watch(&cluster).await;
                }
                Ok(())
            }
            Err(e) => {
                self.fail(Some(desired.revision.clone()), "apply", &e.to_string(), elapsed);
                Err(Failed { retry: true })
            }
        }
    }

    /// Records that `desired` waits for gates on live state: nothing of it was written.
    /// `/status` (result `waiting`, the lines), the metric, a log line when what it waits for
    /// changes, and one `gate` alert per object (its content leaves out the live state, which
    /// changes while it waits: it fires once).
    fn wait(&mut self, desired: &Desired, blocked: Vec<Blocked>, elapsed: Duration) {
        let lines: Vec<String> = blocked.iter().map(Blocked::to_string).collect();
        if blocked != self.gated {
            for line in &lines {
                tracing::info!(
                    cluster = self.name(),
                    revision = desired.revision.as_str(),
                    "waiting: {line}"
                );
            }
        }
        self.shared.metrics.gate_waiting(self.name(), true);
        self.shared.status.cluster(&self.cfg.name, |c| {
            c.waiting = lines.clone();
            c.synced = false;
        });
        self.record(
            "waiting",
            Some(desired.revision.clone()),
            Some(format!(
                "revision {} waits for live state; nothing of it was written: {}",
                desired.revision,
                lines.join("; ")
            )),
            elapsed,
        );
        let prefix = format!("gate/{}/", self.cfg.name);
        let mut objects: Vec<&str> = blocked.iter().map(|b| b.object.as_str()).collect();
        objects.sort_unstable();
        objects.dedup();
        let alerts = objects
            .into_iter()
            .map(|object| {
                let mut alert = Alert::firing(
                    "gate",
                    format!("{prefix}{object}"),
                    Some(&self.cfg.name),
                    format!("{object}: revision {} waits for live state", desired.revision),
                );
                alert.details = blocked
                    .iter()
                    .filter(|b| b.object == object)
                    .map(|b| format!("{} needs {}", b.change, b.needs))
                    .collect();
                alert.revision = Some(desired.revision.clone());
                alert
            })
            .collect();
        self.shared
            .alerter
            .fire_set(&prefix, Some(&self.cfg.name), alerts);
        let first = blocked.first().map(|b| b.object.as_str()).unwrap_or("-");
        let more = match objects_waited_for(&blocked) {
            n if n > 1 => format!(" and {} more", n - 1),
            _ => String::new(),
        };
        self.shared.commit_status.report(
            &self.cfg.name,
            &desired.revision,
            CommitState::Failure,
            &format!("waiting for live state of {first}{more}; nothing applied"),
        );
        self.gated = blocked;
    }

    /// The revision is applied (or superseded by one that waits for nothing): the gates are gone.
    fn unwait(&mut self, revision: &str) {
        if self.gated.is_empty() {
            return;
        }
        tracing::info!(
            cluster = self.name(),
            revision,
            "no longer waiting for live state"
        );
        self.gated.clear();
        self.shared.metrics.gate_waiting(self.name(), false);
        self.shared.status.cluster(&self.cfg.name, |c| c.waiting.clear());
        self.shared
            .alerter
            .resolve_except(&format!("gate/{}/", self.cfg.name), &[], Some(&self.cfg.name));
    }

    /// Plans the applied revision against live state; heals or reports what drifted.
    async fn check_drift(&mut self) -> Result<(), Failed> {
        let Some(applied) = self.applied.clone() else {
            return Ok(());
        };
        let started = Instant::now();
        let cluster = self.connect().await.map_err(|_| Failed { retry: true })?;
        let opts = ApplyOptions::new(&self.cfg.name, applied.inventory.clone());
        let shared = self.shared.clone();
        let _slot = shared.reconcile_slots.acquire().await;
        let plan = match apply::plan(&cluster, (*applied.objects).clone(), &opts).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(cluster = self.name(), "drift check failed: {e}");
                return Err(Failed { retry: true });
            }
        };
        self.report_not_in_effect(&applied.revision, &plan);
        let drifted: Vec<DriftedObject> = plan
            .plan()
            .entries
            .iter()
            .filter(|e| matches!(e.action, Action::Create | Action::Update | Action::Recreate))
            .map(|e| DriftedObject {
                object: e.object.clone(),
                fields: if e.action == Action::Create {
                    vec!["deleted".to_string()]
                } else if e.changes.is_empty() {
                    vec!["changed".to_string()]
                } else {
                    e.changes.iter().map(report::field_change_line).collect()
                },
            })
            .collect();
        let keys: Vec<String> = drifted
            .iter()
            .map(|d| format!("drift/{}/{}", self.cfg.name, d.object))
            .collect();
        self.shared
            .alerter
            .resolve_except(&format!("drift/{}/", self.cfg.name), &keys, Some(&self.cfg.name));
        if drifted.is_empty() {
            self.shared.commit_status.recovered(
                &self.cfg.name,
                &applied.revision,
                "applied; live state matches git again",
            );
            self.shared.metrics.drift(self.name(), 0);
            self.shared.status.cluster(&self.cfg.name, |c| {
                c.drifted.clear();
                c.synced = self.desired.as_ref().map(|d| &d.revision) == Some(&applied.revision);
            });
            return Ok(());
        }
        for d in &drifted {
            tracing::warn!(
                cluster = self.name(),
                object = d.object.as_str(),
                "drift: {}",
                d.fields.join("; ")
            );
        }
        match self.cfg.drift {
            DriftMode::Alert => {
                let previous: Vec<DriftedObject> = self
                    .shared
                    .status
                    .read_cluster(&self.cfg.name, |c| c.drifted.clone())
                    .unwrap_or_default();
                for (d, key) in drifted.iter().zip(&keys) {
                    let mut alert = Alert::firing(
                        "drift",
                        key.clone(),
                        Some(&self.cfg.name),
                        format!("{} differs from git", d.object),
                    );
                    alert.details = d.fields.clone();
                    alert.revision = Some(applied.revision.clone());
                    self.shared.alerter.fire(alert);
                    if !previous.contains(d) {
                        self.event(
                            EventType::Warning,
                            "DriftDetected",
                            "Watch",
                            format!(
                                "differs from git revision {}: {}",
                                applied.revision,
                                d.fields.join("; ")
                            ),
                            object_ref(&plan, &d.object),
                        );
                    }
                }
                self.shared.metrics.drift(self.name(), drifted.len());
                self.shared.commit_status.report(
                    &self.cfg.name,
                    &applied.revision,
                    CommitState::Failure,
                    &format!("drift: {} object(s) differ from git (alert mode)", drifted.len()),
                );
                self.shared.status.cluster(&self.cfg.name, |c| {
                    c.drifted = drifted.clone();
                    c.synced = false;
                });
                self.record("drifted", Some(applied.revision.clone()), None, started.elapsed());
                Ok(())
            }
            DriftMode::Heal => {
                self.shared.metrics.drift(self.name(), drifted.len());
                // Taken before the plan moves into the apply (a copy would hold the cluster twice).
                let refs: Vec<ObjectReference> =
                    drifted.iter().map(|d| object_ref(&plan, &d.object)).collect();
                let lock = self.lock_options();
                let mut observed = std::mem::take(&mut self.lock_observed);
                let healed = apply::apply_planned_locked(&cluster, plan, &opts, &lock, &mut observed);
                let Some(result) = self.graceful(healed).await else {
                    return Ok(());
                };
                self.lock_observed = observed;
                match result {
                    Ok(_) => {
                        let lines: Vec<String> = drifted
                            .iter()
                            .map(|d| format!("{} healed: {}", d.object, d.fields.join("; ")))
                            .collect();
                        for ((d, line), regarding) in drifted.iter().zip(&lines).zip(refs) {
                            tracing::info!(
                                cluster = self.name(),
                                revision = applied.revision.as_str(),
                                "{line}"
                            );
                            self.event(
                                EventType::Normal,
                                "DriftHealed",
                                "Heal",
                                format!(
                                    "restored to git revision {}: {}",
                                    applied.revision,
                                    d.fields.join("; ")
                                ),
                                regarding,
                            );
                        }
                        self.shared.metrics.healed(self.name());
                        self.shared.commit_status.recovered(
                            &self.cfg.name,
                            &applied.revision,
                            "applied; drift healed, live state matches git",
                        );
                        self.shared.metrics.drift(self.name(), 0);
                        self.shared.status.cluster(&self.cfg.name, |c| {
                            c.heals += 1;
                            c.drifted.clear();
                            c.last_changes = lines.iter().take(LAST_CHANGES_KEPT).cloned().collect();
                            c.last_changes_revision = Some(applied.revision.clone());
                        });
                        self.record(
                            "healed",
                            Some(applied.revision.clone()),
                            Some(format!("{} object(s) healed", drifted.len())),
                            started.elapsed(),
                        );
                        Ok(())
                    }
                    Err(e) => {
                        self.fail(
                            Some(applied.revision.clone()),
                            "heal",
                            &e.to_string(),
                            started.elapsed(),
                        );
                        Err(Failed { retry: true })
                    }
                }
            }
        }
    }

    /// Publishes the readiness of the Strimzi objects (`/status` `not_ready`, metric
    /// `kgitops_strimzi_objects`) and what of them is not in effect, as the last plan found them:
    /// `/status`, the metrics, a log line and an Event per new entry, and an alert per part the
    /// operator did not carry out, resolved once it is gone; paused and refused objects are alerted
    /// too ([`Self::alert_final_health`]).
    fn report_not_in_effect(&self, revision: &str, plan: &apply::ClusterPlan) {
        let list = plan.plan().not_in_effect.as_slice();
        let previous: Vec<NotInEffect> = self
            .shared
            .status
            .read_cluster(&self.cfg.name, |c| c.not_in_effect.clone())
            .unwrap_or_default();
        for n in list.iter().filter(|n| !previous.contains(n)) {
            tracing::warn!(
                cluster = self.name(),
                revision,
                object = n.object.as_str(),
                "{}: {}",
                n.effect,
                n.line()
            );
            if n.effect == Effect::Ignored {
                self.event(
                    EventType::Warning,
                    "NotInEffect",
                    "Watch",
                    format!(
                        "{} of git revision {revision} is not in effect: {}: {}",
                        n.field, n.reason, n.message
                    ),
                    object_ref(plan, &n.object),
                );
            }
        }
        // Readiness from the same reads: the live objects of the plan.
        let health: Vec<apply::Health> = plan
            .live
            .objects
            .iter()
            .filter(|o| apply::health::is_watched(&o.id))
            .map(|o| match &o.live {
                Some(live) => apply::health::strimzi_health(&o.id, live),
                None => apply::health::missing(&o.id),
            })
            .collect();
        let states: Vec<&str> = health.iter().map(|h| h.state.as_str()).collect();
        self.shared.metrics.strimzi_health(self.name(), &states);
        let not_ready: Vec<apply::Health> = health.into_iter().filter(|h| !h.healthy).collect();
        self.alert_final_health(revision, &not_ready);
        self.shared
            .status
            .cluster(&self.cfg.name, |c| c.not_ready = not_ready);
        self.shared.metrics.not_in_effect(self.name(), list);
        self.shared
            .status
            .cluster(&self.cfg.name, |c| c.not_in_effect = list.to_vec());
        let prefix = format!("not-in-effect/{}/", self.cfg.name);
        let alerts = list
            .iter()
            .filter(|n| n.effect == Effect::Ignored)
            .map(|n| {
                let mut alert = Alert::firing(
                    "not-in-effect",
                    format!("{prefix}{} {}", n.object, n.field),
                    Some(&self.cfg.name),
                    format!("{} {} is not in effect", n.object, n.field),
                );
                alert.details = vec![
                    format!("{}: {}", n.reason, n.message),
                    format!("reported by {}", n.reported_by),
                ];
                alert.revision = Some(revision.to_string());
                alert
            })
            .collect();
        self.shared
            .alerter
            .fire_set(&prefix, Some(&self.cfg.name), alerts);
    }

    /// An alert per Strimzi object that is paused or refused: the operator will not act on it until
    /// someone does (resumes it, or changes the spec it refuses), so waiting cannot help. Resolved
    /// once the object is neither, or has left git. Objects the operator still works on are only
    /// in `/status` and the metrics.
    fn alert_final_health(&self, revision: &str, not_ready: &[apply::Health]) {
        let prefix = format!("strimzi-health/{}/", self.cfg.name);
        let alerts = not_ready
            .iter()
            .filter(|h| h.state.is_final())
            .map(|h| {
                let summary = if h.state == apply::health::HealthState::Paused {
                    format!(
                        "{} is paused: the Strimzi operator does not reconcile it",
                        h.object
                    )
                } else {
                    format!("{} is refused by the Strimzi operator", h.object)
                };
                let mut alert = Alert::firing(
                    "strimzi-health",
                    format!("{prefix}{}", h.object),
                    Some(&self.cfg.name),
                    summary,
                );
                alert.details = vec![h.message.clone()];
                alert.revision = Some(revision.to_string());
                alert
            })
            .collect();
        self.shared
            .alerter
            .fire_set(&prefix, Some(&self.cfg.name), alerts);
    }

    /// Starts or replaces the drift watches so they cover the applied objects.
    /// Without an applied revision yet, the desired one's objects are watched: a revision waiting
    /// for a gate after a restart wakes up on its gated object's status as well.
    async fn ensure_watch(&mut self, cluster: &Cluster) {
        let Some(applied) = self.applied.as_ref().or(self.desired.as_ref()) else {
            return;
        };
        let mut targets = Targets::new();
        for obj in applied.objects.iter() {
            let Ok(id) = ResId::of(obj) else { continue };
            let Ok(Some(resolved)) = cluster.resolve(&id.gvk).await else {
                continue;
            };
            let key = TargetKey {
                group: id.gvk.group.clone(),
                version: id.gvk.version.clone(),
                kind: id.gvk.kind.clone(),
                namespace: if resolved.namespaced {
                    id.namespace.clone()
                } else {
                    None
                },
            };
            targets.insert(key, resolved.resource);
        }
        if self.watch.as_ref().is_some_and(|w| w.covers(&targets)) {
            return;
        }
        let selector = format!("{}={}", apply::inventory::PART_OF_LABEL, applied.inventory.id());
        tracing::debug!(cluster = self.name(), watches = targets.len(), "drift watches");
        self.watch = Some(DriftWatch::start(
            cluster.client(),
            targets,
            &selector,
            self.drift_tx.clone(),
        ));
    }

    fn record(&self, result: &str, revision: Option<String>, message: Option<String>, elapsed: Duration) {
        if !matches!(result, "suspended" | "standby" | "drifted") {
            self.shared
                .metrics
                .reconciled(self.name(), result, elapsed.as_secs_f64());
        }
        self.shared.status.cluster(&self.cfg.name, |c| {
            c.last_result = Some(LastResult {
                at: now(),
                revision,
                result: result.to_string(),
                message,
                duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            });
        });
    }

    /// Records a failed step: the cluster keeps its last good revision.
    fn fail(&self, revision: Option<String>, step: &str, message: &str, elapsed: Duration) {
        let kept = self.applied.as_ref().map(|a| a.revision.clone());
        tracing::error!(
            cluster = self.name(),
            revision = revision.as_deref().unwrap_or("-"),
            step,
            kept = kept.as_deref().unwrap_or("-"),
            "{step} failed; the cluster keeps its last good revision: {message}"
        );
        self.shared.status.cluster(&self.cfg.name, |c| c.synced = false);
        self.record(
            "failed",
            revision.clone(),
            Some(format!("{step} failed: {message}")),
            elapsed,
        );
        let mut alert = Alert::firing(
            "failure",
            format!("failure/{}", self.cfg.name),
            Some(&self.cfg.name),
            format!(
                "{step} failed; keeping revision {}",
                kept.as_deref().unwrap_or("(none applied yet)")
            ),
        );
        alert.details = message.lines().map(str::to_string).collect();
        if let Some(revision) = &revision {
            self.shared
                .commit_status
                .failed(&self.cfg.name, revision, step, message);
        }
        alert.revision = revision;
        self.shared.alerter.fire(alert);
        if let Some(applied) = &self.applied {
            self.event(
                EventType::Warning,
                "ReconcileFailed",
                "Reconcile",
                format!("{step} failed: {message}"),
                inventory_ref(&applied.inventory),
            );
        }
    }

    /// Publishes a Kubernetes Event in the background (a failure to publish is only logged).
    fn event(&self, type_: EventType, reason: &str, action: &str, note: String, regarding: ObjectReference) {
        let Some(recorder) = self.recorder.clone() else {
            return;
        };
        // The API caps notes at 1 kB.
        let note: String = note.chars().take(1000).collect();
        let event = KubeEvent {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: action.to_string(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(e) = recorder.publish(&event, &regarding).await {
                tracing::debug!("event not recorded: {e}");
            }
        });
    }
}

/// How many distinct objects `blocked` waits for.
fn objects_waited_for(blocked: &[Blocked]) -> usize {
    let mut objects: Vec<&str> = blocked.iter().map(|b| b.object.as_str()).collect();
    objects.sort_unstable();
    objects.dedup();
    objects.len()
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn inventory_ref(inv: &InventoryRef) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        namespace: Some(inv.namespace.clone()),
        name: Some(inv.name.clone()),
        ..ObjectReference::default()
    }
}

fn object_ref(plan: &apply::ClusterPlan, object: &str) -> ObjectReference {
    let id = plan
        .plan()
        .entries
        .iter()
        .find(|e| e.object == object)
        .map(|e| e.id.clone());
    match id {
        Some(id) => ObjectReference {
            api_version: Some(api_version(&id.gvk)),
            kind: Some(id.gvk.kind.clone()),
            namespace: id.namespace.clone(),
            name: Some(id.name.clone()),
            ..ObjectReference::default()
        },
        None => ObjectReference::default(),
    }
}

fn api_version(gvk: &Gvk) -> String {
    if gvk.group.is_empty() {
        gvk.version.clone()
    } else {
        format!("{}/{}", gvk.group, gvk.version)
    }
}
