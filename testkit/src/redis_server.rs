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
    /// More `redis-server` arguments (`--replicaof …` for a replica).
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts one on a free port; panics if `redis-server` is missing or does not come up.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Starts one on a free port.
    pub fn try_start() -> anyhow::Result<Self> {
        Self::start_with(Vec::new())
    }

    /// A replica of the Redis on `127.0.0.1:primary_port` (directly, or through a
    /// `tollgate_tests::DelayProxy`'s port), read-only as replicas are by default; waits until its link
    /// to the primary is up and the first sync is done.
    pub async fn start_replica_of(primary_port: u16) -> anyhow::Result<Self> {
        let replica = Self::start_with(vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary_port.to_string(),
            // Load the primary's snapshot straight into memory: nothing lands on disk.
            "--repl-diskless-load".into(),
            "on-empty-db".into(),
        ])?;
        let client = redis::Client::open(replica.url())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        for _ in 0..500 {
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query_async(&mut conn)
                .await?;
            if info.contains("master_link_status:up") && !info.contains("master_sync_in_progress:1")
            {
                return Ok(replica);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!("replica on port {} never synced", replica.port)
    }

    fn start_with(extra: Vec<String>) -> anyhow::Result<Self> {
        let port = crate::ports::child_port()?;
        let mut r = Self {
            port,
            child: None,
            extra,
        };
        r.try_restart()?;
        Ok(r)
    }

    /// Freezes the process (`SIGSTOP`): it keeps its connections but answers nothing, as a
    /// replica stuck in a long pause or behind a broken link does.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// Lets a [`Self::pause`]d process run again (`SIGCONT`).
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("redis-server is not running")?;
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .context("Failed to run kill")?;
        anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
        Ok(())
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
            .args(&self.extra)
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
