//! Installs CustomResourceDefinitions (the Strimzi CRDs) into the test control plane.
//!
//! Server-side apply, not create or client-side apply: the Kafka CRD is ~480 KB, over the 256 KB limit
//! of the `last-applied-configuration` annotation that client-side apply would write.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};

use super::ControlPlane;

/// Field manager of the harness' writes, distinct from `kgitops` so tests can tell them apart.
const FIELD_MANAGER: &str = "kgitops-test-harness";
/// How long a CRD may take to become Established (normally well under a second).
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// One CRD document read from a file.
struct Crd {
    file: PathBuf,
    name: String,
    object: serde_json::Value,
}

/// Applies every CRD under `path` (a directory of `*.yaml`/`*.yml` files, or one file) and waits until
/// each is Established. Runs on a runtime of its own so it can be called from inside a test's runtime.
pub(super) fn install(control_plane: &ControlPlane, path: &Path) -> Result<(), String> {
    let crds = load(path)?;
    let kubeconfig = control_plane.kubeconfig().to_path_buf();
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| format!("tokio runtime: {err}"))?;
                runtime.block_on(apply_and_wait(&kubeconfig, crds))
            })
            .join()
            .unwrap_or_else(|_| Err("installing the CRDs panicked".to_string()))
    })
}

async fn apply_and_wait(kubeconfig: &Path, crds: Vec<Crd>) -> Result<(), String> {
    let client = super::client_for(kubeconfig).await?;
    let api: Api<CustomResourceDefinition> = Api::all(client);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for crd in &crds {
        api.patch(&crd.name, &params, &Patch::Apply(&crd.object))
            .await
            .map_err(|err| {
                format!(
                    "{}: server-side apply of CRD {} failed: {err}",
                    crd.file.display(),
                    crd.name
                )
            })?;
    }
    for crd in &crds {
        let established = await_condition(api.clone(), &crd.name, conditions::is_crd_established());
        match tokio::time::timeout(ESTABLISH_TIMEOUT, established).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(format!("CRD {}: waiting for Established failed: {err}", crd.name)),
            Err(_) => {
                return Err(format!(
                    "CRD {} ({}) not Established after {} s",
                    crd.name,
                    crd.file.display(),
                    ESTABLISH_TIMEOUT.as_secs()
                ));
            }
        }
    }
    Ok(())
}

/// Reads the CRDs under `path`: the CustomResourceDefinition documents of its YAML files. Other
/// documents are skipped, so that a vendored release directory (CRDs next to RBAC, the operator
/// Deployment and kafka-versions.yaml) can be given as it is.
fn load(path: &Path) -> Result<Vec<Crd>, String> {
    let hint = "the Strimzi CRDs are read from the vendored release under infrastructure/strimzi/ \
                (scripts/vendor-strimzi); set KGITOPS_TEST_CRDS to another directory or file of CRDs";
    let metadata = std::fs::metadata(path).map_err(|err| format!("{}: {err} ({hint})", path.display()))?;
    let files = if metadata.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|err| format!("{}: {err}", path.display()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|file| file.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut crds = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|err| format!("{}: {err}", file.display()))?;
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(&text).map_err(|err| format!("{}: {err}", file.display()))?;
        for object in documents.into_iter().filter(|doc| !doc.is_null()) {
            if object["kind"].as_str() != Some("CustomResourceDefinition") {
                continue;
            }
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if name.is_empty() {
                return Err(format!(
                    "{}: a CustomResourceDefinition without metadata.name",
                    file.display()
                ));
            }
            crds.push(Crd {
                file: file.clone(),
                name,
                object,
            });
        }
    }
    if crds.is_empty() {
        return Err(format!(
            "{}: no CustomResourceDefinition found ({hint})",
            path.display()
        ));
    }
    Ok(crds)
}
