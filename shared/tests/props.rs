//! Properties of the pure core, checked on generated inputs: claims and token round trips, that
//! no single-byte change to a signed token is ever accepted, the key schema's prefixing and
//! injectivity, and the validation decision against a model of the five layers.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;
use tollgate_shared::decision::decide_reseeded;
use tollgate_shared::decision::parse_version;
use tollgate_shared::hostile::Signer;
use tollgate_shared::jwt::{verify, Validation};
use tollgate_shared::keys::field;
use tollgate_shared::records::JtiRecord;
use tollgate_shared::upstash::parse_validation_replies;
use tollgate_shared::{AccessClaims, KeySchema, Rejection};

const NOW: i64 = 1_800_000_000;
const LEEWAY: i64 = 30;

fn validation() -> Validation {
    Validation {
        leeway: LEEWAY,
        ..Validation::new("tollgate", "tollgate-api", 900)
    }
}

/// Any claim set, including ones no verifier should accept.
fn any_claims() -> impl Strategy<Value = AccessClaims> {
    (
        (
            any::<String>(),
            any::<String>(),
            any::<u64>(),
            any::<String>(),
        ),
        (any::<i64>(), any::<i64>(), any::<Option<i64>>()),
        (any::<String>(), any::<String>()),
    )
        .prop_map(
            |((sub, jti, ver, sid), (iat, exp, nbf), (iss, aud))| AccessClaims {
                sub,
                jti,
                ver,
                sid,
                iat,
                exp,
                nbf,
                iss,
                aud,
            },
        )
}

/// Claims a verifier at `NOW` must accept: short strings (the token stays under the length
/// limit even at four bytes per character), times around `NOW`.
fn valid_claims() -> impl Strategy<Value = AccessClaims> {
    (
        ("\\PC{0,40}", "\\PC{0,40}", any::<u64>(), "\\PC{0,40}"),
        (
            (NOW - 800)..=(NOW + LEEWAY),
            1i64..=900,
            proptest::option::of((NOW - 100_000)..=(NOW + LEEWAY)),
        ),
    )
        // Valid means unexpired and no longer-lived than the policy (900 s).
        .prop_map(|((sub, jti, ver, sid), (iat, life, nbf))| AccessClaims {
            sub,
            jti,
            ver,
            sid,
            iat,
            exp: (iat + life).max(NOW + 1).min(iat + 900),
            nbf,
            iss: "tollgate".into(),
            aud: "tollgate-api".into(),
        })
}

/// A claim name that is mostly ours and otherwise a near miss (case, a trailing space, one
/// character short) or anything at all.
fn claim_name(ours: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(ours.to_owned()),
        1 => Just(ours.to_uppercase()),
        1 => Just(format!("{ours} ")),
        1 => Just(ours[..ours.len() - 1].to_owned()),
        1 => "\\PC{0,12}",
    ]
}

/// A time mostly within three seconds of `edge`, otherwise anywhere.
fn around(edge: i64) -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => (edge - 3)..=(edge + 3),
        1 => (edge - 100_000)..=(edge + 100_000),
        1 => any::<i64>(),
    ]
}

/// Claims on and around each rule's edge: `iss`/`aud` mostly ours, `exp` around `NOW`, `iat` and
/// `nbf` around `NOW + LEEWAY` — so every branch of the verdict, acceptance included, is drawn.
fn claims_at_the_rules_edges() -> impl Strategy<Value = AccessClaims> {
    (
        ("\\PC{0,20}", "\\PC{0,20}", any::<u64>(), "\\PC{0,20}"),
        (
            around(NOW + LEEWAY),
            around(NOW),
            proptest::option::of(around(NOW + LEEWAY)),
        ),
        (claim_name("tollgate"), claim_name("tollgate-api")),
    )
        .prop_map(
            |((sub, jti, ver, sid), (iat, exp, nbf), (iss, aud))| AccessClaims {
                sub,
                jti,
                ver,
                sid,
                iat,
                exp,
                nbf,
                iss,
                aud,
            },
        )
}

/// Either algorithm, with arbitrary key material.
fn any_signer() -> impl Strategy<Value = Signer> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|seed| Signer::ed25519("ed25519-prop", seed)),
        proptest::collection::vec(any::<u8>(), 32..80)
            .prop_map(|secret| Signer::hs256(secret).expect("at least 32 bytes")),
    ]
}

/// What `jwt::verify` must answer for a well-signed token carrying `c`, rule by rule.
fn model_verdict(c: &AccessClaims, token_len: usize) -> Result<(), Rejection> {
    if token_len > tollgate_shared::jwt::MAX_TOKEN_LEN {
        return Err(Rejection::Malformed);
    }
    if NOW >= c.exp {
        return Err(Rejection::Expired);
    }
    let horizon = NOW + LEEWAY;
    if c.iat > horizon || c.nbf.is_some_and(|n| n > horizon) {
        return Err(Rejection::Claims);
    }
    if c.exp.saturating_sub(c.iat) > validation().max_lifetime + LEEWAY {
        return Err(Rejection::Claims);
    }
    if c.iss != "tollgate" || c.aud != "tollgate-api" {
        return Err(Rejection::Claims);
    }
    Ok(())
}

proptest! {
    #[test]
    fn claims_survive_a_json_round_trip(c in any_claims()) {
        let json = serde_json::to_string(&c).expect("serialises");
        let back: AccessClaims = serde_json::from_str(&json).expect("parses");
        prop_assert_eq!(back, c);
    }

    #[test]
    fn sign_then_verify_returns_the_same_claims(signer in any_signer(), c in valid_claims()) {
        let token = signer.sign_claims(&c);
        prop_assert_eq!(verify(&token, &signer.key_set(), &validation(), NOW), Ok(c));
    }

    #[test]
    fn verify_follows_the_rules_for_any_well_signed_claims(
        signer in any_signer(),
        c in prop_oneof![1 => any_claims(), 3 => claims_at_the_rules_edges()],
    ) {
        let token = signer.sign_claims(&c);
        let got = verify(&token, &signer.key_set(), &validation(), NOW);
        match model_verdict(&c, token.len()) {
            Ok(()) => prop_assert_eq!(got, Ok(c)),
            Err(r) => prop_assert_eq!(got, Err(r)),
        }
    }

    #[test]
    fn a_token_never_verifies_under_another_key(
        (ed_a, seed_a) in (any::<bool>(), any::<[u8; 32]>()),
        (ed_b, seed_b) in (any::<bool>(), any::<[u8; 32]>()),
        c in valid_claims(),
    ) {
        prop_assume!((ed_a, seed_a) != (ed_b, seed_b));
        let make = |ed: bool, seed: [u8; 32]| if ed {
            Signer::ed25519("k", seed)
        } else {
            Signer::hs256(seed.to_vec()).expect("32 bytes")
        };
        let (a, b) = (make(ed_a, seed_a), make(ed_b, seed_b));
        // The verifier knows `a`'s kid, but with `b`'s key behind it.
        let mut keys = tollgate_shared::jwt::KeySet::new();
        keys.insert(a.kid(), b.signing_key().verifying_key());
        prop_assert_eq!(verify(&a.sign_claims(&c), &keys, &validation(), NOW), Err(Rejection::Signature));
    }

    /// Every single-byte substitution, deletion or insertion anywhere in a signed token is
    /// refused: no malleable encoding, no second signature, no parser slack.
    #[test]
    fn no_single_byte_edit_of_a_signed_token_verifies(
        signer in any_signer(),
        c in valid_claims(),
        at in any::<prop::sample::Index>(),
        edit in 0u8..3,
        byte in prop_oneof![
            Just(b'.'), Just(b'='), Just(b'+'), Just(b'/'), Just(b' '), Just(b'A'), Just(b'a'),
            Just(b'0'), Just(b'-'), Just(b'_'), any::<u8>()
        ],
    ) {
        let token = signer.sign_claims(&c);
        let mut bytes = token.clone().into_bytes();
        let i = at.index(bytes.len());
        match edit {
            0 => {
                prop_assume!(bytes[i] != byte);
                bytes[i] = byte;
            }
            1 => { bytes.remove(i); }
            _ => bytes.insert(i, byte),
        }
        // Bytes that are not UTF-8 never reach a verifier as a &str (HTTP stacks refuse them
        // as header text first).
        let Ok(edited) = String::from_utf8(bytes) else { return Ok(()) };
        prop_assume!(edited != token);
        let got = verify(&edited, &signer.key_set(), &validation(), NOW);
        prop_assert!(got.is_err(), "edit {edit} at {i} with {byte:#04x} verified: {got:?}");
    }

    #[test]
    fn every_key_starts_with_the_prefix_and_drops_it_cleanly(prefix in "\\PC{0,12}", id in "\\PC{0,40}") {
        let k = KeySchema::new(prefix.clone());
        let bare = KeySchema::default();
        for (with, without) in [
            (k.user(&id), bare.user(&id)),
            (k.rate_limit("login:ip", &id), bare.rate_limit("login:ip", &id)),
            (k.rate_limit("login:email", &id), bare.rate_limit("login:email", &id)),
        ] {
            prop_assert!(with.starts_with(&prefix));
            prop_assert_eq!(&with[prefix.len()..], without.as_str());
        }
    }

    /// Distinct (kind, id) pairs never share a key, across every kind a deployment writes,
    /// so no id chosen by a client can overwrite or read another kind's key.
    #[test]
    fn distinct_inputs_make_distinct_keys(prefix in "[a-z0-9:]{0,8}", a in "\\PC{0,20}", b in "\\PC{0,20}", ka in 0..KINDS, kb in 0..KINDS) {
        prop_assume!((ka, &a) != (kb, &b));
        let k = KeySchema::new(prefix);
        prop_assert_ne!(key_of(&k, ka, &a), key_of(&k, kb, &b));
    }

    /// Any two prefixes `KeySchema::configured` accepts — drawn to include nested ones and the
    /// schema's own words — and ids that continue another key's layout (`ver:b`, a fixed part
    /// followed by an id): no two (prefix, kind, id) share a key, and no key of one deployment
    /// matches another's `SCAN` patterns.
    #[test]
    fn configured_prefixes_never_share_a_key_or_a_scan_pattern(
        (p, q) in prefix_pair(),
        base in "[a-z:]{0,4}",
    ) {
        let prefixes: BTreeSet<String> = [p, q]
            .into_iter()
            .filter(|x| KeySchema::configured(x.as_str()).is_ok())
            .collect();
        let bare = KeySchema::default();
        let mut ids = vec![base.clone()];
        ids.extend(SCHEMA_WORDS.iter().map(|w| format!("{w}:{base}")));
        ids.extend((0..KINDS).map(|kind| format!("{}{base}", key_of(&bare, kind, ""))));
        let mut seen: HashMap<String, (String, usize, String)> = HashMap::new();
        for prefix in &prefixes {
            let k = KeySchema::new(prefix.clone());
            for kind in 0..KINDS {
                for id in &ids {
                    let key = key_of(&k, kind, id);
                    let origin = (prefix.clone(), kind, id.clone());
                    if let Some(other) = seen.get(&key) {
                        prop_assert_eq!(other, &origin, "two inputs share {}", key);
                    }
                    seen.insert(key, origin);
                }
            }
        }
        for (key, (owner, _, _)) in &seen {
            for prefix in prefixes.iter().filter(|p| *p != owner) {
                let k = KeySchema::new(prefix.clone());
                let pattern = k.user_pattern();
                prop_assert!(
                    !key.starts_with(pattern.trim_end_matches('*')),
                    "{key} of {owner:?} matches {pattern}"
                );
            }
        }
    }

    /// The `SCAN` patterns used for stats match exactly their own kind (for prefixes without
    /// glob characters).
    #[test]
    fn scan_patterns_match_only_their_kind(prefix in "[a-z0-9:]{0,8}", id in "\\PC{0,20}") {
        let k = KeySchema::new(prefix);
        let matches = |pattern: &str, key: &str| key.starts_with(pattern.trim_end_matches('*'));
        prop_assert!(matches(&k.user_pattern(), &k.user(&id)));
        for other in [k.rate_limit("login:ip", &id), k.rate_limit("login:email", &id)] {
            prop_assert!(!matches(&k.user_pattern(), &other), "{other}");
        }
    }

    /// Within a user's hash, distinct (kind, id) pairs never share a field: no jti, token id
    /// or secret hash a client chooses can read or overwrite another kind's field or `v`.
    #[test]
    fn distinct_inputs_make_distinct_fields(a in "\\PC{0,20}", b in "\\PC{0,20}", ka in 0..4usize, kb in 0..4usize) {
        let field_of = |kind: usize, id: &str| match kind {
            0 => field::jti(id),
            1 => field::session(id),
            2 => field::grace(id),
            _ => field::VERSION.to_owned(),
        };
        // `v` has no id: every id names the same field.
        prop_assume!((ka, &a) != (kb, &b) && !(ka == 3 && kb == 3));
        prop_assert_ne!(field_of(ka, &a), field_of(kb, &b));
    }

    /// `decide` against a model: accept iff the record exists, parses, names this token's
    /// session and version (whatever `exp` it notes for pruning), the user exists, and the
    /// versions are equal; otherwise the first broken layer's code. (The user is the hash's:
    /// the lookup read `sub`'s.)
    #[test]
    fn decide_accepts_iff_the_record_matches_and_versions_are_equal(
        exp in 0i64..3, sid in 0u8..3, ver in 0u64..3,
        record in proptest::option::of(prop_oneof![
            3 => (0i64..3, 0u8..3, 0u64..3).prop_map(Stored::Record),
            1 => "\\PC{0,30}".prop_map(Stored::Junk),
        ]),
        current in proptest::option::of(0u64..3),
    ) {
        let claims = AccessClaims {
            sub: "u".into(),
            jti: "j".into(),
            ver,
            sid: format!("s{sid}"),
            iat: NOW,
            exp: NOW + 900 + exp,
            nbf: None,
            iss: "tollgate".into(),
            aud: "tollgate-api".into(),
        };
        let raw = record.as_ref().map(Stored::raw);
        let got = decide_reseeded(&claims, raw.as_deref(), current);
        let record_matches = matches!(record, Some(Stored::Record((_, s, v))) if s == sid && v == ver);
        let expected = if !record_matches {
            Err(Rejection::Revoked)
        } else if current.is_none() {
            Err(Rejection::UserUnknown)
        } else if current != Some(ver) {
            Err(Rejection::Version)
        } else {
            Ok(())
        };
        match expected {
            Ok(()) => {
                let id = got.expect("accepted");
                prop_assert_eq!(id.user_id, claims.sub);
                prop_assert_eq!(id.token_id, claims.sid);
                prop_assert_eq!(id.token_version, ver);
            }
            Err(r) => prop_assert_eq!(got, Err(r)),
        }
    }

    /// Against an oracle written separately from `parse_version`: a version key is read only in
    /// the canonical decimal form Tollgate writes. The strategy draws signs, spaces, leading
    /// zeros and values past `u64::MAX` as well as anything at all.
    #[test]
    fn version_keys_parse_only_in_the_form_we_write_them(
        raw in prop_oneof![
            3 => "[+ -]?0?[0-9]{1,21}[ x]?",
            1 => "\\PC{0,24}",
        ],
    ) {
        prop_assert_eq!(parse_version(Some(&raw)), canonical_decimal(&raw), "{:?}", raw);
    }

    /// Exactly one reply holding exactly two values of null or string is read back exactly;
    /// every other body — an error reply, a result of another type, an array of another length
    /// or holding other types, zero or two replies, a body that is not an array or not JSON — is
    /// an error, never a guess (the edge fails closed on it).
    #[test]
    fn upstash_validation_replies_are_read_only_when_exactly_two_values(body in any_pipeline_body()) {
        let got = parse_validation_replies(&body.bytes);
        match body.expected() {
            Some((jti_record, user_version)) => {
                let lookup = got.expect("two usable replies are read");
                prop_assert_eq!(lookup.jti_record, jti_record);
                prop_assert_eq!(lookup.user_version, user_version);
            }
            None => prop_assert!(got.is_err(), "read {:?} from {}", got, String::from_utf8_lossy(&body.bytes)),
        }
    }
}

/// The oracle for version keys: non-empty ASCII digits, no leading zero unless the value is `0`,
/// accumulated digit by digit so a value past `u64::MAX` is refused.
fn canonical_decimal(raw: &str) -> Option<u64> {
    let digits = raw.as_bytes();
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        value.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The number of key kinds [`key_of`] builds.
const KINDS: usize = 3;

/// Every key a deployment writes, by kind.
fn key_of(k: &KeySchema, kind: usize, id: &str) -> String {
    match kind {
        0 => k.user(id),
        1 => k.rate_limit("login:ip", id),
        _ => k.rate_limit("login:email", id),
    }
}

/// The words the key schema is made of, plus two plain names.
const SCHEMA_WORDS: &[&str] = &["tg", "rl", "login", "ip", "email", "a", "b"];

/// A prefix of any shape a deployment might configure: empty, one name, one of the schema's
/// words, several segments, or anything.
fn any_prefix() -> impl Strategy<Value = String> {
    let word = proptest::sample::select(SCHEMA_WORDS).prop_map(str::to_owned);
    prop_oneof![
        1 => Just(String::new()),
        2 => "[a-z0-9_.-]{1,4}".prop_map(|n| format!("{n}:")),
        2 => word.clone().prop_map(|w| format!("{w}:")),
        2 => proptest::collection::vec(word, 1..4).prop_map(|ws| ws.join(":") + ":"),
        1 => "\\PC{0,8}",
    ]
}

/// Two prefixes, half the time the second nested in the first (`p` then more segments).
fn prefix_pair() -> impl Strategy<Value = (String, String)> {
    let word = proptest::sample::select(SCHEMA_WORDS);
    (
        any_prefix(),
        any_prefix(),
        proptest::collection::vec(word, 1..3),
        any::<bool>(),
    )
        .prop_map(|(p, q, more, nested)| {
            if nested {
                let q = format!("{p}{}:", more.join(":"));
                (p, q)
            } else {
                (p, q)
            }
        })
}

/// One value inside the `HMGET` reply's array, and its value if it is usable.
fn any_value() -> impl Strategy<Value = (serde_json::Value, Option<Option<String>>)> {
    use serde_json::json;
    prop_oneof![
        4 => Just((json!(null), Some(None))),
        4 => "\\PC{0,30}".prop_map(|s| (json!(s.clone()), Some(Some(s)))),
        1 => any::<i64>().prop_map(|n| (json!(n), None)),
        1 => any::<bool>().prop_map(|b| (json!(b), None)),
        1 => "\\PC{0,8}".prop_map(|s| (json!([s]), None)),
        1 => Just((json!({}), None)),
    ]
}

/// One element of a `/pipeline` answer, and the values it carries if it is usable: an
/// `HMGET` array (of zero to three values, two most often), or an error, or another type.
fn any_reply() -> impl Strategy<Value = (serde_json::Value, ReplyValues)> {
    use serde_json::json;
    let values = prop_oneof![
        1 => proptest::collection::vec(any_value(), 0..=3),
        3 => proptest::collection::vec(any_value(), 2),
    ];
    prop_oneof![
        6 => values.prop_map(|vs| {
            let (values, usable): (Vec<_>, Vec<_>) = vs.into_iter().unzip();
            (json!({"result": values}), Some(usable))
        }),
        1 => Just((json!({"result": null}), None)),
        1 => "\\PC{0,30}".prop_map(|s| (json!({"result": s}), None)),
        1 => "\\PC{0,20}".prop_map(|e| (json!({"error": e}), None)),
        1 => any::<i64>().prop_map(|n| (json!({"result": n}), None)),
        1 => Just((json!({}), None)),
        1 => Just((json!(null), None)),
    ]
}

/// One reply's values if the reply is an array: each `Some(value)` if usable (null or string).
type ReplyValues = Option<Vec<Option<Option<String>>>>;

/// A `/pipeline` answer's bytes and, when it is one reply of exactly two usable values, them.
#[derive(Debug, Clone)]
struct PipelineBody {
    bytes: Vec<u8>,
    replies: Option<Vec<ReplyValues>>,
}

impl PipelineBody {
    fn expected(&self) -> Option<(Option<String>, Option<String>)> {
        match self.replies.as_deref()? {
            [Some(values)] => match values.as_slice() {
                [Some(jti_record), Some(user_version)] => {
                    Some((jti_record.clone(), user_version.clone()))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

/// Arrays of zero to three replies (one most often), and bodies that are not an array of
/// replies at all.
fn any_pipeline_body() -> impl Strategy<Value = PipelineBody> {
    use serde_json::json;
    let array = prop_oneof![
        1 => proptest::collection::vec(any_reply(), 0..=3),
        3 => proptest::collection::vec(any_reply(), 1),
    ]
    .prop_map(|replies| {
        let (values, usable): (Vec<_>, Vec<_>) = replies.into_iter().unzip();
        PipelineBody {
            bytes: serde_json::to_vec(&values).expect("json"),
            replies: Some(usable),
        }
    });
    let other = prop_oneof![
        any_reply().prop_map(|(single, _)| serde_json::to_vec(&single).expect("json")),
        Just(serde_json::to_vec(&json!({"result": ["a", "b"]})).expect("json")),
        Just(br#"[{"result":["a","b"]}"#.to_vec()),
        Just(b"\xff".to_vec()),
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
    .prop_map(|bytes| PipelineBody {
        bytes,
        replies: None,
    });
    prop_oneof![4 => array, 1 => other]
}

/// The collision the prefix rule closes, by hand: with nested prefixes two kinds were one key.
#[test]
fn nested_prefixes_are_refused_because_they_collide() {
    assert_eq!(
        KeySchema::new("a:").rate_limit("login:ip", "rl:login:ip:b"),
        KeySchema::new("a:rl:login:ip:").rate_limit("login:ip", "b")
    );
    assert!(KeySchema::configured("a:").is_ok());
    assert_eq!(
        KeySchema::configured("a:rl:login:ip:"),
        Err(tollgate_shared::keys::PrefixError)
    );
}

/// The decision on each shape by hand: only what Tollgate writes (`to_string` of a `u64`) is a
/// version.
#[test]
fn version_keys_by_hand() {
    let table: &[(&str, Option<u64>)] = &[
        ("0", Some(0)),
        ("7", Some(7)),
        ("42", Some(42)),
        ("18446744073709551615", Some(u64::MAX)),
        ("18446744073709551616", None),
        ("99999999999999999999", None),
        ("+7", None),
        ("-7", None),
        ("-0", None),
        (" 7", None),
        ("7 ", None),
        ("7\n", None),
        ("07", None),
        ("00", None),
        ("7x", None),
        ("0x7", None),
        ("7.0", None),
        ("1e3", None),
        ("\u{667}", None),
        ("", None),
    ];
    for (raw, expected) in table {
        assert_eq!(parse_version(Some(raw)), *expected, "{raw:?}");
        assert_eq!(canonical_decimal(raw), *expected, "the oracle on {raw:?}");
    }
    assert_eq!(parse_version(None), None);
}

/// What the `j:{jti}` field holds in the decision model: (exp offset, session, version).
#[derive(Debug, Clone)]
enum Stored {
    Record((i64, u8, u64)),
    Junk(String),
}

impl Stored {
    fn raw(&self) -> String {
        match self {
            Self::Record((e, s, v)) => JtiRecord {
                exp: NOW + 900 + e,
                token_id: format!("s{s}"),
                token_version: *v,
            }
            .encode(),
            Self::Junk(s) => s.clone(),
        }
    }
}
