//! The OpenAPI document: the committed copy is the generated one, and the origin serves it.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app, Backend};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

#[test]
fn the_committed_openapi_document_is_the_generated_one() {
    let generated = tollgate_origin::openapi::document_json();
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "origin/openapi.json differs from the document the code generates; regenerate it with\n\
         \n    cargo run -q -p tollgate-origin -- openapi > origin/openapi.json\n"
    );
}

#[test]
fn the_document_describes_every_route_error_and_scheme() {
    let doc: Value =
        serde_json::from_str(&tollgate_origin::openapi::document_json()).expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/users/register", "post"),
        ("/api/users/login", "post"),
        ("/api/users/refresh", "post"),
        ("/api/users/me", "get"),
        ("/api/users/me", "delete"),
        ("/api/users/logout", "post"),
        ("/api/users/logout-all", "post"),
        ("/api/users/logout-device-jti/{jti}", "post"),
        ("/api/users/logout-device/{token_id}", "post"),
        ("/api/users/sessions", "get"),
        ("/api/users/token-stats", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/openapi.json", "get"),
        ("/oauth/revoke", "post"),
        ("/oauth/introspect", "post"),
    ] {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        for status in ["413", "500"] {
            assert!(
                op["responses"][status].is_object(),
                "{method} {path}: no {status}"
            );
        }
        let protected = op["security"].to_string().contains("bearer");
        if protected {
            assert!(
                op["responses"]["401"]["headers"]["WWW-Authenticate"].is_object(),
                "{method} {path}: 401 without its challenge"
            );
        }
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["introspection_client"]["scheme"], "basic");
    // Every error code the services can answer is in the schema, spelled as on the wire.
    let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode enum");
    for code in codes {
        let parsed: tollgate_shared::ErrorCode =
            serde_json::from_value(code.clone()).expect("a real code");
        assert_eq!(parsed.as_str(), code);
    }
    for code in [
        "token_revoked",
        "payload_too_large",
        "refresh_token_reused",
        "internal",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code} missing");
    }
}

#[test]
fn the_documented_input_limits_are_the_enforced_ones() {
    use tollgate_origin::domain::{
        MAX_DEVICE_NAME_CHARS, MAX_EMAIL_BYTES, MAX_NAME_CHARS, MAX_PASSWORD_BYTES,
        MIN_PASSWORD_CHARS,
    };
    let doc: Value =
        serde_json::from_str(&tollgate_origin::openapi::document_json()).expect("json");
    let schemas = &doc["components"]["schemas"];
    let register = &schemas["RegisterBody"]["properties"];
    assert_eq!(register["email"]["maxLength"], MAX_EMAIL_BYTES);
    assert_eq!(register["password"]["minLength"], MIN_PASSWORD_CHARS);
    assert_eq!(register["password"]["maxLength"], MAX_PASSWORD_BYTES);
    assert_eq!(register["name"]["maxLength"], MAX_NAME_CHARS);
    let login = &schemas["LoginBody"]["properties"];
    assert_eq!(login["device_name"]["maxLength"], MAX_DEVICE_NAME_CHARS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_serves_its_openapi_document() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_eq!(
        r.text().await.expect("body"),
        tollgate_origin::openapi::document_json()
    );
}
