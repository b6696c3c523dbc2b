//! Leader election with a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it.
//!
//! Times are compared only with this process's own clock, never with another replica's
//! `renewTime` (clocks of different nodes disagree):
//! - a standby records the instant it last saw the Lease's spec change; the holder is gone only
//!   when the spec has not changed for `leaseDurationSeconds` since then (a live holder changes
//!   `renewTime` at every renewal, whatever its clock says);
//! - the leader renews every [`retry_period`] and steps down (publishes `false`, which cancels
//!   the apply in flight, see [`super::worker`]) when it has not renewed within the
//!   [`renew_deadline`], two thirds of the lease duration, measured from the start of its last
//!   successful renewal. A standby waits the whole lease duration after it last saw a change, so
//!   the old leader has stopped writing before anyone else starts.
//!
//! Every write is a replace with the read `resourceVersion`, so two replicas cannot both win. Only
//! the leader applies; standbys fetch, render and serve status. On shutdown the leader releases
//! the Lease (empty holder) so a standby takes over at once instead of after the lease duration.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::LeaderConfig;

/// How long the leader may go without a successful renewal before it stops writing.
pub fn renew_deadline(lease_duration: Duration) -> Duration {
    lease_duration * 2 / 3
}

/// How often the Lease is read (standby) or renewed (leader).
pub fn retry_period(lease_duration: Duration) -> Duration {
    lease_duration / 5
}

/// The Lease spec as last seen, and when this process saw it change. Shared with
/// [`super::fleet`], whose cluster and replica Leases follow the same rules.
#[derive(Debug)]
pub(super) struct Observed {
    spec: Option<LeaseSpec>,
    at: Instant,
}

impl Observed {
    /// Records `spec` as seen now; the instant moves only when the spec changed.
    pub(super) fn see(observed: &mut Option<Observed>, spec: &Option<LeaseSpec>, now: Instant) {
        match observed {
            Some(o) if &o.spec == spec => {}
            _ => {
                *observed = Some(Observed {
                    spec: spec.clone(),
                    at: now,
                })
            }
        }
    }

    /// Whether the holder let the Lease run out: its spec has not changed for its duration.
    pub(super) fn expired(&self, now: Instant) -> bool {
        let secs = self
            .spec
            .as_ref()
            .and_then(|s| s.lease_duration_seconds)
            .unwrap_or(0);
        now.duration_since(self.at) > Duration::from_secs(u64::try_from(secs).unwrap_or(0))
    }

    /// The live holder as this process sees it: none when the Lease is released or expired.
    pub(super) fn holder(&self, now: Instant) -> Option<&str> {
        let holder = self
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            .filter(|h| !h.is_empty())?;
        (!self.expired(now)).then_some(holder)
    }
}

/// Outcome of one election round.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Round {
    Leading,
    Following(String),
    /// Free or expired, and the claim did not ask to take it.
    Free,
}

/// What one round asks of a Lease.
pub(super) struct Claim<'a> {
    pub identity: &'a str,
    pub duration: Duration,
    /// Take the Lease when it is free or expired (the leader always does; a fleet replica only
    /// while under its share). A Lease this identity holds is renewed either way.
    pub acquire: bool,
    /// Labels of a Lease this round creates.
    pub labels: &'a BTreeMap<String, String>,
    /// Annotations written with every renewal (the fleet's applied revision and health).
    pub annotations: &'a BTreeMap<String, String>,
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

async fn round(
    api: &Api<Lease>,
    name: &str,
    identity: &str,
    duration: Duration,
    observed: &mut Option<Observed>,
) -> Result<Round, kube::Error> {
    let current = api.get_opt(name).await?;
    let none = BTreeMap::new();
    let claim = Claim {
        identity,
        duration,
        acquire: true,
        labels: &none,
        annotations: &none,
    };
    claim_round(api, name, current, &claim, observed).await
}

/// One round on the Lease `name` as last read (`current`, `None` when missing): renews it when
/// `claim.identity` holds it, takes it when it is free or expired (by `observed`, this process's
/// own observation) and `claim.acquire` says so, else reports who holds it. Every write is a
/// create or a replace carrying the read `resourceVersion`: of two replicas only one can win, the
/// other gets 409 and follows.
pub(super) async fn claim_round(
    api: &Api<Lease>,
    name: &str,
    current: Option<Lease>,
    claim: &Claim<'_>,
    observed: &mut Option<Observed>,
) -> Result<Round, kube::Error> {
    let now = jiff::Timestamp::now();
    let local = Instant::now();
    let identity = claim.identity;
    let seconds = i32::try_from(claim.duration.as_secs()).unwrap_or(i32::MAX);
    match current {
        None => {
            if !claim.acquire {
                return Ok(Round::Free);
            }
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    labels: (!claim.labels.is_empty()).then(|| claim.labels.clone()),
                    annotations: (!claim.annotations.is_empty()).then(|| claim.annotations.clone()),
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
                Ok(written) => {
                    Observed::see(observed, &written.spec, local);
                    Ok(Round::Leading)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Round::Following("another replica".into())),
                Err(e) => Err(e),
            }
        }
        Some(mut lease) => {
            Observed::see(observed, &lease.spec, local);
            let holder = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .filter(|h| !h.is_empty());
            let mine = holder.as_deref() == Some(identity);
            let expired = observed.as_ref().is_none_or(|o| o.expired(local));
            if !mine && holder.is_some() && !expired {
                return Ok(Round::Following(holder.unwrap_or_default()));
            }
            if !mine && !claim.acquire {
                return Ok(Round::Free);
            }
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if !mine {
                spec.holder_identity = Some(identity.to_string());
                spec.acquire_time = Some(MicroTime(now));
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
            spec.renew_time = Some(MicroTime(now));
            spec.lease_duration_seconds = Some(seconds);
            if !claim.annotations.is_empty() {
                let annotations = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
                annotations.extend(claim.annotations.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            match api.replace(name, &PostParams::default(), &lease).await {
                Ok(written) => {
                    Observed::see(observed, &written.spec, local);
                    Ok(Round::Leading)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Round::Following("another replica".into())),
                Err(e) => Err(e),
            }
        }
    }
}

/// Lets the Lease `name` go (empty holder) if `identity` holds it, so the next holder need not wait
/// for it to expire.
pub(super) async fn release(api: &Api<Lease>, name: &str, identity: &str) {
    if let Ok(Some(mut lease)) = api.get_opt(name).await
        && let Some(spec) = lease.spec.as_mut()
        && spec.holder_identity.as_deref() == Some(identity)
    {
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        if let Err(e) = api.replace(name, &PostParams::default(), &lease).await {
            tracing::warn!("Lease {name}: cannot release it: {e}");
        }
    }
}

/// Runs elections until `stop`, publishing whether this replica leads on `tx`, then releases the
/// Lease if it holds it. The daemon cancels `stop` only after its workers have stopped, so the
/// Lease is held (and renewed) while an apply finishes during shutdown.
pub async fn run(
    client: kube::Client,
    config: LeaderConfig,
    identity: String,
    tx: watch::Sender<bool>,
    stop: CancellationToken,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let duration = config.lease_duration.0;
    let (deadline, period) = (renew_deadline(duration), retry_period(duration));
    let mut observed: Option<Observed> = None;
    // Start of the last successful renewal, while leading.
    let mut renewed: Option<Instant> = None;
    let mut following: Option<String> = None;
    loop {
        let started = Instant::now();
        // A leader's round may take only what is left of its renew deadline; a hung request must
        // not keep it writing past it.
        let limit = renewed.map_or(duration, |r| (r + deadline).saturating_duration_since(started));
        let outcome = tokio::time::timeout(
            limit,
            round(&api, &config.name, &identity, duration, &mut observed),
        )
        .await;
        let leading = match outcome {
            Ok(Ok(Round::Leading)) => {
                renewed = Some(started);
                following = None;
                true
            }
            // Not asked for: a leader's claim always takes a free Lease.
            Ok(Ok(Round::Free)) => {
                renewed = None;
                false
            }
            Ok(Ok(Round::Following(holder))) => {
                if following.as_deref() != Some(holder.as_str()) {
                    tracing::info!(
                        holder = holder.as_str(),
                        "standby: another replica holds the leader Lease"
                    );
                    following = Some(holder);
                }
                renewed = None;
                false
            }
            Ok(Err(e)) => {
                tracing::warn!("leader election: {}/{}: {e}", config.namespace, config.name);
                still_leading(&mut renewed, deadline)
            }
            Err(_) => {
                tracing::warn!(
                    "leader election: {}/{}: no answer within the renew deadline",
                    config.namespace,
                    config.name
                );
                still_leading(&mut renewed, deadline)
            }
        };
        publish(&tx, &identity, leading);
        // The leader wakes at its renew deadline at the latest, even when the next round is late.
        let step_down = renewed.map(|r| r + deadline);
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = sleep_until(step_down) => {
                if !still_leading(&mut renewed, deadline) {
                    publish(&tx, &identity, false);
                }
            }
            _ = stop.cancelled() => {
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

/// Whether a leader whose last renewal started at `renewed` may still write; forgets it if not.
pub(super) fn still_leading(renewed: &mut Option<Instant>, deadline: Duration) -> bool {
    let leading = renewed.is_some_and(|r| r.elapsed() < deadline);
    if !leading {
        *renewed = None;
    }
    leading
}

fn publish(tx: &watch::Sender<bool>, identity: &str, leading: bool) {
    tx.send_if_modified(|current| {
        if *current != leading {
            tracing::info!(identity, leading, "leadership changed");
            *current = leading;
            true
        } else {
            false
        }
    });
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, renew_secs_ago: i64) -> Option<LeaseSpec> {
        Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(3),
            renew_time: Some(MicroTime(
                jiff::Timestamp::now() - jiff::SignedDuration::from_secs(renew_secs_ago),
            )),
            ..LeaseSpec::default()
        })
    }

    #[test]
    fn expiry_counts_from_when_this_process_saw_the_lease_change_not_from_its_renew_time() {
        let t0 = Instant::now();
        let mut observed = None;
        // A holder whose clock is an hour behind: its renewTime is long past by our clock.
        let first = spec("skewed", 3600);
        Observed::see(&mut observed, &first, t0);
        assert!(!observed.as_ref().unwrap().expired(t0 + Duration::from_secs(2)));
        // It renews (the spec changes): the lease runs from this observation on.
        let second = spec("skewed", 3599);
        Observed::see(&mut observed, &second, t0 + Duration::from_secs(2));
        assert!(!observed.as_ref().unwrap().expired(t0 + Duration::from_secs(4)));
        // The same spec seen again does not move the instant.
        Observed::see(&mut observed, &second, t0 + Duration::from_secs(4));
        assert!(observed.as_ref().unwrap().expired(t0 + Duration::from_secs(6)));
    }

    #[test]
    fn the_renew_deadline_ends_before_a_standby_may_take_over() {
        for secs in [2, 3, 15, 60] {
            let lease = Duration::from_secs(secs);
            assert!(retry_period(lease) < renew_deadline(lease) && renew_deadline(lease) < lease);
        }
        let mut renewed = Some(Instant::now() - Duration::from_secs(3));
        assert!(!still_leading(&mut renewed, Duration::from_secs(2)));
        assert!(renewed.is_none());
        let mut renewed = Some(Instant::now());
        assert!(still_leading(&mut renewed, Duration::from_secs(2)));
    }
}
