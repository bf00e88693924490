//! `/metrics` when the bridge serves a Redis Cluster: the same names and labels as over one
//! Redis, with refusals before Redis (SCAN, a cross-slot transaction) and a dead master counted.
//! This binary holds this one test, so the process-wide recorder counts only what it does.

use std::time::Duration;

use exposition::Metrics;
use reqwest::StatusCode;
use serde_json::json;
use tollgate_rest_bridge::{spawn, Config, OptionalAddr, Token};
use tollgate_testkit::RedisCluster;

#[path = "../../origin/tests/api/exposition.rs"]
mod exposition;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_commands_refusals_and_a_dead_master_are_counted() {
    let mut cluster = RedisCluster::start(3, 0).await.expect("cluster starts");
    let secret = format!("full-{}", uuid::Uuid::new_v4());
    let mut config = Config::new(cluster.cluster_url(), Token::new(&secret));
    config.metrics_bind = OptionalAddr(Some("127.0.0.1:0".parse().expect("addr")));
    config.redis_timeout_ms = 500;
    let spawned = spawn(config).await.expect("bridge starts");
    let metrics_url = format!(
        "http://{}/metrics",
        spawned.metrics_addr.expect("metrics listener")
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{}{path}", spawned.url()))
            .bearer_auth(&secret)
            .json(&body)
            .send()
    };
    let mut keys: Vec<Option<String>> = vec![None; 3];
    for n in 0..200 {
        let key = format!("m:{n}");
        keys[cluster.master_for_key(&key).await.expect("slot")].get_or_insert(key);
    }
    let keys: Vec<String> = keys
        .into_iter()
        .map(|k| k.expect("a key per master"))
        .collect();
    let before = Metrics::scrape(&metrics_url).await;

    for key in &keys {
        let r = post("/", json!(["SET", key, "v"])).await.expect("SET");
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = post("/pipeline", json!([["GET", keys[0]], ["GET", keys[1]]]))
        .await
        .expect("pipeline");
    assert_eq!(r.status(), StatusCode::OK);
    let r = post("/", json!(["SCAN", 0])).await.expect("SCAN");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(
        "/multi-exec",
        json!([["SET", keys[0], 1], ["SET", keys[2], 1]]),
    )
    .await
    .expect("multi-exec");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post("/multi-exec", json!([["SET", "{t}a", 1], ["INCR", "{t}a"]]))
        .await
        .expect("multi-exec");
    assert_eq!(r.status(), StatusCode::OK);
    cluster.kill_master(2);
    let r = post("/", json!(["GET", keys[2]])).await.expect("GET");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    let after = Metrics::scrape(&metrics_url).await;
    let d = |metric: &str, labels: &[(&str, &str)]| {
        after.get(metric, labels) - before.get(metric, labels)
    };
    let commands = "tollgate_bridge_commands_total";
    let c = |name, outcome| [("command", name), ("outcome", outcome)];
    assert_eq!(d(commands, &c("SET", "ok")), 3.0 + 1.0);
    assert_eq!(d(commands, &c("GET", "ok")), 2.0);
    assert_eq!(d(commands, &c("INCR", "ok")), 1.0);
    assert_eq!(d(commands, &c("SCAN", "refused")), 1.0);
    assert_eq!(
        d(commands, &c("SET", "refused")),
        2.0,
        "the cross-slot transaction"
    );
    assert_eq!(d(commands, &c("GET", "unavailable")), 1.0);

    let requests = "tollgate_bridge_http_requests_total";
    let r = |method, route, status| [("method", method), ("route", route), ("status", status)];
    assert_eq!(d(requests, &r("POST", "/", "200")), 3.0);
    assert_eq!(d(requests, &r("POST", "/", "503")), 1.0);
    assert_eq!(d(requests, &r("POST", "/multi-exec", "400")), 1.0);
    for command in after.label_values(commands, "command") {
        assert!(!command.contains("m:"), "a key became a command label");
    }

    let redis = "tollgate_bridge_redis_duration_seconds_count";
    assert_eq!(d(redis, &[("op", "command"), ("outcome", "ok")]), 3.0);
    assert_eq!(d(redis, &[("op", "command"), ("outcome", "error")]), 1.0);
    assert_eq!(d(redis, &[("op", "pipeline"), ("outcome", "ok")]), 1.0);
    assert_eq!(d(redis, &[("op", "transaction"), ("outcome", "ok")]), 1.0);
}
