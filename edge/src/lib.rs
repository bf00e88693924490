//! Tollgate's edge: a Cloudflare Worker (workers-rs) in front of the whole API — the auth origin
//! and any number of API upstreams — that refuses revoked access tokens before any backend sees
//! them.
//!
//! Each request is matched against the route table (`TOLLGATE_ROUTES`; longest prefix wins,
//! unknown paths are a 404 here) after its path is checked for forms that could reach another
//! route. For a protected route the edge verifies the JWT locally (pinned algorithm per `kid`,
//! `typ`, `exp`, `iss`, `aud`, lifetime; memoised per isolate) with `tollgate_shared::jwt`, then
//! makes exactly one Upstash REST call — a `/pipeline` of one `HMGET tg:{sub} j:{jti} v` (one
//! key: one slot on a cluster) — and applies the shared decision, the function the origin uses. A logout
//! is therefore refused at the edge on the very next request, a forged or expired token never
//! reaches Redis, and an Upstash outage fails closed (503), never open.
//!
//! An accepted request reaches its upstream with a signed identity assertion
//! (`X-Tollgate-Assertion`, [`tollgate_shared::assertion`]) bound to that upstream, the method
//! and the path: upstreams trust it without calling Redis, so a protected request costs one
//! Redis round trip end to end. Client-sent `X-Tollgate-*` headers are always stripped. The
//! edge publishes its assertion keys at `/.well-known/tollgate-edge-jwks.json`.
//!
//! Built by `scripts/build-edge.sh` (worker-build, wasm32) and served by `wrangler.toml` at the
//! repository root, whose `main` is the Worker's JS entry (`edge/entry.mjs`, copied next to
//! worker-build's output): it extends worker-build's entrypoint and, after a synchronous call
//! into the wasm ([`entry`]), forwards public routes itself and drives protected requests with
//! a token this isolate verified before through synchronous steps, awaiting in JS; every other
//! request goes to the `fetch` handler here. Awaiting inside the wasm is what made the Rust
//! Worker cost more than a JS one (BENCHMARKS.md, issue 8 §6).
//!
//! # Layout
//! - [`config`]: `Settings`, read from `Env` once per isolate; a bad value answers 503 and logs
//!   the variable's (or route entry's) name.
//! - [`routes`]: the route table and path normalisation.
//! - [`gate`]: the protected-route decision, with the per-isolate memo of verified tokens.
//! - [`keys`]: verification keys, static or fetched from the origin's JWKS (`JWKS_URL`).
//! - [`upstash`]: the thin Upstash REST client over the platform's `fetch`, with a deadline.
//! - [`proxy`]: forwarding to upstreams (URL or service binding), header hygiene, and the
//!   edge's own subrequests (Upstash, the JWKS: [`proxy::fetch_own`]).
//! - [`weburl`]: configuration URLs, parsed by the platform's URL parser in the Worker.
//! - [`respond`]: the edge's own answers, from `tollgate_shared::ErrorBody`.
//! - [`entry`]: the JS entry's synchronous fast path: public routes, and protected requests
//!   with a memoised token.
//! - [`protected`]: after the gate, for both entries: the assertion, the origin's version check
//!   and the forward.
//! - here: the routing decision both entries share ([`route`]), the `#[event]` handlers
//!   delegating to [`handle`], and [`finish`], where both end a request (its log line).

pub(crate) mod config;
pub(crate) mod crypto;
pub(crate) mod entry;
pub(crate) mod gate;
pub(crate) mod keys;
pub(crate) mod log;
pub(crate) mod protected;
pub(crate) mod proxy;
pub(crate) mod respond;
pub(crate) mod routes;
pub(crate) mod upstash;
pub(crate) mod weburl;

use tollgate_shared::assertion;
use worker::{console_error, event, web_sys, Context, Env};

use crate::log::{Answer, Trace};
use crate::protected::Outgoing;
use crate::proxy::{RequestUrl, TargetUrl};
use crate::routes::Access;

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
    let started = worker::Date::now().as_millis();
    let mut trace = Trace::default();
    let answer = match handle(&request, &env, &mut trace).await {
        Ok(answer) => answer,
        Err(e) => respond::bad_request()?.because(format_args!(
            "refusing a request the edge could not handle: {e}"
        )),
    };
    Ok(finish(answer, &request, &trace, started))
}

/// The response for `answer`, with the log line of an answer the edge made itself: the one
/// place both entries (this `fetch` and [`entry`]'s) end a request. `started`: `Date.now()`
/// when the request arrived, in milliseconds.
fn finish(
    answer: Answer,
    request: &web_sys::Request,
    trace: &Trace,
    started: u64,
) -> web_sys::Response {
    match answer {
        // Forwarded: nothing more to do (no log line, so no `CF-Ray` to read).
        Answer::Upstream(response) => response,
        Answer::Edge(response, refusal) => {
            let ray = request.headers().get("cf-ray").ok().flatten();
            let ms = worker::Date::now().as_millis().saturating_sub(started);
            log::emit(&refusal, &request.method(), trace, ms, ray.as_deref());
            response
        }
    }
}

/// What a request's method and path select, before anything else about it is looked at.
pub(crate) enum Routed<'s> {
    /// A path that could be read two ways: 400.
    InvalidPath,
    /// The edge's own assertion keys ([`assertion::JWKS_PATH`]).
    EdgeJwks,
    /// No route owns the path: 404.
    NotFound,
    Route {
        route: &'s routes::Route,
        upstream: &'s routes::Upstream,
        target: TargetUrl,
    },
}

/// The routing decision, in one place for both entries: [`handle`] and the JS entry's
/// synchronous fast path ([`entry::FastPath::take`]), so a path
/// that one would refuse or send elsewhere can never take the other's way.
pub(crate) fn route<'s>(
    settings: &'s config::Settings,
    method: &str,
    url: &RequestUrl<'_>,
) -> Routed<'s> {
    let Ok(path) = routes::normalize_path(url.path) else {
        return Routed::InvalidPath;
    };
    if path == assertion::JWKS_PATH && matches!(method, "GET" | "HEAD") {
        return Routed::EdgeJwks;
    }
    match settings.routes.find(method, path) {
        Some((route, upstream)) => Routed::Route {
            route,
            upstream,
            target: proxy::target_url(upstream, url),
        },
        None => Routed::NotFound,
    }
}

/// One request: configuration, route, then pass-through or the gate. What it learns about the
/// route goes into `trace`, for the log line of an answer the edge makes itself. Public routes
/// normally never get here (the JS entry forwards them, [`entry`]); when one does (a bundle
/// served without the entry, or one the fast path left to this handler: an unbound service, a
/// request the platform would not rebuild) it costs the settings lookup, the path check, the
/// route match and the forward, nothing else. Nor do protected requests with a token this
/// isolate has verified before, unless the fast path had to leave them here.
async fn handle(
    request: &web_sys::Request,
    env: &Env,
    trace: &mut Trace,
) -> worker::Result<Answer> {
    let settings = match config::current(env) {
        Ok(settings) => settings,
        Err(e) => return Ok(respond::unavailable()?.because(format_args!("failing closed: {e}"))),
    };
    let href = request.url();
    let url = RequestUrl::split(&href);
    let method = request.method();
    let (route, upstream, target) = match route(&settings, &method, &url) {
        Routed::InvalidPath => return respond::invalid_path(),
        Routed::EdgeJwks => return respond::jwks(&settings.assertions.jwks_json),
        Routed::NotFound => return respond::not_found(),
        Routed::Route {
            route,
            upstream,
            target,
        } => (route, upstream, target),
    };
    trace.route = Some(route.label().to_owned());
    trace.upstream = Some(upstream.name.clone());
    if route.access == Access::Public {
        return proxy::forward(request, &method, &target, upstream, None, env).await;
    }
    let (access, strict) = (route.access, route.strict);
    let now = now();
    let outgoing = Outgoing::new(
        settings.clone(),
        request,
        env,
        upstream,
        target,
        method,
        now,
    )?;
    if access == Access::PublicSigned {
        return outgoing.forward(None).await;
    }
    let authorization = request.headers().get("authorization")?;
    match gate::authorize(authorization.as_deref(), &settings, strict, now).await {
        Ok(gate::Access::Granted(claims)) => outgoing.forward(Some(&claims)).await,
        Ok(gate::Access::OriginDecides(claims)) => {
            match outgoing
                .origin_decides(&claims, authorization.as_deref())
                .await?
            {
                None => outgoing.forward(Some(&claims)).await,
                Some(refusal) => Ok(refusal),
            }
        }
        Err(denied) => denied.answer(),
    }
}

/// Unix seconds. Inside a Worker `Date.now()` advances only across I/O, which is precise enough
/// for `exp` checks with whole-second claims.
pub(crate) fn now() -> i64 {
    i64::try_from(worker::Date::now().as_millis() / 1000).unwrap_or(i64::MAX)
}
