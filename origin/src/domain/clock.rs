//! The origin's one clock: every "now" the origin judges by comes from here.

/// Current unix time in seconds.
pub fn now() -> i64 {
    now_ms().div_euclid(1000)
}

/// Current unix time in milliseconds: the one clock the refresh grace window is judged by.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 form of a unix timestamp.
pub fn rfc3339(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
