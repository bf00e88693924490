//! The notes table. Every query takes the owner, so no handler can reach another user's note by
//! forgetting a `WHERE`.

use std::str::FromStr as _;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::SqlitePool;

/// A note as the API returns it (the owner is implied: it is always the caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Note {
    pub id: String,
    pub title: String,
    pub body: String,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// A note's editable content, already validated.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    pub title: &'a str,
    pub body: &'a str,
}

#[derive(Debug, Clone)]
pub struct Notes {
    pool: SqlitePool,
}

const COLUMNS: &str = "id, title, body, created_at, updated_at";

impl Notes {
    /// Opens the SQLite database at `url` (created if missing, WAL) and applies migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("DATABASE_URL {url:?} is not a SQLite URL"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .with_context(|| format!("Failed to open the SQLite database {url:?}"))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .context("Failed to run the notes migrations")?;
        Ok(Self { pool })
    }

    pub async fn list(&self, owner: &str) -> Result<Vec<Note>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notes WHERE owner = ? ORDER BY created_at, id"
        ))
        .bind(owner)
        .fetch_all(&self.pool)
        .await
    }

    pub async fn create(
        &self,
        owner: &str,
        content: Content<'_>,
        now: i64,
    ) -> Result<Note, sqlx::Error> {
        let note = Note {
            id: uuid::Uuid::new_v4().to_string(),
            title: content.title.to_owned(),
            body: content.body.to_owned(),
            created_at: now,
            updated_at: now,
        };
        sqlx::query(
            "INSERT INTO notes (id, owner, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&note.id)
        .bind(owner)
        .bind(&note.title)
        .bind(&note.body)
        .bind(note.created_at)
        .bind(note.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(note)
    }

    pub async fn get(&self, owner: &str, id: &str) -> Result<Option<Note>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notes WHERE owner = ? AND id = ?"
        ))
        .bind(owner)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Replaces a note's content; `None` when the owner has no such note.
    pub async fn update(
        &self,
        owner: &str,
        id: &str,
        content: Content<'_>,
        now: i64,
    ) -> Result<Option<Note>, sqlx::Error> {
        sqlx::query_as(&format!(
            "UPDATE notes SET title = ?, body = ?, updated_at = ? WHERE owner = ? AND id = ? RETURNING {COLUMNS}"
        ))
        .bind(content.title)
        .bind(content.body)
        .bind(now)
        .bind(owner)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
    }

    /// Deletes a note; `false` when the owner has no such note.
    pub async fn delete(&self, owner: &str, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("DELETE FROM notes WHERE owner = ? AND id = ?")
            .bind(owner)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
