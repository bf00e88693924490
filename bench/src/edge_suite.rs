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
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::machine;
use crate::wrk::{self, Outcome, Plan, Workload};

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

impl EdgeReport {
    /// Nothing measured but the wasm size (if there is a build), and why.
    pub fn pending(note: String, root: &Path) -> Self {
        let now = machine::load_avg();
        Self {
            status: "pending".into(),
            note,
            wasm: wasm_size(root).ok(),
            v8_verify: None,
            rows: Vec::new(),
            load_before: now,
            load_after: now,
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
pub async fn run(plan: &Plan, root: &Path) -> anyhow::Result<EdgeReport> {
    let load_before = machine::load_avg();
    let wasm = wasm_size(root)?;
    let stack = tollgate_tests::Stack::start_with(
        tollgate_tests::StackOptions {
            tap: false,
            ..Default::default()
        },
        |_| {},
    )
    .await;
    let tokens = stack.login(&stack.new_user().await, "bench").await;
    let group = stack.edge.process_group();
    eprintln!(
        "edge on {} (wrangler process group {group}), origin on {}",
        stack.edge.base, stack.origin.base
    );
    let (edge, origin) = (&stack, &stack.origin);
    let me = Workload::bearer(&tokens.access);
    // (name, label, URL, workload, expected status, served by the Worker)
    let routes = [
        (
            "edge-health",
            "edge GET /health (pass-through)",
            edge.url("/health"),
            Workload::get(),
            200,
            true,
        ),
        (
            "edge-me",
            "edge GET /api/users/me (protected)",
            edge.url("/api/users/me"),
            me.clone(),
            200,
            true,
        ),
        (
            "origin-health",
            "origin direct GET /health",
            origin.url("/health"),
            Workload::get(),
            200,
            false,
        ),
        (
            "origin-me",
            "origin direct GET /api/users/me",
            origin.url("/api/users/me"),
            me,
            200,
            false,
        ),
        // At one connection only: the Worker's own CPU per validation.
        (
            "edge-missing",
            "edge GET /me, no token (401 at the edge)",
            edge.url("/api/users/me"),
            Workload::get(),
            401,
            true,
        ),
        (
            "edge-forged",
            "edge GET /me, altered payload (401 after full verify)",
            edge.url("/api/users/me"),
            Workload::bearer(&forge(&tokens.access)),
            401,
            true,
        ),
    ];
    let probe = |name: &str| name == "edge-missing" || name == "edge-forged";
    for (name, _, url, workload, want, _) in &routes {
        let status = wrk::status(url, workload).await?;
        anyhow::ensure!(status == *want, "{name} answered {status}");
    }
    let warm = routes.iter().filter(|r| !probe(r.0)).map(|r| (&r.2, &r.3));
    wrk::warm_up(warm, Duration::from_secs(2), &plan.workdir).await?;
    let mut rows = Vec::new();
    for (c, round, (name, label, url, workload, _, on_edge)) in
        plan.schedule(&routes, |r, c| c == 1 || !probe(r.0))
    {
        let cpu0 = machine::group_cpu_secs(group);
        let outcome = wrk::run(&plan.run(url, workload, c), &plan.workdir).await?;
        let cpu1 = machine::group_cpu_secs(group);
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
            "  {}{}",
            outcome.line(name),
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
    Ok(EdgeReport {
        status: "measured".into(),
        note: String::new(),
        wasm: Some(wasm),
        v8_verify: None,
        rows,
        load_before,
        load_after: machine::load_avg(),
    })
}

/// The same token with one character of its payload changed: it parses, names a known key, and
/// its signature is well-formed, so the Worker runs the whole Ed25519 verification before
/// refusing it. (Changing the signature instead can fail early, while decoding its point.)
pub fn forge(token: &str) -> String {
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
