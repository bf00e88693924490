//! Connection URLs with their credentials removed, for `Debug` output and logs.
//!
//! One function serves the origin and the bridge, so both print the same thing and a hostile
//! password cannot leak through one of them. Passwords in a `REDIS_URL` are often pasted in
//! unencoded, so `@`, `:` and `/` can all appear inside them: the credentials are taken to end at
//! the **last** `@`, and anything that cannot be read with certainty is redacted whole.

/// What replaces the credentials, the query and any URL that cannot be read.
pub const REDACTED: &str = "<redacted>";

/// `redis://user:p@ss/w:rd@host:6379/0` → `redis://<redacted>@host:6379/0`.
///
/// Kept: the scheme, and after the last `@` the host, port and path (the database number).
/// Redacted: everything between `://` and the last `@`, and the query and fragment (Redis URLs
/// for Unix sockets take `?pass=`). A string without a plain `scheme://` is redacted whole.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return REDACTED.to_owned();
    };
    let plain_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !plain_scheme {
        return REDACTED.to_owned();
    }
    let (credentials, location) = match rest.rfind('@') {
        Some(at) => (true, &rest[at + 1..]),
        None => (false, rest),
    };
    let (location, has_query) = match location.find(['?', '#']) {
        Some(end) => (&location[..end], true),
        None => (location, false),
    };
    let mut out = format!("{scheme}://");
    if credentials {
        out.push_str(REDACTED);
        out.push('@');
    }
    out.push_str(location);
    if has_query {
        out.push('?');
        out.push_str(REDACTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_passwords_never_survive_redaction() {
        // (url, the secret it carries, what must remain)
        let cases = [
            (
                "redis://:hunter2@db:6379/0",
                "hunter2",
                "redis://<redacted>@db:6379/0",
            ),
            (
                "redis://user:p@ss@db:6379",
                "p@ss",
                "redis://<redacted>@db:6379",
            ),
            ("redis://:a@b@c@db", "a@b@c", "redis://<redacted>@db"),
            (
                "redis://:p:w:d@db:6380/2",
                "p:w:d",
                "redis://<redacted>@db:6380/2",
            ),
            (
                "redis://:pa/ss@db:6379/1",
                "pa/ss",
                "redis://<redacted>@db:6379/1",
            ),
            (
                "rediss://u:@:/x@y@cache.example:6380",
                "@:/x@y",
                "rediss://<redacted>@cache.example:6380",
            ),
            ("redis://:s3cr//et@db", "s3cr//et", "redis://<redacted>@db"),
            ("redis://:p?w#d@db", "p?w#d", "redis://<redacted>@db"),
            (
                "redis+unix:///tmp/redis.sock?db=0&pass=s3cret",
                "s3cret",
                "redis+unix:///tmp/redis.sock?<redacted>",
            ),
            (
                "redis://db:6379/0?password=s3cret",
                "s3cret",
                "redis://db:6379/0?<redacted>",
            ),
            (
                "postgres://app:pg@ss:wd@pg:5432/tollgate",
                "pg@ss:wd",
                "postgres://<redacted>@pg:5432/tollgate",
            ),
            ("redis://:x://y@db", "x://y", "redis://<redacted>@db"),
        ];
        for (url, secret, expected) in cases {
            let shown = redact_url(url);
            assert!(!shown.contains(secret), "{url} → {shown}");
            assert_eq!(shown, expected, "{url}");
        }
    }

    #[test]
    fn urls_that_cannot_be_read_are_redacted_whole() {
        for url in [
            "",
            ":hunter2@db:6379",
            "hunter2",
            "weird:p@ss://db",
            "://:hunter2@db",
            "re dis://:hunter2@db",
        ] {
            assert_eq!(redact_url(url), REDACTED, "{url:?}");
        }
    }

    #[test]
    fn urls_without_credentials_keep_their_location() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("sqlite://tollgate.db"), "sqlite://tollgate.db");
    }
}
