//! `parse_validation_replies` on arbitrary bytes: a body is used only if it is exactly two
//! replies of null or text, and then the values read are exactly those replies'.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_shared::upstash::parse_validation_replies;

fuzz_target!(|data: &[u8]| {
    let Ok(lookup) = parse_validation_replies(data) else {
        return;
    };
    let body: serde_json::Value = serde_json::from_slice(data).expect("an accepted body is JSON");
    let replies = body.as_array().expect("an accepted body is an array");
    assert_eq!(replies.len(), 2, "accepted {} replies", replies.len());
    for (reply, value) in replies
        .iter()
        .zip([&lookup.jti_record, &lookup.user_version])
    {
        let result = reply.get("result").expect("an accepted reply has a result");
        match value {
            None => assert!(result.is_null(), "read null from {reply}"),
            Some(text) => assert_eq!(result.as_str(), Some(text.as_str()), "misread {reply}"),
        }
    }
});
