//! Shared application state: one cheap-to-clone handle to everything a handler needs.

use std::sync::Arc;

use tollgate_shared::jwt::Validation;
use tollgate_shared::AccessClaims;

use crate::config::Settings;
use crate::db::Db;
use crate::keyring::Keyring;
use crate::memo::Memo;
use crate::password::PasswordHasher;
use crate::redis::{RedisStore, StatsCache};

/// `AppState(Arc<App>)`: cloned into every request for the cost of a reference count.
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<App>);

/// The application's long-lived parts.
#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub db: Db,
    pub redis: RedisStore,
    /// The signer and verifying keys, following `KEYS_FILE` as the CLI changes it.
    pub keys: Keyring,
    pub validation: Validation,
    /// The edge's assertion verifier, when the origin trusts an edge (`EDGE_JWKS[_URL]`).
    pub edge: Option<tollgate_upstream::EdgeVerifier>,
    pub hasher: PasswordHasher,
    /// Claims of tokens whose signature already verified, by SHA-256 of the token: a token
    /// pays for Ed25519 once per process, not once per request. Revocation is untouched — the
    /// jti and version are read from Redis on every request.
    pub verified: Memo<[u8; 32], AccessClaims>,
    /// Profiles for `/me`, kept briefly so the hot path makes no SQL query.
    pub profiles: Memo<String, Profile>,
    /// token-stats' Redis counts, recomputed at most every `TOKEN_STATS_MAX_AGE_SECS`.
    pub redis_stats: StatsCache,
}

/// What `/me` shows besides the identity. Never the role: a role is read from SQL on each request
/// that needs it, so `user promote|demote` holds from the next request.
#[derive(Debug, Clone)]
pub struct Profile {
    pub email: String,
    pub name: Option<String>,
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
