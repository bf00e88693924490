//! The five validation layers at the origin, key modes, and Redis hygiene.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use redis::AsyncCommands as _;
use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{spawn_app, spawn_app_with, Backend};
use tollgate_shared::keys::field;

both_backends!(
    every_layer_refuses_with_its_own_code,
    expired_and_future_tokens_are_refused,
    a_missing_version_key_is_reseeded_from_the_database,
    a_deleted_user_is_user_unknown,
    hs256_jwt_secret_mode_signs_and_verifies,
    the_users_hash_does_not_grow_as_tokens_expire,
);

use crate::helpers::claims_of as decode_claims;

async fn every_layer_refuses_with_its_own_code(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;

    // Missing header.
    let r = app
        .client
        .get(app.url("/api/users/me"))
        .send()
        .await
        .expect("r");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(r#"Bearer error="invalid_token""#)
    );
    // Format.
    for junk in ["abc", "a.b", "a.b.c.d", "!!!.???.***", &"x".repeat(9000)] {
        assert_eq!(
            app.me_status(junk).await,
            (StatusCode::UNAUTHORIZED, "token_malformed".into()),
            "{junk:.20}"
        );
    }
    // Signature: payload changed, signature kept.
    let mut claims = decode_claims(&t.access);
    claims.sub = "someone-else".into();
    let parts: Vec<&str> = t.access.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json")),
        parts[2]
    );
    assert_eq!(app.me_status(&forged).await.1, "token_signature");
    // alg none.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let none = format!("{none_header}.{}.", parts[1]);
    assert_eq!(app.me_status(&none).await.1, "token_signature");
    // jti gone.
    let mut redis = app.redis_conn().await;
    let user = app.state.redis.keys().user(&decode_claims(&t.access).sub);
    let jti_field = field::jti(&t.jti);
    let record: String = redis.hget(&user, &jti_field).await.expect("record");
    let _: () = redis.hdel(&user, &jti_field).await.expect("del");
    assert_eq!(app.me_status(&t.access).await.1, "token_revoked");
    // Version moved on (record put back, version bumped behind its back).
    let _: () = redis.hset(&user, &jti_field, &record).await.expect("set");
    assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
    let _: () = redis.hset(&user, field::VERSION, 99).await.expect("set");
    assert_eq!(app.me_status(&t.access).await.1, "token_version");
}

async fn expired_and_future_tokens_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let keys = app.state.keys.view();
    let signer = &keys.signing;
    let now = tollgate_origin::domain::now();
    let mut c = decode_claims(&t.access);
    c.iat = now - 1000;
    c.exp = now - 100;
    assert_eq!(app.me_status(&signer.sign(&c)).await.1, "token_expired");
    let mut c = decode_claims(&t.access);
    c.iat = now + 3600;
    c.exp = now + 7200;
    assert_eq!(app.me_status(&signer.sign(&c)).await.1, "token_claims");
    let mut c = decode_claims(&t.access);
    c.aud = "another-api".into();
    assert_eq!(app.me_status(&signer.sign(&c)).await.1, "token_claims");
    let mut c = decode_claims(&t.access);
    c.iss = "evil".into();
    assert_eq!(app.me_status(&signer.sign(&c)).await.1, "token_claims");
    // The genuine token is still fine.
    assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
}

async fn a_missing_version_key_is_reseeded_from_the_database(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let user_id = decode_claims(&t.access).sub;
    assert!(app.hdel(&user_id, field::VERSION).await);
    assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
    assert_eq!(
        app.hget(&user_id, field::VERSION).await.as_deref(),
        Some("1")
    );
}

async fn a_deleted_user_is_user_unknown(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let user_id = decode_claims(&t.access).sub;
    app.exec_sql(&format!("DELETE FROM users WHERE id = '{user_id}'"))
        .await;
    assert!(app.hdel(&user_id, field::VERSION).await);
    assert_eq!(
        app.me_status(&t.access).await,
        (StatusCode::UNAUTHORIZED, "user_unknown".into())
    );
}

async fn hs256_jwt_secret_mode_signs_and_verifies(b: Backend) {
    let secret = "k".repeat(48);
    let app = spawn_app_with(b, &[("JWT_SECRET", &secret)]).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let header: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(t.access.split('.').next().expect("header"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"]
        .as_str()
        .is_some_and(|k| k.starts_with("hs256-")));
    assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
    // The JWKS never carries the secret, in any encoding: no symmetric key at all, nothing
    // private, and no value that decodes to the secret.
    let jwks: serde_json::Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("r")
        .json()
        .await
        .expect("JWKS is JSON");
    let keys = jwks["keys"].as_array().expect("keys");
    for key in keys {
        assert_ne!(key["kty"], "oct", "a symmetric key is published: {key}");
        assert_eq!(
            key["kty"], "OKP",
            "only Ed25519 public keys belong here: {key}"
        );
        for private in ["k", "d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                key.get(private).is_none(),
                "`{private}` is published: {key}"
            );
        }
        assert_ne!(key["alg"], "HS256", "{key}");
        for value in key.as_object().expect("a JWK is an object").values() {
            let text = value.as_str().unwrap_or_default();
            let decoded = URL_SAFE_NO_PAD.decode(text).unwrap_or_default();
            assert!(
                text != secret && decoded != secret.as_bytes(),
                "the secret is published: {key}"
            );
        }
    }
}

async fn the_users_hash_does_not_grow_as_tokens_expire(b: Backend) {
    // Logins are staggered so the hash holds live tokens (and lives on for the refresh
    // lifetime) while the older tokens lapse: only pruning can bring the count back down.
    const TTL: i64 = 6;
    let ttl = TTL.to_string();
    let app = spawn_app_with(b, &[("ACCESS_TOKEN_TTL_SECS", &ttl)]).await;
    let email = app.new_user().await;
    let mut old = Vec::new();
    for i in 0..3 {
        old.push(app.login(&email, &format!("old{i}")).await);
    }
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mut young = Vec::new();
    for i in 0..2 {
        young.push(app.login(&email, &format!("young{i}")).await);
    }
    let user_id = decode_claims(&old[0].access).sub;
    let user = app.state.redis.keys().user(&user_id);
    let mut redis = app.redis_conn().await;
    let jtis = |fields: Vec<String>| -> Vec<String> {
        let mut jtis: Vec<String> = fields
            .iter()
            .filter_map(|f| f.strip_prefix(field::JTI))
            .map(str::to_owned)
            .collect();
        jtis.sort();
        jtis
    };
    let fields: Vec<String> = redis.hkeys(&user).await.expect("hkeys");
    assert_eq!(jtis(fields).len(), 5);
    // Sleep until the old tokens have expired (exp is whole seconds: a little past TTL after
    // the last old login).
    let last_old_exp = old.iter().map(|t| decode_claims(&t.access).exp).max();
    let last_old_exp = last_old_exp.expect("old tokens");
    let wait = last_old_exp - tollgate_origin::domain::now();
    tokio::time::sleep(std::time::Duration::from_millis(
        u64::try_from(wait).unwrap_or(0) * 1000 + 100,
    ))
    .await;
    let late = app.login(&email, "late").await;
    let now = decode_claims(&late.access).iat;
    // The premise, from the tokens' own claims: the old ones lapsed, the young ones live on.
    assert!(old.iter().all(|t| decode_claims(&t.access).exp <= now));
    assert!(
        young.iter().all(|t| decode_claims(&t.access).exp > now),
        "the machine was too slow for the young tokens to outlive the old ones"
    );
    let members = jtis(redis.hkeys(&user).await.expect("hkeys"));
    let mut expected: Vec<String> = young.iter().chain([&late]).map(|t| t.jti.clone()).collect();
    expected.sort();
    assert_eq!(members, expected, "expired jtis were not pruned");
    // The hash lives a refresh lifetime past its last write, never for ever.
    let ttl: i64 = redis.ttl(&user).await.expect("ttl");
    let refresh_ttl = i64::try_from(app.state.settings.refresh_ttl).expect("ttl");
    assert!(
        (refresh_ttl - 5..=refresh_ttl).contains(&ttl),
        "the hash must expire a refresh lifetime after its last write, ttl={ttl}"
    );
}
