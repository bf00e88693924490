//! The edge's per-request CPU work — `jwt::verify` then `decide`, from `tollgate-shared`, the
//! code the Worker runs — exported as plain functions for `run.mjs` to time in V8.
//!
//! `setup(alg)` signs one token (0 = EdDSA, 1 = HS256) with a fixed key; `verify_decide(alg, n)`
//! checks it `n` times and returns how many passed; `sign(alg, n)` signs `n` times.

use std::sync::OnceLock;

use tollgate_shared::jwt::{self, HmacSecret, KeySet, SigningKey, Validation};
use tollgate_shared::decision::decide_reseeded;
use tollgate_shared::AccessClaims;
use tollgate_testkit::claims as fixture;

const NOW: i64 = 1_780_000_000;

struct Case {
    key: SigningKey,
    keys: KeySet,
    token: String,
    record: String,
    claims: AccessClaims,
}

static CASES: OnceLock<[Case; 2]> = OnceLock::new();

fn case(key: SigningKey) -> Case {
    let claims = fixture::access_claims(NOW, NOW + 900);
    let mut keys = KeySet::new();
    keys.insert(key.kid(), key.verifying_key());
    let token = key.sign(&claims);
    let record = fixture::jti_record(&claims);
    Case {
        key,
        keys,
        token,
        record,
        claims,
    }
}

fn cases() -> &'static [Case; 2] {
    CASES.get_or_init(|| {
        let ed = SigningKey::EdDSA {
            kid: "ed25519-bench".into(),
            key: ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]),
        };
        let secret = match HmacSecret::new(vec![0x5a; 32]) {
            Ok(s) => s,
            Err(_) => unreachable!(),
        };
        let hs = SigningKey::HS256 {
            kid: secret.kid(),
            secret,
        };
        [case(ed), case(hs)]
    })
}

fn validation() -> Validation {
    Validation {
        leeway: 30,
        ..Validation::new("tollgate", "tollgate-api", 900)
    }
}

#[no_mangle]
pub extern "C" fn setup() -> u32 {
    cases().len() as u32
}

#[no_mangle]
pub extern "C" fn verify_decide(alg: u32, n: u32) -> u32 {
    let c = &cases()[alg as usize % 2];
    let v = validation();
    let mut ok = 0;
    for _ in 0..n {
        if let Ok(claims) = jwt::verify(&c.token, &c.keys, &v, NOW) {
            if decide_reseeded(&claims, Some(c.record.as_str()), Some(3)).is_ok() {
                ok += 1;
            }
        }
    }
    ok
}

#[no_mangle]
pub extern "C" fn sign(alg: u32, n: u32) -> u32 {
    let c = &cases()[alg as usize % 2];
    let mut len = 0;
    for _ in 0..n {
        len = c.key.sign(&c.claims).len() as u32;
    }
    len
}
