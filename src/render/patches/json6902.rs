//! JSON 6902 patches as kustomize applies them (`patches` with a target, legacy
//! `patchesJson6902`): RFC 6902 through the `json-patch` crate, with the behaviour of the
//! evanphx/json-patch v4 library that kustomize uses, checked against `kubectl kustomize`:
//! - operations come from YAML or JSON (the caller parses either into a list of maps);
//! - list indices may be negative, counting from the end (`/containers/-1` is the last element;
//!   for `add`, `-1` appends), and are read like Go's `strconv.Atoi` (`+1`, `01`);
//! - `replace` of a missing key in an existing map adds it (a missing list index is an error);
//! - `add`, `replace` and `test` without `value` use `null`; `test` of `null` passes on a missing
//!   key; numbers compare by value (`1` equals `1.0`);
//! - the whole document (`""`) cannot be a path; a path must start with `/`.
//!
//! A path or `from` that does not exist is an error naming the operation, its path and what is
//! missing. The target is unchanged on error. A failed `test` shows the expected and found values,
//! except on a Secret: there it names the path only, as kustomize does for every kind.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation, ReplaceOperation};
use serde_json::{Map, Value};

use super::PatchError;

/// Applies the JSON 6902 operations `ops` (a list) to `target`; all or nothing.
pub fn apply(target: &mut Value, ops: &Value) -> Result<(), PatchError> {
    parse(ops)?.apply(target)
}

/// Checks and decodes a list of operations once, to apply it to many targets.
pub fn parse(ops: &Value) -> Result<JsonPatch, PatchError> {
    let Value::Array(list) = ops else {
        return Err(PatchError::InvalidJsonPatch {
            message: format!("expected a list of operations, found {}", describe(ops)),
        });
    };
    let ops = list
        .iter()
        .enumerate()
        .map(|(i, op)| Op::parse(i, op))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(JsonPatch { ops })
}

/// A decoded JSON 6902 patch ([`parse`]).
pub struct JsonPatch {
    ops: Vec<Op>,
}

impl JsonPatch {
    /// Applies every operation to `target`, in order; on error `target` is unchanged.
    pub fn apply(&self, target: &mut Value) -> Result<(), PatchError> {
        let mut doc = target.clone();
        self.apply_in_place(&mut doc)?;
        *target = doc;
        Ok(())
    }

    /// Applies every operation to `target`, in order, without a copy to fall back on: on error
    /// `target` may be partly patched. For callers that drop the target on error (a render stops
    /// at its first error), where the copy [`JsonPatch::apply`] makes would be wasted.
    pub fn apply_in_place(&self, target: &mut Value) -> Result<(), PatchError> {
        // kustomize patches objects that carry its internal `config.kubernetes.io/...` annotations,
        // so `metadata.annotations` always exists for the patch (an `add` under it works on an
        // object without annotations) and is dropped again when nothing else is left in it.
        let scaffold = match target.get_mut("metadata") {
            Some(Value::Object(meta)) if !meta.contains_key("annotations") => {
                meta.insert("annotations".into(), Value::Object(Map::new()));
                true
            }
            _ => false,
        };
        let result = self.ops.iter().try_for_each(|op| op.apply(target));
        if scaffold
            && let Some(Value::Object(meta)) = target.get_mut("metadata")
            && meta
                .get("annotations")
                .is_some_and(|a| a.as_object().is_some_and(Map::is_empty))
        {
            meta.remove("annotations");
        }
        result
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Add,
    Remove,
    Replace,
    Move,
    Copy,
    Test,
}

/// One decoded operation.
struct Op {
    index: usize,
    kind: Kind,
    name: String,
    path: String,
    from: Option<String>,
    value: Value,
}

/// How the last token of a path is used: it decides which list indices are valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    /// Insert or set: list index `0..=len`, `-` appends, a missing map key is fine.
    Insert,
    /// Read, remove or replace: list index `0..len`; `must_exist` for map keys.
    Existing { must_exist: bool },
}

/// A path resolved against the current document.
struct Resolved {
    pointer: PointerBuf,
    /// Whether the last token names an existing map key or list element.
    exists: bool,
}

impl Op {
    fn parse(index: usize, op: &Value) -> Result<Op, PatchError> {
        let invalid = |message: String| PatchError::InvalidJsonPatch {
            message: format!("operation {index}: {message}"),
        };
        let Value::Object(map) = op else {
            return Err(invalid(format!("expected a mapping, found {}", describe(op))));
        };
        let text = |key: &str| -> Result<Option<String>, PatchError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(invalid(format!(
                    "`{key}` must be a string, found {}",
                    describe(other)
                ))),
            }
        };
        let name = text("op")?.ok_or_else(|| invalid("missing `op`".into()))?;
        let kind = match name.as_str() {
            "add" => Kind::Add,
            "remove" => Kind::Remove,
            "replace" => Kind::Replace,
            "move" => Kind::Move,
            "copy" => Kind::Copy,
            "test" => Kind::Test,
            other => {
                return Err(invalid(format!(
                    "unknown op `{other}` (expected add, remove, replace, move, copy or test)"
                )));
            }
        };
        let path = text("path")?.ok_or_else(|| invalid(format!("`{name}` is missing `path`")))?;
        let from = text("from")?;
        if matches!(kind, Kind::Move | Kind::Copy) && from.is_none() {
            return Err(invalid(format!("`{name}` is missing `from`")));
        }
        Ok(Op {
            index,
            kind,
            name,
            path,
            from,
            value: map.get("value").cloned().unwrap_or(Value::Null),
        })
    }

    fn fail(&self, message: String) -> PatchError {
        PatchError::JsonPatchFailed {
            index: self.index,
            op: self.name.clone(),
            path: self.path.clone(),
            message,
        }
    }

    fn apply(&self, doc: &mut Value) -> Result<(), PatchError> {
        match self.kind {
            Kind::Add => {
                let at = self.resolve(doc, &self.path, Access::Insert, "path")?;
                self.run(doc, add(at.pointer, self.value.clone()))
            }
            Kind::Remove => {
                let at = self.resolve(doc, &self.path, Access::Existing { must_exist: true }, "path")?;
                self.run(doc, remove(at.pointer))
            }
            Kind::Replace => {
                // evanphx v4 sets a missing map key: replace is then an add.
                let at = self.resolve(doc, &self.path, Access::Existing { must_exist: false }, "path")?;
                let op = if at.exists {
                    PatchOperation::Replace(ReplaceOperation {
                        path: at.pointer,
                        value: self.value.clone(),
                    })
                } else {
                    add(at.pointer, self.value.clone())
                };
                self.run(doc, op)
            }
            Kind::Move | Kind::Copy => {
                let from = self.from.as_deref().unwrap_or_default();
                let src = self.resolve(doc, from, Access::Existing { must_exist: true }, "from")?;
                let value = doc.pointer(src.pointer.as_str()).cloned().unwrap_or(Value::Null);
                if self.kind == Kind::Move {
                    self.run(doc, remove(src.pointer))?;
                }
                // The destination is read after the removal, as evanphx does.
                let at = self.resolve(doc, &self.path, Access::Insert, "path")?;
                self.run(doc, add(at.pointer, value))
            }
            Kind::Test => {
                let at = self.resolve(doc, &self.path, Access::Existing { must_exist: false }, "path")?;
                let actual = if at.exists {
                    doc.pointer(at.pointer.as_str()).filter(|v| !v.is_null())
                } else {
                    None
                };
                let passed = match (actual, &self.value) {
                    (None, Value::Null) => true,
                    (Some(actual), expected) => json_equal(actual, expected),
                    (None, _) => false,
                };
                if passed {
                    Ok(())
                } else if crate::manifest::is_secret(doc) {
                    // Neither side: the expected value is a guess at the secret, the found one is it.
                    Err(self.fail(
                        "test failed: the value differs from the expected one (values of a Secret are never shown)"
                            .to_string(),
                    ))
                } else {
                    let found = actual.map_or_else(|| "nothing".to_string(), Value::to_string);
                    Err(self.fail(format!("test failed: expected {}, found {found}", self.value)))
                }
            }
        }
    }

    fn run(&self, doc: &mut Value, op: PatchOperation) -> Result<(), PatchError> {
        json_patch::patch(doc, &[op]).map_err(|e| self.fail(e.kind.to_string()))
    }

    /// Walks `path` through `doc` as evanphx's `findObject` does, turning list indices into
    /// canonical ones; errors name the first token that does not resolve.
    fn resolve(&self, doc: &Value, path: &str, access: Access, role: &str) -> Result<Resolved, PatchError> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(self.fail(format!(
                "{role} `{path}` is not a JSON pointer below the document root"
            )));
        };
        let tokens: Vec<String> = rest
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        let mut canonical = Vec::with_capacity(tokens.len());
        let mut current = doc;
        let last = tokens.len() - 1;
        for (i, token) in tokens.iter().enumerate() {
            // The path so far, for messages only.
            let at = || pointer_prefix(&tokens[..=i]);
            if i < last {
                let (next, token) = match current {
                    Value::Object(map) => match map.get(token) {
                        Some(next) => (next, token.clone()),
                        None => return Err(self.fail(format!("{role}: `{}` does not exist", at()))),
                    },
                    Value::Array(items) => {
                        let idx = self.index(token, items.len(), false, role, &at)?;
                        (&items[idx], idx.to_string())
                    }
                    other => {
                        return Err(self.fail(format!("{role}: `{}` is inside {}", at(), describe(other))));
                    }
                };
                canonical.push(token);
                current = next;
                continue;
            }
            let exists = match (current, access) {
                (Value::Object(map), Access::Existing { must_exist: true }) if !map.contains_key(token) => {
                    return Err(self.fail(format!("{role}: `{}` does not exist", at())));
                }
                (Value::Object(map), _) => {
                    canonical.push(token.clone());
                    map.contains_key(token)
                }
                (Value::Array(items), Access::Insert) if token == "-" => {
                    canonical.push(items.len().to_string());
                    false
                }
                (Value::Array(items), access) => {
                    let insert = access == Access::Insert;
                    let idx = self.index(token, items.len(), insert, role, &at)?;
                    canonical.push(idx.to_string());
                    idx < items.len()
                }
                (other, _) => {
                    return Err(self.fail(format!("{role}: `{}` is inside {}", at(), describe(other))));
                }
            };
            return Ok(Resolved {
                pointer: PointerBuf::from_tokens(canonical),
                exists,
            });
        }
        // `rest.split('/')` always yields at least one token.
        Err(self.fail(format!("{role} `{path}` is empty")))
    }

    /// A list index as evanphx reads it: Go `strconv.Atoi`, negative counts from the end.
    fn index(
        &self,
        token: &str,
        len: usize,
        insert: bool,
        role: &str,
        at: &dyn Fn() -> String,
    ) -> Result<usize, PatchError> {
        let parsed = parse_go_int(token)
            .ok_or_else(|| self.fail(format!("{role}: `{}`: `{token}` is not a list index", at())))?;
        // For an insert the list has one more slot: -1 appends.
        let slots = if insert { len + 1 } else { len };
        let slots_i = i64::try_from(slots).unwrap_or(i64::MAX);
        let idx = if parsed < 0 { parsed + slots_i } else { parsed };
        if idx < 0 || idx >= slots_i {
            return Err(self.fail(format!(
                "{role}: `{}`: index {parsed} is out of range for a list of {len} element{}",
                at(),
                if len == 1 { "" } else { "s" }
            )));
        }
        usize::try_from(idx)
            .map_err(|_| self.fail(format!("{role}: `{}`: index {parsed} is out of range", at())))
    }
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

fn remove(path: PointerBuf) -> PatchOperation {
    PatchOperation::Remove(RemoveOperation { path })
}

/// `/a/b` for the tokens so far, escaped again, for messages.
fn pointer_prefix(tokens: &[String]) -> String {
    PointerBuf::from_tokens(tokens).to_string()
}

/// Go's `strconv.Atoi`: an optional sign and decimal digits (leading zeros allowed).
fn parse_go_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

/// JSON equality with numbers compared by value, as evanphx compares documents.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => objects_equal(x, y),
        _ => a == b,
    }
}

fn objects_equal(x: &Map<String, Value>, y: &Map<String, Value>) -> bool {
    x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::render::patches::kubectl_cases::{check_all, same_objects};

    /// Every case under `testdata/json6902/`, as printed by `kubectl kustomize`.
    #[test]
    fn kubectl_cases() {
        check_all("json6902", |case| {
            let mut target = case.document("target.yaml");
            let ops = case.document(case.patch_path());
            apply(&mut target, &ops).map_err(|e| e.to_string())?;
            same_objects(&[target], &case.documents("expected.yaml"))
        });
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}, {"name": "c", "image": "c:1"}
            ]}}}
        })
    }

    fn fails(ops: Value) -> PatchError {
        let mut target = deployment();
        let err = apply(&mut target, &ops).unwrap_err();
        assert_eq!(target, deployment(), "nothing partial on error");
        err
    }

    /// Each of these is an error in `kubectl kustomize` too.
    #[test]
    fn missing_paths_are_errors_naming_op_and_path() {
        let cases = [
            (
                json!({"op": "replace", "path": "/spec/foo/bar", "value": 1}),
                "path: `/spec/foo` does not exist",
            ),
            (
                json!({"op": "add", "path": "/spec/foo/bar", "value": 1}),
                "path: `/spec/foo` does not exist",
            ),
            (
                json!({"op": "remove", "path": "/spec/foo"}),
                "path: `/spec/foo` does not exist",
            ),
            (
                json!({"op": "replace", "path": "/spec/template/spec/containers/9/image", "value": 1}),
                "path: `/spec/template/spec/containers/9`: index 9 is out of range for a list of 3 elements",
            ),
            (
                json!({"op": "add", "path": "/spec/template/spec/containers/5", "value": {}}),
                "path: `/spec/template/spec/containers/5`: index 5 is out of range for a list of 3 elements",
            ),
            (
                json!({"op": "remove", "path": "/spec/template/spec/containers/-"}),
                "path: `/spec/template/spec/containers/-`: `-` is not a list index",
            ),
            (
                json!({"op": "add", "path": "/spec/template/spec/containers/-5", "value": {}}),
                "path: `/spec/template/spec/containers/-5`: index -5 is out of range for a list of 3 elements",
            ),
            (
                json!({"op": "remove", "path": "/spec/replicas/x"}),
                "path: `/spec/replicas/x` is inside a number",
            ),
            (
                json!({"op": "move", "from": "/spec/nope", "path": "/spec/r"}),
                "from: `/spec/nope` does not exist",
            ),
            (
                json!({"op": "copy", "from": "/spec/x/y", "path": "/spec/r"}),
                "from: `/spec/x` does not exist",
            ),
        ];
        for (op, message) in cases {
            let err = fails(json!([{"op": "test", "path": "/spec/replicas", "value": 1}, op.clone()]));
            let PatchError::JsonPatchFailed {
                index,
                op: name,
                path,
                message: got,
            } = err
            else {
                panic!("{op}: {err:?}");
            };
            assert_eq!(
                (index, name.as_str(), path.as_str()),
                (1, op["op"].as_str().unwrap(), op["path"].as_str().unwrap())
            );
            assert_eq!(got, message, "{op}");
        }
    }

    #[test]
    fn error_message_reads_well() {
        let err = fails(json!([{"op": "replace", "path": "/spec/foo/bar", "value": 1}]));
        assert_eq!(
            err.to_string(),
            "JSON patch operation 0 (replace /spec/foo/bar): path: `/spec/foo` does not exist"
        );
    }

    #[test]
    fn failed_test_op_says_what_it_found() {
        let err = fails(json!([{"op": "test", "path": "/spec/replicas", "value": 2}]));
        assert_eq!(
            err.to_string(),
            "JSON patch operation 0 (test /spec/replicas): test failed: expected 2, found 1"
        );
        let err = fails(json!([{"op": "test", "path": "/spec/paused", "value": false}]));
        assert!(
            err.to_string()
                .ends_with("test failed: expected false, found nothing"),
            "{err}"
        );
        // Numbers compare by value.
        let mut target = deployment();
        apply(
            &mut target,
            &json!([{"op": "test", "path": "/spec/replicas", "value": 1.0}]),
        )
        .unwrap();
    }

    #[test]
    fn failed_test_op_on_a_secret_names_the_path_only() {
        for secret in [
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                "stringData": {"password": "found-s3cret"}}),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                "data": {"password": 73519864201_u64}}),
        ] {
            let field = if secret.get("data").is_some() {
                "data"
            } else {
                "stringData"
            };
            let mut target = secret.clone();
            let ops =
                json!([{"op": "test", "path": format!("/{field}/password"), "value": "guessed-s3cret"}]);
            let err = apply(&mut target, &ops).unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "JSON patch operation 0 (test /{field}/password): test failed: the value differs from the expected one (values of a Secret are never shown)"
                )
            );
            assert_eq!(target, secret, "unchanged on error");
        }
    }

    #[test]
    fn the_document_root_is_not_a_path() {
        for path in ["", "spec", "spec/replicas"] {
            let err = fails(json!([{"op": "add", "path": path, "value": {"a": 1}}]));
            assert!(
                err.to_string().contains(&format!(
                    "path `{path}` is not a JSON pointer below the document root"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn malformed_operations_are_refused_before_anything_applies() {
        let cases = [
            (
                json!({"op": "replace", "path": "/spec/replicas", "value": 2}),
                "expected a list of operations, found a mapping",
            ),
            (
                json!([{"op": "bogus", "path": "/spec"}]),
                "operation 0: unknown op `bogus` (expected add, remove, replace, move, copy or test)",
            ),
            (json!([{"path": "/spec"}]), "operation 0: missing `op`"),
            (
                json!([{"op": "remove"}]),
                "operation 0: `remove` is missing `path`",
            ),
            (
                json!([{"op": "move", "path": "/spec/x"}]),
                "operation 0: `move` is missing `from`",
            ),
            (
                json!([{"op": "add", "path": 3}]),
                "operation 0: `path` must be a string, found a number",
            ),
            (
                json!(["add /spec"]),
                "operation 0: expected a mapping, found a string",
            ),
        ];
        for (ops, message) in cases {
            let err = fails(ops);
            assert_eq!(
                err,
                PatchError::InvalidJsonPatch {
                    message: message.into()
                }
            );
        }
        assert!(parse(&json!([{"op": "copy", "path": "/a"}])).is_err());
        // A valid first op is not applied when a later one is malformed.
        let err = fails(
            json!([{"op": "replace", "path": "/spec/replicas", "value": 5}, {"op": "nope", "path": "/"}]),
        );
        assert!(matches!(err, PatchError::InvalidJsonPatch { .. }));
    }

    #[test]
    fn failure_midway_leaves_the_target_unchanged() {
        let err = fails(json!([
            {"op": "replace", "path": "/spec/replicas", "value": 5},
            {"op": "remove", "path": "/spec/template/spec/containers/0"},
            {"op": "remove", "path": "/spec/gone"}
        ]));
        assert!(matches!(err, PatchError::JsonPatchFailed { index: 2, .. }));
    }

    #[test]
    fn go_style_indices() {
        let mut target = deployment();
        let ops = json!([
            {"op": "replace", "path": "/spec/template/spec/containers/+1/image", "value": "b:2"},
            {"op": "replace", "path": "/spec/template/spec/containers/002/image", "value": "c:2"},
            {"op": "move", "from": "/spec/template/spec/containers/0", "path": "/spec/template/spec/containers/-1"}
        ]);
        apply(&mut target, &ops).unwrap();
        let names: Vec<&str> = target["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["image"].as_str().unwrap())
            .collect();
        // After removing element 0 the list has two elements; -1 then appends.
        assert_eq!(names, ["b:2", "c:2", "a:1"]);
    }
}
