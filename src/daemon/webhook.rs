//! `POST /webhook`: push events from GitHub (`X-Hub-Signature-256`, HMAC-SHA256 of the body) and
//! GitLab (`X-Gitlab-Token`, the shared secret) trigger an immediate fetch. The check is pure (headers,
//! body and secret in, a verdict out) so it is tested without a server; the HTTP layer maps it to
//! status codes: 202 accepted, 200 ignored (ping, another branch, another event), 401 wrong or
//! missing signature, 400 unreadable payload. Comparisons are constant-time.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Largest webhook body accepted: 256 KiB. A push payload is a few KiB; GitHub's for a large
/// merge (it lists up to 20 commits and their changed paths) reaches some 100 KiB. Larger bodies
/// are refused (413) from their Content-Length before any byte of them is read, or as soon as a
/// streamed (chunked) body passes the limit.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What a verified request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A push to the followed branch: fetch now.
    Fetch { provider: &'static str },
    /// Authentic, but nothing to do (ping, another branch, another event); the reason is returned.
    Ignore(String),
}

/// Why a request is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// 401: the signature or token is missing or wrong. Triggers nothing.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 400: authentic but unreadable.
    #[error("bad request: {0}")]
    BadRequest(String),
}

/// The headers the check reads, lower-case names.
pub trait Headers {
    fn get(&self, name: &str) -> Option<&str>;
}

impl Headers for axum::http::HeaderMap {
    fn get(&self, name: &str) -> Option<&str> {
        axum::http::HeaderMap::get(self, name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Deserialize)]
struct PushPayload {
    #[serde(rename = "ref")]
    reference: Option<String>,
}

/// Checks a webhook request against `secret` and says whether `branch` must be fetched.
pub fn check(
    headers: &impl Headers,
    body: &[u8],
    secret: &[u8],
    branch: &str,
) -> Result<Verdict, WebhookError> {
    if secret.is_empty() {
        // An empty HMAC key or token is known to everyone: nothing would be authenticated.
        return Err(WebhookError::Unauthorized("the webhook secret is empty"));
    }
    if let Some(signature) = headers.get("x-hub-signature-256") {
        verify_github(signature, body, secret)?;
        let event = headers.get("x-github-event").unwrap_or("");
        return match event {
            "push" => push_verdict("github", payload_json(headers, body)?, branch),
            "ping" => Ok(Verdict::Ignore("ping".into())),
            other => Ok(Verdict::Ignore(format!("event '{other}' is not a push"))),
        };
    }
    if let Some(token) = headers.get("x-gitlab-token") {
        if !bool::from(token.as_bytes().ct_eq(secret)) {
            return Err(WebhookError::Unauthorized("X-Gitlab-Token does not match"));
        }
        let event = headers.get("x-gitlab-event").unwrap_or("");
        return match event {
            "Push Hook" => push_verdict("gitlab", payload_json(headers, body)?, branch),
            other => Ok(Verdict::Ignore(format!("event '{other}' is not a push"))),
        };
    }
    if headers.get("x-hub-signature").is_some() {
        return Err(WebhookError::Unauthorized(
            "only X-Hub-Signature-256 (HMAC-SHA256) is accepted, not the SHA-1 X-Hub-Signature",
        ));
    }
    Err(WebhookError::Unauthorized(
        "no X-Hub-Signature-256 or X-Gitlab-Token header",
    ))
}

fn verify_github(signature: &str, body: &[u8], secret: &[u8]) -> Result<(), WebhookError> {
    let hex_sig = signature
        .strip_prefix("sha256=")
        .ok_or(WebhookError::Unauthorized(
            "X-Hub-Signature-256 is not sha256=<hex>",
        ))?;
    let sig =
        hex::decode(hex_sig).map_err(|_| WebhookError::Unauthorized("X-Hub-Signature-256 is not hex"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|_| WebhookError::Unauthorized("webhook secret unusable"))?;
    mac.update(body);
    mac.verify_slice(&sig)
        .map_err(|_| WebhookError::Unauthorized("X-Hub-Signature-256 does not match the body"))
}

/// The push payload: JSON, or GitHub's form encoding (`payload=<json>`).
fn payload_json(headers: &impl Headers, body: &[u8]) -> Result<PushPayload, WebhookError> {
    let form = headers
        .get("content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let parsed = if form {
        let payload = url::form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned())
            .ok_or_else(|| WebhookError::BadRequest("form body without a payload field".into()))?;
        serde_json::from_str(&payload)
    } else {
        serde_json::from_slice(body)
    };
    parsed.map_err(|e| WebhookError::BadRequest(format!("push payload is not valid JSON: {e}")))
}

fn push_verdict(provider: &'static str, payload: PushPayload, branch: &str) -> Result<Verdict, WebhookError> {
    let wanted = format!("refs/heads/{branch}");
    match payload.reference {
        Some(r) if r == wanted => Ok(Verdict::Fetch { provider }),
        Some(r) => Ok(Verdict::Ignore(format!("push to {r}, following {wanted}"))),
        None => Err(WebhookError::BadRequest("push payload without ref".into())),
    }
}

/// The signature GitHub sends for `body` (for tests and benchmarks that play GitHub).
pub fn github_signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct H(HashMap<&'static str, String>);
    impl Headers for H {
        fn get(&self, name: &str) -> Option<&str> {
            self.0.get(name).map(String::as_str)
        }
    }

    const BODY: &[u8] = br#"{"ref":"refs/heads/main","after":"abc"}"#;

    fn github(sig: String, event: &str) -> H {
        H(HashMap::from([
            ("x-hub-signature-256", sig),
            ("x-github-event", event.to_string()),
        ]))
    }

    #[test]
    fn github_push_with_a_valid_signature_fetches() {
        let h = github(github_signature(b"s3cret", BODY), "push");
        assert_eq!(
            check(&h, BODY, b"s3cret", "main"),
            Ok(Verdict::Fetch { provider: "github" })
        );
    }

    #[test]
    fn github_wrong_or_missing_signature_is_unauthorized() {
        let h = github(github_signature(b"other", BODY), "push");
        assert!(matches!(
            check(&h, BODY, b"s3cret", "main"),
            Err(WebhookError::Unauthorized(_))
        ));
        let tampered = br#"{"ref":"refs/heads/main","after":"abd"}"#;
        let h = github(github_signature(b"s3cret", BODY), "push");
        assert!(matches!(
            check(&h, tampered, b"s3cret", "main"),
            Err(WebhookError::Unauthorized(_))
        ));
        let h = github("sha256=zz".into(), "push");
        assert!(matches!(
            check(&h, BODY, b"s3cret", "main"),
            Err(WebhookError::Unauthorized(_))
        ));
        assert!(matches!(
            check(&H(HashMap::new()), BODY, b"s3cret", "main"),
            Err(WebhookError::Unauthorized(_))
        ));
        let sha1 = H(HashMap::from([("x-hub-signature", "sha1=00".to_string())]));
        assert!(matches!(
            check(&sha1, BODY, b"s3cret", "main"),
            Err(WebhookError::Unauthorized(_))
        ));
    }

    #[test]
    fn github_ping_other_branch_and_form_payload() {
        let h = github(github_signature(b"k", b"{}"), "ping");
        assert!(matches!(check(&h, b"{}", b"k", "main"), Ok(Verdict::Ignore(_))));
        let other = br#"{"ref":"refs/heads/feature"}"#;
        let h = github(github_signature(b"k", other), "push");
        assert!(matches!(check(&h, other, b"k", "main"), Ok(Verdict::Ignore(r)) if r.contains("feature")));
        let form = b"payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D";
        let mut h = github(github_signature(b"k", form), "push");
        h.0.insert("content-type", "application/x-www-form-urlencoded".into());
        assert_eq!(
            check(&h, form, b"k", "main"),
            Ok(Verdict::Fetch { provider: "github" })
        );
        let h = github(github_signature(b"k", b"not json"), "push");
        assert!(matches!(
            check(&h, b"not json", b"k", "main"),
            Err(WebhookError::BadRequest(_))
        ));
    }

    #[test]
    fn an_empty_secret_authenticates_nothing() {
        let h = github(github_signature(b"", BODY), "push");
        assert!(matches!(
            check(&h, BODY, b"", "main"),
            Err(WebhookError::Unauthorized(_))
        ));
        let h = H(HashMap::from([
            ("x-gitlab-token", String::new()),
            ("x-gitlab-event", "Push Hook".to_string()),
        ]));
        assert!(matches!(
            check(&h, BODY, b"", "main"),
            Err(WebhookError::Unauthorized(_))
        ));
    }

    #[test]
    fn gitlab_token() {
        let h = H(HashMap::from([
            ("x-gitlab-token", "s3cret".to_string()),
            ("x-gitlab-event", "Push Hook".to_string()),
        ]));
        assert_eq!(
            check(&h, BODY, b"s3cret", "main"),
            Ok(Verdict::Fetch { provider: "gitlab" })
        );
        assert!(matches!(
            check(&h, BODY, b"s3cre", "main"),
            Err(WebhookError::Unauthorized(_))
        ));
        let tag = H(HashMap::from([
            ("x-gitlab-token", "s3cret".to_string()),
            ("x-gitlab-event", "Tag Push Hook".to_string()),
        ]));
        assert!(matches!(
            check(&tag, BODY, b"s3cret", "main"),
            Ok(Verdict::Ignore(_))
        ));
    }
}
