//! An API upstream behind the edge, as an app developer would write one: an axum service whose
//! protected routes take `tollgate_upstream::EdgeUser`, so it trusts the edge's signed assertion
//! and never calls Redis. It answers with what the assertion told it.

use anyhow::Context as _;
use axum::routing::any;
use axum::Router;
use serde_json::json;
use tollgate_testkit::upstream::{whoami, EdgeState, Served};
use tollgate_upstream::EdgeVerifier;

/// The upstream's name in the edge's route table, and so the `aud` of its assertions.
pub const ECHO: &str = "echo";

/// A running echo upstream; stopped on drop.
#[derive(Debug)]
pub struct EchoUpstream {
    pub base: String,
    _served: Served,
}

impl EchoUpstream {
    /// Serves `/api/echo/*` (protected: needs the edge's assertion) with keys from `edge_jwks`.
    pub async fn start(edge_jwks: &str) -> anyhow::Result<Self> {
        let edge =
            EdgeVerifier::from_jwks_json("tollgate-edge", ECHO, edge_jwks).context("edge JWKS")?;
        let app = Router::new()
            .route("/api/echo", any(whoami))
            .route("/api/echo/{*rest}", any(whoami))
            .with_state(EdgeState { edge });
        let served = Served::start(app).await?;
        Ok(Self {
            base: served.url(),
            _served: served,
        })
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
