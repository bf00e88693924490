//! The admin page: token statistics now, and their last hour as charts.
//!
//! The history comes from SQL, the state every origin instance shares, so each instance draws
//! the same chart (in-process counters would show one instance's share, and reset on restart):
//! logins and refreshes per minute are counted from the rows they write (`device_sessions`
//! `created_at`, `refresh_secrets` `issued_at`, both kept far longer than the hour shown), and
//! Redis's counts, which leave no trace of their own, are sampled once a minute into
//! `stats_samples` by whichever instance gets there first ([`sample_periodically`]).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use tollgate_shared::ErrorCode;

use super::session::{PageError, PageSession};
use super::{layout, Viewer};
use crate::db::StatsSample;
use crate::domain::{self, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::routes::meta::require_admin;
use crate::state::AppState;

/// Minutes shown on the charts.
const WINDOW_MINUTES: i64 = 60;
/// Minutes of samples kept (a week).
const KEEP_MINUTES: i64 = 7 * 24 * 60;

pub async fn page(
    State(state): State<AppState>,
    session: PageSession,
) -> Result<Response, PageError> {
    let id = &session.identity;
    let user = session.user(&state).await?;
    let viewer = Viewer::new(&user, &session);
    match require_admin(&state, &id.user_id).await {
        Ok(()) => {}
        Err(ApiError::Client(ErrorCode::Forbidden, _)) => {
            let body = layout(
                "Admins only",
                Some(&viewer),
                html! {
                    h1 { "Admins only" }
                    p.error { "This page needs the admin role, which your account does not have." }
                },
            );
            return Ok((StatusCode::FORBIDDEN, session.cookies(), body).into_response());
        }
        Err(e) => return Err(e.into()),
    }
    let now = domain::now();
    sample(&state, now).await?;
    let (redis, computed_at) = state
        .redis_stats
        .get(&state.redis, now, state.settings.token_stats_max_age)
        .await?;
    let counts = state.db.session_counts(now).await?;
    let first = now.div_euclid(60) - WINDOW_MINUTES + 1;
    let samples = state.db.stats_samples(first).await?;
    let logins = per_minute(&state.db.logins_per_minute(first * 60).await?, first);
    let secrets = per_minute(&state.db.secrets_per_minute(first * 60).await?, first);
    // Every login issues one refresh secret and every rotation one more.
    let refreshes: Vec<f64> = secrets
        .iter()
        .zip(&logins)
        .map(|(s, l)| (s - l).max(0.0))
        .collect();
    let sampled = |f: fn(&StatsSample) -> i64| -> Vec<(i64, f64)> {
        samples
            .iter()
            .map(|s| (s.minute - first, f(s) as f64))
            .collect()
    };
    let dense = |v: &[f64]| -> Vec<(i64, f64)> { (0..).zip(v.iter().copied()).collect() };
    let body = layout(
        "Admin",
        Some(&viewer),
        html! {
            h1 { "Token statistics" }
            div.cards {
                (card("Access tokens (jtis in Redis)", redis.total_jtis))
                (card("Refresh mirrors in Redis", redis.total_refresh_tokens))
                (card("Active sessions", counts.active))
                (card("Revoked sessions", counts.revoked))
                (card("Logins, last hour", logins.iter().sum::<f64>() as i64))
                (card("Refreshes, last hour", refreshes.iter().sum::<f64>() as i64))
            }
            p.muted { "Redis memory " (redis.memory_usage) "; Redis counts computed at "
                time datetime=(rfc3339(computed_at)) { (rfc3339(computed_at)) } "." }
            h2 { "Logins and refreshes per minute" }
            (chart("logins-chart", "Logins and refreshes per minute, last 60 minutes", &[
                ("Logins", "#2563eb", dense(&logins)),
                ("Refreshes", "#16a34a", dense(&refreshes)),
            ]))
            h2 { "Tokens and sessions" }
            (chart("tokens-chart", "Live access tokens and sessions, sampled each minute", &[
                ("Access tokens (jtis)", "#7c3aed", sampled(|s| s.redis_jtis)),
                ("Active sessions", "#2563eb", sampled(|s| s.active_sessions)),
                ("Revoked sessions", "#dc2626", sampled(|s| s.revoked_sessions)),
            ]))
        },
    );
    Ok((session.cookies(), body).into_response())
}

fn card(label: &str, value: impl std::fmt::Display) -> Markup {
    html! { div.card { div.value { (value) } div.label { (label) } } }
}

/// `(minute, n)` rows as one value per minute of the window, zeros filled in.
fn per_minute(rows: &[(i64, i64)], first: i64) -> Vec<f64> {
    let mut out = vec![0.0; usize::try_from(WINDOW_MINUTES).unwrap_or(0)];
    for &(minute, n) in rows {
        if let Some(slot) = usize::try_from(minute - first)
            .ok()
            .and_then(|i| out.get_mut(i))
        {
            *slot = n as f64;
        }
    }
    out
}

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// A chart's line: its name, colour and `(minute offset, value)` points.
type Series<'a> = (&'a str, &'a str, Vec<(i64, f64)>);

/// A line chart of the window as inline SVG: one polyline (and dots) per series of
/// `(minute offset, value)` points, a y axis from 0 to the largest value, and a legend.
/// Presentation attributes only, no `style`, so the page's CSP needs no `unsafe-inline`.
fn chart(id: &str, label: &str, series: &[Series<'_>]) -> Markup {
    let max = series
        .iter()
        .flat_map(|(_, _, points)| points.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max)
        .max(1.0)
        .ceil();
    let span = (WINDOW_MINUTES - 1) as f64;
    let x = |minute: i64| LEFT + (W - LEFT - RIGHT) * minute as f64 / span;
    let y = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - v / max);
    let points = |pts: &[(i64, f64)]| -> String {
        pts.iter()
            .map(|&(m, v)| format!("{:.1},{:.1}", x(m), y(v)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    html! {
        figure.chart id=(id) {
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(label) {
                @for frac in [0.0, 0.5, 1.0] {
                    line x1=(LEFT) x2=(W - RIGHT) y1=(y(max * frac)) y2=(y(max * frac)) stroke="#e5e7eb" stroke-width="1" {}
                    text x=(LEFT - 6.0) y=(y(max * frac) + 4.0) text-anchor="end" font-size="11" fill="#6b7280" {
                        (format_value(max * frac))
                    }
                }
                text x=(LEFT) y=(H - 8.0) font-size="11" fill="#6b7280" { "60 min ago" }
                text x=(W - RIGHT) y=(H - 8.0) text-anchor="end" font-size="11" fill="#6b7280" { "now" }
                @for (name, color, pts) in series {
                    polyline.series data-series=(name) points=(points(pts)) fill="none" stroke=(color) stroke-width="2" stroke-linejoin="round" {}
                    @for &(m, v) in pts.iter().filter(|p| p.1 > 0.0 || pts.len() < 2) {
                        circle cx=(format!("{:.1}", x(m))) cy=(format!("{:.1}", y(v))) r="2.5" fill=(color) {}
                    }
                }
            }
            figcaption {
                (label) ": "
                @for (name, color, _) in series {
                    span.legend {
                        svg width="10" height="10" viewBox="0 0 10 10" aria-hidden="true" { rect width="10" height="10" fill=(color) {} }
                        " " (name)
                    }
                }
            }
        }
    }
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Records this minute's sample unless one exists. The Redis figures come through the same
/// bounded-age [`crate::redis::StatsCache`] as token-stats, so sampling adds no `SCAN`s
/// beyond its `TOKEN_STATS_MAX_AGE_SECS`.
pub async fn sample(state: &AppState, now: i64) -> ApiResult<()> {
    let minute = now.div_euclid(60);
    if state.db.has_stats_sample(minute).await? {
        return Ok(());
    }
    let (redis, _) = state
        .redis_stats
        .get(&state.redis, now, state.settings.token_stats_max_age)
        .await?;
    let counts = state.db.session_counts(now).await?;
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let sample = StatsSample {
        minute,
        redis_jtis: as_i64(redis.total_jtis),
        redis_refresh: as_i64(redis.total_refresh_tokens),
        active_sessions: counts.active,
        revoked_sessions: counts.revoked,
    };
    state
        .db
        .record_stats_sample(&sample, minute - KEEP_MINUTES)
        .await?;
    Ok(())
}

/// Samples every `STATS_SAMPLE_SECS` for as long as the origin runs (next to the cleanup
/// task); never when 0 — tests that count Redis commands turn it off.
pub async fn sample_periodically(state: AppState) {
    let every = state.settings.stats_sample_interval;
    if every == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(every));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        if let Err(e) = sample(&state, domain::now()).await {
            tracing::warn!(error = %e, "token statistics sample failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_minute_counts_fill_the_window_and_drop_strays() {
        let v = per_minute(&[(100, 3), (159, 2), (160, 9), (99, 7)], 100);
        assert_eq!(v.len(), 60);
        assert_eq!(v[0], 3.0);
        assert_eq!(v[59], 2.0);
        assert_eq!(v.iter().sum::<f64>(), 5.0);
    }

    #[test]
    fn the_chart_escapes_labels_and_plots_every_series() {
        let svg = chart(
            "c",
            "<script>",
            &[("a&b", "#000", vec![(0, 1.0), (59, 4.0)])],
        )
        .into_string();
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("a&amp;b"));
        assert!(svg.contains(&format!(
            "points=\"{LEFT:.1},{:.1} {:.1},{TOP:.1}\"",
            H - BOTTOM - (H - TOP - BOTTOM) * 0.25,
            W - RIGHT
        )));
    }
}
