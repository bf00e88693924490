//! Writes the cross-implementation test vectors for edge assertions: tokens signed with a fixed
//! key by `tollgate-shared` (the edge's own code), each with the outcome the Rust verifier gives
//! it. The JavaScript library (`clients/upstream-js`) must reach the same outcome for every one.
//!
//! `cargo run -p tollgate-upstream --example vectors` rewrites `upstream/tests/vectors.json`; the
//! test `vectors::committed_vectors_match_the_generator` fails whenever the committed file and
//! this generator (or the Rust verifier's decisions) drift apart.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use serde_json::{json, Value};
use tollgate_shared::assertion::{self, AssertionClaims, Expectation, TYP};
use tollgate_shared::jwt::{KeySet, SigningKey};

/// The moment every vector is verified at.
pub const NOW: i64 = 1_800_000_000;

/// What every vector is verified against.
pub const EXPECT: Expectation<'static> = Expectation {
    issuer: "tollgate-edge",
    audience: "notes",
    method: "GET",
    path: "/api/notes/1",
};

/// Where the generated file lives, relative to this crate.
pub const FILE: &str = "tests/vectors.json";

fn edge_key(kid: &str, seed: u8) -> SigningKey {
    SigningKey::EdDSA {
        kid: kid.into(),
        key: ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
    }
}

fn valid() -> AssertionClaims {
    AssertionClaims {
        iss: EXPECT.issuer.into(),
        aud: EXPECT.audience.into(),
        sub: Some("0b7c6f1e-2f43-4c1a-9d51-3c2f9e4a8b10".into()),
        sid: Some("5d2e8a41-7c3b-4e0f-a6d9-1b8c4f2e7a93".into()),
        jti: Some("c1f0e2d3-b4a5-4968-8776-5a4b3c2d1e0f".into()),
        ver: Some(4),
        ver_checked: true,
        ip: Some("203.0.113.9".into()),
        htm: EXPECT.method.into(),
        htu: EXPECT.path.into(),
        iat: NOW - 2,
        exp: NOW + 28,
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token from raw header and payload text, signed with `key`: for the shapes `sign_jws`
/// cannot produce (duplicate members, missing `kid`, `crit`, …).
fn raw(header: &str, payload: &str, key: &ed25519_dalek::SigningKey) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let signature = key.sign(input.as_bytes()).to_bytes();
    format!("{input}.{}", b64(&signature))
}

fn payload_of(claims: &AssertionClaims) -> String {
    serde_json::to_string(claims).expect("claims serialise")
}

/// Which verifier a vector is for: a protected route (`identity`) or any assertion (`claims`).
#[derive(Clone, Copy)]
enum Requires {
    Identity,
    Claims,
}

/// Every vector: name, token, what it requires, and the outcome it must have (`ok` or the
/// Rust `AssertionError` variant).
fn cases() -> Vec<(&'static str, String, Requires, &'static str)> {
    use Requires::{Claims, Identity};
    let e1 = edge_key("e1", 1);
    let e1_raw = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    let with = |f: &dyn Fn(&mut AssertionClaims)| {
        let mut c = valid();
        f(&mut c);
        c.sign(&e1)
    };
    let header = |h: &str| raw(h, &payload_of(&valid()), &e1_raw);
    let payload = |p: &str| {
        raw(
            r#"{"alg":"EdDSA","typ":"tollgate-assertion+jwt","kid":"e1"}"#,
            p,
            &e1_raw,
        )
    };
    let valid_payload = payload_of(&valid());

    let token = valid().sign(&e1);
    let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
    // The last base64url character of a 64-byte signature carries 4 unused bits: setting one
    // keeps the decoded bytes and makes the encoding non-canonical.
    let last = segments[2].pop().expect("signature");
    let non_canonical = match last {
        'A' => 'B',
        other => char::from(u8::try_from(u32::from(other) + 1).expect("ascii")),
    };
    let mut sig_non_canonical = segments.clone();
    sig_non_canonical[2].push(non_canonical);
    segments[2].push(last);
    let mut tampered = segments.clone();
    tampered[1] = b64(valid_payload.replace("\"ver\":4", "\"ver\":5").as_bytes());

    vec![
        ("valid", token.clone(), Identity, "ok"),
        ("valid_claims_mode", token.clone(), Claims, "ok"),
        (
            "valid_typ_as_media_type",
            header(r#"{"alg":"EdDSA","typ":"application/Tollgate-Assertion+JWT","kid":"e1"}"#),
            Identity,
            "ok",
        ),
        (
            "valid_iat_within_leeway",
            with(&|c| {
                c.iat = NOW + 5;
                c.exp = NOW + 35;
            }),
            Identity,
            "ok",
        ),
        (
            "valid_lifetime_exactly_60",
            with(&|c| {
                c.iat = NOW - 30;
                c.exp = NOW + 30;
            }),
            Identity,
            "ok",
        ),
        (
            "valid_last_second",
            with(&|c| c.exp = NOW + 1),
            Identity,
            "ok",
        ),
        ("valid_without_ip", with(&|c| c.ip = None), Identity, "ok"),
        (
            "valid_sub_null_in_claims_mode",
            payload(&valid_payload.replace(
                r#""sub":"0b7c6f1e-2f43-4c1a-9d51-3c2f9e4a8b10""#,
                r#""sub":null"#,
            )),
            Claims,
            "ok",
        ),
        (
            "anonymous_in_claims_mode",
            with(&|c| {
                (c.sub, c.sid, c.jti, c.ver, c.ver_checked) = (None, None, None, None, false);
            }),
            Claims,
            "ok",
        ),
        (
            "unchecked_in_claims_mode",
            with(&|c| c.ver_checked = false),
            Claims,
            "ok",
        ),
        (
            "forged_other_key_same_kid",
            valid().sign(&edge_key("e1", 2)),
            Identity,
            "Signature",
        ),
        (
            "unknown_kid",
            valid().sign(&edge_key("e9", 1)),
            Identity,
            "Signature",
        ),
        (
            "no_kid",
            header(r#"{"alg":"EdDSA","typ":"tollgate-assertion+jwt"}"#),
            Identity,
            "Signature",
        ),
        (
            "kid_null",
            header(r#"{"alg":"EdDSA","typ":"tollgate-assertion+jwt","kid":null}"#),
            Identity,
            "Signature",
        ),
        (
            "alg_none",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"tollgate-assertion+jwt","kid":"e1"}"#),
                segments[1]
            ),
            Identity,
            "Signature",
        ),
        (
            "alg_hs256",
            header(r#"{"alg":"HS256","typ":"tollgate-assertion+jwt","kid":"e1"}"#),
            Identity,
            "Signature",
        ),
        (
            "tampered_payload",
            tampered.join("."),
            Identity,
            "Signature",
        ),
        (
            "typ_access_token",
            e1.sign_jws("at+jwt", &valid()),
            Identity,
            "Malformed",
        ),
        (
            "typ_missing",
            header(r#"{"alg":"EdDSA","kid":"e1"}"#),
            Identity,
            "Malformed",
        ),
        (
            "crit_empty",
            header(r#"{"alg":"EdDSA","typ":"tollgate-assertion+jwt","kid":"e1","crit":[]}"#),
            Identity,
            "Malformed",
        ),
        (
            "crit_b64_understood_by_jose",
            header(
                r#"{"alg":"EdDSA","typ":"tollgate-assertion+jwt","kid":"e1","b64":true,"crit":["b64"]}"#,
            ),
            Identity,
            "Malformed",
        ),
        (
            "crit_null",
            header(r#"{"alg":"EdDSA","typ":"tollgate-assertion+jwt","kid":"e1","crit":null}"#),
            Identity,
            "Malformed",
        ),
        (
            "header_duplicate_alg",
            header(r#"{"alg":"HS256","alg":"EdDSA","typ":"tollgate-assertion+jwt","kid":"e1"}"#),
            Identity,
            "Malformed",
        ),
        (
            "signature_non_canonical_base64",
            sig_non_canonical.join("."),
            Identity,
            "Malformed",
        ),
        ("empty", String::new(), Identity, "Malformed"),
        (
            "two_segments",
            segments[..2].join("."),
            Identity,
            "Malformed",
        ),
        (
            "four_segments",
            format!("{token}.{}", segments[2]),
            Identity,
            "Malformed",
        ),
        (
            "too_long",
            with(&|c| c.ip = Some("x".repeat(4000))),
            Identity,
            "Malformed",
        ),
        (
            "expired",
            with(&|c| {
                c.iat = NOW - 30;
                c.exp = NOW;
            }),
            Identity,
            "Expired",
        ),
        (
            "not_yet_valid",
            with(&|c| {
                c.iat = NOW + 6;
                c.exp = NOW + 36;
            }),
            Identity,
            "Expired",
        ),
        (
            "lifetime_61",
            with(&|c| {
                c.iat = NOW - 1;
                c.exp = NOW + 60;
            }),
            Identity,
            "Lifetime",
        ),
        (
            "other_audience",
            with(&|c| c.aud = "billing".into()),
            Identity,
            "Audience",
        ),
        (
            "other_issuer",
            with(&|c| c.iss = "not-the-edge".into()),
            Identity,
            "Audience",
        ),
        (
            "other_method",
            with(&|c| c.htm = "POST".into()),
            Identity,
            "Binding",
        ),
        (
            "other_path",
            with(&|c| c.htu = "/api/notes/2".into()),
            Identity,
            "Binding",
        ),
        (
            "path_with_query",
            with(&|c| c.htu = "/api/notes/1?all=1".into()),
            Identity,
            "Binding",
        ),
        (
            "path_other_case",
            with(&|c| c.htu = "/API/notes/1".into()),
            Identity,
            "Binding",
        ),
        (
            "method_lowercase",
            with(&|c| c.htm = "get".into()),
            Identity,
            "Binding",
        ),
        (
            "ver_unchecked",
            with(&|c| c.ver_checked = false),
            Identity,
            "Unchecked",
        ),
        (
            "anonymous",
            with(&|c| {
                (c.sub, c.sid, c.jti, c.ver, c.ver_checked) = (None, None, None, None, false);
            }),
            Identity,
            "Unchecked",
        ),
        (
            "anonymous_marked_checked",
            with(&|c| {
                (c.sub, c.sid, c.jti, c.ver) = (None, None, None, None);
            }),
            Identity,
            "Unchecked",
        ),
        (
            "missing_sid",
            with(&|c| c.sid = None),
            Identity,
            "Unchecked",
        ),
        (
            "missing_ver",
            with(&|c| c.ver = None),
            Identity,
            "Unchecked",
        ),
        (
            "unknown_claim",
            payload(&valid_payload.replacen('{', r#"{"admin":true,"#, 1)),
            Identity,
            "Malformed",
        ),
        (
            "unknown_claim_nbf",
            payload(&valid_payload.replacen('{', &format!(r#"{{"nbf":{},"#, NOW - 2), 1)),
            Claims,
            "Malformed",
        ),
        (
            "duplicate_claim",
            payload(&valid_payload.replacen('{', r#"{"aud":"billing","#, 1)),
            Identity,
            "Malformed",
        ),
        (
            "missing_ver_checked",
            payload(&valid_payload.replace(r#""ver_checked":true,"#, "")),
            Claims,
            "Malformed",
        ),
        (
            "missing_htu",
            payload(&valid_payload.replace(r#","htu":"/api/notes/1""#, "")),
            Claims,
            "Malformed",
        ),
        (
            "ver_checked_string",
            payload(&valid_payload.replace(r#""ver_checked":true"#, r#""ver_checked":"true""#)),
            Identity,
            "Malformed",
        ),
        (
            "ver_string",
            payload(&valid_payload.replace(r#""ver":4"#, r#""ver":"4""#)),
            Identity,
            "Malformed",
        ),
        (
            "ver_negative",
            payload(&valid_payload.replace(r#""ver":4"#, r#""ver":-1"#)),
            Identity,
            "Malformed",
        ),
        (
            "exp_fraction",
            payload(&valid_payload.replace(
                &format!(r#""exp":{}"#, NOW + 28),
                &format!(r#""exp":{}.5"#, NOW + 28),
            )),
            Identity,
            "Malformed",
        ),
        (
            "iss_number",
            payload(&valid_payload.replace(r#""iss":"tollgate-edge""#, r#""iss":7"#)),
            Identity,
            "Malformed",
        ),
        (
            "aud_array",
            payload(&valid_payload.replace(r#""aud":"notes""#, r#""aud":["notes"]"#)),
            Identity,
            "Malformed",
        ),
        ("payload_array", payload("[]"), Claims, "Malformed"),
        ("payload_not_json", payload("not json"), Claims, "Malformed"),
    ]
}

/// The vectors document, as committed.
pub fn generate() -> String {
    let e1 = edge_key("e1", 1);
    let mut keys = KeySet::new();
    keys.insert(e1.kid(), e1.verifying_key());
    let vectors: Vec<Value> = cases()
        .into_iter()
        .map(|(name, token, requires, intended)| {
            let (requires, result) = match requires {
                Requires::Identity => (
                    "identity",
                    assertion::verify(&token, &keys, &EXPECT, NOW).map(|id| {
                        json!({
                            "user_id": id.user_id,
                            "token_id": id.token_id,
                            "jti": id.jti,
                            "token_version": id.token_version,
                            "client_ip": id.client_ip,
                        })
                    }),
                ),
                Requires::Claims => (
                    "claims",
                    assertion::verify_claims(&token, &keys, &EXPECT, NOW)
                        .map(|c| serde_json::to_value(c).expect("claims serialise")),
                ),
            };
            let outcome = match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("{e:?}"),
            };
            // The generator states what each vector is for; the Rust verifier must agree.
            assert_eq!(outcome, intended, "vector {name}");
            let mut vector = json!({
                "name": name,
                "token": token,
                "requires": requires,
                "outcome": outcome,
            });
            match result {
                Ok(value) => vector["result"] = value,
                Err(assertion::AssertionError::Missing) => {
                    vector["code"] = json!("assertion_missing")
                }
                Err(_) => vector["code"] = json!("assertion_invalid"),
            }
            vector
        })
        .collect();
    let document = json!({
        "comment": "Generated by `cargo run -p tollgate-upstream --example vectors` from tollgate-shared; do not edit.",
        "now": NOW,
        "expect": {
            "issuer": EXPECT.issuer,
            "audience": EXPECT.audience,
            "method": EXPECT.method,
            "path": EXPECT.path,
        },
        "jwks": keys.to_jwks(),
        "typ": TYP,
        "vectors": vectors,
    });
    let mut text = serde_json::to_string_pretty(&document).expect("vectors serialise");
    text.push('\n');
    text
}

#[allow(dead_code)] // `main` is unused where the test includes this file.
fn main() -> std::io::Result<()> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FILE);
    std::fs::write(&path, generate())?;
    println!("wrote {}", path.display());
    Ok(())
}
