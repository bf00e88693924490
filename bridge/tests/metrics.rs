//! `/metrics` on `BRIDGE_METRICS_ADDR`, against the real Redis at 127.0.0.1:6379. This binary
//! holds this one test, so the process-wide recorder counts only what it does.

use std::time::Duration;

use exposition::Metrics;
use reqwest::StatusCode;
use serde_json::json;
use tollgate_rest_bridge::{spawn, Config, OptionalAddr, Token};

#[path = "../../origin/tests/api/exposition.rs"]
mod exposition;

const REDIS_URL: &str = "redis://127.0.0.1:6379";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_auth_failures_and_redis_latency_are_counted_by_bounded_labels() {
    let id = uuid::Uuid::new_v4();
    let secret = format!("full-{id}");
    let mut config = Config::new(REDIS_URL, Token::new(&secret));
    config.metrics_bind = OptionalAddr(Some("127.0.0.1:0".parse().expect("addr")));
    let spawned = spawn(config).await.expect("bridge starts");
    let metrics_url = format!(
        "http://{}/metrics",
        spawned.metrics_addr.expect("metrics listener")
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let url = |path: &str| format!("{}{path}", spawned.url());
    let key = format!("bridgetest:{id}:metrics");
    let command =
        |body: serde_json::Value| http.post(url("/")).bearer_auth(&secret).json(&body).send();
    let before = Metrics::scrape(&metrics_url).await;

    assert_eq!(
        command(json!(["SET", key, "v"]))
            .await
            .expect("SET")
            .status(),
        StatusCode::OK
    );
    let r = http
        .get(url(&format!("/get/{key}")))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::OK);
    // Refused by the token's scope, an unknown name Redis refuses, and a pipeline of both kinds.
    assert_eq!(
        command(json!(["FLUSHALL"]))
            .await
            .expect("FLUSHALL")
            .status(),
        StatusCode::BAD_REQUEST
    );
    let made_up = format!("MADEUP{}", id.simple());
    assert_eq!(
        command(json!([made_up])).await.expect("made up").status(),
        StatusCode::BAD_REQUEST
    );
    let r = http
        .post(url("/pipeline"))
        .bearer_auth(&secret)
        .json(&json!([["GET", key], ["SUBSCRIBE", "news"]]))
        .send()
        .await
        .expect("pipeline");
    assert_eq!(r.status(), StatusCode::OK);
    // No token, then a wrong one.
    let r = http.post(url("/")).json(&json!(["GET", key])).send().await;
    assert_eq!(r.expect("no token").status(), StatusCode::UNAUTHORIZED);
    let r = http
        .post(url("/"))
        .bearer_auth("not-the-token")
        .json(&json!(["GET", key]))
        .send()
        .await;
    assert_eq!(r.expect("bad token").status(), StatusCode::UNAUTHORIZED);
    // The REST port has no metrics: `/metrics` there is the command METRICS, which Redis refuses.
    let r = http
        .get(url("/metrics"))
        .bearer_auth(&secret)
        .send()
        .await
        .expect("REST /metrics");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!r.text().await.expect("body").contains("tollgate_bridge"));
    let r = command(json!(["DEL", key])).await.expect("DEL");
    assert_eq!(r.status(), StatusCode::OK);

    let after = Metrics::scrape(&metrics_url).await;
    let d = |metric: &str, labels: &[(&str, &str)]| {
        after.get(metric, labels) - before.get(metric, labels)
    };
    let commands = "tollgate_bridge_commands_total";
    let c = |name, outcome| [("command", name), ("outcome", outcome)];
    assert_eq!(d(commands, &c("SET", "ok")), 1.0);
    assert_eq!(d(commands, &c("GET", "ok")), 2.0);
    assert_eq!(d(commands, &c("DEL", "ok")), 1.0);
    assert_eq!(d(commands, &c("FLUSHALL", "refused")), 1.0);
    assert_eq!(d(commands, &c("SUBSCRIBE", "refused")), 1.0);
    assert_eq!(
        d(commands, &c("OTHER", "error_reply")),
        2.0,
        "MADEUP… and METRICS"
    );
    for name in after.label_values(commands, "command") {
        assert!(
            !name.contains("MADEUP"),
            "an unknown name got its own series"
        );
    }
    let auth = "tollgate_bridge_auth_failures_total";
    assert_eq!(d(auth, &[("reason", "missing")]), 1.0);
    assert_eq!(d(auth, &[("reason", "invalid")]), 1.0);

    let requests = "tollgate_bridge_http_requests_total";
    let r = |method, route, status| [("method", method), ("route", route), ("status", status)];
    assert_eq!(d(requests, &r("POST", "/", "200")), 2.0, "SET and DEL");
    assert_eq!(d(requests, &r("POST", "/", "400")), 2.0);
    assert_eq!(d(requests, &r("POST", "/", "401")), 2.0);
    assert_eq!(d(requests, &r("GET", "/{*command}", "200")), 1.0);
    assert_eq!(d(requests, &r("GET", "/{*command}", "400")), 1.0);
    assert_eq!(d(requests, &r("POST", "/pipeline", "200")), 1.0);
    for route in after.label_values(requests, "route") {
        assert!(
            !route.contains("bridgetest"),
            "route label {route:?} holds a key"
        );
    }

    // Five single commands (SET, GET, MADEUP…, METRICS, DEL) and one pipeline reached Redis.
    let redis = "tollgate_bridge_redis_duration_seconds_count";
    assert_eq!(d(redis, &[("op", "command"), ("outcome", "ok")]), 5.0);
    assert_eq!(d(redis, &[("op", "pipeline"), ("outcome", "ok")]), 1.0);
}
