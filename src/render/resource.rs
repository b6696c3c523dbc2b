//! Objects as the engine carries them: the object itself plus what kustomize tracks beside it in
//! build annotations (previous names, name prefixes and suffixes, generator behavior and hash
//! flag), and the ordered collection of them ([`ResMap`]) with kustomize's identity rules.
//!
//! Identity follows kustomize's `resid.ResId`: group, version, kind, name and the *effective*
//! namespace, where no namespace means `default` and cluster-scoped kinds have none at all.

use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use rayon::prelude::*;

use serde_json::{Map, Value};

use super::scope::is_cluster_scoped;
use crate::source::TreePath;

/// kustomize's stand-in namespace for cluster-scoped objects.
pub const NO_NAMESPACE: &str = "_non_namespaceable_";
/// The namespace an object without one ends up in.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Splits an `apiVersion` at its first `/` into group and version, as kustomize does.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// A group/version/kind pattern; empty parts match anything (kustomize's `Gvk.IsSelected`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GvkSel {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl GvkSel {
    /// A pattern on the kind alone.
    pub fn kind(kind: &str) -> GvkSel {
        GvkSel {
            kind: kind.to_string(),
            ..GvkSel::default()
        }
    }

    /// Whether `group`/`version`/`kind` match this pattern.
    pub fn selects(&self, group: &str, version: &str, kind: &str) -> bool {
        (self.group.is_empty() || self.group == group)
            && (self.version.is_empty() || self.version == version)
            && (self.kind.is_empty() || self.kind == kind)
    }
}

/// An object identity with its effective namespace, compared as kustomize's `ResId.Equals`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Id {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    /// `default` when unset, [`NO_NAMESPACE`] for cluster-scoped kinds.
    pub namespace: String,
}

impl Id {
    /// Whether the id's GVK matches `sel`.
    pub fn is_selected(&self, sel: &GvkSel) -> bool {
        sel.selects(&self.group, &self.version, &self.kind)
    }
}

/// The effective namespace of an object of `api_version`/`kind` with `namespace` set (or empty).
pub fn effective_namespace(api_version: &str, kind: &str, namespace: &str) -> String {
    effective_namespace_ref(api_version, kind, namespace).to_string()
}

/// [`effective_namespace`] without allocating.
pub fn effective_namespace_ref<'a>(api_version: &str, kind: &str, namespace: &'a str) -> &'a str {
    if is_cluster_scoped(api_version, kind) {
        NO_NAMESPACE
    } else if namespace.is_empty() {
        DEFAULT_NAMESPACE
    } else {
        namespace
    }
}

/// An [`Id`] borrowed from an object, for comparing and hashing identities without allocating
/// (a render of 20,000 objects compares them several times per object).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdRef<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    /// The effective namespace, as in [`Id`].
    pub namespace: &'a str,
}

impl IdRef<'_> {
    /// The owned identity.
    pub fn to_id(self) -> Id {
        Id {
            group: self.group.to_string(),
            version: self.version.to_string(),
            kind: self.kind.to_string(),
            name: self.name.to_string(),
            namespace: self.namespace.to_string(),
        }
    }
}

/// A name an object had before a transformer renamed (or re-namespaced) it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrevId {
    pub kind: String,
    pub name: String,
    /// The effective namespace at the time.
    pub namespace: String,
}

/// How a generated ConfigMap or Secret combines with an existing one of the same id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Behavior {
    #[default]
    Unspecified,
    Create,
    Replace,
    Merge,
}

impl Behavior {
    /// kustomize's `NewGenerationBehavior`: unknown words are "unspecified".
    pub fn parse(s: &str) -> Behavior {
        match s {
            "create" => Behavior::Create,
            "replace" => Behavior::Replace,
            "merge" => Behavior::Merge,
            _ => Behavior::Unspecified,
        }
    }
}

/// One object being rendered.
#[derive(Clone, Debug)]
pub struct Resource {
    /// The object: a JSON object with at least `kind` and `metadata.name`.
    pub obj: Value,
    /// The file it was read from, or the kustomization file that generated it (for messages).
    pub source: TreePath,
    /// Earlier identities, oldest first (kustomize's previousNames/Namespaces/Kinds annotations).
    pub prev: Vec<PrevId>,
    /// Name prefixes applied so far, innermost kustomization first.
    pub prefixes: Vec<String>,
    /// Name suffixes applied so far, innermost kustomization first.
    pub suffixes: Vec<String>,
    /// Generator behavior (generated objects only).
    pub behavior: Behavior,
    /// Whether the final name gets the content-hash suffix (generated objects only).
    pub needs_hash: bool,
    /// Generated by `helm template` (kustomize's `config.kubernetes.io/helm-generated`): the
    /// namespace transformer leaves it to helm.
    pub helm_generated: bool,
    /// The `vars` whose `objref` names this object (kustomize's `refVarNames`).
    pub ref_vars: Vec<String>,
    /// JSON pointers of the object's nulls written empty in its file (`key:`), which a strategic
    /// merge patch drops as kustomize does ([`crate::manifest::yaml::Document`]). A pointer whose
    /// value is no longer null means nothing.
    pub empty_nulls: Vec<String>,
}

fn str_at<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or("")
}

impl Resource {
    /// A resource read from `source`.
    pub fn new(obj: Value, source: TreePath) -> Resource {
        Resource {
            obj,
            source,
            prev: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            behavior: Behavior::Unspecified,
            needs_hash: false,
            helm_generated: false,
            ref_vars: Vec::new(),
            empty_nulls: Vec::new(),
        }
    }

    /// A resource read from the file `source`, with its empty-written nulls.
    pub fn read(doc: crate::manifest::yaml::Document, source: TreePath) -> Resource {
        let mut r = Resource::new(doc.value, source);
        r.empty_nulls = doc.empty_nulls;
        r
    }

    pub fn api_version(&self) -> &str {
        str_at(&self.obj, "apiVersion")
    }

    pub fn kind(&self) -> &str {
        str_at(&self.obj, "kind")
    }

    pub fn name(&self) -> &str {
        self.obj.get("metadata").map(|m| str_at(m, "name")).unwrap_or("")
    }

    /// `metadata.namespace`, or `""`.
    pub fn namespace(&self) -> &str {
        self.obj
            .get("metadata")
            .map(|m| str_at(m, "namespace"))
            .unwrap_or("")
    }

    /// Whether kustomize considers this object cluster-scoped.
    pub fn is_cluster_scoped(&self) -> bool {
        is_cluster_scoped(self.api_version(), self.kind())
    }

    /// The current identity.
    pub fn cur_id(&self) -> Id {
        self.id_ref().to_id()
    }

    /// The current identity, borrowed from the object.
    pub fn id_ref(&self) -> IdRef<'_> {
        let api_version = self.api_version();
        let (group, version) = split_api_version(api_version);
        let kind = self.kind();
        IdRef {
            group,
            version,
            kind,
            name: self.name(),
            namespace: effective_namespace_ref(api_version, kind, self.namespace()),
        }
    }

    /// A previous identity as an [`Id`]: group and version are the current ones, as in kustomize.
    fn prev_id(&self, p: &PrevId) -> Id {
        let (group, version) = split_api_version(self.api_version());
        Id {
            group: group.to_string(),
            version: version.to_string(),
            kind: p.kind.clone(),
            name: p.name.clone(),
            namespace: if p.namespace.is_empty() {
                DEFAULT_NAMESPACE.to_string()
            } else {
                p.namespace.clone()
            },
        }
    }

    /// Earlier identities, oldest first.
    pub fn prev_ids(&self) -> Vec<Id> {
        self.prev.iter().map(|p| self.prev_id(p)).collect()
    }

    /// The original identity: the oldest previous one, else the current one.
    pub fn org_id(&self) -> Id {
        match self.prev.first() {
            Some(p) => self.prev_id(p),
            None => self.cur_id(),
        }
    }

    /// Group, version and kind of the original identity (kustomize keeps the current group and
    /// version in previous ids), borrowed.
    pub fn org_gvk(&self) -> (&str, &str, &str) {
        let (group, version) = split_api_version(self.api_version());
        let kind = match self.prev.first() {
            Some(p) => p.kind.as_str(),
            None => self.kind(),
        };
        (group, version, kind)
    }

    /// Whether the current or any previous identity equals `id` (without building identities).
    pub fn has_id(&self, id: &Id) -> bool {
        let api_version = self.api_version();
        let (group, version) = split_api_version(api_version);
        if group != id.group || version != id.version {
            return false;
        }
        let current = self.kind() == id.kind
            && self.name() == id.name
            && effective_namespace_ref(api_version, self.kind(), self.namespace()) == id.namespace;
        current
            || self.prev.iter().any(|p| {
                let ns = if p.namespace.is_empty() {
                    DEFAULT_NAMESPACE
                } else {
                    p.namespace.as_str()
                };
                p.kind == id.kind && p.name == id.name && ns == id.namespace
            })
    }

    /// Whether the current or any previous identity satisfies `pred`.
    pub fn any_id(&self, mut pred: impl FnMut(&Id) -> bool) -> bool {
        self.prev.iter().any(|p| pred(&self.prev_id(p))) || pred(&self.cur_id())
    }

    /// Records the current identity before a transformer changes it.
    pub fn store_previous_id(&mut self) {
        let id = self.id_ref();
        let prev = PrevId {
            kind: id.kind.to_string(),
            name: id.name.to_string(),
            namespace: id.namespace.to_string(),
        };
        self.prev.push(prev);
    }

    /// The `metadata` object, created when missing.
    pub fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let obj = ensure_object(&mut self.obj);
        let meta = obj.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        ensure_object(meta)
    }

    pub fn set_name(&mut self, name: &str) {
        self.metadata_mut()
            .insert("name".into(), Value::String(name.to_string()));
    }

    /// Sets `metadata.namespace`; an empty namespace removes the field.
    pub fn set_namespace(&mut self, namespace: &str) {
        let meta = self.metadata_mut();
        if namespace.is_empty() {
            meta.remove("namespace");
        } else {
            meta.insert("namespace".into(), Value::String(namespace.to_string()));
        }
    }

    /// `metadata.labels` or `metadata.annotations` as strings (non-string values in their text form).
    pub fn string_map(&self, field: &str) -> Vec<(String, String)> {
        let Some(Value::Object(m)) = self.obj.get("metadata").and_then(|m| m.get(field)) else {
            return Vec::new();
        };
        m.iter().map(|(k, v)| (k.clone(), scalar_text(v))).collect()
    }

    /// Replaces `metadata.labels` or `metadata.annotations`; an empty map removes the field.
    pub fn set_string_map(&mut self, field: &str, entries: Vec<(String, String)>) {
        let meta = self.metadata_mut();
        if entries.is_empty() {
            meta.remove(field);
        } else {
            let map = entries.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
            meta.insert(field.to_string(), Value::Object(map));
        }
    }

    /// `Kind/namespace/name` (or `Kind/name`), for messages.
    pub fn display_id(&self) -> String {
        DisplayId {
            kind: self.kind(),
            namespace: self.namespace(),
            name: self.name(),
        }
        .to_string()
    }
}

struct DisplayId<'a> {
    kind: &'a str,
    namespace: &'a str,
    name: &'a str,
}

impl fmt::Display for DisplayId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// Makes `v` an object (replacing anything else) and returns it.
pub fn ensure_object(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        // Just made an object above.
        _ => unreachable!("value was replaced by an object"),
    }
}

/// The text of a scalar as YAML would print it plainly: strings as-is, `null`, numbers, booleans.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// Objects in order, with kustomize's rules for adding them (no two with the same current id).
#[derive(Debug, Default)]
pub struct ResMap {
    list: Vec<Resource>,
    /// (hash of the current id, position), hashed with `hasher`; the ids are the objects' own,
    /// borrowed when compared. Built on demand and dropped whenever objects may have changed.
    index: Option<HashTable<(u64, usize)>>,
    hasher: hashbrown::DefaultHashBuilder,
}

/// A second object with an id already present.
#[derive(Debug)]
pub struct Duplicate {
    /// The object that could not be added.
    pub new: Box<Resource>,
    /// Where the one already present came from.
    pub existing_source: TreePath,
}

impl ResMap {
    pub fn new() -> ResMap {
        ResMap::default()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn resources(&self) -> &[Resource] {
        &self.list
    }

    /// Mutable access to the objects; identities may change, so the id index is dropped.
    pub fn resources_mut(&mut self) -> &mut Vec<Resource> {
        self.index = None;
        &mut self.list
    }

    /// Runs `f` on every object (with its position), in parallel on the render's threads: for
    /// transformers that change each object on its own. Identities may change, so the id index
    /// is dropped. The error returned is the first in object order, the one a sequential loop
    /// reports (objects after it may have been changed too: a render stops at its first error).
    pub fn try_for_each_mut<E: Send>(
        &mut self,
        f: impl Fn(usize, &mut Resource) -> Result<(), E> + Sync + Send,
    ) -> Result<(), E> {
        self.index = None;
        let first_error = self
            .list
            .par_iter_mut()
            .enumerate()
            .map(|(i, r)| f(i, r))
            .find_first(Result::is_err);
        first_error.unwrap_or(Ok(()))
    }

    pub fn into_resources(self) -> Vec<Resource> {
        self.list
    }

    /// Appends one object; its current id must be new (kustomize's `Append`).
    pub fn append(&mut self, res: Resource) -> Result<(), Duplicate> {
        let list = &self.list;
        let hasher = &self.hasher;
        let hash_of = |r: &Resource| hasher.hash_one(r.id_ref());
        let index = self.index.get_or_insert_with(|| {
            let mut table = HashTable::with_capacity(list.len());
            for (i, r) in list.iter().enumerate() {
                let hash = hash_of(r);
                table.insert_unique(hash, (hash, i), |&(h, _)| h);
            }
            table
        });
        let id = res.id_ref();
        let hash = hasher.hash_one(id);
        if let Some(&(_, existing)) = index.find(hash, |&(h, i)| h == hash && list[i].id_ref() == id) {
            return Err(Duplicate {
                existing_source: list[existing].source.clone(),
                new: Box::new(res),
            });
        }
        index.insert_unique(hash, (hash, list.len()), |&(h, _)| h);
        self.list.push(res);
        Ok(())
    }

    /// Appends every object, stopping at the first duplicate id.
    pub fn append_all(&mut self, other: impl IntoIterator<Item = Resource>) -> Result<(), Duplicate> {
        let other = other.into_iter();
        self.list.reserve(other.size_hint().0);
        for res in other {
            self.append(res)?;
        }
        Ok(())
    }

    /// Positions of the objects whose current or any previous id equals `id`.
    pub fn positions_by_any_id(&self, id: &Id) -> Vec<usize> {
        self.list
            .iter()
            .enumerate()
            .filter(|(_, r)| r.has_id(id))
            .map(|(i, _)| i)
            .collect()
    }

    /// Replaces the object at `at`.
    pub fn replace(&mut self, at: usize, res: Resource) {
        self.index = None;
        self.list[at] = res;
    }

    /// Keeps only the objects for which `keep` is true.
    pub fn retain(&mut self, keep: impl FnMut(&Resource) -> bool) {
        self.index = None;
        self.list.retain(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(v: Value) -> Resource {
        Resource::new(v, TreePath::new("f.yaml").unwrap())
    }

    #[test]
    fn ids_use_effective_namespaces() {
        let a = res(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}));
        let b = res(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": "default"}}));
        assert_eq!(a.cur_id(), b.cur_id());
        let ns = res(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}));
        assert_eq!(ns.cur_id().namespace, NO_NAMESPACE);
        let mut map = ResMap::new();
        map.append(a).unwrap();
        let dup = map.append(b).unwrap_err();
        assert_eq!(dup.new.display_id(), "ConfigMap/default/x");
        map.append(ns).unwrap();
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn previous_ids_keep_the_original() {
        let mut r = res(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}}));
        r.store_previous_id();
        r.set_name("p-web");
        r.set_namespace("prod");
        assert_eq!(r.org_id().name, "web");
        assert_eq!(r.org_id().namespace, "default");
        assert_eq!(r.cur_id().namespace, "prod");
        assert!(r.any_id(|i| i.name == "web") && r.any_id(|i| i.name == "p-web"));
        let mut map = ResMap::new();
        map.append(r).unwrap();
        let web = Id {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            name: "web".into(),
            namespace: "default".into(),
        };
        assert_eq!(map.positions_by_any_id(&web), vec![0]);
    }
}
