//! Parsing YAML streams into JSON values through serde-saphyr, with limits.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Hard limits on one YAML input. Each refuses hostile input before it costs real time or memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted file, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of mappings and sequences.
    pub max_depth: usize,
    /// Most alias (`*ref`) uses in one file; kustomize inputs practically never use any.
    pub max_aliases: usize,
    /// Most documents in one file.
    pub max_documents: usize,
    /// Most nodes (scalars, mappings, sequences) in one file, aliases expanded.
    pub max_nodes: usize,
}

impl Limits {
    /// Sensible defaults for Kubernetes manifests.
    pub const DEFAULT: Limits = Limits {
        max_bytes: Limits::DEFAULT_MAX_BYTES,
        max_depth: Limits::DEFAULT_MAX_DEPTH,
        max_aliases: Limits::DEFAULT_MAX_ALIASES,
        max_documents: Limits::DEFAULT_MAX_DOCUMENTS,
        max_nodes: Limits::DEFAULT_MAX_NODES,
    };
    /// 64 MiB: far above any real manifest file (the largest Strimzi CRD is under 0.5 MiB).
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
    /// 256 levels: Kubernetes objects nest a few dozen deep at most.
    pub const DEFAULT_MAX_DEPTH: usize = 256;
    /// 1,000 alias uses per file.
    pub const DEFAULT_MAX_ALIASES: usize = 1_000;
    /// 100,000 documents per file.
    pub const DEFAULT_MAX_DOCUMENTS: usize = 100_000;
    /// 10 million nodes per file (a 20,000-object file has well under 2 million).
    pub const DEFAULT_MAX_NODES: usize = 10_000_000;
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A YAML input that could not be read; always names the source (file path or description).
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("{source_name}: {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        source_name: String,
        size: usize,
        limit: usize,
    },
    #[error("{source_name}: {message}")]
    Syntax { source_name: String, message: String },
}

fn options(limits: &Limits) -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: limits.max_depth,
            max_aliases: limits.max_aliases,
            max_documents: limits.max_documents,
            max_nodes: limits.max_nodes,
        },
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
    }
}

fn check_size(text: &str, source_name: &str, limits: &Limits) -> Result<(), YamlError> {
    if text.len() > limits.max_bytes {
        return Err(YamlError::TooLarge {
            source_name: source_name.to_string(),
            size: text.len(),
            limit: limits.max_bytes,
        });
    }
    Ok(())
}

fn syntax(source_name: &str, err: serde_saphyr::Error) -> YamlError {
    YamlError::Syntax {
        source_name: source_name.to_string(),
        message: err.to_string(),
    }
}

/// Parses every document of a YAML stream. Empty and `null` documents are dropped, as kustomize
/// drops them.
pub fn parse_documents(text: &str, source_name: &str, limits: &Limits) -> Result<Vec<Value>, YamlError> {
    check_size(text, source_name, limits)?;
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(text, options(limits))
        .map_err(|e| syntax(source_name, e))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Parses one document into a typed value (kustomization files, configuration). Unknown fields are
/// refused when `T` says `deny_unknown_fields`.
pub fn parse_typed<T: DeserializeOwned>(
    text: &str,
    source_name: &str,
    limits: &Limits,
) -> Result<T, YamlError> {
    check_size(text, source_name, limits)?;
    serde_saphyr::from_str_with_options(text, options(limits)).map_err(|e| syntax(source_name, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_stream_drops_empty_documents() {
        let docs = parse_documents("a: 1\n---\n---\nb: [x]\n", "t.yaml", &Limits::DEFAULT).unwrap();
        assert_eq!(
            docs,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"b": ["x"]})]
        );
    }

    #[test]
    fn syntax_error_names_the_file() {
        let err = parse_documents("a: [1\n", "base/x.yaml", &Limits::DEFAULT).unwrap_err();
        assert!(err.to_string().starts_with("base/x.yaml: "), "{err}");
    }
}
