//! What the benchmarks against a real apiserver share: the 1,000-object workload and request
//! counts read from the apiserver's own metrics.
#![allow(dead_code)] // each benchmark uses a different part

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// A Namespace `ns` and `n` objects in it: ConfigMaps, ClusterIP Services and Deployments in turn.
pub fn objects(ns: &str, n: usize) -> Vec<Value> {
    let mut out = vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})];
    for i in 0..n {
        let name = format!("app-{i:04}");
        out.push(match i % 3 {
            0 => json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
                "data": {"config.yaml": format!("id: {i}\nlevel: info\n")}}),
            1 => json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                // Ordinary ClusterIP Services: the test control plane has kubeadm's /12 range.
                "spec": {"selector": {"app": name},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}),
            _ => json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                        {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 8080}],
                         "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}),
        });
    }
    out
}

/// `apiserver_request_total` summed by verb; server-side dry-runs are counted apart as
/// `<VERB> (dry-run)`, since they write nothing.
pub async fn request_counts(client: &kube::Client) -> BTreeMap<String, f64> {
    let req = kube::core::Request::new("")
        .get("metrics", &Default::default())
        .expect("request");
    let text = client.request_text(req).await.expect("apiserver /metrics");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let mut verb = label("verb");
        if !label("dry_run").is_empty() {
            verb.push_str(" (dry-run)");
        }
        *out.entry(verb).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
    }
    out
}

/// The change of each count between two readings.
pub fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (v - before.get(k).copied().unwrap_or(0.0)).round() as u64,
            )
        })
        .filter(|(_, v)| *v > 0)
        .collect()
}
