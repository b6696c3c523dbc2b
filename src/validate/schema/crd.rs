//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`) compiled into schema nodes: one schema per
//! served version, from `spec.versions[].schema.openAPIV3Schema`.
//!
//! Structural-schema semantics: a field is unknown (pruned, or refused under strict field
//! validation) unless `properties` lists it, `additionalProperties` gives a schema for it, or
//! `x-kubernetes-preserve-unknown-fields` keeps it. `apiVersion`, `kind` and `metadata` are implicit at
//! the root and in `x-kubernetes-embedded-resource` objects, where `metadata` is the built-in
//! `ObjectMeta` (so unknown metadata fields are errors too). `x-kubernetes-validations` rules are
//! compiled here, once per rule text (see [`validations`]).

use serde_json::Value;

use super::builtin::Builtin;
use super::validations;
use super::{Arena, Format, ListType, Node, Pattern, Ref, Types, Unlisted};

pub(crate) use crate::manifest::crd::is_crd;

/// `CustomResourceDefinition/kafkas.kafka.strimzi.io`, for messages.
pub(crate) fn display_name(crd: &Value) -> String {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    format!("CustomResourceDefinition/{name}")
}

/// One compiled served version: `((apiVersion, kind), arena, root)`.
pub(crate) type CompiledVersion = ((String, String), Arena, u32);

/// Compiles every served version of a CRD.
pub(crate) fn compile(crd: &Value, builtin: &Builtin) -> Result<Vec<CompiledVersion>, String> {
    let text = |pointer: &str| -> Result<&str, String> {
        crd.pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("missing {}", pointer.trim_start_matches('/').replace('/', ".")))
    };
    let group = text("/spec/group")?;
    let kind = text("/spec/names/kind")?;
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .ok_or("missing spec.versions")?;
    let mut out = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        let name = version
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("spec.versions[{i}].name is missing"))?;
        if version.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let schema = version
            .pointer("/schema/openAPIV3Schema")
            .ok_or_else(|| format!("spec.versions[{i}] ({name}) has no schema.openAPIV3Schema"))?;
        let mut compiler = Compiler {
            arena: Arena::default(),
            object_meta: builtin.object_meta,
        };
        let root = compiler
            .node(
                schema,
                true,
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
            )
            .map_err(|e| format!("version {name}: {e}"))?;
        out.push((
            (format!("{group}/{name}"), kind.to_string()),
            compiler.arena,
            root,
        ));
    }
    Ok(out)
}

struct Compiler {
    arena: Arena,
    object_meta: u32,
}

impl Compiler {
    fn node(&mut self, schema: &Value, resource_root: bool, at: &str) -> Result<u32, String> {
        let map = schema
            .as_object()
            .ok_or_else(|| format!("{at}: a schema must be an object"))?;
        let flag = |key: &str| map.get(key).and_then(Value::as_bool).unwrap_or(false);
        let mut node = Node {
            nullable: flag("nullable"),
            ..Node::default()
        };
        node.types = match map.get("type").and_then(Value::as_str) {
            None => Types::ANY,
            Some("object") => Types::OBJECT,
            Some("array") => Types::ARRAY,
            Some("string") => Types::STRING,
            Some("integer") => Types::INTEGER,
            Some("number") => Types::NUMBER,
            Some("boolean") => Types::BOOLEAN,
            Some(other) => return Err(format!("{at}.type: unsupported type {other:?}")),
        };
        if flag("x-kubernetes-int-or-string") {
            node.types = Types::INTEGER.union(Types::STRING);
        }
        if map.get("format").and_then(Value::as_str) == Some("byte") {
            node.format = Format::Bytes;
        }
        let embedded = flag("x-kubernetes-embedded-resource");
        // Fields: those listed, plus the implicit ones of a resource.
        if let Some(props) = map.get("properties") {
            let props = props
                .as_object()
                .ok_or_else(|| format!("{at}.properties: must be an object"))?;
            for (name, sub) in props {
                let id = self.node(sub, false, &format!("{at}.properties.{name}"))?;
                node.properties.insert(name.clone(), Ref::Same(id));
            }
        }
        if resource_root || embedded {
            for name in ["apiVersion", "kind"] {
                let id = self.arena.push(Node {
                    types: Types::STRING,
                    ..Node::default()
                });
                node.properties.insert(name.to_string(), Ref::Same(id));
            }
            node.properties
                .insert("metadata".to_string(), Ref::Builtin(self.object_meta));
            if embedded {
                node.required = vec!["apiVersion".into(), "kind".into()];
            }
        }
        node.unlisted = match map.get("additionalProperties") {
            Some(Value::Bool(true)) => Unlisted::Kept,
            Some(Value::Object(_)) => {
                let sub = &map["additionalProperties"];
                Unlisted::Map(Ref::Same(self.node(
                    sub,
                    false,
                    &format!("{at}.additionalProperties"),
                )?))
            }
            _ if flag("x-kubernetes-preserve-unknown-fields") => Unlisted::Kept,
            // Untyped schemas (inside junctors, or `{}`) accept anything.
            _ if node.types == Types::ANY => Unlisted::Kept,
            _ => Unlisted::Unknown,
        };
        if let Some(items) = map.get("items") {
            if items.is_array() {
                return Err(format!("{at}.items: a list of schemas is not structural"));
            }
            node.items = Some(Ref::Same(self.node(items, false, &format!("{at}.items"))?));
        }
        node.list = match map.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => ListType::Map(
                map.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| {
                        keys.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            Some("set") => ListType::Set,
            _ => ListType::Atomic,
        };
        if let Some(required) = map.get("required").and_then(Value::as_array) {
            node.required
                .extend(required.iter().filter_map(Value::as_str).map(str::to_string));
        }
        if let Some(values) = map.get("enum").and_then(Value::as_array) {
            node.enumeration = values.clone();
        }
        if let Some(pattern) = map.get("pattern").and_then(Value::as_str) {
            node.pattern = Some(Pattern::new(pattern));
        }
        let number = |key: &str| map.get(key).and_then(Value::as_f64);
        let count = |key: &str| map.get(key).and_then(Value::as_u64);
        node.minimum = number("minimum").map(|m| (m, flag("exclusiveMinimum")));
        node.maximum = number("maximum").map(|m| (m, flag("exclusiveMaximum")));
        node.min_length = count("minLength");
        node.max_length = count("maxLength");
        node.min_items = count("minItems");
        node.max_items = count("maxItems");
        node.min_properties = count("minProperties");
        node.max_properties = count("maxProperties");
        for (key, target) in [("allOf", 0), ("anyOf", 1), ("oneOf", 2)] {
            let Some(list) = map.get(key) else { continue };
            let list = list
                .as_array()
                .ok_or_else(|| format!("{at}.{key}: must be a list"))?;
            let mut refs = Vec::new();
            for (i, sub) in list.iter().enumerate() {
                refs.push(Ref::Same(self.node(sub, false, &format!("{at}.{key}[{i}]"))?));
            }
            match target {
                0 => node.all_of = refs,
                1 => node.any_of = refs,
                _ => node.one_of = refs,
            }
        }
        if let Some(not) = map.get("not") {
            node.not = Some(Ref::Same(self.node(not, false, &format!("{at}.not"))?));
        }
        if let Some(rules) = map.get("x-kubernetes-validations") {
            node.rules = validations::compile_rules(rules, at)?;
        }
        // Rules inside junctors are not run (structural schemas forbid them there).
        let below = |r: &Ref| match r {
            Ref::Same(id) => self.arena.nodes.get(*id as usize).is_some_and(|n| n.cel_below),
            Ref::Builtin(_) => false,
        };
        node.cel_below = !node.rules.is_empty()
            || node.properties.values().any(below)
            || node.items.as_ref().is_some_and(below)
            || matches!(&node.unlisted, Unlisted::Map(r) if below(r));
        Ok(self.arena.push(node))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{IssueKind, Schemas};
    use serde_json::json;

    const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1}
                mode: {type: string, enum: [fast, slow]}
                port:
                  x-kubernetes-int-or-string: true
                  anyOf: [{type: integer}, {type: string}]
                name: {type: string, pattern: "^[a-z]+$", nullable: true}
                config: {type: object, x-kubernetes-preserve-unknown-fields: true}
                limits: {type: object, additionalProperties: {type: string}}
                tags: {type: array, items: {type: string}, x-kubernetes-list-type: set}
                hosts:
                  type: array
                  x-kubernetes-list-type: map
                  x-kubernetes-list-map-keys: [name]
                  items: {type: object, properties: {name: {type: string}, ip: {type: string}}}
                env:
                  type: array
                  items:
                    type: object
                    properties: {value: {type: string}, valueFrom: {type: string}}
                    oneOf:
                      - {properties: {value: {}}, required: [value]}
                      - {properties: {valueFrom: {}}, required: [valueFrom]}
                template:
                  type: object
                  x-kubernetes-embedded-resource: true
                  properties:
                    spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
    - name: v0
      served: false
      storage: false
      schema: {openAPIV3Schema: {type: object}}
"#;

    fn widget_crd() -> serde_json::Value {
        let limits = crate::manifest::yaml::Limits::DEFAULT;
        crate::manifest::yaml::parse_documents(WIDGET_CRD, "widget.yaml", &limits)
            .unwrap()
            .remove(0)
    }

    fn check(spec: serde_json::Value) -> Vec<(IssueKind, String, String)> {
        let mut schemas = Schemas::new().unwrap();
        assert_eq!(schemas.add_crd(&widget_crd(), "test").unwrap(), 1);
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "n"}, "spec": spec});
        let mut got: Vec<_> = schemas
            .validate(&obj)
            .into_iter()
            .map(|i| (i.kind, i.path, i.message))
            .collect();
        got.sort_by(|a, b| a.1.cmp(&b.1));
        got
    }

    #[test]
    fn valid_widget() {
        let got = check(json!({"size": 3, "mode": "fast", "port": "http", "name": null,
            "tags": ["a", "b"], "hosts": [{"name": "a", "ip": "1"}, {"name": "b", "ip": "1"}],
            "config": {"anything": {"goes": 1}}, "limits": {"a": "b"},
            "env": [{"value": "x"}, {"valueFrom": "y"}],
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": "b"}}, "spec": {"x": 1}}}));
        assert_eq!(got, vec![]);
    }

    #[test]
    fn every_violation_is_named() {
        let got = check(
            json!({"size": "three", "mode": "medium", "port": 1.5, "name": "Bad",
            "limits": {"a": 1}, "extra": true, "tags": ["a", "a"], "hosts": [{"name": "a"}, {"name": "a", "ip": "2"}],
            "env": [{}, {"value": "x", "valueFrom": "y"}],
            "template": {"metadata": {"labelz": {}}}}),
        );
        let paths: Vec<(&str, IssueKind)> = got.iter().map(|(k, p, _)| (p.as_str(), *k)).collect();
        assert_eq!(
            paths,
            vec![
                ("spec.env[0]", IssueKind::InvalidValue),
                ("spec.env[1]", IssueKind::InvalidValue),
                ("spec.extra", IssueKind::UnknownField),
                ("spec.hosts[1]", IssueKind::DuplicateKey),
                ("spec.limits[a]", IssueKind::WrongType),
                ("spec.mode", IssueKind::InvalidValue),
                ("spec.name", IssueKind::InvalidValue),
                ("spec.port", IssueKind::WrongType),
                ("spec.size", IssueKind::WrongType),
                ("spec.tags[1]", IssueKind::DuplicateKey),
                ("spec.template.apiVersion", IssueKind::MissingRequired),
                ("spec.template.kind", IssueKind::MissingRequired),
                ("spec.template.metadata.labelz", IssueKind::UnknownField),
            ]
        );
        assert_eq!(got[8].2, "expected integer, got string \"three\"");
        assert_eq!(
            got[3].2,
            "duplicate entry for key [name=\"a\"], also at spec.hosts[0]; server-side apply refuses the object"
        );
        assert!(
            got[0]
                .2
                .starts_with("must match exactly one alternative, matches none"),
            "{}",
            got[0].2
        );
    }

    #[test]
    fn root_metadata_is_strict_and_unserved_versions_are_unknown() {
        let mut schemas = Schemas::new().unwrap();
        schemas.add_crd(&widget_crd(), "test").unwrap();
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "lables": {}}, "spec": {"size": 1}});
        let got = schemas.validate(&obj);
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].kind, got[0].path.as_str()),
            (IssueKind::UnknownField, "metadata.lables")
        );
        assert_eq!(got[0].fix, "did you mean \"labels\"? Otherwise remove the field");
        let old = json!({"apiVersion": "example.com/v0", "kind": "Widget", "metadata": {"name": "w"}});
        let got = schemas.validate(&old);
        assert_eq!(got[0].kind, IssueKind::UnknownKind);
        assert_eq!(got[0].fix, "use a served version: example.com/v1");
    }

    #[test]
    fn broken_crds_are_refused_with_their_name() {
        let mut schemas = Schemas::new().unwrap();
        let mut crd = widget_crd();
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["type"] = json!("map");
        let err = schemas.add_crd(&crd, "repo").unwrap_err();
        assert_eq!(
            err.to_string(),
            "CustomResourceDefinition/widgets.example.com (repo): version v1: \
             spec.versions[0].schema.openAPIV3Schema.properties.spec.type: unsupported type \"map\""
        );
    }
}
