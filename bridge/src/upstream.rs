//! The Redis side: one shared, self-healing multiplexed connection, and a deadline on every
//! round trip so an unreachable Redis answers 503 instead of hanging the caller.

use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Value};
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
    client: redis::Client,
    /// Connected on first use rather than at start-up, so the bridge starts (and answers 503)
    /// while Redis is down; once made, the manager reconnects by itself.
    connection: OnceCell<ConnectionManager>,
    timeout: Duration,
}

/// By hand: the client's connection info may hold the Redis password.
impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("addr", &self.client.get_connection_info().addr.to_string())
            .field("connected", &self.connection.initialized())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Upstream {
    pub(crate) fn new(client: redis::Client, timeout: Duration) -> Self {
        Self {
            client,
            connection: OnceCell::new(),
            timeout,
        }
    }

    /// Connects (if not yet) and checks Redis answers; used to log reachability at start-up.
    pub(crate) async fn ping(&self) -> Result<(), Unavailable> {
        let cmd = redis::cmd("PING");
        self.with_deadline("ping", async move {
            let mut conn = self.connection().await?;
            conn.send_packed_command(&cmd).await
        })
        .await
        .map(drop)
    }

    /// One command; an error reply comes back as `Value::ServerError`.
    pub(crate) async fn query(&self, command: &Command) -> Result<Value, Unavailable> {
        let cmd = command.to_redis();
        self.with_deadline("command", async move {
            let mut conn = self.connection().await?;
            conn.send_packed_command(&cmd).await
        })
        .await
    }

    /// Commands sent back to back, not atomically; one reply per command, in order.
    pub(crate) async fn pipeline(&self, commands: &[&Command]) -> Result<Vec<Value>, Unavailable> {
        let mut pipe = redis::pipe();
        for command in commands {
            pipe.add_command(command.to_redis());
        }
        self.with_deadline("pipeline", async move {
            let mut conn = self.connection().await?;
            conn.send_packed_commands(&pipe, 0, commands.len()).await
        })
        .await
    }

    /// MULTI, the commands, EXEC, written in one go on the shared connection so nothing
    /// interleaves; only EXEC's reply is read back.
    pub(crate) async fn transaction(
        &self,
        commands: &[Command],
    ) -> Result<Transaction, Unavailable> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for command in commands {
            pipe.add_command(command.to_redis());
        }
        let started = Instant::now();
        let outcome = tokio::time::timeout(self.timeout, async move {
            let mut conn = self.connection().await?;
            conn.send_packed_commands(&pipe, commands.len() + 1, 1)
                .await
        })
        .await;
        monitoring::redis_call(
            "transaction",
            started,
            match &outcome {
                Err(_) => RedisOutcome::Timeout,
                // A command Redis would not queue is Redis answering, not Redis failing.
                Ok(Err(e)) if e.code().is_none() => RedisOutcome::Error,
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
                Some(code) => Ok(Transaction::Discarded(server_error_text(
                    code,
                    error.detail(),
                ))),
                None => Err(Unavailable(error.to_string())),
            },
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        // No retries inside the manager: its backoff starts at a second, which would turn "Redis
        // refused" into a timeout. The next request reconnects instead, so a 503 comes at once.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(0);
        self.connection
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .cloned()
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
