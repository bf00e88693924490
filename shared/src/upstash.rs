//! Upstash REST wire types (<https://upstash.com/docs/redis/features/restapi>), shared by the
//! edge's client and the REST bridge's server.
//!
//! A command is a JSON array (`["SET","k","v","EX",100]`); `/pipeline` and `/multi-exec` take an
//! array of commands and answer one [`Reply`] per command, in order.

use serde::{Deserialize, Serialize};

use crate::claims::AccessClaims;
use crate::keys::{field, KeySchema};

/// One command as sent: the name then its arguments, all strings.
pub type Command = Vec<String>;

/// One command's outcome: `{"result": …}` or `{"error": "…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reply {
    Result { result: serde_json::Value },
    Error { error: String },
}

/// Why an Upstash answer could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpstashError {
    #[error("Upstash answered with a body that is not the expected JSON")]
    Decode,
    #[error("Upstash command failed: {0}")]
    Command(String),
    #[error("Upstash answered {0} replies, expected {1}")]
    Arity(usize, usize),
}

/// The single `/pipeline` request a protected request costs: one `HMGET` of the user's hash for
/// the token's record and the user's current version (one key, so one slot on a cluster).
pub fn validation_pipeline(keys: &KeySchema, claims: &AccessClaims) -> Vec<Command> {
    vec![vec![
        "HMGET".into(),
        keys.user(&claims.sub),
        field::jti(&claims.jti),
        field::VERSION.into(),
    ]]
}

/// The two values every protected request is decided on, read in one round trip: the `HMGET`
/// of [`validation_pipeline`], at the edge through Upstash and at the origin over TCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationLookup {
    pub jti_record: Option<String>,
    pub user_version: Option<String>,
}

/// Reads the `/pipeline` answer to [`validation_pipeline`]. Any per-command error or unexpected
/// shape is an error (the caller fails closed with 503), never a guess.
pub fn parse_validation_replies(body: &[u8]) -> Result<ValidationLookup, UpstashError> {
    let mut replies: Vec<Reply> = serde_json::from_slice(body).map_err(|_| UpstashError::Decode)?;
    if replies.len() != 1 {
        return Err(UpstashError::Arity(replies.len(), 1));
    }
    let values = match replies.pop() {
        Some(Reply::Result {
            result: serde_json::Value::Array(values),
        }) => values,
        Some(Reply::Error { error }) => return Err(UpstashError::Command(error)),
        _ => return Err(UpstashError::Decode),
    };
    let [jti_record, user_version] = <[serde_json::Value; 2]>::try_from(values)
        .map_err(|v| UpstashError::Arity(v.len(), 2))?
        .map(|value| match value {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(s) => Ok(Some(s)),
            _ => Err(UpstashError::Decode),
        });
    Ok(ValidationLookup {
        jti_record: jti_record?,
        user_version: user_version?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_nulls_and_errors() {
        let ok = parse_validation_replies(br#"[{"result":["1.s.3","4"]}]"#).expect("ok");
        assert_eq!(ok.jti_record.as_deref(), Some("1.s.3"));
        assert_eq!(ok.user_version.as_deref(), Some("4"));
        let gone = parse_validation_replies(br#"[{"result":[null,"4"]}]"#).expect("ok");
        assert_eq!(gone.jti_record, None);
        assert_eq!(
            parse_validation_replies(br#"[{"error":"WRONGTYPE"}]"#),
            Err(UpstashError::Command("WRONGTYPE".into()))
        );
        for bad in [
            &br#"[{"result":["x"]}]"#[..],
            br#"[{"result":["x","4","5"]}]"#,
            br#"[{"result":[1,"4"]}]"#,
            br#"[{"result":"x"}]"#,
            br#"[{"result":["x","4"]},{"result":["x","4"]}]"#,
            br#"[]"#,
            br#"{"error":"nope"}"#,
            b"\xff",
        ] {
            assert!(parse_validation_replies(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_lookup_is_one_hmget_of_the_users_hash() {
        let claims = crate::claims::AccessClaims {
            sub: "u1".into(),
            jti: "j1".into(),
            ver: 0,
            sid: "s1".into(),
            iat: 0,
            exp: 1,
            nbf: None,
            iss: String::new(),
            aud: String::new(),
        };
        assert_eq!(
            validation_pipeline(&KeySchema::new("p:"), &claims),
            vec![vec!["HMGET", "p:tg:{u1}", "j:j1", "v"]]
        );
    }
}
