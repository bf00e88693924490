//! The notes API's one error type, answered in Tollgate's JSON error body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tollgate_shared::{ErrorBody, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Logged here with its cause, answered as a bare 500 (or 503 when the database is busy).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl NotesError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput(_) => ErrorCode::InvalidInput,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::NotFound => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::Database(sqlx::Error::PoolTimedOut) => ErrorCode::Unavailable,
            Self::Database(_) => ErrorCode::Internal,
        }
    }
}

impl IntoResponse for NotesError {
    fn into_response(self) -> Response {
        let code = self.code();
        let message = match &self {
            Self::Database(e) => {
                tracing::error!(error = %e, "notes database call failed");
                match code {
                    ErrorCode::Unavailable => "temporarily unavailable".to_owned(),
                    _ => "internal error".to_owned(),
                }
            }
            other => other.to_string(),
        };
        let status =
            StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ErrorBody::new(code, message))).into_response()
    }
}
