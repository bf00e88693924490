//! The system under test: the real origin, in-process, with the two limit routes beside it.
//!
//! The origin is built exactly as `tollgate-origin serve` builds it (`build_state` + `router`),
//! served by `axum::serve` on a free loopback port. Into the same router, on the same port and
//! runtime, go the limits a protected route is measured against:
//!
//! - `GET /bench/noop`: no auth, a tiny JSON body — the HTTP stack alone.
//! - `GET /bench/redis-get`: one `HGET tg:{userId} j:{jti}` through the origin's own
//!   [`RedisStore`](tollgate_origin::redis::RedisStore) (the same multiplexed `ConnectionManager`, the same
//!   per-call deadline) — what any Redis-backed check must pay at least.
//!
//! Both carry the same tracing and panic layers as the origin's routes, so the comparison is of
//! the handlers, not of the middleware.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tollgate_origin::config::Settings;
use tollgate_origin::db::{CreateUser, NewUser};
use tollgate_origin::state::AppState;
use tollgate_origin::tokens::{self, Device};
use tollgate_testkit::ApiClient;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::PASSWORD;

/// How to configure the origin under test.
#[derive(Debug, Clone)]
pub struct Options {
    pub redis_url: String,
    /// `None`: a fresh SQLite file in the temp directory.
    pub database_url: Option<String>,
}

/// A running origin with its limit routes; stopped and its files removed on drop.
#[derive(Debug)]
pub struct BenchOrigin {
    pub state: AppState,
    pub prefix: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    pub database_url: String,
    api: ApiClient,
    redis_get_jti: Arc<OnceLock<(String, String)>>,
    password_hash: tokio::sync::OnceCell<String>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    files: Vec<PathBuf>,
}

/// A device session created for the benchmark.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub access: String,
    pub refresh: String,
    pub jti: String,
    pub token_id: String,
}

impl BenchOrigin {
    pub async fn start(opts: &Options) -> anyhow::Result<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let tmp = std::env::temp_dir();
        let db_path = tmp.join(format!("tollgate-bench-{id}.db"));
        let keys_file = tmp.join(format!("tollgate-bench-keys-{id}.json"));
        let database_url = opts
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", db_path.display()));
        let prefix = format!("bench-{id}:");
        let env: HashMap<&str, String> = HashMap::from([
            ("BIND_ADDR", "127.0.0.1:0".to_owned()),
            ("DATABASE_URL", database_url.clone()),
            ("REDIS_URL", opts.redis_url.clone()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
            ("KEYS_FILE", keys_file.display().to_string()),
            ("CLEANUP_INTERVAL_SECS", "0".into()),
            // No background SCANs of the admin page's sampler in the measurements.
            ("STATS_SAMPLE_SECS", "0".into()),
            // The login benchmark would trip the production limits within a second.
            ("LOGIN_RATE_LIMIT_PER_IP", "1000000000".into()),
            ("LOGIN_RATE_LIMIT_PER_EMAIL", "1000000000".into()),
        ]);
        let settings = Settings::from_lookup(|k| env.get(k).cloned())?;
        let state = tollgate_origin::app::build_state(settings)
            .await
            .context("Failed to build the origin")?;
        let redis_get_jti = Arc::new(OnceLock::new());
        let app = tollgate_origin::app::router(state.clone())
            .merge(bench_routes(state.clone(), redis_get_jti.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "bench origin stopped");
            }
        });
        let database = if database_url.starts_with("sqlite:") {
            "sqlite"
        } else {
            "postgres"
        };
        let mut files = vec![keys_file];
        if opts.database_url.is_none() {
            for suffix in ["", "-wal", "-shm"] {
                files.push(PathBuf::from(format!("{}{suffix}", db_path.display())));
            }
        }
        Ok(Self {
            state,
            prefix,
            database: database.into(),
            database_url,
            api: ApiClient::new(format!("http://127.0.0.1:{port}"), reqwest::Client::new()),
            redis_get_jti,
            password_hash: tokio::sync::OnceCell::new(),
            shutdown: Some(tx),
            files,
        })
    }

    /// Which user's jti record `/bench/redis-get` reads (set once, before the load starts).
    pub fn set_redis_get_jti(&self, user_id: &str, jti: &str) {
        let _ = self.redis_get_jti.set((user_id.to_owned(), jti.to_owned()));
    }

    /// Creates a user straight in the database with a real Argon2id hash of [`PASSWORD`]
    /// (computed once): registration minus the hashing, for building populations quickly.
    pub async fn create_user(&self) -> anyhow::Result<(String, String)> {
        let hash = self
            .password_hash
            .get_or_try_init(|| self.state.hasher.hash(PASSWORD.to_owned()))
            .await?;
        let id = tollgate_origin::domain::new_id();
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
        let created = self
            .state
            .db
            .create_user(&NewUser {
                id: &id,
                email: &email,
                email_normalized: &email,
                name: Some("Bench"),
                password_hash: hash,
                role: "user",
                now: tollgate_origin::domain::now(),
            })
            .await?;
        anyhow::ensure!(matches!(created, CreateUser::Created), "email taken");
        Ok((id, email))
    }

    /// A new device session for `user_id`, written exactly as login writes it after the
    /// password check (`tokens::open_session`): a login without Argon2id, for creating
    /// thousands of sessions in seconds.
    pub async fn add_session(&self, user_id: &str, device: &str) -> anyhow::Result<Session> {
        let user = self
            .state
            .db
            .user_by_id(user_id)
            .await?
            .context("no such user")?;
        let device = Device {
            name: Some(device),
            ip: Some("127.0.0.1"),
            user_agent: Some("tollgate-bench"),
        };
        let opened = tokens::open_session(&self.state, &user, device)
            .await
            .map_err(|e| anyhow::anyhow!("open a session: {e}"))?;
        Ok(Session {
            user_id: user_id.to_owned(),
            access: opened.minted.access_token,
            refresh: opened.refresh.into_exposed(),
            jti: opened.minted.jti,
            token_id: opened.token_id,
        })
    }
}

impl std::ops::Deref for BenchOrigin {
    type Target = ApiClient;

    /// The client calls of the test trees (register, login, refresh, bearer requests).
    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

impl Drop for BenchOrigin {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The limit routes, with the origin's per-request layers (as `tollgate_origin::app::router`
/// applies them), so the comparison is of the handlers.
fn bench_routes(state: AppState, jti: Arc<OnceLock<(String, String)>>) -> Router {
    Router::new()
        .route("/bench/noop", get(noop))
        .route("/bench/redis-get", get(redis_get))
        .with_state(Limits { state, jti })
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
        }))
}

#[derive(Clone)]
struct Limits {
    state: AppState,
    jti: Arc<OnceLock<(String, String)>>,
}

async fn noop() -> Json<Value> {
    Json(json!({"data": {"ok": true}}))
}

async fn redis_get(State(limits): State<Limits>) -> Response {
    let Some((user_id, jti)) = limits.jti.get() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    match limits.state.redis.jti_record(user_id, jti).await {
        Ok(record) => Json(json!({"data": {"found": record.is_some()}})).into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
