//! `source.verify`: only commits signed by trusted keys are applied.
//!
//! This module owns the daemon's side of [`crate::source::verify`]: its configuration
//! ([`VerifyConfig`]), and the [`Gate`] the revision follower passes every new head through before
//! the workers see it. A refused head is reported once, by the follower: `/status`
//! (`source.verification`: commit, signer if any, reason), the metrics
//! `kgitops_commit_verifications_total{result,reason}` and `kgitops_untrusted_revision`, and one
//! `verify` alert (resolved when a trusted head follows). It is then published to the workers
//! marked untrusted ([`super::revisions::Revision::untrusted`]): they do not render it, keep their
//! last good revision, record `refused` as their last result and publish a Kubernetes Event on
//! their inventory. The next trusted head is applied as usual; a force-push or a merge is judged
//! like any other head (a merge commit by its own signature).
//!
//! The key files are read again for every new head, so a rotated key in a mounted Secret is used
//! without a restart; a file that became unreadable keeps the keys read before (logged).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::Shared;
use super::alerts::Alert;
use super::status::now;
use crate::source::GitRepo;
use crate::source::verify::{Refusal, Signer, TrustedKeys, Verdict, VerifyError};

/// `source.verify`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// Which commits must be signed: `head`, the commit applied.
    #[serde(default)]
    pub mode: VerifyMode,
    /// Armored OpenPGP public keys (files; any number of keys each).
    #[serde(default)]
    pub openpgp_keys: Vec<PathBuf>,
    /// SSH keys in `allowed_signers` format.
    #[serde(default)]
    pub ssh_allowed_signers: Option<PathBuf>,
}

/// `source.verify.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifyMode {
    /// The commit to apply (the branch's head) must carry a valid signature by a trusted key.
    #[default]
    Head,
}

impl VerifyConfig {
    /// Relative key paths are relative to the configuration file.
    pub fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        self.openpgp_keys.iter_mut().for_each(fix);
        if let Some(p) = &mut self.ssh_allowed_signers {
            fix(p);
        }
    }

    /// Reads the trusted keys (at start, so a bad key file stops the daemon before it runs).
    pub fn load(&self) -> Result<TrustedKeys, VerifyError> {
        TrustedKeys::load(&self.openpgp_keys, self.ssh_allowed_signers.as_deref())
    }
}

/// The verification of the newest head, as `/status` shows it (`source.verification`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VerificationStatus {
    pub commit: String,
    pub trusted: bool,
    /// Who signed, when the signature names a trusted key (also for a refused commit: an expired
    /// or revoked key, a bad signature).
    pub signer: Option<Signer>,
    /// Why the commit is refused: `unsigned`, `unknown-key`, `bad-signature`, `expired-key`,
    /// `revoked-key`, `wrong-namespace`, `not-valid-at-commit-time`, `unsupported`, `malformed`,
    /// `unreadable`.
    pub reason: Option<String>,
    pub message: Option<String>,
    /// When it was judged (RFC 3339).
    pub at: String,
}

/// The verification line of the `/status` HTML page (every value escaped).
pub fn html(v: &VerificationStatus) -> String {
    let escape = super::status::escape;
    let signer = v
        .signer
        .as_ref()
        .map(|s| format!(", signed by {}", escape(&s.to_string())))
        .unwrap_or_default();
    let commit = v.commit.get(..12).unwrap_or(&v.commit);
    if v.trusted {
        format!(
            "<p>Signature of <code>{}</code>: <span class=\"ok\">trusted{signer}</span></p>",
            escape(commit)
        )
    } else {
        format!(
            "<p>Signature of <code>{}</code>: <span class=\"bad\">not trusted, not applied: {}{signer}</span></p>",
            escape(commit),
            escape(v.message.as_deref().unwrap_or("-"))
        )
    }
}

/// Judges each new head against the trusted keys.
#[derive(Debug)]
pub struct Gate {
    config: VerifyConfig,
    keys: Mutex<TrustedKeys>,
}

impl Gate {
    pub fn new(config: VerifyConfig) -> Result<Gate, VerifyError> {
        let keys = config.load()?;
        Ok(Gate {
            config,
            keys: Mutex::new(keys),
        })
    }

    /// Judges commit `sha` of `repo` and reports the verdict (status, metrics, alert). Returns
    /// `None` when trusted, else the message the workers record.
    pub async fn judge(&self, shared: &Shared, repo: &GitRepo, sha: &str) -> Option<String> {
        let keys = match self.config.load() {
            Ok(keys) => {
                *self.keys.lock().unwrap_or_else(|p| p.into_inner()) = keys.clone();
                keys
            }
            Err(e) => {
                tracing::warn!("source.verify: {e}; using the keys read before");
                self.keys.lock().unwrap_or_else(|p| p.into_inner()).clone()
            }
        };
        let (repo, rev) = (repo.clone(), sha.to_string());
        // The repository lock may be held by a render reading an object: off the async threads.
        let judged = tokio::task::spawn_blocking(move || {
            let commit = repo.signed_commit(&rev)?;
            Ok::<_, crate::source::SourceError>(keys.verify(&commit, jiff::Timestamp::now().as_second()))
        })
        .await;
        let verdict = match judged {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => Verdict::Refused {
                signer: None,
                refusal: Refusal::Unreadable(e.to_string()),
            },
            Err(e) => Verdict::Refused {
                signer: None,
                refusal: Refusal::Unreadable(format!("verification task failed: {e}")),
            },
        };
        self.report(shared, sha, &verdict)
    }

    fn report(&self, shared: &Shared, sha: &str, verdict: &Verdict) -> Option<String> {
        let status = VerificationStatus {
            commit: sha.to_string(),
            trusted: verdict.is_trusted(),
            signer: verdict.signer().cloned(),
            reason: verdict.refusal().map(|r| r.reason().to_string()),
            message: verdict.refusal().map(|r| r.to_string()),
            at: now(),
        };
        shared.status.source(|s| s.verification = Some(status));
        match verdict {
            Verdict::Trusted(signer) => {
                tracing::info!(revision = sha, "commit signed by {signer}: trusted");
                shared.metrics.verified("trusted", "");
                shared.alerter.resolve(
                    "verify",
                    None,
                    format!("commit {sha} is trusted (signed by {signer})"),
                );
                None
            }
            Verdict::Refused { signer, refusal } => {
                let by = signer
                    .as_ref()
                    .map(|s| format!(" (signer: {s})"))
                    .unwrap_or_default();
                let message = format!("commit {sha}: not trusted: {refusal}{by}");
                tracing::warn!(
                    revision = sha,
                    reason = refusal.reason(),
                    "{message}; not applied, the clusters keep their last good revision"
                );
                shared.metrics.verified("refused", refusal.reason());
                let mut alert = Alert::firing(
                    "verify",
                    "verify".into(),
                    None,
                    format!("commit {sha} is not applied: {}", refusal.reason()),
                );
                alert.details = vec![refusal.to_string()];
                if let Some(s) = signer {
                    alert.details.push(format!("signer: {s}"));
                }
                alert.revision = Some(sha.to_string());
                shared.alerter.fire(alert);
                Some(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_refuses_unknown_keys_and_modes() {
        let c: VerifyConfig =
            serde_saphyr::from_str("mode: head\nopenpgp_keys: [a.asc]\nssh_allowed_signers: s\n").unwrap();
        assert_eq!(c.mode, VerifyMode::Head);
        assert_eq!(c.openpgp_keys, vec![PathBuf::from("a.asc")]);
        assert!(serde_saphyr::from_str::<VerifyConfig>("mode: all\n").is_err());
        assert!(serde_saphyr::from_str::<VerifyConfig>("keys: [a]\n").is_err());
    }

    #[test]
    fn the_status_page_says_why_a_head_is_refused_escaped() {
        let v = VerificationStatus {
            commit: "0123456789abcdef".into(),
            trusted: false,
            signer: Some(Signer::Ssh {
                fingerprint: "SHA256:x".into(),
                principal: "<eve>".into(),
            }),
            reason: Some("unknown-key".into()),
            message: Some("signed by SSH key SHA256:x, which is not a trusted key".into()),
            at: String::new(),
        };
        let page = html(&v);
        assert!(page.contains("<code>0123456789ab</code>"), "{page}");
        assert!(
            page.contains("not trusted, not applied: signed by SSH key"),
            "{page}"
        );
        assert!(page.contains("&lt;eve&gt;") && !page.contains("<eve>"), "{page}");
    }
}
