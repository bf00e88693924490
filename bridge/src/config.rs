//! Start-up configuration, read once from the environment (and flags, for what is not secret).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tollgate_shared::config::{self, cluster_seed_list, ConfigError};
use tollgate_shared::redact::redact_url;

/// Everything the bridge needs to start. `main` fills it with [`Config::from_env_and_args`];
/// tests build it directly.
///
/// Every token carries its own command allow-list: the full token runs everything but the
/// administrative commands the operator did not name, the read-only token Upstash's read
/// commands without scripts, and each scoped token exactly the commands listed with it. Tokens
/// come from the environment only: flags show in `ps`.
#[derive(Clone, clap::Parser)]
#[command(name = "tollgate-rest-bridge", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "BRIDGE_BIND", default_value = "127.0.0.1:8079")]
    pub bind: SocketAddr,

    /// Redis to forward commands to (`redis://[:password@]host:port[/db]`).
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,

    /// Redis Cluster seed nodes, comma-separated (`redis://10.0.0.1:6379,redis://10.0.0.2:6379`):
    /// when set the bridge talks to the cluster, routing each command by its keys, and
    /// `REDIS_URL` is not read. A `redis+cluster://h1:p1,h2:p2` `REDIS_URL` does the same. The
    /// values are hidden from `--help`: the URLs may carry the password.
    #[arg(long, env = "REDIS_CLUSTER_URLS", hide_env_values = true)]
    pub redis_cluster_urls: Option<String>,

    /// Optional Redis for read-only commands (`GET`, `MGET`, `EXISTS`, …): a replica, as
    /// Upstash's read regions serve reads. A request is sent there only if every command in it
    /// reads; writes, transactions and mixed pipelines go to `REDIS_URL`. Reads from a replica
    /// may be stale by the replication lag: see the README's revocation window before pointing
    /// the edge at it.
    #[arg(long, env = "BRIDGE_READ_REDIS_URL")]
    pub read_redis_url: Option<String>,

    /// Token with full access, as Upstash's "Standard" token, less the administrative commands
    /// not named in `BRIDGE_ADMIN_COMMANDS`. Environment only. (The value name is the variable
    /// so a missing token names it.)
    #[arg(
        long,
        env = "UPSTASH_REDIS_REST_TOKEN",
        value_name = "UPSTASH_REDIS_REST_TOKEN",
        hide_env_values = true
    )]
    pub token: Token,

    /// Optional token that may only run read commands (no scripts of any kind), as Upstash's
    /// "Read Only" token. Environment only.
    #[arg(
        long,
        env = "UPSTASH_REDIS_REST_READONLY_TOKEN",
        hide_env_values = true
    )]
    pub readonly_token: Option<Token>,

    /// Tokens limited to the commands listed with them: `GET,MGET=<secret>`, several separated
    /// by `;`. The edge needs only `HMGET`. Environment only.
    #[arg(
        long,
        env = "BRIDGE_SCOPED_TOKENS",
        value_delimiter = ';',
        hide_env_values = true
    )]
    pub scoped_tokens: Vec<ScopedToken>,

    /// Administrative commands the full token may run after all, by name, comma-separated
    /// (`KEYS,FLUSHDB`); by default it runs none of them.
    #[arg(long, env = "BRIDGE_ADMIN_COMMANDS", value_delimiter = ',')]
    pub admin_commands: Vec<CommandName>,

    /// Upper bound on one Redis round trip (connecting included), in milliseconds; past it the
    /// request answers 503 instead of hanging.
    #[arg(long, env = "BRIDGE_REDIS_TIMEOUT_MS", default_value_t = 2000)]
    pub redis_timeout_ms: u64,

    /// Largest request body accepted, in bytes; larger bodies answer 413.
    #[arg(long, env = "BRIDGE_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,

    /// Where Prometheus scrapes `GET /metrics` (e.g. `127.0.0.1:9465`): a listener of its own,
    /// never the REST port. Unset or empty: no metrics.
    #[arg(long, env = "BRIDGE_METRICS_ADDR", value_parser = optional_addr, default_value = "")]
    pub metrics_bind: OptionalAddr,
}

/// An address that may be left empty (the project's rule: an empty variable is unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OptionalAddr(pub Option<SocketAddr>);

fn optional_addr(raw: &str) -> Result<OptionalAddr, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(OptionalAddr(None));
    }
    raw.parse()
        .map(|addr| OptionalAddr(Some(addr)))
        .map_err(|_| format!("{raw:?} is not an address:port"))
}

/// The flags that would hold secrets, with the variables to use instead.
const SECRET_FLAGS: [(&str, &str); 3] = [
    ("--token", "UPSTASH_REDIS_REST_TOKEN"),
    ("--readonly-token", "UPSTASH_REDIS_REST_READONLY_TOKEN"),
    ("--scoped-tokens", "BRIDGE_SCOPED_TOKENS"),
];

impl Config {
    /// A config for tests and embedding: the given Redis and token, defaults for the rest, and
    /// `127.0.0.1:0` so the OS picks a free port.
    pub fn new(redis_url: impl Into<String>, token: Token) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            redis_url: redis_url.into(),
            redis_cluster_urls: None,
            read_redis_url: None,
            token,
            readonly_token: None,
            scoped_tokens: Vec::new(),
            admin_commands: Vec::new(),
            redis_timeout_ms: 2000,
            body_limit: 1024 * 1024,
            metrics_bind: OptionalAddr(None),
        }
    }

    /// Parses `args` (program name first) and the environment, refusing a token given as a flag:
    /// every user on the machine can read a process's arguments.
    pub fn from_env_and_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory as _, Parser as _};
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        for arg in args.iter().skip(1) {
            let arg = arg.to_string_lossy();
            let flag = arg.split_once('=').map_or(arg.as_ref(), |(flag, _)| flag);
            if let Some((_, var)) = SECRET_FLAGS.iter().find(|(name, _)| *name == flag) {
                return Err(Self::command().error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!("{flag}: tokens are read from {var} only, since flags show in `ps`"),
                ));
            }
        }
        Self::try_parse_from(args)
    }

    pub(crate) fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms.max(1))
    }

    /// Where commands go: `REDIS_CLUSTER_URLS` when set, else `REDIS_URL` (a cluster when its
    /// scheme is `redis+cluster://` or `rediss+cluster://`). The error names the variable and
    /// never repeats its value, which may hold a password.
    pub fn redis_target(&self) -> Result<RedisTarget, ConfigError> {
        let cluster = match self.redis_cluster_urls.as_deref().map(str::trim) {
            Some(list) if !list.is_empty() => Some(("REDIS_CLUSTER_URLS", seed_list(list))),
            _ => cluster_url_seeds(self.redis_url.trim()).map(|seeds| ("REDIS_URL", seeds)),
        };
        let target = match cluster {
            None => RedisTarget::Single(self.redis_url.clone()),
            Some((var, seeds)) => RedisTarget::Cluster(
                seeds
                    .and_then(same_credentials)
                    .map_err(|reason| ConfigError::new(var, reason))?,
            ),
        };
        let reads = self
            .read_redis_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty());
        if let RedisTarget::Cluster(_) = target {
            if reads.is_some() {
                return Err(ConfigError::new(
                    "BRIDGE_READ_REDIS_URL",
                    "cannot be combined with a Redis Cluster: a cluster's replicas belong to \
                     their masters, so leave it unset",
                ));
            }
        }
        if let Some(read) = reads {
            if cluster_url_seeds(read).is_some() {
                return Err(ConfigError::new(
                    "BRIDGE_READ_REDIS_URL",
                    "must be one Redis (a replica), not a cluster",
                ));
            }
        }
        Ok(target)
    }
}

/// Where the bridge sends commands, as [`Config::redis_target`] reads it.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One Redis (`REDIS_URL`).
    Single(String),
    /// A Redis Cluster, by its seed nodes (`redis://` or `rediss://` URLs, one node each): the
    /// client asks them for the slot map and finds every other node from there.
    Cluster(Vec<String>),
}

/// By hand: the URLs may carry the password.
impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(url) => f.debug_tuple("Single").field(&redact_url(url)).finish(),
            Self::Cluster(seeds) => f
                .debug_tuple("Cluster")
                .field(&seeds.iter().map(|s| redact_url(s)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// `REDIS_CLUSTER_URLS` in the shared grammar, each seed then checked by the Redis client.
fn seed_list(list: &str) -> Result<Vec<String>, String> {
    cluster_seed_list(list).and_then(|seeds| checked(seeds, "entry"))
}

/// A `redis+cluster://` URL's seeds in the shared grammar, each then checked by the Redis
/// client; `None` if `url` is not of that scheme.
fn cluster_url_seeds(url: &str) -> Option<Result<Vec<String>, String>> {
    config::cluster_url_seeds(url).map(|seeds| seeds.and_then(|s| checked(s, "node")))
}

/// Each seed as the Redis client reads it: a valid URL of a TCP address. The error names the
/// seed by position (`entry 2`, `node 1`), never by its value.
fn checked(seeds: Vec<String>, what: &str) -> Result<Vec<String>, String> {
    use redis::IntoConnectionInfo as _;
    for (i, seed) in seeds.iter().enumerate() {
        let why = match seed.as_str().into_connection_info() {
            Ok(info) => match info.addr {
                redis::ConnectionAddr::Tcp(..) | redis::ConnectionAddr::TcpTls { .. } => continue,
                _ => "is not a TCP address",
            },
            Err(_) => "is not a valid Redis URL",
        };
        return Err(format!("{what} {} {why}", i + 1));
    }
    Ok(seeds)
}

/// The cluster client takes one password and one TLS mode for every node; seeds that differ
/// are refused here, at start-up, rather than on first use.
fn same_credentials(seeds: Vec<String>) -> Result<Vec<String>, String> {
    redis::cluster::ClusterClientBuilder::new(seeds.iter().map(String::as_str))
        .build()
        .map(|_| seeds)
        .map_err(|_| "the nodes must share one user, password, protocol and TLS mode".to_owned())
}

/// Each URL of a comma-separated list redacted on its own.
fn redact_list(list: &str) -> String {
    list.split(',')
        .map(|url| redact_url(url.trim()))
        .collect::<Vec<_>>()
        .join(",")
}

/// By hand: `REDIS_URL` may carry a password (`redis://:pw@host`), and the tokens print redacted.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("redis_url", &redact_url(&self.redis_url))
            .field(
                "redis_cluster_urls",
                &self.redis_cluster_urls.as_deref().map(redact_list),
            )
            .field(
                "read_redis_url",
                &self.read_redis_url.as_deref().map(redact_url),
            )
            .field("token", &self.token)
            .field("readonly_token", &self.readonly_token)
            .field("scoped_tokens", &self.scoped_tokens)
            .field("admin_commands", &self.admin_commands)
            .field("redis_timeout_ms", &self.redis_timeout_ms)
            .field("body_limit", &self.body_limit)
            .field("metrics_bind", &self.metrics_bind)
            .finish()
    }
}

/// A Redis command name as configured: ASCII letters, digits and `_ . | -`, kept upper-case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommandName(String);

impl CommandName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CommandName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '|' | '-');
        if name.is_empty() || !name.chars().all(plain) {
            return Err(format!("{name:?} is not a command name"));
        }
        Ok(Self(name.to_ascii_uppercase()))
    }
}

/// A token limited to the commands listed with it (`GET,MGET=<secret>`).
#[derive(Debug, Clone)]
pub struct ScopedToken {
    pub token: Token,
    pub commands: BTreeSet<CommandName>,
}

impl ScopedToken {
    /// `commands` must be valid command names (else the error names the bad one).
    pub fn new(secret: &str, commands: &[&str]) -> Result<Self, String> {
        format!("{}={secret}", commands.join(",")).parse()
    }
}

impl FromStr for ScopedToken {
    type Err = String;

    /// `COMMAND[,COMMAND…]=secret`. The secret follows the first `=` (it may hold more);
    /// errors never repeat it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (commands, secret) = s
            .split_once('=')
            .ok_or("a scoped token is COMMAND[,COMMAND…]=<secret>")?;
        let commands = commands
            .split(',')
            .map(str::parse)
            .collect::<Result<BTreeSet<CommandName>, _>>()?;
        let token = secret.parse::<Token>().map_err(str::to_owned)?;
        Ok(Self { token, commands })
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

    /// Whether two configured tokens are the same secret (refused at start-up: which scope would
    /// it have?).
    pub(crate) fn same_secret(&self, other: &Self) -> bool {
        self.digest.ct_eq(&other.digest).into()
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
    fn config_debug_hides_the_redis_password_and_every_token() {
        let mut config = Config::new("redis://user:hun@ter:2/x@db:6379/0", Token::new("t"));
        config.scoped_tokens = vec![ScopedToken::new("edge-secret-value", &["GET"]).expect("ok")];
        let printed = format!("{config:?}");
        for secret in ["hun", "ter:2", "/x", "edge-secret"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(
            printed.contains("redis://<redacted>@db:6379/0"),
            "{printed}"
        );
    }

    #[test]
    fn tokens_given_as_flags_are_refused() {
        for flag in [
            &["--token", "hunter2"][..],
            &["--token=hunter2"],
            &["--readonly-token", "hunter2"],
            &["--bind", "127.0.0.1:0", "--scoped-tokens", "GET=hunter2"],
        ] {
            let args = std::iter::once("tollgate-rest-bridge").chain(flag.iter().copied());
            let error = Config::from_env_and_args(args).expect_err("a token on the command line");
            let text = error.to_string();
            assert!(text.contains("flags show in `ps`"), "{flag:?}: {text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn metrics_listener_is_off_when_unset_or_empty() {
        let parse = |extra: &[&str]| {
            let args = ["tollgate-rest-bridge"].iter().chain(extra).copied();
            Config::try_parse_from_with_token(args)
        };
        assert_eq!(parse(&[]).expect("ok").metrics_bind, OptionalAddr(None));
        assert_eq!(
            parse(&["--metrics-bind", ""]).expect("ok").metrics_bind,
            OptionalAddr(None)
        );
        assert_eq!(
            parse(&["--metrics-bind", "127.0.0.1:9465"])
                .expect("ok")
                .metrics_bind,
            OptionalAddr(Some(SocketAddr::from(([127, 0, 0, 1], 9465))))
        );
        assert!(parse(&["--metrics-bind", "9465"]).is_err());
    }

    impl Config {
        /// Flags only, with the token filled in (tests must not set process environment).
        fn try_parse_from_with_token<'a>(
            args: impl Iterator<Item = &'a str>,
        ) -> Result<Self, clap::Error> {
            use clap::Parser as _;
            let mut args: Vec<String> = args.map(str::to_owned).collect();
            args.extend(["--token".into(), "t".into()]);
            Self::try_parse_from(args)
        }
    }

    #[test]
    fn a_cluster_comes_from_either_variable_with_credentials_on_every_seed() {
        let target = |redis_url: &str, cluster_urls: Option<&str>| {
            let mut config = Config::new(redis_url, Token::new("t"));
            config.redis_cluster_urls = cluster_urls.map(str::to_owned);
            config.redis_target()
        };
        let seeds = |seeds: &[&str]| {
            Ok(RedisTarget::Cluster(
                seeds.iter().map(|s| (*s).to_owned()).collect(),
            ))
        };
        assert_eq!(
            target("redis://db:6379", None),
            Ok(RedisTarget::Single("redis://db:6379".into()))
        );
        assert_eq!(
            target("redis://db:6379", Some("  ")),
            Ok(RedisTarget::Single("redis://db:6379".into())),
            "empty is unset"
        );
        assert_eq!(
            target(
                "redis+cluster://u:p@ss@h1:7000, h2:7001/0?protocol=resp3",
                None
            ),
            seeds(&[
                "redis://u:p@ss@h1:7000?protocol=resp3",
                "redis://u:p@ss@h2:7001?protocol=resp3"
            ])
        );
        assert_eq!(
            target("rediss+cluster://h1:7000", None),
            seeds(&["rediss://h1:7000"])
        );
        assert_eq!(
            target(
                "redis+cluster://ignored:1",
                Some("redis://a:1, redis://b:2")
            ),
            seeds(&["redis://a:1", "redis://b:2"]),
            "REDIS_CLUSTER_URLS wins"
        );
    }

    #[test]
    fn bad_cluster_configurations_name_the_variable_and_never_the_password() {
        let refused = |redis_url: &str, cluster_urls: Option<&str>, read: Option<&str>| {
            let mut config = Config::new(redis_url, Token::new("t"));
            config.redis_cluster_urls = cluster_urls.map(str::to_owned);
            config.read_redis_url = read.map(str::to_owned);
            let error = config.redis_target().expect_err("refused");
            let text = error.to_string();
            assert!(!text.contains("hunter2"), "{text}");
            (error.var, error.reason)
        };
        let none = None;
        for (redis_url, cluster_urls, read, var, reason) in [
            (
                "redis://x",
                Some("redis://:hunter2@a:1,"),
                none,
                "REDIS_CLUSTER_URLS",
                "entry 2 is empty",
            ),
            (
                "redis://x",
                Some("unix:///tmp/hunter2.sock"),
                none,
                "REDIS_CLUSTER_URLS",
                "entry 1 is not",
            ),
            (
                "redis://x",
                Some("redis+cluster://a:1"),
                none,
                "REDIS_CLUSTER_URLS",
                "entry 1 is not",
            ),
            (
                "redis://x",
                Some("redis://a:notaport"),
                none,
                "REDIS_CLUSTER_URLS",
                "not a valid",
            ),
            (
                "redis://x",
                Some("redis://:hunter2@a:1,redis://b:2"),
                none,
                "REDIS_CLUSTER_URLS",
                "password",
            ),
            (
                "rediss+cluster://:hunter2@",
                None,
                none,
                "REDIS_URL",
                "node 1 is empty",
            ),
            (
                "redis+cluster://:hunter2@a:1/1",
                None,
                none,
                "REDIS_URL",
                "database 0",
            ),
            (
                "redis+cluster://a:1",
                None,
                Some("redis://r:1"),
                "BRIDGE_READ_REDIS_URL",
                "Cluster",
            ),
            (
                "redis://a:1",
                None,
                Some("redis+cluster://r:1"),
                "BRIDGE_READ_REDIS_URL",
                "not a cluster",
            ),
        ] {
            let (got_var, got_reason) = refused(redis_url, cluster_urls, read);
            assert_eq!(got_var, var, "{redis_url} {cluster_urls:?}: {got_reason}");
            assert!(
                got_reason.contains(reason),
                "{got_reason:?} lacks {reason:?}"
            );
        }
    }

    #[test]
    fn config_debug_redacts_every_cluster_seed() {
        let mut config = Config::new("redis+cluster://:hunter2@a:1,b:2", Token::new("t"));
        config.redis_cluster_urls = Some("redis://:hunter2@a:1,redis://u:hunter2@b:2".into());
        let printed = format!("{config:?} {:?}", config.redis_target());
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("redis://<redacted>@b:2"), "{printed}");
    }

    #[test]
    fn scoped_tokens_and_admin_commands_parse_and_refuse_junk() {
        let scoped: ScopedToken = "get, mget=abc=def".parse().expect("ok");
        assert!(scoped.token.matches(b"abc=def"));
        let names: Vec<&str> = scoped.commands.iter().map(CommandName::as_str).collect();
        assert_eq!(names, ["GET", "MGET"]);
        for junk in [
            "GET",
            "=hunter2",
            "GET,=hunter2",
            "GET=",
            "G ET=hunter2",
            "GE*T=hunter2",
        ] {
            let error = junk.parse::<ScopedToken>().expect_err(junk);
            assert!(!error.contains("hunter2"), "{junk}: {error}");
        }
        assert_eq!("keys".parse::<CommandName>().expect("ok").as_str(), "KEYS");
        assert!("".parse::<CommandName>().is_err());
    }
}
