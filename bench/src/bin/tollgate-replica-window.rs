//! `tollgate-replica-window`: how long a revoked token is still accepted when the edge reads
//! revocation state from a replica (an Upstash read region), measured, not assumed.
//!
//! A private primary redis-server and a real replica (`--replicaof`) joined by a
//! [`DelayProxy`] that delays the link by 0, 50, 100 and 200 ms each way; the REST bridge reads
//! from the replica (`BRIDGE_READ_REDIS_URL`), as the edge's read path does through Upstash.
//! Per sample: log in at the origin, wait until the read path accepts the token, log out, then
//! ask the read path — the edge's very pipeline (`HMGET tg:{user} j:{jti} v`) — again
//! and again until it refuses. The window is from the logout's answer to the first refusal.
//!
//! The same is measured with the origin waiting for the replica (`REDIS_WAIT_REPLICAS=1`), whose
//! cost is the logout's latency, and the strict route's cost is measured as the read path's
//! latency when the primary sits behind the same delay (a single-region database far from the
//! edge) against the nearby replica's.
//!
//! Run by `scripts/bench-replicas.sh`; prints a Markdown table (BENCHMARKS.md, "Revocation with
//! replicas").

use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use clap::Parser;
use tollgate_shared::upstash::{parse_validation_replies, validation_pipeline};
use tollgate_shared::{AccessClaims, KeySchema};
use tollgate_testkit::ApiClient;
use tollgate_tests::{BridgeHandle, DelayProxy, Origin, RedisServer};

#[derive(Debug, Parser)]
#[command(name = "tollgate-replica-window")]
struct Cli {
    /// Logouts measured per delay without waiting for the replica.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Logouts measured per delay with `REDIS_WAIT_REPLICAS=1`.
    #[arg(long, default_value_t = 30)]
    wait_samples: usize,
    /// One-way delays between primary and replica, in milliseconds.
    #[arg(long, value_delimiter = ',', default_value = "0,50,100,200")]
    delays: Vec<u64>,
}

/// The read path as the edge uses it: one `/pipeline` of the validation lookup.
struct ReadPath {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl ReadPath {
    /// Whether the read path still accepts the token (its jti record and version are there).
    async fn accepts(&self, keys: &KeySchema, claims: &AccessClaims) -> anyhow::Result<bool> {
        let body = self
            .client
            .post(format!("{}/pipeline", self.url))
            .bearer_auth(&self.token)
            .json(&validation_pipeline(keys, claims))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let lookup = parse_validation_replies(&body).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(lookup.jti_record.is_some() && lookup.user_version.is_some())
    }
}

fn claims_of(token: &str) -> anyhow::Result<AccessClaims> {
    let payload = token.split('.').nth(1).context("no payload")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// One sample's figures.
struct Sample {
    /// Logout request to answer.
    logout: Duration,
    /// Logout answer to the read path's first refusal (zero if the first probe refused).
    window: Duration,
}

async fn sample(
    origin: &ApiClient,
    email: &str,
    read: &ReadPath,
    keys: &KeySchema,
) -> anyhow::Result<Sample> {
    let access = origin.login(email, "bench").await.access;
    let claims = claims_of(&access)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !read.accepts(keys, &claims).await? {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the token never reached the read path"
        );
    }
    let sent = Instant::now();
    let r = origin.post_auth("/api/users/logout", &access).await;
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    let answered = Instant::now();
    anyhow::ensure!(status.is_success(), "logout: {status}: {body}");
    let mut first = true;
    loop {
        let probe = Instant::now();
        if !read.accepts(keys, &claims).await? {
            // The first refusing probe was sent at `probe`: the token was accepted until
            // somewhere within that probe's round trip (a fraction of a millisecond here).
            return Ok(Sample {
                logout: answered - sent,
                window: if first {
                    Duration::ZERO
                } else {
                    probe - answered
                },
            });
        }
        first = false;
        anyhow::ensure!(
            answered.elapsed() < Duration::from_secs(10),
            "the logout never reached the read path"
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(values: &mut [Duration]) -> String {
    values.sort();
    format!(
        "{:.1} / {:.1} / {:.1}",
        ms(percentile(values, 50.0)),
        ms(percentile(values, 99.0)),
        ms(values.last().copied().unwrap_or_default())
    )
}

/// The read path's latency: `n` validation lookups one after another, p50.
async fn read_latency(
    read: &ReadPath,
    keys: &KeySchema,
    claims: &AccessClaims,
    n: usize,
) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        read.accepts(keys, claims).await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(percentile(&times, 50.0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let primary = RedisServer::try_start()?;
    let link = DelayProxy::start(primary.port, Duration::ZERO).await?;
    let replica = RedisServer::start_replica_of(link.port).await?;
    // The read region: a bridge whose reads go to the replica.
    let region = BridgeHandle::start_reading(&primary.url(), Some(&replica.url())).await?;
    // The strict database: a bridge on the primary, reached over a link as long as the
    // replica's (a single-region database far from the edge).
    let strict = BridgeHandle::start(&primary.url()).await?;
    let strict_link = DelayProxy::start(strict.addr.port(), Duration::ZERO).await?;
    let dir = tempfile::tempdir()?;
    let prefix = "window:";
    let plain = Origin::start(dir.path(), prefix, &primary.url(), &[]).await?;
    let waiting = Origin::start(
        dir.path(),
        prefix,
        &primary.url(),
        &[
            ("REDIS_WAIT_REPLICAS", "1".into()),
            ("REDIS_WAIT_TIMEOUT_MS", "2000".into()),
        ],
    )
    .await?;
    let keys = KeySchema::new(prefix);
    let http = reqwest::Client::new();
    let (plain, waiting) = (
        ApiClient::new(plain.url(""), http.clone()),
        ApiClient::new(waiting.url(""), http.clone()),
    );
    let read = ReadPath {
        client: http.clone(),
        url: region.url(),
        token: region.edge_token().to_owned(),
    };
    let strict_read = ReadPath {
        client: http.clone(),
        url: format!("http://127.0.0.1:{}", strict_link.port),
        token: strict.edge_token().to_owned(),
    };
    let email = plain.new_user().await;

    println!("| one-way delay | window without WAIT p50 / p99 / max (ms) | logouts accepted after answering | logout p50 without / with WAIT (ms) | window with WAIT max (ms) | read path p50: replica / strict (ms) |");
    println!("|---|---|---|---|---|---|");
    for delay in &cli.delays {
        let delay = Duration::from_millis(*delay);
        link.set_delay(delay);
        strict_link.set_delay(delay);
        // Let the stream drain at the new delay before measuring.
        tokio::time::sleep(delay * 2 + Duration::from_millis(50)).await;
        let mut windows = Vec::new();
        let mut logouts = Vec::new();
        for _ in 0..cli.samples {
            let s = sample(&plain, &email, &read, &keys).await?;
            windows.push(s.window);
            logouts.push(s.logout);
        }
        let open = windows.iter().filter(|w| !w.is_zero()).count();
        let mut wait_windows = Vec::new();
        let mut wait_logouts = Vec::new();
        for _ in 0..cli.wait_samples {
            let s = sample(&waiting, &email, &read, &keys).await?;
            wait_windows.push(s.window);
            wait_logouts.push(s.logout);
        }
        // Read-path latency with a live token.
        let claims = claims_of(&plain.login(&email, "bench").await.access)?;
        let replica_read = read_latency(&read, &keys, &claims, 50).await?;
        let strict_read_p50 = read_latency(&strict_read, &keys, &claims, 50).await?;
        logouts.sort();
        wait_logouts.sort();
        wait_windows.sort();
        println!(
            "| {} ms | {} | {open}/{} | {:.1} / {:.1} | {:.1} | {:.2} / {:.2} |",
            delay.as_millis(),
            summary(&mut windows),
            cli.samples,
            ms(percentile(&logouts, 50.0)),
            ms(percentile(&wait_logouts, 50.0)),
            ms(wait_windows.last().copied().unwrap_or_default()),
            ms(replica_read),
            ms(strict_read_p50),
        );
    }
    println!(
        "\n{} logouts per delay without WAIT, {} with; timed on loopback, {} cores, load {}",
        cli.samples,
        cli.wait_samples,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?")
    );
    Ok(())
}
