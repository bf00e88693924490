//! The synchronous half of the Worker's JS entry (`edge/entry.mjs`): public routes forwarded
//! without awaiting inside the wasm.
//!
//! Calling workers-rs' async `fetch` export and awaiting `fetch` from Rust costs 50–130 µs of
//! CPU per request above a plain JS pass-through (wasm-bindgen's `future_to_promise`, the
//! `JsFuture` closures; BENCHMARKS.md, issue 8 §6), which no routing code of ours can win back.
//! So the entry first calls [`PublicRoutes::forward`]: a synchronous export that makes the same
//! routing decision as [`crate::handle`] ([`crate::route`]) and, for a public route only, builds
//! the same outbound request ([`crate::proxy::outbound`]: the same header hygiene) and starts
//! the subrequest, returning its promise for JS to hand back. Anything else — a protected or
//! signed route, a 404, a path refused as non-canonical, the edge's JWKS, a configuration
//! error, an unbound service — is `undefined`, and the entry passes the request to the full
//! async handler, which answers it as it always has.
//!
//! A wasm-bindgen class with static methods, not free functions: worker-build copies every
//! exported free function onto its `WorkerEntrypoint` prototype, where any Worker bound to
//! this one could call it over RPC.

use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::JsValue;
use worker::{js_sys, web_sys, Env};

use crate::log::Trace;
use crate::proxy::{self, RequestUrl};
use crate::routes::Access;
use crate::{config, finish, route, Routed};

/// The entry's fast path (see the module doc). Never constructed: a namespace for JS.
#[wasm_bindgen]
#[derive(Debug)]
pub struct PublicRoutes {}

#[wasm_bindgen]
impl PublicRoutes {
    /// For a public route, the pending upstream response (a rejected promise if the
    /// subrequest failed, for [`Self::unreachable`]); otherwise `undefined`.
    pub fn forward(request: web_sys::Request, env: Env) -> JsValue {
        let settings = config::current(&env);
        let Ok(settings) = &*settings else {
            return JsValue::UNDEFINED;
        };
        let href = request.url();
        let url = RequestUrl::split(&href);
        let method = request.method();
        let Routed::Route {
            route,
            upstream,
            target,
        } = route(settings, &method, &url)
        else {
            return JsValue::UNDEFINED;
        };
        if route.access != Access::Public {
            return JsValue::UNDEFINED;
        }
        // Both fail before the client's body is handed over, so the full handler can still
        // make the answer it makes today (a 502 for an unbound service, a 400 for a request the
        // platform will not rebuild).
        let Ok(via) = proxy::fetcher(upstream, &env) else {
            return JsValue::UNDEFINED;
        };
        let Ok(outbound) = proxy::outbound(&request, &method, &target, None) else {
            return JsValue::UNDEFINED;
        };
        match via.fetch(&outbound) {
            Ok(pending) => pending.into(),
            Err(cause) => js_sys::Promise::reject(&cause).into(),
        }
    }

    /// The 502 for a public route's subrequest that failed (`cause`: the rejection), logged
    /// like the full handler's; `started`: `Date.now()` when the request arrived.
    pub fn unreachable(
        request: web_sys::Request,
        env: Env,
        cause: JsValue,
        started: f64,
    ) -> Result<web_sys::Response, JsValue> {
        let settings = config::current(&env);
        let href = request.url();
        let url = RequestUrl::split(&href);
        let mut trace = Trace::default();
        if let Ok(settings) = &*settings {
            if let Routed::Route {
                route, upstream, ..
            } = route(settings, &request.method(), &url)
            {
                trace.route = Some(route.label().to_owned());
                trace.upstream = Some(upstream.name.clone());
            }
        }
        let name = trace.upstream.as_deref().unwrap_or("(unknown)");
        let answer = proxy::unreachable(name, &cause)?;
        // Whole milliseconds since the epoch: far inside u64, never negative.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let started = started.max(0.0) as u64;
        Ok(finish(answer, &request, &trace, started))
    }
}
