//! Typed configuration, read once from the environment (and `.env`) at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tollgate_shared::config::Vars;
use tollgate_shared::jwt::HmacSecret;
use tollgate_shared::redact::redact_url;

/// Why the configuration was refused; always names the variable. The shape the edge shares.
pub use tollgate_shared::config::ConfigError;

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
    /// `REDIS_WAIT_REPLICAS` (default 0: off) and `REDIS_WAIT_TIMEOUT_MS` (default 500): every
    /// revocation answers only after that many replicas acknowledged its writes, or the bound
    /// passed (then it answers success and reports the shortfall). Set it when anything reads
    /// revocation state from replicas ([`crate::replication`]).
    pub redis_wait: crate::replication::WaitBound,
    /// `JWT_SECRET`: the seed's HS256 secret. When set, tokens are signed with it (HS256);
    /// Ed25519 keys from the key file still verify.
    pub jwt_secret: Option<HmacSecret>,
    /// `KEYS_FILE`: the Ed25519 key set (created on first `serve` or by `keys generate`).
    pub keys_file: PathBuf,
    /// `KEY_PUBLISH_SECS`: how long `keys generate` publishes a key before it signs. Must exceed
    /// the longest time a verifier may hold an old JWKS (the edge's JWKS cache TTL, 300 s by
    /// default, on top of the JWKS response's `max-age`) plus `KEYS_RELOAD_SECS`.
    pub key_publish: u64,
    /// `KEYS_RELOAD_SECS`: how often a running origin looks at `KEYS_FILE` for changes (0: on
    /// every sign and verify).
    pub keys_reload: u64,
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
    /// `TRUSTED_PROXIES`: comma-separated networks (CIDRs) whose `X-Forwarded-For` is believed.
    /// The client address is the rightmost hop not in these networks, and only when the direct
    /// peer is in them; a header from anyone else is ignored. Empty (default): never trusted.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Trust in the edge's signed identity assertion (`EDGE_JWKS` or `EDGE_JWKS_URL`); `None`
    /// when neither is set, and the origin validates every token itself.
    pub edge: Option<EdgeTrust>,
    /// `REGISTER_RATE_LIMIT_PER_IP` registrations per client address (IPv6 per /64) per
    /// `REGISTER_RATE_WINDOW_SECS`.
    pub register_limit_per_ip: u64,
    pub register_window: u64,
    /// `TOKEN_STATS_MAX_AGE_SECS`: token-stats recomputes its Redis counts (a `SCAN` of the
    /// keyspace) at most this often; callers in between get the cached figures and their age.
    pub token_stats_max_age: u64,
    /// `CLEANUP_INTERVAL_SECS` (0 disables the background run) and `CLEANUP_RETENTION_SECS`
    /// (how long expired/revoked sessions are kept for audit before deletion).
    pub cleanup_interval: u64,
    pub cleanup_retention: u64,
    /// `STATS_SAMPLE_SECS` (default 60; 0: only when the admin page is viewed): how often the
    /// admin page's history samples token statistics into SQL (`crate::pages::admin`).
    pub stats_sample_interval: u64,
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// `METRICS_ADDR`: where Prometheus scrapes `GET /metrics` (e.g. `127.0.0.1:9464`), a
    /// listener of its own so the figures never reach the public API port. Unset: no metrics.
    pub metrics_addr: Option<SocketAddr>,
    /// `INTROSPECTION_CLIENTS`: the resource servers that may call `POST /oauth/introspect`.
    pub introspection_clients: IntrospectionClients,
}

/// `INTROSPECTION_CLIENTS`: comma-separated `id:sha256:HEX` entries, HEX being the SHA-256 of
/// that client's secret (`tollgate-origin introspection-client ID` prints a fresh secret and its
/// entry). Only hashes are configured, never secrets. SHA-256 rather than Argon2 because the
/// secrets are 256-bit random values, not passwords: a slow hash would add nothing against
/// guessing and would cost every introspection call tens of milliseconds. Empty (default): the
/// endpoint refuses every caller.
#[derive(Clone, Default)]
pub struct IntrospectionClients(Vec<(String, [u8; 32])>);

impl std::fmt::Debug for IntrospectionClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(id, _)| id))
            .finish()
    }
}

impl IntrospectionClients {
    /// Whether `secret` is `id`'s. Every entry is compared, each in constant time, so the
    /// answer's timing says nothing about which part was wrong.
    pub fn verify(&self, id: &str, secret: &str) -> bool {
        use sha2::{Digest as _, Sha256};
        use subtle::ConstantTimeEq as _;
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let mut ok = subtle::Choice::from(0);
        for (known_id, known_digest) in &self.0 {
            ok |= known_id.as_bytes().ct_eq(id.as_bytes()) & known_digest.ct_eq(&digest);
        }
        ok.into()
    }

    fn parse(raw: &str) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::new("INTROSPECTION_CLIENTS", reason);
        let mut clients: Vec<(String, [u8; 32])> = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut parts = entry.splitn(3, ':');
            let (Some(id), Some("sha256"), Some(hex)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad("each entry must be id:sha256:HEX".into()));
            };
            let digest = decode_hex32(hex)
                .ok_or_else(|| bad(format!("{id}: the hash must be 64 hex digits")))?;
            if id.is_empty() || clients.iter().any(|(known, _)| known == id) {
                return Err(bad(format!("client id {id:?} is empty or repeated")));
            }
            clients.push((id.to_owned(), digest));
        }
        Ok(Self(clients))
    }
}

fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// How the origin trusts the edge (see `tollgate_shared::assertion`).
#[derive(Debug, Clone)]
pub struct EdgeTrust {
    /// `EDGE_ISSUER` (default `tollgate-edge`): the edge's `iss`.
    pub issuer: String,
    /// `EDGE_AUDIENCE` (default `origin`): this service's upstream name in the edge's routes.
    pub audience: String,
    /// `EDGE_JWKS` (the edge's public JWKS, static) or `EDGE_JWKS_URL` (fetched and cached).
    pub keys: EdgeKeys,
    /// `REQUIRE_EDGE` (default false): refuse protected requests without a valid assertion, and
    /// take client addresses only from assertions or the direct peer.
    pub require: bool,
}

/// Where the edge's assertion keys come from.
#[derive(Debug, Clone)]
pub enum EdgeKeys {
    Jwks(String),
    Url(String),
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
        let env = Vars::new(&get);
        let cluster = env.redis_cluster_urls()?;
        let redis_url = match cluster.or_else(|| env.get("REDIS_URL")) {
            Some(url) => url,
            None => {
                let host = env.get("REDIS_HOST").unwrap_or_else(|| "127.0.0.1".into());
                let port: u16 = env.parse("REDIS_PORT", 6379)?;
                match env.get("REDIS_PASSWORD") {
                    Some(pw) => format!("redis://:{pw}@{host}:{port}"),
                    None => format!("redis://{host}:{port}"),
                }
            }
        };
        let on_cluster = match tollgate_shared::config::cluster_url_seeds(&redis_url) {
            Some(Err(reason)) => return Err(ConfigError::new("REDIS_URL", reason)),
            Some(Ok(_)) => true,
            None => false,
        };
        if !(on_cluster || redis_url.starts_with("redis://") || redis_url.starts_with("rediss://"))
        {
            return Err(ConfigError::new(
                "REDIS_URL",
                "must start with redis:// or rediss:// (one node), or be redis+cluster://\
                 host:port,host:port (a cluster; or set REDIS_CLUSTER_URLS)",
            ));
        }
        let database_url = env
            .get("DATABASE_URL")
            .unwrap_or_else(|| "sqlite://tollgate.db?mode=rwc".into());
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "must be a sqlite: or postgres:// URL",
            ));
        }
        let jwt_secret = env.jwt_secret()?;
        let log_format = match env.get("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(_) => return Err(ConfigError::new("LOG_FORMAT", "must be text or json")),
        };
        if env.get("ADMIN_EMAILS").is_some() {
            // Refused rather than ignored: an operator relying on it must learn it is gone.
            return Err(ConfigError::new(
                "ADMIN_EMAILS",
                "is no longer supported: registering never grants a role; use \
                         `tollgate-origin user promote <email>`",
            ));
        }
        let redis_prefix = env.key_schema()?.prefix().to_owned();
        let settings = Self {
            bind: env.parse("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            database_url: SecretUrl(database_url),
            redis_url: SecretUrl(redis_url),
            redis_prefix,
            redis_timeout: Duration::from_millis(env.parse("REDIS_TIMEOUT_MS", 1000)?),
            redis_wait: crate::replication::WaitBound {
                replicas: env.parse("REDIS_WAIT_REPLICAS", 0)?,
                timeout: Duration::from_millis(env.positive("REDIS_WAIT_TIMEOUT_MS", 500)?),
            },
            jwt_secret,
            keys_file: env
                .get("KEYS_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("tollgate-keys.json")),
            key_publish: env.positive("KEY_PUBLISH_SECS", 900)?,
            keys_reload: env.parse("KEYS_RELOAD_SECS", 10)?,
            issuer: env.issuer(),
            audience: env.audience(),
            access_ttl: env.positive("ACCESS_TOKEN_TTL_SECS", 900)?,
            refresh_ttl: env.positive("REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600)?,
            refresh_grace: env.parse("REFRESH_GRACE_SECS", 10)?,
            login_limit_per_ip: env.positive("LOGIN_RATE_LIMIT_PER_IP", 30)?,
            login_limit_per_email: env.positive("LOGIN_RATE_LIMIT_PER_EMAIL", 10)?,
            login_failure_cap_per_email: env.positive("LOGIN_FAILURE_CAP_PER_EMAIL", 300)?,
            login_window: env.positive("LOGIN_RATE_WINDOW_SECS", 60)?,
            trusted_proxies: trusted_proxies(&env)?,
            edge: edge_trust(&env)?,
            register_limit_per_ip: env.positive("REGISTER_RATE_LIMIT_PER_IP", 20)?,
            register_window: env.positive("REGISTER_RATE_WINDOW_SECS", 3600)?,
            token_stats_max_age: env.positive("TOKEN_STATS_MAX_AGE_SECS", 30)?,
            cleanup_interval: env.parse("CLEANUP_INTERVAL_SECS", 3600)?,
            cleanup_retention: env.parse("CLEANUP_RETENTION_SECS", 7 * 24 * 3600)?,
            stats_sample_interval: env.parse("STATS_SAMPLE_SECS", 60)?,
            log_format,
            metrics_addr: metrics_addr(&env)?,
            introspection_clients: env.get("INTROSPECTION_CLIENTS").map_or_else(
                || Ok(IntrospectionClients::default()),
                |raw| IntrospectionClients::parse(&raw),
            )?,
        };
        if on_cluster && settings.redis_wait.replicas > 0 {
            // `WAIT` counts the replicas of the connection's own node; a revocation's writes go
            // to whichever master owns the user's slot, so there is no one connection to wait on.
            return Err(ConfigError::new(
                "REDIS_WAIT_REPLICAS",
                "is not supported on a Redis Cluster: leave it unset (0) with REDIS_CLUSTER_URLS \
                 or a redis+cluster:// REDIS_URL",
            ));
        }
        if settings.refresh_ttl <= settings.access_ttl {
            return Err(ConfigError::new(
                "REFRESH_TOKEN_TTL_SECS",
                "must be longer than ACCESS_TOKEN_TTL_SECS",
            ));
        }
        if settings.keys_reload >= settings.key_publish {
            return Err(ConfigError::new(
                "KEYS_RELOAD_SECS",
                "must be shorter than KEY_PUBLISH_SECS",
            ));
        }
        Ok(settings)
    }
}

fn metrics_addr<F: Fn(&str) -> Option<String>>(
    env: &Vars<F>,
) -> Result<Option<SocketAddr>, ConfigError> {
    let Some(raw) = env.get("METRICS_ADDR") else {
        return Ok(None);
    };
    let addr: SocketAddr = raw
        .trim()
        .parse()
        .map_err(|_| ConfigError::new("METRICS_ADDR", format!("{raw:?} is not an address:port")))?;
    let bind: SocketAddr = env.parse("BIND_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
    if addr.port() != 0 && addr == bind {
        return Err(ConfigError::new(
            "METRICS_ADDR",
            "must differ from BIND_ADDR: metrics stay off the public port",
        ));
    }
    Ok(Some(addr))
}

fn trusted_proxies<F: Fn(&str) -> Option<String>>(
    env: &Vars<F>,
) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    if env.get("TRUST_FORWARDED_FOR").is_some() {
        return Err(ConfigError::new(
            "TRUST_FORWARDED_FOR",
            "is no longer supported: it trusted any caller's X-Forwarded-For; list the \
                     proxies' networks in TRUSTED_PROXIES instead",
        ));
    }
    let Some(raw) = env.get("TRUSTED_PROXIES") else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::new(
                        "TRUSTED_PROXIES",
                        format!("{s:?} is not an address or a CIDR network"),
                    )
                })
        })
        .collect()
}

fn edge_trust<F: Fn(&str) -> Option<String>>(
    env: &Vars<F>,
) -> Result<Option<EdgeTrust>, ConfigError> {
    let keys = match (env.get("EDGE_JWKS"), env.get("EDGE_JWKS_URL")) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "EDGE_JWKS",
                "set EDGE_JWKS or EDGE_JWKS_URL, not both",
            ))
        }
        (Some(jwks), None) => {
            let mut set = tollgate_shared::jwt::KeySet::new();
            serde_json::from_str(&jwks)
                .map_err(|e| e.to_string())
                .and_then(|j| set.extend_from_jwks(&j).map_err(|e| e.to_string()))
                .map_err(|reason| ConfigError::new("EDGE_JWKS", reason))?;
            if set.is_empty() {
                return Err(ConfigError::new("EDGE_JWKS", "holds no key"));
            }
            EdgeKeys::Jwks(jwks)
        }
        (None, Some(url)) => {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::new("EDGE_JWKS_URL", "must be an http(s) URL"));
            }
            EdgeKeys::Url(url)
        }
        (None, None) => {
            if env.parse("REQUIRE_EDGE", false)? {
                return Err(ConfigError::new(
                    "REQUIRE_EDGE",
                    "needs the edge's keys: set EDGE_JWKS or EDGE_JWKS_URL",
                ));
            }
            return Ok(None);
        }
    };
    Ok(Some(EdgeTrust {
        issuer: env
            .get("EDGE_ISSUER")
            .unwrap_or_else(|| "tollgate-edge".into()),
        audience: env.get("EDGE_AUDIENCE").unwrap_or_else(|| "origin".into()),
        keys,
        require: env.parse("REQUIRE_EDGE", false)?,
    }))
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
        assert_eq!((s.key_publish, s.keys_reload), (900, 10));
        assert_eq!(s.refresh_grace, 10);
        assert_eq!(s.redis_wait.replicas, 0, "WAIT is off by default");
        assert_eq!(s.redis_wait.timeout, Duration::from_millis(500));
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
        let err = load(&[("REDIS_WAIT_TIMEOUT_MS", "0")]).expect_err("refused");
        assert_eq!(err.var, "REDIS_WAIT_TIMEOUT_MS");
        let err = load(&[("REDIS_WAIT_REPLICAS", "-1")]).expect_err("refused");
        assert_eq!(err.var, "REDIS_WAIT_REPLICAS");
        let err = load(&[("KEY_PUBLISH_SECS", "0")]).expect_err("refused");
        assert_eq!(err.var, "KEY_PUBLISH_SECS");
        let err =
            load(&[("KEY_PUBLISH_SECS", "60"), ("KEYS_RELOAD_SECS", "60")]).expect_err("refused");
        assert_eq!(err.var, "KEYS_RELOAD_SECS");

        let err = load(&[("TRUSTED_PROXIES", "10.0.0.0/8, nonsense")]).expect_err("refused");
        assert_eq!(err.var, "TRUSTED_PROXIES");
        let err = load(&[("TRUST_FORWARDED_FOR", "true")]).expect_err("refused");
        assert_eq!(err.var, "TRUST_FORWARDED_FOR");
        let err = load(&[("REQUIRE_EDGE", "true")]).expect_err("refused");
        assert_eq!(err.var, "REQUIRE_EDGE");
        let err = load(&[("EDGE_JWKS", "{}")]).expect_err("refused");
        assert_eq!(err.var, "EDGE_JWKS");
    }

    #[test]
    fn trusted_proxies_take_networks_and_single_addresses() {
        let s = load(&[("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,::1")]).expect("loads");
        assert_eq!(s.trusted_proxies.len(), 3);
        assert!(s.trusted_proxies[1].contains(&"10.2.3.4".parse::<std::net::IpAddr>().expect("ip")));
        assert!(s.edge.is_none());
    }

    #[test]
    fn metrics_are_off_unless_metrics_addr_names_a_port_of_their_own() {
        assert!(load(&[]).expect("loads").metrics_addr.is_none());
        assert!(load(&[("METRICS_ADDR", " ")])
            .expect("empty is unset")
            .metrics_addr
            .is_none());
        let s = load(&[("METRICS_ADDR", "127.0.0.1:9464")]).expect("loads");
        assert_eq!(
            s.metrics_addr,
            Some(SocketAddr::from(([127, 0, 0, 1], 9464)))
        );
        let err = load(&[("METRICS_ADDR", "9464")]).expect_err("refused");
        assert_eq!(err.var, "METRICS_ADDR");
        let err = load(&[
            ("BIND_ADDR", "127.0.0.1:9000"),
            ("METRICS_ADDR", "127.0.0.1:9000"),
        ])
        .expect_err("refused");
        assert_eq!(err.var, "METRICS_ADDR");
    }

    #[test]
    fn introspection_clients_hold_hashes_and_verify_only_their_own_secret() {
        use sha2::{Digest as _, Sha256};
        let hex = |s: &str| -> String {
            Sha256::digest(s.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let raw = format!(
            "rs1:sha256:{}, rs2:sha256:{}",
            hex("s3cret-one"),
            hex("s3cret-two")
        );
        let s = load(&[("INTROSPECTION_CLIENTS", raw.as_str())]).expect("loads");
        let clients = &s.introspection_clients;
        assert!(clients.verify("rs1", "s3cret-one"));
        assert!(clients.verify("rs2", "s3cret-two"));
        assert!(!clients.verify("rs1", "s3cret-two"));
        assert!(!clients.verify("rs3", "s3cret-one"));
        assert!(!clients.verify("rs1", ""));
        assert_eq!(format!("{clients:?}"), r#"["rs1", "rs2"]"#);
        for bad in ["rs1:s3cret", "rs1:sha256:abc", ":sha256:00", "a:md5:00"] {
            let err = load(&[("INTROSPECTION_CLIENTS", bad)]).expect_err("refused");
            assert_eq!(err.var, "INTROSPECTION_CLIENTS");
        }
        let twice = format!("rs1:sha256:{0},rs1:sha256:{0}", hex("x"));
        assert!(load(&[("INTROSPECTION_CLIENTS", twice.as_str())]).is_err());
        assert!(!load(&[])
            .expect("loads")
            .introspection_clients
            .verify("", ""));
    }

    #[test]
    fn the_login_failure_cap_must_be_positive() {
        let err = load(&[("LOGIN_FAILURE_CAP_PER_EMAIL", "0")]).expect_err("refused");
        assert_eq!(err.var, "LOGIN_FAILURE_CAP_PER_EMAIL");
    }

    #[test]
    fn admin_emails_no_longer_grant_a_role_and_are_refused() {
        let err = load(&[("ADMIN_EMAILS", "boss@example.com")]).expect_err("refused");
        assert_eq!(err.var, "ADMIN_EMAILS");
        assert!(err.to_string().contains("user promote"), "{err}");
    }

    #[test]
    fn a_cluster_is_named_by_its_nodes_and_refuses_wait() {
        let s = Settings::from_lookup(|k| match k {
            "REDIS_CLUSTER_URLS" => Some("redis://10.0.0.1:7000,redis://10.0.0.2:7000".into()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(s.redis_url.0, "redis+cluster://10.0.0.1:7000,10.0.0.2:7000");
        let s = Settings::from_lookup(|k| match k {
            "REDIS_URL" => Some("redis+cluster://:pw@a:7000,b:7001".into()),
            _ => None,
        })
        .expect("valid");
        assert!(!format!("{:?}", s.redis_url).contains("pw"));
        let err = Settings::from_lookup(|k| match k {
            "REDIS_URL" => Some("redis+cluster://a:7000".into()),
            "REDIS_WAIT_REPLICAS" => Some("1".into()),
            _ => None,
        })
        .expect_err("WAIT on a cluster");
        assert_eq!(err.var, "REDIS_WAIT_REPLICAS");
        let err = Settings::from_lookup(|k| match k {
            "REDIS_URL" => Some("redis+cluster://".into()),
            _ => None,
        })
        .expect_err("no node");
        assert_eq!(err.var, "REDIS_URL");
        // The bridge's grammar, word for word: one database, no empty node.
        for (url, reason) in [
            (
                "redis+cluster://:pw@a:7000/2",
                "a Redis Cluster has only database 0",
            ),
            ("redis+cluster://:pw@a:7000,,b:1", "node 2 is empty"),
        ] {
            let err = Settings::from_lookup(|k| (k == "REDIS_URL").then(|| url.to_owned()))
                .expect_err(url);
            assert_eq!(
                (err.var.as_str(), err.reason.as_str()),
                ("REDIS_URL", reason)
            );
            assert!(!err.to_string().contains("pw"), "{err}");
        }
    }
}
