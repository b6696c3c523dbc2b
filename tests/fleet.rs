//! Sharding (`sharding:`, issue 18) through the binary on the real apiserver: three `kgitops run`
//! processes share seven clusters (overlays in namespaces of the one test apiserver, each a
//! "cluster" of its own with its own ApplySet and write lock), the Leases live in another
//! namespace. Checked: every cluster owned by exactly one replica, balance (no replica over
//! ⌈7/3⌉+1, and within one of each other once settled), each cluster written once; `kill -9` of
//! one replica: its clusters are taken over within the lease duration + 5 s and a new commit is
//! applied by the new owners; restarted, it gets its share back; `kgitops fleet status` shows
//! owners, revisions and health; SIGTERM releases its Leases; and all along, no write lock was
//! ever taken for a cluster by a replica that did not hold the cluster's Lease at that moment (a
//! watch on every Lease of the apiserver). A second test cuts one replica off the apiserver: it
//! stops owning at the renew deadline, before the other one takes its clusters over.

mod common;
mod gitserver;
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/partition.rs"]
mod partition;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gitserver::{BareRemote, WorkRepo};
use http_client::{free_ports, http};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use partition::{Partition, apiserver_addr};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const CLUSTERS: usize = 7;
const LEASE_SECONDS: u64 = 3;

fn cluster(i: usize) -> String {
    format!("c{i}")
}

/// One overlay per cluster: a ConfigMap `settings` with `a: <a>` in the cluster's namespace.
fn write_overlays(work: &WorkRepo, namespaces: &[String], a: &str) {
    for (i, ns) in namespaces.iter().enumerate() {
        work.write(
            &format!("clusters/{}/kustomization.yaml", cluster(i)),
            &format!("namespace: {ns}\nresources:\n  - settings.yaml\n"),
        )
        .write(
            &format!("clusters/{}/settings.yaml", cluster(i)),
            &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"{a}\"\n"),
        );
    }
}

/// A `kgitops run` child process, one replica of the fleet.
struct Replica {
    id: String,
    child: std::process::Child,
    addr: SocketAddr,
    config: PathBuf,
    log: PathBuf,
}

impl Replica {
    /// Replica `id` of a fleet of `n` clusters, all reached through `kubeconfig` (the Leases too).
    fn start(
        dir: &Path,
        id: &str,
        remote: &BareRemote,
        lease_ns: &str,
        n: usize,
        kubeconfig: &Path,
    ) -> Replica {
        let dir = dir.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        let (port, status_port) = free_ports();
        let kubeconfig = kubeconfig.display().to_string();
        let mut text = format!(
            "source:\n  url: {}\n  interval: 1s\nclusters:\n",
            remote.file_url()
        );
        for i in 0..n {
            text.push_str(&format!(
                "  - name: {}\n    kubeconfig: {kubeconfig}\n",
                cluster(i)
            ));
        }
        text.push_str(&format!(
            "server:\n  listen: 127.0.0.1:{port}\n  status_listen: 127.0.0.1:{status_port}\n\
             sharding:\n  namespace: {lease_ns}\n  lease_duration: {LEASE_SECONDS}s\n  replica_id: {id}\n"
        ));
        let config = dir.join("kgitops.yaml");
        std::fs::write(&config, text).unwrap();
        let log = dir.join("log.jsonl");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_kgitops"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(&config)
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            )
            .spawn()
            .unwrap();
        Replica {
            id: id.to_string(),
            child,
            addr: format!("127.0.0.1:{status_port}").parse().unwrap(),
            config,
            log,
        }
    }

    fn restart(&mut self) {
        let _ = self.child.wait();
        let config = std::fs::read_to_string(&self.config).unwrap();
        let (port, status_port) = free_ports();
        let config: String = config
            .lines()
            .map(|l| {
                if l.starts_with("  listen:") {
                    format!("  listen: 127.0.0.1:{port}")
                } else if l.starts_with("  status_listen:") {
                    format!("  status_listen: 127.0.0.1:{status_port}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&self.config, config + "\n").unwrap();
        self.addr = format!("127.0.0.1:{status_port}").parse().unwrap();
        self.child = std::process::Command::new(env!("CARGO_BIN_EXE_kgitops"))
            .args(["--log-format", "json", "run", "--config"])
            .arg(&self.config)
            .env("XDG_CACHE_HOME", self.config.parent().unwrap().join("cache"))
            .stderr(std::fs::OpenOptions::new().append(true).open(&self.log).unwrap())
            .spawn()
            .unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `/status`, or `None` while the process does not answer.
    fn status(&self) -> Option<Value> {
        TcpStream::connect(self.addr).ok()?;
        let (code, body) = http(self.addr, "GET", "/status", &[], b"");
        (code == 200).then(|| serde_json::from_str(&body).unwrap())
    }

    /// The clusters this replica says it owns, with their status.
    fn owned(&self) -> Option<BTreeMap<String, Value>> {
        let s = self.status()?;
        Some(
            s["clusters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["owned"] == true)
                .map(|c| (c["name"].as_str().unwrap().to_string(), c.clone()))
                .collect(),
        )
    }

    fn metrics(&self) -> String {
        http(self.addr, "GET", "/metrics", &[], b"").1
    }

    /// Sends SIGTERM; returns the exit code and how long the process took (killed after 20 s).
    #[allow(unsafe_code)] // SIGTERM to our own child: no memory effects (SAFETY)
    fn terminate(&mut self) -> (Option<i32>, Duration) {
        let stopping = Instant::now();
        // SAFETY: kill(2) with a child's pid and SIGTERM has no memory effects.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), stopping.elapsed());
            }
            if stopping.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                panic!("still running 20 s after SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[allow(unsafe_code)] // SIGKILL of our own child: no memory effects (SAFETY)
    fn kill9(&mut self) {
        // SAFETY: kill(2) with a child's pid has no memory effects.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        assert_eq!(rc, 0);
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The holders of the cluster Leases (`None`: missing or released).
async fn lease_holders(leases: &Api<Lease>, n: usize) -> BTreeMap<String, Option<String>> {
    let all = leases.list(&ListParams::default()).await.unwrap().items;
    (0..n)
        .map(|i| {
            let name = format!("kgitops-cluster-{}", cluster(i));
            let holder = all
                .iter()
                .find(|l| l.metadata.name.as_deref() == Some(name.as_str()))
                .and_then(|l| l.spec.as_ref()?.holder_identity.clone())
                .filter(|h| !h.is_empty());
            (cluster(i), holder)
        })
        .collect()
}

/// Waits until every cluster is owned by exactly one live replica (by its /status and by the
/// Lease), the replicas are within one cluster of each other, and each owner has `revision`
/// applied and synced. Returns the owner per cluster.
async fn wait_settled(
    replicas: &[&Replica],
    leases: &Api<Lease>,
    n: usize,
    revision: &str,
    limit: Duration,
) -> BTreeMap<String, String> {
    let start = Instant::now();
    loop {
        let holders = lease_holders(leases, n).await;
        let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut counts = Vec::new();
        let mut applied = true;
        let mut answered = true;
        for r in replicas {
            let Some(owned) = r.owned() else {
                answered = false;
                continue;
            };
            counts.push(owned.len());
            for (name, c) in owned {
                applied &= c["applied_revision"] == revision && c["synced"] == true;
                owners.entry(name).or_default().push(r.id.clone());
            }
        }
        let single = owners.len() == n && owners.values().all(|o| o.len() == 1);
        let agree = single
            && owners
                .iter()
                .all(|(c, o)| holders.get(c).cloned().flatten().as_deref() == Some(o[0].as_str()));
        let balanced = counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0) <= 1;
        if answered && single && agree && balanced && applied {
            return owners.into_iter().map(|(c, o)| (c, o[0].clone())).collect();
        }
        let last = format!("owners {owners:?}, leases {holders:?}, counts {counts:?}, applied {applied}");
        if start.elapsed() > limit {
            let logs: Vec<String> = replicas
                .iter()
                .map(|r| format!("--- {}:\n{}", r.id, tail(&r.log(), 40)))
                .collect();
            panic!("not settled within {limit:?}: {last}\n{}", logs.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What the monitor saw: per cluster, the Lease holder timeline and every write-lock
/// acquisition (holder, acquireTime).
#[derive(Default)]
struct Seen {
    owners: BTreeMap<String, Vec<(jiff::Timestamp, Option<String>)>>,
    locks: BTreeMap<String, BTreeSet<(String, String)>>,
}

/// Watches every Lease of the apiserver until `stop`: the cluster Leases' holders (timeline, on
/// change, stamped when the event arrived) and every write-lock acquisition of the clusters'
/// namespaces (a watch sees every version, however short the lock was held).
fn monitor(
    client: kube::Client,
    lease_ns: String,
    namespaces: Vec<String>,
    stop: CancellationToken,
) -> (Arc<Mutex<Seen>>, tokio::task::JoinHandle<()>) {
    use futures::StreamExt;
    use kube::runtime::watcher::{self, Event};
    let seen = Arc::new(Mutex::new(Seen::default()));
    let out = seen.clone();
    let task = tokio::spawn(async move {
        let stream = watcher::watcher(Api::<Lease>::all(client), watcher::Config::default());
        futures::pin_mut!(stream);
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                e = stream.next() => e,
            };
            let Some(Ok(Event::Apply(l) | Event::InitApply(l))) = event else {
                continue;
            };
            let now = jiff::Timestamp::now();
            let (ns, name) = (
                l.metadata.namespace.clone().unwrap_or_default(),
                l.metadata.name.clone().unwrap_or_default(),
            );
            let spec = l.spec.unwrap_or_default();
            let holder = spec.holder_identity.filter(|h| !h.is_empty());
            let mut s = seen.lock().unwrap();
            if ns == lease_ns
                && let Some(c) = name.strip_prefix("kgitops-cluster-")
            {
                let line = s.owners.entry(c.to_string()).or_default();
                if line.last().map(|(_, last)| last) != Some(&holder) {
                    line.push((now, holder));
                }
            } else if let Some(i) = namespaces.iter().position(|n| *n == ns)
                && name.ends_with("-lock")
                && let (Some(h), Some(t)) = (holder, spec.acquire_time)
            {
                s.locks
                    .entry(cluster(i))
                    .or_default()
                    .insert((h, t.0.to_string()));
            }
        }
    });
    (out, task)
}

/// Whether `who` held the cluster's Lease at some moment within `slack` of `at`, by `line`.
fn held_at(
    line: &[(jiff::Timestamp, Option<String>)],
    who: &str,
    at: jiff::Timestamp,
    slack: jiff::SignedDuration,
) -> bool {
    let (from, to) = (at - slack, at + slack);
    line.iter().enumerate().any(|(i, (since, holder))| {
        let until = line.get(i + 1).map(|(t, _)| *t);
        holder.as_deref() == Some(who) && *since <= to && until.is_none_or(|u| u >= from)
    })
}

async fn settings(namespaces: &[String]) -> Vec<(Option<String>, Option<String>)> {
    let client = common::client().await;
    let mut out = Vec::new();
    for ns in namespaces {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let cm = api.get_opt("settings").await.unwrap();
        out.push((
            cm.as_ref().and_then(|c| c.data.as_ref()?.get("a").cloned()),
            cm.as_ref().and_then(|c| c.metadata.resource_version.clone()),
        ));
    }
    out
}

fn fleet_status(config: &Path, output: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kgitops"))
        .args(["fleet", "status", "--output", output, "--config"])
        .arg(config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_seven_clusters_take_over_a_killed_one_and_rebalance() {
    let lease_ns = common::namespace("fleet-leases").await;
    let mut namespaces = Vec::new();
    for i in 0..CLUSTERS {
        namespaces.push(common::namespace(&format!("fleet-{}", cluster(i))).await.name);
    }
    let leases: Api<Lease> = lease_ns.api();
    let tmp = tempfile::tempdir().unwrap();
    let work = WorkRepo::init(&tmp.path().join("work"));
    write_overlays(&work, &namespaces, "1");
    let c1 = work.commit("seven clusters");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");

    let stop = CancellationToken::new();
    let (seen, monitor_task) = monitor(
        lease_ns.client.clone(),
        lease_ns.name.clone(),
        namespaces.clone(),
        stop.clone(),
    );

    let mut replicas: Vec<Replica> = ["r0", "r1", "r2"]
        .iter()
        .map(|id| {
            let kubeconfig = common::control_plane().kubeconfig();
            Replica::start(tmp.path(), id, &remote, &lease_ns.name, CLUSTERS, kubeconfig)
        })
        .collect();
    let owners = wait_settled(
        &replicas.iter().collect::<Vec<_>>(),
        &leases,
        CLUSTERS,
        &c1,
        Duration::from_secs(90),
    )
    .await;
    let max_share = CLUSTERS.div_ceil(3) + 1;
    for r in &replicas {
        let n = owners.values().filter(|o| **o == r.id).count();
        assert!(n <= max_share, "{} owns {n} clusters: {owners:?}", r.id);
        assert!(n >= 1, "{} owns nothing: {owners:?}", r.id);
    }
    let before = settings(&namespaces).await;
    assert!(
        before.iter().all(|(a, _)| a.as_deref() == Some("1")),
        "{before:?}"
    );
    // Each cluster was written once: nothing is written again while the fleet stays settled.
    tokio::time::sleep(Duration::from_secs(2 * LEASE_SECONDS)).await;
    assert_eq!(
        settings(&namespaces).await,
        before,
        "a settled fleet wrote a cluster again"
    );
    // /metrics: the owned gauge per cluster.
    let metrics = replicas[0].metrics();
    for (c, o) in &owners {
        let value = if o == "r0" { 1 } else { 0 };
        assert!(
            metrics.contains(&format!("kgitops_cluster_owned{{cluster=\"{c}\"}} {value}")),
            "{c}: {metrics}"
        );
    }

    // fleet status, from the Leases, both outputs.
    let json: Value = serde_json::from_str(&fleet_status(&replicas[0].config, "json")).unwrap();
    for c in json["clusters"].as_array().unwrap() {
        let name = c["cluster"].as_str().unwrap();
        assert_eq!(c["owner"].as_str(), Some(owners[name].as_str()), "{json:#}");
        assert_eq!(c["applied_revision"], c1.as_str(), "{json:#}");
        assert_eq!(c["health"], "synced", "{json:#}");
    }
    assert_eq!(json["replicas"].as_array().unwrap().len(), 3, "{json:#}");
    let text = fleet_status(&replicas[1].config, "text");
    for (c, o) in &owners {
        assert!(
            text.lines()
                .any(|l| l.starts_with(c.as_str()) && l.contains(o.as_str()) && l.contains(&c1[..12])),
            "{text}"
        );
    }

    // kill -9 the replica with the most clusters, and commit: its clusters can only get the new
    // commit from their new owners.
    let victim = (0..3)
        .max_by_key(|i| owners.values().filter(|o| **o == replicas[*i].id).count())
        .unwrap();
    let lost: Vec<String> = owners
        .iter()
        .filter(|(_, o)| **o == replicas[victim].id)
        .map(|(c, _)| c.clone())
        .collect();
    write_overlays(&work, &namespaces, "2");
    let c2 = work.commit("a: 2");
    replicas[victim].kill9();
    let killed = Instant::now();
    remote.push(&work, "main");
    let taken = loop {
        let holders = lease_holders(&leases, CLUSTERS).await;
        if lost
            .iter()
            .all(|c| holders[c].as_deref().is_some_and(|h| h != replicas[victim].id))
        {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_secs(60),
            "{lost:?} not taken over: {holders:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "settled: {owners:?}; {lost:?} of {} taken over after {taken:?}",
        replicas[victim].id
    );
    assert!(
        taken <= Duration::from_secs(LEASE_SECONDS + 5),
        "{lost:?} taken over after {taken:?}, more than the lease duration + 5 s"
    );
    let survivors: Vec<&Replica> = replicas
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, r)| r)
        .collect();
    let owners2 = wait_settled(&survivors, &leases, CLUSTERS, &c2, Duration::from_secs(90)).await;
    for c in &lost {
        assert_ne!(owners2[c], replicas[victim].id);
    }
    let after = settings(&namespaces).await;
    assert!(after.iter().all(|(a, _)| a.as_deref() == Some("2")), "{after:?}");

    // Started again (same id): balance is restored.
    replicas[victim].restart();
    let owners3 = wait_settled(
        &replicas.iter().collect::<Vec<_>>(),
        &leases,
        CLUSTERS,
        &c2,
        Duration::from_secs(90),
    )
    .await;
    let back = owners3.values().filter(|o| **o == replicas[victim].id).count();
    assert!(
        back >= 2,
        "the restarted replica got {back} clusters back: {owners3:?}"
    );

    // SIGTERM: exit 0, the cluster Leases released (taken by the others at their next round, not
    // after a lease duration) and the replica Lease deleted.
    let mine: Vec<String> = owners3
        .iter()
        .filter(|(_, o)| **o == replicas[victim].id)
        .map(|(c, _)| c.clone())
        .collect();
    let (code, took) = replicas[victim].terminate();
    assert_eq!(code, Some(0), "{}", replicas[victim].log());
    assert!(took < Duration::from_secs(10), "exited {took:?} after SIGTERM");
    let replica_lease = format!("kgitops-replica-{}", replicas[victim].id);
    assert!(
        leases.get_opt(&replica_lease).await.unwrap().is_none(),
        "{replica_lease} left behind"
    );
    let exited = Instant::now();
    loop {
        let holders = lease_holders(&leases, CLUSTERS).await;
        if mine
            .iter()
            .all(|c| holders[c].as_deref().is_some_and(|h| h != replicas[victim].id))
        {
            break;
        }
        assert!(
            exited.elapsed() < Duration::from_secs(LEASE_SECONDS + 5),
            "{mine:?} not taken after SIGTERM: {holders:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{mine:?} released at SIGTERM, taken {:?} after exit",
        exited.elapsed()
    );

    stop.cancel();
    monitor_task.await.unwrap();
    let seen = seen.lock().unwrap();
    let slack = jiff::SignedDuration::from_millis(300);
    let mut checked = 0;
    for (c, locks) in &seen.locks {
        let line = &seen.owners[c];
        for (holder, at) in locks {
            let at: jiff::Timestamp = at.parse().unwrap();
            assert!(
                held_at(line, holder, at, slack),
                "{c}: write lock taken by {holder} at {at} while it did not hold the cluster's Lease; owners: {line:?}"
            );
            checked += 1;
        }
    }
    eprintln!("rebalanced: {owners3:?}; {checked} write-lock acquisitions checked");
    assert!(
        checked >= CLUSTERS,
        "the monitor saw only {checked} write-lock acquisitions"
    );
    for r in &replicas {
        assert!(!r.log().contains("panicked"), "{}", r.log());
    }
}

/// A replica cut off from the apiserver (its Lease renewals and its writes hang alike) stops
/// owning, hence writing, its clusters at the renew deadline, before the other replica may take
/// them: at no sampled moment do both say they own a cluster. The other one takes them over and
/// applies a new commit; back on the network, the cut-off one gets its share back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_stops_writing_before_its_clusters_are_taken_over() {
    const N: usize = 4;
    let lease_ns = common::namespace("fleet-part-leases").await;
    let mut namespaces = Vec::new();
    for i in 0..N {
        namespaces.push(
            common::namespace(&format!("fleet-part-{}", cluster(i)))
                .await
                .name,
        );
    }
    let leases: Api<Lease> = lease_ns.api();
    let tmp = tempfile::tempdir().unwrap();
    let work = WorkRepo::init(&tmp.path().join("work"));
    write_overlays(&work, &namespaces, "1");
    let c1 = work.commit("four clusters");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");
    let partition = Partition::start(apiserver_addr(common::control_plane().kubeconfig())).await;
    let cut = partition.kubeconfig(tmp.path());
    let a = Replica::start(tmp.path(), "ra", &remote, &lease_ns.name, N, &cut);
    let b = Replica::start(
        tmp.path(),
        "rb",
        &remote,
        &lease_ns.name,
        N,
        common::control_plane().kubeconfig(),
    );
    let owners = wait_settled(&[&a, &b], &leases, N, &c1, Duration::from_secs(90)).await;
    assert_eq!(
        owners.values().filter(|o| *o == "ra").count(),
        N / 2,
        "{owners:?}"
    );

    write_overlays(&work, &namespaces, "2");
    let c2 = work.commit("a: 2");
    partition.freeze();
    let frozen = Instant::now();
    remote.push(&work, "main");
    let mut a_stopped = None;
    loop {
        let (sa, sb) = (a.owned().unwrap(), b.owned().unwrap());
        for c in sa.keys() {
            assert!(
                !sb.contains_key(c),
                "both own {c} {:?} after the partition:\n{sa:?}\n{sb:?}",
                frozen.elapsed()
            );
        }
        if sa.is_empty() && a_stopped.is_none() {
            a_stopped = Some(frozen.elapsed());
        }
        if sb.len() == N
            && sb
                .values()
                .all(|c| c["applied_revision"] == c2.as_str() && c["synced"] == true)
        {
            break;
        }
        assert!(
            frozen.elapsed() < Duration::from_secs(60),
            "rb did not take over and apply:\n{sa:?}\n{sb:?}\n{}",
            tail(&b.log(), 30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let a_stopped = a_stopped.expect("ra never stopped owning");
    eprintln!(
        "ra stopped owning {a_stopped:?} after the partition; rb applied c2 at {:?}",
        frozen.elapsed()
    );
    assert!(
        a_stopped < Duration::from_secs(LEASE_SECONDS),
        "ra owned its clusters for {a_stopped:?} without renewing"
    );
    let after = settings(&namespaces).await;
    assert!(after.iter().all(|(v, _)| v.as_deref() == Some("2")), "{after:?}");

    // Back on the network: ra sees rb hold everything and gets its share back.
    partition.heal();
    let owners = wait_settled(&[&a, &b], &leases, N, &c2, Duration::from_secs(90)).await;
    assert_eq!(
        owners.values().filter(|o| *o == "ra").count(),
        N / 2,
        "{owners:?}"
    );
}
