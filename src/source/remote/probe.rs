//! The probe of a smart-HTTP remote before a fetch, and what a failed fetch says about the git
//! host. libgit2 reports an HTTP error as a message and never shows the response's headers, so
//! before each fetch over http(s) kgitops asks for the ref advertisement itself
//! (`GET <url>/info/refs?service=git-upload-pack`, what every git client asks first). That answer
//! says three things:
//!
//! - 429 Too Many Requests: the host throttles us, with `Retry-After` when it says how long;
//! - 5xx: the host is down, `Retry-After` likewise;
//! - 200: the branch's commit, so when it is the one the mirror already holds the libgit2 fetch
//!   (another advertisement and an upload-pack request) is skipped: an unchanged poll costs one
//!   request instead of two.
//!
//! Any other answer (401, 404, a redirect, a dumb server), a connection that fails, or a proxy in
//! the environment (`https_proxy`, `http_proxy`, `all_proxy`: the probe connects directly and would
//! bypass it) leaves the decision to libgit2, which reports those cases as it always did.
//! Credentials are sent only to the configured URL's host: the probe never follows a redirect.
//!
//! [`RemoteError::host_trouble`] is the one place that decides whether a failure means the host is
//! throttling or down (the daemon then backs off) or something else (credentials, a missing
//! branch: retried as before).

use std::time::Duration;

use axum::body::Bytes;
use base64::Engine as _;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::url::{RemoteUrl, Transport};
use super::{RemoteError, RemoteSpec, Secrets};

/// The longest `Retry-After` honoured; a longer one (or a date further away) is cut to this, so a
/// misconfigured host cannot stop the daemon for days.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The largest ref advertisement read; a repository with more refs than fit is not probed.
pub const MAX_ADVERTISEMENT_BYTES: usize = 8 * 1024 * 1024;

/// The environment variables that route HTTP through a proxy (lower and upper case).
const PROXY_VARS: [&str; 6] = [
    "https_proxy",
    "HTTPS_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "all_proxy",
    "ALL_PROXY",
];

/// What the probe found out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The branch is still at the commit the caller already has: no fetch is needed.
    Unchanged,
    /// The branch moved, or the probe could not tell (not smart HTTP, a proxy, an answer the probe
    /// does not judge): fetch.
    Fetch,
}

/// How the git host is failing us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostState {
    /// HTTP 429.
    Throttled,
    /// HTTP 5xx, a connection refused or reset, an SSH session that does not start, a timeout.
    Down,
}

impl HostState {
    /// `throttled` or `down`, as `/status` and metrics say it.
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Throttled => "throttled",
            HostState::Down => "down",
        }
    }
}

/// A failure that is the git host's state, not ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostTrouble {
    pub state: HostState,
    /// How long the host asked us to wait (`Retry-After`), at most [`MAX_RETRY_AFTER`].
    pub retry_after: Option<Duration>,
}

/// Fragments of libgit2 messages (lower case) that mean the host could not be reached or failed
/// on its side: connections refused, reset or not resolvable, SSH sessions that do not start.
const DOWN_MESSAGES: [&str; 8] = [
    "failed to connect",
    "connection refused",
    "connection reset",
    "could not resolve",
    "failed to resolve",
    "failed to start ssh session",
    "ssh could not connect",
    "unexpected eof",
];

impl RemoteError {
    /// Whether this failure says the git host throttles us or is down (and for how long it asked
    /// us to wait); `None` for failures that are about the request (credentials, host key, branch,
    /// cache).
    pub fn host_trouble(&self) -> Option<HostTrouble> {
        match self {
            RemoteError::Throttled { retry_after, .. } => Some(HostTrouble {
                state: HostState::Throttled,
                retry_after: *retry_after,
            }),
            RemoteError::Unavailable { retry_after, .. } => Some(HostTrouble {
                state: HostState::Down,
                retry_after: *retry_after,
            }),
            RemoteError::TimedOut { .. } => Some(HostTrouble {
                state: HostState::Down,
                retry_after: None,
            }),
            RemoteError::Fetch { message, .. } => {
                let message = message.to_ascii_lowercase();
                let state = match http_status_in(&message) {
                    Some(429) => Some(HostState::Throttled),
                    Some(500..=599) => Some(HostState::Down),
                    Some(_) => None,
                    None => DOWN_MESSAGES
                        .iter()
                        .any(|m| message.contains(m))
                        .then_some(HostState::Down),
                };
                state.map(|state| HostTrouble {
                    state,
                    retry_after: None,
                })
            }
            _ => None,
        }
    }
}

/// The status code in libgit2's "unexpected http status code: 503" (lower-cased).
fn http_status_in(message: &str) -> Option<u16> {
    let (_, rest) = message.split_once("status code: ")?;
    rest.get(..3)?.parse().ok()
}

/// Asks the remote of `spec` for its ref advertisement and compares the branch's commit with
/// `known` (what the mirror holds). Errors only for what the host said about itself (429, 5xx)
/// and for unreadable credential files; everything else is [`Probe::Fetch`].
pub async fn probe(spec: &RemoteSpec, known: Option<&str>) -> Result<Probe, RemoteError> {
    let Ok(url) = RemoteUrl::parse(&spec.url) else {
        return Ok(Probe::Fetch);
    };
    if !matches!(url.transport, Transport::Http { .. }) || proxy_configured() {
        return Ok(Probe::Fetch);
    }
    let configured = Secrets::load(spec, &url)?.userpass;
    let Some((uri, userinfo)) = advertisement_uri(&url) else {
        return Ok(Probe::Fetch);
    };
    let credentials = configured.or(userinfo);
    let mut request = axum::http::Request::get(uri.as_str())
        .header(
            "user-agent",
            concat!("git/2.0 (kgitops/", env!("CARGO_PKG_VERSION"), ")"),
        )
        .header("accept", "*/*");
    if let Some((user, password)) = &credentials {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request = request.header("authorization", format!("Basic {basic}"));
    }
    let Ok(request) = request.body(Empty::<Bytes>::new()) else {
        return Ok(Probe::Fetch);
    };
    let Ok(builder) = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
    else {
        return Ok(Probe::Fetch);
    };
    // The legacy client follows no redirects: a 3xx is returned as is (and left to libgit2).
    let client = Client::builder(TokioExecutor::new()).build(
        builder
            .https_or_http()
            .enable_http1()
            .wrap_connector(HttpConnector::new()),
    );
    let answered = tokio::time::timeout(spec.timeout, async {
        let response = client.request(request).await.ok()?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
        let smart = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/x-git-upload-pack-advertisement"));
        let body = if status == 200 && smart {
            Limited::new(response.into_body(), MAX_ADVERTISEMENT_BYTES)
                .collect()
                .await
                .ok()
                .map(|b| b.to_bytes())
        } else {
            None
        };
        Some((status, retry_after, body))
    })
    .await;
    let Ok(Some((status, retry_after, body))) = answered else {
        return Ok(Probe::Fetch);
    };
    let masked = url.masked().to_string();
    match status {
        429 => Err(RemoteError::Throttled {
            url: masked,
            retry_after,
        }),
        500..=599 => Err(RemoteError::Unavailable {
            url: masked,
            message: format!("HTTP {status} from the git host"),
            retry_after,
        }),
        _ => {
            let refname = format!("refs/heads/{}", spec.branch);
            let advertised = body.and_then(|b| advertised_commit(&b, &refname));
            match (advertised, known) {
                (Some(sha), Some(known)) if sha == known => Ok(Probe::Unchanged),
                _ => Ok(Probe::Fetch),
            }
        }
    }
}

/// Whether the environment routes HTTP through a proxy (the probe then stays out of the way).
fn proxy_configured() -> bool {
    PROXY_VARS
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|value| !value.is_empty()))
}

/// `<url>/info/refs?service=git-upload-pack` without userinfo, and the userinfo's user and
/// password (percent-decoded) when the URL carries them.
fn advertisement_uri(url: &RemoteUrl) -> Option<(String, Option<(String, String)>)> {
    let mut parsed = ::url::Url::parse(url.raw()).ok()?;
    let userinfo = (!parsed.username().is_empty()).then(|| {
        let decode = |s: &str| {
            ::url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        (decode(parsed.username()), decode(parsed.password().unwrap_or("")))
    });
    parsed.set_username("").ok()?;
    parsed.set_password(None).ok()?;
    parsed.set_query(None);
    parsed.set_fragment(None);
    let path = format!("{}/info/refs", parsed.path().trim_end_matches('/'));
    parsed.set_path(&path);
    parsed.set_query(Some("service=git-upload-pack"));
    Some((parsed.to_string(), userinfo))
}

/// The commit `refname` points at in a smart-HTTP ref advertisement (pkt-lines: a service line,
/// a flush, then `<sha> <ref>[\0capabilities]` lines), if it is listed.
fn advertised_commit(body: &[u8], refname: &str) -> Option<String> {
    let mut rest = body;
    while rest.len() >= 4 {
        let len = usize::from_str_radix(std::str::from_utf8(&rest[..4]).ok()?, 16).ok()?;
        if len == 0 {
            rest = &rest[4..];
            continue;
        }
        if len < 4 || len > rest.len() {
            return None;
        }
        let line = &rest[4..len];
        rest = &rest[len..];
        let line = line.split(|b| *b == 0).next().unwrap_or(line);
        let line = std::str::from_utf8(line).ok()?.trim_end_matches('\n');
        if let Some((sha, name)) = line.split_once(' ')
            && name == refname
            && sha.len() >= 40
            && sha.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Some(sha.to_string());
        }
    }
    None
}

/// `Retry-After` as a delay from `now`: delta-seconds or an HTTP date; at most
/// [`MAX_RETRY_AFTER`]; `None` when unreadable.
pub fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = jiff::fmt::rfc2822::DateTimeParser::new()
            .parse_timestamp(value)
            .ok()?;
        let seconds = at.as_millisecond().saturating_sub(now.as_millisecond());
        Duration::from_millis(u64::try_from(seconds).unwrap_or(0))
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(line: &str) -> String {
        format!("{:04x}{line}", line.len() + 4)
    }

    #[test]
    fn finds_the_branch_in_an_advertisement() {
        let main = "a".repeat(40);
        let dev = "b".repeat(40);
        let body = format!(
            "{}0000{}{}{}0000",
            pkt("# service=git-upload-pack\n"),
            pkt(&format!("{dev} HEAD\0multi_ack side-band-64k\n")),
            pkt(&format!("{dev} refs/heads/dev\n")),
            pkt(&format!("{main} refs/heads/main\n")),
        );
        assert_eq!(advertised_commit(body.as_bytes(), "refs/heads/main"), Some(main));
        assert_eq!(advertised_commit(body.as_bytes(), "refs/heads/gone"), None);
        assert_eq!(advertised_commit(b"zzzz", "refs/heads/main"), None);
        assert_eq!(advertised_commit(b"00ffshort", "refs/heads/main"), None);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date_and_capped() {
        let now: jiff::Timestamp = "2026-12-07T04:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Mon, 07 Dec 2026 04:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Mon, 07 Dec 2026 03:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
    }

    #[test]
    fn advertisement_uri_drops_userinfo_and_keeps_it_as_credentials() {
        let url = RemoteUrl::parse("https://bot:p%40ss@git.example/org/p.git/").unwrap();
        let (uri, userinfo) = advertisement_uri(&url).unwrap();
        assert_eq!(
            uri,
            "https://git.example/org/p.git/info/refs?service=git-upload-pack"
        );
        assert_eq!(userinfo, Some(("bot".to_string(), "p@ss".to_string())));
        let url = RemoteUrl::parse("http://127.0.0.1:8080/p.git").unwrap();
        assert_eq!(
            advertisement_uri(&url).unwrap(),
            (
                "http://127.0.0.1:8080/p.git/info/refs?service=git-upload-pack".to_string(),
                None
            )
        );
    }

    #[test]
    fn host_trouble_is_told_apart_from_request_errors() {
        let fetch = |message: &str| RemoteError::Fetch {
            url: "u".into(),
            branch: "main".into(),
            message: message.into(),
        };
        let state = |e: RemoteError| e.host_trouble().map(|t| t.state);
        assert_eq!(
            state(fetch("unexpected http status code: 429")),
            Some(HostState::Throttled)
        );
        assert_eq!(
            state(fetch("unexpected HTTP status code: 502")),
            Some(HostState::Down)
        );
        assert_eq!(state(fetch("unexpected http status code: 404")), None);
        assert_eq!(
            state(fetch("failed to connect to 127.0.0.1: Connection refused")),
            Some(HostState::Down)
        );
        assert_eq!(
            state(fetch(
                "failed to start SSH session: Unable to exchange encryption keys"
            )),
            Some(HostState::Down)
        );
        assert_eq!(
            state(fetch("no repository at /x: no such file or directory")),
            None
        );
        let throttled = RemoteError::Throttled {
            url: "u".into(),
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            throttled.host_trouble(),
            Some(HostTrouble {
                state: HostState::Throttled,
                retry_after: Some(Duration::from_secs(7))
            })
        );
        let auth = RemoteError::Auth {
            url: "u".into(),
            message: "refused".into(),
        };
        assert_eq!(auth.host_trouble(), None);
    }
}
