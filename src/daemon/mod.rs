//! `kgitops run`: the reconciler daemon. It follows a git branch (or a local working tree), renders
//! every configured cluster at each new revision, applies it with the apply engine, watches the
//! applied objects for drift and heals or reports it, and says what it did: logs, Kubernetes Events,
//! Prometheus metrics, deduplicated alerts and a status page.
//!
//! The parts, each in its own module:
//!
//! - [`config`]: the configuration file;
//! - [`revisions`]: the git mirror or local tree -> the newest [`revisions::Revision`], paced by
//!   [`pacing`];
//! - [`worker`]: one loop per cluster: render, apply, drift, retry;
//! - [`drift`]: kube-runtime watchers over each cluster's ApplySet members;
//! - [`verify`]: `source.verify`, only commits signed by trusted keys are applied;
//! - [`leader`]: Lease-based leader election (only the leader writes);
//! - [`fleet`]: sharding, a Lease per cluster: each replica reconciles the clusters it owns;
//! - [`http`], [`webhook`], [`deliveries`], [`status`], [`metrics`], [`alerts`],
//!   [`commit_status`]: what the daemon serves and sends.
//!
//! Shutdown (SIGTERM): the token is cancelled; the HTTP servers stop accepting and close every
//! connection within [`http::DRAIN`], a fetch in flight is cancelled, an apply in flight gets
//! [`SHUTDOWN_GRACE`] to finish and is abandoned after that (every apply step is idempotent: the
//! next run converges), the Lease is released. All of it within [`SHUTDOWN_LIMIT`].

pub mod alerts;
pub mod commit_status;
pub mod config;
pub mod decryption;
pub mod deliveries;
pub mod drift;
pub mod fleet;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod pacing;
pub mod revisions;
pub mod status;
pub mod verify;
pub mod webhook;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use config::Config;
use status::{ClusterStatus, Status, StatusReport};

/// How long an apply in progress may go on after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(6);
/// How long shutdown waits for all tasks in all (within SIGTERM's usual 10 s).
pub const SHUTDOWN_LIMIT: Duration = Duration::from_secs(9);
/// Upper bound of the retry backoff.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Delay before retry number `failures` (1, 2, 4, ... seconds, at most [`MAX_BACKOFF`]).
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(6);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

/// What every part of the daemon shares.
#[derive(Debug)]
pub struct Shared {
    pub status: Status,
    pub metrics: metrics::Metrics,
    pub alerter: alerts::Alerter,
    /// Commit statuses on the git host (does nothing without `commit_status`).
    pub commit_status: commit_status::Reporter,
    /// This replica's name (Lease holder, Event reporter instance).
    pub identity: String,
    /// Held while a cluster plans or applies: one at a time (see [`worker`]).
    pub reconcile_slots: tokio::sync::Semaphore,
}

/// The daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{key} {addr}: cannot listen: {source}")]
    Listen {
        key: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("leader_election: cluster '{cluster}': {message}")]
    Leader { cluster: String, message: String },
    #[error("sharding: cluster '{cluster}': {message}")]
    Sharding { cluster: String, message: String },
    /// A file the configuration names is missing, unreadable or (a secret) empty.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
}

/// A daemon whose HTTP servers are bound, ready to [`Daemon::run`].
pub struct Daemon {
    config: Config,
    listener: TcpListener,
    status_listener: TcpListener,
}

async fn listen(key: &'static str, addr: SocketAddr) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Listen { key, addr, source })
}

impl Daemon {
    /// Checks every file the configuration names (see [`Config::check_files`]; warnings are
    /// logged), then binds `server.listen` and `server.status_listen` (port 0 picks a free port;
    /// see [`Daemon::local_addr`] and [`Daemon::status_addr`]).
    pub async fn bind(config: Config) -> Result<Daemon, DaemonError> {
        for warning in config.check_files()? {
            tracing::warn!("{warning}");
        }
        let listener = listen("server.listen", config.server.listen).await?;
        let status_listener = listen("server.status_listen", config.server.status_listen).await?;
        Ok(Daemon {
            config,
            listener,
            status_listener,
        })
    }

    /// The address of the public listener (`/webhook`).
    pub fn local_addr(&self) -> SocketAddr {
        http::bound(&self.listener, self.config.server.listen)
    }

    /// The address of the internal listener (`/status`, `/metrics`).
    pub fn status_addr(&self) -> SocketAddr {
        http::bound(&self.status_listener, self.config.server.status_listen)
    }

    /// Runs until `shutdown` is cancelled; returns within [`SHUTDOWN_LIMIT`] after that.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), DaemonError> {
        let (listen_addr, status_addr) = (self.local_addr(), self.status_addr());
        let Daemon {
            config,
            listener,
            status_listener,
        } = self;
        let identity = config
            .sharding
            .as_ref()
            .and_then(|s| s.replica_id.clone())
            .or_else(|| config.leader_election.as_ref().and_then(|l| l.identity.clone()))
            .unwrap_or_else(leader::default_identity);
        let location = match (&config.source.url, &config.source.path) {
            (Some(url), _) => crate::source::remote::masked_url(url),
            (None, Some(path)) => path.display().to_string(),
            (None, None) => String::new(),
        };
        let report = StatusReport {
            source: status::SourceStatus {
                location,
                branch: config.source.url.as_ref().map(|_| config.source.branch.clone()),
                ..status::SourceStatus::default()
            },
            leader: config.leader_election.is_none(),
            clusters: config
                .clusters
                .iter()
                .map(|c| ClusterStatus::new(&c.name, c.drift, c.suspend))
                .collect(),
        };
        let metrics = metrics::Metrics::new();
        let commit_status =
            commit_status::Reporter::start(config.commit_status.as_ref(), metrics.commit_status_outcomes());
        let shared = Arc::new(Shared {
            status: Status::new(report),
            metrics,
            alerter: alerts::Alerter::start(&config.alerts),
            commit_status,
            identity: identity.clone(),
            reconcile_slots: tokio::sync::Semaphore::new(1),
        });
        let mut tasks = JoinSet::new();
        // The workers, drained first at shutdown; then `release` lets the Lease go.
        let mut workers = JoinSet::new();
        let release = CancellationToken::new();

        let (leader_tx, leader_rx) = watch::channel(config.leader_election.is_none());
        shared.metrics.set_leader(*leader_rx.borrow());
        if let Some(le) = &config.leader_election {
            let cluster = le
                .cluster
                .clone()
                .unwrap_or_else(|| config.clusters[0].name.clone());
            let Some(cc) = config.clusters.iter().find(|c| c.name == cluster) else {
                return Err(DaemonError::Leader {
                    cluster,
                    message: "not configured".into(),
                });
            };
            let conn = crate::plan::connect::connect(
                cc.kubeconfig.as_deref(),
                cc.context.as_deref(),
                &crate::plan::client::ClientOptions::with_concurrency(1),
            )
            .await
            .map_err(|e| DaemonError::Leader {
                cluster: cluster.clone(),
                message: e.to_string(),
            })?;
            tasks.spawn(leader::run(
                conn.client().clone(),
                le.clone(),
                identity.clone(),
                leader_tx,
                release.clone(),
            ));
            let mut rx = leader_rx.clone();
            let shared = shared.clone();
            tasks.spawn(async move {
                while rx.changed().await.is_ok() {
                    let leading = *rx.borrow_and_update();
                    shared.status.set_leader(leading);
                    shared.metrics.set_leader(leading);
                }
            });
        }

        let trigger = Arc::new(Notify::new());
        let (rev_tx, rev_rx) = watch::channel(None);
        {
            let (config, shared, trigger, token) =
                (config.clone(), shared.clone(), trigger.clone(), shutdown.clone());
            tasks.spawn(async move { revisions::follow(&config, shared, trigger, rev_tx, token).await });
        }
        if let Some(sharding) = &config.sharding {
            // Workers come and go with the clusters' Leases; the fleet task stops its own at
            // shutdown (it renews their Leases meanwhile) and then releases the Leases.
            let Some(cc) = sharding.lease_cluster(&config.clusters) else {
                return Err(DaemonError::Sharding {
                    cluster: sharding.cluster.clone().unwrap_or_default(),
                    message: "not configured".into(),
                });
            };
            let conn = crate::plan::connect::connect(
                cc.kubeconfig.as_deref(),
                cc.context.as_deref(),
                &crate::plan::client::ClientOptions::with_concurrency(16),
            )
            .await
            .map_err(|e| DaemonError::Sharding {
                cluster: cc.name.clone(),
                message: e.to_string(),
            })?;
            tasks.spawn(fleet::shard::run(
                conn.client().clone(),
                sharding.clone(),
                identity.clone(),
                config.clusters.clone(),
                shared.clone(),
                rev_rx.clone(),
                shutdown.clone(),
            ));
        }
        for cluster in config.clusters.iter().filter(|_| config.sharding.is_none()) {
            workers.spawn(worker::Worker::run(
                cluster.clone(),
                shared.clone(),
                rev_rx.clone(),
                leader_rx.clone(),
                shutdown.clone(),
            ));
        }

        let state = Arc::new(http::AppState {
            shared: shared.clone(),
            trigger,
            webhook_secret_file: config.server.webhook_secret_file.clone(),
            branch: config.source.branch.clone(),
            bodies: tokio::sync::Semaphore::new(http::WEBHOOK_BODIES),
            deliveries: deliveries::Deliveries::default(),
        });
        let limits = http::Limits {
            header_read_timeout: config.server.header_read_timeout.0,
            request_timeout: config.server.request_timeout.0,
            max_connections: config.server.max_connections,
        };
        tasks.spawn(http::serve(
            listener,
            http::public_router(state.clone()),
            limits,
            shutdown.clone(),
        ));
        tasks.spawn(http::serve(
            status_listener,
            http::status_router(state),
            limits,
            shutdown.clone(),
        ));
        tracing::info!(
            listen = %listen_addr,
            status_listen = %status_addr,
            clusters = config.clusters.len(),
            identity = identity.as_str(),
            "kgitops daemon started"
        );
        shutdown.cancelled().await;
        let deadline = tokio::time::Instant::now() + SHUTDOWN_LIMIT;
        let _ =
            tokio::time::timeout_at(deadline, async { while workers.join_next().await.is_some() {} }).await;
        workers.abort_all();
        release.cancel();
        let drained =
            tokio::time::timeout_at(deadline, async { while tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                "shutdown: tasks still running after {}s, abandoned",
                SHUTDOWN_LIMIT.as_secs()
            );
            tasks.abort_all();
        }
        tracing::info!("kgitops daemon stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
