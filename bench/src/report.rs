//! Merges the parts of a run (criterion's estimates, the origin and workerd reports) into one
//! JSON document, judges the targets of issue 5 from it, and renders it as Markdown tables.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::origin_suite::{LoadRow, OriginReport};
use crate::workerd_suite;
use crate::wrk::Outcome;

/// Everything one run of `scripts/bench.sh` produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latest {
    pub generated_unix: u64,
    /// `git describe --always --dirty` of the tree measured.
    #[serde(default)]
    pub git: String,
    pub command: String,
    pub quick: bool,
    pub machine: Machine,
    pub micro: Vec<Micro>,
    pub origin: Option<OriginReport>,
    /// The edge Worker under raw workerd and `wrangler dev` (`scripts/bench-edge.sh`).
    #[serde(default)]
    pub workerd: Option<workerd_suite::Report>,
    /// The Worker's verify + decide timed in V8 (`bench/wasm-verify/run.mjs`).
    #[serde(default)]
    pub v8_verify: Option<serde_json::Value>,
    pub targets: Vec<Target>,
}

/// One criterion benchmark.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Micro {
    pub name: String,
    pub median_ns: f64,
    pub mean_ns: f64,
}

/// One target of issue 5 and whether this run met it (`None`: not measured).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    pub target: String,
    pub met: Option<bool>,
    pub figures: String,
}

/// Reads every `*/new/benchmark.json` + `estimates.json` criterion left under `dir`.
pub fn read_criterion(dir: &Path) -> anyhow::Result<Vec<Micro>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "benchmark.json")
                && p.parent().is_some_and(|d| d.ends_with("new"))
            {
                let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p)?)?;
                let est_path = p.with_file_name("estimates.json");
                let est: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&est_path)?)?;
                out.push(Micro {
                    name: meta["full_id"].as_str().unwrap_or("?").to_owned(),
                    median_ns: est["median"]["point_estimate"].as_f64().unwrap_or(f64::NAN),
                    mean_ns: est["mean"]["point_estimate"].as_f64().unwrap_or(f64::NAN),
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Reads a part written by `tollgate-bench origin|workerd`.
pub fn read_part<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("Failed to read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("Failed to parse {}", path.display()))
}

/// The run of `route` at `c` connections with the median throughput over its rounds.
pub fn pick<'a>(rows: &'a [LoadRow], route: &str, c: u32) -> Option<&'a LoadRow> {
    let mut runs: Vec<&LoadRow> = rows
        .iter()
        .filter(|r| r.route == route && r.outcome.connections == c)
        .collect();
    runs.sort_by(|a, b| a.outcome.rps.total_cmp(&b.outcome.rps));
    runs.get(runs.len() / 2).copied()
}

/// [`pick`]'s outcome.
fn picked<'a>(rows: &'a [LoadRow], route: &str, c: u32) -> Option<&'a Outcome> {
    pick(rows, route, c).map(|r| &r.outcome)
}

fn micro(l: &Latest, name: &str) -> Option<f64> {
    l.micro.iter().find(|m| m.name == name).map(|m| m.median_ns)
}

/// Judges each target of issue 5 from the figures.
pub fn judge(l: &Latest) -> Vec<Target> {
    let mut t = Vec::new();
    if let Some(o) = &l.origin {
        let me = picked(&o.rows, "me", 64);
        let get = picked(&o.rows, "redis-get", 64);
        t.push(match (me, get) {
            (Some(me), Some(get)) => {
                let ratio = me.rps / get.rps;
                // The same comparison within each interleaved round.
                let per_round: Vec<String> = o
                    .rows
                    .iter()
                    .filter(|r| r.route == "me" && r.outcome.connections == 64)
                    .filter_map(|m| {
                        o.rows
                            .iter()
                            .find(|g| {
                                g.route == "redis-get"
                                    && g.outcome.connections == 64
                                    && g.round == m.round
                            })
                            .map(|g| format!("{:.0}%", m.outcome.rps / g.outcome.rps * 100.0))
                    })
                    .collect();
                Target {
                    target:
                        "origin GET /me ≥ 70% of the single-Redis-GET route at c=64, p99 < 5 ms"
                            .into(),
                    met: Some(ratio >= 0.7 && me.p99_ms < 5.0),
                    figures: format!(
                        "/me {:.0} req/s vs redis-get {:.0} req/s = {:.0}% (medians; per round {}); /me p99 {:.2} ms",
                        me.rps,
                        get.rps,
                        ratio * 100.0,
                        per_round.join(", "),
                        me.p99_ms
                    ),
                }
            }
            _ => not_measured("origin GET /me vs single-Redis-GET"),
        });
        let me_rt = o
            .redis
            .round_trips
            .iter()
            .find(|r| r.route == "GET /api/users/me");
        t.push(match me_rt {
            Some(r) => Target {
                target: "one Redis round trip per protected request (counted)".into(),
                met: Some(r.round_trips_per_call == 1.0 && r.script_commands_per_call == 0.0),
                figures: format!(
                    "{} commands over {} calls of GET /me: {:?}",
                    r.commands.round_trips, r.calls, r.commands.by_command
                ),
            },
            None => not_measured("one Redis round trip per protected request"),
        });
        t.push(scaling_target(o));
        t.push(argon2_target(l, o));
    }
    t.extend(edge_targets(l.workerd.as_ref()));
    t
}

fn not_measured(target: &str) -> Target {
    Target {
        target: target.into(),
        met: None,
        figures: "not measured in this run".into(),
    }
}

/// The edge targets of issue 5, from the workerd suite: the protected route's p50 against the
/// pass-through's under `wrangler dev` at each concurrency, and the Rust bundle's gzipped size.
fn edge_targets(w: Option<&workerd_suite::Report>) -> [Target; 2] {
    const P50: &str = "edge protected p50 within 1.5× the pass-through p50";
    const WASM: &str = "gzipped wasm < 250 KB";
    let Some(w) = w else {
        return [not_measured(P50), not_measured(WASM)];
    };
    let p50 = |route: &str, c: u32| {
        let mut v: Vec<f64> = w
            .rows
            .iter()
            .filter(|r| r.runtime == "wrangler dev" && r.route == route)
            .filter(|r| r.outcome.connections == c)
            .map(|r| r.outcome.p50_ms)
            .collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let mut levels: Vec<u32> = w.rows.iter().map(|r| r.outcome.connections).collect();
    levels.sort_unstable();
    levels.dedup();
    let (mut parts, mut all) = (Vec::new(), true);
    for c in levels {
        if let (Some(p), Some(h)) = (p50("protected", c), p50("health", c)) {
            all &= p / h <= 1.5;
            parts.push(format!("c={c}: {p:.2} / {h:.2} ms = {:.2}×", p / h));
        }
    }
    let p50 = if parts.is_empty() {
        not_measured(P50)
    } else {
        Target {
            target: P50.into(),
            met: Some(all),
            figures: format!("wrangler dev, medians: {}", parts.join("; ")),
        }
    };
    let wasm = w
        .sizes
        .iter()
        .find(|(label, _)| label.ends_with("(index_bg.wasm)"))
        .map_or_else(
            || not_measured(WASM),
            |(label, (raw, gz))| Target {
                target: WASM.into(),
                met: Some(*gz < 250_000),
                figures: format!(
                    "{label} raw {raw} B; gzip -9 {gz} B ({:.1} KiB)",
                    *gz as f64 / 1024.0
                ),
            },
        );
    [p50, wasm]
}

fn total(c: &crate::redis_probe::CommandCount) -> u64 {
    c.round_trips + c.script_commands
}

/// Linear: Redis commands per call grow by the same amount per device between every pair of
/// levels, time grows no faster than devices, no `KEYS`/`SCAN`, and a one-device user's list
/// costs the same before and after thousands of other sessions exist.
fn scaling_target(o: &OriginReport) -> Target {
    let rows = &o.redis.scaling;
    if rows.len() < 2 {
        return not_measured("logout-all and sessions linear in devices, no KEYS");
    }
    let slope = |f: &dyn Fn(&crate::origin_suite::ScalingRow) -> f64| -> Vec<f64> {
        rows.windows(2)
            .map(|w| (f(&w[1]) - f(&w[0])) / (w[1].devices - w[0].devices) as f64)
            .collect()
    };
    let cmd_slopes_logout = slope(&|r| total(&r.logout_all_commands) as f64);
    let cmd_slopes_sessions = slope(&|r| total(&r.sessions_commands) as f64);
    let constant = |v: &[f64]| v.iter().all(|s| (s - v[0]).abs() < 1e-9);
    let keyspace = rows.iter().any(|r| {
        r.logout_all_commands.uses_keyspace_scan() || r.sessions_commands.uses_keyspace_scan()
    });
    let first = &rows[0];
    let last = &rows[rows.len() - 1];
    let growth = last.devices as f64 / first.devices as f64;
    let time_ok = last.logout_all_ms / first.logout_all_ms <= growth * 1.5
        && last.sessions_ms / first.sessions_ms <= growth * 1.5;
    let flat = o.redis.sessions_one_device_last_ms <= o.redis.sessions_one_device_first_ms * 2.0;
    let met = constant(&cmd_slopes_logout)
        && constant(&cmd_slopes_sessions)
        && !keyspace
        && time_ok
        && flat;
    let per_level: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}: logout-all {:.2} ms/{} cmds, sessions {:.2} ms/{} cmds",
                r.devices,
                r.logout_all_ms,
                total(&r.logout_all_commands),
                r.sessions_ms,
                total(&r.sessions_commands)
            )
        })
        .collect();
    Target {
        target: "logout-all and sessions linear in the user's devices, no KEYS".into(),
        met: Some(met),
        figures: format!(
            "{}; commands per extra device: logout-all {:?}, sessions {:?}; KEYS/SCAN used: {keyspace}; \
             1-device sessions list {:.2} ms at start vs {:.2} ms with {} sessions in the database",
            per_level.join("; "),
            cmd_slopes_logout,
            cmd_slopes_sessions,
            o.redis.sessions_one_device_first_ms,
            o.redis.sessions_one_device_last_ms,
            o.redis.sessions_in_database_last
        ),
    }
}

fn argon2_target(l: &Latest, o: &OriginReport) -> Target {
    let a = &o.argon2;
    let hash_ms = micro(l, "argon2id/verify").map(|ns| ns / 1e6);
    let worst_busy = a
        .runs
        .iter()
        .map(|r| r.worker_cpu_ms_per_login)
        .fold(0.0, f64::max);
    let probe = o.rows.iter().find(|r| r.route == "noop-during-login");
    let met = match hash_ms {
        Some(h) => Some(worst_busy < h / 4.0 && !a.runs.is_empty()),
        None => Some(!a.runs.is_empty() && worst_busy < 4.0),
    };
    Target {
        target: "login's Argon2id off the async workers; parameters and cost reported".into(),
        met,
        figures: format!(
            "stored hash {} (m={} KiB, t={}, p={}); one verify {} single-threaded; async worker \
             threads' CPU ≤ {:.2} ms per login, blocking pool {} ms per login{}",
            a.stored_hash_params,
            a.m_kib,
            a.t,
            a.p,
            hash_ms.map_or("n/a".into(), |h| format!("{h:.1} ms")),
            worst_busy,
            a.runs
                .iter()
                .map(|r| format!("{:.1}", r.blocking_cpu_ms_per_login))
                .collect::<Vec<_>>()
                .join("/"),
            probe.map_or(String::new(), |p| format!(
                "; /bench/noop beside 16 logging-in connections: p50 {:.2} ms, p99 {:.2} ms",
                p.outcome.p50_ms, p.outcome.p99_ms
            ))
        ),
    }
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn ns(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} ms", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.2} µs", v / 1e3)
    } else {
        format!("{v:.0} ns")
    }
}

/// A table as a suite wants it shown: a title, its columns, its rows of cells, and paragraphs
/// after it. [`render`] writes every table the same way, so a suite only says what to show.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub after: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Self {
        Self {
            title: title.into(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            ..Self::default()
        }
    }

    fn write(&self, s: &mut String) {
        let _ = writeln!(s, "### {}\n", self.title);
        if !self.columns.is_empty() {
            let _ = writeln!(
                s,
                "| {} |\n|{}",
                self.columns.join(" | "),
                "---|".repeat(self.columns.len())
            );
            for row in &self.rows {
                let _ = writeln!(s, "| {} |", row.join(" | "));
            }
            s.push('\n');
        }
        for paragraph in &self.after {
            let _ = writeln!(s, "{paragraph}\n");
        }
    }
}

/// The columns every load table starts with; [`load_cells`] fills them.
pub const LOAD_COLUMNS: [&str; 8] = [
    "route", "c", "req/s", "p50 ms", "p99 ms", "requests", "errors", "load1",
];

/// For each route, in the order the suite ran them, and each connection count, ascending: the
/// run [`pick`] picks.
pub fn medians(rows: &[LoadRow]) -> Vec<&LoadRow> {
    let mut routes: Vec<&str> = Vec::new();
    for r in rows {
        if !routes.contains(&r.route.as_str()) {
            routes.push(&r.route);
        }
    }
    let mut out = Vec::new();
    for route in routes {
        let mut levels: Vec<u32> = rows
            .iter()
            .filter(|r| r.route == route)
            .map(|r| r.outcome.connections)
            .collect();
        levels.sort_unstable();
        levels.dedup();
        out.extend(levels.into_iter().filter_map(|c| pick(rows, route, c)));
    }
    out
}

/// The [`LOAD_COLUMNS`] cells of one run.
pub fn load_cells(r: &LoadRow) -> Vec<String> {
    let o = &r.outcome;
    let label = if r.label.is_empty() {
        &r.route
    } else {
        &r.label
    };
    vec![
        label.to_owned(),
        o.connections.to_string(),
        format!("{:.0}", o.rps),
        ms(o.p50_ms),
        ms(o.p99_ms),
        o.requests.to_string(),
        o.errors().to_string(),
        format!("{:.2}", o.load1),
    ]
}

/// The whole run as Markdown: the machine, then every suite's tables, then the targets.
pub fn render(l: &Latest) -> String {
    let mut s = String::new();
    let m = &l.machine;
    let _ = writeln!(
        s,
        "Tree `{}`. Machine: {} × {}, {} GiB, {}; {}; {}; {}\n",
        l.git, m.nproc, m.cpu_model, m.mem_total_gib, m.kernel, m.rustc, m.wrk, m.redis_server
    );
    let mut tables = Vec::new();
    if !l.micro.is_empty() {
        let mut t = Table::new(
            "Micro (criterion, native, one core)",
            &["benchmark", "median", "mean"],
        );
        t.rows = l
            .micro
            .iter()
            .map(|b| vec![b.name.clone(), ns(b.median_ns), ns(b.mean_ns)])
            .collect();
        tables.push(t);
    }
    if let Some(o) = &l.origin {
        tables.extend(origin_tables(o));
    }
    if l.workerd.is_some() || l.v8_verify.is_some() {
        tables.push(edge_table(l));
    }
    let mut t = Table::new("Targets (issue 5)", &["target", "met", "figures"]);
    t.rows = l
        .targets
        .iter()
        .map(|t| {
            let met = match t.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "pending",
            };
            vec![t.target.clone(), met.to_owned(), t.figures.clone()]
        })
        .collect();
    tables.push(t);
    for t in &tables {
        t.write(&mut s);
    }
    s
}

fn origin_tables(o: &OriginReport) -> Vec<Table> {
    let mut load = Table::new(
        format!(
            "Origin over loopback (wrk, {} s per run, {} database; c=64 rows: median of {} interleaved rounds)",
            o.duration_s, o.database, o.rounds
        ),
        &LOAD_COLUMNS,
    );
    load.columns.extend(
        [
            "origin CPU µs/req (workers + sqlite + blocking)",
            "redis CPU µs/req",
            "note",
        ]
        .map(String::from),
    );
    for run in medians(&o.rows) {
        let (c, rps) = (run.outcome.connections, run.outcome.rps);
        // Protected routes, against the two limits at the same concurrency.
        let protected = run.route.contains("me") || run.route.starts_with("auth-");
        let note = match (picked(&o.rows, "noop", c), picked(&o.rows, "redis-get", c)) {
            (Some(n), Some(g)) if protected => format!(
                "{:.0}% of noop, {:.0}% of redis-get",
                rps / n.rps * 100.0,
                rps / g.rps * 100.0
            ),
            _ => String::new(),
        };
        let cpu = &run.cpu;
        let mut row = load_cells(run);
        if run.route == "noop-during-login" {
            row.extend(["(shared with the logins)".into(), "–".into(), note]);
        } else {
            row.extend([
                format!(
                    "{:.0} ({:.0} + {:.0} + {:.0})",
                    cpu.origin_us, cpu.workers_us, cpu.sqlite_us, cpu.blocking_us
                ),
                format!("{:.1}", cpu.redis_us),
                note,
            ]);
        }
        load.rows.push(row);
    }

    let mut trips = Table::new(
        "Redis per request (counted with MONITOR on a private redis-server)",
        &[
            "route",
            "calls",
            "round trips per call",
            "commands inside scripts per call",
            "commands",
        ],
    );
    trips.rows = o
        .redis
        .round_trips
        .iter()
        .map(|r| {
            vec![
                r.route.clone(),
                r.calls.to_string(),
                r.round_trips_per_call.to_string(),
                r.script_commands_per_call.to_string(),
                joined(
                    r.commands
                        .by_command
                        .iter()
                        .map(|(k, v)| format!("{k}×{v}")),
                    " ",
                ),
            ]
        })
        .collect();
    let mem = &o.redis.memory;
    trips.after.push(format!(
        "Bytes per active session ({} one-device users): `used_memory` +{:.0} B per session over {:.1} keys; \
         MEMORY USAGE of one session's keys: {}; each further device of a user: +{:.0} B.",
        mem.sessions,
        mem.used_memory_per_session,
        mem.keys_per_session,
        joined(mem.key_bytes.iter().map(|(k, v)| format!("`{k}` {v} B")), ", "),
        mem.used_memory_per_extra_device
    ));

    let mut scaling = Table::new(
        "Device scaling",
        &[
            "devices per user",
            "GET /sessions ms",
            "its Redis round trips + script cmds",
            "POST /logout-all ms",
            "its Redis round trips + script cmds",
        ],
    );
    scaling.rows = o
        .redis
        .scaling
        .iter()
        .map(|r| {
            vec![
                r.devices.to_string(),
                ms(r.sessions_ms),
                format!(
                    "{} + {}",
                    r.sessions_commands.round_trips, r.sessions_commands.script_commands
                ),
                ms(r.logout_all_ms),
                format!(
                    "{} + {}",
                    r.logout_all_commands.round_trips, r.logout_all_commands.script_commands
                ),
            ]
        })
        .collect();
    if let Some(q) = &o.sql {
        scaling.after.push(format!(
            "One `SELECT … FROM users WHERE id = $1` ({} sequential): through the origin's `Db` (sqlx `Any`) \
             {:.1} µs wall, {:.1} µs CPU; through sqlx's native SQLite pool {:.1} µs wall, {:.1} µs CPU.",
            q.queries, q.any_wall_us, q.any_cpu_us, q.native_wall_us, q.native_cpu_us
        ));
    }
    let a = &o.argon2;
    scaling.after.push(format!(
        "Argon2id: `{}` (m = {} KiB, t = {}, p = {}). Per login: {}.",
        a.stored_hash_params,
        a.m_kib,
        a.t,
        a.p,
        joined(
            a.runs.iter().map(|r| format!(
                "c={}: worker threads {:.2} ms CPU (busy {:.2} ms wall), blocking pool {:.1} ms CPU, whole process {:.1} ms CPU",
                r.connections,
                r.worker_cpu_ms_per_login,
                r.worker_busy_ms_per_login,
                r.blocking_cpu_ms_per_login,
                r.process_cpu_ms_per_login
            )),
            "; "
        )
    ));
    vec![load, trips, scaling]
}

fn edge_table(l: &Latest) -> Table {
    let mut t = Table::new("Edge Worker (raw workerd and wrangler dev)", &[]);
    if let Some(w) = &l.workerd {
        t.after
            .push(workerd_suite::markdown(w).trim_end().to_owned());
    }
    if let Some(v) = &l.v8_verify {
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN) / 1e3;
        t.after.push(format!(
            "The Worker's verify + decide in V8 ({}; `tollgate-shared` built like the Worker): \
             EdDSA {:.1} µs, HS256 {:.1} µs per token.",
            v["engine"].as_str().unwrap_or("?"),
            f("EdDSA_verify_decide_ns"),
            f("HS256_verify_decide_ns")
        ));
    }
    t
}

fn joined(items: impl Iterator<Item = String>, sep: &str) -> String {
    items.collect::<Vec<_>>().join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `bench/results/latest.md` is what `tollgate-bench render` prints of `latest.json`.
    #[test]
    fn the_stored_run_renders_as_its_markdown() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
        let latest: Latest = read_part(&dir.join("latest.json")).expect("latest.json");
        let md = std::fs::read_to_string(dir.join("latest.md")).expect("latest.md");
        assert_eq!(render(&latest), md);
    }

    /// The edge targets come from the workerd suite's `wrangler dev` rows and its wasm size.
    #[test]
    fn edge_targets_read_the_workerd_part() {
        let row = |runtime: &str, route: &str, c: u32, p50: f64| {
            serde_json::json!({
                "runtime": runtime, "worker": "rust", "route": route, "round": 0,
                "outcome": {"connections": c, "requests": 1, "rps": 1.0, "p50_ms": p50,
                    "p99_ms": p50, "status_errors": 0, "socket_errors": 0, "load1": 0.0},
                "cpu_us_per_request": 1.0, "above_floor_us": null
            })
        };
        let w: workerd_suite::Report = serde_json::from_value(serde_json::json!({
            "rows": [
                row("wrangler dev", "health", 1, 2.0), row("wrangler dev", "protected", 1, 2.8),
                row("wrangler dev", "health", 16, 20.0), row("wrangler dev", "protected", 16, 40.0),
                row("workerd", "protected", 1, 100.0),
            ],
            "sizes": {"js (worker.js, bundled)": [1, 1], "rust (index_bg.wasm)": [600000, 240000]},
            "load_before": [0.0, 0.0, 0.0], "load_after": [0.0, 0.0, 0.0]
        }))
        .expect("a workerd part");
        let [p50, wasm] = edge_targets(Some(&w));
        assert_eq!(p50.met, Some(false), "{}", p50.figures);
        assert!(
            p50.figures.contains("c=1: 2.80 / 2.00 ms = 1.40×"),
            "{}",
            p50.figures
        );
        assert!(
            p50.figures.contains("c=16: 40.00 / 20.00 ms = 2.00×"),
            "{}",
            p50.figures
        );
        assert_eq!(wasm.met, Some(true));
        assert!(wasm
            .figures
            .starts_with("rust (index_bg.wasm) raw 600000 B"));
        assert!(edge_targets(None).iter().all(|t| t.met.is_none()));
    }
}
