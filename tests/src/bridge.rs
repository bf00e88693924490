//! The Upstash REST bridge in-process, on a port it keeps across [`BridgeHandle::stop`] and
//! [`BridgeHandle::restart`], so a test can take "Upstash" away from a running edge and give it
//! back.
//!
//! The edge gets a scoped token that runs only `GET` and `MGET` — what its one `/pipeline` per
//! request needs — as the stack and the README give it, so the tests run the edge exactly as
//! deployed; the full token stays with the harness (stats, fixtures).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tollgate_rest_bridge::{Bridge, Config, ScopedToken, Stats, Token};

/// The only commands the edge runs: its validation pipeline's `GET`s (`MGET` for a client that
/// batches them into one command).
pub const EDGE_COMMANDS: [&str; 1] = ["HMGET"];

/// A bridge serving on a fixed address; stopped on drop.
#[derive(Debug)]
pub struct BridgeHandle {
    pub addr: SocketAddr,
    token: String,
    edge_token: String,
    bridge: Bridge,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl BridgeHandle {
    /// Starts a bridge over `redis_url` on a free port, with fresh random full and edge tokens.
    pub async fn start(redis_url: &str) -> anyhow::Result<Self> {
        Self::start_reading(redis_url, None).await
    }

    /// [`Self::start`], sending requests that only read to `read_url` (a replica) when given:
    /// the bridge as an Upstash read region.
    pub async fn start_reading(redis_url: &str, read_url: Option<&str>) -> anyhow::Result<Self> {
        let token = format!("bridge-{}", uuid::Uuid::new_v4().simple());
        let edge_token = format!("bridge-edge-{}", uuid::Uuid::new_v4().simple());
        let mut config = Config::new(redis_url, Token::new(&token));
        config.read_redis_url = read_url.map(str::to_owned);
        config.scoped_tokens = vec![ScopedToken::new(&edge_token, &EDGE_COMMANDS)
            .map_err(|e| anyhow::anyhow!("edge token: {e}"))?];
        let bridge = tollgate_rest_bridge::build(config)
            .await
            .context("Failed to build the bridge")?;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("Failed to bind the bridge")?;
        let addr = listener.local_addr()?;
        let mut handle = Self {
            addr,
            token,
            edge_token,
            bridge,
            running: None,
        };
        handle.serve(listener);
        Ok(handle)
    }

    /// `UPSTASH_REDIS_REST_URL` for the edge.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The full token (stats, fixtures): never given to the edge.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `UPSTASH_REDIS_REST_TOKEN` for the edge: `GET` and `MGET` only.
    pub fn edge_token(&self) -> &str {
        &self.edge_token
    }

    fn serve(&mut self, listener: TcpListener) {
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(tollgate_rest_bridge::serve(
            listener,
            self.bridge.clone(),
            async move {
                let _ = rx.await;
            },
        ));
        self.running = Some(Running { stop, task });
    }

    /// Stops serving and waits until the port is closed. Graceful shutdown also closes the idle
    /// keep-alive connections workerd holds, so no request can still reach the old server.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            let abort = running.task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), running.task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Serves again on the same address (same counters).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await;
        let mut last = None;
        for _ in 0..100 {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => {
                    self.serve(listener);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(anyhow::anyhow!("could not rebind {}: {last:?}", self.addr))
    }

    /// `GET /_bridge/stats`, over HTTP as any client would read it.
    pub async fn stats(&self, client: &reqwest::Client) -> Stats {
        let response = client
            .get(format!("{}/_bridge/stats", self.url()))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("bridge stats request");
        assert_eq!(response.status(), 200, "bridge stats");
        response.json().await.expect("bridge stats JSON")
    }
}

impl Drop for BridgeHandle {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
        }
    }
}
