//! `EdgeUser` accepts exactly the assertions the edge would sign for this upstream, method and
//! path, and refuses every other with the documented 401 body.

use tollgate_shared::assertion::{AssertionClaims, TYP};
use tollgate_upstream::EdgeVerifier;

use crate::helpers::{self, call, claims, key, key_set, refusal_code, AUDIENCE, ISSUER};

/// An upstream trusting edge key `e1` (seed 1); returns its base URL.
async fn upstream() -> String {
    let edge = EdgeVerifier::with_keys(ISSUER, AUDIENCE, key_set(&[&key("e1", 1)]));
    helpers::serve(helpers::app(edge)).await.0
}

fn signed(claims: &AssertionClaims) -> String {
    claims.sign(&key("e1", 1))
}

/// Sends `claims` signed by the edge key to `method path` and returns the refusal code.
async fn refused(method: &str, path: &str, claims: &AssertionClaims) -> String {
    let base = upstream().await;
    let (status, body) = call(&base, method, path, &[&signed(claims)]).await;
    refusal_code(status, &body)
}

#[tokio::test]
async fn a_valid_assertion_names_the_user_to_the_handler() {
    let base = upstream().await;
    let token = signed(&claims("GET", "/api/notes/1"));
    let (status, body) = call(&base, "GET", "/api/notes/1", &[&token]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_id"], "user-1");
    assert_eq!(body["token_id"], "session-1");
    assert_eq!(body["jti"], "jti-1");
    assert_eq!(body["token_version"], 3);
    assert_eq!(body["client_ip"], "203.0.113.7");
}

#[tokio::test]
async fn an_assertion_signed_by_another_key_is_refused() {
    let base = upstream().await;
    let forged = claims("GET", "/api/notes/1").sign(&key("e1", 2));
    let (status, body) = call(&base, "GET", "/api/notes/1", &[&forged]).await;
    assert_eq!(refusal_code(status, &body), "assertion_invalid");
}

#[tokio::test]
async fn an_assertion_with_an_unknown_kid_is_refused() {
    let base = upstream().await;
    let unknown = claims("GET", "/api/notes/1").sign(&key("e9", 1));
    let (status, body) = call(&base, "GET", "/api/notes/1", &[&unknown]).await;
    assert_eq!(refusal_code(status, &body), "assertion_invalid");
}

#[tokio::test]
async fn an_expired_assertion_is_refused() {
    let mut c = claims("GET", "/api/notes/1");
    c.iat -= 40;
    c.exp = c.iat + 30;
    assert_eq!(
        refused("GET", "/api/notes/1", &c).await,
        "assertion_invalid"
    );
}

#[tokio::test]
async fn an_assertion_replayed_to_another_method_is_refused() {
    let c = claims("GET", "/api/notes/1");
    assert_eq!(
        refused("POST", "/api/notes/1", &c).await,
        "assertion_invalid"
    );
}

#[tokio::test]
async fn an_assertion_replayed_to_another_path_is_refused() {
    let c = claims("GET", "/api/notes/1");
    assert_eq!(
        refused("GET", "/api/notes/2", &c).await,
        "assertion_invalid"
    );
}

#[tokio::test]
async fn an_assertion_is_bound_to_the_full_path_even_under_a_nested_router() {
    // `/api/v2/notes/1` reaches a router nested at `/api/v2`, which sees `/notes/1`. The
    // binding is to what the upstream received, so the assertion the edge signed for it works…
    let base = upstream().await;
    let token = signed(&claims("GET", "/api/v2/notes/1"));
    let (status, body) = call(&base, "GET", "/api/v2/notes/1", &[&token]).await;
    assert_eq!(status, 200, "{body}");
    // …and one signed for `/api/notes/1` (nested at `/api`, also `/notes/1` inside) does not.
    let other = signed(&claims("GET", "/api/notes/1"));
    let (status, body) = call(&base, "GET", "/api/v2/notes/1", &[&other]).await;
    assert_eq!(refusal_code(status, &body), "assertion_invalid");
}

#[tokio::test]
async fn an_assertion_meant_for_another_upstream_is_refused() {
    let mut c = claims("GET", "/api/notes/1");
    c.aud = "billing".into();
    assert_eq!(
        refused("GET", "/api/notes/1", &c).await,
        "assertion_invalid"
    );
}

#[tokio::test]
async fn an_assertion_from_another_issuer_is_refused() {
    let mut c = claims("GET", "/api/notes/1");
    c.iss = "someone-else".into();
    assert_eq!(
        refused("GET", "/api/notes/1", &c).await,
        "assertion_invalid"
    );
}

#[tokio::test]
async fn an_assertion_living_longer_than_sixty_seconds_is_refused() {
    let mut c = claims("GET", "/api/notes/1");
    c.exp = c.iat + 61;
    assert_eq!(
        refused("GET", "/api/notes/1", &c).await,
        "assertion_invalid"
    );
}

#[tokio::test]
async fn an_assertion_whose_version_the_edge_could_not_check_is_refused() {
    let mut c = claims("GET", "/api/notes/1");
    c.ver_checked = false;
    assert_eq!(
        refused("GET", "/api/notes/1", &c).await,
        "assertion_invalid"
    );
}

#[tokio::test]
async fn an_anonymous_assertion_is_refused_on_a_protected_route() {
    let mut c = claims("GET", "/api/notes/1");
    (c.sub, c.sid, c.jti, c.ver, c.ver_checked) = (None, None, None, None, false);
    assert_eq!(
        refused("GET", "/api/notes/1", &c).await,
        "assertion_invalid"
    );
}

#[tokio::test]
async fn an_access_token_signed_by_the_edge_key_is_not_an_assertion() {
    let base = upstream().await;
    let wrong_typ = key("e1", 1).sign_jws("at+jwt", &claims("GET", "/api/notes/1"));
    let (status, body) = call(&base, "GET", "/api/notes/1", &[&wrong_typ]).await;
    assert_eq!(refusal_code(status, &body), "assertion_invalid");
    let right_typ = key("e1", 1).sign_jws(TYP, &claims("GET", "/api/notes/1"));
    let (status, _) = call(&base, "GET", "/api/notes/1", &[&right_typ]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_duplicated_assertion_header_is_refused_even_when_both_are_valid() {
    let base = upstream().await;
    let token = signed(&claims("GET", "/api/notes/1"));
    let (status, body) = call(&base, "GET", "/api/notes/1", &[&token, &token]).await;
    assert_eq!(refusal_code(status, &body), "assertion_invalid");
}

#[tokio::test]
async fn a_request_without_an_assertion_is_refused_as_missing() {
    let base = upstream().await;
    let (status, body) = call(&base, "GET", "/api/notes/1", &[]).await;
    assert_eq!(refusal_code(status, &body), "assertion_missing");
}

#[tokio::test]
async fn garbage_in_the_header_is_refused_as_invalid() {
    let base = upstream().await;
    for value in ["", "x", "a.b.c", "Bearer abc"] {
        let (status, body) = call(&base, "GET", "/api/notes/1", &[value]).await;
        assert_eq!(
            refusal_code(status, &body),
            "assertion_invalid",
            "{value:?}"
        );
    }
}
