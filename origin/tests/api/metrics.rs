//! `/metrics` on `METRICS_ADDR`: the running binary (its own process, so its counters are its
//! own whatever else this test binary runs) counts each event exactly once, labels requests by
//! route template, and serves nothing on the public port.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::exposition::Metrics;
use crate::helpers::{redis_url, Tokens, PASSWORD};

/// The origin binary with metrics on; killed on drop.
struct Origin {
    child: Child,
    base: String,
    metrics: String,
    dir: std::path::PathBuf,
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

async fn start() -> Origin {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = std::env::temp_dir().join(format!("tollgate-metrics-{id}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (port, metrics_port) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_tollgate-origin"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display()),
        )
        .env("REDIS_URL", redis_url())
        .env("REDIS_KEY_PREFIX", format!("metrics-{id}:"))
        .env("KEYS_FILE", dir.join("keys.json"))
        .env("CLEANUP_INTERVAL_SECS", "0")
        // No grace window: presenting a rotated-away refresh token is a reuse at once.
        .env("REFRESH_GRACE_SECS", "0")
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("origin binary starts");
    let origin = Origin {
        child,
        base: format!("http://127.0.0.1:{port}"),
        metrics: format!("http://127.0.0.1:{metrics_port}/metrics"),
        dir,
    };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let ready = client.get(format!("{}/ready", origin.base)).send().await;
        let scraped = client.get(&origin.metrics).send().await;
        if ready.is_ok_and(|r| r.status() == StatusCode::OK)
            && scraped.is_ok_and(|r| r.status() == StatusCode::OK)
        {
            return origin;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("origin binary did not become ready");
}

/// Whether any series of `metric` was scraped.
impl Metrics {
    fn has(&self, metric: &str) -> bool {
        self.0.iter().any(|s| s.name == metric)
    }
}

/// What changed between two scrapes, series by series.
struct Delta<'a>(&'a Metrics, &'a Metrics);

impl Delta<'_> {
    fn of(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.1.get(metric, labels) - self.0.get(metric, labels)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_is_counted_once_under_its_route_template_and_only_on_the_metrics_port() {
    let origin = start().await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", origin.base);
    let post = |path: &str, body: serde_json::Value| client.post(url(path)).json(&body).send();
    let before = Metrics::scrape(&origin.metrics).await;

    let email = format!("metrics-{}@example.com", uuid::Uuid::new_v4().simple());
    let r = post(
        "/api/users/register",
        json!({"email": email, "password": PASSWORD}),
    )
    .await
    .expect("register");
    assert_eq!(r.status(), StatusCode::CREATED);
    let login = |password: &'static str| {
        post(
            "/api/users/login",
            json!({"email": email, "password": password}),
        )
    };
    assert_eq!(
        login("not the password").await.expect("login").status(),
        StatusCode::UNAUTHORIZED
    );
    let first = Tokens::from_body(
        &login(PASSWORD)
            .await
            .expect("login")
            .json()
            .await
            .expect("json"),
    );
    // Refresh: rotated once, then the rotated-away token again is a reuse.
    let r = post(
        "/api/users/refresh",
        json!({"refresh_token": first.refresh}),
    )
    .await
    .expect("refresh");
    assert_eq!(r.status(), StatusCode::OK);
    let r = post(
        "/api/users/refresh",
        json!({"refresh_token": first.refresh}),
    )
    .await
    .expect("refresh");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let second = Tokens::from_body(
        &login(PASSWORD)
            .await
            .expect("login")
            .json()
            .await
            .expect("json"),
    );
    // An id in the path: counted under the template, never under the id.
    let stranger = uuid::Uuid::new_v4().to_string();
    let r = client
        .post(url(&format!("/api/users/logout-device/{stranger}")))
        .bearer_auth(&second.access)
        .send()
        .await
        .expect("logout-device");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = client
        .post(url("/api/users/logout"))
        .bearer_auth(&second.access)
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), StatusCode::OK);
    let r = client
        .get(url("/api/users/me"))
        .bearer_auth("not-a-jwt")
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = client
        .get(url(&format!("/no/such/{stranger}")))
        .send()
        .await
        .expect("404");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The public port has no /metrics: the documented 404, no figures.
    let r = client.get(url("/metrics")).send().await.expect("public");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body = r.text().await.expect("body");
    assert!(
        body.contains("\"not_found\"") && !body.contains("tollgate_"),
        "{body}"
    );

    let after = Metrics::scrape(&origin.metrics).await;
    let d = Delta(&before, &after);
    let logins = "tollgate_logins_total";
    assert_eq!(d.of(logins, &[("outcome", "success")]), 2.0);
    assert_eq!(d.of(logins, &[("outcome", "failure")]), 1.0);
    assert_eq!(d.of("tollgate_registrations_total", &[]), 1.0);
    let refreshes = "tollgate_refreshes_total";
    assert_eq!(d.of(refreshes, &[("outcome", "rotated")]), 1.0);
    assert_eq!(d.of(refreshes, &[("outcome", "reused")]), 1.0);
    assert_eq!(d.of(refreshes, &[("outcome", "invalid")]), 0.0);
    assert_eq!(d.of(refreshes, &[("outcome", "grace_replay")]), 0.0);
    let revocations = "tollgate_revocations_total";
    assert_eq!(d.of(revocations, &[("kind", "refresh_reuse")]), 1.0);
    assert_eq!(d.of(revocations, &[("kind", "logout")]), 1.0);
    assert_eq!(d.of(revocations, &[("kind", "logout_all")]), 0.0);
    assert_eq!(d.of(revocations, &[("kind", "logout_device")]), 0.0);
    let rejections = "tollgate_bearer_rejections_total";
    assert_eq!(d.of(rejections, &[("code", "token_malformed")]), 1.0);
    assert_eq!(
        after.label_values(rejections, "code"),
        ["token_malformed"],
        "no other rejection happened"
    );

    let http = "tollgate_http_requests_total";
    let req = |method, route, status| [("method", method), ("route", route), ("status", status)];
    assert_eq!(d.of(http, &req("POST", "/api/users/login", "200")), 2.0);
    assert_eq!(d.of(http, &req("POST", "/api/users/login", "401")), 1.0);
    assert_eq!(d.of(http, &req("POST", "/api/users/register", "201")), 1.0);
    assert_eq!(d.of(http, &req("POST", "/api/users/refresh", "200")), 1.0);
    assert_eq!(d.of(http, &req("POST", "/api/users/refresh", "401")), 1.0);
    assert_eq!(d.of(http, &req("POST", "/api/users/logout", "200")), 1.0);
    assert_eq!(d.of(http, &req("GET", "/api/users/me", "401")), 1.0);
    assert_eq!(
        d.of(
            http,
            &req("POST", "/api/users/logout-device/{token_id}", "404")
        ),
        1.0,
        "{:?}",
        after.label_values(http, "route")
    );
    // The unmatched path and the public /metrics: one series, whatever the path.
    assert_eq!(d.of(http, &req("GET", "unmatched", "404")), 2.0);
    for route in after.label_values(http, "route") {
        assert!(
            route == "unmatched" || route.starts_with('/') && !route.contains(&stranger),
            "route label {route:?} is not a template"
        );
    }
    let duration = "tollgate_http_request_duration_seconds_count";
    assert_eq!(
        d.of(
            duration,
            &[("method", "POST"), ("route", "/api/users/login")]
        ),
        3.0
    );

    // Every Redis and SQL call is timed: the protected requests' MGET and the logins' lookups.
    let redis = "tollgate_redis_call_duration_seconds_count";
    assert!(d.of(redis, &[("call", "HMGET"), ("outcome", "ok")]) >= 2.0);
    let db = "tollgate_db_call_duration_seconds_count";
    assert_eq!(d.of(db, &[("query", "user_by_email")]), 3.0);
    assert_eq!(d.of(db, &[("query", "create_user")]), 1.0);
    // Nothing hashes now, and the eviction figures were read from Redis's INFO.
    for pool in ["login", "register"] {
        assert_eq!(after.get("tollgate_argon2_waiting", &[("pool", pool)]), 0.0);
        assert_eq!(
            after.get("tollgate_argon2_in_flight", &[("pool", pool)]),
            0.0
        );
    }
    assert!(after.has("tollgate_redis_maxmemory_bytes"));
    assert!(after.has("tollgate_redis_evicted_keys"));
    assert_eq!(
        after
            .label_values("tollgate_redis_evicting", "policy")
            .len(),
        1
    );
}
