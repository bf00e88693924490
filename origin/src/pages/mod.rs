//! The pages people look at, served by the origin as plain server-rendered HTML (maud): the
//! devices page (`/account/devices`, with its login form) and the admin page (`/account/admin`).
//! No script runs on them and nothing is loaded from elsewhere.
//!
//! # Layout
//! - [`session`]: the page session — a normal Tollgate device session whose tokens live only in
//!   `HttpOnly` cookies — its CSRF token, and the [`session::PageSession`] extractor.
//! - [`devices`]: login, the device list and its revoke buttons, logout.
//! - [`admin`]: token statistics and their history (SQL-backed, so identical on every
//!   instance) as inline SVG charts, and the sampler that records the history.
//!
//! Every page answer carries a strict CSP, `frame-ancestors 'none'` and `no-store`; every
//! state-changing request must come from this origin ([`guard`]) *and* carry the CSRF token of
//! its session. Logins, rotations and logouts are the JSON API's own functions
//! ([`crate::routes::users::login_device`], [`crate::routes::users::rotate_refresh`],
//! [`crate::routes::sessions`]), never a second copy.

pub mod admin;
pub mod devices;
pub mod session;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};

use crate::db::UserRow;
use crate::state::AppState;
use session::PageSession;

/// Where the pages live; their cookies are scoped to it, so the JSON API never sees them (and
/// a bearer-token API cannot be driven by a cookie).
pub const BASE: &str = "/account";

pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route(
            "/account",
            get(|| async { Redirect::to("/account/devices") }),
        )
        .route(
            "/account/login",
            get(devices::login_form).post(devices::login),
        )
        .route("/account/logout", post(devices::logout))
        .route("/account/devices", get(devices::list))
        .route(
            "/account/devices/{token_id}/revoke",
            post(devices::revoke_one),
        )
        .route(
            "/account/devices/revoke-others",
            post(devices::revoke_others),
        )
        .route("/account/devices/revoke-all", post(devices::revoke_all))
        .route("/account/admin", get(admin::page))
        .route("/account/style.css", get(style))
        .route(
            "/admin",
            get(|| async { Redirect::permanent("/account/admin") }),
        );
    pages.layer(middleware::from_fn(guard))
}

/// The security headers of every page, and the first CSRF defence: a request that changes
/// anything must say it comes from this very origin (`Sec-Fetch-Site: same-origin`, and an
/// `Origin` naming this host). The CSRF token bound to the session is the second
/// ([`session::Verified`]): either alone would do against today's browsers; both hold if one
/// is ever bypassed.
async fn guard(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD);
    let mut response = if safe || same_origin(req.headers()) {
        next.run(req).await
    } else {
        tracing::warn!(path = %req.uri().path(), "cross-origin form post refused");
        refused("This request did not come from this site, so nothing was changed.")
    };
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; \
         object-src 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Not `no-referrer`: under it browsers send `Origin: null` on form posts, which `guard`
    // must refuse.
    set(headers, header::REFERRER_POLICY, "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

/// Whether a state-changing request comes from this origin. A browser sends `Origin` on every
/// POST and `Sec-Fetch-Site` on every request; a request with neither is not from a browser on
/// our page and is refused too.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if site != "same-origin" {
            return false;
        }
    }
    let Some(host) = text(header::HOST) else {
        return false;
    };
    match text(header::ORIGIN) {
        Some(origin) => origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .is_some_and(|authority| authority.eq_ignore_ascii_case(host)),
        None => headers.contains_key("sec-fetch-site"),
    }
}

/// A 403 page: the request was refused and nothing changed.
pub fn refused(why: &str) -> Response {
    let body = layout(
        "Refused",
        None,
        html! {
            h1 { "Request refused" }
            p.error { (why) }
            p { a href="/account/devices" { "Back to your devices" } }
        },
    );
    (StatusCode::FORBIDDEN, body).into_response()
}

/// Who is signed in, for the header of a page.
#[derive(Debug)]
pub struct Viewer<'a> {
    pub email: &'a str,
    pub admin: bool,
    pub csrf: &'a str,
}

impl<'a> Viewer<'a> {
    /// The signed-in `user`, with the CSRF token of their page `session`.
    pub fn new(user: &'a UserRow, session: &'a PageSession) -> Self {
        Self {
            email: &user.email,
            admin: user.role == "admin",
            csrf: &session.csrf,
        }
    }
}

/// The page frame: header with navigation and sign-out when someone is signed in.
pub fn layout(title: &str, viewer: Option<&Viewer<'_>>, content: Markup) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Tollgate" }
                link rel="stylesheet" href="/account/style.css";
            }
            body {
                header {
                    span.brand { "Tollgate" }
                    @if let Some(v) = viewer {
                        nav {
                            a href="/account/devices" { "Devices" }
                            @if v.admin { a href="/account/admin" { "Admin" } }
                        }
                        span.who { (v.email) }
                        form method="post" action="/account/logout" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main { (content) }
            }
        }
    };
    Html(page.into_string())
}

const STYLE: &str = include_str!("style.css");

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        STYLE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_requests_from_this_origin_may_change_anything() {
        let host = ("host", "127.0.0.1:8080");
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
        ])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "https://127.0.0.1:8080")
        ])));
        assert!(same_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
        for bad in [
            vec![host],
            vec![host, ("origin", "http://evil.example")],
            vec![host, ("origin", "null")],
            vec![host, ("origin", "http://127.0.0.1:8080.evil.example")],
            vec![host, ("origin", "http://127.0.0.1:8080/x")],
            vec![
                host,
                ("origin", "http://127.0.0.1:8080"),
                ("sec-fetch-site", "cross-site"),
            ],
            vec![host, ("sec-fetch-site", "same-site")],
            vec![("origin", "http://127.0.0.1:8080")],
        ] {
            assert!(!same_origin(&headers(&bad)), "{bad:?} accepted");
        }
    }
}
