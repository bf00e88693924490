//! The edge's signed identity assertion: what an upstream behind the edge trusts instead of
//! calling Redis itself.
//!
//! After a protected request passes all five layers, the edge forwards it with the header
//! [`HEADER`] (`X-Tollgate-Assertion`) holding a compact JWS:
//!
//! - header `{"alg":"EdDSA","typ":"tollgate-assertion+jwt","kid":…}`, signed by an edge key
//!   whose public half the edge publishes at [`JWKS_PATH`] (keys rotate by `kid`);
//! - claims [`AssertionClaims`]: `iss` (the edge), `aud` (the name of the upstream the request
//!   is forwarded to), `sub`/`sid`/`jti`/`ver` (whose token passed, from which device session),
//!   `ip` (the client's address as the edge saw it), `htm`/`htu` (the method and path the
//!   upstream receives — the binding, as in DPoP, RFC 9449 §4.2), `iat`/`exp` (at most
//!   [`MAX_LIFETIME_SECS`] apart).
//!
//! Binding to audience, method and path means a captured assertion cannot be replayed to another
//! upstream or another route; the short lifetime bounds a replay to the same route. The `typ`
//! keeps an assertion from ever being taken for an access token and vice versa, even when a
//! deployment lets one key set verify both.
//!
//! Routes marked `public_signed` in the edge's route table get an *anonymous* assertion (no
//! `sub`): it vouches only for the client address and the binding, so an upstream's rate limits
//! can trust `ip` without trusting `X-Forwarded-For`.
//!
//! [`verify`] is the one implementation upstreams use (the origin, the `tollgate-upstream`
//! axum extractor crate); the JavaScript upstream library follows the same rules and is tested
//! against vectors produced here.

use serde::{Deserialize, Serialize};

use crate::jwt::SigningKey;
#[cfg(feature = "ed25519-dalek")]
use crate::jwt::{verify_jws, KeySet};

/// The request header carrying the assertion. Clients can never set it: the edge drops every
/// client-sent `x-tollgate-*` header.
pub const HEADER: &str = "x-tollgate-assertion";

/// The assertion's `typ` header.
pub const TYP: &str = "tollgate-assertion+jwt";

/// Where the edge publishes the public halves of its assertion keys.
pub const JWKS_PATH: &str = "/.well-known/tollgate-edge-jwks.json";

/// Longest lifetime an assertion may claim; verifiers refuse anything longer.
pub const MAX_LIFETIME_SECS: i64 = 60;

/// Clock skew tolerated between the edge and an upstream.
pub const LEEWAY_SECS: i64 = 5;

/// What an assertion says. Unknown members are refused, so a verifier written against an older
/// claim set cannot silently ignore a new restriction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionClaims {
    pub iss: String,
    pub aud: String,
    /// The user; absent on an anonymous assertion (a `public_signed` route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The device session (`token_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The access token's `jti`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The user's token version the edge checked the token against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<u64>,
    /// `false` when the edge verified the token and its jti record but found the user's version
    /// key missing from Redis: only the origin (which can re-seed it from SQL) may accept such
    /// an assertion, after its own check. Every other verifier refuses it. Always present, so
    /// an absent member can never be read as either answer.
    pub ver_checked: bool,
    /// The client's address as the edge saw it (`CF-Connecting-IP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The request method the upstream receives.
    pub htm: String,
    /// The request path the upstream receives (no query).
    pub htu: String,
    pub iat: i64,
    pub exp: i64,
}

/// Who the edge vouches for: the verified content of an assertion with a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeIdentity {
    pub user_id: String,
    pub token_id: String,
    pub jti: String,
    pub token_version: u64,
    pub client_ip: Option<String>,
}

/// What the upstream expects of an assertion besides the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation<'a> {
    /// The edge's `iss` (its `EDGE_ISSUER`).
    pub issuer: &'a str,
    /// This upstream's name in the edge's route table.
    pub audience: &'a str,
    /// The method of the request being served.
    pub method: &'a str,
    /// The path of the request being served, exactly as received (no query).
    pub path: &'a str,
}

/// Why an assertion was refused. All map to 401 `assertion_invalid` except [`Self::Missing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("no edge assertion")]
    Missing,
    #[error("edge assertion is malformed")]
    Malformed,
    #[error("edge assertion signature is invalid or its key unknown")]
    Signature,
    #[error("edge assertion has expired or is not yet valid")]
    Expired,
    #[error("edge assertion lives longer than {MAX_LIFETIME_SECS} s")]
    Lifetime,
    #[error("edge assertion is from another issuer or for another upstream")]
    Audience,
    #[error("edge assertion is bound to another method or path")]
    Binding,
    #[error("edge assertion does not carry a checked identity")]
    Unchecked,
}

impl AssertionClaims {
    /// Signs these claims with an edge key.
    pub fn sign(&self, key: &SigningKey) -> String {
        key.sign_jws(TYP, self)
    }
}

/// Verifies an assertion and returns its claims, anonymous or not. Checks, in order: the JWS
/// rules shared with access tokens (size, shape, `typ`, no `crit`, pinned algorithm, signature),
/// then lifetime, time window, issuer and audience, and the binding to method and path.
#[cfg(feature = "ed25519-dalek")]
pub fn verify_claims(
    token: &str,
    keys: &KeySet,
    expect: &Expectation<'_>,
    now: i64,
) -> Result<AssertionClaims, AssertionError> {
    use crate::decision::Rejection;
    let payload = verify_jws(token, keys, TYP).map_err(|r| match r {
        Rejection::Signature => AssertionError::Signature,
        _ => AssertionError::Malformed,
    })?;
    check_claims(&payload, expect, now)
}

/// The rules after the signature: the verified payload parsed, then lifetime, time window,
/// issuer and audience, and the binding. For a verifier that checks the signature itself
/// ([`crate::jwt::parse_jws`]).
pub fn check_claims(
    payload: &[u8],
    expect: &Expectation<'_>,
    now: i64,
) -> Result<AssertionClaims, AssertionError> {
    let claims: AssertionClaims =
        crate::json::from_slice(payload).map_err(|_| AssertionError::Malformed)?;
    if claims.exp.saturating_sub(claims.iat) > MAX_LIFETIME_SECS {
        return Err(AssertionError::Lifetime);
    }
    if now >= claims.exp || claims.iat > now.saturating_add(LEEWAY_SECS) {
        return Err(AssertionError::Expired);
    }
    if claims.iss != expect.issuer || claims.aud != expect.audience {
        return Err(AssertionError::Audience);
    }
    if claims.htm != expect.method || claims.htu != expect.path {
        return Err(AssertionError::Binding);
    }
    Ok(claims)
}

/// Verifies an assertion that must carry a user whose token the edge fully checked: what an
/// upstream's protected route requires.
#[cfg(feature = "ed25519-dalek")]
pub fn verify(
    token: &str,
    keys: &KeySet,
    expect: &Expectation<'_>,
    now: i64,
) -> Result<EdgeIdentity, AssertionError> {
    let claims = verify_claims(token, keys, expect, now)?;
    if !claims.ver_checked {
        return Err(AssertionError::Unchecked);
    }
    claims.identity().ok_or(AssertionError::Unchecked)
}

impl AssertionClaims {
    /// The identity, when the assertion names a user with all four of its token's facts.
    pub fn identity(&self) -> Option<EdgeIdentity> {
        Some(EdgeIdentity {
            user_id: self.sub.clone()?,
            token_id: self.sid.clone()?,
            jti: self.jti.clone()?,
            token_version: self.ver?,
            client_ip: self.ip.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, seed: u8) -> SigningKey {
        SigningKey::EdDSA {
            kid: kid.into(),
            key: ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
        }
    }

    fn keys(k: &SigningKey) -> KeySet {
        let mut set = KeySet::new();
        set.insert(k.kid(), k.verifying_key());
        set
    }

    fn claims(now: i64) -> AssertionClaims {
        AssertionClaims {
            iss: "edge".into(),
            aud: "notes".into(),
            sub: Some("u".into()),
            sid: Some("s".into()),
            jti: Some("j".into()),
            ver: Some(2),
            ver_checked: true,
            ip: Some("203.0.113.9".into()),
            htm: "GET".into(),
            htu: "/api/notes/1".into(),
            iat: now,
            exp: now + 30,
        }
    }

    const EXPECT: Expectation<'static> = Expectation {
        issuer: "edge",
        audience: "notes",
        method: "GET",
        path: "/api/notes/1",
    };

    #[test]
    fn a_fresh_assertion_for_this_route_verifies() {
        let k = key("e1", 1);
        let id = verify(&claims(100).sign(&k), &keys(&k), &EXPECT, 100).expect("valid");
        assert_eq!(id.user_id, "u");
        assert_eq!(id.token_version, 2);
        assert_eq!(id.client_ip.as_deref(), Some("203.0.113.9"));
    }

    #[test]
    fn each_broken_rule_has_its_own_refusal() {
        let k = key("e1", 1);
        let set = keys(&k);
        let with = |f: &dyn Fn(&mut AssertionClaims)| {
            let mut c = claims(100);
            f(&mut c);
            verify(&c.sign(&k), &set, &EXPECT, 100)
        };
        assert_eq!(
            with(&|c| c.aud = "origin".into()),
            Err(AssertionError::Audience)
        );
        assert_eq!(with(&|c| c.iss = "x".into()), Err(AssertionError::Audience));
        assert_eq!(
            with(&|c| c.htm = "POST".into()),
            Err(AssertionError::Binding)
        );
        assert_eq!(
            with(&|c| c.htu = "/api/notes/2".into()),
            Err(AssertionError::Binding)
        );
        assert_eq!(with(&|c| c.exp = c.iat + 61), Err(AssertionError::Lifetime));
        assert_eq!(
            with(&|c| c.ver_checked = false),
            Err(AssertionError::Unchecked)
        );
        assert_eq!(with(&|c| c.sub = None), Err(AssertionError::Unchecked));
        assert_eq!(with(&|c| c.exp = 100), Err(AssertionError::Expired));
        assert_eq!(
            with(&|c| {
                c.iat = 106;
                c.exp = 130;
            }),
            Err(AssertionError::Expired)
        );
        assert!(with(&|c| {
            c.iat = 105;
            c.exp = 130;
        })
        .is_ok());
        let other = key("e1", 2);
        assert_eq!(
            verify(&claims(100).sign(&other), &set, &EXPECT, 100),
            Err(AssertionError::Signature)
        );
        let unknown = key("e9", 1);
        assert_eq!(
            verify(&claims(100).sign(&unknown), &set, &EXPECT, 100),
            Err(AssertionError::Signature)
        );
    }

    #[test]
    fn an_access_token_is_never_an_assertion_and_back() {
        let k = key("e1", 1);
        let set = keys(&k);
        let as_access = k.sign_jws(crate::jwt::ACCESS_TOKEN_TYP, &claims(100));
        assert_eq!(
            verify(&as_access, &set, &EXPECT, 100),
            Err(AssertionError::Malformed)
        );
        let assertion = claims(100).sign(&k);
        let v = crate::jwt::Validation::new("edge", "notes", 900);
        assert_eq!(
            crate::jwt::verify(&assertion, &set, &v, 100),
            Err(crate::Rejection::Malformed)
        );
    }

    #[test]
    fn unknown_claims_are_refused() {
        let k = key("e1", 1);
        let mut value = serde_json::to_value(claims(100)).expect("json");
        value["admin"] = serde_json::Value::Bool(true);
        let token = k.sign_jws(TYP, &value);
        assert_eq!(
            verify(&token, &keys(&k), &EXPECT, 100),
            Err(AssertionError::Malformed)
        );
    }
}
