//! The Redis side: one shared, self-healing multiplexed connection (to one Redis, or a cluster
//! connection that keeps one per node and follows the slot map), and a deadline on every round
//! trip so an unreachable Redis answers 503 instead of hanging the caller.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{
    ConnectionLike as _, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ConnectionAddr, ConnectionInfo, ErrorKind, RedisError, Value};
use tokio::sync::OnceCell;

use crate::command::Command;
use crate::monitoring::{self, RedisOutcome};
use crate::reply::server_error_text;

/// Redis could not be asked: refused, timed out, dropped. The text is for logs only.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unavailable(String);

/// How a `/multi-exec` transaction ended, when Redis could be asked.
#[derive(Debug)]
pub(crate) enum Transaction {
    /// EXEC ran: one reply per command (some may be error replies).
    Committed(Vec<Value>),
    /// Redis discarded the transaction (a command failed to queue): its error text.
    Discarded(String),
}

pub(crate) struct Upstream {
    redis: Redis,
    timeout: Duration,
}

/// Connected on first use rather than at start-up, so the bridge starts (and answers 503)
/// while Redis is down; once made, each connection reconnects by itself.
#[allow(clippy::large_enum_variant)] // One per bridge, made once: the sizes do not matter.
enum Redis {
    Single {
        client: redis::Client,
        connection: OnceCell<ConnectionManager>,
    },
    Cluster(Cluster),
}

struct Cluster {
    client: ClusterClient,
    /// The seeds' `host:port`s, for `Debug` (the client holds the password).
    seeds: Vec<String>,
    connection: OnceCell<ClusterConnection>,
    /// The first seed's: how to reach (credentials, TLS) any node the cluster names.
    node_info: ConnectionInfo,
    /// Connections of our own to masters, by `host:port`, for transactions: the cluster
    /// client turns any error reply nested in a reply into an error for the whole request,
    /// which would lose EXEC's per-command results (see [`Upstream::transaction`]).
    masters: Mutex<HashMap<String, MultiplexedConnection>>,
}

/// By hand: the clients' connection info may hold the Redis password.
impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("Upstream");
        match &self.redis {
            Redis::Single { client, connection } => out
                .field("addr", &client.get_connection_info().addr.to_string())
                .field("connected", &connection.initialized()),
            Redis::Cluster(cluster) => out
                .field("cluster_seeds", &cluster.seeds)
                .field("connected", &cluster.connection.initialized()),
        };
        out.field("timeout", &self.timeout).finish()
    }
}

impl Upstream {
    pub(crate) fn new(client: redis::Client, timeout: Duration) -> Self {
        Self {
            redis: Redis::Single {
                client,
                connection: OnceCell::new(),
            },
            timeout,
        }
    }

    /// A Redis Cluster reached through `seeds`. Fails only on a bad configuration (the seeds
    /// disagree on password or TLS); nothing is connected yet.
    pub(crate) fn cluster(seeds: &[String], timeout: Duration) -> Result<Self, RedisError> {
        let infos = seeds
            .iter()
            .map(|seed| redis::IntoConnectionInfo::into_connection_info(seed.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        let node_info = infos
            .first()
            .cloned()
            .ok_or_else(|| RedisError::from((ErrorKind::InvalidClientConfig, "no cluster seed")))?;
        // Few retries, soon: they are for following MOVED and ASK while a failover settles.
        // A dead node is refused at once on loopback or in a LAN, so a request for its slots
        // answers 503 well within the deadline instead of backing off for seconds.
        let client = redis::cluster::ClusterClientBuilder::new(seeds.iter().map(String::as_str))
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(2)
            .min_retry_wait(10)
            .max_retry_wait(100)
            .build()?;
        Ok(Self {
            redis: Redis::Cluster(Cluster {
                client,
                seeds: infos.iter().map(|info| info.addr.to_string()).collect(),
                connection: OnceCell::new(),
                node_info,
                masters: Mutex::new(HashMap::new()),
            }),
            timeout,
        })
    }

    /// Whether this is a cluster (some commands and transactions are checked by slot first).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.redis, Redis::Cluster(_))
    }

    /// Where it points, for the start-up log: `host:port`, or the cluster's seeds.
    pub(crate) fn describe(&self) -> String {
        match &self.redis {
            Redis::Single { client, .. } => client.get_connection_info().addr.to_string(),
            Redis::Cluster(cluster) => format!("cluster {}", cluster.seeds.join(",")),
        }
    }

    /// Connects (if not yet) and checks Redis answers (over a cluster: every master); used to
    /// log reachability at start-up.
    pub(crate) async fn ping(&self) -> Result<(), Unavailable> {
        let cmd = redis::cmd("PING");
        self.with_deadline("ping", async move {
            self.connection().await?.command(&cmd).await
        })
        .await
        .map(drop)
    }

    /// One command; an error reply comes back as `Value::ServerError`.
    pub(crate) async fn query(&self, command: &Command) -> Result<Value, Unavailable> {
        let cmd = command.to_redis();
        self.with_deadline("command", async move {
            self.connection().await?.command(&cmd).await
        })
        .await
    }

    /// Commands sent back to back, not atomically; one reply per command, in order.
    ///
    /// Over a cluster each command goes on its own, one after the other, to the node of its
    /// keys: the cluster client would send a whole pipeline to the first key's node, where
    /// every other slot answers `MOVED`. A command whose node cannot be asked fails the request
    /// (503), as one unreachable Redis does.
    pub(crate) async fn pipeline(&self, commands: &[&Command]) -> Result<Vec<Value>, Unavailable> {
        self.with_deadline("pipeline", async move {
            match self.connection().await? {
                Connection::Single(mut conn) => {
                    let mut pipe = redis::pipe();
                    for command in commands {
                        pipe.add_command(command.to_redis());
                    }
                    conn.send_packed_commands(&pipe, 0, commands.len()).await
                }
                mut cluster @ Connection::Cluster(_) => {
                    let mut values = Vec::with_capacity(commands.len());
                    for command in commands {
                        values.push(cluster.command(&command.to_redis()).await?);
                    }
                    Ok(values)
                }
            }
        })
        .await
    }

    /// MULTI, the commands, EXEC, written in one go on the shared connection so nothing
    /// interleaves; only EXEC's reply is read back. Over a cluster it runs on the master of
    /// `slot` (the one slot all its keys share; slot 0's when it names no key), over a
    /// connection of the bridge's own to that master, found with `CLUSTER SLOTS`: the extra
    /// round trip keeps EXEC's replies exactly as one Redis answers them.
    pub(crate) async fn transaction(
        &self,
        commands: &[Command],
        slot: Option<u16>,
    ) -> Result<Transaction, Unavailable> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for command in commands {
            pipe.add_command(command.to_redis());
        }
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, async move {
            let (offset, count) = (commands.len() + 1, 1);
            match self.connection().await? {
                Connection::Single(mut conn) => {
                    conn.send_packed_commands(&pipe, offset, count).await
                }
                Connection::Cluster(mut cluster) => {
                    let (addr, mut master) =
                        self.master_of(&mut cluster, slot.unwrap_or(0)).await?;
                    let replies = master.send_packed_commands(&pipe, offset, count).await;
                    if replies.as_ref().is_err_and(|e| e.code().is_none()) {
                        self.forget_master(&addr);
                    }
                    replies
                }
            }
        })
        .await;
        monitoring::redis_call(
            "transaction",
            started,
            match &outcome {
                Err(_) => RedisOutcome::Timeout,
                // A command Redis would not queue is Redis answering, not Redis failing.
                Ok(Err(e)) if e.code().is_none() || cluster_trouble(e) => RedisOutcome::Error,
                Ok(_) => RedisOutcome::Ok,
            },
        );
        let outcome = outcome.map_err(|_| self.timed_out())?;
        match outcome {
            Ok(mut replies) => match replies.pop() {
                Some(Value::Array(replies)) => Ok(Transaction::Committed(replies)),
                Some(Value::ServerError(error)) => Ok(Transaction::Discarded(server_error_text(
                    error.code(),
                    error.details(),
                ))),
                Some(Value::Nil) => Ok(Transaction::Discarded(
                    "EXECABORT Transaction discarded".into(),
                )),
                // Not the value itself: it is the caller's data, and this text is logged.
                _ => Err(Unavailable("unexpected reply to EXEC".into())),
            },
            // A command that fails to queue fails the whole pipeline with Redis's own error.
            Err(error) => match error.code() {
                Some(code) if !cluster_trouble(&error) => Ok(Transaction::Discarded(
                    server_error_text(code, error.detail()),
                )),
                _ => Err(Unavailable(error.to_string())),
            },
        }
    }

    async fn connection(&self) -> Result<Connection, RedisError> {
        match &self.redis {
            Redis::Single { client, connection } => {
                // No retries inside the manager: its backoff starts at a second, which would turn
                // "Redis refused" into a timeout. The next request reconnects instead, so a 503
                // comes at once.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(self.timeout)
                    .set_response_timeout(self.timeout)
                    .set_number_of_retries(0);
                connection
                    .get_or_try_init(|| ConnectionManager::new_with_config(client.clone(), config))
                    .await
                    .cloned()
                    .map(Connection::Single)
            }
            Redis::Cluster(cluster) => cluster
                .connection
                .get_or_try_init(|| cluster.client.get_async_connection())
                .await
                .cloned()
                .map(Connection::Cluster),
        }
    }

    /// A connection to the master serving `slot` and its `host:port`, as the cluster itself
    /// answers (`CLUSTER SLOTS`, asked of that master through the cluster client).
    async fn master_of(
        &self,
        cluster: &mut ClusterConnection,
        slot: u16,
    ) -> Result<(String, MultiplexedConnection), RedisError> {
        let Redis::Cluster(own) = &self.redis else {
            return Err(RedisError::from((ErrorKind::ClientError, "not a cluster")));
        };
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
            slot,
            SlotAddr::Master,
        )));
        let slots = cluster.route_command(&cmd, route).await?;
        let (host, port) = slot_master(&slots, slot).ok_or_else(|| {
            RedisError::from((ErrorKind::ClusterDown, "no master serves the slot"))
        })?;
        let addr = format!("{host}:{port}");
        let known = own
            .masters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&addr)
            .cloned();
        if let Some(conn) = known {
            return Ok((addr, conn));
        }
        let mut info = own.node_info.clone();
        info.addr = match info.addr {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                tls_params,
            },
            _ => ConnectionAddr::Tcp(host, port),
        };
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout);
        let conn = redis::Client::open(info)?
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        own.masters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(addr.clone(), conn.clone());
        Ok((addr, conn))
    }

    /// Drops a master's connection that failed, so the next transaction connects afresh.
    fn forget_master(&self, addr: &str) {
        if let Redis::Cluster(own) = &self.redis {
            own.masters
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(addr);
        }
    }

    async fn with_deadline<T>(
        &self,
        op: &'static str,
        call: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Result<T, Unavailable> {
        let started = Instant::now();
        let (result, outcome) = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => (Ok(value), RedisOutcome::Ok),
            Ok(Err(error)) => (Err(Unavailable(error.to_string())), RedisOutcome::Error),
            Err(_) => (Err(self.timed_out()), RedisOutcome::Timeout),
        };
        monitoring::redis_call(op, started, outcome);
        result
    }

    fn timed_out(&self) -> Unavailable {
        Unavailable(format!("no answer within {} ms", self.timeout.as_millis()))
    }
}

/// A handle on the shared connection; cheap to clone.
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// One command. An error reply comes back as `Value::ServerError` on both kinds: the cluster
    /// connection hands replies back as errors (it reads them to follow `MOVED` and `ASK`), so
    /// they are turned back into values here, except those that mean the cluster could not
    /// serve the slot, which stay failures.
    async fn command(&mut self, cmd: &redis::Cmd) -> Result<Value, RedisError> {
        match self {
            Self::Single(conn) => conn.send_packed_command(cmd).await,
            Self::Cluster(conn) => match conn.req_packed_command(cmd).await {
                Ok(value) => Ok(value),
                Err(error) => {
                    let reply = match error.code() {
                        Some(code) if !cluster_trouble(&error) => error_reply(code, error.detail()),
                        _ => None,
                    };
                    reply.ok_or(error)
                }
            },
        }
    }
}

/// The `(host, port)` of the master serving `slot`, from a `CLUSTER SLOTS` reply
/// (`[[start, end, [host, port, id, …], replica…], …]`).
fn slot_master(ranges: &Value, slot: u16) -> Option<(String, u16)> {
    let Value::Array(ranges) = ranges else {
        return None;
    };
    ranges.iter().find_map(|range| match range {
        Value::Array(fields) => match fields.as_slice() {
            [Value::Int(start), Value::Int(end), Value::Array(master), ..]
                if (*start..=*end).contains(&i64::from(slot)) =>
            {
                match master.as_slice() {
                    [Value::BulkString(host), Value::Int(port), ..] => Some((
                        String::from_utf8(host.clone()).ok()?,
                        u16::try_from(*port).ok()?,
                    )),
                    _ => None,
                }
            }
            _ => None,
        },
        _ => None,
    })
}

/// An error reply as the `Value` a single-node connection returns for it. redis-rs exports no
/// constructor for the error inside `Value::ServerError`, so the reply is parsed back from the
/// RESP line Redis sent (`-CODE detail`); a line break, which that line cannot hold, becomes a
/// space.
fn error_reply(code: &str, detail: Option<&str>) -> Option<Value> {
    let text = server_error_text(code, detail).replace(['\r', '\n'], " ");
    match redis::parse_redis_value(format!("-{text}\r\n").as_bytes()) {
        Ok(value @ Value::ServerError(_)) => Some(value),
        _ => None,
    }
}

/// Replies by which a cluster says it cannot serve a slot now (down, failing over, moving, a
/// node loading or out of touch with its master): Redis being unavailable, not the command
/// failing, so they answer 503 as an unreachable Redis does.
fn cluster_trouble(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ClusterDown
            | ErrorKind::TryAgain
            | ErrorKind::MasterDown
            | ErrorKind::BusyLoadingError
            | ErrorKind::Moved
            | ErrorKind::Ask
            | ErrorKind::ClusterConnectionNotFound
    )
}
