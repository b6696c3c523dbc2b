//! Real git repositories and servers for the source tests: repositories made with the git CLI,
//! bare remotes on disk (`file://`), smart HTTP through `git http-backend` ([`http`]) and SSH through
//! a real `sshd` ([`ssh`]), all on loopback and in temp dirs that vanish with the test.
#![allow(dead_code)] // each test binary uses a different part of the helpers

pub mod http;
pub mod ssh;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `git` in `dir` with a fixed identity and no user or system config; panics with git's
/// output when it fails. Returns stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "kgitops test")
        .env("GIT_AUTHOR_EMAIL", "test@kgitops.invalid")
        .env("GIT_COMMITTER_NAME", "kgitops test")
        .env("GIT_COMMITTER_EMAIL", "test@kgitops.invalid")
        .output()
        .unwrap_or_else(|e| panic!("cannot run git {args:?}: {e}"));
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A work tree made with `git init`, on branch `main`.
pub struct WorkRepo {
    pub dir: PathBuf,
}

impl WorkRepo {
    /// `git init -b main` in `dir` (created if missing).
    pub fn init(dir: &Path) -> WorkRepo {
        std::fs::create_dir_all(dir).unwrap();
        git(dir, &["init", "-q", "-b", "main"]);
        WorkRepo {
            dir: dir.to_path_buf(),
        }
    }

    /// Writes `path` (parents created) with `content`.
    pub fn write(&self, path: &str, content: &str) -> &Self {
        let full = self.dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
        self
    }

    /// Creates symlink `path` -> `target` (parents created).
    pub fn symlink(&self, path: &str, target: &str) -> &Self {
        let full = self.dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, full).unwrap();
        self
    }

    /// `git rm -r path`.
    pub fn remove(&self, path: &str) -> &Self {
        git(&self.dir, &["rm", "-q", "-r", path]);
        self
    }

    /// Stages everything and commits; returns the new commit's sha.
    pub fn commit(&self, message: &str) -> String {
        git(&self.dir, &["add", "-A"]);
        git(&self.dir, &["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    /// The sha of `HEAD`.
    pub fn head(&self) -> String {
        git(&self.dir, &["rev-parse", "HEAD"])
    }

    /// Runs any git command in the work tree.
    pub fn git(&self, args: &[&str]) -> String {
        git(&self.dir, args)
    }
}

/// A bare repository on disk that a [`WorkRepo`] pushes to: the remote of the `file://` tests and
/// the repository that the HTTP and SSH servers serve.
pub struct BareRemote {
    pub dir: PathBuf,
}

impl BareRemote {
    /// `git init --bare` at `dir`.
    pub fn init(dir: &Path) -> BareRemote {
        std::fs::create_dir_all(dir).unwrap();
        git(dir, &["init", "-q", "--bare", "-b", "main"]);
        BareRemote {
            dir: dir.to_path_buf(),
        }
    }

    /// The `file://` URL of this remote.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    /// Pushes `work`'s `branch` here (a normal, fast-forward push).
    pub fn push(&self, work: &WorkRepo, branch: &str) {
        let refspec = format!("{branch}:refs/heads/{branch}");
        git(&work.dir, &["push", "-q", self.dir.to_str().unwrap(), &refspec]);
    }

    /// Force-pushes `work`'s `branch` here, rewriting history.
    pub fn force_push(&self, work: &WorkRepo, branch: &str) {
        let refspec = format!("+{branch}:refs/heads/{branch}");
        git(
            &work.dir,
            &["push", "-q", "--force", self.dir.to_str().unwrap(), &refspec],
        );
    }

    /// The sha `branch` points at.
    pub fn sha(&self, branch: &str) -> String {
        git(&self.dir, &["rev-parse", &format!("refs/heads/{branch}")])
    }
}

/// `len` characters that compress badly (hex of a xorshift sequence): a file whose pack takes
/// several reads to arrive, so transfer-progress callbacks run during a fetch.
pub fn noise(len: usize, seed: u64) -> String {
    let mut x = seed | 1;
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(&format!("{x:016x}"));
    }
    out.truncate(len);
    out
}
