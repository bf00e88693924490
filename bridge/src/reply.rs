//! Redis replies as Upstash's JSON: nil → `null`, integers → numbers, strings → strings, arrays →
//! arrays, error replies → `{"error": …}`.
//!
//! RESP3-only values (when `REDIS_URL` asks for `protocol=resp3`) are folded back into the RESP2
//! shapes Upstash clients expect: maps become flat `[k, v, …]` arrays, sets arrays, booleans 1/0,
//! and doubles, big numbers and verbatim strings become strings.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use redis::Value;
use serde_json::Value as Json;
use tollgate_shared::upstash::Reply;

/// How strings are put into JSON, chosen per request by the `Upstash-Encoding` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// No header: UTF-8 text; bytes that are not UTF-8 become U+FFFD, as Upstash documents.
    Text,
    /// `Upstash-Encoding: base64`: every string is base64 of its exact bytes, except a command's
    /// top-level `OK` status, which Upstash (and its client) leave as plain `"OK"`.
    Base64,
}

/// One command's reply as Upstash answers it.
pub(crate) fn to_reply(value: Value, encoding: Encoding) -> Reply {
    match value {
        Value::ServerError(error) => Reply::Error {
            error: server_error_text(error.code(), error.details()),
        },
        Value::Okay => Reply::Result {
            result: Json::String("OK".into()),
        },
        Value::SimpleString(s) if s == "OK" => Reply::Result {
            result: Json::String(s),
        },
        other => Reply::Result {
            result: to_json(other, encoding),
        },
    }
}

/// Redis's own wording for an error reply: `CODE detail`, e.g. `WRONGTYPE Operation against …`.
pub(crate) fn server_error_text(code: &str, detail: Option<&str>) -> String {
    match detail {
        Some(detail) if !detail.is_empty() => format!("{code} {detail}"),
        _ => code.to_owned(),
    }
}

fn to_json(value: Value, encoding: Encoding) -> Json {
    let array =
        |items: Vec<Value>| Json::Array(items.into_iter().map(|v| to_json(v, encoding)).collect());
    match value {
        Value::Nil => Json::Null,
        Value::Int(n) => Json::from(n),
        Value::Boolean(b) => Json::from(i64::from(b)),
        Value::BulkString(bytes) => string(&bytes, encoding),
        Value::SimpleString(s) => string(s.as_bytes(), encoding),
        Value::Okay => string(b"OK", encoding),
        Value::VerbatimString { text, .. } => string(text.as_bytes(), encoding),
        Value::Double(d) => string(format_double(d).as_bytes(), encoding),
        Value::BigNumber(n) => string(n.to_string().as_bytes(), encoding),
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => array(items),
        Value::Map(pairs) => array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        Value::Attribute { data, .. } => to_json(*data, encoding),
        // An error inside an array (a script's table, say) keeps Upstash's error shape.
        Value::ServerError(error) => {
            serde_json::json!({ "error": server_error_text(error.code(), error.details()) })
        }
    }
}

fn string(bytes: &[u8], encoding: Encoding) -> Json {
    Json::String(match encoding {
        Encoding::Text => String::from_utf8_lossy(bytes).into_owned(),
        Encoding::Base64 => STANDARD.encode(bytes),
    })
}

/// Doubles as RESP2 would have sent them, as text (`1.5`, `inf`, `-inf`, `nan`).
fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        d.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(value: Value, encoding: Encoding) -> Json {
        serde_json::to_value(to_reply(value, encoding)).expect("serializable")
    }

    #[test]
    fn plain_values_map_to_json() {
        let enc = Encoding::Text;
        assert_eq!(result(Value::Nil, enc), json!({"result": null}));
        assert_eq!(result(Value::Int(-3), enc), json!({"result": -3}));
        assert_eq!(result(Value::Okay, enc), json!({"result": "OK"}));
        assert_eq!(
            result(Value::BulkString(b"caf\xc3\xa9 \xff".to_vec()), enc),
            json!({"result": "café \u{fffd}"})
        );
        let nested = Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::Nil,
            Value::Array(vec![Value::Int(1)]),
        ]);
        assert_eq!(result(nested, enc), json!({"result": ["a", null, [1]]}));
    }

    #[test]
    fn base64_encodes_every_string_except_the_top_level_ok() {
        let enc = Encoding::Base64;
        assert_eq!(result(Value::Okay, enc), json!({"result": "OK"}));
        assert_eq!(
            result(Value::SimpleString("PONG".into()), enc),
            json!({"result": "UE9ORw=="})
        );
        assert_eq!(
            result(Value::BulkString(b"\xff\x00".to_vec()), enc),
            json!({"result": "/wA="})
        );
        let nested = Value::Array(vec![Value::Okay, Value::Int(2), Value::Nil]);
        assert_eq!(result(nested, enc), json!({"result": ["T0s=", 2, null]}));
    }

    #[test]
    fn resp3_values_fold_into_resp2_shapes_and_errors_keep_their_code() {
        let enc = Encoding::Text;
        let map = Value::Map(vec![(Value::BulkString(b"f".to_vec()), Value::Double(1.5))]);
        assert_eq!(result(map, enc), json!({"result": ["f", "1.5"]}));
        assert_eq!(result(Value::Boolean(true), enc), json!({"result": 1}));
        let err = redis::parse_redis_value(
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        )
        .expect("parses");
        assert!(matches!(err, Value::ServerError(_)));
        assert_eq!(
            result(err, enc),
            json!({"error": "WRONGTYPE Operation against a key holding the wrong kind of value"})
        );
    }
}
