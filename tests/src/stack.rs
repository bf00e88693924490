//! One test's services — origin, bridge, tap, edge — and the client calls tests make through
//! the edge.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tollgate_rest_bridge::Stats;
use tollgate_shared::assertion::{self, AssertionClaims};
use tollgate_shared::error::{ErrorBody, WWW_AUTHENTICATE_INVALID_TOKEN};
use tollgate_shared::jwt::KeySet;
use tollgate_shared::{KeySchema, Rejection};

use tollgate_testkit::ApiClient;

use crate::{BridgeHandle, EchoUpstream, Edge, EdgeConfig, EdgeKeys, Origin, Tap};

pub use tollgate_testkit::{Tokens, PASSWORD};

/// How to assemble a [`Stack`].
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Put the recording [`Tap`]s between the edge and its upstreams (default). Off for latency
    /// figures.
    pub tap: bool,
    /// Start the origin with `REQUIRE_EDGE=true`.
    pub require_edge: bool,
    /// More origin settings.
    pub origin_env: Vec<(&'static str, String)>,
    /// The edge learns the origin's keys from its `JWKS_URL` (cached 2 s, refetch at most every
    /// second) instead of a static `TOLLGATE_JWKS`.
    pub jwks_url: bool,
    /// How many origin instances (default 1). More than one run on one PostgreSQL database of
    /// their own and the stack's Redis, with one key file, behind the origin tap as a
    /// round-robin load balancer (so `tap` must be on).
    pub origins: usize,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            tap: true,
            require_edge: false,
            origin_env: Vec::new(),
            jwks_url: false,
            origins: 1,
        }
    }
}

/// Origin, bridge, optional tap and edge for one test; everything stops on drop. It derefs to
/// its [`ApiClient`] on the edge, so `stack.login(…)` and `stack.client` go through the edge.
#[derive(Debug)]
pub struct Stack {
    pub api: ApiClient,
    pub edge: Edge,
    pub tap: Option<Tap>,
    /// The echo upstream and the tap in front of it (when `tap` is on).
    pub echo: EchoUpstream,
    pub echo_tap: Option<Tap>,
    pub edge_keys: EdgeKeys,
    pub bridge: BridgeHandle,
    pub origin: Origin,
    /// The other instances when [`StackOptions::origins`] is above 1: `origin` and these share
    /// the database, Redis and keys.
    pub more_origins: Vec<Origin>,
    pub redis: redis::Client,
    pub keys: KeySchema,
    _database: Option<crate::TestDatabase>,
    _dir: TempDir,
}

impl std::ops::Deref for Stack {
    type Target = ApiClient;
    fn deref(&self) -> &ApiClient {
        &self.api
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
        let edge_keys = EdgeKeys::generate("edge-test-1");
        let mut origin_env = vec![
            ("EDGE_JWKS", edge_keys.public_jwks.clone()),
            ("REQUIRE_EDGE", options.require_edge.to_string()),
        ];
        let database = if options.origins > 1 {
            assert!(options.tap, "several origins are balanced by the tap");
            let db = crate::TestDatabase::create()
                .await
                .expect("a PostgreSQL database for the origins");
            origin_env.push(("DATABASE_URL", db.url.clone()));
            Some(db)
        } else {
            None
        };
        origin_env.extend(options.origin_env.iter().cloned());
        let (origin, bridge, echo) = tokio::join!(
            Origin::start(dir.path(), &prefix, &redis_url, &origin_env),
            BridgeHandle::start(&redis_url),
            EchoUpstream::start(&edge_keys.public_jwks),
        );
        let origin = origin.expect("origin starts");
        // One after another: the first has migrated the database and written the key file.
        let mut more_origins = Vec::new();
        for _ in 1..options.origins {
            more_origins.push(
                Origin::start(dir.path(), &prefix, &redis_url, &origin_env)
                    .await
                    .expect("another origin starts"),
            );
        }
        let bridge = bridge.expect("bridge starts");
        let echo = echo.expect("echo upstream starts");
        let (tap, echo_tap) = if options.tap {
            let bases: Vec<String> = std::iter::once(&origin)
                .chain(&more_origins)
                .map(|o| o.base.clone())
                .collect();
            let (a, b) = tokio::join!(Tap::start_balanced(&bases), Tap::start(&echo.base));
            (Some(a.expect("tap starts")), Some(b.expect("tap starts")))
        } else {
            (None, None)
        };
        let origin_url = tap.as_ref().map_or_else(|| origin.base.clone(), Tap::url);
        let echo_url = echo_tap
            .as_ref()
            .map_or_else(|| echo.base.clone(), Tap::url);
        let mut config = edge_config(&origin, &bridge, &edge_keys, &origin_url, &echo_url);
        if options.jwks_url {
            config
                .without_secret("TOLLGATE_JWKS")
                .var("JWKS_URL", origin.url("/.well-known/jwks.json"))
                .var("JWKS_CACHE_SECS", "2")
                .var("JWKS_MIN_REFETCH_SECS", "1");
        }
        tweak(&mut config);
        let edge = Edge::start(&config)
            .await
            .unwrap_or_else(|e| panic!("edge (wrangler dev) did not start: {e:#}"));
        let redis = tollgate_testkit::node_client(&redis_url);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            api: ApiClient::new(edge.base.clone(), client),
            edge,
            tap,
            echo,
            echo_tap,
            edge_keys,
            bridge,
            keys: KeySchema::new(prefix),
            origin,
            more_origins,
            redis,
            _database: database,
            _dir: dir,
        }
    }

    /// The edge configuration this stack runs with, forwarding to `origin_url` — to start a
    /// second edge with a different origin or setting.
    pub fn edge_config(&self, origin_url: &str) -> EdgeConfig {
        let echo_url = self
            .echo_tap
            .as_ref()
            .map_or_else(|| self.echo.base.clone(), Tap::url);
        edge_config(
            &self.origin,
            &self.bridge,
            &self.edge_keys,
            origin_url,
            &echo_url,
        )
    }

    /// The tap in front of the origin.
    pub fn tap(&self) -> &Tap {
        self.tap.as_ref().expect("this stack has a tap")
    }

    /// The one assertion `seen` carried, verified as the upstream `audience` would (key, issuer,
    /// audience, method and path binding, lifetime); panics if it is missing, doubled or invalid.
    pub fn assertion(&self, seen: &crate::Seen, audience: &str) -> AssertionClaims {
        self.try_assertion(seen, audience)
            .unwrap_or_else(|e| panic!("assertion refused: {e}: {seen:?}"))
    }

    /// [`Self::assertion`]'s verdict, for a test that expects a refusal.
    pub fn try_assertion(
        &self,
        seen: &crate::Seen,
        audience: &str,
    ) -> Result<AssertionClaims, assertion::AssertionError> {
        let values = seen.values(assertion::HEADER);
        assert_eq!(values.len(), 1, "want exactly one assertion: {seen:?}");
        let mut keys = KeySet::new();
        keys.extend_from_jwks(&serde_json::from_str(&self.edge_keys.public_jwks).expect("jwks"))
            .expect("keys");
        let path = seen.path.split('?').next().unwrap_or_default();
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        )
        .unwrap_or(0);
        let expect = assertion::Expectation {
            issuer: "tollgate-edge",
            audience,
            method: &seen.method,
            path,
        };
        assertion::verify_claims(values[0], &keys, &expect, now)
    }

    /// The tap in front of the echo upstream.
    pub fn echo_tap(&self) -> &Tap {
        self.echo_tap.as_ref().expect("this stack has a tap")
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

/// The route table the tests run: the origin's own routes, and `/api/echo` on the echo upstream.
pub fn routes(origin_url: &str, echo_url: &str) -> Value {
    json!({
        "upstreams": {
            "origin": { "url": origin_url },
            crate::ECHO: { "url": echo_url }
        },
        "routes": [
            { "prefix": "/api/users", "upstream": "origin" },
            { "path": "/api/users/register", "methods": ["POST"], "upstream": "origin", "access": "public_signed" },
            { "path": "/api/users/login", "methods": ["POST"], "upstream": "origin", "access": "public_signed" },
            { "path": "/api/users/refresh", "methods": ["POST"], "upstream": "origin", "access": "public_signed" },
            { "path": "/health", "methods": ["GET"], "upstream": "origin", "access": "public" },
            { "path": "/ready", "methods": ["GET"], "upstream": "origin", "access": "public" },
            { "path": "/.well-known/jwks.json", "methods": ["GET"], "upstream": "origin", "access": "public" },
            { "prefix": "/api/echo", "upstream": crate::ECHO }
        ]
    })
}

fn edge_config(
    origin: &Origin,
    bridge: &BridgeHandle,
    edge_keys: &EdgeKeys,
    origin_url: &str,
    echo_url: &str,
) -> EdgeConfig {
    let mut config = EdgeConfig::default();
    config
        .var("TOLLGATE_ROUTES", routes(origin_url, echo_url).to_string())
        .var("ALLOW_INSECURE_HTTP", "true")
        .var("UPSTASH_REDIS_REST_URL", bridge.url())
        .var("REDIS_KEY_PREFIX", origin.prefix.clone())
        .secret("UPSTASH_REDIS_REST_TOKEN", bridge.edge_token())
        .secret("TOLLGATE_JWKS", origin.jwks_json())
        .secret("EDGE_SIGNING_KEYS", edge_keys.private_jwks.clone());
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
