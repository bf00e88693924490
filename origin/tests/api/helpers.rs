//! Test harness: each test gets its own origin on a free port, its own database (a SQLite file
//! or a fresh PostgreSQL database) and its own Redis key prefix, all against the real servers.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tollgate_origin::app::Application;
use tollgate_origin::config::Settings;
use tollgate_origin::state::AppState;
use tollgate_testkit::ApiClient;

pub use tollgate_testkit::{claims_of, Tokens, PASSWORD};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per backend from an `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A running origin and what a test needs to talk to it and to its stores.
///
/// It derefs to its [`ApiClient`], so `app.post_json(…)`, `app.login(…)` and `app.base` read as
/// methods and fields of the app.
pub struct TestApp {
    pub api: ApiClient,
    pub prefix: String,
    pub state: AppState,
    pub redis: redis::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _db: DbGuard,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

/// Starts an origin with test defaults overridden by `overrides` (env-style pairs).
pub async fn spawn_app_with(backend: Backend, overrides: &[(&str, &str)]) -> TestApp {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db = DbGuard::create(backend, &id).await;
    let prefix = format!("test-{id}:");
    let keys_file = std::env::temp_dir().join(format!("tollgate-test-keys-{id}.json"));
    let mut env: HashMap<String, String> = [
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis_url()),
        ("REDIS_KEY_PREFIX", prefix.clone()),
        ("KEYS_FILE", keys_file.display().to_string()),
        ("CLEANUP_INTERVAL_SECS", "0".into()),
        ("STATS_SAMPLE_SECS", "0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("test settings");
    let redis = tollgate_testkit::node_client(&settings.redis_url);
    let app = Application::build(settings).await.expect("origin builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp {
        api: ApiClient::new(base, reqwest::Client::new()),
        prefix,
        state,
        redis,
        shutdown: Some(tx),
        _db: db,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl std::ops::Deref for TestApp {
    type Target = ApiClient;
    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

impl TestApp {
    /// Logs in with the right password from `ip`; returns the status.
    pub async fn login_status_from(&self, ip: &str, email: &str) -> StatusCode {
        self.post_json_from(
            ip,
            "/api/users/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await
        .status()
    }

    /// Logs in with a wrong password from `ip`; returns the status.
    pub async fn wrong_password_from(&self, ip: &str, email: &str) -> StatusCode {
        self.post_json_from(
            ip,
            "/api/users/login",
            &json!({"email": email, "password": "not the password"}),
        )
        .await
        .status()
    }

    /// The test database's URL (for the CLI).
    pub fn database_url(&self) -> &str {
        &self._db.url
    }

    /// Every key under this test's prefix that starts with `kind` (after the prefix), by `SCAN`.
    pub async fn keys_of_kind(&self, kind: &str) -> Vec<String> {
        let mut conn = self.redis_conn().await;
        let pattern = format!("{}{kind}*", self.prefix);
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .expect("SCAN");
            keys.extend(batch);
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    }

    /// One field of a user's hash (`tg:{userId}`), as the origin wrote it.
    pub async fn hget(&self, user_id: &str, field: &str) -> Option<String> {
        let mut conn = self.redis_conn().await;
        redis::cmd("HGET")
            .arg(self.state.redis.keys().user(user_id))
            .arg(field)
            .query_async(&mut conn)
            .await
            .expect("HGET")
    }

    /// Deletes one field of a user's hash, as a flush mid-operation or a hand edit could;
    /// returns whether it was there.
    pub async fn hdel(&self, user_id: &str, field: &str) -> bool {
        let mut conn = self.redis_conn().await;
        let gone: u64 = redis::cmd("HDEL")
            .arg(self.state.redis.keys().user(user_id))
            .arg(field)
            .query_async(&mut conn)
            .await
            .expect("HDEL");
        gone == 1
    }

    /// Status and error code of `GET /api/users/me`.
    pub async fn me_status(&self, access: &str) -> (StatusCode, String) {
        let r = self.get_auth("/api/users/me", access).await;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        (
            status,
            body["error"]["code"].as_str().unwrap_or("").to_owned(),
        )
    }

    /// Every stored secret-bearing column, concatenated, read straight from the database.
    pub async fn db_text(&self) -> String {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self._db.url)
            .await
            .expect("db");
        let mut out = String::new();
        for sql in [
            "SELECT email || ' ' || password_hash FROM users",
            "SELECT current_hash || ' ' || COALESCE(previous_hash, '') FROM device_sessions",
            "SELECT hash FROM refresh_secrets",
        ] {
            let rows: Vec<String> = sqlx::query_scalar(sql)
                .fetch_all(&mut conn)
                .await
                .expect("query");
            out.push_str(&rows.join("\n"));
            out.push('\n');
        }
        out
    }

    /// Runs one statement straight against the test database.
    pub async fn exec_sql(&self, sql: &str) {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self._db.url)
            .await
            .expect("db");
        sqlx::query(sql)
            .execute(&mut conn)
            .await
            .expect("statement");
    }

    pub fn db_url(&self) -> &str {
        &self._db.url
    }

    /// Rows of `table` matching `condition`.
    pub async fn count_where(&self, table: &str, condition: &str) -> i64 {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self._db.url)
            .await
            .expect("db");
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} WHERE {condition}"))
            .fetch_one(&mut conn)
            .await
            .expect("count")
    }

    /// Rows in `table` of the test database.
    pub async fn count_rows(&self, table: &str) -> i64 {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self._db.url)
            .await
            .expect("db");
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .expect("count")
    }

    /// Sends `request` as raw bytes (for what no HTTP client will send: control characters,
    /// bare CR, dot segments, hand-made chunking) and returns the status and the whole answer.
    /// The request should say `Connection: close`.
    pub async fn raw_request(&self, request: &[u8]) -> (u16, String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let addr = self.base.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        // The server may answer and close before reading all of a large request.
        let _ = stream.write_all(request).await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer));
        let _ = read.await.expect("answer within 10 s");
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        (status, text)
    }

    pub async fn redis_conn(&self) -> redis::aio::MultiplexedConnection {
        self.redis
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection")
    }
}

/// Asserts the documented error shape and returns the code.
pub async fn error_code(r: Response, status: StatusCode) -> String {
    assert_eq!(r.status(), status);
    let body: Value = r.json().await.expect("error body is JSON");
    let code = body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned();
    assert!(
        body["error"]["message"].is_string(),
        "error.message missing: {body}"
    );
    code
}

/// The test database; dropped (PostgreSQL) or deleted (SQLite) when the test ends.
pub struct DbGuard {
    pub url: String,
    backend: Backend,
    name: String,
}

impl DbGuard {
    pub async fn create(backend: Backend, id: &str) -> Self {
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("tollgate-test-{id}.db"));
                Self {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    backend,
                    name: path.display().to_string(),
                }
            }
            Backend::Postgres => {
                use sqlx::Connection as _;
                let name = format!("tollgate_test_{id}");
                let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
                    .await
                    .expect("PostgreSQL reachable at TEST_POSTGRES_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let base = postgres_admin_url();
                let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
                Self {
                    url: format!("{server}/{name}"),
                    backend,
                    name,
                }
            }
        }
    }
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        match self.backend {
            Backend::Sqlite => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
                }
            }
            Backend::Postgres => {
                let name = self.name.clone();
                let _ = std::thread::spawn(move || {
                    use sqlx::Connection as _;
                    let Ok(rt) = tokio::runtime::Runtime::new() else {
                        return;
                    };
                    rt.block_on(async {
                        if let Ok(mut conn) =
                            sqlx::PgConnection::connect(&postgres_admin_url()).await
                        {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&mut conn)
                            .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// A private redis-server on a free port, for tests that stop and restart Redis.
pub use tollgate_testkit::RedisServer as RedisProcess;

/// Hex SHA-256 of `text`, computed here with `sha2` rather than by the origin's helper, so a test
/// of what the database stores does not take its expected value from the code under test.
pub fn sha256_hex(text: &str) -> String {
    use sha2::{Digest as _, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
