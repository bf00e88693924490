//! The origin's one error type and its one `IntoResponse`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tollgate_shared::error::{error_headers, ErrorBody};
use tollgate_shared::{ErrorCode, Rejection};

/// Everything a handler can fail with. Internal causes are logged here, once, and never sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A client mistake with a specific code and a message safe to show.
    #[error("{1}")]
    Client(ErrorCode, String),
    /// A bearer token refused by the validation layers.
    #[error("token rejected: {0:?}")]
    Token(Rejection),
    /// The edge's assertion is missing where required, or invalid.
    #[error("edge assertion rejected: {0}")]
    Assertion(tollgate_shared::assertion::AssertionError),
    /// Too many attempts; retry after this many seconds.
    #[error("rate limited")]
    RateLimited { retry_after: u64 },
    /// Redis (or another dependency) cannot be reached in time: fail closed.
    #[error("dependency unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// A bug or an unexpected database failure.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
    /// A client mistake on an OAuth endpoint (RFC 7009, RFC 7662): answered in RFC 6749 §5.2's
    /// shape, `{"error":"invalid_request","error_description":"…"}`, which OAuth clients parse.
    #[error("{1}")]
    OAuth(OAuthErrorCode, String),
}

/// The RFC 6749 §5.2 error codes the OAuth endpoints answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    /// 400: a parameter missing, repeated or malformed, or not a form body.
    InvalidRequest,
    /// 401: client authentication failed (introspection).
    InvalidClient,
}

/// RFC 6749 §5.2's error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OAuthErrorBody {
    pub error: OAuthErrorCode,
    pub error_description: String,
}

/// The challenge sent with `invalid_client` (RFC 6749 §5.2 asks for the scheme the client
/// should use).
pub const WWW_AUTHENTICATE_BASIC: &str = r#"Basic realm="tollgate-introspection""#;

impl ApiError {
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::Client(ErrorCode::InvalidInput, message.into())
    }

    pub fn not_found() -> Self {
        Self::Client(ErrorCode::NotFound, "not found".into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Client(code, _) => *code,
            Self::Token(r) => r.code(),
            Self::Assertion(tollgate_shared::assertion::AssertionError::Missing) => {
                ErrorCode::AssertionMissing
            }
            Self::Assertion(_) => ErrorCode::AssertionInvalid,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Internal(_) => ErrorCode::Internal,
            Self::OAuth(OAuthErrorCode::InvalidRequest, _) => ErrorCode::InvalidInput,
            Self::OAuth(OAuthErrorCode::InvalidClient, _) => ErrorCode::InvalidCredentials,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(anyhow::Error::new(e).context("database"))
            }
            other => Self::Internal(anyhow::Error::new(other).context("database")),
        }
    }
}

/// The one place a refused input becomes the documented 400.
impl From<crate::domain::InvalidInput> for ApiError {
    fn from(e: crate::domain::InvalidInput) -> Self {
        Self::invalid_input(e.0)
    }
}

impl From<crate::redis::StoreError> for ApiError {
    fn from(e: crate::redis::StoreError) -> Self {
        Self::Unavailable(anyhow::Error::new(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::OAuth(error, error_description) = self {
            return oauth_error(error, error_description);
        }
        let code = self.code();
        let message = match &self {
            Self::Client(_, m) => m.clone(),
            Self::Token(r) => r.message().to_owned(),
            Self::Assertion(e) => e.to_string(),
            Self::RateLimited { .. } => "too many attempts, retry later".to_owned(),
            Self::Unavailable(cause) => {
                tracing::warn!(error = %format!("{cause:#}"), "failing closed: dependency unavailable");
                "service temporarily unavailable".to_owned()
            }
            Self::Internal(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "internal error");
                "internal error".to_owned()
            }
            Self::OAuth(_, m) => m.clone(),
        };
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            ErrorBody::new(code, message).to_json(),
        )
            .into_response();
        let rate_limit = match self {
            Self::RateLimited { retry_after } => Some(retry_after),
            _ => None,
        };
        let headers = response.headers_mut();
        for (name, value) in error_headers(code, rate_limit) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

fn oauth_error(error: OAuthErrorCode, error_description: String) -> Response {
    let status = match error {
        OAuthErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
        OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
    };
    let body = OAuthErrorBody {
        error,
        error_description,
    };
    let mut response = (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(body),
    )
        .into_response();
    if error == OAuthErrorCode::InvalidClient {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(WWW_AUTHENTICATE_BASIC),
        );
    }
    response
}

pub type ApiResult<T> = Result<T, ApiError>;
