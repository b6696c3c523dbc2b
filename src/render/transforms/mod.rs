//! The builtin transformers, run in kustomize's order over the accumulated objects.

pub mod namereference;

use super::error::RenderError;
use super::load::{KustFile, Loader};
use super::resource::ResMap;

/// Runs a kustomization's transformers over `acc`.
pub fn run(_loader: &Loader<'_>, _kf: &KustFile, _acc: &mut ResMap) -> Result<(), RenderError> {
    Ok(())
}
