//! End to end: client → edge (workerd under `wrangler dev`) → tap → origin, with the Upstash
//! REST bridge over real Redis. Every test starts its own stack (see `tollgate_tests::Stack`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use redis::AsyncCommands as _;
use reqwest::StatusCode;
use serde_json::Value;
use tollgate_shared::hostile::{cases, controls, Signer};
use tollgate_shared::jwt::SigningKey;
use tollgate_shared::keys::field;
use tollgate_shared::{AccessClaims, Rejection};
use tollgate_testkit::claims_of;
use tollgate_tests::stack::{assert_rejected, assert_unavailable};
use tollgate_tests::{Stack, StackOptions, Tokens};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// A fresh user logged in on two devices.
async fn two_devices(stack: &Stack) -> (Tokens, Tokens) {
    let email = stack.new_user().await;
    let a = stack.login(&email, "device A").await;
    let b = stack.login(&email, "device B").await;
    (a, b)
}

async fn assert_me_ok(stack: &Stack, tokens: &Tokens) -> Value {
    let (status, body) = stack.me(&tokens.access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Refused at the edge: the right 401, and the origin never saw the request.
async fn assert_refused_at_edge(stack: &Stack, tokens: &Tokens, rejection: Rejection) {
    let before = stack.tap().count();
    assert_rejected(
        stack.get_auth("/api/users/me", &tokens.access).await,
        rejection,
    )
    .await;
    assert_eq!(
        stack.tap().count(),
        before,
        "the origin saw a refused request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_me_through_the_edge_carry_identity_and_never_forged_headers() {
    let stack = Stack::start().await;
    let email = stack.new_user().await;

    // Public route with forged identity headers: passes, but none of them reaches the origin.
    let r = stack
        .client
        .post(stack.url("/api/users/login?via=edge"))
        .header("X-Tollgate-User-Id", "evil")
        .header("x-TOLLGATE-token-version", "999")
        .header("X-Forwarded-For", "6.6.6.6")
        .json(&serde_json::json!({"email": email, "password": tollgate_tests::stack::PASSWORD, "device_name": "laptop"}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::OK);
    let tokens = Tokens::from_body(&r.json().await.expect("json"));
    let seen = stack
        .tap()
        .last("/api/users/login?via=edge")
        .expect("origin saw the login");
    assert_eq!(seen.method, "POST");
    assert_eq!(
        seen.names_with_prefix("x-tollgate-"),
        ["x-tollgate-assertion"],
        "only the edge's own assertion may arrive"
    );
    // Login is public_signed: an anonymous assertion vouching for the client address.
    let anonymous = stack.assertion(&seen, "origin");
    assert_eq!(anonymous.sub, None);
    assert_eq!(anonymous.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(seen.values("x-forwarded-for"), ["127.0.0.1"]);

    // Protected route with forged identity headers: the origin gets the edge's values only.
    let r = stack
        .client
        .get(stack.url("/api/users/me?x=1"))
        .bearer_auth(&tokens.access)
        .header("X-Tollgate-User-Id", "evil")
        .header("X-Tollgate-Jti", "evil")
        .header("X-Forwarded-For", "6.6.6.6")
        .header("X-Custom", "kept")
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.expect("json");
    let user_id = me["data"]["id"].as_str().expect("id").to_owned();
    let version = me["data"]["token_version"].as_i64().expect("version");
    let seen = stack
        .tap()
        .last("/api/users/me?x=1")
        .expect("origin saw /me");
    assert_eq!(seen.method, "GET");
    assert_eq!(
        seen.names_with_prefix("x-tollgate-"),
        ["x-tollgate-assertion"]
    );
    let signed = stack.assertion(&seen, "origin");
    assert_eq!(signed.sub.as_deref(), Some(user_id.as_str()));
    assert_eq!(signed.jti.as_deref(), Some(tokens.jti.as_str()));
    assert_eq!(signed.sid.as_deref(), Some(tokens.token_id.as_str()));
    assert_eq!(signed.ver, u64::try_from(version).ok());
    assert!(signed.ver_checked);
    assert_eq!(seen.values("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.values("x-custom"), ["kept"]);
    let bearer = format!("Bearer {}", tokens.access);
    assert!(
        seen.values("authorization") == [bearer.as_str()],
        "Authorization was not forwarded intact"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_refuses_that_token_at_the_edge_and_spares_other_devices() {
    let stack = Stack::start().await;
    let (a, b) = two_devices(&stack).await;
    assert_me_ok(&stack, &a).await;
    let r = stack.post_auth("/api/users/logout", &a.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_refused_at_edge(&stack, &a, Rejection::Revoked).await;
    assert_me_ok(&stack, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_all_refuses_every_device_at_the_edge() {
    let stack = Stack::start().await;
    let (a, b) = two_devices(&stack).await;
    let r = stack.post_auth("/api/users/logout-all", &a.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_refused_at_edge(&stack, &a, Rejection::Revoked).await;
    assert_refused_at_edge(&stack, &b, Rejection::Revoked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_device_by_jti_refuses_that_device_only() {
    let stack = Stack::start().await;
    let (a, b) = two_devices(&stack).await;
    let path = format!("/api/users/logout-device-jti/{}", b.jti);
    let r = stack.post_auth(&path, &a.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_refused_at_edge(&stack, &b, Rejection::Revoked).await;
    assert_me_ok(&stack, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_device_by_token_id_refuses_that_device_only() {
    let stack = Stack::start().await;
    let (a, b) = two_devices(&stack).await;
    let path = format!("/api/users/logout-device/{}", b.token_id);
    let r = stack.post_auth(&path, &a.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_refused_at_edge(&stack, &b, Rejection::Revoked).await;
    assert_me_ok(&stack, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_account_refuses_every_token_at_the_edge_and_frees_the_email() {
    let stack = Stack::start().await;
    let email = stack.new_user().await;
    let a = stack.login(&email, "device A").await;
    let b = stack.login(&email, "device B").await;
    let user_id = assert_me_ok(&stack, &a).await["data"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let r = stack
        .client
        .delete(stack.url("/api/users/me"))
        .bearer_auth(&a.access)
        .json(&serde_json::json!({"password": tollgate_tests::stack::PASSWORD}))
        .send()
        .await
        .expect("request to the edge");
    assert_eq!(r.status(), StatusCode::OK);
    assert_refused_at_edge(&stack, &a, Rejection::Revoked).await;
    assert_refused_at_edge(&stack, &b, Rejection::Revoked).await;
    // Nothing of the user is left for the edge to read.
    let mut redis = stack.redis_conn().await;
    let exists: bool = redis
        .exists(stack.keys.user(&user_id))
        .await
        .expect("exists");
    assert!(!exists, "the deleted user's hash is still there");
    let again = stack
        .login(&stack_register_again(&stack, &email).await, "new")
        .await;
    assert_me_ok(&stack, &again).await;
}

/// Registers `email` again through the edge; returns it.
async fn stack_register_again(stack: &Stack, email: &str) -> String {
    let r = stack
        .post_json(
            "/api/users/register",
            &serde_json::json!({"email": email, "password": tollgate_tests::stack::PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    email.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_all_version_bump_refuses_a_resurrected_jti_record() {
    let stack = Stack::start().await;
    let (a, _b) = two_devices(&stack).await;
    let mut redis = stack.redis_conn().await;
    let (key, field) = (stack.keys.user(&a.user_id()), field::jti(&a.jti));
    let record: String = redis.hget(&key, &field).await.expect("jti record");
    let r = stack.post_auth("/api/users/logout-all", &a.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    // A delete the logout missed: the record is back, exactly as it was.
    let () = redis.hset(&key, &field, &record).await.expect("resurrect");
    assert_refused_at_edge(&stack, &a, Rejection::Version).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_edge_token_cannot_unrevoke_a_token() {
    let stack = Stack::start().await;
    let (a, _b) = two_devices(&stack).await;
    let mut redis = stack.redis_conn().await;
    let (key, field) = (stack.keys.user(&a.user_id()), field::jti(&a.jti));
    let record: String = redis.hget(&key, &field).await.expect("jti record");
    let r = stack.post_auth("/api/users/logout", &a.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_refused_at_edge(&stack, &a, Rejection::Revoked).await;

    // Whoever holds the Worker's UPSTASH_REDIS_REST_TOKEN tries every way back in through the
    // bridge: re-create the record, as a command, a pipeline, a transaction, a script, a path.
    let bridge = stack.bridge.url();
    let edge_token = stack.bridge.edge_token();
    let command = serde_json::json!(["HSET", key, field, record]);
    let script = serde_json::json!([
        "EVAL",
        "return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])",
        1,
        key,
        field,
        record
    ]);
    for (path, body) in [
        ("/", command.clone()),
        ("/pipeline", serde_json::json!([command.clone()])),
        ("/multi-exec", serde_json::json!([command])),
        ("/", script),
    ] {
        let r = stack
            .client
            .post(format!("{bridge}{path}"))
            .bearer_auth(edge_token)
            .json(&body)
            .send()
            .await
            .expect("bridge");
        let text = r.text().await.expect("body");
        assert!(text.contains("NOPERM"), "{path} {body} → {text}");
    }
    let r = stack
        .client
        .get(format!(
            "{bridge}/hset/{}/{}/{}",
            urlencoding(&key),
            urlencoding(&field),
            urlencoding(&record)
        ))
        .bearer_auth(edge_token)
        .send()
        .await
        .expect("bridge");
    assert!(r.text().await.expect("body").contains("NOPERM"));
    let exists: bool = redis.hexists(&key, &field).await.expect("exists");
    assert!(!exists, "the revoked token's record came back");
    assert_refused_at_edge(&stack, &a, Rejection::Revoked).await;
}

/// Percent-encodes every byte but unreserved ones, for a path segment.
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotation_through_the_edge_retires_the_old_access_token() {
    let stack = Stack::start().await;
    let (a, _b) = two_devices(&stack).await;
    let r = stack.refresh(&a.refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let rotated = Tokens::from_body(&r.json().await.expect("json"));
    assert_ne!(rotated.jti, a.jti);
    assert_eq!(rotated.token_id, a.token_id, "same device session");
    assert_me_ok(&stack, &rotated).await;
    assert_refused_at_edge(&stack, &a, Rejection::Revoked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_refused_without_any_redis_call_and_a_good_one_costs_one_request() {
    let stack = Stack::start().await;
    let (a, _b) = two_devices(&stack).await;
    let me = assert_me_ok(&stack, &a).await;
    let signing = stack.origin.state.keys.view().signing.clone();
    let t = now();
    let claims = AccessClaims {
        sub: me["data"]["id"].as_str().expect("id").to_owned(),
        jti: a.jti.clone(),
        ver: u64::try_from(me["data"]["token_version"].as_i64().expect("ver")).expect("ver"),
        sid: a.token_id.clone(),
        iat: t,
        exp: t + 600,
        nbf: None,
        iss: "tollgate".into(),
        aud: "tollgate-api".into(),
    };
    // Sanity: these claims signed with the real key are accepted, so each variant below fails
    // for its one defect only.
    assert_me_ok(
        &stack,
        &Tokens {
            access: signing.sign(&claims),
            ..a.clone()
        },
    )
    .await;

    let parts: Vec<&str> = a.access.split('.').collect();
    let mut other_user = claims.clone();
    other_user.sub = uuid::Uuid::new_v4().to_string();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other_user).expect("json")),
        parts[2]
    );
    let impostor = SigningKey::EdDSA {
        kid: signing.kid().to_owned(),
        key: ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]),
    };
    let forged = impostor.sign(&claims);
    let mut expired = claims.clone();
    expired.iat = t - 1000;
    expired.exp = t - 100;
    let mut elsewhere = claims.clone();
    elsewhere.aud = "another-api".into();
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            signing.kid()
        )),
        parts[1]
    );
    let cases = [
        (tampered, Rejection::Signature),
        (forged, Rejection::Signature),
        (alg_none, Rejection::Signature),
        (signing.sign(&expired), Rejection::Expired),
        (signing.sign(&elsewhere), Rejection::Claims),
        ("not-a.jwt".to_owned(), Rejection::Malformed),
    ];

    let stats_before = stack.bridge_stats().await;
    let seen_before = stack.tap().count();
    for (token, rejection) in &cases {
        assert_rejected(stack.get_auth("/api/users/me", token).await, *rejection).await;
    }
    // No token at all, on protected paths (every route is protected unless listed public).
    for path in [
        "/api/users/sessions",
        "/api/users/login",
        "/api/users/no-such-route",
    ] {
        let r = stack.client.get(stack.url(path)).send().await.expect("get");
        assert_rejected(r, Rejection::Missing).await;
    }
    // A path no route owns is answered at the edge.
    let r = stack
        .client
        .get(stack.url("/no/such/route"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        stack.bridge_stats().await,
        stats_before,
        "a locally refused token cost a Redis call"
    );
    assert_eq!(
        stack.tap().count(),
        seen_before,
        "the origin saw a refused request"
    );

    assert_me_ok(&stack, &a).await;
    let stats_after = stack.bridge_stats().await;
    // One /pipeline holding one HMGET of the user's hash.
    assert_eq!(stats_after.requests, stats_before.requests + 1);
    assert_eq!(stats_after.commands, stats_before.commands + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_outage_fails_closed_and_recovers_on_restart() {
    let mut stack = Stack::start().await;
    let (a, _b) = two_devices(&stack).await;
    assert_me_ok(&stack, &a).await;

    stack.bridge.stop().await;
    let seen_before = stack.tap().count();
    for _ in 0..3 {
        let r = stack.get_auth("/api/users/me", &a.access).await;
        assert_eq!(
            r.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        assert_unavailable(r).await;
    }
    assert_eq!(
        stack.tap().count(),
        seen_before,
        "the origin saw a request while Upstash was down"
    );
    // Public routes do not need Upstash.
    let health = stack
        .client
        .get(stack.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);

    stack.bridge.restart().await.expect("bridge restarts");
    assert_me_ok(&stack, &a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_upstash_token_fails_closed() {
    let stack = Stack::start_with(StackOptions::default(), |edge| {
        edge.secret("UPSTASH_REDIS_REST_TOKEN", "not-the-bridge-token");
    })
    .await;
    let (a, _b) = two_devices(&stack).await;
    for _ in 0..3 {
        assert_unavailable(stack.get_auth("/api/users/me", &a.access).await).await;
    }
    assert!(
        stack.tap().last("/api/users/me").is_none(),
        "a request reached the origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstash_that_never_answers_times_out_closed() {
    let hole_url = tollgate_tests::black_hole().await;
    let stack = Stack::start_with(StackOptions::default(), |edge| {
        edge.var("UPSTASH_REDIS_REST_URL", hole_url)
            .var("UPSTASH_TIMEOUT_MS", "300");
    })
    .await;
    let (a, _b) = two_devices(&stack).await;
    let started = Instant::now();
    assert_unavailable(stack.get_auth("/api/users/me", &a.access).await).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "answered before the deadline: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "the deadline did not cut the call: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_version_key_is_left_to_the_origin_which_reseeds_it() {
    let stack = Stack::start().await;
    let (a, _b) = two_devices(&stack).await;
    let me = assert_me_ok(&stack, &a).await;
    let user_id = me["data"]["id"].as_str().expect("id").to_owned();
    let mut redis = stack.redis_conn().await;
    let user = stack.keys.user(&user_id);
    let () = redis.hdel(&user, field::VERSION).await.expect("evict");

    let before = stack.tap().count();
    assert_me_ok(&stack, &a).await;
    // The edge first asked the origin (an assertion marked unchecked), then forwarded the
    // request itself with a checked one.
    let seen = stack.tap().seen();
    let [probe, real] = &seen[before..] else {
        panic!(
            "want the origin's check then the request: {:?}",
            &seen[before..]
        );
    };
    assert!(
        !stack.assertion(probe, "origin").ver_checked,
        "the edge vouched for a token it could not fully check"
    );
    assert!(stack.assertion(real, "origin").ver_checked);
    let reseeded: Option<String> = redis.hget(&user, field::VERSION).await.expect("get");
    assert!(
        reseeded.is_some(),
        "the origin did not re-seed the version key"
    );

    assert_me_ok(&stack, &a).await;
    let seen = stack.tap().last("/api/users/me").expect("origin saw /me");
    let signed = stack.assertion(&seen, "origin");
    assert_eq!(signed.sub.as_deref(), Some(user_id.as_str()));
    assert!(signed.ver_checked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_edge_fails_closed_and_names_the_variable() {
    let stack = Stack::start_with(StackOptions::default(), |edge| {
        edge.secret("TOLLGATE_JWKS", "{not json");
    })
    .await;
    for path in ["/health", "/api/users/me"] {
        let r = stack.client.get(stack.url(path)).send().await.expect("get");
        assert_unavailable(r).await;
    }
    assert_eq!(stack.tap().count(), 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !stack
        .edge
        .log_tail(200)
        .contains("TOLLGATE_JWKS: is not a JWKS")
    {
        assert!(
            Instant::now() < deadline,
            "no log line names TOLLGATE_JWKS:\n{}",
            stack.edge.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stack_leaves_no_wrangler_or_workerd_running() {
    let stack = Stack::start().await;
    let group = stack.edge.process_group();
    assert!(tollgate_tests::edge::group_has_live_members(group));
    let started = Instant::now();
    drop(stack);
    assert!(
        !tollgate_tests::edge::group_has_live_members(group),
        "processes of wrangler's group survived"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopping took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_token_is_refused_at_the_edge_with_the_origins_code_and_no_redis_call() {
    let stack = Stack::start().await;
    let (a, _b) = two_devices(&stack).await;
    let signer = Signer::from_signing_key(&stack.origin.state.keys.view().signing).expect("EdDSA");
    let template = claims_of(&a.access);
    let validation = stack.origin.state.validation.clone();
    let table = cases(&signer, &template, &validation, now());
    assert!(table.len() > 80, "the table shrank to {}", table.len());

    let stats_before = stack.bridge_stats().await;
    let seen_before = stack.tap().count();
    let mut failures = Vec::new();
    let mut sent = 0;
    for case in table.iter().filter(|c| c.fits_header()) {
        let header =
            reqwest::header::HeaderValue::from_bytes(format!("Bearer {}", case.token).as_bytes())
                .expect("fits a header");
        let r = stack
            .client
            .get(stack.url("/api/users/me"))
            .header(reqwest::header::AUTHORIZATION, header)
            .send()
            .await
            .expect("request");
        sent += 1;
        let status = r.status();
        let www = r
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let code = body["error"]["code"]
            .as_str()
            .unwrap_or("<none>")
            .to_owned();
        if status != StatusCode::UNAUTHORIZED
            || code != case.expected.as_str()
            || www.as_deref() != Some(tollgate_shared::error::WWW_AUTHENTICATE_INVALID_TOKEN)
        {
            failures.push(format!(
                "{}: expected 401 {}, got {status} {code} www={www:?} ({})",
                case.name, case.expected, case.reason
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(sent > 60, "only {sent} cases fit a header");
    assert_eq!(
        stack.bridge_stats().await,
        stats_before,
        "a hostile token cost a Redis call"
    );
    assert_eq!(
        stack.tap().count(),
        seen_before,
        "a hostile token reached the origin"
    );

    // The controls (odd but harmless headers, iat/nbf inside the leeway) pass, one lookup each.
    let controls = controls(&signer, &template, &validation, now());
    for control in &controls {
        let (status, body) = stack.me(&control.token).await;
        assert_eq!(status, StatusCode::OK, "control {}: {body}", control.name);
    }
    let stats_after = stack.bridge_stats().await;
    assert_eq!(
        stats_after.requests,
        stats_before.requests + u64::try_from(controls.len()).expect("small")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_origin_answers_502_with_the_error_body() {
    let closed = tollgate_tests::free_port().expect("port");
    let stack = Stack::start_with(StackOptions::default(), |edge| {
        let routes = tollgate_tests::stack::routes(
            &format!("http://127.0.0.1:{closed}"),
            &format!("http://127.0.0.1:{closed}"),
        );
        edge.var("TOLLGATE_ROUTES", routes.to_string());
    })
    .await;
    // Log in at the origin itself: the edge cannot reach it.
    let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
    let password = tollgate_tests::stack::PASSWORD;
    let body = serde_json::json!({"email": email, "password": password});
    let r = stack
        .client
        .post(stack.origin.url("/api/users/register"))
        .json(&body)
        .send()
        .await
        .expect("register");
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = stack
        .client
        .post(stack.origin.url("/api/users/login"))
        .json(&body)
        .send()
        .await
        .expect("login");
    let tokens = Tokens::from_body(&r.json().await.expect("json"));

    for r in [
        stack
            .client
            .get(stack.url("/health"))
            .send()
            .await
            .expect("health"),
        stack.get_auth("/api/users/me", &tokens.access).await,
    ] {
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        let body: tollgate_shared::ErrorBody = r.json().await.expect("error body");
        assert_eq!(body.error.code, tollgate_shared::ErrorCode::Unavailable);
    }
}

/// With `JWKS_URL` set and the JWKS unreachable, a request with no token or a malformed one is
/// still the 401 it always was and costs no fetch: no key could verify it, so the edge does not
/// wait on (or fail on) the origin's JWKS. Only a token naming a key the edge does not know
/// makes it ask, and then it fails closed with 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_malformed_token_is_refused_without_fetching_the_jwks() {
    let closed = tollgate_tests::free_port().expect("port");
    // A recording tap in front of a closed port: every JWKS fetch is counted, and answered 502.
    let jwks = tollgate_tests::Tap::start(&format!("http://127.0.0.1:{closed}"))
        .await
        .expect("tap");
    let jwks_url = format!("{}/.well-known/jwks.json", jwks.url());
    let stack = Stack::start_with(StackOptions::default(), |edge| {
        edge.without_secret("TOLLGATE_JWKS")
            .var("JWKS_URL", jwks_url)
            .var("JWKS_MIN_REFETCH_SECS", "1");
    })
    .await;
    let email = stack.new_user().await;
    let tokens = stack.login(&email, "laptop").await;

    let refused = |authorization: Option<&'static str>, rejection| {
        let stack = &stack;
        async move {
            let mut request = stack.client.get(stack.url("/api/users/me"));
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            assert_rejected(request.send().await.expect("get"), rejection).await;
        }
    };
    let local = [
        (None, Rejection::Missing),
        (Some("Basic dXNlcjpwYXNz"), Rejection::Missing),
        (Some("Bearer not-a.jwt"), Rejection::Malformed),
        (Some("Bearer a.b.c"), Rejection::Malformed),
    ];
    for (authorization, rejection) in local {
        refused(authorization, rejection).await;
    }
    assert_eq!(
        jwks.count(),
        0,
        "a token no key can verify fetched the JWKS"
    );

    // A real token names the origin's key, which only the JWKS could tell the edge: it asks,
    // gets nothing usable, and fails closed.
    assert_unavailable(stack.get_auth("/api/users/me", &tokens.access).await).await;
    assert!(jwks.count() >= 1, "the edge never asked for the JWKS");

    // After the failed fetch the local refusals are unchanged (401, not 503) and still free.
    let asked = jwks.count();
    for (authorization, rejection) in local {
        refused(authorization, rejection).await;
    }
    assert_eq!(jwks.count(), asked);
}
