//! Reading kustomizations and the files they name from a [`FileTree`], with kustomize's rules:
//! the kustomization file lookup, load restrictions (files only in or below the kustomization
//! directory, directories anywhere in the tree), cycle detection between kustomizations, and
//! manifest files split into objects (multi-document, `List` kinds inlined, empty documents dropped).

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde_json::Value;

use super::cache::ParseCache;
use super::error::RenderError;
use super::kustomization::{FILE_NAMES, KustKind, Kustomization};
use crate::manifest::ResId;
use crate::manifest::yaml::{
    Document, Limits, YamlError, parse_documents_with_empty_nulls, parse_typed_kustomize,
};
use crate::source::{EntryKind, FileTree, SourceError, TreePath};

/// Deepest chain of kustomizations (each listing the next under `resources` or `components`)
/// rendered. Real repositories nest a handful; the limit keeps a generated or hostile tree from
/// exhausting the stack.
pub const MAX_KUSTOMIZATION_DEPTH: usize = 100;

/// Reads from one tree with one set of YAML limits, for one render: every file read is counted
/// against the render's input budget.
pub struct Loader<'t> {
    tree: &'t dyn FileTree,
    limits: Limits,
    /// Most bytes this render may read ([`crate::source::InputLimits::max_render_input`]).
    budget: usize,
    /// Bytes read so far (renders read from several threads).
    read: AtomicUsize,
    /// Parsed files shared with the other renders of the run, if any.
    cache: Option<&'t ParseCache>,
    /// Whether and how `helmCharts` are rendered ([`super::helm`]).
    helm: super::helm::HelmSettings,
    /// The array behind kustomize's `--helm-api-versions` slice, which its charts share and
    /// overwrite during this render ([`super::helm::SharedApiVersions`]).
    helm_api_versions: std::sync::Mutex<super::helm::SharedApiVersions>,
    /// What kustomize would have printed on stderr so far, in its order.
    warnings: std::sync::Mutex<Vec<super::warnings::RenderWarning>>,
    /// How SOPS-encrypted files are read ([`super::sops`]).
    decryption: super::sops::Decryption,
}

/// A loaded kustomization (or component) file.
#[derive(Debug)]
pub struct KustFile {
    /// Its directory: files it names must be in or below it.
    pub dir: TreePath,
    /// The kustomization file itself, for messages.
    pub file: TreePath,
    pub kust: Kustomization,
    pub kind: KustKind,
    /// Directories of the kustomizations being rendered that led here, outermost first, this one
    /// last: a directory containing any of them would be a cycle.
    pub chain: Vec<TreePath>,
    /// kustomize's `helmRootNamespace`: the `namespace` of the nearest kustomization above this one
    /// that sets it, for its Helm charts.
    pub helm_root_namespace: Option<String>,
}

/// What a resource entry names.
pub enum Entry {
    File(TreePath),
    Dir(TreePath),
}

fn looks_remote(entry: &str) -> bool {
    entry.contains("://")
        || entry.starts_with("git@")
        || entry.starts_with("git::")
        || entry.contains("?ref=")
        || ["github.com/", "gitlab.com/", "bitbucket.org/"]
            .iter()
            .any(|host| entry.starts_with(host))
}

fn remote_error(kf: &KustFile, what: &'static str, entry: &str) -> RenderError {
    RenderError::Entry {
        file: kf.file.clone(),
        what,
        entry: entry.to_string(),
        message: "remote resources (URLs, git repositories) are not supported by kgitops; vendor them \
                  into the repository"
            .to_string(),
    }
}

impl<'t> Loader<'t> {
    /// A loader with the process-wide input budget ([`crate::source::limits::current`]).
    pub fn new(tree: &'t dyn FileTree, limits: Limits) -> Loader<'t> {
        Loader::with_budget(tree, limits, crate::source::limits::current().max_render_input)
    }

    /// A loader that may read `budget` bytes in all.
    pub fn with_budget(tree: &'t dyn FileTree, limits: Limits, budget: usize) -> Loader<'t> {
        Loader {
            tree,
            limits,
            budget,
            read: AtomicUsize::new(0),
            cache: None,
            helm: super::helm::current(),
            helm_api_versions: std::sync::Mutex::default(),
            warnings: std::sync::Mutex::default(),
            decryption: super::sops::keys::current(),
        }
    }

    /// This loader, reading SOPS-encrypted files per `decryption` instead of the process-wide
    /// setting.
    pub fn with_decryption(self, decryption: super::sops::Decryption) -> Loader<'t> {
        Loader { decryption, ..self }
    }

    /// This loader, rendering Helm charts per `helm` instead of the process-wide settings.
    pub fn with_helm(self, helm: super::helm::HelmSettings) -> Loader<'t> {
        Loader { helm, ..self }
    }

    /// How this render runs Helm charts.
    pub fn helm(&self) -> super::helm::HelmSettings {
        self.helm.clone()
    }

    /// Records a warning kustomize prints while rendering.
    pub fn warn(&self, warning: super::warnings::RenderWarning) {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(warning);
    }

    /// The warnings recorded so far, in order.
    pub fn take_warnings(&self) -> Vec<super::warnings::RenderWarning> {
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The render's shared `--helm-api-versions` array (kustomize's aliasing, see
    /// [`super::helm::SharedApiVersions`]).
    pub fn helm_api_versions(&self) -> std::sync::MutexGuard<'_, super::helm::SharedApiVersions> {
        self.helm_api_versions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What `path` is in the tree, if anything.
    pub fn kind(&self, path: &TreePath) -> Result<Option<EntryKind>, RenderError> {
        Ok(self.tree.kind(path)?)
    }

    /// The names in directory `path`.
    pub fn list(&self, path: &TreePath) -> Result<Vec<String>, RenderError> {
        Ok(self.tree.list(path)?)
    }

    /// Counts `size` bytes made for this render (helm's output, named after `path`) against the
    /// per-file limit and the input budget, as if they had been read from a file.
    pub fn account(&self, path: &TreePath, size: usize) -> Result<(), RenderError> {
        if size > self.limits.max_bytes {
            return Err(YamlError::TooLarge {
                source_name: path.to_string(),
                size,
                limit: self.limits.max_bytes,
            }
            .into());
        }
        let before = self.read.fetch_add(size, Ordering::Relaxed);
        if before.saturating_add(size) > self.budget {
            return Err(RenderError::InputBudget {
                file: path.clone(),
                size: size as u64,
                read: before,
                limit: self.budget,
            });
        }
        Ok(())
    }

    /// This loader, taking parsed files from `cache` and adding those it parses.
    pub fn with_cache(self, cache: &'t ParseCache) -> Loader<'t> {
        Loader {
            cache: Some(cache),
            ..self
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Loads the kustomization in `dir`, reached through the kustomizations in `chain`.
    pub fn load_kustomization(
        &self,
        dir: &TreePath,
        mut chain: Vec<TreePath>,
    ) -> Result<KustFile, RenderError> {
        if chain.len() >= MAX_KUSTOMIZATION_DEPTH {
            return Err(RenderError::TooDeep {
                dir: dir.clone(),
                limit: MAX_KUSTOMIZATION_DEPTH,
            });
        }
        let mut found = Vec::new();
        for name in FILE_NAMES {
            let path = dir.join(name).map_err(crate::source::SourceError::from)?;
            if self.tree.kind(&path)? == Some(EntryKind::File) {
                found.push(path);
            }
        }
        let file = match found.len() {
            0 => return Err(RenderError::NoKustomization { dir: dir.clone() }),
            1 => found.remove(0),
            _ => {
                return Err(RenderError::MultipleKustomizations {
                    dir: dir.clone(),
                    names: found.iter().map(|p| p.file_name()).collect::<Vec<_>>().join(", "),
                });
            }
        };
        let text = self.read_text(&file)?;
        let kust: Kustomization = parse_typed_kustomize(&text, &file.to_string(), &self.limits)?;
        // kustomize's KustTarget.Load warns right after reading the file, before checking it.
        for field in super::warnings::DeprecatedField::of(&kust) {
            self.warn(super::warnings::RenderWarning::Deprecated {
                file: file.clone(),
                field,
            });
        }
        let invalid = |message: String| RenderError::InvalidKustomization {
            file: file.clone(),
            message,
        };
        let kind = kust.check_kind().map_err(invalid)?;
        if kust.is_empty() {
            return Err(invalid("kustomization is empty".to_string()));
        }
        if let Some((field, hint)) = kust.unsupported() {
            return Err(RenderError::Unsupported { file, field, hint });
        }
        chain.push(dir.clone());
        Ok(KustFile {
            dir: dir.clone(),
            file,
            kust,
            kind,
            chain,
            helm_root_namespace: None,
        })
    }

    /// Resolves a `resources` (or `bases`) entry to the file or directory it names.
    pub fn resolve_entry(
        &self,
        kf: &KustFile,
        what: &'static str,
        entry: &str,
    ) -> Result<Entry, RenderError> {
        let path = kf
            .dir
            .join(entry)
            .map_err(|e| RenderError::from_path(&kf.file, what, entry, e))?;
        match self.tree.kind(&path)? {
            Some(EntryKind::File) => {
                self.check_in_root(kf, what, entry, &path)?;
                Ok(Entry::File(path))
            }
            Some(EntryKind::Dir) => {
                self.check_no_cycle(kf, what, entry, &path)?;
                Ok(Entry::Dir(path))
            }
            None if looks_remote(entry) => Err(remote_error(kf, what, entry)),
            None => Err(RenderError::Entry {
                file: kf.file.clone(),
                what,
                entry: entry.to_string(),
                message: format!("{path}: no such file or directory"),
            }),
        }
    }

    /// Resolves a `components` entry, which must be a directory.
    pub fn resolve_dir(
        &self,
        kf: &KustFile,
        what: &'static str,
        entry: &str,
    ) -> Result<TreePath, RenderError> {
        match self.resolve_entry(kf, what, entry)? {
            Entry::Dir(path) => Ok(path),
            Entry::File(path) => Err(RenderError::Entry {
                file: kf.file.clone(),
                what,
                entry: entry.to_string(),
                message: format!("{path} is a file; a component must be a directory with a kustomization"),
            }),
        }
    }

    /// Resolves a file named by a kustomization (patch, generator source, replacement file): it
    /// must exist and lie in or below the kustomization directory.
    pub fn resolve_file(
        &self,
        kf: &KustFile,
        what: &'static str,
        entry: &str,
    ) -> Result<TreePath, RenderError> {
        let path = kf
            .dir
            .join(entry)
            .map_err(|e| RenderError::from_path(&kf.file, what, entry, e))?;
        self.check_in_root(kf, what, entry, &path)?;
        match self.tree.kind(&path)? {
            Some(EntryKind::File) => Ok(path),
            Some(EntryKind::Dir) => Err(RenderError::Entry {
                file: kf.file.clone(),
                what,
                entry: entry.to_string(),
                message: format!("{path} is a directory, not a file"),
            }),
            None if looks_remote(entry) => Err(remote_error(kf, what, entry)),
            None => Err(RenderError::Entry {
                file: kf.file.clone(),
                what,
                entry: entry.to_string(),
                message: format!("{path}: no such file"),
            }),
        }
    }

    fn check_in_root(
        &self,
        kf: &KustFile,
        what: &'static str,
        entry: &str,
        path: &TreePath,
    ) -> Result<(), RenderError> {
        let inside = |p: &TreePath| p.starts_with(&kf.dir) && p != &kf.dir;
        let outside = |shown: String| RenderError::OutsideRoot {
            file: kf.file.clone(),
            what,
            entry: entry.to_string(),
            path: shown,
            dir: kf.dir.clone(),
        };
        if !inside(path) {
            return Err(outside(path.to_string()));
        }
        // A symlink inside the directory may still point out of it: kustomize checks the file it
        // really reads, so the real path must be inside too.
        match self.tree.real_path(path)? {
            Some(real) if !inside(&real) => Err(outside(format!("{path} (a symlink to {real})"))),
            _ => Ok(()),
        }
    }

    /// kustomize's `errIfArgEqualOrHigher`: a directory that contains (or is) any kustomization
    /// already being rendered would recurse forever.
    fn check_no_cycle(
        &self,
        kf: &KustFile,
        what: &'static str,
        entry: &str,
        candidate: &TreePath,
    ) -> Result<(), RenderError> {
        match kf.chain.iter().find(|visited| visited.starts_with(candidate)) {
            None => Ok(()),
            Some(visited) => Err(RenderError::Cycle {
                file: kf.file.clone(),
                what,
                entry: entry.to_string(),
                dir: candidate.clone(),
                visited: visited.clone(),
            }),
        }
    }

    /// The bytes of a file, within the per-file limit and what is left of the render's input
    /// budget; both are checked from the file's size before its content is read. A SOPS-encrypted
    /// file is decrypted ([`super::sops`]).
    pub fn read_bytes(&self, path: &TreePath) -> Result<Vec<u8>, RenderError> {
        Ok(self.read_decrypted(path)?.bytes)
    }

    /// [`Loader::read_bytes`], saying whether the file was SOPS-encrypted.
    pub fn read_decrypted(&self, path: &TreePath) -> Result<super::sops::Read, RenderError> {
        let raw = self.read_raw(path)?;
        Ok(super::sops::decrypt_if_encrypted(
            path,
            raw,
            &self.decryption,
            &self.limits,
        )?)
    }

    /// The bytes of a file that is copied to disk (Helm values and charts): a SOPS-encrypted file
    /// is refused, since decrypted values are never written to disk.
    pub fn read_bytes_for_disk(&self, path: &TreePath) -> Result<Vec<u8>, RenderError> {
        let raw = self.read_raw(path)?;
        if super::sops::is_encrypted(path, &raw, &self.limits) {
            return Err(super::sops::SopsError::HelmValues { file: path.clone() }.into());
        }
        Ok(raw)
    }

    /// The bytes of a file as they are in the tree.
    fn read_raw(&self, path: &TreePath) -> Result<Vec<u8>, RenderError> {
        let read = self.read.load(Ordering::Relaxed);
        let left = self.budget.saturating_sub(read);
        let over_budget = |size: u64, read: usize| RenderError::InputBudget {
            file: path.clone(),
            size,
            read,
            limit: self.budget,
        };
        let bytes = match self.tree.read(path, self.limits.max_bytes.min(left)) {
            Ok(bytes) => bytes,
            Err(SourceError::TooLarge { size, .. }) if size > self.limits.max_bytes as u64 => {
                return Err(YamlError::TooLarge {
                    source_name: path.to_string(),
                    size: usize::try_from(size).unwrap_or(usize::MAX),
                    limit: self.limits.max_bytes,
                }
                .into());
            }
            Err(SourceError::TooLarge { size, .. }) => return Err(over_budget(size, read)),
            Err(e) => return Err(e.into()),
        };
        // Other threads of this render may have read meanwhile: the sum decides.
        let before = self.read.fetch_add(bytes.len(), Ordering::Relaxed);
        if before.saturating_add(bytes.len()) > self.budget {
            return Err(over_budget(bytes.len() as u64, before));
        }
        Ok(bytes)
    }

    /// The text of a file, which must be UTF-8.
    pub fn read_text(&self, path: &TreePath) -> Result<String, RenderError> {
        Ok(self.read_text_flagged(path)?.0)
    }

    /// [`Loader::read_text`], with whether the file was SOPS-encrypted.
    fn read_text_flagged(&self, path: &TreePath) -> Result<(String, bool), RenderError> {
        let read = self.read_decrypted(path)?;
        let text = String::from_utf8(read.bytes).map_err(|e| RenderError::NotText {
            file: path.clone(),
            message: e.to_string(),
        })?;
        Ok((text, read.encrypted))
    }

    /// Reads a manifest file into objects.
    pub fn read_objects(&self, path: &TreePath) -> Result<Vec<Document>, RenderError> {
        let (text, encrypted) = self.read_text_flagged(path)?;
        self.parse_file(path, &text, encrypted)
    }

    /// Reads the manifest files `paths` and parses them in parallel: parsing is most of a large
    /// render's time. One result per path, in order, each what [`Loader::read_objects`] returns
    /// for it. The tree is read on the calling thread, one file after the other.
    pub fn read_objects_parallel(&self, paths: &[TreePath]) -> Vec<Result<Vec<Document>, RenderError>> {
        let texts: Vec<Result<(String, bool), RenderError>> =
            paths.iter().map(|p| self.read_text_flagged(p)).collect();
        texts
            .into_par_iter()
            .zip(paths)
            .map(|(text, path)| {
                let (text, encrypted) = text?;
                self.parse_file(path, &text, encrypted)
            })
            .collect()
    }

    /// The objects of a file's text, through the run's [`ParseCache`] when there is one. A
    /// decrypted file never goes into the cache: its cleartext is dropped with the render.
    fn parse_file(&self, path: &TreePath, text: &str, encrypted: bool) -> Result<Vec<Document>, RenderError> {
        match self.cache {
            Some(cache) if !encrypted => {
                cache.objects(path, &self.limits, text, |t| parse_objects(&self.limits, path, t))
            }
            _ => parse_objects(&self.limits, path, text),
        }
    }

    /// Splits YAML text into objects as kustomize's resource factory does: empty documents are
    /// dropped, `*List` kinds with `items` are replaced by their items (placed after the file's
    /// other documents, as kustomize does), every object needs `apiVersion`, `kind` and
    /// `metadata.name`.
    pub fn parse_objects(&self, path: &TreePath, text: &str) -> Result<Vec<Document>, RenderError> {
        parse_objects(&self.limits, path, text)
    }
}

/// [`Loader::parse_objects`], with `limits`.
fn parse_objects(limits: &Limits, path: &TreePath, text: &str) -> Result<Vec<Document>, RenderError> {
    let docs = parse_documents_with_empty_nulls(text, &path.to_string(), limits)?;
    let mut queue: std::collections::VecDeque<(usize, Document)> = docs
        .into_iter()
        .filter(|d| !is_empty_doc(&d.value))
        .enumerate()
        .map(|(i, d)| (i + 1, d))
        .collect();
    let mut out = Vec::new();
    while let Some((index, document)) = queue.pop_front() {
        let doc = &document.value;
        let invalid = |message: String| RenderError::InvalidObject {
            file: path.clone(),
            index,
            message,
        };
        let Value::Object(map) = doc else {
            return Err(invalid(
                "not a mapping (an object needs apiVersion, kind and metadata)".into(),
            ));
        };
        let kind = match map.get("kind") {
            Some(Value::String(k)) if !k.is_empty() => k.as_str(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(invalid("missing `kind`".into()));
            }
            Some(_) => return Err(invalid("`kind` must be a string".into())),
        };
        if kind.ends_with("List") && map.contains_key("items") {
            match map.get("items") {
                Some(Value::Array(items)) => {
                    // kyaml's reader unwraps a `List` (or `ResourceList`) that is its file's only
                    // document, keeping the items' nodes; kustomize re-reads any other list's
                    // items from their JSON, where no scalar is written empty any more.
                    let kyaml_unwraps =
                        matches!(kind, "List" | "ResourceList") && !has_document_separator(text);
                    for (i, item) in items.iter().enumerate() {
                        if !is_empty_doc(item) {
                            let mut value = item.clone();
                            let mut empty_nulls = item_empty_nulls(&document.empty_nulls, i);
                            if !kyaml_unwraps {
                                // Decoded from kyaml's nodes, an empty scalar is null even in a
                                // flow collection (where the reader gives "", as kustomize prints
                                // it otherwise).
                                for pointer in std::mem::take(&mut empty_nulls) {
                                    if let Some(v) = value.pointer_mut(&pointer)
                                        && v.as_str() == Some("")
                                    {
                                        *v = Value::Null;
                                    }
                                }
                            }
                            queue.push_back((index, Document { value, empty_nulls }));
                        }
                    }
                }
                Some(Value::Null) => {}
                _ => return Err(invalid(format!("`items` of {kind} must be a list"))),
            }
            continue;
        }
        // kustomize accepts an object without `apiVersion` (empty group and version) and prints it
        // as written; only the other parts of the identity are checked here.
        let without_api_version = matches!(map.get("apiVersion"), None | Some(Value::Null));
        let id = if without_api_version {
            let mut with = map.clone();
            with.insert("apiVersion".into(), Value::String("v1".into()));
            ResId::of(&Value::Object(with))
        } else {
            ResId::of(doc)
        };
        if let Err(e) = id {
            let name = map
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            return Err(invalid(format!("{e} (kind {kind}{})", describe_name(name))));
        }
        match doc.get("metadata").and_then(|m| m.get("namespace")) {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(_) => return Err(invalid("`metadata.namespace` must be a string".into())),
        }
        out.push(document);
    }
    Ok(out)
}

fn describe_name(name: &str) -> String {
    if name.is_empty() {
        String::new()
    } else {
        format!(", name {name}")
    }
}

/// Whether kyaml's reader splits `text` in more than one piece: a line starting with `---` after
/// the first line, ended by a line feed (its `splitDocuments`, regexp `\n---.*\n`).
fn has_document_separator(text: &str) -> bool {
    text.match_indices("\n---")
        .any(|(at, _)| text[at + 4..].contains('\n'))
}

/// The empty-written nulls of item `index` of a list document, relative to the item.
fn item_empty_nulls(list: &[String], index: usize) -> Vec<String> {
    let prefix = format!("/items/{index}");
    list.iter()
        .filter_map(|p| p.strip_prefix(&prefix))
        .filter(|rest| rest.starts_with('/'))
        .map(str::to_string)
        .collect()
}

/// kustomize's `IsNilOrEmpty`: null, `{}` and `[]` documents are skipped.
fn is_empty_doc(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::memtree::MemTree;

    fn p(s: &str) -> TreePath {
        TreePath::new(s).unwrap()
    }

    #[test]
    fn lists_are_inlined_after_the_other_documents() {
        let tree = MemTree::new(&[]);
        let loader = Loader::new(&tree, Limits::DEFAULT);
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n  data:\n    k:\n\
                    ---\n---\n{}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\ndata:\n  k:\n";
        let objs = loader.parse_objects(&p("x.yaml"), text).unwrap();
        let names: Vec<_> = objs
            .iter()
            .map(|o| o.value["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["b", "a"]);
        // kustomize reads the items of a list in a file of several documents again from JSON,
        // where no null is written empty; a lone `List` is unwrapped by kyaml as it is.
        assert_eq!(objs[0].empty_nulls, ["/data/k"]);
        assert!(objs[1].empty_nulls.is_empty());
        let flow = "apiVersion: v1\nkind: ConfigMapList\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n  data: {k: , l: \"\"}\n";
        let objs = loader.parse_objects(&p("x.yaml"), flow).unwrap();
        assert_eq!(objs[0].value["data"], serde_json::json!({"k": null, "l": ""}));
        let alone = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n  data:\n    k:\n\
                     - apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: b}\n  data:\n    k:\n    l:\n";
        let objs = loader.parse_objects(&p("x.yaml"), alone).unwrap();
        assert_eq!(objs[0].empty_nulls, ["/data/k"]);
        assert_eq!(objs[1].empty_nulls, ["/data/k", "/data/l"]);
    }

    #[test]
    fn objects_need_kind_api_version_and_name() {
        let tree = MemTree::new(&[]);
        let loader = Loader::new(&tree, Limits::DEFAULT);
        let err = loader
            .parse_objects(
                &p("base/x.yaml"),
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            )
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "base/x.yaml: document 1: missing `metadata.name` (kind ConfigMap)"
        );
        // kustomize prints an object without apiVersion as it is.
        let objects = loader
            .parse_objects(&p("x.yaml"), "kind: ConfigMap\nmetadata: {name: a}\n")
            .unwrap();
        assert_eq!(objects.len(), 1);
        let err = loader
            .parse_objects(&p("x.yaml"), "---\napiVersion: v1\nmetadata: {name: a}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "x.yaml: document 1: missing `kind`");
    }

    #[test]
    fn parallel_parse_gives_each_file_what_read_objects_gives_it() {
        let many = |prefix: &str| -> String {
            (0..1000)
                .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {prefix}-{i}}}\ndata: {{k: v}}\n---\n"))
                .collect()
        };
        let (a, c) = (many("a"), many("c"));
        let files = [
            ("a.yaml", a.as_str()),
            ("b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"),
            ("c.yaml", c.as_str()),
            ("d.yaml", "[unclosed\n"),
        ];
        let tree = MemTree::new(&files);
        let loader = Loader::new(&tree, Limits::DEFAULT);
        let mut paths: Vec<TreePath> = files.iter().map(|(name, _)| p(name)).collect();
        paths.push(p("missing.yaml"));
        let parallel = loader.read_objects_parallel(&paths);
        assert_eq!(parallel.len(), paths.len());
        for (path, got) in paths.iter().zip(&parallel) {
            let want = loader.read_objects(path);
            match (got, &want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{path}"),
                (Err(got), Err(want)) => assert_eq!(got.to_string(), want.to_string(), "{path}"),
                _ => panic!("{path}: {got:?} but one by one: {want:?}"),
            }
        }
        assert_eq!(parallel[0].as_ref().unwrap().len(), 1000);
        assert!(parallel[1].is_err() && parallel[3].is_err() && parallel[4].is_err());
    }

    #[test]
    fn every_read_counts_against_the_render_budget() {
        let tree = MemTree::new(&[("k/a.txt", "0123456789"), ("k/b.txt", "0123456789")]);
        let loader = Loader::with_budget(&tree, Limits::DEFAULT, 25);
        assert!(loader.read_bytes(&p("k/a.txt")).is_ok());
        // The same file again counts again: a generator naming it twice holds two copies.
        assert!(loader.read_bytes(&p("k/a.txt")).is_ok());
        let err = loader.read_bytes(&p("k/b.txt")).unwrap_err();
        assert!(
            matches!(
                err,
                RenderError::InputBudget {
                    size: 10,
                    read: 20,
                    limit: 25,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with("k/b.txt: reading it (10 bytes)"),
            "{err}"
        );
        // Over the per-file limit is the file-size error, whatever the budget.
        let small = Limits {
            max_bytes: 5,
            ..Limits::DEFAULT
        };
        let err = Loader::with_budget(&tree, small, 100)
            .read_bytes(&p("k/a.txt"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "k/a.txt: 10 bytes is larger than the limit of 5 bytes"
        );
    }

    #[test]
    fn files_must_be_below_the_kustomization_and_dirs_must_not_cycle() {
        let tree = MemTree::new(&[
            (
                "base/kustomization.yaml",
                "resources: [../x.yaml, ../base, ../other]\n",
            ),
            ("x.yaml", ""),
            ("other/kustomization.yaml", "resources: [a]\n"),
        ]);
        let loader = Loader::new(&tree, Limits::DEFAULT);
        let kf = loader.load_kustomization(&p("base"), Vec::new()).unwrap();
        let err = loader.resolve_entry(&kf, "resource", "../x.yaml").err().unwrap();
        assert!(matches!(err, RenderError::OutsideRoot { .. }), "{err}");
        let err = loader.resolve_entry(&kf, "resource", "../base").err().unwrap();
        assert!(matches!(err, RenderError::Cycle { .. }), "{err}");
        assert!(matches!(
            loader.resolve_entry(&kf, "resource", "../other"),
            Ok(Entry::Dir(_))
        ));
        let err = loader.resolve_entry(&kf, "resource", "../../etc").err().unwrap();
        assert!(err.to_string().contains("escapes the repository root"), "{err}");
        let err = loader
            .resolve_entry(&kf, "resource", "https://example.com/x.yaml")
            .err()
            .unwrap();
        assert!(err.to_string().contains("remote resources"), "{err}");
    }
}
