//! A PostgreSQL database of a test's own, on the server at `TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`): what several origin instances share when a test
//! runs more than one.

use anyhow::Context as _;
use sqlx::Connection as _;

/// A fresh database, dropped (with its connections) when this is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    /// The database's URL, for `DATABASE_URL`.
    pub url: String,
    name: String,
}

fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl TestDatabase {
    pub async fn create() -> anyhow::Result<Self> {
        let name = format!("tollgate_e2e_{}", uuid::Uuid::new_v4().simple());
        let admin = admin_url();
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .context("PostgreSQL not reachable at TEST_POSTGRES_URL")?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .context("Failed to create the test database")?;
        let server = admin.rsplit_once('/').map_or(admin.as_str(), |(s, _)| s);
        Ok(Self {
            url: format!("{server}/{name}"),
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: a runtime of its own on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Runtime::new() else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
