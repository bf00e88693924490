//! One test's services — origin, bridge, tap, edge — and the client calls tests make through
//! the edge.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tollgate_rest_bridge::Stats;
use tollgate_shared::error::{ErrorBody, WWW_AUTHENTICATE_INVALID_TOKEN};
use tollgate_shared::{KeySchema, Rejection};

use crate::{BridgeHandle, Edge, EdgeConfig, Origin, Tap};

pub const PASSWORD: &str = "correct horse battery";

/// How to assemble a [`Stack`].
#[derive(Debug, Clone, Copy)]
pub struct StackOptions {
    /// Put the recording [`Tap`] between edge and origin (default). Off for latency figures.
    pub tap: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self { tap: true }
    }
}

/// Origin, bridge, optional tap and edge for one test; everything stops on drop.
#[derive(Debug)]
pub struct Stack {
    pub client: reqwest::Client,
    pub edge: Edge,
    pub tap: Option<Tap>,
    pub bridge: BridgeHandle,
    pub origin: Origin,
    pub redis: redis::Client,
    pub keys: KeySchema,
    _dir: TempDir,
}

/// Tokens from a login or refresh.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub jti: String,
    pub token_id: String,
}

impl Tokens {
    pub fn from_body(body: &Value) -> Self {
        let d = &body["data"];
        let field = |k: &str| {
            d[k].as_str()
                .unwrap_or_else(|| panic!("{k} in {body}"))
                .to_owned()
        };
        Self {
            access: field("access_token"),
            refresh: field("refresh_token"),
            jti: field("jti"),
            token_id: field("token_id"),
        }
    }
}

impl Stack {
    /// The default stack, edge configured to match the origin.
    pub async fn start() -> Self {
        Self::start_with(StackOptions::default(), |_| {}).await
    }

    /// A stack whose edge configuration `tweak` may change before wrangler starts.
    pub async fn start_with(options: StackOptions, tweak: impl FnOnce(&mut EdgeConfig)) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("tollgate-e2e-")
            .tempdir()
            .expect("temp dir");
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("e2e-{id}:");
        let redis_url = crate::redis_url();
        let (origin, bridge) = tokio::join!(
            Origin::start(dir.path(), &prefix, &redis_url),
            BridgeHandle::start(&redis_url),
        );
        let origin = origin.expect("origin starts");
        let bridge = bridge.expect("bridge starts");
        let tap = if options.tap {
            Some(Tap::start(&origin.base).await.expect("tap starts"))
        } else {
            None
        };
        let origin_url = tap.as_ref().map_or_else(|| origin.base.clone(), Tap::url);
        let mut config = edge_config(&origin, &bridge, &origin_url);
        tweak(&mut config);
        let edge = Edge::start(&config)
            .await
            .unwrap_or_else(|e| panic!("edge (wrangler dev) did not start: {e:#}"));
        let redis = redis::Client::open(redis_url.as_str()).expect("redis client");
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            edge,
            tap,
            bridge,
            keys: KeySchema::new(prefix),
            origin,
            redis,
            _dir: dir,
        }
    }

    /// The edge configuration this stack runs with, forwarding to `origin_url` — to start a
    /// second edge with a different origin or setting.
    pub fn edge_config(&self, origin_url: &str) -> EdgeConfig {
        edge_config(&self.origin, &self.bridge, origin_url)
    }

    pub fn tap(&self) -> &Tap {
        self.tap.as_ref().expect("this stack has a tap")
    }

    pub fn url(&self, path: &str) -> String {
        self.edge.url(path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request to the edge")
    }

    pub async fn get_auth(&self, path: &str, access: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(access)
            .send()
            .await
            .expect("request to the edge")
    }

    pub async fn post_auth(&self, path: &str, access: &str) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(access)
            .send()
            .await
            .expect("request to the edge")
    }

    /// Registers a fresh user through the edge; returns the email.
    pub async fn new_user(&self) -> String {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        let r = self
            .post_json(
                "/api/users/register",
                &json!({"email": email, "password": PASSWORD, "name": "E2E"}),
            )
            .await;
        let status = r.status();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "register: {}",
            r.text().await.unwrap_or_default()
        );
        email
    }

    /// Logs in through the edge.
    pub async fn login(&self, email: &str, device: &str) -> Tokens {
        let r = self
            .post_json(
                "/api/users/login",
                &json!({"email": email, "password": PASSWORD, "device_name": device}),
            )
            .await;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "login: {body}");
        Tokens::from_body(&body)
    }

    pub async fn refresh(&self, refresh: &str) -> Response {
        self.post_json("/api/users/refresh", &json!({"refresh_token": refresh}))
            .await
    }

    /// Status and body of `GET /api/users/me` through the edge.
    pub async fn me(&self, access: &str) -> (StatusCode, Value) {
        let r = self.get_auth("/api/users/me", access).await;
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn bridge_stats(&self) -> Stats {
        self.bridge.stats(&self.client).await
    }

    pub async fn redis_conn(&self) -> redis::aio::MultiplexedConnection {
        self.redis
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection")
    }
}

fn edge_config(origin: &Origin, bridge: &BridgeHandle, origin_url: &str) -> EdgeConfig {
    let mut config = EdgeConfig::default();
    config
        .var("ORIGIN_URL", origin_url)
        .var("UPSTASH_REDIS_REST_URL", bridge.url())
        .var("REDIS_KEY_PREFIX", origin.prefix.clone())
        .secret("UPSTASH_REDIS_REST_TOKEN", bridge.token())
        .secret("TOLLGATE_JWKS", origin.jwks_json());
    config
}

/// Asserts the origin's exact bearer rejection: 401, `WWW-Authenticate: Bearer
/// error="invalid_token"`, and the body `tollgate_shared` defines for `rejection`.
pub async fn assert_rejected(response: Response, rejection: Rejection) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(WWW_AUTHENTICATE_INVALID_TOKEN)
    );
    let body: ErrorBody = response.json().await.expect("error body");
    assert_eq!(body, ErrorBody::new(rejection.code(), rejection.message()));
}

/// Asserts 503 `unavailable` with the documented body.
pub async fn assert_unavailable(response: Response) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: ErrorBody = response.json().await.expect("error body");
    assert_eq!(body.error.code, tollgate_shared::ErrorCode::Unavailable);
}
