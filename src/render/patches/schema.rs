//! The Kubernetes OpenAPI facts kustomize's strategic merge reads: which lists merge and by which
//! keys, per field of each built-in kind. (Which kinds are cluster-scoped is kustomize's own, older
//! table: [`crate::render::scope`].)
//!
//! The data is a compact table (`k8s_schema.json`, embedded) generated from the pinned Kubernetes
//! OpenAPI (`swagger.json` of k8s.io/kubernetes, the version the test apiserver runs) by
//! `scripts/gen-k8s-openapi/run`. It keeps only what can change a merge: fields that lead to a list
//! with `x-kubernetes-patch-strategy: merge` (with `x-kubernetes-list-map-keys`, else
//! `x-kubernetes-patch-merge-key`), and opaque object fields (`RawExtension`). Kinds that are not in
//! the table (CRDs such as Strimzi's `Kafka`) have no schema: their maps merge and lists replace.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

/// The generated table, embedded at build time.
const TABLE_JSON: &str = include_str!("k8s_schema.json");

/// The schema of one field as the generator writes it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum FieldSchema {
    /// A definition with fields of its own.
    Ref(String),
    /// A list with a patch strategy containing `merge`.
    List(ListSchema),
    /// An object whose values all share one schema (OpenAPI `additionalProperties`).
    MapOf { map: Box<FieldSchema> },
    /// An object whose fields are not described (e.g. `RawExtension`).
    Opaque {},
}

/// A list with `x-kubernetes-patch-strategy`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListSchema {
    /// The patch strategy, e.g. `merge` or `merge,retainKeys`.
    pub(crate) strategy: String,
    /// The merge keys; empty for lists of scalars (`finalizers`).
    #[serde(default)]
    pub(crate) keys: Vec<String>,
    /// The schema of the elements, when it matters.
    #[serde(default)]
    pub(crate) items: Option<Box<FieldSchema>>,
}

type Fields = BTreeMap<String, FieldSchema>;

#[derive(Debug, Deserialize)]
struct RawTable {
    gvk: HashMap<String, String>,
    defs: HashMap<String, Fields>,
}

/// The loaded table.
#[derive(Debug)]
pub(crate) struct Table {
    /// `"apiVersion Kind"` -> definition name.
    kinds: HashMap<String, String>,
    defs: HashMap<String, Fields>,
}

/// A resolved schema node while walking an object.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Schema<'t> {
    Object(&'t Fields),
    List(&'t ListSchema),
    MapOf(&'t FieldSchema),
    Opaque,
}

fn type_key(api_version: &str, kind: &str) -> String {
    format!("{api_version} {kind}")
}

impl Table {
    fn parse(json: &str) -> Result<Table, serde_json::Error> {
        let raw: RawTable = serde_json::from_str(json)?;
        Ok(Table {
            kinds: raw.gvk,
            defs: raw.defs,
        })
    }

    /// The schema of a built-in kind, or `None` for kinds the table does not know (CRDs).
    pub(crate) fn for_type(&self, api_version: &str, kind: &str) -> Option<Schema<'_>> {
        let def = self.kinds.get(&type_key(api_version, kind))?;
        self.defs.get(def).map(Schema::Object)
    }

    fn resolve<'t>(&'t self, field: &'t FieldSchema) -> Option<Schema<'t>> {
        match field {
            FieldSchema::Ref(name) => self.defs.get(name).map(Schema::Object),
            FieldSchema::List(list) => Some(Schema::List(list)),
            FieldSchema::MapOf { map } => Some(Schema::MapOf(map)),
            FieldSchema::Opaque {} => Some(Schema::Opaque),
        }
    }

    /// The schema of field `name` below `schema` (kyaml `ResourceSchema.Field`).
    pub(crate) fn field<'t>(&'t self, schema: Schema<'t>, name: &str) -> Option<Schema<'t>> {
        match schema {
            Schema::Object(fields) => fields.get(name).and_then(|f| self.resolve(f)),
            Schema::MapOf(values) => self.resolve(values),
            Schema::List(_) | Schema::Opaque => None,
        }
    }

    /// The schema of the elements of a list (kyaml `ResourceSchema.Elements`).
    pub(crate) fn elements<'t>(&'t self, schema: Schema<'t>) -> Option<Schema<'t>> {
        match schema {
            Schema::List(list) => list.items.as_deref().and_then(|i| self.resolve(i)),
            _ => None,
        }
    }
}

impl<'t> Schema<'t> {
    /// The list's merge keys when its patch strategy includes `merge` (kyaml `IsAssociative`).
    pub(crate) fn merge_keys(self) -> Option<&'t [String]> {
        match self {
            Schema::List(list) if list.strategy.split(',').any(|s| s == "merge") => Some(&list.keys),
            _ => None,
        }
    }
}

/// The embedded table, parsed once.
pub(crate) fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        // The table is generated and checked in, and a unit test parses it: a failure here is a
        // broken build, not bad input.
        Table::parse(TABLE_JSON).expect("embedded k8s_schema.json is valid")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_parses_and_knows_pod_lists() {
        let t = table();
        let dep = t.for_type("apps/v1", "Deployment").expect("Deployment is known");
        let spec = t.field(dep, "spec").and_then(|s| t.field(s, "template")).unwrap();
        let pod = t.field(spec, "spec").unwrap();
        let containers = t.field(pod, "containers").unwrap();
        assert_eq!(containers.merge_keys(), Some(&["name".to_string()][..]));
        let container = t.elements(containers).unwrap();
        let ports = t.field(container, "ports").unwrap();
        assert_eq!(ports.merge_keys().unwrap(), ["containerPort", "protocol"]);
        let env = t.field(container, "env").unwrap();
        assert_eq!(env.merge_keys().unwrap(), ["name"]);
        let mounts = t.field(container, "volumeMounts").unwrap();
        assert_eq!(mounts.merge_keys().unwrap(), ["mountPath"]);
        // Lists without a merge strategy are not in the table: they replace.
        assert!(t.field(pod, "tolerations").is_none());
        assert!(t.field(container, "args").is_none());
        let volumes = t.field(pod, "volumes").unwrap();
        assert_eq!(volumes.merge_keys().unwrap(), ["name"]);
        let meta = t.field(dep, "metadata").unwrap();
        assert_eq!(
            t.field(meta, "finalizers").unwrap().merge_keys().unwrap(),
            [] as [String; 0]
        );
        assert_eq!(
            t.field(meta, "ownerReferences").unwrap().merge_keys().unwrap(),
            ["uid"]
        );
    }

    #[test]
    fn service_ports_merge_by_port_and_protocol() {
        let t = table();
        let svc = t.for_type("v1", "Service").unwrap();
        let ports = t.field(t.field(svc, "spec").unwrap(), "ports").unwrap();
        assert_eq!(ports.merge_keys().unwrap(), ["port", "protocol"]);
    }

    #[test]
    fn legacy_kinds_kustomize_knows_use_their_successor() {
        let t = table();
        for (api_version, kind) in [
            ("batch/v1beta1", "CronJob"),
            ("policy/v1beta1", "PodDisruptionBudget"),
        ] {
            assert!(t.for_type(api_version, kind).is_some(), "{api_version} {kind}");
        }
    }

    #[test]
    fn unknown_kinds_have_no_schema() {
        assert!(table().for_type("kafka.strimzi.io/v1beta2", "Kafka").is_none());
        assert!(table().for_type("apps/v1", "Kafka").is_none());
    }
}
