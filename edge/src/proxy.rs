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
use worker::{web_sys, Env, Url};

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

/// Sends the client's request on to `upstream` at `target`, with `assertion` (the signed
/// identity, or an anonymous one) as the only `x-tollgate-*` header.
pub(crate) async fn forward(
    request: &web_sys::Request,
    target: &Url,
    upstream: &Upstream,
    assertion: Option<&str>,
    env: &Env,
) -> worker::Result<Answer> {
    let headers = web_sys::Headers::new()?;
    for (name, value) in forwarded_headers(&header_pairs(&request.headers()), assertion) {
        headers.append(&name, &value)?;
    }
    let method = request.method();
    let init = web_sys::RequestInit::new();
    init.set_method(&method);
    init.set_headers(&headers);
    // A redirect is the upstream's answer to the client, not ours to follow.
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if !matches!(method.as_str(), "GET" | "HEAD") {
        if let Some(body) = request.body() {
            // Streamed, not buffered: the edge never holds a whole upload in memory.
            init.set_body(&body);
        }
    }
    let outbound = web_sys::Request::new_with_str_and_init(target.as_str(), &init)?;
    send(&outbound, upstream, env).await
}

/// One subrequest to `upstream`, by public fetch or through its service binding. An upstream
/// that cannot be reached is a 502 JSON answer, never a thrown error.
pub(crate) async fn send(
    outbound: &web_sys::Request,
    upstream: &Upstream,
    env: &Env,
) -> worker::Result<Answer> {
    let promise = match &upstream.target {
        Target::Url(_) => {
            let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
            Ok(global.fetch_with_request(outbound))
        }
        Target::Service(binding) => env
            .service(binding)
            .map(|fetcher| fetcher.into_rpc::<worker::worker_sys::Fetcher>())
            .map_err(|e| worker::wasm_bindgen::JsValue::from_str(&e.to_string()))
            .and_then(|fetcher| fetcher.fetch(outbound)),
    };
    let outcome = match promise {
        Ok(promise) => JsFuture::from(promise).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(response) => Ok(Answer::Upstream(response.dyn_into::<web_sys::Response>()?)),
        Err(cause) => Ok(respond::bad_gateway()?.because(format_args!(
            "upstream {} unreachable: {}",
            upstream.name,
            describe(&cause)
        ))),
    }
}

/// Where the request goes: the upstream URL's path (if any) followed by the request's path, and
/// the request's query. A service binding gets the request's own path on a placeholder host.
pub(crate) fn target_url(upstream: &Upstream, request: &Url) -> Url {
    let mut target = match &upstream.target {
        Target::Url(base) => base.clone(),
        Target::Service(_) => request.clone(),
    };
    let base_path = match &upstream.target {
        Target::Url(base) => base.path().trim_end_matches('/').to_owned(),
        Target::Service(_) => String::new(),
    };
    target.set_path(&format!("{base_path}{}", request.path()));
    target.set_query(request.query());
    target.set_fragment(None);
    target
}

/// The assertion header's name, for callers that add it.
pub(crate) const ASSERTION: &str = assertion::HEADER;

/// The headers the upstream receives, given the client's (`name`, `value`) pairs:
/// - hop-by-hop headers and those named in `Connection` are dropped;
/// - every client-sent `X-Tollgate-*` is dropped, whatever its case (names are compared
///   lowercased), so a client can never bring its own assertion;
/// - `Host` is dropped (fetch sets the origin's), `Content-Length` is kept so the origin sees the
///   upload's real length;
/// - `X-Forwarded-For` is replaced by the client IP from `CF-Connecting-IP` (set by Cloudflare,
///   which overwrites any client value), or dropped when there is none: a client-sent chain is
///   never trusted;
/// - with an `assertion`, it is added as [`ASSERTION`].
pub(crate) fn forwarded_headers(
    incoming: &[(String, String)],
    assertion: Option<&str>,
) -> Vec<(String, String)> {
    let lower: Vec<(String, &str)> = incoming
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_str()))
        .collect();
    let named_by_connection: Vec<String> = lower
        .iter()
        .filter(|(n, _)| n == "connection")
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let client_ip = lower
        .iter()
        .find(|(n, _)| n == "cf-connecting-ip")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let mut out: Vec<(String, String)> = lower
        .iter()
        .filter(|(n, _)| {
            !(HOP_BY_HOP.contains(&n.as_str())
                || n.starts_with("proxy-")
                || n.starts_with(TOLLGATE_HEADER_PREFIX)
                || n == "host"
                || n == "x-forwarded-for"
                || named_by_connection.contains(n))
        })
        .map(|(n, v)| (n.clone(), (*v).to_owned()))
        .collect();
    if let Some(ip) = client_ip {
        out.push(("x-forwarded-for".into(), ip));
    }
    if let Some(assertion) = assertion {
        out.push((ASSERTION.into(), assertion.to_owned()));
    }
    out
}

/// A `Headers` object as (`name`, `value`) pairs; entries that are not two strings (never seen
/// in practice) are skipped rather than unwrapped.
pub(crate) fn header_pairs(headers: &web_sys::Headers) -> Vec<(String, String)> {
    headers
        .entries()
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pair: js_sys::Array = entry.dyn_into().ok()?;
            Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
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

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn names(headers: &[(String, String)]) -> Vec<&str> {
        headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn client_tollgate_and_hop_by_hop_headers_never_pass() {
        let out = forwarded_headers(
            &pairs(&[
                ("X-Tollgate-User-Id", "evil"),
                ("x-TOLLGATE-anything", "evil"),
                ("Connection", "keep-alive, X-Secret-Hop"),
                ("Keep-Alive", "timeout=5"),
                ("Proxy-Authorization", "Basic x"),
                ("TE", "trailers"),
                ("Trailer", "x"),
                ("Transfer-Encoding", "chunked"),
                ("Upgrade", "websocket"),
                ("x-secret-hop", "1"),
                ("Host", "edge.example"),
                ("Authorization", "Bearer t"),
                ("Content-Type", "application/json"),
                ("X-Forwarded-For", "6.6.6.6"),
            ]),
            None,
        );
        assert_eq!(names(&out), ["authorization", "content-type"]);
    }

    #[test]
    fn forwarded_for_is_the_connecting_ip_and_only_our_assertion_is_added() {
        let out = forwarded_headers(
            &pairs(&[
                ("CF-Connecting-IP", "203.0.113.7"),
                ("X-Forwarded-For", "6.6.6.6"),
                ("X-Tollgate-Assertion", "forged"),
                ("x-tollgate-assertion", "forged"),
            ]),
            Some("signed"),
        );
        let get = |n: &str| {
            out.iter()
                .filter(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("x-forwarded-for"), ["203.0.113.7"]);
        assert_eq!(get(ASSERTION), ["signed"]);
    }

    #[test]
    fn target_keeps_path_and_query_under_the_upstream() {
        let u = |s: &str| Url::parse(s).expect("url");
        let up = |base: &str| Upstream {
            name: "x".into(),
            target: Target::Url(u(base)),
        };
        let req = u("https://edge.example/api/users/me?x=1&y=%20#frag");
        assert_eq!(
            target_url(&up("http://127.0.0.1:8080"), &req).as_str(),
            "http://127.0.0.1:8080/api/users/me?x=1&y=%20"
        );
        assert_eq!(
            target_url(&up("https://o.example/base/"), &req).as_str(),
            "https://o.example/base/api/users/me?x=1&y=%20"
        );
        let service = Upstream {
            name: "s".into(),
            target: Target::Service("NOTES".into()),
        };
        assert_eq!(
            target_url(&service, &req).as_str(),
            "https://edge.example/api/users/me?x=1&y=%20"
        );
    }
}
