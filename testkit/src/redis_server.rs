//! A redis-server of a test's own, on a free port, for tests that stop, restart or flush Redis
//! without touching the one every other test shares (and for the benchmarks' exact counts).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;

/// A private redis-server that keeps nothing on disk; killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port; panics if `redis-server` is missing or does not come up.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Starts one on a free port.
    pub fn try_start() -> anyhow::Result<Self> {
        let port = crate::ports::child_port()?;
        let mut r = Self { port, child: None };
        r.try_restart()?;
        Ok(r)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs (for CPU accounting).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops it if running and starts it again, empty, on the same port; panics on failure.
    pub fn restart(&mut self) {
        self.try_restart().unwrap_or_else(|e| panic!("{e:#}"));
    }

    fn try_restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("Failed to start redis-server (is it on PATH?)")?;
        self.child = Some(child);
        for _ in 0..250 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        anyhow::bail!(
            "redis-server on port {} did not start within 5 s",
            self.port
        )
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
