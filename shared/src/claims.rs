//! The access-token claim set.

use serde::{Deserialize, Serialize};

/// Claims of a Tollgate access token.
///
/// `jti` names this one token (its Redis record is what logout deletes); `ver` is the user's
/// `token_version` at issue time (logout-all bumps it); `sid` is the device session (`token_id`)
/// the token was minted for, stable across refresh rotations.
///
/// Deserialising rejects duplicate keys (serde's derive does), so a payload cannot smuggle a
/// second `sub` past one parser and not another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub jti: String,
    pub ver: u64,
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub iss: String,
    pub aud: String,
}
