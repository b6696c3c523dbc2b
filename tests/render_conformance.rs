//! Conformance with kustomize: every case under `tests/render/` is rendered and compared byte for
//! byte with the `expected.yaml` that the pinned kustomize v5.8.1 (`tests/tools/build-kustomize`)
//! produced for it (see `tests/render/regen`), and the render's warnings with what kustomize printed
//! on stderr (`expected-stderr.txt`, none when absent). Cases under `tests/render/errors/` must fail with the message fragment in
//! their `expected-error.txt`.
//!
//! A case is a directory tree read through a `DirTree` rooted at the case directory; the
//! kustomization rendered is the case directory itself or, when it has no kustomization file, its
//! `overlay/` subdirectory. A case holding a file `enable-helm` is rendered with Helm enabled and
//! the helm binary of `tests/tools/build-helm` (built by scripts/test; the test fails, saying so,
//! when it is missing), as `regen` runs kustomize with `--enable-helm`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use kgitops::manifest::yaml::Limits;
use kgitops::manifest::yaml::to_yaml_stream;
use kgitops::render::helm::{HelmSettings, render_with_warnings};
use kgitops::source::{DirTree, TreePath};

#[path = "support/helm_binary.rs"]
mod helm_binary;
use helm_binary::helm_binary;

const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/render")
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "errors"))
        .collect();
    out.sort();
    out
}

/// The directory to render inside a case, relative to the case.
fn target(case: &Path) -> &'static str {
    if KUSTOMIZATION_FILES.iter().any(|f| case.join(f).is_file()) {
        ""
    } else {
        "overlay"
    }
}

/// The output and the warnings (one per line, as `kgitops render` prints them on stderr).
fn render_case(case: &Path) -> Result<(String, String), String> {
    let tree = DirTree::open(case).map_err(|e| e.to_string())?;
    let dir = TreePath::new(target(case)).map_err(|e| e.to_string())?;
    let settings = if case.join("enable-helm").is_file() {
        let mut settings = HelmSettings {
            enabled: true,
            command: helm_binary()?,
            ..HelmSettings::default()
        };
        // More of kustomize's helm flags, one per line, as `regen` passes them.
        let flags = fs::read_to_string(case.join("enable-helm")).map_err(|e| e.to_string())?;
        for flag in flags.lines().filter(|l| !l.is_empty()) {
            match flag.split_once('=') {
                Some(("--helm-kube-version", v)) => settings.kube_version = v.to_string(),
                Some(("--helm-api-versions", v)) => settings.api_versions.push(v.to_string()),
                None if flag == "--helm-debug" => settings.debug = true,
                _ => return Err(format!("enable-helm: unknown flag {flag}")),
            }
        }
        settings
    } else {
        HelmSettings::default()
    };
    let (result, warnings) = render_with_warnings(&tree, &dir, Limits::DEFAULT, &settings);
    let objects = result.map_err(|e| e.to_string())?;
    let stderr: String = warnings.iter().map(|w| format!("{w}\n")).collect();
    Ok((to_yaml_stream(&objects), stderr))
}

fn unified_diff(expected: &str, actual: &str) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .header("expected.yaml (kustomize v5.8.1)", "kgitops render")
        .to_string()
}

#[test]
fn rendered_output_matches_kubectl_kustomize() {
    let cases = cases(&suite_dir());
    assert!(
        cases.len() >= 5,
        "conformance cases missing under {}",
        suite_dir().display()
    );
    let mut failures = String::new();
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let expected_path = case.join(target(case)).join("expected.yaml");
        let expected = match fs::read_to_string(&expected_path) {
            Ok(e) => e,
            Err(e) => {
                let _ = writeln!(
                    failures,
                    "{name}: {}: {e} (run tests/render/regen)",
                    expected_path.display()
                );
                continue;
            }
        };
        let (actual, warnings) = match render_case(case) {
            Ok(a) => a,
            Err(e) => {
                let _ = writeln!(failures, "{name}: render failed: {e}");
                continue;
            }
        };
        if actual != expected {
            let diff = unified_diff(&expected, &actual);
            let _ = writeln!(failures, "{name}: output differs from kustomize:\n{diff}");
        }
        // kustomize's warnings on stderr, stored by regen when there were any.
        let stderr_path = case.join(target(case)).join("expected-stderr.txt");
        let expected_stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
        if warnings != expected_stderr {
            let _ = writeln!(
                failures,
                "{name}: warnings differ from kustomize's stderr:\n--- expected-stderr.txt\n{expected_stderr}+++ kgitops\n{warnings}"
            );
        }
    }
    assert!(failures.is_empty(), "conformance failures:\n{failures}");
}

#[test]
fn rejected_inputs_fail_with_a_clear_error() {
    let cases = cases(&suite_dir().join("errors"));
    assert!(!cases.is_empty(), "error cases missing under tests/render/errors");
    let mut failures = String::new();
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let wanted = match fs::read_to_string(case.join("expected-error.txt")) {
            Ok(w) => w.trim_end_matches('\n').to_string(),
            Err(e) => {
                let _ = writeln!(failures, "{name}: expected-error.txt: {e}");
                continue;
            }
        };
        match render_case(case) {
            Ok((out, _)) => {
                let _ = writeln!(failures, "{name}: rendered without error:\n{out}");
            }
            Err(err) if err.contains(&wanted) => {}
            Err(err) => {
                let _ = writeln!(failures, "{name}: error\n  {err}\ndoes not contain\n  {wanted}");
            }
        }
    }
    assert!(failures.is_empty(), "error case failures:\n{failures}");
}
