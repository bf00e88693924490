//! A private `redis-server` for the suite, and the instruments read from it.
//!
//! The origin suite runs against its own server on a free port rather than the shared one:
//! nobody else's traffic lands in the command counts or the memory figures, and nothing of ours
//! lingers in a Redis others use. [`Monitor`] counts commands with `MONITOR`, which shows each
//! command a client sent (one round trip each) apart from the commands a Lua script ran inside
//! the server (`[0 lua]`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

pub use tollgate_tests::RedisServer;

/// A connection to the suite's private server.
pub async fn connect(server: &RedisServer) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    redis::Client::open(server.url())?
        .get_multiplexed_async_connection()
        .await
        .context("Failed to connect to the private redis-server")
}

/// One field of `INFO <section>`, parsed.
pub async fn info_field(
    conn: &mut redis::aio::MultiplexedConnection,
    section: &str,
    field: &str,
) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO").arg(section).query_async(conn).await?;
    info.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|v| v.strip_prefix(':')))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("INFO {section} has no numeric {field}"))
}

/// Number of keys in db 0.
pub async fn dbsize(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<u64> {
    Ok(redis::cmd("DBSIZE").query_async(conn).await?)
}

/// `MEMORY USAGE key SAMPLES 0` (exact for collections), 0 when the key is missing.
pub async fn memory_usage(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> anyhow::Result<u64> {
    let v: Option<u64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query_async(conn)
        .await?;
    Ok(v.unwrap_or(0))
}

/// One command seen by `MONITOR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Run by a Lua script inside the server, not sent by a client.
    pub from_script: bool,
    /// Upper-cased command name.
    pub command: String,
}

/// Commands seen in a window, split into client round trips and script-internal commands.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CommandCount {
    /// Commands clients sent: each is one network round trip (pipelining aside).
    pub round_trips: u64,
    /// Commands Lua scripts ran inside Redis.
    pub script_commands: u64,
    /// Every command by name; script-internal ones are prefixed `lua:`.
    pub by_command: BTreeMap<String, u64>,
}

impl CommandCount {
    pub fn of(seen: &[Seen]) -> Self {
        let mut c = Self::default();
        for s in seen {
            if s.from_script {
                c.script_commands += 1;
                *c.by_command
                    .entry(format!("lua:{}", s.command))
                    .or_default() += 1;
            } else {
                c.round_trips += 1;
                *c.by_command.entry(s.command.clone()).or_default() += 1;
            }
        }
        c
    }

    /// Whether any command walks the whole keyspace.
    pub fn uses_keyspace_scan(&self) -> bool {
        self.by_command.keys().any(|k| {
            let name = k.trim_start_matches("lua:");
            name == "KEYS" || name == "SCAN"
        })
    }
}

/// A `MONITOR` connection that records what the server executes between two markers.
#[derive(Debug)]
pub struct Monitor {
    lines: tokio::io::Lines<BufReader<TcpStream>>,
    marker: redis::aio::MultiplexedConnection,
    seq: u64,
}

impl Monitor {
    pub async fn connect(server: &RedisServer) -> anyhow::Result<Self> {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port))
            .await
            .context("Failed to connect the MONITOR client")?;
        stream.write_all(b"MONITOR\r\n").await?;
        let mut lines = BufReader::new(stream).lines();
        let first = lines.next_line().await?.unwrap_or_default();
        if first != "+OK" {
            bail!("MONITOR answered {first:?}");
        }
        Ok(Self {
            lines,
            marker: connect(server).await?,
            seq: 0,
        })
    }

    /// Runs `work` and returns its output with every command executed meanwhile (other than
    /// the markers). Nothing else must talk to this server while it runs.
    pub async fn capture<T>(
        &mut self,
        work: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<(T, Vec<Seen>)> {
        let start = self.mark().await?;
        self.skip_to(&start).await?;
        let out = work.await?;
        let end = self.mark().await?;
        let mut seen = Vec::new();
        loop {
            let line = self.next_line().await?;
            if line.contains(&end) {
                return Ok((out, seen));
            }
            seen.extend(parse_monitor_line(&line));
        }
    }

    async fn next_line(&mut self) -> anyhow::Result<String> {
        tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .context("MONITOR went quiet")??
            .context("MONITOR connection closed")
    }

    async fn mark(&mut self) -> anyhow::Result<String> {
        self.seq += 1;
        let marker = format!("tollgate-bench-marker-{}-{}", std::process::id(), self.seq);
        let _: String = redis::cmd("ECHO")
            .arg(&marker)
            .query_async(&mut self.marker)
            .await?;
        Ok(marker)
    }

    async fn skip_to(&mut self, marker: &str) -> anyhow::Result<()> {
        while !self.next_line().await?.contains(marker) {}
        Ok(())
    }
}

/// `+1764212345.123456 [0 127.0.0.1:40000] "MGET" "k1" "k2"`, or `[0 lua]` for a script's.
fn parse_monitor_line(line: &str) -> Option<Seen> {
    let open = line.find('[')?;
    let close = open + line[open..].find(']')?;
    let source = line[open + 1..close].split_whitespace().nth(1)?;
    let rest = &line[close + 1..];
    let q1 = rest.find('"')?;
    let q2 = q1 + 1 + rest[q1 + 1..].find('"')?;
    Some(Seen {
        from_script: source == "lua",
        command: rest[q1 + 1..q2].to_ascii_uppercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_lines_tell_clients_from_scripts() {
        let c = parse_monitor_line(r#"+1764212345.123456 [0 127.0.0.1:40000] "mget" "a" "b""#);
        assert_eq!(
            c,
            Some(Seen {
                from_script: false,
                command: "MGET".into()
            })
        );
        let s = parse_monitor_line(r#"+1764212345.123456 [0 lua] "DEL" "x""#);
        assert_eq!(
            s,
            Some(Seen {
                from_script: true,
                command: "DEL".into()
            })
        );
    }
}
