//! Key rotation: a generated key is published before it signs, a due key signs by itself, a
//! retired key verifies until its tokens have expired, and a running origin follows the CLI's
//! changes to the key file without a restart.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::Value;
use tollgate_origin::domain::now;
use tollgate_origin::keyring::{self, KeyState};

use crate::both_backends;
use crate::helpers::{spawn_app_with, Backend, TestApp};

both_backends!(
    a_generated_key_is_published_before_it_signs_and_signs_once_activated,
    a_due_key_starts_signing_by_itself_and_old_tokens_keep_verifying,
    a_retired_keys_tokens_work_until_they_expire_then_it_leaves_the_jwks,
    the_running_server_picks_up_a_cli_change_without_a_restart,
    concurrent_cli_writes_never_tear_the_file_under_a_reading_server,
    with_jwt_secret_rotation_changes_nothing_but_the_published_keys,
    a_broken_key_file_leaves_the_keys_in_force,
);

/// How long a poll waits for something the server does by itself.
const PATIENCE: Duration = Duration::from_secs(20);

/// The `kid` of a token's header.
fn kid_of(token: &str) -> String {
    let header = token.split('.').next().expect("header segment");
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("json");
    header["kid"].as_str().expect("kid").to_owned()
}

/// The kids of `GET /.well-known/jwks.json` and its `Cache-Control`.
async fn jwks(app: &TestApp) -> (Vec<String>, String) {
    let r = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let cache = r
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = r.json().await.expect("json");
    let kids = body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect();
    (kids, cache)
}

/// Runs the real `tollgate-origin keys …` against the app's key file, with the app's settings.
async fn keys_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let s = &app.state.settings;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tollgate-origin"));
    cmd.arg("keys")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KEYS_FILE", &s.keys_file)
        .env("KEY_PUBLISH_SECS", s.key_publish.to_string())
        .env("KEYS_RELOAD_SECS", s.keys_reload.to_string())
        .env("ACCESS_TOKEN_TTL_SECS", s.access_ttl.to_string())
        .current_dir(std::env::temp_dir());
    cmd.output().await.expect("the origin binary runs")
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "CLI failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every `private` seed in the key file.
fn private_seeds(app: &TestApp) -> Vec<String> {
    let text = std::fs::read_to_string(&app.state.settings.keys_file).expect("key file");
    let file: Value = serde_json::from_str(&text).expect("json");
    file["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["private"].as_str().expect("private").to_owned())
        .collect()
}

/// The state `keys list` prints for `kid`.
fn listed_state<'a>(list: &'a str, kid: &str) -> &'a str {
    list.lines()
        .find(|l| l.starts_with(kid))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("{kid} not in {list}"))
}

async fn a_generated_key_is_published_before_it_signs_and_signs_once_activated(b: Backend) {
    let app = spawn_app_with(
        b,
        &[("KEY_PUBLISH_SECS", "3600"), ("KEYS_RELOAD_SECS", "0")],
    )
    .await;
    let (kids, cache) = jwks(&app).await;
    assert_eq!(cache, "public, max-age=300");
    let [old] = kids.as_slice() else {
        panic!("one key at first: {kids:?}")
    };
    let email = app.new_user().await;
    let t1 = app.login(&email, "d1").await;
    assert_eq!(&kid_of(&t1.access), old);

    let new = stdout(&keys_cli(&app, &["generate"]).await)
        .trim()
        .to_owned();
    assert!(new.starts_with("ed25519-") && new != *old, "{new}");
    // Published at once, but an hour from signing.
    assert_eq!(jwks(&app).await.0, [old.clone(), new.clone()]);
    let t2 = app.login(&email, "d2").await;
    assert_eq!(&kid_of(&t2.access), old);
    let list = keys_cli(&app, &["list"]).await;
    let text = stdout(&list);
    assert_eq!(listed_state(&text, old), "signing");
    assert_eq!(listed_state(&text, &new), "next");
    let printed = format!("{text}{}", String::from_utf8_lossy(&list.stderr));
    for seed in private_seeds(&app) {
        assert!(!printed.contains(&seed), "keys list printed a private key");
        assert!(
            !printed.contains(&seed[..16]),
            "keys list printed part of a private key"
        );
    }

    stdout(&keys_cli(&app, &["activate", &new]).await);
    let t3 = app.login(&email, "d3").await;
    assert_eq!(kid_of(&t3.access), new);
    stdout(&keys_cli(&app, &["retire", old]).await);
    // The retired key's tokens keep verifying; it stays published.
    for t in [&t1, &t2, &t3] {
        assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
    }
    assert_eq!(jwks(&app).await.0, [old.clone(), new.clone()]);
    let text = stdout(&keys_cli(&app, &["list"]).await);
    assert_eq!(listed_state(&text, old), "retiring");
    assert_eq!(listed_state(&text, &new), "signing");
    // The only signer cannot be retired.
    let refused = keys_cli(&app, &["retire", &new]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only key that signs"));
    assert_eq!(kid_of(&app.login(&email, "d4").await.access), new);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&app.state.settings.keys_file)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

async fn a_due_key_starts_signing_by_itself_and_old_tokens_keep_verifying(b: Backend) {
    let app = spawn_app_with(b, &[("KEY_PUBLISH_SECS", "1"), ("KEYS_RELOAD_SECS", "0")]).await;
    let path = &app.state.settings.keys_file;
    let times = app.state.keys.times();
    let email = app.new_user().await;
    let t1 = app.login(&email, "d1").await;
    let old = kid_of(&t1.access);
    let new = keyring::generate(path, times, now()).expect("generated");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let t2 = loop {
        let t = app.login(&email, "d2").await;
        if kid_of(&t.access) == new {
            break t;
        }
        assert_eq!(kid_of(&t.access), old);
        assert!(tokio::time::Instant::now() < deadline, "{new} never signed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(app.me_status(&t1.access).await.0, StatusCode::OK);
    keyring::retire(path, &old, now()).expect("retired");
    assert_eq!(app.me_status(&t1.access).await.0, StatusCode::OK);
    assert_eq!(app.me_status(&t2.access).await.0, StatusCode::OK);
    assert_eq!(kid_of(&app.login(&email, "d3").await.access), new);
}

async fn a_retired_keys_tokens_work_until_they_expire_then_it_leaves_the_jwks(b: Backend) {
    let app = spawn_app_with(
        b,
        &[
            ("ACCESS_TOKEN_TTL_SECS", "2"),
            ("KEY_PUBLISH_SECS", "3600"),
            ("KEYS_RELOAD_SECS", "0"),
        ],
    )
    .await;
    let path = &app.state.settings.keys_file;
    let times = app.state.keys.times();
    let email = app.new_user().await;
    let t1 = app.login(&email, "d1").await;
    let old = kid_of(&t1.access);
    let new = keyring::generate(path, times, now()).expect("generated");
    keyring::activate(path, &new, now()).expect("activated");
    let retired_at = now();
    keyring::retire(path, &old, retired_at).expect("retired");
    assert_eq!(app.me_status(&t1.access).await.0, StatusCode::OK);
    // Until it expires: then it is refused for its age, not its signature, since the key still
    // verifies.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match app.me_status(&t1.access).await {
            (StatusCode::OK, _) => {}
            (_, code) => {
                assert_eq!(code, "token_expired");
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(jwks(&app).await.0, [old.clone(), new.clone()]);
    // The running keyring drops it exactly when its last token and the leeway are over.
    let gone = retired_at + times.linger;
    let kids_at = |t: i64| -> (Vec<String>, bool) {
        let view = app.state.keys.view_at(t);
        let kids = view.jwks().keys.into_iter().map(|k| k.kid).collect();
        (kids, view.verifying.get(&old).is_some())
    };
    assert!(
        gone >= retired_at + 2 + 30,
        "linger covers the lifetime and leeway"
    );
    assert_eq!(kids_at(gone - 1), (vec![old.clone(), new.clone()], true));
    assert_eq!(kids_at(gone), (vec![new.clone()], false));
    assert!(keyring::prune(path, times, gone - 1)
        .expect("prune")
        .is_empty());
    assert_eq!(
        keyring::prune(path, times, gone).expect("prune"),
        vec![old.clone()]
    );
    assert_eq!(jwks(&app).await.0, vec![new.clone()]);
    let state = keyring::list(path, times, now()).expect("list");
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].state, KeyState::Signing);
}

async fn the_running_server_picks_up_a_cli_change_without_a_restart(b: Backend) {
    let app = spawn_app_with(b, &[("KEY_PUBLISH_SECS", "60"), ("KEYS_RELOAD_SECS", "1")]).await;
    let (kids, cache) = jwks(&app).await;
    assert_eq!(cache, "public, max-age=20");
    let new = stdout(&keys_cli(&app, &["generate"]).await)
        .trim()
        .to_owned();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !jwks(&app).await.0.contains(&new) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{new} never published"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let email = app.new_user().await;
    let t1 = app.login(&email, "d1").await;
    assert_eq!(
        kid_of(&t1.access),
        kids[0],
        "signs only after KEY_PUBLISH_SECS"
    );
    stdout(&keys_cli(&app, &["activate", &new]).await);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while kid_of(&app.login(&email, "d").await.access) != new {
        assert!(tokio::time::Instant::now() < deadline, "{new} never signed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.me_status(&t1.access).await.0, StatusCode::OK);
}

async fn concurrent_cli_writes_never_tear_the_file_under_a_reading_server(b: Backend) {
    const WRITERS: usize = 2;
    const WRITES: usize = 60;
    let app = spawn_app_with(
        b,
        &[("KEY_PUBLISH_SECS", "3600"), ("KEYS_RELOAD_SECS", "0")],
    )
    .await;
    let path = app.state.settings.keys_file.clone();
    let times = app.state.keys.times();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                for _ in 0..WRITES {
                    keyring::generate(&path, times, now()).expect("generate");
                }
            })
        })
        .collect();
    let reader = {
        let (path, done) = (path.clone(), done.clone());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            loop {
                let keys = keyring::list(&path, times, now())
                    .unwrap_or_else(|e| panic!("read {reads} saw a broken file: {e:#}"));
                assert!(!keys.is_empty());
                reads += 1;
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
            }
        })
    };
    // The server reads the file on every sign and verify meanwhile.
    let email = app.new_user().await;
    let t = app.login(&email, "d").await;
    loop {
        assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
        assert!(!jwks(&app).await.0.is_empty());
        if writers.iter().all(|w| w.is_finished()) {
            break;
        }
    }
    for w in writers {
        w.join().expect("writer");
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.join().expect("the reader never saw a broken file");
    // No write lost another's key.
    let keys = keyring::list(&path, times, now()).expect("list");
    assert_eq!(keys.len(), 1 + WRITERS * WRITES);
    assert_eq!(jwks(&app).await.0.len(), 1 + WRITERS * WRITES);
    assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
}

async fn with_jwt_secret_rotation_changes_nothing_but_the_published_keys(b: Backend) {
    let secret = format!("jwt-secret-{}", uuid::Uuid::new_v4().simple());
    let app = spawn_app_with(
        b,
        &[
            ("JWT_SECRET", secret.as_str()),
            ("KEY_PUBLISH_SECS", "3600"),
            ("KEYS_RELOAD_SECS", "0"),
        ],
    )
    .await;
    let path = &app.state.settings.keys_file;
    let times = app.state.keys.times();
    let email = app.new_user().await;
    let t1 = app.login(&email, "d1").await;
    let hs256 = kid_of(&t1.access);
    assert!(
        jwks(&app).await.0.is_empty(),
        "the HMAC secret is never published"
    );
    let first = keyring::generate(path, times, now()).expect("generated");
    let second = keyring::generate(path, times, now()).expect("generated");
    keyring::activate(path, &second, now()).expect("activated");
    let t2 = app.login(&email, "d2").await;
    assert_eq!(kid_of(&t2.access), hs256);
    assert_eq!(jwks(&app).await.0, [first, second]);
    for t in [&t1, &t2] {
        assert_eq!(app.me_status(&t.access).await.0, StatusCode::OK);
    }
}

async fn a_broken_key_file_leaves_the_keys_in_force(b: Backend) {
    let app = spawn_app_with(
        b,
        &[("KEY_PUBLISH_SECS", "3600"), ("KEYS_RELOAD_SECS", "0")],
    )
    .await;
    let path = &app.state.settings.keys_file;
    let email = app.new_user().await;
    let t1 = app.login(&email, "d1").await;
    let good = std::fs::read(path).expect("key file");
    let signer = kid_of(&t1.access);
    // Half a file, then a file whose only key is retired: neither is taken.
    std::fs::write(path, &good[..good.len() / 2]).expect("write");
    assert_eq!(app.me_status(&t1.access).await.0, StatusCode::OK);
    assert_eq!(kid_of(&app.login(&email, "d2").await.access), signer);
    let mut retired: Value = serde_json::from_slice(&good).expect("json");
    retired["keys"][0]["retired_at"] = now().into();
    std::fs::write(path, serde_json::to_vec(&retired).expect("json")).expect("write");
    assert_eq!(kid_of(&app.login(&email, "d3").await.access), signer);
    assert_eq!(jwks(&app).await.0, vec![signer.clone()]);
    // A good file again is followed.
    std::fs::write(path, &good).expect("write");
    let new = keyring::generate(path, app.state.keys.times(), now()).expect("generated");
    assert_eq!(jwks(&app).await.0, [signer, new]);
}
