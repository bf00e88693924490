//! Authentication as extractors: [`AuthUser`] for bearer tokens, [`ClientInfo`] for who is
//! calling from where.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, USER_AGENT};
use axum::http::request::Parts;
use sha2::{Digest as _, Sha256};
use tollgate_shared::decision::parse_version;
use tollgate_shared::{decide, jwt, AccessClaims, Identity, Rejection};

use crate::domain::{clip, MAX_USER_AGENT_CHARS};
use crate::error::ApiError;
use crate::state::AppState;

/// A request whose bearer token passed all five layers: format, signature, jti exists, user
/// exists, version matches. Costs one Redis round trip (`MGET`) and no database query; the
/// database is read only when the user's version key is missing from Redis, to re-seed it.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub identity: Identity,
    pub claims: AccessClaims,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let now = crate::domain::now();
        let claims = verified_claims(state, token, now)?;
        let lookup = state.cache.lookup(&claims.jti, &claims.sub).await?;
        let version = match parse_version(lookup.user_version.as_deref()) {
            Some(v) => Some(v),
            // A revoked token is refused without touching the database.
            None if lookup.jti_record.is_none() => None,
            None => reseed_version(state, &claims.sub).await?,
        };
        let identity =
            decide(&claims, lookup.jti_record.as_deref(), version).map_err(ApiError::Token)?;
        Ok(Self { identity, claims })
    }
}

/// The token's claims: from the cache of tokens already verified (still unexpired), or from a
/// full signature and claims check whose success is then cached until the token's `exp`. The
/// cache key is a hash of the token's exact bytes, so a tampered token never matches.
fn verified_claims(state: &AppState, token: &str, now: i64) -> Result<AccessClaims, ApiError> {
    if token.len() > jwt::MAX_TOKEN_LEN {
        return Err(ApiError::Token(Rejection::Malformed));
    }
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if let Some(claims) = state.verified.get(&key, now) {
        return Ok(claims);
    }
    let claims = jwt::verify(
        token,
        &state.keys.view_at(now).verifying,
        &state.validation,
        now,
    )
    .map_err(ApiError::Token)?;
    state.verified.insert(key, claims.clone(), claims.exp, now);
    Ok(claims)
}

/// The bearer token, parsed by the function the edge uses too.
fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let header = match parts.headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::Token(Rejection::Malformed))?,
        ),
    };
    jwt::bearer_token(header).map_err(ApiError::Token)
}

/// Reads the user's version from SQL and writes it back to Redis (only if still missing).
async fn reseed_version(state: &AppState, user_id: &str) -> Result<Option<u64>, ApiError> {
    let Some(user) = state.db.user_by_id(user_id).await? else {
        return Ok(None);
    };
    let version = u64::try_from(user.token_version).unwrap_or(0);
    state.cache.seed_version(user_id, version).await?;
    tracing::info!(
        user_id,
        version,
        "re-seeded user version key from the database"
    );
    Ok(Some(version))
}

/// The caller's address and user agent, recorded on device sessions.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let forwarded = state
            .settings
            .trust_forwarded_for
            .then(|| {
                parts
                    .headers
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.rsplit(',').next())
                    .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
            })
            .flatten();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| clip(ua, MAX_USER_AGENT_CHARS))
            .filter(|ua| !ua.is_empty());
        Ok(Self {
            ip: forwarded.or(peer).map(|ip| ip.to_string()),
            user_agent,
        })
    }
}
