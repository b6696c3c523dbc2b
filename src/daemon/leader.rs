//! Leader election with a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it:
//! the holder renews `renewTime` every third of the lease duration; another replica takes the
//! Lease only once `renewTime + leaseDurationSeconds` has passed; every write is a replace with the
//! read `resourceVersion`, so two replicas cannot both win. Only the leader applies; standbys
//! fetch, render and serve status. On shutdown the leader releases the Lease (empty holder) so a
//! standby takes over at once instead of after the lease duration.
//!
//! A leader that cannot renew (apiserver unreachable) steps down when its lease has expired by
//! its own clock: it may no longer be the only one writing.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::LeaderConfig;

/// Outcome of one election round.
#[derive(Debug, PartialEq, Eq)]
enum Round {
    Leading,
    Following(String),
}

/// Who this replica is in the Lease: `$POD_NAME`, else host name and process id.
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "kgitops".into());
    format!("{host}-{}", std::process::id())
}

fn expired(lease: &Lease, now: jiff::Timestamp) -> bool {
    let Some(spec) = &lease.spec else { return true };
    let (Some(renew), Some(secs)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return true;
    };
    renew.0 + jiff::SignedDuration::from_secs(i64::from(secs)) < now
}

async fn round(
    api: &Api<Lease>,
    name: &str,
    identity: &str,
    duration: Duration,
) -> Result<Round, kube::Error> {
    let now = jiff::Timestamp::now();
    let seconds = i32::try_from(duration.as_secs()).unwrap_or(i32::MAX);
    match api.get_opt(name).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(identity.to_string()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Round::Leading),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Round::Following("another replica".into())),
                Err(e) => Err(e),
            }
        }
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
            let mine = holder.as_deref() == Some(identity);
            if !mine && holder.is_some() && !expired(&lease, now) {
                return Ok(Round::Following(holder.unwrap_or_default()));
            }
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if !mine {
                spec.holder_identity = Some(identity.to_string());
                spec.acquire_time = Some(MicroTime(now));
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
            spec.renew_time = Some(MicroTime(now));
            spec.lease_duration_seconds = Some(seconds);
            match api.replace(name, &PostParams::default(), &lease).await {
                Ok(_) => Ok(Round::Leading),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Round::Following("another replica".into())),
                Err(e) => Err(e),
            }
        }
    }
}

async fn release(api: &Api<Lease>, name: &str, identity: &str) {
    if let Ok(Some(mut lease)) = api.get_opt(name).await
        && let Some(spec) = lease.spec.as_mut()
        && spec.holder_identity.as_deref() == Some(identity)
    {
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        if let Err(e) = api.replace(name, &PostParams::default(), &lease).await {
            tracing::warn!("cannot release the leader Lease: {e}");
        }
    }
}

/// Runs elections until `shutdown`, publishing whether this replica leads on `tx`.
pub async fn run(
    client: kube::Client,
    config: LeaderConfig,
    identity: String,
    tx: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let duration = config.lease_duration.0;
    let period = duration / 3;
    let mut last_renewed: Option<Instant> = None;
    let mut following: Option<String> = None;
    loop {
        let leading = match round(&api, &config.name, &identity, duration).await {
            Ok(Round::Leading) => {
                last_renewed = Some(Instant::now());
                true
            }
            Ok(Round::Following(holder)) => {
                if following.as_deref() != Some(holder.as_str()) {
                    tracing::info!(
                        holder = holder.as_str(),
                        "standby: another replica holds the leader Lease"
                    );
                    following = Some(holder);
                }
                last_renewed = None;
                false
            }
            Err(e) => {
                tracing::warn!("leader election: {}/{}: {e}", config.namespace, config.name);
                // Keep leading only while the lease we hold has not run out.
                last_renewed.is_some_and(|t| t.elapsed() < duration)
            }
        };
        if leading {
            following = None;
        }
        tx.send_if_modified(|current| {
            if *current != leading {
                tracing::info!(identity = identity.as_str(), leading, "leadership changed");
                *current = leading;
                true
            } else {
                false
            }
        });
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.cancelled() => {
                if *tx.borrow() {
                    // Bounded: a shutdown must not wait on an unreachable apiserver.
                    let _ = tokio::time::timeout(Duration::from_secs(2), release(&api, &config.name, &identity)).await;
                }
                tx.send_replace(false);
                return;
            }
        }
    }
}
