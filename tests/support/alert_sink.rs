//! A webhook receiver for the daemon's alerts in tests: a real HTTP server on 127.0.0.1 that keeps
//! every POST body, parsed as JSON. Its URL carries a path token (`/hook/secret-token`), as Slack's
//! do, so tests can check the URL never shows in any output.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use serde_json::Value;

/// Receives alerts: every POST body, parsed as JSON.
pub struct AlertSink {
    pub url: String,
    received: Arc<Mutex<Vec<Value>>>,
}

impl AlertSink {
    pub fn start() -> AlertSink {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let port = server.server_addr().to_ip().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for mut request in server.incoming_requests() {
                let mut body = String::new();
                let _ = request.as_reader().read_to_string(&mut body);
                if let Ok(v) = serde_json::from_str(&body) {
                    sink.lock().unwrap().push(v);
                }
                let _ = request.respond(tiny_http::Response::empty(200));
            }
        });
        AlertSink {
            url: format!("http://127.0.0.1:{port}/hook/secret-token"),
            received,
        }
    }

    /// Every alert received so far.
    pub fn alerts(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }

    /// The alerts of one kind (`drift`, `not-in-effect`, ...).
    pub fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.alerts().into_iter().filter(|a| a["kind"] == kind).collect()
    }
}
