//! YAML in and out, byte-compatible with `kubectl kustomize`.
//!
//! In: [`parse_documents`] reads a multi-document stream into JSON values as kustomize (go-yaml
//! v3 through kyaml) reads manifests, with hard limits ([`Limits`]) so that alias bombs, absurd
//! nesting and oversized files are refused quickly with an error naming the file and line, never
//! a hang, stack overflow or out-of-memory. [`parse_typed`] reads configuration into typed values.
//!
//! Out: [`to_yaml`] prints a value exactly as `kubectl kustomize` does (sigs.k8s.io/yaml over
//! go-yaml v2: sorted keys, YAML 1.1 quoting, literal blocks for multi-line strings, folding at 80
//! columns). [`StyledNode`] holds a document as written, for kustomize's replacements inside YAML
//! embedded in strings, printed as kyaml's encoder (go-yaml v3) prints it.

// This module uses only std and its crates (no `crate::` paths): the fuzz target in `fuzz/`
// compiles these files directly.
mod emit;
mod node;
mod parse;
mod resolve;
mod scalar;

pub use emit::{to_yaml, to_yaml_stream};
pub use node::{StyledError, StyledNode};
pub use parse::{
    Document, Limits, YamlError, parse_documents, parse_documents_with_empty_nulls, parse_documents_yaml11,
    parse_patch_documents, parse_typed, parse_typed_kustomize,
};
