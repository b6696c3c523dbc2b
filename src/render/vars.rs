//! Kustomize's deprecated `vars` (still run by kustomize v5.8.1): `$(NAME)` in the var-reference
//! fields of objects replaced by a field of another object, as `api/internal/accumulator`
//! (`resaccumulator.go`, `refvartransformer.go`), `api/filters/refvar` and `api/types/var.go` do:
//!
//! - each kustomization's `vars` are matched, after its transformers ran, against the objects
//!   accumulated so far by `objref` (exact group/version/kind and name, current or previous name;
//!   the namespace only when `objref.namespace` is set): the matched object remembers the var
//!   (several matches are an error, none is not yet one);
//! - var sets of bases are merged into their parent's; a name seen twice is an error;
//! - once, at the top, after hash suffixes and name references: every var takes the value of its
//!   `fieldref.fieldPath` (default `metadata.name`) in the first object remembering it, and
//!   `$(NAME)` is replaced in the fields of the `varReference` field specs (kustomize's built-in
//!   list plus `configurations`); `$$` escapes a `$`, an unknown `$(X)` stays as written, a field
//!   that is exactly `$(NAME)` takes the type of the value (a number stays a number).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::resource::{GvkSel, NO_NAMESPACE, ResMap, Resource, effective_namespace_ref, split_api_version};
use super::transforms::fieldspec::{Create, FieldSpec};

/// The field path a var reads when `fieldref` names none.
pub const DEFAULT_FIELD_PATH: &str = "metadata.name";

/// One entry of `vars` (kustomize's `types.Var`). Go's encoding/json matches keys without regard
/// to case; the spellings found in real repositories are accepted as aliases.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Var {
    #[serde(default, alias = "Name")]
    pub name: Option<String>,
    #[serde(default, alias = "objRef", alias = "ObjRef")]
    pub objref: Option<Target>,
    #[serde(default, alias = "fieldRef", alias = "FieldRef")]
    pub fieldref: Option<FieldSelector>,
}

/// `objref` of a var.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Target {
    #[serde(default, alias = "apiversion")]
    pub api_version: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `fieldref` of a var.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldSelector {
    #[serde(default, alias = "fieldpath", alias = "FieldPath")]
    pub field_path: Option<String>,
}

/// A var with kustomize's defaulting done: group and version from `apiVersion`, the default field
/// path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedVar {
    pub name: String,
    pub gvk: GvkSel,
    pub obj_name: String,
    pub namespace: String,
    pub field_path: String,
    /// The field path as written (empty when defaulted), for kustomize's messages before defaulting.
    written_field_path: String,
}

impl Var {
    /// kustomize's `Var.Defaulting` (`Target.GVK`: `apiVersion` with one `/` sets group and
    /// version, without one only the version).
    pub fn resolved(&self) -> ResolvedVar {
        let t = self.objref.clone().unwrap_or_default();
        let mut gvk = GvkSel {
            group: t.group.unwrap_or_default(),
            version: t.version.unwrap_or_default(),
            kind: t.kind.unwrap_or_default(),
        };
        if let Some(api_version) = t.api_version.filter(|a| !a.is_empty()) {
            let parts: Vec<&str> = api_version.split('/').collect();
            match parts.as_slice() {
                [g, v] => {
                    gvk.group = g.to_string();
                    gvk.version = v.to_string();
                }
                [v] => gvk.version = v.to_string(),
                _ => {}
            }
        }
        let written = self
            .fieldref
            .as_ref()
            .and_then(|f| f.field_path.clone())
            .unwrap_or_default();
        ResolvedVar {
            name: self.name.clone().unwrap_or_default(),
            gvk,
            obj_name: t.name.unwrap_or_default(),
            namespace: t.namespace.unwrap_or_default(),
            field_path: if written.is_empty() {
                DEFAULT_FIELD_PATH.to_string()
            } else {
                written.clone()
            },
            written_field_path: written,
        }
    }
}

/// Go's `%v` of a `types.Var` as written: `{NAME Kind.version.group {fieldPath}}` (the objref
/// prints as its embedded GVK's `String`, which `apiVersion`, name and namespace are not part of).
fn go_var_text(name: &str, kind: &str, version: &str, group: &str, field_path: &str) -> String {
    let or = |s: &str, none: &'static str| {
        if s.is_empty() {
            none.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{{{name} {}.{}.{} {{{field_path}}}}}",
        or(kind, "[noKind]"),
        or(version, "[noVer]"),
        or(group, "[noGrp]"),
    )
}

/// kustomize's `merging vars [...]` prefix: the kustomization's vars as written.
fn written_list(vars: &[Var]) -> String {
    let items: Vec<String> = vars
        .iter()
        .map(|v| {
            let t = v.objref.clone().unwrap_or_default();
            go_var_text(
                v.name.as_deref().unwrap_or(""),
                t.kind.as_deref().unwrap_or(""),
                t.version.as_deref().unwrap_or(""),
                t.group.as_deref().unwrap_or(""),
                v.fieldref
                    .as_ref()
                    .and_then(|f| f.field_path.as_deref())
                    .unwrap_or(""),
            )
        })
        .collect();
    format!("[{}]", items.join(" "))
}

impl ResolvedVar {
    fn go_display(&self, field_path: &str) -> String {
        go_var_text(
            &self.name,
            &self.gvk.kind,
            &self.gvk.version,
            &self.gvk.group,
            field_path,
        )
    }

    /// As printed after defaulting.
    pub fn display(&self) -> String {
        self.go_display(&self.field_path)
    }

    /// As printed before defaulting (the field path as written).
    fn display_written(&self) -> String {
        self.go_display(&self.written_field_path)
    }

    /// Whether `res` is the object the var's `objref` names (any of its names, current or
    /// previous): kustomize's `GvknEquals`, or `Equals` when the objref has a namespace.
    fn names(&self, res: &Resource) -> bool {
        let api_version = res.api_version();
        let (group, version) = split_api_version(api_version);
        if group != self.gvk.group || version != self.gvk.version {
            return false;
        }
        // The objref's own effective namespace: never cluster-scoped (kustomize does not look the
        // GVK up for it), `default` when empty.
        let wanted_ns = if self.namespace.is_empty() {
            "default"
        } else {
            self.namespace.as_str()
        };
        let ns_ok = |effective: &str| self.namespace.is_empty() || effective == wanted_ns;
        let kind = res.kind();
        let current = kind == self.gvk.kind
            && res.name() == self.obj_name
            && ns_ok(effective_namespace_ref(api_version, kind, res.namespace()));
        current
            || res.prev.iter().any(|p| {
                let ns = if p.namespace.is_empty() {
                    "default"
                } else {
                    p.namespace.as_str()
                };
                // A previous id of a cluster-scoped object keeps kustomize's stand-in namespace.
                let ns = if res.is_cluster_scoped() { NO_NAMESPACE } else { ns };
                p.kind == self.gvk.kind && p.name == self.obj_name && ns_ok(ns)
            })
    }
}

/// What can go wrong with vars; the caller names the kustomization file.
#[derive(Debug, thiserror::Error)]
pub enum VarError {
    #[error("var '{0}' already encountered")]
    Duplicate(String),
    #[error("found {count} resId matches for var {var} (unable to disambiguate)")]
    Ambiguous { count: usize, var: String },
    #[error("var '{0}' cannot be mapped to a field in the set of known resources")]
    Unmapped(String),
    #[error("field specified in var '{0}' not found in corresponding resource")]
    FieldNotFound(String),
    #[error("{object}: {message}")]
    Field { object: String, message: String },
    /// An error of a kustomization's own `vars`, after kustomize's prefix listing them.
    #[error("merging vars {vars}: {source}")]
    Merging {
        vars: String,
        #[source]
        source: Box<VarError>,
    },
}

/// The vars accumulated by a kustomization and what it includes (kustomize's `VarSet`), by name.
#[derive(Debug, Default, Clone)]
pub struct VarSet {
    set: BTreeMap<String, ResolvedVar>,
}

impl VarSet {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    fn merge(&mut self, v: ResolvedVar) -> Result<(), VarError> {
        if self.set.contains_key(&v.name) {
            return Err(VarError::Duplicate(v.name));
        }
        self.set.insert(v.name.clone(), v);
        Ok(())
    }

    /// kustomize's `MergeSet`: the vars of a base merged into its parent's.
    pub fn merge_set(&mut self, other: VarSet) -> Result<(), VarError> {
        other.set.into_values().try_for_each(|v| self.merge(v))
    }

    /// kustomize's `ResAccumulator.MergeVars`: a kustomization's `vars`, after its transformers.
    /// Each var marks the one object it names; then the vars join the set.
    pub fn merge_vars(&mut self, vars: &[Var], acc: &mut ResMap) -> Result<(), VarError> {
        self.merge_own(vars, acc).map_err(|e| VarError::Merging {
            vars: written_list(vars),
            source: Box::new(e),
        })
    }

    fn merge_own(&mut self, vars: &[Var], acc: &mut ResMap) -> Result<(), VarError> {
        let resolved: Vec<ResolvedVar> = vars.iter().map(Var::resolved).collect();
        for v in &resolved {
            let matched: Vec<usize> = acc
                .resources()
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.obj.is_null() && v.names(r))
                .map(|(i, _)| i)
                .collect();
            match matched.as_slice() {
                [] => {}
                [one] => acc.resources_mut()[*one].ref_vars.push(v.name.clone()),
                many => {
                    return Err(VarError::Ambiguous {
                        count: many.len(),
                        var: v.display_written(),
                    });
                }
            }
        }
        resolved.into_iter().try_for_each(|v| self.merge(v))
    }

    /// kustomize's `ResolveVars`: the value of every var, then `$(NAME)` replaced in the
    /// `var_reference` fields of every object. Nothing is done without vars.
    /// Returns what kustomize warns about on the way ([`Expansion`]).
    pub fn resolve(
        &self,
        resources: &mut ResMap,
        var_reference: &[FieldSpec],
    ) -> Result<Expansion, VarError> {
        if self.set.is_empty() {
            return Ok(Expansion::default());
        }
        let mut values: BTreeMap<&str, Value> = BTreeMap::new();
        let mut seen = Expansion::default();
        for v in self.set.values() {
            values.insert(&v.name, value_of(v, resources.resources())?);
        }
        for res in resources.resources_mut() {
            for fs in var_reference {
                let object = res.display_id();
                fs.apply(&mut res.obj, Create::None, &mut |node| {
                    substitute(node, &values, &mut seen)
                })
                .map_err(|message| VarError::Field { object, message })?;
            }
        }
        seen.unused = values
            .keys()
            .filter(|name| !seen.used.contains(**name))
            .map(|name| name.to_string())
            .collect();
        Ok(seen)
    }
}

/// What kustomize logs while it expands vars.
#[derive(Debug, Default, PartialEq)]
pub struct Expansion {
    /// kustomize's `replacementCounts`: vars substituted at least once.
    used: BTreeSet<String>,
    /// Each `$(NAME)` of a var whose value is a map or list (or null), which stays as written:
    /// Go's `%T` and `%v` of the value, in the order met ("MakePrimitiveReplacer: bad replacement
    /// type=... val=...").
    pub bad_values: Vec<(String, String)>,
    /// Vars never substituted, sorted ("well-defined vars that were never replaced").
    pub unused: Vec<String>,
}

/// Go's `%T` of a decoded YAML value.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "map[string]interface {}",
        Value::Array(_) => "[]interface {}",
        Value::Null => "<nil>",
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
    }
}

/// Go's `%v` of a decoded YAML value (maps with sorted keys, as `fmt` prints them).
fn go_value(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}:{}", go_value(v))).collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Null => "<nil>".to_string(),
        other => go_text(other),
    }
}

/// `findVarValueFromResources`: the var's field in the first object that remembers it.
fn value_of(v: &ResolvedVar, resources: &[Resource]) -> Result<Value, VarError> {
    let Some(res) = resources.iter().find(|r| r.ref_vars.contains(&v.name)) else {
        return Err(VarError::Unmapped(v.display()));
    };
    let path = convert_slice_index(super::replacements::split_path(&v.field_path));
    match super::replacements::lookup(&res.obj, &path) {
        Ok(Some(value)) => Ok(value.clone()),
        Ok(None) | Err(_) => Err(VarError::FieldNotFound(v.display())),
    }
}

/// kyaml's `convertSliceIndex`: `ports[0]` is the field `ports`, then index `0`.
fn convert_slice_index(parts: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for part in parts {
        let indexed = part
            .strip_suffix(']')
            .and_then(|p| p.rsplit_once('['))
            .filter(|(_, idx)| !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()));
        match indexed {
            Some((field, idx)) => {
                if !field.is_empty() {
                    out.push(field.to_string());
                }
                out.push(idx.to_string());
            }
            None => out.push(part),
        }
    }
    out
}

/// refvar's `set`: strings in a scalar, a map's values or a list's items.
fn substitute(node: &mut Value, values: &BTreeMap<&str, Value>, seen: &mut Expansion) -> Result<(), String> {
    match node {
        Value::Null => Ok(()),
        Value::String(_) => {
            replace_in(node, values, seen);
            Ok(())
        }
        Value::Object(map) => {
            for v in map.values_mut().filter(|v| v.is_string()) {
                replace_in(v, values, seen);
            }
            Ok(())
        }
        Value::Array(items) => {
            for item in items {
                if !item.is_string() {
                    return Err("invalid value type expect a string".to_string());
                }
                replace_in(item, values, seen);
            }
            Ok(())
        }
        // Numbers and booleans are not strings: left alone.
        _ => Ok(()),
    }
}

fn replace_in(node: &mut Value, values: &BTreeMap<&str, Value>, seen: &mut Expansion) {
    if let Value::String(s) = node
        && s.contains('$')
    {
        *node = do_replacements(s, values, seen);
    }
}

/// The value a var stands for, if it is a scalar kustomize can put in a string.
fn primitive<'a>(values: &'a BTreeMap<&str, Value>, name: &str) -> Option<&'a Value> {
    values
        .get(name)
        .filter(|v| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
}

/// Go's `%v` of a var's value inside a longer string.
fn go_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => go_float_v(f),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// Go's `%v` of a float64 (`%g` with the shortest precision: an exponent below 1e-4 or from 1e6).
fn go_float_v(f: f64) -> String {
    let exp = if f == 0.0 {
        0
    } else {
        f.abs().log10().floor() as i32
    };
    if !(-4..6).contains(&exp) {
        let s = format!("{f:e}");
        // Rust prints `1e21`, Go `1e+21`.
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e:0>2}"),
            Some((m, e)) => format!("{m}e-{:0>2}", &e[1..]),
            None => s,
        }
    } else {
        format!("{f}")
    }
}

/// refvar's `DoReplacements`: `$(NAME)` replaced by the var's value, `$$` made `$`, anything else
/// kept. A string that is exactly one `$(NAME)` of a known var takes the value itself.
fn do_replacements(input: &str, values: &BTreeMap<&str, Value>, seen: &mut Expansion) -> Value {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(close) => {
                        let name = &rest[1..close];
                        let whole = input.len() == close + 2 && cursor == 0;
                        let found = primitive(values, name);
                        if found.is_some() {
                            seen.used.insert(name.to_string());
                        } else if let Some(other) = values.get(name) {
                            seen.bad_values
                                .push((go_type(other).to_string(), go_value(other)));
                        }
                        match found {
                            Some(value) if whole => return value.clone(),
                            Some(value) => out.push_str(&go_text(value)),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        close + 1
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    // `$` and the character after it, kept.
                    let next = rest.chars().next().map_or(1, char::len_utf8);
                    out.push('$');
                    out.push_str(&rest[..next]);
                    next
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < input.len() {
        out.push_str(&input[checkpoint..]);
    }
    Value::String(out)
}

/// kustomize's built-in `varReference` field specs (`builtinpluginconsts/varreference.go`).
pub fn builtin_var_references() -> Vec<FieldSpec> {
    const POD: &[&str] = &[
        "containers/args",
        "containers/command",
        "containers/env/value",
        "containers/volumeMounts/mountPath",
        "initContainers/args",
        "initContainers/command",
        "initContainers/env/value",
        "initContainers/volumeMounts/mountPath",
    ];
    let kind = |k: &str, path: String| FieldSpec::new(GvkSel::kind(k), &path, false);
    let mut out = Vec::new();
    for p in POD {
        out.push(kind(
            "CronJob",
            format!("spec/jobTemplate/spec/template/spec/{p}"),
        ));
    }
    out.push(kind(
        "CronJob",
        "spec/jobTemplate/spec/template/volumes/nfs/server".into(),
    ));
    for k in ["DaemonSet", "Deployment"] {
        for p in POD {
            out.push(kind(k, format!("spec/template/spec/{p}")));
        }
        out.push(kind(k, "spec/template/spec/volumes/nfs/server".into()));
    }
    out.push(kind("Deployment", "spec/template/metadata/annotations".into()));
    for p in ["spec/rules/host", "spec/tls/hosts", "spec/tls/secretName"] {
        out.push(kind("Ingress", p.into()));
    }
    for p in POD {
        out.push(kind("Job", format!("spec/template/spec/{p}")));
    }
    out.push(kind("Job", "spec/template/spec/volumes/nfs/server".into()));
    for p in POD {
        out.push(kind("Pod", format!("spec/{p}")));
    }
    out.push(kind("Pod", "spec/volumes/nfs/server".into()));
    for p in POD {
        out.push(kind("ReplicaSet", format!("spec/template/spec/{p}")));
    }
    out.push(kind("ReplicaSet", "spec/template/spec/volumes/nfs/server".into()));
    out.push(kind("Service", "spec/ports/port".into()));
    out.push(kind("Service", "spec/ports/targetPort".into()));
    for p in POD {
        out.push(kind("StatefulSet", format!("spec/template/spec/{p}")));
    }
    out.push(kind(
        "StatefulSet",
        "spec/volumeClaimTemplates/spec/nfs/server".into(),
    ));
    out.push(kind("PersistentVolume", "spec/nfs/server".into()));
    out.push(FieldSpec::new(GvkSel::default(), "metadata/labels", false));
    out.push(FieldSpec::new(GvkSel::default(), "metadata/annotations", false));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vals(pairs: &[(&'static str, Value)]) -> BTreeMap<&'static str, Value> {
        pairs.iter().cloned().collect()
    }

    #[test]
    fn replacements_follow_kustomizes_expansion() {
        let v = vals(&[("A", json!("x")), ("P", json!(8080)), ("M", json!({"k": 1}))]);
        let mut used = Expansion::default();
        assert_eq!(
            do_replacements("$$(A) $(B) $(M)", &v, &mut used),
            json!("$(A) $(B) $(M)")
        );
        // A map value is no replacement: M stays unused, as in kustomize's counts, and is logged.
        assert!(used.used.is_empty());
        assert_eq!(
            used.bad_values,
            [("map[string]interface {}".to_string(), "map[k:1]".to_string())]
        );
        assert_eq!(do_replacements("$(A)", &v, &mut used), json!("x"));
        assert_eq!(do_replacements("$(P)", &v, &mut used), json!(8080));
        assert_eq!(do_replacements("p=$(P)/$(A)", &v, &mut used), json!("p=8080/x"));
        assert_eq!(
            do_replacements("a$b $( end$", &v, &mut used),
            json!("a$b $( end$")
        );
        assert_eq!(do_replacements("é$é$(A)", &v, &mut used), json!("é$éx"));
        assert_eq!(used.used, BTreeSet::from(["A".to_string(), "P".to_string()]));
    }

    fn var(name: &str, objref: Value) -> Var {
        serde_json::from_value(json!({"name": name, "objref": objref})).unwrap()
    }

    fn resmap(objs: &[Value]) -> ResMap {
        let mut m = ResMap::new();
        for o in objs {
            m.append(Resource::new(
                o.clone(),
                crate::source::TreePath::new("x.yaml").unwrap(),
            ))
            .unwrap();
        }
        m
    }

    #[test]
    fn objref_defaulting_and_matching() {
        let v = var(
            "A",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}),
        )
        .resolved();
        assert_eq!((v.gvk.group.as_str(), v.gvk.version.as_str()), ("apps", "v1"));
        assert_eq!(v.field_path, DEFAULT_FIELD_PATH);
        let v = var("A", json!({"group": "g", "apiVersion": "v2", "kind": "K"})).resolved();
        assert_eq!((v.gvk.group.as_str(), v.gvk.version.as_str()), ("g", "v2"));

        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "pre-web"}});
        let mut acc = resmap(&[deploy]);
        acc.resources_mut()[0].prev.push(crate::render::resource::PrevId {
            kind: "Deployment".into(),
            name: "web".into(),
            namespace: "default".into(),
        });
        let mut set = VarSet::default();
        // Matched by its previous name; without apiVersion the GVK does not match.
        set.merge_vars(
            &[
                var("A", json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"})),
                var("B", json!({"kind": "Deployment", "name": "web"})),
                var("C", json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "other"})),
            ],
            &mut acc,
        )
        .unwrap();
        assert_eq!(acc.resources()[0].ref_vars, ["A"]);
        let err = set
            .merge_vars(&[var("A", json!({"kind": "X", "name": "y"}))], &mut acc)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "merging vars [{A X.[noVer].[noGrp] {}}]: var 'A' already encountered"
        );
        let err = set.resolve(&mut acc, &builtin_var_references()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "var '{B Deployment.[noVer].[noGrp] {metadata.name}}' cannot be mapped to a field in the set of known resources"
        );
    }

    #[test]
    fn builtin_table_has_kustomizes_size() {
        assert_eq!(builtin_var_references().len(), 72);
    }

    #[test]
    fn slice_indexes_are_split() {
        assert_eq!(
            convert_slice_index(vec!["spec".into(), "ports[0]".into(), "[1]".into()]),
            ["spec", "ports", "0", "1"]
        );
    }

    #[test]
    fn go_floats() {
        assert_eq!(go_float_v(0.5), "0.5");
        assert_eq!(go_float_v(1e21), "1e+21");
        assert_eq!(go_float_v(1e6), "1e+06");
        assert_eq!(go_float_v(123456.0), "123456");
    }
}
