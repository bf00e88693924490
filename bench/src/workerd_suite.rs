//! The Worker's own cost under **raw workerd** (no `wrangler dev` proxy in the way), against a
//! bare pass-through Worker on the same machine in the same run, and under `wrangler dev` as
//! users run it locally (issue 8 §6). `scripts/bench-edge.sh` runs it.
//!
//! One workerd process per Worker, each serving one config (capnp) on its own port:
//! - `floor`: `bench/edge-js/floor.js`, a bare pass-through — what any Worker costs before
//!   doing anything of its own (accepting the request, one subrequest, streaming the answer);
//! - `floor-2`: `bench/edge-js/floor2.js`, the same pass-through making first the one Upstash
//!   `/pipeline` call a protected request costs — the floor of a protected request;
//! - `job-floor`: `bench/edge-js/job-floor.js`, floor-2 plus the platform work any edge doing
//!   the protected job asks for (the lookup's deadline timer, the outbound request rebuilt from
//!   the client's headers, one WebCrypto Ed25519 signature): measured like the floors, it is the
//!   least a protected request can cost here, so a Worker's figure above it is its own code;
//! - `bare-rs`: `bench/wasm-bare`, the same pass-through written with workers-rs and built like
//!   the edge — what workers-rs itself costs above that floor, before any code of ours (more
//!   pass-throughs, e.g. variants of its JS glue, can be given beside it);
//! - one or more Rust bundles (`edge/build/` as built by `scripts/build-edge.sh`; an older build
//!   can be passed beside it for before/after figures);
//! - `js`: `bench/edge-js/worker.js`, the same job with `jose` and `@upstash/redis`, bundled
//!   with esbuild.
//!
//! All of them in front of the same upstream (a fast in-process echo), the same REST bridge
//! over Redis and the origin that issued the token (started by `tollgate-tests`' `Stack`,
//! whose `wrangler dev` edge serves the same Rust bundle for the second set of figures).
//!
//! Routes: `GET /health` (public: routing only, then pass-through) and `GET /api/bench/me`
//! (protected) with a token the Worker has seen before; at one connection also the same route
//! with a token whose payload was altered (`forged`: refused after a full signature check,
//! never memoised — what an Ed25519 verify costs in that Worker).
//!
//! CPU per request is the workerd process's `utime + stime` (`/proc/PID/stat`, all threads)
//! over a wrk run divided by the requests it completed; "above floor" subtracts the floor
//! Worker's figure for the same route, concurrency and round, and on a protected route "above
//! the two-subrequest floor" subtracts `floor-2`'s. Timers inside workerd are no use
//! for this (`Date.now()` does not advance while a request computes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tollgate_testkit::Served;

use crate::machine;
use crate::wrk::{self, Outcome, Plan, Workload};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub root: PathBuf,
    pub plan: Plan,
    /// `(label, bundle dir)`: each holds `index.js` + `index_bg.wasm` from worker-build, and
    /// `entry.mjs` (the main module then) when it was built with the edge's JS entry.
    pub rust: Vec<(String, PathBuf)>,
    /// `(label, bundle dir)` of pass-throughs measured like the floor: the bare workers-rs Worker
    /// (`bench/wasm-bare/build`, labelled `bare-rs` by `scripts/bench-edge.sh`) or variants.
    pub bare: Vec<(String, PathBuf)>,
    /// Only these routes (`health`, `protected`, `forged`); empty = all.
    pub routes: Vec<String>,
    /// Also measure the first Rust bundle under `wrangler dev`.
    pub wrangler: bool,
    pub workerd: PathBuf,
    pub esbuild: PathBuf,
}

/// One measured run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub runtime: String,
    pub worker: String,
    pub route: String,
    pub round: u32,
    pub outcome: Outcome,
    /// CPU of the serving process(es) per completed request.
    pub cpu_us_per_request: f64,
    /// The same minus the floor Worker's for this route, concurrency and round (raw workerd).
    pub above_floor_us: Option<f64>,
    /// On a protected route, the same minus `floor-2`'s: above the two subrequests it makes.
    #[serde(default)]
    pub above_floor2_us: Option<f64>,
    /// The user-space part of [`Self::cpu_us_per_request`] (the process's own code, without
    /// the kernel's socket work, whose share moves with how requests batch into wakeups).
    #[serde(default)]
    pub user_us_per_request: Option<f64>,
    /// [`Self::user_us_per_request`] minus the floor's (`floor-2`'s on a protected route).
    #[serde(default)]
    pub user_above_us: Option<f64>,
}

/// What the suite measured: a part of [`crate::report::Latest`] (`tollgate-bench report --workerd`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub rows: Vec<Row>,
    /// `label -> (raw bytes, gzip -9 bytes)` of each Worker's code.
    pub sizes: BTreeMap<String, (u64, u64)>,
    /// Redis work per protected request through each Rust bundle, counted where it happens.
    #[serde(default)]
    pub round_trips: Vec<RoundTrips>,
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
}

/// Redis work of one protected request through the edge, end to end (issue 8 §3): the
/// bridge's commands (the edge's one Upstash `/pipeline`) and the origin's own round trips
/// (none when it trusts the edge's assertion), over `requests` calls of `path`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundTrips {
    pub worker: String,
    pub path: String,
    pub requests: u64,
    pub bridge_commands: u64,
    pub origin_round_trips: u64,
}

/// How many calls [`count_round_trips`] counts per path.
const COUNTED_CALLS: u64 = 200;

/// Counts the Redis work of [`COUNTED_CALLS`] protected requests through the Worker at `base`,
/// to the origin (`/api/users/me`, which then takes the edge's word for the token) and to the
/// echo upstream, after one warm-up call each.
async fn count_round_trips(
    stack: &tollgate_tests::Stack,
    worker: &str,
    base: &str,
    token: &str,
) -> anyhow::Result<Vec<RoundTrips>> {
    let workload = Workload::bearer(token);
    let call = |url: String| {
        let workload = &workload;
        async move {
            let status = wrk::status(&url, workload).await?;
            anyhow::ensure!(status == 200, "{worker}: HTTP {status} while counting");
            anyhow::Ok(())
        }
    };
    let mut out = Vec::new();
    for path in ["/api/users/me", "/api/bench/me"] {
        let url = format!("{base}{path}");
        call(url.clone()).await?;
        let bridge = stack.bridge_stats().await.commands;
        let origin = stack.origin.state.redis.round_trips();
        for _ in 0..COUNTED_CALLS {
            call(url.clone()).await?;
        }
        out.push(RoundTrips {
            worker: worker.to_owned(),
            path: path.to_owned(),
            requests: COUNTED_CALLS,
            bridge_commands: stack.bridge_stats().await.commands - bridge,
            origin_round_trips: stack.origin.state.redis.round_trips() - origin,
        });
    }
    Ok(out)
}

/// The bench route table: sign-up and login go to the origin (to get a token through the same
/// edge), `/health` and `/api/bench/*` to the echo upstream, and `GET /api/users/me` to the
/// origin for the end-to-end round-trip count.
fn routes(origin: &str, echo: &str) -> serde_json::Value {
    json!({
        "upstreams": { "origin": { "url": origin }, "echo": { "url": echo } },
        "routes": [
            { "path": "/api/users/register", "methods": ["POST"], "upstream": "origin", "access": "public_signed" },
            { "path": "/api/users/login", "methods": ["POST"], "upstream": "origin", "access": "public_signed" },
            { "path": "/api/users/me", "methods": ["GET"], "upstream": "origin" },
            { "path": "/health", "methods": ["GET"], "upstream": "echo", "access": "public" },
            { "prefix": "/api/bench", "upstream": "echo" }
        ]
    })
}

/// An upstream that answers every request with a small JSON body, as fast as this machine can.
async fn start_echo() -> anyhow::Result<Served> {
    let ok = || async { axum::Json(json!({"ok": true})) };
    Served::start(axum::Router::new().fallback(axum::routing::any(ok))).await
}

/// A capnp text literal.
fn capnp_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A workerd child serving one Worker on `port`; killed on drop.
struct Workerd {
    child: Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Workerd {
    /// `modules`: (module name, file) pairs, `.wasm` as wasm modules, the rest ES modules; the
    /// first is the main module.
    async fn start(
        workerd: &Path,
        modules: &[(String, PathBuf)],
        bindings: &BTreeMap<String, String>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tollgate-workerd-")
            .tempdir()?;
        let mut module_lines = Vec::new();
        for (name, file) in modules {
            let local = dir.path().join(name.replace('/', "_"));
            std::fs::copy(file, &local).with_context(|| format!("{}", file.display()))?;
            let kind = if name.ends_with(".wasm") {
                "wasm"
            } else {
                "esModule"
            };
            module_lines.push(format!(
                "(name = {}, {kind} = embed {})",
                capnp_str(name),
                capnp_str(&local.file_name().unwrap_or_default().to_string_lossy())
            ));
        }
        let binding_lines: Vec<String> = bindings
            .iter()
            .map(|(k, v)| format!("(name = {}, text = {})", capnp_str(k), capnp_str(v)))
            .collect();
        let port = tollgate_tests::child_port()?;
        // For profiling (BENCHMARKS.md): e.g. `--perf-basic-prof` lets `perf` name the JIT's
        // code, the wasm's functions included.
        let v8_flags: Vec<String> = std::env::var("TOLLGATE_WORKERD_V8_FLAGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(capnp_str)
            .collect();
        let config = format!(
            r#"using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  v8Flags = [{v8_flags}],
  services = [
    (name = "main", worker = (
      modules = [{modules}],
      compatibilityDate = "2026-05-01",
      bindings = [{bindings}],
    )),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:{port}", http = (), service = "main")],
);
"#,
            modules = module_lines.join(", "),
            bindings = binding_lines.join(", "),
            v8_flags = v8_flags.join(", "),
        );
        let config_path = dir.path().join("config.capnp");
        std::fs::write(&config_path, config)?;
        let log = dir.path().join("workerd.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(workerd)
            .arg("serve")
            .arg(&config_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", workerd.display()))?;
        let mut w = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        w.wait_ready().await?;
        Ok(w)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("workerd exited ({status}): {}", self.log_text());
            }
            if client
                .get(format!("{}/health", self.base))
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("workerd did not serve within 30 s: {}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Workerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gzip9(path: &Path) -> anyhow::Result<(u64, u64)> {
    let raw = std::fs::metadata(path)?.len();
    let out = Command::new("gzip").args(["-9", "-c"]).arg(path).output()?;
    Ok((raw, out.stdout.len() as u64))
}

/// Bundles a JS Worker with its npm dependencies into one ES module.
fn bundle_js(esbuild: &Path, entry: &Path, out: &Path) -> anyhow::Result<()> {
    let status = Command::new(esbuild)
        .arg(entry)
        .args([
            "--bundle",
            "--format=esm",
            "--platform=neutral",
            "--main-fields=module,main",
            "--conditions=workerd,worker,browser",
            "--minify",
        ])
        .arg(format!("--outfile={}", out.display()))
        .status()
        .context("esbuild")?;
    anyhow::ensure!(status.success(), "esbuild failed for {}", entry.display());
    Ok(())
}

struct Target {
    runtime: &'static str,
    worker: String,
    base: String,
    cpu: Box<dyn Fn() -> machine::Cpu>,
}

/// The origin's URL in the harness's default route table.
fn origin_of(config: &tollgate_tests::EdgeConfig) -> String {
    config
        .vars
        .get("TOLLGATE_ROUTES")
        .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok())
        .and_then(|v| v["upstreams"]["origin"]["url"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Starts everything, checks every Worker answers as it should, then measures.
pub async fn run(cfg: &Config) -> anyhow::Result<Report> {
    let load_before = machine::load_avg();
    let echo_server = start_echo().await?;
    let echo = echo_server.url();
    let echo_url = echo.clone();
    let mut config = None;
    let stack = tollgate_tests::Stack::start_with(
        tollgate_tests::StackOptions {
            tap: false,
            ..Default::default()
        },
        |c| {
            let table = routes(&origin_of(c), &echo_url);
            c.var("TOLLGATE_ROUTES", table.to_string());
            config = Some(c.clone());
        },
    )
    .await;
    let config = config.context("edge configuration")?;
    let email = stack.new_user().await;
    let tokens = stack.login(&email, "bench").await;
    let forged = forge(&tokens.access);
    let bind = bindings(&config, &echo);

    let js_dir = cfg.root.join("bench/edge-js");
    let dist = cfg.plan.workdir.join("tollgate-bench-edge-js");
    std::fs::create_dir_all(&dist)?;
    let floor_js = dist.join("floor.js");
    let floor2_js = dist.join("floor2.js");
    let job_floor_js = dist.join("job-floor.js");
    let worker_js = dist.join("worker.js");
    bundle_js(&cfg.esbuild, &js_dir.join("floor.js"), &floor_js)?;
    bundle_js(&cfg.esbuild, &js_dir.join("floor2.js"), &floor2_js)?;
    bundle_js(&cfg.esbuild, &js_dir.join("job-floor.js"), &job_floor_js)?;
    bundle_js(&cfg.esbuild, &js_dir.join("worker.js"), &worker_js)?;

    let mut sizes = BTreeMap::new();
    sizes.insert("js (worker.js, bundled)".to_owned(), gzip9(&worker_js)?);
    let mut servers = Vec::new();
    servers.push((
        "floor".to_owned(),
        Workerd::start(&cfg.workerd, &[("index.js".into(), floor_js)], &bind).await?,
    ));
    servers.push((
        FLOOR2.to_owned(),
        Workerd::start(&cfg.workerd, &[("index.js".into(), floor2_js)], &bind).await?,
    ));
    servers.push((
        JOB_FLOOR.to_owned(),
        Workerd::start(&cfg.workerd, &[("index.js".into(), job_floor_js)], &bind).await?,
    ));
    for (label, dir) in cfg.bare.iter().chain(&cfg.rust).cloned() {
        sizes.insert(
            format!("{label} (index_bg.wasm)"),
            gzip9(&dir.join("index_bg.wasm"))?,
        );
        // The edge's own JS entry (`edge/entry.mjs`, copied there by scripts/build-edge.sh) is
        // the main module when the bundle has one; worker-build's `index.js` otherwise.
        let entry = dir.join("entry.mjs");
        let modules: Vec<(String, PathBuf)> = entry
            .exists()
            .then(|| ("entry.mjs".to_owned(), entry))
            .into_iter()
            .chain([
                ("index.js".to_owned(), dir.join("index.js")),
                ("index_bg.wasm".to_owned(), dir.join("index_bg.wasm")),
            ])
            .collect();
        servers.push((label, Workerd::start(&cfg.workerd, &modules, &bind).await?));
    }
    servers.push((
        "js".to_owned(),
        Workerd::start(&cfg.workerd, &[("index.js".into(), worker_js)], &bind).await?,
    ));

    let mut targets: Vec<Target> = Vec::new();
    for (label, server) in &servers {
        let pid = server.child.id();
        eprintln!("[bench-edge] {label}: workerd pid {pid}");
        targets.push(Target {
            runtime: "workerd",
            worker: label.clone(),
            base: server.base.clone(),
            cpu: Box::new(move || machine::cpu_of(pid)),
        });
    }
    if cfg.wrangler {
        let pgid = stack.edge.process_group();
        targets.push(Target {
            runtime: "wrangler dev",
            worker: cfg
                .rust
                .first()
                .map_or_else(String::new, |(l, _)| l.clone()),
            base: stack.edge.base.clone(),
            cpu: Box::new(move || machine::group_cpu(pgid)),
        });
    }

    let mut routes = vec![
        ("health", "/health", Workload::get()),
        (
            "protected",
            "/api/bench/me",
            Workload::bearer(&tokens.access),
        ),
        ("forged", "/api/bench/me", Workload::bearer(&forged)),
    ];
    if !cfg.routes.is_empty() {
        routes.retain(|(name, _, _)| cfg.routes.iter().any(|r| r == name));
    }
    // Every Worker answers as expected before anything is timed (pass-throughs pass all).
    for t in &targets {
        for (name, path, workload) in &routes {
            let status = wrk::status(&format!("{}{path}", t.base), workload).await?;
            let pass_through = t.worker == "floor"
                || t.worker == FLOOR2
                || t.worker == JOB_FLOOR
                || cfg.bare.iter().any(|(l, _)| *l == t.worker);
            let want = if *name == "forged" && !pass_through {
                401
            } else {
                200
            };
            anyhow::ensure!(
                status == want,
                "{} {} {name}: HTTP {status}, want {want}",
                t.runtime,
                t.worker
            );
        }
    }
    let mut round_trips = Vec::new();
    for (label, _) in &cfg.rust {
        if let Some(t) = targets
            .iter()
            .find(|t| t.runtime == "workerd" && t.worker == *label)
        {
            round_trips.extend(count_round_trips(&stack, label, &t.base, &tokens.access).await?);
        }
    }
    for r in &round_trips {
        eprintln!(
            "[bench-edge] {} {}: {} bridge commands, {} origin round trips over {} requests",
            r.worker, r.path, r.bridge_commands, r.origin_round_trips, r.requests
        );
    }
    let plan = &cfg.plan;
    for t in &targets {
        let list: Vec<_> = routes
            .iter()
            .map(|(_, path, w)| (format!("{}{path}", t.base), w))
            .collect();
        wrk::warm_up(
            list.iter().map(|(u, w)| (u, *w)),
            Duration::from_secs(1),
            &plan.workdir,
        )
        .await?;
    }

    let mut rows: Vec<Row> = Vec::new();
    for round in 0..plan.rounds {
        for &c in &plan.levels {
            for (name, path, workload) in &routes {
                if *name == "forged" && c != 1 {
                    continue;
                }
                let (mut floor, mut floor2) = (None, None);
                for t in &targets {
                    let cpu0 = (t.cpu)();
                    let run = plan.run(&format!("{}{path}", t.base), workload, c);
                    let outcome = wrk::run(&run, &plan.workdir).await?;
                    let per = ((t.cpu)() - cpu0).micros_per(outcome.requests);
                    let (cpu, user) = (per.total(), per.user);
                    if t.runtime == "workerd" && t.worker == "floor" {
                        floor = Some(per);
                    }
                    if t.runtime == "workerd" && t.worker == FLOOR2 && *name == "protected" {
                        floor2 = Some(per);
                    }
                    // What this Worker costs above a floor it is not itself.
                    let above_of =
                        |floor: Option<machine::Cpu>, floor_name: &str| match (t.runtime, floor) {
                            ("workerd", Some(f))
                                if t.worker != "floor" && t.worker != floor_name =>
                            {
                                Some(per - f)
                            }
                            _ => None,
                        };
                    let above = above_of(floor, "floor").map(machine::Cpu::total);
                    let above2 = above_of(floor2, FLOOR2).map(machine::Cpu::total);
                    // Against the floor of the same work: floor-2 on a protected route.
                    let user_above = if *name == "protected" {
                        above_of(floor2, FLOOR2)
                    } else {
                        above_of(floor, "floor")
                    }
                    .map(|d| d.user);
                    eprintln!(
                        "  r{round} {}  CPU {cpu:>6.1} µs/req{}",
                        outcome.line(&format!("{} {} {name}", t.runtime, t.worker)),
                        above
                            .map(|a| format!(" ({a:+.1} above floor)"))
                            .unwrap_or_default(),
                    );
                    eprint!(
                        "{}",
                        above2
                            .map(|a| format!("      ({a:+.1} above floor-2)\n"))
                            .unwrap_or_default(),
                    );
                    eprintln!(
                        "      user {user:.1} µs/req{}",
                        user_above
                            .map(|a| format!(" ({a:+.1} above its floor)"))
                            .unwrap_or_default(),
                    );
                    rows.push(Row {
                        runtime: t.runtime.into(),
                        worker: t.worker.clone(),
                        route: (*name).into(),
                        round,
                        outcome,
                        cpu_us_per_request: cpu,
                        above_floor_us: above,
                        above_floor2_us: above2,
                        user_us_per_request: Some(user),
                        user_above_us: user_above,
                    });
                }
            }
        }
    }
    drop(servers);
    drop(stack);
    Ok(Report {
        rows,
        sizes,
        round_trips,
        load_before,
        load_after: machine::load_avg(),
    })
}

/// The pass-through that also makes a protected request's Upstash call (`bench/edge-js/floor2.js`).
const FLOOR2: &str = "floor-2";

/// floor-2 plus the platform work of the protected job (`bench/edge-js/job-floor.js`).
const JOB_FLOOR: &str = "job-floor";

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

/// Everything a Worker's bindings hold, for raw workerd: the harness's vars and secrets (the
/// Rust edge's configuration, which the JS Worker reads too) and the floor's `UPSTREAM`.
fn bindings(config: &tollgate_tests::EdgeConfig, echo: &str) -> BTreeMap<String, String> {
    let mut b: BTreeMap<String, String> = config.vars.clone();
    b.extend(config.secrets.clone());
    b.insert("UPSTREAM".into(), echo.to_owned());
    b
}

/// Medians over rounds, as a Markdown table: one line per runtime, Worker, route and level.
pub fn markdown(report: &Report) -> String {
    let mut groups: BTreeMap<(String, u32, String, String), Vec<&Row>> = BTreeMap::new();
    for r in &report.rows {
        groups
            .entry((
                r.route.clone(),
                r.outcome.connections,
                r.runtime.clone(),
                r.worker.clone(),
            ))
            .or_default()
            .push(r);
    }
    let median = |mut v: Vec<f64>| -> f64 {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let mut out = String::from(
        "| route | c | runtime | Worker | req/s | p50 ms | p99 ms | CPU µs/req | above floor µs | above floor-2 µs | user µs/req | user above its floor µs |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for ((route, c, runtime, worker), rows) in &groups {
        let above = |of: fn(&Row) -> Option<f64>| {
            let v: Vec<f64> = rows.iter().filter_map(|r| of(r)).collect();
            if v.is_empty() {
                "—".to_owned()
            } else {
                format!("{:+.1}", median(v))
            }
        };
        out.push_str(&format!(
            "| {route} | {c} | {runtime} | {worker} | {:.0} | {:.3} | {:.3} | {:.1} | {} | {} | {} | {} |\n",
            median(rows.iter().map(|r| r.outcome.rps).collect()),
            median(rows.iter().map(|r| r.outcome.p50_ms).collect()),
            median(rows.iter().map(|r| r.outcome.p99_ms).collect()),
            median(rows.iter().map(|r| r.cpu_us_per_request).collect()),
            above(|r| r.above_floor_us),
            above(|r| r.above_floor2_us),
            rows.iter()
                .map(|r| r.user_us_per_request)
                .collect::<Option<Vec<f64>>>()
                .map_or_else(|| "—".to_owned(), |v| format!("{:.1}", median(v))),
            above(|r| r.user_above_us),
        ));
    }
    if !report.round_trips.is_empty() {
        out.push_str(
            "\n| Redis work per protected request (raw workerd) | requests | bridge commands | origin round trips |\n|---|---|---|---|\n",
        );
        for r in &report.round_trips {
            out.push_str(&format!(
                "| {} `GET {}` | {} | {} | {} |\n",
                r.worker, r.path, r.requests, r.bridge_commands, r.origin_round_trips
            ));
        }
    }
    out.push_str("\n| code | raw bytes | gzip -9 bytes |\n|---|---|---|\n");
    for (label, (raw, gz)) in &report.sizes {
        out.push_str(&format!("| {label} | {raw} | {gz} |\n"));
    }
    out.push_str(&format!(
        "\nload (1/5/15 min): {:?} before, {:?} after\n",
        report.load_before, report.load_after
    ));
    out
}
