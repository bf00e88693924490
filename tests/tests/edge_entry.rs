//! The Worker's JS entry takes a protected request whose token the isolate verified before on
//! its fast path (edge/entry.mjs, edge/src/entry.rs): the awaits in JS, the decision in the same
//! Rust. Its answers are meant to be the full handler's, so these tests run the edge under a
//! probe main module (tests/edge-probe/probe.mjs: the entry, counting the fast path's decisions)
//! and check both the answer and that the fast path gave it.

use std::time::{Duration, Instant};

use redis::AsyncCommands as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_shared::keys::field;
use tollgate_shared::Rejection;
use tollgate_tests::stack::{assert_rejected, assert_unavailable};
use tollgate_tests::{EdgeConfig, Stack, StackOptions, Tokens, ECHO};

const PROBE: &str = "tests/edge-probe/probe.mjs";

/// A stack whose edge runs the probe, with `tweak` applied to its configuration.
async fn probed(tweak: impl FnOnce(&mut EdgeConfig)) -> Stack {
    Stack::start_with(StackOptions::default(), |edge| {
        edge.main(PROBE);
        tweak(edge);
    })
    .await
}

/// How many protected requests the fast path decided, and how many of them it left to the
/// origin's version check.
async fn fast_path(stack: &Stack) -> (u64, u64) {
    let counts: Value = stack
        .client
        .get(stack.url("/__probe"))
        .send()
        .await
        .expect("probe")
        .json()
        .await
        .expect("probe counts");
    let count = |name: &str| counts[name].as_u64().expect("a count");
    (count("decide"), count("originDecides"))
}

async fn me(stack: &Stack, tokens: &Tokens) -> StatusCode {
    stack
        .get_auth("/api/users/me", &tokens.access)
        .await
        .status()
}

async fn two_devices(stack: &Stack) -> (Tokens, Tokens) {
    let email = stack.new_user().await;
    let a = stack.login(&email, "device A").await;
    let b = stack.login(&email, "device B").await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_seen_before_is_decided_on_the_fast_path_and_refused_there_after_a_logout() {
    let stack = probed(|_| {}).await;
    let (a, b) = two_devices(&stack).await;
    // First sight of the token: the full handler verifies (and memoises) it.
    assert_eq!(me(&stack, &a).await, StatusCode::OK);
    assert_eq!(fast_path(&stack).await, (0, 0));
    // Seen before: the fast path, to the origin and to an API upstream, with a checked assertion.
    assert_eq!(me(&stack, &a).await, StatusCode::OK);
    let seen = stack.tap().last("/api/users/me").expect("origin saw /me");
    let claims = stack.assertion(&seen, "origin");
    assert_eq!(claims.jti.as_deref(), Some(a.jti.as_str()));
    assert!(claims.ver_checked);
    let r = stack.get_auth("/api/echo/notes/1", &a.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["jti"], a.jti.as_str());
    let seen = stack.echo_tap().last("/api/echo/notes/1").expect("echo");
    assert_eq!(stack.assertion(&seen, ECHO).htu, "/api/echo/notes/1");
    assert_eq!(fast_path(&stack).await, (2, 0));

    // A logout by device B; A's very next request is refused on the fast path, unseen upstream.
    let path = format!("/api/users/logout-device-jti/{}", a.jti);
    assert_eq!(
        stack.post_auth(&path, &b.access).await.status(),
        StatusCode::OK
    );
    let (origin_before, echo_before) = (stack.tap().count(), stack.echo_tap().count());
    let logged_before = stack.edge.worker_log().len();
    assert_rejected(
        stack.get_auth("/api/echo/notes/1", &a.access).await,
        Rejection::Revoked,
    )
    .await;
    assert_eq!(fast_path(&stack).await, (3, 0));
    assert_eq!(stack.tap().count(), origin_before);
    assert_eq!(stack.echo_tap().count(), echo_before);
    // Logged as the full handler logs a refusal: one line, its code, route and upstream.
    let lines = stack.edge.wait_for_worker_log(logged_before + 1).await;
    let line = &lines[logged_before];
    assert_eq!(line["level"], "warn");
    assert_eq!(line["code"], "token_revoked");
    assert_eq!(line["status"], 401);
    assert_eq!(line["route"], "/api/echo");
    assert_eq!(line["upstream"], ECHO);

    // Logout-all (a version bump) is refused there too.
    assert_eq!(me(&stack, &b).await, StatusCode::OK);
    let r = stack.post_auth("/api/users/logout-all", &b.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let before = fast_path(&stack).await.0;
    assert_rejected(
        stack.get_auth("/api/users/me", &b.access).await,
        Rejection::Revoked,
    )
    .await;
    assert_eq!(fast_path(&stack).await.0, before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_path_streams_the_request_body_and_binds_the_assertion_to_its_method() {
    let stack = probed(|_| {}).await;
    let (a, b) = two_devices(&stack).await;
    assert_eq!(me(&stack, &a).await, StatusCode::OK);
    // The origin reads the password from the body the fast path handed on.
    let r = stack
        .client
        .delete(stack.url("/api/users/me"))
        .bearer_auth(&a.access)
        .json(&json!({"password": tollgate_tests::stack::PASSWORD}))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(fast_path(&stack).await, (1, 0));
    let seen = stack.tap().last("/api/users/me").expect("origin saw it");
    assert_eq!(seen.method, "DELETE");
    assert_eq!(stack.assertion(&seen, "origin").htm, "DELETE");
    assert_rejected(
        stack.get_auth("/api/users/me", &b.access).await,
        Rejection::Revoked,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstash_that_never_answers_times_out_closed_on_the_fast_path() {
    let hole_url = tollgate_tests::black_hole().await;
    let stack = probed(|edge| {
        edge.var("UPSTASH_REDIS_REST_URL", hole_url)
            .var("UPSTASH_TIMEOUT_MS", "300");
    })
    .await;
    let (a, _) = two_devices(&stack).await;
    // The full handler verifies the token, then times out.
    assert_unavailable(stack.get_auth("/api/users/me", &a.access).await).await;
    let logged_before = stack.edge.worker_log().len();
    let started = Instant::now();
    assert_unavailable(stack.get_auth("/api/users/me", &a.access).await).await;
    let took = started.elapsed();
    assert_eq!(fast_path(&stack).await, (1, 0));
    assert!(
        took >= Duration::from_millis(300),
        "before the deadline: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "the deadline did not cut it: {took:?}"
    );
    let lines = stack.edge.wait_for_worker_log(logged_before + 1).await;
    assert_eq!(lines[logged_before]["level"], "error");
    assert_eq!(
        lines[logged_before]["detail"],
        "failing closed: Upstash did not answer within 300 ms"
    );
    assert!(
        stack.tap().last("/api/users/me").is_none(),
        "a request reached the origin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_version_key_on_the_fast_path_is_left_to_the_origin() {
    let stack = probed(|_| {}).await;
    let (a, _) = two_devices(&stack).await;
    let (status, body) = stack.me(&a.access).await;
    assert_eq!(status, StatusCode::OK);
    let user = stack
        .keys
        .user(body["data"]["id"].as_str().expect("user id"));
    let mut redis = stack.redis_conn().await;
    let () = redis.hdel(&user, field::VERSION).await.expect("evict");

    let before = stack.tap().count();
    assert_eq!(me(&stack, &a).await, StatusCode::OK);
    assert_eq!(fast_path(&stack).await, (1, 1));
    let seen = stack.tap().seen();
    let [check, real] = &seen[before..] else {
        panic!(
            "want the origin's check, then the request: {:?}",
            &seen[before..]
        );
    };
    assert!(!stack.assertion(check, "origin").ver_checked);
    assert!(stack.assertion(real, "origin").ver_checked);
    let reseeded: Option<String> = redis.hget(&user, field::VERSION).await.expect("get");
    assert!(reseeded.is_some(), "the origin did not re-seed the version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_on_the_fast_path_answers_502_and_logs_it() {
    let closed = format!(
        "http://127.0.0.1:{}",
        tollgate_tests::free_port().expect("port")
    );
    // The stack's table, with the echo upstream on a port nothing listens on.
    let stack = probed(|edge| {
        let table: Value = serde_json::from_str(&edge.vars["TOLLGATE_ROUTES"]).expect("routes");
        let origin = table["upstreams"]["origin"]["url"]
            .as_str()
            .expect("origin");
        let table = tollgate_tests::stack::routes(origin, &closed);
        edge.var("TOLLGATE_ROUTES", table.to_string());
    })
    .await;
    let (a, _) = two_devices(&stack).await;
    let echo = || stack.get_auth("/api/echo/notes/1", &a.access);
    assert_eq!(echo().await.status(), StatusCode::BAD_GATEWAY);
    let logged_before = stack.edge.worker_log().len();
    assert_eq!(echo().await.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(fast_path(&stack).await, (1, 0));
    let lines = stack.edge.wait_for_worker_log(logged_before + 1).await;
    let line = &lines[logged_before];
    assert_eq!(line["status"], 502);
    assert_eq!(line["route"], "/api/echo");
    assert!(
        line["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("upstream {ECHO} unreachable"))),
        "{line}"
    );
}
