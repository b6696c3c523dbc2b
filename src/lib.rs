//! kgitops: a GitOps reconciler for Kafka-on-Kubernetes (Strimzi) platforms.
//!
//! The library is a pipeline; each module owns one stage and knows nothing of the stages after it:
//!
//! ```text
//! source  -> a read-only file tree at a revision (git objects or a directory)
//! render  -> Kustomize-compatible rendering of that tree into objects (pure: no I/O but the tree)
//! plan    -> discovery, server-side dry-run, normalize, mask, diff against live state -> Plan
//! apply   -> staged server-side apply, health, inventory, prune -> ChangeSet
//! report  -> Plan / ChangeSet / findings as text, Markdown, JSON; events, alerts
//! validate-> schemas and Kafka-aware rules -> findings
//! daemon  -> the `run` loop: fetch, reconcile, drift watch, HTTP, metrics, leader election
//! ```
//!
//! `manifest` holds what every stage passes on: objects, their identities, and YAML in and out.
//! `cli` wires clap arguments to these stages; it holds no logic of its own.

pub mod apply;
pub mod cli;
pub mod daemon;
pub mod manifest;
pub mod memory;
pub mod plan;
pub mod render;
pub mod report;
pub mod source;
pub mod validate;
