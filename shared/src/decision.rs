//! The validation decision: given verified claims and one Redis lookup, accept or refuse.
//!
//! The seed's five layers map to: (1) format and (2) signature, both in
//! [`jwt::verify`](crate::jwt::verify); (3) the jti record exists, (4) the user exists (their
//! version key is present, seeded from SQL) and (5) the token's version equals the current one,
//! here. Layers 3–5 need only the two values of one Redis round trip: `GET token:jti:{jti}` and
//! `GET user:ver:{userId}`.

use crate::claims::AccessClaims;
use crate::error::ErrorCode;
use crate::records::JtiRecord;

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

/// Parses the raw value of `user:ver:{userId}`. Tollgate writes it as a `u64` in its canonical
/// decimal form (ASCII digits, no sign, no whitespace, no leading zero except `0` itself), so
/// only that form is read; anything else — `+7`, ` 7`, `07`, `7x`, past `u64::MAX` — counts as
/// missing and the caller re-seeds it from SQL rather than guessing. (`u64::from_str` alone
/// would take `+7`, and a value we never wrote is not one to trust.)
pub fn parse_version(raw: Option<&str>) -> Option<u64> {
    let s = raw?;
    let canonical = s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical {
        return None;
    }
    s.parse().ok()
}

/// Layers 3–5. `jti_record` is the raw value of `token:jti:{jti}`; `current_version` is the user's
/// version (`None`: the user does not exist).
///
/// A record that does not parse or does not match the token (another user, another session,
/// another version) counts as revoked: fail closed.
pub fn decide(
    claims: &AccessClaims,
    jti_record: Option<&str>,
    current_version: Option<u64>,
) -> Result<Identity, Rejection> {
    let record: JtiRecord = jti_record
        .and_then(|raw| serde_json::from_str(raw).ok())
        .ok_or(Rejection::Revoked)?;
    if record.user_id != claims.sub
        || record.token_id != claims.sid
        || record.token_version != claims.ver
    {
        return Err(Rejection::Revoked);
    }
    let current = current_version.ok_or(Rejection::UserUnknown)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::DeviceInfo;

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

    fn record(user: &str, sid: &str, ver: u64) -> String {
        serde_json::to_string(&JtiRecord {
            user_id: user.into(),
            token_version: ver,
            token_id: sid.into(),
            device_info: DeviceInfo::default(),
            created_at: "2026-01-01T00:00:00Z".into(),
        })
        .expect("json")
    }

    #[test]
    fn accepts_a_live_token_of_the_current_version() {
        let id = decide(&claims(), Some(&record("u1", "s1", 3)), Some(3)).expect("accepted");
        assert_eq!(id.user_id, "u1");
        assert_eq!(id.token_id, "s1");
    }

    #[test]
    fn refuses_each_broken_layer_with_its_own_code() {
        let c = claims();
        assert_eq!(decide(&c, None, Some(3)), Err(Rejection::Revoked));
        assert_eq!(decide(&c, Some("{junk"), Some(3)), Err(Rejection::Revoked));
        assert_eq!(
            decide(&c, Some(&record("u2", "s1", 3)), Some(3)),
            Err(Rejection::Revoked)
        );
        assert_eq!(
            decide(&c, Some(&record("u1", "s2", 3)), Some(3)),
            Err(Rejection::Revoked)
        );
        assert_eq!(
            decide(&c, Some(&record("u1", "s1", 3)), None),
            Err(Rejection::UserUnknown)
        );
        assert_eq!(
            decide(&c, Some(&record("u1", "s1", 3)), Some(4)),
            Err(Rejection::Version)
        );
    }

    #[test]
    fn version_parsing_fails_closed() {
        assert_eq!(parse_version(Some("7")), Some(7));
        assert_eq!(parse_version(Some("7x")), None);
        assert_eq!(parse_version(None), None);
    }
}
