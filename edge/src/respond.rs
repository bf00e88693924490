//! The edge's own answers: the documented error body, built from `tollgate_shared` so a client
//! sees byte-for-byte what the origin would have sent for the same failure.

use tollgate_shared::error::{error_headers, ErrorBody};
use tollgate_shared::{ErrorCode, Rejection};
use worker::web_sys;

use crate::log::{Answer, Refusal};

/// A refused bearer token: 401, its code and message, and
/// `WWW-Authenticate: Bearer error="invalid_token"` — the origin's exact response.
pub(crate) fn rejection(r: Rejection) -> worker::Result<Answer> {
    error(r.code(), r.message(), r.code().status())
}

/// A dependency we cannot do without is down or misconfigured: 503 `unavailable` with
/// `Retry-After: 1`, as the origin answers when Redis is down. The cause is logged by the
/// caller, never sent.
pub(crate) fn unavailable() -> worker::Result<Answer> {
    error(
        ErrorCode::Unavailable,
        "service temporarily unavailable",
        ErrorCode::Unavailable.status(),
    )
}

/// The upstream could not be reached: 502 (RFC 9110 §15.6.3: the gateway got no usable answer
/// upstream), with the same `unavailable` code a client already handles.
pub(crate) fn bad_gateway() -> worker::Result<Answer> {
    error(ErrorCode::Unavailable, "upstream is unreachable", 502)
}

/// A request the platform would not let us rebuild or forward (for instance conflicting
/// `Content-Length` values): the client's framing is at fault, so 400 `invalid_input`, never
/// the bare 500 an unhandled error would become.
pub(crate) fn bad_request() -> worker::Result<Answer> {
    error(
        ErrorCode::InvalidInput,
        "the request could not be forwarded",
        400,
    )
}

/// A path that could be read two ways (encoded slashes or dots, `//`, `..;`): 400, before any
/// route is chosen.
pub(crate) fn invalid_path() -> worker::Result<Answer> {
    error(
        ErrorCode::InvalidInput,
        "the request path is not canonical",
        400,
    )
}

/// No route owns the path: 404 here, no upstream is asked.
pub(crate) fn not_found() -> worker::Result<Answer> {
    error(ErrorCode::NotFound, "not found", 404)
}

/// The edge's assertion keys, for upstreams to fetch and cache (a success: not logged).
pub(crate) fn jwks(json: &str) -> worker::Result<Answer> {
    let headers = web_sys::Headers::new()?;
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", "public, max-age=300")?;
    let init = web_sys::ResponseInit::new();
    init.set_status(200);
    init.set_headers(&headers);
    Ok(Answer::Upstream(
        web_sys::Response::new_with_opt_str_and_init(Some(json), &init)?,
    ))
}

fn error(code: ErrorCode, message: &str, status: u16) -> worker::Result<Answer> {
    let headers = web_sys::Headers::new()?;
    headers.set("content-type", "application/json")?;
    for (name, value) in error_headers(code, None) {
        headers.set(name, &value)?;
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers);
    let body = ErrorBody::new(code, message).to_json();
    let response = web_sys::Response::new_with_opt_str_and_init(Some(&body), &init)?;
    Ok(Answer::Edge(
        response,
        Refusal {
            code,
            status,
            detail: None,
        },
    ))
}
