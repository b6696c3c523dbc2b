//! `cargo bench --bench render`: kgitops' Kustomize renderer side by side with `kubectl kustomize`
//! in the same run, on fixtures generated into a temporary directory (see `benches/README.md`).
//!
//! Cases (issue 4): (a) a small layered overlay, (b) an overlay over 1,000 generated objects,
//! (c) the same over 20,000; and the fleet (issue 8): 100 cluster overlays over one base in a git
//! repository with two commits, rendered at both revisions straight from git objects, against 200
//! runs of `kubectl kustomize`. Each case prints kgitops' time in-process (library) and as the CLI
//! binary, kubectl's time, the speed ratio (CLI against kubectl: both are processes), peak memory of
//! both processes and its ratio, the targets, and whether the outputs are the same.
//!
//! And `validate` (issue 15): `kgitops validate` of this repository's own cluster overlays (every
//! overlay rendered, schema-checked against the CRDs of its Strimzi release, all rules), as the
//! release CLI, against its target of 100 ms wall time.
//!
//! Arguments (after `--`): `--quick` (few runs, for trying the benchmark out), and case names to
//! run only some: `small`, `1k`, `20k`, `fleet`, `validate`, `corpus`, `sops` (issue 17: a
//! 100-Secret overlay plain and SOPS-encrypted, `sops.rs`).
//!
//! And `corpus` (issue 14): the real-world corpus of `shared/kustomize-corpus`, summed over its
//! directories, against the pinned kustomize v5.8.1 (`corpus.rs`).

mod corpus;
mod fixtures;
mod measure;
mod sops;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use fixtures::{Fixture, Fleet};
use kgitops::manifest::yaml::to_yaml_stream;
use kgitops::manifest::yaml::{Limits, parse_documents};
use kgitops::render::render;
use kgitops::source::{DirTree, FileTree, GitRepo, TreePath};
use measure::{ChildRun, Comparison, Timing, fmt_duration, fmt_mib, median, run_child, time_median};

/// Runs of `kgitops validate` on the repository's overlays (the median is reported).
const VALIDATE_RUNS: usize = 21;
/// Issue 15: `validate` of all overlays stays under this (wall clock, release build).
const VALIDATE_TARGET: Duration = Duration::from_millis(100);

/// Clusters in the fleet (issue 8).
const FLEET_CLUSTERS: usize = 100;
/// Clusters of the fleet that `kubectl kustomize` actually renders, at both revisions; its time for
/// the whole fleet is extrapolated from these.
const FLEET_KUBECTL_SAMPLE: usize = 5;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().map(OsString::as_os_str) == Some(OsStr::new(measure::LAUNCHER_FLAG)) {
        return measure::launcher(&args[1..]);
    }
    // `cargo test --all-targets` runs bench targets too, without `--bench`: minutes of
    // `kubectl kustomize` are a benchmark, not a test, so it only runs under `cargo bench`.
    if !args.iter().any(|a| a == "--bench") {
        println!("render: benchmark; run it with cargo bench --bench render");
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("render benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// How many times each thing is run; the median is reported.
#[derive(Clone, Copy)]
struct Runs {
    lib: usize,
    cli: usize,
    kubectl: usize,
}

struct Options {
    quick: bool,
    only: Vec<String>,
}

impl Options {
    fn parse(args: &[OsString]) -> Options {
        let mut options = Options {
            quick: false,
            only: Vec::new(),
        };
        for arg in args.iter().map(|a| a.to_string_lossy()) {
            match arg.as_ref() {
                "--quick" => options.quick = true,
                // cargo passes `--bench` to benchmarks without the libtest harness.
                other if other.starts_with("--") => {}
                other => options.only.push(other.to_string()),
            }
        }
        options
    }

    fn wants(&self, case: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == case)
    }

    fn runs(&self, full: Runs) -> Runs {
        if self.quick {
            Runs {
                lib: full.lib.min(3),
                cli: full.cli.min(3),
                kubectl: full.kubectl.min(1),
            }
        } else {
            full
        }
    }
}

/// The programs under test.
struct Tools {
    kgitops: PathBuf,
    kubectl: Option<PathBuf>,
    /// Where child processes write their output.
    out: PathBuf,
}

impl Tools {
    fn stdout(&self, name: &str) -> PathBuf {
        self.out.join(format!("{name}.out"))
    }

    /// Runs a tool through the launcher; a non-zero exit (other than `allowed`) is an error with
    /// the start of its stderr.
    fn run(&self, program: &Path, args: &[&OsStr], name: &str, allowed: &[i32]) -> Result<ChildRun> {
        let stderr = self.out.join(format!("{name}.err"));
        let run = run_child(program, args, &self.stdout(name), &stderr)?;
        if run.code != 0 && !allowed.contains(&run.code) {
            let text = fs::read_to_string(&stderr).unwrap_or_default();
            bail!(
                "{} {} exited with {}: {}",
                program.display(),
                args.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                run.code,
                text.lines().take(5).collect::<Vec<_>>().join(" | ")
            );
        }
        Ok(run)
    }

    /// Runs a tool `n` times; the medians.
    fn medians(
        &self,
        n: usize,
        program: &Path,
        args: &[&OsStr],
        name: &str,
        allowed: &[i32],
    ) -> Result<Figures> {
        let runs = (0..n)
            .map(|_| self.run(program, args, name, allowed))
            .collect::<Result<Vec<_>>>()?;
        Ok(Figures {
            wall: median(&runs.iter().map(|r| r.wall).collect::<Vec<_>>()),
            cpu: median(&runs.iter().map(|r| r.cpu).collect::<Vec<_>>()),
            rss_kib: median(&runs.iter().map(|r| r.max_rss_kib).collect::<Vec<_>>()),
        })
    }
}

fn find_kubectl() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KUBECTL") {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
}

fn kubectl_version(kubectl: &Path) -> String {
    Command::new(kubectl)
        .args(["version", "--client"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|e| format!("version unknown: {e}"))
}

fn run(args: &[OsString]) -> Result<()> {
    let options = Options::parse(args);
    let temp = tempfile::Builder::new()
        .prefix("kgitops-render-bench-")
        .tempdir()
        .context("creating a temporary directory")?;
    // KGITOPS_BENCH_KEEP=1 keeps the fixtures and the last outputs for a look afterwards.
    let temp_path = temp.path().to_path_buf();
    let _temp = if std::env::var_os("KGITOPS_BENCH_KEEP").is_some() {
        let _kept = temp.keep();
        None
    } else {
        Some(temp)
    };
    let out = temp_path.join("out");
    fs::create_dir_all(&out)?;
    let tools = Tools {
        kgitops: PathBuf::from(env!("CARGO_BIN_EXE_kgitops")),
        kubectl: find_kubectl(),
        out,
    };

    println!("kgitops render benchmark");
    println!(
        "  build: {} ({})",
        if cfg!(debug_assertions) {
            "DEBUG: figures are not representative"
        } else {
            "optimised"
        },
        tools.kgitops.display()
    );
    match &tools.kubectl {
        Some(k) => println!("  kubectl: {} ({})", k.display(), kubectl_version(k)),
        None => {
            println!("  kubectl was not found on PATH (nor KUBECTL): kgitops figures only, no comparison")
        }
    }
    println!(
        "  cores: {}; fixtures in {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        temp_path.display()
    );
    let floor = tools.run(Path::new("true"), &[], "floor", &[])?;
    println!(
        "  peak memory is ru_maxrss of each process (wait4), started through a launcher; floor of the \
         method: {} (`true`)",
        fmt_mib(floor.max_rss_kib)
    );
    println!(
        "  load average at start: {} (times are wall clock unless marked cpu = user + system of the \
         process; on a busy machine cpu is the steadier figure)",
        measure::load_average()
    );
    if options.quick {
        println!("  --quick: few runs, figures are rough");
    }
    println!();

    let mut rows = Vec::new();
    for case in cases() {
        if options.wants(case.name) {
            match (case.fixture)(&temp_path.join(case.name))? {
                Some(fixture) => rows.push(bench_case(&tools, &case, &fixture, &options.runs(case.runs))?),
                None => println!("{}: not in this checkout, skipped\n", case.label),
            }
        }
    }
    if !rows.is_empty() {
        print_summary(&rows);
        println!("  load average now: {}\n", measure::load_average());
    }
    if options.wants("fleet") {
        let fleet = fixtures::fleet(&temp_path.join("fleet"), FLEET_CLUSTERS)?;
        let runs = options.runs(Runs {
            lib: 5,
            cli: 1,
            kubectl: 1,
        });
        bench_fleet(&tools, &fleet, &runs)?;
        println!("  load average now: {}", measure::load_average());
    }
    if options.wants("sops") {
        sops::bench_sops(&temp_path.join("sops"), options.quick)?;
        println!("  load average now: {}", measure::load_average());
    }
    if options.wants("corpus") {
        corpus::bench_corpus(&tools, options.quick)?;
        println!("  load average now: {}", measure::load_average());
    }
    if options.wants("validate") {
        let runs = if options.quick { 3 } else { VALIDATE_RUNS };
        bench_validate(&tools, runs)?;
        println!("  load average now: {}", measure::load_average());
    }
    Ok(())
}

/// `kgitops validate --repo <this repository>`: every overlay under clusters/ (their Kafka
/// platforms and the Strimzi releases they include, CRDs of ~10 MB among them), the CLI binary as
/// a user runs it. Exit 1 (findings) counts as a run; the exit code is printed.
fn bench_validate(tools: &Tools, runs: usize) -> Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clusters = kgitops::source::layout::cluster_names(&DirTree::open(repo)?)?.unwrap_or_default();
    println!(
        "validate (issue 15): kgitops validate of this repository's {} overlays ({})",
        clusters.len(),
        clusters.join(", ")
    );
    let args: [&OsStr; 3] = [OsStr::new("validate"), OsStr::new("--repo"), repo.as_os_str()];
    let first = tools.run(&tools.kgitops, &args, "validate", &[1])?;
    let figures = tools.medians(runs, &tools.kgitops, &args, "validate", &[1])?;
    let met = figures.wall < VALIDATE_TARGET;
    println!(
        "    kgitops validate CLI                       {}   median of {runs}, exit {}",
        figures.line(),
        first.code
    );
    println!(
        "    target: < {} wall                        {}\n",
        fmt_duration(VALIDATE_TARGET),
        verdict(met)
    );
    Ok(())
}

struct Targets {
    /// Minimum speed ratio against kubectl kustomize (0: none).
    speed: f64,
    /// Maximum peak-memory ratio against kubectl kustomize.
    memory: Option<f64>,
    /// Maximum wall time of the kgitops CLI.
    time: Option<Duration>,
}

/// One of issue 4's cases.
struct Case {
    /// Name on the command line, and the fixture's directory.
    name: &'static str,
    label: &'static str,
    /// Writes the fixture into the directory given; `None` when the case does not apply.
    fixture: fn(&Path) -> Result<Option<Fixture>>,
    runs: Runs,
    targets: Targets,
}

/// Runs and targets of the small overlays (issue 4, case a).
const SMALL_RUNS: Runs = Runs {
    lib: 101,
    cli: 21,
    kubectl: 11,
};
const SMALL_TARGETS: Targets = Targets {
    speed: 20.0,
    memory: None,
    time: None,
};

fn cases() -> [Case; 4] {
    [
        Case {
            name: "small",
            label: "(a) small layered overlay",
            fixture: |dir| fixtures::small(dir).map(Some),
            runs: SMALL_RUNS,
            targets: SMALL_TARGETS,
        },
        Case {
            name: "dev",
            label: "(a') this repo's clusters/dev",
            fixture: |_| Ok(fixtures::repo_dev()),
            runs: SMALL_RUNS,
            targets: SMALL_TARGETS,
        },
        Case {
            name: "1k",
            label: "(b) overlay over 1,000 objects",
            fixture: |dir| fixtures::large(dir, 1_000).map(Some),
            runs: Runs {
                lib: 21,
                cli: 11,
                kubectl: 7,
            },
            targets: Targets {
                speed: 50.0,
                memory: Some(1.0 / 3.0),
                time: None,
            },
        },
        Case {
            name: "20k",
            label: "(c) overlay over 20,000 objects",
            fixture: |dir| fixtures::large(dir, 20_000).map(Some),
            // kubectl kustomize takes minutes here (it grows faster than the object count).
            runs: Runs {
                lib: 5,
                cli: 5,
                kubectl: 1,
            },
            targets: Targets {
                speed: 0.0,
                memory: None,
                time: Some(Duration::from_secs(1)),
            },
        },
    ]
}

/// Wall time, CPU time (user + system) and peak memory of a tool's process: medians over runs, or
/// totals over a series of runs (peak memory: the largest).
#[derive(Clone, Copy, Default)]
struct Figures {
    wall: Duration,
    cpu: Duration,
    rss_kib: u64,
}

impl Figures {
    fn add(&mut self, run: &ChildRun) {
        self.wall += run.wall;
        self.cpu += run.cpu;
        self.rss_kib = self.rss_kib.max(run.max_rss_kib);
    }

    fn scaled(self, factor: f64) -> Figures {
        Figures {
            wall: self.wall.mul_f64(factor),
            cpu: self.cpu.mul_f64(factor),
            rss_kib: self.rss_kib,
        }
    }

    /// `wall … cpu … peak RSS …`, aligned.
    fn line(&self) -> String {
        format!(
            "wall {:>9}   cpu {:>9}   peak RSS {:>9}",
            fmt_duration(self.wall),
            fmt_duration(self.cpu),
            fmt_mib(self.rss_kib)
        )
    }
}

fn timing_line(t: &Timing) -> String {
    format!(
        "wall {:>9}   cpu {:>9}",
        fmt_duration(t.wall),
        fmt_duration(t.cpu)
    )
}

/// `theirs / ours`, by wall and by CPU time.
fn ratios(theirs: &Figures, ours_wall: Duration, ours_cpu: Duration) -> (f64, f64) {
    (
        theirs.wall.as_secs_f64() / ours_wall.as_secs_f64(),
        theirs.cpu.as_secs_f64() / ours_cpu.as_secs_f64(),
    )
}

/// What one case measured.
struct Row {
    label: &'static str,
    objects_out: usize,
    lib: Timing,
    cli: Figures,
    kubectl: Option<Figures>,
    comparison: Option<Comparison>,
    verdicts: Vec<String>,
}

/// Renders through the library as the CLI does (open the tree, render, print YAML), in-process.
fn render_lib(fixture: &Fixture) -> Result<(usize, String)> {
    let tree = DirTree::open(&fixture.root)?;
    let objects = render(&tree, &TreePath::new(fixture.dir)?)?;
    Ok((objects.len(), to_yaml_stream(&objects)))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// Where the library's time goes, from the public API alone: parsing the base's files, rendering
/// the base (parse, accumulate, sort), rendering the overlay (adds its transformers and name
/// references), printing YAML.
fn print_breakdown(fixture: &Fixture, runs: usize) -> Result<()> {
    let mut files = Vec::new();
    let mut dirs = vec![fixture.root.join("base")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") && !path.ends_with("kustomization.yaml") {
                files.push(path);
            }
        }
    }
    let parse = time_median(runs, || {
        files.iter().try_fold(0, |n, path| {
            let text = fs::read_to_string(path)?;
            Ok(n + parse_documents(&text, "bench", &Limits::DEFAULT)?.len())
        })
    })?;
    let tree = DirTree::open(&fixture.root)?;
    let base_render = time_median(runs, || Ok(render(&tree, &TreePath::new("base")?)?))?;
    let overlay_dir = TreePath::new(fixture.dir)?;
    let overlay_render = time_median(runs, || Ok(render(&tree, &overlay_dir)?))?;
    let objects = render(&tree, &overlay_dir)?;
    let emit = time_median(runs, || Ok(to_yaml_stream(&objects)))?;
    let total = overlay_render.cpu + emit.cpu;
    let share = |d: Duration| 100.0 * d.as_secs_f64() / total.as_secs_f64();
    let base_rest = base_render.cpu.saturating_sub(parse.cpu);
    let overlay_rest = overlay_render.cpu.saturating_sub(base_render.cpu);
    println!("    where the library's time goes (cpu, median of {runs}):");
    for (what, d) in [
        ("read + parse the base's YAML files", parse.cpu),
        ("load, accumulate, sort (base render − parse)", base_rest),
        ("overlay transformers, name refs (overlay − base)", overlay_rest),
        ("print YAML", emit.cpu),
    ] {
        println!("      {what:<50} {:>9}  {:>3.0}%", fmt_duration(d), share(d));
    }
    Ok(())
}

fn bench_case(tools: &Tools, case: &Case, fixture: &Fixture, runs: &Runs) -> Result<Row> {
    let tree = DirTree::open(&fixture.root)?;
    let base_objects = render(&tree, &TreePath::new("base")?)?.len();
    println!(
        "{}: {}, base of {base_objects} objects",
        case.label,
        fixture.overlay().display()
    );
    let (objects_out, _) = render_lib(fixture).with_context(|| format!("{}: kgitops library", case.label))?;
    let lib = time_median(runs.lib, || render_lib(fixture))?;

    let overlay = fixture.overlay();
    let kgitops_args: [&OsStr; 2] = [OsStr::new("render"), overlay.as_os_str()];
    // One warm-up run, whose output is the one compared.
    tools.run(&tools.kgitops, &kgitops_args, "kgitops", &[])?;
    let ours = fs::read(tools.stdout("kgitops"))?;
    let cli = tools.medians(runs.cli, &tools.kgitops, &kgitops_args, "kgitops-timed", &[])?;

    println!("    objects rendered: {objects_out}");
    println!(
        "    kgitops, library in-process      {}                        median of {}",
        timing_line(&lib),
        runs.lib
    );
    println!(
        "    kgitops render (CLI process)     {}   median of {}",
        cli.line(),
        runs.cli
    );

    let mut verdicts = Vec::new();
    let mut kubectl_figures = None;
    let mut comparison = None;
    if let Some(kubectl) = &tools.kubectl {
        let args: [&OsStr; 2] = [OsStr::new("kustomize"), overlay.as_os_str()];
        if objects_out >= 10_000 {
            eprintln!("  (running kubectl kustomize once on {objects_out} objects: this can take minutes)");
        }
        let first = tools.run(kubectl, &args, "kubectl", &[])?;
        let theirs = fs::read(tools.stdout("kubectl"))?;
        // A single run is both the output and the figure; more runs: the first is a warm-up.
        let k = if runs.kubectl <= 1 {
            let mut one = Figures::default();
            one.add(&first);
            one
        } else {
            tools.medians(runs.kubectl, kubectl, &args, "kubectl-timed", &[])?
        };
        println!(
            "    kubectl kustomize                {}   median of {}",
            k.line(),
            runs.kubectl
        );
        let (speed, cpu_speed) = ratios(&k, cli.wall, cli.cpu);
        let memory = cli.rss_kib as f64 / k.rss_kib as f64;
        let speed_text =
            format!("{speed:>6.1}× faster by wall time, {cpu_speed:.1}× by cpu (CLI vs kubectl)");
        if case.targets.speed > 0.0 {
            let v = format!(
                "speed ≥ {}× {}",
                case.targets.speed,
                verdict(speed >= case.targets.speed)
            );
            println!("    speed  {speed_text}   target {v}");
            verdicts.push(v);
        } else {
            println!("    speed  {speed_text}");
        }
        match case.targets.memory {
            Some(max) => {
                let v = format!("memory ≤ 1/{:.0} {}", 1.0 / max, verdict(memory <= max));
                println!("    memory {memory:>6.2} of kubectl's peak RSS   target {v}");
                verdicts.push(v);
            }
            None => println!("    memory {memory:>6.2} of kubectl's peak RSS"),
        }
        let compared = measure::compare(&ours, &theirs);
        compared.print("    ");
        comparison = Some(compared);
        kubectl_figures = Some(k);
    } else if case.targets.speed > 0.0 || case.targets.memory.is_some() {
        verdicts.push("ratios: no kubectl".into());
    }
    if let Some(max) = case.targets.time {
        let v = format!("CLI < {} {}", fmt_duration(max), verdict(cli.wall < max));
        println!(
            "    time   {} wall, {} cpu (CLI)   target {v}",
            fmt_duration(cli.wall),
            fmt_duration(cli.cpu)
        );
        verdicts.push(v);
    }
    print_breakdown(fixture, runs.lib)?;
    println!();
    Ok(Row {
        label: case.label,
        objects_out,
        lib,
        cli,
        kubectl: kubectl_figures,
        comparison,
        verdicts,
    })
}

fn print_summary(rows: &[Row]) {
    println!(
        "{:<31} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>9} {:>9} {:>5}  {:<9} targets (on wall time)",
        "summary",
        "objects",
        "lib wall",
        "CLI wall",
        "CLI cpu",
        "kctl wall",
        "kctl cpu",
        "×wall",
        "×cpu",
        "RSS CLI",
        "RSS kctl",
        "mem",
        "output"
    );
    for row in rows {
        let (k_wall, k_cpu, speed, cpu_speed, rss, mem) = match &row.kubectl {
            Some(k) => {
                let (speed, cpu_speed) = ratios(k, row.cli.wall, row.cli.cpu);
                (
                    fmt_duration(k.wall),
                    fmt_duration(k.cpu),
                    format!("{speed:.1}×"),
                    format!("{cpu_speed:.1}×"),
                    fmt_mib(k.rss_kib),
                    format!("{:.2}", row.cli.rss_kib as f64 / k.rss_kib as f64),
                )
            }
            None => Default::default(),
        };
        println!(
            "{:<31} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>9} {:>9} {:>5}  {:<9} {}",
            row.label,
            row.objects_out,
            fmt_duration(row.lib.wall),
            fmt_duration(row.cli.wall),
            fmt_duration(row.cli.cpu),
            k_wall,
            k_cpu,
            speed,
            cpu_speed,
            fmt_mib(row.cli.rss_kib),
            rss,
            mem,
            row.comparison.as_ref().map_or("-", Comparison::summary),
            row.verdicts.join("; ")
        );
    }
}

/// Renders every cluster of the fleet at both revisions from git objects, on `threads` threads,
/// printing each as YAML (as a diff must, to show changed objects). Returns the objects rendered.
fn render_fleet(fleet: &Fleet, threads: usize) -> Result<usize> {
    let repo = GitRepo::open(&fleet.repo)?;
    let trees = [repo.tree(fleet.revs[0])?, repo.tree(fleet.revs[1])?];
    let jobs: Vec<(&dyn FileTree, TreePath)> = trees
        .iter()
        .flat_map(|tree| fleet.clusters.iter().map(move |c| (tree as &dyn FileTree, c)))
        .map(|(tree, c)| Ok((tree, TreePath::new(c)?)))
        .collect::<Result<_>>()?;
    let next = AtomicUsize::new(0);
    let work = || -> Result<usize> {
        let mut objects = 0;
        while let Some((tree, dir)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
            let rendered = render(*tree, dir).with_context(|| format!("rendering {}", dir.as_str()))?;
            objects += rendered.len();
            std::hint::black_box(to_yaml_stream(&rendered));
        }
        Ok(objects)
    };
    if threads <= 1 {
        return work();
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
        workers.into_iter().try_fold(0, |sum, w| match w.join() {
            Ok(objects) => Ok(sum + objects?),
            Err(panic) => std::panic::resume_unwind(panic),
        })
    })
}

fn bench_fleet(tools: &Tools, fleet: &Fleet, runs: &Runs) -> Result<()> {
    let renders = 2 * fleet.clusters.len();
    println!(
        "fleet (issue 8): {} cluster overlays over one base of {} objects; git repository with two \
         commits, the second touching base/",
        fleet.clusters.len(),
        fleet.base_objects
    );
    let objects = render_fleet(fleet, 1).context("fleet: kgitops library")?;
    let lib_seq = time_median(runs.lib, || render_fleet(fleet, 1))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let lib_par = time_median(runs.lib, || render_fleet(fleet, threads))?;
    println!("    objects rendered (both revisions): {objects}");
    println!(
        "    kgitops library, whole fleet at both revisions from git objects ({renders} renders + YAML):"
    );
    println!(
        "      on 1 thread                               {}                        median of {}",
        timing_line(&lib_seq),
        runs.lib
    );
    println!(
        "      on {threads} threads                              {}                        median of {}",
        timing_line(&lib_par),
        runs.lib
    );

    // The CLI once per cluster and revision, from git objects (what a script would do today).
    let repo = fleet.repo.as_os_str();
    let mut cli = Figures::default();
    let mut sample_outputs = Vec::new();
    let sample: Vec<usize> = (0..FLEET_KUBECTL_SAMPLE)
        .map(|i| i * fleet.clusters.len() / FLEET_KUBECTL_SAMPLE)
        .collect();
    for (rev_index, rev) in fleet.revs.iter().enumerate() {
        for (index, cluster) in fleet.clusters.iter().enumerate() {
            let args: [&OsStr; 6] = [
                OsStr::new("render"),
                OsStr::new("--repo"),
                repo,
                OsStr::new("--rev"),
                OsStr::new(rev),
                OsStr::new(cluster),
            ];
            cli.add(&tools.run(&tools.kgitops, &args, "fleet-kgitops", &[])?);
            if sample.contains(&index) {
                sample_outputs.push((rev_index, index, fs::read(tools.stdout("fleet-kgitops"))?));
            }
        }
    }
    println!(
        "    kgitops render --rev CLI × {renders}, total     {}   all {renders} measured",
        cli.line()
    );

    // `kgitops diff --from --to`, when this build has it.
    let diff_args: [&OsStr; 7] = [
        OsStr::new("diff"),
        OsStr::new("--repo"),
        repo,
        OsStr::new("--from"),
        OsStr::new(fleet.revs[0]),
        OsStr::new("--to"),
        OsStr::new(fleet.revs[1]),
    ];
    let probe = run_child(
        &tools.kgitops,
        &diff_args,
        &tools.stdout("fleet-diff"),
        &tools.out.join("fleet-diff.err"),
    )?;
    let diff = if probe.code == 0 || probe.code == 1 {
        let d = tools.medians(runs.lib, &tools.kgitops, &diff_args, "fleet-diff", &[1])?;
        println!(
            "    kgitops diff --from --to (CLI), whole fleet {}   median of {}",
            d.line(),
            runs.lib
        );
        Some(d)
    } else {
        let stderr = fs::read_to_string(tools.out.join("fleet-diff.err")).unwrap_or_default();
        println!(
            "    kgitops diff --from --to: not available in this build (exit {}: {})",
            probe.code,
            stderr.lines().next().unwrap_or("").trim()
        );
        None
    };

    let (ours_wall, ours_cpu, ours_label) = match &diff {
        Some(d) => (d.wall, d.cpu, "kgitops diff --from --to"),
        None => (
            lib_seq.wall,
            lib_seq.cpu,
            "kgitops library on 1 thread (no diff command in this build)",
        ),
    };
    let Some(kubectl) = &tools.kubectl else {
        println!("    kubectl not found: no comparison");
        println!(
            "    target: whole fleet < 1 s: {} {}",
            fmt_duration(ours_wall),
            verdict(ours_wall < Duration::from_secs(1))
        );
        println!();
        return Ok(());
    };
    let mut measured = Figures::default();
    let mut comparisons = Vec::new();
    for (rev_index, checkout) in fleet.checkouts.iter().enumerate() {
        for &index in &sample {
            let dir = checkout.join(&fleet.clusters[index]);
            let args: [&OsStr; 2] = [OsStr::new("kustomize"), dir.as_os_str()];
            measured.add(&tools.run(kubectl, &args, "fleet-kubectl", &[])?);
            let theirs = fs::read(tools.stdout("fleet-kubectl"))?;
            if let Some((_, _, ours)) = sample_outputs
                .iter()
                .find(|(r, i, _)| *r == rev_index && *i == index)
            {
                comparisons.push((
                    format!("{} at {}", fleet.clusters[index], fleet.revs[rev_index]),
                    measure::compare(ours, &theirs),
                ));
            }
        }
    }
    let runs_measured = 2 * sample.len();
    let k = measured.scaled(renders as f64 / runs_measured as f64);
    println!(
        "    kubectl kustomize × {renders}, extrapolated    {}   from {runs_measured} runs ({} clusters at \
         both revisions, from plain directories: {} wall measured)",
        k.line(),
        sample.len(),
        fmt_duration(measured.wall)
    );
    let identical = comparisons
        .iter()
        .filter(|(_, c)| matches!(c, Comparison::Identical))
        .count();
    let same_docs = comparisons
        .iter()
        .filter(|(_, c)| c.summary() == "same docs")
        .count();
    println!(
        "    output: {identical} of {n} sampled renders byte-identical, {same_docs} of {n} different in bytes \
         but the same documents when parsed (kgitops from git objects vs kubectl from the checked-out revision)",
        n = comparisons.len()
    );
    // Show a difference in content if there is one, else one in formatting.
    let shown = comparisons
        .iter()
        .find(|(_, c)| c.summary() == "DIFFERENT")
        .or_else(|| {
            comparisons
                .iter()
                .find(|(_, c)| !matches!(c, Comparison::Identical))
        });
    if let Some((what, first)) = shown {
        println!("    {what}:");
        first.print("      ");
    }
    let (ratio, cpu_ratio) = ratios(&k, ours_wall, ours_cpu);
    println!(
        "    ratio {ratio:.1}× by wall time, {cpu_ratio:.1}× by cpu: {ours_label} ({}) vs kubectl kustomize × \
         {renders} ({})",
        fmt_duration(ours_wall),
        fmt_duration(k.wall)
    );
    println!(
        "    targets: whole fleet < 1 s {}; ≥ 20× faster than kubectl kustomize × {renders} {}",
        verdict(ours_wall < Duration::from_secs(1)),
        verdict(ratio >= 20.0)
    );
    let (cli_ratio, cli_cpu_ratio) = ratios(&k, cli.wall, cli.cpu);
    println!(
        "    (process for process, kgitops render CLI × {renders} vs kubectl × {renders}: {cli_ratio:.1}× by \
         wall, {cli_cpu_ratio:.1}× by cpu)"
    );
    println!();
    Ok(())
}
