//! [`RedisStore`], the revocation authority (not a cache: a deleted jti record is a revoked
//! token): jti records, the per-user token index, version keys, refresh-status mirror, rate
//! limits and stats. Key names come from [`tollgate_shared::KeySchema`], never from here.
//!
//! Every multi-key change is one Lua script, so Redis never holds half a login or half a
//! logout, and every call has a deadline: past it the caller fails closed with 503.
//! Scripts that walk a user's tokens touch only that user's keys: cost is linear in the user's
//! devices, never in all users, and nothing uses `KEYS`.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands as _, Script};
use tollgate_shared::records::{JtiRecord, RefreshStatus};
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
    pub exp: i64,
    pub now: i64,
    pub record: &'a JtiRecord,
    pub version: u64,
    /// The access token this one replaces (refresh rotation), deleted in the same step.
    pub replaces_jti: Option<&'a str>,
    /// A sealed refresh answer to keep for the grace window: key, value, TTL in milliseconds.
    pub grace: Option<(String, String, u64)>,
}

/// How Redis is set to behave when full, from `INFO`: the figures start-up, `/ready` and (later)
/// the metrics report. Under any policy but `noeviction` Redis may drop a key at any moment.
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

static ISSUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS: jti, user index, refresh status, user version, replaced jti, grace entry
-- ARGV: record, access ttl, jti, exp, now, refresh status, refresh ttl, version, replaced jti,
--       grace value, grace ttl (ms)
local st = redis.call('GET', KEYS[3])
if st then
  local ok, s = pcall(cjson.decode, st)
  if ok and type(s) == 'table' and s.isRevoked == true then return 0 end
end
local cur = tonumber(redis.call('GET', KEYS[4]))
local v = tonumber(ARGV[8])
if not cur then return -2 end
if cur > v then return -1 end
redis.call('SET', KEYS[4], ARGV[8], 'EX', ARGV[7])
if ARGV[9] ~= '' then
  redis.call('DEL', KEYS[5])
  redis.call('ZREM', KEYS[2], ARGV[9])
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('EXPIREAT', KEYS[2], newest[2])
redis.call('SET', KEYS[3], ARGV[6], 'EX', ARGV[7])
if ARGV[10] ~= '' and tonumber(ARGV[11]) > 0 then
  redis.call('SET', KEYS[6], ARGV[10], 'PX', ARGV[11])
end
return 1
"#,
    )
});

static KILL_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS: user index, refresh status
-- ARGV: jti key prefix, token id, revoked status, refresh ttl, jtis known to be the session's...
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
local killed = 0
for i = 5, #ARGV do
  killed = killed + redis.call('DEL', ARGV[1] .. ARGV[i])
  redis.call('ZREM', KEYS[1], ARGV[i])
end
for _, jti in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local raw = redis.call('GET', ARGV[1] .. jti)
  if not raw then
    redis.call('ZREM', KEYS[1], jti)
  else
    local ok, rec = pcall(cjson.decode, raw)
    if ok and type(rec) == 'table' and rec.tokenId == ARGV[2] then
      redis.call('DEL', ARGV[1] .. jti)
      redis.call('ZREM', KEYS[1], jti)
      killed = killed + 1
    end
  end
end
return killed
"#,
    )
});

static LOGOUT_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS: user index, user version
-- ARGV: jti key prefix, new version, refresh ttl, refresh key prefix, revoked status, token ids...
local cur = tonumber(redis.call('GET', KEYS[2]))
if not cur or cur < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
end
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, jti in ipairs(members) do redis.call('DEL', ARGV[1] .. jti) end
redis.call('DEL', KEYS[1])
for i = 6, #ARGV do redis.call('SET', ARGV[4] .. ARGV[i], ARGV[5], 'EX', ARGV[3]) end
return #members
"#,
    )
});

static DELETE_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS: user index, user version
-- ARGV: jti key prefix, refresh key prefix, grace key prefix, number of jtis, number of token
--       ids, then the jtis, the token ids and the refresh secret hashes
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, jti in ipairs(members) do redis.call('DEL', ARGV[1] .. jti) end
redis.call('DEL', KEYS[1], KEYS[2])
local jtis, ids = tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 6, #ARGV do
  local prefix = ARGV[3]
  if i < 6 + jtis then prefix = ARGV[1] elseif i < 6 + jtis + ids then prefix = ARGV[2] end
  redis.call('DEL', prefix .. ARGV[i])
end
return #members
"#,
    )
});

static RATE_LIMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"#,
    )
});

static READ_COUNTERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS: counters. Reads only: a counter that does not exist stays absent.
local out = {}
for i, key in ipairs(KEYS) do
  out[2 * i - 1] = tonumber(redis.call('GET', key)) or 0
  out[2 * i] = redis.call('TTL', key)
end
return out
"#,
    )
});

static COUNT_FAILURE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS: counters; ARGV: each counter's window (seconds), in the same order.
local out = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 or redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[i]) end
  out[i] = n
end
return out
"#,
    )
});

/// The origin's Redis handle; cheap to clone (one multiplexed, self-reconnecting connection).
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    keys: KeySchema,
    timeout: Duration,
    refresh_ttl: u64,
    /// Round trips made so far: how tests and benchmarks count what a request costs.
    round_trips: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// With `REDIS_WAIT_REPLICAS`, revocations wait for replicas ([`crate::replication`]).
    replication: Option<std::sync::Arc<crate::replication::Replication>>,
    client: redis::Client,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects; the connection re-establishes itself after Redis restarts.
    pub async fn connect(
        url: &str,
        keys: KeySchema,
        timeout: Duration,
        refresh_ttl: u64,
    ) -> Result<Self, StoreError> {
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
        Ok(Self {
            conn,
            keys,
            timeout,
            refresh_ttl,
            round_trips: std::sync::Arc::default(),
            replication: None,
            client,
        })
    }

    /// Makes every revocation wait for `bound.replicas` replicas (none when 0).
    pub fn with_replication(mut self, bound: crate::replication::WaitBound) -> Self {
        self.replication = (bound.replicas > 0).then(|| {
            std::sync::Arc::new(crate::replication::Replication::new(
                self.client.clone(),
                bound,
            ))
        });
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
        inv: redis::ScriptInvocation<'static>,
    ) -> Result<T, StoreError> {
        if let Some(replication) = &self.replication {
            self.round_trips
                .fetch_add(2, std::sync::atomic::Ordering::Relaxed);
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
        self.round_trips
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        self.round_trips.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        self.run("PING", async move {
            redis::cmd("PING").query_async::<String>(&mut c).await
        })
        .await
        .map(|_| ())
    }

    /// The one round trip a protected request costs: `MGET token:jti:{jti} user:ver:{user}`.
    pub async fn lookup(&self, jti: &str, user_id: &str) -> Result<ValidationLookup, StoreError> {
        let mut c = self.conn.clone();
        let keys = [self.keys.jti(jti), self.keys.user_version(user_id)];
        let [jti_record, user_version]: [Option<String>; 2] = self
            .run("MGET", async move {
                let v: Vec<Option<String>> = c.mget(&keys).await?;
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
        let key = self.keys.user_version(user_id);
        let ttl = self.refresh_ttl;
        self.run("SET NX", async move {
            redis::cmd("SET")
                .arg(key)
                .arg(version)
                .arg("EX")
                .arg(ttl)
                .arg("NX")
                .query_async::<Option<String>>(&mut c)
                .await
        })
        .await
        .map(|_| ())
    }

    pub async fn jti_record(&self, jti: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        let key = self.keys.jti(jti);
        self.run("GET", async move { c.get(key).await }).await
    }

    /// The sealed answer kept for repeats of a refresh within the grace window.
    pub async fn grace_entry(&self, presented_hash: &str) -> Result<Option<String>, StoreError> {
        let mut c = self.conn.clone();
        let key = self.keys.refresh_grace(presented_hash);
        self.run("GET", async move { c.get(key).await }).await
    }

    /// Which of these jtis still have records (one `MGET`), in order.
    pub async fn live_jtis(&self, jtis: &[&str]) -> Result<Vec<Option<String>>, StoreError> {
        if jtis.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn.clone();
        let keys: Vec<String> = jtis.iter().map(|j| self.keys.jti(j)).collect();
        self.run("MGET", async move { c.mget(keys).await }).await
    }

    /// Writes a new access token's record, its index entry, the version key and the refresh
    /// mirror in one atomic step, refusing if the session was revoked or the version moved.
    pub async fn issue(&self, t: &NewToken<'_>, access_ttl: u64) -> Result<Issue, StoreError> {
        let mut c = self.conn.clone();
        let status = refresh_status(t.user_id, false, t.now);
        let record = serde_json::to_string(t.record).unwrap_or_default();
        let replaced = t.replaces_jti.unwrap_or("");
        let (grace_key, grace_value, grace_ttl) = t
            .grace
            .clone()
            .unwrap_or_else(|| (self.keys.refresh_grace(""), String::new(), 0));
        let mut inv = ISSUE.prepare_invoke();
        inv.key(self.keys.jti(t.jti))
            .key(self.keys.user_tokens(t.user_id))
            .key(self.keys.refresh(&t.record.token_id))
            .key(self.keys.user_version(t.user_id))
            .key(self.keys.jti(replaced))
            .key(grace_key)
            .arg(record)
            .arg(access_ttl)
            .arg(t.jti)
            .arg(t.exp)
            .arg(t.now)
            .arg(status)
            .arg(self.refresh_ttl)
            .arg(t.version)
            .arg(replaced)
            .arg(grace_value)
            .arg(grace_ttl);
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

    /// Deletes one access token's record and its index entry (RFC 7009 revocation of an access
    /// token): that token is refused from the next request; its device session lives on.
    /// Returns whether a record was there.
    pub async fn revoke_jti(&self, user_id: &str, jti: &str) -> Result<bool, StoreError> {
        let mut c = self.conn.clone();
        let record = self.keys.jti(jti);
        let index = self.keys.user_tokens(user_id);
        let member = jti.to_owned();
        self.run("DEL+ZREM", async move {
            let (deleted, _): (u64, u64) = redis::pipe()
                .atomic()
                .del(record)
                .zrem(index, member)
                .query_async(&mut c)
                .await?;
            Ok(deleted == 1)
        })
        .await
    }

    /// Kills every access token of one device session and marks its refresh token revoked.
    /// `known_jtis` (the request's own, the session's newest from SQL) are deleted directly, so
    /// they die even when the user's index was evicted or flushed.
    pub async fn kill_session(
        &self,
        user_id: &str,
        token_id: &str,
        known_jtis: &[&str],
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut inv = KILL_SESSION.prepare_invoke();
        inv.key(self.keys.user_tokens(user_id))
            .key(self.keys.refresh(token_id))
            .arg(self.keys.jti(""))
            .arg(token_id)
            .arg(refresh_status(user_id, true, now))
            .arg(self.refresh_ttl);
        for jti in known_jtis {
            inv.arg(*jti);
        }
        self.revoke("EVALSHA kill_session", inv).await
    }

    /// Kills every access token of the user, sets their new version and marks the given
    /// sessions' refresh tokens revoked, atomically.
    pub async fn logout_all(
        &self,
        user_id: &str,
        new_version: u64,
        token_ids: &[String],
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut inv = LOGOUT_ALL.prepare_invoke();
        inv.key(self.keys.user_tokens(user_id))
            .key(self.keys.user_version(user_id))
            .arg(self.keys.jti(""))
            .arg(new_version)
            .arg(self.refresh_ttl)
            .arg(self.keys.refresh(""))
            .arg(refresh_status(user_id, true, now));
        for id in token_ids {
            inv.arg(id);
        }
        self.revoke("EVALSHA logout_all", inv).await
    }

    /// Forgets a deleted user: every jti in their index and every one SQL knew, the index, the
    /// version key, each session's refresh mirror and any sealed answer kept for its secrets.
    pub async fn delete_user(
        &self,
        user_id: &str,
        keys: &crate::db::AccountKeys,
    ) -> Result<u64, StoreError> {
        let mut inv = DELETE_USER.prepare_invoke();
        inv.key(self.keys.user_tokens(user_id))
            .key(self.keys.user_version(user_id))
            .arg(self.keys.jti(""))
            .arg(self.keys.refresh(""))
            .arg(self.keys.refresh_grace(""))
            .arg(keys.jtis.len())
            .arg(keys.token_ids.len());
        for arg in keys
            .jtis
            .iter()
            .chain(&keys.token_ids)
            .chain(&keys.secret_hashes)
        {
            inv.arg(arg);
        }
        self.revoke("EVALSHA delete_user", inv).await
    }

    /// Reads the eviction policy, memory cap and evictions so far from `INFO memory` and
    /// `INFO stats` (`CONFIG` is often disabled on managed Redis; `INFO` is not).
    pub async fn eviction(&self) -> Result<Eviction, StoreError> {
        let memory = self.info("memory").await?;
        let stats = self.info("stats").await?;
        Ok(Eviction {
            policy: info_field(&memory, "maxmemory_policy")
                .unwrap_or("unknown")
                .to_owned(),
            maxmemory: info_field(&memory, "maxmemory")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            evicted_keys: info_field(&stats, "evicted_keys")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        })
    }

    async fn info(&self, section: &'static str) -> Result<String, StoreError> {
        let mut c = self.conn.clone();
        self.run("INFO", async move {
            redis::cmd("INFO").arg(section).query_async(&mut c).await
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
    /// creating any: a request that only checks a limit leaves nothing behind.
    pub async fn counters(&self, scopes: &[(&str, &str)]) -> Result<Vec<(u64, i64)>, StoreError> {
        let mut c = self.conn.clone();
        let mut inv = READ_COUNTERS.prepare_invoke();
        for (scope, subject) in scopes {
            inv.key(self.keys.rate_limit(scope, subject));
        }
        let flat: Vec<i64> = self
            .run("EVALSHA read_counters", async move {
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(flat
            .chunks(2)
            .map(|pair| {
                let count = pair.first().copied().unwrap_or(0);
                (
                    u64::try_from(count).unwrap_or(0),
                    pair.get(1).copied().unwrap_or(-2),
                )
            })
            .collect())
    }

    /// Adds one to each counter in one atomic step, starting its window if it is new; returns
    /// the new counts in order.
    pub async fn count_failure(
        &self,
        scopes: &[(&str, &str, u64)],
    ) -> Result<Vec<u64>, StoreError> {
        let mut c = self.conn.clone();
        let mut inv = COUNT_FAILURE.prepare_invoke();
        for (scope, subject, window) in scopes {
            inv.key(self.keys.rate_limit(scope, subject)).arg(*window);
        }
        self.run("EVALSHA count_failure", async move {
            inv.invoke_async(&mut c).await
        })
        .await
    }

    /// Counts jti records and refresh mirrors with `SCAN` (never `KEYS`) and reads `INFO memory`.
    /// Walks the whole keyspace: only [`StatsCache`] calls it, at most once per its bound.
    pub async fn stats(&self) -> Result<RedisStats, StoreError> {
        let total_jtis = self.count(self.keys.jti_pattern()).await?;
        let total_refresh_tokens = self.count(self.keys.refresh_pattern()).await?;
        let info = self.info("memory").await?;
        let memory_usage = info_field(&info, "used_memory_human")
            .unwrap_or("unknown")
            .to_owned();
        Ok(RedisStats {
            total_jtis,
            total_refresh_tokens,
            memory_usage,
        })
    }

    async fn count(&self, pattern: String) -> Result<u64, StoreError> {
        let mut cursor: u64 = 0;
        let mut total = 0u64;
        loop {
            let mut c = self.conn.clone();
            let p = pattern.clone();
            let (next, batch): (u64, Vec<String>) = self
                .run("SCAN", async move {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(p)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut c)
                        .await
                })
                .await?;
            total += batch.len() as u64;
            if next == 0 {
                return Ok(total);
            }
            cursor = next;
        }
    }
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
/// Why a bounded-age cache rather than counters kept on every write: jti records and refresh
/// mirrors leave Redis by TTL (and by eviction or a flush), which no counter hears of, so
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

fn refresh_status(user_id: &str, revoked: bool, now: i64) -> String {
    serde_json::to_string(&RefreshStatus {
        user_id: user_id.to_owned(),
        is_revoked: revoked,
        updated_at: crate::domain::rfc3339(now),
    })
    .unwrap_or_default()
}
