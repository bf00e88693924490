//! The bridge over the real Redis at 127.0.0.1:6379, started in-process on 127.0.0.1:0 and
//! called over HTTP. Every test works under its own `bridgetest:<uuid>:` prefix and deletes its
//! keys at the end; nothing flushes the shared database (tests that must, or that stop Redis,
//! run a private `redis-server` or Redis Cluster from `tollgate-testkit`).
//!
//! # Layout
//! - `helpers`: [`helpers::TestBridge`] and the calls tests make.
//! - `commands`: JSON, path, pipeline and MULTI/EXEC forms; base64 answers.
//! - `tokens`: full, read-only and scoped tokens; administrative commands.
//! - `bad_requests`: wrong methods, oversized and junk bodies, refused commands.
//! - `availability`: Redis unreachable, silent or restarted; stats; shutdown.
//! - `cluster`: the same bridge over a real 3-master Redis Cluster (one per test): routing by
//!   slot, one-slot transactions, a master killed and restarted, a failover, configuration.

mod availability;
mod bad_requests;
mod cluster;
mod commands;
mod helpers;
mod tokens;
