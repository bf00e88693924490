//! The edge figures: the Worker in `wrangler dev` (workerd), on the end-to-end harness of
//! `tollgate-tests` (origin + REST bridge over Redis + wrangler, no recording tap).
//!
//! In the same run, with wrk, at each concurrency level:
//! - `edge-me`: `GET /api/users/me` through the Worker — local JWT verification, one
//!   `/pipeline` to the bridge, then forwarded to the origin, which validates again.
//! - `edge-health`: `GET /health`, a public route the Worker passes straight through.
//! - `origin-me` / `origin-health`: the same two straight to the origin, to split what the
//!   Worker adds from what the origin's `/me` costs.
//!
//! At one connection, the Worker's own CPU per validation: `edge-forged` (a token whose payload
//! was altered, refused by the Worker after full Ed25519 verification — no Redis, no origin)
//! against `edge-missing` (no token, refused before any crypto), as CPU seconds of wrangler's
//! process group (node + workerd) per request, read from `/proc`. Timers inside workerd are no
//! use for this: `Date.now()` does not advance while a request computes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::wrk::{self, Outcome, Run, Workload};

/// What the edge suite measured (or why it could not).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EdgeReport {
    /// `measured` or `pending`.
    pub status: String,
    pub note: String,
    pub wasm: Option<WasmSize>,
    /// The Worker's verify + decide timed in V8 (`bench/wasm-verify`), if it was run.
    #[serde(default)]
    pub v8_verify: Option<serde_json::Value>,
    pub rows: Vec<EdgeRow>,
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WasmSize {
    pub path: String,
    pub raw_bytes: u64,
    /// `gzip -6` (gzip's default level) and `gzip -9`.
    pub gzip6_bytes: u64,
    pub gzip9_bytes: u64,
    pub js_raw_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EdgeRow {
    pub route: String,
    /// What the report calls the route.
    #[serde(default)]
    pub label: String,
    pub round: u32,
    pub outcome: Outcome,
    /// CPU of wrangler's process group (node + workerd) per request, for the edge routes.
    pub edge_cpu_ms_per_request: Option<f64>,
    /// The same by process name.
    #[serde(default)]
    pub edge_cpu_ms_by_process: BTreeMap<String, f64>,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub duration: Duration,
    pub rounds: u32,
    pub levels: Vec<u32>,
    pub workdir: PathBuf,
}

impl Config {
    pub fn new(quick: bool) -> Self {
        Self {
            duration: Duration::from_secs(if quick { 3 } else { 10 }),
            rounds: if quick { 1 } else { 3 },
            levels: vec![1, 16, 64],
            workdir: std::env::temp_dir(),
        }
    }
}

/// Size of the built Worker, raw and gzipped.
pub fn wasm_size(root: &Path) -> anyhow::Result<WasmSize> {
    let wasm = root.join("edge/build/index_bg.wasm");
    let js = root.join("edge/build/index.js");
    let raw = std::fs::metadata(&wasm)
        .with_context(|| format!("{} (run scripts/build-edge.sh)", wasm.display()))?
        .len();
    let gz = |level: &str| -> anyhow::Result<u64> {
        let out = std::process::Command::new("gzip")
            .args([level, "-c"])
            .arg(&wasm)
            .output()
            .context("gzip")?;
        Ok(out.stdout.len() as u64)
    };
    Ok(WasmSize {
        path: "edge/build/index_bg.wasm".into(),
        raw_bytes: raw,
        gzip6_bytes: gz("-6")?,
        gzip9_bytes: gz("-9")?,
        js_raw_bytes: std::fs::metadata(&js).map(|m| m.len()).unwrap_or(0),
    })
}

/// Starts the harness's stack and measures.
pub async fn run(cfg: &Config, root: &Path) -> anyhow::Result<EdgeReport> {
    let load_before = crate::machine::load_avg();
    let wasm = wasm_size(root)?;
    let stack = tollgate_tests::Stack::start_with(
        tollgate_tests::StackOptions {
            tap: false,
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let email = stack.new_user().await;
    let tokens = stack.login(&email, "bench").await;
    let forged = forge(&tokens.access);
    let edge_port: u16 = stack
        .edge
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("edge port")?;
    let group = wrangler_group(edge_port).context("wrangler's process group not found")?;
    eprintln!(
        "edge on {} (wrangler process group {group}), origin on {}",
        stack.edge.base, stack.origin.base
    );

    let bearer = |t: &str| Workload::Get {
        headers: vec![("Authorization".into(), format!("Bearer {t}"))],
    };
    let plain = Workload::Get { headers: vec![] };
    let routes: Vec<(&str, &str, String, Workload, bool)> = vec![
        (
            "edge-health",
            "edge GET /health (pass-through)",
            stack.url("/health"),
            plain.clone(),
            true,
        ),
        (
            "edge-me",
            "edge GET /api/users/me (protected)",
            stack.url("/api/users/me"),
            bearer(&tokens.access),
            true,
        ),
        (
            "origin-health",
            "origin direct GET /health",
            stack.origin.url("/health"),
            plain.clone(),
            false,
        ),
        (
            "origin-me",
            "origin direct GET /api/users/me",
            stack.origin.url("/api/users/me"),
            bearer(&tokens.access),
            false,
        ),
    ];
    let probes: Vec<(&str, &str, String, Workload, bool)> = vec![
        (
            "edge-missing",
            "edge GET /me, no token (401 at the edge)",
            stack.url("/api/users/me"),
            plain,
            true,
        ),
        (
            "edge-forged",
            "edge GET /me, altered payload (401 after full verify)",
            stack.url("/api/users/me"),
            bearer(&forged),
            true,
        ),
    ];
    for (name, _, url, workload, _) in routes.iter().chain(&probes) {
        let mut req = reqwest::Client::new().get(url);
        if let Workload::Get { headers } = workload {
            for (k, v) in headers {
                req = req.header(k, v);
            }
        }
        let status = req.send().await?.status().as_u16();
        let expected = if name.starts_with("edge-missing") || name.starts_with("edge-forged") {
            401
        } else {
            200
        };
        anyhow::ensure!(status == expected, "{name} answered {status}");
    }
    wrk::warm_up(
        routes
            .iter()
            .map(|(_, _, url, workload, _)| (url, workload)),
        Duration::from_secs(2),
        &cfg.workdir,
    )
    .await?;
    let mut rows = Vec::new();
    for &c in &cfg.levels {
        let rounds = if c == 64 { cfg.rounds } else { 1 };
        for round in 0..rounds {
            let mut list: Vec<&(&str, &str, String, Workload, bool)> = routes.iter().collect();
            if c == 1 {
                list.extend(probes.iter());
            }
            for (name, label, url, workload, on_edge) in list {
                let cpu0 = group_cpu_secs(group);
                let outcome = wrk::run(
                    &Run {
                        url: url.clone(),
                        workload: workload.clone(),
                        connections: c,
                        duration: cfg.duration,
                    },
                    &cfg.workdir,
                )
                .await?;
                let cpu1 = group_cpu_secs(group);
                let n = outcome.requests.max(1) as f64;
                let by_process: BTreeMap<String, f64> = cpu1
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            (v - cpu0.get(k).copied().unwrap_or(0.0)) * 1e3 / n,
                        )
                    })
                    .collect();
                let per_request = on_edge.then(|| by_process.values().sum::<f64>());
                eprintln!(
                    "  c={c:<3} {name:<14} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}  load {:.2}{}",
                    outcome.rps,
                    outcome.p50_ms,
                    outcome.p99_ms,
                    outcome.errors(),
                    outcome.load1,
                    per_request
                        .map(|v| format!("  wrangler CPU {v:.3} ms/req {by_process:.3?}"))
                        .unwrap_or_default()
                );
                rows.push(EdgeRow {
                    route: (*name).into(),
                    label: (*label).into(),
                    round,
                    outcome,
                    edge_cpu_ms_per_request: per_request,
                    edge_cpu_ms_by_process: if *on_edge {
                        by_process
                    } else {
                        BTreeMap::new()
                    },
                });
            }
        }
    }
    Ok(EdgeReport {
        status: "measured".into(),
        note: String::new(),
        wasm: Some(wasm),
        v8_verify: None,
        rows,
        load_before,
        load_after: crate::machine::load_avg(),
    })
}

/// The same token with one character of its payload changed: it parses, names a known key, and
/// its signature is well-formed, so the Worker runs the whole Ed25519 verification before
/// refusing it. (Changing the signature instead can fail early, while decoding its point.)
fn forge(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let [head, payload, sig] = parts[..] else {
        return token.to_owned();
    };
    let mut chars: Vec<char> = payload.chars().collect();
    let mid = chars.len() / 2;
    if let Some(c) = chars.get_mut(mid) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    format!("{head}.{}.{sig}", chars.into_iter().collect::<String>())
}

/// The process group of the `wrangler dev` serving `port` (the harness starts it as its own
/// group, so workerd is in it too).
fn wrangler_group(port: u16) -> Option<u32> {
    let needle = format!("--port\0{port}\0");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            return stat_fields(pid).and_then(|f| f.get(2).and_then(|v| v.parse().ok()));
        }
    }
    None
}

/// Fields of `/proc/PID/stat` after the command name (index 0 is the state).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// CPU seconds (user + system) used so far by the live processes of `group`, by command name
/// (`node` for wrangler itself, `workerd` for the runtime).
fn group_cpu_secs(group: u32) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Some(f) = stat_fields(pid) else { continue };
        if f.get(2).and_then(|v| v.parse::<u32>().ok()) != Some(group) {
            continue;
        }
        let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        *out.entry(comm.trim().to_owned()).or_insert(0.0) +=
            (field(11) + field(12)) / crate::machine::clock_ticks_per_sec();
    }
    out
}
