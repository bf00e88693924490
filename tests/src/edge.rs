//! The edge Worker under `wrangler dev`, as a child process in its own process group.
//!
//! Launch: `<root>/.tools/node/node_modules/.bin/wrangler dev --config <root>/wrangler.toml
//! --name tollgate-edge-test-<id> --ip 127.0.0.1 --port P --inspector-port Q --persist-to DIR/state
//! --env-file DIR/secrets.env --show-interactive-dev-session=false --var K:V …`, from the
//! repository root, with `WRANGLER_SEND_METRICS=false`, `CLOUDFLARE_CF_FETCH_ENABLED=false` and
//! `WRANGLER_LOG_PATH=DIR/logs`.
//!
//! Plain settings go on the command line (`--var`); secrets go in a per-edge dotenv file (mode
//! 0600) passed with `--env-file`, which wrangler loads *instead of* any `.dev.vars` and exposes
//! to the Worker as secret bindings — nothing secret in argv, nothing committed. Each edge gets
//! its own `--persist-to`, name, inspector port and log dir, so parallel wranglers share no state.
//! The bundle must be prebuilt (`scripts/build-edge.sh`): wrangler.toml has no build command.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context as _};
use tempfile::TempDir;

/// What to hand the Worker.
#[derive(Debug, Clone, Default)]
pub struct EdgeConfig {
    /// `--var NAME:VALUE`.
    pub vars: BTreeMap<String, String>,
    /// Written to the `--env-file`.
    pub secrets: BTreeMap<String, String>,
    /// `--env NAME`: a deployed environment of wrangler.toml (`[env.NAME]`) instead of its
    /// top-level development settings.
    pub env: Option<String>,
    /// `wrangler dev SCRIPT`: another main module than wrangler.toml's (relative to the
    /// repository root), e.g. `tests/edge-probe/probe.mjs`, which wraps the edge's own entry.
    pub main: Option<PathBuf>,
}

impl EdgeConfig {
    pub fn var(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.vars.insert(name.to_owned(), value.into());
        self
    }

    /// Drops a secret the default configuration sets.
    pub fn without_secret(&mut self, name: &str) -> &mut Self {
        self.secrets.remove(name);
        self
    }

    /// Serves `script` as the main module instead of wrangler.toml's `main`.
    pub fn main(&mut self, script: impl Into<PathBuf>) -> &mut Self {
        self.main = Some(script.into());
        self
    }

    /// Runs the Worker as wrangler.toml's `[env.NAME]`.
    pub fn wrangler_env(&mut self, name: &str) -> &mut Self {
        self.env = Some(name.to_owned());
        self
    }

    pub fn secret(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.secrets.insert(name.to_owned(), value.into());
        self
    }
}

/// A running `wrangler dev`; its whole process group (node, esbuild, workerd) is terminated on
/// drop.
#[derive(Debug)]
pub struct Edge {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub port: u16,
    child: Child,
    log: PathBuf,
    _dir: TempDir,
}

/// wrangler and the bundle, or an error telling how to get them.
pub fn prebuilt() -> anyhow::Result<PathBuf> {
    let root = crate::repo_root();
    let wrangler = root.join(".tools/node/node_modules/.bin/wrangler");
    if !wrangler.exists() {
        bail!(
            "wrangler not found at {}: run scripts/build-edge.sh (it installs the edge toolchain \
             and builds the bundle)",
            wrangler.display()
        );
    }
    let wasm = root.join("edge/build/index_bg.wasm");
    if ["index.js", "entry.mjs"]
        .iter()
        .any(|f| !root.join("edge/build").join(f).exists())
        || !wasm.exists()
    {
        bail!("the edge bundle (edge/build/) is missing: run scripts/build-edge.sh");
    }
    // Testing an old build of our own code would be worse than failing, so any input newer than
    // the bundle fails the test, shared/ included: a hand-run test must never check an old
    // verifier. scripts/build-edge.sh (which CI runs first) rebuilds when an input's content
    // changed and touches the bundle when none did, so after it this always passes.
    let built = mtime(&wasm)?;
    for input in [
        "edge/src",
        "edge/entry.mjs",
        "edge/Cargo.toml",
        "shared/src",
        "shared/Cargo.toml",
    ] {
        if let Some(newer) = newer_than(&root.join(input), built) {
            bail!(
                "the edge bundle is older than {}: run scripts/build-edge.sh",
                newer.display()
            );
        }
    }
    Ok(wrangler)
}

fn mtime(path: &Path) -> anyhow::Result<SystemTime> {
    Ok(std::fs::metadata(path)?.modified()?)
}

/// A file under `path` modified after `t`, if any.
fn newer_than(path: &Path, t: SystemTime) -> Option<PathBuf> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return (meta.modified().ok()? > t).then(|| path.to_owned());
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .find_map(|entry| newer_than(&entry.path(), t))
}

impl Edge {
    /// Starts wrangler and waits until the Worker answers (any HTTP response on `/health`).
    /// One retry covers the rare race where the free port was taken before wrangler bound it.
    pub async fn start(config: &EdgeConfig) -> anyhow::Result<Self> {
        match Self::start_once(config).await {
            Ok(edge) => Ok(edge),
            Err(first) => Self::start_once(config)
                .await
                .with_context(|| format!("second attempt (first: {first:#})")),
        }
    }

    async fn start_once(config: &EdgeConfig) -> anyhow::Result<Self> {
        let wrangler = prebuilt()?;
        let root = crate::repo_root();
        let dir = tempfile::Builder::new()
            .prefix("tollgate-edge-")
            .tempdir()
            .context("edge temp dir")?;
        let env_file = dir.path().join("secrets.env");
        write_env_file(&env_file, &config.secrets)?;
        let log = dir.path().join("wrangler.log");
        let out = File::create(&log).context("wrangler log file")?;
        let port = crate::child_port()?;
        let inspector = crate::child_port()?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut command = Command::new(&wrangler);
        command
            .current_dir(&root)
            .arg("dev")
            .args(&config.main)
            .arg("--config")
            .arg(root.join("wrangler.toml"))
            .args(["--name", &format!("tollgate-edge-test-{}", &id[..12])])
            .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--inspector-port", &inspector.to_string()])
            .arg("--persist-to")
            .arg(dir.path().join("state"))
            .arg("--env-file")
            .arg(&env_file)
            .arg("--show-interactive-dev-session=false");
        if let Some(env) = &config.env {
            command.args(["--env", env]);
        }
        for (name, value) in &config.vars {
            command.arg("--var").arg(format!("{name}:{value}"));
        }
        command
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_LOG_PATH", dir.path().join("logs"))
            // Secrets come from the env file only, never from this process's environment.
            .env_remove("CLOUDFLARE_INCLUDE_PROCESS_ENV")
            .stdin(Stdio::null())
            .stdout(out.try_clone().context("wrangler log file")?)
            .stderr(out)
            // Its own process group, so drop can stop wrangler *and* the workerd it spawns.
            .process_group(0);
        let child = command
            .spawn()
            .with_context(|| format!("Failed to start {}", wrangler.display()))?;
        let mut edge = Self {
            base: format!("http://127.0.0.1:{port}"),
            port,
            child,
            log,
            _dir: dir,
        };
        // A deployed env's upstreams are placeholders on the public internet, which tests never
        // contact: probe the edge's own JWKS route there, which no upstream serves.
        let probe = match config.env {
            Some(_) => tollgate_shared::assertion::JWKS_PATH,
            None => "/health",
        };
        edge.wait_ready(probe).await?;
        Ok(edge)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The last lines of wrangler's output (the Worker's console lines included; the Worker never
    /// logs tokens or secrets).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The Worker's structured log lines so far (edge/src/log.rs): every line of wrangler's
    /// output that is one JSON object with a `code`, parsed, in order.
    pub fn worker_log(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let start = line.find('{')?;
                let value: serde_json::Value = serde_json::from_str(line[start..].trim()).ok()?;
                value.get("code")?;
                Some(value)
            })
            .collect()
    }

    /// Waits (up to 10 s) until the Worker has written at least `n` structured lines, then a
    /// little longer so a line too many would show too, and returns them all.
    pub async fn wait_for_worker_log(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.worker_log().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.worker_log()
    }

    /// Everything wrangler printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_ready(&mut self, probe: &str) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(45);
        let mut healthy = 0;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "wrangler exited ({status}) before serving:\n{}",
                    self.log_tail(40)
                );
            }
            let probe = client
                .get(self.url(probe))
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            // wrangler dev answers its first request before its proxy to workerd has settled
            // (a request right after could be reset), so ready means three answers in a row
            // (any status: some tests start an edge that is meant to refuse).
            if probe.is_ok() {
                healthy += 1;
                if healthy >= 3 {
                    return Ok(());
                }
            } else {
                healthy = 0;
            }
            if Instant::now() > deadline {
                bail!("wrangler did not serve within 45 s:\n{}", self.log_tail(40));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process group of wrangler and everything it started (its pid).
    pub fn process_group(&self) -> u32 {
        self.child.id()
    }

    fn group(&self) -> String {
        format!("-{}", self.child.id())
    }

    fn signal_group(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([signal, "--", &self.group()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Edge {
    /// SIGTERM to the whole group (so workerd stops even if wrangler dies first), up to 5 s for
    /// every member to exit, then SIGKILL: no workerd is left behind.
    fn drop(&mut self) {
        let group = self.child.id();
        self.signal_group("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // Reap wrangler itself; its orphaned children are reaped by init, so exited
            // members may linger as zombies for a while and are not waited for.
            let _ = self.child.try_wait();
            if !group_has_live_members(group) {
                break;
            }
            if Instant::now() > deadline {
                self.signal_group("-KILL");
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
    }
}

/// Whether any process of group `pgid` is still running (not a zombie), from `/proc`.
pub fn group_has_live_members(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // "pid (comm) state ppid pgrp …"; comm may contain spaces or parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|f| f.parse::<u32>().ok());
        pgrp == Some(pgid) && state != Some("Z")
    })
}

/// A dotenv file readable only by us. Values are single-quoted (taken literally by dotenv);
/// a value that cannot be written that way is refused rather than mangled.
fn write_env_file(path: &Path, secrets: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .context("secrets env file")?;
    for (name, value) in secrets {
        if value.contains(['\'', '\n', '$']) {
            bail!("secret {name} contains a quote, newline or $, which a dotenv file would alter");
        }
        writeln!(file, "{name}='{value}'").context("secrets env file")?;
    }
    Ok(())
}
