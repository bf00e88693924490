//! The Worker's structured log (issue 12 §2), read from what `wrangler dev` printed for the real
//! workerd: exactly one JSON line per request the edge refuses or fails, with the right code and
//! never a token; none for a request it forwarded.

use reqwest::StatusCode;
use serde_json::Value;
use tollgate_tests::Stack;

/// The same token with one payload character changed: refused on its signature.
fn forge(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let payload = &mut parts[1];
    let mid = payload.len() / 2;
    let c = if payload.as_bytes()[mid] == b'A' {
        "B"
    } else {
        "A"
    };
    payload.replace_range(mid..=mid, c);
    parts.join(".")
}

fn assert_no_secret(log: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!log.contains(secret), "the log holds a secret");
        for part in secret.split('.').filter(|p| p.len() >= 16) {
            assert!(!log.contains(part), "the log holds part of a token: {part}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_logs_one_json_line_with_its_code_and_a_success_logs_none() {
    let stack = Stack::start().await;
    // Registration, login and a protected call that passes: forwarded, so no line at all.
    let email = stack.new_user().await;
    let tokens = stack.login(&email, "logs").await;
    let (status, body) = stack.me(&tokens.access).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = stack
        .client
        .get(stack.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(r.status(), StatusCode::OK);

    // A forged token: refused at the edge after its signature check.
    let forged = forge(&tokens.access);
    let r = stack.get_auth("/api/users/me", &forged).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let lines = stack.edge.wait_for_worker_log(1).await;
    assert_eq!(
        lines.len(),
        1,
        "want one line, for the refusal only: {lines:?}"
    );
    let line = &lines[0];
    assert_eq!(line["level"], "warn");
    assert_eq!(line["code"], "token_signature");
    assert_eq!(line["status"], 401);
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/api/users");
    assert_eq!(line["upstream"], "origin");
    assert!(line["ms"].is_u64(), "{line}");

    // Logged out: the next call is refused as revoked, one more line.
    let r = stack.post_auth("/api/users/logout", &tokens.access).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = stack.get_auth("/api/users/me", &tokens.access).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A path no route owns: 404 at the edge, with no route or upstream to name.
    let r = stack
        .client
        .get(stack.url("/nowhere/at/all"))
        .send()
        .await
        .expect("404");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let lines = stack.edge.wait_for_worker_log(3).await;
    let codes: Vec<&Value> = lines.iter().map(|l| &l["code"]).collect();
    assert_eq!(
        codes,
        ["token_signature", "token_revoked", "not_found"],
        "{lines:?}"
    );
    assert_eq!(lines[2]["route"], Value::Null);
    assert_eq!(lines[2]["status"], 404);

    assert_no_secret(
        &stack.edge.log_text(),
        &[
            &tokens.access,
            &forged,
            &tokens.refresh,
            stack.bridge.edge_token(),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_logs_one_error_line_with_its_cause() {
    let mut stack = Stack::start().await;
    let email = stack.new_user().await;
    let tokens = stack.login(&email, "logs").await;
    stack.bridge.stop().await;
    let r = stack.get_auth("/api/users/me", &tokens.access).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let lines = stack.edge.wait_for_worker_log(1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["level"], "error");
    assert_eq!(lines[0]["code"], "unavailable");
    assert_eq!(lines[0]["status"], 503);
    assert_eq!(lines[0]["upstream"], "origin");
    assert!(
        lines[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Upstash")),
        "{lines:?}"
    );
    assert_no_secret(&stack.edge.log_text(), &[&tokens.access, &tokens.refresh]);
}

/// A public route's upstream that cannot be reached: the JS entry forwarded it, so the 502 and
/// its log line come from the entry's failure path, and read like the full handler's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_public_upstream_logs_one_error_line_naming_it() {
    let closed = tollgate_tests::free_port().expect("port");
    let stack = Stack::start_with(tollgate_tests::StackOptions::default(), |edge| {
        let to = format!("http://127.0.0.1:{closed}");
        edge.var(
            "TOLLGATE_ROUTES",
            tollgate_tests::stack::routes(&to, &to).to_string(),
        );
    })
    .await;
    // The stack's readiness probes of `/health` were answered (and logged) the same way.
    let before = stack.edge.wait_for_worker_log(1).await.len();
    let r = stack
        .client
        .get(stack.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let lines = stack.edge.wait_for_worker_log(before + 1).await;
    assert_eq!(lines.len(), before + 1, "{lines:?}");
    let line = &lines[before];
    assert_eq!(line["level"], "error");
    assert_eq!(line["code"], "unavailable");
    assert_eq!(line["status"], 502);
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/health");
    assert_eq!(line["upstream"], "origin");
    assert!(
        line["detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("upstream origin unreachable")),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_key_whose_x_is_not_its_d_fails_closed_and_says_so() {
    let other = tollgate_tests::EdgeKeys::generate("edge-test-1");
    let stack = Stack::start_with(tollgate_tests::StackOptions::default(), |edge| {
        let mine: Value = serde_json::from_str(&edge.secrets["EDGE_SIGNING_KEYS"]).expect("jwks");
        let theirs: Value = serde_json::from_str(&other.private_jwks).expect("jwks");
        let mut key = mine["keys"][0].clone();
        key["x"] = theirs["keys"][0]["x"].clone();
        edge.secret(
            "EDGE_SIGNING_KEYS",
            serde_json::json!({ "keys": [key] }).to_string(),
        );
    })
    .await;
    // A public route signs nothing and still works; a signed one cannot be served.
    let r = stack
        .client
        .get(stack.url("/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(r.status(), StatusCode::OK);
    let r = stack
        .post_json(
            "/api/users/login",
            &serde_json::json!({"email": "a@example.com", "password": "x", "device_name": "d"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let lines = stack.edge.wait_for_worker_log(1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["code"], "unavailable");
    assert_eq!(lines[0]["route"], "/api/users/login");
    let detail = lines[0]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("EDGE_SIGNING_KEYS: key edge-test-1: x does not match d"),
        "{detail}"
    );
    // The readiness probes and the /health above reach the origin; the login must not.
    assert!(
        stack.tap().last("/api/users/login").is_none(),
        "the origin saw the login"
    );
}
