//! `kgitops run`: the reconcile loop, git polling and webhooks, drift watches, the HTTP server
//! (health, status, metrics, webhook), alerts and leader election.
