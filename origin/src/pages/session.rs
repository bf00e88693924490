//! The page session: a normal Tollgate device session (one row in `device_sessions`, listed and
//! revocable like any phone), whose access and refresh tokens live only in cookies that are
//! `HttpOnly` (no script reads them — there is none, and an injected one could not either),
//! `Secure`, `SameSite=Strict` and scoped to `/account`. Revoking it from any other device
//! kills both tokens, so the page is signed out on its next request.
//!
//! The access cookie is checked by the same bearer pipeline as the API
//! ([`crate::auth::check_authorization`]); when it is expired or gone, the refresh cookie is
//! rotated by the API's own [`crate::routes::users::rotate_refresh`] and both cookies renewed.
//!
//! CSRF: besides `SameSite=Strict` and the origin check ([`super::guard`]), every form carries a
//! synchronizer token made at login, whose hash `page_sessions` binds to this device session;
//! a form is honoured only with the token of the very session that sends it.

use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, IntoResponseParts, Redirect, Response, ResponseParts};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cookie::{Cookie, SameSite};
use rand::RngCore as _;
use serde::Deserialize;
use tollgate_shared::{ErrorCode, Identity};

use crate::auth::check_authorization;
use crate::db::UserRow;
use crate::domain;
use crate::error::ApiError;
use crate::routes::users::{rotate_refresh, Issued};
use crate::state::AppState;

pub const ACCESS_COOKIE: &str = "__Secure-tg_at";
pub const REFRESH_COOKIE: &str = "__Secure-tg_rt";
pub const CSRF_COOKIE: &str = "__Secure-tg_csrf";
/// The login form's own double-submit token, before there is a session to bind one to.
pub const LOGIN_COOKIE: &str = "__Secure-tg_login";
const LOGIN_PATH: &str = "/account/login";
/// CSRF tokens are 43 characters; anything much longer is junk.
const MAX_CSRF_CHARS: usize = 64;

/// Why a page request did not get through.
#[derive(Debug)]
pub enum PageError {
    /// No live page session: to the login form, with the session cookies cleared.
    SignedOut,
    /// Refused as a forgery, or not allowed: a 403 page saying why; nothing changed.
    Refused(&'static str),
    /// Anything else: the documented JSON error body and status.
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        Self::Api(e.into())
    }
}

impl From<crate::redis::StoreError> for PageError {
    fn from(e: crate::redis::StoreError) -> Self {
        Self::Api(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::SignedOut => (SetCookies::cleared(), Redirect::to(LOGIN_PATH)).into_response(),
            Self::Refused(why) => super::refused(why),
            Self::Api(e) => e.into_response(),
        }
    }
}

/// `Set-Cookie` headers for a response.
#[derive(Debug, Default)]
pub struct SetCookies(Vec<HeaderValue>);

impl SetCookies {
    /// The session's three cookies after a login or a rotation.
    pub(crate) fn session(state: &AppState, issued: &Issued, csrf: Option<&str>) -> Self {
        let s = &state.settings;
        let mut out = Self::default();
        out.push(ACCESS_COOKIE, &issued.minted.access_token, s.access_ttl);
        out.push(REFRESH_COOKIE, &issued.refresh_token, s.refresh_ttl);
        if let Some(csrf) = csrf {
            out.push(CSRF_COOKIE, csrf, s.refresh_ttl);
        }
        out
    }

    /// Removes the session's cookies (signing out).
    pub fn cleared() -> Self {
        let mut out = Self::default();
        for name in [ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE] {
            out.push(name, "", 0);
        }
        out
    }

    /// The login form's token, scoped to the login form alone.
    pub fn login_token(token: &str, max_age: u64) -> Self {
        let mut out = Self::default();
        out.push_at(LOGIN_COOKIE, token, max_age, LOGIN_PATH);
        out
    }

    fn push(&mut self, name: &'static str, value: &str, max_age: u64) {
        self.push_at(name, value, max_age, super::BASE);
    }

    fn push_at(&mut self, name: &'static str, value: &str, max_age: u64, path: &'static str) {
        let cookie = Cookie::build((name, value))
            .path(path)
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Strict)
            .max_age(time::Duration::seconds(
                i64::try_from(max_age).unwrap_or(i64::MAX),
            ))
            .build();
        if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
            self.0.push(v);
        }
    }

    pub fn and(mut self, other: Self) -> Self {
        self.0.extend(other.0);
        self
    }
}

impl IntoResponseParts for SetCookies {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        for v in self.0 {
            res.headers_mut().append(SET_COOKIE, v);
        }
        Ok(res)
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A fresh random token (256 bits, base64url) for CSRF.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Constant-time equality of two presented strings.
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A signed-in page request: whose device session it is, and the renewed cookies to send back
/// if the access token had to be refreshed on the way.
#[derive(Debug)]
pub struct PageSession {
    pub identity: Identity,
    /// The CSRF token to put in this page's forms (from its cookie).
    pub csrf: String,
    renewed: SetCookies,
}

impl PageSession {
    /// The cookies this response must set (empty unless the tokens were just rotated).
    pub fn cookies(self) -> SetCookies {
        self.renewed
    }

    /// The signed-in user's row; signed out if the account is gone meanwhile.
    pub async fn user(&self, state: &AppState) -> Result<UserRow, PageError> {
        let user = state.db.user_by_id(&self.identity.user_id).await?;
        user.ok_or(PageError::SignedOut)
    }

    /// Refuses unless `presented` is this session's CSRF token.
    async fn check_csrf(&self, state: &AppState, presented: &str) -> Result<(), PageError> {
        const FORGED: &str = "The form's security token is missing or wrong, so nothing was \
                              changed. Reload the page and try again.";
        if presented.is_empty() || presented.len() > MAX_CSRF_CHARS {
            return Err(PageError::Refused(FORGED));
        }
        let id = &self.identity;
        let Some(hash) = state.db.page_csrf_hash(&id.token_id, &id.user_id).await? else {
            return Err(PageError::Refused(FORGED));
        };
        if same_secret(&domain::hash_refresh_secret(presented), &hash) {
            Ok(())
        } else {
            tracing::warn!(user_id = %id.user_id, token_id = %id.token_id, "form with a wrong CSRF token refused");
            Err(PageError::Refused(FORGED))
        }
    }
}

impl FromRequestParts<AppState> for PageSession {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let csrf = cookie(&parts.headers, CSRF_COOKIE).unwrap_or_default();
        if let Some(access) = cookie(&parts.headers, ACCESS_COOKIE) {
            match check_authorization(state, Some(&format!("Bearer {access}"))).await {
                Ok(identity) => {
                    return Ok(Self {
                        identity,
                        csrf,
                        renewed: SetCookies::default(),
                    })
                }
                // Expired, revoked, anything: the refresh token decides.
                Err(ApiError::Token(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let refresh = cookie(&parts.headers, REFRESH_COOKIE).ok_or(PageError::SignedOut)?;
        let issued = match rotate_refresh(state, refresh).await {
            Ok(issued) => issued,
            Err(ApiError::Client(
                ErrorCode::InvalidRefreshToken | ErrorCode::RefreshTokenReused,
                _,
            )) => return Err(PageError::SignedOut),
            Err(e) => return Err(e.into()),
        };
        let bearer = format!("Bearer {}", issued.minted.access_token);
        let identity = match check_authorization(state, Some(&bearer)).await {
            Ok(identity) => identity,
            Err(ApiError::Token(_)) => return Err(PageError::SignedOut),
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            identity,
            csrf,
            renewed: SetCookies::session(state, &issued, None),
        })
    }
}

#[derive(Debug, Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A signed-in form post carrying this session's CSRF token: what every state-changing page
/// handler takes, so none can forget the check.
#[derive(Debug)]
pub struct Verified(pub PageSession);

impl FromRequest<AppState> for Verified {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, PageError> {
        let (mut parts, body) = req.into_parts();
        let session = PageSession::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let Form(field) = Form::<CsrfField>::from_request(req, state)
            .await
            .map_err(|_| PageError::Refused("The form could not be read; nothing was changed."))?;
        session.check_csrf(state, &field.csrf).await?;
        Ok(Self(session))
    }
}
