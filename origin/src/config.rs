//! Typed configuration, read once from the environment (and `.env`) at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tollgate_shared::jwt::HmacSecret;
use tollgate_shared::redact::redact_url;

/// Why the configuration was refused; always names the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything the origin can be configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `BIND_ADDR`: where `serve` listens (port 0 picks a free port).
    pub bind: SocketAddr,
    /// `DATABASE_URL`: `sqlite://…` (default: `sqlite://tollgate.db?mode=rwc`) or `postgres://…`.
    pub database_url: SecretUrl,
    /// `REDIS_URL`, else built from the seed's `REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD`.
    pub redis_url: SecretUrl,
    /// `REDIS_KEY_PREFIX`: prepended to every key, so deployments and test runs can share a Redis.
    pub redis_prefix: String,
    /// `REDIS_TIMEOUT_MS`: per-call deadline; past it the request fails closed with 503.
    pub redis_timeout: Duration,
    /// `JWT_SECRET`: the seed's HS256 secret. When set, tokens are signed with it (HS256);
    /// Ed25519 keys from the key file still verify.
    pub jwt_secret: Option<HmacSecret>,
    /// `KEYS_FILE`: the Ed25519 key set (created on first `serve` or by `keys generate`).
    pub keys_file: PathBuf,
    /// `JWT_ISSUER` / `JWT_AUDIENCE`: the `iss` and `aud` every token carries and must match.
    pub issuer: String,
    pub audience: String,
    /// `ACCESS_TOKEN_TTL_SECS`: access-token lifetime, and the TTL of its jti record.
    pub access_ttl: u64,
    /// `REFRESH_TOKEN_TTL_SECS`: device-session lifetime, extended by each refresh.
    pub refresh_ttl: u64,
    /// `REFRESH_GRACE_SECS`: how long a rotated-away refresh secret may still be replayed once.
    pub refresh_grace: u64,
    /// Login limits count **failed** logins only, so any number of users behind one address (a
    /// carrier NAT) can log in. Per `LOGIN_RATE_WINDOW_SECS`:
    /// `LOGIN_RATE_LIMIT_PER_IP` failures per client address (IPv6 per /64) and
    /// `LOGIN_RATE_LIMIT_PER_EMAIL` failures per (email, address); past either, that address
    /// gets 429 for that scope until the window ends.
    pub login_limit_per_ip: u64,
    pub login_limit_per_email: u64,
    /// `LOGIN_FAILURE_CAP_PER_EMAIL`: failures for one email from all addresses together per
    /// window, the only limit that refuses an email everywhere; much higher than the others,
    /// so wrong passwords sent from elsewhere cannot lock the owner out cheaply. Logged when it
    /// trips.
    pub login_failure_cap_per_email: u64,
    pub login_window: u64,
    /// `REGISTER_RATE_LIMIT_PER_IP` registrations per client address (IPv6 per /64) per
    /// `REGISTER_RATE_WINDOW_SECS`.
    pub register_limit_per_ip: u64,
    pub register_window: u64,
    /// `TOKEN_STATS_MAX_AGE_SECS`: token-stats recomputes its Redis counts (a `SCAN` of the
    /// keyspace) at most this often; callers in between get the cached figures and their age.
    pub token_stats_max_age: u64,
    /// `TRUST_FORWARDED_FOR`: take the client IP from the last `X-Forwarded-For` hop (set it only
    /// behind the edge or another proxy that overwrites that header).
    pub trust_forwarded_for: bool,
    /// `CLEANUP_INTERVAL_SECS` (0 disables the background run) and `CLEANUP_RETENTION_SECS`
    /// (how long expired/revoked sessions are kept for audit before deletion).
    pub cleanup_interval: u64,
    pub cleanup_retention: u64,
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: LogFormat,
}

/// A connection URL (`REDIS_URL`, `DATABASE_URL`) that may carry a password. Its `Debug` prints
/// it through [`redact_url`], the function the bridge uses too, so no log line or error context
/// shows the credentials, whatever characters the password holds.
#[derive(Clone)]
pub struct SecretUrl(pub String);

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretUrl({})", redact_url(&self.0))
    }
}

impl std::ops::Deref for SecretUrl {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Settings {
    /// Reads the process environment, after loading `.env` if there is one.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get`, so tests can supply a map.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&get);
        let redis_url = match env.string("REDIS_URL") {
            Some(url) => url,
            None => {
                let host = env
                    .string("REDIS_HOST")
                    .unwrap_or_else(|| "127.0.0.1".into());
                let port: u16 = env.parse("REDIS_PORT", 6379)?;
                match env.string("REDIS_PASSWORD") {
                    Some(pw) => format!("redis://:{pw}@{host}:{port}"),
                    None => format!("redis://{host}:{port}"),
                }
            }
        };
        if !(redis_url.starts_with("redis://") || redis_url.starts_with("rediss://")) {
            return Err(ConfigError {
                var: "REDIS_URL",
                reason: "must start with redis:// or rediss://".into(),
            });
        }
        let database_url = env
            .string("DATABASE_URL")
            .unwrap_or_else(|| "sqlite://tollgate.db?mode=rwc".into());
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(ConfigError {
                var: "DATABASE_URL",
                reason: "must be a sqlite: or postgres:// URL".into(),
            });
        }
        let jwt_secret = match env.string("JWT_SECRET") {
            Some(s) => Some(HmacSecret::new(s.into_bytes()).map_err(|e| ConfigError {
                var: "JWT_SECRET",
                reason: e.to_string(),
            })?),
            None => None,
        };
        let log_format = match env.string("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(_) => {
                return Err(ConfigError {
                    var: "LOG_FORMAT",
                    reason: "must be text or json".into(),
                })
            }
        };
        if env.string("ADMIN_EMAILS").is_some() {
            // Refused rather than ignored: an operator relying on it must learn it is gone.
            return Err(ConfigError {
                var: "ADMIN_EMAILS",
                reason: "is no longer supported: registering never grants a role; use \
                         `tollgate-origin user promote <email>`"
                    .into(),
            });
        }
        let redis_prefix = env.string("REDIS_KEY_PREFIX").unwrap_or_default();
        tollgate_shared::KeySchema::configured(redis_prefix.as_str()).map_err(|e| ConfigError {
            var: "REDIS_KEY_PREFIX",
            reason: e.to_string(),
        })?;
        let settings = Self {
            bind: env.parse("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            database_url: SecretUrl(database_url),
            redis_url: SecretUrl(redis_url),
            redis_prefix,
            redis_timeout: Duration::from_millis(env.parse("REDIS_TIMEOUT_MS", 1000)?),
            jwt_secret,
            keys_file: env
                .string("KEYS_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("tollgate-keys.json")),
            issuer: env
                .string("JWT_ISSUER")
                .unwrap_or_else(|| "tollgate".into()),
            audience: env
                .string("JWT_AUDIENCE")
                .unwrap_or_else(|| "tollgate-api".into()),
            access_ttl: env.positive("ACCESS_TOKEN_TTL_SECS", 900)?,
            refresh_ttl: env.positive("REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600)?,
            refresh_grace: env.parse("REFRESH_GRACE_SECS", 10)?,
            login_limit_per_ip: env.positive("LOGIN_RATE_LIMIT_PER_IP", 30)?,
            login_limit_per_email: env.positive("LOGIN_RATE_LIMIT_PER_EMAIL", 10)?,
            login_failure_cap_per_email: env.positive("LOGIN_FAILURE_CAP_PER_EMAIL", 300)?,
            login_window: env.positive("LOGIN_RATE_WINDOW_SECS", 60)?,
            register_limit_per_ip: env.positive("REGISTER_RATE_LIMIT_PER_IP", 20)?,
            register_window: env.positive("REGISTER_RATE_WINDOW_SECS", 3600)?,
            token_stats_max_age: env.positive("TOKEN_STATS_MAX_AGE_SECS", 30)?,
            trust_forwarded_for: env.parse("TRUST_FORWARDED_FOR", false)?,
            cleanup_interval: env.parse("CLEANUP_INTERVAL_SECS", 3600)?,
            cleanup_retention: env.parse("CLEANUP_RETENTION_SECS", 7 * 24 * 3600)?,
            log_format,
        };
        if settings.refresh_ttl <= settings.access_ttl {
            return Err(ConfigError {
                var: "REFRESH_TOKEN_TTL_SECS",
                reason: "must be longer than ACCESS_TOKEN_TTL_SECS".into(),
            });
        }
        Ok(settings)
    }
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    /// The variable's value; empty counts as unset.
    fn string(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    fn parse<T: std::str::FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.string(var) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError {
                var,
                reason: format!("{e}"),
            }),
        }
    }

    fn positive(&self, var: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.parse(var, default)? {
            0 => Err(ConfigError {
                var,
                reason: "must be greater than 0".into(),
            }),
            n => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = load(&[]).expect("defaults load");
        assert_eq!(s.access_ttl, 900);
        assert_eq!(s.refresh_grace, 10);
        assert_eq!(s.redis_url.0, "redis://127.0.0.1:6379");
        assert!(s.database_url.starts_with("sqlite:"));
    }

    #[test]
    fn seed_redis_variables_build_the_url_and_debug_hides_the_password() {
        let s = load(&[
            ("REDIS_HOST", "cache"),
            ("REDIS_PORT", "6380"),
            ("REDIS_PASSWORD", "hunter2"),
        ])
        .expect("loads");
        assert_eq!(s.redis_url.0, "redis://:hunter2@cache:6380");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn passwords_holding_at_colon_or_slash_never_reach_debug_output() {
        for password in [
            "Qp@Zx/Wv:Rt",
            "Aa1@Bb2@Cc3",
            "Kk9:Ll8:Mm7",
            "Ss1/Tt2//Uu3",
            "@:/Yy5",
            "Ww6@",
        ] {
            let from_parts =
                load(&[("REDIS_HOST", "cache"), ("REDIS_PASSWORD", password)]).expect("loads");
            let redis_url = format!("redis://user:{password}@cache:6379/0");
            let database_url = format!("postgres://app:{password}@pg:5432/tollgate");
            let whole = load(&[
                ("REDIS_URL", redis_url.as_str()),
                ("DATABASE_URL", database_url.as_str()),
            ])
            .expect("loads");
            for printed in [format!("{from_parts:?}"), format!("{whole:?}")] {
                // No fragment of the password either: each piece between its separators.
                for piece in password.split(['@', ':', '/']).filter(|p| p.len() > 1) {
                    assert!(!printed.contains(piece), "{password}: {printed}");
                }
                assert!(printed.contains("<redacted>@cache:"), "{printed}");
            }
            assert!(format!("{whole:?}").contains("postgres://<redacted>@pg:5432/tollgate"));
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = load(&[("ACCESS_TOKEN_TTL_SECS", "soon")]).expect_err("refused");
        assert_eq!(err.var, "ACCESS_TOKEN_TTL_SECS");
        let err = load(&[("JWT_SECRET", "short")]).expect_err("refused");
        assert_eq!(err.var, "JWT_SECRET");
        assert!(!err.to_string().contains("short"));
        let err = load(&[("REDIS_KEY_PREFIX", "tenant*")]).expect_err("refused");
        assert_eq!(err.var, "REDIS_KEY_PREFIX");
        let err = load(&[("REDIS_PORT", "70000")]).expect_err("refused");
        assert_eq!(err.var, "REDIS_PORT");
        let err = load(&[("LOGIN_FAILURE_CAP_PER_EMAIL", "0")]).expect_err("refused");
        assert_eq!(err.var, "LOGIN_FAILURE_CAP_PER_EMAIL");
    }

    #[test]
    fn admin_emails_no_longer_grant_a_role_and_are_refused() {
        let err = load(&[("ADMIN_EMAILS", "boss@example.com")]).expect_err("refused");
        assert_eq!(err.var, "ADMIN_EMAILS");
        assert!(err.to_string().contains("user promote"), "{err}");
    }
}
