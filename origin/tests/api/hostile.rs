//! Hostile input at the origin: the shared table of hostile tokens, oversized and deep bodies,
//! overlong fields, Argon2-sized passwords, look-alike emails, odd `Authorization` headers and
//! path parameters. Every answer is the documented error, quickly; never a panic or a 5xx.

use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_shared::hostile::{cases, controls, Signer};

use crate::both_backends;
use crate::helpers::{
    claims_of, error_code, spawn_app, spawn_app_with, Backend, TestApp, PASSWORD,
};

both_backends!(
    every_hostile_token_is_refused_with_its_code,
    every_hostile_token_is_refused_with_its_code_in_hs256_mode,
    bodies_over_16_kib_are_413_on_every_post_route,
    deep_json_is_422_on_every_json_route,
    overlong_fields_get_their_documented_code_on_every_route,
    argon2_sized_passwords_are_refused_before_any_hashing,
    emails_differing_in_case_or_normalisation_are_one_account,
    odd_authorization_headers_are_refused_never_5xx,
    hostile_path_params_are_404_and_touch_nothing,
    forged_identity_and_forwarded_for_headers_change_nothing,
);

/// A request that must be answered well within this, hostile or not (debug build, shared CI box).
const QUICK: Duration = Duration::from_secs(2);

const POST_ROUTES: [&str; 7] = [
    "/api/users/register",
    "/api/users/login",
    "/api/users/refresh",
    "/api/users/logout",
    "/api/users/logout-all",
    "/api/users/logout-device-jti/{jti}",
    "/api/users/logout-device/{token_id}",
];

/// Sends every case of the table as a bearer token to `GET /api/users/me` and every control.
async fn run_table(app: &TestApp, signer: &Signer, access: &str) {
    let template = claims_of(access);
    let now = tollgate_origin::domain::now();
    let validation = app.state.validation.clone();
    let table = cases(signer, &template, &validation, now);
    assert!(table.len() > 80, "the table shrank to {}", table.len());
    let mut failures = Vec::new();
    for case in &table {
        let header = HeaderValue::from_bytes(format!("Bearer {}", case.token).as_bytes());
        let Ok(header) = header else {
            // NUL, CR/LF: no HTTP client can send these (the table says so; the shared tests
            // check the verifier refuses them anyway).
            assert!(!case.fits_header(), "{} should be sendable", case.name);
            continue;
        };
        assert!(case.fits_header(), "{}", case.name);
        let started = Instant::now();
        let r = app
            .client
            .get(app.url("/api/users/me"))
            .header(AUTHORIZATION, header)
            .send()
            .await
            .expect("request");
        let elapsed = started.elapsed();
        let status = r.status();
        let www = r
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let code = body["error"]["code"].as_str().unwrap_or("<none>");
        if status != StatusCode::UNAUTHORIZED
            || code != case.expected.as_str()
            || www.as_deref() != Some(r#"Bearer error="invalid_token""#)
            || elapsed > QUICK
        {
            failures.push(format!(
                "{}: expected 401 {}, got {status} {code} www={www:?} in {elapsed:?} ({})",
                case.name, case.expected, case.reason
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for control in controls(signer, &template, &validation, now) {
        let r = app.get_auth("/api/users/me", &control.token).await;
        assert_eq!(r.status(), StatusCode::OK, "control {}", control.name);
        let me: Value = r.json().await.expect("json");
        assert_eq!(me["data"]["id"], template.sub.as_str(), "{}", control.name);
    }
}

async fn every_hostile_token_is_refused_with_its_code(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let signer =
        Signer::from_signing_key(&app.state.keys.view().signing).expect("EdDSA by default");
    run_table(&app, &signer, &t.access).await;
    // The genuine token was never disturbed.
    assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
}

async fn every_hostile_token_is_refused_with_its_code_in_hs256_mode(b: Backend) {
    let secret = "s".repeat(40);
    let app = spawn_app_with(b, &[("JWT_SECRET", &secret)]).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let signer = Signer::hs256(secret.into_bytes()).expect("long enough");
    assert_eq!(signer.kid(), app.state.keys.view().signing.kid());
    run_table(&app, &signer, &t.access).await;
}

/// Fills `{jti}` / `{token_id}` with the caller's own live ids.
fn route(path: &str, t: &crate::helpers::Tokens) -> String {
    path.replace("{jti}", &t.jti)
        .replace("{token_id}", &t.token_id)
}

async fn bodies_over_16_kib_are_413_on_every_post_route(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let big =
        json!({"email": email, "password": "p".repeat(17 * 1024), "refresh_token": t.refresh});
    for path in POST_ROUTES {
        for authed in [true, false] {
            let mut req = app.client.post(app.url(&route(path, &t))).json(&big);
            if authed {
                req = req.bearer_auth(&t.access);
            }
            let started = Instant::now();
            let r = req.send().await.expect("request");
            assert!(started.elapsed() < QUICK, "{path} slow");
            assert_eq!(
                error_code(r, StatusCode::PAYLOAD_TOO_LARGE).await,
                "payload_too_large",
                "{path} authed={authed}"
            );
        }
    }
    // Chunked, with no Content-Length to refuse up front: refused while reading.
    let chunk = "a".repeat(4096);
    let mut body = String::from("{\"email\":\"");
    let mut request = String::from(
        "POST /api/users/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
    );
    for _ in 0..6 {
        body.push_str(&chunk);
    }
    body.push_str("\"}");
    for piece in body.as_bytes().chunks(1000) {
        request.push_str(&format!(
            "{:x}\r\n{}\r\n",
            piece.len(),
            String::from_utf8_lossy(piece)
        ));
    }
    request.push_str("0\r\n\r\n");
    let (status, answer) = app.raw_request(request.as_bytes()).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    // The session survived every one of those.
    assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
}

async fn deep_json_is_422_on_every_json_route(b: Backend) {
    let app = spawn_app(b).await;
    let deep_arrays = format!("{}{}", "[".repeat(6_000), "]".repeat(6_000));
    let deep_objects = format!("{}1{}", r#"{"email":"#.repeat(1_500), "}".repeat(1_500));
    let nested_field = format!(
        r#"{{"email":"a@b.co","password":{}"x"{}}}"#,
        "[".repeat(3_000),
        "]".repeat(3_000)
    );
    for path in [
        "/api/users/register",
        "/api/users/login",
        "/api/users/refresh",
    ] {
        for body in [&deep_arrays, &deep_objects, &nested_field] {
            assert!(body.len() < 16 * 1024);
            let started = Instant::now();
            let r = app
                .client
                .post(app.url(path))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("request");
            assert!(started.elapsed() < QUICK, "{path} slow");
            assert_eq!(
                error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await,
                "invalid_input",
                "{path} {:.20}",
                body
            );
        }
    }
}

async fn overlong_fields_get_their_documented_code_on_every_route(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let long_email = format!("{}@example.com", "a".repeat(250));
    // register: every field is bounded → 422.
    for body in [
        json!({"email": long_email, "password": PASSWORD}),
        json!({"email": "ok@example.com", "password": "x".repeat(1025)}),
        json!({"email": "ok@example.com", "password": PASSWORD, "name": "n".repeat(101)}),
        json!({"email": "ok@example.com", "password": PASSWORD, "name": "\u{e9}".repeat(101)}),
        json!({"email": "ok@example.com", "password": PASSWORD, "name": "bell\u{7}"}),
    ] {
        let r = app.post_json("/api/users/register", &body).await;
        assert_eq!(
            error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await,
            "invalid_input",
            "{body:.60}"
        );
    }
    // The bounds are characters for names: 100 two-byte characters are fine.
    let r = app
        .post_json(
            "/api/users/register",
            &json!({"email": "accents@example.com", "password": PASSWORD, "name": "\u{e9}".repeat(100)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // login: an overlong device name is a client error; overlong credentials are simply wrong
    // credentials (lengths must not tell which accounts exist).
    let r = app
        .post_json(
            "/api/users/login",
            &json!({"email": email, "password": PASSWORD, "device_name": "d".repeat(101)}),
        )
        .await;
    assert_eq!(
        error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid_input"
    );
    for body in [
        json!({"email": long_email, "password": PASSWORD}),
        json!({"email": email, "password": "x".repeat(1025)}),
    ] {
        let r = app.post_json("/api/users/login", &body).await;
        assert_eq!(
            error_code(r, StatusCode::UNAUTHORIZED).await,
            "invalid_credentials"
        );
    }
    // refresh: an overlong secret is an invalid one, and revokes nothing.
    for secret in [
        "r".repeat(129),
        format!("{}{}", t.refresh, "x".repeat(10_000)),
    ] {
        let r = app.refresh(&secret).await;
        assert_eq!(
            error_code(r, StatusCode::UNAUTHORIZED).await,
            "invalid_refresh_token"
        );
    }
    // Path parameters: 4000 characters name nothing.
    for path in ["/api/users/logout-device-jti/", "/api/users/logout-device/"] {
        let r = app
            .post_auth(&format!("{path}{}", "a".repeat(4000)), &t.access)
            .await;
        assert_eq!(error_code(r, StatusCode::NOT_FOUND).await, "not_found");
    }
    // A huge User-Agent is clipped, not stored whole and not refused.
    let r = app
        .client
        .post(app.url("/api/users/login"))
        .header("user-agent", "U".repeat(8 * 1024))
        .json(&json!({"email": email, "password": PASSWORD, "device_name": "ua"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let sessions: Value = app
        .get_auth("/api/users/sessions", &t.access)
        .await
        .json()
        .await
        .expect("json");
    let ua = sessions["data"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["device_name"] == "ua")
        .and_then(|s| s["user_agent"].as_str())
        .expect("user agent kept")
        .to_owned();
    assert_eq!(
        ua.chars().count(),
        tollgate_origin::domain::MAX_USER_AGENT_CHARS
    );
    // Everything still works.
    assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
    assert_eq!(app.refresh(&t.refresh).await.status(), StatusCode::OK);
}

async fn argon2_sized_passwords_are_refused_before_any_hashing(b: Backend) {
    // A per-IP limit of 3 turns "returned before the rate limiter" into something observable:
    // the limiter runs before the password hash, so attempts that never reach it never hashed.
    let app = spawn_app_with(b, &[("LOGIN_RATE_LIMIT_PER_IP", "3")]).await;
    // Raw requests: the origin answers 413 without reading the body and closes, so an HTTP
    // client still writing a megabyte would see a reset instead of the answer. Once with the
    // whole body (the answer is read back from the socket), once as a careful client sends it,
    // with `Expect: 100-continue` (the body is then never sent).
    let body = json!({"email": "big@example.com", "password": "p".repeat(1024 * 1024)}).to_string();
    for path in ["/api/users/register", "/api/users/login"] {
        for expect in [false, true] {
            let mut request = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if expect {
                request.push_str("Expect: 100-continue\r\n\r\n");
            } else {
                request.push_str("\r\n");
                request.push_str(&body);
            }
            let started = Instant::now();
            let (status, answer) = app.raw_request(request.as_bytes()).await;
            assert_eq!(status, 413, "{path} expect={expect}: {answer:.300}");
            assert!(
                answer.contains("payload_too_large"),
                "{path}: {answer:.300}"
            );
            assert!(
                started.elapsed() < QUICK,
                "{path}: 1 MiB password took {:?}",
                started.elapsed()
            );
        }
    }
    let r = app
        .post_json(
            "/api/users/register",
            &json!({"email": "big@example.com", "password": "x".repeat(1025)}),
        )
        .await;
    assert_eq!(
        error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid_input"
    );
    // Exactly the limit, in bytes, is accepted (512 two-byte characters = 1024 bytes).
    let r = app
        .post_json(
            "/api/users/register",
            &json!({"email": "edge@example.com", "password": "\u{e9}".repeat(512)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let email = app.new_user().await;
    let huge = "p".repeat(15 * 1024);
    let started = Instant::now();
    for _ in 0..10 {
        let r = app
            .post_json(
                "/api/users/login",
                &json!({"email": email, "password": huge}),
            )
            .await;
        assert_eq!(
            error_code(r, StatusCode::UNAUTHORIZED).await,
            "invalid_credentials"
        );
    }
    assert!(
        started.elapsed() < QUICK,
        "10 huge-password logins took {:?}",
        started.elapsed()
    );
    // None of the ten counted against the limit of 3: they stopped before it, and so before Argon2.
    app.login(&email, "after").await;
}

async fn emails_differing_in_case_or_normalisation_are_one_account(b: Backend) {
    let app = spawn_app(b).await;
    let app = &app;
    let register = |email: &str| {
        let body = json!({"email": email, "password": PASSWORD});
        async move { app.post_json("/api/users/register", &body).await }
    };
    let r = register("Jos\u{e9}.Ada@Example.com").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.expect("json")["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let same = [
        "jos\u{e9}.ada@example.com",
        "JOS\u{c9}.ADA@EXAMPLE.COM",
        "Jose\u{301}.Ada@Example.com",                           // NFD
        "\u{ff2a}\u{ff4f}\u{ff53}\u{e9}.\u{ff21}da@example.com", // fullwidth letters
        "  jos\u{e9}.ada@example.com\t",
    ];
    for variant in same {
        let r = app
            .post_json(
                "/api/users/login",
                &json!({"email": variant, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "login as {variant:?}");
        let access = r.json::<Value>().await.expect("json")["data"]["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
        let me: Value = app
            .get_auth("/api/users/me", &access)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(
            me["data"]["id"],
            id.as_str(),
            "{variant:?} is another account"
        );
        let r = register(variant).await;
        assert_eq!(
            error_code(r, StatusCode::CONFLICT).await,
            "email_taken",
            "{variant:?}"
        );
    }
    // A compatibility ligature folds too: "ﬁ" is "fi".
    assert_eq!(
        register("\u{fb01}nance@example.com").await.status(),
        StatusCode::CREATED
    );
    let r = register("finance@example.com").await;
    assert_eq!(error_code(r, StatusCode::CONFLICT).await, "email_taken");
    // A Cyrillic look-alike is a different address, not folded into ours.
    assert_eq!(
        register("jos\u{e9}.\u{430}da@example.com").await.status(),
        StatusCode::CREATED
    );
    // A fullwidth @ is not an address at all.
    let r = register("jos\u{e9}.ada\u{ff20}example.com").await;
    assert_eq!(
        error_code(r, StatusCode::UNPROCESSABLE_ENTITY).await,
        "invalid_input"
    );
}

async fn odd_authorization_headers_are_refused_never_5xx(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let forged = {
        let parts: Vec<&str> = t.access.split('.').collect();
        format!("{}.{}.{}", parts[0], parts[1], "A".repeat(86))
    };
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (
            b"Bearer".to_vec(),
            StatusCode::UNAUTHORIZED,
            "token_missing",
        ),
        (
            b"Basic dXNlcjpwYXNz".to_vec(),
            StatusCode::UNAUTHORIZED,
            "token_missing",
        ),
        (
            format!("Token {}", t.access).into_bytes(),
            StatusCode::UNAUTHORIZED,
            "token_missing",
        ),
        (
            format!("Bearer {} extra", t.access).into_bytes(),
            StatusCode::UNAUTHORIZED,
            "token_malformed",
        ),
        (
            b"Bearer \xff\xfe.\xfd.\xfc".to_vec(),
            StatusCode::UNAUTHORIZED,
            "token_malformed",
        ),
        (
            format!("Bearer {}\u{e9}", t.access).into_bytes(),
            StatusCode::UNAUTHORIZED,
            "token_malformed",
        ),
        (
            format!("Bearer {}", "A".repeat(64 * 1024)).into_bytes(),
            StatusCode::UNAUTHORIZED,
            "token_malformed",
        ),
        // The scheme is case-insensitive (RFC 6750 2.1), and surrounding space is trimmed.
        (
            format!("bEaReR {}", t.access).into_bytes(),
            StatusCode::OK,
            "",
        ),
        (
            format!("Bearer   {}", t.access).into_bytes(),
            StatusCode::OK,
            "",
        ),
    ];
    for (value, status, code) in cases {
        let header = HeaderValue::from_bytes(&value).expect("sendable");
        let started = Instant::now();
        let r = app
            .client
            .get(app.url("/api/users/me"))
            .header(AUTHORIZATION, header)
            .send()
            .await
            .expect("request");
        assert!(started.elapsed() < QUICK);
        let shown = String::from_utf8_lossy(&value[..value.len().min(40)]).into_owned();
        if status == StatusCode::OK {
            assert_eq!(r.status(), status, "{shown}");
        } else {
            assert_eq!(error_code(r, status).await, code, "{shown}");
        }
    }
    // Two Authorization headers: the first decides, so a valid token cannot ride behind a
    // forged one (or the other way round) into a different decision.
    let r = app
        .client
        .get(app.url("/api/users/me"))
        .header(AUTHORIZATION, format!("Bearer {forged}"))
        .header("authorization", format!("Bearer {}", t.access))
        .send()
        .await
        .expect("request");
    assert_eq!(
        error_code(r, StatusCode::UNAUTHORIZED).await,
        "token_signature"
    );
    // Control characters, bare CR and obs-fold never reach the app: the HTTP parser answers
    // 400 itself. What matters is that nothing answers 5xx or accepts the token.
    for value in [
        format!("Bearer {}\x01", t.access),
        format!("Bearer {}\x00", t.access),
        format!("Bearer {}\rX-Injected: 1", t.access),
        format!("Bearer {}\r\n X-Folded: 1", t.access),
        format!("Bearer {}\x7f", t.access),
    ] {
        let request = format!(
            "GET /api/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: {value}\r\nConnection: close\r\n\r\n"
        );
        let (status, answer) = app.raw_request(request.as_bytes()).await;
        assert!(
            status == 400 || status == 401,
            "{:?} answered {status}: {answer:.200}",
            &value[value.len() - 12..]
        );
    }
    assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
}

async fn hostile_path_params_are_404_and_touch_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    let other = app.login(&email, "other").await;
    let sessions_before = app.count_rows("device_sessions").await;
    let hostile = [
        "..%2F..%2F..%2Fetc%2Fpasswd".to_owned(),
        "%2E%2E".to_owned(),
        "%27%20OR%20%271%27%3D%271".to_owned(),
        "1%27%3B%20DROP%20TABLE%20device_sessions%3B%20--".to_owned(),
        "%00".to_owned(),
        "*".to_owned(),
        "%2A".to_owned(),
        format!("{}%00", other.token_id),
        format!("{}%20", other.token_id),
        other.token_id.to_uppercase(),
        format!("{{{}}}", other.token_id),
        "%E2%80%AE".to_owned(),
    ];
    for param in &hostile {
        for prefix in ["/api/users/logout-device/", "/api/users/logout-device-jti/"] {
            let r = app.post_auth(&format!("{prefix}{param}"), &t.access).await;
            assert_eq!(
                error_code(r, StatusCode::NOT_FOUND).await,
                "not_found",
                "{prefix}{param}"
            );
        }
    }
    // Dot segments are not resolved into another route (raw, since clients normalise them).
    for path in [
        "/api/users/logout-device/../logout".to_owned(),
        format!("/api/users/logout-device/{}/../../logout", other.token_id),
        "/api/users/./logout-all".to_owned(),
    ] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            t.access
        );
        let (status, answer) = app.raw_request(request.as_bytes()).await;
        assert_eq!(status, 404, "{path}: {answer:.200}");
        assert!(answer.contains("not_found"), "{path}");
    }
    assert_eq!(app.count_rows("device_sessions").await, sessions_before);
    for tokens in [&t, &other] {
        assert_eq!(app.me_status(&tokens.access).await.0, StatusCode::OK);
    }
}

async fn forged_identity_and_forwarded_for_headers_change_nothing(b: Backend) {
    // The edge strips client-sent `X-Tollgate-*` and sets its own; the origin must not trust
    // them at all (it validates every token itself), nor take a client's X-Forwarded-For for
    // its rate limits unless TRUST_FORWARDED_FOR is set.
    let app = spawn_app_with(b, &[("LOGIN_RATE_LIMIT_PER_IP", "4")]).await;
    let r = app
        .post_json(
            "/api/users/register",
            &json!({"email": "victim@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let victim_id = r.json::<Value>().await.expect("json")["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let attacker_email = app.new_user().await;
    let attacker = app.login(&attacker_email, "a").await;
    let forged = |req: reqwest::RequestBuilder| {
        req.header("X-Tollgate-User-Id", &victim_id)
            .header("x-tollgate-token-id", uuid::Uuid::new_v4().to_string())
            .header("X-Tollgate-Jti", uuid::Uuid::new_v4().to_string())
            .header("X-Tollgate-Token-Version", "999")
    };
    let r = forged(app.client.get(app.url("/api/users/me")))
        .send()
        .await
        .expect("request");
    assert_eq!(
        error_code(r, StatusCode::UNAUTHORIZED).await,
        "token_missing"
    );
    let r = forged(app.client.get(app.url("/api/users/me")))
        .bearer_auth(&attacker.access)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["data"]["id"], claims_of(&attacker.access).sub.as_str());
    assert_eq!(me["data"]["token_version"], 1);

    // Only failures count, so the attacker's login above used nothing: four failures fit, then
    // the limit holds whatever X-Forwarded-For claims.
    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = app
            .client
            .post(app.url("/api/users/login"))
            .header("X-Forwarded-For", format!("203.0.113.{i}"))
            .json(&json!({"email": format!("nobody{i}@example.com"), "password": PASSWORD}))
            .send()
            .await
            .expect("request");
        statuses.push(r.status());
    }
    assert_eq!(&statuses[..4], &[StatusCode::UNAUTHORIZED; 4]);
    assert_eq!(&statuses[4..], &[StatusCode::TOO_MANY_REQUESTS; 2]);
    // And the address that sent them is the one refused, whatever header it adds.
    let r = app
        .client
        .post(app.url("/api/users/login"))
        .header("X-Forwarded-For", "198.51.100.7")
        .json(&json!({"email": attacker_email, "password": PASSWORD}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        app.login_status_from("127.0.0.2", &attacker_email).await,
        StatusCode::OK
    );
}
