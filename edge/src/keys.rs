//! The access-token verification keys: the static ones from configuration (`TOLLGATE_JWKS`,
//! `JWT_SECRET`) plus, with `JWKS_URL`, the origin's published JWKS — so a key the origin
//! publishes before it signs with it is known here without a redeploy.
//!
//! The fetched set is kept per isolate for `JWKS_CACHE_SECS` and in the Workers Cache API (so a
//! fresh isolate in the same colo usually needs no fetch). A token naming a `kid` we do not know
//! triggers at most one network fetch per `JWKS_MIN_REFETCH_SECS` per isolate, bypassing the
//! Cache API: a flood of made-up kids never becomes a flood of fetches. A failed fetch keeps the
//! keys already known; a token whose kid is still unknown after a *failed* fetch is a 503 (we
//! cannot tell a new key from a forged one), after a successful one a 401 `token_signature`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tollgate_shared::json;
use tollgate_shared::jwt::{Jwks, KeySet};
use worker::wasm_bindgen::{JsCast as _, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::ext::CacheStorageExt as _;
use worker::{console_error, js_sys, web_sys};

use crate::config::Settings;
use crate::proxy::{self, Reply};
use crate::weburl::WebUrl;

/// Where to fetch the origin's JWKS, and how long to trust a copy.
#[derive(Debug, Clone)]
pub(crate) struct JwksSource {
    /// `JWKS_URL`: the origin's `/.well-known/jwks.json`.
    pub url: WebUrl,
    /// `JWKS_CACHE_SECS` (default 300).
    pub ttl: Duration,
    /// `JWKS_MIN_REFETCH_SECS` (default 30).
    pub min_refetch: Duration,
    /// Deadline for one fetch (the `UPSTASH_TIMEOUT_MS` budget).
    pub timeout: Duration,
}

/// The keys to verify one token with.
#[derive(Debug)]
pub(crate) enum Keys<'a> {
    /// The configured keys, borrowed: a token whose kid they know costs no copy and no fetch.
    Static(&'a KeySet),
    Ready(Rc<KeySet>),
    /// The kid is unknown and the JWKS could not be fetched: fail closed with 503.
    Unavailable,
}

#[derive(Debug, Default)]
struct Fetched {
    /// Static keys plus the fetched JWKS, rebuilt on each successful fetch.
    keys: Option<Rc<KeySet>>,
    fetched_ms: Option<u64>,
    attempted_ms: Option<u64>,
    last_failed: bool,
}

thread_local! {
    static FETCHED: RefCell<Fetched> = RefCell::new(Fetched::default());
}

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

fn within(at: Option<u64>, span: Duration, now: u64) -> bool {
    at.is_some_and(|t| now.saturating_sub(t) < u64::try_from(span.as_millis()).unwrap_or(u64::MAX))
}

/// The keys for a token naming `kid` (a token without one needs no fetch: no key matches it).
pub(crate) async fn for_kid<'a>(settings: &'a Settings, kid: &str) -> Keys<'a> {
    let Some(source) = &settings.jwks else {
        return Keys::Static(&settings.key_set);
    };
    if settings.key_set.get(kid).is_some() {
        return Keys::Static(&settings.key_set);
    }
    let now = now_ms();
    let (cached, fresh, known, tried_lately, last_failed) = FETCHED.with(|f| {
        let f = f.borrow();
        let known = f.keys.as_ref().is_some_and(|keys| keys.get(kid).is_some());
        (
            f.keys.clone(),
            within(f.fetched_ms, source.ttl, now),
            known,
            within(f.attempted_ms, source.min_refetch, now),
            f.last_failed,
        )
    });
    if let Some(keys) = &cached {
        if (fresh && known) || tried_lately {
            return ready_or_unavailable(keys.clone(), kid, last_failed);
        }
    }
    // Stale or never fetched: the Cache API may hold a copy another isolate fetched — unless
    // this is an unknown kid on fresh keys, which must go to the network.
    let from_cache = if cached.is_none() || !fresh {
        cache_get(&source.url).await
    } else {
        None
    };
    let fetched = match from_cache {
        Some(jwks) => Ok(jwks),
        None => fetch(source).await,
    };
    let (keys, last_failed) = FETCHED.with(|f| {
        let mut f = f.borrow_mut();
        f.attempted_ms = Some(now);
        match fetched {
            Ok(jwks) => {
                let mut keys = settings.key_set.clone();
                match keys.extend_from_jwks(&jwks) {
                    Ok(()) => {
                        f.keys = Some(Rc::new(keys));
                        f.fetched_ms = Some(now);
                        f.last_failed = false;
                    }
                    Err(e) => {
                        console_error!("JWKS_URL answered an unusable JWKS: {e}");
                        f.last_failed = true;
                    }
                }
            }
            Err(e) => {
                console_error!("keeping the keys already known: {e}");
                f.last_failed = true;
            }
        }
        let keys = f
            .keys
            .clone()
            .unwrap_or_else(|| Rc::new(settings.key_set.clone()));
        (keys, f.last_failed)
    });
    ready_or_unavailable(keys, kid, last_failed)
}

fn ready_or_unavailable(keys: Rc<KeySet>, kid: &str, last_failed: bool) -> Keys<'static> {
    if keys.get(kid).is_none() && last_failed {
        Keys::Unavailable
    } else {
        Keys::Ready(keys)
    }
}

/// The Workers Cache API's default cache (`caches.default`).
fn default_cache() -> Result<web_sys::Cache, JsValue> {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    Ok(global.caches()?.default())
}

async fn cache_get(url: &WebUrl) -> Option<Jwks> {
    let options = web_sys::CacheQueryOptions::new();
    options.set_ignore_method(true);
    let found = default_cache()
        .ok()?
        .match_with_str_and_options(&url.href, &options);
    let found = JsFuture::from(found).await.ok()?;
    // `match` answers `undefined` when nothing is cached.
    let response: web_sys::Response = found.dyn_into().ok()?;
    json::from_slice(&proxy::body(&response).await.ok()?).ok()
}

/// GETs the JWKS within the deadline and stores a copy in the Cache API for `ttl`.
async fn fetch(source: &JwksSource) -> Result<Jwks, String> {
    let reply = JsFuture::from(proxy::fetch_own(
        &source.url.href,
        None,
        None,
        source.timeout,
    ))
    .await
    .unwrap_or_else(|e| e);
    let mut body = match Reply::read(&reply) {
        Reply::Body(body) => body,
        Reply::Status(status) => return Err(format!("JWKS_URL answered HTTP {status}")),
        Reply::TimedOut => return Err("JWKS_URL did not answer in time".into()),
        Reply::Failed(e) => return Err(e),
    };
    let jwks: Jwks = json::from_slice(&body).map_err(|e| format!("not a JWKS: {e}"))?;
    if let Err(e) = cache_put(source, &mut body).await {
        console_error!(
            "could not keep the JWKS in the Cache API: {}",
            proxy::describe(&e)
        );
    }
    Ok(jwks)
}

/// Keeps `body` in the Cache API under the JWKS URL for `ttl`.
async fn cache_put(source: &JwksSource, body: &mut [u8]) -> Result<(), JsValue> {
    let headers = web_sys::Headers::new()?;
    headers.set(
        "cache-control",
        &format!("public, max-age={}", source.ttl.as_secs()),
    )?;
    let init = web_sys::ResponseInit::new();
    init.set_headers(&headers);
    let copy = web_sys::Response::new_with_opt_u8_array_and_init(Some(body), &init)?;
    JsFuture::from(default_cache()?.put_with_str(&source.url.href, &copy)).await?;
    Ok(())
}
