//! The edge as the gateway of the whole API: an app developer's upstream (the echo API, which
//! trusts the edge's assertion through `tollgate-upstream`) behind the route table, a recording
//! tap in front of each upstream.

use redis::AsyncCommands as _;
use reqwest::StatusCode;
use serde_json::Value;
use tollgate_shared::{ErrorBody, ErrorCode, Rejection};
use tollgate_tests::stack::assert_rejected;
use tollgate_tests::{Stack, StackOptions, Tokens, ECHO};

async fn two_devices(stack: &Stack) -> (String, Tokens, Tokens) {
    let email = stack.new_user().await;
    let a = stack.login(&email, "device A").await;
    let b = stack.login(&email, "device B").await;
    (email, a, b)
}

async fn echo(stack: &Stack, tokens: &Tokens) -> (StatusCode, Value) {
    let r = stack.get_auth("/api/echo/notes/1", &tokens.access).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Refused at the edge with `rejection`, and the upstream never saw the request.
async fn assert_echo_refused(stack: &Stack, tokens: &Tokens, rejection: Rejection) {
    let before = stack.echo_tap().count();
    assert_rejected(
        stack.get_auth("/api/echo/notes/1", &tokens.access).await,
        rejection,
    )
    .await;
    assert_eq!(
        stack.echo_tap().count(),
        before,
        "the upstream saw a refused request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_route_gets_the_signed_identity_and_never_a_client_assertion() {
    let stack = Stack::start().await;
    let (_, a, _) = two_devices(&stack).await;
    let r = stack
        .client
        .get(stack.url("/api/echo/notes/1?page=2"))
        .bearer_auth(&a.access)
        .header("X-Tollgate-Assertion", "forged")
        .header("x-tollgate-ASSERTION", "forged too")
        .send()
        .await
        .expect("echo");
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["jti"], a.jti.as_str());
    assert_eq!(body["token_id"], a.token_id.as_str());
    assert_eq!(body["client_ip"], "127.0.0.1");
    let seen = stack
        .echo_tap()
        .last("/api/echo/notes/1?page=2")
        .expect("upstream saw it");
    let claims = stack.assertion(&seen, ECHO);
    assert_eq!(claims.htm, "GET");
    assert_eq!(claims.htu, "/api/echo/notes/1");
    assert!(claims.exp - claims.iat <= 60);
    // Meant for the echo upstream only: the origin would refuse it.
    assert_eq!(
        stack.try_assertion(&seen, "origin"),
        Err(tollgate_shared::assertion::AssertionError::Audience),
        "an echo assertion verified for the origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_logout_is_refused_at_the_edge_before_the_upstream_sees_it() {
    let stack = Stack::start().await;

    // logout (this device)
    let (_, a, b) = two_devices(&stack).await;
    assert_eq!(echo(&stack, &a).await.0, StatusCode::OK);
    let r = stack.post_auth("/api/users/logout", &a.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_echo_refused(&stack, &a, Rejection::Revoked).await;
    assert_eq!(echo(&stack, &b).await.0, StatusCode::OK);

    // logout-all
    let r = stack.post_auth("/api/users/logout-all", &b.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_echo_refused(&stack, &b, Rejection::Revoked).await;

    // logout-device-jti
    let (_, a, b) = two_devices(&stack).await;
    let r = stack
        .post_auth(
            &format!("/api/users/logout-device-jti/{}", b.jti),
            &a.access,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_echo_refused(&stack, &b, Rejection::Revoked).await;
    assert_eq!(echo(&stack, &a).await.0, StatusCode::OK);

    // logout-device (by token id)
    let r = stack
        .post_auth(
            &format!("/api/users/logout-device/{}", a.token_id),
            &a.access,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_echo_refused(&stack, &a, Rejection::Revoked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_ambiguous_paths_are_answered_at_the_edge() {
    let stack = Stack::start().await;
    let (_, a, _) = two_devices(&stack).await;
    let (origin_before, echo_before) = (stack.tap().count(), stack.echo_tap().count());
    for path in ["/nowhere", "/api/echoes", "/API/echo/1", "/"] {
        let r = stack.get_auth(path, &a.access).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body: ErrorBody = r.json().await.expect("error body");
        assert_eq!(body.error.code, ErrorCode::NotFound);
    }
    // Sent raw: an HTTP client would resolve some of these itself. workerd's URL parser
    // resolves `%2e%2e` like `..` before the Worker runs, so that one is routed as the path it
    // resolves to (`/api/users/me`, the origin) — matched and forwarded alike; the others are
    // forms an upstream could read differently, refused.
    for path in [
        "/api/echo/..;/users/me",
        "/api/echo/x%2f..%2fusers",
        "/api/echo/x%5c..%5cusers",
        "/api/echo//x",
    ] {
        let raw = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            a.access
        );
        assert_eq!(
            tollgate_tests::raw_status(stack.edge.port, &raw),
            Some(400),
            "{path}"
        );
    }
    let raw = format!(
        "GET /api/echo/%2e%2e/users/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        a.access
    );
    let status = tollgate_tests::raw_status(stack.edge.port, &raw);
    assert!(matches!(status, Some(200 | 400)), "{status:?}");
    let after = stack.tap().count();
    if status == Some(200) {
        let seen = stack.tap().seen();
        assert_eq!(seen[after - 1].path, "/api/users/me");
    }
    let resolved = usize::from(stack.tap().count() > origin_before);
    assert_eq!(
        stack.tap().count(),
        origin_before + resolved,
        "the origin was asked"
    );
    assert_eq!(
        stack.echo_tap().count(),
        echo_before,
        "the upstream was asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_request_costs_one_redis_round_trip_end_to_end() {
    let stack = Stack::start().await;
    let (_, a, _) = two_devices(&stack).await;
    // Warm: the first request of an isolate may parse settings; not a Redis matter, but keep
    // the counted requests plain.
    assert_eq!(echo(&stack, &a).await.0, StatusCode::OK);
    for path in ["/api/users/me", "/api/echo/notes/1"] {
        let bridge_before = stack.bridge_stats().await.commands;
        let origin_before = stack.origin.state.redis.round_trips();
        let r = stack.get_auth(path, &a.access).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let bridge = stack.bridge_stats().await.commands - bridge_before;
        let origin = stack.origin.state.redis.round_trips() - origin_before;
        // One /pipeline of one HMGET at the bridge, nothing at the origin's Redis.
        assert_eq!(
            (bridge, origin),
            (1, 0),
            "{path}: bridge commands, origin round trips"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_version_key_is_decided_by_the_origin_for_an_upstream_route_too() {
    let stack = Stack::start().await;
    let (_, a, b) = two_devices(&stack).await;
    let (status, body) = echo(&stack, &a).await;
    assert_eq!(status, StatusCode::OK);
    let user_id = body["user_id"].as_str().expect("user").to_owned();
    let mut redis = stack.redis_conn().await;
    let user = stack.keys.user(&user_id);
    let version = tollgate_shared::keys::field::VERSION;
    let () = redis.hdel(&user, version).await.expect("evict");
    assert_eq!(echo(&stack, &a).await.0, StatusCode::OK);
    let reseeded: Option<String> = redis.hget(&user, version).await.expect("get");
    assert!(
        reseeded.is_some(),
        "the origin did not re-seed the version key"
    );

    // After a logout-all the evicted key must not let an old token back in.
    let r = stack.post_auth("/api/users/logout-all", &b.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let () = redis.hdel(&user, version).await.expect("evict");
    let before = stack.echo_tap().count();
    let r = stack.get_auth("/api/echo/notes/1", &a.access).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        stack.echo_tap().count(),
        before,
        "the upstream saw a dead token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_edge_refuses_the_direct_path_and_never_believes_forwarded_for() {
    let stack = Stack::start_with(
        StackOptions {
            require_edge: true,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    let (_, a, _) = two_devices(&stack).await;
    // Through the edge: fine.
    let r = stack.get_auth("/api/users/me", &a.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Straight to the origin with a valid token: refused.
    let r = stack
        .client
        .get(stack.origin.url("/api/users/me"))
        .bearer_auth(&a.access)
        .send()
        .await
        .expect("direct");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: ErrorBody = r.json().await.expect("error body");
    assert_eq!(body.error.code, ErrorCode::AssertionMissing);
    // A forged assertion straight to the origin: refused as invalid.
    let r = stack
        .client
        .get(stack.origin.url("/api/users/me"))
        .bearer_auth(&a.access)
        .header("x-tollgate-assertion", "e30.e30.e30")
        .send()
        .await
        .expect("direct");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: ErrorBody = r.json().await.expect("error body");
    assert_eq!(body.error.code, ErrorCode::AssertionInvalid);

    // A spoofed X-Forwarded-For through the edge reaches neither the sessions list nor the
    // login limits: the address is the one the edge signed.
    let email = stack.new_user().await;
    let r = stack
        .client
        .post(stack.url("/api/users/login"))
        .header("X-Forwarded-For", "6.6.6.6")
        .json(&serde_json::json!({"email": email, "password": tollgate_tests::stack::PASSWORD, "device_name": "spoof"}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::OK);
    let t = Tokens::from_body(&r.json().await.expect("json"));
    let r = stack
        .client
        .get(stack.url("/api/users/sessions"))
        .bearer_auth(&t.access)
        .header("X-Forwarded-For", "6.6.6.6")
        .send()
        .await
        .expect("sessions");
    let sessions: Value = r.json().await.expect("json");
    let ips: Vec<&str> = sessions["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["ip"].as_str())
        .collect();
    assert_eq!(ips, ["127.0.0.1"], "{sessions}");
    let mut redis = stack.redis_conn().await;
    let spoofed: Vec<String> = redis
        .keys(format!("{}ratelimit:*6.6.6.6*", stack.keys.prefix()))
        .await
        .expect("keys");
    assert!(
        spoofed.is_empty(),
        "a spoofed address reached the limits: {spoofed:?}"
    );
}
