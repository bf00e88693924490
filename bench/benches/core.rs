//! Micro-benchmarks of the per-request CPU work in `tollgate-shared`, native, per algorithm:
//! `jwt::verify` (format, signature, claims), `decide` (layers 3–5 from the Redis values),
//! both together (what a protected request costs before and after its one Redis round trip),
//! `sign` (what login and refresh pay per token), and for scale one Argon2id hash and verify with
//! the origin's parameters.
//!
//! Criterion writes its estimates under `target/criterion/`; `tollgate-bench report` reads them.

use std::hint::black_box;
use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use criterion::{criterion_group, criterion_main, Criterion};
use tollgate_shared::decision::decide_reseeded;
use tollgate_shared::jwt::{self, HmacSecret, KeySet, SigningKey, Validation};
use tollgate_shared::AccessClaims;
use tollgate_testkit::claims as fixture;

const NOW: i64 = 1_780_000_000;

/// The jti record as the origin stores it (field `j:{jti}` of `tg:{userId}`).
fn record(c: &AccessClaims) -> String {
    fixture::jti_record(c)
}

fn keys() -> [(&'static str, SigningKey); 2] {
    let ed = SigningKey::EdDSA {
        kid: "ed25519-bench".into(),
        key: ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng),
    };
    let secret = HmacSecret::new(vec![0x5a; 32]).unwrap_or_else(|_| unreachable!());
    let hs = SigningKey::HS256 {
        kid: secret.kid(),
        secret,
    };
    [("EdDSA", ed), ("HS256", hs)]
}

fn validation() -> Validation {
    Validation {
        leeway: 30,
        ..Validation::new("tollgate", "tollgate-api", 900)
    }
}

fn token_path(c: &mut Criterion) {
    let claims = fixture::access_claims(NOW, NOW + 900);
    let record = record(&claims);
    let validation = validation();
    for (alg, key) in keys() {
        let mut set = KeySet::new();
        set.insert(key.kid(), key.verifying_key());
        let token = key.sign(&claims);
        assert!(jwt::verify(&token, &set, &validation, NOW).is_ok());

        let mut g = c.benchmark_group(format!("jwt/{alg}"));
        g.bench_function("verify", |b| {
            b.iter(|| jwt::verify(black_box(&token), &set, &validation, NOW))
        });
        g.bench_function("verify_decide", |b| {
            b.iter(|| {
                let claims = jwt::verify(black_box(&token), &set, &validation, NOW)
                    .unwrap_or_else(|_| unreachable!());
                decide_reseeded(&claims, Some(black_box(record.as_str())), Some(3))
            })
        });
        g.bench_function("sign", |b| b.iter(|| key.sign(black_box(&claims))));
        g.finish();
    }
    c.bench_function("decide", |b| {
        b.iter(|| {
            decide_reseeded(
                black_box(&claims),
                Some(black_box(record.as_str())),
                Some(3),
            )
        })
    });
}

/// Argon2id with the origin's parameters (`Argon2::default()`): the cost login is bound by.
fn password(c: &mut Criterion) {
    let argon = Argon2::default();
    let salt = argon2::password_hash::SaltString::generate(&mut OsRng);
    let hash = argon
        .hash_password(b"correct horse battery", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut g = c.benchmark_group("argon2id");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    g.bench_function("hash", |b| {
        b.iter(|| argon.hash_password(black_box(b"correct horse battery"), &salt))
    });
    g.bench_function("verify", |b| {
        b.iter(|| {
            let parsed = PasswordHash::new(&hash).unwrap_or_else(|_| unreachable!());
            argon.verify_password(black_box(b"correct horse battery"), &parsed)
        })
    });
    g.finish();
}

criterion_group!(benches, token_path, password);
criterion_main!(benches);
