//! Every case of the hostile-token table is refused by `jwt::verify` with its documented code,
//! for both algorithms, and every control still verifies.

use std::collections::HashSet;

use tollgate_shared::hostile::{cases, controls, fits_authorization_header, Signer};
use tollgate_shared::jwt::{verify, Validation};
use tollgate_shared::{AccessClaims, ErrorCode};

const NOW: i64 = 1_800_000_000;

fn validation() -> Validation {
    Validation {
        leeway: 30,
        ..Validation::new("tollgate", "tollgate-api", 900)
    }
}

fn template() -> AccessClaims {
    tollgate_testkit::claims::access_claims(NOW - 10, NOW + 890)
}

fn signers() -> Vec<Signer> {
    vec![
        Signer::ed25519("ed25519-0123456789abcdef", [42; 32]),
        Signer::hs256(b"a-thirty-two-byte-or-longer-hmac-secret!".to_vec()).expect("long enough"),
    ]
}

#[test]
fn every_hostile_token_is_refused_with_its_code() {
    for signer in signers() {
        let keys = signer.key_set();
        let table = cases(&signer, &template(), &validation(), NOW);
        let mut failures = Vec::new();
        for case in &table {
            let got = verify(&case.token, &keys, &validation(), NOW).map_err(|r| r.code());
            if got != Err(case.expected) {
                failures.push(format!(
                    "{} ({}): expected {}, got {got:?}",
                    case.name, case.reason, case.expected
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{:?}: {}",
            signer.algorithm(),
            failures.join("\n")
        );
    }
}

#[test]
fn every_control_verifies_to_the_template() {
    for signer in signers() {
        let keys = signer.key_set();
        for control in controls(&signer, &template(), &validation(), NOW) {
            let claims = verify(&control.token, &keys, &validation(), NOW)
                .unwrap_or_else(|r| panic!("control {} refused: {r:?}", control.name));
            assert_eq!(claims.sub, template().sub, "{}", control.name);
            assert_eq!(claims.jti, template().jti, "{}", control.name);
        }
    }
}

#[test]
fn the_table_covers_what_the_issue_lists() {
    let table = cases(&signers()[0], &template(), &validation(), NOW);
    let names: HashSet<&str> = table.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), table.len(), "case names must be unique");
    for required in [
        "alg_none_unsigned",
        "alg_none_with_a_real_signature",
        "alg_confusion_hs256_keyed_with_our_public_key",
        "kid_unknown",
        "kid_missing",
        "kid_path_traversal",
        "kid_sql_injection",
        "jku_to_attacker_jwks",
        "x5u_to_attacker_certificate",
        "jwk_embedded_attacker_key",
        "crit_extension",
        "wrong_issuer",
        "wrong_audience",
        "expired",
        "iat_in_the_future",
        "nbf_in_the_future",
        "tampered_sub_old_signature",
        "oversized_signed_token",
        "header_non_utf8_json",
        "header_with_plus",
        "header_padded",
        "two_segments",
        "four_segments",
        "only_dots",
        "duplicate_sub_claim",
        "duplicate_alg_header",
        "ver_as_string",
    ] {
        assert!(names.contains(required), "missing case {required}");
    }
    for case in &table {
        assert!(case.expected.is_bearer_rejection(), "{}", case.name);
        assert!(!case.reason.is_empty(), "{}", case.name);
    }
    assert!(table
        .iter()
        .any(|c| c.name == "oversized_signed_token" && c.token.len() >= 8 * 1024));
}

#[test]
fn only_tokens_with_control_characters_cannot_travel_in_a_header() {
    let table = cases(&signers()[0], &template(), &validation(), NOW);
    let unsendable: Vec<&str> = table
        .iter()
        .filter(|c| !c.fits_header())
        .map(|c| c.name)
        .collect();
    assert_eq!(unsendable, ["nul_inside_token", "crlf_inside_token"]);
    assert!(fits_authorization_header("a.b.c"));
    assert!(fits_authorization_header("a b\u{e9}"));
    assert!(!fits_authorization_header(" a"));
    assert!(!fits_authorization_header(""));
    assert!(!fits_authorization_header("a\u{7f}"));
}

#[test]
fn the_table_is_deterministic_for_the_same_inputs() {
    // Ed25519 and HMAC are deterministic, so two verifiers can be compared case by case.
    let signer = &signers()[0];
    assert_eq!(
        cases(signer, &template(), &validation(), NOW),
        cases(signer, &template(), &validation(), NOW)
    );
    let codes: HashSet<ErrorCode> = cases(signer, &template(), &validation(), NOW)
        .iter()
        .map(|c| c.expected)
        .collect();
    for code in [
        ErrorCode::TokenMalformed,
        ErrorCode::TokenSignature,
        ErrorCode::TokenExpired,
        ErrorCode::TokenClaims,
    ] {
        assert!(codes.contains(&code), "no case expects {code}");
    }
}
