//! Kustomize `replacements`: copy a field of one object into fields of others.
