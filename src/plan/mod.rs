//! Desired vs live: discovery, server-side apply dry-run, normalization, Secret masking and the
//! per-object diff, collected into a serializable `Plan`.
