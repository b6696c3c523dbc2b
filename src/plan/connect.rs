//! A [`Cluster`] connection from a kubeconfig file and context, else `KUBECONFIG`, else the
//! in-cluster service account: the rule every command and the daemon share.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::Cluster;
use super::client::{self, ClientOptions};

/// The User-Agent of every request kgitops sends to an apiserver.
pub const USER_AGENT: &str = concat!("kgitops/", env!("CARGO_PKG_VERSION"));

/// Why no client could be made. Names the kubeconfig it read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(String);

/// Connects from `kubeconfig` (else `KUBECONFIG`, else in-cluster) and `context`, with the request
/// stack of [`client`] shaped by `client_options` (requests in flight, rate limit, retries). Reads
/// configuration only: nothing is sent to the server yet.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    client_options: &ClientOptions,
) -> Result<Cluster, ConnectError> {
    let options = KubeConfigOptions {
        context: context.map(str::to_string),
        ..KubeConfigOptions::default()
    };
    let env_path = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty());
    let config = if let Some(path) = kubeconfig {
        let kc = Kubeconfig::read_from(path)
            .map_err(|e| ConnectError(format!("{}: cannot read kubeconfig: {e}", path.display())))?;
        kube::Config::from_custom_kubeconfig(kc, &options)
            .await
            .map_err(|e| ConnectError(format!("{}: {e}", path.display())))?
    } else if env_path.is_some() {
        let kc = Kubeconfig::from_env()
            .map_err(|e| ConnectError(format!("KUBECONFIG: {e}")))?
            .ok_or_else(|| ConnectError("KUBECONFIG: no kubeconfig".into()))?;
        kube::Config::from_custom_kubeconfig(kc, &options)
            .await
            .map_err(|e| ConnectError(format!("KUBECONFIG: {e}")))?
    } else {
        kube::Config::incluster().map_err(|e| {
            ConnectError(format!(
                "no kubeconfig given, no KUBECONFIG, and not running in a cluster: {e}"
            ))
        })?
    };
    let server = config.cluster_url.to_string();
    let mut config = config;
    // Name ourselves to the apiserver (audit logs, request attribution), as kubectl does.
    config.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    let (client, stats) = client::build(config, client_options).map_err(|e| ConnectError(e.to_string()))?;
    Ok(Cluster::new(client, client_options.concurrency)
        .with_server(&server)
        .with_stats(stats))
}
