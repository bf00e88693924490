//! The running binary never writes a secret to its logs, even at debug level.

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{redis_url, Tokens, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs() {
    let dir = std::env::temp_dir().join(format!("tollgate-logs-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let jwt_secret = format!("jwt-secret-{}", uuid::Uuid::new_v4().simple());
    let log_path = dir.join("origin.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate-origin"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.join("db.sqlite").display()),
        )
        .env("REDIS_URL", redis_url())
        .env(
            "REDIS_KEY_PREFIX",
            format!("logs-{}:", uuid::Uuid::new_v4().simple()),
        )
        .env("KEYS_FILE", dir.join("keys.json"))
        .env("JWT_SECRET", &jwt_secret)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("origin binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "origin binary did not become ready");

    let email = format!("logs-{}@example.com", uuid::Uuid::new_v4().simple());
    let post = |path: &str, body: serde_json::Value| {
        client.post(format!("{base}{path}")).json(&body).send()
    };
    assert_eq!(
        post(
            "/api/users/register",
            json!({"email": email, "password": PASSWORD})
        )
        .await
        .expect("r")
        .status(),
        StatusCode::CREATED
    );
    let wrong = post(
        "/api/users/login",
        json!({"email": email, "password": "wrong-password-123"}),
    )
    .await
    .expect("r");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let r = post(
        "/api/users/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await
    .expect("r");
    let first = Tokens::from_body(&r.json().await.expect("json"));
    let r = post(
        "/api/users/refresh",
        json!({"refresh_token": first.refresh}),
    )
    .await
    .expect("r");
    let second = Tokens::from_body(&r.json().await.expect("json"));
    // A replay (reuse detection logs a warning) and a protected call with a revoked token.
    post(
        "/api/users/refresh",
        json!({"refresh_token": first.refresh}),
    )
    .await
    .expect("r");
    client
        .get(format!("{base}/api/users/me"))
        .bearer_auth(&first.access)
        .send()
        .await
        .expect("r");
    client
        .post(format!("{base}/api/users/logout"))
        .bearer_auth(&second.access)
        .send()
        .await
        .expect("r");

    let _ = child.kill();
    let _ = child.wait();
    let logs = std::fs::read_to_string(&log_path).expect("logs");
    assert!(
        logs.contains("\"level\":\"DEBUG\"") || logs.contains("DEBUG"),
        "debug logging was not on"
    );
    assert!(
        logs.contains("login"),
        "the logs say nothing about the login: {logs}"
    );
    let secrets = [
        PASSWORD,
        "wrong-password-123",
        jwt_secret.as_str(),
        first.access.as_str(),
        first.refresh.as_str(),
        second.access.as_str(),
        second.refresh.as_str(),
    ];
    for secret in secrets {
        assert!(
            !logs.contains(secret),
            "a secret reached the logs: {}…",
            &secret[..8]
        );
        // Nor any long piece of it (a token's signature or payload segment).
        if let Some(signature) = secret.rsplit('.').next().filter(|s| s.len() > 20) {
            assert!(
                !logs.contains(signature),
                "a token signature reached the logs"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
