//! Patches as kustomize applies them: strategic merge ([`strategic`]) and JSON 6902 ([`json6902`]).
//! Both are pure functions over one object.
