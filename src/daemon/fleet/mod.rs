//! Sharding: any number of `kgitops run` replicas share the configured clusters, each cluster
//! owned by one replica at a time through a `coordination.k8s.io/v1` Lease per cluster in a
//! namespace of the management cluster (`sharding:` in the configuration; design and failure
//! analysis in docs/fleet.md).
//!
//! This module owns the fleet's vocabulary: the configuration ([`ShardingConfig`]), the Lease
//! names ([`lease_name`], the one function that derives them), the labels and annotations the
//! Leases carry, and reading the whole fleet back from them ([`read`], `kgitops fleet status`).
//! [`balance`] decides which clusters a replica takes or gives up; [`shard`] runs the Leases and
//! one [`super::worker`] per owned cluster. The Lease state machine itself (renewal, expiry by
//! this process's own clock, the renew deadline) is [`super::leader`]'s: one state machine for the
//! leader Lease and the fleet's.

pub mod balance;
pub mod shard;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::{ClusterConfig, ConfigDuration, DEFAULT_LEASE_DURATION};

/// Label on every fleet Lease; its value says which kind ([`LeaseKind`]).
pub const KIND_LABEL: &str = "kgitops.io/fleet-lease";
/// Annotation: the cluster a cluster Lease is for (its name may be shortened, see [`lease_name`]).
pub const CLUSTER_ANNOTATION: &str = "kgitops.io/cluster";
/// Annotation written by the owner at every renewal: the revision live in the cluster.
pub const REVISION_ANNOTATION: &str = "kgitops.io/applied-revision";
/// Annotation written by the owner at every renewal: `synced`, or the last result when not.
pub const HEALTH_ANNOTATION: &str = "kgitops.io/health";
/// Annotation on a replica Lease: the replica's id in full.
pub const REPLICA_ANNOTATION: &str = "kgitops.io/replica";

/// `sharding`: the replicas share the clusters, one owner per cluster (see docs/fleet.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardingConfig {
    /// The namespace of the management cluster that holds the Leases.
    pub namespace: String,
    #[serde(default = "default_lease_duration")]
    pub lease_duration: ConfigDuration,
    /// This replica's name in the Leases (default: `$POD_NAME`, else host name and process id).
    /// Must be unique among the replicas.
    #[serde(default)]
    pub replica_id: Option<String>,
    /// The configured cluster whose API holds the Leases (default: the first).
    #[serde(default)]
    pub cluster: Option<String>,
}

fn default_lease_duration() -> ConfigDuration {
    ConfigDuration(DEFAULT_LEASE_DURATION)
}

/// A `sharding` section that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ShardingConfigError {
    #[error("sharding.lease_duration: must be at least 2s")]
    LeaseDuration,
    #[error("sharding.cluster: '{0}' is not one of clusters")]
    UnknownCluster(String),
    #[error("sharding.replica_id: must not be empty")]
    EmptyReplica,
    #[error("sharding.namespace: must not be empty")]
    EmptyNamespace,
    #[error(
        "sharding and leader_election: set one of them; sharding already gives each cluster a single writer (leader_election is sharding with one shard)"
    )]
    WithLeaderElection,
}

impl ShardingConfig {
    /// Checks the section against the configured clusters; `leader_election` is whether that is set too.
    pub fn check(
        &self,
        clusters: &[ClusterConfig],
        leader_election: bool,
    ) -> Result<(), ShardingConfigError> {
        if leader_election {
            return Err(ShardingConfigError::WithLeaderElection);
        }
        if self.namespace.trim().is_empty() {
            return Err(ShardingConfigError::EmptyNamespace);
        }
        if self.lease_duration.0 < Duration::from_secs(2) {
            return Err(ShardingConfigError::LeaseDuration);
        }
        if self.replica_id.as_deref().is_some_and(|r| r.trim().is_empty()) {
            return Err(ShardingConfigError::EmptyReplica);
        }
        if let Some(name) = &self.cluster
            && !clusters.iter().any(|c| &c.name == name)
        {
            return Err(ShardingConfigError::UnknownCluster(name.clone()));
        }
        Ok(())
    }

    /// The configured cluster whose API holds the Leases.
    pub fn lease_cluster<'a>(&self, clusters: &'a [ClusterConfig]) -> Option<&'a ClusterConfig> {
        match &self.cluster {
            Some(name) => clusters.iter().find(|c| &c.name == name),
            None => clusters.first(),
        }
    }
}

/// What a fleet Lease stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseKind {
    /// Held by the replica that owns the cluster.
    Cluster,
    /// Held by a replica while it lives: how the replicas find each other.
    Replica,
}

impl LeaseKind {
    /// The value of [`KIND_LABEL`].
    pub fn label(self) -> &'static str {
        match self {
            LeaseKind::Cluster => "cluster",
            LeaseKind::Replica => "replica",
        }
    }
}

/// Longest Lease name: a DNS label (what `kubectl` and people can rely on everywhere).
const MAX_NAME: usize = 63;

/// The Lease of cluster or replica `name`: `kgitops-cluster-<name>` / `kgitops-replica-<name>`
/// when that is a valid DNS label, else a lower-cased, shortened form with the first 10 hex
/// digits of the name's SHA-256 appended, so distinct names never share a Lease.
pub fn lease_name(kind: LeaseKind, name: &str) -> String {
    let prefix = format!("kgitops-{}-", kind.label());
    let plain = format!("{prefix}{name}");
    if plain.len() <= MAX_NAME && is_dns_label(&plain) {
        return plain;
    }
    let hash = hex::encode(&Sha256::digest(name.as_bytes())[..5]);
    let mut readable: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .collect();
    readable.truncate(MAX_NAME - prefix.len() - hash.len() - 1);
    let readable = readable.trim_matches('-');
    if readable.is_empty() {
        format!("{prefix}{hash}")
    } else {
        format!("{prefix}{readable}-{hash}")
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// The labels of a fleet Lease of `kind`.
pub fn labels(kind: LeaseKind) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/managed-by".to_string(), "kgitops".to_string()),
        (KIND_LABEL.to_string(), kind.label().to_string()),
    ])
}

/// One cluster of the fleet as its Lease says.
#[derive(Clone, Debug, Serialize)]
pub struct FleetCluster {
    pub cluster: String,
    /// The Lease's holder; `None` when released or never taken.
    pub owner: Option<String>,
    pub applied_revision: Option<String>,
    pub health: Option<String>,
    /// The owner's last renewal (its clock, RFC 3339).
    pub renewed: Option<String>,
    /// Not renewed for longer than its lease duration by this machine's clock: its owner may be
    /// gone (the replicas themselves never compare clocks, see docs/fleet.md).
    pub stale: bool,
}

/// One replica of the fleet as its Lease says.
#[derive(Clone, Debug, Serialize)]
pub struct FleetReplica {
    pub replica: String,
    pub renewed: Option<String>,
    pub stale: bool,
    /// How many clusters it holds.
    pub clusters: usize,
}

/// The whole fleet (`kgitops fleet status`).
#[derive(Clone, Debug, Serialize)]
pub struct FleetStatus {
    pub namespace: String,
    pub replicas: Vec<FleetReplica>,
    pub clusters: Vec<FleetCluster>,
}

/// Whether a Lease renewed at `renewed` for `seconds` has run out by this machine's clock (for
/// people reading the fleet; not used to decide anything).
fn stale(lease: &Lease) -> bool {
    let Some(spec) = &lease.spec else { return true };
    match (&spec.renew_time, spec.lease_duration_seconds) {
        (Some(t), Some(secs)) => {
            t.0 + jiff::SignedDuration::from_secs(i64::from(secs)) < jiff::Timestamp::now()
        }
        _ => true,
    }
}

/// Reads every fleet Lease in `namespace` and lays them out for the configured `clusters`.
pub async fn read(
    client: kube::Client,
    namespace: &str,
    clusters: &[String],
) -> Result<FleetStatus, kube::Error> {
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let leases = api.list(&ListParams::default().labels(KIND_LABEL)).await?.items;
    let by_name: BTreeMap<String, &Lease> = leases
        .iter()
        .filter_map(|l| Some((l.metadata.name.clone()?, l)))
        .collect();
    let holder = |l: &Lease| {
        l.spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .filter(|h| !h.is_empty())
    };
    let annotation = |l: &Lease, key: &str| l.metadata.annotations.as_ref().and_then(|a| a.get(key).cloned());
    let renewed = |l: &Lease| {
        l.spec
            .as_ref()
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0.to_string())
    };
    let rows: Vec<FleetCluster> = clusters
        .iter()
        .map(|name| match by_name.get(&lease_name(LeaseKind::Cluster, name)) {
            Some(l) => FleetCluster {
                cluster: name.clone(),
                owner: holder(l),
                applied_revision: annotation(l, REVISION_ANNOTATION),
                health: annotation(l, HEALTH_ANNOTATION),
                renewed: renewed(l),
                stale: holder(l).is_none() || stale(l),
            },
            None => FleetCluster {
                cluster: name.clone(),
                owner: None,
                applied_revision: None,
                health: None,
                renewed: None,
                stale: true,
            },
        })
        .collect();
    let replicas = leases
        .iter()
        .filter(|l| {
            l.metadata
                .labels
                .as_ref()
                .and_then(|m| m.get(KIND_LABEL))
                .map(String::as_str)
                == Some(LeaseKind::Replica.label())
        })
        .filter_map(|l| {
            let id = holder(l)?;
            Some(FleetReplica {
                clusters: rows
                    .iter()
                    .filter(|c| c.owner.as_deref() == Some(id.as_str()))
                    .count(),
                renewed: renewed(l),
                stale: stale(l),
                replica: id,
            })
        })
        .collect();
    Ok(FleetStatus {
        namespace: namespace.to_string(),
        replicas,
        clusters: rows,
    })
}

/// The fleet as a text table.
pub fn text(status: &FleetStatus) -> String {
    use std::fmt::Write as _;
    let mut out = format!("fleet in namespace {}\n\nreplicas:\n", status.namespace);
    if status.replicas.is_empty() {
        out.push_str("  (none)\n");
    }
    for r in &status.replicas {
        let _ = writeln!(
            out,
            "  {:<30} {:>4} cluster(s)  renewed {}{}",
            r.replica,
            r.clusters,
            r.renewed.as_deref().unwrap_or("-"),
            if r.stale { "  (stale)" } else { "" }
        );
    }
    let _ = writeln!(
        out,
        "\n{:<24} {:<24} {:<14} {:<14} renewed",
        "CLUSTER", "OWNER", "REVISION", "HEALTH"
    );
    for c in &status.clusters {
        let revision = c.applied_revision.as_deref().unwrap_or("-");
        let _ = writeln!(
            out,
            "{:<24} {:<24} {:<14} {:<14} {}{}",
            c.cluster,
            c.owner.as_deref().unwrap_or("-"),
            revision.get(..12).unwrap_or(revision),
            c.health.as_deref().unwrap_or("-"),
            c.renewed.as_deref().unwrap_or("-"),
            if c.stale { "  (stale)" } else { "" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::Config;
    use std::path::Path;

    fn parse(extra: &str) -> Result<Config, String> {
        let text = format!("source: {{path: .}}\nclusters: [{{name: dev}}, {{name: prod}}]\n{extra}");
        Config::parse(&text, Path::new("kgitops.yaml"), Path::new(".")).map_err(|e| e.to_string())
    }

    #[test]
    fn the_sharding_section_is_checked() {
        let config =
            parse("sharding: {namespace: kgitops, lease_duration: 3s, replica_id: r0, cluster: prod}\n")
                .unwrap();
        let sharding = config.sharding.as_ref().unwrap();
        assert_eq!(sharding.lease_duration.0, Duration::from_secs(3));
        assert_eq!(sharding.lease_cluster(&config.clusters).unwrap().name, "prod");
        let defaults = parse("sharding: {namespace: kgitops}\n").unwrap();
        let sharding = defaults.sharding.unwrap();
        assert_eq!(sharding.lease_duration.0, DEFAULT_LEASE_DURATION);
        assert_eq!(sharding.lease_cluster(&defaults.clusters).unwrap().name, "dev");
        for (extra, expected) in [
            ("sharding: {namespace: k, replicas: 3}\n", "replicas"),
            (
                "sharding: {namespace: k, cluster: nope}\n",
                "sharding.cluster: 'nope'",
            ),
            (
                "sharding: {namespace: k, lease_duration: 1s}\n",
                "sharding.lease_duration",
            ),
            (
                "sharding: {namespace: k, replica_id: ''}\n",
                "sharding.replica_id",
            ),
            (
                "sharding: {namespace: k}\nleader_election: {namespace: k}\n",
                "sharding and leader_election",
            ),
        ] {
            let err = parse(extra).unwrap_err();
            assert!(
                err.contains("kgitops.yaml") && err.contains(expected),
                "{extra}: {err}"
            );
        }
    }

    #[test]
    fn lease_names_are_dns_labels_and_distinct() {
        assert_eq!(
            lease_name(LeaseKind::Cluster, "prod-eu"),
            "kgitops-cluster-prod-eu"
        );
        assert_eq!(
            lease_name(LeaseKind::Replica, "kgitops-0"),
            "kgitops-replica-kgitops-0"
        );
        let long = "a-very-long-cluster-name-that-goes-on-and-on-for-a-whole-line-of-text";
        let other = "a-very-long-cluster-name-that-goes-on-and-on-for-a-whole-line-of-texts";
        for name in [long, other, "Prod_EU.1", "__", "-x-"] {
            let lease = lease_name(LeaseKind::Cluster, name);
            assert!(is_dns_label(&lease), "{lease}");
            assert!(lease.len() <= MAX_NAME, "{lease}");
        }
        assert_ne!(
            lease_name(LeaseKind::Cluster, long),
            lease_name(LeaseKind::Cluster, other)
        );
        assert_ne!(
            lease_name(LeaseKind::Cluster, "Prod"),
            lease_name(LeaseKind::Cluster, "prod")
        );
    }
}
