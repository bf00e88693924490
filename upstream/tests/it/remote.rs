//! `EdgeVerifier::remote`: keys fetched from the edge's JWKS URL, cached, refetched at most once
//! per `min_refetch` for unknown kids, and kept through an outage of the JWKS server.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tollgate_shared::jwt::{KeySet, SigningKey};
use tollgate_upstream::{EdgeVerifier, RemoteOptions};

use crate::helpers::{self, call, claims, key, key_set, refusal_code, AUDIENCE, ISSUER};

/// A JWKS server whose key set a test can change, counting the requests it answers.
#[derive(Clone, Default)]
struct JwksServer {
    keys: Arc<Mutex<KeySet>>,
    fetches: Arc<AtomicUsize>,
    /// Answer 503 instead of the keys.
    failing: Arc<AtomicBool>,
}

impl JwksServer {
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn publish(&self, keys: KeySet) {
        *self.keys.lock().expect("lock") = keys;
    }
}

async fn jwks(State(server): State<JwksServer>) -> axum::response::Response {
    server.fetches.fetch_add(1, Ordering::SeqCst);
    if server.failing.load(Ordering::SeqCst) {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let body = serde_json::to_string(&server.keys.lock().expect("lock").to_jwks()).expect("json");
    // No keep-alive: once the server task is stopped, the endpoint is really gone.
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONNECTION, "close"),
        ],
        body,
    )
        .into_response()
}

/// Starts a JWKS server publishing `keys`; returns it, its URL and its task.
async fn jwks_server(keys: &[&SigningKey]) -> (JwksServer, String, tokio::task::JoinHandle<()>) {
    let server = JwksServer::default();
    server.publish(key_set(keys));
    let router = Router::new()
        .route("/.well-known/tollgate-edge-jwks.json", get(jwks))
        .with_state(server.clone());
    let (base, task) = helpers::serve(router).await;
    (
        server,
        format!("{base}/.well-known/tollgate-edge-jwks.json"),
        task,
    )
}

fn options(ttl_ms: u64, min_refetch_ms: u64) -> RemoteOptions {
    RemoteOptions {
        ttl: Duration::from_millis(ttl_ms),
        min_refetch: Duration::from_millis(min_refetch_ms),
        timeout: Duration::from_millis(500),
    }
}

async fn upstream(jwks_url: &str, options: RemoteOptions) -> String {
    let edge = EdgeVerifier::remote(ISSUER, AUDIENCE, jwks_url, options);
    helpers::serve(helpers::app(edge)).await.0
}

async fn status_with(base: &str, signer: &SigningKey) -> (u16, serde_json::Value) {
    let token = claims("GET", "/api/notes/1").sign(signer);
    call(base, "GET", "/api/notes/1", &[&token]).await
}

#[tokio::test]
async fn keys_are_fetched_once_and_then_served_from_the_cache() {
    let (server, url, _task) = jwks_server(&[&key("e1", 1)]).await;
    let base = upstream(&url, options(60_000, 60_000)).await;
    for _ in 0..5 {
        assert_eq!(status_with(&base, &key("e1", 1)).await.0, 200);
    }
    assert_eq!(server.fetches(), 1);
}

#[tokio::test]
async fn a_flood_of_made_up_kids_costs_at_most_one_fetch_per_min_refetch() {
    let (server, url, _task) = jwks_server(&[&key("e1", 1)]).await;
    let base = upstream(&url, options(60_000, 60_000)).await;
    // 100 concurrent requests, each naming a kid nobody published, on a verifier that has not
    // fetched yet: one fetch in all (concurrent misses wait for it), and every one refused.
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..100 {
        let base = base.clone();
        flood.spawn(async move {
            let (status, body) = status_with(&base, &key(&format!("made-up-{i}"), 1)).await;
            refusal_code(status, &body)
        });
    }
    let codes = flood.join_all().await;
    assert_eq!(codes.len(), 100);
    assert!(codes.iter().all(|c| c == "assertion_invalid"), "{codes:?}");
    assert_eq!(server.fetches(), 1);
    // The keys that fetch brought still verify, without another fetch.
    assert_eq!(status_with(&base, &key("e1", 1)).await.0, 200);
    assert_eq!(server.fetches(), 1);
}

#[tokio::test]
async fn a_key_published_later_is_picked_up_for_its_kid_after_min_refetch() {
    let (server, url, _task) = jwks_server(&[&key("e1", 1)]).await;
    let base = upstream(&url, options(60_000, 200)).await;
    assert_eq!(status_with(&base, &key("e1", 1)).await.0, 200);
    assert_eq!(server.fetches(), 1);
    // The edge rotates: its new key is published next to the old one.
    server.publish(key_set(&[&key("e1", 1), &key("e2", 2)]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = status_with(&base, &key("e2", 2)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.fetches(), 2);
    // The old key still verifies, from the refreshed cache.
    assert_eq!(status_with(&base, &key("e1", 1)).await.0, 200);
    assert_eq!(server.fetches(), 2);
}

#[tokio::test]
async fn a_retired_key_stops_verifying_once_the_cache_expires() {
    let (server, url, _task) = jwks_server(&[&key("e1", 1)]).await;
    let base = upstream(&url, options(200, 200)).await;
    assert_eq!(status_with(&base, &key("e1", 1)).await.0, 200);
    server.publish(key_set(&[&key("e2", 2)]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = status_with(&base, &key("e1", 1)).await;
    assert_eq!(refusal_code(status, &body), "assertion_invalid");
    assert_eq!(status_with(&base, &key("e2", 2)).await.0, 200);
}

#[tokio::test]
async fn with_the_jwks_server_down_known_kids_verify_and_unknown_ones_are_refused() {
    let (server, url, task) = jwks_server(&[&key("e1", 1)]).await;
    let base = upstream(&url, options(200, 200)).await;
    assert_eq!(status_with(&base, &key("e1", 1)).await.0, 200);
    assert_eq!(server.fetches(), 1);
    task.abort();
    let _ = task.await;
    // Past the TTL and past `min_refetch`: a refetch is due and fails.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = status_with(&base, &key("e1", 1)).await;
    assert_eq!(status, 200, "a known kid must keep verifying: {body}");
    let (status, body) = status_with(&base, &key("e2", 2)).await;
    assert_eq!(refusal_code(status, &body), "assertion_invalid");
    assert_eq!(server.fetches(), 1, "the stopped server answered");
}

#[tokio::test]
async fn while_fetches_fail_a_flood_still_costs_one_fetch_per_min_refetch() {
    let (server, url, _task) = jwks_server(&[&key("e1", 1)]).await;
    server.failing.store(true, Ordering::SeqCst);
    let base = upstream(&url, options(60_000, 60_000)).await;
    for i in 0..20 {
        let (status, body) = status_with(&base, &key(&format!("made-up-{i}"), 1)).await;
        assert_eq!(refusal_code(status, &body), "assertion_invalid");
    }
    let (status, body) = status_with(&base, &key("e1", 1)).await;
    assert_eq!(refusal_code(status, &body), "assertion_invalid");
    assert_eq!(server.fetches(), 1);
}

#[tokio::test]
async fn with_the_jwks_server_down_from_the_start_everything_is_refused() {
    let (_server, url, task) = jwks_server(&[&key("e1", 1)]).await;
    task.abort();
    let _ = task.await;
    let base = upstream(&url, options(200, 200)).await;
    let (status, body) = status_with(&base, &key("e1", 1)).await;
    assert_eq!(refusal_code(status, &body), "assertion_invalid");
}
