//! A routed request that leaves with the edge's signature (a protected or `public_signed`
//! route), after the gate: its identity assertion, the origin's version check when Redis has
//! lost a version key, and the forward — written once for both entries, the full async
//! handler ([`crate::handle`]) and the JS entry's fast path ([`crate::entry`]).

use std::rc::Rc;

use tollgate_shared::assertion::{self, AssertionClaims};
use tollgate_shared::{jwt, AccessClaims, ErrorBody, ErrorCode};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{web_sys, Env};

use crate::config::Settings;
use crate::crypto::CryptoError;
use crate::log::{self, Answer};
use crate::proxy::{self, RequestUrl, TargetUrl};
use crate::respond;
use crate::routes::Upstream;

/// The upstream that owns accounts: the one that can re-seed a missing version key from SQL.
const ORIGIN: &str = "origin";

/// The origin route the edge asks when it cannot check a token's version itself.
const ORIGIN_CHECK_PATH: &str = "/api/users/me";

/// One request on its way to `upstream` at `target`, with what its assertion binds.
pub(crate) struct Outgoing {
    pub settings: Rc<Settings>,
    pub request: web_sys::Request,
    pub env: Env,
    pub upstream: Upstream,
    pub target: TargetUrl,
    /// The client's method, read once.
    pub method: String,
    /// `CF-Connecting-IP`, for the assertion's `ip`.
    client_ip: Option<String>,
    /// Unix seconds when the request arrived: the assertion's `iat`.
    pub now: i64,
}

impl Outgoing {
    pub fn new(
        settings: Rc<Settings>,
        request: &web_sys::Request,
        env: &Env,
        upstream: &Upstream,
        target: TargetUrl,
        method: String,
        now: i64,
    ) -> worker::Result<Self> {
        let client_ip = request.headers().get("cf-connecting-ip")?;
        Ok(Self {
            settings,
            // The handle, not `Request.clone()` (which would tee the body).
            request: Clone::clone(request),
            env: env.clone(),
            upstream: upstream.clone(),
            target,
            method,
            client_ip,
            now,
        })
    }

    /// The assertion's claims: for `who` (the token's claims, and whether its version was
    /// checked), or anonymous; meant for `audience`, bound to `htm` and `htu`.
    fn claims(
        &self,
        who: Option<(&AccessClaims, bool)>,
        audience: &str,
        htm: &str,
        htu: &str,
    ) -> AssertionClaims {
        let a = &self.settings.assertions;
        AssertionClaims {
            iss: a.issuer.clone(),
            aud: audience.to_owned(),
            sub: who.map(|(c, _)| c.sub.clone()),
            sid: who.map(|(c, _)| c.sid.clone()),
            jti: who.map(|(c, _)| c.jti.clone()),
            ver: who.map(|(c, _)| c.ver),
            ver_checked: who.is_some_and(|(_, checked)| checked),
            ip: self.client_ip.clone(),
            htm: htm.to_owned(),
            htu: htu.to_owned(),
            iat: self.now,
            exp: self.now + a.ttl,
        }
    }

    /// The signing input of the assertion this request carries to its upstream (`who`'s
    /// version checked, or anonymous): the full handler signs it with
    /// [`crate::crypto::EdgeSigner::sign`]; the JS entry's fast path starts the signature with
    /// [`crate::crypto::EdgeSigner::start`] and awaits it in JS.
    pub fn signing_input(&self, who: Option<&AccessClaims>) -> String {
        let claims = self.claims(
            who.map(|c| (c, true)),
            &self.upstream.name,
            &self.method,
            self.target.path(),
        );
        self.input_of(&claims)
    }

    /// The JWS signing input of `claims` under the edge's signing key.
    fn input_of(&self, claims: &AssertionClaims) -> String {
        let kid = &self.settings.assertions.signer.kid;
        jwt::signing_input(jwt::Algorithm::EdDSA, kid, assertion::TYP, claims)
    }

    /// Signs the assertion for `who` (checked) and forwards the request with it. A signature
    /// we could not make fails closed: the upstream would refuse the request.
    pub async fn forward(&self, who: Option<&AccessClaims>) -> worker::Result<Answer> {
        let input = self.signing_input(who);
        match self.settings.assertions.signer.sign(input).await {
            Ok(assertion) => {
                proxy::forward(
                    &self.request,
                    &self.method,
                    &self.target,
                    &self.upstream,
                    Some(&assertion),
                    &self.env,
                )
                .await
            }
            Err(e) => signing_failed(&e),
        }
    }

    /// Asks the origin to decide a token whose version key is missing from Redis: a `GET
    /// /api/users/me` carrying the token (`authorization`) and an assertion marked
    /// `ver_checked: false`, which the origin answers by checking against SQL (re-seeding the
    /// key as it goes). `None`: accepted, forward the request; `Some(answer)`: the origin's
    /// refusal to pass on (logged as the edge's: it refuses the request on the origin's word),
    /// or 503 when it gave no usable answer.
    pub async fn origin_decides(
        &self,
        claims: &AccessClaims,
        authorization: Option<&str>,
    ) -> worker::Result<Option<Answer>> {
        let Some(origin) = self.settings.routes.upstream(ORIGIN) else {
            return Ok(Some(respond::unavailable()?.because(format_args!(
                "failing closed: a version key is missing and no upstream is named {ORIGIN}"
            ))));
        };
        let href = self.request.url();
        let check = RequestUrl {
            path: ORIGIN_CHECK_PATH,
            query: None,
            ..RequestUrl::split(&href)
        };
        let probe = proxy::target_url(origin, &check);
        let claims = self.claims(Some((claims, false)), ORIGIN, "GET", probe.path());
        let input = self.input_of(&claims);
        let unchecked = match self.settings.assertions.signer.sign(input).await {
            Ok(assertion) => assertion,
            Err(e) => return signing_failed(&e).map(Some),
        };
        let headers = web_sys::Headers::new()?;
        if let Some(value) = authorization {
            headers.set("authorization", value)?;
        }
        headers.set(proxy::ASSERTION, &unchecked)?;
        let init = web_sys::RequestInit::new();
        init.set_method("GET");
        init.set_headers(&headers);
        let outbound = web_sys::Request::new_with_str_and_init(&probe.href, &init)?;
        let response = match proxy::send(&outbound, origin, &self.env).await? {
            Answer::Upstream(response) => response,
            unreachable @ Answer::Edge(..) => return Ok(Some(unreachable)),
        };
        Ok(match response.status() {
            200 => None,
            401 => {
                // The origin's code, read from a copy of its body, for the log line.
                let copy = response.clone()?;
                let text = JsFuture::from(copy.text()?).await?;
                let code = text
                    .as_string()
                    .and_then(|t| tollgate_shared::json::from_str::<ErrorBody>(&t).ok())
                    .map_or(ErrorCode::TokenRevoked, |b| b.error.code);
                Some(Answer::Edge(
                    response,
                    log::Refusal {
                        code,
                        status: 401,
                        detail: Some("refused by the origin's version check".into()),
                    },
                ))
            }
            status => Some(respond::unavailable()?.because(format_args!(
                "failing closed: the origin answered {status} to a version check"
            ))),
        })
    }
}

/// The 503 for an assertion we could not sign.
pub(crate) fn signing_failed(e: &CryptoError) -> worker::Result<Answer> {
    Ok(respond::unavailable()?.because(format_args!("failing closed: {e}")))
}
