//! Properties of the pure core, checked on generated inputs: claims and token round trips, that
//! no single-byte change to a signed token is ever accepted, the key schema's prefixing and
//! injectivity, and the validation decision against a model of the five layers.

use proptest::prelude::*;
use tollgate_shared::decision::decide_reseeded;
use tollgate_shared::decision::parse_version;
use tollgate_shared::hostile::Signer;
use tollgate_shared::jwt::{verify, Validation};
use tollgate_shared::records::{DeviceInfo, JtiRecord};
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
    fn verify_follows_the_rules_for_any_well_signed_claims(signer in any_signer(), c in any_claims()) {
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
            (k.jti(&id), bare.jti(&id)),
            (k.user_tokens(&id), bare.user_tokens(&id)),
            (k.refresh(&id), bare.refresh(&id)),
            (k.refresh_grace(&id), bare.refresh_grace(&id)),
            (k.user_version(&id), bare.user_version(&id)),
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
    fn distinct_inputs_make_distinct_keys(prefix in "[a-z0-9:]{0,8}", a in "\\PC{0,20}", b in "\\PC{0,20}", ka in 0usize..7, kb in 0usize..7) {
        prop_assume!((ka, &a) != (kb, &b));
        let k = KeySchema::new(prefix);
        let key = |kind: usize, id: &str| match kind {
            0 => k.jti(id),
            1 => k.user_tokens(id),
            2 => k.refresh(id),
            3 => k.refresh_grace(id),
            4 => k.user_version(id),
            5 => k.rate_limit("login:ip", id),
            _ => k.rate_limit("login:email", id),
        };
        prop_assert_ne!(key(ka, &a), key(kb, &b));
    }

    /// Two deployments whose prefixes are distinct and `:`-terminated never collide.
    #[test]
    fn distinct_prefixes_isolate_deployments(p in "[a-z0-9]{1,8}", q in "[a-z0-9]{1,8}", a in "\\PC{0,20}", b in "\\PC{0,20}") {
        prop_assume!(p != q);
        let (kp, kq) = (KeySchema::new(format!("{p}:")), KeySchema::new(format!("{q}:")));
        for (x, y) in [
            (kp.jti(&a), kq.jti(&b)),
            (kp.user_version(&a), kq.user_version(&b)),
            (kp.refresh(&a), kq.refresh(&b)),
            (kp.user_tokens(&a), kq.jti(&b)),
        ] {
            prop_assert_ne!(x, y);
        }
    }

    /// The `SCAN` patterns used for stats match exactly their own kind (for prefixes without
    /// glob characters).
    #[test]
    fn scan_patterns_match_only_their_kind(prefix in "[a-z0-9:]{0,8}", id in "\\PC{0,20}") {
        let k = KeySchema::new(prefix);
        let matches = |pattern: &str, key: &str| key.starts_with(pattern.trim_end_matches('*'));
        prop_assert!(matches(&k.jti_pattern(), &k.jti(&id)));
        prop_assert!(matches(&k.refresh_pattern(), &k.refresh(&id)));
        for other in [k.user_tokens(&id), k.refresh_grace(&id), k.user_version(&id), k.rate_limit("login:ip", &id)] {
            prop_assert!(!matches(&k.jti_pattern(), &other), "{other}");
            prop_assert!(!matches(&k.refresh_pattern(), &other), "{other}");
        }
    }

    /// `decide` against a model: accept iff the record exists, parses, names this token's user,
    /// session and version, the user exists, and the versions are equal; otherwise the first
    /// broken layer's code.
    #[test]
    fn decide_accepts_iff_the_record_matches_and_versions_are_equal(
        sub in 0u8..3, sid in 0u8..3, ver in 0u64..3,
        record in proptest::option::of(prop_oneof![
            3 => (0u8..3, 0u8..3, 0u64..3).prop_map(Stored::Record),
            1 => "\\PC{0,30}".prop_map(Stored::Junk),
        ]),
        current in proptest::option::of(0u64..3),
    ) {
        let claims = AccessClaims {
            sub: format!("u{sub}"),
            jti: "j".into(),
            ver,
            sid: format!("s{sid}"),
            iat: NOW,
            exp: NOW + 900,
            nbf: None,
            iss: "tollgate".into(),
            aud: "tollgate-api".into(),
        };
        let raw = record.as_ref().map(Stored::raw);
        let got = decide_reseeded(&claims, raw.as_deref(), current);
        let record_matches = matches!(record, Some(Stored::Record((u, s, v))) if u == sub && s == sid && v == ver);
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

    #[test]
    fn version_keys_parse_only_as_plain_integers(raw in "\\PC{0,24}") {
        let parsed = parse_version(Some(&raw));
        prop_assert_eq!(parsed, raw.parse::<u64>().ok());
        if let Some(v) = parsed {
            prop_assert_eq!(parse_version(Some(&v.to_string())), Some(v));
        }
    }

    /// Two replies of null or string are read back exactly; any other shape is an error, never
    /// a guess (the edge fails closed on it).
    #[test]
    fn upstash_validation_replies_round_trip(
        a in proptest::option::of("\\PC{0,30}"),
        b in proptest::option::of("\\PC{0,30}"),
        extra in proptest::option::of(any::<i64>()),
    ) {
        let reply = |v: &Option<String>| serde_json::json!({"result": v});
        let mut body = vec![reply(&a), reply(&b)];
        if let Some(n) = extra {
            body.push(serde_json::json!({"result": n}));
        }
        let bytes = serde_json::to_vec(&body).expect("json");
        match parse_validation_replies(&bytes) {
            Ok(lookup) => {
                prop_assert!(extra.is_none());
                prop_assert_eq!(lookup.jti_record, a);
                prop_assert_eq!(lookup.user_version, b);
            }
            Err(_) => prop_assert!(extra.is_some()),
        }
    }
}

/// What `token:jti:{jti}` holds in the decision model.
#[derive(Debug, Clone)]
enum Stored {
    Record((u8, u8, u64)),
    Junk(String),
}

impl Stored {
    fn raw(&self) -> String {
        match self {
            Self::Record((u, s, v)) => serde_json::to_string(&JtiRecord {
                user_id: format!("u{u}"),
                token_version: *v,
                token_id: format!("s{s}"),
                device_info: DeviceInfo::default(),
                created_at: "2026-01-01T00:00:00Z".into(),
            })
            .expect("json"),
            Self::Junk(s) => s.clone(),
        }
    }
}
