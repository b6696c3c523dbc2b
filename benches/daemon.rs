//! Daemon benchmark against a real apiserver (issue 7): the release `kgitops run` binary manages
//! 1,000 objects in three clusters (three overlays, each a Namespace and a third of
//! `BENCH_OBJECTS` objects, default 1,000 in all: ConfigMaps, ClusterIP Services, Deployments),
//! followed from a `file://` git remote, and measures:
//!
//! - commit pushed + webhook -> applied: time from the end of `git push` (the webhook is sent right
//!   after it) until `/status` reports the new commit applied; p50 and p90 of `BENCH_ROUNDS` rounds;
//! - hand edit -> healed: time from a `kubectl patch`-style merge patch of one ConfigMap by another
//!   field manager until the apiserver shows git's value again; p50 and p90;
//!   rounds start at least `source.min_fetch_interval` (default 1 s) after the previous webhook, so
//!   the fetch spacing does not delay them (it is what a burst of webhooks waits for, below);
//! - webhook storm: 200 signed webhooks sent back to back (a commit pushed after the first 100):
//!   the time to send them, the fetches they caused (`kgitops_fetch_total`; target <= 2) and the
//!   time until the newest commit is applied;
//! - peak RSS of the daemon (`VmHWM` in /proc), after all of the above;
//! - idle steady state: requests the apiserver counts (`apiserver_request_total` by verb) while the
//!   daemon idles for `BENCH_IDLE_SECONDS` (default 300): no writes and no list calls expected.
//!
//! - gate latency (issue 16): `BENCH_GATE_ROUNDS` (default 20) rounds of a migration step gated
//!   on live state (`kgitops::plan::gate`): each round pushes a `strimzi.io/kraft` change the live
//!   `kafkaMetadataState` does not allow yet (`rollback`, then `disabled`, in turn), waits until
//!   `/status` says the revision waits, then writes the state that opens the gate through the
//!   status subresource, as the Strimzi operator would, and measures from that write to the
//!   annotation visible on the live Kafka: "status reached -> gated step applied", p50 and p90.
//!   It runs on a control plane of its own with the Strimzi 0.45.2 CRDs (`tests/common`), and is
//!   the only scenario of test mode: `cargo test --bench daemon` runs 3 rounds of it.
//!
//! Targets: p50 < 1 s for the three latencies, peak RSS < 64 MiB, idle: 0 writes, 0 lists.
//!
//! The daemon is the binary cargo builds for the benchmark, or `KGITOPS_BENCH_BIN` (the image's
//! binary: `KGITOPS_BENCH_BIN=$(scripts/build-image-binary) scripts/bench-daemon`).
//!
//! Run: `scripts/bench-daemon` (starts a control plane), or against a running one:
//! `KUBECONFIG=<admin kubeconfig of a test control plane> cargo bench --bench daemon`.

#[path = "shared/apiserver.rs"]
mod apiserver;
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/support/http_client.rs"]
mod http_client;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apiserver::{delta, objects, request_counts};
use http_client::{free_ports, http};
use k8s_openapi::api::core::v1::ConfigMap;
use kgitops::daemon::config::DEFAULT_MIN_FETCH_INTERVAL;
use kgitops::daemon::webhook::github_signature;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

const CLUSTERS: [&str; 3] = ["bench-a", "bench-b", "bench-c"];
const SECRET: &str = "bench-webhook-secret";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@kgitops.invalid")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@kgitops.invalid")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The `kgitops` binary to run: `KGITOPS_BENCH_BIN` (e.g. the image's, from
/// `scripts/build-image-binary`), else the one cargo built for this benchmark.
fn daemon_binary() -> std::path::PathBuf {
    match std::env::var_os("KGITOPS_BENCH_BIN").filter(|v| !v.is_empty()) {
        Some(path) => std::path::absolute(path).expect("KGITOPS_BENCH_BIN path"),
        None => env!("CARGO_BIN_EXE_kgitops").into(),
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Every attempt to read the remote so far (`kgitops_fetch_total` over its results).
fn fetch_attempts(addr: SocketAddr) -> u64 {
    let (_, metrics) = http(addr, "GET", "/metrics", &[], b"");
    metrics
        .lines()
        .filter(|l| l.starts_with("kgitops_fetch_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Writes the three overlays (namespaces `<prefix>-<cluster>`), with `marker` in one ConfigMap of
/// the first cluster so that each round changes exactly one object.
fn write_overlays(work: &Path, prefix: &str, total: usize, marker: usize) {
    for (k, cluster) in CLUSTERS.iter().enumerate() {
        // 334 + 333 + 333 for 1,000.
        let n = total / CLUSTERS.len() + usize::from(k < total % CLUSTERS.len());
        let dir = work.join("clusters").join(cluster);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut objs = objects(&format!("{prefix}-{cluster}"), n);
        if k == 0 {
            objs[1]["data"]["round"] = json!(marker.to_string());
        }
        let yaml: String = objs
            .iter()
            .map(|o| format!("---\n{}", kgitops::manifest::yaml::to_yaml(o)))
            .collect();
        std::fs::write(dir.join("objects.yaml"), yaml).expect("write objects");
        std::fs::write(dir.join("kustomization.yaml"), "resources:\n  - objects.yaml\n").expect("write");
    }
}

fn status(addr: SocketAddr) -> Value {
    serde_json::from_str(&http(addr, "GET", "/status", &[], b"").1).expect("status JSON")
}

fn all_synced(addr: SocketAddr) -> bool {
    status(addr)["clusters"]
        .as_array()
        .is_some_and(|cs| cs.iter().all(|c| c["synced"] == true))
}

fn applied(addr: SocketAddr, cluster: &str) -> Option<String> {
    status(addr)["clusters"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == cluster)
        .and_then(|c| c["applied_revision"].as_str().map(str::to_string))
}

fn vm(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Requests logged by the apiserver's audit log after byte `offset` whose User-Agent is kgitops',
/// by verb (each request once, whatever its stages).
fn daemon_requests(path: &Path, offset: u64) -> std::collections::BTreeMap<String, u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).expect("audit log");
    file.seek(SeekFrom::Start(offset)).expect("seek");
    let mut text = String::new();
    file.read_to_string(&mut text).expect("read audit log");
    let mut seen = std::collections::HashSet::new();
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let ours = event["userAgent"]
            .as_str()
            .is_some_and(|ua| ua.starts_with("kgitops/"));
        if ours && seen.insert(event["auditID"].as_str().unwrap_or_default().to_string()) {
            let verb = event["verb"].as_str().unwrap_or("?").to_uppercase();
            *out.entry(verb).or_insert(0) += 1;
        }
    }
    out
}

struct Daemon(Child);

impl Drop for Daemon {
    #[allow(unsafe_code)] // each unsafe block below says why it is sound (SAFETY)
    fn drop(&mut self) {
        // SAFETY: kill(2) with our child's pid and SIGTERM.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.0.wait();
    }
}

fn main() {
    // Test mode (`cargo test --bench daemon`): a few rounds of the gate scenario only, on its own
    // control plane; the others need the control plane scripts/bench-daemon starts.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "daemon: test mode; the full benchmark runs with scripts/bench-daemon (cargo bench --bench daemon)"
        );
        let gate = gate_latency(env_number("BENCH_GATE_ROUNDS", 3) as usize);
        print_gate_latency(&gate);
        return;
    }
    let kubeconfig = std::env::var("KUBECONFIG").ok().filter(|v| !v.is_empty()).expect(
        "set KUBECONFIG to the admin kubeconfig of a test control plane (tests/controlplane/start DIR)",
    );
    let n = env_number("BENCH_OBJECTS", 1000) as usize;
    let rounds = env_number("BENCH_ROUNDS", 10) as usize;
    let idle = Duration::from_secs(env_number("BENCH_IDLE_SECONDS", 300));
    let prefix = format!("bd{}", std::process::id());

    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("work");
    let remote = tmp.path().join("remote.git");
    std::fs::create_dir_all(&work).expect("mkdir");
    git(&work, &["init", "-q", "-b", "main"]);
    write_overlays(&work, &prefix, n, 0);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "platform"]);
    std::fs::create_dir_all(&remote).expect("mkdir");
    git(&remote, &["init", "-q", "--bare", "-b", "main"]);
    let push = |work: &Path| {
        git(
            work,
            &[
                "push",
                "-q",
                remote.to_str().expect("utf-8"),
                "main:refs/heads/main",
            ],
        )
    };
    push(&work);

    let (port, status_port) = free_ports();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    // /status and /metrics are on the internal listener; /webhook on the public one.
    let status_addr: SocketAddr = format!("127.0.0.1:{status_port}").parse().expect("addr");
    std::fs::write(tmp.path().join("secret"), SECRET).expect("secret");
    let mut config = format!(
        "source:\n  url: file://{}\n  interval: 1h\nserver:\n  listen: 127.0.0.1:{port}\n  status_listen: 127.0.0.1:{status_port}\n  webhook_secret_file: secret\n\
         cache_dir: cache\nclusters:\n",
        remote.display()
    );
    for c in CLUSTERS {
        config.push_str(&format!(
            "  - name: {c}\n    kubeconfig: {kubeconfig}\n    drift: heal\n"
        ));
    }
    std::fs::write(tmp.path().join("kgitops.yaml"), config).expect("config");
    let log = std::fs::File::create(tmp.path().join("daemon.log")).expect("log");
    let started = Instant::now();
    let binary = daemon_binary();
    println!("daemon binary: {}", binary.display());
    let child = Command::new(&binary)
        .args(["run", "--config", "kgitops.yaml"])
        .current_dir(tmp.path())
        .env("KGITOPS_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start kgitops run");
    let daemon = Daemon(child);
    let pid = daemon.0.id();
    loop {
        // /readyz only says the process serves; the first sync is every cluster synced.
        if std::net::TcpStream::connect(status_addr).is_ok() && all_synced(status_addr) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "daemon not ready; log:\n{}",
            std::fs::read_to_string(tmp.path().join("daemon.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let first_sync = started.elapsed();
    println!(
        "daemon: {n} objects in {} clusters (+1 Namespace each) applied from git in {:.1} s",
        CLUSTERS.len(),
        first_sync.as_secs_f64()
    );

    // Commit pushed + webhook -> applied. Each round waits out the fetch spacing of the previous
    // one: a webhook within it would be held back by design (coalescing), not by slowness.
    let mut push_latency = Vec::new();
    let mut last_webhook: Option<Instant> = None;
    for round in 1..=rounds {
        if let Some(t) = last_webhook {
            let ready = t + DEFAULT_MIN_FETCH_INTERVAL + Duration::from_millis(50);
            std::thread::sleep(ready.saturating_duration_since(Instant::now()));
        }
        write_overlays(&work, &prefix, n, round);
        git(&work, &["commit", "-q", "-am", &format!("round {round}")]);
        let sha = git(&work, &["rev-parse", "HEAD"]);
        push(&work);
        let t = Instant::now();
        let body = json!({"ref": "refs/heads/main", "after": sha}).to_string();
        let sig = github_signature(SECRET.as_bytes(), body.as_bytes());
        let headers = [("X-GitHub-Event", "push"), ("X-Hub-Signature-256", sig.as_str())];
        let (code, text) = http(addr, "POST", "/webhook", &headers, body.as_bytes());
        last_webhook = Some(t);
        assert_eq!(code, 202, "{text}");
        while applied(status_addr, CLUSTERS[0]).as_deref() != Some(sha.as_str()) {
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "round {round} not applied: {:#}",
                status(status_addr)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        push_latency.push(t.elapsed());
    }

    // Webhook storm: 200 signed deliveries back to back, a new commit pushed after the first 100
    // (after the spacing of the last round, so the storm's first webhook fetches at once).
    std::thread::sleep(DEFAULT_MIN_FETCH_INTERVAL + Duration::from_millis(50));
    let fetches_before = fetch_attempts(status_addr);
    let storm = Instant::now();
    let mut newest = String::new();
    for i in 0..200 {
        if i == 100 {
            write_overlays(&work, &prefix, n, rounds + 1);
            git(&work, &["commit", "-q", "-am", "storm"]);
            newest = git(&work, &["rev-parse", "HEAD"]);
            push(&work);
        }
        let body = json!({"ref": "refs/heads/main"}).to_string();
        let sig = github_signature(SECRET.as_bytes(), body.as_bytes());
        let id = format!("storm-{i}");
        let headers = [
            ("X-GitHub-Event", "push"),
            ("X-Hub-Signature-256", sig.as_str()),
            ("X-GitHub-Delivery", id.as_str()),
        ];
        let (code, text) = http(addr, "POST", "/webhook", &headers, body.as_bytes());
        assert_eq!(code, 202, "{text}");
    }
    let storm_sent = storm.elapsed();
    while applied(status_addr, CLUSTERS[0]).as_deref() != Some(newest.as_str()) {
        assert!(
            storm.elapsed() < Duration::from_secs(120),
            "storm commit not applied"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let storm_applied = storm.elapsed();
    // Longer than the spacing: a fetch still queued would have run by now.
    std::thread::sleep(DEFAULT_MIN_FETCH_INTERVAL * 2);
    let storm_fetches = fetch_attempts(status_addr) - fetches_before;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let heal_latency: Vec<Duration> = runtime.block_on(async {
        let client = kube::Client::try_default().await.expect("kube client");
        let api: Api<ConfigMap> = Api::namespaced(client, &format!("{prefix}-{}", CLUSTERS[1]));
        let params = PatchParams {
            field_manager: Some("kubectl-patch".into()),
            ..PatchParams::default()
        };
        let mut out = Vec::new();
        for round in 0..rounds {
            let patch = Patch::Merge(json!({"data": {"config.yaml": format!("edited by hand {round}\n")}}));
            api.patch("app-0000", &params, &patch).await.expect("patch");
            let t = Instant::now();
            loop {
                let cm = api.get("app-0000").await.expect("get");
                let v = cm
                    .data
                    .and_then(|d| d.get("config.yaml").cloned())
                    .unwrap_or_default();
                if v == "id: 0\nlevel: info\n" {
                    break;
                }
                assert!(t.elapsed() < Duration::from_secs(60), "round {round} not healed");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            out.push(t.elapsed());
            // Let the daemon's own post-heal check settle before the next edit.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        out
    });
    let peak_kib = vm(pid, "VmHWM:");
    let rss_kib = vm(pid, "VmRSS:");

    // Idle steady state: the daemon's own requests, from the apiserver's audit log (its User-Agent
    // is kgitops/<version>); without an audit log, every client's requests (the apiserver's own
    // lease renewals included) from apiserver_request_total.
    let audit_log = std::env::var("KGITOPS_BENCH_AUDIT_LOG")
        .ok()
        .filter(|v| !v.is_empty());
    let (idle_counts, attributed) = runtime.block_on(async {
        let client = kube::Client::try_default().await.expect("kube client");
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = request_counts(&client).await;
        let offset = audit_log
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len());
        tokio::time::sleep(idle).await;
        match (&audit_log, offset) {
            (Some(path), Some(offset)) => (daemon_requests(Path::new(path), offset), true),
            _ => {
                let mut d = delta(&before, &request_counts(&client).await);
                d.retain(|_, v| *v > 0);
                (d, false)
            }
        }
    });
    let writes: u64 = idle_counts
        .iter()
        .filter(|(verb, _)| {
            [
                "POST",
                "PUT",
                "PATCH",
                "APPLY",
                "DELETE",
                "DELETECOLLECTION",
                "CREATE",
                "UPDATE",
            ]
            .contains(&verb.as_str())
        })
        .map(|(_, v)| v)
        .sum();
    let lists = idle_counts.get("LIST").copied().unwrap_or(0);
    let mut p = push_latency.clone();
    p.sort();
    let mut h = heal_latency.clone();
    h.sort();
    println!();
    let row = |measure: &str, a: String, b: String, target: &str| {
        println!("{measure:<38} {a:>10} {b:>10} {target:>14}");
    };
    row("measure", "p50".into(), "p90".into(), "target");
    row(
        "push + webhook -> applied",
        ms(percentile(&p, 0.5)),
        ms(percentile(&p, 0.9)),
        "p50 < 1 s",
    );
    row(
        "hand edit -> healed",
        ms(percentile(&h, 0.5)),
        ms(percentile(&h, 0.9)),
        "p50 < 1 s",
    );
    row(
        &format!("peak RSS ({n} objects, {} clusters)", CLUSTERS.len()),
        format!("{:.1} MiB", peak_kib as f64 / 1024.0),
        format!("now {:.1}", rss_kib as f64 / 1024.0),
        "< 64 MiB",
    );
    row(
        &format!("idle {} s: writes / lists", idle.as_secs()),
        writes.to_string(),
        lists.to_string(),
        "0 / 0",
    );
    println!(
        "idle requests by verb ({}): {idle_counts:?}",
        if attributed {
            "kgitops only, from the audit log"
        } else {
            "all clients: no audit log"
        }
    );
    row(
        "webhook storm: 200 sent / fetches",
        ms(storm_sent),
        storm_fetches.to_string(),
        "<= 2 fetches",
    );
    println!(
        "webhook storm: newest commit applied {} after the first of 200 webhooks",
        ms(storm_applied)
    );
    println!(
        "rounds: {rounds} (each at least {} ms after the previous webhook: the fetch spacing); \
         push latencies {:?}; heal latencies {:?}",
        DEFAULT_MIN_FETCH_INTERVAL.as_millis(),
        push_latency.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
        heal_latency.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
    );
    drop(daemon);
    let gate = gate_latency(env_number("BENCH_GATE_ROUNDS", 20) as usize);
    print_gate_latency(&gate);
    let met = percentile(&gate, 0.5) < Duration::from_secs(1)
        && percentile(&p, 0.5) < Duration::from_secs(1)
        && percentile(&h, 0.5) < Duration::from_secs(1)
        && peak_kib < 64 * 1024
        && writes == 0
        && lists == 0
        && storm_fetches <= 2;
    println!("targets {}", if met { "met" } else { "NOT met" });
}

// ---------------------------------------------------------------------------------------------
// Gate latency (issue 16): status reached -> gated step applied.

/// The namespace of the gate scenario on its control plane.
const GATE_NS: &str = "gate-bench";

/// The gate scenario's platform: a ZooKeeper Kafka on Strimzi 0.45.2 whose brokers run in node
/// pools, the controller pool, and `strimzi.io/kraft: kraft`.
fn gate_platform(kraft: &str) -> String {
    let pool = |name: &str, role: &str| {
        json!({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaNodePool",
               "metadata": {"name": name, "namespace": GATE_NS, "labels": {"strimzi.io/cluster": "main"}},
               "spec": {"replicas": 3, "roles": [role],
                        "storage": {"type": "persistent-claim", "size": "100Gi", "deleteClaim": false}}})
    };
    let objects = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GATE_NS}}),
        json!({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka",
               "metadata": {"name": "main", "namespace": GATE_NS,
                            "annotations": {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": kraft}},
               "spec": {"kafka": {"version": "3.9.0",
                                  "listeners": [{"name": "plain", "port": 9092, "type": "internal", "tls": false}]},
                        "zookeeper": {"replicas": 3,
                                      "storage": {"type": "persistent-claim", "size": "100Gi", "deleteClaim": false}}}}),
        pool("kafka", "broker"),
        pool("controller", "controller"),
    ];
    objects
        .iter()
        .map(|o| format!("---\n{}", kgitops::manifest::yaml::to_yaml(o)))
        .collect()
}

/// Writes the Kafka's status as Strimzi 0.45 does at the end of a reconcile, with `state`.
async fn write_state(kafkas: &Api<kube::api::DynamicObject>, state: &str) {
    let kafka = kafkas.get("main").await.expect("the live Kafka");
    let status = json!({"status": {
        "observedGeneration": kafka.metadata.generation,
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-07T18:00:00.000Z"}],
        "kafkaMetadataState": state, "kafkaNodePools": [{"name": "controller"}, {"name": "kafka"}],
        "kafkaVersion": "3.9.0", "clusterId": "bench-cluster-id"}});
    kafkas
        .patch_status("main", &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("status written");
}

/// `rounds` rounds of a gated step; returns each round's "status reached -> applied" latency.
fn gate_latency(rounds: usize) -> Vec<Duration> {
    let control_plane = common::control_plane_for_release("0.45.2");
    let tmp = tempfile::tempdir().expect("tempdir");
    let work = tmp.path().join("work");
    let remote = tmp.path().join("remote.git");
    let overlay = work.join("clusters/gate");
    std::fs::create_dir_all(&overlay).expect("mkdir");
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources:\n  - platform.yaml\n",
    )
    .expect("write");
    std::fs::write(overlay.join("platform.yaml"), gate_platform("disabled")).expect("write");
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "platform"]);
    std::fs::create_dir_all(&remote).expect("mkdir");
    git(&remote, &["init", "-q", "--bare", "-b", "main"]);
    let push = || {
        git(
            &work,
            &[
                "push",
                "-q",
                remote.to_str().expect("utf-8"),
                "main:refs/heads/main",
            ],
        )
    };
    push();

    let (_, status_port) = free_ports();
    let status_addr: SocketAddr = format!("127.0.0.1:{status_port}").parse().expect("addr");
    // A short fetch interval instead of webhooks: the figure starts at the status write, when the
    // revision is already known to wait.
    let config = format!(
        "source:\n  url: file://{}\n  interval: 1s\nserver:\n  listen: 127.0.0.1:0\n  status_listen: 127.0.0.1:{status_port}\n\
         cache_dir: cache\nclusters:\n  - name: gate\n    kubeconfig: {}\n",
        remote.display(),
        control_plane.kubeconfig().display()
    );
    std::fs::write(tmp.path().join("kgitops.yaml"), config).expect("config");
    let log = std::fs::File::create(tmp.path().join("daemon.log")).expect("log");
    let daemon = Daemon(
        Command::new(daemon_binary())
            .args(["run", "--config", "kgitops.yaml"])
            .current_dir(tmp.path())
            .env("KGITOPS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start kgitops run"),
    );
    let daemon_log = || std::fs::read_to_string(tmp.path().join("daemon.log")).unwrap_or_default();
    let cluster = |addr: SocketAddr| -> Value {
        if std::net::TcpStream::connect(addr).is_err() {
            return Value::Null;
        }
        status(addr)["clusters"][0].clone()
    };
    let until = |what: &str, check: &dyn Fn(&Value) -> bool| {
        let t = Instant::now();
        loop {
            let c = cluster(status_addr);
            if check(&c) {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "gate scenario: {what}: {c:#}\ndaemon log:\n{}",
                daemon_log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let first = git(&work, &["rev-parse", "HEAD"]);
    until("first revision applied", &|c| {
        c["applied_revision"] == first.as_str()
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let latencies = runtime.block_on(async {
        let client = control_plane.client().await;
        let gvk = kube::api::GroupVersionKind::gvk("kafka.strimzi.io", "v1beta2", "Kafka");
        let kafkas: Api<kube::api::DynamicObject> =
            Api::namespaced_with(client, GATE_NS, &kube::api::ApiResource::from_gvk(&gvk));
        write_state(&kafkas, "ZooKeeper").await;
        let mut out = Vec::new();
        for round in 0..rounds {
            // `rollback` needs KRaftPostMigration; `disabled` needs ZooKeeper, KRaftMigration or
            // KRaftDualWriting (where a rollback leads): each round's change waits for the next state.
            let (kraft, opens) = if round % 2 == 0 {
                ("rollback", "KRaftPostMigration")
            } else {
                ("disabled", "KRaftDualWriting")
            };
            std::fs::write(overlay.join("platform.yaml"), gate_platform(kraft)).expect("write");
            git(
                &work,
                &[
                    "commit",
                    "-q",
                    "-am",
                    &format!("round {round}: strimzi.io/kraft {kraft}"),
                ],
            );
            let sha = git(&work, &["rev-parse", "HEAD"]);
            push();
            let waiting = |c: &Value| {
                c["last_result"]["revision"] == sha.as_str() && c["last_result"]["result"] == "waiting"
            };
            tokio::task::block_in_place(|| until(&format!("round {round} waiting"), &waiting));
            write_state(&kafkas, opens).await;
            let t = Instant::now();
            loop {
                let live = kafkas.get("main").await.expect("the live Kafka");
                if live
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("strimzi.io/kraft"))
                    == Some(&kraft.to_string())
                {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(60),
                    "round {round}: {kraft} not applied after {opens}\ndaemon log:\n{}",
                    daemon_log()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            out.push(t.elapsed());
        }
        out
    });
    drop(daemon);
    latencies
}

fn print_gate_latency(latencies: &[Duration]) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    println!(
        "{:<38} {:>10} {:>10} {:>14}",
        "status reached -> gated step applied",
        ms(percentile(&sorted, 0.5)),
        ms(percentile(&sorted, 0.9)),
        "p50 < 1 s"
    );
    println!(
        "gate rounds: {}; latencies {:?}",
        sorted.len(),
        latencies.iter().map(|d| d.as_millis()).collect::<Vec<_>>()
    );
}
