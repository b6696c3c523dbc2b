//! OpenPGP commit signatures, verified with `pgp` (rPGP, pure Rust).
//!
//! A signature is trusted when it verifies with a trusted certificate's primary key, or with one
//! of its subkeys bound for signing (a valid binding signature with the sign flag and its embedded
//! back-signature), and neither the certificate nor that subkey is revoked or expired now. Only
//! self-signatures that verify count (a forged expiry extension or user id is ignored). Designated
//! revokers (third-party revocations) are not followed: the revocation must be in the key file.

use std::io::Cursor;
use std::path::Path;

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Tag};

use super::{Refusal, Signer, Verdict, VerifyError, rfc3339};

/// One trusted certificate (transferable public key).
#[derive(Clone, Debug)]
pub struct Certificate(SignedPublicKey);

/// The certificates in one key file (armored or binary, any number).
pub fn load(path: &Path, bytes: &[u8]) -> Result<Vec<Certificate>, VerifyError> {
    let fail = |message: String| VerifyError::OpenPgp {
        path: path.to_path_buf(),
        message,
    };
    let (keys, _headers) =
        SignedPublicKey::from_reader_many(Cursor::new(bytes)).map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    for key in keys {
        out.push(Certificate(key.map_err(|e| fail(e.to_string()))?));
    }
    if out.is_empty() {
        return Err(VerifyError::Empty {
            path: path.to_path_buf(),
            message: "no OpenPGP public key in the file".into(),
        });
    }
    Ok(out)
}

fn hex_upper(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

/// The key that made a signature: the certificate and, for a subkey, which one.
struct Found<'a> {
    cert: &'a SignedPublicKey,
    subkey: Option<&'a SignedPublicSubKey>,
}

/// Verifies an armored detached signature over `payload` at time `now` (Unix seconds).
pub fn verify(certs: &[Certificate], signature: &[u8], payload: &[u8], now: i64) -> Verdict {
    let sig = match DetachedSignature::from_armor_single(Cursor::new(signature)) {
        Ok((s, _)) => s.signature,
        Err(e) => {
            return Verdict::Refused {
                signer: None,
                refusal: Refusal::Malformed(e.to_string()),
            };
        }
    };
    let Some(found) = find(certs, &sig) else {
        return Verdict::Refused {
            signer: None,
            refusal: Refusal::UnknownKey(issuer(&sig)),
        };
    };
    let cert = found.cert;
    let signer = Signer::OpenPgp {
        fingerprint: format!("{:X}", cert.primary_key.fingerprint()),
        key_id: hex_upper(
            found
                .subkey
                .map_or_else(|| cert.primary_key.legacy_key_id(), |s| s.key.legacy_key_id())
                .as_ref(),
        ),
        user_id: user_id(cert),
    };
    let refuse = |refusal: Refusal| Verdict::Refused {
        signer: Some(signer.clone()),
        refusal,
    };
    let checked = match found.subkey {
        None => sig.verify(&cert.primary_key, payload),
        Some(sub) => sig.verify(&sub.key, payload),
    };
    if let Err(e) = checked {
        return refuse(Refusal::BadSignature(e.to_string()));
    }
    if !matches!(sig.typ(), Some(SignatureType::Binary | SignatureType::Text)) {
        return refuse(Refusal::BadSignature(format!(
            "a {:?} signature, not a signature over data",
            sig.typ()
        )));
    }
    if let (Some(created), Some(valid_for)) = (sig.created(), sig.signature_expiration_time()) {
        let valid_for = std::time::Duration::from(valid_for).as_secs() as i64;
        let ends = i64::from(created.as_secs()) + valid_for;
        if valid_for > 0 && now >= ends {
            return refuse(Refusal::BadSignature(format!(
                "the signature expired at {}",
                rfc3339(ends)
            )));
        }
    }
    if let Some(reason) = revoked(cert) {
        return refuse(Refusal::RevokedKey(reason));
    }
    if let Some(at) = primary_expiry(cert)
        && now >= at
    {
        return refuse(Refusal::ExpiredKey(rfc3339(at)));
    }
    if let Some(sub) = found.subkey {
        if let Some(reason) = subkey_revoked(cert, sub) {
            return refuse(Refusal::RevokedKey(reason));
        }
        let Some(binding) = subkey_binding(cert, sub) else {
            return refuse(Refusal::BadSignature(
                "the subkey that signed has no valid binding to its key for signing".into(),
            ));
        };
        if let Some(valid_for) = binding.key_expiration_time() {
            let valid_for = std::time::Duration::from(valid_for).as_secs() as i64;
            let at = i64::from(sub.key.created_at().as_secs()) + valid_for;
            if valid_for > 0 && now >= at {
                return refuse(Refusal::ExpiredKey(rfc3339(at)));
            }
        }
    }
    Verdict::Trusted(signer)
}

/// The certificate and key whose fingerprint or key id the signature names as its issuer. A
/// signature without issuer subpackets is tried against every key.
fn find<'a>(certs: &'a [Certificate], sig: &Signature) -> Option<Found<'a>> {
    let fps = sig.issuer_fingerprint();
    let ids = sig.issuer_key_id();
    let names = |key: &dyn KeyDetails| {
        (fps.is_empty() && ids.is_empty())
            || fps.iter().any(|f| **f == key.fingerprint())
            || ids.iter().any(|i| **i == key.legacy_key_id())
    };
    for Certificate(cert) in certs {
        if names(&cert.primary_key) {
            return Some(Found { cert, subkey: None });
        }
        for sub in &cert.public_subkeys {
            if names(&sub.key) {
                return Some(Found {
                    cert,
                    subkey: Some(sub),
                });
            }
        }
    }
    None
}

/// The issuer as the signature names it, for an unknown key.
fn issuer(sig: &Signature) -> String {
    if let Some(fp) = sig.issuer_fingerprint().first() {
        return format!("OpenPGP key {fp:X}");
    }
    match sig.issuer_key_id().first() {
        Some(id) => format!("OpenPGP key {}", hex_upper(id.as_ref())),
        None => "an OpenPGP key that the signature does not name".into(),
    }
}

/// The primary user id (a valid self-certification marked primary), else the first valid one.
fn user_id(cert: &SignedPublicKey) -> Option<String> {
    let valid: Vec<_> = cert
        .details
        .users
        .iter()
        .filter(|u| {
            u.signatures.iter().any(|s| {
                s.verify_certification(&cert.primary_key, Tag::UserId, &u.id)
                    .is_ok()
            })
        })
        .collect();
    valid
        .iter()
        .find(|u| u.is_primary())
        .or(valid.first())
        .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
}

/// The reason of a valid revocation of the certificate, `Some("")` when it gives none.
fn revoked(cert: &SignedPublicKey) -> Option<String> {
    cert.details
        .revocation_signatures
        .iter()
        .find(|s| s.typ() == Some(SignatureType::KeyRevocation) && s.verify_key(&cert.primary_key).is_ok())
        .map(revocation_reason)
}

fn subkey_revoked(cert: &SignedPublicKey, sub: &SignedPublicSubKey) -> Option<String> {
    sub.signatures
        .iter()
        .find(|s| {
            s.typ() == Some(SignatureType::SubkeyRevocation)
                && s.verify_subkey_binding(&cert.primary_key, &sub.key).is_ok()
        })
        .map(revocation_reason)
}

fn revocation_reason(sig: &Signature) -> String {
    let code = sig.revocation_reason_code().map(|c| format!("{c:?}"));
    let text = sig
        .revocation_reason_string()
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .filter(|t| !t.is_empty());
    match (code, text) {
        (Some(c), Some(t)) => format!("{c}: {t}"),
        (Some(c), None) => c,
        (None, Some(t)) => t,
        (None, None) => String::new(),
    }
}

/// When the certificate expires (Unix seconds), from its newest valid self-signature (direct key
/// signature or user id certification): a newer one (`gpg --quick-set-expire`) replaces the older.
fn primary_expiry(cert: &SignedPublicKey) -> Option<i64> {
    let primary = &cert.primary_key;
    let direct = cert
        .details
        .direct_signatures
        .iter()
        .filter(|s| s.verify_key(primary).is_ok());
    let certifications = cert.details.users.iter().flat_map(|u| {
        u.signatures
            .iter()
            .filter(move |s| s.verify_certification(primary, Tag::UserId, &u.id).is_ok())
    });
    let newest = direct
        .chain(certifications)
        .max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0))?;
    let valid_for = std::time::Duration::from(newest.key_expiration_time()?).as_secs() as i64;
    (valid_for > 0).then(|| i64::from(primary.created_at().as_secs()) + valid_for)
}

/// The newest valid binding signature of a signing subkey: sign flag set and the subkey's
/// back-signature valid (RFC 9580 requires it, so a stolen public subkey cannot be bound to
/// another certificate).
fn subkey_binding<'a>(cert: &SignedPublicKey, sub: &'a SignedPublicSubKey) -> Option<&'a Signature> {
    sub.signatures
        .iter()
        .filter(|s| {
            s.typ() == Some(SignatureType::SubkeyBinding)
                && s.verify_subkey_binding(&cert.primary_key, &sub.key).is_ok()
                && s.key_flags().sign()
                && s.embedded_signature()
                    .is_some_and(|b| b.verify_primary_key_binding(&sub.key, &cert.primary_key).is_ok())
        })
        .max_by_key(|s| s.created().map(|t| t.as_secs()).unwrap_or(0))
}
