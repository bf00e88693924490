//! Tokens and their scopes: full, read-only, scoped, and the administrative commands.

use reqwest::header::WWW_AUTHENTICATE;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tollgate_rest_bridge::{Config, ScopedToken, Token};
use tollgate_testkit::RedisServer;

use crate::helpers::{assert_error_body, TestBridge, REDIS_URL};

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
    let redis = RedisServer::start();
    let b = TestBridge::start_with(&redis.url(), |_| {}).await;
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
    let redis = RedisServer::start();
    let url = redis.url();
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
        c.scoped_tokens = vec![ScopedToken::new(&edge, &["hmget"]).expect("scoped token")];
    })
    .await;
    let user = b.key("tg:{u}");
    b.result(json!(["HSET", user, "v", "3"])).await;

    // What the edge sends: one pipeline of one HMGET of the user's hash.
    let (status, body) = b
        .post_as(&edge, "/pipeline", json!([["HMGET", user, "j:x", "v"]]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([{"result": [null, "3"]}]));
    let (status, body) = b.cmd_as(&edge, json!(["HMGET", user, "v"])).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"result": ["3"]})));

    // Nothing that could un-revoke a token (re-create a jti record, roll a version back) or
    // stall Redis, nor read anything but the hash's fields.
    let record = "1900000000.t.3";
    for command in [
        json!(["HSET", user, "j:x", record]),
        json!(["HSETNX", user, "j:x", record]),
        json!(["HSET", user, "v", "1"]),
        json!(["HINCRBY", user, "v", -1]),
        json!(["HDEL", user, "v"]),
        json!(["DEL", user]),
        json!(["RESTORE", user, 0, "x"]),
        json!(["COPY", user, b.key("other")]),
        json!(["RENAME", user, b.key("other")]),
        json!(["EXPIRE", user, 1]),
        json!(["PERSIST", user]),
        json!(["GET", user]),
        json!(["HGETALL", user]),
        json!(["EVAL", "return 1", 0]),
        json!(["EVAL_RO", "return 1", 0]),
        json!(["KEYS", "*"]),
        json!(["SCAN", 0]),
        json!(["PING"]),
    ] {
        let (status, body) = b.cmd_as(&edge, command.clone()).await;
        assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
        let (status, body) = b
            .post_as(
                &edge,
                "/pipeline",
                json!([["HMGET", user, "v"], command.clone()]),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{command} → {body}");
        assert_eq!(body[0], json!({"result": ["3"]}));
        let error = body[1]["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("NOPERM"), "{command} → {body}");
        let (status, body) = b
            .post_as(&edge, "/multi-exec", json!([["HMGET", user, "v"], command]))
            .await;
        assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
    }
    let (status, _, body) = b
        .send(
            Method::GET,
            &format!(
                "/hset/{}/j:x/x?_token={edge}",
                user.replace('{', "%7B").replace('}', "%7D")
            ),
            &[],
            vec![],
        )
        .await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "NOPERM");
    assert_eq!(b.result(json!(["HGET", user, "v"])).await, json!("3"));
    assert_eq!(b.result(json!(["HEXISTS", user, "j:x"])).await, json!(0));
    b.cleanup().await;
}
