//! The bridge over the real Redis at 127.0.0.1:6379, started in-process on 127.0.0.1:0 and
//! called over HTTP. Every test works under its own `bridgetest:<uuid>:` prefix and deletes its
//! keys at the end; nothing flushes the database.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tollgate_rest_bridge::{spawn, Config, ScopedToken, Stats, Token};

const REDIS_URL: &str = "redis://127.0.0.1:6379";

struct TestBridge {
    base: String,
    token: String,
    readonly_token: String,
    prefix: String,
    http: reqwest::Client,
}

impl TestBridge {
    async fn start() -> Self {
        Self::start_with(REDIS_URL, |_| {}).await
    }

    async fn start_with(redis_url: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        let id = uuid::Uuid::new_v4();
        let token = format!("full-{id}");
        let readonly_token = format!("ro-{id}");
        let mut config = Config::new(redis_url, Token::new(&token));
        config.readonly_token = Some(Token::new(&readonly_token));
        tweak(&mut config);
        let spawned = spawn(config).await.expect("bridge starts");
        Self {
            base: spawned.url(),
            token,
            readonly_token,
            prefix: format!("bridgetest:{id}:"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// Raw request with the full token; answers status, headers and the body as JSON.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = self.http.request(method, self.url(path)).body(body);
        let mut has_auth = false;
        for (name, value) in headers {
            has_auth |= name.eq_ignore_ascii_case("authorization");
            request = request.header(*name, *value);
        }
        if !has_auth && !path.contains("_token=") {
            request = request.header(AUTHORIZATION, self.bearer());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{status}: body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, headers, body)
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, body) = self
            .send(Method::POST, path, &[], body.to_string().into_bytes())
            .await;
        (status, body)
    }

    /// One JSON command on `POST /`.
    async fn cmd(&self, command: Value) -> (StatusCode, Value) {
        self.post("/", command).await
    }

    async fn result(&self, command: Value) -> Value {
        let (status, body) = self.cmd(command.clone()).await;
        assert_eq!(status, StatusCode::OK, "{command} → {body}");
        body["result"].clone()
    }

    async fn stats(&self) -> Stats {
        let response = self
            .http
            .get(self.url("/_bridge/stats"))
            .header(AUTHORIZATION, self.bearer())
            .send()
            .await
            .expect("stats");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("stats JSON")
    }

    /// Deletes this test's keys, found with `SCAN` (the full token runs no `KEYS`).
    async fn cleanup(&self) {
        let mut cursor = json!("0");
        loop {
            let page = self
                .result(json!([
                    "SCAN",
                    cursor,
                    "MATCH",
                    format!("{}*", self.prefix),
                    "COUNT",
                    1000
                ]))
                .await;
            let keys = page[1].as_array().cloned().unwrap_or_default();
            if !keys.is_empty() {
                let mut del = vec![json!("DEL")];
                del.extend(keys);
                self.result(Value::Array(del)).await;
            }
            cursor = page[0].clone();
            if cursor == json!("0") {
                return;
            }
        }
    }

    /// One JSON command on `POST /` with `token`.
    async fn cmd_as(&self, token: &str, command: Value) -> (StatusCode, Value) {
        let auth = format!("Bearer {token}");
        let (status, _, body) = self
            .send(
                Method::POST,
                "/",
                &[("authorization", auth.as_str())],
                command.to_string().into_bytes(),
            )
            .await;
        (status, body)
    }

    /// `path` (`/pipeline`, `/multi-exec`) with `token`.
    async fn post_as(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let auth = format!("Bearer {token}");
        let (status, _, body) = self
            .send(
                Method::POST,
                path,
                &[("authorization", auth.as_str())],
                body.to_string().into_bytes(),
            )
            .await;
        (status, body)
    }
}

fn assert_error_body(status: StatusCode, body: &Value, expected: StatusCode, needle: &str) {
    assert_eq!(status, expected, "{body}");
    let error = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error string in {body}"));
    assert!(
        error.contains(needle),
        "{error:?} should contain {needle:?}"
    );
}

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
async fn bearer_and_query_tokens_are_accepted_and_anything_else_is_401() {
    let b = TestBridge::start().await;
    let (status, _, body) = b.send(Method::GET, "/ping", &[], vec![]).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"result": "PONG"})));
    let lower = format!("bearer {}", b.token);
    let (status, _, _) = b
        .send(Method::GET, "/ping", &[("authorization", &lower)], vec![])
        .await;
    assert_eq!(status, StatusCode::OK, "the scheme is case-insensitive");
    let (status, _, _) = b
        .send(
            Method::GET,
            &format!("/ping?_token={}", b.token),
            &[],
            vec![],
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let wrong = format!("Bearer {}x", b.token);
    let basic = format!("Basic {}", b.token);
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/ping".into(), vec![("authorization", wrong.as_str())]),
        ("/ping".into(), vec![("authorization", basic.as_str())]),
        ("/ping".into(), vec![("authorization", "Bearer ")]),
        ("/ping?_token=nope".into(), vec![]),
        ("/ping?_token=".into(), vec![]),
    ];
    for (path, headers) in cases {
        let (status, headers_out, body) = b.send(Method::GET, &path, &headers, vec![]).await;
        assert_error_body(status, &body, StatusCode::UNAUTHORIZED, "Unauthorized");
        assert!(headers_out.contains_key(WWW_AUTHENTICATE), "{path}");
    }
    // No credentials at all, on every route.
    for path in ["/", "/pipeline", "/multi-exec", "/get/x", "/_bridge/stats"] {
        let method = if path == "/_bridge/stats" {
            Method::GET
        } else {
            Method::POST
        };
        let response = b
            .http
            .request(method, b.url(path))
            .body(r#"["PING"]"#)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "Unauthorized");
        assert_eq!(body["code"], "token_missing");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_token_reads_but_cannot_write() {
    let b = TestBridge::start().await;
    let k = b.key("ro");
    b.result(json!(["SET", k, "original"])).await;
    let ro = format!("Bearer {}", b.readonly_token);
    let auth = [("authorization", ro.as_str())];
    let send = |command: Value| {
        let path = "/";
        let bytes = command.to_string().into_bytes();
        let b = &b;
        async move { b.send(Method::POST, path, &auth, bytes).await }
    };

    let (status, _, body) = send(json!(["GET", k])).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"result": "original"}))
    );
    let (status, _, body) = send(json!(["SET", k, "changed"])).await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
    for command in [
        json!(["EVAL", "return 1", 0]),
        json!(["KEYS", "*"]),
        json!(["MADEUPCMD"]),
    ] {
        let (status, _, body) = send(command.clone()).await;
        assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
    }
    // Query token too, and the path form.
    let (status, _, body) = b
        .send(
            Method::GET,
            &format!("/set/{k}/changed?_token={}", b.readonly_token),
            &[],
            vec![],
        )
        .await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");

    // In a pipeline only the write is refused; in a transaction everything is.
    let pipeline = json!([["GET", k], ["SET", k, "changed"], ["STRLEN", k]]).to_string();
    let (status, _, body) = b
        .send(Method::POST, "/pipeline", &auth, pipeline.into_bytes())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0], json!({"result": "original"}));
    assert!(
        body[1]["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("NOPERM"),
        "{body}"
    );
    assert_eq!(body[2], json!({"result": 8}));
    let tx = json!([["GET", k], ["SET", k, "changed"]]).to_string();
    let (status, _, body) = b
        .send(Method::POST, "/multi-exec", &auth, tx.into_bytes())
        .await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");

    assert_eq!(b.result(json!(["GET", k])).await, json!("original"));
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

/// A private `redis-server` on a free port, killed on drop.
struct OwnRedis {
    child: tokio::process::Child,
}

impl OwnRedis {
    async fn start(port: u16) -> Self {
        let child = tokio::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is installed (it serves the suite's Redis)");
        let deadline = Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self { child }
    }

    async fn stop(mut self) {
        self.child.kill().await.expect("kill redis-server");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bridge_recovers_when_redis_comes_back() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("addr").port()
    };
    let redis = OwnRedis::start(port).await;
    let b = TestBridge::start_with(&format!("redis://127.0.0.1:{port}"), |c| {
        c.redis_timeout_ms = 500
    })
    .await;
    assert_eq!(b.result(json!(["SET", "k", "v"])).await, json!("OK"));

    redis.stop().await;
    let started = Instant::now();
    let (status, _) = b.cmd(json!(["GET", "k"])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(2));

    let _redis = OwnRedis::start(port).await;
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

/// Every way to run code in Redis, with a harmless body: on a bridge that let one through it
/// would answer, not stall, so the test can fail without taking the shared Redis down.
fn script_commands() -> Vec<Value> {
    // SHA-1 of "return 1".
    let sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db";
    vec![
        json!(["EVAL_RO", "return 1", 0]),
        json!(["eval_ro", "return 1", 0]),
        json!(["EVALSHA_RO", sha, 0]),
        json!(["FCALL_RO", "tollgate_no_such_function", 0]),
        json!(["EVAL", "return 1", 0]),
        json!(["EVALSHA", sha, 0]),
        json!(["FCALL", "tollgate_no_such_function", 0]),
        json!(["SCRIPT", "EXISTS", sha]),
        json!(["FUNCTION", "LIST"]),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_token_runs_no_script_of_any_kind() {
    let b = TestBridge::start().await;
    let ro = b.readonly_token.clone();
    let before = b.stats().await;
    for command in script_commands() {
        let (status, body) = b.cmd_as(&ro, command.clone()).await;
        assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
        // In a pipeline and a transaction, next to a read the token may run.
        let (status, body) = b
            .post_as(&ro, "/pipeline", json!([["PING"], command.clone()]))
            .await;
        assert_eq!(status, StatusCode::OK, "{command} → {body}");
        assert_eq!(body[0], json!({"result": "PONG"}));
        let error = body[1]["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("NOPERM"), "{command} → {body}");
        let (status, body) = b
            .post_as(&ro, "/multi-exec", json!([["PING"], command.clone()]))
            .await;
        assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
    }
    // The path form: /eval_ro/return%201/0.
    let (status, _, body) = b
        .send(
            Method::GET,
            &format!("/eval_ro/return%201/0?_token={ro}"),
            &[],
            vec![],
        )
        .await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
    // Nothing but the pipelines' PINGs reached Redis.
    let after = b.stats().await;
    assert_eq!(
        after.commands - before.commands,
        script_commands().len() as u64
    );
}

/// The administrative and destructive commands, each with arguments Redis would accept.
fn admin_commands() -> Vec<Value> {
    vec![
        json!(["CONFIG", "GET", "maxmemory"]),
        json!(["config", "SET", "maxmemory-policy", "allkeys-lru"]),
        json!(["ACL", "LIST"]),
        json!(["ACL", "SETUSER", "intruder", "on", ">pw", "+@all", "~*"]),
        json!(["REPLICAOF", "NO", "ONE"]),
        json!(["SLAVEOF", "NO", "ONE"]),
        json!(["MIGRATE", "127.0.0.1", 1, "k", 0, 100]),
        json!(["MODULE", "LIST"]),
        json!(["SCRIPT", "FLUSH"]),
        json!(["FUNCTION", "FLUSH"]),
        json!(["FLUSHALL"]),
        json!(["flushdb"]),
        json!(["SWAPDB", 0, 1]),
        json!(["KEYS", "*"]),
        json!(["SAVE"]),
        json!(["BGSAVE"]),
        json!(["CLUSTER", "INFO"]),
        json!(["SLOWLOG", "GET"]),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn full_token_refuses_administrative_commands_by_default() {
    // A private Redis: a bridge that let these through must not flush the suite's shared one.
    let port = free_port();
    let _redis = OwnRedis::start(port).await;
    let b = TestBridge::start_with(&format!("redis://127.0.0.1:{port}"), |_| {}).await;
    assert_eq!(
        b.result(json!(["SET", "sentinel", "kept"])).await,
        json!("OK")
    );
    let before = b.stats().await;
    for command in admin_commands() {
        let (status, body) = b.cmd(command.clone()).await;
        assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
        let (status, body) = b.post("/pipeline", json!([command.clone()])).await;
        assert_eq!(status, StatusCode::OK, "{command} → {body}");
        let error = body[0]["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("NOPERM"), "{command} → {body}");
        let (status, body) = b.post("/multi-exec", json!([["PING"], command])).await;
        assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
    }
    for path in ["/flushall", "/config/get/maxmemory", "/keys/*"] {
        let (status, _, body) = b.send(Method::GET, path, &[], vec![]).await;
        assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
    }
    // The server-wide ones never run whatever the configuration.
    for command in [
        json!(["MONITOR"]),
        json!(["DEBUG", "SLEEP", 0]),
        json!(["SHUTDOWN"]),
    ] {
        let (status, body) = b.cmd(command).await;
        assert_error_body(status, &body, StatusCode::BAD_REQUEST, "not available");
    }
    assert_eq!(
        b.stats().await.commands,
        before.commands,
        "nothing reached Redis"
    );
    assert_eq!(b.result(json!(["GET", "sentinel"])).await, json!("kept"));
    let (status, body) = b.cmd(json!(["SET", "ordinary", "write"])).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"result": "OK"})));
}

#[tokio::test(flavor = "multi_thread")]
async fn administrative_commands_run_only_when_enabled_by_name() {
    let port = free_port();
    let _redis = OwnRedis::start(port).await;
    let url = format!("redis://127.0.0.1:{port}");
    let b = TestBridge::start_with(&url, |c| {
        c.admin_commands = vec![
            "keys".parse().expect("name"),
            "FLUSHDB".parse().expect("name"),
        ];
    })
    .await;
    b.result(json!(["SET", "a", 1])).await;
    assert_eq!(b.result(json!(["KEYS", "*"])).await, json!(["a"]));
    assert_eq!(b.result(json!(["FLUSHDB"])).await, json!("OK"));
    assert_eq!(b.result(json!(["DBSIZE"])).await, json!(0));
    // Others stay refused, and so does the enabled one for the read-only token.
    let (status, body) = b.cmd(json!(["FLUSHALL"])).await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
    let (status, body) = b.cmd_as(&b.readonly_token, json!(["KEYS", "*"])).await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");

    // Naming a command no scope can run, or reusing a secret, stops the bridge from starting.
    for tweak in [
        Box::new(|c: &mut Config| c.admin_commands = vec!["MONITOR".parse().expect("name")])
            as Box<dyn Fn(&mut Config)>,
        Box::new(|c: &mut Config| {
            c.scoped_tokens = vec![ScopedToken::new("s", &["GET", "SUBSCRIBE"]).expect("ok")];
        }),
        Box::new(|c: &mut Config| c.readonly_token = Some(Token::new("same"))),
    ] {
        let mut config = Config::new(&url, Token::new("same"));
        tweak(&mut config);
        assert!(
            tollgate_rest_bridge::build(config).await.is_err(),
            "a bad token configuration was accepted"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scoped_token_runs_only_its_commands() {
    let id = uuid::Uuid::new_v4();
    let edge = format!("edge-{id}");
    let b = TestBridge::start_with(REDIS_URL, |c| {
        c.scoped_tokens = vec![ScopedToken::new(&edge, &["GET", "mget"]).expect("scoped token")];
    })
    .await;
    let (jti, ver) = (b.key("token:jti:x"), b.key("user:ver:u"));
    b.result(json!(["SET", ver, "3"])).await;

    // What the edge sends: one pipeline of two GETs; MGET too.
    let (status, body) = b
        .post_as(&edge, "/pipeline", json!([["GET", jti], ["GET", ver]]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([{"result": null}, {"result": "3"}]));
    let (status, body) = b.cmd_as(&edge, json!(["MGET", jti, ver])).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"result": [null, "3"]}))
    );

    // Nothing that could un-revoke a token (re-create a jti record, roll a version back) or
    // stall Redis.
    let record = json!({"userId": "u", "tokenId": "t", "version": 3}).to_string();
    for command in [
        json!(["SET", jti, record]),
        json!(["SET", ver, "1"]),
        json!(["DEL", ver]),
        json!(["INCR", ver]),
        json!(["RESTORE", jti, 0, "x"]),
        json!(["COPY", ver, jti]),
        json!(["RENAME", ver, jti]),
        json!(["EXPIRE", ver, 1]),
        json!(["PERSIST", ver]),
        json!(["EVAL", "return 1", 0]),
        json!(["EVAL_RO", "return 1", 0]),
        json!(["KEYS", "*"]),
        json!(["SCAN", 0]),
        json!(["PING"]),
    ] {
        let (status, body) = b.cmd_as(&edge, command.clone()).await;
        assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
        let (status, body) = b
            .post_as(&edge, "/pipeline", json!([["GET", ver], command.clone()]))
            .await;
        assert_eq!(status, StatusCode::OK, "{command} → {body}");
        assert_eq!(body[0], json!({"result": "3"}));
        let error = body[1]["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("NOPERM"), "{command} → {body}");
        let (status, body) = b
            .post_as(&edge, "/multi-exec", json!([["GET", ver], command]))
            .await;
        assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
    }
    let (status, _, body) = b
        .send(
            Method::GET,
            &format!("/set/{jti}/x?_token={edge}"),
            &[],
            vec![],
        )
        .await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
    assert_eq!(b.result(json!(["GET", ver])).await, json!("3"));
    assert_eq!(b.result(json!(["EXISTS", jti])).await, json!(0));
    b.cleanup().await;
}

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    probe.local_addr().expect("addr").port()
}
