//! The cluster harness against what Redis Cluster itself answers: keys spread over masters,
//! `CROSSSLOT` and `MOVED`, a master killed and restarted, a replica promoted.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Value};
use tollgate_testkit::RedisCluster;

async fn connect(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

/// Two keys owned by different masters: `(key, its master)` each.
async fn keys_on_two_masters(cluster: &RedisCluster) -> [(String, usize); 2] {
    let first = (
        "user:0".to_owned(),
        cluster.master_for_key("user:0").await.expect("slot"),
    );
    for i in 1..100 {
        let key = format!("user:{i}");
        let master = cluster.master_for_key(&key).await.expect("slot");
        if master != first.1 {
            return [first, (key, master)];
        }
    }
    panic!("100 keys all on master {}", first.1)
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_land_on_different_masters_and_cross_slot_commands_are_refused() {
    let started = Instant::now();
    let cluster = RedisCluster::start(3, 0).await.expect("cluster starts");
    let took = started.elapsed();
    println!("3-master cluster ready in {took:?}");
    assert!(took < Duration::from_secs(10), "startup took {took:?}");
    assert_eq!(cluster.urls().len(), 3);
    let seeds: Vec<String> = cluster
        .urls()
        .iter()
        .map(|url| url.trim_start_matches("redis://").to_owned())
        .collect();
    assert_eq!(
        cluster.cluster_url(),
        format!("redis+cluster://{}", seeds.join(","))
    );

    let mut owners = std::collections::BTreeSet::new();
    for i in 0..60 {
        owners.insert(
            cluster
                .master_for_key(&format!("k{i}"))
                .await
                .expect("slot"),
        );
    }
    assert_eq!(owners.len(), 3, "60 keys spread over every master");

    let [(a, master_a), (b, master_b)] = keys_on_two_masters(&cluster).await;
    let mut on_a = connect(&cluster.urls()[master_a]).await;
    let _: () = redis::cmd("SET")
        .arg(&a)
        .arg("1")
        .query_async(&mut on_a)
        .await
        .expect("its own master takes the key");
    let cross: RedisResult<Value> = redis::cmd("MGET")
        .arg(&a)
        .arg(&b)
        .query_async(&mut on_a)
        .await;
    let error = cross.expect_err("keys of two slots");
    assert_eq!(error.code(), Some("CROSSSLOT"), "{error}");
    let elsewhere: RedisResult<Value> = redis::cmd("GET")
        .arg(&a)
        .query_async(&mut connect(&cluster.urls()[master_b]).await)
        .await;
    assert_eq!(elsewhere.expect_err("not its master").code(), Some("MOVED"));
    // Hash tags put keys in one slot, whatever follows the tag.
    assert_eq!(
        cluster.master_for_key("{user:1}:a").await.expect("slot"),
        cluster.master_for_key("{user:1}:zzz").await.expect("slot")
    );

    cluster.flushall().await.expect("flushall");
    let gone: Option<String> = redis::cmd("GET")
        .arg(&a)
        .query_async(&mut on_a)
        .await
        .expect("get");
    assert_eq!(gone, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_master_serves_its_slots_again_and_the_others_never_stop() {
    let mut cluster = RedisCluster::start(3, 0).await.expect("cluster starts");
    let [(down, master), (up, other)] = keys_on_two_masters(&cluster).await;
    let url = cluster.urls()[master].clone();
    let mut on_other = connect(&cluster.urls()[other]).await;

    cluster.kill_master(master);
    let refused = redis::Client::open(url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await;
    assert!(refused.is_err(), "the killed master still answers");
    // Give the survivors time to mark it failed: they must keep serving their own slots.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let _: () = redis::cmd("SET")
        .arg(&up)
        .arg("still")
        .query_async(&mut on_other)
        .await
        .expect("the other masters keep serving");

    let started = Instant::now();
    cluster.restart_master(master).await.expect("rejoins");
    println!("restarted master whole again in {:?}", started.elapsed());
    assert_eq!(cluster.urls()[master], url, "same port");
    assert_eq!(cluster.master_for_key(&down).await.expect("slot"), master);
    let mut back = connect(&url).await;
    let _: () = redis::cmd("SET")
        .arg(&down)
        .arg("back")
        .query_async(&mut back)
        .await
        .expect("its slots are back");
    let value: String = redis::cmd("GET")
        .arg(&down)
        .query_async(&mut back)
        .await
        .expect("get");
    assert_eq!(value, "back");
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_promotes_the_replica_with_the_data() {
    let started = Instant::now();
    let mut cluster = RedisCluster::start(3, 1).await.expect("cluster starts");
    println!("3 masters + 3 replicas ready in {:?}", started.elapsed());
    let key = "{session}:1";
    let master = cluster.master_for_key(key).await.expect("slot");
    let old = cluster.urls()[master].clone();
    let mut conn = connect(&old).await;
    let _: () = redis::cmd("SET")
        .arg(key)
        .arg("kept")
        .query_async(&mut conn)
        .await
        .expect("set");
    cluster
        .replicated(key)
        .await
        .expect("the replica has the write");

    let started = Instant::now();
    let new = cluster.failover(master).await.expect("replica promoted");
    let took = started.elapsed();
    println!("failover done in {took:?}");
    assert_ne!(new, old);
    assert_eq!(cluster.urls()[master], new);
    assert_eq!(cluster.master_for_key(key).await.expect("slot"), master);
    let value: String = redis::cmd("GET")
        .arg(key)
        .query_async(&mut connect(&new).await)
        .await
        .expect("the new master answers");
    assert_eq!(value, "kept");

    // The old master comes back as the new one's replica.
    cluster.restart_master(master).await.expect("rejoins");
    assert_eq!(cluster.urls()[master], new);
}
