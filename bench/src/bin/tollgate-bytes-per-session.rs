//! `tollgate-bytes-per-session`: what one active session costs in Redis, for the seed's layout
//! and for Tollgate's, side by side on one private redis-server (issue 13 §4).
//!
//! Both get the same users (one device each, device name `laptop`): the seed's layout written
//! as the seed shows it (`token:jti:{jti}` and `refresh:{tokenId}` as its JSON examples,
//! `tokens:user:{userId}` a set, with the seed's TTLs), Tollgate's written by the origin's own
//! login path (`origin_suite::session_growth`, the origin suite's own memory figure: the
//! database row, then the one Lua script). The figure is the growth of `used_memory` over the
//! sessions, after a warm-up that loads the scripts, divided by the session count.
//!
//! Run by `scripts/bytes-per-session.sh`; prints the Markdown table BENCHMARKS.md quotes.

use clap::Parser;
use serde_json::json;
use tollgate_bench::origin_suite::session_growth;
use tollgate_bench::redis_probe::{self, dbsize, RedisServer};
use tollgate_bench::target::{BenchOrigin, Options};

#[derive(Debug, Parser)]
#[command(name = "tollgate-bytes-per-session")]
struct Cli {
    /// Users, one device session each.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
}

/// One layout's figures.
struct Row {
    layout: &'static str,
    keys: f64,
    bytes: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let n = cli.users;
    anyhow::ensure!(n > 0, "--users must be above 0");
    let redis = RedisServer::try_start()?;
    let mut conn = redis_probe::connect(&redis).await?;

    let before = used(&mut conn).await?;
    let keys_before = dbsize(&mut conn).await?;
    for _ in 0..n {
        seed_session(&mut conn).await?;
    }
    let seed = Row {
        layout: "the seed's (`token:jti:`, `tokens:user:`, `refresh:`; JSON values)",
        keys: (dbsize(&mut conn).await? - keys_before) as f64 / n as f64,
        bytes: used(&mut conn).await?.saturating_sub(before) as f64 / n as f64,
    };
    redis::cmd("FLUSHALL").exec_async(&mut conn).await?;

    let origin = BenchOrigin::start(&Options {
        redis_url: redis.url(),
        database_url: None,
    })
    .await?;
    let growth = session_growth(&origin, &mut conn, n as u64).await?;
    let ours = Row {
        layout: "Tollgate's (`tg:{userId}` hash)",
        keys: growth.keys,
        bytes: growth.bytes,
    };

    println!("| layout ({n} users, one device each) | keys per session | `used_memory` per session | of the seed's |");
    println!("|---|---:|---:|---:|");
    for row in [&seed, &ours] {
        println!(
            "| {} | {:.2} | {:.0} B | {:.0}% |",
            row.layout,
            row.keys,
            row.bytes,
            100.0 * row.bytes / seed.bytes
        );
    }
    Ok(())
}

/// One session in the seed's layout, its values as the seed's examples show them.
async fn seed_session(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<()> {
    let id = || uuid::Uuid::new_v4().to_string();
    let (user, jti, token) = (id(), id(), id());
    let now = "2026-12-02T10:00:00.000Z";
    let record = json!({
        "userId": user,
        "tokenVersion": 1,
        "deviceInfo": {"device_name": "laptop"},
        "createdAt": now,
    });
    let status = json!({"userId": user, "isRevoked": false, "updatedAt": now});
    redis::pipe()
        .set_ex(format!("token:jti:{jti}"), record.to_string(), 900)
        .ignore()
        .sadd(format!("tokens:user:{user}"), &jti)
        .ignore()
        .set_ex(format!("refresh:{token}"), status.to_string(), 2_592_000)
        .ignore()
        .exec_async(conn)
        .await?;
    Ok(())
}

async fn used(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<u64> {
    redis_probe::info_field(conn, "memory", "used_memory").await
}
