//! `replicas`: kustomize's ReplicaCountTransformer. Sets `spec.replicas` of the Deployments,
//! ReplicationControllers, ReplicaSets and StatefulSets with the given name (current or any earlier
//! name); naming nothing is an error.

use serde_json::Value;

use super::fieldspec::{Create, FieldSpec};
use crate::render::kustomization::Replica;
use crate::render::resource::ResMap;

/// Applies one `replicas` entry.
pub fn apply(acc: &mut ResMap, replica: &Replica, specs: &[FieldSpec]) -> Result<(), String> {
    let name = replica.name.as_deref().unwrap_or("");
    let count = replica.count.unwrap_or(0);
    let mut found = false;
    for fs in specs {
        for r in acc.resources_mut() {
            if !r.any_id(|id| id.name == name && id.is_selected(&fs.gvk)) {
                continue;
            }
            found = true;
            let mut set = |node: &mut Value| {
                *node = Value::from(count);
                Ok(())
            };
            fs.apply(&mut r.obj, Create::Scalar, &mut set)
                .map_err(|e| format!("{}: {e}", r.display_id()))?;
        }
    }
    if found {
        return Ok(());
    }
    let kinds: Vec<String> = specs
        .iter()
        .map(|fs| format!("{}.[noVer].[noGrp]", fs.gvk.kind))
        .collect();
    Err(format!(
        "resource with name {name} does not match a config with the following GVK [{}]",
        kinds.join(" ")
    ))
}
