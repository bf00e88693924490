//! The synchronous halves of the Worker's JS entry (`edge/entry.mjs`): requests forwarded
//! without awaiting inside the wasm.
//!
//! Calling workers-rs' async `fetch` export and awaiting from Rust costs 50–130 µs of CPU per
//! await above a plain JS Worker (wasm-bindgen's `future_to_promise`, the `JsFuture` closures;
//! BENCHMARKS.md, issue 8 §6), which no routing code of ours can win back. So the entry first
//! calls [`FastPath::take`], a synchronous export that makes the same routing decision as
//! [`crate::handle`] ([`crate::route`]) and takes the request on when it can without awaiting:
//! - a public route: it builds the same outbound request ([`crate::proxy::outbound`]: the same
//!   header hygiene), starts the subrequest and returns its promise for JS to hand back;
//! - a protected route whose token this isolate verified before ([`gate::memoised`]) while the
//!   assertion key is already imported: it starts the one Upstash lookup and returns an
//!   [`InFlight`], whose synchronous steps JS drives between its awaits — the lookup's reply
//!   into [`InFlight::decide`] (the same [`gate`] decision), the assertion's signature
//!   (WebCrypto) into [`InFlight::send`].
//!
//! Anything else — a token not seen before, one whose key must be fetched, a `public_signed`
//! route, a 404, a path refused as non-canonical, the edge's JWKS, a configuration error, an
//! unbound service — is `undefined`, and the entry passes the request to the full async
//! handler, which answers it as it always has. Every check that could send a request there is
//! made before anything is started, so no request is half taken (its body is handed to the
//! outbound request only once the fast path is committed).
//!
//! Wasm-bindgen classes with static methods, not free functions: worker-build copies every
//! exported free function onto its `WorkerEntrypoint` prototype, where any Worker bound to
//! this one could call it over RPC.

use std::cell::RefCell;
use std::rc::Rc;

use tollgate_shared::{jwt, AccessClaims};
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::{js_sys, web_sys, Env};

use crate::gate::{self, Access};
use crate::log::{Answer, Trace};
use crate::protected::{self, Outgoing};
use crate::proxy::{self, Fetcher, RequestUrl};
use crate::routes;
use crate::upstash::Upstash;
use crate::{config, crypto, finish, now, route, Routed};

/// The entry's fast path (see the module doc). Never constructed: a namespace for JS.
#[wasm_bindgen]
#[derive(Debug)]
pub struct FastPath {}

#[wasm_bindgen]
impl FastPath {
    /// For a public route, the pending upstream response (a rejected promise if the
    /// subrequest failed, for [`Self::unreachable`]); for a protected one it can take on, an
    /// [`InFlight`]; otherwise `undefined`. `started`: `Date.now()` when the request arrived.
    pub fn take(request: web_sys::Request, env: Env, started: f64) -> JsValue {
        let Ok(settings) = config::current(&env) else {
            return JsValue::UNDEFINED;
        };
        let href = request.url();
        let url = RequestUrl::split(&href);
        let method = request.method();
        let Routed::Route {
            route,
            upstream,
            target,
        } = route(&settings, &method, &url)
        else {
            return JsValue::UNDEFINED;
        };
        // Both fail before the client's body is handed over, so the full handler can still
        // make the answer it makes today (a 502 for an unbound service, a 400 for a request the
        // platform will not rebuild).
        let Ok(via) = proxy::fetcher(upstream, &env) else {
            return JsValue::UNDEFINED;
        };
        match route.access {
            routes::Access::Public => {
                let Ok(outbound) = proxy::outbound(&request, &method, &target, None) else {
                    return JsValue::UNDEFINED;
                };
                match via.fetch(&outbound) {
                    Ok(pending) => pending.into(),
                    Err(cause) => js_sys::Promise::reject(&cause).into(),
                }
            }
            routes::Access::Protected => {
                let trace = Trace {
                    route: Some(route.label().to_owned()),
                    upstream: Some(upstream.name.clone()),
                };
                let taken = InFlight::take(
                    settings.clone(),
                    &request,
                    &env,
                    (route, upstream, target, method),
                    via,
                    trace,
                    started,
                );
                taken.map_or(JsValue::UNDEFINED, JsValue::from)
            }
            routes::Access::PublicSigned => JsValue::UNDEFINED,
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
        if let Ok(settings) = &settings {
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
        Ok(finish(answer, &request, &trace, millis(started)))
    }
}

/// A protected request the fast path took on, between JS's awaits (the module doc has the
/// steps). JS frees it when the request is answered.
#[wasm_bindgen]
#[derive(Debug)]
pub struct InFlight {
    state: Rc<State>,
}

struct State {
    outgoing: Outgoing,
    /// The bearer token's memoised claims.
    claims: AccessClaims,
    /// The request to the upstream, built before the lookup (so a request the platform will
    /// not rebuild went to the full handler instead), still without its assertion.
    outbound: web_sys::Request,
    via: Fetcher,
    /// The Upstash lookup's pending reply ([`Upstash::start`]).
    lookup: js_sys::Promise,
    /// Which database the lookup reads.
    strict: bool,
    /// The assertion's signing input, between [`InFlight::decide`] and [`InFlight::send`].
    signing: RefCell<Option<String>>,
    trace: Trace,
    started: u64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl InFlight {
    /// Takes on the protected request routed to `upstream` if it needs no await before its
    /// lookup: its token is memoised and the assertion key imported. Starts the lookup.
    /// `method`: the client's, as [`FastPath::take`] read it for routing.
    fn take(
        settings: Rc<config::Settings>,
        request: &web_sys::Request,
        env: &Env,
        (route, upstream, target, method): (
            &routes::Route,
            &routes::Upstream,
            proxy::TargetUrl,
            String,
        ),
        via: Fetcher,
        trace: Trace,
        started: f64,
    ) -> Option<Self> {
        let now = now();
        let authorization = request.headers().get("authorization").ok()??;
        let token = jwt::bearer_token(Some(&authorization)).ok()?;
        let claims = gate::memoised(token, now)?;
        if !settings.assertions.signer.is_imported() {
            return None;
        }
        let outgoing = Outgoing::new(settings, request, env, upstream, target, method, now).ok()?;
        let outbound = proxy::outbound(request, &outgoing.method, &outgoing.target, None).ok()?;
        // Committed from here: the client's body belongs to `outbound`.
        let strict = route.strict;
        let lookup = match Upstash::new(&outgoing.settings, strict).start(&claims) {
            Ok(pending) => pending,
            // What the full handler would answer for a lookup it could not send: 503.
            Err(e) => js_sys::Promise::resolve(&JsValue::from_str(&e.to_string())),
        };
        Some(Self {
            state: Rc::new(State {
                claims,
                outbound,
                via,
                lookup,
                strict,
                signing: RefCell::new(None),
                trace,
                started: millis(started),
                outgoing,
            }),
        })
    }

    fn finish(&self, answer: Answer) -> JsValue {
        let s = &self.state;
        finish(answer, &s.outgoing.request, &s.trace, s.started).into()
    }
}

#[wasm_bindgen]
impl InFlight {
    /// The lookup's pending reply; it never rejects.
    #[wasm_bindgen(getter)]
    pub fn lookup(&self) -> js_sys::Promise {
        self.state.lookup.clone()
    }

    /// The decision on the lookup's `reply`: the edge's refusal (a `Response`), the pending
    /// signature of the assertion to [`Self::send`] (a promise of its bytes), or `undefined`
    /// when the origin must decide ([`Self::origin_decides`]).
    pub fn decide(&self, reply: JsValue) -> Result<JsValue, JsValue> {
        let s = &self.state;
        let settings = &s.outgoing.settings;
        let lookup = Upstash::new(settings, s.strict).read(&reply);
        let claims = match gate::decide(s.claims.clone(), lookup) {
            Ok(Access::Granted(claims)) => claims,
            Ok(Access::OriginDecides(_)) => return Ok(JsValue::UNDEFINED),
            Err(denied) => return Ok(self.finish(denied.answer()?)),
        };
        let input = s.outgoing.signing_input(Some(&claims));
        let signer = &settings.assertions.signer;
        match signer.start(&input) {
            Ok(pending) => {
                *s.signing.borrow_mut() = Some(input);
                Ok(pending.into())
            }
            Err(e) => Ok(self.finish(protected::signing_failed(&e)?)),
        }
    }

    /// Forwards the request with the assertion whose `signature` JS awaited: the pending
    /// upstream response (rejected if the subrequest failed, for [`Self::unreachable`]).
    pub fn send(&self, signature: &js_sys::ArrayBuffer) -> Result<js_sys::Promise, JsValue> {
        let s = &self.state;
        let Some(input) = s.signing.borrow_mut().take() else {
            return Err(JsValue::from_str("send before decide"));
        };
        let signature = js_sys::Uint8Array::new(signature).to_vec();
        let assertion = jwt::append_signature(input, &signature);
        s.outbound.headers().set(proxy::ASSERTION, &assertion)?;
        Ok(s.via
            .fetch(&s.outbound)
            .unwrap_or_else(|cause| js_sys::Promise::reject(&cause)))
    }

    /// The 503 for a signature WebCrypto would not make (`cause`: the rejection).
    pub fn unsigned(&self, cause: &JsValue) -> Result<JsValue, JsValue> {
        let e = crypto::CryptoError::failed("sign", cause);
        Ok(self.finish(protected::signing_failed(&e)?))
    }

    /// The 502 for the upstream's subrequest that failed (`cause`: the rejection).
    pub fn unreachable(&self, cause: &JsValue) -> Result<JsValue, JsValue> {
        let answer = proxy::unreachable(&self.state.outgoing.upstream.name, cause)?;
        Ok(self.finish(answer))
    }

    /// The rest of the request when the user's version key was missing: the origin's check,
    /// then the forward, awaited in the wasm as the full handler does (a rare path: after an
    /// eviction or a flush). A promise of the response.
    #[wasm_bindgen(js_name = originDecides)]
    pub fn origin_decides(&self) -> js_sys::Promise {
        let this = Self {
            state: self.state.clone(),
        };
        future_to_promise(async move {
            let s = &this.state;
            let authorization = s.outgoing.request.headers().get("authorization")?;
            let refusal = s
                .outgoing
                .origin_decides(&s.claims, authorization.as_deref())
                .await?;
            if let Some(answer) = refusal {
                return Ok(this.finish(answer));
            }
            let input = s.outgoing.signing_input(Some(&s.claims));
            let assertion = match s.outgoing.settings.assertions.signer.sign(input).await {
                Ok(assertion) => assertion,
                Err(e) => return Ok(this.finish(protected::signing_failed(&e)?)),
            };
            s.outbound.headers().set(proxy::ASSERTION, &assertion)?;
            let answer = proxy::send(&s.outbound, &s.outgoing.upstream, &s.outgoing.env).await?;
            Ok(this.finish(answer))
        })
    }
}

/// `Date.now()` from JS as whole milliseconds: far inside u64, never negative.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn millis(started: f64) -> u64 {
    started.max(0.0) as u64
}
