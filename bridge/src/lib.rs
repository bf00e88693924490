//! Upstash's Redis REST protocol (<https://upstash.com/docs/redis/features/restapi>) served over
//! any Redis, so self-hosters can run Tollgate's edge without Upstash and our tests can run the
//! edge, and the official `@upstash/redis` client, against a local Redis.
//!
//! What it speaks:
//! - `POST /` with a JSON command array, and the path form `GET|POST /set/k/v` (a POST body is
//!   appended as the last argument, then query pairs other than `_token`).
//! - `POST /pipeline` (in order, not atomic) and `POST /multi-exec` (MULTI/EXEC).
//! - `Authorization: Bearer <token>` or `?_token=`. Every token carries a command allow-list
//!   ([`Scope`]): the full token runs everything except the administrative commands
//!   ([`ADMIN_COMMANDS`]) the operator did not enable by name, the optional read-only token only
//!   read commands and no script of any kind, and each scoped token exactly the commands listed
//!   with it (the edge's: `HMGET`).
//! - `Upstash-Encoding: base64`.
//! - Reads from a replica (`BRIDGE_READ_REDIS_URL`), as Upstash's read regions: a request whose
//!   every command reads goes there, anything that writes to `REDIS_URL`.
//! - A Redis Cluster instead of one Redis (`REDIS_CLUSTER_URLS`, or a `redis+cluster://h1:p1,h2:p2`
//!   `REDIS_URL`): each command goes to its slot's master; `/pipeline` runs its commands one
//!   after another, each on its own node, so it may span slots; multi-key commands such as `MGET`
//!   and `DEL` are split by slot, and `KEYS`, `DBSIZE`, `FLUSHALL`, `FLUSHDB`, `RANDOMKEY`,
//!   `PING` and `INFO` run on every master (the cluster client combines the answers); `SCAN` is
//!   refused (its cursor is one node's). `/multi-exec` runs on one master, so its keys must share
//!   a slot: else it answers 400 `CROSSSLOT …` before anything is sent. A node that is down, or
//!   a cluster answering `CLUSTERDOWN`/`TRYAGAIN`, answers 503 for the slots concerned only.
//! - Tollgate extension: `GET /_bridge/stats` → `{"requests":N,"commands":M}`.
//!
//! Every request shares one multiplexed Redis connection, so commands that block it or change its
//! state (SUBSCRIBE, BLPOP, MULTI, SELECT, CLIENT, …) are refused with 400, and every Redis round
//! trip has a deadline so an unreachable Redis answers 503 instead of hanging.
//!
//! # Layout
//! - [`config`]: [`Config`] (flags and environment), [`RedisTarget`] (one Redis or a cluster's
//!   seeds) and the redacted [`Token`].
//! - `auth`: the `Authorized` extractor (bearer header or `_token`).
//! - `command`: request → Redis command parsing, refused commands, token scopes;
//!   [`decode_json`] and [`decode_path`] expose it without Redis, for fuzzing; it fails with its
//!   own [`SyntaxError`], which `error` maps to a 400 (so the parser needs nothing of HTTP).
//! - `upstream`: the shared Redis connection (one server or a cluster), deadlines, pipelines and
//!   transactions.
//! - `cluster`: what a Redis Cluster adds: key slots, the keys a command names, and the commands
//!   refused over a cluster or inside its transactions.
//! - `reply`: Redis values → Upstash JSON, with and without base64.
//! - `routes`: the handlers and [`app`].
//! - [`error`]: [`BridgeError`], the one error type and its one HTTP rendering.
//! - [`monitoring`]: Prometheus metric names and the `BRIDGE_METRICS_ADDR` listener (what it
//!   shares with the origin's lives in `tollgate-monitoring`).
//! - `main.rs`: parse config, start tracing, [`build`], bind, [`serve`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

mod auth;
mod cluster;
mod command;
pub mod config;
pub mod error;
pub mod monitoring;
mod reply;
mod routes;
mod upstream;

pub use command::{decode_json, decode_path, Decoded, Scope, SyntaxError, ADMIN_COMMANDS};
pub use config::{CommandName, Config, OptionalAddr, RedisTarget, ScopedToken, Token};
pub use error::BridgeError;
pub use routes::app;

use upstream::Upstream;

/// The running bridge's shared state; cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct Bridge(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Every configured token with what it may run.
    grants: Vec<(Token, Arc<Scope>)>,
    upstream: Upstream,
    /// `BRIDGE_READ_REDIS_URL`: where requests that only read go, when set.
    reads: Option<Upstream>,
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
    let grants = grants(&config)?;
    let upstream = match config.redis_target()? {
        RedisTarget::Single(url) => Upstream::new(
            redis::Client::open(url.as_str()).context("REDIS_URL is not a valid Redis URL")?,
            config.redis_timeout(),
        ),
        // The seeds were checked with the config; a failure here is not the operator's input.
        RedisTarget::Cluster(seeds) => Upstream::cluster(&seeds, config.redis_timeout())
            .context("failed to set up the Redis Cluster client")?,
    };
    let redis_addr = upstream.describe();
    match upstream.ping().await {
        Ok(()) => tracing::info!(redis = %redis_addr, "connected to Redis"),
        Err(cause) => tracing::warn!(redis = %redis_addr, %cause, "Redis not reachable yet"),
    }
    let reads = match &config.read_redis_url {
        None => None,
        Some(url) => {
            let client = redis::Client::open(url.as_str())
                .context("BRIDGE_READ_REDIS_URL is not a valid Redis URL")?;
            let addr = client.get_connection_info().addr.to_string();
            let reads = Upstream::new(client, config.redis_timeout());
            match reads.ping().await {
                Ok(()) => tracing::info!(redis = %addr, "reads go to this Redis"),
                Err(cause) => tracing::warn!(redis = %addr, %cause, "read Redis not reachable yet"),
            }
            Some(reads)
        }
    };
    Ok(Bridge(Arc::new(Inner {
        grants,
        upstream,
        reads,
        body_limit: config.body_limit,
        requests: AtomicU64::new(0),
        commands: AtomicU64::new(0),
    })))
}

/// Each configured token with its scope. Refuses a command no scope can run (it would silently do
/// nothing) and two tokens with one secret (which scope would it have?).
fn grants(config: &Config) -> anyhow::Result<Vec<(Token, Arc<Scope>)>> {
    let names = |list: &mut dyn Iterator<Item = &CommandName>, var: &str| {
        list.map(|name| {
            if command::never_runs(name.as_str()) {
                anyhow::bail!(
                    "{var}: {} can never run over the bridge's shared connection",
                    name.as_str()
                );
            }
            Ok(name.as_str().to_owned())
        })
        .collect::<anyhow::Result<std::collections::BTreeSet<String>>>()
    };
    let mut grants = vec![(
        config.token.clone(),
        Arc::new(Scope::Full {
            admin: names(&mut config.admin_commands.iter(), "BRIDGE_ADMIN_COMMANDS")?,
        }),
    )];
    if let Some(token) = &config.readonly_token {
        grants.push((token.clone(), Arc::new(Scope::ReadOnly)));
    }
    for scoped in &config.scoped_tokens {
        let commands = names(&mut scoped.commands.iter(), "BRIDGE_SCOPED_TOKENS")?;
        grants.push((scoped.token.clone(), Arc::new(Scope::Only(commands))));
    }
    for (i, (token, _)) in grants.iter().enumerate() {
        if grants[..i]
            .iter()
            .any(|(other, _)| other.same_secret(token))
        {
            anyhow::bail!("two configured bridge tokens have the same secret");
        }
    }
    Ok(grants)
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

/// Binds `addr`, installs the process-wide Prometheus recorder and serves `GET /metrics` on a
/// background task for as long as the runtime lives; returns the bound address.
pub async fn spawn_metrics(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("failed to bind BRIDGE_METRICS_ADDR={addr}"))?;
    let bound = listener
        .local_addr()
        .context("failed to read the bound address")?;
    let handle = monitoring::install()?;
    tokio::spawn(async move {
        if let Err(error) = monitoring::serve(listener, handle, std::future::pending()).await {
            tracing::error!(%error, "metrics listener stopped");
        }
    });
    Ok(bound)
}

/// A bridge serving in the background, as [`spawn`] returns it.
#[derive(Debug, Clone)]
pub struct Spawned {
    /// Where it listens, e.g. `127.0.0.1:41234`.
    pub addr: SocketAddr,
    /// Where `/metrics` is served, when `metrics_bind` was set.
    pub metrics_addr: Option<SocketAddr>,
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
    let metrics_addr = match config.metrics_bind.0 {
        Some(at) => Some(spawn_metrics(at).await?),
        None => None,
    };
    let bridge = build(config).await?;
    let served = bridge.clone();
    tokio::spawn(async move {
        if let Err(error) = serve(listener, served, std::future::pending()).await {
            tracing::error!(%error, "bridge server stopped");
        }
    });
    Ok(Spawned {
        addr,
        metrics_addr,
        bridge,
    })
}

impl Bridge {
    /// Request and command counters since start (see [`Stats`]).
    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.0.requests.load(Ordering::Relaxed),
            commands: self.0.commands.load(Ordering::Relaxed),
        }
    }

    /// Every token is compared, so timing does not tell which one nearly matched.
    fn access_for(&self, presented: &[u8]) -> Option<Arc<Scope>> {
        let mut found = None;
        for (token, scope) in &self.0.grants {
            if token.matches(presented) && found.is_none() {
                found = Some(scope.clone());
            }
        }
        found
    }

    /// Whether `command` may run for `scope` here, else the error to answer: the token's
    /// allow-list and the shared-connection rule, and over a cluster what it cannot serve.
    fn check(&self, command: &command::Command, scope: &Scope) -> Result<(), String> {
        command.check(scope)?;
        if self.upstream().is_cluster() {
            if let Some(refused) = cluster::refusal(command) {
                return Err(refused);
            }
        }
        Ok(())
    }

    fn upstream(&self) -> &Upstream {
        &self.0.upstream
    }

    /// The read Redis when every command only reads and one is configured, else the primary.
    fn upstream_for<'a>(
        &self,
        mut commands: impl Iterator<Item = &'a command::Command>,
    ) -> &Upstream {
        match &self.0.reads {
            Some(reads) if commands.all(command::Command::is_read) => reads,
            _ => &self.0.upstream,
        }
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
