//! Helm charts: kustomize v5.8.1's HelmChartInflationGenerator (`helmCharts`, `helmGlobals`, the
//! deprecated `helmChartInflationGenerator`, and the builtin kind `HelmChartInflationGenerator` that
//! the `generators:` code hands to [`generate_from_config`]), by running the `helm` binary.
//!
//! Off unless enabled ([`HelmSettings::enabled`]: `--enable-helm` on the command line, `helm.enabled`
//! in the daemon configuration), like kustomize's `--enable-helm`. Charts are read from the tree
//! being rendered (git objects or a directory), never pulled: a chart that is not in the repository
//! is an error saying that remote pulls are out of scope. For each chart the chart directory and the
//! values files are written into a private temporary directory, `helm template` runs there with
//! kustomize's exact argument list, empty `HELM_*` config/cache/data homes inside that directory, no
//! `--repo`, and a timeout; its output is counted against the render's input budget and parsed as
//! any manifest file.
//!
//! Paths and layout follow kustomize's plugin: `<chartHome>/<name>` with `chartHome` relative to the
//! kustomization (default `charts`), `<chartHome>/<name>-<version>/<name>` when both `version` and
//! `repo` are set; the values file defaults to the chart's `values.yaml`; `valuesInline` is merged
//! into it per `valuesMerge` (`override`, the default: inline wins; `merge`: the file wins;
//! `replace`: inline alone). Objects helm generated are marked so that the `namespace` transformer
//! leaves them alone, as kustomize's `config.kubernetes.io/helm-generated` annotation does.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::RenderError;
use super::load::{KustFile, Loader};
use super::resource::{ResMap, Resource};
use super::target::duplicate_error;
use crate::manifest::yaml::{Limits, parse_documents, parse_documents_yaml11};
use crate::source::{EntryKind, FileTree, TreePath};

/// kustomize's `types.HelmDefaultHome`.
pub const DEFAULT_CHART_HOME: &str = "charts";
/// How long one `helm` run may take unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Most bytes of helm's stderr quoted in an error.
const MAX_STDERR_SHOWN: usize = 4096;

/// Whether and how Helm charts are rendered: process-wide, set once by the command line or the
/// daemon configuration ([`set`]), read by every render ([`current`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmSettings {
    /// kustomize's `--enable-helm`.
    pub enabled: bool,
    /// kustomize's `--helm-command`: the helm executable (a name looked up on `PATH`, or a path).
    pub command: PathBuf,
    /// Longest one helm run may take; it is killed then.
    pub timeout: Duration,
    /// kustomize's `--helm-api-versions` (repeatable): `apiVersions` of charts that set none.
    pub api_versions: Vec<String>,
    /// kustomize's `--helm-kube-version`: `kubeVersion` of charts that set none.
    pub kube_version: String,
    /// kustomize's `--helm-debug`: `--debug` for every chart.
    pub debug: bool,
}

impl Default for HelmSettings {
    fn default() -> Self {
        HelmSettings {
            enabled: false,
            command: PathBuf::from("helm"),
            timeout: DEFAULT_TIMEOUT,
            api_versions: Vec::new(),
            kube_version: String::new(),
            debug: false,
        }
    }
}

static SETTINGS: RwLock<Option<HelmSettings>> = RwLock::new(None);

/// kustomize's `--helm-api-versions` as its charts see them. Each chart's plugin `Config` sets
/// its `ApiVersions` to the command line's slice (pflag's `StringArray`: capacity the next power
/// of two) and then unmarshals the chart over it; Go's JSON decoder reuses that array for a
/// chart's own `apiVersions`, so a chart's list overwrites the first elements every other chart
/// of the render shares, and a chart whose list fits in the capacity keeps a view of the array.
/// A kustomization's charts are all configured before any runs, so a chart sees the values the
/// later charts of its kustomization wrote (v5.8.1; `tests/render/helm-cli-flags`).
#[derive(Debug, Default)]
pub struct SharedApiVersions {
    array: Vec<String>,
}

/// What one configured chart's `ApiVersions` is.
#[derive(Clone, Debug, PartialEq)]
enum ApiVersionsView {
    /// Its own list, in a fresh array (or no list).
    Own(Option<Vec<String>>),
    /// The first `n` elements of the shared array.
    Shared(usize),
}

impl SharedApiVersions {
    /// kustomize's `Config` of a chart whose own list is `own`.
    fn configure(&mut self, cli: &[String], own: Option<&Vec<String>>) -> ApiVersionsView {
        if cli.is_empty() {
            return ApiVersionsView::Own(own.cloned());
        }
        if self.array.is_empty() {
            self.array = cli.to_vec();
            self.array.resize(cli.len().next_power_of_two(), String::new());
        }
        match own.filter(|o| !o.is_empty()) {
            None => ApiVersionsView::Shared(cli.len()),
            Some(own) => {
                for (slot, v) in self.array.iter_mut().zip(own) {
                    slot.clone_from(v);
                }
                if own.len() <= self.array.len() {
                    ApiVersionsView::Shared(own.len())
                } else {
                    ApiVersionsView::Own(Some(own.clone()))
                }
            }
        }
    }

    fn resolve(&self, view: ApiVersionsView) -> Option<Vec<String>> {
        match view {
            ApiVersionsView::Own(own) => own,
            ApiVersionsView::Shared(n) => Some(self.array[..n.min(self.array.len())].to_vec()),
        }
    }
}

/// Sets the process-wide Helm settings.
pub fn set(settings: HelmSettings) {
    let mut guard = SETTINGS.write().unwrap_or_else(|e| e.into_inner());
    *guard = Some(settings);
}

/// The process-wide Helm settings (disabled until [`set`]).
pub fn current() -> HelmSettings {
    let guard = SETTINGS.read().unwrap_or_else(|e| e.into_inner());
    guard.clone().unwrap_or_default()
}

/// Renders the kustomization in `dir` like [`super::render_with_limits`], with `settings` instead of
/// the process-wide ones (tests render cases with and without Helm side by side).
pub fn render_with(
    tree: &dyn FileTree,
    dir: &TreePath,
    limits: Limits,
    settings: &HelmSettings,
) -> Result<Vec<Value>, RenderError> {
    super::in_render_pool(|| {
        let loader = Loader::new(tree, limits).with_helm(settings.clone());
        super::target::build(&loader, dir)
    })?
}

/// [`render_with`], with the warnings of the render ([`super::render_with_warnings`]).
pub fn render_with_warnings(
    tree: &dyn FileTree,
    dir: &TreePath,
    limits: Limits,
    settings: &HelmSettings,
) -> (Result<Vec<Value>, RenderError>, Vec<super::RenderWarning>) {
    match super::in_render_pool(|| {
        let loader = Loader::new(tree, limits).with_helm(settings.clone());
        let result = super::target::build(&loader, dir);
        (result, loader.take_warnings())
    }) {
        Ok(done) => done,
        Err(e) => (Err(e), Vec::new()),
    }
}

/// What can go wrong with one chart.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    #[error(
        "Helm charts are rendered only when enabled: pass --enable-helm (daemon: `helm: {{enabled: true}}`), \
         as kustomize needs --enable-helm"
    )]
    NotEnabled,
    #[error("invalid chart configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Invalid(&'static str),
    #[error("valuesMerge must be one of [merge override replace], not {0:?}")]
    ValuesMerge(String),
    #[error(
        "no chart found at {path} and no repo specified for pull; put the chart there (the layout is \
         <chartHome>/<name>, chartHome defaulting to charts/)"
    )]
    ChartMissing { path: String },
    #[error(
        "no chart found at {path}; pulling charts from remote repositories ({repo}) is out of scope for \
         kgitops (renders never use the network): vendor the chart into the repository at {path} \
         (e.g. `helm pull --untar --untardir {untar_dir} {pull_args}`)"
    )]
    RemoteChart {
        path: String,
        repo: String,
        untar_dir: String,
        pull_args: String,
    },
    #[error("{what} {path:?} must be a path inside the repository, relative to the kustomization")]
    Absolute { what: &'static str, path: String },
    #[error(
        "cannot run the helm command {command:?} ({source}); install helm (v3 or v4) or name it with \
         --helm-command PATH (daemon: `helm.command`)"
    )]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("helm command {command:?}: {message}")]
    Version { command: String, message: String },
    #[error("`{command} {args}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        args: String,
        status: String,
        stderr: String,
    },
    #[error("`{command} {args}` did not finish within {timeout:?} and was killed")]
    Timeout {
        command: String,
        args: String,
        timeout: Duration,
    },
    #[error("helm output is {size} bytes, over the per-file limit of {limit} bytes")]
    OutputTooLarge { size: usize, limit: usize },
    #[error("temporary directory for helm: {0}")]
    TempDir(#[source] std::io::Error),
    #[error("values: {0}")]
    Values(String),
}

/// kustomize's `types.HelmGlobals`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmGlobals {
    #[serde(default)]
    pub chart_home: Option<String>,
    /// Accepted for compatibility; helm always runs with a private, empty config home here, since
    /// kgitops never pulls charts or reads repository indexes.
    #[serde(default)]
    pub config_home: Option<String>,
}

/// kustomize's `types.HelmChart`: every field it passes to `helm template`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmChart {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub release_name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub additional_values_files: Option<Vec<String>>,
    #[serde(default)]
    pub values_file: Option<String>,
    #[serde(default)]
    pub values_inline: Option<Map<String, Value>>,
    #[serde(default)]
    pub values_merge: Option<String>,
    #[serde(default, rename = "includeCRDs")]
    pub include_crds: Option<bool>,
    #[serde(default)]
    pub skip_hooks: Option<bool>,
    #[serde(default)]
    pub api_versions: Option<Vec<String>>,
    #[serde(default)]
    pub kube_version: Option<String>,
    #[serde(default)]
    pub name_template: Option<String>,
    #[serde(default)]
    pub skip_tests: Option<bool>,
    #[serde(default)]
    pub debug: Option<bool>,
    #[serde(default)]
    pub devel: Option<bool>,
}

/// kustomize's deprecated `types.HelmChartArgs` (`helmChartInflationGenerator` entries).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct HelmChartArgs {
    #[serde(default)]
    chart_name: Option<String>,
    #[serde(default)]
    chart_version: Option<String>,
    #[serde(default, rename = "chartRepoUrl")]
    chart_repo_url: Option<String>,
    #[serde(default)]
    chart_home: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // read for strictness only, as kustomize ignores it
    chart_repo_name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    helm_bin: Option<String>,
    #[serde(default)]
    helm_home: Option<String>,
    #[serde(default)]
    values: Option<String>,
    #[serde(default)]
    values_local: Option<Map<String, Value>>,
    #[serde(default)]
    values_merge: Option<String>,
    #[serde(default)]
    release_name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    release_namespace: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    extra_args: Option<Vec<String>>,
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

fn flag(b: Option<bool>) -> bool {
    b == Some(true)
}

impl HelmChart {
    /// The chart with the command line's `--helm-api-versions`, `--helm-kube-version` and
    /// `--helm-debug` where it sets nothing. kustomize's plugin `Config` sets them first and then
    /// unmarshals the chart over them; the chart reaches it marshalled with `omitempty`, so a
    /// chart's own non-empty value wins (despite kustomize's comment "CLI args takes precedence").
    fn with_cli_defaults(&self, settings: &HelmSettings) -> HelmChart {
        let mut chart = self.clone();
        if !settings.api_versions.is_empty() && self.api_versions.as_ref().is_none_or(Vec::is_empty) {
            chart.api_versions = Some(settings.api_versions.clone());
        }
        if !settings.kube_version.is_empty() && non_empty(&self.kube_version).is_none() {
            chart.kube_version = Some(settings.kube_version.clone());
        }
        if settings.debug {
            chart.debug = Some(true);
        }
        chart
    }

    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// kustomize's `HelmChart.AsHelmArgs`, with the chart home, values file and additional
    /// values files as they lie in the temporary directory.
    fn helm_args(&self, chart_home: &Path, values_file: &Path, additional: &[PathBuf]) -> Vec<String> {
        let mut args = vec!["template".to_string()];
        match non_empty(&self.release_name) {
            Some(release) => args.push(release.to_string()),
            None => args.push("--generate-name".to_string()),
        }
        if !self.name().is_empty() {
            args.push(chart_home.join(self.name()).display().to_string());
        }
        if let Some(ns) = non_empty(&self.namespace) {
            args.extend(["--namespace".to_string(), ns.to_string()]);
        }
        if let Some(t) = non_empty(&self.name_template) {
            args.extend(["--name-template".to_string(), t.to_string()]);
        }
        args.extend(["-f".to_string(), values_file.display().to_string()]);
        for f in additional {
            args.extend(["-f".to_string(), f.display().to_string()]);
        }
        for v in self.api_versions.iter().flatten() {
            args.extend(["--api-versions".to_string(), v.clone()]);
        }
        if let Some(v) = non_empty(&self.kube_version) {
            args.extend(["--kube-version".to_string(), v.to_string()]);
        }
        for (on, arg) in [
            (self.include_crds, "--include-crds"),
            (self.skip_tests, "--skip-tests"),
            (self.skip_hooks, "--no-hooks"),
            (self.debug, "--debug"),
            (self.devel, "--devel"),
        ] {
            if flag(on) {
                args.push(arg.to_string());
            }
        }
        args
    }
}

/// The charts of a kustomization with their globals, as kustomize's `FixKustomization` combines
/// `helmCharts`/`helmGlobals` with the deprecated `helmChartInflationGenerator`. The fields are
/// read from the kustomization file's document as kustomize reads it (sigs.k8s.io/yaml's
/// `YAMLToJSON`, YAML 1.1: `valuesInline: {enabled: yes}` is `true`), then as its JSON decoding
/// sees them.
fn charts_of(loader: &Loader<'_>, kf: &KustFile) -> Result<(HelmGlobals, Vec<HelmChart>), RenderError> {
    let text = loader.read_text(&kf.file)?;
    let doc = parse_documents_yaml11(&text, kf.file.as_str(), loader.limits())?
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    let invalid = |field: &str, e: serde_json::Error| RenderError::InvalidKustomization {
        file: kf.file.clone(),
        message: format!("{field}: {e}"),
    };
    let field = |name: &str| doc.get(name).filter(|v| !v.is_null()).cloned();
    let mut globals: Option<HelmGlobals> = field("helmGlobals")
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| invalid("helmGlobals", e))?;
    let mut charts: Vec<HelmChart> = field("helmCharts")
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| invalid("helmCharts", e))?
        .unwrap_or_default();
    let legacy: Vec<HelmChartArgs> = field("helmChartInflationGenerator")
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| invalid("helmChartInflationGenerator", e))?
        .unwrap_or_default();
    let mut legacy_globals = HelmGlobals::default();
    for old in legacy {
        // kustomize's SplitHelmParameters: the last non-empty chartHome/helmHome wins.
        if non_empty(&old.helm_home).is_some() {
            legacy_globals.config_home = old.helm_home.clone();
        }
        if non_empty(&old.chart_home).is_some() {
            legacy_globals.chart_home = old.chart_home.clone();
        }
        charts.push(HelmChart {
            name: old.chart_name,
            version: old.chart_version,
            repo: old.chart_repo_url,
            values_file: old.values,
            values_inline: old.values_local,
            values_merge: old.values_merge,
            release_name: old.release_name,
            ..HelmChart::default()
        });
    }
    if globals.is_none()
        && (non_empty(&legacy_globals.chart_home).is_some()
            || non_empty(&legacy_globals.config_home).is_some())
    {
        globals = Some(legacy_globals);
    }
    Ok((globals.unwrap_or_default(), charts))
}

/// Runs the charts of a kustomization (kustomize runs this generator after the ConfigMap and
/// Secret generators), adding their objects to `acc`. `root_namespace` is kustomize's
/// `helmRootNamespace`: the namespace of the nearest kustomization above that sets one, used when
/// neither the chart nor this kustomization names a namespace.
pub fn run(
    loader: &Loader<'_>,
    kf: &KustFile,
    root_namespace: Option<&str>,
    acc: &mut ResMap,
) -> Result<(), RenderError> {
    let has = |v: &Option<Vec<Value>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if !has(&kf.kust.helm_charts) && !has(&kf.kust.helm_chart_inflation_generator) {
        return Ok(());
    }
    let (globals, mut charts) = charts_of(loader, kf)?;
    // Every chart is configured before any runs (kustomize's runGenerators).
    let cli = loader.helm().api_versions;
    let views: Vec<ApiVersionsView> = {
        let mut shared = loader.helm_api_versions();
        charts
            .iter()
            .map(|c| shared.configure(&cli, c.api_versions.as_ref()))
            .collect()
    };
    for (chart, view) in charts.iter_mut().zip(views) {
        chart.api_versions = loader.helm_api_versions().resolve(view);
    }
    for mut chart in charts {
        // kustomize passes its namespace to helm (issue 5566), else the inherited one (6031).
        if non_empty(&chart.namespace).is_none() {
            chart.namespace = non_empty(&kf.kust.namespace)
                .or(root_namespace.filter(|ns| !ns.is_empty()))
                .map(str::to_string);
        }
        for res in inflate(loader, kf, &globals, &chart)? {
            acc.append(res).map_err(duplicate_error)?;
        }
    }
    Ok(())
}

/// The objects of one builtin `HelmChartInflationGenerator` config (`apiVersion: builtin`, the
/// `HelmGlobals` and `HelmChart` fields inline), for the `generators:` entries.
pub fn generate_from_config(
    loader: &Loader<'_>,
    kf: &KustFile,
    config: &Value,
) -> Result<Vec<Resource>, RenderError> {
    let mut fields = config.as_object().cloned().unwrap_or_default();
    for meta in ["apiVersion", "kind", "metadata"] {
        fields.remove(meta);
    }
    let mut globals = Map::new();
    for key in ["chartHome", "configHome"] {
        if let Some(v) = fields.remove(key) {
            globals.insert(key.to_string(), v);
        }
    }
    let config_error = |e: serde_json::Error| chart_error(kf, "", HelmError::Config(e.to_string()));
    let globals: HelmGlobals = serde_json::from_value(Value::Object(globals)).map_err(config_error)?;
    let chart: HelmChart = serde_json::from_value(Value::Object(fields)).map_err(config_error)?;
    inflate(loader, kf, &globals, &chart)
}

fn chart_error(kf: &KustFile, chart: &str, source: HelmError) -> RenderError {
    RenderError::Helm {
        file: kf.file.clone(),
        chart: chart.to_string(),
        source: Box::new(source),
    }
}

/// kustomize's plugin `Config` + `Generate` for one chart: the chart's objects, marked as
/// generated by helm.
pub fn inflate(
    loader: &Loader<'_>,
    kf: &KustFile,
    globals: &HelmGlobals,
    chart: &HelmChart,
) -> Result<Vec<Resource>, RenderError> {
    let name = chart.name().to_string();
    let fail = |e: HelmError| chart_error(kf, &name, e);
    let settings = loader.helm();
    let chart = &chart.with_cli_defaults(&settings);
    if !settings.enabled {
        return Err(fail(HelmError::NotEnabled));
    }
    if name.is_empty() {
        return Err(fail(HelmError::Invalid("chart name cannot be empty")));
    }
    let merge = match non_empty(&chart.values_merge) {
        None => ValuesMerge::Override,
        Some("override") => ValuesMerge::Override,
        Some("merge") => ValuesMerge::Merge,
        Some("replace") => ValuesMerge::Replace,
        Some(other) => return Err(fail(HelmError::ValuesMerge(other.to_string()))),
    };

    // kustomize's absChartHome, relative to the kustomization directory.
    let chart_home = non_empty(&globals.chart_home).unwrap_or(DEFAULT_CHART_HOME);
    if chart_home.starts_with('/') {
        return Err(fail(HelmError::Absolute {
            what: "chartHome",
            path: chart_home.to_string(),
        }));
    }
    let mut home_rel = chart_home.trim_end_matches('/').to_string();
    if let (Some(version), Some(_)) = (non_empty(&chart.version), non_empty(&chart.repo)) {
        home_rel = format!("{home_rel}/{name}-{version}");
    }
    let chart_rel = format!("{home_rel}/{name}");
    let chart_dir = kf
        .dir
        .join(&chart_rel)
        .map_err(|e| RenderError::from_path(&kf.file, "helm chart", &chart_rel, e))?;
    if loader.kind(&chart_dir)? != Some(EntryKind::Dir) {
        return Err(fail(match non_empty(&chart.repo) {
            None => HelmError::ChartMissing {
                path: chart_dir.to_string(),
            },
            Some(repo) => HelmError::RemoteChart {
                path: chart_dir.to_string(),
                repo: repo.to_string(),
                untar_dir: kf
                    .dir
                    .join(&home_rel)
                    .map(|p| p.to_string())
                    .unwrap_or(home_rel.clone()),
                pull_args: pull_args(chart),
            },
        }));
    }

    // The values file: the chart's values.yaml unless named, read under the load restrictions.
    let values_entry = match non_empty(&chart.values_file) {
        Some(f) if f.starts_with('/') => {
            return Err(fail(HelmError::Absolute {
                what: "valuesFile",
                path: f.to_string(),
            }));
        }
        Some(f) => f.to_string(),
        None => format!("{chart_rel}/values.yaml"),
    };
    let values_path = loader.resolve_file(kf, "valuesFile", &values_entry)?;
    let mut additional = Vec::new();
    for f in chart.additional_values_files.iter().flatten() {
        if f.starts_with('/') {
            return Err(fail(HelmError::Absolute {
                what: "additionalValuesFiles",
                path: f.clone(),
            }));
        }
        additional.push(loader.resolve_file(kf, "additionalValuesFile", f)?);
    }

    let tmp = TempDir::new().map_err(|e| fail(HelmError::TempDir(e)))?;
    let io = |e: std::io::Error| fail(HelmError::TempDir(e));
    let tmp_home = tmp.path().join("chart-home").join(&home_rel);
    copy_dir(loader, kf, &chart_rel, &chart_dir, &tmp_home.join(&name))?;

    let values_bytes = loader.read_bytes_for_disk(&values_path)?;
    let values_bytes = match chart.values_inline.as_ref().filter(|m| !m.is_empty()) {
        None => values_bytes,
        Some(inline) => {
            let merged = match merge {
                ValuesMerge::Replace => Value::Object(inline.clone()),
                ValuesMerge::Override | ValuesMerge::Merge => {
                    let text = String::from_utf8(values_bytes).map_err(|e| RenderError::NotText {
                        file: values_path.clone(),
                        message: e.to_string(),
                    })?;
                    let file = parse_documents(&text, values_path.as_str(), loader.limits())?
                        .into_iter()
                        .next()
                        .unwrap_or(Value::Object(Map::new()));
                    let inline = Value::Object(inline.clone());
                    if merge == ValuesMerge::Override {
                        merge_values(file, inline)
                    } else {
                        merge_values(inline, file)
                    }
                }
            };
            // JSON is YAML: helm reads it as the values file kustomize writes.
            serde_json::to_vec(&merged).map_err(|e| fail(HelmError::Values(e.to_string())))?
        }
    };
    let values_file = tmp.path().join(format!("{name}-kustomize-values.yaml"));
    std::fs::write(&values_file, values_bytes).map_err(io)?;
    let mut additional_files = Vec::new();
    for (i, path) in additional.iter().enumerate() {
        let dir = tmp.path().join("values").join(i.to_string());
        std::fs::create_dir_all(&dir).map_err(io)?;
        let file = dir.join(path.file_name());
        std::fs::write(&file, loader.read_bytes_for_disk(path)?).map_err(io)?;
        additional_files.push(file);
    }

    let runner = Runner {
        settings: &settings,
        tmp: tmp.path(),
    };
    runner.check_version().map_err(&fail)?;
    let args = chart.helm_args(
        &tmp.path().join("chart-home").join(&home_rel),
        &values_file,
        &additional_files,
    );
    let stdout = runner.run(&args, loader.limits().max_bytes).map_err(&fail)?;
    drop(tmp);

    // The output counts as a file read by this render, named after the chart for messages.
    loader.account(&chart_dir, stdout.len())?;
    let text = String::from_utf8(stdout).map_err(|e| RenderError::NotText {
        file: chart_dir.clone(),
        message: e.to_string(),
    })?;
    let objects = match loader.parse_objects(&chart_dir, &text) {
        Ok(objects) => objects,
        // kustomize retries without what precedes the first `---`: helm may print messages first.
        Err(first) => match text.find("\n---") {
            Some(at) => loader
                .parse_objects(&chart_dir, &text[at + 1..])
                .map_err(|_| first)?,
            None => return Err(first),
        },
    };
    Ok(objects
        .into_iter()
        .map(|obj| {
            let mut res = Resource::read(obj, kf.file.clone());
            res.helm_generated = true;
            res
        })
        .collect())
}

/// kustomize's `pullCommand`, shown in the error for a chart that is not vendored.
fn pull_args(chart: &HelmChart) -> String {
    let repo = chart.repo.as_deref().unwrap_or("");
    let mut args = if repo.starts_with("oci://") {
        format!("{}/{}", repo.trim_end_matches('/'), chart.name())
    } else {
        format!("--repo {repo} {}", chart.name())
    };
    if let Some(v) = non_empty(&chart.version) {
        args.push_str(&format!(" --version {v}"));
    }
    args
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ValuesMerge {
    Override,
    Merge,
    Replace,
}

/// kyaml's `merge2.Merge(src, dest)` on values (no schema, so lists are replaced): maps merge
/// recursively, `src` wins for scalars and lists, a `null` in `src` removes the key.
fn merge_values(dest: Value, src: Value) -> Value {
    match (dest, src) {
        (Value::Object(mut d), Value::Object(s)) => {
            for (k, v) in s {
                if v.is_null() {
                    d.remove(&k);
                    continue;
                }
                let merged = match d.remove(&k) {
                    Some(old) if !old.is_null() => merge_values(old, v),
                    _ => v,
                };
                d.insert(k, merged);
            }
            Value::Object(d)
        }
        (_, s) => s,
    }
}

/// Copies the chart directory `dir` (`rel` below the kustomization) out of the tree into `to`.
/// Every file goes through the loader: the load restrictions (a symlink may not leave the
/// kustomization directory) and the render's input budget apply to charts too.
fn copy_dir(
    loader: &Loader<'_>,
    kf: &KustFile,
    rel: &str,
    dir: &TreePath,
    to: &Path,
) -> Result<(), RenderError> {
    let io = |e: std::io::Error| chart_error(kf, dir.file_name(), HelmError::TempDir(e));
    std::fs::create_dir_all(to).map_err(io)?;
    for name in loader.list(dir)? {
        let child_rel = format!("{rel}/{name}");
        let child = dir
            .join(&name)
            .map_err(|e| RenderError::from_path(&kf.file, "helm chart", &child_rel, e))?;
        match loader.kind(&child)? {
            Some(EntryKind::Dir) => copy_dir(loader, kf, &child_rel, &child, &to.join(&name))?,
            Some(EntryKind::File) => {
                let path = loader.resolve_file(kf, "helm chart file", &child_rel)?;
                std::fs::write(to.join(&name), loader.read_bytes_for_disk(&path)?).map_err(io)?;
            }
            None => {}
        }
    }
    Ok(())
}

/// A private temporary directory (mode 0700), removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        loop {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("kgitops-helm-{}-{n}-{nanos:08x}", std::process::id()));
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            match builder.create(&path) {
                Ok(()) => return Ok(TempDir(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory in the temporary directory is harmless.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the helm command for one chart, inside its temporary directory.
struct Runner<'a> {
    settings: &'a HelmSettings,
    tmp: &'a Path,
}

impl Runner<'_> {
    fn command_name(&self) -> String {
        self.settings.command.display().to_string()
    }

    /// kustomize's `checkHelmVersion`: `helm version --short` must say v3 or v4.
    fn check_version(&self) -> Result<(), HelmError> {
        let out = self.run(&["version".to_string(), "--short".to_string()], 64 * 1024)?;
        let text = String::from_utf8_lossy(&out);
        let version_error = |message: String| HelmError::Version {
            command: self.command_name(),
            message,
        };
        let found = regex::Regex::new(r"v?\d+(\.\d+)+")
            .ok()
            .and_then(|re| {
                re.find(&text)
                    .map(|m| m.as_str().trim_start_matches('v').to_string())
            })
            .ok_or_else(|| version_error(format!("cannot find version string in {:?}", text.trim())))?;
        match found.split('.').next() {
            Some("3") | Some("4") => Ok(()),
            _ => Err(version_error(format!(
                "kustomize's helm support requires helm V3 or V4 but got v{found}"
            ))),
        }
    }

    /// Runs helm with `args`; its stdout (at most `max_out` bytes), or why it failed. The
    /// environment keeps the process's, less every `HELM_*` variable, plus empty config, cache and
    /// data homes in the temporary directory (kustomize's variables), so no repository, registry
    /// login or plugin of the machine is used.
    fn run(&self, args: &[String], max_out: usize) -> Result<Vec<u8>, HelmError> {
        let config_home = self.tmp.join("helm");
        let mut cmd = Command::new(&self.settings.command);
        cmd.args(args)
            .current_dir(self.tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("HELM_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("HELM_CONFIG_HOME", &config_home)
            .env("HELM_CACHE_HOME", config_home.join(".cache"))
            .env("HELM_DATA_HOME", config_home.join(".data"));
        let mut child = cmd.spawn().map_err(|source| HelmError::Spawn {
            command: self.command_name(),
            source,
        })?;
        let stdout = child.stdout.take().map(|s| read_capped(s, max_out));
        let stderr = child.stderr.take().map(|s| read_capped(s, MAX_STDERR_SHOWN));
        let started = Instant::now();
        let shown_args = args.join(" ");
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= self.settings.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HelmError::Timeout {
                        command: self.command_name(),
                        args: shown_args,
                        timeout: self.settings.timeout,
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(source) => {
                    return Err(HelmError::Spawn {
                        command: self.command_name(),
                        source,
                    });
                }
            }
        };
        let (out, out_size) = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
        let (err, _) = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
        if !status.success() {
            // Only helm's own message: the values (which may hold secrets) and the rendered
            // output are never quoted.
            return Err(HelmError::Failed {
                command: self.command_name(),
                args: shown_args,
                status: status.to_string(),
                stderr: String::from_utf8_lossy(&err).trim().to_string(),
            });
        }
        if out_size > max_out {
            return Err(HelmError::OutputTooLarge {
                size: out_size,
                limit: max_out,
            });
        }
        Ok(out)
    }
}

/// Reads a child's stream on a thread: at most `cap` bytes kept, the rest drained (so the child
/// never blocks on a full pipe), with the total size.
fn read_capped(
    mut stream: impl Read + Send + 'static,
    cap: usize,
) -> std::thread::JoinHandle<(Vec<u8>, usize)> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut total = 0usize;
        let mut buf = [0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_add(1).saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                    total = total.saturating_add(n);
                }
            }
        }
        (kept, total)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::memtree::MemTree;
    use serde_json::json;

    fn render_mem(files: &[(&str, &str)], settings: &HelmSettings) -> Result<Vec<Value>, RenderError> {
        let tree = MemTree::new(files);
        render_with(&tree, &TreePath::new("k").unwrap(), Limits::DEFAULT, settings)
    }

    #[test]
    fn values_merge_follows_merge2() {
        let file = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x", "e": 1});
        let inline = json!({"a": {"c": [3], "f": true}, "d": null});
        assert_eq!(
            merge_values(file.clone(), inline.clone()),
            json!({"a": {"b": 1, "c": [3], "f": true}, "e": 1})
        );
        // `merge`: the file wins.
        assert_eq!(
            merge_values(inline, file),
            json!({"a": {"b": 1, "c": [1, 2], "f": true}, "d": "x", "e": 1})
        );
    }

    #[test]
    fn charts_share_the_command_line_api_versions_array_as_in_kustomize() {
        let cli = vec!["e/v1".to_string(), "m/v1".to_string(), "x/v1".to_string()];
        let mut shared = SharedApiVersions::default();
        let none = shared.configure(&cli, None);
        let short = shared.configure(&cli, Some(&vec!["o/v2".into()]));
        let long: Vec<String> = (0..5).map(|i| format!("l/v{i}")).collect();
        let long_view = shared.configure(&cli, Some(&long));
        // The array has capacity 4: the 5-element list is a fresh copy, after overwriting it.
        assert_eq!(
            shared.resolve(none),
            Some(vec!["l/v0".into(), "l/v1".into(), "l/v2".into()])
        );
        assert_eq!(shared.resolve(short), Some(vec!["l/v0".into()]));
        assert_eq!(shared.resolve(long_view), Some(long));
        // Without the flag every chart keeps its own list.
        let mut shared = SharedApiVersions::default();
        let own = shared.configure(&[], Some(&vec!["o/v2".into()]));
        assert_eq!(shared.resolve(own), Some(vec!["o/v2".to_string()]));
    }

    #[test]
    fn command_line_values_apply_where_the_chart_sets_none() {
        let settings = HelmSettings {
            api_versions: vec!["x/v1".into()],
            kube_version: "1.31.4".into(),
            debug: true,
            ..HelmSettings::default()
        };
        let bare = HelmChart::default().with_cli_defaults(&settings);
        assert_eq!(bare.api_versions, Some(vec!["x/v1".to_string()]));
        assert_eq!(bare.kube_version.as_deref(), Some("1.31.4"));
        assert_eq!(bare.debug, Some(true));
        let own = HelmChart {
            api_versions: Some(vec!["own/v2".into()]),
            kube_version: Some("1.29.3".into()),
            ..HelmChart::default()
        };
        let own = own.with_cli_defaults(&settings);
        assert_eq!(own.api_versions, Some(vec!["own/v2".to_string()]));
        assert_eq!(own.kube_version.as_deref(), Some("1.29.3"));
        let args = own.helm_args(Path::new("/h"), Path::new("/v.yaml"), &[]);
        assert!(args.ends_with(&["--debug".to_string()]), "{args:?}");
    }

    #[test]
    fn args_are_kustomizes() {
        let chart = HelmChart {
            name: Some("c".into()),
            release_name: None,
            namespace: Some("ns".into()),
            name_template: Some("t".into()),
            api_versions: Some(vec!["a/v1".into(), "b/v2".into()]),
            kube_version: Some("1.30".into()),
            include_crds: Some(true),
            skip_tests: Some(true),
            skip_hooks: Some(true),
            ..HelmChart::default()
        };
        let args = chart.helm_args(Path::new("/h"), Path::new("/v.yaml"), &[PathBuf::from("/x.yaml")]);
        assert_eq!(
            args.join(" "),
            "template --generate-name /h/c --namespace ns --name-template t -f /v.yaml -f /x.yaml \
             --api-versions a/v1 --api-versions b/v2 --kube-version 1.30 --include-crds --skip-tests --no-hooks"
        );
    }

    #[test]
    fn charts_are_off_by_default() {
        let files = [
            ("k/kustomization.yaml", "helmCharts:\n- name: c\n"),
            ("k/charts/c/Chart.yaml", "name: c\n"),
        ];
        let err = render_mem(&files, &HelmSettings::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("k/kustomization.yaml: helmCharts \"c\""), "{err}");
        assert!(err.contains("--enable-helm"), "{err}");
    }

    #[test]
    fn missing_helm_names_the_flag() {
        let files = [
            ("k/kustomization.yaml", "helmCharts:\n- name: c\n"),
            ("k/charts/c/Chart.yaml", "name: c\n"),
            ("k/charts/c/values.yaml", "a: 1\n"),
        ];
        let settings = HelmSettings {
            enabled: true,
            command: PathBuf::from("/nonexistent/helm"),
            timeout: DEFAULT_TIMEOUT,
            ..HelmSettings::default()
        };
        let err = render_mem(&files, &settings).unwrap_err().to_string();
        assert!(
            err.contains("cannot run the helm command \"/nonexistent/helm\""),
            "{err}"
        );
        assert!(err.contains("--helm-command"), "{err}");
    }

    #[test]
    fn remote_charts_are_out_of_scope() {
        let files = [(
            "k/kustomization.yaml",
            "helmCharts:\n- name: c\n  repo: https://charts.example\n  version: 1.0.0\n",
        )];
        let settings = HelmSettings {
            enabled: true,
            ..HelmSettings::default()
        };
        let err = render_mem(&files, &settings).unwrap_err().to_string();
        assert!(err.contains("no chart found at k/charts/c-1.0.0/c"), "{err}");
        assert!(err.contains("out of scope"), "{err}");
    }

    /// A stand-in helm (a shell script) in a fresh directory: `version` says v4, `template` prints
    /// `body` with `ARGS` replaced by its arguments.
    fn fake_helm(tag: &str, body: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kgitops-helm-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("helm");
        let text = format!(
            "#!/bin/sh\nif [ \"$1\" = version ]; then echo v4.3.2; exit 0; fi\ncat <<EOF\n{}\nEOF\n",
            body.replace("ARGS", "$*")
        );
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        script
    }

    #[test]
    fn helm_objects_keep_their_namespace_and_output_counts_as_input() {
        let helm = fake_helm(
            "ns",
            "---\n# Source: c/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: from-helm\ndata:\n  args: \"ARGS\"",
        );
        let files = [
            (
                "k/kustomization.yaml",
                "namespace: ns\nnamePrefix: p-\nhelmCharts:\n- name: c\n  releaseName: r\n  includeCRDs: true\n",
            ),
            ("k/charts/c/Chart.yaml", "name: c\n"),
            ("k/charts/c/values.yaml", "a: 1\n"),
        ];
        let settings = HelmSettings {
            enabled: true,
            command: helm.clone(),
            timeout: DEFAULT_TIMEOUT,
            ..HelmSettings::default()
        };
        let out = render_mem(&files, &settings).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["metadata"]["namespace"], "from-helm");
        assert_eq!(out[0]["metadata"]["name"], "p-cm");
        let args = out[0]["data"]["args"].as_str().unwrap();
        assert!(
            args.starts_with("template r /") && args.contains("/chart-home/charts/c --namespace ns -f /")
        );
        assert!(
            args.ends_with("/c-kustomize-values.yaml --include-crds"),
            "{args}"
        );

        // The output is limited like a file.
        let tree = MemTree::new(&files);
        let small = Limits {
            max_bytes: 120,
            ..Limits::DEFAULT
        };
        let err = render_with(&tree, &TreePath::new("k").unwrap(), small, &settings)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("k/kustomization.yaml: helmCharts \"c\": helm output is")
                && err.contains("over the per-file limit of 120 bytes"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(helm.parent().unwrap());
    }

    #[test]
    fn slow_helm_is_killed() {
        let dir = std::env::temp_dir().join(format!("kgitops-helm-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("helm");
        std::fs::write(&script, "#!/bin/sh\nsleep 5\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let settings = HelmSettings {
            enabled: true,
            command: script,
            timeout: Duration::from_millis(200),
            ..HelmSettings::default()
        };
        let tmp = TempDir::new().unwrap();
        let runner = Runner {
            settings: &settings,
            tmp: tmp.path(),
        };
        let err = runner
            .run(&["version".to_string()], 1024)
            .unwrap_err()
            .to_string();
        assert!(err.contains("did not finish within"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
