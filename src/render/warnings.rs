//! The warnings kustomize v5.8.1 prints on stderr while it renders, as values: a deprecated field
//! in a kustomization (`types.Kustomization.CheckDeprecatedFields`, printed by `KustTarget.Load`
//! each time a kustomization is loaded), vars whose value is a map or list where a `$(NAME)` uses
//! them (`refvar.MakePrimitiveReplacer`) and vars defined but never substituted
//! (`ResAccumulator.ResolveVars`). The render core never prints: a render hands them back with its
//! result ([`super::render_with_warnings`]) and the CLI prints them, one per line, with kustomize's
//! text.

use std::fmt;

use super::kustomization::Kustomization;
use crate::source::TreePath;

/// A deprecated kustomization field, with kustomize's advice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeprecatedField {
    Bases,
    CommonLabels,
    ImageTags,
    PatchesJson6902,
    PatchesStrategicMerge,
    Vars,
}

impl DeprecatedField {
    /// The fields a kustomization sets, in kustomize's order. A field written `null` is not set;
    /// an empty list or map is (Go's `!= nil`).
    pub fn of(k: &Kustomization) -> Vec<DeprecatedField> {
        [
            (k.bases.is_some(), DeprecatedField::Bases),
            (k.common_labels.is_some(), DeprecatedField::CommonLabels),
            (k.image_tags.is_some(), DeprecatedField::ImageTags),
            (k.patches_json6902.is_some(), DeprecatedField::PatchesJson6902),
            (
                k.patches_strategic_merge.is_some(),
                DeprecatedField::PatchesStrategicMerge,
            ),
            (k.vars.is_some(), DeprecatedField::Vars),
        ]
        .into_iter()
        .filter_map(|(set, field)| set.then_some(field))
        .collect()
    }

    /// The field's name in the kustomization.
    pub fn name(self) -> &'static str {
        match self {
            DeprecatedField::Bases => "bases",
            DeprecatedField::CommonLabels => "commonLabels",
            DeprecatedField::ImageTags => "imageTags",
            DeprecatedField::PatchesJson6902 => "patchesJson6902",
            DeprecatedField::PatchesStrategicMerge => "patchesStrategicMerge",
            DeprecatedField::Vars => "vars",
        }
    }

    /// kustomize's message (`deprecated*Message` in `api/types/kustomization.go`).
    fn message(self) -> &'static str {
        match self {
            DeprecatedField::Bases => {
                "# Warning: 'bases' is deprecated. Please use 'resources' instead. Run 'kustomize edit fix' \
                 to update your Kustomization automatically."
            }
            DeprecatedField::CommonLabels => {
                "# Warning: 'commonLabels' is deprecated. Please use 'labels' instead. Run 'kustomize edit \
                 fix' to update your Kustomization automatically."
            }
            DeprecatedField::ImageTags => {
                "# Warning: 'imageTags' is deprecated. Please use 'images' instead. Run 'kustomize edit fix' \
                 to update your Kustomization automatically."
            }
            DeprecatedField::PatchesJson6902 => {
                "# Warning: 'patchesJson6902' is deprecated. Please use 'patches' instead. Run 'kustomize \
                 edit fix' to update your Kustomization automatically."
            }
            DeprecatedField::PatchesStrategicMerge => {
                "# Warning: 'patchesStrategicMerge' is deprecated. Please use 'patches' instead. Run \
                 'kustomize edit fix' to update your Kustomization automatically."
            }
            DeprecatedField::Vars => {
                "# Warning: 'vars' is deprecated. Please use 'replacements' instead. [EXPERIMENTAL] Run \
                 'kustomize edit fix' to update your Kustomization automatically."
            }
        }
    }
}

/// One warning of a render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenderWarning {
    /// `file` sets a deprecated field.
    Deprecated { file: TreePath, field: DeprecatedField },
    /// A `$(NAME)` of a var whose value is a map or list, left as written: Go's `%T` and `%v`
    /// of the value (kustomize's refvar `MakePrimitiveReplacer`).
    VarNotPrimitive {
        file: TreePath,
        go_type: String,
        value: String,
    },
    /// Vars defined by the kustomization at `file` (or its bases) that no `$(NAME)` used, sorted
    /// (kustomize lists them in Go's map order, which varies from run to run).
    UnusedVars { file: TreePath, names: Vec<String> },
}

impl fmt::Display for RenderWarning {
    /// kustomize's text, without the file (kustomize does not name it) and, for the vars
    /// messages, without the date and time Go's `log` puts before them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderWarning::Deprecated { field, .. } => f.write_str(field.message()),
            RenderWarning::VarNotPrimitive { go_type, value, .. } => {
                write!(
                    f,
                    "MakePrimitiveReplacer: bad replacement type={go_type} val={value}"
                )
            }
            RenderWarning::UnusedVars { names, .. } => {
                write!(
                    f,
                    "well-defined vars that were never replaced: {}",
                    names.join(",")
                )
            }
        }
    }
}
