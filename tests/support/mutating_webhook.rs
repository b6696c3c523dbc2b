//! A real mutating admission webhook for the test rig: an HTTPS server on 127.0.0.1 (rustls, a
//! certificate of its own CA made with the `openssl` CLI) answering AdmissionReview v1 requests
//! with a JSONPatch that adds the label [`INJECTED_LABEL`] to the object, and the
//! MutatingWebhookConfiguration that sends it the Deployments of one namespace
//! (`failurePolicy: Fail`, so a webhook that is not reached fails the request instead of hiding).
//!
//! The server runs on threads of its own (one per connection, HTTP/1.1 keep-alive), independent of
//! the tokio runtime of the test that started it, and lives as long as the test process.
#![allow(dead_code)] // each user uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::{Duration, Instant};

use base64::Engine as _;
use kgitops::manifest::Gvk;
use kgitops::plan::Cluster;
use serde_json::{Value, json};

/// The label the webhook injects, with value `"true"`.
pub const INJECTED_LABEL: &str = "rig.kgitops.dev/injected";

/// A running webhook server.
pub struct MutatingWebhook {
    addr: SocketAddr,
    ca_pem: String,
    calls: Arc<AtomicUsize>,
}

impl MutatingWebhook {
    /// Makes a CA and a server certificate for 127.0.0.1 in `dir` and starts serving.
    pub fn start(dir: &Path) -> MutatingWebhook {
        std::fs::create_dir_all(dir).expect("webhook dir");
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        openssl(
            dir,
            &format!(
                "req -x509 {ec} -keyout ca.key -out ca.crt -days 2 -subj /CN=kgitops-rig-webhook-ca \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"
            ),
        );
        openssl(
            dir,
            &format!("req {ec} -keyout server.key -out server.csr -subj /CN=127.0.0.1"),
        );
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
        )
        .expect("write server.ext");
        openssl(
            dir,
            "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 2 -days 2 \
            -extfile server.ext -outform DER -out server.der",
        );
        openssl(
            dir,
            "pkcs8 -topk8 -nocrypt -in server.key -outform DER -out server.key.der",
        );

        let cert = std::fs::read(dir.join("server.der")).expect("server.der");
        let key = std::fs::read(dir.join("server.key.der")).expect("server.key.der");
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_no_client_auth()
                .with_single_cert(
                    vec![rustls::pki_types::CertificateDer::from(cert)],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
                )
                .expect("server certificate");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook");
        let addr = listener.local_addr().expect("webhook address");
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let config = config.clone();
                let calls = counted.clone();
                std::thread::spawn(move || serve(stream, config, &calls));
            }
        });
        MutatingWebhook {
            addr,
            ca_pem: std::fs::read_to_string(dir.join("ca.crt")).expect("ca.crt"),
            calls,
        }
    }

    /// AdmissionReview requests answered so far (dry-runs included).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Installs [`MutatingWebhook::configuration`] for `namespace` (named `inject-<namespace>`) and
    /// waits until the apiserver calls the webhook: its configuration cache lags the write by up
    /// to a second. Panics after 30 s.
    pub async fn install(&self, cluster: &Cluster, namespace: &str) {
        let config = self.configuration(&format!("inject-{namespace}"), namespace);
        let kind = Gvk::from_api_version("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration");
        let r = cluster.resolve(&kind).await.expect("discovery").expect("served");
        cluster
            .apply(&r, &config, "rig", false)
            .await
            .expect("webhook configuration");
        let probe = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "webhook-probe", "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": "probe"}}, "template": {"metadata": {"labels": {"app": "probe"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}});
        let deployments = cluster
            .resolve(&Gvk::from_api_version("apps/v1", "Deployment"))
            .await
            .expect("discovery")
            .expect("served");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(answer) = cluster.apply(&deployments, &probe, "rig", true).await
                && answer["metadata"]["labels"][INJECTED_LABEL] == "true"
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the webhook was not called within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A MutatingWebhookConfiguration `name` sending CREATE and UPDATE of apps/v1 Deployments in
    /// `namespace` (by its `kubernetes.io/metadata.name` label) to this server.
    pub fn configuration(&self, name: &str, namespace: &str) -> Value {
        json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{
                "name": "inject.rig.kgitops.dev",
                "clientConfig": {
                    "url": format!("https://{}/mutate", self.addr),
                    "caBundle": base64::engine::general_purpose::STANDARD.encode(&self.ca_pem),
                },
                "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": ["apps"],
                           "apiVersions": ["v1"], "resources": ["deployments"]}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
            }],
        })
    }
}

/// Runs `openssl ARGS` (split at spaces) in `dir`; panics with its stderr when it fails.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Answers the AdmissionReviews of one connection until the client closes it.
fn serve(stream: TcpStream, config: Arc<rustls::ServerConfig>, calls: &AtomicUsize) {
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut reader = BufReader::new(rustls::StreamOwned::new(conn, stream));
    loop {
        let mut length = 0usize;
        let mut first = true;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" && !first {
                break;
            }
            first = false;
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        calls.fetch_add(1, Ordering::SeqCst);
        let answer = review(&serde_json::from_slice(&body).unwrap_or(Value::Null)).to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        let stream = reader.get_mut();
        if stream
            .write_all(response.as_bytes())
            .and_then(|()| stream.flush())
            .is_err()
        {
            return;
        }
    }
}

/// The AdmissionReview answer: allowed, with a JSONPatch adding [`INJECTED_LABEL`].
fn review(request: &Value) -> Value {
    let uid = request.pointer("/request/uid").cloned().unwrap_or(Value::Null);
    let object = request.pointer("/request/object").cloned().unwrap_or(Value::Null);
    let patch = if object.pointer("/metadata/labels").is_some_and(Value::is_object) {
        json!([{"op": "add", "path": format!("/metadata/labels/{}", INJECTED_LABEL.replace('/', "~1")),
                "value": "true"}])
    } else {
        json!([{"op": "add", "path": "/metadata/labels", "value": {INJECTED_LABEL: "true"}}])
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": uid,
            "allowed": true,
            "patchType": "JSONPatch",
            "patch": base64::engine::general_purpose::STANDARD.encode(patch.to_string()),
        },
    })
}
