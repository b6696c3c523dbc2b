//! Strategic merge patch exactly as kustomize v5 applies it: a port of kyaml's `merge2` walker
//! (`kyaml/yaml/walk`, `kyaml/yaml/merge2`) with the patch-transformer wrapping of kustomize's
//! `Resource.ApplySmPatch`.
//!
//! Semantics, all checked against `kubectl kustomize` (v5.5.0):
//! - maps merge recursively; `null` in the patch deletes a key; scalars are replaced;
//! - lists whose OpenAPI field has `x-kubernetes-patch-strategy: merge` merge element by element on
//!   their merge keys ([`super::schema`]): containers/env/volumes by `name`, volumeMounts by
//!   `mountPath`, container ports by `containerPort` + `protocol`, ...; elements named by the patch
//!   come first in patch order, followed by the target's other elements; merge lists of scalars
//!   (`finalizers`) are unions with the patch's values first;
//! - every other list, and every list of a kind without schema (CRDs such as Strimzi `Kafka`), is
//!   replaced by the patch's list;
//! - `$patch: delete` removes a map, a list element or (top level) the whole object;
//!   `$patch: replace` replaces a map or (as a `{$patch: replace}` element) a merge list, but at the
//!   top level it does nothing;
//!   `$patch: merge` is the default; anything else is an error;
//! - kustomize's own quirks are kept, because the output must equal `kubectl kustomize`: e.g.
//!   `$patch: replace` on a single merge-list element has no effect, a merge list in the target that
//!   holds two elements with the same key keeps only the last one, a port in the patch that names a
//!   protocol does not match a target port without one. `$setElementOrder/...`, `$retainKeys` and
//!   `$deleteFromPrimitiveList/...` are not directives in kustomize: they are copied as plain fields.
//!
//! - the target's own `null`s that the patch does not touch stay when written `null` or `~`, and
//!   are dropped when written as nothing (`key:`), wherever the merge walks (maps, elements of
//!   merged lists; not inside replaced lists): kyaml keeps a null's text and `Merger.VisitMap`
//!   keeps only a null with text (`MakePersistentNullNode`). The YAML reader notes where a file
//!   wrote nulls empty ([`crate::manifest::yaml::Document`]); [`apply_marked`] takes and updates
//!   those places. An empty null's text is `""`, which matters to merge keys (`- name:`).
//!
//! Known differences from `kubectl kustomize`:
//! - merge keys come from the Kubernetes v1.36 OpenAPI, kustomize's from its built-in v1.21 one:
//!   fields added since with a merge strategy (`resourceClaims`, `schedulingGates`, webhook
//!   `matchConditions`, ...) merge here and are replaced by kustomize.
//!
//! The merge runs over an arena of nodes so that it can follow kyaml's pointer semantics (the merged
//! element *is* the target's element, a patch map added to the target *is* the patch's node) without
//! reference counting.

use serde_json::{Map, Value};

use super::schema::{Schema, Table, table};
use super::{MAX_DEPTH, PatchError, ROOT_PATH};

/// Options of a `patches` entry (`options: {allowNameChange: true, allowKindChange: true}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Let the patch change `metadata.name` (otherwise the target's name is kept).
    pub allow_name_change: bool,
    /// Let the patch change `kind` (otherwise the target's kind is kept).
    pub allow_kind_change: bool,
}

/// Applies a strategic merge patch to `target`, as kustomize does for a `patches` (or legacy
/// `patchesStrategicMerge`) entry, with default options.
///
/// The patch takes the target's `apiVersion`; afterwards the target keeps its own kind, name and
/// namespace (see [`apply_with`] to allow name or kind changes). A `$patch: delete` at the top level
/// leaves `Value::Null` in `target`: the caller must drop the object. On error `target` is unchanged.
pub fn apply(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    apply_with(target, patch, Options::default())
}

/// [`apply`] with the `options` of the `patches` entry.
pub fn apply_with(target: &mut Value, patch: &Value, options: Options) -> Result<(), PatchError> {
    apply_marked(target, &mut Vec::new(), patch, &[], options)
}

/// [`apply_with`] knowing where the target and the patch wrote nulls as nothing (JSON pointers,
/// [`crate::manifest::yaml::Document::empty_nulls`]): the merge drops those of the target that
/// it walks, and `empty_nulls` is left holding the places of the others.
pub fn apply_marked(
    target: &mut Value,
    empty_nulls: &mut Vec<String>,
    patch: &Value,
    patch_empty_nulls: &[String],
    options: Options,
) -> Result<(), PatchError> {
    let Value::Object(target_map) = &*target else {
        return Err(PatchError::NotAMapping { what: "target" });
    };
    let Value::Object(patch_map) = patch else {
        return Err(PatchError::NotAMapping { what: "patch" });
    };
    let kind = target_map.get("kind").cloned();
    let name = target_map.get("metadata").and_then(|m| m.get("name")).cloned();
    let namespace = target_map
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .cloned();

    let mut arena = Arena::new(table());
    let dest = arena
        .import(target, 0)
        .ok_or(PatchError::TooDeep { what: "target" })?;
    // kustomize gives the patch the target's group/version before merging (resWrangler.ApplySmPatch).
    let origin = if let Some(api_version) = target_map.get("apiVersion") {
        let mut patch = patch_map.clone();
        patch.insert("apiVersion".into(), api_version.clone());
        arena.import(&Value::Object(patch), 0)
    } else {
        arena.import(patch, 0)
    }
    .ok_or(PatchError::TooDeep { what: "patch" })?;
    let marked =
        arena.mark_empty_nulls(dest, empty_nulls) + arena.mark_empty_nulls(origin, patch_empty_nulls);

    let merged = arena.walk([Some(dest), Some(origin)], None)?;
    let mut result = match merged {
        Some(id) if id == dest => {
            if marked > 0 {
                *empty_nulls = arena.empty_null_pointers(id);
            }
            arena.export(id)
        }
        // kustomize keeps the resource's own node and only looks at whether the merge deleted it:
        // a top-level `$patch: replace` (which returns the patch's node) changes nothing.
        Some(_) => target.clone(),
        None => Value::Null,
    };
    match &mut result {
        // An empty result is a deleted object too (Resource.ApplySmPatch: IsNilOrEmpty).
        Value::Object(map) if map.is_empty() => {
            result = Value::Null;
            empty_nulls.clear();
        }
        Value::Object(map) => restore_identity(map, &options, kind, name, namespace),
        _ => {
            result = Value::Null;
            empty_nulls.clear();
        }
    }
    *target = result;
    Ok(())
}

/// Puts back what a patch may not change: kind and name unless allowed, and always the namespace.
fn restore_identity(
    map: &mut Map<String, Value>,
    options: &Options,
    kind: Option<Value>,
    name: Option<Value>,
    namespace: Option<Value>,
) {
    if !options.allow_kind_change {
        set_or_remove(map, "kind", kind);
    }
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        if !options.allow_name_change {
            set_or_remove(meta, "name", name);
        }
        set_or_remove(meta, "namespace", namespace.filter(|ns| ns.as_str() != Some("")));
    }
}

fn set_or_remove(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            map.insert(key.to_string(), v);
        }
        None => {
            map.remove(key);
        }
    }
}

type Id = usize;

/// One YAML node, as kyaml sees it.
#[derive(Clone, Debug)]
enum Node {
    /// `null`. `keep` is kyaml's persistent null: a target's own null that the patch left alone.
    Null {
        keep: bool,
        written: Written,
    },
    /// A string, number or boolean.
    Scalar(Value),
    Map(Vec<(String, Id)>),
    Seq(Vec<Id>),
}

/// How a null was written, which kyaml keeps in its node's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Written {
    /// `null`, `~`, or a null made by the merge.
    Text,
    /// Nothing at all (`key:`): text `""`.
    Empty,
    /// Nothing at all inside a flow collection (`{key: }`), which the YAML reader gives as `""`.
    EmptyInFlow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Map,
    Seq,
    Scalar,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Map => "map",
            Kind::Seq => "list",
            Kind::Scalar => "scalar",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Directive {
    Merge,
    Replace,
    Delete,
}

const DIRECTIVE_KEY: &str = "$patch";

/// Which kind of node kyaml's FieldMatcher/ElementSetter met where it wanted another: the merge
/// gives up, as kustomize does.
struct WrongKind;

/// Nodes of the target and the patch; ids are indices.
struct Arena<'t> {
    nodes: Vec<Node>,
    table: &'t Table,
}

impl<'t> Arena<'t> {
    fn new(table: &'t Table) -> Arena<'t> {
        Arena {
            nodes: Vec::new(),
            table,
        }
    }

    fn push(&mut self, node: Node) -> Id {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Copies a value into the arena; `None` when it nests deeper than [`MAX_DEPTH`].
    fn import(&mut self, value: &Value, depth: usize) -> Option<Id> {
        if depth > MAX_DEPTH {
            return None;
        }
        let node = match value {
            Value::Null => Node::Null {
                keep: false,
                written: Written::Text,
            },
            Value::Object(map) => {
                let mut entries = Vec::with_capacity(map.len());
                for (k, v) in map {
                    entries.push((k.clone(), self.import(v, depth + 1)?));
                }
                Node::Map(entries)
            }
            Value::Array(items) => {
                let mut ids = Vec::with_capacity(items.len());
                for v in items {
                    ids.push(self.import(v, depth + 1)?);
                }
                Node::Seq(ids)
            }
            scalar => Node::Scalar(scalar.clone()),
        };
        Some(self.push(node))
    }

    fn export(&self, id: Id) -> Value {
        match &self.nodes[id] {
            // kyaml's encoder quotes an empty plain scalar in a flow collection: it prints "".
            Node::Null {
                written: Written::EmptyInFlow,
                ..
            } => Value::String(String::new()),
            Node::Null { .. } => Value::Null,
            Node::Scalar(v) => v.clone(),
            Node::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), self.export(*v)))
                    .collect(),
            ),
            Node::Seq(ids) => Value::Array(ids.iter().map(|id| self.export(*id)).collect()),
        }
    }

    /// Marks the nulls at `pointers` below `root` as written empty; returns how many it marked.
    /// Pointers that lead nowhere or to something else than a null (or the `""` of an empty
    /// scalar in a flow collection) are ignored.
    fn mark_empty_nulls(&mut self, root: Id, pointers: &[String]) -> usize {
        let mut marked = 0;
        for pointer in pointers {
            let mut at = Some(root);
            for token in pointer.split('/').skip(1) {
                let token = token.replace("~1", "/").replace("~0", "~");
                at = at.and_then(|id| match &self.nodes[id] {
                    Node::Map(entries) => entries.iter().find(|(k, _)| *k == token).map(|(_, v)| *v),
                    Node::Seq(items) => token.parse::<usize>().ok().and_then(|i| items.get(i).copied()),
                    _ => None,
                });
            }
            let Some(id) = at else { continue };
            let written = match &self.nodes[id] {
                Node::Null { .. } => Written::Empty,
                // The reader gives an empty scalar of a flow collection as "" (what kustomize
                // prints); to kyaml's merge it is still a null.
                Node::Scalar(Value::String(text)) if text.is_empty() => Written::EmptyInFlow,
                _ => continue,
            };
            self.nodes[id] = Node::Null { keep: false, written };
            marked += 1;
        }
        marked
    }

    /// JSON pointers of the empty-written nulls left below `root`, in document order.
    fn empty_null_pointers(&self, root: Id) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![(root, String::new())];
        while let Some((id, path)) = stack.pop() {
            match &self.nodes[id] {
                Node::Null {
                    written: Written::Empty | Written::EmptyInFlow,
                    ..
                } => out.push(path),
                Node::Map(entries) => {
                    for (k, v) in entries.iter().rev() {
                        let token = k.replace('~', "~0").replace('/', "~1");
                        stack.push((*v, format!("{path}/{token}")));
                    }
                }
                Node::Seq(items) => {
                    for (i, v) in items.iter().enumerate().rev() {
                        stack.push((*v, format!("{path}/{i}")));
                    }
                }
                Node::Null { .. } | Node::Scalar(_) => {}
            }
        }
        out
    }

    // ---- node predicates, named after their kyaml counterparts ----

    fn is_null(&self, id: Id) -> bool {
        matches!(self.nodes[id], Node::Null { .. })
    }

    /// kyaml `IsMissingOrNull`.
    fn missing_or_null(&self, id: Option<Id>) -> bool {
        id.is_none_or(|id| self.is_null(id))
    }

    /// kyaml `IsEmptyMap`: missing, null or `{}`.
    fn empty_map(&self, id: Option<Id>) -> bool {
        match id {
            None => true,
            Some(id) => match &self.nodes[id] {
                Node::Null { .. } => true,
                Node::Map(entries) => entries.is_empty(),
                _ => false,
            },
        }
    }

    fn is_map(&self, id: Id) -> bool {
        matches!(self.nodes[id], Node::Map(_))
    }

    /// YAML node kind; null is a scalar, as in go-yaml.
    fn kind(&self, id: Id) -> Kind {
        match self.nodes[id] {
            Node::Map(_) => Kind::Map,
            Node::Seq(_) => Kind::Seq,
            Node::Null { .. } | Node::Scalar(_) => Kind::Scalar,
        }
    }

    /// The node's text (`yaml.Node.Value`): a scalar as written, `""` for maps and lists.
    fn text(&self, id: Id) -> String {
        match &self.nodes[id] {
            Node::Null {
                written: Written::Empty | Written::EmptyInFlow,
                ..
            } => String::new(),
            Node::Null { .. } => "null".into(),
            Node::Scalar(Value::String(s)) => s.clone(),
            Node::Scalar(v) => v.to_string(),
            Node::Map(_) | Node::Seq(_) => String::new(),
        }
    }

    /// kyaml `IsNilOrEmpty` on a field value: null, `{}` or `[]`.
    fn nil_or_empty(&self, id: Id) -> bool {
        match &self.nodes[id] {
            Node::Null { .. } => true,
            Node::Map(e) => e.is_empty(),
            Node::Seq(s) => s.is_empty(),
            Node::Scalar(_) => false,
        }
    }

    fn seq(&self, id: Id) -> &[Id] {
        match &self.nodes[id] {
            Node::Seq(ids) => ids,
            _ => &[],
        }
    }

    fn seq_mut(&mut self, id: Id) -> Option<&mut Vec<Id>> {
        match &mut self.nodes[id] {
            Node::Seq(ids) => Some(ids),
            _ => None,
        }
    }

    /// kyaml `RNode.Field(name).Value`: the value of a map entry; `None` for non-maps.
    fn field(&self, id: Id, name: &str) -> Option<Id> {
        match &self.nodes[id] {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == name).map(|(_, v)| *v),
            _ => None,
        }
    }

    fn field_names(&self, id: Id) -> impl Iterator<Item = &str> {
        let entries: &[(String, Id)] = match &self.nodes[id] {
            Node::Map(entries) => entries,
            _ => &[],
        };
        entries.iter().map(|(k, _)| k.as_str())
    }

    /// kyaml `FieldSetter{Name, Value}`: clears the field for a missing or (non-kept) null value.
    fn set_field(&mut self, map: Id, name: &str, value: Option<Id>) {
        let clear = match value {
            None => true,
            Some(v) => matches!(self.nodes[v], Node::Null { keep: false, .. }),
        };
        let Node::Map(entries) = &mut self.nodes[map] else {
            return;
        };
        match (clear, value) {
            (true, _) | (_, None) => entries.retain(|(k, _)| k != name),
            (false, Some(v)) => match entries.iter_mut().find(|(k, _)| k == name) {
                Some(entry) => entry.1 = v,
                None => entries.push((name.to_string(), v)),
            },
        }
    }

    /// kyaml `FieldMatcher{Name, StringValue}`: the field's value, if present and (for a non-empty
    /// `value`) equal to it; with an empty name, the node itself if its text equals `value`.
    fn field_matcher(&self, id: Id, name: &str, value: &str) -> Result<Option<Id>, WrongKind> {
        if self.is_null(id) {
            return Ok(None);
        }
        if name.is_empty() {
            if self.kind(id) != Kind::Scalar {
                return Err(WrongKind);
            }
            return Ok((self.text(id) == value).then_some(id));
        }
        let Node::Map(entries) = &self.nodes[id] else {
            return Err(WrongKind);
        };
        let mut found = None;
        for (k, v) in entries {
            if k == name && (value.is_empty() || self.text(*v) == value) {
                found = Some(*v);
            }
        }
        Ok(found)
    }

    /// kyaml `MatchField(name, value)`: the field's value when its text equals `value`, even "".
    fn match_field(&self, id: Id, name: &str, value: &str) -> Option<Id> {
        match &self.nodes[id] {
            Node::Map(entries) => entries
                .iter()
                .filter(|(k, v)| k == name && self.text(*v) == value)
                .map(|(_, v)| *v)
                .next_back(),
            _ => None,
        }
    }

    /// kyaml `RNode.ElementList(keys, values)`: the first element matching every key/value pair.
    fn element_list(&self, list: Option<Id>, keys: &[String], values: &[String]) -> Option<Id> {
        let list = list?;
        if self.kind(list) != Kind::Seq {
            return None;
        }
        let first_key = keys.first().map_or("", String::as_str);
        let first_value = values.first().map_or("", String::as_str);
        if first_key.is_empty() {
            return self
                .seq(list)
                .iter()
                .copied()
                .find(|item| self.text(*item) == first_value);
        }
        for &elem in self.seq(list) {
            if !(self.is_map(elem) || self.is_null(elem)) {
                continue;
            }
            if keys.len() != values.len() {
                return None;
            }
            let all = keys
                .iter()
                .zip(values)
                .all(|(k, v)| self.match_field(elem, k, v).is_some());
            if all {
                return Some(elem);
            }
        }
        None
    }

    /// kyaml `ElementSetter{Element, Keys, Values}`: replaces every matching element by `element`
    /// (appending it when none matches), or removes the matching elements when `element` is
    /// `None`. Null and `{}` elements are dropped on the way, as kyaml does.
    fn element_setter(
        &mut self,
        list: Id,
        element: Option<Id>,
        keys: &[String],
        values: &[String],
    ) -> Result<(), WrongKind> {
        let empty_key = [String::new()];
        let keys = if keys.is_empty() { &empty_key[..] } else { keys };
        let mapping_setter = !keys[0].is_empty() && values.first().is_some_and(|v| !v.is_empty());
        let mut content = Vec::new();
        let mut matched = false;
        for &elem in self.seq(list) {
            if self.empty_map(Some(elem)) {
                continue;
            }
            if !self.is_map(elem) && mapping_setter {
                content.push(elem);
                continue;
            }
            let mut found = true;
            let mut val = None;
            for (j, key) in keys.iter().enumerate() {
                if let Some(value) = values.get(j) {
                    val = self.field_matcher(elem, key, value)?;
                }
                if val.is_none() {
                    found = false;
                    break;
                }
            }
            if !found {
                if !values.is_empty() {
                    content.push(elem);
                }
                continue;
            }
            matched = true;
            if let Some(e) = element {
                content.push(e);
            }
        }
        if let Some(ids) = self.seq_mut(list) {
            *ids = content;
        }
        match element {
            Some(e) if !self.is_null(e) && !matched => {
                if let Some(ids) = self.seq_mut(list) {
                    ids.push(e);
                }
            }
            _ => {}
        }
        Ok(())
    }

    // ---- directives ----

    /// kyaml `determineSmpDirective`: reads `$patch` and removes it from the patch node.
    fn directive(&mut self, patch: Option<Id>, path: &str) -> Result<Directive, PatchError> {
        let Some(patch) = patch else {
            return Ok(Directive::Merge);
        };
        match self.kind(patch) {
            Kind::Map => {
                let Some(value) = self.field(patch, DIRECTIVE_KEY) else {
                    return Ok(Directive::Merge);
                };
                let directive = parse_directive(&self.text(value), path)?;
                self.set_field(patch, DIRECTIVE_KEY, None);
                Ok(directive)
            }
            Kind::Seq => {
                // The directive of a list is an element `{$patch: ...}` with no other field.
                let element = self
                    .seq(patch)
                    .iter()
                    .copied()
                    .find(|e| self.field(*e, DIRECTIVE_KEY).is_some());
                let Some(element) = element else {
                    return Ok(Directive::Merge);
                };
                if self.field_names(element).count() > 1 {
                    return Ok(Directive::Merge);
                }
                let Some(value) = self.field(element, DIRECTIVE_KEY) else {
                    return Ok(Directive::Merge);
                };
                let text = self.text(value);
                let directive = parse_directive(&text, path)?;
                self.element_setter(patch, None, &[DIRECTIVE_KEY.to_string()], &[text])
                    .map_err(|WrongKind| PatchError::MixedList { path: path.into() })?;
                Ok(directive)
            }
            // kyaml: "no implemented strategic merge patch strategy"; callers that can meet a
            // scalar ignore the error, as kyaml does.
            Kind::Scalar => Err(PatchError::TypeMismatch {
                path: path.into(),
                target: "map or list",
                patch: "scalar",
            }),
        }
    }

    // ---- the walker ----

    /// kyaml `Walker.GetSchema`: the schema handed down, else the schema of the source's
    /// apiVersion/kind (top level, or an embedded object below an unknown field).
    fn schema_for(&self, sources: [Option<Id>; 2], schema: Option<Schema<'t>>) -> Option<Schema<'t>> {
        if schema.is_some() {
            return schema;
        }
        for id in sources.into_iter().flatten() {
            if self.is_null(id) {
                continue;
            }
            let meta = |key| {
                self.field(id, key)
                    .filter(|v| !self.nil_or_empty(*v))
                    .map(|v| self.text(v))
            };
            let (Some(api_version), Some(kind)) = (meta("apiVersion"), meta("kind")) else {
                continue;
            };
            if api_version.is_empty() || kind.is_empty() {
                continue;
            }
            if let Some(s) = self.table.for_type(&api_version, &kind) {
                return Some(s);
            }
        }
        None
    }

    /// kyaml `Walker.Walk` over `[dest, origin]`; returns the merged node, `None` to clear it.
    fn walk(
        &mut self,
        sources: [Option<Id>; 2],
        schema: Option<Schema<'t>>,
    ) -> Result<Option<Id>, PatchError> {
        let schema = self.schema_for(sources, schema);
        let kind = sources
            .into_iter()
            .flatten()
            .find(|id| !self.is_null(*id))
            .map(|id| self.kind(id));
        let Some(kind) = kind else {
            return self.walk_map(sources, schema);
        };
        let [dest, origin] = sources.map(|s| s.filter(|id| !self.is_null(*id)).map(|id| self.kind(id)));
        for other in [dest, origin].into_iter().flatten() {
            if other != kind {
                return Err(PatchError::TypeMismatch {
                    path: ROOT_PATH.into(),
                    target: dest.unwrap_or(kind).noun(),
                    patch: origin.unwrap_or(kind).noun(),
                });
            }
        }
        match kind {
            Kind::Map => self.walk_map(sources, schema),
            Kind::Seq => match schema.and_then(Schema::merge_keys) {
                Some(keys) => self.walk_associative_list(sources, schema, keys),
                // Not a merge list: the patch's list replaces the target's.
                None => Ok(sources[1].or(sources[0])),
            },
            Kind::Scalar => Ok(sources[1].or(sources[0])),
        }
    }

    fn walk_map(
        &mut self,
        sources: [Option<Id>; 2],
        schema: Option<Schema<'t>>,
    ) -> Result<Option<Id>, PatchError> {
        let Some(dest) = self.visit_map(sources)? else {
            return Ok(None);
        };
        let sources = [Some(dest), sources[1]];
        let mut names: Vec<String> = Vec::new();
        for id in sources.into_iter().flatten() {
            names.extend(self.field_names(id).map(str::to_string));
        }
        names.sort();
        names.dedup();
        for name in names {
            let field_schema = schema.and_then(|s| self.table.field(s, &name));
            let values = sources.map(|s| s.and_then(|id| self.field(id, &name)));
            let merged = self.walk(values, field_schema).map_err(|e| e.within(&name))?;
            self.set_field(dest, &name, merged);
        }
        Ok(Some(dest))
    }

    /// kyaml `Merger.VisitMap`.
    fn visit_map(&mut self, [dest, origin]: [Option<Id>; 2]) -> Result<Option<Id>, PatchError> {
        if self.missing_or_null(dest) {
            // Adding: the patch's map becomes the target's, unless it deletes itself. kyaml
            // ignores a failure to read the directive here.
            if self.directive(origin, ROOT_PATH) == Ok(Directive::Delete) {
                return Ok(None);
            }
            if let (None, Some(dest)) = (origin, dest) {
                // A null the target wrote itself stays when the patch does not touch it, unless
                // written as nothing (kyaml keeps only a null with text).
                if let Node::Null {
                    written: Written::Empty | Written::EmptyInFlow,
                    ..
                } = self.nodes[dest]
                {
                    return Ok(None);
                }
                self.nodes[dest] = Node::Null {
                    keep: true,
                    written: Written::Text,
                };
                return Ok(Some(dest));
            }
            return Ok(origin);
        }
        if origin.is_some_and(|o| self.is_null(o)) {
            return Ok(None);
        }
        Ok(match self.directive(origin, ROOT_PATH)? {
            Directive::Delete => None,
            Directive::Replace => origin,
            Directive::Merge => dest,
        })
    }

    /// kyaml `walkAssociativeSequence` with `Merger.VisitList`.
    fn walk_associative_list(
        &mut self,
        [dest, origin]: [Option<Id>; 2],
        schema: Option<Schema<'t>>,
        keys: &[String],
    ) -> Result<Option<Id>, PatchError> {
        let dest = if self.missing_or_null(dest) {
            origin
        } else if origin.is_some_and(|o| self.is_null(o)) {
            None
        } else {
            match self.directive(origin, ROOT_PATH)? {
                Directive::Delete => None,
                Directive::Replace => origin,
                Directive::Merge => dest,
            }
        };
        let Some(dest) = dest else {
            return Ok(None);
        };
        let sources = [Some(dest), origin];
        let keys = keys.to_vec();
        let values = self.element_values(sources, &keys);
        if !values.is_empty() || !keys.is_empty() {
            self.set_list_elements(sources, schema, values, keys, dest)
        } else {
            let values = self.element_primitive_values(sources);
            self.set_list_elements(sources, schema, values, vec![String::new()], dest)
        }
    }

    /// kyaml `elementValues`: the key values of every element, the patch's first, deduplicated.
    fn element_values(&self, [dest, origin]: [Option<Id>; 2], keys: &[String]) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = Vec::new();
        for src in [origin, dest].into_iter().flatten() {
            if self.kind(src) != Kind::Seq {
                continue;
            }
            for &elem in self.seq(src) {
                let values: Vec<String> = keys
                    .iter()
                    .map(|k| match self.field(elem, k) {
                        Some(v) if !self.nil_or_empty(v) => self.text(v),
                        _ => String::new(),
                    })
                    .collect();
                if values.is_empty() || out.contains(&values) {
                    continue;
                }
                out.push(values);
            }
        }
        out
    }

    /// kyaml `elementPrimitiveValues`: the values of a list of scalars, the patch's first.
    fn element_primitive_values(&self, [dest, origin]: [Option<Id>; 2]) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = Vec::new();
        for src in [origin, dest].into_iter().flatten() {
            for &item in self.seq(src) {
                let text = self.text(item);
                if out.iter().any(|v| v[0] == text) {
                    continue;
                }
                out.push(vec![text]);
            }
        }
        out
    }

    /// kyaml `setAssociativeSequenceElements`.
    fn set_list_elements(
        &mut self,
        sources: [Option<Id>; 2],
        schema: Option<Schema<'t>>,
        mut values_list: Vec<Vec<String>>,
        keys: Vec<String>,
        dest: Id,
    ) -> Result<Option<Id>, PatchError> {
        let items = self.push(Node::Seq(Vec::new()));
        let element_schema = schema.and_then(|s| self.table.elements(s));
        if keys.len() > 1 {
            merge_values(&mut values_list);
        }
        let mixed = |_: WrongKind| PatchError::MixedList {
            path: ROOT_PATH.into(),
        };
        // kyaml merges the target's list with the keys valid for the last element.
        let mut valid_keys = Vec::new();
        for values in &values_list {
            if values.is_empty() {
                continue;
            }
            let valid_values;
            (valid_keys, valid_values) = validate_keys(&values_list, values, &keys);
            let (lookup_keys, lookup_values) =
                validate_keys(std::slice::from_ref(&valid_values), &valid_values, &valid_keys);
            let elements = sources.map(|s| self.element_list(s, &lookup_keys, &lookup_values));
            let merged = self
                .walk(elements, element_schema)
                .map_err(|e| e.within(&element_label(&lookup_keys, &lookup_values)))?;

            if self.empty_map(merged) {
                self.element_setter(dest, None, &valid_keys, &valid_values)
                    .map_err(mixed)?;
                continue;
            }
            let Some(merged) = merged else { continue };
            for (key, value) in valid_keys.iter().zip(&valid_values) {
                // Unreachable in practice (the element was found by this key), kept from kyaml:
                // the key goes back as a plain scalar.
                if self.is_map(merged) && self.field(merged, key).is_none() && !value.is_empty() {
                    let scalar = self.push(Node::Scalar(Value::String(value.clone())));
                    self.set_field(merged, key, Some(scalar));
                }
            }
            self.element_setter(items, Some(merged), &valid_keys, &valid_values)
                .map_err(mixed)?;
        }
        if values_list.is_empty() {
            return Ok(Some(dest));
        }
        // The patch's elements come first: the target's are merged into the list of the patch's.
        self.append_list(items, dest, &valid_keys).map_err(mixed)?;
        Ok(Some(items))
    }

    /// kyaml `appendListNode(dst, src, keys)`.
    fn append_list(&mut self, dst: Id, src: Id, keys: &[String]) -> Result<(), WrongKind> {
        let elements = self.seq(src).to_vec();
        for elem in elements {
            if keys.first().is_none_or(String::is_empty) {
                let text = self.text(elem);
                self.element_setter(dst, Some(elem), &[String::new()], &[text])?;
                continue;
            }
            let mut values = Vec::new();
            for key in keys {
                let value = if self.is_null(elem) {
                    None
                } else if self.is_map(elem) {
                    self.field(elem, key)
                } else {
                    return Err(WrongKind);
                };
                match value {
                    Some(v) => values.push(self.text(v)),
                    // kyaml appends an element without the key as it is (and then goes on).
                    None => {
                        if let Some(ids) = self.seq_mut(dst) {
                            ids.push(elem);
                        }
                    }
                }
            }
            if keys.len() > 1 {
                self.element_setter(dst, None, keys, &values)?;
            }
            self.element_setter(dst, Some(elem), keys, &values)?;
        }
        Ok(())
    }
}

fn parse_directive(text: &str, path: &str) -> Result<Directive, PatchError> {
    match text {
        "merge" => Ok(Directive::Merge),
        "replace" => Ok(Directive::Replace),
        "delete" => Ok(Directive::Delete),
        other => Err(PatchError::UnknownDirective {
            path: path.into(),
            directive: other.into(),
        }),
    }
}

/// `[name=web]`, `[containerPort=80,protocol=TCP]`: how an element shows in error paths.
fn element_label(keys: &[String], values: &[String]) -> String {
    let pairs: Vec<String> = keys.iter().zip(values).map(|(k, v)| format!("{k}={v}")).collect();
    format!("[{}]", pairs.join(","))
}

/// kyaml `validateKeys`: drops the merge keys that no element sets (a missing secondary key such
/// as a port's protocol), keeping the primary keys when none is set at all.
fn validate_keys(
    values_list: &[Vec<String>],
    values: &[String],
    keys: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut set: Vec<&str> = Vec::new();
    for vs in values_list {
        for (i, v) in vs.iter().enumerate() {
            if let Some(k) = keys.get(i).filter(|_| !v.is_empty()) {
                set.push(k);
            }
        }
    }
    if set.is_empty() {
        return (keys.to_vec(), values.to_vec());
    }
    let valid_keys = keys
        .iter()
        .filter(|k| set.contains(&k.as_str()))
        .cloned()
        .collect();
    let valid_values = values
        .iter()
        .enumerate()
        .filter(|(i, v)| !v.is_empty() || keys.get(*i).is_some_and(|k| set.contains(&k.as_str())))
        .map(|(_, v)| v.clone())
        .collect();
    (valid_keys, valid_values)
}

/// kyaml `mergeValues`: key tuples that differ only where one side is empty are the same element
/// (a port with and without `protocol: TCP`).
fn merge_values(values_list: &mut [Vec<String>]) {
    for i in 0..values_list.len() {
        for j in 0..values_list.len() {
            if let Some(merged) = match_values(&values_list[i], &values_list[j]) {
                values_list[i] = merged.clone();
                values_list[j] = merged;
            }
        }
    }
}

fn match_values(a: &[String], b: &[String]) -> Option<Vec<String>> {
    if a.len() != b.len() {
        return None;
    }
    let mut common = false;
    let mut out = Vec::with_capacity(a.len());
    for (x, y) in a.iter().zip(b) {
        if x == y {
            common = true;
            out.push(x.clone());
        } else if !x.is_empty() && !y.is_empty() {
            return None;
        } else if !x.is_empty() {
            out.push(x.clone());
        } else {
            out.push(y.clone());
        }
    }
    common.then_some(out)
}

#[cfg(test)]
#[path = "strategic_tests.rs"]
mod tests;
