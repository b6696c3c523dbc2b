//! The daemon's `decryption` configuration: the age key file (typically a mounted Secret) that
//! SOPS-encrypted files are decrypted with when a cluster is rendered ([`crate::render::sops`]).

use std::path::PathBuf;

use serde::Deserialize;

use crate::render::sops::{Decryption, KeyError, Keys};

/// `decryption: { age_key_file: /path }`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DecryptionConfig {
    /// age identities, as `--age-key-file` / `SOPS_AGE_KEY_FILE` take them. Read once at start:
    /// a rotated key needs a restart (a Deployment rollout), as any change of the configuration.
    #[serde(default)]
    pub age_key_file: Option<PathBuf>,
}

impl DecryptionConfig {
    /// The decryption this configuration asks for: the key file's identities; `None` when it names
    /// no file (then `--age-key-file` / `SOPS_AGE_KEY_FILE` of the command line apply).
    pub fn load(&self) -> Result<Option<Decryption>, KeyError> {
        match &self.age_key_file {
            Some(file) => Ok(Some(Decryption::Keys(std::sync::Arc::new(Keys::from_file(
                file,
            )?)))),
            None => Ok(None),
        }
    }
}
