//! Printing values as `kubectl kustomize` prints them (sigs.k8s.io/yaml, go-yaml v2 emitter).

use serde_json::Value;

/// One document, without a leading `---`.
pub fn to_yaml(value: &Value) -> String {
    // Interim: serde-saphyr's serializer. Replaced by a go-yaml v2 compatible emitter.
    serde_saphyr::to_string(value).unwrap_or_default()
}

/// Several documents separated by `---` lines, as `kubectl kustomize` prints a stream.
pub fn to_yaml_stream(values: &[Value]) -> String {
    values.iter().map(to_yaml).collect::<Vec<_>>().join("---\n")
}
