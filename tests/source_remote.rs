//! `source::remote::Mirror` against real git remotes on this machine: bare repositories on disk
//! (`file://` and plain paths), smart HTTP through `git http-backend` with basic and token auth,
//! and SSH through a real `sshd` on loopback. Commits, pushes and force-pushes by the git CLI.

mod gitserver;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gitserver::http::{GitHttpServer, Recorder, SilentServer, closed_port, served_root};
use gitserver::{BareRemote, WorkRepo};
use kgitops::source::remote::{FetchResult, HostState, Mirror, Probe, RemoteError, RemoteSpec, probe};
use kgitops::source::{FileTree, TreePath};

fn read(mirror: &Mirror, sha: &str, path: &str) -> String {
    let tree = mirror.tree(sha).unwrap();
    String::from_utf8(tree.read(&TreePath::new(path).unwrap(), usize::MAX).unwrap()).unwrap()
}

/// A work repository with one commit on `main`, pushed to a bare remote at `remote_dir`.
fn seeded(tmp: &Path, remote_dir: &Path) -> (WorkRepo, BareRemote) {
    let work = WorkRepo::init(&tmp.join("work"));
    work.write("clusters/dev/kustomization.yaml", "resources: []\n");
    work.commit("first");
    let remote = BareRemote::init(remote_dir);
    remote.push(&work, "main");
    (work, remote)
}

/// Files in `dir`, for checking that a failed clone leaves nothing behind.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Pushes a commit, then rewrites history with a force-push, checking what `mirror.fetch()`
/// reports each time and that every fetched revision stays readable. Returns the rewritten head.
fn push_then_force_push(mirror: &Mirror, work: &WorkRepo, remote: &BareRemote) -> String {
    let first = mirror.head().unwrap();
    work.write("clusters/dev/kafka.yaml", "kind: Kafka\n");
    let second = work.commit("second");
    remote.push(work, "main");
    let expected = FetchResult {
        sha: second.clone(),
        previous: Some(first.clone()),
        changed: true,
        forced: false,
    };
    assert_eq!(mirror.fetch().unwrap(), expected);
    assert_eq!(read(mirror, &second, "clusters/dev/kafka.yaml"), "kind: Kafka\n");

    // Drop `second` and commit something else on top of `first`.
    work.git(&["reset", "-q", "--hard", &first]);
    work.write("clusters/dev/kustomization.yaml", "resources: [rewritten.yaml]\n");
    let rewritten = work.commit("rewritten");
    remote.force_push(work, "main");
    let expected = FetchResult {
        sha: rewritten.clone(),
        previous: Some(second.clone()),
        changed: true,
        forced: true,
    };
    assert_eq!(mirror.fetch().unwrap(), expected);
    assert_eq!(
        read(mirror, &rewritten, "clusters/dev/kustomization.yaml"),
        "resources: [rewritten.yaml]\n"
    );
    // The dropped commit stays readable: the daemon may still be serving it.
    assert_eq!(read(mirror, &second, "clusters/dev/kafka.yaml"), "kind: Kafka\n");
    rewritten
}

#[test]
fn file_remote_clone_fetch_push_and_force_push() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, remote) = seeded(tmp.path(), &tmp.path().join("remote.git"));
    let cache = tmp.path().join("cache");

    let mirror = Mirror::open_or_clone(RemoteSpec::new(remote.file_url(), "main"), &cache).unwrap();
    let first = remote.sha("main");
    assert_eq!(mirror.head().as_deref(), Some(first.as_str()));
    assert!(mirror.dir().starts_with(&cache));
    assert_eq!(mirror.url(), remote.file_url());

    let unchanged = mirror.fetch().unwrap();
    let expected = FetchResult {
        sha: first.clone(),
        previous: Some(first.clone()),
        changed: false,
        forced: false,
    };
    assert_eq!(unchanged, expected);

    let rewritten = push_then_force_push(&mirror, &work, &remote);

    // Fast-forward after the force-push is not forced again.
    work.write("x", "1");
    let third = work.commit("third");
    remote.push(&work, "main");
    let ff = mirror.fetch().unwrap();
    assert_eq!(
        (ff.sha, ff.previous, ff.changed, ff.forced),
        (third.clone(), Some(rewritten), true, false)
    );

    // Reopening finds the mirror without cloning or touching the remote, and clears what a killed
    // clone left behind long ago (but not a clone that may still be running).
    let name = mirror.dir().file_name().unwrap().to_string_lossy().into_owned();
    let (stale, running) = (format!(".{name}.tmp-1-1"), format!(".{name}.tmp-2-2"));
    std::fs::create_dir(cache.join(&stale)).unwrap();
    std::fs::create_dir(cache.join(&running)).unwrap();
    let aged = std::process::Command::new("touch")
        .args(["-d", "3 hours ago"])
        .arg(cache.join(&stale))
        .status()
        .unwrap();
    assert!(aged.success());
    std::fs::rename(&remote.dir, tmp.path().join("gone.git")).unwrap();
    drop(mirror);
    let reopened = Mirror::open_or_clone(RemoteSpec::new(remote.file_url(), "main"), &cache).unwrap();
    assert_eq!(reopened.head().as_deref(), Some(third.as_str()));
    assert_eq!(entries(&cache), [running, name]);
}

#[test]
fn unreachable_remote_keeps_the_mirror_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, remote) = seeded(tmp.path(), &tmp.path().join("remote.git"));
    let mirror = Mirror::open_or_clone(
        RemoteSpec::new(remote.dir.display().to_string(), "main"),
        &tmp.path().join("cache"),
    )
    .unwrap();
    let first = mirror.head().unwrap();

    // A commit is pushed, then the remote disappears before the mirror fetches it.
    work.write("new.yaml", "new\n");
    let second = work.commit("second");
    remote.push(&work, "main");
    let parked = tmp.path().join("parked.git");
    std::fs::rename(&remote.dir, &parked).unwrap();
    let err = mirror.fetch().unwrap_err();
    assert!(matches!(err, RemoteError::Fetch { .. }), "{err:?}");
    let msg = err.to_string();
    assert_eq!(
        msg,
        format!(
            "{0}: cannot fetch branch 'main': no repository at {0}: no such file or directory",
            remote.dir.display()
        )
    );
    assert_eq!(
        mirror.head().as_deref(),
        Some(first.as_str()),
        "the mirror keeps its last fetch"
    );
    assert_eq!(
        read(&mirror, &first, "clusters/dev/kustomization.yaml"),
        "resources: []\n"
    );

    // Back again: the next fetch converges.
    std::fs::rename(&parked, &remote.dir).unwrap();
    let back = mirror.fetch().unwrap();
    assert_eq!((back.sha.as_str(), back.changed), (second.as_str(), true));
}

#[test]
fn failed_clones_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let missing = format!("file://{}/nothing-here.git", tmp.path().display());
    let err = Mirror::open_or_clone(RemoteSpec::new(&missing, "main"), &cache).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{missing}: cannot fetch branch 'main': ")),
        "{err}"
    );
    assert_eq!(entries(&cache), Vec::<String>::new());

    let (_work, remote) = seeded(tmp.path(), &tmp.path().join("remote.git"));
    let err = Mirror::open_or_clone(RemoteSpec::new(remote.file_url(), "release"), &cache).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: branch 'release' not found on the remote", remote.file_url())
    );
    assert!(matches!(err, RemoteError::BranchNotFound { .. }));
    assert_eq!(entries(&cache), Vec::<String>::new());
}

#[test]
fn a_branch_deleted_on_the_remote_is_an_error_not_a_rewind() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, remote) = seeded(tmp.path(), &tmp.path().join("remote.git"));
    work.git(&["checkout", "-q", "-b", "release"]);
    let release = work.commit("release");
    remote.push(&work, "release");
    let mirror = Mirror::open_or_clone(
        RemoteSpec::new(remote.file_url(), "release"),
        &tmp.path().join("cache"),
    )
    .unwrap();
    assert_eq!(mirror.head().as_deref(), Some(release.as_str()));
    gitserver::git(&remote.dir, &["branch", "-q", "-D", "release"]);
    let err = mirror.fetch().unwrap_err();
    assert!(matches!(err, RemoteError::BranchNotFound { .. }), "{err}");
    assert_eq!(mirror.head().as_deref(), Some(release.as_str()));
}

#[test]
fn a_cancelled_fetch_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, remote) = seeded(tmp.path(), &tmp.path().join("remote.git"));
    let mirror = Mirror::open_or_clone(
        RemoteSpec::new(remote.file_url(), "main"),
        &tmp.path().join("cache"),
    )
    .unwrap();
    let first = mirror.head().unwrap();
    work.write("big.bin", &gitserver::noise(1 << 20, 1));
    let second = work.commit("second");
    remote.push(&work, "main");

    let cancel = AtomicBool::new(true);
    let err = mirror.fetch_cancellable(&cancel).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}: fetch of branch 'main' cancelled", remote.file_url())
    );
    assert_eq!(mirror.head().as_deref(), Some(first.as_str()));
    cancel.store(false, Ordering::Relaxed);
    assert_eq!(mirror.fetch_cancellable(&cancel).unwrap().sha, second);
}

// ---- smart HTTP through git http-backend ----

/// A bare repository served over HTTP, seeded with one commit.
fn served(tmp: &Path) -> (WorkRepo, BareRemote) {
    let root = served_root(tmp);
    seeded(tmp, &root.join("platform.git"))
}

fn secret_file(tmp: &Path, name: &str, value: &str) -> std::path::PathBuf {
    let path = tmp.join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    path
}

#[test]
fn http_with_a_token_and_with_a_password() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, remote) = served(tmp.path());
    let server = GitHttpServer::start(
        &served_root(tmp.path()),
        &[("x-access-token", "tok-123-SECRET"), ("alice", "pw-456-SECRET")],
    );
    let url = server.url("platform.git");

    let mut spec = RemoteSpec::new(&url, "main");
    spec.auth.token_file = Some(secret_file(tmp.path(), "token", "tok-123-SECRET"));
    let mirror = Mirror::open_or_clone(spec, &tmp.path().join("cache-token")).unwrap();
    assert_eq!(mirror.head(), Some(remote.sha("main")));
    // The server really asked: the first request went without credentials and got 401.
    let log = server.log();
    assert!(
        log[0].ends_with("-> 401") && log.iter().any(|l| l.starts_with("POST") && l.ends_with("-> 200")),
        "{log:?}"
    );

    let rewritten = push_then_force_push(&mirror, &work, &remote);

    let mut spec = RemoteSpec::new(&url, "main");
    spec.auth.username = Some("alice".into());
    spec.auth.password_file = Some(secret_file(tmp.path(), "password", "pw-456-SECRET"));
    let mirror = Mirror::open_or_clone(spec, &tmp.path().join("cache-password")).unwrap();
    assert_eq!(mirror.head().as_deref(), Some(rewritten.as_str()));
}

#[test]
fn http_wrong_or_missing_credentials_are_a_clear_error_without_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let (_work, _remote) = served(tmp.path());
    let server = GitHttpServer::start(&served_root(tmp.path()), &[("x-access-token", "right-token")]);
    let url = server.url("platform.git");
    let cache = tmp.path().join("cache");

    let token = secret_file(tmp.path(), "token", "wrong-token-SECRET");
    let mut spec = RemoteSpec::new(&url, "main");
    spec.auth.token_file = Some(token.clone());
    let err = Mirror::open_or_clone(spec, &cache).unwrap_err();
    assert!(matches!(err, RemoteError::Auth { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{url}: authentication failed: the server refused user 'x-access-token' with the token from {}",
            token.display()
        )
    );
    assert!(!format!("{err:?}").contains("SECRET"));
    assert_eq!(entries(&cache), Vec::<String>::new());
    // Two tries (none, then the token), not a loop.
    assert_eq!(
        server.log().iter().filter(|l| l.ends_with("-> 401")).count(),
        2,
        "{:?}",
        server.log()
    );

    let err = Mirror::open_or_clone(RemoteSpec::new(&url, "main"), &cache).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{url}: authentication failed: the server asks for credentials and none are configured \
             (set auth.token_file, or auth.username and auth.password_file)"
        )
    );

    // A token in the URL itself is used by git and never printed.
    let in_url = url.replace("http://", "http://x-access-token:wrong-SECRET@");
    let err = Mirror::open_or_clone(RemoteSpec::new(&in_url, "main"), &cache).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("SECRET") && shown.contains("http://***@127.0.0.1"),
        "{shown}"
    );

    let mut spec = RemoteSpec::new(&url, "main");
    spec.auth.token_file = Some(tmp.path().join("no-such-token"));
    let err = Mirror::open_or_clone(spec, &cache).unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "{url}: token file {}: cannot read:",
            tmp.path().join("no-such-token").display()
        )),
        "{err}"
    );
}

#[test]
fn http_credentials_never_follow_a_redirect_to_another_origin() {
    let tmp = tempfile::tempdir().unwrap();
    let token = secret_file(tmp.path(), "token", "tok-REDIRECT-SECRET");
    // Where the configured server sends the client, and whether it first asks for the token (then
    // libgit2 holds a Basic header it would re-send on its own). 127.0.0.2 is another host; the
    // same host on another port is another origin too.
    let cases = [
        ("127.0.0.2", true, "cannot redirect"),
        ("127.0.0.2", false, "cannot redirect"),
        ("127.0.0.1", true, "the server redirected to http://127.0.0.1:"),
        ("127.0.0.1", false, "the server redirected to http://127.0.0.1:"),
    ];
    for (ip, authenticated_first, expected) in cases {
        let other = Recorder::start(ip, &[], None);
        let to = other.url("").trim_end_matches('/').to_string();
        let accounts: &[(&str, &str)] = if authenticated_first {
            &[("x-access-token", "tok-REDIRECT-SECRET")]
        } else {
            &[]
        };
        let configured = Recorder::start("127.0.0.1", accounts, Some(to));
        let mut spec = RemoteSpec::new(configured.url("platform.git"), "main");
        spec.auth.token_file = Some(token.clone());
        let cache = tmp.path().join(format!("cache-{ip}-{authenticated_first}"));
        let err = Mirror::open_or_clone(spec, &cache).unwrap_err().to_string();
        let case = format!("redirect to {ip}, token accepted first: {authenticated_first}");
        let leaked: Vec<String> = other
            .log()
            .into_iter()
            .filter(|l| !l.ends_with("auth=-"))
            .collect();
        assert!(
            leaked.is_empty(),
            "{case}: the other origin received credentials: {leaked:?}"
        );
        if authenticated_first {
            // The configured origin did get the token: the test really had one to leak.
            assert!(
                configured.log().iter().any(|l| l.contains("auth=Basic")),
                "{case}: {:?}",
                configured.log()
            );
        }
        assert!(err.contains(expected), "{case}: {err}");
        assert!(!err.contains("SECRET"), "{case}: {err}");
    }
}

#[test]
fn http_unreachable_hung_and_cancelled_remotes() {
    let tmp = tempfile::tempdir().unwrap();
    let (work, remote) = served(tmp.path());

    // Nothing listens on the port.
    let url = format!("http://127.0.0.1:{}/platform.git", closed_port());
    let err = Mirror::open_or_clone(RemoteSpec::new(&url, "main"), &tmp.path().join("cache")).unwrap_err();
    assert!(matches!(err, RemoteError::Fetch { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{url}: cannot fetch branch 'main': ")),
        "{err}"
    );
    assert_eq!(
        err.host_trouble().map(|t| t.state),
        Some(HostState::Down),
        "{err}"
    );

    // A server that accepts and never answers: bounded by the timeout.
    let silent = SilentServer::start();
    let mut spec = RemoteSpec::new(format!("http://127.0.0.1:{}/platform.git", silent.port), "main");
    spec.timeout = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let err = Mirror::open_or_clone(spec, &tmp.path().join("cache")).unwrap_err();
    assert!(matches!(err, RemoteError::TimedOut { .. }), "{err:?}");
    assert!(
        err.to_string()
            .ends_with("fetch of branch 'main' timed out after 2s"),
        "{err}"
    );
    assert_eq!(
        err.host_trouble().map(|t| t.state),
        Some(HostState::Down),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    // Cancelled while the pack is being sent: the server's hook raises the flag on the POST.
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let server = GitHttpServer::start_with_hook(
        &served_root(tmp.path()),
        &[],
        Arc::new(move |line: &str| {
            if line.starts_with("POST") {
                flag.store(true, Ordering::Relaxed);
            }
        }),
    );
    let mirror = Mirror::open_or_clone(
        RemoteSpec::new(server.url("platform.git"), "main"),
        &tmp.path().join("cache"),
    )
    .unwrap();
    let first = mirror.head().unwrap();
    cancel.store(false, Ordering::Relaxed);
    work.write("big.bin", &gitserver::noise(1 << 20, 2));
    work.commit("second");
    remote.push(&work, "main");
    let err = mirror.fetch_cancellable(&cancel).unwrap_err();
    assert!(matches!(err, RemoteError::Cancelled { .. }), "{err:?}");
    assert_eq!(mirror.head().as_deref(), Some(first.as_str()));
}

// Issue 21: 429 and 5xx from the git host, as libgit2 reports them and as the probe reads them.
#[tokio::test]
async fn http_429_and_503_are_told_apart_with_retry_after_and_an_unchanged_branch_is_not_fetched() {
    let tmp = tempfile::tempdir().unwrap();
    let (_work, remote) = served(tmp.path());
    let token = secret_file(tmp.path(), "token", "tok-9");
    let server = GitHttpServer::start(&served_root(tmp.path()), &[("x-access-token", "tok-9")]);
    let mut spec = RemoteSpec::new(server.url("platform.git"), "main");
    spec.auth.token_file = Some(token);

    // libgit2 sees only the status (no Retry-After): still told apart. One request each.
    for (status, state) in [(429, HostState::Throttled), (503, HostState::Down)] {
        server.fail_next(status, Some("7"), 1);
        let (s, cache) = (spec.clone(), tmp.path().join("cache"));
        let err = tokio::task::spawn_blocking(move || Mirror::open_or_clone(s, &cache).unwrap_err())
            .await
            .unwrap();
        assert_eq!(err.host_trouble().map(|t| t.state), Some(state), "{err}");
    }

    // The probe reads Retry-After, in seconds or as a date.
    server.fail_next(429, Some("7"), 1);
    let err = probe(&spec, None).await.unwrap_err();
    assert!(
        matches!(err, RemoteError::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(7)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("HTTP 429") && err.to_string().contains("Retry-After: 7s"),
        "{err}"
    );
    let in_a_minute = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(60))
        .unwrap()
        .strftime("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    server.fail_next(503, Some(&in_a_minute), 1);
    let err = probe(&spec, None).await.unwrap_err();
    match err {
        RemoteError::Unavailable {
            retry_after: Some(d), ..
        } => assert!(
            d > Duration::from_secs(50) && d <= Duration::from_secs(60),
            "{d:?}"
        ),
        other => panic!("{other:?}"),
    }

    // A healthy host: the branch where the mirror has it needs no fetch; elsewhere it does.
    let head = remote.sha("main");
    assert_eq!(probe(&spec, Some(&head)).await.unwrap(), Probe::Unchanged);
    assert_eq!(probe(&spec, Some(&"0".repeat(40))).await.unwrap(), Probe::Fetch);
    assert_eq!(probe(&spec, None).await.unwrap(), Probe::Fetch);
    // Credentials the host refuses: the probe leaves the verdict to the fetch.
    let mut wrong = spec.clone();
    wrong.auth.token_file = Some(secret_file(tmp.path(), "wrong", "nope"));
    assert_eq!(probe(&wrong, Some(&head)).await.unwrap(), Probe::Fetch);
    let probes = server
        .log()
        .iter()
        .filter(|l| l.starts_with("GET /platform.git/info/refs?service=git-upload-pack"))
        .count();
    assert!(probes >= 6, "{:#?}", server.log());
    assert!(
        !server.log().iter().any(|l| l.starts_with("POST")),
        "the probe never fetches"
    );
}

// ---- SSH through a real sshd ----

/// An sshd serving a seeded bare repository, plus a known_hosts file trusting it.
struct SshFixture {
    tmp: tempfile::TempDir,
    sshd: gitserver::ssh::Sshd,
    work: WorkRepo,
    remote: BareRemote,
    known_hosts: std::path::PathBuf,
}

fn ssh_fixture() -> SshFixture {
    let tmp = tempfile::tempdir().unwrap();
    let (work, remote) = seeded(tmp.path(), &tmp.path().join("remote.git"));
    let sshd = gitserver::ssh::Sshd::start(&tmp.path().join("sshd"));
    let known_hosts = tmp.path().join("known_hosts");
    std::fs::write(&known_hosts, sshd.known_hosts()).unwrap();
    SshFixture {
        tmp,
        sshd,
        work,
        remote,
        known_hosts,
    }
}

impl SshFixture {
    fn spec(&self, url: String) -> RemoteSpec {
        let mut spec = RemoteSpec::new(url, "main");
        spec.auth.ssh_key_file = Some(self.sshd.user_key.clone());
        spec.auth.known_hosts_file = Some(self.known_hosts.clone());
        spec
    }

    fn cache(&self, name: &str) -> std::path::PathBuf {
        self.tmp.path().join(name)
    }
}

#[test]
fn ssh_clone_fetch_and_force_push_with_a_verified_host_key() {
    let f = ssh_fixture();
    let url = f.sshd.url(&f.remote.dir);
    let mirror = Mirror::open_or_clone(f.spec(url.clone()), &f.cache("cache"))
        .unwrap_or_else(|e| panic!("{e}\nsshd log:\n{}", f.sshd.log()));
    let first = f.remote.sha("main");
    assert_eq!(mirror.head().as_deref(), Some(first.as_str()));
    assert_eq!(mirror.url(), url);

    let rewritten = push_then_force_push(&mirror, &f.work, &f.remote);

    // The scp-like form (`[user@host:port]:path`) reaches the same repository.
    let scp = Mirror::open_or_clone(f.spec(f.sshd.scp_url(&f.remote.dir)), &f.cache("cache-scp")).unwrap();
    assert_eq!(scp.head().as_deref(), Some(rewritten.as_str()));
    // sshd saw public-key logins, the only kind it allows.
    assert!(f.sshd.log().contains("Accepted publickey"), "{}", f.sshd.log());
}

#[test]
fn ssh_hashed_known_hosts_entries_are_accepted() {
    let f = ssh_fixture();
    // `ssh-keygen -H` rewrites the file with hashed host names, as many systems keep them.
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-H", "-f"])
        .arg(&f.known_hosts)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let hashed = std::fs::read_to_string(&f.known_hosts).unwrap();
    assert!(
        hashed.starts_with("|1|") && !hashed.contains("127.0.0.1"),
        "{hashed}"
    );
    let mirror = Mirror::open_or_clone(f.spec(f.sshd.url(&f.remote.dir)), &f.cache("cache")).unwrap();
    assert_eq!(mirror.head(), Some(f.remote.sha("main")));
}

#[test]
fn ssh_refuses_a_changed_or_unknown_host_key() {
    let f = ssh_fixture();
    let url = f.sshd.url(&f.remote.dir);
    let cache = f.cache("cache");

    // known_hosts lists other keys for this host: changed keys, or someone in the middle.
    let (other_ecdsa, other_ed25519) = (
        f.tmp.path().join("other_ecdsa"),
        f.tmp.path().join("other_ed25519"),
    );
    gitserver::ssh::keygen(&other_ecdsa, "ecdsa");
    gitserver::ssh::keygen(&other_ed25519, "ed25519");
    let lines = |keys: &[String]| -> String {
        keys.iter()
            .map(|k| format!("[127.0.0.1]:{} {k}\n", f.sshd.port))
            .collect()
    };
    let others = [
        gitserver::ssh::public_key(&other_ecdsa),
        gitserver::ssh::public_key(&other_ed25519),
    ];
    std::fs::write(&f.known_hosts, lines(&others)).unwrap();
    let err = Mirror::open_or_clone(f.spec(url.clone()), &cache).unwrap_err();
    assert!(matches!(err, RemoteError::HostKey { .. }), "{err:?}");
    let msg = err.to_string();
    let prefix = format!(
        "{url}: host key verification failed: [127.0.0.1]:{} presented ",
        f.sshd.port
    );
    assert!(
        msg.starts_with(&prefix)
            && msg.contains(&format!(
                "which does not match the ecdsa-sha2-nistp256, ssh-ed25519 key(s) for it in {}: \
                 the host key has changed, or someone is intercepting the connection",
                f.known_hosts.display()
            )),
        "{msg}"
    );
    assert_eq!(entries(&cache), Vec::<String>::new());
    // Nothing was sent: the connection stopped before authentication.
    assert!(!f.sshd.log().contains("Accepted publickey"), "{}", f.sshd.log());

    // Only the server's ECDSA key is listed, and the client negotiated its Ed25519 key (libssh2
    // prefers Ed25519): refused, with what to add.
    std::fs::write(&f.known_hosts, lines(&f.sshd.host_keys[1..])).unwrap();
    let msg = Mirror::open_or_clone(f.spec(url.clone()), &cache)
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with(&format!("{prefix}ssh-ed25519 SHA256:"))
            && msg
                .contains("lists only ecdsa-sha2-nistp256 key(s) for it; add the host's ssh-ed25519 key too"),
        "{msg}"
    );

    // The right keys, but listed for another port: unknown host.
    std::fs::write(
        &f.known_hosts,
        f.sshd.known_hosts().replace(&format!(":{} ", f.sshd.port), ":1 "),
    )
    .unwrap();
    let msg = Mirror::open_or_clone(f.spec(url.clone()), &cache)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&format!(
            "[127.0.0.1]:{} is not in {}",
            f.sshd.port,
            f.known_hosts.display()
        )) && msg.contains(&format!(
            "add: [127.0.0.1]:{} {}",
            f.sshd.port, f.sshd.host_keys[0]
        )),
        "{msg}"
    );

    // Revoked.
    let revoked: String = f
        .sshd
        .host_keys
        .iter()
        .map(|k| format!("@revoked * {k}\n"))
        .collect();
    std::fs::write(&f.known_hosts, format!("{}{revoked}", f.sshd.known_hosts())).unwrap();
    let msg = Mirror::open_or_clone(f.spec(url), &cache)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("marks @revoked"), "{msg}");
}

#[test]
fn ssh_wrong_key_and_unreachable_server_are_clear_errors() {
    let f = ssh_fixture();
    let url = f.sshd.url(&f.remote.dir);

    let stranger = f.tmp.path().join("stranger_key");
    gitserver::ssh::keygen(&stranger, "ed25519");
    let mut spec = f.spec(url.clone());
    spec.auth.ssh_key_file = Some(stranger.clone());
    let err = Mirror::open_or_clone(spec, &f.cache("cache")).unwrap_err();
    assert!(matches!(err, RemoteError::Auth { .. }), "{err:?}");
    assert_eq!(
        err.host_trouble(),
        None,
        "refused credentials are not the host's trouble"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{url}: authentication failed: the server refused user '{}' with the key {}",
            f.sshd.user,
            stranger.display()
        )
    );

    let port = closed_port();
    let url = format!("ssh://{}@127.0.0.1:{port}{}", f.sshd.user, f.remote.dir.display());
    let err = Mirror::open_or_clone(f.spec(url.clone()), &f.cache("cache")).unwrap_err();
    assert!(matches!(err, RemoteError::Fetch { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{url}: cannot fetch branch 'main': ")),
        "{err}"
    );
}

// Issue 21: an SSH connection failure is the host being down (the daemon backs off). Needs no
// sshd: nothing listens on the port.
#[test]
fn an_ssh_connection_failure_is_the_host_being_down() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("id_ed25519");
    gitserver::ssh::keygen(&key, "ed25519");
    let known_hosts = tmp.path().join("known_hosts");
    std::fs::write(
        &known_hosts,
        format!("127.0.0.1 {}\n", gitserver::ssh::public_key(&key)),
    )
    .unwrap();
    let url = format!("ssh://git@127.0.0.1:{}/srv/platform.git", closed_port());
    let mut spec = RemoteSpec::new(&url, "main");
    spec.auth.ssh_key_file = Some(key);
    spec.auth.known_hosts_file = Some(known_hosts);
    let err = Mirror::open_or_clone(spec, &tmp.path().join("cache")).unwrap_err();
    assert!(matches!(err, RemoteError::Fetch { .. }), "{err:?}");
    assert_eq!(
        err.host_trouble().map(|t| t.state),
        Some(HostState::Down),
        "{err}"
    );
}
