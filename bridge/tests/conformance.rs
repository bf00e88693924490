//! The official `@upstash/redis` client, on its defaults, against the bridge: runs
//! `bridge/conformance/upstash-client.mjs` under Node with the client that
//! `scripts/edge-tools.sh` installs into `.tools/node/node_modules`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tollgate_rest_bridge::{spawn, Config, Token};

/// How many checks `upstash-client.mjs` defines. All must run and pass — the read-only one runs
/// only when its token is set — so a check that silently stops running (or a script cut short)
/// fails here instead of shrinking the count. Update it together with the script.
const CHECKS: usize = 20;

#[tokio::test(flavor = "multi_thread")]
async fn official_upstash_client_passes_against_the_bridge() {
    let bridge_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = bridge_dir
        .parent()
        .expect("bridge/ has a parent")
        .to_path_buf();
    let node_modules = repo.join(".tools/node/node_modules");
    assert!(
        node_modules.join("@upstash/redis/package.json").is_file(),
        "@upstash/redis is missing from {}: run scripts/edge-tools.sh first",
        node_modules.display()
    );

    let id = uuid::Uuid::new_v4();
    let (token, readonly_token) = (format!("full-{id}"), format!("ro-{id}"));
    let mut config = Config::new("redis://127.0.0.1:6379", Token::new(&token));
    config.readonly_token = Some(Token::new(&readonly_token));
    let bridge = spawn(config).await.expect("bridge starts");

    let run = tokio::process::Command::new("node")
        .arg(bridge_dir.join("conformance/upstash-client.mjs"))
        .env("NODE_PATH", &node_modules)
        .env("UPSTASH_REDIS_REST_URL", bridge.url())
        .env("UPSTASH_REDIS_REST_TOKEN", &token)
        .env("UPSTASH_REDIS_REST_READONLY_TOKEN", &readonly_token)
        .env("BRIDGE_TEST_PREFIX", format!("bridgetest:{id}:"))
        .current_dir(&repo)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("node finished within 120 s")
        .expect("node runs (Node.js must be installed)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "conformance script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert_eq!(
        summary,
        format!("{CHECKS} passed, 0 failed"),
        "unexpected summary\n{stdout}"
    );
    let passed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ok - ")).collect();
    assert_eq!(
        passed.len(),
        CHECKS,
        "checks that ran and passed: {passed:#?}"
    );
}
