//! Timing and peak memory of child processes, medians, and output comparison.
//!
//! Peak memory is `ru_maxrss` from `wait4`. Linux folds the memory high-water mark of the address
//! space a process had *before* `exec` into it, and a child spawned from this benchmark starts in
//! the benchmark's address space (fork or vfork), which after rendering 20,000 objects in-process is
//! large. So every child process is started through a small launcher: this benchmark binary
//! re-executed with [`LAUNCHER_FLAG`], which has done nothing yet, spawns the tool, reaps it with
//! `wait4` and prints wall time, `ru_maxrss` and the exit code. The launcher's own resident size
//! is then the floor of any figure (printed as such); it is the same for kgitops and kubectl.

use std::ffi::OsString;
use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use serde_json::Value;

use kgitops::manifest::yaml::{Limits, parse_documents};

/// First argument that turns the benchmark binary into the launcher:
/// `LAUNCHER_FLAG STDOUT_FILE STDERR_FILE PROGRAM ARGS...`.
pub const LAUNCHER_FLAG: &str = "--measure-child";

/// One finished child process.
pub struct ChildRun {
    pub wall: Duration,
    /// User plus system CPU time.
    pub cpu: Duration,
    pub max_rss_kib: u64,
    /// Exit code, or -signal when killed by a signal.
    pub code: i32,
}

/// The launcher (runs in the re-executed benchmark binary).
pub fn launcher(args: &[OsString]) -> ExitCode {
    match launch(args) {
        Ok(run) => {
            println!(
                "{} {} {} {}",
                run.wall.as_nanos(),
                run.cpu.as_nanos(),
                run.max_rss_kib,
                run.code
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("launcher: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[allow(unsafe_code)] // each unsafe block below says why it is sound (SAFETY)
fn launch(args: &[OsString]) -> Result<ChildRun> {
    let [stdout, stderr, program, rest @ ..] = args else {
        bail!("usage: {LAUNCHER_FLAG} STDOUT STDERR PROGRAM ARGS...");
    };
    let stdout = File::create(stdout).with_context(|| format!("creating {}", stdout.display()))?;
    let stderr = File::create(stderr).with_context(|| format!("creating {}", stderr.display()))?;
    let start = Instant::now();
    let child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data; all-zero is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; `pid` is our own child, not yet reaped (std's `Child`
        // never waits on drop).
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4");
        }
    }
    let wall = start.elapsed();
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    Ok(ChildRun {
        wall,
        cpu: cpu_time(&usage),
        // Linux reports ru_maxrss in KiB.
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        code,
    })
}

/// Runs `program args` through the launcher; its stdout and stderr go to the two files.
pub fn run_child(
    program: &Path,
    args: &[&std::ffi::OsStr],
    stdout: &Path,
    stderr: &Path,
) -> Result<ChildRun> {
    let me = std::env::current_exe().context("locating the benchmark binary")?;
    let out = Command::new(me)
        .arg(LAUNCHER_FLAG)
        .arg(stdout)
        .arg(stderr)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("starting the launcher")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let parsed = (fields.len() == 4)
        .then(|| Some((number(0)?, number(1)?, number(2)?, fields[3].parse::<i32>().ok()?)))
        .flatten();
    match parsed {
        Some((wall, cpu, max_rss_kib, code)) if out.status.success() => Ok(ChildRun {
            wall: Duration::from_nanos(wall),
            cpu: Duration::from_nanos(cpu),
            max_rss_kib,
            code,
        }),
        _ => bail!(
            "launcher for {} failed: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// Median of a non-empty sample (the upper one for even counts).
pub fn median<T: Ord + Copy>(values: &[T]) -> T {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
}

fn cpu_time(usage: &libc::rusage) -> Duration {
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

/// CPU time (user + system) of this whole process so far, every thread included.
#[allow(unsafe_code)] // each unsafe block below says why it is sound (SAFETY)
fn own_cpu_time() -> Duration {
    // SAFETY: as in `launch`; getrusage only writes the struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a local.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    cpu_time(&usage)
}

/// Wall and CPU time of in-process work.
#[derive(Clone, Copy)]
pub struct Timing {
    pub wall: Duration,
    /// CPU time of the whole benchmark process meanwhile (it does nothing else).
    pub cpu: Duration,
}

/// Times `runs` calls of `f`; the medians of wall and CPU time.
pub fn time_median<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<Timing> {
    let mut walls = Vec::with_capacity(runs);
    let mut cpus = Vec::with_capacity(runs);
    for _ in 0..runs {
        let cpu = own_cpu_time();
        let start = Instant::now();
        std::hint::black_box(f()?);
        walls.push(start.elapsed());
        cpus.push(own_cpu_time().saturating_sub(cpu));
    }
    Ok(Timing {
        wall: median(&walls),
        cpu: median(&cpus),
    })
}

/// The load average over the last minute, from /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// `12.3 ms`, `1.23 s`, `456 µs`.
pub fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs >= 1.0 {
        format!("{secs:.2} s")
    } else if secs >= 0.01 {
        format!("{:.1} ms", secs * 1e3)
    } else if secs >= 0.001 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{:.0} µs", secs * 1e6)
    }
}

pub fn fmt_mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// How kgitops' output compares with kubectl kustomize's.
pub enum Comparison {
    Identical,
    /// Bytes differ; `parsed_equal` says whether the documents, parsed, are the same.
    Differs {
        line: usize,
        ours: String,
        theirs: String,
        /// `Ok(None)`: the same documents; `Ok(Some(..))`: the first document that differs.
        parsed_equal: Result<Option<String>, String>,
    },
}

/// Compares two YAML streams byte for byte and, when they differ, as parsed documents.
pub fn compare(ours: &[u8], theirs: &[u8]) -> Comparison {
    if ours == theirs {
        return Comparison::Identical;
    }
    let ours_text = String::from_utf8_lossy(ours);
    let theirs_text = String::from_utf8_lossy(theirs);
    let mut ours_lines = ours_text.lines();
    let mut theirs_lines = theirs_text.lines();
    let mut line = 1;
    let (first_ours, first_theirs) = loop {
        match (ours_lines.next(), theirs_lines.next()) {
            (Some(a), Some(b)) if a == b => line += 1,
            (a, b) => {
                break (
                    a.unwrap_or("<end of output>").to_string(),
                    b.unwrap_or("<end of output>").to_string(),
                );
            }
        }
    };
    let limits = Limits {
        max_bytes: usize::MAX,
        ..Limits::DEFAULT
    };
    let parsed_equal = parse_documents(&ours_text, "kgitops output", &limits)
        .and_then(|a| {
            parse_documents(&theirs_text, "kubectl output", &limits).map(|b| first_difference(&a, &b))
        })
        .map_err(|e| e.to_string());
    Comparison::Differs {
        line,
        ours: first_ours,
        theirs: first_theirs,
        parsed_equal,
    }
}

impl Comparison {
    /// One word for the summary table.
    pub fn summary(&self) -> &'static str {
        match self {
            Comparison::Identical => "identical",
            Comparison::Differs {
                parsed_equal: Ok(None),
                ..
            } => "same docs",
            Comparison::Differs { .. } => "DIFFERENT",
        }
    }

    /// Prints the verdict, indented, with the first differing line when the bytes differ.
    pub fn print(&self, indent: &str) {
        match self {
            Comparison::Identical => println!("{indent}output: byte-identical to kubectl kustomize"),
            Comparison::Differs {
                line,
                ours,
                theirs,
                parsed_equal,
            } => {
                println!(
                    "{indent}WARNING: output is not byte-identical to kubectl kustomize; first difference, line {line}:"
                );
                println!("{indent}  kgitops: {ours}");
                println!("{indent}  kubectl: {theirs}");
                match parsed_equal {
                    Ok(None) => println!(
                        "{indent}  parsed as YAML, the documents are equal (same objects, same order): the \
                         difference is formatting only"
                    ),
                    Ok(Some(what)) => println!("{indent}  parsed as YAML, the documents DIFFER too: {what}"),
                    Err(e) => println!("{indent}  could not parse the outputs to compare documents: {e}"),
                }
            }
        }
    }
}

/// The first document in which two parsed streams differ, with the first differing field:
/// `document 3 (Deployment prod-app-00000): /spec/replicas: 1 vs 3`.
fn first_difference(ours: &[Value], theirs: &[Value]) -> Option<String> {
    if let Some((i, (a, b))) = ours.iter().zip(theirs).enumerate().find(|(_, (a, b))| a != b) {
        let name = |v: &Value| {
            format!(
                "{} {}",
                v["kind"].as_str().unwrap_or("?"),
                v["metadata"]["name"].as_str().unwrap_or("?")
            )
        };
        let (path, x, y) = first_field_difference(a, b, String::new());
        return Some(format!(
            "document {} ({} vs {}): {}: {} vs {}",
            i + 1,
            name(a),
            name(b),
            if path.is_empty() { "/" } else { &path },
            short(x),
            short(y)
        ));
    }
    (ours.len() != theirs.len()).then(|| format!("{} documents vs {}", ours.len(), theirs.len()))
}

fn first_field_difference<'v>(a: &'v Value, b: &'v Value, path: String) -> (String, &'v Value, &'v Value) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) if p == q => {}
                    (Some(p), Some(q)) => return first_field_difference(p, q, format!("{path}/{key}")),
                    (p, q) => {
                        return (
                            format!("{path}/{key}"),
                            p.unwrap_or(&Value::Null),
                            q.unwrap_or(&Value::Null),
                        );
                    }
                }
            }
            (path, a, b)
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            match x.iter().zip(y).position(|(p, q)| p != q) {
                Some(i) => first_field_difference(&x[i], &y[i], format!("{path}/{i}")),
                None => (path, a, b),
            }
        }
        _ => (path, a, b),
    }
}

/// A value in one line, cut at 80 characters; missing fields show as `null`.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
