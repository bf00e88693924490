//! Measures what the edge costs and how fast a revocation reaches it, on the same stack the
//! end-to-end tests use (origin + REST bridge over real Redis + the edge in `wrangler dev`),
//! without the recording tap.
//!
//! - Revocation propagation: time from a logout's response to the first 401 at the edge, over
//!   `TRIALS` fresh logins (each logout is one device's `POST /api/users/logout`).
//! - Edge added latency: `GET /api/users/me` via the edge vs straight to the origin, and the
//!   public pass-through `GET /health` likewise, over `SAMPLES` sequential requests each; plus a
//!   token with a forged signature, refused by the edge alone (full Ed25519 verification, no
//!   Redis, no origin), which isolates the edge's own cost.
//!
//! Run: `scripts/build-edge.sh && cargo run -p tollgate-tests --example edge_latency --release`
//! (`TRIALS` and `SAMPLES` environment variables override 50 and 300).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tollgate_tests::{Stack, StackOptions};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// p50 and p99 (nearest rank) in milliseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| {
        let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

async fn time_get(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    n: usize,
) -> Vec<Duration> {
    time_get_expecting(client, url, token, n, StatusCode::OK).await
}

async fn time_get_expecting(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    n: usize,
    expected: StatusCode,
) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let mut request = client.get(url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let started = Instant::now();
        let response = request.send().await.expect("request");
        let status = response.status();
        let _ = response.bytes().await;
        out.push(started.elapsed());
        assert_eq!(status, expected, "{url}");
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let trials = env_usize("TRIALS", 50);
    let samples = env_usize("SAMPLES", 300);
    let stack = Stack::start_with(
        StackOptions {
            tap: false,
            ..StackOptions::default()
        },
        |_| {},
    )
    .await;
    let client = &stack.client;
    let email = stack.new_user().await;

    // Revocation propagation.
    let mut propagation = Vec::with_capacity(trials);
    let mut max_attempts = 0;
    for i in 0..trials {
        let tokens = stack.login(&email, &format!("trial {i}")).await;
        let (status, _) = stack.me(&tokens.access).await;
        assert_eq!(status, StatusCode::OK);
        let r = stack.post_auth("/api/users/logout", &tokens.access).await;
        assert_eq!(r.status(), StatusCode::OK);
        let _ = r.bytes().await;
        let revoked_at = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let r = stack.get_auth("/api/users/me", &tokens.access).await;
            if r.status() == StatusCode::UNAUTHORIZED {
                break;
            }
            assert!(attempts < 10_000, "never refused");
        }
        propagation.push(revoked_at.elapsed());
        max_attempts = max_attempts.max(attempts);
    }

    // Added latency.
    let tokens = stack.login(&email, "latency").await;
    let me_edge = stack.url("/api/users/me");
    let me_origin = stack.origin.url("/api/users/me");
    let health_edge = stack.url("/health");
    let health_origin = stack.origin.url("/health");
    for url in [&me_edge, &me_origin] {
        time_get(client, url, Some(&tokens.access), 30).await;
    }
    for url in [&health_edge, &health_origin] {
        time_get(client, url, None, 30).await;
    }
    let mut via_edge = time_get(client, &me_edge, Some(&tokens.access), samples).await;
    let mut direct = time_get(client, &me_origin, Some(&tokens.access), samples).await;
    let mut public_edge = time_get(client, &health_edge, None, samples).await;
    let mut public_direct = time_get(client, &health_origin, None, samples).await;
    let forged = forge(&stack, &tokens.access);
    let mut refused = time_get_expecting(
        client,
        &me_edge,
        Some(&forged),
        samples,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let (pp50, pp99) = percentiles(&mut propagation);
    let (e50, e99) = percentiles(&mut via_edge);
    let (d50, d99) = percentiles(&mut direct);
    let (pe50, pe99) = percentiles(&mut public_edge);
    let (pd50, pd99) = percentiles(&mut public_direct);
    let (r50, r99) = percentiles(&mut refused);
    println!("revocation propagation, logout response -> first 401 at the edge ({trials} trials):");
    println!(
        "  p50 {pp50:.2} ms   p99 {pp99:.2} ms   (max requests until refused: {max_attempts})"
    );
    println!("protected GET /api/users/me ({samples} sequential requests each):");
    println!("  via edge   p50 {e50:.2} ms   p99 {e99:.2} ms");
    println!("  direct     p50 {d50:.2} ms   p99 {d99:.2} ms");
    println!(
        "  added      p50 {:.2} ms   p99 {:.2} ms",
        e50 - d50,
        e99 - d99
    );
    println!("public GET /health pass-through ({samples} sequential requests each):");
    println!("  via edge   p50 {pe50:.2} ms   p99 {pe99:.2} ms");
    println!("  direct     p50 {pd50:.2} ms   p99 {pd99:.2} ms");
    println!(
        "  added      p50 {:.2} ms   p99 {:.2} ms",
        pe50 - pd50,
        pe99 - pd99
    );
    println!("forged signature, refused by the edge alone ({samples} sequential requests):");
    println!("  via edge   p50 {r50:.2} ms   p99 {r99:.2} ms");
}

/// The same header and claims as `access`, signed by a key that is not the origin's (same kid).
fn forge(stack: &Stack, access: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let payload = access.split('.').nth(1).unwrap_or_default();
    let claims: tollgate_shared::AccessClaims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap_or_default())
            .expect("claims");
    tollgate_shared::jwt::SigningKey::EdDSA {
        kid: stack.origin.state.keys.view().signing.kid().to_owned(),
        key: ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]),
    }
    .sign(&claims)
}
