//! Redis going away and coming back; the cleanup command.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{error_code, spawn_app, spawn_app_with, Backend, RedisProcess};

both_backends!(
    redis_down_fails_closed_with_503_then_recovers,
    redis_flushed_refuses_old_tokens_and_reseeds_versions,
    cleanup_deletes_expired_and_revoked_sessions,
);

async fn redis_down_fails_closed_with_503_then_recovers(b: Backend) {
    let mut redis = RedisProcess::start();
    let url = redis.url();
    let app = spawn_app_with(b, &[("REDIS_URL", &url), ("REDIS_TIMEOUT_MS", "300")]).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);

    redis.stop();
    let started = std::time::Instant::now();
    let r = app.get_auth("/api/users/me", &t.access).await;
    assert_eq!(
        error_code(r, StatusCode::SERVICE_UNAVAILABLE).await,
        "unavailable"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "fail-closed must be quick"
    );
    let r = app
        .post_json(
            "/api/users/login",
            &serde_json::json!({"email": email, "password": crate::helpers::PASSWORD}),
        )
        .await;
    assert_eq!(
        error_code(r, StatusCode::SERVICE_UNAVAILABLE).await,
        "unavailable"
    );
    let r = app.client.get(app.url("/ready")).send().await.expect("r");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Like every 503, it says when to try again (load balancers and clients back off by it).
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );

    // Redis comes back empty (it keeps nothing on disk): the old token's jti is gone, so it
    // stays refused, but logins work again without restarting the origin.
    redis.restart();
    let mut recovered = false;
    for _ in 0..50 {
        if app
            .client
            .get(app.url("/ready"))
            .send()
            .await
            .expect("r")
            .status()
            == StatusCode::OK
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "origin did not reconnect to Redis");
    assert_eq!(app.me_status(&t.access).await.1, "token_revoked");
    let fresh = app.login(&email, "again").await;
    assert_eq!(app.me_status(&fresh.access).await.0, StatusCode::OK);
    // The database kept the user and the session across the outage.
    let r = app.refresh(&t.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
}

async fn redis_flushed_refuses_old_tokens_and_reseeds_versions(b: Backend) {
    let redis = RedisProcess::start();
    let url = redis.url();
    let app = spawn_app_with(b, &[("REDIS_URL", &url)]).await;
    let email = app.new_user().await;
    let a = app.login(&email, "a").await;
    let r = app.post_auth("/api/users/logout-all", &a.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    // A token of the new version, live right up to the flush.
    let live = app.login(&email, "live").await;
    assert_eq!(app.me_status(&live.access).await.0, StatusCode::OK);
    let mut conn = app.redis_conn().await;
    let _: () = redis::cmd("FLUSHALL")
        .query_async(&mut conn)
        .await
        .expect("flush");
    // Its jti record went with the flush: refused as revoked, even though its version is the
    // database's current one — a flush never brings a token back, nor keeps one alive.
    assert_eq!(
        app.me_status(&live.access).await,
        (StatusCode::UNAUTHORIZED, "token_revoked".into())
    );
    assert_eq!(app.me_status(&a.access).await.0, StatusCode::UNAUTHORIZED);
    // A new login writes version 2 from the database, not 1.
    let fresh = app.login(&email, "b").await;
    let me: serde_json::Value = app
        .get_auth("/api/users/me", &fresh.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["data"]["token_version"], 2);
}

async fn cleanup_deletes_expired_and_revoked_sessions(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let stale = app.login(&email, "stale").await;
    let stale_login = tollgate_origin::domain::now();
    // Two seconds on, so `keep` expires at least two seconds after `stale`.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let keep = app.login(&email, "keep").await;
    let gone = app.login(&email, "gone").await;
    let r = app.post_auth("/api/users/logout", &gone.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let db = &app.state.db;
    let refresh_ttl = app.state.settings.refresh_ttl;
    // Cleanup as if run one second after `stale` expired (it expires `refresh_ttl` after its
    // login), with retention 0: the expired and the revoked session go, `keep` (younger by two
    // seconds) stays, and so does its current secret (issued after the secret cutoff).
    let then = stale_login + refresh_ttl as i64 + 1;
    let deleted = tollgate_origin::cleanup::run_once(db, 0, refresh_ttl, then)
        .await
        .expect("cleanup");
    assert_eq!(deleted, 2);
    let now = tollgate_origin::domain::now();
    let counts = db.session_counts(now).await.expect("counts");
    assert_eq!((counts.total, counts.active, counts.revoked), (1, 1, 0));
    assert_eq!(app.refresh(&keep.refresh).await.status(), StatusCode::OK);
    // The expired session is gone, not merely unused: its secret no longer refreshes.
    assert_eq!(
        error_code(app.refresh(&stale.refresh).await, StatusCode::UNAUTHORIZED).await,
        "invalid_refresh_token"
    );
}
