//! The seed's `cleanup:tokens`: delete device sessions that expired or were revoked longer ago
//! than the retention. Redis needs no sweep: its TTLs expire every key on their own.

use std::time::Duration;

use crate::db::Db;
use crate::state::AppState;

/// One pass; returns how many sessions were deleted.
pub async fn run_once(db: &Db, retention: u64, refresh_ttl: u64, now: i64) -> anyhow::Result<u64> {
    let deleted = db
        .cleanup(now - retention as i64, now - refresh_ttl as i64)
        .await?;
    tracing::info!(
        deleted,
        "cleanup removed expired and revoked device sessions"
    );
    Ok(deleted)
}

/// Runs [`run_once`] every `CLEANUP_INTERVAL_SECS` (never, when 0).
pub async fn periodic(state: AppState) {
    let s = &state.settings;
    if s.cleanup_interval == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(s.cleanup_interval));
    loop {
        tick.tick().await;
        if let Err(e) = run_once(
            &state.db,
            s.cleanup_retention,
            s.refresh_ttl,
            crate::domain::now(),
        )
        .await
        {
            tracing::warn!(error = %format!("{e:#}"), "periodic cleanup failed");
        }
    }
}
