//! OpenSSH `known_hosts` files: which host keys an SSH remote may present.
//!
//! libgit2 checks host keys only against `~/.ssh/known_hosts`, so kgitops reads the configured file
//! itself and decides in git2's certificate callback. Supported: host lists with `*`/`?` wildcards
//! and `!` negation, `[host]:port` entries for other ports than 22, hashed hosts (`|1|salt|hash`,
//! as `ssh-keyscan -H` writes them), `@revoked` keys. `@cert-authority` lines are skipped: libssh2
//! does not present host certificates.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Digest;

/// The parsed entries of one known_hosts file.
#[derive(Debug)]
pub(crate) struct KnownHosts {
    path: PathBuf,
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct Entry {
    revoked: bool,
    hosts: Hosts,
    key_type: String,
    key: Vec<u8>,
}

#[derive(Debug)]
enum Hosts {
    /// `|1|salt|hash`: HMAC-SHA1 of the host name under the salt.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
    /// Comma-separated patterns, each maybe negated with `!`.
    Patterns(Vec<String>),
}

/// What the file says about a host's key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The key is listed for the host.
    Trusted,
    /// The key is marked `@revoked`.
    Revoked,
    /// The host is listed, with other keys (of these types).
    Mismatch(Vec<String>),
    /// The host is not in the file.
    Unknown,
}

impl KnownHosts {
    /// Reads and parses `path`. Lines that do not parse are skipped, as ssh does; a file without
    /// a single usable entry is an error, since it could never accept a host.
    pub fn load(path: &Path) -> Result<KnownHosts, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
        let entries: Vec<Entry> = text.lines().filter_map(parse_line).collect();
        if entries.is_empty() {
            return Err("no host keys in it (expected lines like `host ssh-ed25519 AAAA...`)".into());
        }
        Ok(KnownHosts {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The file the entries came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Looks up `key` (the SSH wire-format public key blob) for `host` on `port`.
    pub fn check(&self, host: &str, port: u16, key: &[u8]) -> Verdict {
        // A revoked key is refused whatever host it is listed for (by convention `*`).
        if self.entries.iter().any(|e| e.revoked && e.key == key) {
            return Verdict::Revoked;
        }
        let name = host_name(host, port);
        let mut others = Vec::new();
        for entry in self
            .entries
            .iter()
            .filter(|e| !e.revoked && e.hosts.matches(&name))
        {
            if entry.key == key {
                return Verdict::Trusted;
            }
            others.push(entry.key_type.clone());
        }
        if others.is_empty() {
            return Verdict::Unknown;
        }
        others.sort();
        others.dedup();
        Verdict::Mismatch(others)
    }
}

/// How ssh names a host in known_hosts: `host` on port 22, else `[host]:port`.
pub(crate) fn host_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// The key type named inside an SSH wire-format key blob (`ssh-ed25519`, ...).
pub(crate) fn key_type(blob: &[u8]) -> String {
    let Some(len) = blob
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    else {
        return "unknown".into();
    };
    blob.get(4..4 + len)
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .unwrap_or_else(|| "unknown".into())
}

/// `SHA256:...` as `ssh-keygen -l` prints it.
pub(crate) fn fingerprint(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(sha2::Sha256::digest(blob)))
}

/// The line as it would go into a known_hosts file, for the error that says what to add.
pub(crate) fn line_for(host: &str, port: u16, blob: &[u8]) -> String {
    format!(
        "{} {} {}",
        host_name(host, port),
        key_type(blob),
        STANDARD.encode(blob)
    )
}

fn parse_line(line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let mut revoked = false;
    if let Some(marker) = first.strip_prefix('@') {
        match marker {
            "revoked" => revoked = true,
            // Host certificates: libssh2 never presents one, so such a line cannot apply.
            _ => return None,
        }
        first = fields.next()?;
    }
    let hosts = if let Some(hashed) = first.strip_prefix("|1|") {
        let (salt, hash) = hashed.split_once('|')?;
        Hosts::Hashed {
            salt: STANDARD.decode(salt).ok()?,
            hash: STANDARD.decode(hash).ok()?,
        }
    } else {
        Hosts::Patterns(first.split(',').map(|p| p.to_ascii_lowercase()).collect())
    };
    let key_type = fields.next()?.to_string();
    let key = STANDARD.decode(fields.next()?).ok()?;
    // The blob names its own type; a line whose two disagree is corrupt.
    if self::key_type(&key) != key_type {
        return None;
    }
    Some(Entry {
        revoked,
        hosts,
        key_type,
        key,
    })
}

impl Hosts {
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(patterns) => {
                let mut matched = false;
                for pattern in patterns {
                    match pattern.strip_prefix('!') {
                        Some(negated) if wildcard(negated, name) => return false,
                        Some(_) => {}
                        None => matched |= wildcard(pattern, name),
                    }
                }
                matched
            }
        }
    }
}

/// ssh's pattern match: `*` any run of characters, `?` one character.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Classic two-pointer match with backtracking to the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A syntactically valid ed25519 key blob with `fill` as its key bytes.
    fn blob(fill: u8) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&11u32.to_be_bytes());
        b.extend_from_slice(b"ssh-ed25519");
        b.extend_from_slice(&32u32.to_be_bytes());
        b.extend_from_slice(&[fill; 32]);
        b
    }

    fn file(text: &str) -> (tempfile::NamedTempFile, KnownHosts) {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        let k = KnownHosts::load(f.path()).unwrap();
        (f, k)
    }

    fn hashed(name: &str, salt: &[u8]) -> String {
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(salt).unwrap();
        mac.update(name.as_bytes());
        format!(
            "|1|{}|{}",
            STANDARD.encode(salt),
            STANDARD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn matches_plain_ported_wildcard_and_hashed_hosts() {
        let (a, b) = (STANDARD.encode(blob(1)), STANDARD.encode(blob(2)));
        let text = format!(
            "# comment\n\
             git.example,10.0.0.1 ssh-ed25519 {a}\n\
             [127.0.0.1]:2222 ssh-ed25519 {b} comment here\n\
             *.corp.example,!evil.corp.example ssh-ed25519 {a}\n\
             {} ssh-ed25519 {b}\n\
             garbage line\n\
             @cert-authority *.example ssh-ed25519 {a}\n",
            hashed("[hashed.example]:2200", b"salt-salt-salt-salt!")
        );
        let (_f, known) = file(&text);
        assert_eq!(known.check("git.example", 22, &blob(1)), Verdict::Trusted);
        assert_eq!(known.check("GIT.example", 22, &blob(1)), Verdict::Trusted);
        assert_eq!(
            known.check("git.example", 22, &blob(2)),
            Verdict::Mismatch(vec!["ssh-ed25519".into()])
        );
        // A non-default port only matches `[host]:port` entries.
        assert_eq!(known.check("git.example", 2222, &blob(1)), Verdict::Unknown);
        assert_eq!(known.check("127.0.0.1", 2222, &blob(2)), Verdict::Trusted);
        assert_eq!(known.check("127.0.0.1", 22, &blob(2)), Verdict::Unknown);
        assert_eq!(known.check("a.corp.example", 22, &blob(1)), Verdict::Trusted);
        assert_eq!(known.check("evil.corp.example", 22, &blob(1)), Verdict::Unknown);
        assert_eq!(known.check("hashed.example", 2200, &blob(2)), Verdict::Trusted);
        assert_eq!(known.check("hashed.example", 22, &blob(2)), Verdict::Unknown);
    }

    #[test]
    fn revoked_keys_are_refused_for_every_host() {
        let a = STANDARD.encode(blob(1));
        let (_f, known) = file(&format!(
            "git.example ssh-ed25519 {a}\n@revoked * ssh-ed25519 {a}\n"
        ));
        assert_eq!(known.check("git.example", 22, &blob(1)), Verdict::Revoked);
    }

    #[test]
    fn a_file_without_entries_is_an_error() {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "# nothing\n").unwrap();
        assert!(KnownHosts::load(f.path()).unwrap_err().contains("no host keys"));
        assert!(
            KnownHosts::load(Path::new("/nonexistent/known_hosts"))
                .unwrap_err()
                .starts_with("cannot read")
        );
    }

    #[test]
    fn describes_keys_as_ssh_does() {
        assert_eq!(key_type(&blob(0)), "ssh-ed25519");
        assert_eq!(key_type(&[0, 0]), "unknown");
        assert!(fingerprint(&blob(0)).starts_with("SHA256:"));
        assert!(line_for("h", 2222, &blob(0)).starts_with("[h]:2222 ssh-ed25519 AAAA"));
        assert!(wildcard("*.ex?mple", "a.b.example"));
        assert!(!wildcard("*.example", "example"));
        assert!(wildcard("**", ""));
    }
}
