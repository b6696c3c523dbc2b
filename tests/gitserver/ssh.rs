//! A real OpenSSH `sshd` on 127.0.0.1 for git over SSH: started from a config of its own in a temp
//! dir (generated ECDSA and Ed25519 host keys, one authorized user key, its own pid file, no PAM), on a free port,
//! and killed with its process group when dropped. `sshd` comes from `scripts/install-test-deps`;
//! without it the tests fail, they do not skip.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long sshd may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running sshd; killed when dropped.
pub struct Sshd {
    child: Child,
    dir: PathBuf,
    pub port: u16,
    /// The login the tests use: the user running them, authorized by `user_key`.
    pub user: String,
    /// A private key that sshd accepts for `user`.
    pub user_key: PathBuf,
    /// The server's public host keys, `type base64`, Ed25519 (the one libssh2 negotiates) first,
    /// then ECDSA: real servers offer several types and the client picks one.
    pub host_keys: Vec<String>,
}

impl Sshd {
    /// Generates keys and a config in `dir` and starts sshd on a free loopback port.
    pub fn start(dir: &Path) -> Sshd {
        let sshd = find_sshd();
        std::fs::create_dir_all(dir).unwrap();
        let user = run("id", &["-un"]);
        let host_keys: Vec<PathBuf> = HOST_KEY_TYPES
            .iter()
            .map(|t| dir.join(format!("host_{t}")))
            .collect();
        for (path, kind) in host_keys.iter().zip(HOST_KEY_TYPES) {
            keygen(path, kind);
        }
        let user_key = dir.join("user_ed25519");
        keygen(&user_key, "ed25519");
        std::fs::copy(user_key.with_extension("pub"), dir.join("authorized_keys")).unwrap();
        if run("id", &["-u"]) == "0" {
            // sshd started by root needs its privilege-separation directory (/run is a tmpfs).
            std::fs::create_dir_all("/run/sshd")
                .unwrap_or_else(|e| panic!("cannot create /run/sshd ({e}): run scripts/install-test-deps"));
        }
        let mut last_log = String::new();
        // The free port is found by binding and releasing it; retry if another process takes it.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.join("sshd_config");
            std::fs::write(&config, config_text(dir, port, &user)).unwrap();
            let check = Command::new(&sshd)
                .args(["-t", "-f"])
                .arg(&config)
                .output()
                .unwrap();
            assert!(
                check.status.success(),
                "sshd rejects the test config {}: {}",
                config.display(),
                String::from_utf8_lossy(&check.stderr)
            );
            let log_path = dir.join("sshd.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let child = Command::new(&sshd)
                // -D: stay in the foreground (our child); -e: log to stderr, into the log file.
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                // Its own process group, so the connection handlers it forks die with it.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", sshd.display()));
            let mut server = Sshd {
                child,
                dir: dir.to_path_buf(),
                port,
                user: user.clone(),
                user_key: user_key.clone(),
                host_keys: host_keys.iter().map(|k| public_key(k)).collect(),
            };
            if server.wait_ready() {
                return server;
            }
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
            // Dropping `server` kills what is left of it.
        }
        panic!("sshd did not start on 127.0.0.1; its log:\n{last_log}");
    }

    /// Waits until sshd greets with its SSH banner; false when it exited or never answered.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 8];
                if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-2.0-" {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// `ssh://user@127.0.0.1:PORT/<absolute path>`.
    pub fn url(&self, repo: &Path) -> String {
        format!("ssh://{}@127.0.0.1:{}{}", self.user, self.port, repo.display())
    }

    /// The scp-like form with a port: `[user@127.0.0.1:PORT]:<absolute path>`.
    pub fn scp_url(&self, repo: &Path) -> String {
        format!("[{}@127.0.0.1:{}]:{}", self.user, self.port, repo.display())
    }

    /// known_hosts lines that trust every host key of this server.
    pub fn known_hosts(&self) -> String {
        self.host_keys
            .iter()
            .map(|k| format!("[127.0.0.1]:{} {k}\n", self.port))
            .collect()
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // The whole group: the listener and any connection handler it forked.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host key types the server has, in the order libssh2 prefers them.
const HOST_KEY_TYPES: [&str; 2] = ["ed25519", "ecdsa"];

/// A new key pair of type `kind` (`ed25519`, `ecdsa`) at `path` and `path.pub`, no passphrase.
pub fn keygen(path: &Path, kind: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "kgitops-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen (openssh-client)");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

/// `type base64` of the public half of the key pair at `path`.
pub fn public_key(path: &Path) -> String {
    let line = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

fn find_sshd() -> PathBuf {
    let candidates = ["/usr/sbin/sshd", "/usr/local/sbin/sshd"];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "sshd is not installed, and the git-over-SSH tests need a real one: \
                 run scripts/install-test-deps (it installs openssh-server)"
            )
        })
}

fn config_text(dir: &Path, port: u16, user: &str) -> String {
    let d = dir.display();
    format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {d}/host_ed25519\n\
         HostKey {d}/host_ecdsa\n\
         PidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\n\
         AllowUsers {user}\n\
         UsePAM no\n\
         StrictModes no\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         X11Forwarding no\n\
         AllowTcpForwarding no\n\
         PrintMotd no\n\
         LogLevel VERBOSE\n"
    )
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?} failed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
