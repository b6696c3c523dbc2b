//! Object identity: group/version/kind and namespace/name, printed as kustomize and kubectl do.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Group, version and kind of an object. The core group is the empty string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    /// Splits an `apiVersion` (`apps/v1`, `v1`) and pairs it with `kind`.
    pub fn from_api_version(api_version: &str, kind: &str) -> Gvk {
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: kind.to_string(),
        }
    }

    /// The `apiVersion` field value for this group and version.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Why an object has no usable identity.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdError {
    #[error("document is not a mapping")]
    NotAnObject,
    #[error("missing `{0}`")]
    Missing(&'static str),
    #[error("`{0}` must be a non-empty string")]
    NotAString(&'static str),
}

/// Identity of one object: GVK, namespace (None when cluster-scoped or unset) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResId {
    pub gvk: Gvk,
    pub namespace: Option<String>,
    pub name: String,
}

fn required_str<'a>(obj: &'a serde_json::Map<String, Value>, key: &'static str) -> Result<&'a str, IdError> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(IdError::Missing(key)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(IdError::NotAString(key)),
    }
}

impl ResId {
    /// Reads the identity of an object; `apiVersion`, `kind` and `metadata.name` are required.
    pub fn of(obj: &Value) -> Result<ResId, IdError> {
        let map = obj.as_object().ok_or(IdError::NotAnObject)?;
        let api_version = required_str(map, "apiVersion")?;
        let kind = required_str(map, "kind")?;
        let meta = match map.get("metadata") {
            Some(Value::Object(m)) => m,
            _ => return Err(IdError::Missing("metadata.name")),
        };
        let name = match meta.get("name") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(IdError::Missing("metadata.name"));
            }
            Some(_) => return Err(IdError::NotAString("metadata.name")),
        };
        let namespace = match meta.get("namespace") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        Ok(ResId {
            gvk: Gvk::from_api_version(api_version, kind),
            namespace,
            name,
        })
    }
}

impl fmt::Display for ResId {
    /// `Kind/namespace/name`, or `Kind/name` without a namespace, as in error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.gvk.kind, ns, self.name),
            None => write!(f, "{}/{}", self.gvk.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_identity_and_prints_kind_ns_name() {
        let id = ResId::of(&json!({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "Kafka",
            "metadata": {"name": "main", "namespace": "kafka-dev"}}))
        .unwrap();
        assert_eq!(id.gvk.group, "kafka.strimzi.io");
        assert_eq!(id.gvk.api_version(), "kafka.strimzi.io/v1beta2");
        assert_eq!(id.to_string(), "Kafka/kafka-dev/main");
    }

    #[test]
    fn names_the_missing_field() {
        let err = ResId::of(&json!({"apiVersion": "v1", "metadata": {"name": "x"}})).unwrap_err();
        assert_eq!(err, IdError::Missing("kind"));
        let err = ResId::of(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})).unwrap_err();
        assert_eq!(err.to_string(), "missing `metadata.name`");
    }
}
