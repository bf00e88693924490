//! Which routes are public, and the decision for the rest: local JWT verification, then one
//! Upstash round trip and [`tollgate_shared::decide`] — the same five layers as the origin's
//! `AuthUser`, from the same code.

use tollgate_shared::decision::parse_version;
use tollgate_shared::{decide, jwt, Identity, Rejection};

use crate::config::Settings;
use crate::upstash::{Upstash, UpstashFailure};

/// Routes anyone may call, by exact method and path; everything else needs a valid token
/// (default deny), so a route added to the origin is protected at the edge until listed here.
const PUBLIC_ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/users/register"),
    ("POST", "/api/users/login"),
    ("POST", "/api/users/refresh"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/.well-known/jwks.json"),
];

pub(crate) fn is_public(method: &str, path: &str) -> bool {
    PUBLIC_ROUTES
        .iter()
        .any(|(m, p)| *m == method && *p == path)
}

/// What to do with a protected request.
#[derive(Debug)]
pub(crate) enum Access {
    /// All five layers passed: forward with the identity headers.
    Granted(Identity),
    /// The token verifies and its jti record is live, but the user's version key is missing
    /// from Redis (evicted, or Redis was flushed). Only the origin can re-seed it from SQL, so
    /// the request goes on *without* identity headers and the origin — which re-validates every
    /// protected request itself — decides and restores the key. Refusing here would log out
    /// every user after an eviction; accepting here would skip the version check.
    OriginDecides,
}

/// Why a protected request does not reach the origin.
#[derive(Debug)]
pub(crate) enum Denied {
    /// 401 with the rejection's code.
    Token(Rejection),
    /// 503: revocation state unknown, fail closed.
    Upstash(UpstashFailure),
}

/// Decides a protected request from its `Authorization` header. A token that fails locally
/// (malformed, forged, expired, wrong issuer/audience) is refused before any Redis call.
pub(crate) async fn authorize(
    authorization: Option<&str>,
    settings: &Settings,
    now: i64,
) -> Result<Access, Denied> {
    let token = jwt::bearer_token(authorization).map_err(Denied::Token)?;
    let claims =
        jwt::verify(token, &settings.key_set, &settings.validation, now).map_err(Denied::Token)?;
    let lookup = Upstash::new(settings)
        .validation_lookup(&claims)
        .await
        .map_err(Denied::Upstash)?;
    let version = parse_version(lookup.user_version.as_deref());
    match decide(&claims, lookup.jti_record.as_deref(), version) {
        Ok(identity) => Ok(Access::Granted(identity)),
        // `decide` answers UserUnknown only after the jti record matched the token.
        Err(Rejection::UserUnknown) => Ok(Access::OriginDecides),
        Err(rejection) => Err(Denied::Token(rejection)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_method_and_path_pairs_are_public() {
        assert!(is_public("POST", "/api/users/login"));
        assert!(is_public("GET", "/.well-known/jwks.json"));
        assert!(!is_public("GET", "/api/users/login"));
        assert!(!is_public("POST", "/api/users/login/"));
        assert!(!is_public("POST", "/API/users/login"));
        assert!(!is_public("GET", "/api/users/me"));
        assert!(!is_public("GET", "/health/../api/users/me"));
        assert!(!is_public("GET", "/unknown"));
    }
}
