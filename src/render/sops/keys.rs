//! The age identities SOPS files are decrypted with, read from one key file (`--age-key-file`,
//! `SOPS_AGE_KEY_FILE`, the daemon's `decryption.age_key_file`), and the process-wide setting the
//! render reads them from (set once by the CLI or the daemon, like [`crate::render::helm::set`]).
//!
//! The file holds age X25519 identities (`AGE-SECRET-KEY-1...`, one a line, `#` comments, as
//! `age-keygen` writes them and sops reads them) or one unencrypted OpenSSH private key (ed25519 or
//! RSA, as age's `-i` takes them). Key material is never logged nor quoted in errors: they name the
//! file and the line.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use zeroize::Zeroizing;

/// Why the key file cannot be used; each names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{file}: cannot read the age key file: {message}")]
    Read { file: PathBuf, message: String },
    #[error("{file}: line {line}: not an age identity (expected AGE-SECRET-KEY-1...)")]
    NotIdentity { file: PathBuf, line: usize },
    #[error("{file}: line {line}: unsupported key type: {what}")]
    Unsupported {
        file: PathBuf,
        line: usize,
        what: &'static str,
    },
    #[error("{file}: unsupported key type: {what}")]
    UnsupportedSsh { file: PathBuf, what: String },
    #[error("{file}: no age identity in the file")]
    Empty { file: PathBuf },
}

/// One identity of the key file.
enum Key {
    X25519(age::x25519::Identity),
    Ssh(age::ssh::Identity),
}

/// The identities of one key file.
pub struct Keys {
    file: PathBuf,
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys themselves.
        write!(f, "Keys({}, {} identities)", self.file.display(), self.keys.len())
    }
}

impl Keys {
    /// Reads the identities of `file`.
    pub fn from_file(file: &Path) -> Result<Keys, KeyError> {
        let bytes = Zeroizing::new(std::fs::read(file).map_err(|e| KeyError::Read {
            file: file.to_path_buf(),
            message: e.kind().to_string(),
        })?);
        Keys::parse(file, &bytes)
    }

    /// The identities in `bytes`, the content of `file` (named in errors).
    pub fn parse(file: &Path, bytes: &[u8]) -> Result<Keys, KeyError> {
        let err_file = || file.to_path_buf();
        let text = std::str::from_utf8(bytes).map_err(|_| KeyError::Read {
            file: err_file(),
            message: "not UTF-8 text".into(),
        })?;
        if text.contains("-----BEGIN ") {
            return Keys::parse_ssh(file, text);
        }
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line_no = i + 1;
            if line.starts_with("AGE-SECRET-KEY-PQ-") {
                // age ≥ 1.3's ML-KEM-768 + X25519 hybrid (recipients `age1pq1...`): the age crate
                // (0.11) does not implement it.
                return Err(KeyError::Unsupported {
                    file: err_file(),
                    line: line_no,
                    what: "post-quantum hybrid age identity (AGE-SECRET-KEY-PQ-1..., recipients age1pq1...): \
                           the age crate kgitops uses does not implement ML-KEM-768 + X25519 yet; \
                           use an X25519 identity (age-keygen without -pq)",
                });
            }
            if line.starts_with("AGE-PLUGIN-") {
                return Err(KeyError::Unsupported {
                    file: err_file(),
                    line: line_no,
                    what: "age plugin identity (AGE-PLUGIN-...): kgitops runs no age plugins",
                });
            }
            match line.parse::<age::x25519::Identity>() {
                Ok(identity) => keys.push(Key::X25519(identity)),
                Err(_) => {
                    return Err(KeyError::NotIdentity {
                        file: err_file(),
                        line: line_no,
                    });
                }
            }
        }
        if keys.is_empty() {
            return Err(KeyError::Empty { file: err_file() });
        }
        Ok(Keys {
            file: file.to_path_buf(),
            keys,
        })
    }

    fn parse_ssh(file: &Path, text: &str) -> Result<Keys, KeyError> {
        let identity =
            age::ssh::Identity::from_buffer(text.as_bytes(), None).map_err(|_| KeyError::UnsupportedSsh {
                file: file.to_path_buf(),
                what: "not an OpenSSH private key age can use (age reads ssh-ed25519 and ssh-rsa keys)"
                    .into(),
            })?;
        match &identity {
            age::ssh::Identity::Unencrypted(_) => {}
            age::ssh::Identity::Encrypted(_) => {
                return Err(KeyError::UnsupportedSsh {
                    file: file.to_path_buf(),
                    what: "passphrase-protected SSH key (kgitops cannot prompt for the passphrase; \
                           use an unencrypted key mounted from a Secret)"
                        .into(),
                });
            }
            age::ssh::Identity::Unsupported(_) => {
                return Err(KeyError::UnsupportedSsh {
                    file: file.to_path_buf(),
                    what: "SSH key type age does not support (age reads ssh-ed25519 and ssh-rsa keys)".into(),
                });
            }
        }
        Ok(Keys {
            file: file.to_path_buf(),
            keys: vec![Key::Ssh(identity)],
        })
    }

    /// The key file, for messages.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The identities, as age's decryptor takes them.
    pub(super) fn identities(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| match k {
            Key::X25519(i) => i as &dyn age::Identity,
            Key::Ssh(i) => i as &dyn age::Identity,
        })
    }
}

/// What a render does with a SOPS-encrypted file.
#[derive(Clone, Debug, Default)]
pub enum Decryption {
    /// No key: reading an encrypted file is an error saying how to give one.
    #[default]
    NoKey,
    /// Decrypt with these identities.
    Keys(Arc<Keys>),
    /// No key, on purpose (offline diff and validation in pull-request CI): every encrypted value
    /// becomes a placeholder derived from its ciphertext ([`super::placeholder`]), so the render
    /// goes on and a diff can say which keys' ciphertexts changed. Never used to apply.
    Placeholders,
}

static DECRYPTION: RwLock<Option<Decryption>> = RwLock::new(None);

/// Sets the process-wide decryption (the CLI from its flags, the daemon from its configuration).
pub fn set(decryption: Decryption) {
    let mut guard = DECRYPTION.write().unwrap_or_else(|e| e.into_inner());
    *guard = Some(decryption);
}

/// Pull-request CI reads encrypted files without a key (`diff --from/--to`, `validate`): unless a
/// key was set, encrypted values become placeholders.
pub fn placeholders_without_key() {
    let mut guard = DECRYPTION.write().unwrap_or_else(|e| e.into_inner());
    if matches!(*guard, None | Some(Decryption::NoKey)) {
        *guard = Some(Decryption::Placeholders);
    }
}

/// The process-wide decryption ([`Decryption::NoKey`] until [`set`]).
pub fn current() -> Decryption {
    let guard = DECRYPTION.read().unwrap_or_else(|e| e.into_inner());
    guard.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_x25519_identities_and_refuses_others_without_quoting_them() {
        let id = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        let secret = id.to_string().expose_secret().to_string();
        let text = format!("# created: now\n# public key: {}\n{secret}\n", id.to_public());
        let keys = Keys::parse(Path::new("k.txt"), text.as_bytes()).unwrap();
        assert_eq!(keys.identities().count(), 1);

        let bad = format!("{secret}x\n");
        let e = Keys::parse(Path::new("k.txt"), bad.as_bytes())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "k.txt: line 1: not an age identity (expected AGE-SECRET-KEY-1...)"
        );
        assert!(!e.contains(&secret[20..]));

        let pq = "AGE-SECRET-KEY-PQ-1QQQQ\n";
        let e = Keys::parse(Path::new("k.txt"), pq.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unsupported key type: post-quantum"), "{e}");

        let e = Keys::parse(Path::new("k.txt"), b"# nothing\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "k.txt: no age identity in the file");
    }
}
