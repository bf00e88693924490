//! A thin Upstash REST client over the platform's `fetch`: one `/pipeline` call per protected
//! request.
//!
//! The published `upstash-redis-rs` needs nightly, does not build for wasm32 and has no
//! pipelines; what we need is one POST, so the wire types come from `tollgate_shared::upstash`
//! (shared with the REST bridge) and the transport is here. It calls `fetch` through `web_sys`
//! ([`crate::proxy::fetch_public`], as the JWKS does): `worker::Fetch` and `worker::Request` would
//! bring their `cf` options' serialisation (serde-wasm-bindgen) into the wasm for nothing.
//!
//! Every failure — unreachable, slower than the deadline, a non-200 answer, a per-command error,
//! a body of the wrong shape — is an [`UpstashFailure`], and the caller fails closed with 503:
//! without the lookup we cannot know the token was not revoked.

use std::pin::pin;
use std::time::Duration;

use futures_util::future::{select, Either};
use tollgate_shared::upstash::{self, Command, ValidationLookup};
use tollgate_shared::AccessClaims;
use worker::wasm_bindgen::JsValue;
use worker::{web_sys, Delay};

use crate::config::Settings;
use crate::proxy;
use crate::weburl::WebUrl;

/// Why the lookup could not be used. Only for logs: the client always sees 503 `unavailable`.
#[derive(Debug)]
pub(crate) enum UpstashFailure {
    /// The request could not be built or sent (connection refused, DNS, TLS…).
    Unreachable(String),
    /// No complete answer within `UPSTASH_TIMEOUT_MS`.
    Timeout(Duration),
    /// An HTTP status other than 200 (401: wrong token; 400: a command failed; 5xx).
    Status(u16),
    /// A 200 whose body is not the two replies we asked for.
    Body(upstash::UpstashError),
}

impl std::fmt::Display for UpstashFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(e) => write!(f, "Upstash unreachable: {e}"),
            // Whole milliseconds as u64: formatting a u128 (`as_millis`) links its own code.
            Self::Timeout(t) => write!(
                f,
                "Upstash did not answer within {} ms",
                u64::try_from(t.as_millis()).unwrap_or(u64::MAX)
            ),
            Self::Status(s) => write!(f, "Upstash answered HTTP {s}"),
            Self::Body(e) => write!(f, "{e}"),
        }
    }
}

/// The client for one request.
#[derive(Debug)]
pub(crate) struct Upstash<'a> {
    settings: &'a Settings,
    /// Read the strict (primary) database, for a `strict` route.
    strict: bool,
}

impl<'a> Upstash<'a> {
    pub fn new(settings: &'a Settings, strict: bool) -> Self {
        Self { settings, strict }
    }

    /// The REST endpoint and token this request reads: the strict database for a strict route
    /// (configuration guarantees it exists), else the default, possibly a read region.
    fn endpoint(&self) -> (&'a WebUrl, &'a str) {
        match (&self.settings.upstash_strict, self.strict) {
            (Some((url, token)), true) => (url, token.expose()),
            _ => (
                &self.settings.upstash_url,
                self.settings.upstash_token.expose(),
            ),
        }
    }

    /// `HMGET tg:{sub} j:{jti} v` in one `/pipeline` round trip.
    pub async fn validation_lookup(
        &self,
        claims: &AccessClaims,
    ) -> Result<ValidationLookup, UpstashFailure> {
        let commands = upstash::validation_pipeline(&self.settings.keys, claims);
        let body = self.pipeline(&commands).await?;
        upstash::parse_validation_replies(&body).map_err(UpstashFailure::Body)
    }

    /// POSTs `commands` to `/pipeline` and returns the 200 body, racing the whole exchange
    /// (headers and body) against the deadline; on timeout the fetch is aborted so it does not
    /// linger in the isolate.
    async fn pipeline(&self, commands: &[Command]) -> Result<Vec<u8>, UpstashFailure> {
        let unreachable = |e: JsValue| UpstashFailure::Unreachable(proxy::describe(&e));
        let controller = web_sys::AbortController::new().map_err(unreachable)?;
        let request = self
            .request(commands, &controller.signal())
            .map_err(unreachable)?;
        let timeout = self.settings.upstash_timeout;
        let exchange = async move {
            let response = proxy::fetch_public(&request).await.map_err(unreachable)?;
            match response.status() {
                200 => proxy::body(&response).await.map_err(unreachable),
                status => Err(UpstashFailure::Status(status)),
            }
        };
        match select(pin!(exchange), pin!(Delay::from(timeout))).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(((), _)) => {
                controller.abort();
                Err(UpstashFailure::Timeout(timeout))
            }
        }
    }

    fn request(
        &self,
        commands: &[Command],
        signal: &web_sys::AbortSignal,
    ) -> Result<web_sys::Request, JsValue> {
        let body =
            serde_json::to_string(commands).map_err(|e| JsValue::from_str(&e.to_string()))?;
        let (url, token) = self.endpoint();
        let headers = web_sys::Headers::new()?;
        headers.set("authorization", &format!("Bearer {token}"))?;
        headers.set("content-type", "application/json")?;
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_body(&JsValue::from_str(&body));
        init.set_signal(Some(signal));
        web_sys::Request::new_with_str_and_init(&pipeline_url(url), &init)
    }
}

/// `{base}/pipeline`, keeping any path the base URL has (a proxy may mount Upstash under one).
fn pipeline_url(base: &WebUrl) -> String {
    format!(
        "{}{}/pipeline",
        base.origin(),
        base.path.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_url_appends_to_any_base_path() {
        let u = |s: &str| crate::weburl::parse(s).expect("url");
        assert_eq!(
            pipeline_url(&u("https://eu1.upstash.io")),
            "https://eu1.upstash.io/pipeline"
        );
        assert_eq!(
            pipeline_url(&u("http://127.0.0.1:8079/")),
            "http://127.0.0.1:8079/pipeline"
        );
        assert_eq!(
            pipeline_url(&u("http://h/redis/?x=1#f")),
            "http://h/redis/pipeline"
        );
    }
}
