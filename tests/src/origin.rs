//! The origin, in-process on a free port, with its own SQLite file, key file and key prefix.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context as _;
use tokio::sync::oneshot;
use tollgate_origin::app::Application;
use tollgate_origin::config::Settings;
use tollgate_origin::state::AppState;

/// A running origin; stopped on drop.
#[derive(Debug)]
pub struct Origin {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub state: AppState,
    /// Its `REDIS_KEY_PREFIX`, which the edge must share.
    pub prefix: String,
    /// Its `KEYS_FILE`, for tests that rotate keys as the CLI would.
    pub keys_file: std::path::PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Origin {
    /// Starts an origin whose files live in `dir`, with `extra` settings on top, on the default
    /// limits (successful logins never count against them); loopback is a trusted proxy because
    /// the edge (and the tap) sit there.
    pub async fn start(
        dir: &Path,
        prefix: &str,
        redis_url: &str,
        extra: &[(&'static str, String)],
    ) -> anyhow::Result<Self> {
        let db = dir.join("origin.db");
        let keys = dir.join("origin-keys.json");
        let env: HashMap<&str, String> = [
            ("BIND_ADDR", "127.0.0.1:0".to_owned()),
            (
                "DATABASE_URL",
                format!("sqlite://{}?mode=rwc", db.display()),
            ),
            ("REDIS_URL", redis_url.to_owned()),
            ("REDIS_KEY_PREFIX", prefix.to_owned()),
            ("KEYS_FILE", keys.display().to_string()),
            ("CLEANUP_INTERVAL_SECS", "0".into()),
            ("STATS_SAMPLE_SECS", "0".into()),
            ("TRUSTED_PROXIES", "127.0.0.1/32".into()),
        ]
        .into_iter()
        .chain(extra.iter().cloned())
        .collect();
        let settings =
            Settings::from_lookup(|k| env.get(k).cloned()).context("origin test settings")?;
        let app = Application::build(settings)
            .await
            .context("Failed to build the origin")?;
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Ok(Self {
            base,
            state,
            prefix: prefix.to_owned(),
            keys_file: keys,
            shutdown: Some(tx),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The public JWKS the edge verifies with (`tollgate-origin keys jwks`).
    pub fn jwks_json(&self) -> String {
        serde_json::to_string(&self.state.keys.view().jwks()).unwrap_or_default()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
