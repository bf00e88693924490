//! The origin figures, in two phases against one private `redis-server`:
//!
//! 1. **Accounting**, while the server is otherwise idle: Redis round trips per request
//!    (counted with `MONITOR`), bytes per active session, and how the sessions list and
//!    logout-all scale with a user's devices (1, 10, 100, 1000).
//! 2. **Load**, with wrk at each concurrency level: the two limit routes, `GET /me`, refresh and
//!    login; the async workers' busy time per login.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::machine;
use crate::redis_probe::{self, CommandCount, Monitor, RedisServer};
use crate::target::{BenchOrigin, Options, Session};
use crate::wrk::{self, Outcome, Plan, Run, Workload};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub plan: Plan,
    /// Single-device users created for the memory figure.
    pub memory_sessions: u64,
    /// Users per device-count level whose calls are timed.
    pub scaling_users: u64,
    /// `None`: a fresh SQLite file.
    pub database_url: Option<String>,
}

impl Config {
    pub fn new(quick: bool) -> Self {
        Self {
            plan: Plan::new(quick),
            memory_sessions: if quick { 300 } else { 1000 },
            scaling_users: if quick { 1 } else { 3 },
            database_url: None,
        }
    }
}

/// Everything the origin suite measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OriginReport {
    pub database: String,
    pub duration_s: u64,
    pub rounds: u32,
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
    pub rows: Vec<LoadRow>,
    pub redis: RedisReport,
    pub argon2: Argon2Report,
}

/// One wrk run of one route.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadRow {
    /// `noop`, `redis-get`, `me`, `refresh`, `login`, `noop-during-login`.
    pub route: String,
    /// What the report calls the route.
    #[serde(default)]
    pub label: String,
    pub round: u32,
    pub outcome: Outcome,
    pub cpu: CpuPerRequest,
}

impl LoadRow {
    fn new(route: &str, label: &str, round: u32, outcome: Outcome, cpu: CpuPerRequest) -> Self {
        Self {
            route: route.into(),
            label: label.into(),
            round,
            outcome,
            cpu,
        }
    }
}

/// CPU time per request during a run, in microseconds: far less sensitive than throughput to
/// whatever else the machine runs, and it says where the time goes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CpuPerRequest {
    /// The whole bench process (origin, limit routes; the orchestration is idle meanwhile).
    pub origin_us: f64,
    /// The async runtime's worker threads: HTTP, handlers, signature checks, JSON.
    pub workers_us: f64,
    /// The runtime's blocking pool: Argon2id.
    pub blocking_us: f64,
    /// sqlx's SQLite connection threads: the SQL statements.
    #[serde(default)]
    pub sqlite_us: f64,
    /// The private redis-server.
    pub redis_us: f64,
}

/// Runs wrk and reads the CPU counters around it; prints the run.
async fn measured(
    name: &str,
    run: &Run,
    workdir: &std::path::Path,
    redis_pid: u32,
) -> anyhow::Result<(Outcome, CpuPerRequest)> {
    let p0 = machine::process_cpu_secs();
    let t0 = machine::thread_cpu_secs();
    let r0 = machine::cpu_secs_of(redis_pid);
    let outcome = wrk::run(run, workdir).await?;
    let p1 = machine::process_cpu_secs();
    let t1 = machine::thread_cpu_secs();
    let r1 = machine::cpu_secs_of(redis_pid);
    let n = outcome.requests.max(1) as f64;
    let per = |secs: f64| secs * 1e6 / n;
    let split = machine::thread_cpu_delta(&t0, &t1);
    let thread = |k: &str| split.get(k).copied().unwrap_or(0.0);
    let cpu = CpuPerRequest {
        origin_us: per(p1 - p0),
        workers_us: per(thread("workers")),
        blocking_us: per(thread("blocking")),
        sqlite_us: per(thread("sqlite")),
        redis_us: per(r1 - r0),
    };
    eprintln!(
        "  {}  cpu/req: origin {:.0} µs (workers {:.0}, blocking {:.0}, sqlite {:.0}), redis {:.0} µs",
        outcome.line(name),
        cpu.origin_us,
        cpu.workers_us,
        cpu.blocking_us,
        cpu.sqlite_us,
        cpu.redis_us
    );
    Ok((outcome, cpu))
}

/// Fails unless `r` answered `want`; returns its JSON body.
async fn answered(r: reqwest::Response, want: u16, what: &str) -> anyhow::Result<Value> {
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status == want, "{what} answered {status}: {body}");
    Ok(body)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisReport {
    pub round_trips: Vec<RoundTrips>,
    pub memory: MemoryReport,
    pub scaling: Vec<ScalingRow>,
    /// The sessions list of a one-device user, timed before and after thousands of other
    /// users' sessions exist: flat if its cost is the user's alone.
    pub sessions_one_device_first_ms: f64,
    pub sessions_one_device_last_ms: f64,
    pub sessions_in_database_last: u64,
}

/// Redis commands per call of one route.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundTrips {
    pub route: String,
    pub calls: u64,
    pub round_trips_per_call: f64,
    pub script_commands_per_call: f64,
    pub commands: CommandCount,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryReport {
    /// Single-device users created (each: user version, jti record, token index, refresh
    /// mirror).
    pub sessions: u64,
    pub keys_per_session: f64,
    /// `INFO memory` `used_memory` growth per session (includes the keyspace's own overhead).
    pub used_memory_per_session: f64,
    /// `MEMORY USAGE` of each key of one such session.
    pub key_bytes: BTreeMap<String, u64>,
    /// `used_memory` growth per additional device of one user (the 1000-device user).
    pub used_memory_per_extra_device: f64,
}

/// The sessions list and logout-all for users with this many devices.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScalingRow {
    pub devices: u64,
    pub sessions_ms: f64,
    pub logout_all_ms: f64,
    pub sessions_commands: CommandCount,
    pub logout_all_commands: CommandCount,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Argon2Report {
    /// Parameters read back from a hash the origin stored at registration.
    pub stored_hash_params: String,
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
    /// Per login during the login runs: where the CPU went. If Argon2id ran on a worker, the
    /// workers' CPU per login would be at least one hash.
    pub runs: Vec<LoginCost>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginCost {
    pub connections: u32,
    pub logins: u64,
    /// Wall time the workers were not parked (tokio's busy duration; includes time the OS
    /// had them descheduled mid-poll on a crowded machine).
    pub worker_busy_ms_per_login: f64,
    /// CPU time of the worker threads, of the blocking pool, and of the whole process.
    pub worker_cpu_ms_per_login: f64,
    pub blocking_cpu_ms_per_login: f64,
    pub process_cpu_ms_per_login: f64,
}

/// Runs the whole origin suite.
pub async fn run(cfg: &Config) -> anyhow::Result<OriginReport> {
    check_thread_names().await?;
    let load_before = machine::load_avg();
    let redis = RedisServer::try_start()?;
    let opts = Options {
        redis_url: redis.url(),
        database_url: cfg.database_url.clone(),
    };
    let origin = BenchOrigin::start(&opts).await?;
    eprintln!(
        "origin on {} ({}), private redis-server on port {}",
        origin.base, origin.database, redis.port
    );

    eprintln!("[accounting] round trips");
    let round_trips = count_round_trips(&origin, &redis).await?;
    eprintln!("[accounting] bytes per session");
    let memory_first = measure_memory(&origin, &redis, cfg.memory_sessions).await?;
    eprintln!("[accounting] device scaling");
    let (scaling, per_extra_device, first_ms, last_ms, total_sessions) =
        measure_scaling(&origin, &redis, cfg.scaling_users).await?;
    let memory = MemoryReport {
        used_memory_per_extra_device: per_extra_device,
        ..memory_first
    };

    eprintln!("[load] limits and GET /me");
    let pid = redis
        .pid()
        .context("the private redis-server is not running")?;
    let mut rows = limits_and_me(&origin, cfg, pid).await?;
    eprintln!("[load] refresh");
    rows.extend(refresh_load(&origin, cfg, pid).await?);
    eprintln!("[load] login");
    let (login_rows, argon2) = login_load(&origin, cfg, pid).await?;
    rows.extend(login_rows);

    Ok(OriginReport {
        database: origin.database.clone(),
        duration_s: cfg.plan.duration.as_secs(),
        rounds: cfg.plan.rounds,
        load_before,
        load_after: machine::load_avg(),
        rows,
        redis: RedisReport {
            round_trips,
            memory,
            scaling,
            sessions_one_device_first_ms: first_ms,
            sessions_one_device_last_ms: last_ms,
            sessions_in_database_last: total_sessions,
        },
        argon2,
    })
}

/// Warms each path once (so scripts are loaded), then counts the commands of `calls` more.
async fn count_round_trips(
    origin: &BenchOrigin,
    redis: &RedisServer,
) -> anyhow::Result<Vec<RoundTrips>> {
    let email = origin.new_user().await;
    let me = origin.login(&email, "bench").await;
    origin.set_redis_get_jti(&me.user_id(), &me.jti);
    let (user_id, _) = origin.create_user().await?;
    let mut chains = Vec::new();
    for i in 0..21 {
        chains.push(origin.add_session(&user_id, &format!("chain-{i}")).await?);
    }
    let get_me = || async {
        answered(
            origin.get_auth("/api/users/me", &me.access).await,
            200,
            "GET /me",
        )
        .await
    };
    let redis_get = || async {
        let r = origin
            .client
            .get(origin.url("/bench/redis-get"))
            .send()
            .await?;
        answered(r, 200, "GET /bench/redis-get").await
    };
    let refresh =
        |token: String| async move { answered(origin.refresh(&token).await, 200, "refresh").await };
    let logout = |access: String| async move {
        answered(
            origin.post_auth("/api/users/logout", &access).await,
            200,
            "logout",
        )
        .await
    };
    // Warm-up: the first EVALSHA of each script costs an extra SCRIPT LOAD round trip.
    get_me().await?;
    redis_get().await?;
    let warm = chains.pop().context("chains")?;
    refresh(warm.refresh).await?;
    let _ = origin.login(&email, "bench").await;
    let extra = origin.add_session(&user_id, "logout-warm").await?;
    logout(extra.access).await?;

    let mut monitor = Monitor::connect(redis).await?;
    let (calls, logins) = (100u64, 5u64);
    let me = monitor.capture(each((0..calls).map(|_| get_me()))).await?.1;
    let get = monitor
        .capture(each((0..calls).map(|_| redis_get())))
        .await?
        .1;
    let rotations = chains.iter().map(|c| refresh(c.refresh.clone()));
    let refreshed = monitor.capture(each(rotations)).await?.1;
    let logged_in = (0..logins).map(|_| async { Ok(origin.login(&email, "bench").await) });
    let (sessions, login) = monitor.capture(each(logged_in)).await?;
    let logouts = sessions.into_iter().map(|s| logout(s.access));
    let logged_out = monitor.capture(each(logouts)).await?.1;
    Ok(vec![
        round_trip_row("GET /api/users/me", calls, &me),
        round_trip_row("GET /bench/redis-get", calls, &get),
        round_trip_row("POST /api/users/refresh", chains.len() as u64, &refreshed),
        round_trip_row("POST /api/users/login", logins, &login),
        round_trip_row("POST /api/users/logout", logins, &logged_out),
    ])
}

/// Awaits each of `calls` in turn; their outputs.
async fn each<T>(
    calls: impl IntoIterator<Item = impl std::future::Future<Output = anyhow::Result<T>>>,
) -> anyhow::Result<Vec<T>> {
    let mut out = Vec::new();
    for call in calls {
        out.push(call.await?);
    }
    Ok(out)
}

fn round_trip_row(route: &str, calls: u64, seen: &[redis_probe::Seen]) -> RoundTrips {
    let commands = CommandCount::of(seen);
    RoundTrips {
        route: route.into(),
        calls,
        round_trips_per_call: commands.round_trips as f64 / calls as f64,
        script_commands_per_call: commands.script_commands as f64 / calls as f64,
        commands,
    }
}

/// [`session_growth`] over `n` one-device users, and `MEMORY USAGE` of one such user's hash.
async fn measure_memory(
    origin: &BenchOrigin,
    redis: &RedisServer,
    n: u64,
) -> anyhow::Result<MemoryReport> {
    let mut conn = redis_probe::connect(redis).await?;
    let growth = session_growth(origin, &mut conn, n).await?;
    let key = origin.state.redis.keys().user(&growth.last.user_id);
    let bytes = redis_probe::memory_usage(&mut conn, &key).await?;
    Ok(MemoryReport {
        sessions: n,
        keys_per_session: growth.keys,
        used_memory_per_session: growth.bytes,
        key_bytes: BTreeMap::from([("tg:{userId}".to_owned(), bytes)]),
        used_memory_per_extra_device: 0.0,
    })
}

/// What one active session adds to Redis, per session over `n` new users with one device each
/// (device name `laptop`), written by the login path.
#[derive(Debug)]
pub struct Growth {
    pub keys: f64,
    /// `used_memory` growth (includes the keyspace's own overhead).
    pub bytes: f64,
    pub last: Session,
}

/// Measures [`Growth`] (this suite's memory figure and `tollgate-bytes-per-session`'s).
pub async fn session_growth(
    origin: &BenchOrigin,
    conn: &mut redis::aio::MultiplexedConnection,
    n: u64,
) -> anyhow::Result<Growth> {
    anyhow::ensure!(n > 0, "no sessions to measure");
    // Users first: they live in SQL only, so creating them does not move Redis.
    let mut users = Vec::new();
    for _ in 0..=n {
        users.push(origin.create_user().await?.0);
    }
    // The first session loads the scripts: a fixed cost, not a session's.
    let warm = users.pop().context("a user")?;
    origin.add_session(&warm, "laptop").await?;
    let mem0 = redis_probe::info_field(conn, "memory", "used_memory").await?;
    let keys0 = redis_probe::dbsize(conn).await?;
    let mut last = None;
    for u in &users {
        last = Some(origin.add_session(u, "laptop").await?);
    }
    let mem1 = redis_probe::info_field(conn, "memory", "used_memory").await?;
    let keys1 = redis_probe::dbsize(conn).await?;
    Ok(Growth {
        keys: keys1.saturating_sub(keys0) as f64 / n as f64,
        bytes: (mem1 as f64 - mem0 as f64) / n as f64,
        last: last.context("no sessions")?,
    })
}

type Scaling = (Vec<ScalingRow>, f64, f64, f64, u64);

/// For 1, 10, 100 and 1000 devices: `users` timed users and one counted user per level.
async fn measure_scaling(
    origin: &BenchOrigin,
    redis: &RedisServer,
    users: u64,
) -> anyhow::Result<Scaling> {
    let mut conn = redis_probe::connect(redis).await?;
    let mut rows = Vec::new();
    let mut per_extra_device = 0.0;
    let mut first_ms = 0.0;
    for devices in [1u64, 10, 100, 1000] {
        // Timed users, plus one whose calls are counted under MONITOR (which slows Redis).
        let mut population: Vec<Vec<Session>> = Vec::new();
        for i in 0..=users {
            let (user_id, _) = origin.create_user().await?;
            let mem0 = redis_probe::info_field(&mut conn, "memory", "used_memory").await?;
            let mut sessions = Vec::new();
            for d in 0..devices {
                sessions.push(origin.add_session(&user_id, &format!("device-{d}")).await?);
            }
            if devices == 1000 && i == 0 {
                let mem1 = redis_probe::info_field(&mut conn, "memory", "used_memory").await?;
                per_extra_device = (mem1 as f64 - mem0 as f64) / devices as f64;
            }
            population.push(sessions);
        }
        let counted = population.pop().context("population")?;
        let reps = if devices >= 1000 { 5 } else { 20 };
        let mut sessions_ms = Vec::new();
        for sessions in &population {
            for _ in 0..reps {
                let (body, ms) = timed(list_sessions(origin, &sessions[0].access)).await?;
                sessions_ms.push(ms);
                anyhow::ensure!(
                    body["meta"]["total"].as_u64() == Some(devices),
                    "sessions listed {} of {devices}",
                    body["meta"]["total"]
                );
            }
        }
        let mut logout_ms = Vec::new();
        for sessions in &population {
            logout_ms.push(timed(logout_all(origin, &sessions[0].access)).await?.1);
        }
        let mut monitor = Monitor::connect(redis).await?;
        let current = &counted[0].access;
        let (_, sessions_seen) = monitor.capture(list_sessions(origin, current)).await?;
        let (_, logout_seen) = monitor.capture(logout_all(origin, current)).await?;
        // Every token of the user must now be refused.
        let last = &counted[counted.len() - 1].access;
        answered(
            origin.get_auth("/api/users/me", last).await,
            401,
            "a token after logout-all",
        )
        .await?;
        let row = ScalingRow {
            devices,
            sessions_ms: median(&mut sessions_ms),
            logout_all_ms: median(&mut logout_ms),
            sessions_commands: CommandCount::of(&sessions_seen),
            logout_all_commands: CommandCount::of(&logout_seen),
        };
        if devices == 1 {
            first_ms = row.sessions_ms;
        }
        eprintln!(
            "  {devices:>4} devices: sessions {:.2} ms ({} cmds), logout-all {:.2} ms ({} cmds)",
            row.sessions_ms,
            row.sessions_commands.round_trips + row.sessions_commands.script_commands,
            row.logout_all_ms,
            row.logout_all_commands.round_trips + row.logout_all_commands.script_commands,
        );
        rows.push(row);
    }
    // The one-device sessions list again, now that thousands of other sessions exist.
    let (user_id, _) = origin.create_user().await?;
    let s = origin.add_session(&user_id, "late").await?;
    let mut late = Vec::new();
    for _ in 0..20 {
        late.push(timed(list_sessions(origin, &s.access)).await?.1);
    }
    let db_sessions = origin
        .state
        .db
        .session_counts(tollgate_origin::domain::now())
        .await?
        .total;
    Ok((
        rows,
        per_extra_device,
        first_ms,
        median(&mut late),
        u64::try_from(db_sessions).unwrap_or(0),
    ))
}

async fn list_sessions(origin: &BenchOrigin, access: &str) -> anyhow::Result<Value> {
    let r = origin.get_auth("/api/users/sessions", access).await;
    answered(r, 200, "GET /sessions").await
}

async fn logout_all(origin: &BenchOrigin, access: &str) -> anyhow::Result<Value> {
    let r = origin.post_auth("/api/users/logout-all", access).await;
    answered(r, 200, "POST /logout-all").await
}

/// Awaits `work`; its output and how long it took, in milliseconds.
async fn timed<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, f64)> {
    let t = Instant::now();
    let out = work.await?;
    Ok((out, t.elapsed().as_secs_f64() * 1e3))
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The limit routes and `GET /me` at every level; at 64 connections in `rounds` interleaved
/// rounds.
async fn limits_and_me(
    origin: &BenchOrigin,
    cfg: &Config,
    redis_pid: u32,
) -> anyhow::Result<Vec<LoadRow>> {
    let me = origin.login(&origin.new_user().await, "bench").await;
    origin.set_redis_get_jti(&me.user_id(), &me.jti);
    let routes = [
        (
            "noop",
            "GET /bench/noop (limit: no auth)",
            origin.url("/bench/noop"),
            Workload::get(),
        ),
        (
            "redis-get",
            "GET /bench/redis-get (limit: 1 Redis GET)",
            origin.url("/bench/redis-get"),
            Workload::get(),
        ),
        (
            "me",
            "GET /api/users/me (EdDSA)",
            origin.url("/api/users/me"),
            Workload::bearer(&me.access),
        ),
    ];
    for (name, _, url, workload) in &routes {
        let status = wrk::status(url, workload).await?;
        anyhow::ensure!(status == 200, "{name} answered {status}");
    }
    // Warm-up: connections, caches, the allocator.
    let warm = routes.iter().map(|(_, _, url, workload)| (url, workload));
    wrk::warm_up(warm, Duration::from_secs(1), &cfg.plan.workdir).await?;
    let runs = cfg.plan.schedule(&routes);
    let mut rows = Vec::new();
    for (c, round, (name, label, url, workload)) in runs {
        let run = cfg.plan.run(url, workload, c);
        let (outcome, cpu) = measured(name, &run, &cfg.plan.workdir, redis_pid).await?;
        rows.push(LoadRow::new(name, label, round, outcome, cpu));
    }
    Ok(rows)
}

/// Refresh chains at every level: four pre-created sessions per connection, spread over 16
/// users; wrk feeds each answer's rotated token into the next request.
async fn refresh_load(
    origin: &BenchOrigin,
    cfg: &Config,
    redis_pid: u32,
) -> anyhow::Result<Vec<LoadRow>> {
    let mut users = Vec::new();
    for _ in 0..16 {
        users.push(origin.create_user().await?.0);
    }
    let path = "/api/users/refresh";
    let mut rows = Vec::new();
    for &c in &cfg.plan.levels {
        let mut tokens = Vec::new();
        for i in 0..(c as usize * 4) {
            let user = &users[i % users.len()];
            tokens.push(
                origin
                    .add_session(user, &format!("refresh-{c}-{i}"))
                    .await?
                    .refresh,
            );
        }
        let workload = Workload::Refresh {
            tokens,
            path: path.into(),
        };
        let run = cfg.plan.run(&origin.url(path), &workload, c);
        let (outcome, cpu) = measured("refresh", &run, &cfg.plan.workdir, redis_pid).await?;
        rows.push(LoadRow::new(
            "refresh",
            "POST /api/users/refresh",
            0,
            outcome,
            cpu,
        ));
    }
    Ok(rows)
}

/// Logins at every level over a pool of 16 users, with the async workers' busy time and the
/// process's CPU per login; then logins at 16 connections with a one-connection probe of
/// `/bench/noop` running beside them.
async fn login_load(
    origin: &BenchOrigin,
    cfg: &Config,
    redis_pid: u32,
) -> anyhow::Result<(Vec<LoadRow>, Argon2Report)> {
    let email = origin.new_user().await;
    let user = origin
        .state
        .db
        .user_by_email(&email)
        .await?
        .context("registered user")?;
    let phc = user.password_hash.clone();
    let params = phc.split('$').nth(3).unwrap_or_default().to_owned();
    let param = |name: &str| -> u32 {
        params
            .split(',')
            .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut emails = vec![email];
    for _ in 0..15 {
        emails.push(origin.create_user().await?.1);
    }
    let (plan, url) = (&cfg.plan, origin.url("/api/users/login"));
    let login = Workload::Login { emails };
    let mut rows = Vec::new();
    let mut runs = Vec::new();
    for &c in &plan.levels {
        let busy0 = worker_busy();
        let run = plan.run(&url, &login, c);
        let (outcome, cpu) = measured("login", &run, &plan.workdir, redis_pid).await?;
        let busy = worker_busy() - busy0;
        let logins = outcome.requests.max(1);
        runs.push(LoginCost {
            connections: c,
            logins: outcome.requests,
            worker_busy_ms_per_login: busy.as_secs_f64() * 1e3 / logins as f64,
            worker_cpu_ms_per_login: cpu.workers_us / 1e3,
            blocking_cpu_ms_per_login: cpu.blocking_us / 1e3,
            process_cpu_ms_per_login: cpu.origin_us / 1e3,
        });
        rows.push(LoadRow::new(
            "login",
            "POST /api/users/login",
            0,
            outcome,
            cpu,
        ));
    }
    let probe = plan.run(&origin.url("/bench/noop"), &Workload::get(), 1);
    let login16 = plan.run(&url, &login, 16);
    let (logins, probed) = tokio::join!(
        wrk::run(&login16, &plan.workdir),
        measured("noop-during-login", &probe, &plan.workdir, redis_pid)
    );
    let (logins, (probed, cpu)) = (logins?, probed?);
    eprintln!("  ({:.0} logins/s beside the probe)", logins.rps);
    let label = "GET /bench/noop beside login c=16";
    rows.push(LoadRow::new("noop-during-login", label, 0, probed, cpu));
    Ok((
        rows,
        Argon2Report {
            stored_hash_params: phc.split('$').take(4).collect::<Vec<_>>().join("$"),
            m_kib: param("m"),
            t: param("t"),
            p: param("p"),
            runs,
        },
    ))
}

/// The CPU split relies on the workers registering themselves (see `tollgate-bench`'s
/// `runtime()`): check a task lands on a registered worker and `spawn_blocking` elsewhere.
async fn check_thread_names() -> anyhow::Result<()> {
    // Let every worker park once, so each has registered itself.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let on_worker = tokio::spawn(async { machine::current_tid() }).await?;
    let on_blocking = tokio::task::spawn_blocking(machine::current_tid).await?;
    let (Some(w), Some(b)) = (on_worker, on_blocking) else {
        anyhow::bail!("no thread ids in /proc/thread-self");
    };
    anyhow::ensure!(
        machine::is_worker_thread(w) && !machine::is_worker_thread(b),
        "async workers are not told apart from the blocking pool (task on {w}, blocking on {b})"
    );
    Ok(())
}

/// Total time the runtime's workers have spent busy so far.
fn worker_busy() -> Duration {
    let m = tokio::runtime::Handle::current().metrics();
    (0..m.num_workers())
        .map(|w| m.worker_total_busy_duration(w))
        .sum()
}
