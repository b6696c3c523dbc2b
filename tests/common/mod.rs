//! The integration-test harness: a real Kubernetes control plane (etcd + kube-apiserver built by
//! `tests/controlplane/build`) per test binary, with the Strimzi CRDs installed, and a namespace per test.
//!
//! Use it from an integration test with `mod common;`:
//!
//! ```ignore
//! mod common;
//!
//! #[tokio::test]
//! async fn something() {
//!     let ns = common::namespace("something").await; // starts the control plane on first use
//!     let cms: kube::Api<ConfigMap> = ns.api();
//!     // ... or run the CLI against it:
//!     let out = common::control_plane().kgitops().args(["apply", "--cluster", "dev"]).output().unwrap();
//! }
//! ```
//!
//! - [`control_plane`] starts the control plane on first use (once per test binary, shared by all its
//!   tests) with `tests/controlplane/start DIR --owner-pid <this process>`, so it is stopped when the
//!   test process exits, then installs the Strimzi CRDs by server-side apply and waits until they are
//!   Established. If anything fails, every test that asks for it panics with the start script's message
//!   (reason, log path, log tail): a test that needs the cluster never skips.
//! - There is no controller-manager: namespaces never finish terminating and nothing is garbage
//!   collected, so tests do not clean up; the whole cluster goes away with the test process. Each test
//!   works in its own namespace from [`namespace`] and must not depend on cluster-wide state other
//!   tests may change (cluster-scoped objects: use unique names).
//! - "Per test binary" means per process: under cargo-nextest, which runs each test in a process of
//!   its own, every test starts its own control plane (3 to 5 s each).
//! - Make a [`kube::Client`] per test ([`client`], [`TestNamespace::client`]): a client is bound to
//!   the tokio runtime it was made in, and each `#[tokio::test]` has its own runtime.
//!
//! - The CRDs come from the repository: the CustomResourceDefinitions of the vendored Strimzi release
//!   `infrastructure/strimzi/<release>/` ([`DEFAULT_STRIMZI_RELEASE`] for [`control_plane`]). A test
//!   that needs another release's CRDs asks [`control_plane_for_release`], which starts a second
//!   control plane in the same process: one apiserver cannot serve two releases' versions of the same
//!   CRD (1.x serves only `v1`, 0.45 only `v1beta2`).
//!
//! Environment: `KGITOPS_TEST_CRDS` (CRD directory or file for [`control_plane`] instead of the
//! vendored release), `KGITOPS_CONTROLPLANE_CACHE` (binaries and control-plane folders instead of
//! `target/controlplane`).

// Every test binary compiles this module but uses only part of it.
#![allow(dead_code)]

mod crds;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The control plane of this test binary. Get it with [`control_plane`].
#[derive(Debug)]
pub struct ControlPlane {
    dir: PathBuf,
    kubeconfig: PathBuf,
}

impl ControlPlane {
    /// The admin kubeconfig (client certificate in group `system:masters`), for `--kubeconfig`.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The control plane's folder: certificates, etcd data and the `etcd.log` and
    /// `kube-apiserver.log` worth reading when a test fails strangely.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new admin client for the calling test's tokio runtime.
    pub async fn client(&self) -> kube::Client {
        client_for(&self.kubeconfig)
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", self.kubeconfig.display()))
    }

    /// The admin client configuration, to adjust (impersonation, timeouts) before making a client
    /// with `kube::Client::try_from(config)`.
    pub async fn config(&self) -> kube::Config {
        config_for(&self.kubeconfig)
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", self.kubeconfig.display()))
    }

    /// The `kgitops` binary built for this test run, with `KUBECONFIG` pointing at this control plane
    /// (the CLI's fallback when `--kubeconfig` is not given) and the repository root as working
    /// directory. Add arguments and run it.
    pub fn kgitops(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kgitops"));
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .current_dir(repo_root());
        command
    }

    /// Runs `kgitops SUBCOMMAND --repo REPO REST...` (`args[0]` is the subcommand) against this
    /// control plane and returns its output.
    pub fn kgitops_in(&self, repo: &Path, args: &[&str]) -> std::process::Output {
        self.kgitops()
            .arg(args[0])
            .arg("--repo")
            .arg(repo)
            .args(&args[1..])
            .output()
            .expect("kgitops runs")
    }

    /// Kills the kube-apiserver with SIGKILL, as a crash would, and returns once it is gone; etcd
    /// and its data stay. Every test of the binary loses the apiserver until
    /// [`ControlPlane::restart_apiserver`]: use it only in a test binary of its own.
    pub fn kill_apiserver(&self) {
        let pid_file = self.dir.join("kube-apiserver.pid");
        let pid =
            std::fs::read_to_string(&pid_file).unwrap_or_else(|err| panic!("{}: {err}", pid_file.display()));
        let pid = pid.trim();
        // `start` runs it in a process group of its own (setsid): its pid is the group's id.
        let status = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -KILL -{pid}: {status}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while is_running(pid) {
            assert!(
                std::time::Instant::now() < deadline,
                "kube-apiserver (pid {pid}) still running 10 s after SIGKILL"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Restarts the kube-apiserver (running or killed) with `tests/controlplane/restart-apiserver`,
    /// keeping etcd and its data, the port and the kubeconfig; returns once it is ready. Panics with
    /// the script's message when it fails. Same caveat as [`ControlPlane::kill_apiserver`].
    pub fn restart_apiserver(&self) {
        let script = repo_root().join("tests/controlplane/restart-apiserver");
        let output = Command::new(&script)
            .arg(&self.dir)
            .output()
            .unwrap_or_else(|err| panic!("{}: cannot run: {err}", script.display()));
        let messages = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{} {} failed ({}):\n{messages}",
            script.display(),
            self.dir.display(),
            output.status
        );
        eprint!("{messages}");
    }
}

/// Whether process `pid` exists and is not a zombie.
fn is_running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(") ")
            .next()
            .is_some_and(|rest| !rest.starts_with('Z'))
    })
}

/// The repository root (where `Cargo.toml` is).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Copies the directory `from` into `to`, recursively (a test's own copy of repository files).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Where the control plane's binaries and folders live: `KGITOPS_CONTROLPLANE_CACHE`, else
/// `<repo>/target/controlplane` (the same rule as `tests/controlplane/build`).
fn controlplane_cache() -> PathBuf {
    match std::env::var_os("KGITOPS_CONTROLPLANE_CACHE") {
        Some(dir) if !dir.is_empty() => repo_root().join(dir),
        _ => repo_root().join("target/controlplane"),
    }
}

/// The Strimzi release whose CRDs [`control_plane`] installs: the release of the seed's ZooKeeper
/// platform, which the existing tests' fixtures are written for (`kafka.strimzi.io/v1beta2`).
pub const DEFAULT_STRIMZI_RELEASE: &str = "0.45.2";

/// The vendored Strimzi release `release` (`infrastructure/strimzi/<release>/`): its
/// CustomResourceDefinitions are what a control plane for that release gets (the other documents
/// there, RBAC and the operator Deployment, are skipped).
pub fn release_dir(release: &str) -> PathBuf {
    repo_root().join("infrastructure/strimzi").join(release)
}

/// The Strimzi CRDs [`control_plane`] gets: `KGITOPS_TEST_CRDS` (a directory of YAML files or one
/// file; relative to the repository root), else those of the vendored [`DEFAULT_STRIMZI_RELEASE`].
pub fn crds_path() -> PathBuf {
    match std::env::var_os("KGITOPS_TEST_CRDS") {
        Some(path) if !path.is_empty() => repo_root().join(path),
        _ => release_dir(DEFAULT_STRIMZI_RELEASE),
    }
}

static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// Control planes started by [`control_plane_for_release`], by release; leaked on purpose, they
/// live as long as the test process (their watchdog stops them when it exits).
static RELEASE_CONTROL_PLANES: std::sync::Mutex<
    std::collections::BTreeMap<String, &'static OnceLock<Result<ControlPlane, String>>>,
> = std::sync::Mutex::new(std::collections::BTreeMap::new());

/// A control plane of this test binary with the CRDs of the vendored Strimzi release `release`
/// (`"1.2.0"`, `"0.45.2"`), started on first call for that release and shared afterwards, like
/// [`control_plane`] (which it is not, even for [`DEFAULT_STRIMZI_RELEASE`]: `KGITOPS_TEST_CRDS`
/// does not apply here). Panics with the reason when it cannot be started.
pub fn control_plane_for_release(release: &str) -> &'static ControlPlane {
    let cell: &'static OnceLock<Result<ControlPlane, String>> = {
        let mut planes = RELEASE_CONTROL_PLANES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        planes
            .entry(release.to_string())
            .or_insert_with(|| Box::leak(Box::new(OnceLock::new())))
    };
    match cell.get_or_init(|| start(&format!("strimzi{release}"), &release_dir(release))) {
        Ok(control_plane) => control_plane,
        Err(message) => {
            panic!("the test control plane with the Strimzi {release} CRDs is not available:\n{message}")
        }
    }
}

/// This test binary's control plane, started (and given the Strimzi CRDs) on first call; later calls
/// and concurrent tests wait for and share the same one. Blocks; fine to call from async tests.
///
/// Panics with the reason (and the start script's log tail) when it cannot be started.
pub fn control_plane() -> &'static ControlPlane {
    match CONTROL_PLANE.get_or_init(|| start("", &crds_path())) {
        Ok(control_plane) => control_plane,
        Err(message) => panic!("the test control plane is not available:\n{message}"),
    }
}

/// Installs the CRDs under `path` (a directory of CRD files, or one file) into this test binary's
/// control plane by server-side apply and waits until they are Established. For tests that need
/// CRDs other than the harness' default ones (another Strimzi release): a CRD update that drops a
/// stored version is refused, so such a test deletes the old CRDs first.
pub fn install_crds(path: &Path) -> Result<(), String> {
    crds::install(control_plane(), path)
}

/// A new admin client for the calling test's tokio runtime (starts the control plane if needed).
pub async fn client() -> kube::Client {
    control_plane().client().await
}

/// A namespace of the calling test's own, and a client to work in it.
pub struct TestNamespace {
    /// The namespace's name: the prefix given to [`namespace`] and a number unique in this test binary.
    pub name: String,
    /// An admin client made for the calling test's runtime.
    pub client: kube::Client,
}

impl TestNamespace {
    /// An [`Api`] for a namespaced kind in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

/// Another writer holding the write lock `name` (a Lease, see `kgitops::apply::lock`) in the test
/// namespace: held by `holder` for 600 s, renewed now. Returns the Lease (to release or expire it).
pub async fn hold_write_lock(
    ns: &TestNamespace,
    name: &str,
    holder: &str,
) -> k8s_openapi::api::coordination::v1::Lease {
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(600),
            renew_time: Some(MicroTime(jiff::Timestamp::now())),
            ..LeaseSpec::default()
        }),
    };
    ns.api::<Lease>()
        .create(&PostParams::default(), &lease)
        .await
        .unwrap_or_else(|e| panic!("Lease/{}/{name}: {e}", ns.name))
}

/// Creates a new namespace `<prefix>-<n>` (prefix made a valid DNS label; `n` unique in this test
/// binary) labelled `kgitops.dev/test=<prefix>`, and returns it with a client. Starts the control
/// plane if needed. Namespaces are never deleted (see the module docs).
pub async fn namespace(prefix: &str) -> TestNamespace {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let mut label: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    label.truncate(50);
    let label = label.trim_matches('-');
    let label = if label.is_empty() { "test" } else { label };
    let name = format!("{label}-{}", NEXT.fetch_add(1, Ordering::Relaxed));

    let client = client().await;
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some([("kgitops.dev/test".to_string(), label.to_string())].into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|err| panic!("creating test namespace {name}: {err}"));
    TestNamespace { name, client }
}

async fn config_for(kubeconfig: &Path) -> Result<kube::Config, String> {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).map_err(|err| err.to_string())?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|err| err.to_string())
}

async fn client_for(kubeconfig: &Path) -> Result<kube::Client, String> {
    kube::Client::try_from(config_for(kubeconfig).await?).map_err(|err| err.to_string())
}

/// Starts a control plane for this process and installs the CRDs under `crds`. `tag` tells the
/// folders of several control planes of one process apart (empty for the default one).
fn start(tag: &str, crds: &Path) -> Result<ControlPlane, String> {
    let runs = controlplane_cache().join("runs");
    prune_dead_runs(&runs);
    let exe = std::env::current_exe().map_err(|err| format!("current_exe: {err}"))?;
    let binary = exe.file_stem().and_then(|s| s.to_str()).unwrap_or("tests");
    // `<binary>[-<tag>]-<pid>`: prune_dead_runs reads the pid after the last '-'.
    let dir = match tag {
        "" => runs.join(format!("{binary}-{}", std::process::id())),
        tag => runs.join(format!("{binary}-{tag}-{}", std::process::id())),
    };
    let script = repo_root().join("tests/controlplane/start");
    let output = Command::new(&script)
        .arg(&dir)
        .arg("--owner-pid")
        .arg(std::process::id().to_string())
        .output()
        .map_err(|err| format!("{}: cannot run: {err}", script.display()))?;
    let messages = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "{} {} failed ({}):\n{messages}",
            script.display(),
            dir.display(),
            output.status
        ));
    }
    eprint!("{messages}");
    let control_plane = ControlPlane {
        kubeconfig: dir.join("kubeconfig"),
        dir,
    };
    crds::install(&control_plane, crds)?;
    Ok(control_plane)
}

/// Removes the folders of control planes whose test process has exited (its watchdog has stopped
/// them; `stop` makes sure), so runs do not pile up. Folders are named `<binary>-<pid>`.
fn prune_dead_runs(runs: &Path) {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let pid = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.rsplit('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let stopped = Command::new(repo_root().join("tests/controlplane/stop"))
            .arg(&path)
            .output()
            .is_ok_and(|output| output.status.success());
        if stopped {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Runs `git ARGS` in `dir` with a fixed test identity; panics with git's stderr when it fails.
/// A finished command's exit code, stdout and stderr, for assertion messages.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
