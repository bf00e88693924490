//! For an API behind the Tollgate edge: trust who the edge says is calling, without Redis.
//!
//! The edge refuses revoked tokens before a request reaches you; what it forwards carries a
//! signed, short-lived assertion (`X-Tollgate-Assertion`) bound to your upstream's name and to
//! the request's method and path. Verify it and you know the user, the device session and the
//! client address — with no Redis call and no shared secret. The rules are
//! [`tollgate_shared::assertion`]'s, the same code the origin runs.
//!
//! ```no_run
//! use axum::{extract::FromRef, routing::get, Router};
//! use tollgate_upstream::{EdgeUser, EdgeVerifier};
//!
//! #[derive(Clone)]
//! struct AppState { edge: EdgeVerifier }
//! impl FromRef<AppState> for EdgeVerifier {
//!     fn from_ref(s: &AppState) -> Self { s.edge.clone() }
//! }
//!
//! async fn me(EdgeUser(who): EdgeUser) -> String { who.user_id }
//!
//! # async fn run() {
//! let edge = EdgeVerifier::remote(
//!     "tollgate-edge",              // the edge's EDGE_ISSUER
//!     "notes",                      // this upstream's name in the edge's route table
//!     "https://api.example.com/.well-known/tollgate-edge-jwks.json",
//!     Default::default(),
//! );
//! let app: Router = Router::new().route("/api/notes/me", get(me)).with_state(AppState { edge });
//! # }
//! ```
//!
//! # Layout
//! - [`EdgeVerifier`]: issuer, audience and the edge's keys — static, or fetched from its JWKS
//!   URL with a TTL and at most one refetch per interval for an unknown `kid`.
//! - [`EdgeUser`]: the axum extractor for protected routes; [`EdgeRejection`] its 401 answer in
//!   Tollgate's JSON error body.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{FromRef, FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::{Mutex, RwLock};
use tollgate_shared::assertion::{
    self, AssertionClaims, AssertionError, EdgeIdentity, Expectation,
};
use tollgate_shared::jwt::{self, Jwks, KeySet};
use tollgate_shared::{ErrorBody, ErrorCode};

pub use tollgate_shared::assertion::HEADER;

/// How a remote JWKS is cached.
#[derive(Debug, Clone, Copy)]
pub struct RemoteOptions {
    /// How long fetched keys are used before they are fetched again (default 300 s).
    pub ttl: Duration,
    /// The least time between two fetches prompted by an unknown `kid` (default 30 s), so a
    /// flood of made-up kids never becomes a flood of fetches.
    pub min_refetch: Duration,
    /// Deadline for one fetch (default 2 s).
    pub timeout: Duration,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            min_refetch: Duration::from_secs(30),
            timeout: Duration::from_secs(2),
        }
    }
}

/// Verifies edge assertions for one upstream. Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct EdgeVerifier(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    issuer: String,
    audience: String,
    source: Source,
}

#[derive(Debug)]
enum Source {
    Static(Arc<KeySet>),
    Remote(Remote),
}

#[derive(Debug)]
struct Remote {
    url: String,
    client: reqwest::Client,
    options: RemoteOptions,
    cached: RwLock<Cached>,
    /// Held while fetching, so concurrent requests that all need a refetch make one.
    fetching: Mutex<()>,
}

#[derive(Debug, Default)]
struct Cached {
    keys: Arc<KeySet>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

/// Why a JWKS could not be used; only logged.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("fetching the edge JWKS failed: {0}")]
    Fetch(#[from] reqwest::Error),
    #[error("the edge JWKS answered HTTP {0}")]
    Status(u16),
    #[error("the edge JWKS is not valid: {0}")]
    Invalid(String),
}

impl EdgeVerifier {
    /// With a fixed key set (e.g. parsed from the edge's JWKS at start-up).
    pub fn with_keys(issuer: impl Into<String>, audience: impl Into<String>, keys: KeySet) -> Self {
        Self(Arc::new(Inner {
            issuer: issuer.into(),
            audience: audience.into(),
            source: Source::Static(Arc::new(keys)),
        }))
    }

    /// With a fixed JWKS document.
    pub fn from_jwks_json(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        jwks: &str,
    ) -> Result<Self, JwksError> {
        Ok(Self::with_keys(
            issuer,
            audience,
            parse_jwks(jwks.as_bytes())?,
        ))
    }

    /// With keys fetched from the edge's JWKS URL on first use and cached per [`RemoteOptions`].
    pub fn remote(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        url: impl Into<String>,
        options: RemoteOptions,
    ) -> Self {
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .unwrap_or_default();
        Self(Arc::new(Inner {
            issuer: issuer.into(),
            audience: audience.into(),
            source: Source::Remote(Remote {
                url: url.into(),
                client,
                options,
                cached: RwLock::default(),
                fetching: Mutex::new(()),
            }),
        }))
    }

    pub fn audience(&self) -> &str {
        &self.0.audience
    }

    /// Verifies the raw header value for a request with `method` and `path`; the assertion may
    /// be anonymous (a `public_signed` route) or carry an identity.
    pub async fn verify_claims(
        &self,
        header_value: Option<&str>,
        method: &str,
        path: &str,
    ) -> Result<AssertionClaims, AssertionError> {
        let token = header_value.ok_or(AssertionError::Missing)?;
        let keys = self.keys_for(jwt::header_kid(token).as_deref()).await;
        let expect = Expectation {
            issuer: &self.0.issuer,
            audience: &self.0.audience,
            method,
            path,
        };
        assertion::verify_claims(token, &keys, &expect, unix_now())
    }

    /// Verifies an assertion that must name a user the edge fully checked.
    pub async fn verify(
        &self,
        header_value: Option<&str>,
        method: &str,
        path: &str,
    ) -> Result<EdgeIdentity, AssertionError> {
        let claims = self.verify_claims(header_value, method, path).await?;
        if !claims.ver_checked {
            return Err(AssertionError::Unchecked);
        }
        claims.identity().ok_or(AssertionError::Unchecked)
    }

    /// The keys to verify a token naming `kid` with: cached ones while fresh and knowing `kid`;
    /// otherwise one fetch (at most one per `min_refetch` for unknown kids). A failed fetch keeps
    /// the keys already known, so an outage of the JWKS endpoint refuses only unknown kids.
    async fn keys_for(&self, kid: Option<&str>) -> Arc<KeySet> {
        let remote = match &self.0.source {
            Source::Static(keys) => return keys.clone(),
            Source::Remote(remote) => remote,
        };
        if let Some(keys) = remote.usable(kid).await {
            return keys;
        }
        let _guard = remote.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(keys) = remote.usable(kid).await {
            return keys;
        }
        let result = remote.fetch().await;
        let mut cached = remote.cached.write().await;
        cached.attempted = Some(Instant::now());
        match result {
            Ok(keys) => {
                cached.keys = Arc::new(keys);
                cached.fetched = cached.attempted;
            }
            Err(e) => {
                tracing::warn!(url = %remote.url, error = %e, "keeping the edge keys already known")
            }
        }
        cached.keys.clone()
    }
}

impl Remote {
    /// The cached keys if no fetch is due for a token naming `kid`.
    async fn usable(&self, kid: Option<&str>) -> Option<Arc<KeySet>> {
        let cached = self.cached.read().await;
        let recently =
            |at: Option<Instant>, within: Duration| at.is_some_and(|t| t.elapsed() < within);
        let fresh = recently(cached.fetched, self.options.ttl);
        let known = kid.is_some_and(|k| cached.keys.get(k).is_some());
        // Unknown kid (or stale keys): fetch, unless one was tried within `min_refetch`.
        let tried_lately = recently(cached.attempted, self.options.min_refetch);
        ((fresh && known) || tried_lately).then(|| cached.keys.clone())
    }

    async fn fetch(&self) -> Result<KeySet, JwksError> {
        let response = self.client.get(&self.url).send().await?;
        if !response.status().is_success() {
            return Err(JwksError::Status(response.status().as_u16()));
        }
        parse_jwks(&response.bytes().await?)
    }
}

fn parse_jwks(body: &[u8]) -> Result<KeySet, JwksError> {
    let jwks: Jwks = serde_json::from_slice(body).map_err(|e| JwksError::Invalid(e.to_string()))?;
    let mut keys = KeySet::new();
    keys.extend_from_jwks(&jwks)
        .map_err(|e| JwksError::Invalid(e.to_string()))?;
    Ok(keys)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The caller of a protected route, as vouched for by the edge: extract it and the request is
/// refused with 401 unless a valid, fully checked assertion for this upstream, method and path
/// came with it.
#[derive(Debug, Clone)]
pub struct EdgeUser(pub EdgeIdentity);

impl<S> FromRequestParts<S> for EdgeUser
where
    S: Send + Sync,
    EdgeVerifier: FromRef<S>,
{
    type Rejection = EdgeRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, EdgeRejection> {
        let verifier = EdgeVerifier::from_ref(state);
        let value = assertion_header(parts)?;
        verifier
            .verify(value, parts.method.as_str(), received_path(parts))
            .await
            .map(EdgeUser)
            .map_err(EdgeRejection)
    }
}

/// The path the request arrived with, which is what the edge bound the assertion to. Inside a
/// router mounted with `Router::nest`, `parts.uri` has lost the mount prefix (axum keeps the
/// original in [`OriginalUri`]); comparing with it would refuse every valid assertion there and
/// accept one signed for the same path under another mount point.
pub fn received_path(parts: &Parts) -> &str {
    parts
        .extensions
        .get::<OriginalUri>()
        .map_or(parts.uri.path(), |original| original.0.path())
}

/// The assertion header's value: `None` when absent, refused when not visible ASCII or sent twice.
pub fn assertion_header(parts: &Parts) -> Result<Option<&str>, EdgeRejection> {
    let mut values = parts.headers.get_all(HEADER).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(EdgeRejection(AssertionError::Malformed));
    }
    first
        .to_str()
        .map(Some)
        .map_err(|_| EdgeRejection(AssertionError::Malformed))
}

/// 401 with Tollgate's error body: `assertion_missing` or `assertion_invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeRejection(pub AssertionError);

impl EdgeRejection {
    pub fn code(self) -> ErrorCode {
        match self.0 {
            AssertionError::Missing => ErrorCode::AssertionMissing,
            _ => ErrorCode::AssertionInvalid,
        }
    }
}

impl IntoResponse for EdgeRejection {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.code(), self.0.to_string()).to_json();
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}
