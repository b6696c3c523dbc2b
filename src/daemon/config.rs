//! The daemon's configuration file (`kgitops run --config FILE`): YAML, unknown keys are errors,
//! durations written like `30s`, `5m`, `1h30m` or `500ms`. Relative paths are relative to the
//! directory of the configuration file. Secrets are never in the file itself, only the paths of
//! the files that hold them (mounted Kubernetes Secrets).
//!
//! ```yaml
//! source:
//!   url: https://git.example/platform.git   # https://, ssh://, git@host:path, file://
//!   branch: main
//!   interval: 60s                           # polling; webhooks make it immediate
//!   auth: {token_file: /var/run/secrets/git/token}
//!   # or instead of url: path: ./  -> local working tree, watched with notify (dev loop)
//! clusters:
//!   - name: dev                  # renders clusters/dev
//!     kubeconfig: /path          # optional; in-cluster config when absent
//!     context: dev-admin         # optional
//!     drift: heal                # heal | alert
//!     prune: true
//!     suspend: false
//! server:
//!   listen: 127.0.0.1:9464       # /healthz /readyz /metrics /status /webhook
//!   webhook_secret_file: /path   # required for /webhook
//! alerts:
//!   - {type: webhook, url: https://alerts.example/hook}
//!   - {type: slack, url_file: /var/run/secrets/slack/url}
//! leader_election:               # optional: several replicas, one writes
//!   namespace: kgitops-system
//! limits:                        # optional: what one commit may make kgitops read
//!   max_render_input: 12Mi       # bytes of files one render reads
//!   max_tree_entries: 250000     # git tree entries one revision loads
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::manifest::yaml::{Limits, parse_typed};
use crate::source::limits::{InputLimits, parse_bytes};
use crate::source::remote::{Auth, DEFAULT_FETCH_TIMEOUT, RemoteSpec};

/// Where the HTTP server listens unless the configuration says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// How often the remote is polled unless the configuration says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// How long a leader's Lease lasts without renewal unless the configuration says otherwise.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);

/// A configuration file that cannot be used. Names the file and, where it can, the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

/// A duration written as in Go and Kubernetes (`30s`, `1m30s`, `500ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text)
            .map(ConfigDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses `30s`, `5m`, `1h30m`, `250ms`: a sequence of numbers with units (ms, s, m, h). A bare
/// number is refused: seconds or milliseconds must be said.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration '{text}': write it like 30s, 5m, 1h30m or 500ms");
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(unit);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

fn default_branch() -> String {
    "main".to_string()
}

fn default_interval() -> ConfigDuration {
    ConfigDuration(DEFAULT_INTERVAL)
}

fn default_true() -> bool {
    true
}

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub source: SourceConfig,
    pub clusters: Vec<ClusterConfig>,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub alerts: Vec<AlertConfig>,
    #[serde(default)]
    pub leader_election: Option<LeaderConfig>,
    /// Where the git mirror is kept (default: `$XDG_CACHE_HOME/kgitops`, else `~/.cache/kgitops`,
    /// else the system temporary directory).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// `limits`: overrides of [`InputLimits`]; what is not set keeps the command line's value.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Bytes (`64Mi`, `134217728`) of files one render may read.
    #[serde(default, deserialize_with = "bytes")]
    pub max_render_input: Option<usize>,
    #[serde(default)]
    pub max_tree_entries: Option<usize>,
}

impl LimitsConfig {
    /// `base` with what this section sets.
    pub fn apply(&self, base: InputLimits) -> InputLimits {
        InputLimits {
            max_render_input: self.max_render_input.unwrap_or(base.max_render_input),
            max_tree_entries: self.max_tree_entries.unwrap_or(base.max_tree_entries),
        }
    }
}

/// A byte count written as a number or a quantity string (`64Mi`).
fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(usize),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Number(n) => Ok(Some(n)),
        Raw::Text(text) => parse_bytes(&text).map(Some).map_err(serde::de::Error::custom),
    }
}

/// `source`: a remote repository (`url`) or a local working tree (`path`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default = "default_branch")]
    pub branch: String,
    #[serde(default = "default_interval")]
    pub interval: ConfigDuration,
    /// Upper bound for one fetch.
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
    #[serde(default)]
    pub auth: AuthConfig,
}

/// `source.auth`: credential files, all optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub ssh_key_file: Option<PathBuf>,
    #[serde(default)]
    pub known_hosts_file: Option<PathBuf>,
}

/// What to do about drift.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftMode {
    /// Apply git again: the drifted fields return to git's values, deleted objects are recreated.
    #[default]
    Heal,
    /// Only report the drift (status, metrics, events, alerts).
    Alert,
}

/// One entry of `clusters`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The overlay `clusters/<name>`.
    pub name: String,
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub drift: DriftMode,
    #[serde(default = "default_true")]
    pub prune: bool,
    #[serde(default)]
    pub suspend: bool,
    /// Namespace of the inventory ConfigMap (default: the overlay's only namespace).
    #[serde(default)]
    pub inventory_namespace: Option<String>,
}

/// `server`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The shared secret of `/webhook` (GitHub HMAC key or GitLab token). Without it `/webhook`
    /// answers 404: an unauthenticated trigger is never offered.
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
}

fn default_listen() -> SocketAddr {
    // A constant that always parses.
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            webhook_secret_file: None,
        }
    }
}

/// Kind of alert receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertType {
    /// Generic JSON POST.
    Webhook,
    /// Slack incoming webhook (`{"text": ...}`).
    Slack,
}

/// One entry of `alerts`: the URL inline, or (since Slack webhook URLs are secrets) in a file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    #[serde(rename = "type")]
    pub kind: AlertType,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub url_file: Option<PathBuf>,
}

/// `leader_election`: a Lease that only one replica holds at a time.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderConfig {
    pub namespace: String,
    #[serde(default = "default_lease_name")]
    pub name: String,
    #[serde(default = "default_lease_duration")]
    pub lease_duration: ConfigDuration,
    /// This replica's name in the Lease (default: `$POD_NAME`, else host name and process id).
    #[serde(default)]
    pub identity: Option<String>,
    /// The configured cluster whose API holds the Lease (default: the first).
    #[serde(default)]
    pub cluster: Option<String>,
}

fn default_lease_name() -> String {
    "kgitops".to_string()
}

fn default_lease_duration() -> ConfigDuration {
    ConfigDuration(DEFAULT_LEASE_DURATION)
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, path, base)
    }

    /// Parses and checks configuration text; `path` names it in errors, relative paths are
    /// resolved against `base`.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut config: Config = parse_typed(text, &path.display().to_string(), &Limits::DEFAULT)
            .map_err(|e| invalid(e.to_string()))?;
        config.check().map_err(invalid)?;
        config.resolve_paths(base);
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        match (&self.source.url, &self.source.path) {
            (Some(_), Some(_)) => return Err("source: set either url or path, not both".into()),
            (None, None) => {
                return Err("source: set url (a git remote) or path (a local working tree)".into());
            }
            _ => {}
        }
        if self.source.branch.trim().is_empty() {
            return Err("source.branch: must not be empty".into());
        }
        if self.source.interval.0 < Duration::from_secs(1) {
            return Err("source.interval: must be at least 1s".into());
        }
        if self.clusters.is_empty() {
            return Err("clusters: at least one cluster is needed".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in self.clusters.iter().enumerate() {
            crate::source::layout::cluster_dir(&c.name).map_err(|e| format!("clusters[{i}].name: {e}"))?;
            if !seen.insert(c.name.as_str()) {
                return Err(format!("clusters[{i}].name: '{}' is configured twice", c.name));
            }
        }
        for (i, a) in self.alerts.iter().enumerate() {
            match (&a.url, &a.url_file) {
                (Some(_), Some(_)) => {
                    return Err(format!("alerts[{i}]: set either url or url_file, not both"));
                }
                (None, None) => return Err(format!("alerts[{i}]: url or url_file is required")),
                (Some(url), None) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                    return Err(format!("alerts[{i}].url: must start with http:// or https://"));
                }
                _ => {}
            }
        }
        if let Some(le) = &self.leader_election {
            if le.lease_duration.0 < Duration::from_secs(2) {
                return Err("leader_election.lease_duration: must be at least 2s".into());
            }
            if let Some(name) = &le.cluster
                && !self.clusters.iter().any(|c| &c.name == name)
            {
                return Err(format!(
                    "leader_election.cluster: '{name}' is not one of clusters"
                ));
            }
        }
        Ok(())
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        let fix_opt = |p: &mut Option<PathBuf>| {
            if let Some(p) = p {
                fix(p);
            }
        };
        fix_opt(&mut self.source.path);
        fix_opt(&mut self.source.auth.token_file);
        fix_opt(&mut self.source.auth.password_file);
        fix_opt(&mut self.source.auth.ssh_key_file);
        fix_opt(&mut self.source.auth.known_hosts_file);
        for c in &mut self.clusters {
            fix_opt(&mut c.kubeconfig);
        }
        fix_opt(&mut self.server.webhook_secret_file);
        for a in &mut self.alerts {
            fix_opt(&mut a.url_file);
        }
        fix_opt(&mut self.cache_dir);
    }

    /// The remote to mirror, for a `url` source.
    pub fn remote_spec(&self) -> Option<RemoteSpec> {
        let url = self.source.url.as_ref()?;
        let a = &self.source.auth;
        Some(RemoteSpec {
            url: url.clone(),
            branch: self.source.branch.clone(),
            auth: Auth {
                username: a.username.clone(),
                token_file: a.token_file.clone(),
                password_file: a.password_file.clone(),
                ssh_key_file: a.ssh_key_file.clone(),
                known_hosts_file: a.known_hosts_file.clone(),
            },
            timeout: self.source.timeout.map(|d| d.0).unwrap_or(DEFAULT_FETCH_TIMEOUT),
        })
    }

    /// The cache directory for the mirror.
    pub fn cache_dir(&self) -> PathBuf {
        if let Some(dir) = &self.cache_dir {
            return dir.clone();
        }
        let home_cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
        home_cache.unwrap_or_else(std::env::temp_dir).join("kgitops")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("kgitops.yaml"), Path::new("/etc/kgitops")).map_err(|e| e.to_string())
    }

    #[test]
    fn full_example_parses_with_defaults_and_resolved_paths() {
        let c = parse(
            "source:\n  url: https://git.example/platform.git\n  interval: 1m30s\n  auth: {token_file: token}\n\
             clusters:\n  - name: dev\n    drift: alert\n    prune: false\n  - name: prod-eu-west-1\n\
             server:\n  listen: 127.0.0.1:9000\n  webhook_secret_file: /s/hook\n\
             alerts:\n  - {type: slack, url_file: slack-url}\n",
        )
        .unwrap();
        assert_eq!(c.source.branch, "main");
        assert_eq!(c.source.interval.0, Duration::from_secs(90));
        assert_eq!(
            c.source.auth.token_file.as_deref(),
            Some(Path::new("/etc/kgitops/token"))
        );
        assert_eq!(c.clusters[0].drift, DriftMode::Alert);
        assert!(!c.clusters[0].prune);
        assert_eq!(c.clusters[1].drift, DriftMode::Heal);
        assert!(c.clusters[1].prune);
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(
            c.alerts[0].url_file.as_deref(),
            Some(Path::new("/etc/kgitops/slack-url"))
        );
        assert_eq!(c.remote_spec().unwrap().branch, "main");
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        let err = parse("source: {path: ., intervall: 5s}\nclusters: [{name: dev}]\n").unwrap_err();
        assert!(err.contains("kgitops.yaml") && err.contains("intervall"), "{err}");
        let err = parse("source: {path: .}\nclusters: [{name: dev, drift: fix}]\n").unwrap_err();
        assert!(err.contains("fix"), "{err}");
    }

    #[test]
    fn inconsistent_configurations_are_refused() {
        for (text, expected) in [
            (
                "source: {url: file:///r, path: .}\nclusters: [{name: dev}]\n",
                "not both",
            ),
            ("source: {branch: main}\nclusters: [{name: dev}]\n", "set url"),
            ("source: {path: .}\nclusters: []\n", "at least one cluster"),
            (
                "source: {path: .}\nclusters: [{name: dev}, {name: dev}]\n",
                "twice",
            ),
            (
                "source: {path: .}\nclusters: [{name: ../etc}]\n",
                "clusters[0].name",
            ),
            (
                "source: {path: ., interval: 10}\nclusters: [{name: dev}]\n",
                "invalid duration",
            ),
            (
                "source: {path: .}\nclusters: [{name: dev}]\nalerts: [{type: webhook}]\n",
                "url or url_file",
            ),
            (
                "source: {path: .}\nclusters: [{name: dev}]\nalerts: [{type: pager, url: http://x}]\n",
                "pager",
            ),
            (
                "source: {path: .}\nclusters: [{name: dev}]\nleader_election: {namespace: x, cluster: prod}\n",
                "not one of clusters",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn input_limits_are_read_as_quantities_and_override_the_command_line() {
        let c = parse(
            "source: {path: .}\nclusters: [{name: dev}]\nlimits: {max_render_input: 2Mi, max_tree_entries: 10}\n",
        )
        .unwrap();
        let base = InputLimits::DEFAULT;
        assert_eq!(
            c.limits.apply(base),
            InputLimits {
                max_render_input: 2 << 20,
                max_tree_entries: 10
            }
        );
        let c = parse("source: {path: .}\nclusters: [{name: dev}]\nlimits: {max_render_input: 1048576}\n")
            .unwrap();
        assert_eq!(c.limits.apply(base).max_render_input, 1 << 20);
        assert_eq!(c.limits.apply(base).max_tree_entries, base.max_tree_entries);
        let err = parse("source: {path: .}\nclusters: [{name: dev}]\nlimits: {max_render_input: 2 MB}\n")
            .unwrap_err();
        assert!(
            err.contains("kgitops.yaml") && err.contains("invalid size '2 MB'"),
            "{err}"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h2m3s").unwrap(), Duration::from_secs(3723));
        for bad in ["", "30", "s", "3x", "1.5s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
