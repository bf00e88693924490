//! The four logouts and the sessions list.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tollgate_shared::keys::is_canonical_uuid;
use tollgate_shared::records::JtiRecord;

use crate::auth::AuthUser;
use crate::domain::{self, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::tokens;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users/logout", post(logout))
        .route("/api/users/logout-all", post(logout_all))
        .route(
            "/api/users/logout-device-jti/{jti}",
            post(logout_device_by_jti),
        )
        .route("/api/users/logout-device/{token_id}", post(logout_device))
        .route("/api/users/sessions", get(sessions))
}

/// This device: its access token and its refresh token die.
async fn logout(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<Value>> {
    let id = &auth.identity;
    let killed =
        tokens::revoke_device(&state, &id.user_id, &id.token_id, Some(&id.jti), "logout").await?;
    Ok(Json(
        json!({"data": {"token_id": id.token_id, "revoked_access_tokens": killed}}),
    ))
}

/// Every device: the version moves on (so any token minted before is refused even if its jti
/// were somehow missed), every jti is deleted and every refresh token revoked.
async fn logout_all(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<Value>> {
    let user_id = &auth.identity.user_id;
    let now = domain::now();
    let (version, token_ids) = state
        .db
        .logout_all(user_id, now)
        .await?
        .ok_or(ApiError::Token(tollgate_shared::Rejection::UserUnknown))?;
    let version = u64::try_from(version).unwrap_or(0);
    let killed = state
        .redis
        .logout_all(user_id, version, &token_ids, now)
        .await?;
    tracing::info!(
        user_id,
        version,
        sessions = token_ids.len(),
        killed,
        "logout-all"
    );
    Ok(Json(json!({"data": {
        "token_version": version,
        "revoked_sessions": token_ids.len(),
        "revoked_access_tokens": killed,
    }})))
}

/// The device that holds access token `jti`. 404 unless that token is live and the caller's:
/// nobody learns whether another user's jti exists.
async fn logout_device_by_jti(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(jti): Path<String>,
) -> ApiResult<Json<Value>> {
    if !is_canonical_uuid(&jti) {
        return Err(ApiError::not_found());
    }
    let record = state
        .redis
        .jti_record(&jti)
        .await?
        .and_then(|raw| serde_json::from_str::<JtiRecord>(&raw).ok())
        .filter(|r| r.user_id == auth.identity.user_id)
        .ok_or_else(ApiError::not_found)?;
    let killed = tokens::revoke_device(
        &state,
        &auth.identity.user_id,
        &record.token_id,
        Some(&jti),
        "logout_device",
    )
    .await?;
    Ok(Json(
        json!({"data": {"token_id": record.token_id, "revoked_access_tokens": killed}}),
    ))
}

/// The device session `token_id`. 404 unless it is the caller's.
async fn logout_device(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(token_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user_id = &auth.identity.user_id;
    if !is_canonical_uuid(&token_id) || !state.db.session_belongs_to(&token_id, user_id).await? {
        return Err(ApiError::not_found());
    }
    let killed = tokens::revoke_device(&state, user_id, &token_id, None, "logout_device").await?;
    Ok(Json(
        json!({"data": {"token_id": token_id, "revoked_access_tokens": killed}}),
    ))
}

/// The caller's live device sessions from SQL, each with its access token's jti if that is still
/// live in Redis (one `MGET` for all of them).
async fn sessions(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<Value>> {
    let id = &auth.identity;
    let rows = state.db.live_sessions(&id.user_id, domain::now()).await?;
    let jtis: Vec<&str> = rows.iter().map(|r| r.current_jti.as_str()).collect();
    let records = state.redis.live_jtis(&jtis).await?;
    let data: Vec<Value> = rows
        .iter()
        .zip(records.iter().chain(std::iter::repeat(&None)))
        .enumerate()
        .map(|(i, (row, record))| {
            let record = record
                .as_deref()
                .and_then(|raw| serde_json::from_str::<JtiRecord>(raw).ok())
                .filter(|r| r.token_id == row.token_id);
            json!({
                "id": i,
                "jti": record.as_ref().map(|_| row.current_jti.clone()),
                "token_id": row.token_id,
                "device_name": row.device_name,
                "ip": row.ip,
                "user_agent": row.user_agent,
                "created_at": rfc3339(row.created_at),
                "last_seen_at": rfc3339(row.last_seen_at),
                "is_current": row.token_id == id.token_id,
                "token_version": record.map_or(id.token_version, |r| r.token_version),
            })
        })
        .collect();
    Ok(Json(json!({
        "data": data,
        "meta": {"total": data.len(), "current_jti": id.jti},
    })))
}
