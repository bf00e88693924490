//! Merges the parts of a run (criterion's estimates, the origin and workerd reports) into one
//! JSON document and renders it as Markdown tables. It reports figures and judges nothing: the
//! targets they are read against live in BENCHMARKS.md, beside the issue that set them.

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
}

/// One criterion benchmark.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Micro {
    pub name: String,
    pub median_ns: f64,
    pub mean_ns: f64,
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

/// The whole run as Markdown: the machine, then every suite's tables.
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
    if let Some(w) = &l.workerd {
        let mut t = Table::new("Edge Worker (raw workerd and wrangler dev)", &[]);
        t.after
            .push(workerd_suite::markdown(w).trim_end().to_owned());
        tables.push(t);
    }
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
        // The protected route, against the two limits at the same concurrency.
        let protected = run.route == "me";
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
    // `/me` against the single-GET limit in each interleaved round, not only in the medians.
    let per_round: Vec<String> = o
        .rows
        .iter()
        .filter(|m| m.route == "me" && m.outcome.connections == 64)
        .filter_map(|m| {
            let g = o.rows.iter().find(|g| {
                g.route == "redis-get" && g.outcome.connections == 64 && g.round == m.round
            })?;
            Some(format!("{:.0}%", m.outcome.rps / g.outcome.rps * 100.0))
        })
        .collect();
    if per_round.len() > 1 {
        load.after.push(format!(
            "`GET /api/users/me` against `GET /bench/redis-get` at c=64, round by round: {}.",
            per_round.join(", ")
        ));
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
    let r = &o.redis;
    let walks_keyspace = r.scaling.iter().any(|row| {
        row.sessions_commands.uses_keyspace_scan() || row.logout_all_commands.uses_keyspace_scan()
    });
    scaling.after.push(format!(
        "`KEYS` or `SCAN` in either call: {}. A one-device user's sessions list: {} ms at the \
         start, {} ms with {} sessions in the database.",
        if walks_keyspace { "**yes**" } else { "none" },
        ms(r.sessions_one_device_first_ms),
        ms(r.sessions_one_device_last_ms),
        r.sessions_in_database_last
    ));
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
}
