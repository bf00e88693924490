//! Register, login, me, rate limits, input rules, stats, JWKS, health.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{error_code, spawn_app, Backend, PASSWORD};

both_backends!(
    register_then_login_then_me,
    duplicate_email_in_any_case_or_normalisation_is_409,
    register_rejects_bad_input_with_422_or_413,
    unknown_email_and_wrong_password_answer_identically,
    twenty_concurrent_logins_make_twenty_sessions,
    sessions_list_marks_the_current_device,
    token_stats_is_admin_only_and_counts_state,
    jwks_publishes_public_keys_only,
    health_ready_and_unknown_routes_answer_json,
    refresh_secrets_are_stored_only_as_hashes,
);

async fn register_then_login_then_me(b: Backend) {
    let app = spawn_app(b).await;
    let r = app
        .post_json(
            "/api/users/register",
            &json!({"email": "Ada@Example.com", "password": PASSWORD, "name": "Ada"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["data"]["email"], "Ada@Example.com");
    assert_eq!(body["data"]["name"], "Ada");
    let id = body["data"]["id"].as_str().expect("id").to_owned();

    let r = app
        .post_json(
            "/api/users/login",
            &json!({"email": "ada@example.COM", "password": PASSWORD, "device_name": "Laptop"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    let d = &body["data"];
    assert_eq!(d["token_type"], "Bearer");
    assert_eq!(d["expires_in"], 900);
    for field in ["access_token", "refresh_token", "jti", "token_id"] {
        assert!(
            d[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} missing"
        );
    }
    let access = d["access_token"].as_str().expect("access");
    let me: Value = app
        .get_auth("/api/users/me", access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["data"]["id"], id.as_str());
    assert_eq!(me["data"]["email"], "Ada@Example.com");
    assert_eq!(me["data"]["token_version"], 1);
}

async fn duplicate_email_in_any_case_or_normalisation_is_409(b: Backend) {
    let app = spawn_app(b).await;
    let first = app
        .post_json(
            "/api/users/register",
            &json!({"email": "jos\u{e9}@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    for dup in [
        "JOS\u{c9}@EXAMPLE.COM",
        "jose\u{301}@example.com",
        " jos\u{e9}@example.com ",
    ] {
        let r = app
            .post_json(
                "/api/users/register",
                &json!({"email": dup, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            error_code(r, StatusCode::CONFLICT).await,
            "email_taken",
            "{dup:?}"
        );
    }
}

async fn register_rejects_bad_input_with_422_or_413(b: Backend) {
    let app = spawn_app(b).await;
    let cases = [
        json!({"email": "not-an-email", "password": PASSWORD}),
        json!({"email": "a@b.co", "password": "short"}),
        json!({"email": "a@b.co", "password": "x".repeat(1025)}),
        json!({"email": "a@b.co"}),
        json!({"email": 5, "password": PASSWORD}),
        json!({"email": "a@b.co", "password": PASSWORD, "name": "n".repeat(101)}),
        json!({"email": format!("{}@b.co", "a".repeat(300)), "password": PASSWORD}),
        json!([1, 2, 3]),
    ];
    for body in cases {
        let r = app.post_json("/api/users/register", &body).await;
        assert_eq!(
            error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await,
            "invalid_input",
            "{body}"
        );
    }
    let r = app
        .client
        .post(app.url("/api/users/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(
        error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid_input"
    );
    let huge = json!({"email": "a@b.co", "password": PASSWORD, "name": "x".repeat(64 * 1024)});
    let r = app.post_json("/api/users/register", &huge).await;
    assert_eq!(
        error_code(r, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );
    let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let r = app
        .client
        .post(app.url("/api/users/login"))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .expect("request");
    assert_eq!(
        error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid_input"
    );
}

async fn unknown_email_and_wrong_password_answer_identically(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let wrong = app
        .post_json(
            "/api/users/login",
            &json!({"email": email, "password": "wrong password"}),
        )
        .await;
    let unknown = app
        .post_json(
            "/api/users/login",
            &json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let wrong: Value = wrong.json().await.expect("json");
    let unknown: Value = unknown.json().await.expect("json");
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["error"]["code"], "invalid_credentials");
}

async fn twenty_concurrent_logins_make_twenty_sessions(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let logins = (0..20).map(|i| {
        let app = &app;
        let email = email.clone();
        async move { app.login(&email, &format!("device-{i}")).await }
    });
    let tokens = join_all(logins).await;
    let mut ids: Vec<&str> = tokens.iter().map(|t| t.token_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 20);
    let body: Value = app
        .get_auth("/api/users/sessions", &tokens[0].access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["meta"]["total"], 20);
    for t in &tokens {
        assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
    }
}

async fn sessions_list_marks_the_current_device(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let phone = app.login(&email, "Phone").await;
    let laptop = app.login(&email, "Laptop").await;
    let r = app
        .client
        .get(app.url("/api/users/sessions"))
        .bearer_auth(&laptop.access)
        .header("user-agent", "TestAgent/1.0")
        .send()
        .await
        .expect("request");
    let body: Value = r.json().await.expect("json");
    let data = body["data"].as_array().expect("array");
    assert_eq!(data.len(), 2);
    assert_eq!(body["meta"]["total"], 2);
    assert_eq!(body["meta"]["current_jti"], laptop.jti.as_str());
    let find = |tid: &str| {
        data.iter()
            .find(|s| s["token_id"] == tid)
            .expect("session listed")
    };
    let l = find(&laptop.token_id);
    assert_eq!(l["is_current"], true);
    assert_eq!(l["jti"], laptop.jti.as_str());
    assert_eq!(l["device_name"], "Laptop");
    assert_eq!(l["ip"], "127.0.0.1");
    assert_eq!(l["token_version"], 1);
    for field in ["id", "created_at", "last_seen_at", "user_agent"] {
        assert!(l.get(field).is_some(), "{field} missing");
    }
    let p = find(&phone.token_id);
    assert_eq!(p["is_current"], false);
    assert_eq!(p["jti"], phone.jti.as_str());
    // Another user sees none of these.
    let other = app.new_user().await;
    let o = app.login(&other, "x").await;
    let body: Value = app
        .get_auth("/api/users/sessions", &o.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["meta"]["total"], 1);
}

async fn token_stats_is_admin_only_and_counts_state(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.new_user().await;
    let t = app.login(&user, "d").await;
    let r = app.get_auth("/api/users/token-stats", &t.access).await;
    assert_eq!(error_code(r, StatusCode::FORBIDDEN).await, "forbidden");

    let r = app
        .post_json(
            "/api/users/register",
            &json!({"email": "Boss@Example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // The only way to the admin role: what `tollgate-origin user promote` runs.
    app.exec_sql("UPDATE users SET role = 'admin' WHERE email_normalized = 'boss@example.com'")
        .await;
    let boss = app.login("boss@example.com", "admin").await;
    let second = app.login(&user, "d2").await;
    app.post_auth("/api/users/logout", &second.access).await;
    let r = app.get_auth("/api/users/token-stats", &boss.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let s: Value = r.json().await.expect("json");
    assert_eq!(s["redis"]["totalJtis"], 2, "{s}");
    assert_eq!(s["redis"]["totalRefreshTokens"], 3, "{s}");
    assert!(s["redis"]["memoryUsage"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(s["database"]["totalRefreshTokens"], 3);
    assert_eq!(s["database"]["activeRefreshTokens"], 2);
    assert_eq!(s["database"]["revokedRefreshTokens"], 1);
}

async fn jwks_publishes_public_keys_only(b: Backend) {
    let app = spawn_app(b).await;
    let r = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let jwks: Value = r.json().await.expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["alg"], "EdDSA");
    assert!(keys[0]["kid"].is_string());
    assert!(keys[0].get("d").is_none(), "private key leaked");
}

async fn health_ready_and_unknown_routes_answer_json(b: Backend) {
    let app = spawn_app(b).await;
    let get = |p: &str| app.client.get(app.url(p)).send();
    assert_eq!(get("/health").await.expect("r").status(), StatusCode::OK);
    assert_eq!(get("/ready").await.expect("r").status(), StatusCode::OK);
    let r = get("/nope").await.expect("r");
    assert_eq!(error_code(r, StatusCode::NOT_FOUND).await, "not_found");
    let r = app
        .client
        .delete(app.url("/api/users/login"))
        .send()
        .await
        .expect("r");
    assert_eq!(
        error_code(r, StatusCode::METHOD_NOT_ALLOWED).await,
        "method_not_allowed"
    );
}

async fn refresh_secrets_are_stored_only_as_hashes(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let r = app.refresh(&t.refresh).await;
    let rotated = crate::helpers::Tokens::from_body(&r.json().await.expect("json"));
    let dump = app.db_text().await;
    for secret in [&t.refresh, &rotated.refresh] {
        assert!(
            !dump.contains(secret.as_str()),
            "a refresh secret is stored in clear"
        );
        assert!(
            !dump.contains(&secret[3..]),
            "a refresh secret is stored in clear"
        );
    }
    assert!(
        dump.contains(&crate::helpers::sha256_hex(&rotated.refresh)),
        "the current secret's SHA-256 is not stored"
    );
    assert!(!dump.contains(PASSWORD), "password stored in clear");
    assert!(dump.contains("$argon2id$"));
}
