//! Revocation with a real Redis replica (`redis-server --replicaof`), the link between primary
//! and replica given a one-way delay by a [`DelayProxy`] as if they sat in different regions.
//!
//! With `REDIS_WAIT_REPLICAS` a logout of any kind answers only once the replica holds it; a
//! control with the bound off shows the replica still holding the revoked token at that moment,
//! so the first tests could fail. With the replica frozen (`SIGSTOP`), a logout still answers
//! within the bound, and the shortfall is counted.
//!
//! Through the edge in workerd: a bridge reading the replica stands for an Upstash read region,
//! and a `strict = true` route reads the primary (`UPSTASH_STRICT_URL`) instead.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_shared::keys::field;
use tollgate_shared::{KeySchema, Rejection};
use tollgate_tests::stack::{assert_rejected, PASSWORD};
use tollgate_tests::{
    BridgeHandle, DelayProxy, Origin, RedisServer, Stack, StackOptions, Tokens, ECHO,
};

/// The one-way delay between primary and replica: far longer than a loopback request, so a
/// logout that did not wait answers well before the replica hears of it.
const LINK_DELAY: Duration = Duration::from_millis(150);

struct Setup {
    primary: RedisServer,
    replica: RedisServer,
    _link: DelayProxy,
    replica_conn: redis::aio::MultiplexedConnection,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Self {
        let primary = RedisServer::start();
        let link = DelayProxy::start(primary.port, LINK_DELAY)
            .await
            .expect("delay proxy");
        let replica = RedisServer::start_replica_of(link.port)
            .await
            .expect("replica syncs");
        let replica_conn = redis::Client::open(replica.url())
            .expect("replica client")
            .get_multiplexed_async_connection()
            .await
            .expect("replica connection");
        Self {
            primary,
            replica,
            _link: link,
            replica_conn,
            client: reqwest::Client::new(),
            _dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// An origin on the primary, sharing the database of any other started here.
    async fn origin(&self, extra: &[(&'static str, String)]) -> Origin {
        Origin::start(self._dir.path(), "repl:", &self.primary.url(), extra)
            .await
            .expect("origin starts")
    }

    /// One field of a user's hash, as the replica holds it.
    async fn replica_get(&self, (key, field): &(String, String)) -> Option<String> {
        redis::cmd("HGET")
            .arg(key)
            .arg(field)
            .query_async(&mut self.replica_conn.clone())
            .await
            .expect("HGET on the replica")
    }

    /// Waits until the replica holds `key` (a fresh token reaches it `LINK_DELAY` late): only
    /// then does "the replica has no such key" say anything about a revocation.
    async fn replicated(&self, at: &(String, String)) {
        for _ in 0..200 {
            if self.replica_get(at).await.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{at:?} never reached the replica");
    }

    async fn post(
        &self,
        origin: &Origin,
        path: &str,
        access: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = self.client.post(origin.url(path)).json(&body);
        if let Some(a) = access {
            req = req.bearer_auth(a);
        }
        let r = req.send().await.expect("request to the origin");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn user(&self, origin: &Origin) -> String {
        let email = format!("repl-{}@example.com", uuid::Uuid::new_v4().simple());
        let (status, body) = self
            .post(
                origin,
                "/api/users/register",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        email
    }

    /// Logs in and waits until the replica has the token.
    async fn login(&self, origin: &Origin, email: &str) -> Tokens {
        let (status, body) = self
            .post(
                origin,
                "/api/users/login",
                None,
                json!({"email": email, "password": PASSWORD, "device_name": "repl"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let tokens = Tokens::from_body(&body);
        self.replicated(&jti_at(&keys(origin), &tokens)).await;
        tokens
    }

    async fn user_id(&self, origin: &Origin, access: &str) -> String {
        let r = self
            .client
            .get(origin.url("/api/users/me"))
            .bearer_auth(access)
            .send()
            .await
            .expect("me");
        let body: Value = r.json().await.expect("me body");
        body["data"]["id"].as_str().expect("user id").to_owned()
    }
}

fn keys(origin: &Origin) -> KeySchema {
    KeySchema::new(origin.prefix.clone())
}

fn waiting(timeout_ms: u64) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_WAIT_REPLICAS", "1".into()),
        ("REDIS_WAIT_TIMEOUT_MS", timeout_ms.to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_revocation_answers_only_once_the_replica_holds_it() {
    let s = Setup::start().await;
    let origin = s.origin(&waiting(5000)).await;
    let k = keys(&origin);
    let email = s.user(&origin).await;

    // logout: this device.
    let t = s.login(&origin, &email).await;
    let (status, body) = s
        .post(&origin, "/api/users/logout", Some(&t.access), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.replica_get(&jti_at(&k, &t)).await, None, "logout");

    // logout-device-jti and logout-device: another device, named by its jti or its session.
    for by_jti in [true, false] {
        let actor = s.login(&origin, &email).await;
        let target = s.login(&origin, &email).await;
        let path = if by_jti {
            format!("/api/users/logout-device-jti/{}", target.jti)
        } else {
            format!("/api/users/logout-device/{}", target.token_id)
        };
        let (status, body) = s.post(&origin, &path, Some(&actor.access), json!({})).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(s.replica_get(&jti_at(&k, &target)).await, None, "{path}");
    }

    // Refresh reuse: replaying a rotated-away secret after the grace window revokes the session.
    let reuse = Origin::start(s._dir.path(), "repl:", &s.primary.url(), &{
        let mut env = waiting(5000);
        env.push(("REFRESH_GRACE_SECS", "0".into()));
        env
    })
    .await
    .expect("origin without grace");
    let t = s.login(&reuse, &email).await;
    let (status, body) = s
        .post(
            &reuse,
            "/api/users/refresh",
            None,
            json!({"refresh_token": t.refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rotated = Tokens::from_body(&body);
    s.replicated(&jti_at(&k, &rotated)).await;
    let (status, body) = s
        .post(
            &reuse,
            "/api/users/refresh",
            None,
            json!({"refresh_token": t.refresh}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "refresh_token_reused");
    assert_eq!(s.replica_get(&jti_at(&k, &rotated)).await, None, "reuse");

    // logout-all: every device, and the new version is on the replica too.
    let a = s.login(&origin, &email).await;
    let b = s.login(&origin, &email).await;
    let user_id = s.user_id(&origin, &a.access).await;
    let (status, body) = s
        .post(&origin, "/api/users/logout-all", Some(&a.access), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for t in [&a, &b] {
        assert_eq!(s.replica_get(&jti_at(&k, t)).await, None, "logout-all");
    }
    let version = body["data"]["token_version"].as_u64().expect("version");
    assert_eq!(
        s.replica_get(&version_at(&k, &user_id)).await,
        Some(version.to_string())
    );

    // Account deletion: the token and the version key are gone from the replica.
    let t = s.login(&origin, &email).await;
    s.replicated(&version_at(&k, &user_id)).await;
    let r = s
        .client
        .delete(origin.url("/api/users/me"))
        .bearer_auth(&t.access)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.replica_get(&jti_at(&k, &t)).await, None, "deletion");
    assert_eq!(s.replica_get(&version_at(&k, &user_id)).await, None);
    assert_eq!(origin.state.redis.replication_timeouts(), 0);
    assert_eq!(reuse.state.redis.replication_timeouts(), 0);
}

/// The control: the same logout without the bound answers while the replica still holds the
/// token, for about the link's delay — the window the bound closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_bound_the_replica_still_holds_a_revoked_token_when_logout_answers() {
    let s = Setup::start().await;
    let origin = s.origin(&[]).await;
    let email = s.user(&origin).await;
    let t = s.login(&origin, &email).await;
    let (status, _) = s
        .post(&origin, "/api/users/logout", Some(&t.access), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let jti = jti_at(&keys(&origin), &t);
    assert!(
        s.replica_get(&jti).await.is_some(),
        "the replica already had the logout: the delayed link is not delaying"
    );
    tokio::time::sleep(LINK_DELAY * 4).await;
    assert_eq!(s.replica_get(&jti).await, None, "the replica caught up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_replica_holds_a_logout_back_only_up_to_the_bound_and_is_counted() {
    const BOUND_MS: u64 = 300;
    let s = Setup::start().await;
    let origin = s.origin(&waiting(BOUND_MS)).await;
    let email = s.user(&origin).await;
    let t = s.login(&origin, &email).await;
    s.replica.pause().expect("SIGSTOP the replica");
    let started = Instant::now();
    let (status, body) = s
        .post(&origin, "/api/users/logout", Some(&t.access), json!({}))
        .await;
    let took = started.elapsed();
    s.replica.resume().expect("SIGCONT the replica");
    assert_eq!(
        status,
        StatusCode::OK,
        "success, though unreplicated: {body}"
    );
    assert!(
        took >= Duration::from_millis(BOUND_MS),
        "answered in {took:?}: it did not wait for the replica"
    );
    assert!(
        took < Duration::from_millis(BOUND_MS) + Duration::from_secs(2),
        "answered in {took:?}: past the bound"
    );
    assert_eq!(origin.state.redis.replication_timeouts(), 1);
    // The primary has it: the origin refuses the token.
    let r = s
        .client
        .get(origin.url("/api/users/me"))
        .bearer_auth(&t.access)
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// The edge in workerd with two sources of revocation state: the default one a read region
/// (a bridge reading a replica that lags `REGION_LAG` behind), and the strict one the primary
/// (the stack's own bridge), which the route table's `strict = true` routes read.
struct Regions {
    stack: Stack,
    _region: BridgeHandle,
    _replica: RedisServer,
    _link: DelayProxy,
    _primary: RedisServer,
}

const REGION_LAG: Duration = Duration::from_millis(400);
const STRICT_PATH: &str = "/api/echo/strict/report";
const NEAR_PATH: &str = "/api/echo/notes/1";

impl Regions {
    async fn start(origin_env: Vec<(&'static str, String)>) -> Self {
        let primary = RedisServer::start();
        // The harness reads the Redis URL from the environment; this process is this test's
        // alone (nextest runs each test in its own process).
        std::env::set_var("TEST_REDIS_URL", primary.url());
        let link = DelayProxy::start(primary.port, REGION_LAG)
            .await
            .expect("delay proxy");
        let replica = RedisServer::start_replica_of(link.port)
            .await
            .expect("replica syncs");
        let region = BridgeHandle::start_reading(&primary.url(), Some(&replica.url()))
            .await
            .expect("read-region bridge");
        let (region_url, region_token) = (region.url(), region.edge_token().to_owned());
        let options = StackOptions {
            origin_env,
            ..StackOptions::default()
        };
        let stack = Stack::start_with(options, move |config| {
            let strict_url = config.vars["UPSTASH_REDIS_REST_URL"].clone();
            let strict_token = config.secrets["UPSTASH_REDIS_REST_TOKEN"].clone();
            let mut routes: Value =
                serde_json::from_str(&config.vars["TOLLGATE_ROUTES"]).expect("routes JSON");
            routes["routes"]
                .as_array_mut()
                .expect("routes")
                .push(json!({ "prefix": "/api/echo/strict", "upstream": ECHO, "strict": true }));
            config
                .var("TOLLGATE_ROUTES", routes.to_string())
                .var("UPSTASH_STRICT_URL", strict_url)
                .secret("UPSTASH_STRICT_TOKEN", strict_token)
                .var("UPSTASH_REDIS_REST_URL", region_url)
                .secret("UPSTASH_REDIS_REST_TOKEN", region_token);
        })
        .await;
        Self {
            stack,
            _region: region,
            _replica: replica,
            _link: link,
            _primary: primary,
        }
    }

    async fn status(&self, path: &str, access: &str) -> StatusCode {
        self.stack.get_auth(path, access).await.status()
    }

    /// A fresh login, once the read region has it: until then the near route refuses it (a
    /// missing jti reads as revoked: the lag fails closed for new tokens).
    async fn login(&self) -> Tokens {
        let email = self.stack.new_user().await;
        let t = self.stack.login(&email, "regions").await;
        for _ in 0..300 {
            if self.status(NEAR_PATH, &t.access).await == StatusCode::OK {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the login never reached the read region");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_route_refuses_a_revoked_token_at_once_while_the_read_region_lags() {
    let r = Regions::start(Vec::new()).await;
    let t = r.login().await;
    assert_eq!(r.status(STRICT_PATH, &t.access).await, StatusCode::OK);
    let logout = r.stack.post_auth("/api/users/logout", &t.access).await;
    assert_eq!(logout.status(), StatusCode::OK);
    let answered = Instant::now();
    // The strict route reads the primary: refused on the very next request.
    assert_rejected(
        r.stack.get_auth(STRICT_PATH, &t.access).await,
        Rejection::Revoked,
    )
    .await;
    // The near route reads the replica, which has not heard of the logout yet.
    let mut accepted_after_logout = 0;
    loop {
        match r.status(NEAR_PATH, &t.access).await {
            StatusCode::OK => accepted_after_logout += 1,
            StatusCode::UNAUTHORIZED => break,
            other => panic!("near route answered {other}"),
        }
        assert!(
            answered.elapsed() < Duration::from_secs(10),
            "the read region never caught up"
        );
    }
    assert!(
        accepted_after_logout > 0,
        "the read region refused at once: the lag was not simulated"
    );
    let window = answered.elapsed();
    assert!(window >= REGION_LAG / 2, "window {window:?}");
    assert_rejected(
        r.stack.get_auth(STRICT_PATH, &t.access).await,
        Rejection::Revoked,
    )
    .await;
}

/// With the origin waiting for the replica, the read region is as strict as the primary: the
/// logout answers once the replica holds it, and the near route refuses at once too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_origin_waiting_for_the_replica_the_read_region_refuses_at_once() {
    let r = Regions::start(waiting(5000)).await;
    let t = r.login().await;
    let started = Instant::now();
    let logout = r.stack.post_auth("/api/users/logout", &t.access).await;
    assert_eq!(logout.status(), StatusCode::OK);
    assert!(
        started.elapsed() >= REGION_LAG,
        "the logout answered in {:?}, before the replica could have it",
        started.elapsed()
    );
    for path in [NEAR_PATH, STRICT_PATH] {
        assert_rejected(r.stack.get_auth(path, &t.access).await, Rejection::Revoked).await;
    }
    assert_eq!(r.stack.origin.state.redis.replication_timeouts(), 0);
}

/// Where a token's jti record lives: its user's hash and its field.
fn jti_at(keys: &KeySchema, tokens: &Tokens) -> (String, String) {
    (keys.user(&tokens.user_id()), field::jti(&tokens.jti))
}

/// Where a user's version lives.
fn version_at(keys: &KeySchema, user_id: &str) -> (String, String) {
    (keys.user(user_id), field::VERSION.to_owned())
}
