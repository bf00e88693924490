//! `tollgate-rest-bridge`: read config (tokens from the environment only), start tracing, build, bind, serve until Ctrl-C.

use anyhow::Context as _;
use tollgate_rest_bridge::{build, serve, Config};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env_and_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info")),
        )
        .init();

    let bind = config.bind;
    if let Some(at) = config.metrics_bind.0 {
        let bound = tollgate_rest_bridge::spawn_metrics(at).await?;
        tracing::info!(addr = %bound, "metrics listening");
    }
    let bridge = build(config).await?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("failed to bind BRIDGE_BIND={bind}"))?;
    tracing::info!(addr = %listener.local_addr().context("no local address")?, "listening");
    serve(listener, bridge, async {
        // If the signal handler cannot be installed, run until killed rather than exit at once.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
    .await
    .context("server failed")
}
