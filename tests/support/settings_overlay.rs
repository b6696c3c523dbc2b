//! The smallest platform a daemon test needs: `clusters/dev` with one ConfigMap `settings` whose
//! `a` the test changes from commit to commit (verify.rs, commit_status.rs).

use super::gitserver::WorkRepo;

/// Writes `clusters/dev`: namespace `ns`, ConfigMap `settings` with `a: "<a>"`.
pub fn write_platform(work: &WorkRepo, ns: &str, a: &str) {
    work.write(
        "clusters/dev/kustomization.yaml",
        &format!("namespace: {ns}\nresources:\n  - settings.yaml\n"),
    )
    .write(
        "clusters/dev/settings.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"{a}\"\n"),
    );
}
