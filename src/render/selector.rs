//! Patch and replacement targets: group/version/kind, name and namespace regexes, label and
//! annotation selectors.
