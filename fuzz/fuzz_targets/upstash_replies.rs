//! `parse_validation_replies` on arbitrary bytes: a body is used only if it is exactly one reply
//! whose result is an array of exactly two values of null or text (the `HMGET` of the user's
//! hash), and then the values read are exactly those.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_shared::upstash::parse_validation_replies;

fuzz_target!(|data: &[u8]| {
    let Ok(lookup) = parse_validation_replies(data) else {
        return;
    };
    let body: serde_json::Value = serde_json::from_slice(data).expect("an accepted body is JSON");
    let replies = body.as_array().expect("an accepted body is an array");
    assert_eq!(replies.len(), 1, "accepted {} replies", replies.len());
    let values = replies[0]
        .get("result")
        .and_then(serde_json::Value::as_array)
        .expect("an accepted reply's result is an array");
    assert_eq!(values.len(), 2, "accepted {} values", values.len());
    for (result, value) in values.iter().zip([&lookup.jti_record, &lookup.user_version]) {
        match value {
            None => assert!(result.is_null(), "read null from {result}"),
            Some(text) => assert_eq!(result.as_str(), Some(text.as_str()), "misread {result}"),
        }
    }
});
