//! The claims fixture: one access-token claim set shaped like the origin's, so every benchmark,
//! fuzz target and property test measures and mutates the same thing.

use tollgate_shared::records::JtiRecord;
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

/// The jti record the origin stores for `claims` (field `j:{jti}` of `tg:{sub}`), encoded as a
/// lookup returns it.
pub fn jti_record(claims: &AccessClaims) -> String {
    JtiRecord {
        exp: claims.exp,
        token_id: claims.sid.clone(),
        token_version: claims.ver,
    }
    .encode()
}
