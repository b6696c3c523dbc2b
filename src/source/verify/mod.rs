//! Commit signature verification: whether a git commit carries a valid signature by a trusted key.
//!
//! This module owns the trust decision for one commit and nothing else: the trusted keys
//! ([`TrustedKeys`], loaded from armored OpenPGP public keys and an SSH `allowed_signers` file),
//! the signature and signed payload of a commit ([`SignedCommit`], read by
//! [`super::GitRepo::signed_commit`] through git2's `extract_signature`), and the typed outcome
//! ([`Verdict`]: trusted with its [`Signer`], or refused with a [`Refusal`] and the signer when it
//! is known). What a refused revision means (not applied, reported) is the caller's business: the
//! command line in `cli/`, the daemon in `daemon/verify.rs`.
//!
//! The policy follows `git verify-commit` (gpg) and `ssh-keygen -Y verify` as git calls it; see
//! docs/commit-verification.md for every rule and why:
//!
//! - OpenPGP ([`openpgp`]): the signature must verify with a trusted key (a primary key, or a
//!   signing subkey bound to it); the key must not be revoked (any revocation, whatever its reason,
//!   as gpg reports `REVKEYSIG`) and not expired now (as gpg reports `EXPKEYSIG` and git refuses).
//! - SSH ([`ssh`]): the sshsig namespace must be `git`; the key must be listed in
//!   `allowed_signers` with `git` among its `namespaces` (when restricted), and `valid-after` /
//!   `valid-before` must hold at the commit's committer time (git passes it as `verify-time`).
//!   `cert-authority` lines are refused when the file is loaded.

mod openpgp;
mod ssh;

use std::path::{Path, PathBuf};

use serde::Serialize;

/// A commit as verification needs it: its signature (the `gpgsig` header) and the bytes it signs
/// (the commit object without that header).
#[derive(Clone, Debug)]
pub struct SignedCommit {
    /// The full sha.
    pub sha: String,
    /// The armored signature, `None` for an unsigned commit.
    pub signature: Option<Vec<u8>>,
    /// The signed bytes: the commit object without its signature header.
    pub payload: Vec<u8>,
    /// The committer time (Unix seconds): the time SSH `valid-after`/`valid-before` are checked
    /// at, as git passes it to `ssh-keygen -Y verify -Overify-time`.
    pub committed_at: i64,
}

/// Who signed a commit, as far as the trusted keys say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Signer {
    /// An OpenPGP key: the certificate's (primary key's) fingerprint, the key id of the key that
    /// signed (the primary or a subkey), and the certificate's primary user id.
    #[serde(rename = "openpgp")]
    OpenPgp {
        fingerprint: String,
        key_id: String,
        user_id: Option<String>,
    },
    /// An SSH key: its SHA-256 fingerprint and the principals of its `allowed_signers` line.
    Ssh { fingerprint: String, principal: String },
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signer::OpenPgp {
                fingerprint,
                key_id,
                user_id,
            } => {
                write!(f, "OpenPGP key {fingerprint}")?;
                if !fingerprint.ends_with(key_id.as_str()) {
                    write!(f, " (subkey {key_id})")?;
                }
                if let Some(uid) = user_id {
                    write!(f, " \"{uid}\"")?;
                }
                Ok(())
            }
            Signer::Ssh {
                fingerprint,
                principal,
            } => write!(f, "SSH key {fingerprint} \"{principal}\""),
        }
    }
}

/// Why a commit is not trusted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the commit is not signed")]
    Unsigned,
    /// The signature names a key that is not among the trusted ones (its id or fingerprint).
    #[error("signed by {0}, which is not a trusted key")]
    UnknownKey(String),
    /// The signature does not verify: the commit was changed after signing, or the signature is
    /// corrupt, or a subkey is not properly bound to its key.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The key (or the subkey that signed) expired at this time (RFC 3339).
    #[error("the key expired at {0}")]
    ExpiredKey(String),
    /// The key (or the subkey that signed) is revoked; the reason its revocation gives.
    #[error("the key is revoked{}", if .0.is_empty() { String::new() } else { format!(" ({})", .0) })]
    RevokedKey(String),
    /// An SSH signature made for another namespace than `git`, or a key whose `allowed_signers`
    /// line does not allow `git`.
    #[error("{0}")]
    WrongNamespace(String),
    /// An SSH key used outside its `valid-after`/`valid-before` window.
    #[error("{0}")]
    NotValidAtCommitTime(String),
    /// A signature kind kgitops does not verify (X.509 / gpgsm).
    #[error("unsupported signature format: {0}")]
    Unsupported(String),
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// The commit itself could not be read to check it (refused: what cannot be checked is not
    /// trusted).
    #[error("cannot read the commit: {0}")]
    Unreadable(String),
}

impl Refusal {
    /// A short stable name: the `reason` of `/status`, metrics and alerts.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::UnknownKey(_) => "unknown-key",
            Refusal::BadSignature(_) => "bad-signature",
            Refusal::ExpiredKey(_) => "expired-key",
            Refusal::RevokedKey(_) => "revoked-key",
            Refusal::WrongNamespace(_) => "wrong-namespace",
            Refusal::NotValidAtCommitTime(_) => "not-valid-at-commit-time",
            Refusal::Unsupported(_) => "unsupported",
            Refusal::Malformed(_) => "malformed",
            Refusal::Unreadable(_) => "unreadable",
        }
    }

    /// Every value [`Refusal::reason`] can take.
    pub const REASONS: [&'static str; 10] = [
        "unsigned",
        "unknown-key",
        "bad-signature",
        "expired-key",
        "revoked-key",
        "wrong-namespace",
        "not-valid-at-commit-time",
        "unsupported",
        "malformed",
        "unreadable",
    ];
}

/// The decision on one commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Trusted(Signer),
    /// Not trusted; `signer` is set when the signature names a trusted key (a bad signature, an
    /// expired or revoked key, a wrong namespace).
    Refused {
        signer: Option<Signer>,
        refusal: Refusal,
    },
}

impl Verdict {
    pub fn is_trusted(&self) -> bool {
        matches!(self, Verdict::Trusted(_))
    }

    pub fn signer(&self) -> Option<&Signer> {
        match self {
            Verdict::Trusted(s) => Some(s),
            Verdict::Refused { signer, .. } => signer.as_ref(),
        }
    }

    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Verdict::Trusted(_) => None,
            Verdict::Refused { refusal, .. } => Some(refusal),
        }
    }

    fn refused(refusal: Refusal) -> Verdict {
        Verdict::Refused {
            signer: None,
            refusal,
        }
    }
}

/// A commit refused by [`TrustedKeys::require`]: the message names the commit, the signer when
/// known, and why.
#[derive(Debug, thiserror::Error)]
#[error("commit {commit}: not trusted: {refusal}{}", signer.as_ref().map(|s| format!(" (signer: {s})")).unwrap_or_default())]
pub struct Untrusted {
    pub commit: String,
    pub signer: Option<Signer>,
    pub refusal: Refusal,
}

/// Trusted keys could not be loaded. Errors name the file (and line), never key material.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not an OpenPGP public key file: {message}", path.display())]
    OpenPgp { path: PathBuf, message: String },
    #[error("{}:{line}: {message}", path.display())]
    AllowedSigners {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Empty { path: PathBuf, message: String },
    /// Verification asked for, but no trusted key file given.
    #[error(
        "commit verification needs trusted keys: give OpenPGP public keys, an SSH allowed_signers file, or both"
    )]
    NoKeys,
}

/// The keys whose signatures are trusted.
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys {
    openpgp: Vec<openpgp::Certificate>,
    ssh: Vec<ssh::AllowedSigner>,
}

impl TrustedKeys {
    /// Loads armored (or binary) OpenPGP public keys, any number per file, and an SSH
    /// `allowed_signers` file. At least one key in all; a file without any key is an error.
    pub fn load(
        openpgp_files: &[PathBuf],
        allowed_signers: Option<&Path>,
    ) -> Result<TrustedKeys, VerifyError> {
        let mut keys = TrustedKeys::default();
        for path in openpgp_files {
            let bytes = read(path)?;
            keys.openpgp.extend(openpgp::load(path, &bytes)?);
        }
        if let Some(path) = allowed_signers {
            let text = read(path)?;
            let text = String::from_utf8(text).map_err(|_| VerifyError::AllowedSigners {
                path: path.to_path_buf(),
                line: 0,
                message: "not UTF-8".into(),
            })?;
            keys.ssh = ssh::parse(path, &text)?;
        }
        if keys.openpgp.is_empty() && keys.ssh.is_empty() {
            return Err(VerifyError::NoKeys);
        }
        Ok(keys)
    }

    /// How many OpenPGP certificates and SSH allowed-signer lines are trusted.
    pub fn counts(&self) -> (usize, usize) {
        (self.openpgp.len(), self.ssh.len())
    }

    /// Judges `commit` at time `now` (Unix seconds; OpenPGP expiry is checked at `now`, as gpg
    /// does).
    pub fn verify(&self, commit: &SignedCommit, now: i64) -> Verdict {
        let Some(signature) = &commit.signature else {
            return Verdict::refused(Refusal::Unsigned);
        };
        let text = String::from_utf8_lossy(signature);
        let head = text.trim_start();
        if head.starts_with("-----BEGIN PGP SIGNATURE-----") {
            openpgp::verify(&self.openpgp, signature, &commit.payload, now)
        } else if head.starts_with("-----BEGIN SSH SIGNATURE-----") {
            ssh::verify(&self.ssh, signature, &commit.payload, commit.committed_at)
        } else if head.starts_with("-----BEGIN SIGNED MESSAGE-----") {
            Verdict::refused(Refusal::Unsupported(
                "X.509 (gpgsm) signatures are not verified".into(),
            ))
        } else {
            Verdict::refused(Refusal::Malformed(
                "neither an OpenPGP nor an SSH signature".into(),
            ))
        }
    }

    /// [`Self::verify`] at the current time, as a `Result`: the signer when trusted.
    pub fn require(&self, commit: &SignedCommit) -> Result<Signer, Box<Untrusted>> {
        match self.verify(commit, jiff::Timestamp::now().as_second()) {
            Verdict::Trusted(signer) => Ok(signer),
            Verdict::Refused { signer, refusal } => Err(Box::new(Untrusted {
                commit: commit.sha.clone(),
                signer,
                refusal,
            })),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, VerifyError> {
    std::fs::read(path).map_err(|source| VerifyError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Unix seconds as RFC 3339 (for messages).
fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("@{secs}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsigned_commit_is_refused_as_unsigned() {
        let keys = TrustedKeys::default();
        let commit = SignedCommit {
            sha: "abc".into(),
            signature: None,
            payload: b"tree x\n".to_vec(),
            committed_at: 0,
        };
        assert_eq!(keys.verify(&commit, 0), Verdict::refused(Refusal::Unsigned));
        let err = keys.require(&commit).unwrap_err();
        assert_eq!(
            err.to_string(),
            "commit abc: not trusted: the commit is not signed"
        );
    }

    #[test]
    fn x509_and_garbage_signatures_are_refused_by_kind() {
        let keys = TrustedKeys::default();
        let mut commit = SignedCommit {
            sha: "abc".into(),
            signature: Some(b"-----BEGIN SIGNED MESSAGE-----\nxx\n".to_vec()),
            payload: Vec::new(),
            committed_at: 0,
        };
        assert_eq!(keys.verify(&commit, 0).refusal().unwrap().reason(), "unsupported");
        commit.signature = Some(b"hello".to_vec());
        assert_eq!(keys.verify(&commit, 0).refusal().unwrap().reason(), "malformed");
    }

    #[test]
    fn every_reason_is_listed() {
        for r in [
            Refusal::Unsigned,
            Refusal::UnknownKey(String::new()),
            Refusal::BadSignature(String::new()),
            Refusal::ExpiredKey(String::new()),
            Refusal::RevokedKey(String::new()),
            Refusal::WrongNamespace(String::new()),
            Refusal::NotValidAtCommitTime(String::new()),
            Refusal::Unsupported(String::new()),
            Refusal::Malformed(String::new()),
            Refusal::Unreadable(String::new()),
        ] {
            assert!(Refusal::REASONS.contains(&r.reason()), "{r:?}");
        }
    }

    #[test]
    fn no_key_file_at_all_is_an_error() {
        assert!(matches!(TrustedKeys::load(&[], None), Err(VerifyError::NoKeys)));
    }
}
