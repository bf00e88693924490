//! Upstash's Redis REST protocol (<https://upstash.com/docs/redis/features/restapi>) served over
//! any Redis, so self-hosters can run Tollgate's edge without Upstash and our tests can run the
//! edge, and the official `@upstash/redis` client, against a local Redis.
//!
//! What it speaks:
//! - `POST /` with a JSON command array, and the path form `GET|POST /set/k/v` (a POST body is
//!   appended as the last argument, then query pairs other than `_token`).
//! - `POST /pipeline` (in order, not atomic) and `POST /multi-exec` (MULTI/EXEC).
//! - `Authorization: Bearer <token>` or `?_token=`; an optional read-only token that may only run
//!   an allowlist of read commands.
//! - `Upstash-Encoding: base64`.
//! - Tollgate extension: `GET /_bridge/stats` → `{"requests":N,"commands":M}`.
//!
//! Every request shares one multiplexed Redis connection, so commands that block it or change its
//! state (SUBSCRIBE, BLPOP, MULTI, SELECT, CLIENT, …) are refused with 400, and every Redis round
//! trip has a deadline so an unreachable Redis answers 503 instead of hanging.
//!
//! # Layout
//! - [`config`]: [`Config`] (flags and environment) and the redacted [`Token`].
//! - `auth`: the `Authorized` extractor (bearer header or `_token`).
//! - `command`: request → Redis command parsing, refused commands, the read-only allowlist;
//!   [`decode_json`] and [`decode_path`] expose it without Redis, for fuzzing.
//! - `upstream`: the shared Redis connection, deadlines, pipelines and transactions.
//! - `reply`: Redis values → Upstash JSON, with and without base64.
//! - `routes`: the handlers and [`app`].
//! - [`error`]: [`BridgeError`], the one error type and its one HTTP rendering.
//! - `main.rs`: parse config, start tracing, [`build`], bind, [`serve`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

mod auth;
mod command;
pub mod config;
pub mod error;
mod reply;
mod routes;
mod upstream;

pub use command::{decode_json, decode_path, Decoded};
pub use config::{Config, Token};
pub use error::BridgeError;
pub use routes::app;

use command::Access;
use upstream::Upstream;

/// The running bridge's shared state; cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct Bridge(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    token: Token,
    readonly_token: Option<Token>,
    upstream: Upstream,
    body_limit: usize,
    requests: AtomicU64,
    commands: AtomicU64,
}

/// What `GET /_bridge/stats` answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Authorized requests to the command routes (`/`, `/<cmd>/…`, `/pipeline`, `/multi-exec`).
    pub requests: u64,
    /// Commands Redis answered for those requests (a pipeline of 3 counts 3).
    pub commands: u64,
}

/// Builds the state from `config`. Fails only on a bad configuration; an unreachable Redis is
/// logged and retried on each request (answering 503 meanwhile), so the bridge can start first.
pub async fn build(config: Config) -> anyhow::Result<Bridge> {
    let client = redis::Client::open(config.redis_url.as_str())
        .context("REDIS_URL is not a valid Redis URL")?;
    let redis_addr = client.get_connection_info().addr.to_string();
    let upstream = Upstream::new(client, config.redis_timeout());
    match upstream.ping().await {
        Ok(()) => tracing::info!(redis = %redis_addr, "connected to Redis"),
        Err(cause) => tracing::warn!(redis = %redis_addr, %cause, "Redis not reachable yet"),
    }
    Ok(Bridge(Arc::new(Inner {
        token: config.token,
        readonly_token: config.readonly_token,
        upstream,
        body_limit: config.body_limit,
        requests: AtomicU64::new(0),
        commands: AtomicU64::new(0),
    })))
}

/// Serves [`app`] on `listener` until `shutdown` resolves. The caller binds, so tests can bind
/// `127.0.0.1:0` and read the port.
pub async fn serve(
    listener: TcpListener,
    bridge: Bridge,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(bridge))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A bridge serving in the background, as [`spawn`] returns it.
#[derive(Debug, Clone)]
pub struct Spawned {
    /// Where it listens, e.g. `127.0.0.1:41234`.
    pub addr: SocketAddr,
    pub bridge: Bridge,
}

impl Spawned {
    /// The REST URL clients are given (`UPSTASH_REDIS_REST_URL`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Builds, binds `config.bind` and serves on a background task for as long as the runtime lives:
/// the one-liner for tests and for crates that need a bridge in-process.
pub async fn spawn(config: Config) -> anyhow::Result<Spawned> {
    let listener = TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("failed to bind {}", config.bind))?;
    let addr = listener
        .local_addr()
        .context("failed to read the bound address")?;
    let bridge = build(config).await?;
    let served = bridge.clone();
    tokio::spawn(async move {
        if let Err(error) = serve(listener, served, std::future::pending()).await {
            tracing::error!(%error, "bridge server stopped");
        }
    });
    Ok(Spawned { addr, bridge })
}

impl Bridge {
    /// Request and command counters since start (see [`Stats`]).
    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.0.requests.load(Ordering::Relaxed),
            commands: self.0.commands.load(Ordering::Relaxed),
        }
    }

    /// Both tokens are always compared, so timing does not tell which one nearly matched.
    fn access_for(&self, presented: &[u8]) -> Option<Access> {
        let full = self.0.token.matches(presented);
        let read_only = self
            .0
            .readonly_token
            .as_ref()
            .is_some_and(|token| token.matches(presented));
        if full {
            Some(Access::Full)
        } else if read_only {
            Some(Access::ReadOnly)
        } else {
            None
        }
    }

    fn upstream(&self) -> &Upstream {
        &self.0.upstream
    }

    fn body_limit(&self) -> usize {
        self.0.body_limit
    }

    fn count_request(&self) {
        self.0.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn count_commands(&self, n: usize) {
        self.0
            .commands
            .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}
