//! CRUD scoped to the caller, refusals of bad assertions and bad input.

use serde_json::json;

use crate::helpers::{assertion_claims, edge_key, error_code, spawn_app, spawn_on};

#[tokio::test]
async fn a_note_is_created_listed_read_replaced_and_deleted() {
    let app = spawn_app().await;
    let created = app
        .call(
            "alice",
            "POST",
            "/api/notes",
            Some(json!({"title": "Groceries", "body": "eggs"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(created.body["title"], "Groceries");
    assert_eq!(created.body["body"], "eggs");
    let path = format!("/api/notes/{id}");

    let list = app.call("alice", "GET", "/api/notes", None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body.as_array().expect("array").len(), 1);
    assert_eq!(list.body[0]["id"], id.as_str());

    let read = app.call("alice", "GET", &path, None).await;
    assert_eq!((read.status, &read.body["body"]), (200, &json!("eggs")));

    let replaced = app
        .call(
            "alice",
            "PUT",
            &path,
            Some(json!({"title": "Groceries", "body": "eggs, milk"})),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["body"], "eggs, milk");
    assert_eq!(
        app.call("alice", "GET", &path, None).await.body["body"],
        "eggs, milk"
    );

    let deleted = app.call("alice", "DELETE", &path, None).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        error_code(&app.call("alice", "GET", &path, None).await, 404),
        "not_found"
    );
    assert_eq!(
        app.call("alice", "GET", "/api/notes", None).await.body,
        json!([])
    );
}

#[tokio::test]
async fn another_users_note_does_not_exist_for_them() {
    let app = spawn_app().await;
    let created = app
        .call(
            "alice",
            "POST",
            "/api/notes",
            Some(json!({"title": "Diary", "body": "secret"})),
        )
        .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let path = format!("/api/notes/{id}");
    app.call("bob", "POST", "/api/notes", Some(json!({"title": "Bob's"})))
        .await;

    assert_eq!(
        error_code(&app.call("bob", "GET", &path, None).await, 404),
        "not_found"
    );
    let put = app
        .call(
            "bob",
            "PUT",
            &path,
            Some(json!({"title": "mine now", "body": ""})),
        )
        .await;
    assert_eq!(error_code(&put, 404), "not_found");
    assert_eq!(
        error_code(&app.call("bob", "DELETE", &path, None).await, 404),
        "not_found"
    );
    let bobs = app.call("bob", "GET", "/api/notes", None).await.body;
    assert_eq!(bobs.as_array().expect("array").len(), 1);
    assert_eq!(bobs[0]["title"], "Bob's");

    // Alice's note is untouched by all of it.
    let read = app.call("alice", "GET", &path, None).await;
    assert_eq!(
        (read.body["title"].as_str(), read.body["body"].as_str()),
        (Some("Diary"), Some("secret"))
    );
}

#[tokio::test]
async fn notes_outlive_a_restart() {
    let first = spawn_app().await;
    let created = first
        .call(
            "carol",
            "POST",
            "/api/notes",
            Some(json!({"title": "Kept"})),
        )
        .await;
    assert_eq!(created.status, 201);
    let db = first.db.clone();
    let second = spawn_on(db).await;
    let list = second.call("carol", "GET", "/api/notes", None).await;
    assert_eq!(list.body[0]["title"], "Kept");
}

#[tokio::test]
async fn without_an_assertion_nothing_is_reached() {
    let app = spawn_app().await;
    for (method, path) in [
        ("GET", "/api/notes"),
        ("POST", "/api/notes"),
        ("GET", "/api/notes/x"),
        ("PUT", "/api/notes/x"),
        ("DELETE", "/api/notes/x"),
    ] {
        let answer = app
            .send(method, path, None, Some(r#"{"title":"t"}"#.into()))
            .await;
        assert_eq!(
            error_code(&answer, 401),
            "assertion_missing",
            "{method} {path}"
        );
    }
    assert_eq!(
        app.call("dave", "GET", "/api/notes", None).await.body,
        json!([])
    );
}

#[tokio::test]
async fn bad_assertions_are_refused() {
    let app = spawn_app().await;
    let forged = assertion_claims("eve", "GET", "/api/notes").sign(&edge_key(8));
    let mut other_route = assertion_claims("eve", "GET", "/api/notes/1");
    let mut other_upstream = assertion_claims("eve", "GET", "/api/notes");
    other_upstream.aud = "origin".into();
    let mut unchecked = assertion_claims("eve", "GET", "/api/notes");
    unchecked.ver_checked = false;
    other_route.htm = "DELETE".into();
    for token in [
        forged,
        app.sign(&other_route),
        app.sign(&other_upstream),
        app.sign(&unchecked),
    ] {
        let answer = app.send("GET", "/api/notes", Some(&token), None).await;
        assert_eq!(error_code(&answer, 401), "assertion_invalid");
    }
}

#[tokio::test]
async fn bad_input_is_refused_with_the_error_body() {
    let app = spawn_app().await;
    let post = |body: &str| {
        let assertion = app.sign(&assertion_claims("frank", "POST", "/api/notes"));
        let body = body.to_owned();
        let app = &app;
        async move {
            app.send("POST", "/api/notes", Some(&assertion), Some(body))
                .await
        }
    };
    for bad in [
        "not json",
        r#"{"body":"no title"}"#,
        r#"{"title":"   "}"#,
        r#"{"title":7}"#,
        r#"{"title":"t","admin":true}"#,
    ] {
        assert_eq!(error_code(&post(bad).await, 422), "invalid_input", "{bad}");
    }
    let long_title = json!({ "title": "x".repeat(201) }).to_string();
    assert_eq!(error_code(&post(&long_title).await, 422), "invalid_input");
    let huge = json!({ "title": "t", "body": "x".repeat(70 * 1024) }).to_string();
    assert_eq!(error_code(&post(&huge).await, 413), "payload_too_large");
    assert_eq!(
        app.call("frank", "GET", "/api/notes", None).await.body,
        json!([])
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_json() {
    let app = spawn_app().await;
    assert_eq!(
        error_code(&app.call("gina", "GET", "/api/nope", None).await, 404),
        "not_found"
    );
    assert_eq!(
        error_code(&app.call("gina", "PATCH", "/api/notes", None).await, 405),
        "method_not_allowed"
    );
    let health = app.send("GET", "/health", None, None).await;
    assert_eq!((health.status, &health.body["status"]), (200, &json!("ok")));
}
