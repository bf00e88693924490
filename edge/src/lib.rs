//! Tollgate's edge: a Cloudflare Worker (workers-rs) in front of the origin that refuses revoked
//! access tokens before they cost the origin anything.
//!
//! For a protected request the edge verifies the JWT locally (pinned algorithm per `kid`, `exp`,
//! `iss`, `aud`) with `tollgate_shared::jwt`, then makes exactly one Upstash REST call — a
//! `/pipeline` of `GET token:jti:{jti}` and `GET user:ver:{sub}` — and applies
//! `tollgate_shared::decide`, the function the origin uses. A logout is therefore refused at the
//! edge on the very next request, a forged or expired token never reaches Redis, and an Upstash
//! outage fails closed (503), never open. Public routes (register, login, refresh, health,
//! readiness, JWKS) pass straight through. Accepted requests reach the origin with
//! `X-Tollgate-*` identity headers; client-sent ones are always stripped. The origin still
//! validates every protected request itself: the edge is a filter, not the authority.
//!
//! Built by `scripts/build-edge.sh` (worker-build, wasm32) and served by `wrangler.toml` at the
//! repository root.
//!
//! # Layout
//! - [`config`]: `Settings`, read from `Env` once per request; a bad value answers 503 and logs
//!   the variable's name.
//! - [`gate`]: the public-route table and the protected-route decision.
//! - [`upstash`]: the thin Upstash REST client over `worker::Fetch`, with a deadline.
//! - [`proxy`]: forwarding to the origin, header hygiene, identity headers.
//! - [`respond`]: the edge's own error responses, from `tollgate_shared::ErrorBody`.
//! - here: the `#[event]` handlers, delegating to [`handle`].

pub(crate) mod config;
pub(crate) mod gate;
pub(crate) mod proxy;
pub(crate) mod respond;
pub(crate) mod upstash;

use worker::{console_error, event, web_sys, Context, Env, Url};

use crate::config::Settings;
use crate::gate::{Access, Denied};

/// Logs panics to the Workers console. A panic aborts the wasm instance (worker-build's shim
/// then resets it for the next request), so the message is the only trace left; nothing in this
/// crate is meant to panic.
#[event(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error!("tollgate-edge panicked: {info}");
    }));
}

#[event(fetch)]
async fn fetch(
    request: web_sys::Request,
    env: Env,
    _ctx: Context,
) -> worker::Result<web_sys::Response> {
    match handle(&request, &env).await {
        Ok(response) => Ok(response),
        Err(e) => {
            console_error!("refusing a request the edge could not handle: {e}");
            respond::bad_request()
        }
    }
}

/// One request: configuration, then either pass-through (public route) or the gate.
async fn handle(request: &web_sys::Request, env: &Env) -> worker::Result<web_sys::Response> {
    let url = Url::parse(&request.url())?;
    let settings = match Settings::from_env(env) {
        Ok(settings) => settings,
        Err(e) => {
            console_error!("failing closed: {e}");
            return respond::unavailable();
        }
    };
    if gate::is_public(&request.method(), url.path()) {
        return proxy::forward(request, &url, &settings.origin, None).await;
    }
    let authorization = request.headers().get("authorization")?;
    match gate::authorize(authorization.as_deref(), &settings, now()).await {
        Ok(Access::Granted(identity)) => {
            proxy::forward(request, &url, &settings.origin, Some(&identity)).await
        }
        Ok(Access::OriginDecides) => proxy::forward(request, &url, &settings.origin, None).await,
        Err(Denied::Token(rejection)) => respond::rejection(rejection),
        Err(Denied::Upstash(failure)) => {
            console_error!("failing closed: {failure}");
            respond::unavailable()
        }
    }
}

/// Unix seconds. Inside a Worker `Date.now()` advances only across I/O, which is precise enough
/// for `exp` checks with whole-second claims.
fn now() -> i64 {
    i64::try_from(worker::Date::now().as_millis() / 1000).unwrap_or(i64::MAX)
}
