//! Origin key rotation while load runs through the edge: the edge learns keys from the origin's
//! `JWKS_URL` (no static copy, no redeploy, no secret change), the origin publishes a new key
//! before it signs with it and keeps a retired one verifying until its tokens expire.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tollgate_origin::keyring::{self, KeyTimes};
use tollgate_tests::stack::PASSWORD;
use tollgate_tests::{Stack, StackOptions, Tokens};

fn now() -> i64 {
    tollgate_origin::domain::now()
}

/// The `kid` an access token was signed with.
fn kid_of(access: &str) -> String {
    let header = access.split('.').next().unwrap_or_default();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap_or_default())
        .unwrap_or(Value::Null);
    header["kid"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_under_load_through_the_edge_fails_no_request() {
    let options = StackOptions {
        origin_env: vec![
            ("KEY_PUBLISH_SECS", "4".into()),
            ("KEYS_RELOAD_SECS", "1".into()),
        ],
        ..StackOptions::default()
    };
    let stack = Stack::start_with(
        StackOptions {
            jwks_url: true,
            ..options
        },
        |_| {},
    )
    .await;
    let client = stack.client.clone();
    let base = stack.edge.base.clone();
    let old_kid = stack.origin.state.keys.view().signing.kid().to_owned();

    // Load: each worker logs in, calls the origin and the echo upstream, refreshes, calls again.
    let failures = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let new_kid_seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let deadline = Instant::now() + Duration::from_secs(14);
    let mut workers = Vec::new();
    for w in 0..3 {
        let (client, base) = (client.clone(), base.clone());
        let (failures, requests, kids) = (failures.clone(), requests.clone(), new_kid_seen.clone());
        workers.push(tokio::spawn(async move {
            let email = format!("rot-{w}-{}@example.com", uuid::Uuid::new_v4().simple());
            let ok = |status: StatusCode| status.is_success();
            let post =
                |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();
            let r = post(
                "/api/users/register",
                json!({"email": email, "password": PASSWORD}),
            )
            .await
            .expect("register");
            assert_eq!(r.status(), StatusCode::CREATED);
            let failed = |what: &str, status: StatusCode, body: String| {
                failures.fetch_add(1, Ordering::Relaxed);
                eprintln!("worker {w}: {what} answered {status}: {body}");
            };
            while Instant::now() < deadline {
                let r = post(
                    "/api/users/login",
                    json!({"email": email, "password": PASSWORD, "device_name": "load"}),
                )
                .await
                .expect("login");
                requests.fetch_add(1, Ordering::Relaxed);
                let status = r.status();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                if !ok(status) {
                    failed("login", status, body.to_string());
                    continue;
                }
                let tokens = Tokens::from_body(&body);
                kids.lock().expect("lock").push(kid_of(&tokens.access));
                for path in ["/api/users/me", "/api/echo/x"] {
                    let r = client
                        .get(format!("{base}{path}"))
                        .bearer_auth(&tokens.access)
                        .send()
                        .await
                        .expect("call");
                    requests.fetch_add(1, Ordering::Relaxed);
                    if !ok(r.status()) {
                        let status = r.status();
                        failed(path, status, r.text().await.unwrap_or_default());
                    }
                }
                let r = post(
                    "/api/users/refresh",
                    json!({"refresh_token": tokens.refresh}),
                )
                .await
                .expect("refresh");
                requests.fetch_add(1, Ordering::Relaxed);
                let status = r.status();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                if !ok(status) {
                    failed("refresh", status, body.to_string());
                    continue;
                }
                let rotated = Tokens::from_body(&body);
                let r = client
                    .get(format!("{base}/api/echo/y"))
                    .bearer_auth(&rotated.access)
                    .send()
                    .await
                    .expect("call");
                requests.fetch_add(1, Ordering::Relaxed);
                if !ok(r.status()) {
                    let status = r.status();
                    failed(
                        "echo after refresh",
                        status,
                        r.text().await.unwrap_or_default(),
                    );
                }
                let _ = client
                    .post(format!("{base}/api/users/logout"))
                    .bearer_auth(&rotated.access)
                    .send()
                    .await;
            }
        }));
    }

    // The rotation, through the library the CLI runs, on the running origin's key file.
    let path = stack.origin.keys_file.clone();
    let times = KeyTimes::from_settings(&stack.origin.state.settings);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let new_kid = keyring::generate(&path, times, now()).expect("keys generate");
    // Published at once, signing only after KEY_PUBLISH_SECS (4 s) — by then the edge, which
    // caches the JWKS for 2 s, has it.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let signing = stack.origin.state.keys.view().signing.kid().to_owned();
    assert_eq!(
        signing, new_kid,
        "the new key did not start signing by itself"
    );
    keyring::retire(&path, &old_kid, now()).expect("keys retire");

    for w in workers {
        w.await.expect("worker");
    }
    let total = requests.load(Ordering::Relaxed);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "requests failed during the rotation (of {total})"
    );
    let kids = new_kid_seen.lock().expect("lock").clone();
    assert!(kids.contains(&old_kid), "no load before the rotation");
    assert!(
        kids.contains(&new_kid),
        "no token signed by the new key went through the edge"
    );
    assert!(total > 30, "too little load to prove anything: {total}");
}
