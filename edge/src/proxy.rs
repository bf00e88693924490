//! Forwarding to an upstream: same method, path, query, body and end-to-end headers, with the
//! headers only the edge may set replaced.
//!
//! The upstream's response is returned as the very `Response` object `fetch` produced, so status,
//! headers and the streamed body reach the client untouched (rebuilding it would, among other
//! things, throw on a 204/304 that carries a body stream).

use tollgate_shared::assertion;
use worker::js_sys;
use worker::wasm_bindgen::JsCast as _;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{web_sys, Env};

use crate::log::Answer;
use crate::respond;
use crate::routes::{Target, Upstream};

/// Every header with this prefix is the edge's to set: any client-sent one is dropped on every
/// route, so the assertion header can only come from us.
pub(crate) const TOLLGATE_HEADER_PREFIX: &str = "x-tollgate-";

/// Hop-by-hop headers (RFC 9110 §7.6.1) describe the client's connection to us, not ours to the
/// upstream. `Proxy-*` is matched by prefix.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Sends the client's request (its `method`, as read once by the caller) on to `upstream` at
/// `target`, with `assertion` (the signed identity, or an anonymous one) as the only
/// `x-tollgate-*` header.
pub(crate) async fn forward(
    request: &web_sys::Request,
    method: &str,
    target: &TargetUrl,
    upstream: &Upstream,
    assertion: Option<&str>,
    env: &Env,
) -> worker::Result<Answer> {
    let outbound = outbound(request, method, target, assertion)?;
    send(&outbound, upstream, env).await
}

/// The request the upstream receives: the client's method, body and headers, on `target`,
/// minus what [`dropped_headers`] names, with `X-Forwarded-For` from `CF-Connecting-IP` and
/// `assertion` added. Synchronous, so that the JS entry's fast path and [`forward`]
/// build it the same way.
///
/// The client's `Headers` object is handed to the new request as it is (the platform copies it
/// natively); only the names are read into the Worker, in one string, and the few headers
/// [`dropped_headers`] names are deleted from the copy. Copying every header through the wasm
/// boundary, as the edge first did, cost a dozen JS calls per header. On a public route each
/// call across the boundary still counts (BENCHMARKS.md, issue 8 §6), so the request is built
/// by one JS helper call ([`js::outbound`]), and values are read only for the headers the names
/// show are there.
pub(crate) fn outbound(
    request: &web_sys::Request,
    method: &str,
    target: &TargetUrl,
    assertion: Option<&str>,
) -> worker::Result<web_sys::Request> {
    let names = js::header_names(request);
    let has = |name: &str| names.split(',').any(|n| n == name);
    let value = |name: &str| -> worker::Result<Option<String>> {
        Ok(if has(name) {
            request.headers().get(name)?
        } else {
            None
        })
    };
    let connection = value("connection")?;
    // A client-sent chain is never trusted: it is dropped, and only Cloudflare's
    // `CF-Connecting-IP` (which overwrites any client value) becomes the new one.
    let client_ip = value("cf-connecting-ip")?
        .map(|ip| ip.trim().to_owned())
        .filter(|ip| !ip.is_empty());
    let dropped = dropped_headers(names.split(','), connection.as_deref()).join(",");
    // Name, value, name, value…: neither can hold a line break.
    let mut set = Vec::with_capacity(4);
    if let Some(ip) = &client_ip {
        set.extend(["x-forwarded-for", ip]);
    }
    if let Some(assertion) = assertion {
        set.extend([ASSERTION, assertion]);
    }
    // Streamed, not buffered: the edge never holds a whole upload in memory.
    let with_body = !matches!(method, "GET" | "HEAD");
    Ok(js::outbound(
        &target.href,
        request,
        (method != "GET").then_some(method),
        with_body,
        &dropped,
        &set.join("\n"),
    )?)
}

/// The JS side of [`outbound`] and [`fetch_own`]: one call each instead of one per getter,
/// setter and deletion.
mod js {
    use worker::wasm_bindgen::prelude::wasm_bindgen;
    use worker::wasm_bindgen::JsValue;
    use worker::web_sys;

    #[wasm_bindgen(inline_js = r#"
export function header_names(request) {
  return Array.from(request.headers.keys()).join();
}
export function outbound(href, request, method, withBody, dropped, set) {
  // A redirect is the upstream's answer to the client, not ours to follow.
  const out = new Request(href, {
    method,
    headers: request.headers,
    body: withBody ? request.body : undefined,
    redirect: "manual",
  });
  const headers = out.headers;
  if (dropped) for (const name of dropped.split(",")) headers.delete(name);
  if (set) {
    const pairs = set.split("\n");
    for (let i = 0; i + 1 < pairs.length; i += 2) headers.set(pairs[i], pairs[i + 1]);
  }
  return out;
}
export function fetch_own(url, bearer, body, ms) {
  const headers = {};
  if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  // A timer cleared when the exchange ends, so none outlives its request (with
  // `AbortSignal.timeout` the timer's life is the platform's to decide).
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), ms);
  const method = body === undefined ? "GET" : "POST";
  return fetch(url, { method, headers, body, signal: deadline.signal })
    .then(async (r) => (r.status === 200 ? new Uint8Array(await r.arrayBuffer()) : r.status))
    .catch((e) => (deadline.signal.aborted ? null : String((e && e.message) || e)))
    .finally(() => clearTimeout(timer));
}
"#)]
    extern "C" {
        /// The request's header names, lowercased, joined by commas (which no header name, an
        /// RFC 9110 token, can contain).
        pub fn header_names(request: &web_sys::Request) -> String;

        /// `new Request(href, …)` with the client's headers (and body when `with_body`), manual
        /// redirects, the `dropped` names (comma-joined) deleted and the `set` pairs (name and
        /// value, newline-joined) set. Throws, caught, for a request the platform will not
        /// rebuild. What to drop and set is decided in Rust ([`super::outbound`]).
        #[wasm_bindgen(catch)]
        pub fn outbound(
            href: &str,
            request: &web_sys::Request,
            method: Option<&str>,
            with_body: bool,
            dropped: &str,
            set: &str,
        ) -> Result<web_sys::Request, JsValue>;

        /// [`super::fetch_own`]'s request, `fetch` and body. Settles, never rejects, with the
        /// 200 body's bytes (a `Uint8Array`), another status (a number), `null` when the
        /// deadline passed first, or the error's message (a string).
        pub fn fetch_own(
            url: &str,
            bearer: Option<&str>,
            body: Option<&str>,
            ms: u32,
        ) -> worker::js_sys::Promise;
    }
}

/// How a subrequest reaches an upstream: the public `fetch`, or its service binding.
pub(crate) enum Fetcher {
    Global(web_sys::WorkerGlobalScope),
    Service(worker::worker_sys::Fetcher),
}

impl Fetcher {
    /// The platform's `fetch`, to the public network.
    fn global() -> Self {
        Self::Global(js_sys::global().unchecked_into())
    }

    /// Starts the subrequest; the promise settles with the upstream's `Response`.
    pub fn fetch(
        &self,
        outbound: &web_sys::Request,
    ) -> Result<js_sys::Promise, worker::wasm_bindgen::JsValue> {
        match self {
            Self::Global(global) => Ok(global.fetch_with_request(outbound)),
            Self::Service(binding) => binding.fetch(outbound),
        }
    }
}

/// The way to `upstream`. A service binding that is not bound is an error here, before any
/// request is built.
pub(crate) fn fetcher(
    upstream: &Upstream,
    env: &Env,
) -> Result<Fetcher, worker::wasm_bindgen::JsValue> {
    match &upstream.target {
        Target::Url(_) => Ok(Fetcher::global()),
        Target::Service(binding) => env
            .service(binding)
            .map(|fetcher| Fetcher::Service(fetcher.into_rpc()))
            .map_err(|e| worker::wasm_bindgen::JsValue::from_str(&e.to_string())),
    }
}

/// One subrequest to `upstream`, by public fetch or through its service binding. An upstream
/// that cannot be reached is a 502 JSON answer, never a thrown error.
pub(crate) async fn send(
    outbound: &web_sys::Request,
    upstream: &Upstream,
    env: &Env,
) -> worker::Result<Answer> {
    let outcome = match fetcher(upstream, env).and_then(|via| via.fetch(outbound)) {
        Ok(promise) => JsFuture::from(promise).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(response) => Ok(Answer::Upstream(response.dyn_into::<web_sys::Response>()?)),
        Err(cause) => unreachable(&upstream.name, &cause),
    }
}

/// What one of the edge's own subrequests (the Upstash lookup, the origin's JWKS) came back
/// with, read from the settled value of [`fetch_own`].
#[derive(Debug)]
pub(crate) enum Reply {
    /// A 200, and its whole body.
    Body(Vec<u8>),
    /// Any other status (the body is not read).
    Status(u16),
    /// No complete answer, headers and body, within the deadline.
    TimedOut,
    /// Not sent or not answered (refused, reset, DNS, TLS…): why.
    Failed(String),
}

impl Reply {
    pub fn read(reply: &worker::wasm_bindgen::JsValue) -> Self {
        if let Some(body) = reply.dyn_ref::<js_sys::Uint8Array>() {
            return Self::Body(body.to_vec());
        }
        if let Some(status) = reply.as_f64() {
            // An HTTP status: a whole number below 1000.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            return Self::Status(status as u16);
        }
        if reply.is_null() {
            return Self::TimedOut;
        }
        Self::Failed(describe(reply))
    }
}

/// Starts one of the edge's own subrequests on the public network — a GET of `url`, or a POST
/// of the JSON `body` — with `bearer` as its credential, within `timeout`. The promise never
/// rejects: it settles with what [`Reply::read`] takes. Building the request, `fetch` and
/// reading the body are one JS call ([`js::fetch_own`]), so a lookup costs one promise whether
/// the wasm awaits it or the JS entry does; the deadline covers the whole exchange and aborts
/// the fetch, so it does not linger in the isolate.
pub(crate) fn fetch_own(
    url: &str,
    bearer: Option<&str>,
    body: Option<&str>,
    timeout: std::time::Duration,
) -> js_sys::Promise {
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
    js::fetch_own(url, bearer, body, ms)
}

/// The whole body of `response`.
pub(crate) async fn body(
    response: &web_sys::Response,
) -> Result<Vec<u8>, worker::wasm_bindgen::JsValue> {
    let buffer = JsFuture::from(response.array_buffer()?).await?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// The 502 for an upstream whose subrequest failed (refused, reset, no such binding), with
/// the cause for the log line.
pub(crate) fn unreachable(
    upstream: &str,
    cause: &worker::wasm_bindgen::JsValue,
) -> worker::Result<Answer> {
    Ok(respond::bad_gateway()?.because(format_args!(
        "upstream {upstream} unreachable: {}",
        describe(cause)
    )))
}

/// A request's URL in its three parts, split without a parse: workerd hands the Worker
/// `request.url` already serialised by its WHATWG URL parser (dot segments resolved, the path
/// percent-encoded), so the path here is the one `Url::parse` would give, at the cost of three
/// `find`s per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestUrl<'a> {
    /// `scheme://authority`.
    pub origin: &'a str,
    /// From the first `/` after the authority (`/` when there is none), without the query.
    pub path: &'a str,
    /// After the `?`, if there is one (possibly empty); a fragment is dropped.
    pub query: Option<&'a str>,
}

impl<'a> RequestUrl<'a> {
    pub fn split(url: &'a str) -> Self {
        let url = url.split_once('#').map_or(url, |(before, _)| before);
        let authority = url.find("://").map_or(0, |i| i + 3);
        let path_at = url[authority..]
            .find(['/', '?'])
            .map_or(url.len(), |i| authority + i);
        let (origin, rest) = url.split_at(path_at);
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        Self {
            origin,
            path: if path.is_empty() { "/" } else { path },
            query,
        }
    }
}

/// Where a request goes, as the text `fetch` takes, with the path the assertion binds (`htu`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TargetUrl {
    pub href: String,
    path: std::ops::Range<usize>,
}

impl TargetUrl {
    /// The target's path, without the query.
    pub fn path(&self) -> &str {
        &self.href[self.path.clone()]
    }
}

/// Where the request goes: the upstream URL's path (if any) followed by the request's path, and
/// the request's query. A service binding gets the request's own path on the request's host
/// (a placeholder: the binding routes it).
pub(crate) fn target_url(upstream: &Upstream, request: &RequestUrl<'_>) -> TargetUrl {
    let (origin, base_path) = match &upstream.target {
        Target::Url(base) => (base.origin.as_str(), base.path.as_str()),
        Target::Service(_) => (request.origin, ""),
    };
    let query = request.query.map_or(0, |q| q.len() + 1);
    let mut href =
        String::with_capacity(origin.len() + base_path.len() + request.path.len() + query);
    href.push_str(origin);
    let start = href.len();
    href.push_str(base_path);
    href.push_str(request.path);
    let end = href.len();
    if let Some(q) = request.query {
        href.push('?');
        href.push_str(q);
    }
    TargetUrl {
        href,
        path: start..end,
    }
}

/// The assertion header's name, for callers that add it.
pub(crate) const ASSERTION: &str = assertion::HEADER;

/// Which of the client's header `names` the upstream must not receive:
/// - hop-by-hop headers and those named in `connection` (the `Connection` header's value);
/// - every client-sent `X-Tollgate-*`, whatever its case, so a client can never bring its own
///   assertion (the edge adds its own after this);
/// - `Host` (fetch sets the upstream's) and `X-Forwarded-For` (the edge sets it from
///   `CF-Connecting-IP`, or sends none).
///
/// Everything else passes, `Content-Length` included, so the upstream sees an upload's real
/// length. Names are compared case-insensitively (`Headers` yields them lowercased anyway).
pub(crate) fn dropped_headers<'a>(
    names: impl Iterator<Item = &'a str>,
    connection: Option<&str>,
) -> Vec<&'a str> {
    let named_by_connection: Vec<String> = connection
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    names
        .filter(|name| !name.is_empty())
        .filter(|name| {
            let n = name.to_ascii_lowercase();
            HOP_BY_HOP.contains(&n.as_str())
                || n.starts_with("proxy-")
                || n.starts_with(TOLLGATE_HEADER_PREFIX)
                || n == "host"
                || n == "x-forwarded-for"
                || named_by_connection.contains(&n)
        })
        .collect()
}

/// A thrown JS value as text for a log line.
pub(crate) fn describe(value: &worker::wasm_bindgen::JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| "unknown error".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::BaseUrl;

    /// The names that pass, given the client's names and `Connection` value.
    fn passed<'a>(names: &[&'a str], connection: Option<&str>) -> Vec<&'a str> {
        let dropped = dropped_headers(names.iter().copied(), connection);
        names
            .iter()
            .copied()
            .filter(|n| !dropped.contains(n))
            .collect()
    }

    #[test]
    fn client_tollgate_and_hop_by_hop_headers_never_pass() {
        let names = [
            "X-Tollgate-User-Id",
            "x-TOLLGATE-anything",
            "x-tollgate-assertion",
            "Connection",
            "Keep-Alive",
            "Proxy-Authorization",
            "TE",
            "Trailer",
            "Transfer-Encoding",
            "Upgrade",
            "x-secret-hop",
            "Host",
            "Authorization",
            "Content-Type",
            "Content-Length",
            "X-Forwarded-For",
        ];
        assert_eq!(
            passed(&names, Some("keep-alive, X-Secret-Hop")),
            ["Authorization", "Content-Type", "Content-Length"]
        );
        // Without a Connection header, only the names it would have listed come back.
        assert_eq!(
            passed(&["x-secret-hop", "accept"], None),
            ["x-secret-hop", "accept"]
        );
        // The names come joined by commas: no header (so no empty name) yields no deletion.
        assert_eq!(dropped_headers("".split(','), None), Vec::<&str>::new());
    }

    #[test]
    fn target_keeps_path_and_query_under_the_upstream() {
        let up = |base: &str| Upstream {
            name: "x".into(),
            target: Target::Url(BaseUrl::new(&crate::weburl::parse(base).expect("url"))),
        };
        let req = RequestUrl::split("https://edge.example/api/users/me?x=1&y=%20#frag");
        let to_local = target_url(&up("http://127.0.0.1:8080"), &req);
        assert_eq!(
            to_local.href,
            "http://127.0.0.1:8080/api/users/me?x=1&y=%20"
        );
        assert_eq!(to_local.path(), "/api/users/me");
        let under_base = target_url(&up("https://u:p@o.example:8443/base/"), &req);
        assert_eq!(
            under_base.href,
            "https://u:p@o.example:8443/base/api/users/me?x=1&y=%20"
        );
        assert_eq!(under_base.path(), "/base/api/users/me");
        let service = Upstream {
            name: "s".into(),
            target: Target::Service("NOTES".into()),
        };
        assert_eq!(
            target_url(&service, &req).href,
            "https://edge.example/api/users/me?x=1&y=%20"
        );
    }

    /// The split agrees with the URL parser on every URL workerd can hand us (it has serialised
    /// them with the same WHATWG rules).
    #[test]
    fn a_request_url_splits_as_the_url_parser_reads_it() {
        for text in [
            "http://127.0.0.1:8787/health",
            "https://edge.example/",
            "https://edge.example/api/notes/1?x=1&y=%20",
            "https://edge.example/a?",
            "https://user:pw@edge.example:8443/a%2Fb/c;d?q=1?2#frag",
            "https://edge.example/?only=query",
        ] {
            let parsed = worker::Url::parse(text).expect("url");
            let split = RequestUrl::split(parsed.as_str());
            assert_eq!(split.path, parsed.path(), "{text}");
            assert_eq!(split.query, parsed.query(), "{text}");
            assert_eq!(
                split.origin,
                &parsed.as_str()[..parsed.as_str().len()
                    - parsed.path().len()
                    - parsed.query().map_or(0, |q| q.len() + 1)
                    - parsed.fragment().map_or(0, |f| f.len() + 1)],
                "{text}"
            );
        }
        let bare = RequestUrl::split("https://edge.example");
        assert_eq!((bare.path, bare.query), ("/", None));
    }
}
