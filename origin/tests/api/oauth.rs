//! RFC 7009 revocation and RFC 7662 introspection: what each token kills, that nothing reaches
//! another user, client authentication, and the RFC 6749 error bodies.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{claims_of, sha256_hex, spawn_app, spawn_app_with, Backend, TestApp, Tokens};

both_backends!(
    revoking_a_refresh_token_kills_its_device_session,
    revoking_an_access_token_kills_that_token_only,
    revocation_never_reaches_another_users_tokens,
    introspection_reports_a_live_token_with_its_claims,
    introspection_is_inactive_on_the_next_call_after_each_kind_of_logout,
);

const CLIENT_ID: &str = "notes-rs";
const CLIENT_SECRET: &str = "k9YvQ2mX7pLr4sT8wZ1bN6cF3hJ0dA5e";

async fn form(app: &TestApp, path: &str, pairs: &[(&str, &str)], basic: Option<&str>) -> Response {
    let mut req = app.client.post(app.url(path)).form(pairs);
    if let Some(value) = basic {
        req = req.header("authorization", value);
    }
    req.send().await.expect("request")
}

async fn revoke(app: &TestApp, token: &str) -> Response {
    form(app, "/oauth/revoke", &[("token", token)], None).await
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// An origin with one introspection client configured by the hash of its secret.
async fn spawn_with_client(b: Backend) -> TestApp {
    let entry = format!("{CLIENT_ID}:sha256:{}", sha256_hex(CLIENT_SECRET));
    spawn_app_with(b, &[("INTROSPECTION_CLIENTS", &entry)]).await
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let r = form(
        app,
        "/oauth/introspect",
        &[("token", token)],
        Some(&basic(CLIENT_ID, CLIENT_SECRET)),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    r.json().await.expect("json")
}

/// The RFC 6749 §5.2 error code of an OAuth error answer with this status.
async fn oauth_error(r: Response, status: StatusCode) -> String {
    assert_eq!(r.status(), status);
    let body: Value = r.json().await.expect("error body is JSON");
    assert!(body["error_description"].is_string(), "{body}");
    body["error"].as_str().expect("error").to_owned()
}

async fn revoking_a_refresh_token_kills_its_device_session(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let phone = app.login(&email, "phone").await;
    let laptop = app.login(&email, "laptop").await;
    let r = revoke(&app, &phone.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.expect("body"), "");
    assert_eq!(
        app.me_status(&phone.access).await,
        (StatusCode::UNAUTHORIZED, "token_revoked".into())
    );
    let r = app.refresh(&phone.refresh).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.count_where(
            "device_sessions",
            &format!(
                "token_id = '{}' AND revoked_reason = 'oauth_revoke'",
                phone.token_id
            )
        )
        .await,
        1
    );
    // The other device of the same user is untouched; revoking again is still 200.
    assert_eq!(app.me_status(&laptop.access).await.0, StatusCode::OK);
    assert_eq!(app.refresh(&laptop.refresh).await.status(), StatusCode::OK);
    assert_eq!(revoke(&app, &phone.refresh).await.status(), StatusCode::OK);

    // A secret already rotated away still names its session, as it does at /refresh.
    let tablet = app.login(&email, "tablet").await;
    let rotated = Tokens::from_body(
        &app.refresh(&tablet.refresh)
            .await
            .json()
            .await
            .expect("json"),
    );
    assert_eq!(revoke(&app, &tablet.refresh).await.status(), StatusCode::OK);
    assert_eq!(
        app.me_status(&rotated.access).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(&rotated.refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn revoking_an_access_token_kills_that_token_only(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let phone = app.login(&email, "phone").await;
    let laptop = app.login(&email, "laptop").await;
    // The hint is only a hint: a wrong one changes nothing.
    let r = form(
        &app,
        "/oauth/revoke",
        &[
            ("token", &phone.access),
            ("token_type_hint", "refresh_token"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.me_status(&phone.access).await,
        (StatusCode::UNAUTHORIZED, "token_revoked".into())
    );
    let user_id = crate::helpers::claims_of(&phone.access).sub;
    assert_eq!(
        app.hget(&user_id, &tollgate_shared::keys::field::jti(&phone.jti))
            .await,
        None
    );
    assert_eq!(app.me_status(&laptop.access).await.0, StatusCode::OK);
    // The device session lives on: its refresh token still mints a new access token.
    let r = app.refresh(&phone.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let fresh = Tokens::from_body(&r.json().await.expect("json"));
    assert_eq!(app.me_status(&fresh.access).await.0, StatusCode::OK);
}

async fn revocation_never_reaches_another_users_tokens(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let a = app.login(&alice, "a").await;
    let bobs = app.login(&bob, "b").await;

    // Alice revokes both her tokens; Bob notices nothing.
    assert_eq!(revoke(&app, &a.access).await.status(), StatusCode::OK);
    assert_eq!(revoke(&app, &a.refresh).await.status(), StatusCode::OK);
    assert_eq!(app.me_status(&bobs.access).await.0, StatusCode::OK);

    // Bob's token with its signature broken, Bob's claims re-signed by nobody we trust, and
    // tokens we never issued: each is 200 (RFC 7009 §2.2) and revokes nothing.
    let mut forged = bobs.access.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    let (head, _) = bobs.access.split_once('.').expect("jwt");
    let claims = serde_json::to_vec(&claims_of(&bobs.access)).expect("claims");
    let unsigned = format!(
        "{head}.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims)
    );
    let never_issued = format!("rt_{}", "A".repeat(43));
    for token in [
        forged.as_str(),
        unsigned.as_str(),
        never_issued.as_str(),
        "garbage",
        &"x".repeat(9000),
    ] {
        let r = revoke(&app, token).await;
        assert_eq!(r.status(), StatusCode::OK, "{token:.20}");
    }
    assert_eq!(app.me_status(&bobs.access).await.0, StatusCode::OK);
    assert_eq!(app.refresh(&bobs.refresh).await.status(), StatusCode::OK);
    assert_eq!(
        app.count_where(
            "device_sessions",
            &format!("token_id = '{}' AND revoked_at IS NULL", bobs.token_id)
        )
        .await,
        1
    );
}

async fn introspection_reports_a_live_token_with_its_claims(b: Backend) {
    let app = spawn_with_client(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "phone").await;
    let claims = claims_of(&t.access);
    let body = introspect(&app, &t.access).await;
    assert_eq!(
        body,
        json!({
            "active": true,
            "sub": claims.sub,
            "jti": t.jti,
            "exp": claims.exp,
            "iat": claims.iat,
            "iss": "tollgate",
            "aud": "tollgate-api",
            "token_type": "Bearer",
            "sid": t.token_id,
            "ver": 1,
        })
    );
    // A refresh token, an expired token, a malformed one: exactly inactive.
    let keys = app.state.keys.view();
    let mut expired = claims.clone();
    expired.iat -= 2000;
    expired.exp = expired.iat + 900;
    for token in [
        t.refresh.clone(),
        keys.signing.sign(&expired),
        "garbage".to_owned(),
    ] {
        assert_eq!(introspect(&app, &token).await, json!({"active": false}));
    }
    // Introspecting is read-only: the token still works.
    assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
}

async fn introspection_is_inactive_on_the_next_call_after_each_kind_of_logout(b: Backend) {
    let app = spawn_with_client(b).await;
    let email = app.new_user().await;
    let inactive = json!({"active": false});

    let t = app.login(&email, "logout").await;
    assert_eq!(introspect(&app, &t.access).await["active"], true);
    assert_eq!(
        app.post_auth("/api/users/logout", &t.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(introspect(&app, &t.access).await, inactive, "logout");

    let (t, other) = (
        app.login(&email, "jti").await,
        app.login(&email, "other").await,
    );
    let path = format!("/api/users/logout-device-jti/{}", t.jti);
    assert_eq!(
        app.post_auth(&path, &other.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        introspect(&app, &t.access).await,
        inactive,
        "logout-device-jti"
    );

    let t = app.login(&email, "device").await;
    let path = format!("/api/users/logout-device/{}", t.token_id);
    assert_eq!(
        app.post_auth(&path, &other.access).await.status(),
        StatusCode::OK
    );
    assert_eq!(introspect(&app, &t.access).await, inactive, "logout-device");

    let t = app.login(&email, "revoke-access").await;
    assert_eq!(revoke(&app, &t.access).await.status(), StatusCode::OK);
    assert_eq!(introspect(&app, &t.access).await, inactive, "revoke access");

    let t = app.login(&email, "revoke-refresh").await;
    assert_eq!(revoke(&app, &t.refresh).await.status(), StatusCode::OK);
    assert_eq!(
        introspect(&app, &t.access).await,
        inactive,
        "revoke refresh"
    );

    let (t, u) = (
        app.login(&email, "all-1").await,
        app.login(&email, "all-2").await,
    );
    assert_eq!(introspect(&app, &other.access).await["active"], true);
    assert_eq!(
        app.post_auth("/api/users/logout-all", &u.access)
            .await
            .status(),
        StatusCode::OK
    );
    for token in [&t.access, &u.access, &other.access] {
        assert_eq!(introspect(&app, token).await, inactive, "logout-all");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_requires_the_clients_credentials() {
    let app = spawn_with_client(Backend::Sqlite).await;
    let email = app.new_user().await;
    let t = app.login(&email, "phone").await;
    let wrong = [
        None,
        Some(basic(CLIENT_ID, "not-the-secret")),
        Some(basic("another-rs", CLIENT_SECRET)),
        Some(basic(CLIENT_ID, "")),
        Some(format!("Bearer {}", t.access)),
        Some("Basic !!!not-base64".to_owned()),
    ];
    for auth in wrong {
        let r = form(
            &app,
            "/oauth/introspect",
            &[("token", &t.access)],
            auth.as_deref(),
        )
        .await;
        assert_eq!(
            r.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some(r#"Basic realm="tollgate-introspection""#),
            "{auth:?}"
        );
        assert_eq!(
            oauth_error(r, StatusCode::UNAUTHORIZED).await,
            "invalid_client"
        );
    }
    // Without INTROSPECTION_CLIENTS nobody gets in.
    let closed = spawn_app(Backend::Sqlite).await;
    let r = form(
        &closed,
        "/oauth/introspect",
        &[("token", &t.access)],
        Some(&basic(CLIENT_ID, CLIENT_SECRET)),
    )
    .await;
    assert_eq!(
        oauth_error(r, StatusCode::UNAUTHORIZED).await,
        "invalid_client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_endpoints_answer_bad_requests_with_invalid_request() {
    let app = spawn_with_client(Backend::Sqlite).await;
    let auth = basic(CLIENT_ID, CLIENT_SECRET);
    for path in ["/oauth/revoke", "/oauth/introspect"] {
        let cases: [(&str, Option<&str>, &str); 5] = [
            (
                "missing token",
                Some("application/x-www-form-urlencoded"),
                "token_type_hint=access_token",
            ),
            (
                "empty token",
                Some("application/x-www-form-urlencoded"),
                "token=",
            ),
            (
                "repeated token",
                Some("application/x-www-form-urlencoded"),
                "token=a&token=b",
            ),
            ("JSON body", Some("application/json"), r#"{"token":"abc"}"#),
            ("no content type", None, "token=abc"),
        ];
        for (what, content_type, body) in cases {
            let mut req = app
                .client
                .post(app.url(path))
                .header("authorization", &auth)
                .body(body.to_owned());
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            let r = req.send().await.expect("request");
            assert_eq!(
                oauth_error(r, StatusCode::BAD_REQUEST).await,
                "invalid_request",
                "{path}: {what}"
            );
        }
        // Only POST.
        let r = app.client.get(app.url(path)).send().await.expect("request");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
