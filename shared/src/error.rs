//! API error codes and the one JSON error body every Tollgate service returns.

use serde::{Deserialize, Serialize};

/// Every error code the HTTP API can return, in `snake_case` on the wire.
///
/// One enum for the origin, the edge and the bridge, so a client sees the same code for the same
/// failure whichever hop refused it.
// Read back from its wire form (`ErrorCode::ALL`, `ErrorCode::as_str`) rather than by serde's
// derive, whose 22-way variant matcher and enum access cost the edge's wasm several KB to read
// one code off the origin's answer. (A `//` comment: the `///` text is the OpenAPI description.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidInput,
    EmailTaken,
    InvalidCredentials,
    RateLimited,
    InvalidRefreshToken,
    RefreshTokenReused,
    TokenMissing,
    TokenMalformed,
    TokenSignature,
    TokenExpired,
    TokenClaims,
    TokenRevoked,
    TokenVersion,
    UserUnknown,
    AssertionMissing,
    AssertionInvalid,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [Self; 22] = [
        Self::InvalidInput,
        Self::EmailTaken,
        Self::InvalidCredentials,
        Self::RateLimited,
        Self::InvalidRefreshToken,
        Self::RefreshTokenReused,
        Self::TokenMissing,
        Self::TokenMalformed,
        Self::TokenSignature,
        Self::TokenExpired,
        Self::TokenClaims,
        Self::TokenRevoked,
        Self::TokenVersion,
        Self::UserUnknown,
        Self::AssertionMissing,
        Self::AssertionInvalid,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::PayloadTooLarge,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The code with wire form `s`.
    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == s)
    }

    /// The wire form, e.g. `token_revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::EmailTaken => "email_taken",
            Self::InvalidCredentials => "invalid_credentials",
            Self::RateLimited => "rate_limited",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::RefreshTokenReused => "refresh_token_reused",
            Self::TokenMissing => "token_missing",
            Self::TokenMalformed => "token_malformed",
            Self::TokenSignature => "token_signature",
            Self::TokenExpired => "token_expired",
            Self::TokenClaims => "token_claims",
            Self::TokenRevoked => "token_revoked",
            Self::TokenVersion => "token_version",
            Self::UserUnknown => "user_unknown",
            Self::AssertionMissing => "assertion_missing",
            Self::AssertionInvalid => "assertion_invalid",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidInput => 422,
            Self::EmailTaken => 409,
            Self::InvalidCredentials
            | Self::InvalidRefreshToken
            | Self::RefreshTokenReused
            | Self::TokenMissing
            | Self::TokenMalformed
            | Self::TokenSignature
            | Self::TokenExpired
            | Self::TokenClaims
            | Self::TokenRevoked
            | Self::TokenVersion
            | Self::UserUnknown
            | Self::AssertionMissing
            | Self::AssertionInvalid => 401,
            Self::RateLimited => 429,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::PayloadTooLarge => 413,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// Whether a 401 with this code must carry `WWW-Authenticate: Bearer error="invalid_token"`.
    pub fn is_bearer_rejection(self) -> bool {
        matches!(
            self,
            Self::TokenMissing
                | Self::TokenMalformed
                | Self::TokenSignature
                | Self::TokenExpired
                | Self::TokenClaims
                | Self::TokenRevoked
                | Self::TokenVersion
                | Self::UserUnknown
        )
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Wire;

        impl serde::de::Visitor<'_> for Wire {
            type Value = ErrorCode;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an error code")
            }

            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ErrorCode, E> {
                ErrorCode::from_wire(s)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(s), &self))
            }
        }

        d.deserialize_str(Wire)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The documented error body: `{"error":{"code":"…","message":"…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }

    /// The body as JSON text; infallible because every field is a plain string.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"error":{"code":"internal","message":"internal error"}}"#.to_owned()
        })
    }
}

/// The `WWW-Authenticate` value sent with every bearer-token rejection (RFC 6750 §3).
pub const WWW_AUTHENTICATE_INVALID_TOKEN: &str = r#"Bearer error="invalid_token""#;

/// The headers an error answer with `code` carries beside its body, the same from the origin
/// and the edge: `WWW-Authenticate` on a bearer rejection, and `Retry-After` (seconds, at
/// least 1) when retrying can help — after `rate_limit_secs` for `rate_limited` (1 if not
/// known), after 1 s for `unavailable`. Lowercase names, as HTTP/2 and the Workers runtime
/// want them.
pub fn error_headers(code: ErrorCode, rate_limit_secs: Option<u64>) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    if code.is_bearer_rejection() {
        headers.push((
            "www-authenticate",
            WWW_AUTHENTICATE_INVALID_TOKEN.to_owned(),
        ));
    }
    let retry_after = match code {
        ErrorCode::RateLimited => Some(rate_limit_secs.unwrap_or(1).max(1)),
        ErrorCode::Unavailable => Some(1),
        _ => None,
    };
    if let Some(secs) = retry_after {
        headers.push(("retry-after", secs.to_string()));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ALL` is every code once: each reads back from its wire form and its serde form, and
    /// the wire forms are distinct (a variant missing from `ALL` would fail the origin's and
    /// the edge's tests that read their own error bodies).
    #[test]
    fn every_code_reads_back_from_its_wire_form() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code}");
            assert_eq!(ErrorCode::from_wire(code.as_str()), Some(code));
            let json = serde_json::to_string(&code).expect("json");
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).ok(), Some(code));
            assert_eq!(crate::json::from_str::<ErrorCode>(&json).ok(), Some(code));
        }
        assert_eq!(ErrorCode::from_wire("token_revokedx"), None);
        assert!(crate::json::from_str::<ErrorCode>("\"nope\"").is_err());
        let body = ErrorBody::new(ErrorCode::TokenRevoked, "revoked").to_json();
        assert_eq!(
            crate::json::from_str::<ErrorBody>(&body).ok(),
            Some(ErrorBody::new(ErrorCode::TokenRevoked, "revoked"))
        );
    }
}
