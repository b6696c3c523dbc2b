//! Field specs: "in objects of this group/version/kind, the field at this path", and walking an
//! object to the fields a spec names, as kustomize's `fieldspec.Filter` does.
//!
//! Paths are `/`-separated (`\/` escapes a slash inside a key, e.g. annotation names); lists on the
//! way are entered element by element without being named, and a `[]` suffix marks a part that is
//! expected to be a list. With `create`, missing maps on the way and the final field are created.

use serde_json::{Map, Value};

use crate::render::resource::{GvkSel, split_api_version};

/// One field spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    pub gvk: GvkSel,
    /// The path as written, for messages.
    pub path: String,
    parts: Vec<String>,
    pub create: bool,
}

/// What kind of node to create at the end of a path that does not exist (kustomize's
/// `CreateKind`); `None` never creates, whatever the spec says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    None,
    Scalar,
    Map,
}

/// Splits a field-spec path at `/`, keeping `\/` as a slash inside a part (kustomize's
/// `PathSplitter`). A leading `/` is ignored.
pub fn split_path(path: &str) -> Vec<String> {
    let mut pieces: Vec<&str> = path.split('/').collect();
    if pieces.len() > 1 && pieces[0].is_empty() {
        pieces.remove(0);
    }
    let mut out: Vec<String> = Vec::new();
    for piece in pieces {
        match out.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('/');
                last.push_str(piece);
            }
            _ => out.push(piece.to_string()),
        }
    }
    out
}

impl FieldSpec {
    pub fn new(gvk: GvkSel, path: &str, create: bool) -> FieldSpec {
        FieldSpec {
            gvk,
            path: path.to_string(),
            parts: split_path(path),
            create,
        }
    }

    /// The specs of `specs` that apply to `obj` (by its current `apiVersion` and `kind`), in
    /// order: reads the object's GVK once instead of once per spec.
    pub fn selecting<'s>(specs: &'s [FieldSpec], obj: &Value) -> Vec<&'s FieldSpec> {
        let (group, version, kind) = gvk_of(obj);
        FieldSpec::selected_by(specs, group, version, kind)
    }

    /// The specs of `specs` that apply to objects of `group`/`version`/`kind`, in order.
    pub fn selected_by<'s>(
        specs: &'s [FieldSpec],
        group: &str,
        version: &str,
        kind: &str,
    ) -> Vec<&'s FieldSpec> {
        specs
            .iter()
            .filter(|fs| fs.gvk.selects(group, version, kind))
            .collect()
    }

    /// Whether the spec applies to `obj`, by its current `apiVersion` and `kind`.
    pub fn matches(&self, obj: &Value) -> bool {
        let (group, version, kind) = gvk_of(obj);
        self.gvk.selects(group, version, kind)
    }

    /// kustomize's "effectively equal" for merging spec lists: same path, and this spec's GVK
    /// selected by the other's.
    pub fn same_field(&self, other: &FieldSpec) -> bool {
        self.path == other.path && self.gvk_selected_by(&other.gvk)
    }

    fn gvk_selected_by(&self, sel: &GvkSel) -> bool {
        sel.selects(&self.gvk.group, &self.gvk.version, &self.gvk.kind)
    }

    /// Calls `set` on every field of `obj` this spec names (after checking the GVK), creating the
    /// path as `create` allows.
    pub fn apply(
        &self,
        obj: &mut Value,
        create: Create,
        set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
    ) -> Result<(), String> {
        if !self.matches(obj) {
            return Ok(());
        }
        self.apply_unchecked(obj, create, set)
    }

    /// [`FieldSpec::apply`] without the GVK check (the caller already selected the object).
    pub fn apply_unchecked(
        &self,
        obj: &mut Value,
        create: Create,
        set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
    ) -> Result<(), String> {
        let create = if self.create { create } else { Create::None };
        walk(obj, &self.parts, create, set).map_err(|e| format!("field '{}': {e}", self.path))
    }
}

/// The current group, version and kind of `obj` (empty when missing).
fn gvk_of(obj: &Value) -> (&str, &str, &str) {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let (group, version) = split_api_version(api_version);
    (group, version, kind)
}

fn walk(
    node: &mut Value,
    path: &[String],
    create: Create,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let Some((first, rest)) = path.split_first() else {
        return set(node);
    };
    match node {
        Value::Null => Ok(()),
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|item| walk(item, path, create, set)),
        Value::Object(map) => walk_map(map, first, rest, create, set),
        _ => Err("expected sequence or mapping node".to_string()),
    }
}

fn walk_map(
    map: &mut Map<String, Value>,
    first: &str,
    rest: &[String],
    create: Create,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let (name, is_seq) = match first.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (first, false),
    };
    if name.is_empty() {
        return Err("cannot set or create an empty field name".to_string());
    }
    if create == Create::None || is_seq {
        let Some(field) = map.get_mut(name) else {
            return Ok(());
        };
        if is_seq && field.is_null() {
            // kustomize turns a null it expected to be a list into an empty one.
            *field = Value::Array(Vec::new());
        }
        return walk(field, rest, create, set);
    }
    let field = map.entry(name).or_insert(Value::Null);
    let creates_map = !rest.is_empty() || create == Create::Map;
    if field.is_null() && creates_map {
        *field = Value::Object(Map::new());
    }
    walk(field, rest, create, set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set_to(v: &'static str) -> impl FnMut(&mut Value) -> Result<(), String> {
        move |n: &mut Value| {
            *n = json!(v);
            Ok(())
        }
    }

    #[test]
    fn splits_escaped_slashes() {
        assert_eq!(
            split_path("metadata/annotations/nginx.ingress.kubernetes.io\\/auth-secret"),
            [
                "metadata",
                "annotations",
                "nginx.ingress.kubernetes.io/auth-secret"
            ]
        );
        assert_eq!(split_path("/spec/x"), ["spec", "x"]);
    }

    #[test]
    fn walks_lists_and_creates_only_when_asked() {
        let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {
            "containers": [{"env": [{"valueFrom": {"configMapKeyRef": {"name": "a"}}}, {"value": "x"}]}]}}}});
        let fs = FieldSpec::new(
            GvkSel::kind("Deployment"),
            "spec/template/spec/containers/env/valueFrom/configMapKeyRef/name",
            false,
        );
        fs.apply(&mut obj, Create::Scalar, &mut set_to("b")).unwrap();
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["configMapKeyRef"]["name"],
            "b"
        );
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][0]["env"][1],
            json!({"value": "x"})
        );

        let fs = FieldSpec::new(GvkSel::default(), "spec/selector/matchLabels", true);
        let mut svc = json!({"kind": "Service", "spec": {}});
        fs.apply(&mut svc, Create::Map, &mut |n: &mut Value| {
            n["a"] = json!("b");
            Ok(())
        })
        .unwrap();
        assert_eq!(svc["spec"]["selector"], json!({"matchLabels": {"a": "b"}}));
        let mut other = json!({"kind": "Job", "spec": {}});
        let no_create = FieldSpec::new(GvkSel::default(), "spec/selector/matchLabels", false);
        no_create
            .apply(&mut other, Create::Map, &mut set_to("x"))
            .unwrap();
        assert_eq!(other["spec"], json!({}));
    }

    #[test]
    fn gvk_must_match_and_scalars_in_the_way_are_errors() {
        let fs = FieldSpec::new(
            GvkSel {
                group: "apps".into(),
                ..GvkSel::kind("Deployment")
            },
            "spec/template",
            false,
        );
        let mut ext =
            json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment", "spec": {"template": 1}});
        fs.apply(&mut ext, Create::None, &mut set_to("x")).unwrap();
        assert_eq!(ext["spec"]["template"], 1);
        let deep = FieldSpec::new(GvkSel::default(), "spec/template/metadata", false);
        let err = deep.apply(&mut ext, Create::None, &mut set_to("x")).unwrap_err();
        assert_eq!(
            err,
            "field 'spec/template/metadata': expected sequence or mapping node"
        );
    }
}
