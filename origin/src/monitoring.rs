//! Prometheus metrics: the names the origin records, the recorder, and the `/metrics` listener.
//!
//! Code anywhere records through the `metrics` facade (`metrics::counter!(names::LOGINS, …)`),
//! always with a name from [`names`] and label values from a fixed set, so the series count
//! stays bounded whatever callers send: routes are matched templates (`/api/users/logout-device/
//! {token_id}`), never raw paths. Without `METRICS_ADDR` no recorder is installed and every
//! record call is a no-op; the HTTP middleware then skips even building its labels.
//!
//! The metrics are served on their own listener (`METRICS_ADDR`), never on the public API port:
//! they tell who is failing to log in and how often, which is for operators only.
//! README.md ("Metrics") lists every name with its labels and example alerts; a unit test below
//! keeps that table and [`names::ALL`] in step.

use std::future::Future;
use std::time::Instant;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tollgate_monitoring::Recorder;

use crate::error::ApiError;
use crate::redis::StoreError;
use crate::state::AppState;

/// Every metric name the origin records. Helpers elsewhere use these constants, never literals.
pub mod names {
    /// Counter `{method, route, status}`: every HTTP request on the API port.
    pub const HTTP_REQUESTS: &str = "tollgate_http_requests_total";
    /// Histogram `{method, route}`, seconds.
    pub const HTTP_DURATION: &str = "tollgate_http_request_duration_seconds";
    /// Counter `{code}`: protected requests refused by the `AuthUser` extractor (4xx codes).
    pub const BEARER_REJECTIONS: &str = "tollgate_bearer_rejections_total";
    /// Counter `{outcome = success | failure}`: logins (failure: wrong password or unknown email).
    pub const LOGINS: &str = "tollgate_logins_total";
    /// Counter: accounts created.
    pub const REGISTRATIONS: &str = "tollgate_registrations_total";
    /// Counter `{outcome = rotated | grace_replay | invalid | reused}`; `reused` is a detected
    /// refresh-token reuse (the session is revoked).
    pub const REFRESHES: &str = "tollgate_refreshes_total";
    /// Counter `{kind}`: device-session revocations and account deletions (see [`super::Revocation`]).
    pub const REVOCATIONS: &str = "tollgate_revocations_total";
    /// Histogram `{call, outcome = ok | error | timeout}`, seconds: each Redis round trip.
    pub const REDIS_DURATION: &str = "tollgate_redis_call_duration_seconds";
    /// Histogram `{query}`, seconds: each database call (SQLite's in-process writer queue included).
    pub const DB_DURATION: &str = "tollgate_db_call_duration_seconds";
    /// Gauge `{pool = login | register}`: password hashes waiting for an Argon2 permit.
    pub const ARGON2_WAITING: &str = "tollgate_argon2_waiting";
    /// Gauge `{pool}`: password hashes holding a permit (running or about to).
    pub const ARGON2_IN_FLIGHT: &str = "tollgate_argon2_in_flight";
    /// Gauge: Redis's `maxmemory` in bytes (0: no limit), read at each scrape.
    pub const REDIS_MAXMEMORY: &str = "tollgate_redis_maxmemory_bytes";
    /// Gauge: keys Redis evicted since it started (its `evicted_keys`), read at each scrape.
    pub const REDIS_EVICTED_KEYS: &str = "tollgate_redis_evicted_keys";
    /// Gauge `{policy}`: 1 when Redis's `maxmemory-policy` may evict keys, else 0.
    pub const REDIS_EVICTING: &str = "tollgate_redis_evicting";

    /// All of the above, for the README check.
    pub const ALL: &[&str] = &[
        HTTP_REQUESTS,
        HTTP_DURATION,
        BEARER_REJECTIONS,
        LOGINS,
        REGISTRATIONS,
        REFRESHES,
        REVOCATIONS,
        REDIS_DURATION,
        DB_DURATION,
        ARGON2_WAITING,
        ARGON2_IN_FLIGHT,
        REDIS_MAXMEMORY,
        REDIS_EVICTED_KEYS,
        REDIS_EVICTING,
    ];
}

pub use tollgate_monitoring::UNMATCHED_ROUTE;

/// Upper bounds of the latency buckets, in seconds: Redis and SQL calls sit at the low end,
/// Argon2-bound logins near 50-100 ms, and anything past the 1 s Redis deadline is an outage.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

static RECORDER: Recorder = Recorder::new(LATENCY_BUCKETS, describe);

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle, so
/// several origins built in one process share one registry).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    RECORDER.install()
}

/// Whether a recorder is installed: without one, the hot path skips building labels.
fn enabled() -> bool {
    RECORDER.enabled()
}

/// HELP lines, and zeroes for the bounded label sets so `rate()` sees a counter's first event.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        names::HTTP_REQUESTS,
        "HTTP requests by route template and status"
    );
    describe_histogram!(names::HTTP_DURATION, Unit::Seconds, "HTTP request latency");
    describe_counter!(
        names::BEARER_REJECTIONS,
        "Protected requests refused, by error code"
    );
    describe_counter!(names::LOGINS, "Logins by outcome");
    describe_counter!(names::REGISTRATIONS, "Accounts created");
    describe_counter!(
        names::REFRESHES,
        "Refresh requests by outcome (reused: reuse detected)"
    );
    describe_counter!(
        names::REVOCATIONS,
        "Device sessions revoked and accounts deleted, by kind"
    );
    describe_histogram!(names::REDIS_DURATION, Unit::Seconds, "Redis call latency");
    describe_histogram!(names::DB_DURATION, Unit::Seconds, "Database call latency");
    describe_gauge!(
        names::ARGON2_WAITING,
        "Password hashes waiting for a permit"
    );
    describe_gauge!(names::ARGON2_IN_FLIGHT, "Password hashes holding a permit");
    describe_gauge!(
        names::REDIS_MAXMEMORY,
        Unit::Bytes,
        "Redis maxmemory (0: no limit)"
    );
    describe_gauge!(
        names::REDIS_EVICTED_KEYS,
        "Keys Redis has evicted since it started"
    );
    describe_gauge!(
        names::REDIS_EVICTING,
        "1 if Redis's maxmemory-policy may evict keys"
    );
    for outcome in ["success", "failure"] {
        counter!(names::LOGINS, "outcome" => outcome).increment(0);
    }
    counter!(names::REGISTRATIONS).increment(0);
    for outcome in ["rotated", "grace_replay", "invalid", "reused"] {
        counter!(names::REFRESHES, "outcome" => outcome).increment(0);
    }
    for kind in Revocation::ALL {
        counter!(names::REVOCATIONS, "kind" => kind.as_str()).increment(0);
    }
    for pool in ["login", "register"] {
        gauge!(names::ARGON2_WAITING, "pool" => pool).set(0.0);
        gauge!(names::ARGON2_IN_FLIGHT, "pool" => pool).set(0.0);
    }
}

/// Binds `addr` for the metrics listener.
pub async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("Failed to bind METRICS_ADDR {addr}"))
}

/// Serves `GET /metrics` on `listener` until `shutdown`, and runs the recorder's upkeep (which
/// drains histogram samples even when nobody scrapes).
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state((handle.clone(), state));
    tollgate_monitoring::serve(listener, handle, app, shutdown)
        .await
        .context("metrics server error")
}

/// Refreshes the figures read from Redis, then renders everything.
async fn scrape(State((handle, state)): State<(PrometheusHandle, AppState)>) -> Response {
    match state.redis.eviction().await {
        Ok(e) => {
            gauge!(names::REDIS_MAXMEMORY).set(e.maxmemory as f64);
            gauge!(names::REDIS_EVICTED_KEYS).set(e.evicted_keys as f64);
            gauge!(names::REDIS_EVICTING, "policy" => e.policy.clone()).set(if e.evicting() {
                1.0
            } else {
                0.0
            });
        }
        // The latency histogram already shows the failed INFO; the rest still renders.
        Err(e) => tracing::debug!(error = %e, "metrics: could not read Redis INFO"),
    }
    tollgate_monitoring::exposition(&handle)
}

/// Middleware on every route of the API router: counts the request by its matched route
/// template and final status, and times it. `Router::layer` runs it after routing, so the
/// template is known; the fallback has none and counts as [`UNMATCHED_ROUTE`].
pub async fn track_http(req: Request, next: Next) -> Response {
    let duration = Some(names::HTTP_DURATION);
    tollgate_monitoring::track_http(&RECORDER, names::HTTP_REQUESTS, duration, req, next).await
}

/// A protected request refused by the auth extractor. Only client-side codes count: a 503 when
/// Redis is down is not a rejection of the token, and shows in the request counter as a 5xx.
pub fn bearer_rejected(error: &ApiError) {
    let code = error.code();
    if code.status() < 500 {
        counter!(names::BEARER_REJECTIONS, "code" => code.as_str()).increment(1);
    }
}

pub fn login(success: bool) {
    let outcome = if success { "success" } else { "failure" };
    counter!(names::LOGINS, "outcome" => outcome).increment(1);
}

pub fn registration() {
    counter!(names::REGISTRATIONS).increment(1);
}

/// How a refresh request ended.
#[derive(Debug, Clone, Copy)]
pub enum Refresh {
    Rotated,
    GraceReplay,
    Invalid,
    Reused,
}

pub fn refresh(outcome: Refresh) {
    let outcome = match outcome {
        Refresh::Rotated => "rotated",
        Refresh::GraceReplay => "grace_replay",
        Refresh::Invalid => "invalid",
        Refresh::Reused => "reused",
    };
    counter!(names::REFRESHES, "outcome" => outcome).increment(1);
}

/// What revoked a device session (or an account): the `kind` label of [`names::REVOCATIONS`].
/// The `reason` strings `tokens::revoke_device` takes map onto it; an unknown one counts as
/// `other` rather than minting a new series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Logout,
    LogoutAll,
    LogoutDevice,
    LogoutOthers,
    RefreshReuse,
    AccountDeletion,
    Other,
}

impl Revocation {
    const ALL: [Self; 7] = [
        Self::Logout,
        Self::LogoutAll,
        Self::LogoutDevice,
        Self::LogoutOthers,
        Self::RefreshReuse,
        Self::AccountDeletion,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::LogoutDevice => "logout_device",
            Self::LogoutOthers => "logout_others",
            Self::RefreshReuse => "refresh_reuse",
            Self::AccountDeletion => "account_deletion",
            Self::Other => "other",
        }
    }

    /// The kind named by a revocation reason as stored in `device_sessions.revoked_reason`.
    pub fn from_reason(reason: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == reason)
            .unwrap_or(Self::Other)
    }
}

pub fn revocation(kind: Revocation) {
    counter!(names::REVOCATIONS, "kind" => kind.as_str()).increment(1);
}

/// Times one Redis round trip (`RedisStore::run` calls it for every call).
pub fn redis_call<T>(call: &'static str, started: Instant, result: &Result<T, StoreError>) {
    if !enabled() {
        return;
    }
    let outcome = match result {
        Ok(_) => "ok",
        Err(StoreError::Timeout(_)) => "timeout",
        Err(StoreError::Redis(..)) => "error",
    };
    histogram!(names::REDIS_DURATION, "call" => call, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}

/// Times one database call until dropped: `let _timer = DbCall::start("user_by_id");` as the
/// first line of a `Db` method covers every return path without restructuring it.
#[derive(Debug)]
pub struct DbCall {
    query: &'static str,
    started: Instant,
}

impl DbCall {
    pub fn start(query: &'static str) -> Self {
        Self {
            query,
            started: Instant::now(),
        }
    }
}

impl Drop for DbCall {
    fn drop(&mut self) {
        if !enabled() {
            return;
        }
        histogram!(names::DB_DURATION, "query" => self.query)
            .record(self.started.elapsed().as_secs_f64());
    }
}

/// One unit of a gauge for as long as it lives: dropped on every path (a request cancelled
/// while it waits for an Argon2 permit included), so the gauge never drifts.
#[derive(Debug)]
pub struct GaugeHeld {
    gauge: metrics::Gauge,
}

impl GaugeHeld {
    pub fn hold(name: &'static str, pool: &'static str) -> Self {
        let gauge = gauge!(name, "pool" => pool);
        gauge.increment(1.0);
        Self { gauge }
    }
}

impl Drop for GaugeHeld {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_name_is_documented_in_the_readme_and_prefixed() {
        let readme = include_str!("../../README.md");
        let missing = tollgate_monitoring::undocumented(names::ALL, "tollgate_", readme);
        assert!(
            missing.is_empty(),
            "unprefixed or not in README.md: {missing:?}"
        );
    }

    #[test]
    fn revocation_reasons_map_onto_a_bounded_kind() {
        assert_eq!(Revocation::from_reason("logout"), Revocation::Logout);
        assert_eq!(
            Revocation::from_reason("refresh_reuse"),
            Revocation::RefreshReuse
        );
        assert_eq!(Revocation::from_reason("whatever"), Revocation::Other);
    }
}
