//! `spawn_app()`: a fresh SQLite database and a notes API on a loopback port, trusting one
//! edge key; and calls carrying assertions from that key.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tollgate_notes_api::config::EdgeKeys;
use tollgate_notes_api::{app, AppState, Settings};
use tollgate_shared::assertion::{AssertionClaims, HEADER};
use tollgate_shared::jwt::{KeySet, SigningKey};

pub struct TestApp {
    pub base: String,
    pub db: PathBuf,
    /// Whether dropping this app removes the database file (not for a restart on it).
    owns_db: bool,
    edge_key: SigningKey,
    client: reqwest::Client,
}

pub fn edge_key(seed: u8) -> SigningKey {
    SigningKey::EdDSA {
        kid: "edge-1".into(),
        key: ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
    }
}

fn jwks_of(key: &SigningKey) -> String {
    let mut set = KeySet::new();
    set.insert(key.kid(), key.verifying_key());
    serde_json::to_string(&set.to_jwks()).expect("jwks")
}

fn settings(db: &std::path::Path) -> Settings {
    Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(format!("sqlite://{}", db.display())),
        "EDGE_JWKS" => Some(jwks_of(&edge_key(7))),
        _ => None,
    })
    .expect("settings")
}

/// A notes API with its own new database file.
pub async fn spawn_app() -> TestApp {
    let db = std::env::temp_dir().join(format!("tollgate-notes-{}.db", uuid::Uuid::new_v4()));
    let mut app = spawn_on(db).await;
    app.owns_db = true;
    app
}

/// A notes API on an existing database file (a restart).
pub async fn spawn_on(db: PathBuf) -> TestApp {
    let settings = settings(&db);
    assert!(matches!(settings.edge_keys, EdgeKeys::Jwks(_)));
    assert_eq!(settings.edge_audience, "notes");
    let state = AppState::build(&settings).await.expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app(state)).await.expect("serve") });
    TestApp {
        base,
        db,
        owns_db: false,
        edge_key: edge_key(7),
        client: reqwest::Client::new(),
    }
}

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    i64::try_from(secs).expect("fits")
}

/// What the edge signs for `user` calling `method path` on the `notes` upstream.
pub fn assertion_claims(user: &str, method: &str, path: &str) -> AssertionClaims {
    let now = now();
    AssertionClaims {
        iss: "tollgate-edge".into(),
        aud: "notes".into(),
        sub: Some(user.into()),
        sid: Some(format!("{user}-session")),
        jti: Some(uuid::Uuid::new_v4().to_string()),
        ver: Some(1),
        ver_checked: true,
        ip: Some("198.51.100.4".into()),
        htm: method.into(),
        htu: path.into(),
        iat: now,
        exp: now + 30,
    }
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl TestApp {
    /// `method path` as `user`, with a valid assertion for exactly this request.
    pub async fn call(&self, user: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
        let assertion = assertion_claims(user, method, path).sign(&self.edge_key);
        self.send(method, path, Some(&assertion), body.map(|b| b.to_string()))
            .await
    }

    /// A raw request: any assertion (or none), any body text.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        assertion: Option<&str>,
        body: Option<String>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(a) = assertion {
            request = request.header(HEADER, a);
        }
        if let Some(b) = body {
            request = request.header("content-type", "application/json").body(b);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
        };
        Answer { status, body }
    }

    /// Signs `claims` with the trusted edge key.
    pub fn sign(&self, claims: &AssertionClaims) -> String {
        claims.sign(&self.edge_key)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if !self.owns_db {
            return;
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db.display()));
        }
    }
}

/// The error code of an answer, asserting the status and Tollgate's error shape.
pub fn error_code(answer: &Answer, status: u16) -> String {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert!(
        answer.body["error"]["message"].is_string(),
        "{}",
        answer.body
    );
    answer.body["error"]["code"]
        .as_str()
        .expect("code")
        .to_owned()
}
