//! Patches as kustomize applies them: strategic merge ([`strategic`]) and JSON 6902 ([`json6902`]).
//! Both are pure functions over one object. [`schema`] holds the Kubernetes OpenAPI facts the
//! strategic merge needs (list merge keys) and which kinds are cluster-scoped.
//!
//! Errors say what failed and where inside the object; the caller prefixes the patch file and the
//! target object (`clusters/dev/patch.yaml: Deployment/web: ...`).

pub mod json6902;
#[cfg(test)]
pub(crate) mod kubectl_cases;
pub mod schema;
pub mod strategic;

/// Deepest nesting a patch or target may have. The YAML front end refuses deeper documents long
/// before this; the limit keeps hand-built values from exhausting the stack.
pub const MAX_DEPTH: usize = 512;

/// Why a patch could not be applied. Paths inside the object are dotted field paths with list
/// elements as `[key=value]` (strategic merge) or JSON pointers (JSON 6902).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The target or the strategic merge patch is not a mapping.
    #[error("strategic merge patch: the {what} is not a mapping")]
    NotAMapping { what: &'static str },
    /// `$patch` holds something other than `replace`, `delete` or `merge`.
    #[error(
        "strategic merge patch: {path}: unknown patch strategy `$patch: {directive}` (expected replace, delete or merge)"
    )]
    UnknownDirective { path: String, directive: String },
    /// The patch has a different kind of node (map, list, scalar) than the target at one field.
    #[error("strategic merge patch: {path}: the target has a {target} but the patch has a {patch}")]
    TypeMismatch {
        path: String,
        target: &'static str,
        patch: &'static str,
    },
    /// A merged list holds mappings and scalars together, which kustomize cannot merge.
    #[error("strategic merge patch: {path}: list mixes mappings and scalars; it cannot be merged")]
    MixedList { path: String },
    /// The patch or target nests deeper than [`MAX_DEPTH`].
    #[error("{what} nests deeper than {MAX_DEPTH} levels")]
    TooDeep { what: &'static str },
    /// The JSON 6902 patch is not a list of operations, or an operation is malformed.
    #[error("JSON patch: {message}")]
    InvalidJsonPatch { message: String },
    /// A JSON 6902 operation refers to a path (or `from`) that does not exist in the target.
    #[error("JSON patch operation {index} ({op} {path}): {message}")]
    JsonPatchFailed {
        index: usize,
        op: String,
        path: String,
        message: String,
    },
}

impl PatchError {
    /// Prefixes the in-object path of a strategic merge error with one more outer segment.
    pub(crate) fn within(mut self, segment: &str) -> PatchError {
        if let PatchError::UnknownDirective { path, .. }
        | PatchError::TypeMismatch { path, .. }
        | PatchError::MixedList { path } = &mut self
        {
            *path = join_path(segment, path);
        }
        self
    }
}

/// `segment` + `rest` as a dotted path; list selectors (`[name=a]`) attach without a dot.
fn join_path(segment: &str, rest: &str) -> String {
    if rest == ROOT_PATH {
        segment.to_string()
    } else if rest.starts_with('[') {
        format!("{segment}{rest}")
    } else {
        format!("{segment}.{rest}")
    }
}

/// How a path inside the object reads before any segment is known: the object itself.
pub(crate) const ROOT_PATH: &str = "(top level)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_compose_outwards() {
        let err = PatchError::UnknownDirective {
            path: ROOT_PATH.into(),
            directive: "bogus".into(),
        };
        let err = err.within("[name=a]").within("containers").within("spec");
        assert_eq!(
            err.to_string(),
            "strategic merge patch: spec.containers[name=a]: unknown patch strategy `$patch: bogus` \
             (expected replace, delete or merge)"
        );
        let other = PatchError::NotAMapping { what: "patch" };
        assert_eq!(other.clone().within("spec"), other);
    }
}
