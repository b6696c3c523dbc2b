//! The real-world corpus (issue 14 part 6): every directory of `shared/kustomize-corpus/dirs.txt`
//! (kustomizations of 18 public repositories) rendered by kgitops, in-process from the file system,
//! and compared byte for byte with the pinned kustomize v5.8.1's output, which
//! `tests/tools/corpus-reference` generates and caches under `target/tools/corpus-reference/`
//! (`scripts/test` runs it before cargo; this test runs it too, which is a cache lookup then).
//!
//! Each directory ends in one of five outcomes: identical, differ, kgitops-only error, both refuse
//! (kgitops' message must start with the file at fault and say why; for remote resources and exec
//! plugins it must say exactly that), kustomize-only error. The test is a ratchet: every directory
//! that is not identical or a correct refusal is listed in `tests/render_corpus/known-differences.tsv`
//! (directory, root cause, one-line reason), and the test fails both on a difference not listed and
//! on a listed directory that now matches, so the file stays exact. Nothing is skipped.
//!
//! The report (counts, render times of both) is printed; `target/render-corpus/` receives the diff
//! or both errors of every directory that is not identical, for classifying them.

mod common;
mod validate_support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kgitops::manifest::yaml::Limits;
use kgitops::manifest::yaml::to_yaml_stream;
use kgitops::render::render_with_warnings;
use kgitops::source::{DirTree, TreePath};

/// What kustomize did with one directory (from the reference cache).
struct Reference {
    status: i32,
    stdout: String,
    stderr: String,
    time: Duration,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Outcome {
    Identical,
    Differ,
    KgitopsOnlyError,
    BothRefuse,
    /// Both refuse, but kgitops' message does not name the file, or the remote resource or exec
    /// plugin, as it must.
    BothRefuseUnclear,
    KustomizeOnlyError,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Identical => "identical",
            Outcome::Differ => "differ",
            Outcome::KgitopsOnlyError => "kgitops-only error",
            Outcome::BothRefuse => "both refuse",
            Outcome::BothRefuseUnclear => "both refuse, kgitops' message unclear",
            Outcome::KustomizeOnlyError => "kustomize-only error",
        }
    }

    /// Whether the directory is where it must end up (no entry in known-differences.tsv).
    fn conforms(self) -> bool {
        matches!(self, Outcome::Identical | Outcome::BothRefuse)
    }
}

fn repo_root() -> &'static Path {
    common::repo_root()
}

/// Runs `tests/tools/corpus-reference` (builds the references when the cache is missing or stale)
/// and returns the cache directory it prints.
fn reference_cache() -> PathBuf {
    let script = repo_root().join("tests/tools/corpus-reference");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        dir.join(".complete").is_file(),
        "{}: incomplete reference cache",
        dir.display()
    );
    dir
}

fn read_reference(cache: &Path, dir: &str) -> Reference {
    let at = cache.join(dir);
    let read = |name: &str| {
        fs::read_to_string(at.join(name)).unwrap_or_else(|e| panic!("{}/{name}: {e}", at.display()))
    };
    Reference {
        status: read("@status").trim().parse().expect("@status holds a number"),
        stdout: read("@stdout"),
        stderr: read("@stderr"),
        time: Duration::from_nanos(read("@nanos").trim().parse().expect("@nanos holds a number")),
    }
}

/// Why kustomize refused, when it is one of the refusals kgitops must name as such.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ExpectedRefusal {
    Remote,
    Plugin,
}

fn expected_refusal(kustomize_stderr: &str) -> Option<ExpectedRefusal> {
    if kustomize_stderr.contains("external plugins disabled") {
        Some(ExpectedRefusal::Plugin)
    } else if [
        "accumulating resources from 'https://",
        "accumulating resources from 'http://",
        "accumulating resources from 'ssh://",
        "accumulating resources from 'github.com/",
        // Any other download (an `openapi` schema URL, say).
        "Error: Get \"http",
    ]
    .iter()
    .any(|m| kustomize_stderr.contains(m))
    {
        Some(ExpectedRefusal::Remote)
    } else {
        None
    }
}

/// kgitops' refusal is clear: it starts with the file at fault (`path: reason`), and remote
/// resources and plugins are called that.
fn clear_refusal(err: &str, expected: Option<ExpectedRefusal>) -> bool {
    let names_file = err
        .split_once(": ")
        .is_some_and(|(file, reason)| !file.is_empty() && !file.contains(' ') && !reason.is_empty());
    let lower = err.to_lowercase();
    names_file
        && match expected {
            None => true,
            Some(ExpectedRefusal::Remote) => lower.contains("remote"),
            Some(ExpectedRefusal::Plugin) => lower.contains("plugin"),
        }
}

/// Renders `dir` (`<owner+repo>/<path>`) with the tree rooted at its repository, as kgitops reads a
/// checkout; the output and the time it took.
/// Also the render's warnings, one per line as `kgitops render` prints them.
fn render_dir(corpus: &Path, dir: &str) -> (Result<String, String>, String, Duration) {
    let (repo, path) = dir.split_once('/').unwrap_or((dir, ""));
    let start = Instant::now();
    let mut warnings = String::new();
    let result = DirTree::open(&corpus.join(repo))
        .map_err(|e| e.to_string())
        .and_then(|tree| {
            let path = TreePath::new(path).map_err(|e| e.to_string())?;
            let (result, found) = render_with_warnings(&tree, &path, Limits::DEFAULT);
            warnings = found.iter().map(|w| format!("{w}\n")).collect();
            result.map_err(|e| e.to_string())
        })
        .map(|objects| to_yaml_stream(&objects));
    (result, warnings, start.elapsed())
}

/// kustomize's stderr as kgitops prints warnings: without the date and time Go's `log` puts
/// before some lines, unused vars sorted (kustomize lists them in Go's random map order).
fn kustomize_warnings(stderr: &str) -> String {
    let mut out = String::new();
    for line in stderr.lines() {
        let b = line.as_bytes();
        let dated = b.len() > 20
            && b[4] == b'/'
            && b[7] == b'/'
            && b[10] == b' '
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b' ';
        let line = if dated { &line[20..] } else { line };
        let line = match line.strip_prefix("well-defined vars that were never replaced: ") {
            Some(names) => {
                let mut names: Vec<&str> = names.split(',').collect();
                names.sort_unstable();
                format!("well-defined vars that were never replaced: {}", names.join(","))
            }
            None => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `known-differences.tsv`: directory -> (root cause, reason).
fn known_differences() -> BTreeMap<String, (String, String)> {
    let path = repo_root().join("tests/render_corpus/known-differences.tsv");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut known = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(3, '\t');
        let (Some(dir), Some(cause), Some(reason)) = (fields.next(), fields.next(), fields.next()) else {
            panic!("{}:{}: want `dir<TAB>cause<TAB>reason`", path.display(), n + 1);
        };
        assert!(
            known
                .insert(dir.to_string(), (cause.to_string(), reason.to_string()))
                .is_none(),
            "{}:{}: {dir} listed twice",
            path.display(),
            n + 1
        );
    }
    known
}

fn write_detail(dir: &str, outcome: Outcome, reference: &Reference, ours: &Result<String, String>) {
    let at = repo_root().join("target/render-corpus").join(dir);
    let _ = fs::create_dir_all(&at);
    let text = match (ours, outcome) {
        (Ok(ours), Outcome::Differ) => similar::TextDiff::from_lines(&reference.stdout, ours)
            .unified_diff()
            .context_radius(3)
            .header("kustomize v5.8.1", "kgitops")
            .to_string(),
        (Ok(_), _) => format!("kustomize:\n{}", reference.stderr),
        (Err(e), _) => format!(
            "kgitops:\n{e}\n\nkustomize (exit {}):\n{}",
            reference.status, reference.stderr
        ),
    };
    let _ = fs::write(at.join("@detail"), format!("{}\n{text}", outcome.label()));
}

#[test]
fn corpus_renders_like_kustomize() {
    let corpus = validate_support::shared("kustomize-corpus");
    let cache = reference_cache();
    let dirs_txt = corpus.join("dirs.txt");
    let dirs: Vec<String> = fs::read_to_string(&dirs_txt)
        .unwrap_or_else(|e| panic!("{}: {e}", dirs_txt.display()))
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert!(
        dirs.len() >= 385,
        "{}: {} directories, want 385",
        dirs_txt.display(),
        dirs.len()
    );
    let known = known_differences();
    let _ = fs::remove_dir_all(repo_root().join("target/render-corpus"));

    let mut counts: BTreeMap<Outcome, usize> = BTreeMap::new();
    let (mut ours_total, mut theirs_total) = (Duration::ZERO, Duration::ZERO);
    let mut failures = String::new();
    let mut warned = 0usize;
    for dir in &dirs {
        let reference = read_reference(&cache, dir);
        let (ours, warnings, took) = render_dir(&corpus, dir);
        ours_total += took;
        theirs_total += reference.time;
        let outcome = match (&ours, reference.status == 0) {
            (Ok(out), true) if *out == reference.stdout => Outcome::Identical,
            (Ok(_), true) => Outcome::Differ,
            (Err(_), true) => Outcome::KgitopsOnlyError,
            (Ok(_), false) => Outcome::KustomizeOnlyError,
            (Err(e), false) if clear_refusal(e, expected_refusal(&reference.stderr)) => Outcome::BothRefuse,
            (Err(_), false) => Outcome::BothRefuseUnclear,
        };
        *counts.entry(outcome).or_default() += 1;
        if outcome != Outcome::Identical {
            write_detail(dir, outcome, &reference, &ours);
        } else if warnings != kustomize_warnings(&reference.stderr) {
            // Identical output must come with kustomize's warnings too.
            let _ = writeln!(
                failures,
                "{dir}: warnings differ from kustomize's stderr:\n--- kustomize\n{}+++ kgitops\n{warnings}",
                kustomize_warnings(&reference.stderr)
            );
        } else if !warnings.is_empty() {
            warned += 1;
        }
        match (outcome.conforms(), known.get(dir)) {
            (false, None) => {
                let _ = writeln!(
                    failures,
                    "{dir}: {} and not in known-differences.tsv (see target/render-corpus/{dir}/@detail)",
                    outcome.label()
                );
            }
            (true, Some((cause, _))) => {
                let _ = writeln!(
                    failures,
                    "{dir}: {} now, remove it from known-differences.tsv (listed as {cause})",
                    outcome.label()
                );
            }
            _ => {}
        }
    }
    for dir in known.keys().filter(|k| !dirs.contains(k)) {
        let _ = writeln!(failures, "{dir}: in known-differences.tsv but not in dirs.txt");
    }

    println!(
        "render corpus: {} directories of {}",
        dirs.len(),
        corpus.display()
    );
    for outcome in [
        Outcome::Identical,
        Outcome::Differ,
        Outcome::KgitopsOnlyError,
        Outcome::BothRefuse,
        Outcome::BothRefuseUnclear,
        Outcome::KustomizeOnlyError,
    ] {
        println!(
            "  {:>4}  {}",
            counts.get(&outcome).copied().unwrap_or(0),
            outcome.label()
        );
    }
    println!("  {warned:>4}  identical with kustomize's warnings on stderr, every identical one matching");
    let mut causes: BTreeMap<&str, usize> = BTreeMap::new();
    for (cause, _) in known.values() {
        *causes.entry(cause).or_default() += 1;
    }
    println!("  known differences by root cause: {causes:?}");
    println!(
        "  render time summed over directories: kgitops {:.3} s (in-process, this test's build), \
         kustomize v5.8.1 {:.3} s (one process per directory, from the reference cache)",
        ours_total.as_secs_f64(),
        theirs_total.as_secs_f64()
    );
    assert!(failures.is_empty(), "render corpus ratchet:\n{failures}");
}
