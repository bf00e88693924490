//! What the fuzz targets share: a fixed key set and clock, the oracles that judge an accepted
//! token, and the seed corpus.
//!
//! # Layout
//! - [`Fixture`]: one Ed25519 and one HS256 key (fixed seeds), the validation rules and `NOW`.
//! - [`assert_acceptable`]: what must hold of any token `jwt::verify` accepts.
//! - [`seeds`]: the committed seed corpus, written by [`write_seed_corpus`]
//!   (`cargo run --manifest-path fuzz/Cargo.toml --example write_seeds`).
//! - `fuzz_targets/`: `jwt_verify`, `decide`, `upstash_replies`, `bridge_command`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use tollgate_shared::hostile::{cases, controls, Signer};
use tollgate_shared::jwt::{KeySet, Validation};
use tollgate_shared::records::JtiRecord;
use tollgate_shared::AccessClaims;

/// The fixed clock every target verifies at: time is an input, so findings reproduce.
pub const NOW: i64 = 1_800_000_000;

/// The keys the targets verify with, and the signers that made the corpus's valid tokens.
#[derive(Debug)]
pub struct Fixture {
    pub ed: Signer,
    pub hs: Signer,
    pub keys: KeySet,
    pub validation: Validation,
}

impl Fixture {
    pub fn new() -> Self {
        let ed = Signer::ed25519("ed25519-fuzz", [7; 32]);
        let hs = Signer::hs256(vec![9; 32]).unwrap_or_else(|_| unreachable!("32 bytes"));
        let mut keys = KeySet::new();
        keys.insert(ed.kid(), ed.signing_key().verifying_key());
        keys.insert(hs.kid(), hs.signing_key().verifying_key());
        Self {
            ed,
            hs,
            keys,
            validation: Validation {
                leeway: 30,
                ..Validation::new("tollgate", "tollgate-api", 900)
            },
        }
    }

    pub fn signers(&self) -> [&Signer; 2] {
        [&self.ed, &self.hs]
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

/// A claim set valid at [`NOW`].
pub fn template() -> AccessClaims {
    tollgate_testkit::claims::access_claims(NOW - 10, NOW + 890)
}

/// What must hold of `token` if `jwt::verify` accepted it as `claims`: a three-segment token
/// whose header names a key of the set with that key's algorithm and no `crit`, whose payload
/// decodes to exactly `claims`, and whose claims satisfy every time, issuer and audience rule.
pub fn assert_acceptable(f: &Fixture, token: &str, claims: &AccessClaims) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "accepted a token without three segments");
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(parts[0])
        .ok()
        .and_then(|h| serde_json::from_slice(&h).ok())
        .expect("accepted a token whose header is not base64url JSON");
    let kid = header["kid"]
        .as_str()
        .expect("accepted a token without a kid");
    let key = f
        .keys
        .get(kid)
        .expect("accepted a token with an unknown kid");
    assert_eq!(
        header["alg"].as_str(),
        Some(key.algorithm().as_str()),
        "accepted a token whose alg is not its key's"
    );
    assert!(
        header.get("crit").is_none_or(|c| c.is_null()),
        "accepted a crit header"
    );
    let payload: AccessClaims = URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()
        .and_then(|p| serde_json::from_slice(&p).ok())
        .expect("accepted a token whose payload is not our claims");
    assert_eq!(
        &payload, claims,
        "verify returned claims the payload does not hold"
    );
    let v = &f.validation;
    assert!(NOW < claims.exp, "accepted an expired token");
    assert!(
        claims.iat <= NOW + v.leeway,
        "accepted a token issued in the future"
    );
    assert!(
        claims.nbf.is_none_or(|n| n <= NOW + v.leeway),
        "accepted a token not valid yet"
    );
    assert_eq!(claims.iss, v.issuer, "accepted a foreign issuer");
    assert_eq!(claims.aud, v.audience, "accepted a foreign audience");
    assert!(token.len() <= tollgate_shared::jwt::MAX_TOKEN_LEN);
}

/// The seed corpus: `(target, file name, bytes)`.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let f = Fixture::new();
    let mut out = Vec::new();
    // jwt_verify: raw mode (first byte even) takes the rest as the token.
    for signer in f.signers() {
        let alg = signer.algorithm().as_str().to_ascii_lowercase();
        let raw = |t: &str| [&[0u8][..], t.as_bytes()].concat();
        for control in controls(signer, &template(), &f.validation, NOW) {
            out.push((
                "jwt_verify",
                format!("valid-{alg}-{}", control.name),
                raw(&control.token),
            ));
        }
        // The hostile table once (Ed25519), less its multi-kilobyte tokens: the mutator
        // reaches those lengths by itself.
        if signer.algorithm() != f.ed.algorithm() {
            continue;
        }
        for case in cases(signer, &template(), &f.validation, NOW) {
            if case.token.len() <= 1024 {
                out.push((
                    "jwt_verify",
                    format!("hostile-{alg}-{}", case.name),
                    raw(&case.token),
                ));
            }
        }
    }
    // jwt_verify: structured mode (first byte odd), a few shapes for the mutator to start from.
    for (i, bytes) in [
        &[1u8, 0, 0, 0][..],
        &[1, 1, 1, 1, 1, 1, 1, 1],
        &[3, 2, 0, 5, 0, 0, 9, 9, 9],
    ]
    .iter()
    .enumerate()
    {
        out.push(("jwt_verify", format!("structured-{i}"), bytes.to_vec()));
    }

    // decide: selector byte (low nibble: the token's version; high nibble: the user's current
    // version plus one, 0 for no such user), then the raw record. Claims are sub u1, sid s1.
    let record = |exp: i64, sid: &str, ver: u64| {
        JtiRecord {
            exp,
            token_id: sid.into(),
            token_version: ver,
        }
        .encode()
    };
    let decide_seeds: Vec<(&str, u8, String)> = vec![
        ("match", 0x21, record(NOW + 900, "s1", 1)),
        ("other-exp", 0x21, record(NOW - 1, "s1", 1)),
        ("other-session", 0x21, record(NOW + 900, "s2", 1)),
        ("other-version", 0x21, record(NOW + 900, "s1", 2)),
        ("no-user", 0x01, record(NOW + 900, "s1", 1)),
        ("bumped", 0x31, record(NOW + 900, "s1", 1)),
        ("leading-zero", 0x21, format!("0{}.s1.1", NOW + 900)),
        ("plus-version", 0x21, format!("{}.s1.+1", NOW + 900)),
        ("four-parts", 0x21, format!("{}.s1.1.1", NOW + 900)),
        ("empty-session", 0x21, format!("{}..1", NOW + 900)),
        ("seed-layout", 0x21, r#"{"userId":"u1","tokenVersion":1,"tokenId":"s1","deviceInfo":{},"createdAt":"x"}"#.into()),
        ("duplicate-user", 0x21, r#"{"userId":"u2","userId":"u1","tokenVersion":1,"tokenId":"s1","deviceInfo":{},"createdAt":"x"}"#.into()),
        ("version-string", 0x21, r#"{"userId":"u1","tokenVersion":"1","tokenId":"s1","deviceInfo":{},"createdAt":"x"}"#.into()),
        ("version-float", 0x21, r#"{"userId":"u1","tokenVersion":1.0,"tokenId":"s1","deviceInfo":{},"createdAt":"x"}"#.into()),
        ("extra-fields", 0x21, r#"{"userId":"u1","tokenVersion":1,"tokenId":"s1","deviceInfo":{"x":1},"createdAt":"x","admin":true}"#.into()),
        ("null", 0x21, "null".into()),
        ("array", 0x21, "[]".into()),
        ("empty", 0x21, String::new()),
        ("junk", 0x21, "{junk".into()),
    ];
    for (name, selector, raw) in decide_seeds {
        out.push((
            "decide",
            name.to_owned(),
            [&[selector][..], raw.as_bytes()].concat(),
        ));
    }

    // upstash_replies: bodies as Upstash (or the bridge) might answer the validation pipeline
    // (one HMGET: one reply holding two values); the rest are the seed layout's two-GET shapes.
    for (name, body) in [
        ("hmget", r#"[{"result":["1900000000.s1.3","3"]}]"#),
        ("hmget-revoked", r#"[{"result":[null,"3"]}]"#),
        ("hmget-no-user", r#"[{"result":["1900000000.s1.3",null]}]"#),
        ("hmget-one-value", r#"[{"result":["x"]}]"#),
        ("hmget-numbers", r#"[{"result":[1,2]}]"#),
        (
            "two-values",
            r#"[{"result":"{\"userId\":\"u1\"}"},{"result":"3"}]"#,
        ),
        ("revoked", r#"[{"result":null},{"result":"3"}]"#),
        ("no-user", r#"[{"result":"{}"},{"result":null}]"#),
        (
            "error",
            r#"[{"error":"WRONGTYPE Operation against a key holding the wrong kind of value"},{"result":"1"}]"#,
        ),
        ("top-level-error", r#"{"error":"Unauthorized"}"#),
        ("one-reply", r#"[{"result":"x"}]"#),
        (
            "three-replies",
            r#"[{"result":"x"},{"result":"1"},{"result":"2"}]"#,
        ),
        ("number-result", r#"[{"result":1},{"result":"1"}]"#),
        ("array-result", r#"[{"result":["a"]},{"result":"1"}]"#),
        (
            "both-fields",
            r#"[{"result":"x","error":"y"},{"result":"1"}]"#,
        ),
        (
            "duplicate-result",
            r#"[{"result":"x","result":null},{"result":"1"}]"#,
        ),
        ("empty-objects", r#"[{},{}]"#),
        (
            "base64",
            r#"[{"result":"eyJ1c2VySWQiOiJ1MSJ9"},{"result":"Mw=="}]"#,
        ),
        ("not-json", "<html>502 Bad Gateway</html>"),
        ("empty", ""),
    ] {
        out.push(("upstash_replies", name.to_owned(), body.as_bytes().to_vec()));
    }

    // bridge_command: selector byte (bit 0: pipeline body, bit 1: path form), then the input;
    // for the path form, the input is `path\0query\0body`.
    for (name, selector, input) in [
        ("get", 0u8, &br#"["GET","token:jti:abc"]"#[..]),
        ("set-ex", 0, br#"["SET","k","v","EX",100,"NX"]"#),
        ("numbers-bools", 0, br#"["SET","k",1.5,true,-3]"#),
        ("subscribe", 0, br#"["subscribe","c"]"#),
        (
            "xread-block",
            0,
            br#"["XREAD","BLOCK",0,"STREAMS","s","$"]"#,
        ),
        ("eval", 0, br#"["EVAL","return 1","0"]"#),
        ("nested", 0, br#"[["GET","a"]]"#),
        ("object", 0, br#"[{"a":1}]"#),
        ("null", 0, b"[null]"),
        ("empty", 0, b"[]"),
        ("pipeline", 1, br#"[["GET","a"],["GET","b"]]"#),
        (
            "pipeline-mixed",
            1,
            br#"[["GET","a"],["MULTI"],["SET","k","v"]]"#,
        ),
        ("pipeline-flat", 1, br#"["GET","a"]"#),
        ("pipeline-empty", 1, b"[]"),
        ("path-set", 2, b"/set/a%2Fb/%E2%98%83\0EX=100&_token=x\0"),
        ("path-body", 2, b"/set/k\0\0\xff\x00binary"),
        ("path-empty", 2, b"/\0\0"),
        ("path-blpop", 2, b"/blpop/l/0\0\0"),
        ("path-traversal", 2, b"/get/..%2F..%2Fetc%2Fpasswd\0\0"),
    ] {
        out.push((
            "bridge_command",
            name.to_owned(),
            [&[selector][..], input].concat(),
        ));
    }
    out
}

/// Writes [`seeds`] under `<root>/<target>/`: the committed corpus in `fuzz/corpus/`
/// (`cargo run --manifest-path fuzz/Cargo.toml --example write_seeds` after changing them).
pub fn write_seed_corpus(root: &std::path::Path) -> std::io::Result<()> {
    for (target, name, bytes) in seeds() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_seeds_verify_and_pass_the_oracle() {
        let f = Fixture::new();
        let valid: Vec<_> = seeds()
            .into_iter()
            .filter(|(t, n, _)| *t == "jwt_verify" && n.starts_with("valid-"))
            .collect();
        assert_eq!(valid.len(), 8);
        for (_, name, bytes) in valid {
            let token = std::str::from_utf8(&bytes[1..]).expect("utf8");
            let claims = tollgate_shared::jwt::verify(token, &f.keys, &f.validation, NOW)
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
            assert_acceptable(&f, token, &claims);
        }
    }
}
