//! A thin Upstash REST client over the platform's `fetch`: one `/pipeline` call per protected
//! request.
//!
//! The published `upstash-redis-rs` needs nightly, does not build for wasm32 and has no
//! pipelines; what we need is one POST, so the wire types come from `tollgate_shared::upstash`
//! (shared with the REST bridge) and the transport is the edge's own subrequest
//! ([`proxy::fetch_own`]: the POST and its answer in one JS call), awaited in the wasm by the
//! full handler ([`Upstash::validation_lookup`]) or in JS by the entry's fast path
//! ([`crate::entry`]). `worker::Fetch` and `worker::Request` would bring their `cf` options'
//! serialisation (serde-wasm-bindgen) into the wasm for nothing.
//!
//! Every failure — unreachable, slower than the deadline, a non-200 answer, a per-command error,
//! a body of the wrong shape — is an [`UpstashFailure`], and the caller fails closed with 503:
//! without the lookup we cannot know the token was not revoked.

use std::time::Duration;

use tollgate_shared::upstash::{self, ValidationLookup};
use tollgate_shared::AccessClaims;
use worker::js_sys;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;

use crate::config::Settings;
use crate::proxy::{self, Reply};
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

    /// `HMGET tg:{sub} j:{jti} v` in one `/pipeline` round trip, awaited here.
    pub async fn validation_lookup(
        &self,
        claims: &AccessClaims,
    ) -> Result<ValidationLookup, UpstashFailure> {
        let reply = JsFuture::from(self.start(claims)?)
            .await
            .unwrap_or_else(|e| e);
        self.read(&reply)
    }

    /// Sends the lookup for `claims` and returns its pending reply, a promise that never
    /// rejects ([`proxy::fetch_own`], within `UPSTASH_TIMEOUT_MS`): [`Self::read`] takes it.
    pub fn start(&self, claims: &AccessClaims) -> Result<js_sys::Promise, UpstashFailure> {
        let commands = upstash::validation_pipeline(&self.settings.keys, claims);
        let body = serde_json::to_string(&commands)
            .map_err(|e| UpstashFailure::Unreachable(e.to_string()))?;
        let (url, token) = self.endpoint();
        let timeout = self.settings.upstash_timeout;
        Ok(proxy::fetch_own(
            &pipeline_url(url),
            Some(token),
            Some(&body),
            timeout,
        ))
    }

    /// The lookup from the settled reply of [`Self::start`].
    pub fn read(&self, reply: &JsValue) -> Result<ValidationLookup, UpstashFailure> {
        match Reply::read(reply) {
            Reply::Body(body) => {
                upstash::parse_validation_replies(&body).map_err(UpstashFailure::Body)
            }
            Reply::Status(status) => Err(UpstashFailure::Status(status)),
            Reply::TimedOut => Err(UpstashFailure::Timeout(self.settings.upstash_timeout)),
            Reply::Failed(e) => Err(UpstashFailure::Unreachable(e)),
        }
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
