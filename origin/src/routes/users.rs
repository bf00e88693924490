//! Accounts and tokens: register, login, refresh, me.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use tollgate_shared::{ErrorBody, ErrorCode};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AuthUser, ClientInfo};
use crate::db::{CreateUser, NewUser};
use crate::domain::{
    self, Presented, RefreshSecret, MAX_DEVICE_NAME_CHARS, MAX_NAME_CHARS, MAX_REFRESH_TOKEN_BYTES,
};
use crate::error::{ApiError, ApiResult};
use crate::limits::{self, LoginAttempt};
use crate::monitoring::{self, Refresh};
use crate::routes::json::ApiJson;
use crate::state::{AppState, Profile};
use crate::tokens::{self, Device, Grace, Grant, Opened};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(me, delete_me))
}

// The limits in the schema are `domain`'s (a test holds them equal; utoipa takes literals only).
#[derive(Debug, Deserialize, ToSchema)]
struct RegisterBody {
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// At least 8 characters, at most 1024 bytes.
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    name: Option<String>,
}

/// `{"data": …}` around a route's result.
#[derive(Debug, Serialize, ToSchema)]
struct Registered {
    data: NewAccount,
}

#[derive(Debug, Serialize, ToSchema)]
struct NewAccount {
    id: String,
    email: String,
    name: Option<String>,
}

/// Creates an account with the `user` role, whatever the email: roles are granted only by
/// `tollgate-origin user promote`. Limited per client address before any hashing.
#[utoipa::path(post, path = "/api/users/register", tag = "accounts",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "Account created", body = Registered),
        (status = 409, description = "`email_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_input`: not an email, a weak password, a bad name or body", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many registrations from this address", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<(StatusCode, Json<Registered>)> {
    domain::validate_email(&body.email)?;
    domain::validate_password(&body.password)?;
    let name = domain::optional_text("name", body.name, MAX_NAME_CHARS)?;
    let email = body.email.trim().to_owned();
    let normalized = domain::normalize_email(&email);
    limits::check_registration(&state, &client).await?;
    let hash = state
        .hasher
        .hash(body.password)
        .await
        .map_err(ApiError::Internal)?;
    let id = domain::new_id();
    let created = state
        .db
        .create_user(&NewUser {
            id: &id,
            email: &email,
            email_normalized: &normalized,
            name: name.as_deref(),
            password_hash: &hash,
            role: "user",
            now: domain::now(),
        })
        .await?;
    match created {
        CreateUser::EmailTaken => Err(ApiError::Client(
            ErrorCode::EmailTaken,
            "an account with this email already exists".into(),
        )),
        CreateUser::Created => {
            tracing::info!(user_id = %id, "user registered");
            monitoring::registration();
            Ok((
                StatusCode::CREATED,
                Json(Registered {
                    data: NewAccount { id, email, name },
                }),
            ))
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct LoginBody {
    #[schema(format = Email)]
    pub(crate) email: String,
    pub(crate) password: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub(crate) device_name: Option<String>,
}

/// Login and refresh answer the same shape.
#[derive(Debug, Serialize, ToSchema)]
struct TokenPair {
    access_token: String,
    /// Opaque (`rt_…`); rotated by every refresh.
    refresh_token: String,
    #[schema(value_type = String, example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    expires_in: u64,
    /// The access token's id.
    jti: String,
    /// The device session, stable across refreshes.
    token_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct Tokens {
    data: TokenPair,
}

/// Opens a device session: an access token and a refresh token.
#[utoipa::path(post, path = "/api/users/login", tag = "accounts",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = Tokens),
        (status = 401, description = "`invalid_credentials` (the same for an unknown email and a wrong password)", body = ErrorBody),
        (status = 422, description = "`invalid_input`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many failed logins", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(body): ApiJson<LoginBody>,
) -> ApiResult<Json<Tokens>> {
    let issued = login_device(&state, client, body).await?;
    Ok(token_response(&state, issued))
}

/// What a login or a refresh hands out, before it becomes JSON (the API) or cookies (the
/// devices page, [`crate::pages`]): both speak through these two functions, so there is one
/// login and one rotation.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) user_id: String,
    pub(crate) minted: tokens::Minted,
    pub(crate) refresh_token: String,
    pub(crate) token_id: String,
}

/// Checks the credentials (with the login limits) and opens a new device session.
pub(crate) async fn login_device(
    state: &AppState,
    client: ClientInfo,
    body: LoginBody,
) -> ApiResult<Issued> {
    let device_name =
        domain::optional_text("device_name", body.device_name, MAX_DEVICE_NAME_CHARS)?;
    if body.password.len() > domain::MAX_PASSWORD_BYTES
        || body.email.len() > domain::MAX_EMAIL_BYTES
    {
        // Same answer as a wrong password: lengths say nothing about which accounts exist.
        monitoring::login(false);
        return Err(invalid_credentials());
    }
    let normalized = domain::normalize_email(&body.email);
    let attempt = LoginAttempt::check(state, &client, &normalized).await?;

    let user = state.db.user_by_email(&normalized).await?;
    let verified = state
        .hasher
        .verify(
            body.password,
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await
        .map_err(ApiError::Internal)?;
    let user = match user {
        Some(user) if verified => user,
        _ => {
            monitoring::login(false);
            attempt.failed(state).await?;
            return Err(invalid_credentials());
        }
    };

    let device = Device {
        name: device_name.as_deref(),
        ip: client.ip.as_deref(),
        user_agent: client.user_agent.as_deref(),
    };
    let Opened {
        token_id,
        minted,
        refresh,
    } = tokens::open_session(state, &user, device).await?;
    tracing::info!(user_id = %user.id, token_id, "login");
    monitoring::login(true);
    Ok(Issued {
        user_id: user.id,
        minted,
        refresh_token: refresh.into_exposed(),
        token_id,
    })
}

fn invalid_credentials() -> ApiError {
    ApiError::Client(
        ErrorCode::InvalidCredentials,
        "email or password is incorrect".into(),
    )
}

fn token_response(state: &AppState, issued: Issued) -> Json<Tokens> {
    let Issued {
        minted,
        refresh_token,
        token_id,
        ..
    } = issued;
    Json(Tokens {
        data: TokenPair {
            access_token: minted.access_token,
            refresh_token,
            token_type: "Bearer",
            expires_in: state.settings.access_ttl,
            jti: minted.jti,
            token_id,
        },
    })
}

#[derive(Debug, Deserialize, ToSchema)]
struct RefreshBody {
    refresh_token: String,
}

/// How much longer than the grace window Redis keeps a sealed answer. The window itself is
/// judged only by SQL's millisecond timestamp; the margin keeps the entry there for the whole
/// window even if the write lands late, and an entry that outlives the window is never read.
const GRACE_ENTRY_MARGIN_MS: u64 = 1000;

/// Rotates the refresh secret and mints a new access token.
///
/// The session row is locked for the whole decision, so refreshes of one session run one after
/// another. One clock and one rule ([`domain::classify_refresh`], milliseconds) decide: the
/// current secret rotates; its immediate predecessor within the grace window gets the very
/// answer its rotation got (a lost response, two tabs), so the chain never forks; and any other
/// secret we once issued for the session — or the predecessor whose kept answer is gone (Redis
/// flushed or evicted it) — is a replay of a stolen token (RFC 9700 §4.14): the session is
/// revoked. A repeat never gets a new, different pair. A secret we never issued is simply
/// invalid, so nobody can revoke someone else's session by guessing.
#[utoipa::path(post, path = "/api/users/refresh", tag = "accounts",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "A new access token and the rotated refresh token; a repeat inside the grace window gets the identical first answer", body = Tokens),
        (status = 401, description = "`invalid_refresh_token`, or `refresh_token_reused` (the device session is revoked)", body = ErrorBody),
        (status = 422, description = "`invalid_input`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshBody>,
) -> ApiResult<Json<Tokens>> {
    let issued = rotate_refresh(&state, body.refresh_token).await?;
    Ok(token_response(&state, issued))
}

/// The rotation behind [`refresh`], as described there.
pub(crate) async fn rotate_refresh(state: &AppState, secret: String) -> ApiResult<Issued> {
    if secret.is_empty() || secret.len() > MAX_REFRESH_TOKEN_BYTES {
        return Err(invalid_refresh());
    }
    let secret = RefreshSecret::presented(secret);
    let presented = secret.hash();
    let lock = match state.db.lock_session_by_secret(&presented).await {
        Ok(Some(lock)) => lock,
        Ok(None) => return Err(invalid_refresh()),
        Err(e) if is_busy(&e) => return Err(ApiError::Unavailable(e.into())),
        Err(e) => return Err(e.into()),
    };
    let session = lock.session.clone();
    let now_ms = domain::now_ms();
    let now = now_ms.div_euclid(1000);
    if session.revoked_at.is_some() || session.expires_at <= now {
        lock.release().await?;
        return Err(invalid_refresh());
    }
    let grace_ms = state.settings.refresh_grace.saturating_mul(1000);
    let class = domain::classify_refresh(
        &presented,
        &session.current_hash,
        session.previous_hash.as_deref(),
        session.grace_start_ms(),
        now_ms,
        i64::try_from(grace_ms).unwrap_or(i64::MAX),
    );
    if class == Presented::InGrace {
        let replay = tokens::grace_replay(state, &session.user_id, &secret, &presented).await?;
        // Only the answer that made the current secret: anything else would fork the chain.
        if let Some(replay) = replay
            .filter(|r| *domain::hash_refresh_secret(&r.refresh_token) == session.current_hash)
        {
            lock.release().await?;
            monitoring::refresh(Refresh::GraceReplay);
            let minted = tokens::Minted {
                access_token: replay.access_token,
                jti: replay.jti,
            };
            return Ok(Issued {
                user_id: session.user_id,
                minted,
                refresh_token: replay.refresh_token,
                token_id: session.token_id,
            });
        }
        tracing::warn!(user_id = %session.user_id, token_id = %session.token_id, "repeat inside the grace window but its kept answer is gone; refusing as reuse");
    }
    if class != Presented::Current {
        lock.release().await?;
        tracing::warn!(user_id = %session.user_id, token_id = %session.token_id, "refresh token reuse detected; revoking the device session");
        monitoring::refresh(Refresh::Reused);
        tokens::revoke_device(state, &session.user_id, &session.token_id, "refresh_reuse").await?;
        return Err(ApiError::Client(
            ErrorCode::RefreshTokenReused,
            "refresh token was already used; the device session has been revoked".into(),
        ));
    }
    let (refresh_token, new_hash) = domain::new_refresh_secret();
    let jti = domain::new_id();
    let grant = Grant {
        user_id: &session.user_id,
        token_id: &session.token_id,
        jti: &jti,
        version: u64::try_from(lock.token_version).unwrap_or(0),
        replaces_jti: Some(&session.current_jti),
        grace: (grace_ms > 0).then_some(Grace {
            presented_secret: &secret,
            presented_hash: &presented,
            new_refresh: &refresh_token,
            ttl_ms: grace_ms.saturating_add(GRACE_ENTRY_MARGIN_MS),
        }),
        now,
    };
    let Some(minted) = tokens::mint(state, grant).await? else {
        // Logged out while we rotated.
        lock.release().await?;
        return Err(invalid_refresh());
    };
    lock.rotate(
        &new_hash,
        &jti,
        now_ms,
        now + state.settings.refresh_ttl as i64,
    )
    .await?;
    monitoring::refresh(Refresh::Rotated);
    Ok(Issued {
        user_id: session.user_id,
        minted,
        refresh_token: refresh_token.into_exposed(),
        token_id: session.token_id,
    })
}

/// SQLite answers `SQLITE_BUSY` when writers queue past the busy timeout: overload, not a bug.
fn is_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.message().contains("database is locked") || d.code().as_deref() == Some("5"))
}

/// Every refusal of a refresh as invalid comes through here, so it is counted here.
fn invalid_refresh() -> ApiError {
    monitoring::refresh(Refresh::Invalid);
    ApiError::Client(
        ErrorCode::InvalidRefreshToken,
        "refresh token is invalid or expired".into(),
    )
}

/// How long `/me` may serve a profile without reading SQL. Profiles are only written at
/// registration today; this bounds the staleness should that change.
const PROFILE_TTL_SECS: i64 = 30;

#[derive(Debug, Serialize, ToSchema)]
struct Me {
    data: MeData,
}

#[derive(Debug, Serialize, ToSchema)]
struct MeData {
    id: String,
    email: String,
    name: Option<String>,
    token_version: u64,
}

/// The caller's profile. `token_version` is the current one, read from Redis by the validation.
#[utoipa::path(get, path = "/api/users/me", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's profile", body = Me),
        (status = 401, description = "A bearer rejection", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
async fn me(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<Me>> {
    let id = &auth.identity;
    let now = domain::now();
    let profile = match state.profiles.get(&id.user_id, now) {
        Some(profile) => profile,
        None => {
            let user = state
                .db
                .user_by_id(&id.user_id)
                .await?
                .ok_or(ApiError::Token(tollgate_shared::Rejection::UserUnknown))?;
            let profile = Profile {
                email: user.email,
                name: user.name,
            };
            state.profiles.insert(
                id.user_id.clone(),
                profile.clone(),
                now + PROFILE_TTL_SECS,
                now,
            );
            profile
        }
    };
    Ok(Json(Me {
        data: MeData {
            id: id.user_id.clone(),
            email: profile.email,
            name: profile.name,
            token_version: id.token_version,
        },
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
struct DeleteBody {
    password: String,
}

/// Attempts to confirm an account deletion, per user and window. Counted before any password
/// work, so a stolen access token cannot be turned into a password oracle or an Argon2 furnace.
const DELETE_ATTEMPTS_PER_WINDOW: u64 = 5;
const DELETE_WINDOW_SECS: u64 = 900;

/// Deletes the caller's account after confirming their password: every token of theirs is
/// refused on the next request, their rows and Redis keys go, and the email can register again.
#[utoipa::path(delete, path = "/api/users/me", tag = "accounts", security(("bearer" = [])),
    request_body = DeleteBody,
    responses(
        (status = 200, description = "Deleted: every token of the user is refused from the next request", body = Deleted),
        (status = 401, description = "A bearer rejection, or `invalid_credentials` (wrong password)", body = ErrorBody),
        (status = 422, description = "`invalid_input`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: 5 attempts per user per 15 minutes", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    ))]
async fn delete_me(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<DeleteBody>,
) -> ApiResult<Json<Deleted>> {
    let user_id = &auth.identity.user_id;
    let (hits, retry_after) = state
        .redis
        .hit("delete:user", user_id, DELETE_WINDOW_SECS)
        .await?;
    if hits > DELETE_ATTEMPTS_PER_WINDOW {
        return Err(ApiError::RateLimited { retry_after });
    }
    if body.password.len() > domain::MAX_PASSWORD_BYTES {
        return Err(invalid_credentials());
    }
    let user = state
        .db
        .user_by_id(user_id)
        .await?
        .ok_or(ApiError::Token(tollgate_shared::Rejection::UserUnknown))?;
    let verified = state
        .hasher
        .verify(body.password, Some(user.password_hash))
        .await
        .map_err(ApiError::Internal)?;
    if !verified {
        return Err(invalid_credentials());
    }
    if !tokens::delete_account(&state.db, &state.redis, user_id).await? {
        return Err(ApiError::Token(tollgate_shared::Rejection::UserUnknown));
    }
    Ok(Json(Deleted {
        data: DeletedAccount {
            id: user_id.clone(),
            deleted: true,
        },
    }))
}

#[derive(Debug, Serialize, ToSchema)]
struct Deleted {
    data: DeletedAccount,
}

#[derive(Debug, Serialize, ToSchema)]
struct DeletedAccount {
    id: String,
    deleted: bool,
}
