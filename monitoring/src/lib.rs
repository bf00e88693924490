//! What the origin's and the bridge's Prometheus metrics share, so each service only says what
//! it records: installing the recorder once, the flag the hot path checks before building labels,
//! the `/metrics` listener with the recorder's upkeep, and the middleware that counts (and
//! optionally times) every HTTP request by its matched route template. Native only (axum,
//! tokio): `tollgate-shared` stays pure and wasm-safe.
//!
//! Label values come from fixed sets, so callers cannot mint series: routes are matched
//! templates (never raw paths) or [`UNMATCHED_ROUTE`], methods the standard ones or `other`.
//!
//! # Layout
//! One file: [`Recorder`] (install, enabled), [`serve`] and [`exposition`] for the listener,
//! [`track_http`] with its labels [`route_label`] and [`method_label`], and [`undocumented`]
//! for the services' README checks.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use metrics::{counter, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Label of requests no route matched (scans, typos): one series, not one per path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// A service's Prometheus recorder: installed at most once per process, with that service's
/// latency buckets (every `*_seconds` histogram) and its HELP lines. A `static` per service.
#[derive(Debug)]
pub struct Recorder {
    handle: OnceLock<PrometheusHandle>,
    buckets: &'static [f64],
    describe: fn(),
}

impl Recorder {
    /// `describe` runs once, after installing: HELP lines, and zeroes for bounded label sets so
    /// `rate()` sees a counter's first event.
    pub const fn new(buckets: &'static [f64], describe: fn()) -> Self {
        Self {
            handle: OnceLock::new(),
            buckets,
            describe,
        }
    }

    /// Installs the process-wide recorder (once; later calls return the same handle, so several
    /// instances of a service built in one process share one registry).
    pub fn install(&self) -> anyhow::Result<PrometheusHandle> {
        if let Some(handle) = self.handle.get() {
            return Ok(handle.clone());
        }
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), self.buckets)
            .context("metric buckets")?
            .install_recorder()
            .context("Failed to install the Prometheus recorder")?;
        let handle = self.handle.get_or_init(|| handle).clone();
        (self.describe)();
        Ok(handle)
    }

    /// Whether the recorder is installed: without one every record call is a no-op, and the hot
    /// path skips even building its labels.
    pub fn enabled(&self) -> bool {
        self.handle.get().is_some()
    }
}

/// Serves `app` (the service's `/metrics` route) on `listener` until `shutdown`, and runs the
/// recorder's upkeep every 5 s meanwhile (it drains histogram samples even when nobody scrapes).
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let upkeep = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            handle.run_upkeep();
        }
    });
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    upkeep.abort();
    result
}

/// The answer to a scrape: everything recorded, in the text exposition format.
pub fn exposition(handle: &PrometheusHandle) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// Middleware body: counts the request in `requests` by method, matched route template and
/// final status, and, given `duration`, records its latency there by method and route.
/// `Router::layer` runs it after routing, so the template is known.
pub async fn track_http(
    recorder: &Recorder,
    requests: &'static str,
    duration: Option<&'static str>,
    req: Request,
    next: Next,
) -> Response {
    if !recorder.enabled() {
        return next.run(req).await;
    }
    let route = route_label(&req);
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    if let Some(duration) = duration {
        histogram!(duration, "method" => method, "route" => route.clone())
            .record(started.elapsed().as_secs_f64());
    }
    counter!(requests, "method" => method, "route" => route, "status" => status).increment(1);
    response
}

/// The matched route template (`/api/users/logout-device/{token_id}`), or [`UNMATCHED_ROUTE`].
pub fn route_label(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned())
}

/// The standard methods by name; anything else (`FOO`, hand-made verbs) is one bucket.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The names that lack `prefix` or that `readme` does not list as `` `name` ``: each service's
/// unit test asks for none, so its README metrics table and its names stay in step.
pub fn undocumented<'a>(names: &[&'a str], prefix: &str, readme: &str) -> Vec<&'a str> {
    names
        .iter()
        .copied()
        .filter(|name| !name.starts_with(prefix) || !readme.contains(&format!("`{name}`")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_share_one_label() {
        let custom = Method::from_bytes(b"FROBNICATE").expect("method");
        assert_eq!(method_label(&custom), "other");
        assert_eq!(method_label(&Method::POST), "POST");
    }

    #[test]
    fn a_name_is_documented_with_its_prefix_and_in_backticks() {
        let readme = "| `svc_a_total` | … |\n| svc_b_total | … |";
        let names = ["svc_a_total", "svc_b_total", "other_a_total"];
        assert_eq!(
            undocumented(&names, "svc_", readme),
            ["svc_b_total", "other_a_total"]
        );
    }
}
