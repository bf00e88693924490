//! The client calls tests make against the origin or, through it, the edge: JSON posts, bearer
//! requests, and the register → login → refresh flow, with a fresh user per call.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

/// The password every test user is registered with.
pub const PASSWORD: &str = "correct horse battery";

/// Tokens from a login or refresh.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub jti: String,
    pub token_id: String,
}

/// The claims of a token the origin issued, read without verifying it (tests trust it).
pub fn claims_of(token: &str) -> tollgate_shared::AccessClaims {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("payload segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

impl Tokens {
    /// Whose tokens these are (the access token's `sub`).
    pub fn user_id(&self) -> String {
        claims_of(&self.access).sub
    }

    /// The tokens in a `{"data": {...}}` answer of login or refresh; panics naming the field
    /// that is missing.
    pub fn from_body(body: &Value) -> Self {
        let d = &body["data"];
        let field = |k: &str| {
            d[k].as_str()
                .unwrap_or_else(|| panic!("{k} in {body}"))
                .to_owned()
        };
        Self {
            access: field("access_token"),
            refresh: field("refresh_token"),
            jti: field("jti"),
            token_id: field("token_id"),
        }
    }
}

/// An HTTP client bound to one service's base URL (`http://127.0.0.1:PORT`). Test harnesses
/// deref to it, so `app.login(…)` reads the same against the origin and the edge.
#[derive(Debug, Clone)]
pub struct ApiClient {
    pub base: String,
    pub client: reqwest::Client,
}

impl ApiClient {
    pub fn new(base: impl Into<String>, client: reqwest::Client) -> Self {
        Self {
            base: base.into(),
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// `post_json` from another loopback address (`127.0.0.2`, …): a different client address
    /// as the server sees it, for the per-address limits.
    pub async fn post_json_from(&self, ip: &str, path: &str, body: &Value) -> Response {
        let local: std::net::IpAddr = ip.parse().expect("an IP address");
        reqwest::Client::builder()
            .local_address(local)
            .build()
            .expect("client")
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path} from {ip}: {e}"))
    }

    pub async fn get_auth(&self, path: &str, access: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(access)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn post_auth(&self, path: &str, access: &str) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(access)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Registers a fresh user with a unique email; returns the email.
    pub async fn new_user(&self) -> String {
        let body = register_body();
        let r = self.post_json("/api/users/register", &body).await;
        created(r, &body).await
    }

    /// Registers a fresh user from client address `ip`; returns the email.
    pub async fn new_user_from(&self, ip: &str) -> String {
        let body = register_body();
        let r = self.post_json_from(ip, "/api/users/register", &body).await;
        created(r, &body).await
    }

    /// Logs in with [`PASSWORD`]; panics unless it answers 200.
    pub async fn login(&self, email: &str, device: &str) -> Tokens {
        let r = self
            .post_json(
                "/api/users/login",
                &json!({"email": email, "password": PASSWORD, "device_name": device}),
            )
            .await;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, StatusCode::OK, "login: {body}");
        Tokens::from_body(&body)
    }

    pub async fn refresh(&self, refresh: &str) -> Response {
        self.post_json("/api/users/refresh", &json!({"refresh_token": refresh}))
            .await
    }
}

fn register_body() -> Value {
    let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
    json!({"email": email, "password": PASSWORD, "name": "Test"})
}

/// The registered email, once the answer is 201.
async fn created(r: Response, body: &Value) -> String {
    let status = r.status();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "register: {}",
        r.text().await.unwrap_or_default()
    );
    body["email"].as_str().unwrap_or_default().to_owned()
}
