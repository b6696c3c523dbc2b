//! Tests of `tests/controlplane/{start,stop,build}` themselves: idempotence, failure reporting and
//! that nothing is ever left running (port in use, stale folder, crashes, owner exit, build failure).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/controlplane")
        .join(name)
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("run script");
    eprintln!(
        "{command:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn start(dir: &Path, extra: &[&str]) -> Output {
    run(Command::new(script("start")).arg(dir).args(extra))
}

fn stop(dir: &Path) -> Output {
    run(Command::new(script("stop")).arg(dir))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Pids of live processes whose command line mentions `dir` (etcd, apiserver, watchdog).
fn processes_of(dir: &Path) -> Vec<u32> {
    let needle = dir.to_str().expect("utf-8 temp dir");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .map(|stat| stat.rsplit(") ").next().is_some_and(|rest| rest.starts_with('Z')))
            .unwrap_or(true);
        if !zombie && String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

fn pid_file(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.pid")))
        .expect("pid file")
        .trim()
        .to_string()
}

fn kill9(pid: &str) {
    assert!(
        Command::new("kill")
            .args(["-9", pid])
            .status()
            .expect("kill")
            .success()
    );
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A temporary folder with a control-plane folder `dir` in it, stopped on drop even when an
/// assertion fails first.
struct Fixture {
    tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::Builder::new()
            .prefix("kgitops-cp-test-")
            .tempdir()
            .expect("temp dir");
        let dir = tmp.path().join("cp");
        Fixture { tmp, dir }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = Command::new(script("stop")).arg(&self.dir).output();
    }
}

#[test]
fn start_is_idempotent_and_stop_leaves_nothing_running_twice() {
    let fixture = Fixture::new();
    let dir = fixture.dir.clone();
    for round in 1..=2 {
        let first = start(&dir, &[]);
        assert!(first.status.success(), "round {round}: {}", stderr(&first));
        let kubeconfig = String::from_utf8_lossy(&first.stdout).trim().to_string();
        assert_eq!(Path::new(&kubeconfig), dir.join("kubeconfig"));
        let config = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
        assert!(config.contains("client-certificate-data"), "{config}");
        let apiserver = pid_file(&dir, "kube-apiserver");

        let again = start(&dir, &[]);
        assert!(again.status.success(), "{}", stderr(&again));
        assert!(stderr(&again).contains("already running"), "{}", stderr(&again));
        assert_eq!(
            pid_file(&dir, "kube-apiserver"),
            apiserver,
            "the running apiserver is kept"
        );
        assert_eq!(std::fs::read_to_string(&kubeconfig).expect("kubeconfig"), config);

        assert!(stop(&dir).status.success());
        assert_eq!(
            processes_of(&dir),
            Vec::<u32>::new(),
            "round {round}: left running"
        );
        assert!(
            !dir.join("kubeconfig").exists(),
            "a stopped control plane has no kubeconfig"
        );
        let idle = stop(&dir);
        assert!(idle.status.success() && stderr(&idle).contains("nothing was running"));
    }
}

#[test]
fn a_port_in_use_fails_with_the_reason_and_starts_nothing() {
    let fixture = Fixture::new();
    let dir = fixture.dir.clone();
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let output = start(&dir, &["--port", &port]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("port {port} on 127.0.0.1 is already in use")),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    assert_eq!(processes_of(&dir), Vec::<u32>::new());
}

#[test]
fn a_stale_dir_is_cleaned_up_and_stop_survives_an_apiserver_crash() {
    let fixture = Fixture::new();
    let dir = fixture.dir.clone();
    assert!(start(&dir, &[]).status.success());
    // Everything dies without `stop` (as after a reboot), and a pid file now names an unrelated process.
    kill9(&pid_file(&dir, "kube-apiserver"));
    kill9(&pid_file(&dir, "etcd"));
    let mut unrelated: Child = Command::new("sleep").arg("60").spawn().expect("sleep");
    std::fs::write(dir.join("etcd.pid"), unrelated.id().to_string()).expect("write pid file");

    let restarted = start(&dir, &[]);
    assert!(restarted.status.success(), "{}", stderr(&restarted));
    assert!(
        unrelated.try_wait().expect("try_wait").is_none(),
        "start killed a process it does not own"
    );
    unrelated.kill().expect("kill sleep");
    let _ = unrelated.wait();

    // The apiserver crashes; stop still stops etcd and succeeds.
    kill9(&pid_file(&dir, "kube-apiserver"));
    assert!(stop(&dir).status.success());
    assert_eq!(processes_of(&dir), Vec::<u32>::new());
}

#[test]
fn the_control_plane_stops_when_its_owner_exits() {
    let fixture = Fixture::new();
    let dir = fixture.dir.clone();
    let mut owner = Command::new("sleep").arg("60").spawn().expect("sleep");
    let started = start(&dir, &["--owner-pid", &owner.id().to_string()]);
    assert!(started.status.success(), "{}", stderr(&started));
    assert_eq!(processes_of(&dir).len(), 3, "etcd, apiserver and the watchdog");

    owner.kill().expect("kill owner");
    owner.wait().expect("reap owner");
    wait_until("the watchdog stopped everything", Duration::from_secs(20), || {
        processes_of(&dir).is_empty()
    });
    assert!(!dir.join("kubeconfig").exists());
}

/// Writes an executable shell script.
fn write_executable(path: &Path, script: &str) {
    std::fs::write(path, script).expect("write script");
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
}

/// Runs `start dir` with extra environment, expects exit 1 with nothing left running, and returns
/// stderr.
fn start_fails(dir: &Path, env: &[(&str, &std::ffi::OsStr)]) -> String {
    let mut command = Command::new(script("start"));
    command.arg(dir);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = run(&mut command);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        processes_of(dir),
        Vec::<u32>::new(),
        "a failed start leaves nothing running"
    );
    stderr(&output)
}

#[test]
fn an_apiserver_crash_on_start_is_reported_with_its_log() {
    let fixture = Fixture::new();
    let dir = fixture.dir.clone();
    // A cache whose binaries are up to date (same stamp) but whose apiserver fails at once.
    let real = std::env::var_os("KGITOPS_CONTROLPLANE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/controlplane"))
        .join("bin");
    assert!(run(&mut Command::new(script("build"))).status.success());
    let cache = fixture.tmp.path().join("cache");
    let bin = cache.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    std::os::unix::fs::symlink(real.join("etcd"), bin.join("etcd")).expect("symlink etcd");
    std::fs::copy(real.join(".stamp"), bin.join(".stamp")).expect("copy stamp");
    write_executable(
        &bin.join("kube-apiserver"),
        "#!/bin/sh\necho 'E0101 fake: failed to load the serving certificate' >&2\nexit 1\n",
    );

    let message = start_fails(&dir, &[("KGITOPS_CONTROLPLANE_CACHE", cache.as_os_str())]);
    let log = dir.join("kube-apiserver.log");
    let reason = format!(
        "controlplane: kube-apiserver exited during start-up; log: {}\n",
        log.display()
    );
    assert!(message.starts_with(&reason), "{message}");
    assert!(
        message.contains("fake: failed to load the serving certificate"),
        "log tail: {message}"
    );
}

#[test]
fn a_go_build_failure_is_reported_with_its_log() {
    let fixture = Fixture::new();
    let fake_go = fixture.tmp.path().join("fakego");
    std::fs::create_dir_all(&fake_go).expect("mkdir");
    write_executable(
        &fake_go.join("go"),
        "#!/bin/sh\n[ \"$1\" = version ] && { echo 'go version fake'; exit 0; }\n\
         echo 'cmd/kube-apiserver/main.go:1:1: fake compile error' >&2\nexit 1\n",
    );
    let path = format!(
        "{}:{}",
        fake_go.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cache = fixture.tmp.path().join("cache");

    let message = start_fails(
        &fixture.dir,
        &[
            ("PATH", path.as_ref()),
            ("KGITOPS_CONTROLPLANE_CACHE", cache.as_os_str()),
        ],
    );
    let log = cache.join("build.log");
    let reason = format!(
        "controlplane: Go build of etcd and kube-apiserver failed; log: {}",
        log.display()
    );
    assert!(message.contains(&reason), "{message}");
    assert!(message.contains("fake compile error"), "log tail: {message}");
    assert!(!cache.join("bin/kube-apiserver").exists() && !cache.join("bin/.stamp").exists());
}

fn restart_apiserver(dir: &Path) -> Output {
    run(Command::new(script("restart-apiserver")).arg(dir))
}

/// `kubectl --kubeconfig DIR/kubeconfig ARGS`, which must succeed.
fn kubectl(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(dir.join("kubeconfig"))
        .arg("--request-timeout=20s")
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn restart_apiserver_keeps_etcd_its_data_and_the_kubeconfig() {
    let fixture = Fixture::new();
    let dir = fixture.dir.clone();
    let nothing = restart_apiserver(&dir);
    assert_eq!(nothing.status.code(), Some(1), "{}", stderr(&nothing));
    assert!(
        stderr(&nothing).contains("no control plane in") && stderr(&nothing).lines().count() == 1,
        "{}",
        stderr(&nothing)
    );

    assert!(start(&dir, &[]).status.success());
    kubectl(
        &dir,
        &[
            "create",
            "configmap",
            "kept",
            "-n",
            "default",
            "--from-literal=k=v",
        ],
    );
    let etcd = pid_file(&dir, "etcd");
    let config = std::fs::read_to_string(dir.join("kubeconfig")).expect("kubeconfig");

    // Running, then crashed: either way it comes back on the same etcd with the same kubeconfig.
    for round in ["running", "killed"] {
        let apiserver = pid_file(&dir, "kube-apiserver");
        if round == "killed" {
            kill9(&apiserver);
        }
        let restarted = restart_apiserver(&dir);
        assert!(restarted.status.success(), "{round}: {}", stderr(&restarted));
        assert_eq!(
            String::from_utf8_lossy(&restarted.stdout).trim(),
            dir.join("kubeconfig").to_str().expect("utf-8 dir")
        );
        assert_ne!(pid_file(&dir, "kube-apiserver"), apiserver, "{round}");
        assert_eq!(pid_file(&dir, "etcd"), etcd, "{round}: etcd kept");
        assert_eq!(
            std::fs::read_to_string(dir.join("kubeconfig")).expect("kubeconfig"),
            config
        );
        assert_eq!(
            kubectl(
                &dir,
                &[
                    "get",
                    "configmap",
                    "kept",
                    "-n",
                    "default",
                    "-o",
                    "jsonpath={.data.k}"
                ]
            ),
            "v",
            "{round}: data kept"
        );
        assert!(
            dir.join("kube-apiserver.log.1").exists(),
            "the previous log is kept"
        );
    }
    assert_eq!(processes_of(&dir).len(), 2, "etcd and one apiserver");

    // Without etcd there is nothing to keep: refused in one line.
    kill9(&etcd);
    let refused = restart_apiserver(&dir);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("etcd of") && stderr(&refused).lines().count() == 1,
        "{}",
        stderr(&refused)
    );
    assert!(stop(&dir).status.success());
    assert_eq!(processes_of(&dir), Vec::<u32>::new());
}
