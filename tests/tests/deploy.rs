//! The deployed environments of `wrangler.toml` (`[env.staging]`, `[env.production]`), each run
//! in workerd exactly as configured — no `--var` overrides — with only the secrets DEPLOY.md has
//! operators put. wrangler does not inherit `vars` into environments, so this is where a var left
//! out of an env, a route table that does not parse or an `http://` URL shows: the edge would
//! answer every request with 503. Nothing here contacts an upstream (their hosts are
//! placeholders): every request is answered by the edge itself.

use reqwest::StatusCode;
use serde_json::Value;
use tollgate_shared::assertion::JWKS_PATH;
use tollgate_tests::{Edge, EdgeConfig, EdgeKeys};

const DEPLOY_ENVS: [&str; 2] = ["staging", "production"];

/// `[env.NAME]` with the two required secrets of DEPLOY.md.
fn deployed(env: &str, keys: &EdgeKeys) -> EdgeConfig {
    let mut config = EdgeConfig::default();
    config
        .wrangler_env(env)
        .secret("UPSTASH_REDIS_REST_TOKEN", "a-read-only-token")
        .secret("EDGE_SIGNING_KEYS", &keys.private_jwks);
    config
}

async fn get(edge: &Edge, path: &str) -> (StatusCode, Value) {
    let r = reqwest::get(edge.url(path)).await.expect("edge answers");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_deploy_env_configures_the_edge_from_its_own_vars_and_the_documented_secrets() {
    for env in DEPLOY_ENVS {
        let keys = EdgeKeys::generate(&format!("{env}-edge-1"));
        let edge = Edge::start(&deployed(env, &keys))
            .await
            .expect("wrangler dev --env");

        // Served by the edge once its whole configuration has loaded: the published key is the
        // secret's public half.
        let (status, body) = get(&edge, JWKS_PATH).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{env}: {body}\n{}",
            edge.log_tail(20)
        );
        let public: Value = serde_json::from_str(&keys.public_jwks).expect("public JWKS");
        assert_eq!(body["keys"][0]["kid"], public["keys"][0]["kid"], "{env}");
        assert_eq!(body["keys"][0]["x"], public["keys"][0]["x"], "{env}");
        assert!(
            body["keys"][0].get("d").is_none(),
            "{env}: private half published"
        );

        // The env's route table loaded: a path no route owns is the edge's own 404. (Nothing
        // protected is asked: with JWKS_URL the edge would fetch the origin's JWKS first, and
        // these hosts are placeholders on the public internet.)
        let (status, body) = get(&edge, "/nowhere").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{env}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{env}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_env_without_its_signing_key_secret_fails_closed_and_names_it() {
    let keys = EdgeKeys::generate("staging-edge-1");
    let mut config = deployed("staging", &keys);
    config.without_secret("EDGE_SIGNING_KEYS");
    let edge = Edge::start(&config).await.expect("wrangler dev --env");
    let (status, body) = get(&edge, JWKS_PATH).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let (status, _) = get(&edge, "/nowhere").await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "nothing is served half-configured"
    );
    // The log names the variable, never a value.
    let mut named = false;
    for _ in 0..50 {
        if edge.log_tail(50).contains("EDGE_SIGNING_KEYS") {
            named = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(named, "{}", edge.log_tail(50));
}
