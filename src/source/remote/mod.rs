//! A mirror of one remote repository in a cache directory, for the daemon: cloned once (bare), then
//! fetched; each fetch reports the configured branch's commit and whether it moved or was
//! force-pushed. Trees are read from the mirror's git objects through [`GitRepo`].
//!
//! ```no_run
//! # use kgitops::source::remote::{Auth, Mirror, RemoteSpec};
//! # use std::path::Path;
//! let mut spec = RemoteSpec::new("https://git.example/platform.git", "main");
//! spec.auth.token_file = Some("/var/run/secrets/git/token".into());
//! let mirror = Mirror::open_or_clone(spec, Path::new("/var/cache/kgitops"))?;
//! let fetched = mirror.fetch()?; // blocking: the daemon runs it in spawn_blocking
//! let tree = mirror.tree(&fetched.sha)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Transports: `https://`/`http://` with a token (sent as the password; user name configurable,
//! default [`DEFAULT_TOKEN_USER`]) or a user name and a password file; `ssh://` and scp-like
//! `[user@]host:path` with a private key file, the host key checked against a known_hosts file
//! (the configured one, else `~/.ssh/known_hosts`) in git2's certificate callback: an unknown or
//! changed host key is refused, never accepted; `file://` and plain paths. HTTP proxies as git
//! finds them (`http.proxy`, `https_proxy`/`http_proxy`, `no_proxy`).
//!
//! HTTP credentials go only to the configured origin (scheme, host and port): redirects to another
//! host name are refused by libgit2 ([`RemoteRedirect::None`]; libgit2's default, like git's,
//! follows them on the first request, and its credentials callback then hands the token to the
//! new host), and a request for credentials from any other origin (a redirect to another port or
//! scheme of the same host, which libgit2 follows) is answered with an error, never the token.
//!
//! Secrets are read from their files on every fetch (so rotated credentials apply without a
//! restart) and never leave this module: every message carries the URL without its userinfo,
//! and any secret value that libgit2 might echo is replaced by `***`.
//!
//! A failed fetch changes nothing: libgit2 moves refs only after the whole pack is in, and a first
//! clone is made in a temporary directory renamed into place only when it is complete. So the mirror
//! keeps the last fetched commit when the remote is unreachable, and the daemon its last good one.
//! Force-pushed history stays in the mirror (nothing is garbage-collected), so trees of revisions
//! that were already fetched remain readable.

mod known_hosts;
mod probe;
mod url;

pub use probe::{HostState, HostTrouble, MAX_RETRY_AFTER, Probe, parse_retry_after, probe};

/// `raw` with any credentials in it replaced by `***`, for logs and status.
pub fn masked_url(raw: &str) -> String {
    url::mask_unparsed(raw)
}

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, ErrorClass, ErrorCode, FetchOptions,
    ProxyOptions, RemoteCallbacks, RemoteRedirect, Repository, RepositoryInitOptions,
};
use sha2::Digest;

use super::{GitRepo, GitTree, SourceError};
use known_hosts::{KnownHosts, Verdict};
use url::{MASK, RemoteUrl, Transport};

/// User name sent with a token when none is configured (GitHub's convention; GitLab and Gitea
/// accept any user name with a token).
pub const DEFAULT_TOKEN_USER: &str = "x-access-token";

/// User name for SSH when neither the URL nor the configuration names one.
pub const DEFAULT_SSH_USER: &str = "git";

/// How long one fetch may take, connecting included, unless [`RemoteSpec::timeout`] says otherwise.
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the remote is and how to authenticate.
#[derive(Clone)]
pub struct RemoteSpec {
    /// `https://…`, `http://…`, `ssh://…`, `[user@]host:path`, `file://…` or a path.
    pub url: String,
    /// The branch to follow.
    pub branch: String,
    pub auth: Auth,
    /// Upper bound for one fetch, and libgit2's connect and read timeout while it runs (those are
    /// process-wide, so fetches in one process run one at a time).
    pub timeout: Duration,
}

impl RemoteSpec {
    /// A spec without credentials and with the default timeout.
    pub fn new(url: impl Into<String>, branch: impl Into<String>) -> RemoteSpec {
        RemoteSpec {
            url: url.into(),
            branch: branch.into(),
            auth: Auth::default(),
            timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for RemoteSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSpec")
            .field("url", &url::mask_unparsed(&self.url))
            .field("branch", &self.branch)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Credentials, as files (mounted Secrets), never as values. Which fields apply depends on the
/// URL: token or user name + password for HTTP(S), key + known_hosts (+ user name) for SSH, none
/// for local repositories. A field that does not apply to the URL is an error, not ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auth {
    /// HTTP(S): the user sent with the token (default [`DEFAULT_TOKEN_USER`]) or the password.
    /// SSH: the user (default: the one in the URL, else [`DEFAULT_SSH_USER`]).
    pub username: Option<String>,
    /// HTTP(S): file holding an access token.
    pub token_file: Option<PathBuf>,
    /// HTTP(S): file holding the password for `username`.
    pub password_file: Option<PathBuf>,
    /// SSH: the private key (OpenSSH or PEM format, without passphrase).
    pub ssh_key_file: Option<PathBuf>,
    /// SSH: the host keys to accept (`ssh-keyscan` output); default `~/.ssh/known_hosts`.
    pub known_hosts_file: Option<PathBuf>,
}

/// What a fetch found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchResult {
    /// The branch's commit now.
    pub sha: String,
    /// The branch's commit in the mirror before this fetch.
    pub previous: Option<String>,
    /// The branch moved.
    pub changed: bool,
    /// The branch moved to a commit that does not contain the previous one (history rewritten).
    pub forced: bool,
}

/// A failed mirror operation. Every message starts with the URL, without credentials.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The spec cannot work (bad URL, credentials that do not fit the transport, ...).
    #[error("{url}: {message}")]
    Spec { url: String, message: String },
    /// A credential or known_hosts file could not be read. Names the file, never its content.
    #[error("{url}: {what} {}: {message}", file.display())]
    File {
        url: String,
        what: &'static str,
        file: PathBuf,
        message: String,
    },
    /// The server refused the credentials, or asked for some and none are configured.
    #[error("{url}: authentication failed: {message}")]
    Auth { url: String, message: String },
    /// The SSH host key is unknown, changed or revoked.
    #[error("{url}: host key verification failed: {message}")]
    HostKey { url: String, message: String },
    /// The remote has no such branch.
    #[error("{url}: branch '{branch}' not found on the remote")]
    BranchNotFound { url: String, branch: String },
    #[error("{url}: fetch of branch '{branch}' timed out after {}s", after.as_secs())]
    TimedOut {
        url: String,
        branch: String,
        after: Duration,
    },
    #[error("{url}: fetch of branch '{branch}' cancelled")]
    Cancelled { url: String, branch: String },
    /// The transport failed: remote unreachable, connection dropped, not a repository, ...
    #[error("{url}: cannot fetch branch '{branch}': {message}")]
    Fetch {
        url: String,
        branch: String,
        message: String,
    },
    /// The git host answered 429 Too Many Requests (see [`probe()`]).
    #[error("{url}: the git host is throttling requests (HTTP 429){}", wait_note(*retry_after))]
    Throttled {
        url: String,
        retry_after: Option<Duration>,
    },
    /// The git host answered 5xx (see [`probe()`]).
    #[error("{url}: the git host is unavailable: {message}{}", wait_note(*retry_after))]
    Unavailable {
        url: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The cache directory or the mirror in it could not be used.
    #[error("{}: mirror of {url}: {message}", dir.display())]
    Cache {
        url: String,
        dir: PathBuf,
        message: String,
    },
    /// Reading the mirror's objects failed.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// `, Retry-After: 30s` when the host said how long to wait.
fn wait_note(retry_after: Option<Duration>) -> String {
    retry_after
        .map(|d| format!(", Retry-After: {}s", d.as_secs()))
        .unwrap_or_default()
}

/// A bare mirror of one remote branch in a cache directory. `Send + Sync`: fetches are serialized
/// (process-wide, see [`RemoteSpec::timeout`]), and trees can be read while a fetch runs.
pub struct Mirror {
    spec: RemoteSpec,
    url: RemoteUrl,
    dir: PathBuf,
    repo: GitRepo,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("url", &self.url)
            .field("branch", &self.spec.branch)
            .field("dir", &self.dir)
            .finish()
    }
}

impl Mirror {
    /// Opens the mirror of `spec.url` under `cache_dir` (one subdirectory per URL), cloning it
    /// first if there is none yet. Opening an existing mirror does not touch the network; call
    /// [`Mirror::fetch`] for the remote's current commit. A mirror that cannot be opened (a crash
    /// mid-way in an old version, a deleted file) is cloned afresh.
    pub fn open_or_clone(spec: RemoteSpec, cache_dir: &Path) -> Result<Mirror, RemoteError> {
        let url = validate(&spec)?;
        let cache_error = |dir: &Path, message: String| RemoteError::Cache {
            url: url.masked().to_string(),
            dir: dir.to_path_buf(),
            message,
        };
        std::fs::create_dir_all(cache_dir)
            .map_err(|e| cache_error(cache_dir, format!("cannot create the cache directory: {e}")))?;
        remove_stale_clones(cache_dir, &mirror_name(&url), spec.timeout);
        let dir = cache_dir.join(mirror_name(&url));
        let usable = dir.exists() && Repository::open_bare(&dir).is_ok();
        if dir.exists() && !usable {
            tracing::warn!(dir = %dir.display(), url = url.masked(), "mirror unusable, cloning again");
            std::fs::remove_dir_all(&dir)
                .map_err(|e| cache_error(&dir, format!("cannot remove the unusable mirror: {e}")))?;
        }
        let mirror = |repo: GitRepo| Mirror {
            spec: spec.clone(),
            url: url.clone(),
            dir: dir.clone(),
            repo,
        };
        if usable {
            let repo = GitRepo::open(&dir).map_err(|e| cache_error(&dir, e.to_string()))?;
            let found = mirror(repo);
            if found.head().is_none() {
                // Another branch was followed before: fetch this one now, as a clone would.
                found.fetch()?;
            }
            return Ok(found);
        }
        // Clone into a temporary directory and rename it into place once complete, so a failed
        // or interrupted clone never leaves a mirror behind.
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = cache_dir.join(format!(
            ".{}.tmp-{}-{stamp}",
            mirror_name(&url),
            std::process::id()
        ));
        let cloned = (|| {
            let mut opts = RepositoryInitOptions::new();
            opts.bare(true)
                .initial_head(&format!("refs/heads/{}", spec.branch));
            let repo = Repository::init_opts(&tmp, &opts)
                .map_err(|e| cache_error(&tmp, format!("cannot create the mirror: {}", e.message())))?;
            let deadline = Instant::now() + spec.timeout;
            let network = network_lock();
            fetch_into(&network, &repo, &spec, &url, deadline, &AtomicBool::new(false))?;
            match std::fs::rename(&tmp, &dir) {
                Ok(()) => Ok(()),
                // Another process finished the same clone first: use its mirror.
                Err(_) if Repository::open_bare(&dir).is_ok() => {
                    let _ = std::fs::remove_dir_all(&tmp);
                    Ok(())
                }
                Err(e) => Err(cache_error(
                    &dir,
                    format!("cannot move the new clone into place: {e}"),
                )),
            }
        })();
        if let Err(e) = cloned {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let repo = GitRepo::open(&dir).map_err(|e| cache_error(&dir, e.to_string()))?;
        tracing::info!(url = url.masked(), branch = %spec.branch, dir = %dir.display(), "cloned mirror");
        Ok(mirror(repo))
    }

    /// Fetches the branch from the remote (blocking, bounded by [`RemoteSpec::timeout`]).
    pub fn fetch(&self) -> Result<FetchResult, RemoteError> {
        self.fetch_cancellable(&AtomicBool::new(false))
    }

    /// [`Mirror::fetch`] that stops with [`RemoteError::Cancelled`] soon after `cancel` becomes
    /// true (checked whenever data arrives; a silent server is bounded by the timeout).
    pub fn fetch_cancellable(&self, cancel: &AtomicBool) -> Result<FetchResult, RemoteError> {
        let network = network_lock();
        let deadline = Instant::now() + self.spec.timeout;
        // A handle of its own: the shared one stays free for tree reads while the fetch runs.
        let repo = Repository::open_bare(&self.dir).map_err(|e| RemoteError::Cache {
            url: self.url.masked().to_string(),
            dir: self.dir.clone(),
            message: e.message().to_string(),
        })?;
        let previous = repo.refname_to_id(&self.refname()).ok();
        let sha = fetch_into(&network, &repo, &self.spec, &self.url, deadline, cancel)?;
        let changed = previous != Some(sha);
        // Objects of the previous commit are still in the mirror, so ancestry can be checked.
        let forced = match previous {
            Some(old) if changed => !repo.graph_descendant_of(sha, old).unwrap_or(false),
            _ => false,
        };
        let result = FetchResult {
            sha: sha.to_string(),
            previous: previous.map(|p| p.to_string()),
            changed,
            forced,
        };
        tracing::debug!(url = self.url.masked(), branch = %self.spec.branch, sha = %result.sha,
            changed, forced, "fetched");
        Ok(result)
    }

    /// The branch's commit as last fetched (no network).
    pub fn head(&self) -> Option<String> {
        self.repo.resolve(&self.refname()).ok()
    }

    /// The files at commit `sha` (or any revision of the mirror).
    pub fn tree(&self, sha: &str) -> Result<GitTree, SourceError> {
        self.repo.tree(sha)
    }

    /// The mirror's repository, for reading several revisions.
    pub fn repo(&self) -> &GitRepo {
        &self.repo
    }

    /// The mirror's directory (a bare repository).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The remote URL without credentials, for messages.
    pub fn url(&self) -> &str {
        self.url.masked()
    }

    /// The followed branch.
    pub fn branch(&self) -> &str {
        &self.spec.branch
    }

    fn refname(&self) -> String {
        format!("refs/heads/{}", self.spec.branch)
    }
}

/// Removes temporary clones of `name` that a killed process left behind: those older than a clone
/// may take (so a clone running in another process is left alone).
fn remove_stale_clones(cache_dir: &Path, name: &str, timeout: Duration) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(&prefix)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > timeout * 2);
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Checks that the spec can work before anything touches the disk or the network.
fn validate(spec: &RemoteSpec) -> Result<RemoteUrl, RemoteError> {
    let masked = url::mask_unparsed(&spec.url);
    let url = RemoteUrl::parse(&spec.url).map_err(|message| RemoteError::Spec {
        url: masked.clone(),
        message,
    })?;
    let spec_error = |message: String| RemoteError::Spec {
        url: url.masked().to_string(),
        message,
    };
    if spec.branch.is_empty() || !git2::Reference::is_valid_name(&format!("refs/heads/{}", spec.branch)) {
        return Err(spec_error(format!(
            "'{}' is not a valid branch name",
            spec.branch
        )));
    }
    let a = &spec.auth;
    let set = |field: Option<&PathBuf>, name: &'static str| field.map(|_| name);
    let misplaced: Vec<&str> = match url.transport {
        Transport::Http { .. } => [
            set(a.ssh_key_file.as_ref(), "ssh_key_file"),
            set(a.known_hosts_file.as_ref(), "known_hosts_file"),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Transport::Ssh => [
            set(a.token_file.as_ref(), "token_file"),
            set(a.password_file.as_ref(), "password_file"),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Transport::Local => [
            a.username.as_ref().map(|_| "username"),
            set(a.token_file.as_ref(), "token_file"),
            set(a.password_file.as_ref(), "password_file"),
            set(a.ssh_key_file.as_ref(), "ssh_key_file"),
            set(a.known_hosts_file.as_ref(), "known_hosts_file"),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };
    if !misplaced.is_empty() {
        let kind = match url.transport {
            Transport::Http { .. } => "an HTTP(S) URL",
            Transport::Ssh => "an SSH URL",
            Transport::Local => "a local repository",
        };
        return Err(spec_error(format!(
            "auth.{} cannot be used with {kind}",
            misplaced.join(", auth.")
        )));
    }
    match url.transport {
        Transport::Http { tls } => {
            if a.token_file.is_some() && a.password_file.is_some() {
                return Err(spec_error(
                    "set auth.token_file or auth.password_file, not both".into(),
                ));
            }
            if a.password_file.is_some() && a.username.is_none() {
                return Err(spec_error("auth.password_file needs auth.username".into()));
            }
            if !tls && !url.is_loopback() && (a.token_file.is_some() || a.password_file.is_some()) {
                tracing::warn!(url = url.masked(), "credentials are sent over plain http");
            }
        }
        Transport::Ssh if a.ssh_key_file.is_none() => {
            return Err(spec_error("SSH URLs need auth.ssh_key_file".into()));
        }
        _ => {}
    }
    Ok(url)
}

/// The mirror's directory name: readable (the repository's last path segment) and unique per URL
/// (a hash of the URL without credentials, so rotating a token in the URL keeps the mirror).
fn mirror_name(url: &RemoteUrl) -> String {
    let last = url
        .masked()
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo")
        .trim_end_matches(".git");
    let slug: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let hash = hex::encode(&sha2::Sha256::digest(url.masked().as_bytes())[..8]);
    format!("{}-{hash}.git", if slug.is_empty() { "repo" } else { &slug })
}

/// Secrets for one fetch, read from their files.
struct Secrets {
    /// HTTP(S) user name and password (or token).
    userpass: Option<(String, String)>,
    ssh_user: String,
    ssh_key: Option<String>,
    known_hosts: Option<KnownHosts>,
}

impl Secrets {
    fn load(spec: &RemoteSpec, url: &RemoteUrl) -> Result<Secrets, RemoteError> {
        let file_error = |what: &'static str, file: &Path, message: String| RemoteError::File {
            url: url.masked().to_string(),
            what,
            file: file.to_path_buf(),
            message,
        };
        let read_secret = |what: &'static str, file: &Path| -> Result<String, RemoteError> {
            let text = std::fs::read_to_string(file)
                .map_err(|e| file_error(what, file, format!("cannot read: {e}")))?;
            // Secret files usually end with a newline that is not part of the secret.
            let value = text.trim_end_matches(['\n', '\r']).to_string();
            if value.is_empty() {
                return Err(file_error(what, file, "is empty".into()));
            }
            Ok(value)
        };
        let a = &spec.auth;
        let username = a.username.clone();
        let mut secrets = Secrets {
            userpass: None,
            ssh_user: username
                .clone()
                .or_else(|| url.user.clone())
                .unwrap_or_else(|| DEFAULT_SSH_USER.to_string()),
            ssh_key: None,
            known_hosts: None,
        };
        match url.transport {
            Transport::Http { .. } => {
                if let Some(file) = &a.token_file {
                    let token = read_secret("token file", file)?;
                    let user = username.unwrap_or_else(|| DEFAULT_TOKEN_USER.to_string());
                    secrets.userpass = Some((user, token));
                } else if let (Some(user), Some(file)) = (username, &a.password_file) {
                    secrets.userpass = Some((user, read_secret("password file", file)?));
                }
            }
            Transport::Ssh => {
                if let Some(file) = &a.ssh_key_file {
                    secrets.ssh_key = Some(read_secret("ssh key file", file)?);
                }
                let known_hosts = match &a.known_hosts_file {
                    Some(file) => file.clone(),
                    None => std::env::home_dir()
                        .map(|home| home.join(".ssh/known_hosts"))
                        .ok_or_else(|| RemoteError::Spec {
                            url: url.masked().to_string(),
                            message: "no auth.known_hosts_file and no home directory for ~/.ssh/known_hosts"
                                .into(),
                        })?,
                };
                secrets.known_hosts = Some(
                    KnownHosts::load(&known_hosts)
                        .map_err(|message| file_error("known_hosts file", &known_hosts, message))?,
                );
            }
            Transport::Local => {}
        }
        Ok(secrets)
    }

    /// Replaces every secret value in `text` (libgit2 messages may echo what they were given).
    fn scrub(&self, url: &RemoteUrl, text: &str) -> String {
        let mut out = text.replace(url.raw(), url.masked());
        let from_files = self.userpass.iter().map(|(_, password)| password.as_str());
        for secret in from_files.chain(url.userinfo_secrets()) {
            // Very short values would mask unrelated text; no real secret is that short.
            if secret.len() >= 4 {
                out = out.replace(secret, MASK);
            }
        }
        out
    }

    /// What credentials were offered, for the authentication error (never the values).
    fn offered(&self, spec: &RemoteSpec) -> String {
        let a = &spec.auth;
        match (&self.userpass, &a.token_file, &a.password_file, &a.ssh_key_file) {
            (Some((user, _)), Some(file), _, _) => {
                format!("user '{user}' with the token from {}", file.display())
            }
            (Some((user, _)), _, Some(file), _) => {
                format!("user '{user}' with the password from {}", file.display())
            }
            (_, _, _, Some(file)) => format!("user '{}' with the key {}", self.ssh_user, file.display()),
            _ => "no credentials".into(),
        }
    }
}

/// Serializes fetches in this process. libgit2's connect and read timeouts are process-wide
/// settings, so each fetch sets its own and holds them until it is done; fetches are rare
/// (one remote per daemon), so running them one at a time costs nothing.
fn network_lock() -> MutexGuard<'static, ()> {
    static NETWORK: Mutex<()> = Mutex::new(());
    // Nothing guarded can be left half-done by a panic: the lock only orders fetches.
    NETWORK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the callbacks saw, for an error that says why libgit2 gave up.
#[derive(Default)]
struct Outcome {
    /// Credentials were offered this many times (a second time means they were refused).
    offers: u32,
    /// The server asked for credentials of a kind that is not configured.
    missing: Option<String>,
    host_key: Option<String>,
    timed_out: bool,
    cancelled: bool,
}

/// Fetches `spec.branch` into `refs/heads/<branch>` of `repo` with a forced refspec and returns
/// the commit the remote advertised for it.
#[allow(unsafe_code)] // each unsafe block below says why it is sound (SAFETY)
fn fetch_into(
    _network: &MutexGuard<'static, ()>,
    repo: &Repository,
    spec: &RemoteSpec,
    url: &RemoteUrl,
    deadline: Instant,
    cancel: &AtomicBool,
) -> Result<git2::Oid, RemoteError> {
    let secrets = Secrets::load(spec, url)?;
    let outcome = RefCell::new(Outcome::default());
    let timeout_ms = i32::try_from(spec.timeout.as_millis()).unwrap_or(i32::MAX).max(1);
    // SAFETY: these store an int in libgit2's global settings, read when a connection opens; the
    // network lock keeps other fetches of this process from changing them meanwhile.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(timeout_ms);
        let _ = git2::opts::set_server_timeout_in_milliseconds(timeout_ms);
    }

    let keep_going = || {
        let mut o = outcome.borrow_mut();
        if cancel.load(Ordering::Relaxed) {
            o.cancelled = true;
        } else if Instant::now() > deadline {
            o.timed_out = true;
        }
        !(o.cancelled || o.timed_out)
    };
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(|asking, user_from_url, allowed| {
        if let Some(message) = foreign_origin(url, asking) {
            outcome.borrow_mut().missing = Some(message);
            return Err(git2::Error::from_str("credentials refused: another origin"));
        }
        credentials(&secrets, &outcome, user_from_url, allowed)
    });
    // The host as kgitops parsed it (libgit2's keeps the brackets of IPv6 scp-like addresses).
    callbacks.certificate_check(|cert, _host| {
        let Some(hostkey) = cert.as_hostkey() else {
            // X.509: libgit2 has verified the chain against the system's CAs; keep its verdict.
            return Ok(CertificateCheckStatus::CertificatePassthrough);
        };
        let (Some(known), Some(key)) = (&secrets.known_hosts, hostkey.hostkey()) else {
            outcome.borrow_mut().host_key = Some("the server sent no host key to verify".into());
            return Err(git2::Error::from_str("host key not verified"));
        };
        match check_host_key(known, &url.host, url.port, key) {
            Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
            Err(message) => {
                outcome.borrow_mut().host_key = Some(message);
                Err(git2::Error::from_str("host key verification failed"))
            }
        }
    });
    callbacks.transfer_progress(|_| keep_going());
    callbacks.sideband_progress(|_| keep_going());

    // Proxies as git uses them: `http.proxy` from git config, else `https_proxy`/`http_proxy`
    // with `no_proxy`.
    let mut proxy = ProxyOptions::new();
    proxy.auto();
    let mut options = FetchOptions::new();
    options
        .remote_callbacks(callbacks)
        .proxy_options(proxy)
        .follow_redirects(RemoteRedirect::None)
        .download_tags(AutotagOption::None)
        .update_fetchhead(false);
    let refname = format!("refs/heads/{}", spec.branch);
    let refspec = format!("+{refname}:{refname}");
    let branch = spec.branch.clone();
    let masked = url.masked().to_string();
    let fail = |e: git2::Error| -> RemoteError {
        let o = outcome.borrow();
        if let Some(message) = &o.host_key {
            return RemoteError::HostKey {
                url: masked.clone(),
                message: message.clone(),
            };
        }
        if let Some(message) = &o.missing {
            return RemoteError::Auth {
                url: masked.clone(),
                message: message.clone(),
            };
        }
        if o.offers > 1 || e.code() == ErrorCode::Auth || (e.class() == ErrorClass::Ssh && o.offers > 0) {
            return RemoteError::Auth {
                url: masked.clone(),
                message: format!("the server refused {}", secrets.offered(spec)),
            };
        }
        if o.cancelled {
            return RemoteError::Cancelled {
                url: masked.clone(),
                branch: branch.clone(),
            };
        }
        let message = secrets.scrub(url, e.message());
        if o.timed_out || message.contains("timed out") || e.code() == ErrorCode::Timeout {
            return RemoteError::TimedOut {
                url: masked.clone(),
                branch: branch.clone(),
                after: spec.timeout,
            };
        }
        RemoteError::Fetch {
            url: masked.clone(),
            branch: branch.clone(),
            message,
        }
    };
    if cancel.load(Ordering::Relaxed) {
        return Err(RemoteError::Cancelled { url: masked, branch });
    }
    if let Some(path) = url.local_path()
        && !path.exists()
    {
        // libgit2 would call a missing directory an "unsupported URL protocol".
        return Err(RemoteError::Fetch {
            url: masked,
            branch,
            message: format!("no repository at {}: no such file or directory", path.display()),
        });
    }
    let mut remote = repo.remote_anonymous(url.raw()).map_err(&fail)?;
    remote
        .fetch(&[refspec.as_str()], Some(&mut options), Some("kgitops: fetch"))
        .map_err(&fail)?;
    // The advertisement of the fetch just made (kept by libgit2 after it disconnects): the forced
    // refspec has moved the local branch to this commit, or the remote has no such branch.
    let advertised = remote
        .list()
        .map_err(&fail)?
        .iter()
        .find(|head| head.name() == refname)
        .map(|head| head.oid());
    let sha = advertised.ok_or_else(|| RemoteError::BranchNotFound {
        url: masked.clone(),
        branch: branch.clone(),
    })?;
    let local = repo.refname_to_id(&refname).map_err(&fail)?;
    if local != sha {
        return Err(RemoteError::Fetch {
            url: masked,
            branch,
            message: format!("the remote advertised {sha} but the mirror's branch is at {local}"),
        });
    }
    Ok(sha)
}

/// Why credentials asked for by `asking` (the URL libgit2 authenticates against, after any
/// redirect) must not be given: it is not the configured origin. `None` when it is.
fn foreign_origin(url: &RemoteUrl, asking: &str) -> Option<String> {
    let configured = url.origin()?;
    let asked = RemoteUrl::origin_of(asking);
    if asked.as_deref() == Some(configured.as_str()) {
        return None;
    }
    let shown = asked.unwrap_or_else(|| "a URL that is not HTTP(S)".into());
    Some(format!(
        "the server redirected to {shown}, which asks for credentials; they are sent only to {configured} \
         (the configured scheme, host and port), so the fetch is refused"
    ))
}

/// Answers libgit2's request for credentials with what the spec configures; a second request for
/// the same kind means the first was refused, and is answered with an error instead of a loop.
fn credentials(
    secrets: &Secrets,
    outcome: &RefCell<Outcome>,
    _user_from_url: Option<&str>,
    allowed: CredentialType,
) -> Result<Cred, git2::Error> {
    let refused = || git2::Error::from_str("credentials refused");
    if allowed.contains(CredentialType::USERNAME) {
        return Cred::username(&secrets.ssh_user);
    }
    if allowed.intersects(CredentialType::SSH_KEY | CredentialType::SSH_MEMORY) {
        let Some(key) = &secrets.ssh_key else {
            outcome.borrow_mut().missing =
                Some("the server asks for an SSH key and none is configured".into());
            return Err(refused());
        };
        let mut o = outcome.borrow_mut();
        o.offers += 1;
        if o.offers > 1 {
            return Err(refused());
        }
        return Cred::ssh_key_from_memory(&secrets.ssh_user, None, key, None);
    }
    if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
        let Some((user, password)) = &secrets.userpass else {
            outcome.borrow_mut().missing = Some(
                "the server asks for credentials and none are configured (set auth.token_file, or \
                 auth.username and auth.password_file)"
                    .into(),
            );
            return Err(refused());
        };
        let mut o = outcome.borrow_mut();
        o.offers += 1;
        if o.offers > 1 {
            return Err(refused());
        }
        return Cred::userpass_plaintext(user, password);
    }
    outcome.borrow_mut().missing = Some(format!(
        "the server asks for unsupported credentials ({allowed:?})"
    ));
    Err(refused())
}

/// Accepts `key` for `host:port` only when the known_hosts file lists it; otherwise says what is
/// wrong and which line would trust the key (for an operator who has checked the fingerprint).
fn check_host_key(known: &KnownHosts, host: &str, port: u16, key: &[u8]) -> Result<(), String> {
    let name = known_hosts::host_name(host, port);
    let presented = format!("{} {}", known_hosts::key_type(key), known_hosts::fingerprint(key));
    let file = known.path().display();
    match known.check(host, port, key) {
        Verdict::Trusted => Ok(()),
        Verdict::Revoked => Err(format!(
            "{name} presented {presented}, which {file} marks @revoked"
        )),
        Verdict::Mismatch(types) if types.contains(&known_hosts::key_type(key)) => Err(format!(
            "{name} presented {presented}, which does not match the {} key(s) for it in {file}: \
             the host key has changed, or someone is intercepting the connection",
            types.join(", ")
        )),
        // libssh2 picks the key type by its own preference (Ed25519, then ECDSA, then RSA), so a
        // file holding only some of a host's keys can miss the one negotiated.
        Verdict::Mismatch(types) => Err(format!(
            "{name} presented {presented}, but {file} lists only {} key(s) for it; add the host's \
             {} key too (`ssh-keyscan` prints every type), after checking its fingerprint out of band",
            types.join(", "),
            known_hosts::key_type(key)
        )),
        Verdict::Unknown => Err(format!(
            "{name} is not in {file}; it presented {presented} (after checking that fingerprint \
             out of band, add: {})",
            known_hosts::line_for(host, port, key)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> RemoteSpec {
        RemoteSpec::new(url, "main")
    }

    #[test]
    fn refuses_specs_that_cannot_work() {
        let err = |s: &RemoteSpec| validate(s).unwrap_err().to_string();
        let mut s = spec("https://git.example/p.git");
        s.auth.ssh_key_file = Some("/k".into());
        s.auth.known_hosts_file = Some("/kh".into());
        assert_eq!(
            err(&s),
            "https://git.example/p.git: auth.ssh_key_file, auth.known_hosts_file cannot be used with an HTTP(S) URL"
        );
        let mut s = spec("git@git.example:p.git");
        assert_eq!(err(&s), "git@git.example:p.git: SSH URLs need auth.ssh_key_file");
        s.auth.token_file = Some("/t".into());
        assert!(err(&s).contains("auth.token_file cannot be used with an SSH URL"));
        let mut s = spec("/srv/p.git");
        s.auth.username = Some("git".into());
        assert!(err(&s).contains("auth.username cannot be used with a local repository"));
        let mut s = spec("https://t0ken@git.example/p.git");
        s.auth.token_file = Some("/t".into());
        s.auth.password_file = Some("/p".into());
        assert_eq!(
            err(&s),
            "https://***@git.example/p.git: set auth.token_file or auth.password_file, not both"
        );
        let mut s = spec("https://git.example/p.git");
        s.auth.password_file = Some("/p".into());
        assert!(err(&s).ends_with("auth.password_file needs auth.username"));
        let s = RemoteSpec::new("https://git.example/p.git", "bad..name");
        assert!(err(&s).ends_with("'bad..name' is not a valid branch name"));
        let s = spec("https://user:pa ss@bad host/p.git");
        assert!(
            err(&s).starts_with("https://***@bad host/p.git: not a valid URL"),
            "{}",
            err(&s)
        );
    }

    #[test]
    fn mirrors_can_be_shared_with_blocking_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Mirror>();
        assert_send_sync::<RemoteError>();
    }

    #[test]
    fn debug_output_hides_url_credentials() {
        let s = spec("https://user:hunter2@git.example/p.git");
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("user:"), "{debug}");
    }

    #[test]
    fn mirror_names_are_readable_and_unique_per_url() {
        let name = |u: &str| mirror_name(&RemoteUrl::parse(u).unwrap());
        assert!(name("https://git.example/org/platform.git").starts_with("platform-"));
        assert!(name("git@git.example:org/platform.git").starts_with("platform-"));
        assert_ne!(
            name("https://a.example/platform.git"),
            name("https://b.example/platform.git")
        );
        // Credentials in the URL are not part of the identity.
        assert_eq!(
            name("https://tok1@a.example/p.git"),
            name("https://tok2@a.example/p.git")
        );
    }
}
