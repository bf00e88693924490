//! A real Redis Cluster on loopback, for the tests that must see what a cluster does and a single
//! server does not: keys on different masters, `CROSSSLOT`, `MOVED`, a master going away and
//! coming back, a replica taking over.
//!
//! The nodes are `redis-server --cluster-enabled yes` children (as [`RedisServer`](crate::RedisServer),
//! nothing on disk but each node's `nodes.conf`, in a temporary directory), joined by
//! `redis-cli --cluster create`. Every wait polls the nodes themselves, so a caller never sees a
//! half-made cluster or a half-finished failover.
//!
//! Two settings differ from Redis's defaults, on purpose:
//! - `cluster-node-timeout 1000`: a dead master is noticed, and its replica promoted, within
//!   about two seconds instead of fifteen.
//! - `cluster-require-full-coverage no`: while one master is down only its slots fail; with the
//!   default the whole cluster would answer `CLUSTERDOWN`, and no test could check that the other
//!   slots keep working.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use redis::Value;

/// Redis Cluster's slot count.
const SLOTS: usize = 16_384;

/// How long one question to one node may take (loopback: a slow answer means a stuck node).
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a wait for the cluster to settle may take: a failover is ~2–3 s with the node
/// timeout above, so this only bounds a cluster that will never settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// A Redis Cluster of `masters` shards, each a master and its replicas; every node is killed,
/// and the directory removed, on drop.
///
/// Shards are numbered by their slots (shard 0 holds slot 0). "Master `i`" is shard `i`'s
/// current master: after [`Self::failover`] it is the promoted replica.
#[derive(Debug)]
pub struct RedisCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
    /// For each shard, the index in `nodes` of its master.
    masters: Vec<usize>,
}

#[derive(Debug)]
struct Node {
    port: u16,
    /// The cluster bus port, chosen like the data port: Redis's default (port + 10 000) would
    /// land in the ephemeral range, where any socket may already hold it.
    bus_port: u16,
    /// The shard the node belongs to (filled in once the cluster is made).
    shard: usize,
    child: Option<Child>,
}

impl RedisCluster {
    /// Starts `masters` (at least 3, as `redis-cli --cluster create` requires) masters with
    /// `replicas_per_master` replicas each and returns once every node reports `cluster_state:ok`
    /// with all 16 384 slots served and every replica in sync.
    pub async fn start(masters: usize, replicas_per_master: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(masters >= 3, "a Redis Cluster needs at least 3 masters");
        let dir = std::env::temp_dir().join(format!("tollgate-cluster-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("Failed to create {}", dir.display()))?;
        let mut cluster = Self {
            dir,
            nodes: Vec::new(),
            masters: Vec::new(),
        };
        let mut taken = HashSet::new();
        for _ in 0..masters * (1 + replicas_per_master) {
            let port = fresh_port(&mut taken)?;
            let bus_port = fresh_port(&mut taken)?;
            cluster.nodes.push(Node {
                port,
                bus_port,
                shard: 0,
                child: None,
            });
        }
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i)?;
        }
        for node in &cluster.nodes {
            wait_listening(node.port).await?;
        }
        cluster
            .create(replicas_per_master)
            .await
            .context("redis-cli --cluster create failed")?;
        cluster.read_shards(masters).await?;
        cluster.settle().await?;
        Ok(cluster)
    }

    /// The current masters' URLs (`redis://127.0.0.1:PORT`), by shard: seeds for a cluster client.
    pub fn urls(&self) -> Vec<String> {
        self.masters
            .iter()
            .map(|&n| node_url(self.nodes[n].port))
            .collect()
    }

    /// The current masters as one URL, `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,…`, the form
    /// the origin and the bridge take in `REDIS_URL`.
    pub fn cluster_url(&self) -> String {
        let seeds: Vec<String> = self
            .masters
            .iter()
            .map(|&n| format!("127.0.0.1:{}", self.nodes[n].port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// Which master (shard) serves `key`'s slot, as the cluster itself answers: `CLUSTER KEYSLOT`,
    /// then `CLUSTER SLOTS`, both asked of a running node.
    pub async fn master_for_key(&self, key: &str) -> anyhow::Result<usize> {
        let port = self.running_port()?;
        let slot: i64 = ask(port, redis::cmd("CLUSTER").arg("KEYSLOT").arg(key)).await?;
        let ranges: Value = ask(port, redis::cmd("CLUSTER").arg("SLOTS")).await?;
        let owner = slot_owner(&ranges, slot).context("no node serves the slot")?;
        self.nodes
            .iter()
            .find(|node| node.port == owner)
            .map(|node| node.shard)
            .with_context(|| format!("slot {slot} is served by unknown port {owner}"))
    }

    /// Kills shard `i`'s master at once (`SIGKILL`, as a crash). Until [`Self::restart_master`]
    /// its slots fail; the other shards keep serving.
    pub fn kill_master(&mut self, i: usize) {
        let node = self.masters[i];
        self.nodes[node].stop();
    }

    /// Starts the killed nodes of shard `i` again, on their ports and with their `nodes.conf`,
    /// so they rejoin with their slots (empty: nothing was persisted), and waits until the
    /// cluster is whole again. A master killed by [`Self::failover`] rejoins as a replica.
    pub async fn restart_master(&mut self, i: usize) -> anyhow::Result<()> {
        let stopped: Vec<usize> = (0..self.nodes.len())
            .filter(|&n| self.nodes[n].shard == i && self.nodes[n].child.is_none())
            .collect();
        for &n in &stopped {
            self.spawn(n)?;
        }
        for &n in &stopped {
            wait_listening(self.nodes[n].port).await?;
        }
        self.settle().await
    }

    /// Kills shard `i`'s master and waits until one of its replicas has been promoted and the
    /// cluster is whole again; answers the new master's URL. Needs a replica per master.
    pub async fn failover(&mut self, i: usize) -> anyhow::Result<String> {
        let old = self.masters[i];
        anyhow::ensure!(
            self.nodes
                .iter()
                .enumerate()
                .any(|(n, node)| n != old && node.shard == i && node.child.is_some()),
            "shard {i} has no running replica to promote"
        );
        self.kill_master(i);
        self.settle()
            .await
            .with_context(|| format!("no replica of shard {i} took over"))?;
        Ok(node_url(self.nodes[self.masters[i]].port))
    }

    /// Waits until the replicas of the master serving `key` hold every write that master took
    /// so far, whoever made it. `WAIT` counts only the calling connection's own writes, so this
    /// writes a marker in `key`'s slot on a connection of its own, waits for that (the
    /// replication stream is in order, so everything before the marker arrived too), and
    /// deletes it.
    pub async fn replicated(&self, key: &str) -> anyhow::Result<()> {
        let shard = self.master_for_key(key).await?;
        let replicas = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(n, node)| node.shard == shard && *n != self.masters[shard])
            .filter(|(_, node)| node.child.is_some())
            .count();
        let tag = hash_tag(key);
        let mut conn = redis::Client::open(node_url(self.nodes[self.masters[shard]].port))?
            .get_multiplexed_async_connection()
            .await?;
        let marker = format!("{{{tag}}}:testkit-replicated");
        let _: () = redis::cmd("SET")
            .arg(&marker)
            .arg(1)
            .query_async(&mut conn)
            .await?;
        let acked: usize = redis::cmd("WAIT")
            .arg(replicas)
            .arg(2000)
            .query_async(&mut conn)
            .await?;
        // Gone again, so key counts the caller takes are its own.
        let _: () = redis::cmd("DEL")
            .arg(&marker)
            .query_async(&mut conn)
            .await?;
        anyhow::ensure!(
            acked >= replicas,
            "{acked} of shard {shard}'s {replicas} replicas caught up within 2 s"
        );
        Ok(())
    }

    /// Empties every master (replicas follow).
    pub async fn flushall(&self) -> anyhow::Result<()> {
        for &n in &self.masters {
            let _: () = ask(self.nodes[n].port, &redis::cmd("FLUSHALL")).await?;
        }
        Ok(())
    }

    fn spawn(&mut self, n: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[n];
        node.stop();
        let conf = self.dir.join(format!("nodes-{}.conf", node.port));
        let log = self.dir.join(format!("redis-{}.log", node.port));
        let child = Command::new("redis-server")
            .args(["--port", &node.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--cluster-enabled", "yes"])
            .arg("--cluster-config-file")
            .arg(&conf)
            .args(["--cluster-port", &node.bus_port.to_string()])
            .args(["--cluster-node-timeout", "1000"])
            .args(["--cluster-require-full-coverage", "no"])
            // A replica may always stand for election, however long its link was down.
            .args(["--cluster-replica-validity-factor", "0"])
            // Replicas sync at once, straight from memory: no 5 s delay, nothing on disk.
            .args([
                "--repl-diskless-sync",
                "yes",
                "--repl-diskless-sync-delay",
                "0",
            ])
            .args(["--repl-diskless-load", "on-empty-db"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("Failed to start redis-server (is it on PATH?)")?;
        node.child = Some(child);
        Ok(())
    }

    async fn create(&self, replicas_per_master: usize) -> anyhow::Result<()> {
        let output = tokio::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(
                self.nodes
                    .iter()
                    .map(|node| format!("127.0.0.1:{}", node.port)),
            )
            .args(["--cluster-replicas", &replicas_per_master.to_string()])
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .output()
            .await
            .context("Failed to run redis-cli (is it on PATH? Debian: redis-tools)")?;
        anyhow::ensure!(
            output.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// Numbers the shards by their first slot and files each replica under its master's shard,
    /// from each node's own line of `CLUSTER NODES` (what it knows of itself is never stale).
    async fn read_shards(&mut self, masters: usize) -> anyhow::Result<()> {
        let mut selves = Vec::new();
        for node in &self.nodes {
            let nodes: String = ask(node.port, redis::cmd("CLUSTER").arg("NODES")).await?;
            let me = nodes
                .lines()
                .filter_map(NodeLine::parse)
                .find(|line| line.myself)
                .with_context(|| format!("port {}: no myself line", node.port))?;
            selves.push(me);
        }
        let mut primaries: Vec<(u16, usize)> = selves
            .iter()
            .enumerate()
            .filter_map(|(n, me)| me.first_slot.map(|slot| (slot, n)))
            .collect();
        primaries.sort_unstable();
        anyhow::ensure!(
            primaries.len() == masters,
            "{} nodes hold slots, {masters} expected",
            primaries.len()
        );
        for (shard, &(_, n)) in primaries.iter().enumerate() {
            self.nodes[n].shard = shard;
        }
        for (n, me) in selves.iter().enumerate() {
            if me.first_slot.is_some() {
                continue;
            }
            let master = me
                .master_id
                .as_deref()
                .with_context(|| format!("port {}: neither master nor replica", me.port))?;
            let shard = primaries
                .iter()
                .position(|&(_, m)| selves[m].id == master)
                .with_context(|| format!("port {}: replica of an unknown master", me.port))?;
            self.nodes[n].shard = shard;
        }
        self.masters = primaries.into_iter().map(|(_, n)| n).collect();
        Ok(())
    }

    /// Waits until every running node reports `cluster_state:ok` with all slots served, every
    /// shard has exactly one running master (recorded as its master), and every running replica
    /// is in sync with it.
    async fn settle(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let why = match self.whole().await {
                Ok(masters) => {
                    self.masters = masters;
                    return Ok(());
                }
                Err(why) => why,
            };
            if Instant::now() > deadline {
                anyhow::bail!(
                    "cluster not whole after {SETTLE_TIMEOUT:?}: {why:#}\n{}",
                    self.log_tails()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Each shard's running master if the cluster is whole, else what is still missing.
    async fn whole(&self) -> anyhow::Result<Vec<usize>> {
        let mut masters = vec![None; self.masters.len()];
        for (n, node) in self.nodes.iter().enumerate() {
            if node.child.is_none() {
                continue;
            }
            let info: String = ask(node.port, redis::cmd("CLUSTER").arg("INFO")).await?;
            let field = |name: &str| {
                info.lines()
                    .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                    .map(str::trim)
                    .unwrap_or_default()
                    .to_owned()
            };
            let all_slots = SLOTS.to_string();
            anyhow::ensure!(
                field("cluster_state") == "ok" && field("cluster_slots_ok") == all_slots,
                "port {}: state {}, {} slots ok",
                node.port,
                field("cluster_state"),
                field("cluster_slots_ok")
            );
            let replication: String = ask(node.port, redis::cmd("INFO").arg("replication")).await?;
            if replication.contains("role:master") {
                anyhow::ensure!(
                    masters[node.shard].replace(n).is_none(),
                    "shard {} has two masters",
                    node.shard
                );
            } else {
                anyhow::ensure!(
                    replication.contains("master_link_status:up")
                        && !replication.contains("master_sync_in_progress:1"),
                    "replica on port {} not in sync",
                    node.port
                );
            }
        }
        masters
            .into_iter()
            .enumerate()
            .map(|(shard, n)| n.with_context(|| format!("shard {shard} has no running master")))
            .collect()
    }

    /// The last lines of every node's log: the directory goes with the cluster on drop, so a
    /// failure carries them.
    fn log_tails(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let log = self.dir.join(format!("redis-{}.log", node.port));
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- port {}:\n", node.port));
            for line in &lines[lines.len().saturating_sub(8)..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    fn running_port(&self) -> anyhow::Result<u16> {
        self.nodes
            .iter()
            .find(|node| node.child.is_some())
            .map(|node| node.port)
            .context("no node of the cluster is running")
    }
}

impl Node {
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The fields of one `CLUSTER NODES` line this harness reads.
#[derive(Debug)]
struct NodeLine {
    id: String,
    port: u16,
    myself: bool,
    /// For a replica, its master's id.
    master_id: Option<String>,
    first_slot: Option<u16>,
}

impl NodeLine {
    /// `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>…`
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (id, addr, flags, master) = (
            fields.first()?,
            fields.get(1)?,
            fields.get(2)?,
            fields.get(3)?,
        );
        let port = addr.split('@').next()?.rsplit(':').next()?.parse().ok()?;
        let first_slot = fields
            .iter()
            .skip(8)
            // Slots being migrated print as `[slot->-id]`; a fresh cluster has none.
            .filter(|slot| !slot.starts_with('['))
            .filter_map(|slot| slot.split('-').next()?.parse().ok())
            .min();
        Some(Self {
            id: (*id).to_owned(),
            port,
            myself: flags.split(',').any(|flag| flag == "myself"),
            master_id: (*master != "-").then(|| (*master).to_owned()),
            first_slot,
        })
    }
}

/// The port of the master serving `slot`, from a `CLUSTER SLOTS` reply
/// (`[[start, end, [ip, port, id], replica…], …]`).
fn slot_owner(ranges: &Value, slot: i64) -> Option<u16> {
    let Value::Array(ranges) = ranges else {
        return None;
    };
    ranges.iter().find_map(|range| {
        let Value::Array(fields) = range else {
            return None;
        };
        match fields.as_slice() {
            [Value::Int(start), Value::Int(end), Value::Array(master), ..]
                if (*start..=*end).contains(&slot) =>
            {
                match master.get(1) {
                    Some(Value::Int(port)) => u16::try_from(*port).ok(),
                    _ => None,
                }
            }
            _ => None,
        }
    })
}

/// A plain client for `url`: the node it names, or a cluster URL's first node (for the tests
/// that only need one node's view; those that inspect a cluster bring a cluster client).
pub fn node_client(url: &str) -> redis::Client {
    let node = tollgate_shared::config::cluster_url_seeds(url)
        .and_then(|nodes| nodes.ok()?.into_iter().next())
        .unwrap_or_else(|| url.to_owned());
    redis::Client::open(node).expect("redis client")
}

/// The part of `key` Redis Cluster hashes: the text between the first `{` and the next `}` when
/// that is not empty, else the whole key.
fn hash_tag(key: &str) -> &str {
    key.split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .map(|(tag, _)| tag)
        .filter(|tag| !tag.is_empty())
        .unwrap_or(key)
}

fn node_url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}")
}

/// A child port no other node of this cluster took (each call binds and releases, so two calls
/// may draw the same one).
fn fresh_port(taken: &mut HashSet<u16>) -> anyhow::Result<u16> {
    for _ in 0..20 {
        let port = crate::ports::child_port()?;
        if taken.insert(port) {
            return Ok(port);
        }
    }
    anyhow::bail!("no fresh port for a cluster node")
}

async fn wait_listening(port: u16) -> anyhow::Result<()> {
    for _ in 0..250 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("redis-server on port {port} did not start within 5 s")
}

/// One command to one node over a fresh connection, bounded by [`ASK_TIMEOUT`].
async fn ask<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> anyhow::Result<T> {
    let client = redis::Client::open(node_url(port))?;
    let call = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        cmd.query_async::<T>(&mut conn).await
    };
    tokio::time::timeout(ASK_TIMEOUT, call)
        .await
        .with_context(|| format!("port {port}: no answer within {ASK_TIMEOUT:?}"))?
        .with_context(|| format!("port {port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_tag_is_what_redis_hashes() {
        assert_eq!(hash_tag("tg:{u1}"), "u1");
        assert_eq!(hash_tag("tg:{u1}:g:ab"), "u1");
        assert_eq!(hash_tag("{}x"), "{}x");
        assert_eq!(hash_tag("plain"), "plain");
        assert_eq!(hash_tag("a{b"), "a{b");
    }

    #[test]
    fn node_lines_give_id_port_role_and_first_slot() {
        let master = NodeLine::parse(
            "07c3 127.0.0.1:30004@31004 myself,master - 0 1426238317239 4 connected 5461-10922 12",
        )
        .expect("parses");
        assert_eq!(master.id, "07c3");
        assert_eq!(master.port, 30004);
        assert!(master.myself);
        assert_eq!(master.master_id, None);
        assert_eq!(master.first_slot, Some(12));
        let replica =
            NodeLine::parse("e7d1 127.0.0.1:30005@31005 slave 07c3 0 1426238316232 5 connected")
                .expect("parses");
        assert!(!replica.myself);
        assert_eq!(replica.master_id.as_deref(), Some("07c3"));
        assert_eq!(replica.first_slot, None);
        assert!(NodeLine::parse("").is_none());
    }

    #[test]
    fn slot_owner_reads_cluster_slots() {
        let range = |start, end, port| {
            Value::Array(vec![
                Value::Int(start),
                Value::Int(end),
                Value::Array(vec![
                    Value::BulkString(b"127.0.0.1".to_vec()),
                    Value::Int(port),
                    Value::BulkString(b"id".to_vec()),
                ]),
            ])
        };
        let slots = Value::Array(vec![range(0, 5460, 1), range(5461, 16383, 2)]);
        assert_eq!(slot_owner(&slots, 0), Some(1));
        assert_eq!(slot_owner(&slots, 5461), Some(2));
        assert_eq!(slot_owner(&slots, 16384), None);
    }
}
