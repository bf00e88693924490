//! The one error type of the bridge and its one HTTP rendering.
//!
//! Bodies are Upstash's `{"error": "<text>"}`, because Upstash clients read exactly that field
//! (`@upstash/redis` throws `body.error`), plus Tollgate's `code` from
//! [`tollgate_shared::ErrorCode`] so a Tollgate caller sees the same codes as from the origin and
//! the edge. Statuses follow Upstash's table (400 for every bad or failed command), not
//! [`ErrorCode::status`](tollgate_shared::ErrorCode::status), since Upstash clients key on them.

use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tollgate_shared::error::WWW_AUTHENTICATE_INVALID_TOKEN;
use tollgate_shared::ErrorCode;

use crate::command::SyntaxError;
use crate::upstream::Unavailable;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// No token, or not one of ours.
    #[error("Unauthorized")]
    Unauthorized { missing: bool },
    /// Malformed request, refused command, or a command Redis answered with an error; the text
    /// is Redis-style (`ERR …`, `NOPERM …`, `WRONGTYPE …`).
    #[error("{0}")]
    BadRequest(String),
    #[error("ERR method not allowed")]
    MethodNotAllowed,
    #[error("ERR not found")]
    NotFound,
    #[error("ERR request body too large")]
    PayloadTooLarge,
    /// Redis could not be reached in time; the cause is logged, not sent.
    #[error("ERR Redis is unavailable")]
    Unavailable,
}

impl BridgeError {
    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            Self::Unauthorized { missing: true } => {
                (StatusCode::UNAUTHORIZED, ErrorCode::TokenMissing)
            }
            Self::Unauthorized { missing: false } => {
                (StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredentials)
            }
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidInput),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed),
            Self::NotFound => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
        }
    }
}

impl From<Unavailable> for BridgeError {
    /// The one place the cause of a 503 is logged.
    fn from(cause: Unavailable) -> Self {
        tracing::warn!(%cause, "Redis unavailable");
        Self::Unavailable
    }
}

impl From<SyntaxError> for BridgeError {
    fn from(e: SyntaxError) -> Self {
        Self::BadRequest(e.to_string())
    }
}

impl From<BytesRejection> for BridgeError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge
        } else {
            Self::BadRequest("ERR could not read the request body".into())
        }
    }
}

/// `error` first, so the body reads like Upstash's.
#[derive(serde::Serialize)]
struct Body {
    error: String,
    code: ErrorCode,
}

impl IntoResponse for BridgeError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = Body {
            error: self.to_string(),
            code,
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE_INVALID_TOKEN),
            );
        }
        response
    }
}
