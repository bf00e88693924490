//! The claims fixture: one access-token claim set shaped like the origin's, so every benchmark,
//! fuzz target and property test measures and mutates the same thing.

use tollgate_shared::records::{DeviceInfo, JtiRecord};
use tollgate_shared::AccessClaims;

/// Claims the origin could have issued at `iat`, valid until `exp`: UUID ids, token version 3,
/// the default issuer (`tollgate`) and audience (`tollgate-api`).
pub fn access_claims(iat: i64, exp: i64) -> AccessClaims {
    AccessClaims {
        sub: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
        jti: "7c9e6679-7425-40de-944b-e07fc1f90ae7".into(),
        ver: 3,
        sid: "16fd2706-8baf-433b-82eb-8c7fada847da".into(),
        iat,
        exp,
        nbf: None,
        iss: "tollgate".into(),
        aud: "tollgate-api".into(),
    }
}

/// The jti record the origin stores for `claims` (`token:jti:{jti}`), from a laptop with a
/// browser user agent: the size a real lookup returns.
pub fn jti_record(claims: &AccessClaims) -> JtiRecord {
    JtiRecord {
        user_id: claims.sub.clone(),
        token_version: claims.ver,
        token_id: claims.sid.clone(),
        device_info: DeviceInfo {
            device_name: Some("laptop".into()),
            ip: Some("203.0.113.7".into()),
            user_agent: Some(
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into(),
            ),
        },
        created_at: "2026-05-28T20:26:40Z".into(),
    }
}
