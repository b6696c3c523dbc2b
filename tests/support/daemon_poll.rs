//! Reading a running daemon's `/status` and polling until a condition holds, for the tests that run
//! `kgitops run` against the real apiserver (strimzi_health.rs, migration_gates.rs, migration_path.rs).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http_client;

/// GETs `path` from the daemon; anything but 200 fails the test.
pub async fn get_ok(addr: SocketAddr, path: &str) -> String {
    let path = path.to_string();
    let (code, body) = tokio::task::spawn_blocking(move || http_client::http(addr, "GET", &path, &[], b""))
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    body
}

/// The status of the daemon's first (only) cluster.
pub async fn cluster_status(addr: SocketAddr) -> Value {
    let s: Value = serde_json::from_str(&get_ok(addr, "/status").await).unwrap();
    s["clusters"][0].clone()
}

/// Polls `check` every `every` for up to 30 s; fails with `what` and the last thing `check` saw.
pub async fn eventually<T, F, Fut>(what: &str, every: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    eventually_within(what, every, Duration::from_secs(30), check).await
}

/// [`eventually`] with another limit than 30 s (a whole operator release applied on a loaded machine).
pub async fn eventually_within<T, F, Fut>(what: &str, every: Duration, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if start.elapsed() > limit => {
                panic!("timed out after {limit:?} waiting for {what}; last seen:\n{last}")
            }
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// Waits until the cluster's last result is `waiting` on exactly `lines` (in any order: the daemon
/// lists a revision's gates as it finds them); returns its status.
pub async fn waiting(addr: SocketAddr, every: Duration, lines: &[String]) -> Value {
    let mut want = lines.to_vec();
    want.sort();
    eventually("the cluster waiting", every, || {
        let want = want.clone();
        async move {
            let c = cluster_status(addr).await;
            let mut got: Vec<String> = c["waiting"]
                .as_array()
                .map(|a| a.iter().filter_map(|l| l.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            got.sort();
            if c["last_result"]["result"] == "waiting" && got == want {
                Ok(c)
            } else {
                Err(c.to_string())
            }
        }
    })
    .await
}

/// Fails unless the daemon's `/metrics` has `line` (a whole sample: name, labels and value).
pub async fn metric(addr: SocketAddr, line: &str) {
    let metrics = get_ok(addr, "/metrics").await;
    assert!(metrics.contains(line), "{line} not in:\n{metrics}");
}

/// The median of some measured latencies (the upper one of an even count).
pub fn p50(mut figures: Vec<Duration>) -> Duration {
    figures.sort();
    figures[figures.len() / 2]
}
