//! Login and registration limits, roles and the token-stats bound: who can be refused, by what,
//! and what a refusal or a success leaves behind in Redis. Client addresses are real: requests
//! come from other loopback addresses (`127.0.0.2`, …), never from a forwarded header.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{error_code, spawn_app, spawn_app_with, Backend, PASSWORD};

both_backends!(
    successful_logins_within_any_window_never_get_429,
    failed_logins_are_limited_per_address_with_retry_after,
    failed_logins_are_limited_per_email_and_address,
    wrong_passwords_from_other_addresses_never_lock_the_owner_out,
    registration_is_limited_per_address,
    an_unknown_refresh_secret_never_waits_for_the_database_write_lock,
    registering_never_grants_a_role_and_the_cli_changes_it_from_the_next_request,
    token_stats_scans_redis_at_most_once_per_max_age,
);

/// Low limits, so that counting a success even once would show.
const LOW_LIMITS: [(&str, &str); 3] = [
    ("LOGIN_RATE_LIMIT_PER_IP", "3"),
    ("LOGIN_RATE_LIMIT_PER_EMAIL", "2"),
    ("LOGIN_FAILURE_CAP_PER_EMAIL", "4"),
];

async fn successful_logins_within_any_window_never_get_429(b: Backend) {
    let app = spawn_app_with(b, &LOW_LIMITS).await;
    let owner = app.new_user().await;
    // Many users behind one address (a carrier NAT), and one user on many devices, all inside
    // one window, far past every limit.
    let mut users = vec![owner.clone()];
    for _ in 0..5 {
        users.push(app.new_user().await);
    }
    for round in 0..4 {
        for email in &users {
            assert_eq!(
                app.login_status_from("127.0.0.1", email).await,
                StatusCode::OK,
                "round {round}"
            );
        }
    }
    let burst = (0..12).map(|_| app.login_status_from("127.0.0.1", &owner));
    for status in join_all(burst).await {
        assert_eq!(status, StatusCode::OK);
    }
    // Not even a counter key is left behind by 36 successes.
    assert_eq!(app.keys_of_kind("rl:login").await, Vec::<String>::new());

    // One failure makes exactly its three counters; the successes after it still pass.
    assert_eq!(
        app.wrong_password_from("127.0.0.1", &owner).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.keys_of_kind("rl:login").await.len(), 3);
    for _ in 0..5 {
        assert_eq!(
            app.login_status_from("127.0.0.1", &owner).await,
            StatusCode::OK
        );
    }
}

async fn failed_logins_are_limited_per_address_with_retry_after(b: Backend) {
    let app = spawn_app_with(b, &[("LOGIN_RATE_LIMIT_PER_IP", "4")]).await;
    let user = app.new_user().await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = app
            .post_json_from(
                "127.0.0.1",
                "/api/users/login",
                &json!({"email": format!("nobody{i}@example.com"), "password": PASSWORD}),
            )
            .await;
        statuses.push(r.status());
    }
    assert_eq!(&statuses[..4], &[StatusCode::UNAUTHORIZED; 4]);
    assert_eq!(&statuses[4..], &[StatusCode::TOO_MANY_REQUESTS; 2]);
    // The address is spent for every email; another address is not.
    let r = app
        .post_json_from(
            "127.0.0.1",
            "/api/users/login",
            &json!({"email": user, "password": PASSWORD}),
        )
        .await;
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After header");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        error_code(r, StatusCode::TOO_MANY_REQUESTS).await,
        "rate_limited"
    );
    assert_eq!(
        app.login_status_from("127.0.0.2", &user).await,
        StatusCode::OK
    );
}

async fn failed_logins_are_limited_per_email_and_address(b: Backend) {
    let app = spawn_app_with(b, &[("LOGIN_RATE_LIMIT_PER_EMAIL", "3")]).await;
    let email = app.new_user().await;
    for _ in 0..3 {
        assert_eq!(
            app.wrong_password_from("127.0.0.1", &email).await,
            StatusCode::UNAUTHORIZED
        );
    }
    // The right password, in another case, from the address that failed: refused for now.
    let r = app
        .post_json_from(
            "127.0.0.1",
            "/api/users/login",
            &json!({"email": email.to_uppercase(), "password": PASSWORD}),
        )
        .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        error_code(r, StatusCode::TOO_MANY_REQUESTS).await,
        "rate_limited"
    );
    // The same email from an address that has not failed, and another email from this one.
    assert_eq!(
        app.login_status_from("127.0.0.2", &email).await,
        StatusCode::OK
    );
    let other = app.new_user().await;
    assert_eq!(
        app.login_status_from("127.0.0.1", &other).await,
        StatusCode::OK
    );
}

async fn wrong_passwords_from_other_addresses_never_lock_the_owner_out(b: Backend) {
    let app = spawn_app_with(
        b,
        &[
            ("LOGIN_RATE_LIMIT_PER_IP", "100"),
            ("LOGIN_RATE_LIMIT_PER_EMAIL", "2"),
            ("LOGIN_FAILURE_CAP_PER_EMAIL", "9"),
        ],
    )
    .await;
    let owner = app.new_user().await;
    // Four attacking addresses spend their two guesses each: 8 failures for the email.
    for host in 10..14 {
        let ip = format!("127.0.0.{host}");
        for _ in 0..2 {
            assert_eq!(
                app.wrong_password_from(&ip, &owner).await,
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            app.wrong_password_from(&ip, &owner).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    // The owner, from an address that has not failed, is not affected.
    assert_eq!(
        app.login_status_from("127.0.0.1", &owner).await,
        StatusCode::OK
    );
    assert_eq!(
        app.login_status_from("127.0.0.1", &owner).await,
        StatusCode::OK
    );
    // The ninth failure reaches the per-email cap: only now is the email refused everywhere.
    assert_eq!(
        app.wrong_password_from("127.0.0.14", &owner).await,
        StatusCode::UNAUTHORIZED
    );
    for ip in ["127.0.0.1", "127.0.0.2"] {
        assert_eq!(
            app.login_status_from(ip, &owner).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{ip}"
        );
    }
    // Other emails, even from the attacking addresses, are not.
    let other = app.new_user().await;
    assert_eq!(
        app.login_status_from("127.0.0.14", &other).await,
        StatusCode::OK
    );
}

async fn registration_is_limited_per_address(b: Backend) {
    let app = spawn_app_with(b, &[("REGISTER_RATE_LIMIT_PER_IP", "3")]).await;
    let register = |ip: &'static str| {
        let app = &app;
        async move {
            let email = format!("reg-{}@example.com", uuid::Uuid::new_v4().simple());
            app.post_json_from(
                ip,
                "/api/users/register",
                &json!({"email": email, "password": PASSWORD}),
            )
            .await
        }
    };
    for _ in 0..3 {
        assert_eq!(register("127.0.0.1").await.status(), StatusCode::CREATED);
    }
    let r = register("127.0.0.1").await;
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        error_code(r, StatusCode::TOO_MANY_REQUESTS).await,
        "rate_limited"
    );
    assert_eq!(
        app.count_rows("users").await,
        3,
        "the refused one made no user"
    );
    assert_eq!(register("127.0.0.2").await.status(), StatusCode::CREATED);
    // Logging in is a separate budget.
    let email = app.new_user_from("127.0.0.3").await;
    assert_eq!(
        app.login_status_from("127.0.0.1", &email).await,
        StatusCode::OK
    );
}

async fn an_unknown_refresh_secret_never_waits_for_the_database_write_lock(b: Backend) {
    use sqlx::Connection as _;
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    app.login(&email, "d").await;
    // Another writer holds the database's write lock for the whole test.
    sqlx::any::install_default_drivers();
    let mut writer = sqlx::AnyConnection::connect(app.database_url())
        .await
        .expect("db");
    let lock = match b {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN; LOCK TABLE device_sessions IN EXCLUSIVE MODE",
    };
    sqlx::raw_sql(lock)
        .execute(&mut writer)
        .await
        .expect("take the write lock");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    for guess in [
        "rt_guessed",
        "rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let r = client
            .post(app.url("/api/users/refresh"))
            .json(&json!({"refresh_token": guess}))
            .send()
            .await
            .expect("an answer while the write lock is held");
        assert_eq!(
            error_code(r, StatusCode::UNAUTHORIZED).await,
            "invalid_refresh_token"
        );
    }
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut writer)
        .await
        .expect("release");
}

/// Runs `tollgate-origin user <action> <email>` against the test database, as an operator would.
fn cli_user(app: &crate::helpers::TestApp, action: &str, email: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tollgate-origin"))
        .args(["user", action, email])
        .env_clear()
        .env("DATABASE_URL", app.database_url())
        .env("LOG_FORMAT", "text")
        .output()
        .expect("the origin binary runs")
}

async fn token_stats_status(app: &crate::helpers::TestApp, access: &str) -> StatusCode {
    app.get_auth("/api/users/token-stats", access)
        .await
        .status()
}

async fn registering_never_grants_a_role_and_the_cli_changes_it_from_the_next_request(b: Backend) {
    let app = spawn_app(b).await;
    // Addresses an old configuration would have made admins: registering grants nothing.
    for email in ["admin@example.com", "root@localhost.localdomain"] {
        let r = app
            .post_json(
                "/api/users/register",
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let t = app.login(email, "d").await;
        assert_eq!(
            token_stats_status(&app, &t.access).await,
            StatusCode::FORBIDDEN
        );
    }
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    // Warm every cache a role could hide in: verified signatures, profiles.
    assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
    assert_eq!(
        token_stats_status(&app, &t.access).await,
        StatusCode::FORBIDDEN
    );

    let out = cli_user(&app, "promote", &email.to_uppercase());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The very token issued before the promotion: admin from the next request.
    assert_eq!(token_stats_status(&app, &t.access).await, StatusCode::OK);

    let out = cli_user(&app, "demote", &email);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        token_stats_status(&app, &t.access).await,
        StatusCode::FORBIDDEN
    );
    let fresh = app.login(&email, "after").await;
    assert_eq!(
        token_stats_status(&app, &fresh.access).await,
        StatusCode::FORBIDDEN
    );

    let out = cli_user(&app, "promote", "nobody@example.com");
    assert!(
        !out.status.success(),
        "promoting an unknown email succeeded"
    );
}

/// `SCAN` calls Redis has answered so far (`INFO commandstats`).
async fn scan_calls(app: &crate::helpers::TestApp) -> u64 {
    let mut conn = app.redis_conn().await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_scan:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

async fn token_stats_scans_redis_at_most_once_per_max_age(b: Backend) {
    // A private Redis, so only this origin's SCANs are counted.
    let redis = crate::helpers::RedisProcess::start();
    let app = spawn_app_with(b, &[("REDIS_URL", &redis.url())]).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    app.exec_sql(&format!(
        "UPDATE users SET role = 'admin' WHERE email_normalized = '{email}'"
    ))
    .await;
    let r = app.get_auth("/api/users/token-stats", &t.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let first: Value = r.json().await.expect("json");
    assert_eq!(first["redis"]["totalJtis"], 1, "{first}");
    let scans = scan_calls(&app).await;
    assert!(scans > 0, "the first call counts by SCAN");

    // A burst of calls, and new state meanwhile: no further SCAN, the same figures.
    app.login(&email, "second").await;
    let calls = (0..10).map(|_| token_stats_status(&app, &t.access));
    for status in join_all(calls).await {
        assert_eq!(status, StatusCode::OK);
    }
    let r = app.get_auth("/api/users/token-stats", &t.access).await;
    let again: Value = r.json().await.expect("json");
    assert_eq!(again["redis"], first["redis"]);
    assert_eq!(scan_calls(&app).await, scans, "token-stats scanned again");
    // The database figures are always current.
    assert_eq!(again["database"]["activeRefreshTokens"], 2);
}
