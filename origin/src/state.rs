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
///
/// Many origin instances may share one database (PostgreSQL) and one Redis. Everything that
/// decides whether a token or a refresh is good lives in those two, so any instance can answer
/// any request; what is kept in-process below is each time either a pure function of the
/// token's own bytes, or figures that may be stale without letting anything through — each
/// field says which, and why that is safe across instances.
#[derive(Debug)]
pub struct App {
    pub settings: Settings,
    pub db: Db,
    pub redis: RedisStore,
    /// The signer and verifying keys, following `KEYS_FILE` as the CLI changes it. Across
    /// instances: they must read the same key file (a shared volume or the same secret), and
    /// each re-reads it within `KEYS_RELOAD_SECS`; since a new key is published for
    /// `KEY_PUBLISH_SECS` (> the reload interval) before it signs, every instance verifies it
    /// before any instance signs with it, and a retired key keeps verifying for a token lifetime
    /// plus the reload interval.
    pub keys: Keyring,
    pub validation: Validation,
    /// The edge's assertion verifier, when the origin trusts an edge (`EDGE_JWKS[_URL]`). Its
    /// cached JWKS is the edge's public keys, the same for every instance; an assertion lives
    /// at most 60 s and names its method, path and upstream, so no per-instance state matters.
    pub edge: Option<tollgate_upstream::EdgeVerifier>,
    pub hasher: PasswordHasher,
    /// Claims of tokens whose signature already verified, by SHA-256 of the token: a token
    /// pays for Ed25519 once per process, not once per request. Revocation is untouched — the
    /// jti and version are read from Redis on every request. Safe across instances: an entry is
    /// a fact about the token's bytes (they verify under a key this origin published), true on
    /// every instance alike, and it expires with the token; an instance that has not seen the
    /// token verifies it itself.
    pub verified: Memo<[u8; 32], AccessClaims>,
    /// Profiles for `/me`, kept briefly so the hot path makes no SQL query. Safe across
    /// instances: email and name are written only at registration, so no other instance can
    /// change them under us, and a deleted user's entry is never served — `/me` authenticates
    /// first, against Redis, where the deletion removed every token.
    pub profiles: Memo<String, Profile>,
    /// token-stats' Redis counts, recomputed at most every `TOKEN_STATS_MAX_AGE_SECS`. Per
    /// instance, and safe so: the figures are an admin's statistics of the shared Redis, never
    /// consulted for a decision, and each answer carries when it was computed — two instances
    /// may answer figures of different ages, each honest about its own.
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
