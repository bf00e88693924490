//! The four logouts and the sessions list.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use tollgate_shared::keys::is_canonical_uuid;
use tollgate_shared::records::JtiRecord;
use tollgate_shared::ErrorBody;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::domain::{self, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::tokens;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(logout))
        .routes(routes!(logout_all))
        .routes(routes!(logout_device_by_jti))
        .routes(routes!(logout_device))
        .routes(routes!(sessions))
}

/// What a logout of one device session answers.
#[derive(Debug, Serialize, ToSchema)]
struct LoggedOut {
    data: DeviceLoggedOut,
}

#[derive(Debug, Serialize, ToSchema)]
struct DeviceLoggedOut {
    token_id: String,
    revoked_access_tokens: u64,
}

fn logged_out(token_id: String, revoked_access_tokens: u64) -> Json<LoggedOut> {
    Json(LoggedOut {
        data: DeviceLoggedOut {
            token_id,
            revoked_access_tokens,
        },
    })
}

/// This device: its access token and its refresh token die.
#[utoipa::path(post, path = "/api/users/logout", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, description = "This device's access and refresh tokens are dead", body = LoggedOut),
        (status = 401, description = "A bearer rejection", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
async fn logout(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<LoggedOut>> {
    let id = &auth.identity;
    let killed = tokens::revoke_device(&state, &id.user_id, &id.token_id, "logout").await?;
    Ok(logged_out(id.token_id.clone(), killed))
}

#[derive(Debug, Serialize, ToSchema)]
struct LoggedOutEverywhere {
    data: AllLoggedOut,
}

#[derive(Debug, Serialize, ToSchema)]
struct AllLoggedOut {
    /// The user's new token version.
    token_version: u64,
    revoked_sessions: usize,
    revoked_access_tokens: u64,
}

/// Every device: the version moves on (so any token minted before is refused even if its jti
/// were somehow missed), every jti is deleted and every refresh token revoked.
#[utoipa::path(post, path = "/api/users/logout-all", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, description = "Every token of the user is dead; the version moved on", body = LoggedOutEverywhere),
        (status = 401, description = "A bearer rejection", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
async fn logout_all(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<LoggedOutEverywhere>> {
    let out = logout_everywhere(&state, &auth.identity.user_id).await?;
    Ok(Json(LoggedOutEverywhere {
        data: AllLoggedOut {
            token_version: out.version,
            revoked_sessions: out.sessions,
            revoked_access_tokens: out.killed,
        },
    }))
}

/// What a logout-all did.
#[derive(Debug)]
pub(crate) struct LoggedOutAll {
    pub(crate) version: u64,
    pub(crate) sessions: usize,
    pub(crate) killed: u64,
}

/// The logout-all behind [`logout_all`] and the devices page's "sign out everywhere".
pub(crate) async fn logout_everywhere(state: &AppState, user_id: &str) -> ApiResult<LoggedOutAll> {
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
    crate::monitoring::revocation(crate::monitoring::Revocation::LogoutAll);
    Ok(LoggedOutAll {
        version,
        sessions: token_ids.len(),
        killed,
    })
}

/// The device that holds access token `jti`. 404 unless that token is live and the caller's:
/// nobody learns whether another user's jti exists.
#[utoipa::path(post, path = "/api/users/logout-device-jti/{jti}", tag = "sessions",
    security(("bearer" = [])),
    params(("jti" = String, Path, description = "An access token's id (a UUID)")),
    responses(
        (status = 200, description = "That token's device session is dead", body = LoggedOut),
        (status = 401, description = "A bearer rejection", body = ErrorBody),
        (status = 404, description = "`not_found`: no live token of the caller's with this jti", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
async fn logout_device_by_jti(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(jti): Path<String>,
) -> ApiResult<Json<LoggedOut>> {
    if !is_canonical_uuid(&jti) {
        return Err(ApiError::not_found());
    }
    // Only the caller's own hash is read: another user's jti is simply not there.
    let record = state
        .redis
        .jti_record(&auth.identity.user_id, &jti)
        .await?
        .as_deref()
        .and_then(JtiRecord::parse)
        .ok_or_else(ApiError::not_found)?;
    let killed = tokens::revoke_device(
        &state,
        &auth.identity.user_id,
        &record.token_id,
        "logout_device",
    )
    .await?;
    Ok(logged_out(record.token_id, killed))
}

/// The device session `token_id`. 404 unless it is the caller's.
#[utoipa::path(post, path = "/api/users/logout-device/{token_id}", tag = "sessions",
    security(("bearer" = [])),
    params(("token_id" = String, Path, description = "A device session's id (a UUID)")),
    responses(
        (status = 200, description = "That device session is dead", body = LoggedOut),
        (status = 401, description = "A bearer rejection", body = ErrorBody),
        (status = 404, description = "`not_found`: no session of the caller's with this id", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
async fn logout_device(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(token_id): Path<String>,
) -> ApiResult<Json<LoggedOut>> {
    let killed = revoke_own_session(&state, &auth.identity.user_id, &token_id).await?;
    Ok(logged_out(token_id, killed))
}

#[derive(Debug, Serialize, ToSchema)]
struct Sessions {
    data: Vec<Session>,
    meta: SessionsMeta,
}

/// One live device session.
#[derive(Debug, Serialize, ToSchema)]
struct Session {
    /// Position in this list.
    id: usize,
    /// Its access token's id while that token is live, else null.
    jti: Option<String>,
    token_id: String,
    device_name: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    /// RFC 3339.
    created_at: String,
    /// RFC 3339.
    last_seen_at: String,
    /// The session of the token making this request.
    is_current: bool,
    token_version: u64,
}

#[derive(Debug, Serialize, ToSchema)]
struct SessionsMeta {
    total: usize,
    current_jti: String,
}

/// Revokes the caller's device session `token_id` (404 unless it is theirs): the one step behind
/// [`logout_device`] and the devices page's revoke buttons. Returns access tokens killed.
pub(crate) async fn revoke_own_session(
    state: &AppState,
    user_id: &str,
    token_id: &str,
) -> ApiResult<u64> {
    if !is_canonical_uuid(token_id) || !state.db.session_belongs_to(token_id, user_id).await? {
        return Err(ApiError::not_found());
    }
    tokens::revoke_device(state, user_id, token_id, "logout_device").await
}

/// The caller's live device sessions from SQL, each with its access token's jti if that is still
/// live in Redis (one `MGET` for all of them).
#[utoipa::path(get, path = "/api/users/sessions", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's live device sessions", body = Sessions),
        (status = 401, description = "A bearer rejection", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
async fn sessions(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<Sessions>> {
    let id = &auth.identity;
    let rows = state.db.live_sessions(&id.user_id, domain::now()).await?;
    let jtis: Vec<&str> = rows.iter().map(|r| r.current_jti.as_str()).collect();
    let records = state.redis.live_jtis(&id.user_id, &jtis).await?;
    let data: Vec<Session> = rows
        .iter()
        .zip(records.iter().chain(std::iter::repeat(&None)))
        .enumerate()
        .map(|(i, (row, record))| {
            let record = record
                .as_deref()
                .and_then(JtiRecord::parse)
                .filter(|r| r.token_id == row.token_id);
            Session {
                id: i,
                jti: record.as_ref().map(|_| row.current_jti.clone()),
                token_id: row.token_id.clone(),
                device_name: row.device_name.clone(),
                ip: row.ip.clone(),
                user_agent: row.user_agent.clone(),
                created_at: rfc3339(row.created_at),
                last_seen_at: rfc3339(row.last_seen_at),
                is_current: row.token_id == id.token_id,
                token_version: record.map_or(id.token_version, |r| r.token_version),
            }
        })
        .collect();
    Ok(Json(Sessions {
        meta: SessionsMeta {
            total: data.len(),
            current_jti: id.jti.clone(),
        },
        data,
    }))
}
