//! The daemon's configuration file (`kgitops run --config FILE`): YAML, unknown keys are errors,
//! durations written like `30s`, `5m`, `1h30m` or `500ms`. Relative paths are relative to the
//! directory of the configuration file. Secrets are never in the file itself, only the paths of
//! the files that hold them (mounted Kubernetes Secrets).
//!
//! ```yaml
//! source:
//!   url: https://git.example/platform.git   # https://, ssh://, git@host:path, file://
//!   branch: main
//!   interval: 60s                           # polling (+-10% jitter); webhooks make it immediate
//!   min_fetch_interval: 1s                  # webhook fetches at least this far apart
//!   auth: {token_file: /var/run/secrets/git/token}
//!   # or instead of url: path: ./  -> local working tree, watched with notify (dev loop)
//! clusters:
//!   - name: dev                  # renders clusters/dev
//!     kubeconfig: /path          # optional; in-cluster config when absent
//!     context: dev-admin         # optional
//!     drift: heal                # heal | alert
//!     prune: true
//!     max_prune: 10              # more objects pruned in one run is refused (a broken render?)
//!     suspend: false
//!     api:                       # optional: how politely to talk to this cluster's apiserver
//!       concurrency: 16          # requests in flight
//!       qps: 50                  # client-side rate limit (default: none)
//!       burst: 100               # default: qps
//!       retries: 8               # of a 429/503/504 answer, with backoff and jitter
//!       max_backoff: 10s         # longest backoff delay (a Retry-After may ask for more)
//! server:
//!   listen: 127.0.0.1:9464       # public: /webhook /healthz /readyz
//!   status_listen: 127.0.0.1:9465  # internal: /status /metrics /healthz /readyz
//!   webhook_secret_file: /path   # required for /webhook; must exist and not be empty
//!   header_read_timeout: 10s     # a request's headers must arrive within this
//!   request_timeout: 10s         # a whole request (body included) within this
//!   max_connections: 256         # open connections per listener; more wait in the backlog
//! alerts:
//!   - {type: webhook, url: https://alerts.example/hook}
//!   - {type: slack, url_file: /var/run/secrets/slack/url}
//! leader_election:               # optional: several replicas, one writes
//!   namespace: kgitops-system
//! sharding:                      # optional, instead of leader_election: replicas share the clusters
//!   namespace: kgitops-system    # Leases kgitops-cluster-<name>, kgitops-replica-<id> (docs/fleet.md)
//!   lease_duration: 15s
//!   replica_id: kgitops-0        # default: $POD_NAME, else host name and process id
//!   cluster: prod                # the configured cluster whose API holds the Leases (default: first)
//! limits:                        # optional: what one commit may make kgitops read
//!   max_render_input: 12Mi       # bytes of files one render reads
//!   max_tree_entries: 250000     # git tree entries one revision loads
//! commit_status:                 # optional: a status per cluster on each reconciled commit
//!   provider: github             # github | gitlab | gitea (Forgejo too)
//!   repository: acme/platform    # owner/repo; GitLab: project id or group/project
//!   token_file: /var/run/secrets/git-status/token
//!   api_url: https://api.github.com  # default for github and gitlab; required for gitea
//!   target_url: https://kgitops.example.com  # statuses link to <target_url>/status
//! helm:                          # optional: `helmCharts` (charts kept in the repository)
//!   enabled: false               # like kustomize's --enable-helm (default: the command line's)
//!   command: /usr/local/bin/helm # helm v3 or v4 (default: the command line's, `helm` on PATH)
//!   timeout: 60s                 # one `helm template` run
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::manifest::yaml::{Limits, parse_typed};
use crate::source::limits::{InputLimits, parse_bytes};
use crate::source::remote::{Auth, DEFAULT_FETCH_TIMEOUT, RemoteSpec};

/// Where the public HTTP server (`/webhook`) listens unless the configuration says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// Where the internal HTTP server (`/status`, `/metrics`) listens unless the configuration says
/// otherwise: loopback, so status and error texts are not offered to the network by default.
pub const DEFAULT_STATUS_LISTEN: &str = "127.0.0.1:9465";
/// How long a client may take to send a request's headers unless the configuration says otherwise.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request (headers, body and answer) may take unless the configuration says
/// otherwise. GitHub and GitLab give up on a webhook after 10 s themselves.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections per listener unless the configuration says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// How often the remote is polled unless the configuration says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The least time between the starts of two fetches unless the configuration says otherwise: a
/// webhook after a quiet period fetches at once, a burst of webhooks one more time after this.
pub const DEFAULT_MIN_FETCH_INTERVAL: Duration = Duration::from_secs(1);
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
    /// A file the configuration names (`key`) cannot be used.
    #[error("{} ({key}): {message}", path.display())]
    File {
        key: String,
        path: PathBuf,
        message: String,
    },
    /// A trusted key file of `source.verify` cannot be used.
    #[error("source.verify: {0}")]
    Verify(#[from] crate::source::verify::VerifyError),
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

fn default_min_fetch_interval() -> ConfigDuration {
    ConfigDuration(DEFAULT_MIN_FETCH_INTERVAL)
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
    #[serde(default)]
    pub helm: HelmConfig,
    #[serde(default)]
    pub commit_status: Option<super::commit_status::CommitStatusConfig>,
    /// `decryption`: the age key SOPS-encrypted files are decrypted with.
    #[serde(default)]
    pub decryption: Option<super::decryption::DecryptionConfig>,
    #[serde(default)]
    pub sharding: Option<super::fleet::ShardingConfig>,
}

/// `helm`: overrides of [`crate::render::helm::HelmSettings`]; what is not set keeps the command
/// line's value.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelmConfig {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub command: Option<PathBuf>,
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
    /// kustomize's `--helm-api-versions`, for charts without `apiVersions`.
    #[serde(default)]
    pub api_versions: Option<Vec<String>>,
    /// kustomize's `--helm-kube-version`, for charts without `kubeVersion`.
    #[serde(default)]
    pub kube_version: Option<String>,
    /// kustomize's `--helm-debug`.
    #[serde(default)]
    pub debug: Option<bool>,
}

impl HelmConfig {
    /// `base` with what this section sets.
    pub fn apply(&self, base: crate::render::helm::HelmSettings) -> crate::render::helm::HelmSettings {
        crate::render::helm::HelmSettings {
            enabled: self.enabled.unwrap_or(base.enabled),
            command: self.command.clone().unwrap_or(base.command),
            timeout: self.timeout.as_ref().map(|t| t.0).unwrap_or(base.timeout),
            api_versions: self.api_versions.clone().unwrap_or(base.api_versions),
            kube_version: self.kube_version.clone().unwrap_or(base.kube_version),
            debug: self.debug.unwrap_or(base.debug),
        }
    }
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
    /// The least time between the starts of two fetches (webhook bursts coalesce into one more
    /// fetch after it). See docs/git-source.md.
    #[serde(default = "default_min_fetch_interval")]
    pub min_fetch_interval: ConfigDuration,
    /// Upper bound for one fetch.
    #[serde(default)]
    pub timeout: Option<ConfigDuration>,
    #[serde(default)]
    pub auth: AuthConfig,
    /// Commit signature verification (see docs/commit-verification.md).
    #[serde(default)]
    pub verify: Option<super::verify::VerifyConfig>,
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
    /// A prune of more objects than this in one run (or of more than half of the inventory) is
    /// refused and reported as a failed reconcile; raise it for a planned large removal.
    #[serde(default = "default_max_prune")]
    pub max_prune: usize,
    #[serde(default)]
    pub suspend: bool,
    /// Namespace of the inventory ConfigMap (default: the overlay's only namespace).
    #[serde(default)]
    pub inventory_namespace: Option<String>,
    /// How to talk to the cluster's apiserver.
    #[serde(default)]
    pub api: ApiConfig,
}

/// A cluster's `api`: requests in flight, client-side rate limit and retries of a busy apiserver's
/// answers (see [`crate::plan::client`] for what each does and why the rate limit is off by
/// default).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default)]
    pub qps: Option<std::num::NonZeroU32>,
    #[serde(default)]
    pub burst: Option<std::num::NonZeroU32>,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_max_backoff")]
    pub max_backoff: ConfigDuration,
}

fn default_concurrency() -> usize {
    crate::plan::cluster::DEFAULT_CONCURRENCY
}

fn default_retries() -> u32 {
    crate::plan::client::DEFAULT_RETRIES
}

fn default_max_backoff() -> ConfigDuration {
    ConfigDuration(crate::plan::client::DEFAULT_MAX_BACKOFF)
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            concurrency: default_concurrency(),
            qps: None,
            burst: None,
            retries: default_retries(),
            max_backoff: default_max_backoff(),
        }
    }
}

impl ApiConfig {
    /// The request stack's options.
    pub fn client_options(&self) -> crate::plan::client::ClientOptions {
        crate::plan::client::ClientOptions {
            concurrency: self.concurrency,
            qps: self.qps,
            burst: self.burst,
            retries: self.retries,
            max_backoff: self.max_backoff.0,
        }
    }
}

/// `server`: two listeners. The public one (`listen`) serves `/webhook` and the probes; the
/// internal one (`status_listen`) serves `/status`, `/metrics` and the probes, on loopback unless
/// configured otherwise. Each listener holds at most `max_connections` connections; a client
/// must send its headers within `header_read_timeout` and finish its request within
/// `request_timeout`, else the connection is closed.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default = "default_status_listen")]
    pub status_listen: SocketAddr,
    /// The shared secret of `/webhook` (GitHub HMAC key or GitLab token). Without it `/webhook`
    /// answers 404: an unauthenticated trigger is never offered. The daemon does not start when
    /// the file is missing, unreadable or empty.
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: ConfigDuration,
    #[serde(default = "default_request_timeout")]
    pub request_timeout: ConfigDuration,
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_prune() -> usize {
    crate::apply::prune::DEFAULT_MAX_PRUNE
}

fn default_listen() -> SocketAddr {
    // A constant that always parses.
    SocketAddr::from(([127, 0, 0, 1], 9464))
}

fn default_status_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9465))
}

fn default_header_read_timeout() -> ConfigDuration {
    ConfigDuration(DEFAULT_HEADER_READ_TIMEOUT)
}

fn default_request_timeout() -> ConfigDuration {
    ConfigDuration(DEFAULT_REQUEST_TIMEOUT)
}

fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            status_listen: default_status_listen(),
            webhook_secret_file: None,
            header_read_timeout: default_header_read_timeout(),
            request_timeout: default_request_timeout(),
            max_connections: default_max_connections(),
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
        if self.source.verify.is_some() && self.source.path.is_some() {
            return Err(
                "source.verify: a local path is a working tree, which carries no signature; \
                        verification needs source.url"
                    .into(),
            );
        }
        if self.source.branch.trim().is_empty() {
            return Err("source.branch: must not be empty".into());
        }
        if self.source.interval.0 < Duration::from_secs(1) {
            return Err("source.interval: must be at least 1s".into());
        }
        if self.source.min_fetch_interval.0 > self.source.interval.0 {
            return Err("source.min_fetch_interval: must not be longer than source.interval".into());
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
        if let Some(cs) = &self.commit_status {
            if self.source.url.is_none() {
                return Err(
                    "commit_status: needs source.url (a local working tree has no commits on a git host)"
                        .into(),
                );
            }
            cs.check().map_err(|e| e.to_string())?;
        }
        let server = &self.server;
        if server.listen == server.status_listen && server.listen.port() != 0 {
            return Err(format!(
                "server.status_listen: {} is also server.listen; the status listener must be separate",
                server.status_listen
            ));
        }
        if server.max_connections == 0 {
            return Err("server.max_connections: must be at least 1".into());
        }
        for (key, d) in [
            ("server.header_read_timeout", server.header_read_timeout),
            ("server.request_timeout", server.request_timeout),
        ] {
            if d.0 < Duration::from_millis(100) {
                return Err(format!("{key}: must be at least 100ms"));
            }
        }
        if let Some(sharding) = &self.sharding {
            sharding
                .check(&self.clusters, self.leader_election.is_some())
                .map_err(|e| e.to_string())?;
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
        if let Some(v) = &mut self.source.verify {
            v.resolve_paths(base);
        }
        for c in &mut self.clusters {
            fix_opt(&mut c.kubeconfig);
        }
        fix_opt(&mut self.server.webhook_secret_file);
        // A bare name (`helm`) is looked up on PATH; a path is relative to the file.
        if let Some(command) = &mut self.helm.command
            && command.components().count() > 1
        {
            fix(command);
        }
        for a in &mut self.alerts {
            fix_opt(&mut a.url_file);
        }
        fix_opt(&mut self.cache_dir);
        if let Some(cs) = &mut self.commit_status {
            fix(&mut cs.token_file);
        }
        if let Some(d) = &mut self.decryption {
            fix_opt(&mut d.age_key_file);
        }
    }

    /// Checks every file the configuration names, before the daemon starts: each must be a
    /// readable file, and a secret (`secret: true`) must not be empty (an empty HMAC key or GitLab
    /// token would accept anyone). Returns warnings: secrets readable by every user.
    pub fn check_files(&self) -> Result<Vec<String>, ConfigError> {
        let a = &self.source.auth;
        let commit_status_token = self.commit_status.as_ref().map(|c| c.token_file.clone());
        // Not secret: known_hosts is public, a kubeconfig is checked readable only.
        let mut files: Vec<(String, &Option<PathBuf>, bool)> = vec![
            ("source.auth.token_file".into(), &a.token_file, true),
            ("source.auth.password_file".into(), &a.password_file, true),
            ("source.auth.ssh_key_file".into(), &a.ssh_key_file, true),
            ("source.auth.known_hosts_file".into(), &a.known_hosts_file, false),
        ];
        for (i, c) in self.clusters.iter().enumerate() {
            files.push((format!("clusters[{i}].kubeconfig"), &c.kubeconfig, false));
        }
        files.push((
            "server.webhook_secret_file".into(),
            &self.server.webhook_secret_file,
            true,
        ));
        for (i, alert) in self.alerts.iter().enumerate() {
            files.push((format!("alerts[{i}].url_file"), &alert.url_file, true));
        }
        files.push(("commit_status.token_file".into(), &commit_status_token, true));
        if let Some(v) = &self.source.verify {
            v.load()?;
        }
        let mut warnings = Vec::new();
        for (key, path, secret) in files {
            let Some(path) = path.as_deref() else { continue };
            let fail = |message: String| ConfigError::File {
                key: key.clone(),
                path: path.to_path_buf(),
                message,
            };
            let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
            if !meta.is_file() {
                return Err(fail("is not a file".into()));
            }
            // Opened, not only stat'ed: a file the daemon's user cannot read fails here, not later.
            let mut file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
            if secret {
                let mut first = [0u8; 64];
                let n = std::io::Read::read(&mut file, &mut first)
                    .map_err(|e| fail(format!("cannot read: {e}")))?;
                if n == 0 || (meta.len() <= 64 && first[..n].iter().all(u8::is_ascii_whitespace)) {
                    return Err(fail("is empty; a secret is required".into()));
                }
                if world_readable(&meta) {
                    warnings.push(format!(
                        "{} ({key}): readable by every user; make it 0600 or 0440",
                        path.display()
                    ));
                }
            }
        }
        Ok(warnings)
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

#[cfg(unix)]
fn world_readable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    meta.permissions().mode() & 0o004 != 0
}

#[cfg(not(unix))]
fn world_readable(_: &std::fs::Metadata) -> bool {
    false
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
        assert_eq!(c.source.min_fetch_interval.0, DEFAULT_MIN_FETCH_INTERVAL);
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
    fn helm_section_overrides_the_command_line() {
        use crate::render::helm::HelmSettings;
        let base = HelmSettings::default();
        let c = parse("source: {path: .}\nclusters: [{name: dev}]\n").unwrap();
        assert_eq!(c.helm.apply(base.clone()), base);
        let c = parse(
            "source: {path: .}\nclusters: [{name: dev}]\nhelm: {enabled: true, command: bin/helm, timeout: 2m}\n",
        )
        .unwrap();
        let s = c.helm.apply(base.clone());
        assert!(s.enabled);
        assert_eq!(s.command, Path::new("/etc/kgitops/bin/helm"));
        assert_eq!(s.timeout, Duration::from_secs(120));
        // A bare name stays a name looked up on PATH.
        let c = parse("source: {path: .}\nclusters: [{name: dev}]\nhelm: {command: helm4}\n").unwrap();
        assert_eq!(c.helm.apply(base).command, Path::new("helm4"));
        assert!(parse("source: {path: .}\nclusters: [{name: dev}]\nhelm: {enable: true}\n").is_err());
        let c = parse(
            "source: {path: .}\nclusters: [{name: dev}]\nhelm: {api_versions: [a/v1], kube_version: 1.31.0, debug: true}\n",
        )
        .unwrap();
        let s = c.helm.apply(HelmSettings::default());
        assert_eq!(s.api_versions, ["a/v1"]);
        assert_eq!(s.kube_version, "1.31.0");
        assert!(s.debug);
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
                "source: {path: ., interval: 5s, min_fetch_interval: 10s}\nclusters: [{name: dev}]\n",
                "source.min_fetch_interval",
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
    fn server_keys_have_defaults_and_are_checked() {
        let c = parse("source: {path: .}\nclusters: [{name: dev}]\n").unwrap();
        assert_eq!(c.server.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.server.status_listen.to_string(), DEFAULT_STATUS_LISTEN);
        assert_eq!(c.server.header_read_timeout.0, DEFAULT_HEADER_READ_TIMEOUT);
        assert_eq!(c.server.max_connections, DEFAULT_MAX_CONNECTIONS);
        for (server, expected) in [
            (
                "{listen: 0.0.0.0:9000, status_listen: 0.0.0.0:9000}",
                "server.status_listen",
            ),
            ("{max_connections: 0}", "server.max_connections"),
            ("{header_read_timeout: 10ms}", "server.header_read_timeout"),
        ] {
            let err = parse(&format!(
                "source: {{path: .}}\nclusters: [{{name: dev}}]\nserver: {server}\n"
            ))
            .unwrap_err();
            assert!(err.contains(expected), "{server}: {err}");
        }
    }

    #[test]
    fn every_configured_file_is_checked_naming_key_and_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("kubeconfig"), "apiVersion: v1\n").unwrap();
        std::fs::write(d.join("empty"), "").unwrap();
        std::fs::write(d.join("newline"), "\n").unwrap();
        std::fs::write(d.join("secret"), "s3cret\n").unwrap();
        std::fs::set_permissions(d.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(d.join("open"), "s3cret\n").unwrap();
        std::fs::set_permissions(d.join("open"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let config = |server: &str, auth: &str| {
            Config::parse(
                &format!(
                    "source: {{url: https://g.example/r.git, auth: {{{auth}}}}}\n\
                     clusters: [{{name: dev, kubeconfig: kubeconfig}}]\nserver: {{{server}}}\n"
                ),
                Path::new("kgitops.yaml"),
                d,
            )
            .unwrap()
        };
        assert!(
            config("webhook_secret_file: secret", "")
                .check_files()
                .unwrap()
                .is_empty()
        );
        for (server, auth, key, file, expected) in [
            (
                "webhook_secret_file: empty",
                "",
                "server.webhook_secret_file",
                "empty",
                "is empty",
            ),
            (
                "webhook_secret_file: newline",
                "",
                "server.webhook_secret_file",
                "newline",
                "is empty",
            ),
            (
                "webhook_secret_file: missing",
                "",
                "server.webhook_secret_file",
                "missing",
                "cannot read",
            ),
            (
                "",
                "token_file: empty",
                "source.auth.token_file",
                "empty",
                "is empty",
            ),
            (
                "",
                "known_hosts_file: gone",
                "source.auth.known_hosts_file",
                "gone",
                "cannot read",
            ),
            (
                "",
                "ssh_key_file: .",
                "source.auth.ssh_key_file",
                ".",
                "not a file",
            ),
        ] {
            let err = config(server, auth).check_files().unwrap_err().to_string();
            assert!(
                err.contains(key)
                    && err.contains(&d.join(file).display().to_string())
                    && err.contains(expected),
                "{server} {auth}: {err}"
            );
        }
        let mut c = config("", "");
        c.clusters[0].kubeconfig = Some(d.join("nowhere"));
        let err = c.check_files().unwrap_err().to_string();
        assert!(
            err.contains("clusters[0].kubeconfig") && err.contains("nowhere"),
            "{err}"
        );
        let warnings = config("webhook_secret_file: open", "").check_files().unwrap();
        assert!(
            warnings.len() == 1
                && warnings[0].contains("server.webhook_secret_file")
                && !warnings[0].contains("s3cret"),
            "{warnings:?}"
        );
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
    fn commit_status_is_parsed_checked_and_its_token_file_resolved() {
        use super::super::commit_status::Provider;
        let c = parse(
            "source: {url: https://g.example/r.git}\nclusters: [{name: dev}]\n\
             commit_status: {provider: gitlab, repository: infra/platform, token_file: status-token, target_url: https://k.example}\n",
        )
        .unwrap();
        let cs = c.commit_status.as_ref().unwrap();
        assert_eq!(cs.provider, Provider::Gitlab);
        assert_eq!(cs.token_file, Path::new("/etc/kgitops/status-token"));
        assert_eq!(cs.link().as_deref(), Some("https://k.example/status"));
        assert!(
            parse("source: {path: .}\nclusters: [{name: dev}]\n")
                .unwrap()
                .commit_status
                .is_none()
        );
        for (text, expected) in [
            (
                "source: {path: .}\nclusters: [{name: dev}]\ncommit_status: {provider: github, repository: a/b, token_file: t}\n",
                "commit_status: needs source.url",
            ),
            (
                "source: {url: https://g.example/r.git}\nclusters: [{name: dev}]\ncommit_status: {provider: gitea, repository: a/b, token_file: t}\n",
                "commit_status.api_url",
            ),
            (
                "source: {url: https://g.example/r.git}\nclusters: [{name: dev}]\ncommit_status: {provider: github, repository: b, token_file: t}\n",
                "commit_status.repository",
            ),
            (
                "source: {url: https://g.example/r.git}\nclusters: [{name: dev}]\ncommit_status: {provider: bitbucket, repository: a/b, token_file: t}\n",
                "bitbucket",
            ),
            (
                "source: {url: https://g.example/r.git}\nclusters: [{name: dev}]\ncommit_status: {provider: github, repository: a/b, token: t}\n",
                "token",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text}: {err}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty"), "").unwrap();
        let c = Config::parse(
            "source: {url: https://g.example/r.git}\nclusters: [{name: dev}]\n\
             commit_status: {provider: github, repository: a/b, token_file: empty}\n",
            Path::new("kgitops.yaml"),
            dir.path(),
        )
        .unwrap();
        let err = c.check_files().unwrap_err().to_string();
        assert!(
            err.contains("commit_status.token_file") && err.contains("is empty"),
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
