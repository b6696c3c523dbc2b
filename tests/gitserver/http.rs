//! Smart HTTP on 127.0.0.1: a small HTTP server (tiny_http) that runs the real
//! `git http-backend` as a CGI program for every request, behind HTTP basic authentication: a user
//! name and password, or a token sent as the password, as GitHub and GitLab take it. Faults can be
//! queued ([`GitHttpServer::fail_next`]): the next requests are answered with a status (429 with
//! `Retry-After`, 503) instead of git's answer, as a rate-limiting or failing git host does.

use std::collections::VecDeque;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use base64::Engine;

/// The CGI program that speaks git's smart HTTP protocol.
pub const HTTP_BACKEND: &str = "/usr/lib/git-core/git-http-backend";

/// Called with `METHOD /path?query` before each request is answered.
pub type Hook = Arc<dyn Fn(&str) + Send + Sync>;

/// A running server; stops when dropped.
pub struct GitHttpServer {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    pub port: u16,
    log: Arc<Mutex<Vec<(Instant, String)>>>,
    faults: Arc<Mutex<VecDeque<Fault>>>,
}

/// The fault that is none: the request is answered by git as usual.
const PASS: u16 = 0;

/// A canned answer instead of git's: a status and, optionally, a `Retry-After` value.
#[derive(Clone, Debug)]
struct Fault {
    status: u16,
    retry_after: Option<String>,
}

impl GitHttpServer {
    /// Serves the repositories below `root` (`http://127.0.0.1:PORT/<path below root>`). With
    /// `accounts` non-empty, every request needs basic auth with one of these (user, password)
    /// pairs, else 401.
    pub fn start(root: &Path, accounts: &[(&str, &str)]) -> GitHttpServer {
        Self::start_with_hook(root, accounts, Arc::new(|_| {}))
    }

    /// [`GitHttpServer::start`], calling `hook` before answering each request.
    pub fn start_with_hook(root: &Path, accounts: &[(&str, &str)], hook: Hook) -> GitHttpServer {
        assert!(
            Path::new(HTTP_BACKEND).exists(),
            "{HTTP_BACKEND} is missing: install git (it ships git-http-backend)"
        );
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let accepted: Vec<String> = accounts
            .iter()
            .map(|(u, p)| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
            .collect();
        let root = root.to_path_buf();
        let faults = Arc::new(Mutex::new(VecDeque::<Fault>::new()));
        let (srv, log2, faults2) = (server.clone(), log.clone(), faults.clone());
        let thread = std::thread::spawn(move || {
            for request in srv.incoming_requests() {
                let at = Instant::now();
                let line = format!("{} {}", request.method(), request.url());
                hook(&line);
                let fault = faults2.lock().unwrap().pop_front();
                let status = match fault.filter(|f| f.status != PASS) {
                    Some(fault) => {
                        let mut response =
                            tiny_http::Response::from_string("unavailable\n").with_status_code(fault.status);
                        if let Some(value) = &fault.retry_after {
                            response.add_header(header_of("Retry-After", value));
                        }
                        let _ = request.respond(response);
                        fault.status
                    }
                    None => handle(request, &root, &accepted),
                };
                log2.lock().unwrap().push((at, format!("{line} -> {status}")));
            }
        });
        GitHttpServer {
            server,
            thread: Some(thread),
            port,
            log,
            faults,
        }
    }

    /// Answers the next `times` requests (whatever they ask) with `status` and, when given, a
    /// `Retry-After` header, after the faults already queued.
    pub fn fail_next(&self, status: u16, retry_after: Option<&str>, times: usize) {
        let mut faults = self.faults.lock().unwrap();
        for _ in 0..times {
            faults.push_back(Fault {
                status,
                retry_after: retry_after.map(str::to_string),
            });
        }
    }

    /// Lets the next `times` requests through to git, before the faults queued after this.
    pub fn pass_next(&self, times: usize) {
        self.fail_next(PASS, None, times);
    }

    /// When each request so far arrived, with its log line.
    pub fn timed_log(&self) -> Vec<(Instant, String)> {
        self.log.lock().unwrap().clone()
    }

    /// `http://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }

    /// `METHOD /path?query -> status` for every request so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().iter().map(|(_, l)| l.clone()).collect()
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request: 401 without valid credentials, else whatever git-http-backend says.
fn handle(mut request: tiny_http::Request, root: &Path, accepted: &[String]) -> u16 {
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_string(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let authorization = header("Authorization");
    let user = match authorization.as_deref().and_then(|a| a.strip_prefix("Basic ")) {
        Some(given) if accepted.iter().any(|a| a == given) => {
            let decoded = base64::engine::general_purpose::STANDARD.decode(given).unwrap();
            String::from_utf8_lossy(&decoded)
                .split(':')
                .next()
                .unwrap_or("")
                .to_string()
        }
        _ if accepted.is_empty() => String::new(),
        _ => {
            let response = tiny_http::Response::from_string("authentication required\n")
                .with_status_code(401)
                .with_header(header_of("WWW-Authenticate", "Basic realm=\"git\""));
            let _ = request.respond(response);
            return 401;
        }
    };
    let (path, query) = match request.url().split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (request.url().to_string(), String::new()),
    };
    let mut body = Vec::new();
    if request.as_reader().read_to_end(&mut body).is_err() {
        let _ = request.respond(tiny_http::Response::empty(400));
        return 400;
    }
    let mut cgi = Command::new(HTTP_BACKEND);
    cgi.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", request.method().as_str())
        .env("PATH_INFO", &path)
        .env("QUERY_STRING", &query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REMOTE_USER", &user);
    for (name, var) in [
        ("Content-Type", "CONTENT_TYPE"),
        ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
        ("Git-Protocol", "GIT_PROTOCOL"),
    ] {
        if let Some(value) = header(name) {
            cgi.env(var, value);
        }
    }
    let mut child = cgi
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run git-http-backend");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output().expect("wait for git-http-backend");
    let _ = writer.join();
    let (status, headers, payload) = parse_cgi(&out.stdout);
    let mut response = tiny_http::Response::from_data(payload).with_status_code(status);
    for (name, value) in headers {
        response.add_header(header_of(&name, &value));
    }
    let _ = request.respond(response);
    status
}

/// Splits CGI output into the `Status:` code, the other headers and the body.
fn parse_cgi(out: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let (head_len, sep) = match find(out, b"\r\n\r\n") {
        Some(i) => (i, 4),
        None => (find(out, b"\n\n").expect("CGI output without headers"), 2),
    };
    let head = String::from_utf8_lossy(&out[..head_len]);
    let mut status = 200;
    let mut headers = Vec::new();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_string();
        if name.eq_ignore_ascii_case("Status") {
            status = value.split_whitespace().next().unwrap().parse().unwrap();
        } else {
            headers.push((name.to_string(), value));
        }
    }
    (status, headers, out[head_len + sep..].to_vec())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn header_of(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).unwrap()
}

/// A listener on 127.0.0.1 that accepts connections and never answers: a hung server.
pub struct SilentServer {
    pub port: u16,
    _held: Arc<Mutex<Vec<TcpStream>>>,
    _thread: JoinHandle<()>,
}

impl SilentServer {
    pub fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = held.clone();
        // The thread ends with the test process; it only holds sockets open.
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap().push(stream);
            }
        });
        SilentServer {
            port,
            _held: held,
            _thread: thread,
        }
    }
}

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The bare repositories served by a [`GitHttpServer`] live below this root.
pub fn served_root(tmp: &Path) -> PathBuf {
    let root = tmp.join("served");
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// A plain HTTP server that records every request with the `Authorization` header it carried,
/// and either redirects (302 to `redirect_to` + the request's path and query, after basic auth
/// when `accounts` is non-empty) or asks for credentials (401) on every request: both ends of a
/// redirect to another origin.
pub struct Recorder {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    ip: String,
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    /// Listens on `ip` (any loopback address: 127.0.0.2 is another host than 127.0.0.1).
    pub fn start(ip: &str, accounts: &[(&str, &str)], redirect_to: Option<String>) -> Recorder {
        let server = Arc::new(tiny_http::Server::http(format!("{ip}:0")).expect("bind loopback"));
        let port = server.server_addr().to_ip().expect("an IP listener").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let accepted: Vec<String> = accounts
            .iter()
            .map(|(u, p)| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                )
            })
            .collect();
        let (srv, log2) = (server.clone(), log.clone());
        let thread = std::thread::spawn(move || {
            for request in srv.incoming_requests() {
                let auth = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.as_str().to_string());
                log2.lock().unwrap().push(format!(
                    "{} {} auth={}",
                    request.method(),
                    request.url(),
                    auth.as_deref().unwrap_or("-")
                ));
                let authorized = accepted.is_empty() || auth.is_some_and(|a| accepted.contains(&a));
                let response = match &redirect_to {
                    Some(base) if authorized => tiny_http::Response::from_string("moved\n")
                        .with_status_code(302)
                        .with_header(header_of("Location", &format!("{base}{}", request.url()))),
                    _ => tiny_http::Response::from_string("authentication required\n")
                        .with_status_code(401)
                        .with_header(header_of("WWW-Authenticate", "Basic realm=\"git\"")),
                };
                let _ = request.respond(response);
            }
        });
        Recorder {
            server,
            thread: Some(thread),
            ip: ip.to_string(),
            port,
            log,
        }
    }

    /// `http://IP:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}:{}/{}",
            self.ip,
            self.port,
            path.trim_start_matches('/')
        )
    }

    /// `METHOD /path?query auth=<Authorization header or ->` for every request so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
