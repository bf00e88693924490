//! Tollgate origin: the Axum service that issues, rotates and revokes tokens.
//!
//! Access tokens are short-lived JWTs whose `jti` lives in Redis; revoking means deleting that
//! record (one device) or bumping the user's version (all devices), and every protected request
//! checks both in one Redis round trip. SQL (SQLite by default, PostgreSQL by URL) holds users
//! and device sessions, with refresh secrets stored only as hashes.
//!
//! # Layout
//! - [`config`]: `Settings` from the environment.
//! - [`app`]: `router()` and `Application` (bind, serve, shut down).
//! - [`routes`]: HTTP handlers — `users` (register, login, refresh, me, account deletion), `sessions` (the four
//!   logouts, the sessions list), `meta` (token stats, JWKS, health), `oauth` (RFC 7009
//!   revocation, RFC 7662 introspection).
//! - [`openapi`]: the OpenAPI document, generated from the routes (`GET /openapi.json`).
//! - [`pages`]: the devices page and the admin page (server-rendered HTML, cookie sessions).
//! - [`auth`]: the `AuthUser` and `ClientInfo` extractors.
//! - [`tokens`]: minting access tokens, revoking device sessions, deleting accounts.
//! - [`redis`]: `RedisStore`, the revocation authority: jti records, versions, the multi-key
//!   steps as Lua scripts.
//! - [`db`]: SQL through sqlx's `Any` driver.
//! - [`keyring`], [`password`]: keys, Argon2id.
//! - [`domain`]: the pure helpers, a module a job: input rules, refresh secrets and their
//!   hashes, sealing, the clock, ids.
//! - [`replication`]: revocations that wait for Redis replicas (`WAIT`) before answering.
//! - [`limits`]: login (failures only) and registration limits.
//! - [`memo`]: the bounded in-process caches (verified signatures, profiles).
//! - [`monitoring`]: Prometheus metric names, the recorder and the `METRICS_ADDR` listener (what
//!   it shares with the bridge's lives in `tollgate-monitoring`).
//! - [`cleanup`], [`cli`], [`telemetry`], [`error`], [`state`].

pub mod app;
pub mod auth;
pub mod cleanup;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod keyring;
pub mod limits;
pub mod memo;
pub mod monitoring;
pub mod openapi;
pub mod pages;
pub mod password;
pub mod redis;
pub mod replication;
pub mod routes;
pub mod state;
pub mod telemetry;
pub mod tokens;
