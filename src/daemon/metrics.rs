//! Prometheus metrics of the daemon (`GET /metrics`, OpenMetrics text):
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `kgitops_reconcile_total` | cluster, result | reconciles by result: applied, unchanged, healed, failed, waiting, refused (a head refused by `source.verify`) |
//! | `kgitops_reconcile_duration_seconds` | cluster | render + plan + apply time |
//! | `kgitops_drift_objects` | cluster | objects that differ from git live now |
//! | `kgitops_gate_waiting` | cluster | 1 while the newest revision waits for a gate on live state (nothing of it applied), else 0 |
//! | `kgitops_heals_total` | cluster | drift heals applied |
//! | `kgitops_applied_revision_info` | cluster, revision | 1 for the revision live in the cluster |
//! | `kgitops_managed_objects` | cluster | objects in the cluster's render |
//! | `kgitops_fetch_total` | result | attempts to read the remote: ok (fetched), unchanged (the probe saw the branch where the mirror has it; nothing fetched), throttled (HTTP 429), down (5xx, connection failures), error (anything else) |
//! | `kgitops_source_state` | state | 1 for the git host's current state (ok, throttled, down), 0 for the others |
//! | `kgitops_source_state_since_seconds` | | Unix time when the current source state began |
//! | `kgitops_webhook_requests_total` | result | `/webhook` calls: accepted, duplicate (a delivery id seen before), ignored, unauthorized, bad_request |
//! | `kgitops_leader` | | 1 while this replica leads |
//! | `kgitops_not_in_effect` | cluster, reason | parts of the live Strimzi specs the operator accepted but did not carry out, by Strimzi's reason (0 once gone) |
//! | `kgitops_strimzi_warnings` | cluster, reason | parts of the live Strimzi specs in effect that Strimzi warns about, by reason (0 once gone) |
//! | `kgitops_strimzi_objects` | cluster, state | Strimzi objects of the render by health state (ready, progressing, not-ready, refused, paused, missing) as of the last plan |
//! | `kgitops_commit_verifications_total` | result, reason | new heads judged by `source.verify`: trusted (reason empty) or refused, by reason (unsigned, unknown-key, bad-signature, expired-key, revoked-key, wrong-namespace, ...) |
//! | `kgitops_untrusted_revision` | | 1 while the newest head is refused by `source.verify` (the clusters keep their last good revision), else 0 |
//! | `kgitops_apiserver_answers_total` | cluster, result | busy answers of the cluster's apiserver: throttled (429), unavailable (503/504); each was retried with backoff |
//! | `kgitops_commit_status_total` | result | commit statuses on the git host: sent, failed (refused, or still failing after the retries), dropped (replaced by a newer state of the same commit and cluster before it was sent) |

use std::sync::{Arc, Mutex};

use crate::plan::client::ApiStats;
use crate::plan::in_effect::{Effect, NotInEffect};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    cluster: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    cluster: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabels {
    cluster: String,
    state: String,
}

/// The values of `kgitops_strimzi_objects`' state label.
pub const HEALTH_STATES: [&str; 6] = [
    "ready",
    "progressing",
    "not-ready",
    "refused",
    "paused",
    "missing",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevisionLabels {
    cluster: String,
    revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerificationLabels {
    result: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

/// The values of `kgitops_source_state`'s label.
pub const SOURCE_STATES: [&str; 3] = ["ok", "throttled", "down"];

type HistogramFamily = Family<ClusterLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 10 ms .. ~80 s.
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

/// The daemon's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_duration: HistogramFamily,
    drift_objects: Family<ClusterLabels, Gauge>,
    gate_waiting: Family<ClusterLabels, Gauge>,
    heals_total: Family<ClusterLabels, Counter>,
    applied_revision: Family<RevisionLabels, Gauge>,
    managed_objects: Family<ClusterLabels, Gauge>,
    fetch_total: Family<OutcomeLabels, Counter>,
    webhook_total: Family<OutcomeLabels, Counter>,
    source_state: Family<StateLabels, Gauge>,
    source_state_since: Gauge,
    leader: Gauge,
    cluster_owned: Family<ClusterLabels, Gauge>,
    /// The revision label currently set per cluster, to remove it when it changes.
    revisions: Mutex<Vec<RevisionLabels>>,
    apiserver_answers: Family<ResultLabels, Counter>,
    verifications: Family<VerificationLabels, Counter>,
    untrusted: Gauge,
    not_in_effect: Family<ReasonLabels, Gauge>,
    strimzi_objects: Family<HealthLabels, Gauge>,
    strimzi_warnings: Family<ReasonLabels, Gauge>,
    /// Every (effect, labels) series of the two families above ever set, to set to 0 when gone.
    effect_series: Mutex<Vec<(Effect, ReasonLabels)>>,
    /// Each cluster's client counts, read at every scrape ([`Metrics::encode`]), with the values
    /// already added to `apiserver_answers`.
    api_stats: Mutex<Vec<ApiSource>>,
    commit_status: Family<OutcomeLabels, Counter>,
}

struct ApiSource {
    cluster: String,
    stats: Arc<ApiStats>,
    throttled: u64,
    unavailable: u64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let reconcile_total = Family::<ResultLabels, Counter>::default();
        registry.register(
            "kgitops_reconcile",
            "Reconciles by cluster and result",
            reconcile_total.clone(),
        );
        let reconcile_duration = HistogramFamily::new_with_constructor(duration_histogram);
        registry.register(
            "kgitops_reconcile_duration_seconds",
            "Time to render, plan and apply one cluster",
            reconcile_duration.clone(),
        );
        let drift_objects = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "kgitops_drift_objects",
            "Objects that differ from git live",
            drift_objects.clone(),
        );
        let gate_waiting = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "kgitops_gate_waiting",
            "1 while the newest revision waits for a gate on live state",
            gate_waiting.clone(),
        );
        let heals_total = Family::<ClusterLabels, Counter>::default();
        registry.register("kgitops_heals", "Drift heals applied", heals_total.clone());
        let applied_revision = Family::<RevisionLabels, Gauge>::default();
        registry.register(
            "kgitops_applied_revision_info",
            "The revision live in each cluster",
            applied_revision.clone(),
        );
        let managed_objects = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "kgitops_managed_objects",
            "Objects in the cluster's render",
            managed_objects.clone(),
        );
        let fetch_total = Family::<OutcomeLabels, Counter>::default();
        registry.register("kgitops_fetch", "Git fetches by result", fetch_total.clone());
        let webhook_total = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "kgitops_webhook_requests",
            "Webhook requests by result",
            webhook_total.clone(),
        );
        let source_state = Family::<StateLabels, Gauge>::default();
        registry.register(
            "kgitops_source_state",
            "1 for the git host's current state: ok, throttled or down",
            source_state.clone(),
        );
        let source_state_since = Gauge::default();
        registry.register(
            "kgitops_source_state_since_seconds",
            "Unix time when the current source state began",
            source_state_since.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "kgitops_leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        let cluster_owned = Family::<ClusterLabels, Gauge>::default();
        registry.register(
            "kgitops_cluster_owned",
            "1 while this replica reconciles the cluster (with sharding: holds its Lease)",
            cluster_owned.clone(),
        );
        let apiserver_answers = Family::<ResultLabels, Counter>::default();
        registry.register(
            "kgitops_apiserver_answers",
            "Busy answers of a cluster's apiserver (retried with backoff): throttled (429), unavailable (503/504)",
            apiserver_answers.clone(),
        );
        let not_in_effect = Family::<ReasonLabels, Gauge>::default();
        registry.register(
            "kgitops_not_in_effect",
            "Parts of the live Strimzi specs the operator accepted but did not carry out, by reason",
            not_in_effect.clone(),
        );
        let strimzi_warnings = Family::<ReasonLabels, Gauge>::default();
        registry.register(
            "kgitops_strimzi_warnings",
            "Parts of the live Strimzi specs in effect that Strimzi warns about, by reason",
            strimzi_warnings.clone(),
        );
        let strimzi_objects = Family::<HealthLabels, Gauge>::default();
        registry.register(
            "kgitops_strimzi_objects",
            "Strimzi objects of the render by health state, as of the last plan",
            strimzi_objects.clone(),
        );
        let commit_status = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "kgitops_commit_status",
            "Commit statuses on the git host: sent, failed, dropped",
            commit_status.clone(),
        );
        let verifications = Family::<VerificationLabels, Counter>::default();
        registry.register(
            "kgitops_commit_verifications",
            "New heads judged by source.verify, by result (trusted, refused) and reason",
            verifications.clone(),
        );
        let untrusted = Gauge::default();
        registry.register(
            "kgitops_untrusted_revision",
            "1 while the newest head is refused by source.verify",
            untrusted.clone(),
        );
        Metrics {
            commit_status,
            registry,
            apiserver_answers,
            verifications,
            untrusted,
            not_in_effect,
            strimzi_objects,
            strimzi_warnings,
            effect_series: Mutex::new(Vec::new()),
            api_stats: Mutex::new(Vec::new()),
            reconcile_total,
            reconcile_duration,
            drift_objects,
            gate_waiting,
            heals_total,
            applied_revision,
            managed_objects,
            fetch_total,
            webhook_total,
            source_state,
            source_state_since,
            leader,
            cluster_owned,
            revisions: Mutex::new(Vec::new()),
        }
    }

    fn cluster(name: &str) -> ClusterLabels {
        ClusterLabels {
            cluster: name.to_string(),
        }
    }

    /// One reconcile of `cluster` ended with `result` after `seconds`.
    pub fn reconciled(&self, cluster: &str, result: &str, seconds: f64) {
        self.reconcile_total
            .get_or_create(&ResultLabels {
                cluster: cluster.to_string(),
                result: result.to_string(),
            })
            .inc();
        self.reconcile_duration
            .get_or_create(&Metrics::cluster(cluster))
            .observe(seconds);
    }

    pub fn drift(&self, cluster: &str, objects: usize) {
        self.drift_objects
            .get_or_create(&Metrics::cluster(cluster))
            .set(objects as i64);
    }

    /// Whether `cluster`'s newest revision waits for a gate on live state.
    pub fn gate_waiting(&self, cluster: &str, waiting: bool) {
        self.gate_waiting
            .get_or_create(&Metrics::cluster(cluster))
            .set(i64::from(waiting));
    }

    pub fn healed(&self, cluster: &str) {
        self.heals_total.get_or_create(&Metrics::cluster(cluster)).inc();
    }

    pub fn managed(&self, cluster: &str, objects: usize) {
        self.managed_objects
            .get_or_create(&Metrics::cluster(cluster))
            .set(objects as i64);
    }

    /// `revision` is now live in `cluster`: its info series replaces the previous one.
    pub fn applied_revision(&self, cluster: &str, revision: &str) {
        let labels = RevisionLabels {
            cluster: cluster.to_string(),
            revision: revision.to_string(),
        };
        let mut current = self.revisions.lock().unwrap_or_else(|p| p.into_inner());
        current.retain(|old| {
            if old.cluster == cluster && old.revision != revision {
                self.applied_revision.remove(old);
                false
            } else {
                true
            }
        });
        if !current.contains(&labels) {
            current.push(labels.clone());
        }
        self.applied_revision.get_or_create(&labels).set(1);
    }

    /// How many Strimzi objects of `cluster` are in each health state (every state set, 0 included).
    pub fn strimzi_health(&self, cluster: &str, states: &[&str]) {
        for state in HEALTH_STATES {
            let n = states.iter().filter(|s| **s == state).count();
            self.strimzi_objects
                .get_or_create(&HealthLabels {
                    cluster: cluster.to_string(),
                    state: state.to_string(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// What is not in effect in `cluster` now: one series per reason and effect; reasons seen
    /// before and gone now are set to 0.
    pub fn not_in_effect(&self, cluster: &str, list: &[NotInEffect]) {
        let mut series = self.effect_series.lock().unwrap_or_else(|p| p.into_inner());
        let mut counts: Vec<((Effect, ReasonLabels), i64)> = Vec::new();
        for n in list {
            let key = (
                n.effect,
                ReasonLabels {
                    cluster: cluster.to_string(),
                    reason: n.reason.clone(),
                },
            );
            match counts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, c)) => *c += 1,
                None => counts.push((key, 1)),
            }
        }
        for (key, _) in &counts {
            if !series.contains(key) {
                series.push(key.clone());
            }
        }
        for key in series.iter().filter(|(_, l)| l.cluster == cluster) {
            let value = counts.iter().find(|(k, _)| k == key).map_or(0, |(_, c)| *c);
            let family = match key.0 {
                Effect::Ignored => &self.not_in_effect,
                Effect::Warned => &self.strimzi_warnings,
            };
            family.get_or_create(&key.1).set(value);
        }
    }

    /// One attempt to read the remote ended with `result` (see the table above).
    pub fn fetched(&self, result: &str) {
        self.fetch_total
            .get_or_create(&OutcomeLabels {
                result: result.to_string(),
            })
            .inc();
    }

    /// The source is in `state` (one of [`SOURCE_STATES`]) since `since_unix` seconds.
    pub fn source_state(&self, state: &str, since_unix: i64) {
        for s in SOURCE_STATES {
            self.source_state
                .get_or_create(&StateLabels { state: s.to_string() })
                .set(i64::from(s == state));
        }
        self.source_state_since.set(since_unix);
    }

    /// A new head was judged by `source.verify`: `trusted` (empty reason) or `refused`.
    pub fn verified(&self, result: &str, reason: &str) {
        self.verifications
            .get_or_create(&VerificationLabels {
                result: result.to_string(),
                reason: reason.to_string(),
            })
            .inc();
        self.untrusted.set(i64::from(result != "trusted"));
    }

    pub fn webhook(&self, result: &str) {
        self.webhook_total
            .get_or_create(&OutcomeLabels {
                result: result.to_string(),
            })
            .inc();
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Whether this replica reconciles `cluster` (`kgitops_cluster_owned`).
    pub fn cluster_owned(&self, cluster: &str, owned: bool) {
        self.cluster_owned
            .get_or_create(&Self::cluster(cluster))
            .set(i64::from(owned));
    }

    /// Counts `cluster`'s apiserver answers from the counts of its client (replacing a previous
    /// client of the same cluster, whose answers stay counted).
    pub fn watch_apiserver(&self, cluster: &str, stats: Arc<ApiStats>) {
        self.collect_apiserver_answers();
        let mut sources = self.api_stats.lock().unwrap_or_else(|p| p.into_inner());
        sources.retain(|s| s.cluster != cluster);
        sources.push(ApiSource {
            cluster: cluster.to_string(),
            throttled: stats.throttled(),
            unavailable: stats.unavailable(),
            stats,
        });
    }

    fn collect_apiserver_answers(&self) {
        let mut sources = self.api_stats.lock().unwrap_or_else(|p| p.into_inner());
        for source in sources.iter_mut() {
            for (result, seen, now) in [
                ("throttled", &mut source.throttled, source.stats.throttled()),
                ("unavailable", &mut source.unavailable, source.stats.unavailable()),
            ] {
                let counter = self.apiserver_answers.get_or_create(&ResultLabels {
                    cluster: source.cluster.clone(),
                    result: result.to_string(),
                });
                counter.inc_by(now.saturating_sub(*seen));
                *seen = now;
            }
        }
    }

    /// The counters of `kgitops_commit_status_total`, each series present (at 0) from the start.
    pub fn commit_status_outcomes(&self) -> super::commit_status::Outcomes {
        let counter = |result: &str| {
            self.commit_status
                .get_or_create(&OutcomeLabels {
                    result: result.to_string(),
                })
                .clone()
        };
        super::commit_status::Outcomes {
            sent: counter("sent"),
            failed: counter("failed"),
            dropped: counter("dropped"),
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        self.collect_apiserver_answers();
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_documented_series() {
        let m = Metrics::new();
        m.reconciled("dev", "applied", 0.2);
        m.drift("dev", 2);
        m.applied_revision("dev", "aaa");
        m.applied_revision("dev", "bbb");
        m.fetched("ok");
        m.source_state("throttled", 1_800_000_000);
        m.commit_status_outcomes().sent.inc();
        let text = m.encode();
        for expected in [
            "kgitops_reconcile_total{cluster=\"dev\",result=\"applied\"} 1",
            "kgitops_reconcile_duration_seconds_count{cluster=\"dev\"} 1",
            "kgitops_drift_objects{cluster=\"dev\"} 2",
            "kgitops_applied_revision_info{cluster=\"dev\",revision=\"bbb\"} 1",
            "kgitops_fetch_total{result=\"ok\"} 1",
            "kgitops_source_state{state=\"throttled\"} 1",
            "kgitops_source_state{state=\"ok\"} 0",
            "kgitops_source_state_since_seconds 1800000000",
            "kgitops_commit_status_total{result=\"sent\"} 1",
            "kgitops_commit_status_total{result=\"dropped\"} 0",
        ] {
            assert!(text.contains(expected), "{expected} missing in\n{text}");
        }
        assert!(!text.contains("revision=\"aaa\""), "{text}");
    }

    #[test]
    fn not_in_effect_counts_by_reason_and_drops_to_zero() {
        let m = Metrics::new();
        let entry = |reason: &str, effect: Effect| NotInEffect {
            object: "KafkaNodePool/k/brokers".into(),
            field: "spec.replicas".into(),
            effect,
            reason: reason.into(),
            message: "m".into(),
            reported_by: "Kafka/k/main".into(),
        };
        m.not_in_effect(
            "dev",
            &[
                entry("ScaleDownPreventionCheck", Effect::Ignored),
                entry("KafkaStorage", Effect::Ignored),
                entry("KafkaStorage", Effect::Ignored),
                entry("KafkaMinInsyncReplicas", Effect::Warned),
            ],
        );
        let text = m.encode();
        for expected in [
            "kgitops_not_in_effect{cluster=\"dev\",reason=\"KafkaStorage\"} 2",
            "kgitops_not_in_effect{cluster=\"dev\",reason=\"ScaleDownPreventionCheck\"} 1",
            "kgitops_strimzi_warnings{cluster=\"dev\",reason=\"KafkaMinInsyncReplicas\"} 1",
        ] {
            assert!(text.contains(expected), "{expected} missing in\n{text}");
        }
        m.not_in_effect("dev", &[entry("KafkaStorage", Effect::Ignored)]);
        let text = m.encode();
        assert!(
            text.contains("kgitops_not_in_effect{cluster=\"dev\",reason=\"ScaleDownPreventionCheck\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("kgitops_not_in_effect{cluster=\"dev\",reason=\"KafkaStorage\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn apiserver_answers_are_read_from_the_client_at_each_scrape() {
        let m = Metrics::new();
        let stats = Arc::new(ApiStats::default());
        m.watch_apiserver("dev", stats.clone());
        stats.record(http::StatusCode::TOO_MANY_REQUESTS);
        stats.record(http::StatusCode::TOO_MANY_REQUESTS);
        stats.record(http::StatusCode::SERVICE_UNAVAILABLE);
        let text = m.encode();
        assert!(
            text.contains("kgitops_apiserver_answers_total{cluster=\"dev\",result=\"throttled\"} 2"),
            "{text}"
        );
        stats.record(http::StatusCode::TOO_MANY_REQUESTS);
        // A reconnect keeps what the old client counted, scraped or not.
        m.watch_apiserver("dev", Arc::new(ApiStats::default()));
        let text = m.encode();
        assert!(
            text.contains("kgitops_apiserver_answers_total{cluster=\"dev\",result=\"throttled\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("kgitops_apiserver_answers_total{cluster=\"dev\",result=\"unavailable\"} 1"),
            "{text}"
        );
    }
}
