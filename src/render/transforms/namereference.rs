//! Name references: fields that name another object follow that object's final name.

use crate::render::error::RenderError;
use crate::render::resource::ResMap;
use crate::source::TreePath;

/// Updates every name reference to the referred object's final name.
pub fn fix(_acc: &mut ResMap, _file: &TreePath) -> Result<(), RenderError> {
    Ok(())
}
