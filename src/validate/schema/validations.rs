//! CRD validation rules (`x-kubernetes-validations`, CEL) checked offline, with the apiserver's
//! semantics: a rule sits at a schema node and is evaluated for every value at that node with `self`
//! bound to the value (for list and map nodes too: `self` is the list or map), after pruning (fields
//! the schema does not know are invisible, absent optional fields make `has()` false, nulls of
//! non-nullable fields are absent). Integers are CEL `int`, `number`s are `double`, int-or-string
//! values are `int` or `string`, object properties are escaped as Kubernetes escapes them
//! (`foo-bar` is `self.foo__dash__bar`), and of `metadata` only `name` and `generateName` are visible.
//!
//! Rules are compiled once per process (a cache keyed by the expression, shared by every CRD and
//! every cluster render) with the `cel` crate (cel-rust; docs/validation-cel.md says why), in an
//! environment with Kubernetes' CEL libraries (src/validate/schema/k8s_cel). A rule kgitops cannot
//! check (a function it lacks: durations, timestamps, two-variable comprehensions, `format.datetime()`; a
//! parse error; `optionalOldSelf`) is reported as "cannot check offline" — never silently passed. Transition rules (those using `oldSelf`) need the old object: they are evaluated only
//! when validating a change with a base render, on values that correlate with the old object
//! (through object fields, map keys and list-type=map keys, as Kubernetes correlates them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cel::{Context, Env, ExecutionError, Program};
use serde_json::Value;

use super::{Arena, IssueKind, ListType, Node, Ref, SchemaIssue, Types, Unlisted};

/// One `x-kubernetes-validations` entry of a CRD schema node, compiled.
pub(crate) struct CelRule {
    /// The rule as written.
    pub(crate) rule: String,
    /// The compiled rule, or why it cannot be checked offline.
    program: Result<Arc<Program>, String>,
    message: Option<String>,
    /// `messageExpression`, compiled; `None` when absent or when the crate cannot compile it (the
    /// apiserver then falls back to `message` too).
    message_expression: Option<Arc<Program>>,
    /// `fieldPath`, converted to kgitops' path syntax (`spec.rack` / `[key]`).
    field_path: Option<String>,
    /// `reason` (`FieldValueInvalid` when absent).
    reason: Option<String>,
    /// Uses `oldSelf`: evaluated only with the old value.
    transition: bool,
    /// Where in the CRD the rule sits (`spec.versions[0].schema.openAPIV3Schema.properties.spec`),
    /// for "cannot check offline" messages.
    location: String,
}

impl std::fmt::Debug for CelRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CelRule")
            .field("rule", &self.rule)
            .field("checkable", &self.program.is_ok())
            .finish_non_exhaustive()
    }
}

impl CelRule {
    /// The message the apiserver reports when the rule fails (`message`, else `failed rule: ...`).
    fn default_message(&self) -> String {
        match &self.message {
            Some(m) if !m.trim().is_empty() => m.trim().to_string(),
            _ => format!("failed rule: {}", self.rule.trim()),
        }
    }

    /// `message`, else the rule itself: what the apiserver appends to evaluation errors.
    fn error_string(&self) -> String {
        match &self.message {
            Some(m) if !m.trim().is_empty() => m.trim().to_string(),
            _ => self.rule.trim().to_string(),
        }
    }
}

/// Compiles the `x-kubernetes-validations` list of one schema node. Entries the crate cannot
/// compile become unchecked rules; only a list that is not a list of objects with a `rule` is an
/// error (the apiserver refuses such a CRD).
pub(crate) fn compile_rules(list: &Value, at: &str) -> Result<Vec<Arc<CelRule>>, String> {
    let items = list
        .as_array()
        .ok_or_else(|| format!("{at}.x-kubernetes-validations: must be a list"))?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let where_ = format!("{at}.x-kubernetes-validations[{i}]");
        let rule = item
            .get("rule")
            .and_then(Value::as_str)
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| format!("{where_}.rule: missing"))?;
        let text = |key: &str| item.get(key).and_then(Value::as_str).map(str::to_string);
        let optional_old_self = item
            .get("optionalOldSelf")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut program = compiled(rule);
        let transition = program
            .as_ref()
            .is_ok_and(|p| p.references().has_variable("oldSelf"));
        if optional_old_self && program.is_ok() {
            // `oldSelf` is then an optional (optional.none() on create); binding one offline is not
            // something this checker does yet.
            program = Err("it uses optionalOldSelf".to_string());
        }
        let message_expression = text("messageExpression").and_then(|m| compiled(&m).ok());
        out.push(Arc::new(CelRule {
            rule: rule.to_string(),
            program,
            message: text("message"),
            message_expression,
            field_path: text("fieldPath").map(|p| field_path(&p)),
            reason: text("reason"),
            transition,
            location: where_,
        }));
    }
    Ok(out)
}

/// Kubernetes' CEL environment (1.36): the crate's standard library (macros `has`, `all`,
/// `exists`, `exists_one`, `map`, `filter`, optionals), its strings and lists extensions, and the
/// Kubernetes libraries of [`super::k8s_cel`] (quantities, lists, regex, URLs, IPs, CIDRs, semver,
/// sets).
fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(build_env().unwrap_or_else(|_| Env::stdlib())))
}

/// The environment, or the crate's refusal to declare one of the overloads (a crate upgrade that
/// grew one; a unit test catches it). Without it, every rule runs on the bare standard library and
/// rules using the libraries become "cannot check offline" through [`crate_gap`].
fn build_env() -> Result<Env, cel::DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)?;
    env.add_extension(cel::extensions::lists)?;
    env.add_extension(super::k8s_cel::register)?;
    Ok(env)
}

/// Functions of Kubernetes' CEL environment that kgitops does not evaluate: durations and
/// timestamps (they need the crate's `chrono` feature, which kgitops leaves off), the two-variable
/// comprehensions (`all(k, v, ...)` and friends are left as plain calls by the crate's macros,
/// which expand the one-variable forms only) and `transformList`/`transformMap`/
/// `transformMapEntry`.
const MISSING_FUNCTIONS: &[&str] = &[
    "all",
    "exists",
    "existsOne",
    "exists_one",
    "transformList",
    "transformMap",
    "transformMapEntry",
    "duration",
    "timestamp",
    "getSeconds",
    "getMinutes",
    "getHours",
    "getMilliseconds",
    "getFullYear",
    "getMonth",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
];

/// Namespaced Kubernetes library functions kgitops lacks, as (namespace, function):
/// `format.datetime()` parses as a call of `datetime` on a variable `format`.
const MISSING_QUALIFIED: &[(&str, &str)] = &[("format", "datetime")];

/// A compiled expression, or why it cannot be checked offline.
type Compiled = Result<Arc<Program>, String>;

/// Compiles an expression once per process.
fn compiled(source: &str) -> Compiled {
    static CACHE: OnceLock<Mutex<HashMap<String, Compiled>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(map) = cache.lock()
        && let Some(hit) = map.get(source)
    {
        return hit.clone();
    }
    let result = compile_uncached(source);
    if let Ok(mut map) = cache.lock() {
        map.insert(source.to_string(), result.clone());
    }
    result
}

fn compile_uncached(source: &str) -> Result<Arc<Program>, String> {
    let program = env()
        .compile(source)
        .map_err(|e| format!("the CEL parser refuses it ({})", first_line(&e.to_string())))?;
    let refs = program.references();
    if let Some(f) = MISSING_FUNCTIONS.iter().find(|f| refs.has_function(f)) {
        return Err(format!(
            "it uses the Kubernetes CEL function {f}(), which kgitops cannot evaluate"
        ));
    }
    if let Some((ns, f)) = MISSING_QUALIFIED
        .iter()
        .find(|(ns, f)| refs.has_variable(ns) && refs.has_function(f))
    {
        return Err(format!(
            "it uses the Kubernetes CEL function {ns}.{f}(), which kgitops cannot evaluate"
        ));
    }
    Ok(Arc::new(program))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// `.spec.rack` / `['a.b'].c` / `.list[0]` -> `spec.rack` / `[a.b].c` / `list[0]`.
fn field_path(p: &str) -> String {
    let mut out = String::new();
    let mut rest = p.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['")
            && let Some(end) = r.find("']")
        {
            out.push('[');
            out.push_str(&r[..end]);
            out.push(']');
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('.') {
            if !out.is_empty() {
                out.push('.');
            }
            let end = r.find(['.', '[']).unwrap_or(r.len());
            out.push_str(&r[..end]);
            rest = &r[end..];
        } else {
            // `[0]` or anything else: copied as it is.
            let end = rest[1..].find(['.', '[']).map_or(rest.len(), |e| e + 1);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Evaluation.

/// Evaluates the CEL rules of a compiled CRD version on one object (and, when validating a change,
/// its old version), appending issues.
pub(super) struct Checker<'a> {
    pub(super) builtin: &'a Arena,
    pub(super) issues: Vec<SchemaIssue>,
}

impl<'a> Checker<'a> {
    /// Walks the nodes that have rules at or below them.
    pub(super) fn check(
        &mut self,
        arena: &'a Arena,
        r: Ref,
        value: &Value,
        old: Option<&Value>,
        path: &mut String,
    ) {
        // Built-in nodes (metadata) never carry rules.
        let Ref::Same(id) = r else { return };
        let Some(node) = arena.nodes.get(id as usize) else {
            return;
        };
        if !node.cel_below || value.is_null() || !node.types.admits(value) {
            return;
        }
        if !node.rules.is_empty() {
            self.evaluate(arena, node, value, old, path);
        }
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    let child = match node.properties.get(key) {
                        Some(c) => *c,
                        None => match node.unlisted {
                            Unlisted::Map(c) => c,
                            _ => continue,
                        },
                    };
                    let len = path.len();
                    if node.properties.contains_key(key) {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.push_str(key);
                    } else {
                        path.push('[');
                        path.push_str(key);
                        path.push(']');
                    }
                    let old_child = old.and_then(|o| o.get(key));
                    self.check(arena, child, v, old_child, path);
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                let Some(item) = node.items else { return };
                for (i, v) in items.iter().enumerate() {
                    let old_item = match (&node.list, old) {
                        // Kubernetes correlates list items by their keys in list-type=map lists
                        // only; items of sets and atomic lists have no old value.
                        (ListType::Map(keys), Some(Value::Array(olds))) => {
                            olds.iter().find(|o| keys.iter().all(|k| o.get(k) == v.get(k)))
                        }
                        _ => None,
                    };
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.check(arena, item, v, old_item, path);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }

    fn evaluate(&mut self, arena: &Arena, node: &Node, value: &Value, old: Option<&Value>, path: &str) {
        let this = to_cel(self.builtin, arena, node, value);
        let old_value = old
            .filter(|o| !o.is_null() && node.types.admits(o))
            .map(|o| to_cel(self.builtin, arena, node, o));
        for rule in &node.rules {
            if rule.transition && old_value.is_none() {
                // No old value (a create, or no base render): the apiserver skips transition rules.
                continue;
            }
            let program = match &rule.program {
                Ok(p) => p,
                Err(why) => {
                    self.unchecked(rule, why, path);
                    continue;
                }
            };
            let mut ctx = Context::with_env(Arc::clone(env()));
            ctx.add_variable_from_value("self", this.clone());
            if let Some(o) = &old_value {
                ctx.add_variable_from_value("oldSelf", o.clone());
            }
            let at = match &rule.field_path {
                Some(fp) if fp.starts_with('[') || path.is_empty() => format!("{path}{fp}"),
                Some(fp) => format!("{path}.{fp}"),
                None => path.to_string(),
            };
            let message = match program.execute(&ctx) {
                Ok(cel::Value::Bool(true)) => continue,
                Ok(cel::Value::Bool(false)) => rule
                    .message_expression
                    .as_ref()
                    .and_then(|m| match m.execute(&ctx) {
                        Ok(cel::Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                        _ => None,
                    })
                    .unwrap_or_else(|| rule.default_message()),
                Ok(other) => format!(
                    "rule evaluated to {other:?}, not a boolean: {}",
                    rule.error_string()
                ),
                Err(err) => {
                    if let Some(why) = crate_gap(&err) {
                        self.unchecked(rule, &why, path);
                        continue;
                    }
                    format!("{} evaluating rule: {}", cel_error(&err), rule.error_string())
                }
            };
            let message = match rule.reason.as_deref() {
                Some(reason) if reason != "FieldValueInvalid" => format!("{message} ({reason})"),
                _ => message,
            };
            self.issues.push(SchemaIssue {
                kind: IssueKind::CelRule,
                path: at,
                message,
                fix: format!(
                    "change the value so that the CRD's validation rule holds: {}",
                    rule.rule.trim()
                ),
            });
        }
    }

    fn unchecked(&mut self, rule: &CelRule, why: &str, path: &str) {
        self.issues.push(SchemaIssue {
            kind: IssueKind::CelUnchecked,
            path: path.to_string(),
            message: format!(
                "cannot check the CRD validation rule at {} offline: {why}; the apiserver checks it: {}",
                rule.location,
                rule.rule.trim()
            ),
            fix: "check this rule with a server-side dry run (`kgitops diff --live`)".into(),
        });
    }
}

/// An evaluation error that means the crate lacks something Kubernetes has, not a refusal.
fn crate_gap(err: &ExecutionError) -> Option<String> {
    match err {
        ExecutionError::UndeclaredReference(name) => Some(format!(
            "the CEL evaluator does not know {name:?} (a Kubernetes CEL library kgitops lacks)"
        )),
        _ => None,
    }
}

/// Evaluation errors in the apiserver's words where they differ (`no such key: topologyKey`).
fn cel_error(err: &ExecutionError) -> String {
    match err {
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON to CEL values, typed by the schema.

fn resolve<'x>(builtin: &'x Arena, arena: &'x Arena, r: Ref) -> Option<(&'x Arena, &'x Node, bool)> {
    match r {
        Ref::Same(id) => arena.nodes.get(id as usize).map(|n| (arena, n, false)),
        Ref::Builtin(id) => builtin.nodes.get(id as usize).map(|n| (builtin, n, true)),
    }
}

/// A JSON value as CEL sees it at `node`.
fn to_cel(builtin: &Arena, arena: &Arena, node: &Node, value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => {
            let number_only = node.types == Types::NUMBER;
            if !number_only && let Some(i) = n.as_i64() {
                cel::Value::Int(i)
            } else if !number_only
                && node.types != Types::ANY
                && let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e18
            {
                // `3.0` in an integer field is the integer 3 (Go's JSON decoding does the same).
                cel::Value::Int(f as i64)
            } else {
                cel::Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => {
            let item = node.items.and_then(|r| resolve(builtin, arena, r));
            let list: Vec<cel::Value> = items
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| match item {
                    Some((a, n, _)) => to_cel(builtin, a, n, v),
                    None => untyped(v),
                })
                .collect();
            cel::Value::List(Arc::new(list))
        }
        Value::Object(map) => {
            let mut out: HashMap<cel::objects::Key, cel::Value> = HashMap::with_capacity(map.len());
            for (key, v) in map {
                if let Some(r) = node.properties.get(key) {
                    let Some((a, n, is_builtin)) = resolve(builtin, arena, *r) else {
                        continue;
                    };
                    // Pruning: a null in a non-nullable field is dropped (absent for has()).
                    if v.is_null() && !n.nullable {
                        continue;
                    }
                    let Some(name) = escape_property(key) else {
                        continue;
                    };
                    let converted = if is_builtin && key == "metadata" {
                        metadata(v)
                    } else {
                        to_cel(builtin, a, n, v)
                    };
                    out.insert(cel::objects::Key::String(Arc::new(name)), converted);
                } else {
                    let converted = match node.unlisted {
                        Unlisted::Unknown => continue,
                        Unlisted::Kept => untyped(v),
                        Unlisted::Map(r) => match resolve(builtin, arena, r) {
                            Some((a, n, _)) => to_cel(builtin, a, n, v),
                            None => untyped(v),
                        },
                    };
                    out.insert(cel::objects::Key::String(Arc::new(key.clone())), converted);
                }
            }
            cel::Value::from(out)
        }
    }
}

/// Of the root `metadata`, CEL rules see `name` and `generateName` only.
fn metadata(v: &Value) -> cel::Value {
    let mut out: HashMap<cel::objects::Key, cel::Value> = HashMap::new();
    for key in ["name", "generateName"] {
        if let Some(Value::String(s)) = v.get(key) {
            out.insert(
                cel::objects::Key::String(Arc::new(key.to_string())),
                cel::Value::String(Arc::new(s.clone())),
            );
        }
    }
    cel::Value::from(out)
}

/// A value without schema (preserved unknown fields): dynamic.
fn untyped(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => cel::Value::Int(i),
            None => match n.as_u64() {
                Some(u) => cel::Value::UInt(u),
                None => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(untyped).collect())),
        Value::Object(map) => {
            let out: HashMap<cel::objects::Key, cel::Value> = map
                .iter()
                .map(|(k, v)| (cel::objects::Key::String(Arc::new(k.clone())), untyped(v)))
                .collect();
            cel::Value::from(out)
        }
    }
}

/// CEL reserved words that Kubernetes escapes as `__word__` in property names.
const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// A property name as CEL rules spell it (Kubernetes' escaping), or `None` when CEL cannot
/// reach it.
fn escape_property(name: &str) -> Option<String> {
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '_' | '.' | '-' | '/'));
    if !first_ok
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
    {
        return None;
    }
    if !name.contains(['_', '.', '-', '/']) {
        return Some(name.to_string());
    }
    let mut out = String::with_capacity(name.len() + 8);
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("__") {
            out.push_str("__underscores__");
            rest = &rest[2..];
            continue;
        }
        match c {
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_names_are_escaped_as_kubernetes_escapes_them() {
        assert_eq!(escape_property("topologyKey").as_deref(), Some("topologyKey"));
        assert_eq!(escape_property("foo-bar").as_deref(), Some("foo__dash__bar"));
        assert_eq!(escape_property("a.b/c").as_deref(), Some("a__dot__b__slash__c"));
        assert_eq!(escape_property("x__y").as_deref(), Some("x__underscores__y"));
        assert_eq!(escape_property("namespace").as_deref(), Some("__namespace__"));
        assert_eq!(escape_property("1abc"), None);
        assert_eq!(escape_property("a b"), None);
    }

    #[test]
    fn field_paths_become_kgitops_paths() {
        assert_eq!(field_path(".spec.rack"), "spec.rack");
        assert_eq!(field_path(".labels['a.b'].x"), "labels[a.b].x");
        assert_eq!(field_path(".list[0].name"), "list[0].name");
    }

    #[test]
    fn the_kubernetes_libraries_register_on_the_crate_s_environment() {
        assert!(build_env().is_ok(), "{:?}", build_env().err());
    }

    #[test]
    fn unsupported_functions_are_not_checkable() {
        let gap = compiled("self.x.all(k, v, v > 0)").unwrap_err();
        assert!(gap.contains("all"), "{gap}");
        let gap = compiled("duration(self.d) > duration('1s')").unwrap_err();
        assert!(gap.contains("duration"), "{gap}");
        let gap = compiled("format.datetime().validate(self).hasValue() == false").unwrap_err();
        assert!(gap.contains("format.datetime"), "{gap}");
        assert!(compiled("!format.dns1123Label().validate(self).hasValue()").is_ok());
        assert!(compiled("self.type != 'tls' || has(self.valueFrom)").is_ok());
        assert!(compiled("self.all(x, x.startsWith('a'))").is_ok());
        assert!(compiled("self.exists(x, x == 'a') && self.exists_one(x, x == 'a')").is_ok());
        assert!(compiled("quantity(self.q).isGreaterThan(quantity('1Gi'))").is_ok());
        assert!(compiled("self.x.isSorted() && sets.contains(self.x, ['a'])").is_ok());
    }
}
