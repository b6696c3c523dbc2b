//! The Kustomize engine: renders a kustomization from a [`crate::source::FileTree`] into objects,
//! with the semantics and output of kustomize v5 (`kubectl kustomize`).
//!
//! Pure: no tokio, no kube, no file system but the tree it is given.

pub mod patches;
pub mod replacements;
pub mod selector;
