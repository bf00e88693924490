//! Operational routes: token stats (admin), JWKS, health and readiness.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tollgate_shared::ErrorCode;

use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users/token-stats", get(token_stats))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/health", get(health))
        .route("/ready", get(ready))
}

/// Admins only: Redis counts and memory (computed by `SCAN` at most every
/// `TOKEN_STATS_MAX_AGE_SECS`, with `computedAt`), database counts. The role is read from the
/// database on every call — never from the token or a memo — so a promotion or demotion holds
/// from the next request.
async fn token_stats(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<Value>> {
    let user = state.db.user_by_id(&auth.identity.user_id).await?;
    if user.is_none_or(|u| u.role != "admin") {
        return Err(ApiError::Client(
            ErrorCode::Forbidden,
            "admin role required".into(),
        ));
    }
    let now = crate::domain::now();
    let (redis, computed_at) = state
        .redis_stats
        .get(&state.redis, now, state.settings.token_stats_max_age)
        .await?;
    let db = state.db.session_counts(now).await?;
    Ok(Json(json!({
        "redis": {
            "totalJtis": redis.total_jtis,
            "totalRefreshTokens": redis.total_refresh_tokens,
            "memoryUsage": redis.memory_usage,
            "computedAt": crate::domain::rfc3339(computed_at),
        },
        "database": {
            "totalRefreshTokens": db.total,
            "activeRefreshTokens": db.active,
            "revokedRefreshTokens": db.revoked,
        },
    })))
}

/// Every published verification key's public half; HMAC secrets never appear. Caches may keep
/// it for less than the publish delay, so a generated key reaches them before it signs.
async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let max_age = state.keys.times().jwks_max_age();
    (
        [(header::CACHE_CONTROL, format!("public, max-age={max_age}"))],
        Json(state.keys.view().jwks()),
    )
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 only when both Redis and the database answer; otherwise the 503 error body names which.
/// The body also reports Redis's eviction policy and evictions so far (`null` if `INFO` is not
/// allowed): under an evicting policy users may be logged out early.
async fn ready(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let (redis, db, eviction) =
        tokio::join!(state.redis.ping(), state.db.ping(), state.redis.eviction());
    if redis.is_ok() && db.is_ok() {
        let eviction = eviction.ok().map(|e| e.to_json());
        return Ok(Json(
            json!({"redis": "ok", "database": "ok", "redis_eviction": eviction}),
        ));
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
