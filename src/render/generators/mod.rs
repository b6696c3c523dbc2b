//! `configMapGenerator` and `secretGenerator`: objects made from literals, files and env files,
//! merged into existing ones per `behavior`, and the content-hash name suffix.

use super::error::RenderError;
use super::load::{KustFile, Loader};
use super::resource::ResMap;
use crate::source::TreePath;

/// Runs a kustomization's generators, absorbing their objects into `acc`.
pub fn run(_loader: &Loader<'_>, _kf: &KustFile, _acc: &mut ResMap) -> Result<(), RenderError> {
    Ok(())
}

/// Appends the content hash to the names of generated objects that want it.
pub fn add_hash_suffixes(_acc: &mut ResMap, _file: &TreePath) -> Result<(), RenderError> {
    Ok(())
}
