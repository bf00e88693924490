//! An example API behind the Tollgate edge: each user's notes, in the API's own SQLite.
//!
//! It never sees an access token and never calls Redis. The edge has already refused revoked
//! tokens; what reaches this API carries the edge's signed assertion, and the
//! [`tollgate_upstream::EdgeUser`] extractor turns it into the caller's user id — or answers 401
//! itself. Every note belongs to the user who created it; another user's note is a 404, as if it
//! did not exist.
//!
//! Routes (all but `/health` need an assertion for audience `EDGE_AUDIENCE`, default `notes`):
//! `GET /api/notes`, `POST /api/notes`, `GET|PUT|DELETE /api/notes/{id}`, `GET /health`.
//!
//! # Layout
//! - [`config`]: [`Settings`] from the environment, with errors naming the variable.
//! - [`db`]: the notes table, every query scoped to an owner.
//! - [`routes`]: the handlers; [`app`] assembles the router (what tests call).
//! - [`error`]: the one error type and its JSON body.

pub mod config;
pub mod db;
pub mod error;
pub mod routes;

use anyhow::Context as _;
use axum::extract::FromRef;
use tollgate_upstream::{EdgeVerifier, RemoteOptions};

pub use config::Settings;
pub use routes::app;

/// What every handler can reach. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub notes: db::Notes,
    pub edge: EdgeVerifier,
}

impl FromRef<AppState> for EdgeVerifier {
    fn from_ref(state: &AppState) -> Self {
        state.edge.clone()
    }
}

impl AppState {
    /// Opens (and migrates) the database and sets up the edge's keys.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let notes = db::Notes::connect(&settings.database_url).await?;
        let edge = match &settings.edge_keys {
            config::EdgeKeys::Jwks(jwks) => {
                EdgeVerifier::from_jwks_json(&settings.edge_issuer, &settings.edge_audience, jwks)
                    .context("EDGE_JWKS")?
            }
            config::EdgeKeys::Url(url) => EdgeVerifier::remote(
                &settings.edge_issuer,
                &settings.edge_audience,
                url,
                RemoteOptions::default(),
            ),
        };
        Ok(Self { notes, edge })
    }
}

/// The binary: settings, telemetry, state, serve until Ctrl-C.
pub async fn run() -> anyhow::Result<()> {
    let _ = dotenvy::dotenv();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let settings = Settings::from_env()?;
    let state = AppState::build(&settings).await?;
    let listener = tokio::net::TcpListener::bind(&settings.bind_addr)
        .await
        .with_context(|| format!("Failed to bind BIND_ADDR {}", settings.bind_addr))?;
    tracing::info!(addr = %settings.bind_addr, audience = %settings.edge_audience, "notes API listening");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("Failed to serve")
}
