//! `cargo bench --bench render -- corpus`: the real-world corpus (`shared/kustomize-corpus`, 385
//! kustomization directories of 18 public repositories; issue 14's target: whole corpus ≥ 15× faster
//! than the pinned kustomize, summed over directories). Every directory of its `dirs.txt` is
//! rendered by the kgitops library in-process, by the `kgitops render` CLI and by the pinned
//! kustomize v5.8.1 (`tests/tools/build-kustomize`) as child processes; failures count with the time
//! they took (both tools refuse the same directories: remote resources, exec plugins, missing files).
//! `--quick` renders every 20th directory once, to check that it runs and prints.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::Tools;
use crate::measure::{fmt_duration, median};
use kgitops::manifest::yaml::to_yaml_stream;
use kgitops::render::render;
use kgitops::source::{DirTree, TreePath};

/// Issue 14: the whole corpus at least this many times faster than the pinned kustomize.
const SPEED_TARGET: f64 = 15.0;

/// The corpus: `KGITOPS_SHARED/kustomize-corpus`, else `shared/kustomize-corpus` next to the
/// repository or a parent of it (the convention of tests/validate_support's `shared`).
fn corpus_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("KGITOPS_SHARED").filter(|d| !d.is_empty()) {
        let path = PathBuf::from(dir).join("kustomize-corpus");
        if !path.is_dir() {
            bail!("{} not found (KGITOPS_SHARED)", path.display());
        }
        return Ok(path);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    root.ancestors()
        .skip(1)
        .map(|dir| dir.join("shared/kustomize-corpus"))
        .find(|dir| dir.is_dir())
        .with_context(|| {
            format!(
                "no shared/kustomize-corpus next to {} (set KGITOPS_SHARED)",
                root.display()
            )
        })
}

/// The pinned kustomize, built (or found cached) by `tests/tools/build-kustomize`.
fn pinned_kustomize() -> Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/build-kustomize");
    let out = Command::new(&script)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Sums of one tool over the directories.
#[derive(Default)]
struct Sum {
    wall: Duration,
    cpu: Duration,
    failed: usize,
}

pub fn bench_corpus(tools: &Tools, quick: bool) -> Result<()> {
    let corpus = corpus_dir()?;
    let dirs_txt = corpus.join("dirs.txt");
    let all: Vec<String> = fs::read_to_string(&dirs_txt)
        .with_context(|| format!("reading {}", dirs_txt.display()))?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let dirs: Vec<&String> = all.iter().step_by(if quick { 20 } else { 1 }).collect();
    let (lib_runs, cli_runs) = if quick { (1, 1) } else { (5, 3) };
    let kustomize = pinned_kustomize();
    println!(
        "corpus (issue 14): {} of the {} directories of {}{}",
        dirs.len(),
        all.len(),
        corpus.display(),
        if quick {
            " (--quick: every 20th, one run each)"
        } else {
            ""
        }
    );
    match &kustomize {
        Ok(k) => println!("  pinned kustomize: {}", k.display()),
        Err(e) => println!("  pinned kustomize unavailable, kgitops figures only: {e:#}"),
    }

    let (mut lib, mut cli, mut theirs) = (Sum::default(), Sum::default(), Sum::default());
    let (mut same, mut both_render) = (0, 0);
    for dir in &dirs {
        let path = corpus.join(dir);
        // The library, as a checkout is read: the tree rooted at the repository's folder.
        let (repo, sub) = dir.split_once('/').unwrap_or((dir, ""));
        let tree = DirTree::open(&corpus.join(repo))?;
        let sub = TreePath::new(sub)?;
        let mut walls = Vec::with_capacity(lib_runs);
        let mut failed = false;
        for _ in 0..lib_runs {
            let start = Instant::now();
            failed = render(&tree, &sub).map(|o| to_yaml_stream(&o)).is_err();
            walls.push(start.elapsed());
        }
        lib.wall += median(&walls);
        lib.failed += usize::from(failed);

        let args = [std::ffi::OsStr::new("render"), path.as_os_str()];
        let runs = (0..cli_runs)
            .map(|_| tools.run(&tools.kgitops, &args, "corpus-kgitops", &[1, 2]))
            .collect::<Result<Vec<_>>>()?;
        cli.wall += median(&runs.iter().map(|r| r.wall).collect::<Vec<_>>());
        cli.cpu += median(&runs.iter().map(|r| r.cpu).collect::<Vec<_>>());
        cli.failed += usize::from(runs[0].code != 0);

        if let Ok(k) = &kustomize {
            let args = [std::ffi::OsStr::new("build"), path.as_os_str()];
            let run = tools.run(k, &args, "corpus-kustomize", &[1])?;
            theirs.wall += run.wall;
            theirs.cpu += run.cpu;
            theirs.failed += usize::from(run.code != 0);
            if run.code == 0 && runs[0].code == 0 {
                both_render += 1;
                let ours = fs::read(tools.stdout("corpus-kgitops"))?;
                same += usize::from(ours == fs::read(tools.stdout("corpus-kustomize"))?);
            }
        }
    }

    let n = dirs.len();
    println!(
        "    kgitops library (in-process)   summed wall {:>9}   failed {:>3} of {n}   median of {lib_runs} per directory",
        fmt_duration(lib.wall),
        lib.failed
    );
    println!(
        "    kgitops render CLI             summed wall {:>9}   cpu {:>9}   failed {:>3} of {n}   median of {cli_runs}",
        fmt_duration(cli.wall),
        fmt_duration(cli.cpu),
        cli.failed
    );
    if kustomize.is_ok() {
        println!(
            "    kustomize v5.8.1 build         summed wall {:>9}   cpu {:>9}   failed {:>3} of {n}   one run",
            fmt_duration(theirs.wall),
            fmt_duration(theirs.cpu),
            theirs.failed
        );
        let ratio = |ours: Duration| theirs.wall.as_secs_f64() / ours.as_secs_f64().max(1e-9);
        println!(
            "    speed: CLI {:.1}x, library {:.1}x faster (wall, summed)   target ≥ {SPEED_TARGET}x (CLI): {}",
            ratio(cli.wall),
            ratio(lib.wall),
            if ratio(cli.wall) >= SPEED_TARGET {
                "met"
            } else {
                "MISSED"
            }
        );
        println!(
            "    output: {same} byte-identical of the {both_render} both render (tests/render_corpus.rs checks every one)"
        );
    }
    println!();
    Ok(())
}
