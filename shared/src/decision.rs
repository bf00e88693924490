//! The validation decision: given verified claims and one Redis lookup, accept or refuse.
//!
//! The seed's five layers map to: (1) format and (2) signature, both in
//! [`jwt::verify`](crate::jwt::verify); (3) the jti record exists, (4) the user exists (their
//! version key is present, seeded from SQL) and (5) the token's version equals the current one,
//! here. Layers 3–5 need only the two values of one Redis round trip: `HMGET tg:{userId} j:{jti} v`
//! (see [`crate::keys`]).

use crate::claims::AccessClaims;
use crate::error::ErrorCode;
use crate::records::{canonical_u64, JtiRecord};
use crate::upstash::ValidationLookup;

/// Why a bearer token was refused. Each maps to one documented error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a well-formed compact JWS with our claim set.
    Malformed,
    /// Unknown key, algorithm not the key's, or the signature does not verify.
    Signature,
    /// `exp` has passed.
    Expired,
    /// Wrong issuer or audience, or issued/valid only in the future.
    Claims,
    /// The jti record is gone: logged out, or the record does not match the token.
    Revoked,
    /// The user's token version moved on (logout-all).
    Version,
    /// No such user.
    UserUnknown,
}

impl Rejection {
    pub fn code(self) -> ErrorCode {
        match self {
            Self::Missing => ErrorCode::TokenMissing,
            Self::Malformed => ErrorCode::TokenMalformed,
            Self::Signature => ErrorCode::TokenSignature,
            Self::Expired => ErrorCode::TokenExpired,
            Self::Claims => ErrorCode::TokenClaims,
            Self::Revoked => ErrorCode::TokenRevoked,
            Self::Version => ErrorCode::TokenVersion,
            Self::UserUnknown => ErrorCode::UserUnknown,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "missing bearer token",
            Self::Malformed => "malformed access token",
            Self::Signature => "access token signature is invalid",
            Self::Expired => "access token has expired",
            Self::Claims => "access token claims are not valid here",
            Self::Revoked => "access token has been revoked",
            Self::Version => "access token was issued before a logout of all devices",
            Self::UserUnknown => "user no longer exists",
        }
    }
}

/// Who an accepted token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub jti: String,
    /// The device session (`token_id`).
    pub token_id: String,
    pub token_version: u64,
}

/// Parses the raw value of the user's `v` field. Tollgate writes it as a `u64` in its canonical
/// decimal form, so only that form is read ([`canonical_u64`]); anything else — `+7`, ` 7`, `07`,
/// `7x`, past `u64::MAX` — counts as missing and the caller re-seeds it from SQL rather than
/// guessing.
pub fn parse_version(raw: Option<&str>) -> Option<u64> {
    canonical_u64(raw?)
}

/// The outcome of layers 3–5 for one verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// All five layers passed.
    Accept(Identity),
    /// Refused, with the layer that failed.
    Reject(Rejection),
    /// The jti record is live and matches the token, but the user's version key is missing
    /// from Redis (evicted, flushed). Only the origin can re-seed it from SQL
    /// ([`decide_reseeded`]); every other hop must ask the origin rather than guess.
    VersionMissing,
}

/// Layers 3–5 from the one Redis round trip's two values. A record that does not parse or does
/// not match the token (another user, another session, another version) counts as revoked:
/// fail closed.
pub fn decide(claims: &AccessClaims, lookup: &ValidationLookup) -> Decision {
    if let Err(rejection) = check_record(claims, lookup.jti_record.as_deref()) {
        return Decision::Reject(rejection);
    }
    match parse_version(lookup.user_version.as_deref()) {
        None => Decision::VersionMissing,
        Some(current) => match check_version(claims, Some(current)) {
            Ok(identity) => Decision::Accept(identity),
            Err(rejection) => Decision::Reject(rejection),
        },
    }
}

/// Layers 3–5 once the origin has re-seeded a missing version from SQL (`None`: no such user).
pub fn decide_reseeded(
    claims: &AccessClaims,
    jti_record: Option<&str>,
    current_version: Option<u64>,
) -> Result<Identity, Rejection> {
    check_record(claims, jti_record)?;
    check_version(claims, current_version)
}

fn check_record(claims: &AccessClaims, jti_record: Option<&str>) -> Result<(), Rejection> {
    let record = jti_record
        .and_then(JtiRecord::parse)
        .ok_or(Rejection::Revoked)?;
    // The user is the hash's (the lookup read `sub`'s); session and version must be the
    // token's. (`exp` is only for pruning: the token's own `exp` was checked with its
    // signature, and only the origin's keys sign.)
    if record.token_id != claims.sid || record.token_version != claims.ver {
        return Err(Rejection::Revoked);
    }
    Ok(())
}

fn check_version(claims: &AccessClaims, current: Option<u64>) -> Result<Identity, Rejection> {
    let current = current.ok_or(Rejection::UserUnknown)?;
    if claims.ver != current {
        return Err(Rejection::Version);
    }
    Ok(Identity {
        user_id: claims.sub.clone(),
        jti: claims.jti.clone(),
        token_id: claims.sid.clone(),
        token_version: current,
    })
}

/// The one Redis round trip a protected request costs, however a hop reaches Redis: `MGET` over
/// TCP at the origin, one Upstash `/pipeline` at the edge.
///
/// `async fn` in a public trait is fine here: the edge is single-threaded and the origin calls
/// it through a concrete type, so neither needs a `Send` bound spelled out.
#[allow(async_fn_in_trait)]
pub trait RevocationLookup {
    type Error;
    async fn lookup(&self, claims: &AccessClaims) -> Result<ValidationLookup, Self::Error>;
}

/// A bearer check's outcome, with the claims it was made on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub claims: AccessClaims,
    pub lookup: ValidationLookup,
    pub decision: Decision,
}

/// The whole bearer check both hops run, written once: parse `Authorization`, verify the token
/// locally with `verify` (each hop memoises verified tokens its own way), and only then make
/// the one Redis round trip and [`decide`]. A token that fails locally never costs a lookup.
/// `Ok(Err(_))` is a refusal; `Err(_)` means the revocation state is unknown (fail closed).
pub async fn check_bearer<L: RevocationLookup>(
    authorization: Option<&str>,
    verify: impl FnOnce(&str) -> Result<AccessClaims, Rejection>,
    store: &L,
) -> Result<Result<Checked, Rejection>, L::Error> {
    match crate::jwt::bearer_token(authorization) {
        Ok(token) => check_token(token, verify, store).await,
        Err(rejection) => Ok(Err(rejection)),
    }
}

/// [`check_bearer`] for a token that did not come in an `Authorization` header (the origin's
/// RFC 7662 introspection takes it from a form): the same verification, lookup and decision.
pub async fn check_token<L: RevocationLookup>(
    token: &str,
    verify: impl FnOnce(&str) -> Result<AccessClaims, Rejection>,
    store: &L,
) -> Result<Result<Checked, Rejection>, L::Error> {
    let claims = match verify(token) {
        Ok(claims) => claims,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let lookup = store.lookup(&claims).await?;
    let decision = decide(&claims, &lookup);
    Ok(Ok(Checked {
        claims,
        lookup,
        decision,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            sub: "u1".into(),
            jti: "j1".into(),
            ver: 3,
            sid: "s1".into(),
            iat: 0,
            exp: 900,
            nbf: None,
            iss: "i".into(),
            aud: "a".into(),
        }
    }

    fn record(exp: i64, sid: &str, ver: u64) -> String {
        JtiRecord {
            exp,
            token_id: sid.into(),
            token_version: ver,
        }
        .encode()
    }

    fn lookup(record: Option<String>, version: Option<&str>) -> ValidationLookup {
        ValidationLookup {
            jti_record: record,
            user_version: version.map(str::to_owned),
        }
    }

    #[test]
    fn accepts_a_live_token_of_the_current_version() {
        let Decision::Accept(id) =
            decide(&claims(), &lookup(Some(record(900, "s1", 3)), Some("3")))
        else {
            panic!("refused")
        };
        assert_eq!(id.user_id, "u1");
        assert_eq!(id.token_id, "s1");
    }

    #[test]
    fn refuses_each_broken_layer_with_its_own_code() {
        let c = claims();
        let reject = |r| Decision::Reject(r);
        assert_eq!(
            decide(&c, &lookup(None, Some("3"))),
            reject(Rejection::Revoked)
        );
        assert_eq!(
            decide(&c, &lookup(Some("{junk".into()), Some("3"))),
            reject(Rejection::Revoked)
        );
        assert_eq!(
            decide(&c, &lookup(Some(record(900, "s2", 3)), Some("3"))),
            reject(Rejection::Revoked)
        );
        // A record of another version of the token: not this one's.
        assert_eq!(
            decide(&c, &lookup(Some(record(900, "s1", 2)), Some("3"))),
            reject(Rejection::Revoked)
        );
        assert_eq!(
            decide(&c, &lookup(Some(record(900, "s1", 3)), Some("4"))),
            reject(Rejection::Version)
        );
        // A revoked token is refused even when the version key is missing too.
        assert_eq!(decide(&c, &lookup(None, None)), reject(Rejection::Revoked));
    }

    #[test]
    fn a_missing_version_is_left_to_the_origin_and_then_decided_from_sql() {
        let c = claims();
        let live = record(900, "s1", 3);
        assert_eq!(
            decide(&c, &lookup(Some(live.clone()), None)),
            Decision::VersionMissing
        );
        assert_eq!(
            decide(&c, &lookup(Some(live.clone()), Some("x"))),
            Decision::VersionMissing
        );
        assert!(decide_reseeded(&c, Some(&live), Some(3)).is_ok());
        assert_eq!(
            decide_reseeded(&c, Some(&live), Some(4)),
            Err(Rejection::Version)
        );
        assert_eq!(
            decide_reseeded(&c, Some(&live), None),
            Err(Rejection::UserUnknown)
        );
        assert_eq!(decide_reseeded(&c, None, Some(3)), Err(Rejection::Revoked));
    }

    #[test]
    fn version_parsing_fails_closed() {
        assert_eq!(parse_version(Some("7")), Some(7));
        assert_eq!(parse_version(Some("7x")), None);
        assert_eq!(parse_version(None), None);
    }
}
