//! Operational routes: token stats (admin), JWKS, health and readiness.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use tollgate_shared::jwt::Jwks;
use tollgate_shared::{ErrorBody, ErrorCode};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(token_stats))
        .routes(routes!(jwks))
        .routes(routes!(health))
        .routes(routes!(ready))
}

/// Token statistics; camelCase names, as the seed had them.
#[derive(Debug, Serialize, ToSchema)]
struct TokenStats {
    redis: RedisStats,
    database: DatabaseStats,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RedisStats {
    total_jtis: u64,
    total_refresh_tokens: u64,
    /// Redis's `used_memory_human`.
    memory_usage: String,
    /// RFC 3339: when these Redis figures were computed.
    computed_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct DatabaseStats {
    total_refresh_tokens: i64,
    active_refresh_tokens: i64,
    revoked_refresh_tokens: i64,
}

/// Admins only: Redis counts and memory (computed by `SCAN` at most every
/// `TOKEN_STATS_MAX_AGE_SECS`, with `computedAt`), database counts. The role is read from the
/// database on every call — never from the token or a memo — so a promotion or demotion holds
/// from the next request.
#[utoipa::path(get, path = "/api/users/token-stats", tag = "operations", security(("bearer" = [])),
    responses(
        (status = 200, description = "Token statistics", body = TokenStats),
        (status = 401, description = "A bearer rejection", body = ErrorBody),
        (status = 403, description = "`forbidden`: admin role required", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
async fn token_stats(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<TokenStats>> {
    require_admin(&state, &auth.identity.user_id).await?;
    let now = crate::domain::now();
    let (redis, computed_at) = state
        .redis_stats
        .get(&state.redis, now, state.settings.token_stats_max_age)
        .await?;
    let db = state.db.session_counts(now).await?;
    Ok(Json(TokenStats {
        redis: RedisStats {
            total_jtis: redis.total_jtis,
            total_refresh_tokens: redis.total_refresh_tokens,
            memory_usage: redis.memory_usage,
            computed_at: crate::domain::rfc3339(computed_at),
        },
        database: DatabaseStats {
            total_refresh_tokens: db.total,
            active_refresh_tokens: db.active,
            revoked_refresh_tokens: db.revoked,
        },
    }))
}

/// 403 `forbidden` unless the user holds the admin role now (read from SQL, never a memo): the
/// one admin check of token-stats and the admin page.
pub(crate) async fn require_admin(state: &AppState, user_id: &str) -> ApiResult<()> {
    let user = state.db.user_by_id(user_id).await?;
    if user.is_none_or(|u| u.role != "admin") {
        return Err(ApiError::Client(
            ErrorCode::Forbidden,
            "admin role required".into(),
        ));
    }
    Ok(())
}

/// Every published verification key's public half; HMAC secrets never appear. Caches may keep
/// it for less than the publish delay, so a generated key reaches them before it signs.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "operations",
    responses((status = 200, description = "The public verification keys", body = Jwks,
        headers(("Cache-Control" = String, description = "`public, max-age=…`")))))]
async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let max_age = state.keys.times().jwks_max_age();
    (
        [(header::CACHE_CONTROL, format!("public, max-age={max_age}"))],
        Json(state.keys.view().jwks()),
    )
}

#[derive(Debug, Serialize, ToSchema)]
struct Health {
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

/// Liveness: answers whenever the process serves HTTP.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize, ToSchema)]
struct Ready {
    #[schema(value_type = String, example = "ok")]
    redis: &'static str,
    #[schema(value_type = String, example = "ok")]
    database: &'static str,
    /// Null when Redis does not allow `INFO`.
    redis_eviction: Option<EvictionReport>,
}

/// Redis's eviction policy as `/ready` reports it.
#[derive(Debug, Serialize, ToSchema)]
struct EvictionReport {
    /// `maxmemory-policy`, e.g. `noeviction`.
    policy: String,
    /// Whether Redis may evict keys (every policy but `noeviction`).
    evicting: bool,
    /// Bytes; 0 means no limit.
    maxmemory: u64,
    evicted_keys: u64,
}

impl From<crate::redis::Eviction> for EvictionReport {
    fn from(e: crate::redis::Eviction) -> Self {
        Self {
            evicting: e.evicting(),
            policy: e.policy,
            maxmemory: e.maxmemory,
            evicted_keys: e.evicted_keys,
        }
    }
}

/// 200 only when both Redis and the database answer; otherwise the 503 error body names which.
/// The body also reports Redis's eviction policy and evictions so far (`null` if `INFO` is not
/// allowed): under an evicting policy users may be logged out early.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Redis and the database answer", body = Ready),
        (status = 503, description = "`unavailable`: the message names which dependency", body = ErrorBody),
    ))]
async fn ready(State(state): State<AppState>) -> ApiResult<Json<Ready>> {
    let (redis, db, eviction) =
        tokio::join!(state.redis.ping(), state.db.ping(), state.redis.eviction());
    if redis.is_ok() && db.is_ok() {
        return Ok(Json(Ready {
            redis: "ok",
            database: "ok",
            redis_eviction: eviction.ok().map(EvictionReport::from),
        }));
    }
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    Err(ApiError::Client(
        ErrorCode::Unavailable,
        format!(
            "redis: {}, database: {}",
            word(redis.is_ok()),
            word(db.is_ok())
        ),
    ))
}
