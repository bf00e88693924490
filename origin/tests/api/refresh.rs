//! Refresh rotation, the grace window and reuse detection.

use futures::future::join_all;
use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{error_code, spawn_app, spawn_app_with, Backend, Tokens};

both_backends!(
    refresh_rotates_and_retires_the_old_access_token,
    a_repeat_within_the_grace_window_gets_the_same_answer,
    a_replay_after_the_grace_window_revokes_that_device_only,
    a_secret_never_issued_revokes_nothing,
    concurrent_refreshes_of_one_token_never_fail_with_5xx,
);

async fn refresh_rotates_and_retires_the_old_access_token(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let r = app.refresh(&t.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let n = Tokens::from_body(&r.json().await.expect("json"));
    assert_ne!(n.jti, t.jti);
    assert_ne!(n.refresh, t.refresh);
    assert_eq!(n.token_id, t.token_id);
    assert_eq!(app.me_status(&n.access).await.0, StatusCode::OK);
    assert_eq!(app.me_status(&t.access).await.1, "token_revoked");
    for junk in ["", "rt_nope", &"x".repeat(500)] {
        let r = app.refresh(junk).await;
        assert_eq!(
            error_code(r, StatusCode::UNAUTHORIZED).await,
            "invalid_refresh_token"
        );
    }
}

async fn a_repeat_within_the_grace_window_gets_the_same_answer(b: Backend) {
    let app = spawn_app_with(b, &[("REFRESH_GRACE_SECS", "30")]).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let first = Tokens::from_body(&app.refresh(&t.refresh).await.json().await.expect("json"));
    // The response was "lost" (or a second tab raced): the client repeats with the old secret
    // and gets the very same answer, so there is still one chain.
    let r = app.refresh(&t.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let repeat = Tokens::from_body(&r.json().await.expect("json"));
    assert_eq!(repeat.refresh, first.refresh);
    assert_eq!(repeat.access, first.access);
    assert_eq!(repeat.jti, first.jti);
    assert_eq!(app.me_status(&repeat.access).await.0, StatusCode::OK);
    // The chain continues from the one current secret.
    let r = app.refresh(&first.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let second = Tokens::from_body(&r.json().await.expect("json"));
    assert_eq!(app.me_status(&second.access).await.0, StatusCode::OK);
    // Only the immediate predecessor is eligible: the original secret is now two behind, and
    // presenting it is a replay that revokes the device session.
    let r = app.refresh(&t.refresh).await;
    assert_eq!(
        error_code(r, StatusCode::UNAUTHORIZED).await,
        "refresh_token_reused"
    );
    assert_eq!(app.me_status(&second.access).await.1, "token_revoked");
}

async fn a_replay_after_the_grace_window_revokes_that_device_only(b: Backend) {
    let app = spawn_app_with(b, &[("REFRESH_GRACE_SECS", "0")]).await;
    let email = app.new_user().await;
    let stolen = app.login(&email, "victim-phone").await;
    let laptop = app.login(&email, "laptop").await;
    let legit = Tokens::from_body(
        &app.refresh(&stolen.refresh)
            .await
            .json()
            .await
            .expect("json"),
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = app.refresh(&stolen.refresh).await;
    assert_eq!(
        error_code(r, StatusCode::UNAUTHORIZED).await,
        "refresh_token_reused"
    );
    // The whole device session is dead: its latest access and refresh tokens too.
    assert_eq!(app.me_status(&legit.access).await.1, "token_revoked");
    let r = app.refresh(&legit.refresh).await;
    assert_eq!(
        error_code(r, StatusCode::UNAUTHORIZED).await,
        "invalid_refresh_token"
    );
    // Other devices are untouched.
    assert_eq!(app.me_status(&laptop.access).await.0, StatusCode::OK);
}

async fn a_secret_never_issued_revokes_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let (guess, _) = tollgate_origin::domain::new_refresh_secret();
    let r = app.refresh(&guess).await;
    assert_eq!(
        error_code(r, StatusCode::UNAUTHORIZED).await,
        "invalid_refresh_token"
    );
    assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
    assert_eq!(app.refresh(&t.refresh).await.status(), StatusCode::OK);
}

async fn concurrent_refreshes_of_one_token_never_fail_with_5xx(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let attempts = (0..20).map(|_| {
        let app = &app;
        let refresh = t.refresh.clone();
        async move {
            let r = app.refresh(&refresh).await;
            let status = r.status();
            let body: serde_json::Value = r.json().await.expect("json body");
            (status, body)
        }
    });
    let results = join_all(attempts).await;
    let mut answers = Vec::new();
    for (status, body) in &results {
        assert_eq!(*status, StatusCode::OK, "concurrent refresh failed: {body}");
        answers.push(Tokens::from_body(body));
    }
    // Serialised on the session row: one rotation, and every repeat got the same answer.
    assert!(answers
        .iter()
        .all(|a| a.refresh == answers[0].refresh && a.jti == answers[0].jti));
    let live = app
        .state
        .db
        .live_sessions(&decode_sub(&t.access), tollgate_origin::domain::now())
        .await
        .expect("sessions");
    assert_eq!(live.len(), 1);
    assert_eq!(
        crate::helpers::sha256_hex(&answers[0].refresh),
        live[0].current_hash
    );
    assert_eq!(app.me_status(&answers[0].access).await.0, StatusCode::OK);
    assert_eq!(app.me_status(&t.access).await.1, "token_revoked");
    assert_eq!(
        app.refresh(&answers[0].refresh).await.status(),
        StatusCode::OK
    );
}

fn decode_sub(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("b64");
    let claims: tollgate_shared::AccessClaims = serde_json::from_slice(&bytes).expect("claims");
    claims.sub
}
