//! Who may call: `Authorization: Bearer <token>` or `?_token=<token>`, as Upstash accepts.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::command::Scope;
use crate::error::BridgeError;
use crate::Bridge;

/// A request that presented one of the bridge's tokens, and what that token may do.
#[derive(Debug, Clone)]
pub(crate) struct Authorized(pub(crate) Arc<Scope>);

impl FromRequestParts<Bridge> for Authorized {
    type Rejection = BridgeError;

    async fn from_request_parts(
        parts: &mut Parts,
        bridge: &Bridge,
    ) -> Result<Self, Self::Rejection> {
        let Some(presented) = bearer(parts).or_else(|| query_token(parts)) else {
            crate::monitoring::auth_failure(true);
            return Err(BridgeError::Unauthorized { missing: true });
        };
        bridge
            .access_for(&presented)
            .map(Authorized)
            .ok_or_else(|| {
                crate::monitoring::auth_failure(false);
                BridgeError::Unauthorized { missing: false }
            })
    }
}

fn bearer(parts: &Parts) -> Option<Vec<u8>> {
    let value = parts.headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"Bearer ")
        .then(|| token.trim_ascii().to_vec())
}

fn query_token(parts: &Parts) -> Option<Vec<u8>> {
    form_urlencoded::parse(parts.uri.query()?.as_bytes())
        .find(|(key, _)| key == "_token")
        .map(|(_, value)| value.into_owned().into_bytes())
}
