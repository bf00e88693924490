//! Prometheus metrics for the bridge: the names it records, the recorder and the listener for
//! `GET /metrics` (`BRIDGE_METRICS_ADDR`), kept off the REST port so a token holder never sees
//! them and a scraper needs no token.
//!
//! Label values come from fixed sets: routes are matched templates (`/{*command}`, not the
//! caller's keys), and a command name outside [`KNOWN_COMMANDS`] counts as `OTHER`, so a caller
//! sending made-up commands cannot mint series. README.md ("Metrics") lists the names.

use std::future::Future;
use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use metrics::{counter, histogram};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tollgate_monitoring::Recorder;

/// Every metric name the bridge records.
pub mod names {
    /// Counter `{method, route, status}`: every HTTP request on the REST port.
    pub const HTTP_REQUESTS: &str = "tollgate_bridge_http_requests_total";
    /// Counter `{command, outcome = ok | error_reply | refused | unavailable}`: each command of
    /// each authorized request (a pipeline of three counts three).
    pub const COMMANDS: &str = "tollgate_bridge_commands_total";
    /// Counter `{reason = missing | invalid}`: requests refused for their token.
    pub const AUTH_FAILURES: &str = "tollgate_bridge_auth_failures_total";
    /// Histogram `{op = command | pipeline | transaction | ping, outcome = ok | error |
    /// timeout}`, seconds: each round trip to Redis.
    pub const REDIS_DURATION: &str = "tollgate_bridge_redis_duration_seconds";

    /// All of the above, for the README check.
    pub const ALL: &[&str] = &[HTTP_REQUESTS, COMMANDS, AUTH_FAILURES, REDIS_DURATION];
}

/// Command names reported as themselves; every other name is `OTHER`. Upstash's common
/// commands and everything the bridge refuses or gates, so refusals stay visible by name.
pub const KNOWN_COMMANDS: &[&str] = &[
    "APPEND",
    "BITCOUNT",
    "DBSIZE",
    "DECR",
    "DECRBY",
    "DEL",
    "ECHO",
    "EVAL",
    "EVALSHA",
    "EVALSHA_RO",
    "EVAL_RO",
    "EXISTS",
    "EXPIRE",
    "EXPIREAT",
    "FCALL",
    "FCALL_RO",
    "GET",
    "GETDEL",
    "GETEX",
    "GETRANGE",
    "GETSET",
    "HDEL",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HINCRBY",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HMSET",
    "HSCAN",
    "HSET",
    "HSETNX",
    "HVALS",
    "INCR",
    "INCRBY",
    "INCRBYFLOAT",
    "INFO",
    "LINDEX",
    "LLEN",
    "LPOP",
    "LPUSH",
    "LRANGE",
    "LREM",
    "LSET",
    "LTRIM",
    "MGET",
    "MSET",
    "MSETNX",
    "PERSIST",
    "PEXPIRE",
    "PEXPIREAT",
    "PFADD",
    "PFCOUNT",
    "PING",
    "PSETEX",
    "PTTL",
    "PUBLISH",
    "RENAME",
    "RPOP",
    "RPUSH",
    "SADD",
    "SCAN",
    "SCARD",
    "SDIFF",
    "SET",
    "SETEX",
    "SETNX",
    "SINTER",
    "SISMEMBER",
    "SMEMBERS",
    "SPOP",
    "SREM",
    "SSCAN",
    "STRLEN",
    "SUNION",
    "TIME",
    "TOUCH",
    "TTL",
    "TYPE",
    "UNLINK",
    "XADD",
    "XLEN",
    "XRANGE",
    "ZADD",
    "ZCARD",
    "ZCOUNT",
    "ZINCRBY",
    "ZRANGE",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREM",
    "ZREMRANGEBYSCORE",
    "ZREVRANGE",
    "ZSCORE",
];

pub use tollgate_monitoring::UNMATCHED_ROUTE;

/// Upper bounds of the latency buckets, in seconds (Redis on loopback answers in well under
/// a millisecond; the default deadline is 2 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

static RECORDER: Recorder = Recorder::new(LATENCY_BUCKETS, describe);

/// Installs the process-wide recorder once; later calls share it.
pub(crate) fn install() -> anyhow::Result<PrometheusHandle> {
    RECORDER.install()
}

fn enabled() -> bool {
    RECORDER.enabled()
}

fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        names::HTTP_REQUESTS,
        "HTTP requests by route template and status"
    );
    describe_counter!(names::COMMANDS, "Commands by name and outcome");
    describe_counter!(names::AUTH_FAILURES, "Requests refused for their token");
    describe_histogram!(
        names::REDIS_DURATION,
        Unit::Seconds,
        "Redis round-trip latency"
    );
    for reason in ["missing", "invalid"] {
        counter!(names::AUTH_FAILURES, "reason" => reason).increment(0);
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown`, running the recorder's upkeep.
pub(crate) async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let scraped = handle.clone();
    let app = Router::new().route(
        "/metrics",
        get(move || async move { tollgate_monitoring::exposition(&scraped) }),
    );
    tollgate_monitoring::serve(listener, handle, app, shutdown).await
}

/// Counts each request by matched route template, method and status (`Router::layer` runs it
/// after routing, so the template is known).
pub(crate) async fn track_http(req: Request, next: Next) -> Response {
    tollgate_monitoring::track_http(&RECORDER, names::HTTP_REQUESTS, None, req, next).await
}

/// How one command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    /// Redis answered with an error reply (or discarded the transaction).
    ErrorReply,
    /// Refused before reaching Redis (token scope, shared-connection rule).
    Refused,
    /// Redis could not be asked in time.
    Unavailable,
}

/// Counts one command (`name` upper case).
pub(crate) fn command(name: &str, outcome: Outcome) {
    if !enabled() {
        return;
    }
    let outcome = match outcome {
        Outcome::Ok => "ok",
        Outcome::ErrorReply => "error_reply",
        Outcome::Refused => "refused",
        Outcome::Unavailable => "unavailable",
    };
    counter!(names::COMMANDS, "command" => command_label(name), "outcome" => outcome).increment(1);
}

/// `name` itself if known, else `OTHER`.
fn command_label(name: &str) -> &'static str {
    super::command::ADMIN_COMMANDS
        .iter()
        .chain(super::command::REFUSED_COMMANDS)
        .chain(KNOWN_COMMANDS)
        .find(|known| **known == name)
        .copied()
        .unwrap_or("OTHER")
}

pub(crate) fn auth_failure(missing: bool) {
    let reason = if missing { "missing" } else { "invalid" };
    counter!(names::AUTH_FAILURES, "reason" => reason).increment(1);
}

/// Times one Redis round trip.
pub(crate) fn redis_call(op: &'static str, started: Instant, outcome: RedisOutcome) {
    if !enabled() {
        return;
    }
    let outcome = match outcome {
        RedisOutcome::Ok => "ok",
        RedisOutcome::Error => "error",
        RedisOutcome::Timeout => "timeout",
    };
    histogram!(names::REDIS_DURATION, "op" => op, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum RedisOutcome {
    Ok,
    Error,
    Timeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_name_is_documented_in_the_readme_and_prefixed() {
        let readme = include_str!("../../README.md");
        let missing = tollgate_monitoring::undocumented(names::ALL, "tollgate_bridge_", readme);
        assert!(
            missing.is_empty(),
            "unprefixed or not in README.md: {missing:?}"
        );
    }

    #[test]
    fn unknown_command_names_share_one_label() {
        assert_eq!(command_label("GET"), "GET");
        assert_eq!(command_label("FLUSHALL"), "FLUSHALL");
        assert_eq!(command_label("SUBSCRIBE"), "SUBSCRIBE");
        assert_eq!(command_label("MADE-UP-1234"), "OTHER");
    }
}
