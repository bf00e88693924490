//! The REST bridge's request decoding on arbitrary input: JSON bodies for `POST /`,
//! `/pipeline` and `/multi-exec`, and the path form. Whatever decodes is exactly what the body
//! said, never empty, the connection-breaking and administrative commands never pass the
//! policy, and no script passes the read-only token's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_rest_bridge::{decode_json, decode_path, Decoded, ADMIN_COMMANDS};

/// Commands that must never run over the shared connection, whatever their case.
const NEVER: &[&str] = &[
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "MONITOR",
    "MULTI",
    "EXEC",
    "WATCH",
    "SELECT",
    "AUTH",
    "HELLO",
    "CLIENT",
    "QUIT",
    "RESET",
    "SHUTDOWN",
    "DEBUG",
    "BLPOP",
    "BRPOP",
    "BZPOPMIN",
    "WAIT",
    "SYNC",
];

fn check_policy(command: &Decoded) {
    assert!(!command.parts.is_empty(), "decoded an empty command");
    let name = String::from_utf8_lossy(&command.parts[0]).to_ascii_uppercase();
    if NEVER.contains(&name.as_str()) {
        assert!(command.full.is_err(), "{name} passed the policy");
    }
    // Administrative commands never pass the full token's default scope, and no script of any
    // kind passes the read-only one.
    if ADMIN_COMMANDS.contains(&name.as_str()) {
        assert!(command.full.is_err(), "{name} passed the full token's default scope");
    }
    if name.starts_with("EVAL") || name.starts_with("FCALL") || name == "SCRIPT" || name == "FUNCTION" {
        assert!(command.read_only.is_err(), "{name} passed the read-only scope");
    }
    // The read-only token's allowlist is a subset of what the full token may run.
    if command.read_only.is_ok() {
        assert!(
            command.full.is_ok(),
            "{name}: read-only allowed, full refused"
        );
    }
}

/// The JSON an accepted argument came from, as Redis will see it.
fn rendered(item: &serde_json::Value) -> Vec<u8> {
    match item {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        other => other.to_string().into_bytes(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    if selector & 2 == 0 {
        let many = selector & 1 == 1;
        let Ok(commands) = decode_json(input, many) else {
            return;
        };
        assert!(!commands.is_empty());
        let body: serde_json::Value = serde_json::from_slice(input).expect("accepted JSON");
        let arrays: Vec<&serde_json::Value> = if many {
            body.as_array().expect("array of commands").iter().collect()
        } else {
            vec![&body]
        };
        assert_eq!(arrays.len(), commands.len());
        for (command, array) in commands.iter().zip(arrays) {
            check_policy(command);
            let items = array.as_array().expect("each command is an array");
            let expected: Vec<Vec<u8>> = items.iter().map(rendered).collect();
            assert_eq!(
                command.parts, expected,
                "decoded something the body did not say"
            );
        }
    } else {
        let mut pieces = input.splitn(3, |b| *b == 0);
        let path = String::from_utf8_lossy(pieces.next().unwrap_or_default());
        let query = pieces.next().map(String::from_utf8_lossy);
        let body = pieces.next().unwrap_or_default();
        if let Ok(command) = decode_path(&path, query.as_deref(), body) {
            check_policy(&command);
            if !body.is_empty() {
                assert!(
                    command.parts.iter().any(|p| p == body),
                    "the body was dropped"
                );
            }
        }
    }
});
