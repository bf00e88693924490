//! Redis and the database do not grow without bound: once access tokens expire, Redis is back to
//! its baseline except for the keys meant to outlive them; once refresh lifetimes pass it is
//! empty; logout-all plus cleanup shrinks the database. Each test owns a private redis-server,
//! so key counts and memory are exact. Prints the Redis bytes per active session.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::future::join_all;
use redis::aio::MultiplexedConnection;
use reqwest::StatusCode;
use tollgate_shared::keys::{field, GRACE_SUFFIX};
use tollgate_shared::KeySchema;

use crate::both_backends;
use crate::helpers::{spawn_app_with, Backend, RedisProcess, TestApp, Tokens};

both_backends!(
    redis_returns_to_baseline_once_access_tokens_expire,
    redis_is_empty_again_once_refresh_lifetimes_pass,
    logout_all_then_cleanup_shrinks_redis_and_the_database,
);

/// Upper bound on Redis bytes per live session (its jti record and refresh mirror in the user's
/// hash, and its share of the hash's key and version; a successful login leaves no counter).
/// Half the seed layout's ~945 B (issue 13 §4); `scripts/bytes-per-session.sh` measures both.
const MAX_BYTES_PER_SESSION: u64 = 472;

/// Redis as a test sees it, over one connection held for the whole test (a connection per
/// call would add and drop client buffers and blur the memory figures).
struct Probe {
    conn: MultiplexedConnection,
    schema: KeySchema,
}

/// `INFO memory` figures: everything, and the data alone (less clients, scripts and other
/// fixed overhead).
#[derive(Debug, Clone, Copy)]
struct Memory {
    used: u64,
    dataset: u64,
    lua: u64,
}

impl Probe {
    async fn new(app: &TestApp) -> Self {
        Self {
            conn: app.redis_conn().await,
            schema: KeySchema::new(app.prefix.clone()),
        }
    }

    /// Every key, by `SCAN` (never `KEYS`).
    async fn keys(&mut self) -> Vec<String> {
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut self.conn)
                .await
                .expect("SCAN");
            keys.extend(batch);
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    }

    /// Keys and the fields of user hashes, counted by kind, classified by the one key schema:
    /// `user` hashes, `refresh_grace` answers, `rate_limit` counters; in the hashes `jti`
    /// records (`live_jti`: not yet past their `exp`), `refresh` mirrors and `user_version`s.
    async fn kinds(&mut self) -> BTreeMap<&'static str, u64> {
        let users = self.schema.user_pattern();
        let users = users.trim_end_matches('*').to_owned();
        let limits = self.schema.rate_limit_prefix();
        let now = tollgate_origin::domain::now();
        let mut counts: BTreeMap<&'static str, u64> = [
            "user",
            "refresh_grace",
            "rate_limit",
            "jti",
            "live_jti",
            "refresh",
            "user_version",
        ]
        .into_iter()
        .map(|k| (k, 0))
        .collect();
        for key in self.keys().await {
            let kind = if key.contains(GRACE_SUFFIX) && key.starts_with(&users) {
                "refresh_grace"
            } else if key.starts_with(&users) {
                "user"
            } else if key.starts_with(&limits) {
                "rate_limit"
            } else {
                "unknown"
            };
            *counts.entry(kind).or_default() += 1;
            if kind != "user" {
                continue;
            }
            let fields: Vec<(String, String)> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut self.conn)
                .await
                .unwrap_or_default();
            for (f, value) in fields {
                let due: i64 = value
                    .split('.')
                    .next()
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0);
                let kind = match f.get(..2) {
                    Some(field::JTI) if due > now => {
                        *counts.entry("live_jti").or_default() += 1;
                        "jti"
                    }
                    Some(field::JTI) => "jti",
                    Some(field::SESSION) => "refresh",
                    Some(field::GRACE) => "grace_field",
                    _ if f == field::VERSION => "user_version",
                    _ => "unknown_field",
                };
                *counts.entry(kind).or_default() += 1;
            }
        }
        counts
    }

    async fn dbsize(&mut self) -> u64 {
        redis::cmd("DBSIZE")
            .query_async(&mut self.conn)
            .await
            .expect("DBSIZE")
    }

    async fn memory(&mut self) -> Memory {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut self.conn)
            .await
            .expect("INFO");
        let field = |name: &str| -> u64 {
            info.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} missing from INFO memory"))
        };
        Memory {
            used: field("used_memory:"),
            dataset: field("used_memory_dataset:"),
            lua: field("used_memory_vm_eval:"),
        }
    }

    /// Sum of `MEMORY USAGE` over every key: what the keys themselves cost.
    async fn bytes_of_all_keys(&mut self) -> u64 {
        let mut total = 0;
        for key in self.keys().await {
            let bytes: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(&key)
                .arg("SAMPLES")
                .arg(0)
                .query_async(&mut self.conn)
                .await
                .expect("MEMORY USAGE");
            total += bytes.unwrap_or(0);
        }
        total
    }

    /// Every key has a TTL of at most `at_most` seconds: nothing Tollgate writes lives forever.
    async fn assert_every_key_expires(&mut self, at_most: i64) {
        for key in self.keys().await {
            let ttl: i64 = redis::cmd("TTL")
                .arg(&key)
                .query_async(&mut self.conn)
                .await
                .expect("TTL");
            // -2: expired between SCAN and TTL; 0: under half a second left. -1 (no expiry)
            // is the failure this looks for.
            assert!(
                ttl == -2 || (0..=at_most).contains(&ttl),
                "{key} has TTL {ttl} (bound {at_most})"
            );
        }
    }

    /// Polls until the key count is `want` (Redis reclaims expired keys in its expiry cycle).
    async fn wait_for_dbsize(&mut self, want: u64, deadline: Duration) {
        let started = Instant::now();
        loop {
            let n = self.dbsize().await;
            if n == want {
                return;
            }
            if started.elapsed() > deadline {
                let kinds = self.kinds().await;
                panic!("Redis still holds {n} keys, expected {want}: {kinds:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Registers `users` users (in Redis, only the registration counter for 127.0.0.1).
async fn register(app: &TestApp, users: usize) -> Vec<(String, Vec<Tokens>)> {
    let mut out = Vec::new();
    for _ in 0..users {
        out.push((app.new_user().await, Vec::new()));
    }
    out
}

/// Logs every user in `rounds` more times, one login per user at a time, concurrently.
async fn login_rounds(app: &TestApp, sessions: &mut [(String, Vec<Tokens>)], rounds: usize) {
    for _ in 0..rounds {
        let batch = sessions.iter().map(|(email, tokens)| {
            let device = format!("device-{}", tokens.len());
            async move { app.login(email, &device).await }
        });
        let minted = join_all(batch).await;
        for ((_, tokens), t) in sessions.iter_mut().zip(minted) {
            tokens.push(t);
        }
    }
}

fn count(kinds: &BTreeMap<&'static str, u64>, kind: &str) -> u64 {
    kinds.get(kind).copied().unwrap_or(0)
}

async fn redis_returns_to_baseline_once_access_tokens_expire(b: Backend) {
    let redis = RedisProcess::start();
    let url = redis.url();
    let access_ttl = 10;
    // The failure and registration counters lapse soon after the access tokens.
    let counter_window = (access_ttl + 4).to_string();
    let app = spawn_app_with(
        b,
        &[
            ("REDIS_URL", &url),
            ("ACCESS_TOKEN_TTL_SECS", &access_ttl.to_string()),
            ("LOGIN_RATE_WINDOW_SECS", &counter_window),
            ("REGISTER_RATE_WINDOW_SECS", &counter_window),
        ],
    )
    .await;
    let mut probe = Probe::new(&app).await;
    let mut sessions = register(&app, 5).await;
    // Baseline: a fresh private Redis holding only the registrations' counter for 127.0.0.1.
    assert_eq!(probe.dbsize().await, 1);
    assert_eq!(count(&probe.kinds().await, "rate_limit"), 1);
    // Three wrong passwords for one user: its three failure counters (address, email and
    // address, email). The 50 successful logins below add no counter at all.
    for _ in 0..3 {
        assert_eq!(
            app.wrong_password_from("127.0.0.1", &sessions[0].0).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(count(&probe.kinds().await, "rate_limit"), 4);

    let started = Instant::now();
    // The first round also loads the Lua scripts: a fixed cost, so the memory per session is
    // measured over the other 45.
    login_rounds(&app, &mut sessions, 1).await;
    let warm = probe.memory().await;
    login_rounds(&app, &mut sessions, 9).await;
    assert!(
        started.elapsed() < Duration::from_secs(access_ttl - 2),
        "logins took {:?}: too slow to see every token live at once",
        started.elapsed()
    );
    let peak = probe.kinds().await;
    let expected_peak = BTreeMap::from([
        ("user", 5),           // one hash per user
        ("jti", 50),           // one record per access token
        ("live_jti", 50),      // all of them live
        ("refresh", 50),       // one mirror per device session
        ("user_version", 5),   // one version per user
        ("rate_limit", 1 + 3), // registrations from the address; the three failure counters
        ("refresh_grace", 0),  // only refreshes leave these
    ]);
    assert_eq!(peak, expected_peak);
    assert_eq!(probe.dbsize().await, 9, "no key outside the schema");
    probe.assert_every_key_expires(2_592_000).await;

    let full = probe.memory().await;
    let key_bytes = probe.bytes_of_all_keys().await;
    let per_session = key_bytes / 50;
    let marginal = full.dataset.saturating_sub(warm.dataset) / 45;
    println!(
        "redis bytes per active session: {per_session} B (MEMORY USAGE of all 9 keys = \
         {key_bytes} B, over 50 sessions); growth of used_memory_dataset per added session: \
         {marginal} B (used_memory {} -> {} B, Lua heap {} -> {} B)",
        warm.used, full.used, warm.lua, full.lua
    );
    assert!(
        per_session < MAX_BYTES_PER_SESSION,
        "{per_session} B per session"
    );
    // The allocator's view also counts size-class rounding, hash-table growth and Lua garbage
    // not yet collected, so it gets twice the room.
    assert!(
        marginal < 2 * MAX_BYTES_PER_SESSION,
        "{marginal} B per added session"
    );

    // Every access token and rate-limit window lapses. What stays, and why: each user's hash,
    // with each device session's refresh mirror (so a revoked session can never be minted for
    // again) and the version (read by every validation); the hash lives a refresh lifetime
    // past its last write and no longer. The lapsed records are not live (nothing accepts a
    // token past its `exp`) and go at the user's next write.
    probe
        .wait_for_dbsize(5, Duration::from_secs(access_ttl + 10))
        .await;
    let last_exp = sessions
        .iter()
        .flat_map(|(_, t)| t)
        .map(|t| crate::helpers::claims_of(&t.access).exp)
        .max()
        .expect("tokens");
    while tollgate_origin::domain::now() < last_exp {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = probe.kinds().await;
    assert_eq!(count(&after, "live_jti"), 0);
    assert_eq!(count(&after, "rate_limit"), 0);
    assert_eq!(count(&after, "refresh"), 50);
    assert_eq!(count(&after, "user_version"), 5);
    probe.assert_every_key_expires(2_592_000).await;
    let expired: Vec<&Tokens> = sessions.iter().flat_map(|(_, t)| t).collect();
    assert_eq!(app.me_status(&expired[0].access).await.1, "token_expired");
    // A refresh still works off the mirror and the version, and leaves only its own record:
    // the user's lapsed ones are pruned by that write.
    let r = app.refresh(&expired[0].refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let pruned = probe.kinds().await;
    assert_eq!(count(&pruned, "live_jti"), 1, "{pruned:?}");
    assert_eq!(count(&pruned, "jti"), 1 + 40, "{pruned:?}");
}

async fn redis_is_empty_again_once_refresh_lifetimes_pass(b: Backend) {
    let redis = RedisProcess::start();
    let url = redis.url();
    let app = spawn_app_with(
        b,
        &[
            ("REDIS_URL", &url),
            ("ACCESS_TOKEN_TTL_SECS", "2"),
            ("REFRESH_TOKEN_TTL_SECS", "6"),
            ("REFRESH_GRACE_SECS", "3"),
            // The registrations' counter lapses too (logins leave none).
            ("REGISTER_RATE_WINDOW_SECS", "2"),
        ],
    )
    .await;
    // One full cycle first, so the baseline already holds the fixed costs (Lua scripts and VM,
    // connection buffers, grown hash tables); the second cycle must then leave nothing behind.
    let mut probe = Probe::new(&app).await;
    let mut memory = Vec::new();
    for cycle in 0..2 {
        let mut sessions = register(&app, 2).await;
        login_rounds(&app, &mut sessions, 5).await;
        // A refresh of each session, so grace entries exist too.
        for (_, tokens) in &sessions {
            for t in tokens {
                assert_eq!(app.refresh(&t.refresh).await.status(), StatusCode::OK);
            }
        }
        let kinds = probe.kinds().await;
        // Grace entries live 3 s, so on a loaded machine the first may be gone already.
        assert!(count(&kinds, "refresh_grace") > 0, "{kinds:?}");
        assert_eq!(count(&kinds, "refresh"), 10, "{kinds:?}");
        probe.assert_every_key_expires(6).await;
        let peak = probe.memory().await;
        probe.wait_for_dbsize(0, Duration::from_secs(20)).await;
        let end = probe.memory().await;
        println!(
            "cycle {cycle}: used_memory at peak {} B, after expiry {} B (0 keys)",
            peak.used, end.used
        );
        memory.push(end.used);
    }
    let kept = memory[1].saturating_sub(memory[0]);
    assert!(
        kept < 16 * 1024,
        "the second cycle left {kept} B behind in Redis"
    );
}

async fn logout_all_then_cleanup_shrinks_redis_and_the_database(b: Backend) {
    let redis = RedisProcess::start();
    let url = redis.url();
    let app = spawn_app_with(b, &[("REDIS_URL", &url)]).await;
    let mut sessions = register(&app, 5).await;
    login_rounds(&app, &mut sessions, 10).await;
    // One refresh per user, so old secrets are on record as well.
    for (_, tokens) in &sessions {
        assert_eq!(
            app.refresh(&tokens[0].refresh).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(app.count_rows("users").await, 5);
    assert_eq!(app.count_rows("device_sessions").await, 50);
    assert_eq!(app.count_rows("refresh_secrets").await, 55);

    for (_, tokens) in &sessions {
        let r = app
            .post_auth("/api/users/logout-all", &tokens[1].access)
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Redis drops every access token at once, without waiting for expiry.
    let kinds = Probe::new(&app).await.kinds().await;
    assert_eq!(count(&kinds, "jti"), 0, "{kinds:?}");
    // Kept: the revoked mirrors and the bumped versions (they are what refuses old tokens).
    assert_eq!(count(&kinds, "refresh"), 50, "{kinds:?}");
    assert_eq!(count(&kinds, "user_version"), 5, "{kinds:?}");
    // The database keeps revoked sessions for audit until the retention passes.
    assert_eq!(app.count_rows("device_sessions").await, 50);

    let now = tollgate_origin::domain::now();
    let deleted = tollgate_origin::cleanup::run_once(
        &app.state.db,
        0,
        app.state.settings.refresh_ttl,
        now + 1,
    )
    .await
    .expect("cleanup");
    assert_eq!(deleted, 50);
    assert_eq!(app.count_rows("device_sessions").await, 0);
    assert_eq!(app.count_rows("refresh_secrets").await, 0);
    assert_eq!(
        app.count_rows("users").await,
        5,
        "cleanup never deletes users"
    );
    println!("cleanup deleted {deleted} revoked sessions and their 55 refresh secrets");

    // Nothing of the old sessions works, and everyone can still log in.
    let (email, tokens) = &sessions[0];
    assert_eq!(
        app.refresh(&tokens[2].refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let fresh = app.login(email, "after-cleanup").await;
    assert_eq!(app.me_status(&fresh.access).await.0, StatusCode::OK);
}
