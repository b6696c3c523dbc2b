//! One replica of the fleet: renews its replica Lease and the Leases of the clusters it owns,
//! takes and gives up clusters as [`super::balance`] decides, and runs one
//! [`crate::daemon::worker::Worker`] per owned cluster, nothing for the others (no render, no
//! watch, no alert, Event or commit status: those come from the owner alone).
//!
//! Writing is gated per cluster exactly as leader election gates it for the whole daemon: each
//! worker gets its own `watch` channel, `true` while its Lease is held; `false` cancels the apply
//! in flight at once. A cluster whose Lease could not be renewed within the renew deadline
//! ([`leader::renew_deadline`], two thirds of the lease duration from the start of the last
//! successful renewal) gets `false` and its worker is stopped; anyone else takes it only after the
//! whole lease duration without change, as observed by its own clock. A cluster given up for
//! balance is released (empty holder) only after its worker has stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, ListParams, Preconditions};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::balance::{self, View};
use super::{
    CLUSTER_ANNOTATION, HEALTH_ANNOTATION, KIND_LABEL, LeaseKind, REPLICA_ANNOTATION, REVISION_ANNOTATION,
    ShardingConfig, labels, lease_name,
};
use crate::daemon::config::ClusterConfig;
use crate::daemon::leader::{self, Claim, Observed, Round};
use crate::daemon::revisions::Latest;
use crate::daemon::status::ClusterStatus;
use crate::daemon::worker::Worker;
use crate::daemon::{SHUTDOWN_LIMIT, Shared};

/// Lease renewals in flight at once (a replica may own hundreds of clusters).
const RENEWALS_IN_FLIGHT: usize = 16;

/// A cluster this replica owns.
struct Owned {
    /// `true` while the Lease is held; `false` cancels the apply in flight.
    writing: watch::Sender<bool>,
    stop: CancellationToken,
    task: JoinHandle<()>,
    /// Start of the last successful renewal.
    renewed: Instant,
    /// Given up for balance: released once the worker has stopped.
    releasing: bool,
}

/// One cluster Lease's claim round, run concurrently with the others.
struct ClaimJob {
    cluster: String,
    lease: String,
    current: Option<Lease>,
    observed: Option<Observed>,
    annotations: BTreeMap<String, String>,
    round: Option<Round>,
}

/// The fleet state of this replica.
struct Fleet {
    api: Api<Lease>,
    identity: String,
    duration: Duration,
    clusters: Vec<ClusterConfig>,
    shared: Arc<Shared>,
    latest: Latest,
    shutdown: CancellationToken,
    owned: BTreeMap<String, Owned>,
    /// Per Lease name: its spec as last seen and when it changed (this process's clock).
    observed: BTreeMap<String, Option<Observed>>,
    /// Per free cluster: since when this replica has seen it free.
    free_since: BTreeMap<String, Instant>,
    /// Clusters this replica gave up for balance, and when: not taken back within a lease
    /// duration (the replica it was meant for would lose the race to it again and again).
    given_up: BTreeMap<String, Instant>,
    /// The owners as last published to /status.
    published: BTreeMap<String, Option<String>>,
}

/// Runs this replica's part of the fleet until `shutdown`; then lets the workers finish (renewing
/// meanwhile, within [`SHUTDOWN_LIMIT`]) and releases every Lease it holds.
pub async fn run(
    client: kube::Client,
    config: ShardingConfig,
    identity: String,
    clusters: Vec<ClusterConfig>,
    shared: Arc<Shared>,
    latest: Latest,
    shutdown: CancellationToken,
) {
    let duration = config.lease_duration.0;
    let mut fleet = Fleet {
        api: Api::namespaced(client, &config.namespace),
        identity,
        duration,
        clusters,
        shared,
        latest,
        shutdown: shutdown.clone(),
        owned: BTreeMap::new(),
        observed: BTreeMap::new(),
        free_since: BTreeMap::new(),
        given_up: BTreeMap::new(),
        published: BTreeMap::new(),
    };
    for c in &fleet.clusters {
        fleet
            .shared
            .status
            .cluster(&c.name, |s| set_owner(s, None, false));
        fleet.shared.metrics.cluster_owned(&c.name, false);
    }
    let period = leader::retry_period(duration);
    let deadline = leader::renew_deadline(duration);
    let mut stopping: Option<Instant> = None;
    loop {
        let started = Instant::now();
        // A round may take only what is left of the earliest renew deadline: a hung request must
        // not keep a worker writing past it.
        let limit = fleet
            .owned
            .values()
            .map(|o| (o.renewed + deadline).saturating_duration_since(started))
            .min()
            .unwrap_or(duration);
        let taking = stopping.is_none();
        if tokio::time::timeout(limit, fleet.round(started, taking))
            .await
            .is_err()
        {
            tracing::warn!(
                namespace = config.namespace.as_str(),
                "fleet: no answer within the renew deadline"
            );
        }
        fleet.enforce_deadlines(deadline);
        if let Some(since) = stopping
            && (fleet.owned.values().all(|o| o.task.is_finished())
                || since.elapsed() > SHUTDOWN_LIMIT.saturating_sub(Duration::from_secs(3)))
        {
            // Bounded: a shutdown must not wait on an unreachable apiserver.
            let _ = tokio::time::timeout(Duration::from_secs(2), fleet.release_all()).await;
            return;
        }
        let next_deadline = fleet.owned.values().map(|o| o.renewed + deadline).min();
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = sleep_until(next_deadline) => fleet.enforce_deadlines(deadline),
            _ = shutdown.cancelled(), if stopping.is_none() => {
                // The workers stop by themselves (their tokens are children of `shutdown`).
                stopping = Some(Instant::now());
            }
        }
    }
}

fn set_owner(status: &mut ClusterStatus, owner: Option<String>, owned: bool) {
    status.owner = owner;
    status.owned = owned;
}

impl Fleet {
    fn observed(&mut self, lease: &str) -> &mut Option<Observed> {
        self.observed.entry(lease.to_string()).or_default()
    }

    /// One round: read every fleet Lease, renew this replica's, renew the owned clusters', then
    /// take and release as [`balance::decide`] says (`taking`: false while shutting down).
    async fn round(&mut self, started: Instant, taking: bool) {
        let listed = match self.api.list(&ListParams::default().labels(KIND_LABEL)).await {
            Ok(list) => list.items,
            Err(e) => {
                tracing::warn!("fleet: cannot list the Leases: {e}");
                return;
            }
        };
        let mut by_name: BTreeMap<String, Lease> = BTreeMap::new();
        for lease in listed {
            if let Some(name) = lease.metadata.name.clone() {
                Observed::see(self.observed(&name), &lease.spec, started);
                by_name.insert(name, lease);
            }
        }

        // Membership: this replica's own Lease.
        let replica_lease = lease_name(LeaseKind::Replica, &self.identity);
        let replica_labels = labels(LeaseKind::Replica);
        let replica_annotations = BTreeMap::from([(REPLICA_ANNOTATION.to_string(), self.identity.clone())]);
        let current = by_name.get(&replica_lease).cloned();
        let mut observed = self.observed.remove(&replica_lease).flatten();
        let claim = Claim {
            identity: &self.identity,
            duration: self.duration,
            acquire: true,
            labels: &replica_labels,
            annotations: &replica_annotations,
        };
        match leader::claim_round(&self.api, &replica_lease, current, &claim, &mut observed).await {
            Ok(Round::Leading) => {}
            Ok(other) => tracing::warn!(
                lease = replica_lease.as_str(),
                "fleet: another process holds this replica's Lease ({other:?}): replica ids must be unique"
            ),
            Err(e) => tracing::warn!(lease = replica_lease.as_str(), "fleet: cannot renew: {e}"),
        }
        self.observed.insert(replica_lease, observed);

        // Renew what this replica owns (and what its Leases say it owns: a restart with the same id).
        let mut renew: Vec<String> = self.owned.keys().cloned().collect();
        for c in &self.clusters {
            let lease = lease_name(LeaseKind::Cluster, &c.name);
            let held = by_name
                .get(&lease)
                .and_then(|l| l.spec.as_ref())
                .and_then(|s| s.holder_identity.as_deref())
                == Some(self.identity.as_str());
            if held && !self.owned.contains_key(&c.name) && taking {
                renew.push(c.name.clone());
            }
        }
        let renewed = self.claim_all(&renew, &by_name).await;
        for (cluster, round) in renewed {
            match round {
                Some(Round::Leading) => self.hold(&cluster, started),
                Some(Round::Following(holder)) => self.lose(&cluster, &format!("taken by {holder}")),
                Some(Round::Free) | None => {}
            }
        }

        // Balance.
        let now = Instant::now();
        let live: BTreeSet<String> = by_name
            .iter()
            .filter(|(_, l)| kind(l) == Some(LeaseKind::Replica))
            .filter_map(|(name, _)| {
                self.observed
                    .get(name)
                    .and_then(|o| o.as_ref())
                    .and_then(|o| o.holder(now))
                    .map(str::to_string)
            })
            .chain(std::iter::once(self.identity.clone()))
            .collect();
        let mut holders: BTreeMap<String, String> = BTreeMap::new();
        for c in &self.clusters {
            if self.owned.contains_key(&c.name) {
                holders.insert(c.name.clone(), self.identity.clone());
                continue;
            }
            let lease = lease_name(LeaseKind::Cluster, &c.name);
            let holder = self
                .observed
                .get(&lease)
                .and_then(|o| o.as_ref())
                .and_then(|o| o.holder(now))
                .filter(|h| *h != self.identity);
            if let Some(h) = holder {
                holders.insert(c.name.clone(), h.to_string());
            }
        }
        self.free_since.retain(|c, _| !holders.contains_key(c));
        for c in &self.clusters {
            if !holders.contains_key(&c.name) {
                self.free_since.entry(c.name.clone()).or_insert(now);
            }
        }
        let orphaned: BTreeSet<String> = self
            .free_since
            .iter()
            .filter(|(_, since)| since.elapsed() > self.duration)
            .map(|(c, _)| c.clone())
            .collect();
        let names: Vec<String> = self.clusters.iter().map(|c| c.name.clone()).collect();
        for c in &names {
            let owner = holders.get(c).cloned();
            if self.published.get(c) != Some(&owner) {
                let owned = owner.as_deref() == Some(self.identity.as_str());
                self.shared
                    .status
                    .cluster(c, |s| set_owner(s, owner.clone(), owned));
                self.published.insert(c.clone(), owner);
            }
        }
        if !taking {
            return;
        }
        let duration = self.duration;
        self.given_up.retain(|_, at| at.elapsed() < duration);
        let mut decision = balance::decide(&View {
            me: &self.identity,
            clusters: &names,
            live: &live,
            holders: &holders,
            orphaned: &orphaned,
        });
        decision
            .take
            .retain(|c| !self.given_up.contains_key(c) || orphaned.contains(c));
        if !decision.take.is_empty() {
            let taken = self.claim_all(&decision.take, &by_name).await;
            for (cluster, round) in taken {
                if round == Some(Round::Leading) {
                    tracing::info!(
                        cluster = cluster.as_str(),
                        replicas = live.len(),
                        "fleet: cluster taken"
                    );
                    self.hold(&cluster, started);
                }
            }
        }
        for cluster in decision.release {
            let Some(o) = self.owned.get_mut(&cluster).filter(|o| !o.releasing) else {
                continue;
            };
            tracing::info!(
                cluster = cluster.as_str(),
                replicas = live.len(),
                "fleet: giving the cluster up for balance"
            );
            o.releasing = true;
            o.writing.send_replace(false);
            o.stop.cancel();
        }
        // Released once their worker stopped: it cannot write any more.
        let done: Vec<String> = self
            .owned
            .iter()
            .filter(|(_, o)| o.releasing && o.task.is_finished())
            .map(|(c, _)| c.clone())
            .collect();
        for cluster in done {
            self.owned.remove(&cluster);
            let lease = lease_name(LeaseKind::Cluster, &cluster);
            leader::release(&self.api, &lease, &self.identity).await;
            self.given_up.insert(cluster.clone(), Instant::now());
            self.owned_changed(&cluster, false);
        }
    }

    /// Runs a claim round on each cluster's Lease, taking it when free (at most
    /// [`RENEWALS_IN_FLIGHT`] at once); `None` for a cluster whose request failed (logged).
    async fn claim_all(
        &mut self,
        clusters: &[String],
        listed: &BTreeMap<String, Lease>,
    ) -> Vec<(String, Option<Round>)> {
        let cluster_labels = labels(LeaseKind::Cluster);
        let jobs: Vec<ClaimJob> = clusters
            .iter()
            .map(|c| {
                let lease = lease_name(LeaseKind::Cluster, c);
                ClaimJob {
                    cluster: c.clone(),
                    current: listed.get(&lease).cloned(),
                    observed: self.observed.remove(&lease).flatten(),
                    annotations: self.annotations(c),
                    lease,
                    round: None,
                }
            })
            .collect();
        let (api, identity, duration) = (&self.api, self.identity.as_str(), self.duration);
        let labels = &cluster_labels;
        let done: Vec<ClaimJob> = futures::stream::iter(jobs)
            .map(|mut job| async move {
                let claim = Claim {
                    identity,
                    duration,
                    acquire: true,
                    labels,
                    annotations: &job.annotations,
                };
                let current = job.current.take();
                job.round =
                    match leader::claim_round(api, &job.lease, current, &claim, &mut job.observed).await {
                        Ok(r) => Some(r),
                        Err(e) => {
                            tracing::warn!(
                                cluster = job.cluster.as_str(),
                                lease = job.lease.as_str(),
                                "fleet: Lease: {e}"
                            );
                            None
                        }
                    };
                job
            })
            .buffer_unordered(RENEWALS_IN_FLIGHT)
            .collect()
            .await;
        done.into_iter()
            .map(|job| {
                self.observed.insert(job.lease, job.observed);
                (job.cluster, job.round)
            })
            .collect()
    }

    /// What the owner writes into the cluster's Lease: the cluster, its applied revision and health.
    fn annotations(&self, cluster: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::from([(CLUSTER_ANNOTATION.to_string(), cluster.to_string())]);
        if !self.owned.contains_key(cluster) {
            return out;
        }
        let (revision, health) = self
            .shared
            .status
            .read_cluster(cluster, |c| {
                let health = if c.suspended {
                    "suspended".to_string()
                } else if c.synced {
                    "synced".to_string()
                } else {
                    c.last_result
                        .as_ref()
                        .map_or_else(|| "pending".to_string(), |r| r.result.clone())
                };
                (c.applied_revision.clone(), health)
            })
            .unwrap_or((None, "pending".to_string()));
        if let Some(revision) = revision {
            out.insert(REVISION_ANNOTATION.to_string(), revision);
        }
        out.insert(HEALTH_ANNOTATION.to_string(), health);
        out
    }

    /// The Lease of `cluster` was renewed or taken at `at`: start its worker if it has none.
    fn hold(&mut self, cluster: &str, at: Instant) {
        if let Some(o) = self.owned.get_mut(cluster) {
            o.renewed = at;
            return;
        }
        let Some(cfg) = self.clusters.iter().find(|c| c.name == cluster).cloned() else {
            return;
        };
        let (writing, rx) = watch::channel(true);
        let stop = self.shutdown.child_token();
        let task = tokio::spawn(Worker::run(
            cfg,
            self.shared.clone(),
            self.latest.clone(),
            rx,
            stop.clone(),
        ));
        self.owned.insert(
            cluster.to_string(),
            Owned {
                writing,
                stop,
                task,
                renewed: at,
                releasing: false,
            },
        );
        self.owned_changed(cluster, true);
    }

    /// `cluster` is no longer this replica's: stop writing at once, stop its worker.
    fn lose(&mut self, cluster: &str, why: &str) {
        if let Some(o) = self.owned.remove(cluster) {
            tracing::warn!(
                cluster,
                "fleet: cluster lost ({why}); this replica stops writing it"
            );
            o.writing.send_replace(false);
            o.stop.cancel();
            self.owned_changed(cluster, false);
        }
    }

    fn owned_changed(&mut self, cluster: &str, owned: bool) {
        self.shared.metrics.cluster_owned(cluster, owned);
        let owner = owned.then(|| self.identity.clone());
        self.shared
            .status
            .cluster(cluster, |s| set_owner(s, owner.clone(), owned));
        self.published.insert(cluster.to_string(), owner);
    }

    /// Stops writing every cluster whose Lease was not renewed within the renew deadline.
    fn enforce_deadlines(&mut self, deadline: Duration) {
        let late: Vec<String> = self
            .owned
            .iter()
            .filter(|(_, o)| !leader::still_leading(&mut Some(o.renewed), deadline))
            .map(|(c, _)| c.clone())
            .collect();
        for cluster in late {
            self.lose(&cluster, "not renewed within the renew deadline");
        }
    }

    /// Releases every cluster Lease this replica holds (shutdown): the others take over at their
    /// next round. Its replica Lease is deleted (pod names change at every rollout: released
    /// ones would pile up); a killed replica leaves its own, expired and ignored.
    async fn release_all(&mut self) {
        for o in self.owned.values() {
            o.writing.send_replace(false);
            o.stop.cancel();
        }
        let leases: Vec<String> = self
            .owned
            .keys()
            .map(|c| lease_name(LeaseKind::Cluster, c))
            .collect();
        let (api, identity) = (&self.api, self.identity.as_str());
        futures::stream::iter(leases)
            .for_each_concurrent(RENEWALS_IN_FLIGHT, |lease| async move {
                leader::release(api, &lease, identity).await;
            })
            .await;
        let replica = lease_name(LeaseKind::Replica, identity);
        if let Ok(Some(lease)) = api.get_opt(&replica).await
            && lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(identity)
        {
            // Only the version this replica wrote: a newer holder's Lease stays.
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: lease.metadata.resource_version.clone(),
                    uid: None,
                }),
                ..DeleteParams::default()
            };
            if let Err(e) = api.delete(&replica, &params).await {
                tracing::warn!(
                    lease = replica.as_str(),
                    "fleet: cannot delete this replica's Lease: {e}"
                );
            }
        }
        let clusters: Vec<String> = self.owned.keys().cloned().collect();
        for c in clusters {
            self.owned.remove(&c);
            self.owned_changed(&c, false);
        }
    }
}

fn kind(lease: &Lease) -> Option<LeaseKind> {
    match lease.metadata.labels.as_ref()?.get(KIND_LABEL)?.as_str() {
        "cluster" => Some(LeaseKind::Cluster),
        "replica" => Some(LeaseKind::Replica),
        _ => None,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
