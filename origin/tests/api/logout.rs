//! The four logouts, and that none of them reaches another user.

use redis::AsyncCommands as _;
use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{error_code, spawn_app, Backend};

both_backends!(
    logout_kills_this_device_only,
    logout_all_kills_every_device_and_bumps_the_version,
    logout_device_by_jti_kills_that_device_only,
    logout_device_by_token_id_kills_that_device_only,
    logout_device_routes_refuse_other_users_with_404,
    logout_is_idempotent,
    every_logout_kills_the_current_token_of_a_rotated_session,
);

async fn logout_kills_this_device_only(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let phone = app.login(&email, "phone").await;
    let laptop = app.login(&email, "laptop").await;
    let r = app.post_auth("/api/users/logout", &phone.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.me_status(&phone.access).await,
        (StatusCode::UNAUTHORIZED, "token_revoked".into())
    );
    let r = app.refresh(&phone.refresh).await;
    assert_eq!(
        error_code(r, StatusCode::UNAUTHORIZED).await,
        "invalid_refresh_token"
    );
    assert_eq!(app.me_status(&laptop.access).await.0, StatusCode::OK);
    assert_eq!(app.refresh(&laptop.refresh).await.status(), StatusCode::OK);
}

async fn logout_all_kills_every_device_and_bumps_the_version(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let devices = [
        app.login(&email, "a").await,
        app.login(&email, "b").await,
        app.login(&email, "c").await,
    ];
    let bystander = app.new_user().await;
    let other = app.login(&bystander, "x").await;
    // Keep a copy of one jti record to replay after the logout.
    let mut redis = app.redis_conn().await;
    let user = app
        .state
        .redis
        .keys()
        .user(&crate::helpers::claims_of(&devices[1].access).sub);
    let jti_field = tollgate_shared::keys::field::jti(&devices[1].jti);
    let record: String = redis.hget(&user, &jti_field).await.expect("record");

    let r = app
        .post_auth("/api/users/logout-all", &devices[0].access)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["data"]["token_version"], 2);
    assert_eq!(body["data"]["revoked_sessions"], 3);
    for d in &devices {
        assert_eq!(app.me_status(&d.access).await.0, StatusCode::UNAUTHORIZED);
        let r = app.refresh(&d.refresh).await;
        assert_eq!(
            error_code(r, StatusCode::UNAUTHORIZED).await,
            "invalid_refresh_token"
        );
    }
    // Even if a jti record survived (or came back), the version check refuses it.
    let _: () = redis.hset(&user, &jti_field, &record).await.expect("set");
    assert_eq!(
        app.me_status(&devices[1].access).await,
        (StatusCode::UNAUTHORIZED, "token_version".into())
    );
    // A new login carries the new version; the other user never noticed.
    let fresh = app.login(&email, "new").await;
    let me: Value = app
        .get_auth("/api/users/me", &fresh.access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["data"]["token_version"], 2);
    assert_eq!(app.me_status(&other.access).await.0, StatusCode::OK);
}

async fn logout_device_by_jti_kills_that_device_only(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let phone = app.login(&email, "phone").await;
    let laptop = app.login(&email, "laptop").await;
    let r = app
        .post_auth(
            &format!("/api/users/logout-device-jti/{}", phone.jti),
            &laptop.access,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["data"]["token_id"], phone.token_id.as_str());
    assert_eq!(app.me_status(&phone.access).await.1, "token_revoked");
    assert_eq!(
        app.refresh(&phone.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.me_status(&laptop.access).await.0, StatusCode::OK);
}

async fn logout_device_by_token_id_kills_that_device_only(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let phone = app.login(&email, "phone").await;
    let laptop = app.login(&email, "laptop").await;
    // Rotate the phone once: the device session (token_id) outlives the rotation.
    let r = app.refresh(&phone.refresh).await;
    let phone2 = crate::helpers::Tokens::from_body(&r.json().await.expect("json"));
    assert_eq!(phone2.token_id, phone.token_id);
    let r = app
        .post_auth(
            &format!("/api/users/logout-device/{}", phone.token_id),
            &laptop.access,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.me_status(&phone2.access).await.1, "token_revoked");
    assert_eq!(
        app.refresh(&phone2.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.me_status(&laptop.access).await.0, StatusCode::OK);
}

async fn logout_device_routes_refuse_other_users_with_404(b: Backend) {
    let app = spawn_app(b).await;
    let victim_email = app.new_user().await;
    let victim = app.login(&victim_email, "victim").await;
    let attacker_email = app.new_user().await;
    let attacker = app.login(&attacker_email, "attacker").await;
    for path in [
        format!("/api/users/logout-device-jti/{}", victim.jti),
        format!("/api/users/logout-device/{}", victim.token_id),
        "/api/users/logout-device-jti/not-a-uuid".to_owned(),
        "/api/users/logout-device/..%2F..%2Fetc".to_owned(),
        format!("/api/users/logout-device/{}", uuid::Uuid::new_v4()),
        format!("/api/users/logout-device-jti/{}", uuid::Uuid::new_v4()),
    ] {
        let r = app.post_auth(&path, &attacker.access).await;
        assert_eq!(
            error_code(r, StatusCode::NOT_FOUND).await,
            "not_found",
            "{path}"
        );
    }
    assert_eq!(app.me_status(&victim.access).await.0, StatusCode::OK);
    assert_eq!(app.refresh(&victim.refresh).await.status(), StatusCode::OK);
    assert_eq!(app.me_status(&attacker.access).await.0, StatusCode::OK);
}

async fn logout_is_idempotent(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let phone = app.login(&email, "phone").await;
    let laptop = app.login(&email, "laptop").await;
    let path = format!("/api/users/logout-device/{}", phone.token_id);
    assert_eq!(
        app.post_auth(&path, &laptop.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.post_auth(&path, &laptop.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.me_status(&laptop.access).await.0, StatusCode::OK);
}

/// Each logout finds the session's tokens by what the records say, not by the jti a client
/// logged in with: after a rotation the session's current token is the one that dies.
async fn every_logout_kills_the_current_token_of_a_rotated_session(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let own = app.login(&email, "own").await;
    let by_jti = app.login(&email, "by-jti").await;
    let by_id = app.login(&email, "by-id").await;
    // Rotated once, so the session's current jti (SQL) is not the one it logged in with.
    let by_id = crate::helpers::Tokens::from_body(
        &app.refresh(&by_id.refresh)
            .await
            .json()
            .await
            .expect("json"),
    );
    let caller = app.login(&email, "caller").await;

    let r = app.post_auth("/api/users/logout", &own.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.me_status(&own.access).await.1, "token_revoked");

    let path = format!("/api/users/logout-device-jti/{}", by_jti.jti);
    assert_eq!(
        app.post_auth(&path, &caller.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.me_status(&by_jti.access).await.1, "token_revoked");

    let path = format!("/api/users/logout-device/{}", by_id.token_id);
    assert_eq!(
        app.post_auth(&path, &caller.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.me_status(&by_id.access).await.1, "token_revoked");
    assert_eq!(app.me_status(&caller.access).await.0, StatusCode::OK);
}
