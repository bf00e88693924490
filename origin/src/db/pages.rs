//! The SQL of the pages ([`crate::pages`]): page sessions' CSRF tokens and the admin page's
//! history. A child of [`crate::db`] so it shares its pool and SQLite write gate.

use sqlx::Row as _;

use super::Db;

/// One minute's sampled token statistics (see the `stats_samples` migration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSample {
    /// Unix seconds / 60.
    pub minute: i64,
    pub redis_jtis: i64,
    pub redis_refresh: i64,
    pub active_sessions: i64,
    pub revoked_sessions: i64,
}

impl Db {
    /// Records that `token_id` is a page session with this CSRF token hash.
    pub async fn insert_page_session(
        &self,
        token_id: &str,
        csrf_hash: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO page_sessions (token_id, csrf_hash, created_at) VALUES ($1, $2, $3)",
        )
        .bind(token_id)
        .bind(csrf_hash)
        .bind(now)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// The CSRF token hash of a live page session of `user_id`; `None` if `token_id` is no
    /// page session of theirs, or it was revoked.
    pub async fn page_csrf_hash(
        &self,
        token_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT p.csrf_hash FROM page_sessions p JOIN device_sessions s \
             ON s.token_id = p.token_id \
             WHERE p.token_id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL",
        )
        .bind(token_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Stores this minute's sample unless another instance already did (the first one wins),
    /// and forgets samples older than `keep_from` (a minute).
    pub async fn record_stats_sample(
        &self,
        s: &StatsSample,
        keep_from: i64,
    ) -> Result<(), sqlx::Error> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO stats_samples (minute, redis_jtis, redis_refresh, active_sessions, \
             revoked_sessions) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (minute) DO NOTHING",
        )
        .bind(s.minute)
        .bind(s.redis_jtis)
        .bind(s.redis_refresh)
        .bind(s.active_sessions)
        .bind(s.revoked_sessions)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM stats_samples WHERE minute < $1")
            .bind(keep_from)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Whether a sample exists for `minute`.
    pub async fn has_stats_sample(&self, minute: i64) -> Result<bool, sqlx::Error> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stats_samples WHERE minute = $1")
            .bind(minute)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// Samples from `from_minute` on, oldest first.
    pub async fn stats_samples(&self, from_minute: i64) -> Result<Vec<StatsSample>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT minute, redis_jtis, redis_refresh, active_sessions, revoked_sessions \
             FROM stats_samples WHERE minute >= $1 ORDER BY minute",
        )
        .bind(from_minute)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StatsSample {
                    minute: r.try_get("minute")?,
                    redis_jtis: r.try_get("redis_jtis")?,
                    redis_refresh: r.try_get("redis_refresh")?,
                    active_sessions: r.try_get("active_sessions")?,
                    revoked_sessions: r.try_get("revoked_sessions")?,
                })
            })
            .collect()
    }

    /// Logins per minute since `from` (unix seconds): one device session is created per login.
    pub async fn logins_per_minute(&self, from: i64) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        self.per_minute("device_sessions", "created_at", from).await
    }

    /// Refresh secrets issued per minute since `from`: one per login plus one per rotation,
    /// so refreshes are these minus the logins.
    pub async fn secrets_per_minute(&self, from: i64) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        self.per_minute("refresh_secrets", "issued_at", from).await
    }

    /// `(minute, rows)` of `table` by `column`; both names are our constants, never input.
    async fn per_minute(
        &self,
        table: &'static str,
        column: &'static str,
        from: i64,
    ) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        let sql = format!(
            "SELECT {column} / 60 AS minute, COUNT(*) AS n FROM {table} \
             WHERE {column} >= $1 GROUP BY {column} / 60 ORDER BY minute"
        );
        let rows = sqlx::query(&sql).bind(from).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("minute")?, r.try_get("n")?)))
            .collect()
    }
}
