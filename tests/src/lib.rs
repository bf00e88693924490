//! End-to-end harness for Tollgate: the edge Worker running in workerd (`wrangler dev`) in front
//! of the origin, with the Upstash REST bridge over real Redis — every hop real, per test.
//!
//! Each [`Stack`] gets its own SQLite file, key file and Redis key prefix (so tests run in
//! parallel against one Redis), its own bridge on a free port, and its own `wrangler dev`
//! child process (own port, `--persist-to` dir, secrets file) serving the bundle prebuilt by
//! `scripts/build-edge.sh`. Between the edge and the origin sits a [`Tap`]: a recording
//! pass-through, so a test can tell what the origin received — the identity headers, and
//! whether a refused request ever got past the edge.
//!
//! Needs Redis at `TEST_REDIS_URL` (default `redis://127.0.0.1:6379`) and the edge toolchain
//! and bundle (`scripts/build-edge.sh`); without them the tests fail and say so.
//!
//! # Layout
//! - [`stack`]: [`Stack`], one test's services, plus the client helpers (register, login, …).
//! - [`edge`]: [`Edge`], a `wrangler dev` child process, killed with its process group on drop.
//! - [`bridge`]: [`BridgeHandle`], the REST bridge in-process, stoppable and restartable on
//!   its port.
//! - [`tap`]: [`Tap`], the recording pass-through in front of the origin.
//! - [`origin`]: [`Origin`], the origin in-process.
//! - [`redis_server`]: [`RedisServer`], a private redis-server for fault tests.

pub mod bridge;
pub mod edge;
pub mod origin;
pub mod redis_server;
pub mod stack;
pub mod tap;

use std::path::PathBuf;

pub use bridge::BridgeHandle;
pub use edge::{Edge, EdgeConfig};
pub use origin::Origin;
pub use redis_server::RedisServer;
pub use stack::{Stack, StackOptions, Tokens};
pub use tap::{Seen, Tap};

/// The Redis every test shares (each under its own key prefix).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The workspace root (this crate lives in `<root>/tests`).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// A port that was free a moment ago (bind `:0`, read, release).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
