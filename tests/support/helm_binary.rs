//! The helm binary the Helm tests run: the one `tests/tools/build-helm` builds (pinned in
//! tests/tools/helm/go.mod, built by scripts/test), in `KGITOPS_TOOLS_CACHE`, else target/tools.

use std::path::{Path, PathBuf};

/// Its path, or why it is missing (the test then fails with that message).
pub fn helm_binary() -> Result<PathBuf, String> {
    let cache = std::env::var_os("KGITOPS_TOOLS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools"));
    let helm = cache.join("bin/helm");
    if helm.is_file() {
        Ok(helm)
    } else {
        Err(format!(
            "{} is missing: run tests/tools/build-helm (scripts/test does) for the Helm tests",
            helm.display()
        ))
    }
}
