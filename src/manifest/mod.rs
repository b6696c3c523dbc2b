//! Kubernetes objects as every stage passes them on: a JSON value (`serde_json::Value`), its
//! identity ([`ResId`]), and YAML in ([`yaml::parse_documents`]) and out ([`yaml::to_yaml`]).
//!
//! Objects are plain JSON values on purpose: the apiserver speaks JSON, `kubectl kustomize` prints
//! objects by round-tripping them through JSON (sorted keys, normalized scalars), and every stage can
//! then share one representation without conversions.

pub mod crd;
pub mod id;
pub mod yaml;
pub mod zookeeper;

pub use id::{Gvk, IdError, ResId};

use serde_json::Value;

/// Whether an object is a core/v1 Secret: its values are masked and scrubbed everywhere
/// (`plan::mask`), and errors about its content name paths, never values.
pub fn is_secret(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
        && obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_none_or(|v| v == "v1")
}
