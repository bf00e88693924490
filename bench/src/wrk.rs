//! The load generator: Debian's `wrk` (closed loop, fixed connections, fixed duration), driven
//! by small Lua scripts that write each run's figures as JSON.
//!
//! Static routes (`/me`, the limits) send one pre-built request, so wrk's Lua costs nothing per
//! request. Refresh and login build each request in Lua:
//!
//! - **refresh** keeps a per-thread stack of refresh tokens: every `200` pushes the rotated
//!   token from its body, every request pops one. A token therefore only exists once its
//!   predecessor's answer has arrived, so each session's chain stays valid however the
//!   connections interleave (no reuse detection, no forks), and a thread needs only as many
//!   starting tokens as it has connections — pre-created sessions, spread round-robin.
//! - **login** cycles through a pool of users.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Writes the run's summary to `$WRK_JSON_OUT`; appended to every script.
const DONE: &str = r#"
function done(summary, latency, requests)
  local e = summary.errors
  local out = assert(io.open(os.getenv("WRK_JSON_OUT"), "w"))
  out:write(string.format(
    '{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d}',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
  out:close()
end
"#;

/// Numbers the threads so each picks its own share of the input file.
const THREAD_IDS: &str = r#"
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end
"#;

/// args: tokens file, thread count, path.
const REFRESH: &str = r#"
local stack = {}
local path = "/api/users/refresh"
function init(args)
  local threads = tonumber(args[2])
  path = args[3]
  local i = 0
  for line in io.lines(args[1]) do
    if i % threads == id then stack[#stack + 1] = line end
    i = i + 1
  end
end
function request()
  local t = stack[#stack]
  stack[#stack] = nil
  if t == nil then t = "rt_exhausted" end
  return wrk.format("POST", path, {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. t .. '"}')
end
function response(status, headers, body)
  if status == 200 then
    local t = body:match('"refresh_token":"([^"]+)"')
    if t then stack[#stack + 1] = t end
  end
end
"#;

/// args: emails file, password.
const LOGIN: &str = r#"
local users = {}
local password = ""
local i = 0
function init(args)
  for line in io.lines(args[1]) do users[#users + 1] = line end
  password = args[2]
  i = id
end
function request()
  i = i % #users + 1
  return wrk.format("POST", "/api/users/login", {["Content-Type"] = "application/json"},
    '{"email":"' .. users[i] .. '","password":"' .. password .. '","device_name":"bench"}')
end
"#;

/// What a run sends.
#[derive(Debug, Clone)]
pub enum Workload {
    /// The same `GET` every time, with these headers.
    Get { headers: Vec<(String, String)> },
    /// Refresh chains seeded from these refresh tokens, posted to `path`.
    Refresh { tokens: Vec<String>, path: String },
    /// Logins cycling through these emails (all with the bench password).
    Login { emails: Vec<String> },
}

impl Workload {
    /// A plain `GET`.
    pub fn get() -> Self {
        Self::Get { headers: vec![] }
    }

    /// A `GET` with `token` as its bearer.
    pub fn bearer(token: &str) -> Self {
        Self::Get {
            headers: vec![("Authorization".into(), format!("Bearer {token}"))],
        }
    }
}

/// The status one request of a `GET` workload gets: every route is checked before it is timed.
pub async fn status(url: &str, workload: &Workload) -> anyhow::Result<u16> {
    let mut req = reqwest::Client::new().get(url);
    if let Workload::Get { headers } = workload {
        for (k, v) in headers {
            req = req.header(k, v);
        }
    }
    Ok(req.send().await?.status().as_u16())
}

/// How long, how often and at which concurrency levels a suite runs wrk.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Per wrk run.
    pub duration: Duration,
    /// Interleaved rounds at c=64, where the limits are compared (the median is reported).
    pub rounds: u32,
    pub levels: Vec<u32>,
    /// Where wrk's scripts and results go while it runs.
    pub workdir: PathBuf,
}

impl Plan {
    /// 10 s runs and three rounds; `quick`: 3 s and one.
    pub fn new(quick: bool) -> Self {
        Self {
            duration: Duration::from_secs(if quick { 3 } else { 10 }),
            rounds: if quick { 1 } else { 3 },
            levels: vec![1, 16, 64],
            workdir: std::env::temp_dir(),
        }
    }

    /// A run of `workload` against `url` at `connections`, for this plan's duration.
    pub fn run(&self, url: &str, workload: &Workload, connections: u32) -> Run {
        Run {
            url: url.to_owned(),
            workload: workload.clone(),
            connections,
            duration: self.duration,
        }
    }

    /// The order the origin suite measures its static routes in: level by level, every one of
    /// `routes`, in `rounds` interleaved rounds at c=64 (the level the limits are compared at)
    /// and once elsewhere. Yields `(connections, round, route)`.
    pub fn schedule<'a, R>(&self, routes: &'a [R]) -> Vec<(u32, u32, &'a R)> {
        let mut out = Vec::new();
        for &c in &self.levels {
            for round in 0..if c == 64 { self.rounds } else { 1 } {
                out.extend(routes.iter().map(|r| (c, round, r)));
            }
        }
        out
    }
}

/// One wrk run.
#[derive(Debug, Clone)]
pub struct Run {
    pub url: String,
    pub workload: Workload,
    pub connections: u32,
    pub duration: Duration,
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub connections: u32,
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Non-2xx/3xx answers (wrk counts status ≥ 400).
    pub status_errors: u64,
    /// Connect, read, write errors and timeouts.
    pub socket_errors: u64,
    /// 1-minute load average when the run ended.
    pub load1: f64,
}

impl Outcome {
    pub fn errors(&self) -> u64 {
        self.status_errors + self.socket_errors
    }

    /// The run as a progress line says it: `c=64  name  … req/s  p50 … ms  p99 … ms …`.
    pub fn line(&self, name: &str) -> String {
        format!(
            "c={:<3} {name:<20} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  err {}  load {:.2}",
            self.connections,
            self.rps,
            self.p50_ms,
            self.p99_ms,
            self.errors(),
            self.load1
        )
    }
}

#[derive(Deserialize)]
struct Raw {
    requests: u64,
    duration_us: u64,
    connect: u64,
    read: u64,
    write: u64,
    status: u64,
    timeout: u64,
    p50_us: f64,
    p99_us: f64,
}

/// Warms each `(url, workload)` up for `duration` at 16 connections: connections, caches and
/// the allocator settle before anything is measured.
pub async fn warm_up<'a>(
    targets: impl IntoIterator<Item = (&'a String, &'a Workload)>,
    duration: Duration,
    workdir: &Path,
) -> anyhow::Result<()> {
    for (url, workload) in targets {
        run(
            &Run {
                url: url.clone(),
                workload: workload.clone(),
                connections: 16,
                duration,
            },
            workdir,
        )
        .await?;
    }
    Ok(())
}

/// Runs wrk and returns its figures. Threads: one per core at most, never more than
/// connections.
pub async fn run(r: &Run, workdir: &Path) -> anyhow::Result<Outcome> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    let threads = r.connections.clamp(1, cores);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let script = workdir.join(format!("wrk-{tag}.lua"));
    let json_out = workdir.join(format!("wrk-{tag}.json"));
    let mut args: Vec<String> = vec![
        format!("-t{threads}"),
        format!("-c{}", r.connections),
        format!("-d{}s", r.duration.as_secs().max(1)),
        "--timeout".into(),
        "10s".into(),
    ];
    let mut lua = String::new();
    let mut script_args: Vec<String> = Vec::new();
    let mut input: Option<PathBuf> = None;
    match &r.workload {
        Workload::Get { headers } => {
            for (k, v) in headers {
                args.push("-H".into());
                args.push(format!("{k}: {v}"));
            }
        }
        Workload::Refresh {
            tokens,
            path: route,
        } => {
            let path = workdir.join(format!("wrk-{tag}.tokens"));
            std::fs::write(&path, tokens.join("\n") + "\n")?;
            lua.push_str(THREAD_IDS);
            lua.push_str(REFRESH);
            script_args = vec![
                path.display().to_string(),
                threads.to_string(),
                route.clone(),
            ];
            input = Some(path);
        }
        Workload::Login { emails } => {
            let path = workdir.join(format!("wrk-{tag}.users"));
            std::fs::write(&path, emails.join("\n") + "\n")?;
            lua.push_str(THREAD_IDS);
            lua.push_str(LOGIN);
            script_args = vec![path.display().to_string(), crate::PASSWORD.into()];
            input = Some(path);
        }
    }
    lua.push_str(DONE);
    std::fs::write(&script, lua)?;
    args.push("-s".into());
    args.push(script.display().to_string());
    args.push(r.url.clone());
    if !script_args.is_empty() {
        args.push("--".into());
        args.extend(script_args);
    }
    let out = tokio::process::Command::new("wrk")
        .args(&args)
        .env("WRK_JSON_OUT", &json_out)
        .kill_on_drop(true)
        .output()
        .await
        .context("Failed to run wrk (scripts/bench.sh installs it)")?;
    let raw = std::fs::read_to_string(&json_out);
    let _ = std::fs::remove_file(&script);
    let _ = std::fs::remove_file(&json_out);
    if let Some(p) = input {
        let _ = std::fs::remove_file(p);
    }
    let raw: Raw = serde_json::from_str(&raw.with_context(|| {
        format!(
            "wrk wrote no result: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?)?;
    let duration_s = raw.duration_us as f64 / 1e6;
    Ok(Outcome {
        connections: r.connections,
        requests: raw.requests,
        rps: if duration_s > 0.0 {
            raw.requests as f64 / duration_s
        } else {
            0.0
        },
        p50_ms: raw.p50_us / 1e3,
        p99_ms: raw.p99_us / 1e3,
        status_errors: raw.status,
        socket_errors: raw.connect + raw.read + raw.write + raw.timeout,
        load1: crate::machine::load_avg()[0],
    })
}
