//! The Worker's structured log: exactly one JSON line (`console.log`) for each request the edge
//! refuses itself (a 4xx it decided) or fails (a 5xx: Upstash, the JWKS, an upstream it could
//! not reach, a bad configuration), and none for a request it forwarded. One line per event,
//! one JSON object per line, is what Workers Logs indexes and Logpush ships without parsing.
//!
//! Fields: `level` (`warn` for a refusal, `error` for a failure), `code` (the API error code
//! the client got), `status`, `method`, `route` (the matched route's configured path or prefix,
//! never the client's own path), `upstream`, `ms` (time in the Worker, which in workerd advances
//! only across I/O, so it is the wait for Upstash/upstreams), `ray` (`CF-Ray`, to find the
//! request in Cloudflare's logs) and, for failures, `detail`: the cause from our own error
//! types. Never a header value, token, assertion, cookie or query string: nothing here is built
//! from what the client sent except the method, which is one of a fixed set or refused.

use serde::Serialize;
use tollgate_shared::ErrorCode;
use worker::{console_log, web_sys};

/// What the edge answered on its own, for the log line.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub code: ErrorCode,
    pub status: u16,
    /// For failures: why (our own error's text, never a value from the request).
    pub detail: Option<String>,
}

/// A response and, when the edge made it itself, why.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The upstream's response, passed through untouched: not logged.
    Upstream(web_sys::Response),
    /// The edge's own answer: logged.
    Edge(web_sys::Response, Refusal),
}

impl Answer {
    /// The same answer with `detail` recorded for the log (edge answers only).
    pub fn because(self, detail: impl std::fmt::Display) -> Self {
        match self {
            Self::Edge(response, refusal) => Self::Edge(
                response,
                Refusal {
                    detail: Some(detail.to_string()),
                    ..refusal
                },
            ),
            upstream => upstream,
        }
    }
}

/// What is known about the request when its answer is logged.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub route: Option<String>,
    pub upstream: Option<String>,
}

#[derive(Serialize)]
struct Line<'a> {
    level: &'a str,
    code: &'a str,
    status: u16,
    method: &'a str,
    route: Option<&'a str>,
    upstream: Option<&'a str>,
    ms: u64,
    ray: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

/// The log line for `refusal`, as JSON.
pub(crate) fn line(
    refusal: &Refusal,
    method: &str,
    trace: &Trace,
    ms: u64,
    ray: Option<&str>,
) -> String {
    let line = Line {
        level: if refusal.status >= 500 {
            "error"
        } else {
            "warn"
        },
        code: refusal.code.as_str(),
        status: refusal.status,
        method,
        route: trace.route.as_deref(),
        upstream: trace.upstream.as_deref(),
        ms,
        ray,
        detail: refusal.detail.as_deref(),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// Writes the line for an answer the edge made itself (a forwarded one has none).
pub(crate) fn emit(refusal: &Refusal, method: &str, trace: &Trace, ms: u64, ray: Option<&str>) {
    console_log!("{}", line(refusal, method, trace, ms, ray));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_json_object_with_the_documented_fields() {
        let trace = Trace {
            route: Some("/api/notes".into()),
            upstream: Some("notes".into()),
        };
        let refusal = Refusal {
            code: ErrorCode::TokenRevoked,
            status: 401,
            detail: None,
        };
        let text = line(&refusal, "GET", &trace, 3, Some("8f1e-LHR"));
        assert!(!text.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["level"], "warn");
        assert_eq!(v["code"], "token_revoked");
        assert_eq!(v["status"], 401);
        assert_eq!(v["route"], "/api/notes");
        assert_eq!(v["upstream"], "notes");
        assert_eq!(v["ray"], "8f1e-LHR");
        assert!(v.get("detail").is_none());
        let failed = Refusal {
            code: ErrorCode::Unavailable,
            status: 503,
            detail: Some("Upstash answered HTTP 401".into()),
        };
        let v: serde_json::Value =
            serde_json::from_str(&line(&failed, "POST", &Trace::default(), 1000, None))
                .expect("json");
        assert_eq!(v["level"], "error");
        assert_eq!(v["route"], serde_json::Value::Null);
        assert_eq!(v["detail"], "Upstash answered HTTP 401");
    }
}
