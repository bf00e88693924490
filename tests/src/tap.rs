//! A recording pass-through between the edge and the origin.
//!
//! The origin does not echo the headers it receives, so the edge's `ORIGIN_URL` points here:
//! every request is recorded (method, path, headers) and relayed to the real origin, whose
//! answer goes back unchanged. Given several upstreams it is also the load balancer in front of
//! many origin instances: round robin, request by request. Tests read the record to check the identity headers the origin
//! got, that forged ones never arrived, and that a refused request never got past the edge.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tollgate_testkit::Served;

/// One request as the origin received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Lowercased names, in arrival order, repeated names kept.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// Every value of `name` (case-insensitive).
    pub fn values(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Names starting with `prefix` (lowercase).
    pub fn names_with_prefix(&self, prefix: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

#[derive(Debug, Clone)]
struct TapState {
    /// Relayed to in turn, one request each.
    upstreams: Arc<Vec<String>>,
    next: Arc<std::sync::atomic::AtomicUsize>,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A running tap; stopped on drop.
#[derive(Debug)]
pub struct Tap {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    _served: Served,
}

impl Tap {
    /// Relays to `upstream` (e.g. `http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        Self::start_balanced(&[upstream.to_owned()]).await
    }

    /// Relays to each of `upstreams` in turn (round robin per request): a local load balancer.
    pub async fn start_balanced(upstreams: &[String]) -> anyhow::Result<Self> {
        anyhow::ensure!(!upstreams.is_empty(), "a tap needs an upstream");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = TapState {
            upstreams: Arc::new(
                upstreams
                    .iter()
                    .map(|u| u.trim_end_matches('/').to_owned())
                    .collect(),
            ),
            next: Arc::default(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .context("tap client")?,
            seen: seen.clone(),
        };
        let served = Served::start(Router::new().fallback(relay).with_state(state))
            .await
            .context("Failed to start the tap")?;
        Ok(Self {
            addr: served.addr,
            seen,
            _served: served,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or_default()
    }

    /// The latest request for `path` (path and query).
    pub fn last(&self, path: &str) -> Option<Seen> {
        self.seen().into_iter().rev().find(|s| s.path == path)
    }
}

/// Hop-by-hop headers and those reqwest sets itself are not relayed.
fn relayed(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "host" | "content-length" | "connection" | "keep-alive" | "transfer-encoding" | "te"
    )
}

async fn relay(State(tap): State<TapState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    if let Ok(mut seen) = tap.seen.lock() {
        seen.push(Seen {
            method: parts.method.to_string(),
            path: path.clone(),
            headers,
        });
    }
    let Ok(body) = to_bytes(body, 1 << 20).await else {
        return (StatusCode::BAD_REQUEST, "tap: unreadable body").into_response();
    };
    let turn = tap.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let upstream = &tap.upstreams[turn % tap.upstreams.len()];
    let mut outbound = tap
        .client
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .body(body);
    for (name, value) in parts.headers.iter().filter(|(n, _)| relayed(n)) {
        outbound = outbound.header(name, value);
    }
    let upstream = match outbound.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("tap: {e}")).into_response(),
    };
    let status = upstream.status();
    let headers = upstream.headers().clone();
    let bytes = upstream.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in headers.iter().filter(|(n, _)| relayed(n)) {
        response.headers_mut().append(name, value.clone());
    }
    response
}
