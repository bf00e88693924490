//! Keys, claims and servers the tests share.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tollgate_shared::assertion::AssertionClaims;
use tollgate_shared::jwt::{KeySet, SigningKey};
use tollgate_testkit::upstream::{whoami, EdgeState};
use tollgate_upstream::EdgeVerifier;

pub const ISSUER: &str = "tollgate-edge";
pub const AUDIENCE: &str = "notes";

/// An edge key with a fixed seed, so a test names its keys by number.
pub fn key(kid: &str, seed: u8) -> SigningKey {
    SigningKey::EdDSA {
        kid: kid.into(),
        key: ed25519_dalek::SigningKey::from_bytes(&[seed; 32]),
    }
}

pub fn key_set(keys: &[&SigningKey]) -> KeySet {
    let mut set = KeySet::new();
    for k in keys {
        set.insert(k.kid(), k.verifying_key());
    }
    set
}

pub fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    i64::try_from(secs).expect("time fits")
}

/// What the edge would sign for a fully checked user calling `method path` on `notes`.
pub fn claims(method: &str, path: &str) -> AssertionClaims {
    let now = now();
    AssertionClaims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: Some("user-1".into()),
        sid: Some("session-1".into()),
        jti: Some("jti-1".into()),
        ver: Some(3),
        ver_checked: true,
        ip: Some("203.0.113.7".into()),
        htm: method.into(),
        htu: path.into(),
        iat: now,
        exp: now + 30,
    }
}

/// An upstream protecting `/api/notes/{id}` (GET and POST) and, nested under `/api/v2`, the
/// same route again.
pub fn app(edge: EdgeVerifier) -> Router {
    let notes = || Router::new().route("/notes/{id}", get(whoami).post(whoami));
    Router::new()
        .nest("/api", notes())
        .nest("/api/v2", notes())
        .with_state(EdgeState { edge })
}

/// Serves `router` on a fresh loopback port; returns its base URL and the server task.
pub async fn serve(router: Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serve");
    });
    (format!("http://{addr}"), task)
}

/// One call with the given assertion header values; returns status and JSON body.
pub async fn call(base: &str, method: &str, path: &str, assertions: &[&str]) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
    for value in assertions {
        request = request.header(tollgate_upstream::HEADER, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let body = response.json().await.expect("JSON body");
    (status, body)
}

/// The error code of a refusal, asserting it is a 401 in Tollgate's error shape.
pub fn refusal_code(status: u16, body: &Value) -> String {
    assert_eq!(status, 401, "expected a refusal, got {body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["code"]
        .as_str()
        .expect("error code")
        .to_owned()
}
