//! The SQL store: users and device sessions, on SQLite (embedded default) or PostgreSQL.
//!
//! One implementation over sqlx's `Any` driver rather than a trait with two copies: the schema
//! is portable (TEXT ids, BIGINT unix seconds, no booleans) and every statement is plain SQL
//! both engines run, with `$n` placeholders numbered in order of first use (which SQLite binds
//! by number too). Statements that read then write run as a single `UPDATE … RETURNING`, or a
//! transaction that writes first, so SQLite's writer lock is taken up front; SQLite writers also
//! queue in-process (`write_gate`) rather than in SQLite's busy handler.

use std::time::Duration;

mod pages;
pub use pages::StatsSample;

use anyhow::Context as _;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor as _, Row as _};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::monitoring::DbCall;

/// Which engine the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The database handle; cheap to clone.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    /// SQLite has one writer at a time. Queueing writers here, in FIFO order, keeps them out of
    /// SQLite's busy handler, whose sleep-and-retry backoff turned refresh p99 into hundreds of
    /// milliseconds under load (BENCHMARKS.md). PostgreSQL locks rows and needs none.
    /// The gate is per process: several origin instances must share PostgreSQL, whose row locks
    /// (`lock_session_by_secret`) serialise refreshes across instances; on one SQLite file two
    /// processes would meet in the busy handler again (correct, but slow).
    write_gate: Option<Arc<Mutex<()>>>,
}

/// Held while a SQLite write runs; nothing for PostgreSQL.
type WriteTurn = Option<OwnedMutexGuard<()>>;

/// A user as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: String,
    pub token_version: i64,
    pub role: String,
}

/// A device session as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub token_id: String,
    pub user_id: String,
    pub current_hash: String,
    pub previous_hash: Option<String>,
    pub rotated_at: Option<i64>,
    /// The same instant in milliseconds (`None` for rows rotated before the column existed:
    /// see [`SessionRow::grace_start_ms`]).
    pub rotated_at_ms: Option<i64>,
    pub current_jti: String,
    pub device_name: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl SessionRow {
    /// When the predecessor was rotated away, in milliseconds; rows rotated before the
    /// millisecond column existed fall back to their whole second.
    pub fn grace_start_ms(&self) -> Option<i64> {
        self.rotated_at_ms
            .or_else(|| self.rotated_at.map(|s| s.saturating_mul(1000)))
    }
}

/// A user to create at registration.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub name: Option<&'a str>,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub now: i64,
}

/// A session to create at login.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub token_id: &'a str,
    pub user_id: &'a str,
    pub refresh_hash: &'a str,
    pub jti: &'a str,
    pub device_name: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

/// A device session held under its write lock until [`rotate`](Self::rotate) commits or
/// [`release`](Self::release) rolls back (dropping it rolls back too).
#[derive(Debug)]
pub struct SessionLock {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: WriteTurn,
    pub session: SessionRow,
    /// The user's current token version.
    pub token_version: i64,
}

impl SessionLock {
    /// Makes `new_hash` current (the old current becomes the predecessor), records the new
    /// secret and access token, slides the expiry, and commits. `now_ms` is the instant the
    /// grace window is measured from.
    pub async fn rotate(
        mut self,
        new_hash: &str,
        new_jti: &str,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        let _timer = DbCall::start("session_rotate");
        let now = now_ms.div_euclid(1000);
        sqlx::query(
            "UPDATE device_sessions SET previous_hash = current_hash, current_hash = $1, \
             rotated_at = $2, current_jti = $3, last_seen_at = $2, expires_at = $4, \
             rotated_at_ms = $5 WHERE token_id = $6",
        )
        .bind(new_hash)
        .bind(now)
        .bind(new_jti)
        .bind(expires_at)
        .bind(now_ms)
        .bind(&self.session.token_id)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("INSERT INTO refresh_secrets (hash, token_id, issued_at) VALUES ($1, $2, $3)")
            .bind(new_hash)
            .bind(&self.session.token_id)
            .bind(now)
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await
    }

    /// Lets go without changing anything.
    pub async fn release(self) -> Result<(), sqlx::Error> {
        let _timer = DbCall::start("session_release");
        self.tx.rollback().await
    }
}

/// Counts for token-stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCounts {
    pub total: i64,
    pub active: i64,
    pub revoked: i64,
}

/// Outcome of inserting a user.
#[derive(Debug)]
pub enum CreateUser {
    Created,
    EmailTaken,
}

const SESSION_COLUMNS: &str = "s.token_id, s.user_id, s.current_hash, s.previous_hash, \
     s.rotated_at, s.rotated_at_ms, s.current_jti, s.device_name, s.ip, s.user_agent, s.created_at, \
     s.last_seen_at, s.expires_at, s.revoked_at";

impl Db {
    /// Connects and, for SQLite, turns on WAL so readers never wait for the writer.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(5));
        if backend == Backend::Sqlite {
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    Ok(())
                })
            });
        }
        let pool = options
            .connect(url)
            .await
            .with_context(|| format!("Failed to connect to the {backend:?} database"))?;
        if backend == Backend::Sqlite {
            pool.execute("PRAGMA journal_mode = WAL")
                .await
                .context("Failed to enable SQLite WAL mode")?;
        }
        let write_gate = (backend == Backend::Sqlite).then(|| Arc::new(Mutex::new(())));
        Ok(Self { pool, write_gate })
    }

    /// Waits for this process's turn to write (SQLite only).
    async fn write_turn(&self) -> WriteTurn {
        match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        }
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        sqlx::migrate!("./migrations")
            .run(&self.pool)
            .await
            .context("Failed to run database migrations")
    }

    /// `SELECT 1`, for readiness.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        let _timer = DbCall::start("ping");
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn create_user(&self, u: &NewUser<'_>) -> Result<CreateUser, sqlx::Error> {
        let _timer = DbCall::start("create_user");
        let _turn = self.write_turn().await;
        let result = sqlx::query(
            "INSERT INTO users (id, email, email_normalized, name, password_hash, token_version, role, created_at) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7)",
        )
        .bind(u.id)
        .bind(u.email)
        .bind(u.email_normalized)
        .bind(u.name)
        .bind(u.password_hash)
        .bind(u.role)
        .bind(u.now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(CreateUser::Created),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(CreateUser::EmailTaken),
            Err(e) => Err(e),
        }
    }

    pub async fn user_by_email(
        &self,
        email_normalized: &str,
    ) -> Result<Option<UserRow>, sqlx::Error> {
        let _timer = DbCall::start("user_by_email");
        sqlx::query_as(
            "SELECT id, email, name, password_hash, token_version, role FROM users WHERE email_normalized = $1",
        )
        .bind(email_normalized)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
        let _timer = DbCall::start("user_by_id");
        sqlx::query_as(
            "SELECT id, email, name, password_hash, token_version, role FROM users WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Sets a user's role (`admin` or `user`); false if no such user. Roles are read from here
    /// on every request that needs one, so the change holds from the next request on.
    pub async fn set_role(&self, email_normalized: &str, role: &str) -> Result<bool, sqlx::Error> {
        let _timer = DbCall::start("set_role");
        let _turn = self.write_turn().await;
        let r = sqlx::query("UPDATE users SET role = $1 WHERE email_normalized = $2")
            .bind(role)
            .bind(email_normalized)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Creates a device session and records its first refresh secret.
    pub async fn insert_session(&self, s: &NewSession<'_>) -> Result<(), sqlx::Error> {
        let _timer = DbCall::start("insert_session");
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO device_sessions (token_id, user_id, current_hash, current_jti, device_name, ip, \
             user_agent, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
        )
        .bind(s.token_id)
        .bind(s.user_id)
        .bind(s.refresh_hash)
        .bind(s.jti)
        .bind(s.device_name)
        .bind(s.ip)
        .bind(s.user_agent)
        .bind(s.now)
        .bind(s.expires_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO refresh_secrets (hash, token_id, issued_at) VALUES ($1, $2, $3)")
            .bind(s.refresh_hash)
            .bind(s.token_id)
            .bind(s.now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Locks the device session a refresh secret (by hash) was ever issued for, and reads it
    /// with its user's current token version.
    ///
    /// The first statement is a no-op `UPDATE` of the session row: on PostgreSQL it takes the
    /// row lock, on SQLite the database write lock. Refreshes of one session are thereby
    /// serialised, so a repeated or concurrent refresh sees the finished rotation of the one
    /// before it and never forks the chain.
    ///
    /// A secret never issued is answered by a plain read first, so guessing costs no write lock
    /// and never queues behind (or ahead of) the writers.
    pub async fn lock_session_by_secret(
        &self,
        hash: &str,
    ) -> Result<Option<SessionLock>, sqlx::Error> {
        let _timer = DbCall::start("lock_session_by_secret");
        let issued: Option<String> =
            sqlx::query_scalar("SELECT token_id FROM refresh_secrets WHERE hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        if issued.is_none() {
            return Ok(None);
        }
        let turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let locked = sqlx::query(
            "UPDATE device_sessions SET last_seen_at = last_seen_at \
             WHERE token_id = (SELECT token_id FROM refresh_secrets WHERE hash = $1)",
        )
        .bind(hash)
        .execute(&mut *tx)
        .await?;
        if locked.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, u.token_version FROM refresh_secrets r \
             JOIN device_sessions s ON s.token_id = r.token_id \
             JOIN users u ON u.id = s.user_id WHERE r.hash = $1"
        );
        let row = sqlx::query(&sql).bind(hash).fetch_one(&mut *tx).await?;
        let token_version: i64 = row.try_get("token_version")?;
        let session: SessionRow = sqlx::FromRow::from_row(&row)?;
        Ok(Some(SessionLock {
            tx,
            _turn: turn,
            session,
            token_version,
        }))
    }

    /// The device session (`token_id`, `user_id`) a refresh secret (by hash) was ever issued
    /// for, live or not; a plain read (RFC 7009 revocation needs no lock: revoking is
    /// idempotent).
    pub async fn session_of_secret(
        &self,
        hash: &str,
    ) -> Result<Option<(String, String)>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT s.token_id, s.user_id FROM refresh_secrets r \
             JOIN device_sessions s ON s.token_id = r.token_id WHERE r.hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("token_id")?, r.try_get("user_id")?)))
            .transpose()
    }

    /// Revokes one live session of `user_id`; false if it was not live or not theirs.
    pub async fn revoke_session(
        &self,
        token_id: &str,
        user_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let _timer = DbCall::start("revoke_session");
        let _turn = self.write_turn().await;
        let r = sqlx::query(
            "UPDATE device_sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE token_id = $3 AND user_id = $4 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(reason)
        .bind(token_id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Deletes the user and, by cascade, every device session and refresh secret, atomically.
    /// The sessions are locked first, waiting out a refresh in flight, so whatever it minted is
    /// in Redis before the caller clears it the second time. Returns how many device sessions
    /// went; `None` if there is no such user.
    pub async fn delete_user(&self, user_id: &str) -> Result<Option<u64>, sqlx::Error> {
        let _timer = DbCall::start("delete_user");
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let sessions = sqlx::query(
            "UPDATE device_sessions SET last_seen_at = last_seen_at WHERE user_id = $1",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(sessions))
    }

    /// Whether `token_id` names a session (live or not) owned by `user_id`.
    pub async fn session_belongs_to(
        &self,
        token_id: &str,
        user_id: &str,
    ) -> Result<bool, sqlx::Error> {
        let _timer = DbCall::start("session_belongs_to");
        let row = sqlx::query(
            "SELECT 1 AS one FROM device_sessions WHERE token_id = $1 AND user_id = $2",
        )
        .bind(token_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Bumps the user's token version and revokes all their live sessions, atomically.
    /// Returns the new version and the revoked sessions' ids.
    pub async fn logout_all(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Option<(i64, Vec<String>)>, sqlx::Error> {
        let _timer = DbCall::start("logout_all");
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET token_version = token_version + 1 WHERE id = $1 RETURNING token_version",
        )
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(version) = version else {
            tx.rollback().await?;
            return Ok(None);
        };
        let token_ids: Vec<String> = sqlx::query_scalar(
            "UPDATE device_sessions SET revoked_at = $1, revoked_reason = 'logout_all' \
             WHERE user_id = $2 AND revoked_at IS NULL RETURNING token_id",
        )
        .bind(now)
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some((version, token_ids)))
    }

    /// The user's live (unrevoked, unexpired) sessions, oldest first.
    pub async fn live_sessions(
        &self,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<SessionRow>, sqlx::Error> {
        let _timer = DbCall::start("live_sessions");
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM device_sessions s \
             WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
             ORDER BY s.created_at, s.token_id"
        );
        sqlx::query_as(&sql)
            .bind(user_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await
    }

    /// Every session of the user with why it was revoked (`None`: live or merely expired), for
    /// audits and the soak test's invariant that every chain ends for a recorded reason.
    pub async fn session_outcomes(
        &self,
        user_id: &str,
    ) -> Result<Vec<(String, Option<String>)>, sqlx::Error> {
        let _timer = DbCall::start("session_outcomes");
        let rows = sqlx::query(
            "SELECT token_id, revoked_reason FROM device_sessions WHERE user_id = $1 ORDER BY created_at",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("token_id")?, r.try_get("revoked_reason")?)))
            .collect()
    }

    pub async fn session_counts(&self, now: i64) -> Result<SessionCounts, sqlx::Error> {
        let _timer = DbCall::start("session_counts");
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, \
             COUNT(CASE WHEN revoked_at IS NULL AND expires_at > $1 THEN 1 END) AS active, \
             COUNT(CASE WHEN revoked_at IS NOT NULL THEN 1 END) AS revoked \
             FROM device_sessions",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(SessionCounts {
            total: row.try_get("total")?,
            active: row.try_get("active")?,
            revoked: row.try_get("revoked")?,
        })
    }

    /// Deletes sessions revoked or expired before `cutoff` (their secrets go with them) and
    /// secrets older than `secret_cutoff`, which can no longer be current. Returns sessions
    /// deleted.
    pub async fn cleanup(&self, cutoff: i64, secret_cutoff: i64) -> Result<u64, sqlx::Error> {
        let _timer = DbCall::start("cleanup");
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM refresh_secrets WHERE issued_at < $1 OR token_id IN \
             (SELECT token_id FROM device_sessions WHERE revoked_at < $2 OR expires_at < $2)",
        )
        .bind(secret_cutoff)
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        let deleted =
            sqlx::query("DELETE FROM device_sessions WHERE revoked_at < $1 OR expires_at < $1")
                .bind(cutoff)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected())
    }
}
