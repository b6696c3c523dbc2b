//! A TCP proxy to the test apiserver that a test can partition (freeze and heal), for the daemon
//! tests of leadership and sharding under a network cut (daemon.rs, fleet.rs).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A TCP proxy to the apiserver that the test can partition: frozen, it forwards nothing and holds
/// every connection open (requests hang, as to a paused or cut-off peer); healed, it closes what
/// it held (what was in flight is lost) and forwards new connections again.
pub struct Partition {
    pub port: u16,
    state: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Partition {
    pub async fn start(upstream: SocketAddr) -> Partition {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(tokio::sync::watch::Sender::new(false));
        let frozen = state.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let frozen = frozen.clone();
                tokio::spawn(async move {
                    let healed = || {
                        let mut rx = frozen.subscribe();
                        async move {
                            let _ = rx.wait_for(|f| !*f).await;
                        }
                    };
                    if *frozen.borrow() {
                        healed().await;
                        return;
                    }
                    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let mut rx = frozen.subscribe();
                    let freezes = async move {
                        let _ = rx.wait_for(|f| *f).await;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                        _ = freezes => {}
                    }
                    // Frozen: hold both sockets, forward nothing, until healed.
                    healed().await;
                });
            }
        });
        Partition { port, state }
    }

    pub fn freeze(&self) {
        self.state.send_replace(true);
    }

    pub fn heal(&self) {
        self.state.send_replace(false);
    }

    /// A copy of the test control plane's kubeconfig that goes through this proxy, in `dir`.
    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let text = std::fs::read_to_string(super::common::control_plane().kubeconfig()).unwrap();
        let re = regex::Regex::new(r"server: https://127\.0\.0\.1:\d+").unwrap();
        assert!(re.is_match(&text), "{text}");
        let text = re.replace(&text, format!("server: https://127.0.0.1:{}", self.port).as_str());
        let path = dir.join("kubeconfig-partitioned");
        std::fs::write(&path, text.as_ref()).unwrap();
        path
    }
}

/// The apiserver's address in `kubeconfig` (the test control plane's).
pub fn apiserver_addr(kubeconfig: &Path) -> SocketAddr {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    let re = regex::Regex::new(r"server: https://(127\.0\.0\.1:\d+)").unwrap();
    re.captures(&text).unwrap()[1].parse().unwrap()
}
