//! Building and running the service: `router()` for tests and `Application` for `serve`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;
use tollgate_shared::jwt::Validation;
use tollgate_shared::{ErrorCode, KeySchema};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::config::{EdgeKeys, EdgeTrust, Settings};
use crate::db::Db;
use crate::error::ApiError;
use crate::keyring::Keyring;
use crate::memo::Memo;
use crate::password::PasswordHasher;
use crate::redis::{RedisStore, StatsCache};
use crate::state::{App, AppState};

/// Largest request body accepted; every JSON body we take is far smaller.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Bounds of the in-process caches (~300 B per verified token, ~150 B per profile).
const VERIFIED_TOKENS_CAPACITY: usize = 65_536;
const PROFILES_CAPACITY: usize = 65_536;

/// Every documented route, each with its OpenAPI description (see [`crate::openapi`]).
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .merge(crate::routes::users::router())
        .merge(crate::routes::sessions::router())
        .merge(crate::routes::meta::router())
        .merge(crate::routes::oauth::router())
        .merge(crate::openapi::router())
}

/// All routes with their middleware.
pub fn router(state: AppState) -> Router {
    let (routes, _) = api_router().split_for_parts();
    routes
        .merge(crate::pages::router())
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async {
            ApiError::Client(ErrorCode::MethodNotAllowed, "method not allowed".into())
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(refuse_oversized_bodies))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(
            // The span has the method and path only: never the query, headers or body, where
            // tokens live.
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        )
        // Outermost, so it sees the final status (413s and caught panics included).
        .layer(middleware::from_fn(crate::monitoring::track_http))
        .with_state(state)
}

/// Refuses a declared body over [`MAX_BODY_BYTES`] on every route with the documented 413,
/// before auth or any handler runs. `DefaultBodyLimit` only applies where a handler reads the
/// body; routes that take none would otherwise accept (and ignore) a body of any size.
async fn refuse_oversized_bodies(req: axum::extract::Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return ApiError::Client(
            ErrorCode::PayloadTooLarge,
            "request body is too large".into(),
        )
        .into_response();
    }
    next.run(req).await
}

/// Connects every dependency and builds the state (without binding a socket).
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    let db = Db::connect(&settings.database_url).await?;
    db.migrate().await?;
    let redis = connect_redis(&settings).await?;
    report_eviction(&redis).await;
    let keys = Keyring::open(&settings, true)?;
    let validation = Validation::new(
        settings.issuer.clone(),
        settings.audience.clone(),
        i64::try_from(settings.access_ttl).unwrap_or(i64::MAX),
    );
    let edge = settings.edge.as_ref().map(edge_verifier).transpose()?;
    Ok(AppState(Arc::new(App {
        db,
        redis,
        keys,
        validation,
        edge,
        hasher: PasswordHasher::new()?,
        verified: Memo::new(VERIFIED_TOKENS_CAPACITY),
        profiles: Memo::new(PROFILES_CAPACITY),
        redis_stats: StatsCache::default(),
        settings,
    })))
}

fn edge_verifier(trust: &EdgeTrust) -> anyhow::Result<tollgate_upstream::EdgeVerifier> {
    use tollgate_upstream::{EdgeVerifier, RemoteOptions};
    Ok(match &trust.keys {
        EdgeKeys::Jwks(jwks) => EdgeVerifier::from_jwks_json(&trust.issuer, &trust.audience, jwks)
            .context("EDGE_JWKS")?,
        EdgeKeys::Url(url) => EdgeVerifier::remote(
            &trust.issuer,
            &trust.audience,
            url,
            RemoteOptions::default(),
        ),
    })
}

/// Redis may still be starting next to us: retry for a few seconds before giving up.
async fn connect_redis(settings: &Settings) -> anyhow::Result<RedisStore> {
    let keys = KeySchema::new(settings.redis_prefix.clone());
    let mut attempt = 0;
    loop {
        match RedisStore::connect(
            &settings.redis_url.0,
            keys.clone(),
            settings.redis_timeout,
            settings.refresh_ttl,
        )
        .await
        {
            Ok(redis) => return Ok(redis.with_replication(settings.redis_wait)),
            Err(e) if attempt < 10 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "Redis not reachable yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("Failed to connect to Redis at {:?}", settings.redis_url)
                })
            }
        }
    }
}

/// Says at start-up how Redis behaves when full. Tollgate stays correct under any policy (an
/// evicted key refuses a token, never revives one), but an evicting policy logs users out early.
async fn report_eviction(redis: &RedisStore) {
    match redis.eviction().await {
        Ok(e) if e.evicting() => tracing::warn!(
            policy = %e.policy,
            maxmemory = e.maxmemory,
            evicted_keys = e.evicted_keys,
            "Redis may evict keys: an evicted key logs its user out early (never lets a revoked \
             token back in); maxmemory-policy noeviction is recommended"
        ),
        Ok(e) => tracing::info!(
            policy = %e.policy,
            maxmemory = e.maxmemory,
            evicted_keys = e.evicted_keys,
            "Redis eviction policy"
        ),
        Err(e) => tracing::warn!(error = %e, "could not read Redis's eviction policy from INFO"),
    }
}

/// A bound, ready-to-run origin.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// The `METRICS_ADDR` listener and the recorder it renders, when metrics are on.
    metrics: Option<(TcpListener, metrics_exporter_prometheus::PrometheusHandle)>,
}

impl Application {
    /// Connects, migrates and binds `settings.bind` (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let bind = settings.bind;
        let metrics = match settings.metrics_addr {
            Some(addr) => Some((
                crate::monitoring::bind(addr).await?,
                crate::monitoring::install()?,
            )),
            None => None,
        };
        let state = build_state(settings).await?;
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("Failed to bind {bind}"))?;
        Ok(Self {
            listener,
            state,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The metrics listener's port, when `METRICS_ADDR` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        let (listener, _) = self.metrics.as_ref()?;
        listener.local_addr().ok().map(|a| a.port())
    }

    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, running the periodic cleanup alongside.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let cleanup = tokio::spawn(crate::cleanup::periodic(self.state.clone()));
        let sampler = tokio::spawn(crate::pages::admin::sample_periodically(self.state.clone()));
        // Stopped with the API server, like the cleanup: a scrape in flight may be cut short.
        let metrics = self.metrics.map(|(listener, handle)| {
            let served = crate::monitoring::serve(
                listener,
                handle,
                self.state.clone(),
                std::future::pending(),
            );
            tokio::spawn(async move {
                if let Err(e) = served.await {
                    tracing::error!(error = %format!("{e:#}"), "metrics listener stopped");
                }
            })
        });
        let app = router(self.state);
        let result = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("server error");
        cleanup.abort();
        sampler.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        result
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}
