//! `shared::json` (the one JSON reader of tokens, assertions and key sets, at every hop) against
//! serde_json on arbitrary bytes, for each type it reads: both accept the same texts and read
//! the same values, or both refuse. The one deliberate difference is skipped: serde_json also
//! reads a struct from an array of its fields, `shared::json` only from an object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use tollgate_shared::assertion::AssertionClaims;
use tollgate_shared::jwt::Jwks;
use tollgate_shared::{json, AccessClaims};

fn same<T: DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let ours = json::from_slice::<T>(data);
    let theirs = serde_json::from_slice::<T>(data);
    let positional = data
        .iter()
        .find(|b| !b" \t\n\r".contains(b))
        .is_some_and(|&b| b == b'[');
    match (ours, theirs) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "read differently"),
        (Err(_), Err(_)) => {}
        (Err(_), Ok(_)) if positional => {}
        (ours, theirs) => panic!("shared::json {ours:?}, serde_json {theirs:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    same::<AccessClaims>(data);
    same::<AssertionClaims>(data);
    same::<Jwks>(data);
});
