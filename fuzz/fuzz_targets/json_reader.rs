//! `shared::json` (the one JSON reader of tokens, assertions and key sets, at every hop) against
//! serde_json on arbitrary bytes, for each type it reads: both accept the same texts and read
//! the same values, or both refuse. The one deliberate difference is skipped: serde_json also
//! reads a struct from an array of its fields, `shared::json` only from an object (the struct
//! positions are the top level, and each of a key set's `keys`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use tollgate_shared::assertion::AssertionClaims;
use tollgate_shared::jwt::Jwks;
use tollgate_shared::{json, AccessClaims};

/// Whether serde_json read a struct of `value` from an array: the top level, or an entry of a
/// key set's `keys`.
fn positional(value: &serde_json::Value) -> bool {
    value.is_array()
        || value
            .get("keys")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|keys| keys.iter().any(serde_json::Value::is_array))
}

fn same<T: DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let ours = json::from_slice::<T>(data);
    let theirs = serde_json::from_slice::<T>(data);
    match (ours, theirs) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "read differently"),
        (Err(_), Err(_)) => {}
        (Err(_), Ok(_))
            if serde_json::from_slice::<serde_json::Value>(data)
                .is_ok_and(|v| positional(&v)) => {}
        (ours, theirs) => panic!("shared::json {ours:?}, serde_json {theirs:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    same::<AccessClaims>(data);
    same::<AssertionClaims>(data);
    same::<Jwks>(data);
});
