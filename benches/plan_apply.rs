//! Plan/apply benchmark against a real apiserver, side by side with kubectl, in one run:
//!
//! - first apply of 1,000 objects (ConfigMaps, Services, Deployments) vs `kubectl apply --server-side`;
//! - no-op `diff --live` (kgitops plan) vs `kubectl diff --server-side -f` on the same objects;
//! - a no-op apply, which must send no write;
//! - the no-op diff again with a mutating admission webhook (the test rig's, on 127.0.0.1) that
//!   matches the Deployments: they, and only they, are dry-run by the server.
//! - first apply of the same objects through an identity that API Priority and Fairness throttles
//!   (about 3 seats and a queue of 5, `tests/support/throttle.rs`) vs `kubectl apply --server-side`
//!   through the same identity, with the 429 answers each received (issue 21).
//!
//! Each tool works on its own copy of the objects in its own namespace. Requests are counted at the
//! apiserver (`apiserver_request_total` from its /metrics, by verb), so both tools are measured the
//! same way.
//!
//! Run: `scripts/bench-plan` (starts a control plane), or against a running one:
//! `KUBECONFIG=<admin kubeconfig of a test control plane> cargo bench --bench plan_apply`
//! (`tests/controlplane/start DIR` writes one to `DIR/kubeconfig`). Optional: `BENCH_OBJECTS=N`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "shared/apiserver.rs"]
mod apiserver;
#[path = "../tests/support/mutating_webhook.rs"]
mod mutating_webhook;
#[path = "../tests/support/throttle.rs"]
mod throttle;

use apiserver::{delta, objects, request_counts};
use kgitops::apply::{self, ApplyOptions, InventoryRef};
use kgitops::plan::Cluster;
use kgitops::plan::cluster::DEFAULT_CONCURRENCY;

fn total(d: &BTreeMap<String, u64>) -> u64 {
    d.values().sum()
}

fn writes(d: &BTreeMap<String, u64>) -> u64 {
    ["POST", "PUT", "PATCH", "DELETE", "APPLY"]
        .iter()
        .map(|v| d.get(*v).copied().unwrap_or(0))
        .sum()
}

/// Server-side dry-runs (apply patches are counted as verb APPLY, others as PATCH).
fn dry_runs(d: &BTreeMap<String, u64>) -> u64 {
    d.iter()
        .filter(|(verb, _)| verb.ends_with("(dry-run)"))
        .map(|(_, n)| n)
        .sum()
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> (Duration, i32) {
    let start = Instant::now();
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs");
    let code = out.status.code().unwrap_or(-1);
    if code > 1 {
        panic!(
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (start.elapsed(), code)
}

fn row(
    what: &str,
    ours: Duration,
    ours_req: &BTreeMap<String, u64>,
    theirs: Duration,
    theirs_req: &BTreeMap<String, u64>,
) {
    println!(
        "{what:<22} kgitops {:>8.1} ms {:>5} req   kubectl {:>8.1} ms {:>5} req   ratio {:>5.1}x",
        ours.as_secs_f64() * 1e3,
        total(ours_req),
        theirs.as_secs_f64() * 1e3,
        total(theirs_req),
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
    println!("{:<22}   kgitops requests {ours_req:?}", "");
    println!("{:<22}   kubectl requests {theirs_req:?}", "");
}

fn main() {
    // `cargo test --all-targets` runs bench targets too, without `--bench`: a benchmark of minutes
    // against a control plane is not a test, so it only runs under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("plan_apply: benchmark; run it with scripts/bench-plan (cargo bench --bench plan_apply)");
        return;
    }
    let kubeconfig = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()).expect(
        "set KUBECONFIG to the admin kubeconfig of a test control plane (tests/controlplane/start DIR)",
    );
    let kubeconfig = Path::new(&kubeconfig).to_path_buf();
    let n: usize = std::env::var("BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = kube::Client::try_default()
            .await
            .expect("kube client from KUBECONFIG");
        let suffix = std::process::id();
        let (ns_ours, ns_theirs) = (format!("bench-kg-{suffix}"), format!("bench-kc-{suffix}"));
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml: String = objects(&ns_theirs, n)
            .iter()
            .map(|o| format!("{}---\n", kgitops::manifest::yaml::to_yaml(o)))
            .collect();
        let file = dir.path().join("objects.yaml");
        std::fs::write(&file, yaml).expect("write manifests");
        let file = file.to_str().expect("utf-8 path");
        let cluster = Cluster::new(client.clone(), DEFAULT_CONCURRENCY);
        let opts = ApplyOptions::new(
            "bench",
            InventoryRef {
                namespace: ns_ours.clone(),
                name: "kgitops-bench".into(),
            },
        );
        println!("{n} objects (ConfigMaps, Services, Deployments), concurrency {DEFAULT_CONCURRENCY}");

        // First apply.
        let before = request_counts(&client).await;
        let start = Instant::now();
        let set = apply::apply(&cluster, objects(&ns_ours, n), &opts)
            .await
            .expect("kgitops apply");
        let ours = start.elapsed();
        let ours_req = delta(&before, &request_counts(&client).await);
        assert_eq!(set.changes.len(), n + 1);
        let before = request_counts(&client).await;
        let (theirs, _) = kubectl(&kubeconfig, &["apply", "--server-side", "-f", file]);
        let theirs_req = delta(&before, &request_counts(&client).await);
        row("first apply", ours, &ours_req, theirs, &theirs_req);

        // No-op diff.
        let before = request_counts(&client).await;
        let start = Instant::now();
        let cp = apply::plan(&cluster, objects(&ns_ours, n), &opts)
            .await
            .expect("kgitops plan");
        let ours = start.elapsed();
        let ours_req = delta(&before, &request_counts(&client).await);
        assert!(!cp.live.plan.has_changes(), "a no-op plan shows changes");
        let before = request_counts(&client).await;
        let (theirs, code) = kubectl(&kubeconfig, &["diff", "--server-side", "-f", file]);
        let theirs_req = delta(&before, &request_counts(&client).await);
        assert_eq!(code, 0, "kubectl diff shows changes on a no-op");
        row("no-op diff --live", ours, &ours_req, theirs, &theirs_req);

        // No-op apply: no write.
        let before = request_counts(&client).await;
        let start = Instant::now();
        let set = apply::apply(&cluster, objects(&ns_ours, n), &opts)
            .await
            .expect("kgitops apply");
        let ours = start.elapsed();
        let ours_req = delta(&before, &request_counts(&client).await);
        assert!(!set.has_changes());
        let before = request_counts(&client).await;
        let (theirs, _) = kubectl(&kubeconfig, &["apply", "--server-side", "-f", file]);
        let theirs_req = delta(&before, &request_counts(&client).await);
        row("no-op apply", ours, &ours_req, theirs, &theirs_req);
        println!(
            "no-op apply writes: kgitops {} (must be 0), kubectl {}",
            writes(&ours_req),
            writes(&theirs_req)
        );
        assert_eq!(writes(&ours_req), 0, "a no-op apply wrote");

        // No-op diff with a mutating webhook on the Deployments: they are dry-run, nothing else.
        let webhook = mutating_webhook::MutatingWebhook::start(&dir.path().join("webhook"));
        webhook.install(&cluster, &ns_ours).await;
        // Apply once with the webhook, so that its label is live and the plan is a no-op again.
        apply::apply(&cluster, objects(&ns_ours, n), &opts)
            .await
            .expect("kgitops apply with the webhook");
        let before = request_counts(&client).await;
        let start = Instant::now();
        let cp = apply::plan(&cluster, objects(&ns_ours, n), &opts)
            .await
            .expect("kgitops plan");
        let elapsed = start.elapsed();
        let req = delta(&before, &request_counts(&client).await);
        assert!(!cp.live.plan.has_changes(), "a no-op plan shows changes with the webhook");
        let deployments = objects(&ns_ours, n)
            .iter()
            .filter(|o| o["kind"] == "Deployment")
            .count() as u64;
        println!(
            "no-op diff, webhook     kgitops {:>8.1} ms {:>5} req   dry-runs {} for {deployments} Deployments",
            elapsed.as_secs_f64() * 1e3,
            total(&req),
            dry_runs(&req)
        );
        println!("{:<22}   kgitops requests {req:?}", "");
        assert_eq!(dry_runs(&req), deployments);
        // First apply through a throttled identity, each tool into a namespace of its own.
        let home = format!("bench-th-{suffix}");
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
        namespaces
            .create(
                &kube::api::PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": home}})).expect("namespace"),
            )
            .await
            .expect("create namespace");
        let throttled = throttle::throttled_identity(&client, &kubeconfig, &home).await;
        let throttled_kubeconfig = dir.path().join("throttled.kubeconfig");
        std::fs::write(&throttled_kubeconfig, &throttled.kubeconfig).expect("write kubeconfig");
        let (ns_ours, ns_theirs) = (format!("bench-tkg-{suffix}"), format!("bench-tkc-{suffix}"));
        let yaml: String = objects(&ns_theirs, n)
            .iter()
            .map(|o| format!("{}---\n", kgitops::manifest::yaml::to_yaml(o)))
            .collect();
        let throttled_file = dir.path().join("throttled-objects.yaml");
        std::fs::write(&throttled_file, yaml).expect("write manifests");
        let slow = kgitops::plan::connect::connect(
            Some(&throttled_kubeconfig),
            None,
            &kgitops::plan::client::ClientOptions::default(),
        )
        .await
        .expect("throttled client");
        let opts = ApplyOptions::new(
            "bench-throttled",
            InventoryRef {
                namespace: ns_ours.clone(),
                name: "kgitops-bench".into(),
            },
        );
        let rejected_before = throttle::rejected(&client, &throttled.flow_schema).await;
        let before = request_counts(&client).await;
        let start = Instant::now();
        let set = apply::apply(&slow, objects(&ns_ours, n), &opts)
            .await
            .expect("kgitops apply through the throttled identity");
        let ours = start.elapsed();
        let ours_req = delta(&before, &request_counts(&client).await);
        let ours_rejected = throttle::rejected(&client, &throttled.flow_schema).await - rejected_before;
        assert_eq!(set.changes.len(), n + 1);
        let rejected_before = throttle::rejected(&client, &throttled.flow_schema).await;
        let before = request_counts(&client).await;
        let (theirs, _) = kubectl(
            &throttled_kubeconfig,
            &["apply", "--server-side", "-f", throttled_file.to_str().expect("utf-8 path")],
        );
        let theirs_req = delta(&before, &request_counts(&client).await);
        let theirs_rejected = throttle::rejected(&client, &throttled.flow_schema).await - rejected_before;
        row("first apply, throttled", ours, &ours_req, theirs, &theirs_req);
        println!(
            "{:<22}   429 answers: kgitops {ours_rejected} (its client counted {}), kubectl {theirs_rejected}",
            "",
            slow.api_stats().throttled()
        );
    });
}
