//! Minting access tokens, revoking device sessions and deleting accounts: the steps login,
//! refresh, the four logouts and account deletion (route and CLI) share.

use tollgate_shared::records::JtiRecord;
use tollgate_shared::AccessClaims;

use crate::db::{Db, NewSession, UserRow};
use crate::redis::{Issue, NewToken, RedisStore};
use serde::{Deserialize, Serialize};

use crate::domain::{self, RefreshHash, RefreshSecret};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A signed access token and what the response reports about it.
#[derive(Debug)]
pub struct Minted {
    pub access_token: String,
    pub jti: String,
}

/// What an access token is minted for.
#[derive(Debug)]
pub struct Grant<'a> {
    pub user_id: &'a str,
    /// The device session.
    pub token_id: &'a str,
    pub jti: &'a str,
    /// The user's token version as last read from the database.
    pub version: u64,
    /// The access token this one replaces (refresh rotation).
    pub replaces_jti: Option<&'a str>,
    /// Keep the answer for repeats within the grace window (refresh rotation).
    pub grace: Option<Grace<'a>>,
    pub now: i64,
}

/// How many times a mint is retried when a logout-all races it and moves the version on.
const MINT_ATTEMPTS: usize = 3;

/// Signs an access token for a device session and writes its jti record, index entry and
/// version key to Redis in one atomic step.
///
/// Returns `Ok(None)` if the session was revoked meanwhile (the token is not handed out). When
/// a logout-all bumps the version between our database read and the Redis write, the script
/// refuses; we re-read the version and mint again, so no token ever carries a stale version.
pub async fn mint(state: &AppState, grant: Grant<'_>) -> ApiResult<Option<Minted>> {
    let Grant {
        user_id,
        token_id,
        jti,
        mut version,
        replaces_jti,
        grace,
        now,
    } = grant;
    let settings = &state.settings;
    let exp = now + settings.access_ttl as i64;
    let keys = state.keys.view_at(now);
    for _ in 0..MINT_ATTEMPTS {
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            jti: jti.to_owned(),
            ver: version,
            sid: token_id.to_owned(),
            iat: now,
            exp,
            nbf: None,
            iss: settings.issuer.clone(),
            aud: settings.audience.clone(),
        };
        let access_token = keys.signing.sign(&claims);
        let record = JtiRecord {
            exp,
            token_id: token_id.to_owned(),
            token_version: version,
        };
        let grace_entry = grace.as_ref().map(|g| {
            let replay = GraceReplay {
                access_token: access_token.clone(),
                refresh_token: g.new_refresh.expose().to_owned(),
                jti: jti.to_owned(),
            };
            let plaintext = serde_json::to_vec(&replay).unwrap_or_default();
            // A seal that failed keeps nothing: a repeat is then refused as reuse, never forked.
            let sealed = domain::seal_for_secret(g.presented_secret, g.presented_hash, &plaintext)
                .unwrap_or_default();
            (str::to_owned(g.presented_hash), sealed, g.ttl_ms)
        });
        let issued = state
            .redis
            .issue(&NewToken {
                user_id,
                jti,
                record: &record,
                now,
                replaces_jti,
                grace: grace_entry,
            })
            .await?;
        match issued {
            Issue::Written => {
                return Ok(Some(Minted {
                    access_token,
                    jti: jti.to_owned(),
                }))
            }
            Issue::SessionRevoked => return Ok(None),
            Issue::StaleVersion | Issue::VersionMissing => {
                let user = state.db.user_by_id(user_id).await?;
                match user {
                    Some(u) => version = u64::try_from(u.token_version).unwrap_or(0),
                    None => return Ok(None),
                }
                if issued == Issue::VersionMissing {
                    state.redis.seed_version(user_id, version).await?;
                }
            }
        }
    }
    Err(ApiError::Unavailable(anyhow::anyhow!(
        "token version kept moving while minting"
    )))
}

/// Where a new device session is opened from, as its session row records it.
#[derive(Debug, Clone, Copy)]
pub struct Device<'a> {
    pub name: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// A device session just opened: its id, its first access token and its refresh secret (the
/// database holds only the secret's hash).
#[derive(Debug)]
pub struct Opened {
    pub token_id: String,
    pub minted: Minted,
    pub refresh: RefreshSecret,
}

/// Opens a device session for a user whose credentials were checked: the session row, then its
/// first access token ([`mint`]). Login and the bench's session factory both come through
/// here, so a bench session is written exactly as a login writes it.
///
/// If the mint does not complete (an error, or the session revoked meanwhile), the row is
/// revoked: a login that failed never leaves a usable refresh token behind.
pub async fn open_session(
    state: &AppState,
    user: &UserRow,
    device: Device<'_>,
) -> ApiResult<Opened> {
    let now = domain::now();
    let token_id = domain::new_id();
    let jti = domain::new_id();
    let (refresh, refresh_hash) = domain::new_refresh_secret();
    state
        .db
        .insert_session(&NewSession {
            token_id: &token_id,
            user_id: &user.id,
            refresh_hash: &refresh_hash,
            jti: &jti,
            device_name: device.name,
            ip: device.ip,
            user_agent: device.user_agent,
            now,
            expires_at: now + state.settings.refresh_ttl as i64,
        })
        .await?;
    let grant = Grant {
        user_id: &user.id,
        token_id: &token_id,
        jti: &jti,
        version: u64::try_from(user.token_version).unwrap_or(0),
        replaces_jti: None,
        grace: None,
        now,
    };
    match mint(state, grant).await {
        Ok(Some(minted)) => Ok(Opened {
            token_id,
            minted,
            refresh,
        }),
        outcome => {
            let _ = state
                .db
                .revoke_session(&token_id, &user.id, "login_incomplete", now)
                .await;
            Err(outcome.err().unwrap_or_else(|| {
                ApiError::Unavailable(anyhow::anyhow!("session revoked while it was opened"))
            }))
        }
    }
}

/// What a refresh answered, kept (sealed) for the grace window so a repeat of the same request
/// gets the same answer instead of forking the chain.
#[derive(Debug, Serialize, Deserialize)]
pub struct GraceReplay {
    pub access_token: String,
    pub refresh_token: String,
    pub jti: String,
}

/// Where and how to keep a refresh's answer for repeats within the grace window.
#[derive(Debug)]
pub struct Grace<'a> {
    /// The presented (now rotated-away) secret: the sealing key is derived from it, so only its
    /// holder can open the entry, and Redis never holds a usable token.
    pub presented_secret: &'a RefreshSecret,
    pub presented_hash: &'a RefreshHash,
    pub new_refresh: &'a RefreshSecret,
    /// How long Redis keeps the entry, in milliseconds: at least the window as measured from
    /// the rotation's instant. Only SQL's clock decides whether a repeat is inside the window;
    /// an entry outliving it is never consulted, and one lost early means a refusal.
    pub ttl_ms: u64,
}

/// Opens the sealed answer of an earlier refresh of `presented_secret`, if one is kept.
pub async fn grace_replay(
    state: &AppState,
    user_id: &str,
    presented_secret: &RefreshSecret,
    presented_hash: &RefreshHash,
) -> ApiResult<Option<GraceReplay>> {
    let sealed = state.redis.grace_entry(user_id, presented_hash).await?;
    Ok(sealed
        .and_then(|s| domain::open_for_secret(presented_secret, presented_hash, &s))
        .and_then(|plain| serde_json::from_slice(&plain).ok()))
}

/// Revokes one device session of `user_id`: the database row first (the authority), then every
/// access token of the session and its refresh mirror in Redis, all in the user's one hash.
/// Idempotent, so a client that got a 503 halfway can simply retry. Returns how many access
/// tokens were killed.
pub async fn revoke_device(
    state: &AppState,
    user_id: &str,
    token_id: &str,
    reason: &str,
) -> ApiResult<u64> {
    let now = crate::domain::now();
    state
        .db
        .revoke_session(token_id, user_id, reason, now)
        .await?;
    let killed = state.redis.kill_session(user_id, token_id, now).await?;
    tracing::info!(user_id, token_id, reason, killed, "device session revoked");
    crate::monitoring::revocation(crate::monitoring::Revocation::from_reason(reason));
    Ok(killed)
}

/// Deletes a user for good: their tokens die, their rows and Redis hash go, the email is free.
///
/// Redis is cleared twice around the SQL delete. The first pass kills every token before the
/// account disappears (so a failure later leaves a user who is logged out, never a deleted user
/// with live tokens); the second catches whatever a refresh in flight minted before the delete
/// took its locks. Once the hash is gone nothing re-creates its version: minting and validation
/// re-seed only from a user row, and there is none. Returns false if there is no such user.
pub async fn delete_account(db: &Db, redis: &RedisStore, user_id: &str) -> ApiResult<bool> {
    redis.delete_user(user_id).await?;
    let Some(sessions) = db.delete_user(user_id).await? else {
        return Ok(false);
    };
    let killed = redis.delete_user(user_id).await?;
    tracing::info!(user_id, sessions, killed, "account deleted");
    crate::monitoring::revocation(crate::monitoring::Revocation::AccountDeletion);
    Ok(true)
}
