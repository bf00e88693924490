//! Account deletion: `DELETE /api/users/me` and `tollgate-origin user delete <email>`.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{claims_of, error_code, spawn_app, Backend, TestApp, Tokens, PASSWORD};

both_backends!(
    deleting_the_account_refuses_every_token_and_frees_the_email,
    a_wrong_password_deletes_nothing_and_attempts_are_limited,
    the_cli_deletes_a_user_by_email,
);

async fn delete_me(app: &TestApp, access: &str, password: &str) -> reqwest::Response {
    app.client
        .delete(app.url("/api/users/me"))
        .bearer_auth(access)
        .json(&json!({"password": password}))
        .send()
        .await
        .expect("request")
}

/// Two devices, one rotated (so a sealed grace answer and a predecessor secret exist).
async fn user_with_devices(app: &TestApp) -> (String, Tokens, Tokens) {
    let email = app.new_user().await;
    let phone = app.login(&email, "phone").await;
    let laptop = app.login(&email, "laptop").await;
    let laptop = Tokens::from_body(
        &app.refresh(&laptop.refresh)
            .await
            .json()
            .await
            .expect("json"),
    );
    (email, phone, laptop)
}

/// What is left of the user after deletion: the rows in each table and the Redis keys (rate
/// limit counters aside, which are keyed by hashes and expire with their window).
async fn remains(app: &TestApp, user_id: &str, token_ids: &[&str]) -> (i64, Vec<String>) {
    let mut rows = 0;
    rows += app.count_where("users", &format!("id = '{user_id}'")).await;
    rows += app
        .count_where("device_sessions", &format!("user_id = '{user_id}'"))
        .await;
    for id in token_ids {
        rows += app
            .count_where("refresh_secrets", &format!("token_id = '{id}'"))
            .await;
    }
    let mut redis = app.redis_conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", app.prefix))
        .query_async(&mut redis)
        .await
        .expect("keys");
    let ratelimits = app.state.redis.keys().rate_limit_prefix();
    let keys = keys
        .into_iter()
        .filter(|k| !k.starts_with(&ratelimits))
        .collect();
    (rows, keys)
}

async fn assert_deleted(app: &TestApp, email: &str, phone: &Tokens, laptop: &Tokens) {
    let user_id = claims_of(&phone.access).sub;
    for t in [phone, laptop] {
        assert_eq!(app.me_status(&t.access).await.0, StatusCode::UNAUTHORIZED);
        let r = app.refresh(&t.refresh).await;
        assert_eq!(
            error_code(r, StatusCode::UNAUTHORIZED).await,
            "invalid_refresh_token"
        );
    }
    let (rows, keys) = remains(app, &user_id, &[&phone.token_id, &laptop.token_id]).await;
    assert_eq!(rows, 0, "rows of the deleted user remain");
    assert!(
        keys.is_empty(),
        "Redis keys of the deleted user remain: {keys:?}"
    );
    // The address is free again, for a new account with a new id.
    let r = app
        .post_json(
            "/api/users/register",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.expect("json");
    assert_ne!(body["data"]["id"], user_id.as_str());
    let again = app.login(email, "again").await;
    assert_eq!(app.me_status(&again.access).await.0, StatusCode::OK);
    assert_eq!(
        app.me_status(&phone.access).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn deleting_the_account_refuses_every_token_and_frees_the_email(b: Backend) {
    let app = spawn_app(b).await;
    let (email, phone, laptop) = user_with_devices(&app).await;
    let bystander = app.new_user().await;
    let other = app.login(&bystander, "x").await;
    let r = delete_me(&app, &phone.access, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["data"]["deleted"], true);
    // Leave only this user's keys to inspect.
    let r = app.post_auth("/api/users/logout", &other.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut redis = app.redis_conn().await;
    let other_id = claims_of(&other.access).sub;
    let keys = app.state.redis.keys().clone();
    let _: u64 = redis::cmd("DEL")
        .arg(keys.user(&other_id))
        .query_async(&mut redis)
        .await
        .expect("del");
    assert_deleted(&app, &email, &phone, &laptop).await;
}

async fn a_wrong_password_deletes_nothing_and_attempts_are_limited(b: Backend) {
    let app = spawn_app(b).await;
    let (_, phone, laptop) = user_with_devices(&app).await;
    let r = delete_me(&app, &phone.access, "not the password").await;
    assert_eq!(
        error_code(r, StatusCode::UNAUTHORIZED).await,
        "invalid_credentials"
    );
    assert_eq!(app.me_status(&phone.access).await.0, StatusCode::OK);
    assert_eq!(app.me_status(&laptop.access).await.0, StatusCode::OK);
    let r = app
        .client
        .delete(app.url("/api/users/me"))
        .bearer_auth(&phone.access)
        .send()
        .await
        .expect("request");
    assert_eq!(
        error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid_input"
    );
    let r = app
        .client
        .delete(app.url("/api/users/me"))
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Guessing is bounded: past the limit even the right password waits for the window.
    let mut limited = false;
    for _ in 0..10 {
        let r = delete_me(&app, &laptop.access, "still not it").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().contains_key("retry-after"));
            limited = true;
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(limited, "wrong passwords were never limited");
    let r = delete_me(&app, &laptop.access, PASSWORD).await;
    assert_eq!(
        error_code(r, StatusCode::TOO_MANY_REQUESTS).await,
        "rate_limited"
    );
    assert_eq!(app.me_status(&laptop.access).await.0, StatusCode::OK);
}

async fn the_cli_deletes_a_user_by_email(b: Backend) {
    let app = spawn_app(b).await;
    let (email, phone, laptop) = user_with_devices(&app).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate-origin"))
        .args(["user", "delete", &email.to_uppercase()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", app.db_url())
        .env("REDIS_URL", crate::helpers::redis_url())
        .env("REDIS_KEY_PREFIX", &app.prefix)
        .env(
            "KEYS_FILE",
            std::env::temp_dir().join("tollgate-cli-unused-keys.json"),
        )
        .current_dir(std::env::temp_dir())
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate-origin"))
        .args(["user", "delete", &email])
        .env_clear()
        .env("DATABASE_URL", app.db_url())
        .env("REDIS_URL", crate::helpers::redis_url())
        .env("REDIS_KEY_PREFIX", &app.prefix)
        .current_dir(std::env::temp_dir())
        .output()
        .expect("binary runs");
    assert!(!out.status.success(), "deleting twice succeeded");
    assert_deleted(&app, &email, &phone, &laptop).await;
}
