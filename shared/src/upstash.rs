//! Upstash REST wire types (<https://upstash.com/docs/redis/features/restapi>), shared by the
//! edge's client and the REST bridge's server.
//!
//! A command is a JSON array (`["SET","k","v","EX",100]`); `/pipeline` and `/multi-exec` take an
//! array of commands and answer one [`Reply`] per command, in order.

use serde::{Deserialize, Serialize};

use crate::claims::AccessClaims;
use crate::keys::KeySchema;

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

/// The single `/pipeline` request a protected request costs: the jti record and the user's
/// current version.
pub fn validation_pipeline(keys: &KeySchema, claims: &AccessClaims) -> Vec<Command> {
    vec![
        vec!["GET".into(), keys.jti(&claims.jti)],
        vec!["GET".into(), keys.user_version(&claims.sub)],
    ]
}

/// The two values every protected request is decided on, read in one round trip: the two `GET`s
/// of [`validation_pipeline`] at the edge, one `MGET` at the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationLookup {
    pub jti_record: Option<String>,
    pub user_version: Option<String>,
}

/// Reads the `/pipeline` answer to [`validation_pipeline`]. Any per-command error or unexpected
/// shape is an error (the caller fails closed with 503), never a guess.
pub fn parse_validation_replies(body: &[u8]) -> Result<ValidationLookup, UpstashError> {
    let replies: Vec<Reply> = serde_json::from_slice(body).map_err(|_| UpstashError::Decode)?;
    if replies.len() != 2 {
        return Err(UpstashError::Arity(replies.len(), 2));
    }
    let mut values = replies.into_iter().map(|reply| match reply {
        Reply::Result {
            result: serde_json::Value::Null,
        } => Ok(None),
        Reply::Result {
            result: serde_json::Value::String(s),
        } => Ok(Some(s)),
        Reply::Result { .. } => Err(UpstashError::Decode),
        Reply::Error { error } => Err(UpstashError::Command(error)),
    });
    let jti_record = values.next().ok_or(UpstashError::Decode)??;
    let user_version = values.next().ok_or(UpstashError::Decode)??;
    Ok(ValidationLookup {
        jti_record,
        user_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_nulls_and_errors() {
        let ok = parse_validation_replies(br#"[{"result":"{}"},{"result":"4"}]"#).expect("ok");
        assert_eq!(ok.jti_record.as_deref(), Some("{}"));
        assert_eq!(ok.user_version.as_deref(), Some("4"));
        let gone = parse_validation_replies(br#"[{"result":null},{"result":"4"}]"#).expect("ok");
        assert_eq!(gone.jti_record, None);
        assert!(matches!(
            parse_validation_replies(br#"[{"error":"WRONGTYPE"},{"result":"4"}]"#),
            Err(UpstashError::Command(_))
        ));
        assert!(parse_validation_replies(br#"[{"result":"x"}]"#).is_err());
        assert!(parse_validation_replies(br#"{"error":"nope"}"#).is_err());
        assert!(parse_validation_replies(b"\xff").is_err());
    }
}
