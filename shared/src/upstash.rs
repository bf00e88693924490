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
///
/// Read with [`crate::json`] into the few shapes this answer can take, not into [`Reply`]: an
/// untagged enum over `serde_json::Value` is the costliest JSON there is to read, and this runs
/// in the edge's wasm on every protected request. It decides as reading `Vec<Reply>` does (a
/// `result` member wins over an `error` one; a reply with no single `result` must give one string `error`), except that a
/// float in a reply's `result` or `error` is refused outright ([`crate::json`] reads no floats;
/// a float in any other member is skipped, as before).
pub fn parse_validation_replies(body: &[u8]) -> Result<ValidationLookup, UpstashError> {
    let mut replies: Vec<ReplyShape> =
        crate::json::from_slice(body).map_err(|_| UpstashError::Decode)?;
    if replies.len() != 1 {
        return Err(UpstashError::Arity(replies.len(), 1));
    }
    let values = match replies.pop().map(ReplyShape::into_outcome) {
        Some(Ok(values)) => values,
        Some(Err(Some(error))) => return Err(UpstashError::Command(error)),
        _ => return Err(UpstashError::Decode),
    };
    let [jti_record, user_version] = <[Scalar; 2]>::try_from(values)
        .map_err(|v| UpstashError::Arity(v.len(), 2))?
        .map(|value| match value {
            Scalar::Null => Ok(None),
            Scalar::Str(s) => Ok(Some(s)),
            Scalar::Other => Err(UpstashError::Decode),
        });
    Ok(ValidationLookup {
        jti_record: jti_record?,
        user_version: user_version?,
    })
}

/// One reply of a `/pipeline` answer as [`parse_validation_replies`] reads it: an object whose
/// `result` (when given once) and `error` (when given once) it keeps. Read as an object only,
/// member by member, so that it picks the variant exactly as the untagged [`Reply`] does.
#[derive(Debug, Default)]
struct ReplyShape {
    /// How many `result` members; the first one's array, if it is one.
    results: usize,
    result: Option<Vec<Scalar>>,
    /// How many `error` members; the first one's value.
    errors: usize,
    error: Option<Scalar>,
}

impl ReplyShape {
    /// The reply as [`Reply`] would read it: `Ok(values)` for a single `result` that is an
    /// array, `Err(Some(message))` for a single string `error` (and no single `result`),
    /// `Err(None)` for anything else.
    fn into_outcome(self) -> Result<Vec<Scalar>, Option<String>> {
        if self.results == 1 {
            return self.result.ok_or(None);
        }
        match (self.errors, self.error) {
            (1, Some(Scalar::Str(message))) => Err(Some(message)),
            _ => Err(None),
        }
    }
}

impl<'de> Deserialize<'de> for ReplyShape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ReplyVisitor)
    }
}

struct ReplyVisitor;

impl<'de> serde::de::Visitor<'de> for ReplyVisitor {
    type Value = ReplyShape;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a reply object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ReplyShape, A::Error> {
        let mut reply = ReplyShape::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "result" => {
                    let value = map.next_value_seed(ArrayOrOther)?;
                    reply.results += 1;
                    if reply.results == 1 {
                        reply.result = value;
                    }
                }
                "error" => {
                    let value = map.next_value::<Scalar>()?;
                    reply.errors += 1;
                    if reply.errors == 1 {
                        reply.error = Some(value);
                    }
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        // As the untagged `Reply`, a reply that is neither variant fails the whole answer.
        match (reply.results, reply.errors, &reply.error) {
            (1, _, _) | (_, 1, Some(Scalar::Str(_))) => Ok(reply),
            _ => Err(serde::de::Error::custom(
                "a reply needs one result or one string error",
            )),
        }
    }
}

/// A `result` value: `Some` with its elements if it is an array, `None` for anything else.
struct ArrayOrOther;

impl<'de> serde::de::DeserializeSeed<'de> for ArrayOrOther {
    type Value = Option<Vec<Scalar>>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ArrayOrOther {
    type Value = Option<Vec<Scalar>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = seq.next_element()? {
            values.push(value);
        }
        Ok(Some(values))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Scalar::drain_map(map).map(|_| None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A JSON value as far as a reply needs it: a string, `null`, or anything else.
#[derive(Debug, PartialEq, Eq)]
enum Scalar {
    Str(String),
    Null,
    Other,
}

impl Scalar {
    fn drain_map<'de, A: serde::de::MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Self::Other)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> serde::de::Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_str<E>(self, s: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(s.to_owned()))
    }

    fn visit_unit<E>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
        Scalar::drain_map(map)
    }
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

    /// The reading this one replaced: `Vec<Reply>` (untagged, over `serde_json::Value`).
    fn through_reply(body: &[u8]) -> Result<ValidationLookup, UpstashError> {
        let mut replies: Vec<Reply> =
            serde_json::from_slice(body).map_err(|_| UpstashError::Decode)?;
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

    /// Where the two readings may differ: a float anywhere (this reader reads none), or a
    /// reply given as an array (read positionally by serde's untagged enum, refused here).
    fn may_differ(body: &[u8]) -> bool {
        let positional = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.as_array().map(|r| r.iter().any(|r| r.is_array())))
            .unwrap_or(false);
        positional || has_float(body)
    }

    /// Whether a number outside the strings of `body` is one serde_json reads as a float
    /// (looked for in the text: a `Value` keeps only the last of duplicate members).
    fn has_float(body: &[u8]) -> bool {
        let text = String::from_utf8_lossy(body);
        let (mut in_string, mut escaped, mut number) = (false, false, String::new());
        let is_float = |n: &str| {
            n.contains(['.', 'e', 'E'])
                || n == "-0"
                || (n.parse::<u64>().is_err() && n.parse::<i64>().is_err())
        };
        for c in text.chars().chain([' ']) {
            if in_string {
                (in_string, escaped) = match (escaped, c) {
                    (false, '\\') => (true, true),
                    (false, '"') => (false, false),
                    _ => (true, false),
                };
            } else if c.is_ascii_digit()
                || c == '-'
                || (!number.is_empty() && matches!(c, '+' | '.' | 'e' | 'E'))
            {
                number.push(c);
            } else {
                if !number.is_empty() && is_float(&number) {
                    return true;
                }
                number.clear();
                in_string = c == '"';
            }
        }
        false
    }

    fn same_as_through_reply(body: &[u8]) {
        let ours = parse_validation_replies(body);
        let theirs = through_reply(body);
        if ours != theirs {
            assert!(
                ours == Err(UpstashError::Decode) && may_differ(body),
                "{:?}: ours {ours:?}, through Reply {theirs:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// Replies as an Upstash-like server might write them, members duplicated and all.
    fn replies() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let scalar = prop_oneof![
            Just("null".to_owned()),
            "[a-z0-9.]{0,6}".prop_map(|s| format!("{s:?}")),
            any::<i64>().prop_map(|n| n.to_string()),
            Just("1.5".to_owned()),
            Just("true".to_owned()),
            Just(r#"["x"]"#.to_owned()),
            Just(r#"{"a":null}"#.to_owned()),
        ];
        let result = prop_oneof![
            prop::collection::vec(scalar.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            scalar.clone(),
        ];
        let member = prop_oneof![
            result.prop_map(|r| format!(r#""result":{r}"#)),
            scalar.clone().prop_map(|e| format!(r#""error":{e}"#)),
            scalar.prop_map(|x| format!(r#""other":{x}"#)),
        ];
        let reply = prop_oneof![
            prop::collection::vec(member.clone(), 0..4)
                .prop_map(|m| format!("{{{}}}", m.join(","))),
            prop::collection::vec(member, 0..2).prop_map(|m| format!("[{}]", m.join(","))),
        ];
        prop::collection::vec(reply, 0..3).prop_map(|r| format!("[{}]", r.join(",")))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5000))]

        #[test]
        fn reads_replies_as_the_untagged_reply_did(body in replies()) {
            same_as_through_reply(body.as_bytes());
        }
    }

    #[test]
    fn reads_the_answers_that_matter_as_the_untagged_reply_did() {
        for body in [
            &br#"[{"result":["1.s.3","4"]}]"#[..],
            br#"[{"result":[null,null]}]"#,
            br#"[{"result":["a","b"],"error":"e"}]"#,
            br#"[{"error":"e","result":["a","b"]}]"#,
            br#"[{"result":["a","b"],"result":["c","d"],"error":"e"}]"#,
            br#"[{"result":["a","b"],"error":"e","error":"f"}]"#,
            br#"[{"error":"e","error":"f"}]"#,
            br#"[{"error":5}]"#,
            br#"[{"result":null}]"#,
            br#"[{"result":["a",["b"]]}]"#,
            br#"[{"result":["a",{"b":1}]}]"#,
            br#"[{"result":["x",5,"y"]}]"#,
            br#"[{"result":["a","b"],"x":{"y":[1,2,{"z":null}]}}]"#,
            br#" [ { "result" : [ "a" , "b" ] } ] "#,
            br#"[{"result":["a","b"]}"#,
            br#"[{"result":["\ud800","b"]}]"#,
        ] {
            same_as_through_reply(body);
        }
        // The allowance above is narrow: booleans and strings are no floats.
        assert!(!may_differ(
            br#"[{"result":[true,"1.5e3"]},{"error":false}]"#
        ));
        assert!(has_float(br#"[{"x":-0}]"#) && has_float(b"[1e2]"));
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
