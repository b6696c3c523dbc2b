//! Commit signature verification (issue 17 part 2) with real signatures: commits signed by the real
//! `git` using the real `gpg` (keys made in a temporary GNUPGHOME, an expired one by generating it
//! in the past with `--faked-system-time`, a revoked one by importing its revocation certificate and
//! exporting the key again, a signing subkey) and `ssh-keygen` keys (`gpg.format=ssh`), checked
//! through the binary's `--verify-openpgp-keys` / `--verify-ssh-allowed-signers` flags on render,
//! validate, diff and apply; wrong keys, unsigned commits, a wrong sshsig namespace, an
//! `allowed_signers` line that does not allow the commit, and a commit object re-written with the
//! old signature. The daemon on the real apiserver: a trusted commit is applied, an unsigned one is
//! not (status, metric, alert and Event say why), the next trusted one is applied.

#[path = "support/alert_sink.rs"]
mod alert_sink;
mod common;
#[path = "support/daemon_poll.rs"]
mod daemon_poll;
mod gitserver;
#[path = "support/http_client.rs"]
mod http_client;
#[path = "support/settings_overlay.rs"]
mod settings_overlay;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use alert_sink::AlertSink;
use gitserver::{BareRemote, WorkRepo};
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kgitops::daemon::{Config, Daemon};
use kube::api::{Api, ListParams};
use serde_json::Value;
use settings_overlay::write_platform;
use tokio_util::sync::CancellationToken;

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A GnuPG home of its own (keys made in it, the agent it starts ends with the test process's
/// temp dir) and a `gpg.program` wrapper for git that uses it, optionally at a faked time.
struct Gpg {
    home: PathBuf,
}

impl Gpg {
    fn new(dir: &Path) -> Gpg {
        let home = dir.join("gnupg");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        Gpg { home }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.arg("--homedir").arg(&self.home).args([
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        c
    }

    /// A new key `name <email>` (ed25519, sign and certify) expiring after `expire` (`never`,
    /// `1d`), made at `faked` (gpg's `--faked-system-time`, ISO `YYYYMMDDTHHMMSS`) if given;
    /// returns its fingerprint.
    fn key(&self, uid: &str, expire: &str, faked: Option<&str>) -> String {
        let mut c = self.cmd();
        if let Some(t) = faked {
            c.args(["--faked-system-time", t]);
        }
        run(c.args(["--quick-gen-key", uid, "ed25519", "sign", expire]));
        let out = run(self.cmd().args(["--with-colons", "--list-keys", uid]));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("fpr:::::::::"))
            .map(|f| f.trim_end_matches(':').to_string())
            .expect("fingerprint of the new key")
    }

    /// Exports the public key `fpr` (armored) to `path`.
    fn export(&self, fpr: &str, path: &Path) -> PathBuf {
        let out = run(self.cmd().args(["--armor", "--export", fpr]));
        std::fs::write(path, &out.stdout).unwrap();
        path.to_path_buf()
    }

    /// A `gpg.program` for git: this home, at `faked` time if given.
    fn program(&self, faked: Option<&str>) -> PathBuf {
        let path = self.home.with_file_name(format!(
            "gpg-{}.sh",
            faked.unwrap_or("now").replace(['T', ':'], "")
        ));
        let fake = faked
            .map(|t| format!("--faked-system-time {t} "))
            .unwrap_or_default();
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nexec gpg --homedir '{}' {fake}\"$@\"\n",
                self.home.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        path
    }
}

/// An ed25519 SSH key made by `ssh-keygen` (private key path; `.pub` beside it).
fn ssh_key(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path));
    path
}

fn public(key: &Path) -> String {
    std::fs::read_to_string(key.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}

/// Commits everything signed with OpenPGP key `fpr` through `program`; returns the sha.
fn commit_gpg(work: &WorkRepo, program: &Path, fpr: &str, message: &str) -> String {
    work.git(&["add", "-A"]);
    work.git(&[
        "-c",
        &format!("gpg.program={}", program.display()),
        "-c",
        &format!("user.signingkey={fpr}"),
        "commit",
        "-q",
        "--allow-empty",
        "-S",
        "-m",
        message,
    ]);
    work.head()
}

/// Commits everything signed with SSH key `key` (`gpg.format=ssh`); returns the sha.
fn commit_ssh(work: &WorkRepo, key: &Path, message: &str) -> String {
    work.git(&["add", "-A"]);
    work.git(&[
        "-c",
        "gpg.format=ssh",
        "-c",
        &format!("user.signingkey={}", key.display()),
        "commit",
        "-q",
        "--allow-empty",
        "-S",
        "-m",
        message,
    ]);
    work.head()
}

/// Writes a commit object from raw text (`git hash-object -t commit -w`); returns its sha.
fn write_commit(work: &WorkRepo, raw: &str) -> String {
    let dir = work.dir.join(".git");
    let file = dir.join("raw-commit");
    std::fs::write(&file, raw).unwrap();
    work.git(&["hash-object", "-t", "commit", "-w", file.to_str().unwrap()])
}

/// The raw commit `sha` with its `gpgsig` header removed (the signed payload) and the header.
fn split_signature(work: &WorkRepo, sha: &str) -> (String, String) {
    let raw = work.git(&["cat-file", "commit", sha]) + "\n";
    let mut payload = String::new();
    let mut sig = String::new();
    let mut in_sig = false;
    for line in raw.split_inclusive('\n') {
        if let Some(first) = line.strip_prefix("gpgsig ") {
            in_sig = true;
            sig.push_str(first);
        } else if in_sig && line.starts_with(' ') {
            sig.push_str(&line[1..]);
        } else {
            in_sig = false;
            payload.push_str(line);
        }
    }
    (payload, sig)
}

/// `payload` (a raw commit) with `sig` as its `gpgsig` header, where git puts it.
fn with_signature(payload: &str, sig: &str) -> String {
    let (headers, message) = payload.split_once("\n\n").unwrap();
    let sig = sig.trim_end().replace('\n', "\n ");
    format!("{headers}\ngpgsig {sig}\n\n{message}")
}

fn kgitops() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kgitops"))
}

/// `kgitops render --repo REPO --rev REV clusters/dev` with the verification flags `flags`.
fn render(repo: &Path, rev: &str, flags: &[String]) -> Output {
    kgitops()
        .args(["render", "--repo"])
        .arg(repo)
        .args(["--rev", rev, "clusters/dev"])
        .args(flags)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    common::output_text(out)
}

/// Exit 0, the rendered ConfigMap on stdout, the signer on stderr.
fn assert_trusted(out: &Output, signer: &str) {
    assert_eq!(out.status.code(), Some(0), "{}", text(out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("name: settings"),
        "{}",
        text(out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("trusted") && err.contains(signer), "{}", text(out));
}

/// Exit 2, nothing rendered, stderr names the commit and contains `why`.
fn assert_refused(out: &Output, commit: &str, why: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", text(out));
    assert!(out.stdout.is_empty(), "{}", text(out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("commit {commit}: not trusted")) && err.contains(why),
        "expected '{why}':\n{}",
        text(out)
    );
}

fn openpgp_flag(path: &Path) -> Vec<String> {
    vec!["--verify-openpgp-keys".into(), path.display().to_string()]
}

/// ISO time for gpg's `--faked-system-time`, `ago` before now.
fn iso_ago(ago: Duration) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::try_from(ago).unwrap();
    t.strftime("%Y%m%dT%H%M%S").to_string()
}

#[test]
fn openpgp_signatures_by_trusted_keys_pass_and_every_other_kind_is_refused_with_its_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let gpg = Gpg::new(tmp.path());
    let now = gpg.program(None);
    let work = WorkRepo::init(&tmp.path().join("work"));
    write_platform(&work, "verify", "1");

    let alice = gpg.key("Alice <alice@example.com>", "never", None);
    let mallory = gpg.key("Mallory <mallory@example.com>", "never", None);
    let trusted = gpg.export(&alice, &tmp.path().join("alice.asc"));
    let flags = openpgp_flag(&trusted);

    // Signed by the trusted key: rendered, the signer named.
    let good = commit_gpg(&work, &now, &alice, "signed by alice");
    assert_trusted(&render(&work.dir, &good, &flags), &alice);
    assert_trusted(&render(&work.dir, "main", &flags), "alice@example.com");

    // Signed by a key that is not trusted.
    let c = commit_gpg(&work, &now, &mallory, "signed by mallory");
    assert_refused(&render(&work.dir, &c, &flags), &c, "which is not a trusted key");
    assert_refused(&render(&work.dir, &c, &flags), &c, &mallory[24..]);

    // Unsigned.
    let c = work.commit("unsigned");
    assert_refused(&render(&work.dir, &c, &flags), &c, "the commit is not signed");

    // The signed commit re-written (its message changed) with the old signature.
    let (payload, sig) = split_signature(&work, &good);
    let forged = write_commit(
        &work,
        &with_signature(
            &payload.replace("signed by alice", "signed by alice, honest"),
            &sig,
        ),
    );
    assert_ne!(forged, good);
    let out = render(&work.dir, &forged, &flags);
    assert_refused(&out, &forged, "bad signature");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&alice),
        "{}",
        text(&out)
    );
    // The same bytes rewritten exactly are the same object, and pass: the check reads the object.
    assert_eq!(write_commit(&work, &with_signature(&payload, &sig)), good);

    // Several files, one key each: either signer passes.
    let both = [
        flags.clone(),
        openpgp_flag(&gpg.export(&mallory, &tmp.path().join("m.asc"))),
    ]
    .concat();
    assert_trusted(&render(&work.dir, &good, &both), &alice);

    // A key file that is not one: exit 2 naming the file, before anything is read.
    std::fs::write(tmp.path().join("junk.asc"), "not a key\n").unwrap();
    let out = render(&work.dir, &good, &openpgp_flag(&tmp.path().join("junk.asc")));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("junk.asc"),
        "{}",
        text(&out)
    );
}

#[test]
fn expired_revoked_and_subkey_signatures_follow_gpg() {
    let tmp = tempfile::tempdir().unwrap();
    let gpg = Gpg::new(tmp.path());
    let now = gpg.program(None);
    let work = WorkRepo::init(&tmp.path().join("work"));
    write_platform(&work, "verify", "1");

    // A key made three days ago that expired after one day; the commit signed while it was
    // valid. gpg reports EXPKEYSIG and `git verify-commit` fails: refused.
    let made = iso_ago(Duration::from_secs(3 * 86400));
    let signed = iso_ago(Duration::from_secs(3 * 86400 - 3600));
    let old = gpg.key("Old <old@example.com>", "1d", Some(&made));
    let old_keys = gpg.export(&old, &tmp.path().join("old.asc"));
    let c = commit_gpg(&work, &gpg.program(Some(&signed)), &old, "signed before expiry");
    let out = render(&work.dir, &c, &openpgp_flag(&old_keys));
    assert_refused(&out, &c, "the key expired at");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&old),
        "{}",
        text(&out)
    );
    let v = Command::new("git")
        .current_dir(&work.dir)
        .env("GNUPGHOME", &gpg.home)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["verify-commit", "--raw", &c])
        .output()
        .unwrap();
    assert!(!v.status.success(), "git verify-commit refuses it too: {v:?}");
    assert!(
        String::from_utf8_lossy(&v.stderr).contains("EXPKEYSIG"),
        "gpg agrees: {v:?}"
    );

    // A key revoked after signing: its revocation certificate imported, the key exported again.
    let gone = gpg.key("Gone <gone@example.com>", "never", None);
    let c = commit_gpg(&work, &now, &gone, "signed before revocation");
    let before = gpg.export(&gone, &tmp.path().join("gone-before.asc"));
    assert_trusted(&render(&work.dir, &c, &openpgp_flag(&before)), &gone);
    let cert = std::fs::read_to_string(gpg.home.join(format!("openpgp-revocs.d/{gone}.rev"))).unwrap();
    let cert = cert.replace(
        ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----",
    );
    std::fs::write(tmp.path().join("gone.rev"), cert).unwrap();
    run(gpg.cmd().arg("--import").arg(tmp.path().join("gone.rev")));
    let revoked = gpg.export(&gone, &tmp.path().join("gone-revoked.asc"));
    assert_refused(
        &render(&work.dir, &c, &openpgp_flag(&revoked)),
        &c,
        "the key is revoked",
    );

    // A signing subkey added to a key: gpg signs with it; trusted through its primary key.
    let main = gpg.key("Sub <sub@example.com>", "never", None);
    run(gpg
        .cmd()
        .args(["--quick-add-key", &main, "ed25519", "sign", "never"]));
    let c = commit_gpg(&work, &now, &main, "signed by the subkey");
    let keys = gpg.export(&main, &tmp.path().join("sub.asc"));
    let out = render(&work.dir, &c, &openpgp_flag(&keys));
    assert_trusted(&out, &main);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("subkey"),
        "{}",
        text(&out)
    );
}

#[test]
fn ssh_signatures_follow_allowed_signers_as_ssh_keygen_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let work = WorkRepo::init(&tmp.path().join("work"));
    write_platform(&work, "verify", "1");
    let alice = ssh_key(tmp.path(), "alice");
    let eve = ssh_key(tmp.path(), "eve");
    let signers = |name: &str, line: String| -> Vec<String> {
        let path = tmp.path().join(name);
        std::fs::write(&path, format!("# trusted\n{line}\n")).unwrap();
        vec!["--verify-ssh-allowed-signers".into(), path.display().to_string()]
    };
    let flags = signers("allowed", format!("alice@example.com {}", public(&alice)));

    let good = commit_ssh(&work, &alice, "signed by alice");
    let out = render(&work.dir, &good, &flags);
    assert_trusted(&out, "alice@example.com");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SSH key SHA256:"),
        "{}",
        text(&out)
    );

    // Another key.
    let c = commit_ssh(&work, &eve, "signed by eve");
    assert_refused(&render(&work.dir, &c, &flags), &c, "which is not a trusted key");

    // Unsigned.
    let c = work.commit("unsigned");
    assert_refused(&render(&work.dir, &c, &flags), &c, "not signed");

    // The signed commit re-written with its old signature.
    let (payload, sig) = split_signature(&work, &good);
    let forged = write_commit(&work, &with_signature(&payload.replace("alice", "alice!"), &sig));
    assert_refused(&render(&work.dir, &forged, &flags), &forged, "bad signature");

    // A signature over the same payload made for another namespace (`ssh-keygen -Y sign -n file`).
    let payload_file = tmp.path().join("payload");
    std::fs::write(&payload_file, &payload).unwrap();
    run(Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "file", "-f"])
        .arg(&alice)
        .arg(&payload_file));
    let file_sig = std::fs::read_to_string(tmp.path().join("payload.sig")).unwrap();
    let c = write_commit(&work, &with_signature(&payload, &file_sig));
    assert_refused(&render(&work.dir, &c, &flags), &c, "namespace 'file', not 'git'");

    // A line that does not allow the `git` namespace, one whose validity ended before the commit,
    // one not yet valid at it; a line allowing git among others passes.
    let key = public(&alice);
    let ns_file = signers("ns", format!("alice@example.com namespaces=\"file\" {key}"));
    assert_refused(
        &render(&work.dir, &good, &ns_file),
        &good,
        "allows namespaces \"file\"",
    );
    let ended = signers(
        "ended",
        format!("alice@example.com valid-before=\"20200101Z\" {key}"),
    );
    assert_refused(
        &render(&work.dir, &good, &ended),
        &good,
        "valid before 2020-01-01",
    );
    let later = signers(
        "later",
        format!("alice@example.com valid-after=\"29990101Z\" {key}"),
    );
    assert_refused(&render(&work.dir, &good, &later), &good, "valid after 2999-01-01");
    let fine = signers(
        "fine",
        format!(
            "\"alice@example.com,a@example.com\" namespaces=\"file,git\",valid-after=\"20200101Z\" {key}"
        ),
    );
    assert_trusted(
        &render(&work.dir, &good, &fine),
        "alice@example.com,a@example.com",
    );

    // ssh-keygen agrees on the good commit.
    let allowed = tmp.path().join("allowed");
    let v = run(Command::new("git")
        .current_dir(&work.dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["-c", &format!("gpg.ssh.allowedSignersFile={}", allowed.display())])
        .args(["verify-commit", &good]));
    assert!(
        String::from_utf8_lossy(&v.stderr).contains("Good \"git\" signature"),
        "{v:?}"
    );

    // cert-authority lines are refused when the file is read, naming the line.
    let ca = signers("ca", format!("*@example.com cert-authority {key}"));
    let out = render(&work.dir, &good, &ca);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ca:2: cert-authority is not supported"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_merge_commit_is_judged_by_its_own_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let work = WorkRepo::init(&tmp.path().join("work"));
    write_platform(&work, "verify", "1");
    let alice = ssh_key(tmp.path(), "alice");
    let allowed = tmp.path().join("allowed");
    std::fs::write(&allowed, format!("alice@example.com {}\n", public(&alice))).unwrap();
    let flags = vec![
        "--verify-ssh-allowed-signers".to_string(),
        allowed.display().to_string(),
    ];
    let base = commit_ssh(&work, &alice, "signed base");
    // A side branch with an unsigned commit, merged into main.
    work.git(&["checkout", "-q", "-b", "side"]);
    work.write("clusters/dev/extra.yaml", "# side\n");
    work.commit("unsigned side commit");
    work.git(&["checkout", "-q", "main"]);
    work.git(&["merge", "-q", "--no-ff", "--no-edit", "side"]);
    let unsigned_merge = work.head();
    assert_refused(
        &render(&work.dir, &unsigned_merge, &flags),
        &unsigned_merge,
        "not signed",
    );
    // The same merge signed by a trusted key: trusted, whatever its parents.
    work.git(&["reset", "-q", "--hard", &base]);
    work.git(&[
        "-c",
        "gpg.format=ssh",
        "-c",
        &format!("user.signingkey={}", alice.display()),
        "merge",
        "-q",
        "--no-ff",
        "--no-edit",
        "-S",
        "side",
    ]);
    let signed_merge = work.head();
    // A merge: it has a second parent (git fails the test otherwise).
    work.git(&["rev-parse", "--verify", "-q", &format!("{signed_merge}^2")]);
    assert_trusted(&render(&work.dir, &signed_merge, &flags), "alice@example.com");
}

#[test]
fn validate_diff_and_apply_verify_the_revision_they_read() {
    let tmp = tempfile::tempdir().unwrap();
    let work = WorkRepo::init(&tmp.path().join("work"));
    write_platform(&work, "verify", "1");
    let alice = ssh_key(tmp.path(), "alice");
    let allowed = tmp.path().join("allowed");
    std::fs::write(&allowed, format!("alice@example.com {}\n", public(&alice))).unwrap();
    let flag = ["--verify-ssh-allowed-signers", allowed.to_str().unwrap()];
    let good = commit_ssh(&work, &alice, "signed");
    write_platform(&work, "verify", "2");
    let bad = work.commit("unsigned");
    let cli = |args: &[&str]| -> Output {
        kgitops()
            .arg(args[0])
            .arg("--repo")
            .arg(&work.dir)
            .args(&args[1..])
            .args(flag)
            .output()
            .unwrap()
    };

    let out = cli(&["validate", "--rev", &good]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_refused(&cli(&["validate", "--rev", &bad]), &bad, "not signed");
    // A comparison verifies the head (`--to`), the revision that would be applied.
    assert_refused(
        &cli(&["validate", "--from", &good, "--to", &bad]),
        &bad,
        "not signed",
    );
    let out = cli(&["diff", "--from", &bad, "--to", &good]);
    assert_eq!(out.status.code(), Some(1), "changes between them: {}", text(&out));
    let out = cli(&["diff", "--from", &good, "--to", &bad]);
    assert_refused(&out, &bad, "not signed");
    // Nothing is connected to before the revision is refused: no cluster is needed for these.
    let out = cli(&[
        "apply",
        "--cluster",
        "dev",
        "--rev",
        &bad,
        "--kubeconfig",
        "/nonexistent",
    ]);
    assert_refused(&out, &bad, "not signed");
    let out = cli(&[
        "diff",
        "--live",
        "--cluster",
        "dev",
        "--rev",
        &bad,
        "--kubeconfig",
        "/nonexistent",
    ]);
    assert_refused(&out, &bad, "not signed");
    // The work tree has no signature.
    let out = cli(&["apply", "--cluster", "dev", "--kubeconfig", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs a git revision"),
        "{}",
        text(&out)
    );
    let out = cli(&["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn apply_with_a_trusted_revision_writes_it() {
    let ns = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(common::namespace("verify-apply"));
    let tmp = tempfile::tempdir().unwrap();
    let work = WorkRepo::init(&tmp.path().join("work"));
    write_platform(&work, &ns.name, "7");
    let alice = ssh_key(tmp.path(), "alice");
    let allowed = tmp.path().join("allowed");
    std::fs::write(&allowed, format!("alice@example.com {}\n", public(&alice))).unwrap();
    let good = commit_ssh(&work, &alice, "signed");
    let out = common::control_plane().kgitops_in(
        &work.dir,
        &[
            "apply",
            "--cluster",
            "dev",
            "--rev",
            &good,
            "--verify-ssh-allowed-signers",
            allowed.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("trusted"),
        "{}",
        text(&out)
    );
}

async fn status(addr: SocketAddr) -> Value {
    serde_json::from_str(&daemon_poll::get_ok(addr, "/status").await).unwrap()
}

async fn wait<T, F, Fut>(addr: SocketAddr, what: &str, mut check: F) -> T
where
    F: FnMut(Value) -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        let s = status(addr).await;
        if let Some(v) = check(s.clone()).await {
            return v;
        }
        if start.elapsed() > Duration::from_secs(60) {
            panic!("timed out waiting for {what}; status:\n{s:#}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn settings_a(ns: &str) -> Option<String> {
    let api: Api<ConfigMap> = Api::namespaced(common::client().await, ns);
    api.get_opt("settings")
        .await
        .unwrap()
        .and_then(|cm| cm.data)
        .and_then(|d| d.get("a").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_applies_trusted_heads_only_and_says_why_it_keeps_the_last_good_one() {
    let ns = common::namespace("verify-daemon").await;
    let tmp = tempfile::tempdir().unwrap();
    let gpg = Gpg::new(tmp.path());
    let program = gpg.program(None);
    let alice = gpg.key("Alice <alice@example.com>", "never", None);
    // The daemon's configuration names it relative to itself.
    gpg.export(&alice, &tmp.path().join("alice.asc"));
    let ssh = ssh_key(tmp.path(), "bob");
    std::fs::write(
        tmp.path().join("allowed"),
        format!("bob@example.com {}\n", public(&ssh)),
    )
    .unwrap();

    let work = WorkRepo::init(&tmp.path().join("work"));
    write_platform(&work, &ns.name, "1");
    let c1 = commit_gpg(&work, &program, &alice, "trusted 1");
    let remote = BareRemote::init(&tmp.path().join("remote.git"));
    remote.push(&work, "main");

    let sink = AlertSink::start();
    let kubeconfig = common::control_plane().kubeconfig().display().to_string();
    let text = format!(
        "source:\n  url: {}\n  interval: 1s\n  verify:\n    mode: head\n    openpgp_keys: [alice.asc]\n    ssh_allowed_signers: allowed\n\
         clusters:\n  - name: dev\n    kubeconfig: {kubeconfig}\n\
         server:\n  listen: 127.0.0.1:0\n  status_listen: 127.0.0.1:0\n\
         alerts:\n  - {{type: webhook, url: \"{}\"}}\n\
         cache_dir: {}\n",
        remote.file_url(),
        sink.url,
        tmp.path().join("cache").display()
    );
    let config = Config::parse(&text, &tmp.path().join("kgitops.yaml"), tmp.path())
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let daemon = Daemon::bind(config).await.unwrap();
    let addr = daemon.status_addr();
    let token = CancellationToken::new();
    let task = tokio::spawn(daemon.run(token.clone()));

    // A trusted head is applied; /status names its signer.
    let applied = |c: String| {
        move |s: Value| {
            let c = c.clone();
            async move {
                let cluster = &s["clusters"][0];
                (cluster["applied_revision"] == c.as_str() && cluster["synced"] == true).then_some(s)
            }
        }
    };
    let s = wait(addr, "c1 applied", applied(c1.clone())).await;
    let v = &s["source"]["verification"];
    assert_eq!(v["commit"], c1.as_str(), "{s:#}");
    assert_eq!(v["trusted"], true, "{s:#}");
    assert_eq!(v["signer"]["kind"], "openpgp", "{s:#}");
    assert_eq!(v["signer"]["fingerprint"], alice.as_str(), "{s:#}");
    assert_eq!(settings_a(&ns.name).await.as_deref(), Some("1"));

    // An unsigned head: not applied; status, metric, alert and Event say why.
    write_platform(&work, &ns.name, "2");
    let c2 = work.commit("unsigned");
    remote.push(&work, "main");
    let s = wait(addr, "c2 refused", |s: Value| {
        let c2 = c2.clone();
        async move {
            (s["clusters"][0]["last_result"]["result"] == "refused"
                && s["clusters"][0]["last_result"]["revision"] == c2.as_str())
            .then_some(s)
        }
    })
    .await;
    let v = &s["source"]["verification"];
    assert_eq!(v["commit"], c2.as_str(), "{s:#}");
    assert_eq!(v["trusted"], false, "{s:#}");
    assert_eq!(v["reason"], "unsigned", "{s:#}");
    assert!(v["signer"].is_null(), "{s:#}");
    assert_eq!(s["clusters"][0]["applied_revision"], c1.as_str(), "{s:#}");
    let message = s["clusters"][0]["last_result"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("commit {c2}: not trusted")),
        "{message}"
    );
    let metrics = daemon_poll::get_ok(addr, "/metrics").await;
    assert!(
        metrics.contains("kgitops_commit_verifications_total{result=\"refused\",reason=\"unsigned\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("kgitops_untrusted_revision 1"), "{metrics}");
    let alert = wait(addr, "the verify alert", |_| {
        let alerts = sink.of_kind("verify");
        async move { alerts.into_iter().find(|a| a["state"] == "firing") }
    })
    .await;
    assert_eq!(alert["revision"], c2.as_str(), "{alert:#}");
    assert!(
        alert["summary"].as_str().unwrap().contains("unsigned"),
        "{alert:#}"
    );
    let events: Api<Event> = Api::namespaced(common::client().await, &ns.name);
    let event = wait(addr, "the UntrustedRevision Event", |_| {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("UntrustedRevision"))
        }
    })
    .await;
    let note = event.message.unwrap_or_default();
    assert!(note.contains(&c2) && note.contains(&c1), "{note}");
    // Some polls later, still not applied.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(settings_a(&ns.name).await.as_deref(), Some("1"));

    // A head signed by an unknown SSH key, then by the trusted SSH key: the second one applies (a
    // force-push that drops the untrusted commits, as when a bad push is undone).
    let stranger = ssh_key(tmp.path(), "stranger");
    write_platform(&work, &ns.name, "3");
    let c3 = commit_ssh(&work, &stranger, "signed by a stranger");
    remote.push(&work, "main");
    wait(addr, "c3 refused", |s: Value| {
        let c3 = c3.clone();
        async move {
            (s["source"]["verification"]["commit"] == c3.as_str()
                && s["source"]["verification"]["reason"] == "unknown-key")
                .then_some(())
        }
    })
    .await;
    work.git(&["reset", "-q", "--hard", &c1]);
    write_platform(&work, &ns.name, "4");
    let c4 = commit_ssh(&work, &ssh, "trusted 4");
    remote.force_push(&work, "main");
    let s = wait(addr, "c4 applied", applied(c4.clone())).await;
    assert_eq!(s["source"]["verification"]["signer"]["kind"], "ssh", "{s:#}");
    assert_eq!(
        s["source"]["verification"]["signer"]["principal"], "bob@example.com",
        "{s:#}"
    );
    assert_eq!(settings_a(&ns.name).await.as_deref(), Some("4"));
    let metrics = daemon_poll::get_ok(addr, "/metrics").await;
    assert!(metrics.contains("kgitops_untrusted_revision 0"), "{metrics}");
    wait(addr, "the verify alert resolved", |_| {
        let resolved = sink.of_kind("verify").iter().any(|a| a["state"] == "resolved");
        async move { resolved.then_some(()) }
    })
    .await;

    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("daemon stops")
        .unwrap()
        .unwrap();
}

#[test]
fn a_daemon_with_an_unusable_key_file_does_not_start() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("keys.asc"),
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxx\n",
    )
    .unwrap();
    let text = "source:\n  url: file:///nonexistent\n  verify:\n    openpgp_keys: [keys.asc]\n\
                clusters:\n  - name: dev\n";
    let config = Config::parse(text, &tmp.path().join("kgitops.yaml"), tmp.path()).unwrap();
    let err = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(Daemon::bind(config))
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.starts_with("source.verify: ") && err.contains("keys.asc"),
        "{err}"
    );
    // A local working tree has no signatures to verify.
    let text = "source:\n  path: .\n  verify:\n    openpgp_keys: [keys.asc]\nclusters:\n  - name: dev\n";
    let err = Config::parse(text, &tmp.path().join("kgitops.yaml"), tmp.path())
        .expect_err("refused")
        .to_string();
    assert!(err.contains("source.verify: a local path"), "{err}");
}
