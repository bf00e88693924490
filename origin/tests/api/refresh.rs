//! Refresh rotation, the grace window and reuse detection.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{claims_of, error_code, spawn_app, spawn_app_with, Backend, TestApp, Tokens};

both_backends!(
    refresh_rotates_and_retires_the_old_access_token,
    a_repeat_within_the_grace_window_gets_the_same_answer,
    a_replay_after_the_grace_window_revokes_that_device_only,
    a_secret_never_issued_revokes_nothing,
    concurrent_refreshes_of_one_token_never_fail_with_5xx,
    a_repeat_at_any_delay_across_the_window_edge_never_forks,
    a_lost_grace_answer_inside_the_window_refuses_instead_of_forking,
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
    let r = app.refresh(guess.expose()).await;
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

/// The one thing a repeat of a rotated-away secret may get besides the very answer the first
/// refresh got: `refresh_token_reused`, with the device session dead. Never a different pair.
/// Returns whether the repeat was replayed (true) or refused (false).
async fn assert_same_answer_or_reused(
    app: &TestApp,
    first: &Tokens,
    status: StatusCode,
    body: &Value,
) -> bool {
    if status == StatusCode::OK {
        let repeat = Tokens::from_body(body);
        assert_eq!(
            repeat.refresh, first.refresh,
            "a repeat forked the chain: {body}"
        );
        assert_eq!(
            repeat.access, first.access,
            "a repeat forked the chain: {body}"
        );
        assert_eq!(repeat.jti, first.jti);
        assert_eq!(app.me_status(&first.access).await.0, StatusCode::OK);
        return true;
    }
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "refresh_token_reused", "{body}");
    assert_eq!(app.me_status(&first.access).await.1, "token_revoked");
    let r = app.refresh(&first.refresh).await;
    assert_eq!(
        error_code(r, StatusCode::UNAUTHORIZED).await,
        "invalid_refresh_token"
    );
    false
}

/// Delays in milliseconds around a 1 s window's edge, each on its own device session, all
/// waiting at once so the sweep costs about its longest delay.
const SWEEP_MS: [u64; 12] = [
    0, 200, 500, 800, 950, 1000, 1050, 1200, 1500, 1800, 2100, 2600,
];

async fn a_repeat_at_any_delay_across_the_window_edge_never_forks(b: Backend) {
    let app = spawn_app_with(b, &[("REFRESH_GRACE_SECS", "1")]).await;
    let email = app.new_user().await;
    let repeats = SWEEP_MS.iter().map(|&delay| {
        let app = &app;
        let email = &email;
        async move {
            let t = app.login(email, &format!("d{delay}")).await;
            let r = app.refresh(&t.refresh).await;
            assert_eq!(r.status(), StatusCode::OK);
            let first = Tokens::from_body(&r.json().await.expect("json"));
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let r = app.refresh(&t.refresh).await;
            let status = r.status();
            let body: Value = r.json().await.expect("json");
            (delay, first, status, body)
        }
    });
    let mut replayed = Vec::new();
    for (delay, first, status, body) in join_all(repeats).await {
        if assert_same_answer_or_reused(&app, &first, status, &body).await {
            replayed.push(delay);
        }
    }
    // Well inside the window the answer is replayed; well past it, the repeat is a replay.
    assert!(replayed.contains(&0), "{replayed:?}");
    assert!(!replayed.contains(&2600), "{replayed:?}");
}

async fn a_lost_grace_answer_inside_the_window_refuses_instead_of_forking(b: Backend) {
    let app = spawn_app_with(b, &[("REFRESH_GRACE_SECS", "30")]).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let first = Tokens::from_body(&app.refresh(&t.refresh).await.json().await.expect("json"));
    // Redis lost the sealed answer (flush, restart, eviction) well inside the window.
    assert!(
        lose_grace_answer(&app, &t).await,
        "the sealed answer was kept"
    );
    let r = app.refresh(&t.refresh).await;
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert!(!assert_same_answer_or_reused(&app, &first, status, &body).await);
}

/// For any time since the rotation (shifted back in SQL, so no test sleeps) and whether Redis
/// still holds the sealed answer, a repeat is the same answer or `refresh_token_reused`; well
/// inside the window with the answer kept it is the same answer, well past it a refusal.
fn any_repeat_is_the_same_answer_or_reused(b: Backend) {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    const GRACE_MS: u64 = 2000;
    // Real time passes between the refresh and its repeat; the model only judges outside it.
    const SLACK_MS: u64 = 500;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let app = rt.block_on(spawn_app_with(b, &[("REFRESH_GRACE_SECS", "2")]));
    let email = rt.block_on(app.new_user());
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(0u64..2 * GRACE_MS + 1000, any::<bool>()),
            |(elapsed, lost)| {
                let replayed = rt.block_on(async {
                    let t = app.login(&email, "prop").await;
                    let first = Tokens::from_body(
                        &app.refresh(&t.refresh).await.json().await.expect("json"),
                    );
                    app.exec_sql(&format!(
                        "UPDATE device_sessions SET rotated_at = rotated_at - {}, \
                     rotated_at_ms = rotated_at_ms - {elapsed} WHERE token_id = '{}'",
                        elapsed.div_ceil(1000),
                        t.token_id
                    ))
                    .await;
                    if lost {
                        lose_grace_answer(&app, &t).await;
                    }
                    let r = app.refresh(&t.refresh).await;
                    let status = r.status();
                    let body: Value = r.json().await.expect("json");
                    assert_same_answer_or_reused(&app, &first, status, &body).await
                });
                if !lost && elapsed + SLACK_MS < GRACE_MS {
                    prop_assert!(replayed, "inside the window with the answer kept: replayed");
                }
                if elapsed > GRACE_MS {
                    prop_assert!(!replayed, "past the window: refused");
                }
                Ok(())
            },
        )
        .expect("property holds");
}

mod any_repeat_is_the_same_answer_or_reused {
    #[test]
    fn sqlite() {
        super::any_repeat_is_the_same_answer_or_reused(crate::helpers::Backend::Sqlite);
    }
    #[test]
    fn postgres() {
        super::any_repeat_is_the_same_answer_or_reused(crate::helpers::Backend::Postgres);
    }
}

/// Deletes the sealed answer kept for a repeat of `t`'s refresh, as a flush, a restart or an
/// eviction would; returns whether it was there.
async fn lose_grace_answer(app: &TestApp, t: &Tokens) -> bool {
    let key = app.state.redis.keys().grace(
        &claims_of(&t.access).sub,
        &tollgate_origin::domain::hash_refresh_secret(&t.refresh),
    );
    let mut redis = app.redis_conn().await;
    let deleted: u64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("del");
    deleted == 1
}
