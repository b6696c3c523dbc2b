//! SSH commit signatures (`gpg.format=ssh`): sshsig verified with the `ssh-key` crate against an
//! `allowed_signers` file read as `ssh-keygen -Y verify` reads it (ssh-keygen(1), "ALLOWED
//! SIGNERS"):
//!
//! ```text
//! principals [options] keytype base64-key [comment]
//! ```
//!
//! `principals` is a comma-separated pattern list (quoted or not); options are `namespaces="..."`
//! (a pattern list the signature's namespace must match), `valid-after="..."` and
//! `valid-before="..."` (`YYYYMMDD[HHMM[SS]]`, UTC with a `Z` suffix, else the system's time zone,
//! as ssh-keygen), and `cert-authority`, which is refused: a line trusting a certificate authority
//! would trust every key it certified, and kgitops does not verify SSH certificates. Any other
//! option is an error, as in ssh-keygen.

use std::path::Path;

use ssh_key::{HashAlg, PublicKey, SshSig};

use super::{Refusal, Signer, Verdict, VerifyError, rfc3339};

/// The namespace git signs commits in.
pub const GIT_NAMESPACE: &str = "git";

/// One line of `allowed_signers`.
#[derive(Clone, Debug)]
pub struct AllowedSigner {
    principals: String,
    options: Options,
    key: PublicKey,
}

/// The options of one line.
#[derive(Clone, Debug, Default)]
struct Options {
    namespaces: Option<String>,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
}

/// Parses an `allowed_signers` file; errors name the file and line.
pub fn parse(path: &Path, text: &str) -> Result<Vec<AllowedSigner>, VerifyError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_line(line).map_err(|message| VerifyError::AllowedSigners {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        })?);
    }
    if out.is_empty() {
        return Err(VerifyError::Empty {
            path: path.to_path_buf(),
            message: "no key in the allowed_signers file".into(),
        });
    }
    Ok(out)
}

/// The first field of `s` (a double-quoted string may hold spaces) and the rest, trimmed.
fn field(s: &str) -> Result<(&str, &str), String> {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return Ok((&s[..i], s[i..].trim_start())),
            _ => {}
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    Ok((s, ""))
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(s)
}

fn parse_line(line: &str) -> Result<AllowedSigner, String> {
    let (principals, rest) = field(line)?;
    let principals = unquote(principals).to_string();
    if principals.is_empty() || rest.is_empty() {
        return Err("expected: principals [options] keytype base64-key [comment]".into());
    }
    // As ssh-keygen: a key right after the principals, else the options come first.
    let (options, key) = match PublicKey::from_openssh(rest) {
        Ok(key) => (Options::default(), key),
        Err(_) => {
            let (options, key) = field(rest)?;
            let options = parse_options(options)?;
            let key = PublicKey::from_openssh(key).map_err(|e| format!("not an SSH public key: {e}"))?;
            (options, key)
        }
    };
    Ok(AllowedSigner {
        principals,
        options,
        key,
    })
}

fn parse_options(options: &str) -> Result<Options, String> {
    let mut signer = Options::default();
    for option in split_outside_quotes(options, ',') {
        let (name, value) = match option.split_once('=') {
            Some((n, v)) => (n.to_ascii_lowercase(), Some(unquote(v))),
            None => (option.to_ascii_lowercase(), None),
        };
        match (name.as_str(), value) {
            ("cert-authority", None) => {
                return Err("cert-authority is not supported: kgitops does not verify SSH \
                            certificates; list the signing keys themselves"
                    .into());
            }
            ("namespaces", Some(v)) => signer.namespaces = Some(v.to_string()),
            ("valid-after", Some(v)) => signer.valid_after = Some(parse_time(v)?),
            ("valid-before", Some(v)) => signer.valid_before = Some(parse_time(v)?),
            _ => return Err(format!("unsupported option '{option}'")),
        }
    }
    Ok(signer)
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut quoted, mut start) = (false, 0);
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, with an optional `Z` (UTC); without it the
/// system's time zone, as ssh-keygen reads it.
fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || format!("'{text}' is not a time (YYYYMMDD[HHMM[SS]][Z])");
    let (digits, utc) = match text.strip_suffix(['Z', 'z']) {
        Some(d) => (d, true),
        None => (text, false),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<i16>().ok()).unwrap_or(0);
    let date = jiff::civil::date(n(0..4), n(4..6) as i8, n(6..8) as i8);
    let time = jiff::civil::time(n(8..10) as i8, n(10..12) as i8, n(12..14) as i8, 0);
    let civil = jiff::civil::DateTime::from_parts(date, time);
    let zone = if utc {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::system()
    };
    // Range-checked here: `civil::date` above does not validate its parts.
    jiff::civil::Date::new(n(0..4), n(4..6) as i8, n(6..8) as i8).map_err(|_| bad())?;
    jiff::civil::Time::new(n(8..10) as i8, n(10..12) as i8, n(12..14) as i8, 0).map_err(|_| bad())?;
    civil
        .to_zoned(zone)
        .map(|z| z.timestamp().as_second())
        .map_err(|_| bad())
}

/// `ssh_config`-style pattern list matching: comma-separated, `*` and `?` wildcards, `!` negates
/// (a negated match refuses at once).
fn matches_list(list: &str, value: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',').map(str::trim) {
        match pattern.strip_prefix('!') {
            Some(neg) if glob(neg, value) => return false,
            Some(_) => {}
            None => matched |= glob(pattern, value),
        }
    }
    matched
}

fn glob(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

/// Verifies an armored sshsig over `payload`; validity windows are checked at `committed_at`.
pub fn verify(signers: &[AllowedSigner], signature: &[u8], payload: &[u8], committed_at: i64) -> Verdict {
    let sig = match SshSig::from_pem(signature) {
        Ok(s) => s,
        Err(e) => {
            return Verdict::Refused {
                signer: None,
                refusal: Refusal::Malformed(e.to_string()),
            };
        }
    };
    let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
    let lines: Vec<&AllowedSigner> = signers
        .iter()
        .filter(|s| s.key.key_data() == sig.public_key())
        .collect();
    let Some(first) = lines.first() else {
        return Verdict::Refused {
            signer: None,
            refusal: Refusal::UnknownKey(format!("SSH key {fingerprint}")),
        };
    };
    let signer_of = |line: &AllowedSigner| Signer::Ssh {
        fingerprint: fingerprint.clone(),
        principal: line.principals.clone(),
    };
    let refuse = |line: &AllowedSigner, refusal: Refusal| Verdict::Refused {
        signer: Some(signer_of(line)),
        refusal,
    };
    if sig.namespace() != GIT_NAMESPACE {
        return refuse(
            first,
            Refusal::WrongNamespace(format!(
                "the signature is for namespace '{}', not '{GIT_NAMESPACE}'",
                sig.namespace()
            )),
        );
    }
    if let Err(e) = first.key.verify(GIT_NAMESPACE, payload, &sig) {
        return refuse(first, Refusal::BadSignature(e.to_string()));
    }
    // The signature is good; one line of this key must allow the namespace and the time.
    let mut why = None;
    for line in &lines {
        if let Some(ns) = &line.options.namespaces
            && !matches_list(ns, GIT_NAMESPACE)
        {
            why.get_or_insert_with(|| {
                (
                    *line,
                    Refusal::WrongNamespace(format!(
                        "the key's allowed_signers line allows namespaces \"{ns}\", not '{GIT_NAMESPACE}'"
                    )),
                )
            });
            continue;
        }
        if let Some(after) = line.options.valid_after
            && committed_at < after
        {
            why = Some((
                *line,
                Refusal::NotValidAtCommitTime(format!(
                    "the key is valid after {} only; the commit was made at {}",
                    rfc3339(after),
                    rfc3339(committed_at)
                )),
            ));
            continue;
        }
        if let Some(before) = line.options.valid_before
            && committed_at >= before
        {
            why = Some((
                *line,
                Refusal::NotValidAtCommitTime(format!(
                    "the key is valid before {} only; the commit was made at {}",
                    rfc3339(before),
                    rfc3339(committed_at)
                )),
            ));
            continue;
        }
        return Verdict::Trusted(signer_of(line));
    }
    match why {
        Some((line, refusal)) => refuse(line, refusal),
        None => refuse(
            first,
            Refusal::BadSignature("no allowed_signers line applies".into()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    #[test]
    fn lines_as_ssh_keygen_reads_them() {
        let text = format!(
            "# team\n\nalice@example.com {KEY} laptop\n\
             \"bob@example.com,carol@example.com\" namespaces=\"git,file\",valid-after=\"20240101Z\",valid-before=\"20300101000000Z\" {KEY}\n"
        );
        let signers = parse(Path::new("allowed"), &text).unwrap();
        assert_eq!(signers.len(), 2);
        assert_eq!(signers[0].principals, "alice@example.com");
        assert!(signers[0].options.namespaces.is_none());
        assert_eq!(signers[1].principals, "bob@example.com,carol@example.com");
        assert_eq!(signers[1].options.namespaces.as_deref(), Some("git,file"));
        assert_eq!(signers[1].options.valid_after, Some(1_704_067_200));
        assert_eq!(signers[1].options.valid_before, Some(1_893_456_000));
    }

    #[test]
    fn cert_authority_unknown_options_and_bad_keys_name_the_line() {
        let err = parse(
            Path::new("allowed"),
            &format!("a@b {KEY}\n*@corp cert-authority {KEY}\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("allowed:2: cert-authority is not supported"),
            "{err}"
        );
        let err = parse(Path::new("allowed"), &format!("a@b no-touch-required {KEY}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("allowed:1: unsupported option"), "{err}");
        let err = parse(Path::new("allowed"), "a@b ssh-ed25519 AAAAnotakey\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("allowed:1:"), "{err}");
        let err = parse(Path::new("allowed"), &format!("a@b valid-after=\"2024\" {KEY}\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a time"), "{err}");
        let err = parse(Path::new("allowed"), "# nothing\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no key"), "{err}");
    }

    #[test]
    fn pattern_lists() {
        assert!(matches_list("git", "git"));
        assert!(matches_list("file,git", "git"));
        assert!(matches_list("g*", "git"));
        assert!(!matches_list("file", "git"));
        assert!(!matches_list("*,!git", "git"));
    }
}
