//! Conformance of the YAML front and back end with `kubectl kustomize`, byte for byte.
//!
//! Each directory under `tests/yaml_emit/` is a kustomization over one `input.yaml` (no
//! transformers, so kustomize only reads and prints it). `expected.yaml` is what
//! `kubectl kustomize` printed for it; `expected.error` means kustomize refused the input, and
//! kgitops must refuse it too. Regenerate the expectations with `tests/yaml_emit/regenerate`
//! (needs kubectl); the tests themselves do not run kubectl.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kgitops::manifest::yaml::{Limits, parse_documents, to_yaml_stream};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/yaml_emit");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The first differing line of two texts, escaped so invisible characters show.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (
        want.split_inclusive('\n').collect(),
        got.split_inclusive('\n').collect(),
    );
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (
            w.get(i).copied().unwrap_or("<end>"),
            g.get(i).copied().unwrap_or("<end>"),
        );
        if a != b {
            return format!("line {}:\n  kubectl: {a:?}\n  kgitops: {b:?}", i + 1);
        }
    }
    "identical".to_string()
}

#[test]
fn fixtures_print_as_kubectl_kustomize_prints_them() {
    let mut failures = String::new();
    let (mut printed, mut refused) = (0, 0);
    for dir in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let input_path = dir.join("input.yaml");
        let result = parse_documents(
            &read(&input_path),
            &input_path.display().to_string(),
            &Limits::DEFAULT,
        );
        if dir.join("expected.yaml").exists() {
            printed += 1;
            let want = read(&dir.join("expected.yaml"));
            match result {
                Ok(docs) => {
                    let got = to_yaml_stream(&docs);
                    if got != want {
                        let _ = writeln!(failures, "{name}: {}", first_difference(&want, &got));
                    }
                }
                Err(e) => {
                    let _ = writeln!(failures, "{name}: kubectl prints it, kgitops refuses it: {e}");
                }
            }
        } else if dir.join("expected.error").exists() {
            refused += 1;
            match result {
                Ok(docs) => {
                    let _ = writeln!(
                        failures,
                        "{name}: kubectl refuses it ({}), kgitops prints:\n{}",
                        read(&dir.join("expected.error")).trim(),
                        to_yaml_stream(&docs)
                    );
                }
                Err(e) => assert!(
                    e.to_string().starts_with(&input_path.display().to_string()),
                    "{name}: error does not name the file: {e}"
                ),
            }
        } else {
            let _ = writeln!(
                failures,
                "{name}: no expected.yaml or expected.error (run the regenerate script)"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "differences from kubectl kustomize:\n{failures}"
    );
    assert!(
        printed >= 7 && refused >= 10,
        "fixtures went missing: {printed} printed, {refused} refused"
    );
}

/// kustomize reads its own output (literal blocks with indentation indicators, folded quoted
/// strings, `? ` keys): `reread.yaml` is what it prints for `expected.yaml` as input when that
/// differs, `reread.error` when it refuses it.
#[test]
fn kubectl_output_reads_back_as_kubectl_reads_it() {
    let mut failures = String::new();
    let mut compared = 0;
    for dir in cases() {
        let path = dir.join("expected.yaml");
        if !path.exists() {
            continue;
        }
        let text = read(&path);
        let result = parse_documents(&text, &path.display().to_string(), &Limits::DEFAULT);
        // Known divergence: raw NEL/LS/PS are line breaks to kustomize's YAML 1.1 and text to
        // YAML 1.2; kgitops refuses them rather than read them differently.
        if text.contains(['\u{85}', '\u{2028}', '\u{2029}']) {
            match result {
                Err(e) if e.to_string().contains("raw U+") => {}
                other => {
                    let _ = writeln!(
                        failures,
                        "{}: raw line separators not refused: {other:?}",
                        path.display()
                    );
                }
            }
            continue;
        }
        compared += 1;
        let want = if dir.join("reread.error").exists() {
            None
        } else if dir.join("reread.yaml").exists() {
            Some(read(&dir.join("reread.yaml")))
        } else {
            Some(text.clone())
        };
        match (result, want) {
            (Ok(docs), Some(want)) => {
                let got = to_yaml_stream(&docs);
                if got != want {
                    let _ = writeln!(failures, "{}: {}", path.display(), first_difference(&want, &got));
                }
            }
            (Err(_), None) => {}
            (Ok(_), None) => {
                let _ = writeln!(
                    failures,
                    "{}: kubectl refuses to read it back, kgitops reads it",
                    path.display()
                );
            }
            (Err(e), Some(_)) => {
                let _ = writeln!(failures, "{e}");
            }
        }
    }
    assert!(failures.is_empty(), "reading kubectl's output back:\n{failures}");
    assert!(compared >= 5, "fixtures went missing");
}
