//! Staged server-side apply, health checks, the ApplySet inventory and prune -> `ChangeSet`.
