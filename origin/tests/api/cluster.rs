//! The origin on a real three-master Redis Cluster on loopback (started per test by
//! [`RedisCluster`]): every flow that touches Redis — login, refresh rotation and its grace
//! answer, the four logouts, OAuth revocation, rate limits, stats, account deletion — works with
//! users spread over every master, and a master that dies fails its users closed (503) while the
//! others carry on; when it comes back empty, no token it held is accepted again.

use std::collections::BTreeSet;

use redis::AsyncCommands as _;
use reqwest::StatusCode;
use serde_json::json;
use tollgate_shared::keys::field;
use tollgate_testkit::RedisCluster;

use crate::helpers::{error_code, spawn_app_with, Backend, TestApp, Tokens};

async fn app_on(cluster: &RedisCluster, extra: &[(&str, &str)]) -> TestApp {
    let url = cluster.cluster_url();
    let mut env = vec![("REDIS_URL", url.as_str())];
    env.extend_from_slice(extra);
    spawn_app_with(Backend::Sqlite, &env).await
}

/// Logs in new users until every master holds at least one of them; returns each with the
/// master that owns its hash.
async fn users_on_every_master(app: &TestApp, cluster: &RedisCluster) -> Vec<(usize, Tokens)> {
    let mut users = Vec::new();
    let mut masters = BTreeSet::new();
    while masters.len() < 3 {
        assert!(users.len() < 64, "64 users and still not on every master");
        let email = app.new_user().await;
        let t = app.login(&email, "laptop").await;
        let master = cluster
            .master_for_key(&app.state.redis.keys().user(&t.user_id()))
            .await
            .expect("slot owner");
        masters.insert(master);
        users.push((master, t));
    }
    users
}

/// A second device of `t`'s user, logged out: a revoked token that must stay refused.
async fn revoked_device_of(app: &TestApp, t: &Tokens) -> Tokens {
    let user = app.state.db.user_by_id(&t.user_id()).await.expect("db");
    let revoked = app.login(&user.expect("user").email, "revoked").await;
    let r = app.post_auth("/api/users/logout", &revoked.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    revoked
}

/// `/me` for `t` once its slot answers again (503 while its master is down or failing over).
async fn me_once_the_slot_is_back(app: &TestApp, t: &Tokens) -> (StatusCode, String) {
    for _ in 0..50 {
        let status = app.me_status(&t.access).await;
        if status.0 != StatusCode::SERVICE_UNAVAILABLE {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    app.me_status(&t.access).await
}

/// A user's hash, read through a cluster client (it follows the slot to its master).
async fn hash_of(cluster: &RedisCluster, app: &TestApp, t: &Tokens) -> Vec<(String, String)> {
    let client = redis::cluster::ClusterClient::new(cluster.urls()).expect("cluster client");
    let mut conn = client.get_async_connection().await.expect("cluster");
    conn.hgetall(app.state.redis.keys().user(&t.user_id()))
        .await
        .expect("HGETALL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redis_flow_works_with_users_on_every_master() {
    let cluster = RedisCluster::start(3, 0).await.expect("cluster");
    let app = app_on(
        &cluster,
        &[
            ("REFRESH_GRACE_SECS", "5"),
            ("LOGIN_RATE_LIMIT_PER_EMAIL", "5"),
        ],
    )
    .await;
    let ready = app
        .client
        .get(app.url("/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), StatusCode::OK);
    let users = users_on_every_master(&app, &cluster).await;
    for (_, t) in &users {
        assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
    }
    // One user per master goes through every flow.
    let mut seen = BTreeSet::new();
    for (master, t) in users.iter().filter(|(m, _)| seen.insert(*m)) {
        let email = app
            .state
            .db
            .user_by_id(&t.user_id())
            .await
            .expect("db")
            .expect("user")
            .email;
        // Refresh rotation retires the old token; a repeat in the grace window gets the same
        // answer (the sealed answer lives in the user's slot, beside the hash).
        let r = app.refresh(&t.refresh).await;
        assert_eq!(r.status(), StatusCode::OK, "master {master}");
        let rotated = Tokens::from_body(&r.json().await.expect("json"));
        assert_eq!(app.me_status(&t.access).await.1, "token_revoked");
        let again = Tokens::from_body(&app.refresh(&t.refresh).await.json().await.expect("json"));
        assert_eq!(
            again.access, rotated.access,
            "master {master}: a forked chain"
        );
        assert_eq!(app.me_status(&rotated.access).await.0, StatusCode::OK);

        // Four logouts, each on a device of its own.
        let d: Vec<Tokens> = futures::future::join_all((0..4).map(|i| {
            let (app, email) = (&app, &email);
            async move { app.login(email, &format!("d{i}")).await }
        }))
        .await;
        let r = app.post_auth("/api/users/logout", &d[0].access).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(app.me_status(&d[0].access).await.1, "token_revoked");
        let path = format!("/api/users/logout-device-jti/{}", d[1].jti);
        assert_eq!(
            app.post_auth(&path, &d[3].access).await.status(),
            StatusCode::OK
        );
        assert_eq!(app.me_status(&d[1].access).await.1, "token_revoked");
        let path = format!("/api/users/logout-device/{}", d[2].token_id);
        assert_eq!(
            app.post_auth(&path, &d[3].access).await.status(),
            StatusCode::OK
        );
        assert_eq!(app.me_status(&d[2].access).await.1, "token_revoked");
        assert_eq!(app.me_status(&d[3].access).await.0, StatusCode::OK);
        let fields = hash_of(&cluster, &app, &d[3]).await;
        assert!(
            fields
                .iter()
                .any(|(f, v)| *f == field::session(&d[0].token_id) && v.ends_with(".1")),
            "the revoked mirror is in the hash: {fields:?}"
        );
        let r = app.post_auth("/api/users/logout-all", &d[3].access).await;
        assert_eq!(r.status(), StatusCode::OK);
        for t in d.iter().chain([&rotated]) {
            assert_ne!(app.me_status(&t.access).await.0, StatusCode::OK);
        }
        let fields = hash_of(&cluster, &app, &d[3]).await;
        assert!(
            fields.iter().all(|(f, _)| !f.starts_with(field::JTI)),
            "{fields:?}"
        );
        assert!(fields.contains(&(field::VERSION.to_owned(), "2".to_owned())));

        // RFC 7009 revocation of one access token.
        let fresh = app.login(&email, "oauth").await;
        let r = app
            .client
            .post(app.url("/oauth/revoke"))
            .form(&[("token", fresh.access.as_str())])
            .send()
            .await
            .expect("revoke");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(app.me_status(&fresh.access).await.1, "token_revoked");
    }

    // Rate limits: the three failure counters of one login live in three slots.
    let email = app.new_user().await;
    for _ in 0..5 {
        assert_eq!(
            app.wrong_password_from("127.0.0.9", &email).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let r = app
        .post_json_from(
            "127.0.0.9",
            "/api/users/login",
            &json!({"email": email, "password": "not the password"}),
        )
        .await;
    assert_eq!(
        error_code(r, StatusCode::TOO_MANY_REQUESTS).await,
        "rate_limited"
    );

    // Stats walk every master: the users' first tokens are live but for the three rotated
    // away; every session ever started has its mirror (revoked or not).
    let stats = app.state.redis.stats().await.expect("stats");
    assert_eq!(stats.total_jtis, users.len() as u64 - 3, "{stats:?}");
    assert_eq!(
        stats.total_refresh_tokens,
        users.len() as u64 + 3 * 5,
        "{stats:?}"
    );

    // Deleting an account clears its hash and its grace answers, wherever its slot lives.
    for (master, t) in users.iter().take(3) {
        let deleted =
            tollgate_origin::tokens::delete_account(&app.state.db, &app.state.redis, &t.user_id())
                .await
                .expect("delete");
        assert!(deleted, "master {master}");
        assert!(hash_of(&cluster, &app, t).await.is_empty());
        assert_eq!(app.me_status(&t.access).await.0, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_master_fails_its_users_closed_and_comes_back_without_their_tokens() {
    let mut cluster = RedisCluster::start(3, 0).await.expect("cluster");
    let app = app_on(&cluster, &[("REDIS_TIMEOUT_MS", "300")]).await;
    let users = users_on_every_master(&app, &cluster).await;
    let (down, victim) = users.first().map(|(m, t)| (*m, t.clone())).expect("a user");
    let other = users
        .iter()
        .find(|(m, _)| *m != down)
        .map(|(_, t)| t.clone())
        .expect("a user elsewhere");
    // A revoked token on the master that will die: it must stay refused through it all.
    let revoked = revoked_device_of(&app, &victim).await;

    cluster.kill_master(down);
    // Fail closed for the dead master's users, every answer a documented 503 (never a 200 for
    // the revoked token); the other masters' users carry on.
    for _ in 0..3 {
        assert_eq!(
            app.me_status(&victim.access).await,
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into())
        );
        assert_eq!(
            app.me_status(&revoked.access).await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let r = app.post_auth("/api/users/logout", &victim.access).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(app.me_status(&other.access).await.0, StatusCode::OK);
    }

    // Back, empty (no persistence): what it held is gone, so its tokens are refused as
    // revoked — never accepted — and a refresh (its state is in SQL) mints anew.
    cluster.restart_master(down).await.expect("restart");
    let status = me_once_the_slot_is_back(&app, &victim).await;
    assert_eq!(status, (StatusCode::UNAUTHORIZED, "token_revoked".into()));
    assert_eq!(app.me_status(&revoked.access).await.1, "token_revoked");
    let r = app.refresh(&revoked.refresh).await;
    assert_eq!(
        error_code(r, StatusCode::UNAUTHORIZED).await,
        "invalid_refresh_token"
    );
    let r = app.refresh(&victim.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let fresh = Tokens::from_body(&r.json().await.expect("json"));
    assert_eq!(app.me_status(&fresh.access).await.0, StatusCode::OK);
    assert_eq!(app.me_status(&other.access).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_keeps_revocations_that_reached_the_replica() {
    let mut cluster = RedisCluster::start(3, 1).await.expect("cluster");
    let app = app_on(&cluster, &[("REDIS_TIMEOUT_MS", "300")]).await;
    let users = users_on_every_master(&app, &cluster).await;
    let (down, live) = users.first().map(|(m, t)| (*m, t.clone())).expect("a user");
    let revoked = revoked_device_of(&app, &live).await;
    // Replication is asynchronous (and the origin refuses `WAIT` on a cluster): the logout must
    // have reached the replica before its master dies for the promoted one to know it.
    let user = app.state.redis.keys().user(&live.user_id());
    cluster.replicated(&user).await.expect("replicated");
    cluster.failover(down).await.expect("failover");
    let status = me_once_the_slot_is_back(&app, &live).await;
    assert_eq!(
        status.0,
        StatusCode::OK,
        "the promoted replica lost a live token"
    );
    assert_eq!(app.me_status(&revoked.access).await.1, "token_revoked");
    let r = app.refresh(&revoked.refresh).await;
    assert_eq!(
        error_code(r, StatusCode::UNAUTHORIZED).await,
        "invalid_refresh_token"
    );
    let r = app.post_auth("/api/users/logout", &live.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.me_status(&live.access).await.1, "token_revoked");
}
