//! The built-in kinds of the pinned Kubernetes version, from the compact schema embedded in the
//! binary (`k8s-v1.36.json`, generated from the Kubernetes OpenAPI v2 spec by
//! `scripts/gen-validation-schema`; its header describes the encoding).
//!
//! Strictness follows the apiserver's Go decoding: struct fields not in the schema are unknown
//! fields, maps validate their values, `RawExtension`-like definitions accept anything.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::{Arena, Format, ListType, Node, Ref, SchemaError, Types, Unlisted};

/// The embedded compact schema.
const COMPACT: &str = include_str!("k8s-v1.36.json");

/// Compiled built-in schemas.
#[derive(Debug)]
pub struct Builtin {
    pub(crate) arena: Arena,
    kinds: HashMap<(String, String), u32>,
    /// The node of `ObjectMeta`, which CRD roots and embedded resources use for `metadata`.
    pub(crate) object_meta: u32,
    /// `v1.36.3`.
    pub(crate) version: String,
}

impl Builtin {
    /// The root node of a built-in apiVersion/kind.
    pub(crate) fn kind(&self, api_version: &str, kind: &str) -> Option<u32> {
        self.kinds
            .get(&(api_version.to_string(), kind.to_string()))
            .copied()
    }
}

/// The compiled built-in schemas, compiled once per process.
pub(crate) fn get() -> Result<&'static Builtin, SchemaError> {
    static BUILTIN: OnceLock<Result<Builtin, String>> = OnceLock::new();
    BUILTIN
        .get_or_init(|| compile(COMPACT))
        .as_ref()
        .map_err(|e| SchemaError::Embedded(e.clone()))
}

const OBJECT_META: &str = "apimachinery.pkg.apis.meta.v1.ObjectMeta";

fn compile(text: &str) -> Result<Builtin, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let defs = doc.get("defs").and_then(Value::as_object).ok_or("no `defs`")?;
    let mut compiler = Compiler {
        arena: Arena::default(),
        defs: HashMap::new(),
        scalars: HashMap::new(),
    };
    // Every definition gets its node first, so that references (also recursive ones) resolve.
    for name in defs.keys() {
        let id = compiler.arena.push(Node::default());
        compiler.defs.insert(name.clone(), id);
    }
    for (name, def) in defs {
        let node = compiler.definition(def).map_err(|e| format!("{name}: {e}"))?;
        compiler.arena.nodes[compiler.defs[name] as usize] = node;
    }
    let mut kinds = HashMap::new();
    let groups = doc.get("kinds").and_then(Value::as_object).ok_or("no `kinds`")?;
    for (api_version, group) in groups {
        let group = group.as_object().ok_or("`kinds` entries must be objects")?;
        for (kind, def) in group {
            let def = def.as_str().ok_or("kind definitions must be strings")?;
            let id = *compiler
                .defs
                .get(def)
                .ok_or_else(|| format!("kind {kind}: no definition {def}"))?;
            kinds.insert((api_version.clone(), kind.clone()), id);
        }
    }
    let object_meta = *compiler.defs.get(OBJECT_META).ok_or("no ObjectMeta definition")?;
    let source = doc.get("source").and_then(Value::as_str).unwrap_or_default();
    // "k8s.io/kubernetes v1.36.3 api/openapi-spec/swagger.json"
    let version = source.split_whitespace().nth(1).unwrap_or("unknown").to_string();
    Ok(Builtin {
        arena: compiler.arena,
        kinds,
        object_meta,
        version,
    })
}

struct Compiler {
    arena: Arena,
    defs: HashMap<String, u32>,
    scalars: HashMap<String, u32>,
}

impl Compiler {
    /// A definition: a struct (`{"p": ..., "r": ...}`) or a type.
    fn definition(&mut self, def: &Value) -> Result<Node, String> {
        if let Some(fields) = def.get("p").and_then(Value::as_object) {
            let mut node = Node {
                types: Types::OBJECT,
                ..Node::default()
            };
            for (field, ty) in fields {
                let id = self.ty(ty)?;
                node.properties.insert(field.clone(), Ref::Same(id));
            }
            if let Some(required) = def.get("r").and_then(Value::as_array) {
                node.required = required
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
            }
            return Ok(node);
        }
        let id = self.ty(def)?;
        Ok(self.arena.nodes[id as usize].clone())
    }

    /// A type: a scalar code, `@definition`, `{"a": type}` or `{"m": type}`.
    fn ty(&mut self, ty: &Value) -> Result<u32, String> {
        match ty {
            Value::String(code) => {
                if let Some(def) = code.strip_prefix('@') {
                    return self
                        .defs
                        .get(def)
                        .copied()
                        .ok_or_else(|| format!("no definition {def}"));
                }
                if let Some(id) = self.scalars.get(code) {
                    return Ok(*id);
                }
                let node = scalar(code)?;
                let id = self.arena.push(node);
                self.scalars.insert(code.clone(), id);
                Ok(id)
            }
            Value::Object(map) => {
                if let Some(item) = map.get("a") {
                    let item = self.ty(item)?;
                    let list = match (map.get("k"), map.get("set")) {
                        (Some(Value::Array(keys)), _) => ListType::Map(
                            keys.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect(),
                        ),
                        (_, Some(Value::Bool(true))) => ListType::Set,
                        _ => ListType::Atomic,
                    };
                    return Ok(self.arena.push(Node {
                        types: Types::ARRAY,
                        items: Some(Ref::Same(item)),
                        list,
                        ..Node::default()
                    }));
                }
                if let Some(value) = map.get("m") {
                    let value = self.ty(value)?;
                    return Ok(self.arena.push(Node {
                        types: Types::OBJECT,
                        unlisted: Unlisted::Map(Ref::Same(value)),
                        ..Node::default()
                    }));
                }
                Err(format!("unknown type {ty}"))
            }
            _ => Err(format!("unknown type {ty}")),
        }
    }
}

fn scalar(code: &str) -> Result<Node, String> {
    let (types, format, unlisted) = match code {
        "s" | "t" => (Types::STRING, Format::Plain, Unlisted::Unknown),
        "i" => (Types::INTEGER, Format::Plain, Unlisted::Unknown),
        "n" => (Types::NUMBER, Format::Plain, Unlisted::Unknown),
        "b" => (Types::BOOLEAN, Format::Plain, Unlisted::Unknown),
        "B" => (Types::STRING, Format::Bytes, Unlisted::Unknown),
        "ios" => (
            Types::INTEGER.union(Types::STRING),
            Format::Plain,
            Unlisted::Unknown,
        ),
        "q" => (
            Types::STRING.union(Types::NUMBER),
            Format::Quantity,
            Unlisted::Unknown,
        ),
        "o" => (Types::OBJECT, Format::Plain, Unlisted::Kept),
        "*" => (Types::ANY, Format::Plain, Unlisted::Kept),
        _ => return Err(format!("unknown type code {code:?}")),
    };
    Ok(Node {
        types,
        format,
        unlisted,
        // Go decoding accepts null for every field (it leaves the zero value).
        nullable: true,
        ..Node::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_schema_compiles_and_knows_the_platform_kinds() {
        let b = get().unwrap();
        assert_eq!(b.version, "v1.36.3");
        for (v, k) in [
            ("v1", "ConfigMap"),
            ("v1", "Service"),
            ("v1", "Secret"),
            ("v1", "Namespace"),
            ("apps/v1", "Deployment"),
            ("apps/v1", "StatefulSet"),
            ("networking.k8s.io/v1", "Ingress"),
            ("rbac.authorization.k8s.io/v1", "RoleBinding"),
            ("coordination.k8s.io/v1", "Lease"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ] {
            assert!(b.kind(v, k).is_some(), "{v} {k}");
        }
        assert!(b.kind("v1", "DeleteOptions").is_none());
        assert!(b.kind("extensions/v1beta1", "Deployment").is_none());
    }

    #[test]
    fn compile_refuses_dangling_references() {
        let err = compile(r#"{"source":"x v1","kinds":{},"defs":{"a":{"p":{"b":"@missing"}}}}"#).unwrap_err();
        assert_eq!(err, "a: no definition missing");
    }
}
