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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::daemon::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(
            text,
            Path::new("/etc/kgitops/kgitops.yaml"),
            Path::new("/etc/kgitops"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn decryption_names_a_key_file_relative_to_the_configuration() {
        let c = parse("source: {path: .}\nclusters: [{name: dev}]\n").unwrap();
        assert_eq!(c.decryption, None);
        let c =
            parse("source: {path: .}\nclusters: [{name: dev}]\ndecryption: {age_key_file: sops/keys.txt}\n")
                .unwrap();
        assert_eq!(
            c.decryption.unwrap().age_key_file.as_deref(),
            Some(Path::new("/etc/kgitops/sops/keys.txt"))
        );
        let err =
            parse("source: {path: .}\nclusters: [{name: dev}]\ndecryption: {age_keyfile: k}\n").unwrap_err();
        assert!(err.contains("age_keyfile"), "{err}");
    }

    #[test]
    fn a_missing_key_file_is_an_error_naming_it() {
        let d = DecryptionConfig {
            age_key_file: Some("/nonexistent/keys.txt".into()),
        };
        let err = d.load().unwrap_err().to_string();
        assert!(
            err.starts_with("/nonexistent/keys.txt: cannot read the age key file"),
            "{err}"
        );
        assert!(DecryptionConfig::default().load().unwrap().is_none());
    }
}
