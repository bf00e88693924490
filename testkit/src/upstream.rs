//! An API behind the edge as the test trees run one, and a way to serve any router.
//!
//! Its protected routes take `tollgate_upstream::EdgeUser` (state: [`EdgeState`]) and answer
//! with who the edge's assertion named ([`whoami`]), as an app developer's upstream would; a
//! test reads the answer to see what the edge asserted. [`Served`] runs a router on a fresh
//! loopback port until dropped (the e2e harness's echo upstream and recording tap).

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::extract::FromRef;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tollgate_upstream::{EdgeUser, EdgeVerifier};

/// Router state of routes taking [`EdgeUser`]: the verifier of the edge's assertions.
#[derive(Debug, Clone)]
pub struct EdgeState {
    pub edge: EdgeVerifier,
}

impl FromRef<EdgeState> for EdgeVerifier {
    fn from_ref(state: &EdgeState) -> Self {
        state.edge.clone()
    }
}

/// A protected route's answer: the verified assertion's user, session, token and client IP.
pub async fn whoami(EdgeUser(who): EdgeUser) -> Json<Value> {
    Json(json!({
        "user_id": who.user_id,
        "token_id": who.token_id,
        "jti": who.jti,
        "token_version": who.token_version,
        "client_ip": who.client_ip,
    }))
}

/// A router served on a fresh loopback port; shut down (gracefully) when dropped.
#[derive(Debug)]
pub struct Served {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Served {
    pub async fn start(app: Router) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("Failed to bind a loopback port")?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
