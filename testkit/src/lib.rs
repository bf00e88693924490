//! What Tollgate's test trees (origin/tests, bridge/tests, tests/, bench/, fuzz/) share, so each
//! is written once: a private `redis-server` or Redis Cluster, free ports, the client calls every
//! test makes, an upstream behind the edge, and the claims fixture. A leaf crate, used only as a
//! dev-dependency (and by the test harnesses).
//!
//! # Layout
//! - [`claims`]: an access-token claim set shaped like the origin's (UUID ids, default issuer
//!   and audience), for benchmarks, fuzzing and property tests. Pure: with
//!   `default-features = false` it is all the fuzz targets take.
//! - [`ports`] (feature `services`): [`free_port`](ports::free_port) for in-process listeners
//!   and [`child_port`](ports::child_port) for child processes, drawn below the ephemeral range.
//! - [`redis_server`] (feature `services`): [`RedisServer`], a private redis-server killed on drop.
//! - [`redis_cluster`] (feature `services`): [`RedisCluster`], a real Redis Cluster on loopback
//!   (masters, replicas, `redis-cli --cluster create`) that tests can kill, restart and fail over.
//! - [`http`] (feature `services`): [`ApiClient`], the register / login / refresh / bearer calls
//!   against a base URL (the origin's or the edge's), and the [`Tokens`] they return.
//! - [`upstream`] (feature `services`): an API behind the edge — [`whoami`](upstream::whoami)
//!   on [`EdgeState`](upstream::EdgeState) — and [`Served`], a router on a loopback port.

pub mod claims;
#[cfg(feature = "services")]
pub mod http;
#[cfg(feature = "services")]
pub mod ports;
#[cfg(feature = "services")]
pub mod redis_cluster;
#[cfg(feature = "services")]
pub mod redis_server;
#[cfg(feature = "services")]
pub mod upstream;

#[cfg(feature = "services")]
pub use http::{claims_of, ApiClient, Tokens, PASSWORD};
#[cfg(feature = "services")]
pub use ports::{child_port, free_port};
#[cfg(feature = "services")]
pub use redis_cluster::{node_client, RedisCluster};
#[cfg(feature = "services")]
pub use redis_server::RedisServer;
#[cfg(feature = "services")]
pub use upstream::Served;
