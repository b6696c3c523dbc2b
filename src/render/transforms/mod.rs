//! The builtin transformers, run in kustomize's order over the accumulated objects: strategic
//! merge patches, patches, namespace, name prefix, name suffix, labels, annotations, JSON 6902
//! patches, replicas, images, replacements.
//!
//! Each transformer lives in its own module as a function over the [`ResMap`]; [`run`] configures
//! them from one kustomization as kustomize's `configureBuiltinTransformers` does.

pub mod config;
pub mod fieldspec;
pub mod images;
pub mod labels;
pub mod namereference;
pub mod names;
pub mod namespace;
pub mod patch;
pub mod replacement;
pub mod replicas;

use super::error::RenderError;
use super::load::{KustFile, Loader};
use super::resource::ResMap;
use config::TransformerConfig;

/// Runs a kustomization's transformers over `acc`, with the field specs of `config`.
pub fn run(
    loader: &Loader<'_>,
    kf: &KustFile,
    acc: &mut ResMap,
    config: &TransformerConfig,
) -> Result<(), RenderError> {
    let k = &kf.kust;
    let fail = |step: &'static str| {
        move |message: String| RenderError::Transform {
            file: kf.file.clone(),
            step,
            message,
        }
    };
    if let Some(entries) = k.patches_strategic_merge.as_deref().filter(|e| !e.is_empty()) {
        patch::apply_strategic_merge(loader, kf, acc, entries)?;
    }
    for p in k.patches.iter().flatten() {
        patch::apply_patch(loader, kf, acc, p)?;
    }
    if let Some(ns) = k.namespace.as_deref().filter(|ns| !ns.is_empty()) {
        namespace::apply(acc, ns, &config.namespace).map_err(fail("namespace"))?;
    }
    if let Some(prefix) = k.name_prefix.as_deref().filter(|p| !p.is_empty()) {
        names::apply(acc, names::Affix::Prefix, prefix, &config.name_prefix).map_err(fail("namePrefix"))?;
    }
    if let Some(suffix) = k.name_suffix.as_deref().filter(|s| !s.is_empty()) {
        names::apply(acc, names::Affix::Suffix, suffix, &config.name_suffix).map_err(fail("nameSuffix"))?;
    }
    for label in k.labels.iter().flatten() {
        let specs = labels::label_field_specs(label, config).map_err(fail("labels"))?;
        labels::apply(acc, &label.pairs.clone().unwrap_or_default(), &specs).map_err(fail("labels"))?;
    }
    if let Some(common) = &k.common_labels {
        labels::apply(acc, common, &config.common_labels).map_err(fail("commonLabels"))?;
    }
    if let Some(common) = &k.common_annotations {
        labels::apply(acc, common, &config.common_annotations).map_err(fail("commonAnnotations"))?;
    }
    for p in k.patches_json6902.iter().flatten() {
        patch::apply_json6902(loader, kf, acc, p)?;
    }
    for replica in k.replicas.iter().flatten() {
        replicas::apply(acc, replica, &config.replicas).map_err(fail("replicas"))?;
    }
    for image in k.all_images() {
        images::apply(acc, &image, &config.images).map_err(fail("images"))?;
    }
    replacement::apply(loader, kf, acc)
}
