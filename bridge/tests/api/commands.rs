//! Commands in every form Upstash takes: JSON, path, pipeline, MULTI/EXEC, base64 answers.

use reqwest::header::AUTHORIZATION;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error_body, TestBridge};

#[tokio::test(flavor = "multi_thread")]
async fn json_command_runs_with_numbers_and_booleans_as_text() {
    let b = TestBridge::start().await;
    let k = b.key("json");
    assert_eq!(
        b.result(json!(["SET", k, "v", "EX", 100])).await,
        json!("OK")
    );
    let ttl = b.result(json!(["TTL", k])).await.as_i64().expect("int");
    assert!((90..=100).contains(&ttl), "ttl {ttl}");
    assert_eq!(b.result(json!(["SET", k, 42])).await, json!("OK"));
    assert_eq!(b.result(json!(["GET", k])).await, json!("42"));
    assert_eq!(b.result(json!(["SET", k, true])).await, json!("OK"));
    assert_eq!(b.result(json!(["GET", k])).await, json!("true"));
    assert_eq!(
        b.result(json!(["INCRBYFLOAT", b.key("f"), 1.5])).await,
        json!("1.5")
    );
    assert_eq!(
        b.result(json!(["get", b.key("missing")])).await,
        Value::Null
    );
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_values_map_to_json_and_error_replies_to_400() {
    let b = TestBridge::start().await;
    let list = b.key("list");
    assert_eq!(
        b.result(json!(["RPUSH", list, "a", "b", "c"])).await,
        json!(3)
    );
    assert_eq!(
        b.result(json!(["LRANGE", list, 0, -1])).await,
        json!(["a", "b", "c"])
    );
    assert_eq!(
        b.result(json!(["MGET", list, b.key("none")])).await,
        json!([null, null]),
        "MGET of a list is nil, not an error"
    );
    b.result(json!(["HSET", b.key("h"), "f", "v"])).await;
    assert_eq!(
        b.result(json!(["HGETALL", b.key("h")])).await,
        json!(["f", "v"])
    );
    let (status, body) = b.cmd(json!(["GET", list])).await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "WRONGTYPE");
    let (status, body) = b.cmd(json!(["GET"])).await;
    assert_error_body(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "wrong number of arguments",
    );
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn path_form_decodes_segments_and_appends_the_body_then_query_args() {
    let b = TestBridge::start().await;
    let k = b.key("a/b ☃");
    let encoded = format!("{}a%2Fb%20%E2%98%83", b.prefix);
    let (status, _, body) = b
        .send(
            Method::GET,
            &format!("/set/{encoded}/hello%20world"),
            &[],
            vec![],
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"result": "OK"})));
    assert_eq!(b.result(json!(["GET", k])).await, json!("hello world"));

    // POST body appended as the value, `?EX=100` after it, `_token` dropped from the arguments.
    let k2 = b.key("posted");
    let path = format!("/set/{k2}?EX=100&_token={}", b.token);
    let (status, _, body) = b
        .send(Method::POST, &path, &[], br#"{"json": true}"#.to_vec())
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"result": "OK"})));
    assert_eq!(
        b.result(json!(["GET", k2])).await,
        json!(r#"{"json": true}"#)
    );
    let ttl = b.result(json!(["TTL", k2])).await.as_i64().expect("int");
    assert!((90..=100).contains(&ttl), "ttl {ttl}");

    let (status, _, body) = b
        .send(Method::GET, &format!("/get/{k2}"), &[], vec![])
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"result": r#"{"json": true}"#}))
    );
    let (status, _, body) = b.send(Method::GET, "/nosuchcommand/x", &[], vec![]).await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "unknown command");
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pipeline_runs_in_order_and_a_failing_command_does_not_stop_the_rest() {
    let b = TestBridge::start().await;
    let (n, s) = (b.key("n"), b.key("s"));
    let (status, body) = b
        .post(
            "/pipeline",
            json!([
                ["SET", n, 1],
                ["SET", s, "text"],
                ["INCR", s],
                ["INCR", n],
                ["SUBSCRIBE", "chan"],
                ["NOSUCHCOMMAND"],
                ["INCR", n],
                ["GET", n],
                ["GET", b.key("missing")]
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let replies = body.as_array().expect("array");
    assert_eq!(replies.len(), 9);
    assert_eq!(replies[0], json!({"result": "OK"}));
    assert_eq!(replies[1], json!({"result": "OK"}));
    assert!(replies[2]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("not an integer"));
    assert_eq!(replies[3], json!({"result": 2}));
    assert!(replies[4]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("not available"));
    assert!(replies[5]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("unknown command"));
    assert_eq!(replies[6], json!({"result": 3}));
    assert_eq!(replies[7], json!({"result": "3"}));
    assert_eq!(replies[8], json!({"result": null}));
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_exec_is_all_or_nothing_and_runs_without_interleaving() {
    let b = TestBridge::start().await;
    let (k, s) = (b.key("tx"), b.key("tx-str"));
    b.result(json!(["SET", s, "text"])).await;

    // A runtime error inside EXEC fails only that command, as in Redis.
    let (status, body) = b
        .post(
            "/multi-exec",
            json!([["SET", k, 10], ["INCR", s], ["INCR", k], ["GET", k]]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0], json!({"result": "OK"}));
    assert!(body[1]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("not an integer"));
    assert_eq!(body[2], json!({"result": 11}));
    assert_eq!(body[3], json!({"result": "11"}));

    // A command Redis will not queue discards the whole transaction: one top-level error.
    let (status, body) = b
        .post(
            "/multi-exec",
            json!([["SET", k, "discarded"], ["NOSUCHCOMMAND", "x"]]),
        )
        .await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "unknown command");
    assert!(body.get(0).is_none(), "{body}");
    // So does one the bridge refuses (MULTI nested in a transaction, here).
    let (status, body) = b
        .post("/multi-exec", json!([["SET", k, "discarded"], ["MULTI"]]))
        .await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "not available");
    assert_eq!(b.result(json!(["GET", k])).await, json!("11"));

    // Concurrent transactions of two INCRs, raced by plain INCRs: each transaction sees its two
    // increments back to back.
    let c = b.key("counter");
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (http, url, auth, c) = (b.http.clone(), b.base.clone(), b.bearer(), c.clone());
        tasks.push(tokio::spawn(async move {
            let (path, body) = if i % 2 == 0 {
                ("/multi-exec", json!([["INCR", c], ["INCR", c]]))
            } else {
                ("/", json!(["INCR", c]))
            };
            let response = http
                .post(format!("{url}{path}"))
                .header(AUTHORIZATION, auth)
                .body(body.to_string())
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), StatusCode::OK);
            (path, response.json::<Value>().await.expect("json"))
        }));
    }
    for task in tasks {
        let (path, body) = task.await.expect("task");
        if path == "/multi-exec" {
            let first = body[0]["result"].as_i64().expect("int");
            assert_eq!(body[1]["result"].as_i64(), Some(first + 1), "{body}");
        }
    }
    assert_eq!(b.result(json!(["GET", c])).await, json!("60"));
    b.cleanup().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn base64_encoding_covers_every_string_except_a_top_level_ok() {
    let b = TestBridge::start().await;
    let k = b.key("bin");
    let b64 = [("Upstash-Encoding", "base64")];
    let (status, _, body) = b
        .send(
            Method::POST,
            &format!("/set/{k}"),
            &b64,
            vec![0xff, 0x00, 0x01, b'a'],
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"result": "OK"})));
    let get = json!(["GET", k]).to_string().into_bytes();
    let (status, _, body) = b.send(Method::POST, "/", &b64, get.clone()).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"result": "/wABYQ=="}))
    );

    // Without the header, bytes that are not UTF-8 become U+FFFD rather than failing.
    let (status, _, body) = b.send(Method::POST, "/", &[], get).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"result": "\u{fffd}\u{0}\u{1}a"}))
    );

    b.result(json!(["RPUSH", b.key("l"), "OK", "x"])).await;
    let cases = [
        (json!(["PING"]), json!("UE9ORw==")),
        (json!(["GET", b.key("missing")]), Value::Null),
        (json!(["INCR", b.key("n")]), json!(1)),
        (
            json!(["LRANGE", b.key("l"), 0, -1]),
            json!(["T0s=", "eA=="]),
        ),
        (
            json!(["EVAL", "return {'OK', {'a', 7}}", 0]),
            json!(["T0s=", ["YQ==", 7]]),
        ),
        (
            json!(["EVAL", "return redis.call('SET', KEYS[1], 'v')", 1, k]),
            json!("OK"),
        ),
    ];
    for (command, expected) in cases {
        let (status, _, body) = b
            .send(Method::POST, "/", &b64, command.to_string().into_bytes())
            .await;
        assert_eq!(status, StatusCode::OK, "{command}");
        assert_eq!(body, json!({ "result": expected }), "{command}");
    }
    let pipeline = json!([["SET", k, "é"], ["GET", k], ["INCR", k]])
        .to_string()
        .into_bytes();
    let (_, _, body) = b
        .send(Method::POST, "/pipeline", &b64, pipeline.clone())
        .await;
    assert_eq!(body[0], json!({"result": "OK"}));
    assert_eq!(body[1], json!({"result": "w6k="}));
    assert!(
        body[2]["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("ERR"),
        "errors are never encoded"
    );
    let (_, _, body) = b.send(Method::POST, "/multi-exec", &b64, pipeline).await;
    assert_eq!(body[1], json!({"result": "w6k="}));
    b.cleanup().await;
}
