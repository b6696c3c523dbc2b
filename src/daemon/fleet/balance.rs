//! Which clusters a replica takes and which it gives up, from its view of the Leases: a pure
//! function, so every rule is unit-tested without an apiserver.
//!
//! With `R` live replicas and `N` clusters the share is `⌈N/R⌉`:
//! - a replica under its share takes free clusters (released, never taken, or expired by its own
//!   observation) up to its share; a cluster free for longer than a lease duration is taken by
//!   anyone (a stale view of `R` must not leave it unowned);
//! - only while no cluster is free (a handover is in progress otherwise: that is the hysteresis),
//!   the replica holding the most clusters (ties: the smallest id, so one replica acts and all
//!   agree who) gives up clusters when it holds more than its share (what is over its share, at
//!   most a tenth of the share at once: one at a time for small fleets, while a thousand
//!   clusters rebalance in tens of rounds, not hundreds), or one when it holds at least two more
//!   than the poorest live replica. Each batch waits for its clusters to be taken.
//!
//! Stable states therefore have every replica within one cluster of the others, hence at most
//! `⌈N/R⌉`. Free clusters are taken in rendezvous-hash order (each replica prefers different
//! ones, so two replicas rarely race for the same Lease), and a replica gives up the cluster it
//! likes least.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

/// One replica's view of the fleet.
#[derive(Debug)]
pub struct View<'a> {
    pub me: &'a str,
    /// Every configured cluster.
    pub clusters: &'a [String],
    /// The replicas whose Lease is live, this one included.
    pub live: &'a BTreeSet<String>,
    /// Cluster -> its live holder (this replica's clusters included).
    pub holders: &'a BTreeMap<String, String>,
    /// Free clusters nobody took for longer than a lease duration.
    pub orphaned: &'a BTreeSet<String>,
}

/// What to do this round.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub take: Vec<String>,
    pub release: Vec<String>,
}

/// `⌈clusters/replicas⌉`.
pub fn share(clusters: usize, replicas: usize) -> usize {
    clusters.div_ceil(replicas.max(1))
}

/// How much `replica` likes `cluster` (rendezvous hashing).
fn affinity(replica: &str, cluster: &str) -> u64 {
    let digest = Sha256::digest(format!("{replica}/{cluster}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

pub fn decide(view: &View<'_>) -> Decision {
    let share = share(view.clusters.len(), view.live.len());
    let mut counts: BTreeMap<&str, usize> = view.live.iter().map(|r| (r.as_str(), 0)).collect();
    counts.entry(view.me).or_insert(0);
    for holder in view.holders.values() {
        if let Some(n) = counts.get_mut(holder.as_str()) {
            *n += 1;
        }
    }
    let mine = counts.get(view.me).copied().unwrap_or(0);
    let mut free: Vec<&String> = view
        .clusters
        .iter()
        .filter(|c| !view.holders.contains_key(*c))
        .collect();
    free.sort_by_key(|c| std::cmp::Reverse(affinity(view.me, c)));
    let room = share.saturating_sub(mine);
    let mut take: Vec<String> = free.iter().take(room).map(|c| (*c).clone()).collect();
    for c in free.iter().skip(room) {
        if view.orphaned.contains(*c) {
            take.push((*c).clone());
        }
    }
    let mut release = Vec::new();
    if free.is_empty() {
        let richest = counts
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(r, _)| *r);
        let poorest = counts.values().copied().min().unwrap_or(0);
        let batch = if mine > share {
            (mine - share).min((share / 10).max(1))
        } else if mine >= poorest + 2 {
            1
        } else {
            0
        };
        if richest == Some(view.me) && batch > 0 {
            let mut held: Vec<&String> = view
                .holders
                .iter()
                .filter(|(_, h)| h.as_str() == view.me)
                .map(|(c, _)| c)
                .collect();
            held.sort_by_key(|c| affinity(view.me, c));
            release = held.into_iter().take(batch).cloned().collect();
        }
    }
    Decision { take, release }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs rounds of all replicas against one shared truth until nothing changes; returns the
    /// clusters per replica.
    fn settle(
        clusters: &[String],
        replicas: &[&str],
        mut holders: BTreeMap<String, String>,
    ) -> BTreeMap<String, usize> {
        let live: BTreeSet<String> = replicas.iter().map(|r| r.to_string()).collect();
        for _ in 0..500 {
            let mut changed = false;
            for me in replicas {
                let d = decide(&View {
                    me,
                    clusters,
                    live: &live,
                    holders: &holders,
                    orphaned: &BTreeSet::new(),
                });
                for c in d.take {
                    if let std::collections::btree_map::Entry::Vacant(e) = holders.entry(c) {
                        e.insert(me.to_string());
                        changed = true;
                    }
                }
                for c in d.release {
                    holders.remove(&c);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        assert_eq!(
            holders.len(),
            clusters.len(),
            "unowned clusters left: {holders:?}"
        );
        let mut counts = BTreeMap::new();
        for r in replicas {
            counts.insert(r.to_string(), holders.values().filter(|h| h == r).count());
        }
        counts
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn a_fleet_settles_within_one_of_balance_whoever_started_first() {
        for (n, replicas) in [
            (7, vec!["a", "b", "c"]),
            (1000, vec!["a", "b", "c"]),
            (3, vec!["a", "b", "c", "d"]),
            (10, vec!["a"]),
        ] {
            let clusters = names(n);
            // The first replica holds everything (it started alone), the others just joined.
            let holders: BTreeMap<String, String> =
                clusters.iter().map(|c| (c.clone(), "a".to_string())).collect();
            let counts = settle(&clusters, &replicas, holders);
            let (max, min) = (counts.values().max().unwrap(), counts.values().min().unwrap());
            assert!(*max <= share(n, replicas.len()), "{counts:?}");
            assert!(max - min <= 1, "{counts:?}");
        }
    }

    #[test]
    fn nobody_releases_while_a_cluster_is_free_and_only_the_richest_releases() {
        let clusters = names(7);
        let live: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let mut holders: BTreeMap<String, String> = BTreeMap::new();
        for (i, c) in clusters.iter().enumerate() {
            holders.insert(
                c.clone(),
                if i < 3 {
                    "a"
                } else if i < 6 {
                    "b"
                } else {
                    "c"
                }
                .to_string(),
            );
        }
        // 3, 3, 1: stable (within ceil(7/3) and... 1 is two below 3: the richest, "a", gives one up.
        let view = |me: &'static str, holders: &BTreeMap<String, String>| {
            decide(&View {
                me,
                clusters: &clusters,
                live: &live,
                holders,
                orphaned: &BTreeSet::new(),
            })
        };
        assert_eq!(view("a", &holders).release.len(), 1);
        assert!(view("b", &holders).release.is_empty());
        // While it is free nobody else releases, and "c" (under its share) takes it.
        let released = view("a", &holders).release.remove(0);
        holders.remove(&released);
        assert!(view("a", &holders).release.is_empty());
        assert!(view("b", &holders).release.is_empty());
        assert_eq!(view("c", &holders).take, vec![released]);
    }

    #[test]
    fn a_replica_at_its_share_leaves_a_free_cluster_until_it_is_orphaned() {
        let clusters = names(4);
        let live: BTreeSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let holders: BTreeMap<String, String> = [("c0", "a"), ("c1", "a"), ("c2", "b")]
            .iter()
            .map(|(c, h)| (c.to_string(), h.to_string()))
            .collect();
        let d = decide(&View {
            me: "a",
            clusters: &clusters,
            live: &live,
            holders: &holders,
            orphaned: &BTreeSet::new(),
        });
        assert!(d.take.is_empty());
        let orphaned = BTreeSet::from(["c3".to_string()]);
        let d = decide(&View {
            me: "a",
            clusters: &clusters,
            live: &live,
            holders: &holders,
            orphaned: &orphaned,
        });
        assert_eq!(d.take, vec!["c3".to_string()]);
    }
}
