//! The Kustomize engine: renders a kustomization from a [`crate::source::FileTree`] into objects,
//! with the semantics and output of kustomize v5 (`kubectl kustomize`).
//!
//! Pure: no tokio, no kube, no file system but the tree it is given.
//!
//! The pipeline follows kustomize's `KustTarget` step by step, so that output matches it object for
//! object and in order:
//!
//! 1. [`load`]: find and parse the kustomization file ([`kustomization`]), resolve what it names
//!    under kustomize's load restrictions;
//! 2. [`target`]: accumulate `resources` (files, nested kustomizations), run the generators
//!    ([`generators`]), apply `components`, then the transformers ([`transforms`]) in kustomize's
//!    order: patches, namespace, prefix/suffix, labels, annotations, JSON 6902 patches, replicas,
//!    images, replacements;
//!    then the built-in plugin configs of `generators`/`transformers`/`validators` ([`builtins`]);
//! 3. at the top only: content-hash suffixes for generated objects, name references updated to the
//!    final names, `local-config` objects dropped, output [`order`].

pub mod builtins;
pub mod cache;
pub mod error;
pub mod generators;
pub mod helm;
pub mod kustomization;
pub mod load;
pub mod order;
pub mod patches;
pub mod replacements;
pub mod resource;
pub mod scope;
pub mod selector;
pub mod sops;
pub mod target;
pub mod transforms;
pub mod vars;
pub mod warnings;

#[cfg(test)]
pub(crate) mod memtree;

pub use cache::ParseCache;
pub use error::RenderError;
pub use warnings::RenderWarning;

use serde_json::Value;

use crate::manifest::yaml::Limits;
use crate::source::{FileTree, TreePath};

/// Renders the overlay of cluster `cluster` (`clusters/<cluster>`, the platform repository's
/// layout) of `tree`; a missing overlay is an error naming the tree.
pub fn render_cluster(tree: &dyn FileTree, cluster: &str) -> Result<Vec<Value>, RenderError> {
    let dir = crate::source::layout::cluster_dir(cluster).map_err(RenderError::ClusterName)?;
    if tree.kind(&dir)? != Some(crate::source::EntryKind::Dir) {
        return Err(RenderError::NoClusterOverlay {
            dir,
            tree: tree.describe(),
        });
    }
    render(tree, &dir)
}

/// Renders the kustomization in directory `dir` of `tree`: the objects `kubectl kustomize` would
/// print, in its order.
pub fn render(tree: &dyn FileTree, dir: &TreePath) -> Result<Vec<Value>, RenderError> {
    render_with_limits(tree, dir, Limits::DEFAULT)
}

/// Stack of the threads a render runs on. Parsing and walking documents recurse once per nesting
/// level; with the YAML depth limit (256 levels) that needs more than a tokio worker or a test
/// thread has (2 MiB). The memory is only reserved, and used only as deep as documents go.
pub const RENDER_STACK_SIZE: usize = 64 * 1024 * 1024;

/// The renderer's thread pool (one thread per core, with [`RENDER_STACK_SIZE`]), started by the
/// first render and kept: a small render takes about a millisecond, as long as starting threads.
fn pool() -> Result<&'static rayon::ThreadPool, RenderError> {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    if let Some(pool) = POOL.get() {
        return Ok(pool);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("kgitops-render-{i}"))
        .stack_size(RENDER_STACK_SIZE)
        .build()
        .map_err(|e| RenderError::Thread(e.to_string()))?;
    // Two first renders at once may both build a pool; one is kept, the other dropped.
    Ok(POOL.get_or_init(|| pool))
}

/// Runs `work` on the renderer's thread pool: for callers that render many trees at once (the
/// fleet diff renders every cluster at two revisions), so that their parallel loops share the
/// render threads and their stacks.
pub fn in_render_pool<R: Send>(work: impl FnOnce() -> R + Send) -> Result<R, RenderError> {
    Ok(pool()?.install(work))
}

/// [`render`] with explicit YAML limits for every file read.
///
/// Renders run on the renderer's thread pool: files are parsed and objects transformed in
/// parallel where kustomize's semantics allow it (each object on its own; results and errors in
/// the order a sequential build gives them).
pub fn render_with_limits(
    tree: &dyn FileTree,
    dir: &TreePath,
    limits: Limits,
) -> Result<Vec<Value>, RenderError> {
    pool()?.install(|| {
        let loader = load::Loader::new(tree, limits);
        target::build(&loader, dir)
    })
}

/// [`render_with_limits`] with the warnings kustomize prints on stderr while rendering, in its
/// order; those found before a failure are returned with it.
pub fn render_with_warnings(
    tree: &dyn FileTree,
    dir: &TreePath,
    limits: Limits,
) -> (Result<Vec<Value>, RenderError>, Vec<RenderWarning>) {
    match pool() {
        Err(e) => (Err(e), Vec::new()),
        Ok(pool) => pool.install(|| {
            let loader = load::Loader::new(tree, limits);
            let result = target::build(&loader, dir);
            (result, loader.take_warnings())
        }),
    }
}

/// [`render`], taking parsed files from `cache` and adding those it parses: for commands that
/// render several overlays sharing files (`validate` of every cluster).
pub fn render_cached(
    tree: &dyn FileTree,
    dir: &TreePath,
    cache: &ParseCache,
) -> Result<Vec<Value>, RenderError> {
    pool()?.install(|| {
        let loader = load::Loader::new(tree, Limits::DEFAULT).with_cache(cache);
        target::build(&loader, dir)
    })
}
