//! Start-up configuration, read once from flags or the environment.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Everything the bridge needs to start. `main` fills it from flags and environment variables;
/// tests build it directly.
#[derive(Clone, clap::Parser)]
#[command(name = "tollgate-rest-bridge", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "BRIDGE_BIND", default_value = "127.0.0.1:8079")]
    pub bind: SocketAddr,

    /// Redis to forward commands to (`redis://[:password@]host:port[/db]`).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// Token with full access, as Upstash's "Standard" token. Prefer the environment variable:
    /// flags show in `ps`. (The value name is the variable so a missing token names it.)
    #[arg(
        long,
        env = "UPSTASH_REDIS_REST_TOKEN",
        value_name = "UPSTASH_REDIS_REST_TOKEN",
        hide_env_values = true
    )]
    pub token: Token,

    /// Optional second token that may only run read commands, as Upstash's "Read Only" token.
    #[arg(
        long,
        env = "UPSTASH_REDIS_REST_READONLY_TOKEN",
        hide_env_values = true
    )]
    pub readonly_token: Option<Token>,

    /// Upper bound on one Redis round trip (connecting included), in milliseconds; past it the
    /// request answers 503 instead of hanging.
    #[arg(long, env = "BRIDGE_REDIS_TIMEOUT_MS", default_value_t = 2000)]
    pub redis_timeout_ms: u64,

    /// Largest request body accepted, in bytes; larger bodies answer 413.
    #[arg(long, env = "BRIDGE_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
}

impl Config {
    /// A config for tests and embedding: the given Redis and token, defaults for the rest, and
    /// `127.0.0.1:0` so the OS picks a free port.
    pub fn new(redis_url: impl Into<String>, token: Token) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            redis_url: redis_url.into(),
            token,
            readonly_token: None,
            redis_timeout_ms: 2000,
            body_limit: 1024 * 1024,
        }
    }

    pub(crate) fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms.max(1))
    }
}

/// By hand: `REDIS_URL` may carry a password (`redis://:pw@host`), and the tokens print redacted.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("redis_url", &redact_userinfo(&self.redis_url))
            .field("token", &self.token)
            .field("readonly_token", &self.readonly_token)
            .field("redis_timeout_ms", &self.redis_timeout_ms)
            .field("body_limit", &self.body_limit)
            .finish()
    }
}

/// `redis://user:pw@host:6379/0` → `redis://<redacted>@host:6379/0`.
fn redact_userinfo(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}<redacted>{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// A REST token. Only its SHA-256 is kept, so the secret cannot leak through `Debug`, logs or a
/// memory dump of the state, and comparing digests takes the same time whatever the presented
/// token's length.
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl Token {
    pub fn new(secret: &str) -> Self {
        Self {
            digest: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    /// Constant-time check of a presented token.
    pub(crate) fn matches(&self, presented: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented).into();
        self.digest.ct_eq(&presented).into()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl FromStr for Token {
    type Err = &'static str;

    /// An empty token would let an empty `Authorization: Bearer ` header in, so it is refused at
    /// start-up.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("the token must not be empty");
        }
        Ok(Self::new(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_hides_the_secret_and_matching_is_exact() {
        let token: Token = "s3cret-value".parse().expect("token");
        assert!(!format!("{token:?}").contains("s3cret"));
        assert!(token.matches(b"s3cret-value"));
        assert!(!token.matches(b"s3cret-valu"));
        assert!(!token.matches(b""));
        assert!("".parse::<Token>().is_err());
    }

    #[test]
    fn config_debug_hides_the_redis_password() {
        let config = Config::new("redis://user:hunter2@db:6379/0", Token::new("t"));
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("redis://<redacted>@db:6379/0"),
            "{printed}"
        );
        assert_eq!(
            redact_userinfo("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
