//! Requests that are not commands: wrong methods, oversized and junk bodies, refused commands.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_error_body, TestBridge};

#[tokio::test(flavor = "multi_thread")]
async fn other_methods_on_command_routes_answer_405_with_an_error_body() {
    let b = TestBridge::start().await;
    let cases = [
        (Method::GET, "/"),
        (Method::DELETE, "/"),
        (Method::GET, "/pipeline"),
        (Method::PATCH, "/multi-exec"),
        (Method::DELETE, "/get/x"),
        (Method::POST, "/_bridge/stats"),
    ];
    for (method, path) in cases {
        let (status, _, body) = b.send(method.clone(), path, &[], vec![]).await;
        assert_error_body(
            status,
            &body,
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        );
        assert_eq!(body["code"], "method_not_allowed", "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_one_mebibyte_answer_413() {
    let b = TestBridge::start().await;
    let big = "x".repeat(1024 * 1024 + 1);
    for path in [
        "/",
        "/pipeline",
        "/multi-exec",
        &format!("/set/{}", b.key("big")),
    ] {
        let body = if path.starts_with("/set/") {
            big.clone().into_bytes()
        } else {
            json!(["SET", b.key("big"), big]).to_string().into_bytes()
        };
        let (status, _, body) = b.send(Method::POST, path, &[], body).await;
        assert_error_body(status, &body, StatusCode::PAYLOAD_TOO_LARGE, "too large");
    }
    // Just under the limit is fine.
    let fits = "y".repeat(1024 * 1024 - 100);
    let (status, _, _) = b
        .send(
            Method::POST,
            &format!("/set/{}", b.key("fits")),
            &[],
            fits.into_bytes(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn junk_bodies_answer_400_with_an_error_body_never_500() {
    let b = TestBridge::start().await;
    let single: &[&[u8]] = &[
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[]",
        b"{}",
        b"null",
        b"\"GET\"",
        b"[null]",
        br#"["SET","k",{"nested":"object"}]"#,
        br#"["SET","k",["nested","array"]]"#,
        br#"["SET","k",null]"#,
        b"[\"GET\"",
    ];
    let many: &[&[u8]] = &[
        b"",
        b"[]",
        b"[[]]",
        br#"["GET","k"]"#,
        br#"[["GET","k"],5]"#,
        br#"[["GET",{"a":1}]]"#,
        br#"{"commands":[]}"#,
    ];
    for (path, bodies) in [("/", single), ("/pipeline", many), ("/multi-exec", many)] {
        for body in bodies {
            let (status, _, reply) = b.send(Method::POST, path, &[], body.to_vec()).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{path} {:?} → {reply}",
                String::from_utf8_lossy(body)
            );
            assert!(
                reply["error"]
                    .as_str()
                    .is_some_and(|e| e.starts_with("ERR")),
                "{reply}"
            );
            assert_eq!(reply["code"], "invalid_input");
        }
    }
    let (status, _, _) = b.send(Method::GET, "//x", &[], vec![]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "empty command name");
    let resp2 = [("Upstash-Response-Format", "resp2")];
    let (status, _, reply) = b
        .send(Method::POST, "/", &resp2, br#"["PING"]"#.to_vec())
        .await;
    assert_error_body(
        status,
        &reply,
        StatusCode::BAD_REQUEST,
        "Upstash-Response-Format",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_connection_breaking_commands_answer_400() {
    let b = TestBridge::start().await;
    let (status, body) = b.cmd(json!(["NOSUCHCOMMAND", "a"])).await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "unknown command");
    let refused = [
        json!(["SUBSCRIBE", "c"]),
        json!(["psubscribe", "c*"]),
        json!(["MONITOR"]),
        json!(["BLPOP", b.key("l"), 0]),
        json!(["BRPOP", b.key("l"), 0]),
        json!(["BLMOVE", b.key("a"), b.key("b"), "LEFT", "RIGHT", 0]),
        json!(["BZPOPMIN", b.key("z"), 0]),
        json!(["XREAD", "COUNT", 1, "BLOCK", 0, "STREAMS", b.key("s"), "$"]),
        json!(["WAIT", 1, 0]),
        json!(["MULTI"]),
        json!(["EXEC"]),
        json!(["WATCH", b.key("w")]),
        json!(["SELECT", 1]),
        json!(["QUIT"]),
        json!(["RESET"]),
        json!(["CLIENT", "REPLY", "OFF"]),
        json!(["HELLO", 3]),
    ];
    let started = Instant::now();
    for command in refused {
        let (status, body) = b.cmd(command.clone()).await;
        assert_error_body(status, &body, StatusCode::BAD_REQUEST, "not available");
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "nothing blocked"
    );
    // The shared connection is still healthy and in database 0 with normal replies.
    assert_eq!(b.result(json!(["PING"])).await, json!("PONG"));
    let (status, body) = b
        .cmd(json!(["XREAD", "COUNT", 1, "STREAMS", b.key("s"), "0"]))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"result": null})));
}
