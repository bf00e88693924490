//! The bridge under test, in-process on 127.0.0.1:0 over a Redis, and the calls tests make.

use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tollgate_rest_bridge::{spawn, Config, Stats, Token};

pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

pub struct TestBridge {
    pub base: String,
    pub token: String,
    pub readonly_token: String,
    pub prefix: String,
    pub http: reqwest::Client,
}

impl TestBridge {
    pub async fn start() -> Self {
        Self::start_with(REDIS_URL, |_| {}).await
    }

    pub async fn start_with(redis_url: &str, tweak: impl FnOnce(&mut Config)) -> Self {
        let id = uuid::Uuid::new_v4();
        let token = format!("full-{id}");
        let readonly_token = format!("ro-{id}");
        let mut config = Config::new(redis_url, Token::new(&token));
        config.readonly_token = Some(Token::new(&readonly_token));
        tweak(&mut config);
        let spawned = spawn(config).await.expect("bridge starts");
        Self {
            base: spawned.url(),
            token,
            readonly_token,
            prefix: format!("bridgetest:{id}:"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
        }
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// Raw request with the full token; answers status, headers and the body as JSON.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut request = self.http.request(method, self.url(path)).body(body);
        let mut has_auth = false;
        for (name, value) in headers {
            has_auth |= name.eq_ignore_ascii_case("authorization");
            request = request.header(*name, *value);
        }
        if !has_auth && !path.contains("_token=") {
            request = request.header(AUTHORIZATION, self.bearer());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{status}: body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, headers, body)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, body) = self
            .send(Method::POST, path, &[], body.to_string().into_bytes())
            .await;
        (status, body)
    }

    /// One JSON command on `POST /`.
    pub async fn cmd(&self, command: Value) -> (StatusCode, Value) {
        self.post("/", command).await
    }

    pub async fn result(&self, command: Value) -> Value {
        let (status, body) = self.cmd(command.clone()).await;
        assert_eq!(status, StatusCode::OK, "{command} → {body}");
        body["result"].clone()
    }

    pub async fn stats(&self) -> Stats {
        let response = self
            .http
            .get(self.url("/_bridge/stats"))
            .header(AUTHORIZATION, self.bearer())
            .send()
            .await
            .expect("stats");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("stats JSON")
    }

    /// Deletes this test's keys, found with `SCAN` (the full token runs no `KEYS`).
    pub async fn cleanup(&self) {
        let mut cursor = json!("0");
        loop {
            let page = self
                .result(json!([
                    "SCAN",
                    cursor,
                    "MATCH",
                    format!("{}*", self.prefix),
                    "COUNT",
                    1000
                ]))
                .await;
            let keys = page[1].as_array().cloned().unwrap_or_default();
            if !keys.is_empty() {
                let mut del = vec![json!("DEL")];
                del.extend(keys);
                self.result(Value::Array(del)).await;
            }
            cursor = page[0].clone();
            if cursor == json!("0") {
                return;
            }
        }
    }

    /// One JSON command on `POST /` with `token`.
    pub async fn cmd_as(&self, token: &str, command: Value) -> (StatusCode, Value) {
        let auth = format!("Bearer {token}");
        let (status, _, body) = self
            .send(
                Method::POST,
                "/",
                &[("authorization", auth.as_str())],
                command.to_string().into_bytes(),
            )
            .await;
        (status, body)
    }

    /// `path` (`/pipeline`, `/multi-exec`) with `token`.
    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let auth = format!("Bearer {token}");
        let (status, _, body) = self
            .send(
                Method::POST,
                path,
                &[("authorization", auth.as_str())],
                body.to_string().into_bytes(),
            )
            .await;
        (status, body)
    }
}

pub fn assert_error_body(status: StatusCode, body: &Value, expected: StatusCode, needle: &str) {
    assert_eq!(status, expected, "{body}");
    let error = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error string in {body}"));
    assert!(
        error.contains(needle),
        "{error:?} should contain {needle:?}"
    );
}
