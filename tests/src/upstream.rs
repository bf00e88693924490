//! An API upstream behind the edge, as an app developer would write one: an axum service whose
//! protected routes take `tollgate_upstream::EdgeUser`, so it trusts the edge's signed assertion
//! and never calls Redis. It answers with what the assertion told it.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::extract::FromRef;
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tollgate_upstream::{EdgeUser, EdgeVerifier};

/// The upstream's name in the edge's route table, and so the `aud` of its assertions.
pub const ECHO: &str = "echo";

/// A running echo upstream; stopped on drop.
#[derive(Debug)]
pub struct EchoUpstream {
    pub base: String,
    shutdown: Option<oneshot::Sender<()>>,
}

#[derive(Clone)]
struct EchoState {
    edge: EdgeVerifier,
}

impl FromRef<EchoState> for EdgeVerifier {
    fn from_ref(s: &EchoState) -> Self {
        s.edge.clone()
    }
}

async fn whoami(EdgeUser(who): EdgeUser) -> Json<Value> {
    Json(json!({
        "user_id": who.user_id,
        "token_id": who.token_id,
        "jti": who.jti,
        "token_version": who.token_version,
        "client_ip": who.client_ip,
    }))
}

impl EchoUpstream {
    /// Serves `/api/echo/*` (protected: needs the edge's assertion) with keys from `edge_jwks`.
    pub async fn start(edge_jwks: &str) -> anyhow::Result<Self> {
        let edge =
            EdgeVerifier::from_jwks_json("tollgate-edge", ECHO, edge_jwks).context("edge JWKS")?;
        let app = Router::new()
            .route("/api/echo", any(whoami))
            .route("/api/echo/{*rest}", any(whoami))
            .with_state(EchoState { edge });
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            base,
            shutdown: Some(tx),
        })
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The edge's assertion key pair for one test stack.
#[derive(Debug, Clone)]
pub struct EdgeKeys {
    /// `EDGE_SIGNING_KEYS` for the edge (private).
    pub private_jwks: String,
    /// The public JWKS upstreams verify with.
    pub public_jwks: String,
}

impl EdgeKeys {
    pub fn generate(kid: &str) -> Self {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let d = URL_SAFE_NO_PAD.encode(key.to_bytes());
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        Self {
            private_jwks: json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": kid, "d": d, "x": x}]})
                .to_string(),
            public_jwks: json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x, "alg": "EdDSA", "use": "sig"}]})
                .to_string(),
        }
    }
}
