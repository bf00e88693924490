//! JSON values stored in Redis, in the seed's camelCase layout.

use serde::{Deserialize, Serialize};

/// The device a token was issued to, as reported at login.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    #[serde(default)]
    pub device_name: Option<String>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// Stored under `token:jti:{jti}` for as long as the access token lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JtiRecord {
    pub user_id: String,
    pub token_version: u64,
    /// The device session (`token_id`) this access token belongs to.
    pub token_id: String,
    pub device_info: DeviceInfo,
    /// RFC 3339, set by the origin.
    pub created_at: String,
}

/// Stored under `refresh:{tokenId}`: a mirror of the SQL device session's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshStatus {
    pub user_id: String,
    pub is_revoked: bool,
    pub updated_at: String,
}
