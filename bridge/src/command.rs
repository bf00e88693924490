//! Turning requests into Redis commands, and deciding which commands may run at all.
//!
//! Arguments are raw bytes: a path segment may percent-decode to anything and a POSTed value is
//! appended verbatim, so nothing here assumes UTF-8 except for matching command names.

use std::collections::BTreeSet;

use percent_encoding::percent_decode_str;
use serde_json::Value as Json;

/// A request whose body or path is not a command: Redis-style text (`ERR …`), answered as a 400
/// by [`BridgeError`](crate::BridgeError). The parser owns this type so it needs nothing from
/// the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ERR {0}")]
pub struct SyntaxError(&'static str);

/// One command as Redis will receive it: the name, then its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Command {
    parts: Vec<Vec<u8>>,
}

/// What the presented token may run: its command allow-list. Every scope is also bound by the
/// shared-connection rule, which no configuration lifts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Upstash's "Standard" token: every command except [`ADMIN_COMMANDS`], of which only those
    /// the operator named (upper case) may run.
    Full { admin: BTreeSet<String> },
    /// Upstash's "Read Only" token: [`READ_ONLY_COMMANDS`], which hold no script of any kind.
    ReadOnly,
    /// Exactly these commands (upper case), as an operator listed them for one token.
    Only(BTreeSet<String>),
}

impl Scope {
    /// The full token with no administrative command enabled.
    pub fn full() -> Self {
        Self::Full {
            admin: BTreeSet::new(),
        }
    }

    fn allows(&self, name: &str) -> bool {
        match self {
            Self::Full { admin } => !ADMIN_COMMANDS.contains(&name) || admin.contains(name),
            Self::ReadOnly => READ_ONLY_COMMANDS.contains(&name),
            Self::Only(commands) => commands.contains(name),
        }
    }
}

/// Whether no scope can ever run `name` (upper case): naming it in a configuration is an error.
pub(crate) fn never_runs(name: &str) -> bool {
    REFUSED_COMMANDS.contains(&name)
}

impl Command {
    /// `None` for an empty array: a command needs at least its name.
    fn new(parts: Vec<Vec<u8>>) -> Option<Self> {
        (!parts.is_empty()).then_some(Self { parts })
    }

    /// The name in upper case, for policy checks and logs.
    pub(crate) fn name(&self) -> String {
        self.parts
            .first()
            .map(|name| String::from_utf8_lossy(name).to_ascii_uppercase())
            .unwrap_or_default()
    }

    /// The name and the arguments, as sent.
    pub(crate) fn parts(&self) -> &[Vec<u8>] {
        &self.parts
    }

    /// Whether the command only reads ([`READ_ONLY_COMMANDS`]): what may be served by a
    /// replica (`BRIDGE_READ_REDIS_URL`).
    pub(crate) fn is_read(&self) -> bool {
        READ_ONLY_COMMANDS.contains(&self.name().as_str())
    }

    pub(crate) fn to_redis(&self) -> redis::Cmd {
        let mut cmd = redis::Cmd::new();
        for part in &self.parts {
            cmd.arg(part.as_slice());
        }
        cmd
    }

    /// Whether this command may be sent over the shared connection with this token's scope, and
    /// if not, the error text to answer with (Upstash-style: `ERR …` for commands the bridge never
    /// runs, `NOPERM …` for commands outside the token's allow-list).
    pub(crate) fn check(&self, scope: &Scope) -> Result<(), String> {
        let name = self.name();
        if breaks_shared_connection(&name, &self.parts) {
            return Err(format!(
                "ERR Command is not available: '{}'. The REST bridge shares one Redis connection, \
                 so blocking and connection-state commands are refused",
                name.to_ascii_lowercase()
            ));
        }
        if !scope.allows(&name) {
            return Err(format!(
                "NOPERM this user has no permissions to run the '{}' command",
                name.to_ascii_lowercase()
            ));
        }
        Ok(())
    }
}

/// Commands that block the multiplexed connection every request shares, switch its state for
/// everyone (database, protocol, transaction, subscription, reply mode) or take the server down.
pub(crate) const REFUSED_COMMANDS: &[&str] = &[
    // Blocking.
    "BLPOP",
    "BRPOP",
    "BRPOPLPUSH",
    "BLMOVE",
    "BLMPOP",
    "BZPOPMIN",
    "BZPOPMAX",
    "BZMPOP",
    "WAIT",
    "WAITAOF",
    // Subscriptions and streams of replies.
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "MONITOR",
    "SYNC",
    "PSYNC",
    "REPLCONF",
    // Connection state.
    "MULTI",
    "EXEC",
    "DISCARD",
    "WATCH",
    "UNWATCH",
    "SELECT",
    "AUTH",
    "HELLO",
    "CLIENT",
    "RESET",
    "QUIT",
    "READONLY",
    "READWRITE",
    "ASKING",
    // The whole server.
    "SHUTDOWN",
    "DEBUG",
];

/// Administrative and destructive commands: reconfigure, replicate or wipe the server, move
/// keys away, load or flush code, or walk the whole keyspace. The full token runs one only when
/// the operator names it (`BRIDGE_ADMIN_COMMANDS`); `MONITOR`, `DEBUG` and `SHUTDOWN` are also in
/// [`REFUSED_COMMANDS`], so they never run at all.
pub const ADMIN_COMMANDS: &[&str] = &[
    "ACL",
    "BGREWRITEAOF",
    "BGSAVE",
    "CLUSTER",
    "CONFIG",
    "DEBUG",
    "FAILOVER",
    "FLUSHALL",
    "FLUSHDB",
    "FUNCTION",
    "KEYS",
    "LATENCY",
    "MIGRATE",
    "MODULE",
    "MONITOR",
    "REPLICAOF",
    "SAVE",
    "SCRIPT",
    "SHUTDOWN",
    "SLAVEOF",
    "SLOWLOG",
    "SWAPDB",
];

fn breaks_shared_connection(name: &str, parts: &[Vec<u8>]) -> bool {
    if REFUSED_COMMANDS.contains(&name) {
        return true;
    }
    // XREAD/XREADGROUP only block with a BLOCK option, which comes before STREAMS.
    if name == "XREAD" || name == "XREADGROUP" {
        return parts
            .iter()
            .skip(1)
            .take_while(|arg| !arg.eq_ignore_ascii_case(b"STREAMS"))
            .any(|arg| arg.eq_ignore_ascii_case(b"BLOCK"));
    }
    false
}

/// Commands the read-only token may run: Redis's read commands, less `KEYS` and `SCAN`, which
/// Upstash also withholds from its read-only token, and less every script (`EVAL_RO`,
/// `EVALSHA_RO`, `FCALL_RO`): a read-only script can still loop forever and stall Redis for every
/// client. Anything not listed counts as refused, so a command this list has not heard of fails
/// closed.
const READ_ONLY_COMMANDS: &[&str] = &[
    "BITCOUNT",
    "BITFIELD_RO",
    "BITPOS",
    "DBSIZE",
    "ECHO",
    "EXISTS",
    "EXPIRETIME",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEORADIUSBYMEMBER_RO",
    "GEORADIUS_RO",
    "GEOSEARCH",
    "GET",
    "GETBIT",
    "GETRANGE",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HRANDFIELD",
    "HSCAN",
    "HSTRLEN",
    "HVALS",
    "LCS",
    "LINDEX",
    "LLEN",
    "LPOS",
    "LRANGE",
    "MGET",
    "PEXPIRETIME",
    "PFCOUNT",
    "PING",
    "PTTL",
    "SCARD",
    "SDIFF",
    "SINTER",
    "SINTERCARD",
    "SISMEMBER",
    "SMEMBERS",
    "SMISMEMBER",
    "SRANDMEMBER",
    "SSCAN",
    "STRLEN",
    "SUBSTR",
    "SUNION",
    "TIME",
    "TTL",
    "TYPE",
    "XLEN",
    "XPENDING",
    "XRANGE",
    "XREAD",
    "XREVRANGE",
    "ZCARD",
    "ZCOUNT",
    "ZDIFF",
    "ZINTER",
    "ZINTERCARD",
    "ZLEXCOUNT",
    "ZMSCORE",
    "ZRANDMEMBER",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCAN",
    "ZSCORE",
    "ZUNION",
];

/// `POST /` body: one JSON array such as `["SET","k","v","EX",100]`.
pub(crate) fn parse_one(body: &[u8]) -> Result<Command, SyntaxError> {
    from_json(parse_json(body)?)
}

/// `/pipeline` and `/multi-exec` body: a non-empty array of commands. One malformed command
/// rejects the whole request, as Upstash treats it as a syntax error of the request.
pub(crate) fn parse_many(body: &[u8]) -> Result<Vec<Command>, SyntaxError> {
    let Json::Array(commands) = parse_json(body)? else {
        return Err(SyntaxError("the body must be a JSON array of commands"));
    };
    if commands.is_empty() {
        return Err(SyntaxError("the body must hold at least one command"));
    }
    commands.into_iter().map(from_json).collect()
}

fn parse_json(body: &[u8]) -> Result<Json, SyntaxError> {
    serde_json::from_slice(body).map_err(|_| SyntaxError("the body is not valid JSON"))
}

fn from_json(command: Json) -> Result<Command, SyntaxError> {
    let Json::Array(items) = command else {
        return Err(SyntaxError("a command must be a JSON array"));
    };
    let parts = items
        .into_iter()
        .map(|item| match item {
            Json::String(s) => Ok(s.into_bytes()),
            Json::Number(n) => Ok(n.to_string().into_bytes()),
            Json::Bool(b) => Ok(b.to_string().into_bytes()),
            Json::Null | Json::Array(_) | Json::Object(_) => Err(SyntaxError(
                "command arguments must be strings, numbers or booleans",
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Command::new(parts).ok_or(SyntaxError("a command must not be empty"))
}

/// The path form `/set/k/v?EX=100`: URL-decoded segments, then the body if there is one (how
/// Upstash takes binary or JSON values), then the query pairs other than `_token` (how Upstash
/// takes arguments that follow a POSTed value).
pub(crate) fn from_path(
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<Command, SyntaxError> {
    let mut parts: Vec<Vec<u8>> = path
        .trim_start_matches('/')
        .split('/')
        .map(|segment| percent_decode_str(segment).collect())
        .collect();
    if parts.first().is_none_or(|name| name.is_empty()) {
        return Err(SyntaxError("the path must start with a command name"));
    }
    if !body.is_empty() {
        parts.push(body.to_vec());
    }
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "_token" {
            continue;
        }
        parts.push(key.into_owned().into_bytes());
        if !value.is_empty() {
            parts.push(value.into_owned().into_bytes());
        }
    }
    Command::new(parts).ok_or(SyntaxError("a command must not be empty"))
}

/// A command decoded from a request without touching Redis: its raw parts and what the policy
/// answers for the full token (no administrative command enabled) and the read-only token
/// (`Err` holds the error reply). The pure entry point for fuzzing and
/// tests; the routes run the same parsing and the same checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub parts: Vec<Vec<u8>>,
    pub full: Result<(), String>,
    pub read_only: Result<(), String>,
}

impl From<Command> for Decoded {
    fn from(command: Command) -> Self {
        Self {
            full: command.check(&Scope::full()),
            read_only: command.check(&Scope::ReadOnly),
            parts: command.parts,
        }
    }
}

/// Decodes a JSON body as `POST /` (`many = false`) or `/pipeline` and `/multi-exec`
/// (`many = true`) do.
pub fn decode_json(body: &[u8], many: bool) -> Result<Vec<Decoded>, SyntaxError> {
    if many {
        Ok(parse_many(body)?.into_iter().map(Decoded::from).collect())
    } else {
        Ok(vec![parse_one(body)?.into()])
    }
}

/// Decodes the path form (`/set/k/v?EX=100` plus a body) as `/{*command}` does.
pub fn decode_path(path: &str, query: Option<&str>, body: &[u8]) -> Result<Decoded, SyntaxError> {
    from_path(path, query, body).map(Decoded::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(cmd: &Command) -> Vec<String> {
        cmd.parts
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect()
    }

    #[test]
    fn json_numbers_and_booleans_become_text_and_other_values_are_refused() {
        let cmd = parse_one(br#"["SET","k","v","EX",100,true,1.5]"#).expect("valid");
        assert_eq!(parts(&cmd), ["SET", "k", "v", "EX", "100", "true", "1.5"]);
        for junk in [
            &b"[]"[..],
            b"[null]",
            b"[[\"GET\"]]",
            b"[{\"a\":1}]",
            b"{}",
            b"nope",
            b"",
        ] {
            assert!(
                parse_one(junk).is_err(),
                "{}",
                String::from_utf8_lossy(junk)
            );
        }
        assert!(parse_many(b"[]").is_err());
        assert!(parse_many(br#"[["GET","a"],"GET"]"#).is_err());
        assert_eq!(
            parse_many(br#"[["GET","a"],["PING"]]"#).expect("ok").len(),
            2
        );
    }

    #[test]
    fn path_segments_are_decoded_and_body_then_query_are_appended() {
        let cmd = from_path("/set/a%2Fb/%E2%98%83", Some("_token=x&EX=100&NX"), b"").expect("ok");
        assert_eq!(parts(&cmd), ["set", "a/b", "☃", "EX", "100", "NX"]);
        let cmd = from_path("/set/k", None, b"\xff\x00").expect("ok");
        assert_eq!(cmd.parts[2], b"\xff\x00");
        assert!(from_path("/", None, b"").is_err());
    }

    #[test]
    fn blocking_and_state_commands_are_refused_and_read_only_is_an_allowlist() {
        let cmd = |s: &str| parse_one(s.as_bytes()).expect("valid");
        assert!(cmd(r#"["subscribe","c"]"#).check(&Scope::full()).is_err());
        assert!(cmd(r#"["BLPOP","l",0]"#).check(&Scope::full()).is_err());
        assert!(cmd(r#"["XREAD","BLOCK",0,"STREAMS","s","$"]"#)
            .check(&Scope::full())
            .is_err());
        assert!(cmd(r#"["XREAD","STREAMS","block","0"]"#)
            .check(&Scope::full())
            .is_ok());
        assert!(cmd(r#"["SET","k","v"]"#).check(&Scope::full()).is_ok());
        let refused = cmd(r#"["set","k","v"]"#).check(&Scope::ReadOnly);
        assert!(refused.expect_err("write").starts_with("NOPERM"));
        assert!(cmd(r#"["get","k"]"#).check(&Scope::ReadOnly).is_ok());
        assert!(cmd(r#"["KEYS","*"]"#).check(&Scope::ReadOnly).is_err());
        assert!(cmd(r#"["NOSUCHCMD"]"#).check(&Scope::ReadOnly).is_err());
    }

    #[test]
    fn only_read_commands_may_go_to_a_replica() {
        let cmd = |s: &str| parse_one(s.as_bytes()).expect("valid");
        assert!(cmd(r#"["get","k"]"#).is_read());
        assert!(cmd(r#"["MGET","a","b"]"#).is_read());
        assert!(cmd(r#"["EXISTS","a"]"#).is_read());
        assert!(!cmd(r#"["SET","k","v"]"#).is_read());
        assert!(!cmd(r#"["EVAL_RO","return 1","0"]"#).is_read());
        assert!(!cmd(r#"["NOSUCHCMD"]"#).is_read());
    }
}
