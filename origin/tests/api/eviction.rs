//! Under an evicting `maxmemory-policy` any key may vanish at any moment. An eviction takes a
//! user's whole hash (one key); a flush mid-operation or a hand edit can leave less. Each test
//! removes what could go at the worst moment — the hash, or one field of it — and checks the
//! loss fails closed: someone may be logged out early, but no revoked token or session comes
//! back.

use redis::AsyncCommands as _;
use reqwest::StatusCode;
use serde_json::Value;
use tollgate_shared::keys::field;

use crate::both_backends;
use crate::helpers::{claims_of, error_code, spawn_app, spawn_app_with, Backend, RedisProcess};

both_backends!(
    an_evicted_version_key_is_reseeded_from_sqls_bumped_version,
    an_evicted_refresh_mirror_never_lets_a_revoked_session_refresh,
    a_mint_after_the_version_key_was_evicted_carries_sqls_version,
    an_evicted_user_hash_refuses_every_token_and_refresh_rebuilds_it,
    ready_reports_the_eviction_policy_and_evictions,
);

async fn an_evicted_version_key_is_reseeded_from_sqls_bumped_version(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let a = app.login(&email, "a").await;
    let b = app.login(&email, "b").await;
    let keys = app.state.redis.keys().clone();
    let user_id = claims_of(&a.access).sub;
    let mut redis = app.redis_conn().await;
    let user = keys.user(&user_id);
    let record: String = redis.hget(&user, field::jti(&b.jti)).await.expect("record");
    let r = app.post_auth("/api/users/logout-all", &a.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The worst case: b's record survived (or came back) and the version key is evicted.
    let _: () = redis
        .hset(&user, field::jti(&b.jti), &record)
        .await
        .expect("set");
    let gone: u64 = redis.hdel(&user, field::VERSION).await.expect("del");
    assert_eq!(gone, 1);
    assert_eq!(
        app.me_status(&b.access).await,
        (StatusCode::UNAUTHORIZED, "token_version".into())
    );
    let reseeded: String = redis.hget(&user, field::VERSION).await.expect("get");
    assert_eq!(reseeded, "2");
}

async fn an_evicted_refresh_mirror_never_lets_a_revoked_session_refresh(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let r = app.post_auth("/api/users/logout", &t.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut redis = app.redis_conn().await;
    let user = app.state.redis.keys().user(&claims_of(&t.access).sub);
    let gone: u64 = redis
        .hdel(user, field::session(&t.token_id))
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
    let keys = app.state.redis.keys().clone();
    let mut redis = app.redis_conn().await;
    let user = keys.user(&user_id);
    let gone: u64 = redis.hdel(&user, field::VERSION).await.expect("del");
    assert_eq!(gone, 1);
    let jti = uuid::Uuid::new_v4().to_string();
    let minted = tollgate_origin::tokens::mint(
        &app.state,
        tollgate_origin::tokens::Grant {
            user_id: &user_id,
            token_id: &after.token_id,
            jti: &jti,
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
    let version: String = redis.hget(&user, field::VERSION).await.expect("get");
    assert_eq!(version, "2");
    assert_eq!(app.me_status(&after.access).await.0, StatusCode::OK);
    assert_eq!(
        app.me_status(&before.access).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// The whole hash evicted: every access token of the user is refused as revoked (there is no
/// record of it), and a refresh — its state is in SQL — mints again with SQL's version and
/// rebuilds the hash; a session revoked before the eviction stays revoked.
async fn an_evicted_user_hash_refuses_every_token_and_refresh_rebuilds_it(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let live = app.login(&email, "live").await;
    let dead = app.login(&email, "dead").await;
    let r = app.post_auth("/api/users/logout", &dead.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let user_id = claims_of(&live.access).sub;
    let mut redis = app.redis_conn().await;
    let gone: u64 = redis
        .del(app.state.redis.keys().user(&user_id))
        .await
        .expect("del");
    assert_eq!(gone, 1);
    assert_eq!(app.me_status(&live.access).await.1, "token_revoked");
    assert_eq!(app.me_status(&dead.access).await.1, "token_revoked");
    let r = app.refresh(&dead.refresh).await;
    assert_eq!(
        error_code(r, StatusCode::UNAUTHORIZED).await,
        "invalid_refresh_token"
    );
    let r = app.refresh(&live.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let fresh = crate::helpers::Tokens::from_body(&r.json().await.expect("json"));
    assert_eq!(app.me_status(&fresh.access).await.0, StatusCode::OK);
    let version: Option<String> = redis
        .hget(app.state.redis.keys().user(&user_id), field::VERSION)
        .await
        .expect("get");
    assert_eq!(version.as_deref(), Some("1"));
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

/// The binary's start-up log names an evicting policy as a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_warns_when_redis_may_evict() {
    let redis = RedisProcess::start();
    let client = redis::Client::open(redis.url().as_str()).expect("client");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut c)
        .await
        .expect("config set");
    let dir =
        std::env::temp_dir().join(format!("tollgate-evict-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let log_path = dir.join("origin.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate-origin"))
        .arg("serve")
        .env_clear()
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display()),
        )
        .env("REDIS_URL", redis.url())
        .env("KEYS_FILE", dir.join("keys.json"))
        .env("LOG_FORMAT", "json")
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("origin binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let mut body = Value::Null;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("{base}/ready")).await {
            if r.status() == StatusCode::OK {
                body = r.json().await.expect("json");
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(body["redis_eviction"]["policy"], "allkeys-lru", "{body}");
    let logs = std::fs::read_to_string(&log_path).expect("logs");
    let warning = logs
        .lines()
        .find(|l| l.contains("noeviction is recommended"))
        .unwrap_or_else(|| panic!("no eviction warning in {logs}"));
    assert!(warning.contains("\"level\":\"WARN\""), "{warning}");
    assert!(warning.contains("allkeys-lru"), "{warning}");
    let _ = std::fs::remove_dir_all(&dir);
}
