//! The OAuth endpoints: RFC 7009 revocation and RFC 7662 introspection.
//!
//! Both take `application/x-www-form-urlencoded` bodies and answer client mistakes in RFC 6749
//! §5.2's shape (`{"error":"invalid_request",…}`), which OAuth libraries parse.
//!
//! **Revocation** asks for no client authentication. Tollgate's clients are public (apps that
//! cannot keep a secret), and RFC 7009 §2.1 lets a public client revoke its token by possession.
//! That is safe because a token only ever revokes itself: an access token deletes its own jti,
//! a refresh token kills its own device session (as `logout-device` would). Nothing names another
//! token or another user, and an unknown, invalid or expired token answers 200 like a revoked
//! one (RFC 7009 §2.2), so the endpoint says nothing about which tokens exist.
//!
//! **Introspection** tells a resource server about any user's token, so it requires HTTP Basic
//! credentials (RFC 6749 §2.3.1) of a client in `INTROSPECTION_CLIENTS`. It runs the very check a
//! protected origin route runs (the shared `decide`, with the version re-seeded from SQL when
//! Redis lost it): a token revoked by any logout is `{"active":false}` on the next call.

use std::borrow::Cow;

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Form, Json};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tollgate_shared::{ErrorBody, ErrorCode};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{self, MAX_REFRESH_TOKEN_BYTES, REFRESH_SECRET_PREFIX};
use crate::error::{ApiError, ApiResult, OAuthErrorBody, OAuthErrorCode};
use crate::state::AppState;
use crate::tokens;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(revoke))
        .routes(routes!(introspect))
}

/// The form both endpoints take.
#[derive(Debug, Deserialize, ToSchema)]
struct TokenForm {
    /// The access token (a JWT) or refresh token (`rt_…`).
    #[serde(default)]
    #[schema(value_type = String, required = true, min_length = 1)]
    token: Option<String>,
    /// `access_token` or `refresh_token`. Only a hint, as RFC 7009 §2.1 allows: the two kinds
    /// never look alike, so the token's own form decides, and an unknown hint is ignored.
    #[serde(default)]
    #[schema(value_type = String, required = false)]
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

impl TokenForm {
    /// The `token` parameter; missing or empty is `invalid_request` (RFC 6749 §3.1: a parameter
    /// sent without a value counts as omitted).
    fn token(self) -> Result<String, ApiError> {
        self.token.filter(|t| !t.is_empty()).ok_or_else(|| {
            ApiError::OAuth(
                OAuthErrorCode::InvalidRequest,
                "the token parameter is required".into(),
            )
        })
    }
}

/// Revokes the token presented. Answers 200 with an empty body whether or not there was
/// anything to revoke.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded",
        description = "RFC 7009 §2.1. No client authentication: a token revokes only itself (an access token its jti, a refresh token its device session)."),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke: an unknown, invalid or expired token answers the same (RFC 7009 §2.2)"),
        (status = 400, description = "`invalid_request`: not a form body, `token` missing or empty, or a parameter repeated", body = OAuthErrorBody),
        (status = 503, description = "`unavailable`: the token may still be live; retry (RFC 7009 §2.2.1)", body = ErrorBody),
    ))]
async fn revoke(
    State(state): State<AppState>,
    OAuthForm(form): OAuthForm<TokenForm>,
) -> ApiResult<StatusCode> {
    let token = form.token()?;
    if token.starts_with(REFRESH_SECRET_PREFIX) {
        revoke_refresh_token(&state, &token).await?;
    } else {
        revoke_access_token(&state, &token).await?;
    }
    Ok(StatusCode::OK)
}

/// A refresh secret we once issued, current or rotated away, kills its device session: the
/// same as `/refresh` does with an old secret, so this gives its holder no new power.
async fn revoke_refresh_token(state: &AppState, secret: &str) -> ApiResult<()> {
    if secret.len() > MAX_REFRESH_TOKEN_BYTES {
        return Ok(());
    }
    let hash = domain::hash_refresh_secret(secret);
    if let Some((token_id, user_id)) = state.db.session_of_secret(&hash).await? {
        tokens::revoke_device(state, &user_id, &token_id, "oauth_revoke").await?;
    }
    Ok(())
}

/// An access token that verifies (ours, unexpired) loses its jti; anything else is nothing to
/// revoke. Its device session and refresh token live on (RFC 7009 §2.1 leaves that open).
async fn revoke_access_token(state: &AppState, token: &str) -> ApiResult<()> {
    let Ok(claims) = crate::auth::verified_claims(state, token, domain::now()) else {
        return Ok(());
    };
    if state.redis.revoke_jti(&claims.sub, &claims.jti).await? {
        tracing::info!(user_id = %claims.sub, token_id = %claims.sid, "access token revoked");
    }
    Ok(())
}

/// RFC 7662 §2.2's answer. Inactive is exactly `{"active":false}`.
#[derive(Debug, Default, Serialize, ToSchema)]
struct Introspection {
    active: bool,
    /// The user.
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    /// The access token's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    /// `Bearer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    token_type: Option<&'static str>,
    /// The device session (`token_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    /// The user's token version.
    #[serde(skip_serializing_if = "Option::is_none")]
    ver: Option<u64>,
}

/// Whether an access token is live right now, and whose it is.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    security(("introspection_client" = [])),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded",
        description = "RFC 7662 §2.1, with HTTP Basic client authentication (RFC 6749 §2.3.1) against INTROSPECTION_CLIENTS."),
    responses(
        (status = 200, description = "`{\"active\":true,…}` for a live access token; exactly `{\"active\":false}` for a revoked, expired, malformed or foreign token and for a refresh token", body = Introspection,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_request`: not a form body, `token` missing or empty, or a parameter repeated", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`: no or wrong client credentials", body = OAuthErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"tollgate-introspection\"`"))),
        (status = 503, description = "`unavailable`: the revocation state is unknown; retry", body = ErrorBody),
    ))]
async fn introspect(
    State(state): State<AppState>,
    _client: ResourceServer,
    OAuthForm(form): OAuthForm<TokenForm>,
) -> ApiResult<impl IntoResponse> {
    let token = form.token()?;
    let answer = match crate::auth::check_access_token(&state, &token).await {
        Ok((claims, identity)) => Introspection {
            active: true,
            sub: Some(identity.user_id),
            jti: Some(identity.jti),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            nbf: claims.nbf,
            iss: Some(claims.iss),
            aud: Some(claims.aud),
            token_type: Some("Bearer"),
            sid: Some(identity.token_id),
            ver: Some(identity.token_version),
        },
        Err(ApiError::Token(_)) => Introspection::default(),
        Err(unknown) => return Err(unknown),
    };
    Ok(([(CACHE_CONTROL, "no-store")], Json(answer)))
}

/// A resource server that authenticated with HTTP Basic as one of `INTROSPECTION_CLIENTS`.
/// Anything else — no header, another scheme, bad encoding, a wrong id or secret — is 401
/// `invalid_client`, the same answer for each.
#[derive(Debug)]
struct ResourceServer;

impl FromRequestParts<AppState> for ResourceServer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credentials = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(basic_credentials);
        match credentials {
            Some((id, secret)) if state.settings.introspection_clients.verify(&id, &secret) => {
                Ok(Self)
            }
            _ => Err(ApiError::OAuth(
                OAuthErrorCode::InvalidClient,
                "client authentication failed".into(),
            )),
        }
    }
}

/// `Basic base64(id ":" secret)`, each part form-urlencoded first (RFC 6749 §2.3.1).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

fn form_decode(part: &str) -> Option<String> {
    let spaced = part.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(Cow::into_owned)
}

/// A form body; any rejection is `invalid_request` (RFC 6749 §5.2), except a body over the
/// limit, which is the 413 every route answers.
#[derive(Debug)]
struct OAuthForm<T>(T);

impl<S, T> FromRequest<S> for OAuthForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Form::<T>::from_request(req, state).await {
            Ok(Form(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::Client(
                    ErrorCode::PayloadTooLarge,
                    "request body is too large".into(),
                ))
            }
            Err(FormRejection::InvalidFormContentType(_)) => Err(ApiError::OAuth(
                OAuthErrorCode::InvalidRequest,
                "expected an application/x-www-form-urlencoded body".into(),
            )),
            Err(_) => Err(ApiError::OAuth(
                OAuthErrorCode::InvalidRequest,
                "the form is malformed or repeats a parameter".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_base64_of_form_encoded_parts() {
        let header = format!("Basic {}", STANDARD.encode("rs%3A1:s+e%2Bc"));
        assert_eq!(
            basic_credentials(&header),
            Some(("rs:1".into(), "s e+c".into()))
        );
        assert_eq!(
            basic_credentials(&format!("basic {}", STANDARD.encode("a:b"))),
            Some(("a".into(), "b".into()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(
            basic_credentials(&format!("Basic {}", STANDARD.encode("no-colon"))),
            None
        );
    }
}
