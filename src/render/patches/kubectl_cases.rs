//! Test support: cases whose expectations are `kubectl kustomize` output.
//!
//! Each case is a kustomization directory under `src/render/patches/testdata/<group>/<case>/` with
//! its inputs and `expected.yaml`, the output of `kubectl kustomize` (v5.5.0) on that directory.
//! Regenerate every expectation (needs kubectl) with:
//!
//! ```text
//! for d in src/render/patches/testdata/*/*/; do kubectl kustomize "$d" > "$d/expected.yaml"; done
//! ```

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::manifest::ResId;
use crate::manifest::yaml::{Limits, parse_documents};

/// One case directory.
pub(crate) struct Case {
    pub(crate) name: String,
    dir: PathBuf,
    /// `kustomization.yaml`, parsed.
    pub(crate) kustomization: Value,
}

impl Case {
    /// Every document of a file in the case directory.
    pub(crate) fn documents(&self, file: &str) -> Vec<Value> {
        let path = self.dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        parse_documents(&text, &path.display().to_string(), &Limits::DEFAULT)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The single document of a file.
    pub(crate) fn document(&self, file: &str) -> Value {
        let mut docs = self.documents(file);
        assert_eq!(docs.len(), 1, "{}/{file}: expected one document", self.name);
        docs.remove(0)
    }

    /// The path of the first `patches` entry.
    pub(crate) fn patch_path(&self) -> &str {
        self.kustomization["patches"][0]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no patch path", self.name))
    }
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/render/patches/testdata")
}

/// Runs `check` on every case of `group`, then fails listing every case that did not pass.
pub(crate) fn check_all(group: &str, check: impl Fn(&Case) -> Result<(), String>) {
    let root = testdata().join(group);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| entry.expect("readable testdata entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no cases under {}", root.display());
    let mut failures = Vec::new();
    for dir in dirs {
        let name = format!(
            "{group}/{}",
            dir.file_name().unwrap_or_default().to_string_lossy()
        );
        let kustomization = Case {
            name: name.clone(),
            dir: dir.clone(),
            kustomization: Value::Null,
        }
        .document("kustomization.yaml");
        let case = Case {
            name,
            dir,
            kustomization,
        };
        if let Err(message) = check(&case) {
            failures.push(format!("{}: {message}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) differ from kubectl:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Compares objects with the expected ones by identity (kustomize prints in its own order).
pub(crate) fn same_objects(actual: &[Value], expected: &[Value]) -> Result<(), String> {
    let key = |v: &Value| {
        ResId::of(v)
            .map(|id| id.to_string())
            .unwrap_or_else(|e| e.to_string())
    };
    let mut actual: Vec<&Value> = actual.iter().filter(|v| !v.is_null()).collect();
    let mut expected: Vec<&Value> = expected.iter().collect();
    actual.sort_by_key(|v| key(v));
    expected.sort_by_key(|v| key(v));
    if actual == expected {
        return Ok(());
    }
    let show = |vs: &[&Value]| vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n");
    Err(format!("got:\n{}\nexpected:\n{}", show(&actual), show(&expected)))
}
