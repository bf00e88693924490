//! The bridge over a real 3-master Redis Cluster on loopback (`tollgate_testkit::RedisCluster`,
//! one per test): the edge's lookups, commands routed to every master, transactions held to one
//! slot, a master killed and restarted, a replica promoted, and the cluster configuration
//! refused when wrong.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_rest_bridge::{Config, Token};
use tollgate_testkit::RedisCluster;

use crate::helpers::{assert_error_body, TestBridge};

async fn cluster() -> RedisCluster {
    RedisCluster::start(3, 0).await.expect("cluster starts")
}

/// One key per master, `name:<n>` for the first `n` that lands on it, in master order.
async fn key_per_master(cluster: &RedisCluster, name: &str) -> Vec<String> {
    let mut found: Vec<Option<String>> = vec![None; cluster.urls().len()];
    for n in 0..200 {
        let key = format!("{name}:{n}");
        let master = cluster.master_for_key(&key).await.expect("slot");
        found[master].get_or_insert(key);
        if found.iter().all(Option::is_some) {
            return found.into_iter().flatten().collect();
        }
    }
    panic!("200 keys missed a master: {found:?}")
}

/// `key`'s value read straight from master `i`, bypassing the bridge.
async fn on_master(cluster: &RedisCluster, i: usize, key: &str) -> Option<String> {
    let mut conn = redis::Client::open(cluster.urls()[i].as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects");
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("the key is this master's")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_edges_validation_lookups_answer_over_a_cluster() {
    let cluster = cluster().await;
    let b = TestBridge::start_with(&cluster.cluster_url(), |_| {}).await;

    // Today's schema: one hash per user, one slot, one HMGET.
    let (user, jti) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let hash = format!("tg:{{{user}}}");
    let field = format!("j:{jti}");
    b.result(json!(["HSET", hash, field, "{\"v\":3}", "v", "3"]))
        .await;
    let (status, body) = b
        .post("/pipeline", json!([["HMGET", hash, field, "v"]]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!([{"result": ["{\"v\":3}", "3"]}]));

    // The seed's layout: two GETs whose keys live on two different masters, answered in order.
    let (jti_key, version_key) = loop {
        let (jti, sub) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let (jti_key, version_key) = (format!("token:jti:{jti}"), format!("user:ver:{sub}"));
        if cluster.master_for_key(&jti_key).await.expect("slot")
            != cluster.master_for_key(&version_key).await.expect("slot")
        {
            break (jti_key, version_key);
        }
    };
    b.result(json!(["SET", jti_key, "record"])).await;
    b.result(json!(["SET", version_key, 7])).await;
    let (status, body) = b
        .post(
            "/pipeline",
            json!([
                ["GET", jti_key],
                ["GET", version_key],
                ["GET", "token:jti:none"]
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!([{"result": "record"}, {"result": "7"}, {"result": null}])
    );
    // MGET across slots is split by the cluster client and answered in key order.
    assert_eq!(
        b.result(json!(["MGET", version_key, jti_key])).await,
        json!(["7", "record"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn set_get_expire_and_del_reach_the_master_of_each_key() {
    let cluster = cluster().await;
    let b = TestBridge::start_with(&cluster.cluster_url(), |_| {}).await;
    let keys = key_per_master(&cluster, &b.key("k")).await;
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(b.result(json!(["SET", key, i])).await, json!("OK"));
        assert_eq!(on_master(&cluster, i, key).await, Some(i.to_string()));
        assert_eq!(b.result(json!(["GET", key])).await, json!(i.to_string()));
        assert_eq!(b.result(json!(["EXPIRE", key, 100])).await, json!(1));
        let ttl = b.result(json!(["TTL", key])).await.as_i64().expect("ttl");
        assert!((90..=100).contains(&ttl), "ttl {ttl}");
        // An error reply from a cluster node is the same 400 as from one Redis.
        let (status, body) = b.cmd(json!(["LPUSH", key, "x"])).await;
        assert_error_body(status, &body, StatusCode::BAD_REQUEST, "WRONGTYPE");
    }
    // A pipeline over all three masters, with a per-command error among the results.
    let (status, body) = b
        .post(
            "/pipeline",
            json!([
                ["INCR", keys[0]],
                ["LPUSH", keys[1], "x"],
                ["GET", keys[2]],
                ["SUBSCRIBE", "news"]
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0], json!({"result": 1}));
    assert!(
        body[1]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("WRONGTYPE")),
        "{body}"
    );
    assert_eq!(body[2], json!({"result": "2"}));
    assert!(
        body[3]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("ERR")),
        "{body}"
    );
    // DEL of keys on three masters: split by slot, the counts summed.
    let mut del = vec![json!("DEL")];
    del.extend(keys.iter().map(|k| json!(k)));
    assert_eq!(b.result(Value::Array(del)).await, json!(3));
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(on_master(&cluster, i, key).await, None);
    }
    // The one difference from one Redis (documented): an error nested in a reply fails the
    // whole command, as the cluster client reads it.
    let (status, body) = b
        .cmd(json!([
            "EVAL",
            "return {1, redis.error_reply('BOOM inside')}",
            0
        ]))
        .await;
    assert_error_body(status, &body, StatusCode::BAD_REQUEST, "BOOM inside");
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_must_keep_to_one_slot() {
    let cluster = cluster().await;
    let b = TestBridge::start_with(&cluster.cluster_url(), |_| {}).await;
    let keys = key_per_master(&cluster, "t").await;

    let (status, body) = b
        .post(
            "/multi-exec",
            json!([["SET", keys[0], "1"], ["SET", keys[1], "1"]]),
        )
        .await;
    assert_error_body(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "CROSSSLOT Keys in request don't hash to the same slot",
    );
    // A key the bridge's table does not locate (SORT's STORE destination): Redis refuses it.
    b.result(json!(["RPUSH", "{l}:list", 3, 1, 2])).await;
    let (status, body) = b
        .post(
            "/multi-exec",
            json!([
                ["SET", "{l}:flag", "1"],
                ["SORT", "{l}:list", "STORE", keys[2]]
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = body["error"].as_str().expect("error");
    println!("SORT … STORE across slots: {error}");
    assert!(
        error.contains("CROSSSLOT") || error.starts_with("EXECABORT"),
        "{error}"
    );
    for key in [&keys[0], &keys[1], &keys[2], &"{l}:flag".to_owned()] {
        assert_eq!(
            b.result(json!(["GET", key])).await,
            Value::Null,
            "{key} was written"
        );
    }
    let (status, body) = b
        .post("/multi-exec", json!([["SET", "{l}:a", "1"], ["DBSIZE"]]))
        .await;
    assert_error_body(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "inside a transaction",
    );

    // Hash tags keep a transaction in one slot: it runs, all of it.
    let (status, body) = b
        .post(
            "/multi-exec",
            json!([
                ["SET", "{user:1}:a", "1"],
                ["INCR", "{user:1}:a"],
                ["SET", "{user:1}:b", "x"],
                ["LPUSH", "{user:1}:b", "y"],
                ["MGET", "{user:1}:a", "{user:1}:b"]
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body[0], json!({"result": "OK"}));
    assert_eq!(body[1], json!({"result": 2}));
    assert!(
        body[3]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("WRONGTYPE")),
        "{body}"
    );
    assert_eq!(body[4], json!({"result": ["2", "x"]}));
    // No key at all: any master runs it.
    let (status, body) = b
        .post("/multi-exec", json!([["PING"], ["ECHO", "hi"]]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!([{"result": "PONG"}, {"result": "hi"}]));
}

#[tokio::test(flavor = "multi_thread")]
async fn keyless_commands_span_every_master_and_scan_is_refused() {
    let cluster = cluster().await;
    let b = TestBridge::start_with(&cluster.cluster_url(), |c| {
        c.admin_commands = vec![
            "KEYS".parse().expect("name"),
            "FLUSHALL".parse().expect("name"),
        ];
    })
    .await;
    let keys = key_per_master(&cluster, "n").await;
    for key in &keys {
        b.result(json!(["SET", key, "v"])).await;
    }
    assert_eq!(b.result(json!(["DBSIZE"])).await, json!(3));
    let mut listed: Vec<String> =
        serde_json::from_value(b.result(json!(["KEYS", "n:*"])).await).expect("a list of keys");
    listed.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(b.result(json!(["PING"])).await, json!("PONG"));
    let info = b.result(json!(["INFO", "server"])).await;
    let info = info.as_array().expect("[node, text, …]");
    assert_eq!(info.len(), 6, "{info:?}");
    assert!(info
        .iter()
        .skip(1)
        .step_by(2)
        .all(|text| text.as_str().is_some_and(|t| t.contains("redis_version"))));
    let (status, body) = b.cmd(json!(["SCAN", 0])).await;
    assert_error_body(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "SCAN is not available",
    );
    let (status, body) = b.post("/pipeline", json!([["SCAN", 0], ["DBSIZE"]])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("SCAN")),
        "{body}"
    );
    assert_eq!(body[1], json!({"result": 3}));
    assert_eq!(b.result(json!(["FLUSHALL"])).await, json!("OK"));
    assert_eq!(b.result(json!(["DBSIZE"])).await, json!(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_master_fails_only_its_keys_and_the_bridge_recovers_when_it_returns() {
    let mut cluster = cluster().await;
    let b = TestBridge::start_with(&cluster.cluster_url(), |c| c.redis_timeout_ms = 500).await;
    let keys = key_per_master(&cluster, "a").await;
    for key in &keys {
        b.result(json!(["SET", key, "before"])).await;
    }

    cluster.kill_master(1);
    let fails_fast = |what: &str, started: Instant| {
        let took = started.elapsed();
        assert!(took < Duration::from_millis(1500), "{what} took {took:?}");
    };
    for round in 0..2 {
        let started = Instant::now();
        let (status, body) = b.cmd(json!(["GET", keys[1]])).await;
        assert_error_body(
            status,
            &body,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        );
        fails_fast("GET on the dead master", started);
        let started = Instant::now();
        let (status, body) = b
            .post("/pipeline", json!([["GET", keys[0]], ["GET", keys[1]]]))
            .await;
        assert_error_body(
            status,
            &body,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        );
        fails_fast("a pipeline touching the dead master", started);
        let started = Instant::now();
        let (status, body) = b.post("/multi-exec", json!([["INCR", keys[1]]])).await;
        assert_error_body(
            status,
            &body,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        );
        fails_fast("a transaction on the dead master", started);
        let was = if round == 0 { "before" } else { "during" };
        for i in [0, 2] {
            assert_eq!(b.result(json!(["GET", keys[i]])).await, json!(was));
            assert_eq!(
                b.result(json!(["SET", keys[i], "during"])).await,
                json!("OK")
            );
        }
        if round == 0 {
            // Again once the survivors have marked the master failed (node timeout: 1 s).
            tokio::time::sleep(Duration::from_millis(2500)).await;
        }
    }

    cluster.restart_master(1).await.expect("master rejoins");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = b.cmd(json!(["SET", keys[1], "after"])).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never recovered: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = b
        .post(
            "/pipeline",
            json!([["GET", keys[0]], ["GET", keys[1]], ["GET", keys[2]]]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!([{"result": "during"}, {"result": "after"}, {"result": "during"}])
    );
    let (status, body) = b
        .post(
            "/multi-exec",
            json!([["APPEND", keys[1], "!"], ["GET", keys[1]]]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!([{"result": 6}, {"result": "after!"}]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failover_is_followed_without_restarting_the_bridge() {
    let mut cluster = RedisCluster::start(3, 1).await.expect("cluster starts");
    let b = TestBridge::start_with(&cluster.cluster_url(), |c| c.redis_timeout_ms = 500).await;
    let key = "{fo}:k";
    let master = cluster.master_for_key(key).await.expect("slot");
    assert_eq!(b.result(json!(["SET", key, "kept"])).await, json!("OK"));
    // The bridge's write, not this test's: `replicated` waits for every write of the master.
    cluster
        .replicated(key)
        .await
        .expect("the replica has the write");

    let promoted = cluster.failover(master).await.expect("replica promoted");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(5);
    loop {
        let (status, body) = b.cmd(json!(["GET", key])).await;
        if status == StatusCode::OK {
            assert_eq!(body["result"], json!("kept"));
            break;
        }
        assert_error_body(
            status,
            &body,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        );
        assert!(Instant::now() < deadline, "never followed the failover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "bridge answered from {promoted} {:?} after the failover",
        started.elapsed()
    );
    let (status, body) = b
        .post("/multi-exec", json!([["APPEND", key, "!"], ["GET", key]]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!([{"result": 5}, {"result": "kept!"}]));
    let (status, body) = b.post("/pipeline", json!([["GET", key], ["DBSIZE"]])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!([{"result": "kept!"}, {"result": 1}]));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_cluster_answers_503_and_the_bridge_still_starts() {
    let b = TestBridge::start_with("redis+cluster://127.0.0.1:1,127.0.0.1:2", |_| {}).await;
    let started = Instant::now();
    for (path, body) in [
        ("/", json!(["GET", "k"])),
        ("/pipeline", json!([["GET", "k"]])),
        ("/multi-exec", json!([["GET", "k"]])),
    ] {
        let (status, reply) = b.post(path, body).await;
        assert_error_body(
            status,
            &reply,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_cluster_configuration_is_refused_naming_the_variable() {
    let build = |tweak: fn(&mut Config)| async move {
        let mut config = Config::new("redis://127.0.0.1:6379", Token::new("t"));
        tweak(&mut config);
        tollgate_rest_bridge::build(config)
            .await
            .map(drop)
            .expect_err("refused")
            .to_string()
    };
    let error = build(|c| {
        c.redis_cluster_urls = Some("redis://127.0.0.1:7000,http://:hunter2@127.0.0.1:7001".into())
    })
    .await;
    assert!(
        error.contains("REDIS_CLUSTER_URLS") && error.contains("entry 2"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
    let error = build(|c| {
        c.redis_cluster_urls =
            Some("redis://:hunter2@127.0.0.1:7000,redis://:other@127.0.0.1:7001".into())
    })
    .await;
    assert!(
        error.contains("REDIS_CLUSTER_URLS") && error.contains("password"),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
    let error =
        build(|c| c.redis_url = "redis+cluster://127.0.0.1:7000,,127.0.0.1:7001".into()).await;
    assert!(
        error.contains("REDIS_URL") && error.contains("node 2 is empty"),
        "{error}"
    );
    let error = build(|c| c.redis_url = "redis+cluster://127.0.0.1:7000/2".into()).await;
    assert!(
        error.contains("REDIS_URL") && error.contains("database 0"),
        "{error}"
    );
    let error = build(|c| {
        c.redis_cluster_urls = Some("redis://127.0.0.1:7000".into());
        c.read_redis_url = Some("redis://127.0.0.1:7001".into());
    })
    .await;
    assert!(error.contains("BRIDGE_READ_REDIS_URL"), "{error}");
}
