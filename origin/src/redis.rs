//! [`RedisStore`], the revocation authority (not a cache: a deleted jti field is a revoked
//! token): every user's one hash (version, live access tokens, refresh mirrors, grace answers),
//! rate limits and stats. Key and field names come from [`tollgate_shared::KeySchema`], never
//! from here.
//!
//! Every change to a user is one Lua script on that user's one key, so Redis never holds half a
//! login or half a logout, and — the key being the only one a script touches — every script
//! runs unchanged on Redis Cluster. Every call has a deadline: past it the caller fails closed
//! with 503. Scripts walk only the user's own hash: cost is linear in the user's devices, never
//! in all users, and nothing uses `KEYS`.
//!
//! The scripts take their arguments by name: each starts with one `local … = unpack(ARGV)` line
//! naming them, and the Rust side builds ARGV from a struct in the same order, so a script and
//! its caller read alike.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncCommands as _, Cmd, Pipeline, RedisFuture, Script, ScriptInvocation, Value};
use tollgate_shared::keys::field;
use tollgate_shared::records::{JtiRecord, SessionMirror};
use tollgate_shared::upstash::ValidationLookup;
use tollgate_shared::KeySchema;

/// A Redis call that failed or missed its deadline.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis call `{0}` timed out")]
    Timeout(&'static str),
    #[error("redis call `{0}` failed: {1}")]
    Redis(&'static str, #[source] redis::RedisError),
}

/// Outcome of writing a freshly minted access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    Written,
    /// The device session was revoked meanwhile: the token must not be handed out.
    SessionRevoked,
    /// The user's version moved on meanwhile (logout-all raced us): mint again.
    StaleVersion,
    /// Redis holds no version for the user (flushed or evicted): the caller's copy may predate
    /// a logout-all, so it must not be written back; re-seed from SQL and mint again.
    VersionMissing,
}

/// What to write when a token is issued.
#[derive(Debug)]
pub struct NewToken<'a> {
    pub user_id: &'a str,
    pub jti: &'a str,
    pub record: &'a JtiRecord,
    pub now: i64,
    /// The access token this one replaces (refresh rotation), deleted in the same step.
    pub replaces_jti: Option<&'a str>,
    /// A sealed refresh answer to keep for the grace window: the presented secret's hash, the
    /// sealed value and how long to keep it, in milliseconds.
    pub grace: Option<(String, String, u64)>,
}

/// How Redis is set to behave when full, from `INFO`: the figures start-up, `/ready` and the
/// metrics report. Under any policy but `noeviction` Redis may drop a key at any moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    /// `maxmemory-policy`, e.g. `noeviction` or `allkeys-lru`.
    pub policy: String,
    /// `maxmemory` in bytes; 0 means no limit.
    pub maxmemory: u64,
    /// Keys evicted since Redis started.
    pub evicted_keys: u64,
}

impl Eviction {
    /// Whether Redis may evict keys (every policy but `noeviction` does once memory is full).
    pub fn evicting(&self) -> bool {
        self.policy != "noeviction"
    }
}

/// Redis stats for token-stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisStats {
    pub total_jtis: u64,
    pub total_refresh_tokens: u64,
    pub memory_usage: String,
}

/// Deletes the user's fields that fell due (every value but `v` starts with its due second),
/// renews the hash's TTL. Shared by the scripts that write a user (prepended to each).
const PRUNE: &str = r#"
local function prune(user, now)
  local all = redis.call('HGETALL', user)
  for i = 1, #all, 2 do
    local due = tonumber(string.match(all[i + 1], '^(%d+)%.'))
    if all[i] ~= 'v' and due and due <= now then redis.call('HDEL', user, all[i]) end
  end
end
"#;

/// [`ISSUE`]'s arguments, named as the script names them and pushed in its ARGV order.
struct IssueArgs {
    now: i64,
    jti_field: String,
    jti_value: String,
    session_field: String,
    session_live: String,
    version: u64,
    ttl: u64,
    replaced_field: String,
    grace_field: String,
    grace_due: i64,
    grace_value: String,
    grace_ttl_ms: u64,
}

impl IssueArgs {
    fn push(self, inv: &mut ScriptInvocation<'_>) {
        inv.arg(self.now)
            .arg(self.jti_field)
            .arg(self.jti_value)
            .arg(self.session_field)
            .arg(self.session_live)
            .arg(self.version)
            .arg(self.ttl)
            .arg(self.replaced_field)
            .arg(self.grace_field)
            .arg(self.grace_due)
            .arg(self.grace_value)
            .arg(self.grace_ttl_ms);
    }
}

static ISSUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRUNE}{}",
        r#"
-- KEYS: the user's hash; with a grace answer to keep, its key (same slot) too.
local user = KEYS[1]
local now, jti_field, jti_value, session_field, session_live, version, ttl, replaced_field,
      grace_field, grace_due, grace_value, grace_ttl_ms = unpack(ARGV)
local session = redis.call('HGET', user, session_field)
if session and string.sub(session, -2) == '.1' then return 0 end
local current = tonumber(redis.call('HGET', user, 'v'))
if not current then return -2 end
if current > tonumber(version) then return -1 end
prune(user, tonumber(now))
if replaced_field ~= '' then redis.call('HDEL', user, replaced_field) end
redis.call('HSET', user, jti_field, jti_value, session_field, session_live)
if KEYS[2] then
  redis.call('HSET', user, grace_field, grace_due .. '.')
  redis.call('SET', KEYS[2], grace_value, 'PX', grace_ttl_ms)
end
redis.call('EXPIRE', user, ttl)
return 1
"#
    ))
});

static KILL_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRUNE}{}",
        r#"
local user = KEYS[1]
local now, token_id, session_field, session_revoked, ttl = unpack(ARGV)
prune(user, tonumber(now))
redis.call('HSET', user, session_field, session_revoked)
local killed = 0
local all = redis.call('HGETALL', user)
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 'j:' and string.match(all[i + 1], '^%d+%.([^.]*)%.') == token_id then
    killed = killed + redis.call('HDEL', user, all[i])
  end
end
redis.call('EXPIRE', user, ttl)
return killed
"#
    ))
});

static LOGOUT_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRUNE}{}",
        r#"
local user = KEYS[1]
local now, version, session_revoked, ttl = unpack(ARGV, 1, 4)
local current = tonumber(redis.call('HGET', user, 'v'))
if not current or current < tonumber(version) then redis.call('HSET', user, 'v', version) end
prune(user, tonumber(now))
local killed = 0
local all = redis.call('HGETALL', user)
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 'j:' then killed = killed + redis.call('HDEL', user, all[i]) end
end
for i = 5, #ARGV do redis.call('HSET', user, ARGV[i], session_revoked) end
redis.call('EXPIRE', user, ttl)
return killed
"#
    ))
});

/// Counts the access tokens a deleted user had, then deletes their whole hash and the grace
/// answers its `g:` fields name (keys of the same slot, `ARGV[1]` + secret hash).
static DELETE_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local grace_key_prefix = ARGV[1]
local killed = 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local kind = string.sub(f, 1, 2)
  if kind == 'j:' then killed = killed + 1 end
  if kind == 'g:' then redis.call('DEL', grace_key_prefix .. string.sub(f, 3)) end
end
redis.call('DEL', KEYS[1])
return killed
"#,
    )
});

/// Writes the version only where the hash has none (the database's value never rolls a
/// logout-all back); a hash this creates gets the hash's TTL.
static SEED_VERSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local version, ttl = unpack(ARGV)
if redis.call('HSETNX', KEYS[1], 'v', version) == 1 and redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return 1
"#,
    )
});

static RATE_LIMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local window = ARGV[1]
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], window) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], window); ttl = tonumber(window) end
return {n, ttl}
"#,
    )
});

/// One connection to Redis, a single node or a cluster: multiplexed and self-reconnecting
/// either way, so every call site is the same.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// The origin's Redis handle; cheap to clone (one multiplexed, self-reconnecting connection).
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    keys: KeySchema,
    timeout: Duration,
    refresh_ttl: u64,
    /// Round trips made so far: how tests and benchmarks count what a request costs.
    round_trips: Arc<AtomicU64>,
    /// With `REDIS_WAIT_REPLICAS`, revocations wait for replicas ([`crate::replication`]).
    replication: Option<Arc<crate::replication::Replication>>,
    /// The single node's client, for the connections revocations open to `WAIT` on; `None` on
    /// a cluster, where configuration refuses `REDIS_WAIT_REPLICAS`.
    client: Option<redis::Client>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("keys", &self.keys)
            .field("cluster", &matches!(self.conn, Conn::Cluster(_)))
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` — one node (`redis://`, `rediss://`) or a cluster
    /// (`redis+cluster://h1:p1,h2:p2`, see [`tollgate_shared::config::cluster_url_seeds`]);
    /// the connection re-establishes itself after Redis restarts or the cluster's slots move.
    pub async fn connect(
        url: &str,
        keys: KeySchema,
        timeout: Duration,
        refresh_ttl: u64,
    ) -> Result<Self, StoreError> {
        let (conn, client) = match tollgate_shared::config::cluster_url_seeds(url) {
            Some(Err(reason)) => {
                let kind = redis::ErrorKind::InvalidClientConfig;
                let e = redis::RedisError::from((kind, "not a Redis Cluster URL", reason));
                return Err(StoreError::Redis("open", e));
            }
            Some(Ok(nodes)) => {
                let client = redis::cluster::ClusterClientBuilder::new(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(2)
                    .build()
                    .map_err(|e| StoreError::Redis("open", e))?;
                let conn = tokio::time::timeout(timeout * 3, client.get_async_connection())
                    .await
                    .map_err(|_| StoreError::Timeout("connect"))?
                    .map_err(|e| StoreError::Redis("connect", e))?;
                (Conn::Cluster(conn), None)
            }
            None => {
                let client = redis::Client::open(url).map_err(|e| StoreError::Redis("open", e))?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout)
                    .set_number_of_retries(2)
                    .set_max_delay(500);
                let conn = tokio::time::timeout(
                    timeout * 3,
                    ConnectionManager::new_with_config(client.clone(), config),
                )
                .await
                .map_err(|_| StoreError::Timeout("connect"))?
                .map_err(|e| StoreError::Redis("connect", e))?;
                (Conn::Single(conn), Some(client))
            }
        };
        Ok(Self {
            conn,
            keys,
            timeout,
            refresh_ttl,
            round_trips: Arc::default(),
            replication: None,
            client,
        })
    }

    /// Makes every revocation wait for `bound.replicas` replicas (none when 0). A cluster has
    /// no single connection to `WAIT` on; configuration refuses the combination.
    pub fn with_replication(mut self, bound: crate::replication::WaitBound) -> Self {
        self.replication = match (&self.client, bound.replicas) {
            (Some(client), 1..) => Some(Arc::new(crate::replication::Replication::new(
                client.clone(),
                bound,
            ))),
            _ => None,
        };
        self
    }

    /// Revocations this process made whose replicas did not all acknowledge within the bound.
    pub fn replication_timeouts(&self) -> u64 {
        self.replication.as_ref().map_or(0, |r| r.timeouts())
    }

    /// Runs a revocation script: on the shared connection, or — when revocations wait for
    /// replicas — on a connection of its own followed by `WAIT` ([`crate::replication`]).
    async fn revoke<T: redis::FromRedisValue + Send>(
        &self,
        what: &'static str,
        inv: ScriptInvocation<'static>,
    ) -> Result<T, StoreError> {
        if let Some(replication) = &self.replication {
            self.round_trips.fetch_add(2, Ordering::Relaxed);
            return replication.revoke(what, inv, self.timeout).await;
        }
        let mut c = self.conn.clone();
        self.run(what, async move { inv.invoke_async(&mut c).await })
            .await
    }

    pub fn keys(&self) -> &KeySchema {
        &self.keys
    }

    /// Runs one Redis call under the deadline.
    async fn run<T>(
        &self,
        what: &'static str,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::debug!(call = what, error = %e, "redis call failed");
                Err(StoreError::Redis(what, e))
            }
            Err(_) => Err(StoreError::Timeout(what)),
        };
        crate::monitoring::redis_call(what, started, &result);
        result
    }

    /// How many Redis round trips this process has made.
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        self.run("PING", async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await
        .map(|_| ())
    }

    /// The one round trip a protected request costs: `HMGET tg:{user} j:{jti} v`.
    pub async fn lookup(&self, jti: &str, user_id: &str) -> Result<ValidationLookup, StoreError> {
        let mut c = self.conn.clone();
        let key = self.keys.user(user_id);
        let fields = [field::jti(jti), field::VERSION.to_owned()];
        let [jti_record, user_version]: [Option<String>; 2] = self
            .run("HMGET", async move {
                let v: Vec<Option<String>> = c.hget(key, &fields).await?;
                // A reply of the wrong arity reads as "no record": fail closed.
                Ok(<[Option<String>; 2]>::try_from(v).unwrap_or_default())
            })
            .await?;
        Ok(ValidationLookup {
            jti_record,
            user_version,
        })
    }

    /// Writes the user's version if it is missing (after a flush or eviction): the database's
    /// value wins only where Redis has none, so it can never roll a logout-all back.
    pub async fn seed_version(&self, user_id: &str, version: u64) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let mut inv = SEED_VERSION.prepare_invoke();
        inv.key(self.keys.user(user_id))
            .arg(version)
            .arg(self.refresh_ttl);
        self.run("EVALSHA seed_version", async move {
            inv.invoke_async::<i64>(&mut c).await
        })
        .await
        .map(|_| ())
    }

    /// One of the user's access-token records, raw (`None`: revoked, expired, or not theirs).
    pub async fn jti_record(&self, user_id: &str, jti: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        let (key, field) = (self.keys.user(user_id), field::jti(jti));
        self.run("HGET", async move { c.hget(key, field).await })
            .await
    }

    /// The sealed answer kept for repeats of a refresh within the grace window. Whether a
    /// repeat is inside the window is SQL's call, not this one's.
    pub async fn grace_entry(
        &self,
        user_id: &str,
        presented_hash: &str,
    ) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        let key = self.keys.grace(user_id, presented_hash);
        self.run("GET", async move { c.get(key).await }).await
    }

    /// Which of the user's jtis still have records (one `HMGET`), in order.
    pub async fn live_jtis(
        &self,
        user_id: &str,
        jtis: &[&str],
    ) -> Result<Vec<Option<String>>, StoreError> {
        if jtis.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn.clone();
        let key = self.keys.user(user_id);
        let fields: Vec<String> = jtis.iter().map(|j| field::jti(j)).collect();
        self.run("HMGET", async move { c.hget(key, fields).await })
            .await
    }

    /// Writes a new access token's record, the version's TTL and the refresh mirror in one
    /// atomic step, refusing if the session was revoked or the version moved.
    pub async fn issue(&self, t: &NewToken<'_>) -> Result<Issue, StoreError> {
        let mut c = self.conn.clone();
        let mut inv = ISSUE.prepare_invoke();
        inv.key(self.keys.user(t.user_id));
        let (grace_field, grace_due, grace_value, grace_ttl_ms) = match &t.grace {
            Some((hash, sealed, ttl_ms)) if *ttl_ms > 0 => {
                inv.key(self.keys.grace(t.user_id, hash));
                let secs = i64::try_from(ttl_ms.div_ceil(1000)).unwrap_or(i64::MAX);
                let due = t.now.saturating_add(secs);
                (field::grace(hash), due, sealed.clone(), *ttl_ms)
            }
            _ => (String::new(), 0, String::new(), 0),
        };
        let args = IssueArgs {
            now: t.now,
            jti_field: field::jti(t.jti),
            jti_value: t.record.encode(),
            session_field: field::session(&t.record.token_id),
            session_live: self.mirror(t.now, false),
            version: t.record.token_version,
            ttl: self.refresh_ttl,
            replaced_field: t.replaces_jti.map(field::jti).unwrap_or_default(),
            grace_field,
            grace_due,
            grace_value,
            grace_ttl_ms,
        };
        args.push(&mut inv);
        let r: i64 = self
            .run(
                "EVALSHA issue",
                async move { inv.invoke_async(&mut c).await },
            )
            .await?;
        Ok(match r {
            1 => Issue::Written,
            0 => Issue::SessionRevoked,
            -2 => Issue::VersionMissing,
            _ => Issue::StaleVersion,
        })
    }

    /// Deletes one access token's record (RFC 7009 revocation of an access token): that token is
    /// refused from the next request; its device session lives on. Returns whether it was there.
    pub async fn revoke_jti(&self, user_id: &str, jti: &str) -> Result<bool, StoreError> {
        let mut c = self.conn.clone();
        let (key, field) = (self.keys.user(user_id), field::jti(jti));
        self.run("HDEL", async move {
            let deleted: u64 = c.hdel(key, field).await?;
            Ok(deleted == 1)
        })
        .await
    }

    /// Kills every access token of one device session and marks its refresh mirror revoked.
    pub async fn kill_session(
        &self,
        user_id: &str,
        token_id: &str,
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut inv = KILL_SESSION.prepare_invoke();
        inv.key(self.keys.user(user_id))
            .arg(now)
            .arg(token_id)
            .arg(field::session(token_id))
            .arg(self.mirror(now, true))
            .arg(self.refresh_ttl);
        self.revoke("EVALSHA kill_session", inv).await
    }

    /// Kills every access token of the user, sets their new version and marks the given
    /// sessions' refresh mirrors revoked, atomically.
    pub async fn logout_all(
        &self,
        user_id: &str,
        new_version: u64,
        token_ids: &[String],
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut inv = LOGOUT_ALL.prepare_invoke();
        inv.key(self.keys.user(user_id))
            .arg(now)
            .arg(new_version)
            .arg(self.mirror(now, true))
            .arg(self.refresh_ttl);
        for id in token_ids {
            inv.arg(field::session(id));
        }
        self.revoke("EVALSHA logout_all", inv).await
    }

    /// Forgets a deleted user: their whole hash (version, tokens, mirrors) and grace answers.
    /// Returns how many access tokens died with it.
    pub async fn delete_user(&self, user_id: &str) -> Result<u64, StoreError> {
        let mut inv = DELETE_USER.prepare_invoke();
        inv.key(self.keys.user(user_id))
            .arg(self.keys.grace_prefix(user_id));
        self.revoke("EVALSHA delete_user", inv).await
    }

    /// A refresh mirror's value: live or revoked, due when a refresh token issued now expires.
    fn mirror(&self, now: i64, revoked: bool) -> String {
        SessionMirror {
            until: now.saturating_add(i64::try_from(self.refresh_ttl).unwrap_or(i64::MAX)),
            revoked,
        }
        .encode()
    }

    /// Reads the eviction policy, memory cap and evictions so far from `INFO memory` and
    /// `INFO stats` (`CONFIG` is often disabled on managed Redis; `INFO` is not). On a cluster
    /// the policy and cap are the first node's (an operator sets them alike on every node) and
    /// the evictions are summed over the nodes.
    pub async fn eviction(&self) -> Result<Eviction, StoreError> {
        let memory = self.info("memory").await?;
        let stats = self.info("stats").await?;
        let first = memory.first().map_or("", String::as_str);
        Ok(Eviction {
            policy: info_field(first, "maxmemory_policy")
                .unwrap_or("unknown")
                .to_owned(),
            maxmemory: info_field(first, "maxmemory")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            evicted_keys: info_sum(&stats, "evicted_keys"),
        })
    }

    /// `INFO section` of every node: one text on a single node; on a cluster redis-rs asks each
    /// master and answers a map of node to text.
    async fn info(&self, section: &'static str) -> Result<Vec<String>, StoreError> {
        let mut c = self.conn.clone();
        self.run("INFO", async move {
            let reply: Value = redis::cmd("INFO").arg(section).query_async(&mut c).await?;
            match reply {
                Value::Map(nodes) => nodes
                    .into_iter()
                    .map(|(_, text)| redis::from_owned_redis_value(text))
                    .collect(),
                one => Ok(vec![redis::from_owned_redis_value(one)?]),
            }
        })
        .await
    }

    /// Counts one attempt in a fixed window; returns the count so far and seconds left.
    pub async fn hit(
        &self,
        scope: &str,
        subject: &str,
        window: u64,
    ) -> Result<(u64, u64), StoreError> {
        let mut c = self.conn.clone();
        let mut inv = RATE_LIMIT.prepare_invoke();
        inv.key(self.keys.rate_limit(scope, subject)).arg(window);
        self.run("EVALSHA rate_limit", async move {
            inv.invoke_async(&mut c).await
        })
        .await
    }

    /// Each counter's value and seconds left (`0` and a negative TTL when absent), without
    /// creating any: a request that only checks a limit leaves nothing behind. The counters are
    /// independent keys (on a cluster, in different slots), read concurrently on the one
    /// multiplexed connection: one round trip's latency.
    pub async fn counters(&self, scopes: &[(&str, &str)]) -> Result<Vec<(u64, i64)>, StoreError> {
        let reads = scopes.iter().map(|(scope, subject)| {
            let mut c = self.conn.clone();
            let key = self.keys.rate_limit(scope, subject);
            self.run("GET+TTL", async move {
                let (count, ttl): (Option<u64>, i64) = redis::pipe()
                    .get(&key)
                    .ttl(&key)
                    .query_async(&mut c)
                    .await?;
                Ok((count.unwrap_or(0), ttl))
            })
        });
        futures::future::try_join_all(reads).await
    }

    /// Adds one to each counter, starting its window if it is new; returns the new counts in
    /// order. Each counter is its own atomic step (they are independent keys, see
    /// [`counters`](Self::counters)).
    pub async fn count_failure(
        &self,
        scopes: &[(&str, &str, u64)],
    ) -> Result<Vec<u64>, StoreError> {
        let hits = scopes
            .iter()
            .map(|(scope, subject, window)| self.hit(scope, subject, *window));
        let counted = futures::future::try_join_all(hits).await?;
        Ok(counted.into_iter().map(|(count, _)| count).collect())
    }

    /// Counts live access tokens and refresh mirrors (of unexpired refresh tokens, revoked or
    /// not) by walking every user hash with `SCAN`
    /// (never `KEYS`) on every node that holds keys, and reads `INFO memory`. Walks the whole
    /// keyspace: only [`StatsCache`] calls it, at most once per its bound.
    pub async fn stats(&self) -> Result<RedisStats, StoreError> {
        let mut stats = RedisStats {
            total_jtis: 0,
            total_refresh_tokens: 0,
            memory_usage: String::new(),
        };
        let now = crate::domain::now();
        for node in self.nodes().await? {
            self.count_node(&node, now, &mut stats).await?;
        }
        let info = self.info("memory").await?;
        stats.memory_usage = match info.as_slice() {
            [one] => info_field(one, "used_memory_human")
                .unwrap_or("unknown")
                .to_owned(),
            nodes => human_bytes(info_sum(nodes, "used_memory")),
        };
        Ok(stats)
    }

    /// Where `SCAN` must run: the one node, or each master of the cluster (from `CLUSTER
    /// NODES`, whose second column is `ip:port@cport`).
    async fn nodes(&self) -> Result<Vec<Node>, StoreError> {
        let Conn::Cluster(cluster) = &self.conn else {
            return Ok(vec![Node::Single]);
        };
        let mut c = cluster.clone();
        let listing: String = self
            .run("CLUSTER NODES", async move {
                redis::cmd("CLUSTER").arg("NODES").query_async(&mut c).await
            })
            .await?;
        Ok(cluster_masters(&listing)
            .into_iter()
            .map(|(host, port)| Node::Master { host, port })
            .collect())
    }

    async fn count_node(
        &self,
        node: &Node,
        now: i64,
        stats: &mut RedisStats,
    ) -> Result<(), StoreError> {
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::pipe();
            scan.cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(self.keys.user_pattern())
                .arg("COUNT")
                .arg(1000)
                .arg("TYPE")
                .arg("hash");
            let reply = self.on_node(node, scan).await?.into_iter().next();
            let (next, batch): (u64, Vec<String>) =
                redis::from_owned_redis_value(reply.unwrap_or(Value::Nil))
                    .map_err(|e| StoreError::Redis("SCAN", e))?;
            // One round trip for the whole batch's hashes.
            let mut hgetall = redis::pipe();
            for key in &batch {
                hgetall.hgetall(key);
            }
            let hashes = if batch.is_empty() {
                Vec::new()
            } else {
                self.on_node(node, hgetall).await?
            };
            for hash in hashes {
                // A key that expired or went since the SCAN reads as no fields.
                let fields: Vec<(String, String)> =
                    redis::from_owned_redis_value(hash).unwrap_or_default();
                for (f, value) in fields {
                    // Fields past due wait for the user's next write to be pruned: not live.
                    let due = value.split('.').next().and_then(|d| d.parse::<i64>().ok());
                    if due.is_none_or(|due| due <= now) {
                        continue;
                    }
                    if f.starts_with(field::JTI) {
                        stats.total_jtis += 1;
                    } else if f.starts_with(field::SESSION) {
                        stats.total_refresh_tokens += 1;
                    }
                }
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Runs `pipe` on one node: the single one, or a cluster master by address (plain keys of
    /// several slots are fine there: no slot routing, the node holds them all).
    async fn on_node(&self, node: &Node, pipe: Pipeline) -> Result<Vec<Value>, StoreError> {
        let mut c = self.conn.clone();
        let node = node.clone();
        self.run("stats", async move {
            match (&mut c, node) {
                (Conn::Cluster(cluster), Node::Master { host, port }) => {
                    let route =
                        redis::cluster_routing::SingleNodeRoutingInfo::ByAddress { host, port };
                    cluster.route_pipeline(&pipe, 0, pipe.len(), route).await
                }
                (c, _) => pipe.query_async(c).await,
            }
        })
        .await
    }
}

/// A node `SCAN` runs on.
#[derive(Debug, Clone)]
enum Node {
    Single,
    Master { host: String, port: u16 },
}

/// The masters in a `CLUSTER NODES` listing that are up: `(host, port)` of each line whose
/// flags say `master` and not `fail`.
fn cluster_masters(listing: &str) -> Vec<(String, u16)> {
    listing
        .lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let addr = cols.nth(1)?;
            let flags = cols.next()?;
            let up_master = flags.split(',').any(|f| f == "master")
                && !flags.split(',').any(|f| f == "fail" || f == "fail?");
            let (host, port) = addr.split('@').next()?.rsplit_once(':')?;
            up_master.then(|| Some((host.to_owned(), port.parse().ok()?)))?
        })
        .collect()
}

/// `field` summed over every node's `INFO` text (a node without it counts 0).
fn info_sum(nodes: &[String], field: &str) -> u64 {
    nodes
        .iter()
        .filter_map(|info| info_field(info, field)?.parse::<u64>().ok())
        .sum()
}

/// Bytes the way `used_memory_human` writes them (`1023B`, `2.09M`), for a cluster's total.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, f64); 3] = [
        ("G", 1024.0 * 1024.0 * 1024.0),
        ("M", 1024.0 * 1024.0),
        ("K", 1024.0),
    ];
    UNITS
        .iter()
        .find(|(_, size)| bytes as f64 >= *size)
        .map_or_else(
            || format!("{bytes}B"),
            |(unit, size)| format!("{:.2}{unit}", bytes as f64 / size),
        )
}

/// The value of `field` in an `INFO` reply (`field:value` lines).
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(str::trim)
    })
}

/// token-stats' Redis figures, recomputed at most once per `max_age` seconds and shared by every
/// caller in between; concurrent callers wait for one computation rather than each start one.
///
/// Why a bounded-age cache rather than counters kept on every write: access tokens and refresh
/// mirrors leave Redis by pruning, TTL, eviction or a flush, which no counter hears of, so
/// maintained counters drift for ever; a count that is exact when taken and at most `max_age`
/// old stays honest, and its `SCAN` of the keyspace runs at most once per `max_age` whatever the
/// request rate.
#[derive(Debug, Default)]
pub struct StatsCache {
    latest: tokio::sync::Mutex<Option<(i64, RedisStats)>>,
}

impl StatsCache {
    /// The figures and when (unix seconds) they were computed.
    pub async fn get(
        &self,
        cache: &RedisStore,
        now: i64,
        max_age: u64,
    ) -> Result<(RedisStats, i64), StoreError> {
        let mut latest = self.latest.lock().await;
        if let Some((at, stats)) = latest.as_ref() {
            if now.saturating_sub(*at) < i64::try_from(max_age).unwrap_or(i64::MAX) {
                return Ok((stats.clone(), *at));
            }
        }
        let stats = cache.stats().await?;
        *latest = Some((now, stats.clone()));
        Ok((stats, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clusters_memory_reads_like_one_nodes() {
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(2_190_096), "2.09M");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.00G");
        let nodes = [
            "used_memory:10\r\n".to_owned(),
            "used_memory:32\r\n".to_owned(),
        ];
        assert_eq!(info_sum(&nodes, "used_memory"), 42);
    }

    #[test]
    fn cluster_masters_are_the_up_masters_of_the_listing() {
        let listing = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
a2 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922
a3 127.0.0.1:7003@17003 master,fail - 0 0 3 disconnected
r1 127.0.0.1:7004@17004 slave a1 0 0 1 connected
a4 10.0.0.9:7005@17005,node-5 master - 0 0 4 connected 10923-16383
";
        assert_eq!(
            cluster_masters(listing),
            vec![
                ("127.0.0.1".to_owned(), 7001),
                ("127.0.0.1".to_owned(), 7002),
                ("10.0.0.9".to_owned(), 7005),
            ]
        );
    }
}
