//! Under an evicting `maxmemory-policy` any key may vanish at any moment. Each test removes the
//! key an eviction could take at the worst moment and checks the loss fails closed: someone may
//! be logged out early, but no revoked token or session comes back.

use redis::AsyncCommands as _;
use reqwest::StatusCode;
use serde_json::Value;
use tollgate_shared::records::DeviceInfo;

use crate::both_backends;
use crate::helpers::{claims_of, error_code, spawn_app, spawn_app_with, Backend, RedisProcess};

both_backends!(
    an_evicted_version_key_is_reseeded_from_sqls_bumped_version,
    an_evicted_refresh_mirror_never_lets_a_revoked_session_refresh,
    a_mint_after_the_version_key_was_evicted_carries_sqls_version,
    ready_reports_the_eviction_policy_and_evictions,
);

async fn an_evicted_version_key_is_reseeded_from_sqls_bumped_version(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let a = app.login(&email, "a").await;
    let b = app.login(&email, "b").await;
    let keys = app.state.cache.keys().clone();
    let user_id = claims_of(&a.access).sub;
    let mut redis = app.redis_conn().await;
    let record: String = redis.get(keys.jti(&b.jti)).await.expect("record");
    let r = app.post_auth("/api/users/logout-all", &a.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The worst case: b's record survived (or came back) and the version key is evicted.
    let _: () = redis.set(keys.jti(&b.jti), &record).await.expect("set");
    let gone: u64 = redis.del(keys.user_version(&user_id)).await.expect("del");
    assert_eq!(gone, 1);
    assert_eq!(
        app.me_status(&b.access).await,
        (StatusCode::UNAUTHORIZED, "token_version".into())
    );
    let reseeded: String = redis.get(keys.user_version(&user_id)).await.expect("get");
    assert_eq!(reseeded, "2");
}

async fn an_evicted_refresh_mirror_never_lets_a_revoked_session_refresh(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let r = app.post_auth("/api/users/logout", &t.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut redis = app.redis_conn().await;
    let gone: u64 = redis
        .del(app.state.cache.keys().refresh(&t.token_id))
        .await
        .expect("del");
    assert_eq!(gone, 1);
    let r = app.refresh(&t.refresh).await;
    assert_eq!(
        error_code(r, StatusCode::UNAUTHORIZED).await,
        "invalid_refresh_token"
    );
    assert_eq!(app.me_status(&t.access).await.1, "token_revoked");
}

/// A mint that read the user's version before a logout-all (a login racing it) and finds the
/// version key evicted must not write its stale version back: it re-reads SQL.
async fn a_mint_after_the_version_key_was_evicted_carries_sqls_version(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let before = app.login(&email, "before").await;
    let r = app.post_auth("/api/users/logout-all", &before.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let after = app.login(&email, "after").await;
    let user_id = claims_of(&after.access).sub;
    let keys = app.state.cache.keys().clone();
    let mut redis = app.redis_conn().await;
    let gone: u64 = redis.del(keys.user_version(&user_id)).await.expect("del");
    assert_eq!(gone, 1);
    let jti = uuid::Uuid::new_v4().to_string();
    let minted = tollgate_origin::tokens::mint(
        &app.state,
        tollgate_origin::tokens::Grant {
            user_id: &user_id,
            token_id: &after.token_id,
            jti: &jti,
            device: DeviceInfo::default(),
            version: 1,
            replaces_jti: None,
            grace: None,
            now: tollgate_origin::domain::now(),
        },
    )
    .await
    .expect("mint")
    .expect("the session is live");
    assert_eq!(claims_of(&minted.access_token).ver, 2);
    let version: String = redis.get(keys.user_version(&user_id)).await.expect("get");
    assert_eq!(version, "2");
    assert_eq!(app.me_status(&after.access).await.0, StatusCode::OK);
    assert_eq!(
        app.me_status(&before.access).await.0,
        StatusCode::UNAUTHORIZED
    );
}

async fn ready_eviction(app: &crate::helpers::TestApp) -> Value {
    let r = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    body["redis_eviction"].clone()
}

async fn ready_reports_the_eviction_policy_and_evictions(b: Backend) {
    let redis = RedisProcess::start();
    let url = redis.url();
    let app = spawn_app_with(b, &[("REDIS_URL", &url)]).await;
    let e = ready_eviction(&app).await;
    assert_eq!(e["policy"], "noeviction", "{e}");
    assert_eq!(e["evicting"], false, "{e}");
    assert_eq!(e["evicted_keys"], 0, "{e}");

    // An operator follows the seed: a memory cap and allkeys-lru. Fill past the cap.
    let client = redis::Client::open(url.as_str()).expect("client");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    for (k, v) in [("maxmemory-policy", "allkeys-lru"), ("maxmemory", "4mb")] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(k)
            .arg(v)
            .query_async(&mut c)
            .await
            .expect("config set");
    }
    let filler = "x".repeat(64 * 1024);
    for i in 0..200 {
        let _: () = c.set(format!("filler:{i}"), &filler).await.expect("set");
    }
    let e = ready_eviction(&app).await;
    assert_eq!(e["policy"], "allkeys-lru", "{e}");
    assert_eq!(e["evicting"], true, "{e}");
    assert!(e["evicted_keys"].as_u64().is_some_and(|n| n > 0), "{e}");
}
