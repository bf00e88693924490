//! The origin's one error type and its one `IntoResponse`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tollgate_shared::error::{ErrorBody, WWW_AUTHENTICATE_INVALID_TOKEN};
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
}

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

impl From<crate::redis::StoreError> for ApiError {
    fn from(e: crate::redis::StoreError) -> Self {
        Self::Unavailable(anyhow::Error::new(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
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
        };
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            ErrorBody::new(code, message).to_json(),
        )
            .into_response();
        let headers = response.headers_mut();
        if code.is_bearer_rejection() {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE_INVALID_TOKEN),
            );
        }
        match self {
            Self::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
