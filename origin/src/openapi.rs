//! The OpenAPI 3.1 document, generated from the code: each route's `#[utoipa::path]` next to its
//! handler (registered with `utoipa_axum::routes!`, so a route cannot be served without being
//! described), the wire types' `ToSchema` derives, and [`Conventions`] for what every route
//! shares. Served at `GET /openapi.json`; `tollgate-origin openapi` prints it, and
//! `origin/openapi.json` is the committed copy a test keeps equal to it.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use tollgate_shared::ErrorCode;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Header, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tollgate origin",
        description = "Register, log in, refresh, log out (four ways), device sessions, token \
            revocation (RFC 7009) and introspection (RFC 7662). Every error outside the OAuth \
            endpoints is `{\"error\":{\"code\":\"…\",\"message\":\"…\"}}` (ErrorBody) with the \
            status its code (ErrorCode) documents; the OAuth endpoints answer client mistakes in \
            RFC 6749 §5.2's shape (OAuthErrorBody). An unknown path is 404 `not_found`, a \
            method a path does not serve 405 `method_not_allowed`."
    ),
    components(schemas(ErrorCode)),
    tags(
        (name = "accounts", description = "Register, log in, refresh; the caller's account"),
        (name = "sessions", description = "The four logouts and the device sessions list"),
        (name = "oauth", description = "RFC 7009 revocation and RFC 7662 introspection"),
        (name = "operations", description = "Keys, health, statistics and this document"),
    )
)]
pub struct ApiDoc;

/// The route serving the document.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}

/// The document: the routes' own descriptions, then [`Conventions`] over all of them.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = crate::app::api_router().into_openapi();
    Conventions.modify(&mut doc);
    doc
}

/// The document as JSON text (pretty, with a final newline: the form committed in
/// `origin/openapi.json`).
pub fn document_json() -> String {
    let mut text = document()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    text.push('\n');
    text
}

static DOCUMENT: LazyLock<String> = LazyLock::new(document_json);

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json",
        body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

/// What every route shares, applied once rather than repeated on each: the security schemes,
/// the 413 and 500 that the middleware can answer anywhere, and the headers that go with 401
/// (bearer rejections), 429 and 503 (`Retry-After`).
#[derive(Debug)]
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from login or refresh (EdDSA, or HS256 with JWT_SECRET)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "introspection_client",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "A resource server's id and secret from INTROSPECTION_CLIENTS",
                    ))
                    .build(),
            ),
        );
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                apply_conventions(op);
            }
        }
    }
}

fn apply_conventions(op: &mut Operation) {
    let bearer = op.security.iter().flatten().any(|requirement| {
        serde_json::to_value(requirement).is_ok_and(|v| v.get("bearer").is_some())
    });
    let responses = &mut op.responses.responses;
    responses
        .entry("413".into())
        .or_insert_with(|| error_response("`payload_too_large`: a body over 16 KiB"));
    responses
        .entry("500".into())
        .or_insert_with(|| error_response("`internal`: a bug; the cause is logged, never sent"));
    for (status, header, description) in [
        (
            "401",
            "WWW-Authenticate",
            "`Bearer error=\"invalid_token\"` on a bearer rejection (`token_missing`, \
             `token_malformed`, `token_signature`, `token_expired`, `token_claims`, \
             `token_revoked`, `token_version`, `user_unknown`)",
        ),
        ("429", "Retry-After", "Seconds until the limit resets"),
        ("503", "Retry-After", "Seconds to wait before retrying"),
    ] {
        if status == "401" && !bearer {
            continue;
        }
        if let Some(RefOr::T(response)) = responses.get_mut(status) {
            response
                .headers
                .entry(header.into())
                .or_insert_with(|| described_header(description));
        }
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

fn described_header(description: &str) -> Header {
    let mut header = Header::default();
    header.description = Some(description.to_owned());
    header
}

/// Just the `ApiDoc` part (info, tags), for [`crate::app::api_router`] to add the routes to.
pub fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
