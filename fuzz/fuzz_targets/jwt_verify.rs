//! `jwt::verify` against a fixed key set, in two modes chosen by the first byte:
//! - even: the rest is the token, as raw bytes. Nothing but a corpus token can carry a valid
//!   signature, so anything accepted must carry byte for byte the signature our key makes over
//!   its header and payload (no malleable encoding or second signature gets through).
//! - odd: the rest drives [`Forged`]: a header and payload built member by member (algorithms,
//!   kids, `jku`/`crit`/duplicate members, claims of any type), signed by our Ed25519 key, our
//!   HMAC secret or the attacker's key, then maybe one byte changed. Anything accepted must be
//!   signed by us and satisfy every rule ([`assert_acceptable`]).
#![no_main]

use std::sync::LazyLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use tollgate_fuzz::{assert_acceptable, template, Fixture, NOW};
use tollgate_shared::hostile::Signer;
use tollgate_shared::jwt::verify;

static FIXTURE: LazyLock<Fixture> = LazyLock::new(Fixture::new);
static ATTACKER: LazyLock<Signer> = LazyLock::new(|| Signer::ed25519("attacker", [0xEE; 32]));

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    match data.split_first() {
        Some((mode, rest)) if mode & 1 == 1 => {
            if let Ok(forged) = Forged::arbitrary_take_rest(Unstructured::new(rest)) {
                forged.check(f);
            }
        }
        Some((_, rest)) => {
            let Ok(token) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(claims) = verify(token, &f.keys, &f.validation, NOW) {
                assert_acceptable(f, token, &claims);
                // Signatures are deterministic, so the only acceptable third segment is the one
                // our key makes over the first two.
                let (input, _) = token.rsplit_once('.').unwrap_or_default();
                let (h64, p64) = input.split_once('.').unwrap_or_default();
                assert!(
                    f.signers()
                        .iter()
                        .any(|s| s.sign_segments(h64, p64) == token),
                    "accepted a token our keys never produced: {token}"
                );
            }
        }
        None => {}
    }
});

#[derive(Debug, Arbitrary)]
enum Who {
    Ed,
    Hs,
    Attacker,
}

/// One JSON member: kept at the valid default, dropped, or replaced by a value of any type.
#[derive(Debug, Arbitrary)]
enum Member {
    Keep,
    Drop,
    Null,
    Int(i64),
    Near(i16),
    Str(String),
    Float(f64),
    Bool(bool),
    List(Vec<String>),
}

impl Member {
    /// The value to write, `None` to omit the member.
    fn render(&self, default: Value) -> Option<Value> {
        Some(match self {
            Self::Keep => default,
            Self::Drop => return None,
            Self::Null => Value::Null,
            Self::Int(i) => json!(i),
            // Times near NOW reach the edges of the exp/iat/nbf rules.
            Self::Near(d) => json!(NOW + i64::from(*d)),
            Self::Str(s) => json!(s),
            Self::Float(x) => json!(x),
            Self::Bool(b) => json!(b),
            Self::List(v) => json!(v),
        })
    }
}

#[derive(Debug, Arbitrary)]
struct Forged {
    who: Who,
    alg: Member,
    kid: Member,
    header_extra: Vec<(HeaderName, Member)>,
    header_duplicate: Option<(HeaderName, Member)>,
    claims: [Member; 9],
    claim_duplicate: Option<(u8, Member)>,
    edit: Option<(u16, u8)>,
}

#[derive(Debug, Arbitrary)]
enum HeaderName {
    Jku,
    X5u,
    Jwk,
    Crit,
    Typ,
    Alg,
    Kid,
    Other(String),
}

impl HeaderName {
    fn as_str(&self) -> &str {
        match self {
            Self::Jku => "jku",
            Self::X5u => "x5u",
            Self::Jwk => "jwk",
            Self::Crit => "crit",
            Self::Typ => "typ",
            Self::Alg => "alg",
            Self::Kid => "kid",
            Self::Other(s) => s,
        }
    }
}

const CLAIMS: [&str; 9] = [
    "sub", "jti", "ver", "sid", "iat", "exp", "nbf", "iss", "aud",
];

/// `object` with `,"name":value` appended as text: a duplicate member no map can hold.
fn with_duplicate(object: &Map<String, Value>, name: &str, value: Option<Value>) -> String {
    let text = Value::Object(object.clone()).to_string();
    let Some(value) = value else { return text };
    let member = format!("{}:{value}", Value::from(name));
    let body = &text[..text.len() - 1];
    if object.is_empty() {
        format!("{body}{member}}}")
    } else {
        format!("{body},{member}}}")
    }
}

impl Forged {
    fn check(&self, f: &Fixture) {
        let signer: &Signer = match self.who {
            Who::Ed => &f.ed,
            Who::Hs => &f.hs,
            Who::Attacker => &ATTACKER,
        };
        // The attacker always claims one of our kids.
        let default_kid = match self.who {
            Who::Attacker => f.ed.kid(),
            _ => signer.kid(),
        };
        let mut header = Map::new();
        if let Some(alg) = self.alg.render(json!(signer.algorithm().as_str())) {
            header.insert("alg".into(), alg);
        }
        header.insert("typ".into(), json!("JWT"));
        if let Some(kid) = self.kid.render(json!(default_kid)) {
            header.insert("kid".into(), kid);
        }
        for (name, member) in &self.header_extra {
            if let Some(v) = member.render(json!("https://evil.example/jwks.json")) {
                header.insert(name.as_str().to_owned(), v);
            }
        }
        let header_text = match &self.header_duplicate {
            Some((name, member)) => {
                with_duplicate(&header, name.as_str(), member.render(json!("none")))
            }
            None => Value::Object(header).to_string(),
        };

        let valid = serde_json::to_value(template()).unwrap_or_default();
        let mut claims = Map::new();
        for (name, member) in CLAIMS.iter().zip(&self.claims) {
            let default = valid.get(*name).cloned().unwrap_or(json!(NOW));
            if let Some(v) = member.render(default) {
                claims.insert((*name).to_owned(), v);
            }
        }
        let claims_text = match &self.claim_duplicate {
            Some((i, member)) => {
                let name = CLAIMS[usize::from(*i) % CLAIMS.len()];
                with_duplicate(&claims, name, member.render(json!("someone-else")))
            }
            None => Value::Object(claims).to_string(),
        };

        let mut token = signer
            .sign_raw(header_text.as_bytes(), claims_text.as_bytes())
            .into_bytes();
        if let Some((at, byte)) = self.edit {
            let i = usize::from(at) % token.len();
            token[i] = byte;
        }
        let Ok(token) = String::from_utf8(token) else {
            return;
        };
        if let Ok(accepted) = verify(&token, &f.keys, &f.validation, NOW) {
            assert!(
                !matches!(self.who, Who::Attacker),
                "accepted a token signed by a key we do not hold: {token}"
            );
            assert_acceptable(f, &token, &accepted);
        }
    }
}
