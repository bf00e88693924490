//! `ApiJson`: axum's `Json` with rejections mapped to the documented error body.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use tollgate_shared::ErrorCode;

use crate::error::ApiError;

/// A JSON request body. Too large → 413 `payload_too_large`; anything else wrong → 422
/// `invalid_input` with a message saying what.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(map_rejection(&rejection)),
        }
    }
}

fn map_rejection(rejection: &JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::Client(
            ErrorCode::PayloadTooLarge,
            "request body is too large".into(),
        );
    }
    let message = match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "expected a JSON body with content-type application/json".to_owned()
        }
        JsonRejection::JsonSyntaxError(_) => "request body is not valid JSON".to_owned(),
        // serde's message names the field and the expectation, e.g. "missing field `email`".
        JsonRejection::JsonDataError(e) => {
            let text = e.body_text();
            let detail = text.rsplit(": ").next().unwrap_or("invalid body");
            format!("invalid request body: {}", crate::domain::clip(detail, 200))
        }
        _ => "could not read the request body".to_owned(),
    };
    ApiError::invalid_input(message)
}
