//! Redis unreachable, silent, restarted; the stats counters; shutdown.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tollgate_rest_bridge::{Config, Stats, Token};
use tollgate_testkit::RedisServer;

use crate::helpers::{assert_error_body, TestBridge, REDIS_URL};

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_redis_answers_503_quickly_on_every_route() {
    let b = TestBridge::start_with("redis://127.0.0.1:1", |_| {}).await;
    let started = Instant::now();
    for (path, body) in [
        ("/", json!(["GET", "k"])),
        ("/get/k", Value::Null),
        ("/pipeline", json!([["GET", "k"]])),
        ("/multi-exec", json!([["GET", "k"]])),
    ] {
        let bytes = if body.is_null() {
            vec![]
        } else {
            body.to_string().into_bytes()
        };
        let (status, _, reply) = b.send(Method::POST, path, &[], bytes).await;
        assert_error_body(
            status,
            &reply,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        );
        assert_eq!(reply["code"], "unavailable");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_redis_answers_503_after_the_configured_timeout() {
    // Accepts connections and never answers, like a hung server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let b = TestBridge::start_with(&format!("redis://{addr}"), |c| c.redis_timeout_ms = 300).await;
    let started = Instant::now();
    let (status, body) = b.cmd(json!(["GET", "k"])).await;
    let took = started.elapsed();
    assert_error_body(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bridge_recovers_when_redis_comes_back() {
    let mut redis = RedisServer::start();
    let b = TestBridge::start_with(&redis.url(), |c| c.redis_timeout_ms = 500).await;
    assert_eq!(b.result(json!(["SET", "k", "v"])).await, json!("OK"));

    redis.stop();
    let started = Instant::now();
    let (status, _) = b.cmd(json!(["GET", "k"])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(2));

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = b.cmd(json!(["SET", "k", "again"])).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never recovered: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.result(json!(["GET", "k"])).await, json!("again"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_count_authorized_requests_and_the_commands_redis_answered() {
    let b = TestBridge::start().await;
    assert_eq!(
        b.stats().await,
        Stats {
            requests: 0,
            commands: 0
        }
    );
    b.result(json!(["SET", b.key("s"), 1])).await;
    b.post(
        "/pipeline",
        json!([
            ["GET", b.key("s")],
            ["INCR", b.key("s")],
            ["SUBSCRIBE", "x"]
        ]),
    )
    .await;
    b.post(
        "/multi-exec",
        json!([["INCR", b.key("s")], ["GET", b.key("s")]]),
    )
    .await;
    let (status, _, _) = b
        .send(Method::GET, &format!("/get/{}", b.key("s")), &[], vec![])
        .await;
    assert_eq!(status, StatusCode::OK);
    // Refused before Redis: counted as a request, not as a command.
    b.cmd(json!(["BLPOP", "l", 0])).await;
    // Not authorized: not counted at all.
    let (status, _, _) = b
        .send(
            Method::GET,
            "/ping",
            &[("authorization", "Bearer wrong")],
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    assert_eq!(
        b.stats().await,
        Stats {
            requests: 5,
            commands: 1 + 2 + 2 + 1
        }
    );
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_stops_on_its_shutdown_signal() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let bridge = tollgate_rest_bridge::build(Config::new(REDIS_URL, Token::new("t")))
        .await
        .expect("build");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tollgate_rest_bridge::serve(listener, bridge, async {
        stopped.await.ok();
    }));
    let ping = reqwest::Client::new()
        .get(format!("http://{addr}/ping"))
        .header(AUTHORIZATION, HeaderValue::from_static("Bearer t"))
        .send()
        .await
        .expect("request");
    assert_eq!(ping.status(), StatusCode::OK);
    stop.send(()).expect("server still running");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops")
        .expect("task")
        .expect("serve returns Ok");
}
