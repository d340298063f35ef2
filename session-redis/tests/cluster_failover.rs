//! A Redis Cluster of three masters and three replicas, started by the test on spare
//! loopback ports: sessions spread over all three masters, and a master killed under load
//! while its replica takes over.
//!
//! Redis replicates asynchronously: a write the master acknowledged and had not yet sent
//! to its replica is gone once the replica takes over. The failover test reports how many
//! acknowledged increments that lost, and bounds it by the increments acknowledged in the
//! last second before the kill (a replica on loopback is milliseconds behind). The store
//! offers no `WAIT`-based option that would bound it further.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{Record, SessionConfig, SessionId, SessionManager, SessionStore, Timestamp};
use session_redis::{RedisConfig, RedisStore, redis};
use session_testkit::{Load, TestResult, Tests, Trial};
use support::RedisCluster;

fn main() -> std::process::ExitCode {
    Tests::new([
        Trial::tokio(
            "sessions_spread_over_the_three_masters",
            sessions_spread_over_the_three_masters,
        )
        .multi_thread(2),
        Trial::tokio(
            "a_master_killed_under_load_fails_over_to_its_replica",
            a_master_killed_under_load_fails_over_to_its_replica,
        )
        .multi_thread(2),
    ])
    .main()
}

/// The store's connect and response timeouts.
const TIMEOUT: Duration = Duration::from_millis(500);
/// Concurrent requests during the failover.
const WORKERS: usize = 16;
/// Errors must stop within this long of the replica becoming master.
const SETTLED_WITHIN: Duration = Duration::from_secs(2);
/// Sessions created to see how they spread.
const SPREAD: usize = 3000;

/// Starts the cluster (a blocking set-up of a few seconds) and opens a store on it.
async fn cluster_and_store(
    test: &str,
) -> Result<(RedisCluster, RedisStore), session_testkit::TestError> {
    let cluster =
        tokio::task::block_in_place(RedisCluster::start).ok_or_else(support::no_redis_server)?;
    let config = RedisConfig::default()
        .with_nodes(cluster.master_urls())
        .with_prefix(support::random_prefix(test))
        .with_connect_timeout(TIMEOUT)
        .with_response_timeout(TIMEOUT);
    let store = RedisStore::connect(&config)
        .await
        .expect("open the store on the cluster");
    Ok((cluster, store))
}

async fn sessions_spread_over_the_three_masters() -> TestResult {
    let (cluster, store) = cluster_and_store("spread").await?;
    let record = Record {
        data: [("user".to_owned(), b"ada".to_vec())].into(),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    };
    for _ in 0..SPREAD {
        let key = SessionId::generate(32).expect("id").store_key();
        assert!(store.create(&key, &record).await.expect("create"));
    }
    let mut held = Vec::new();
    for url in cluster.master_urls() {
        let client = redis::Client::open(url).expect("client");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to a master");
        let size: usize = redis::cmd("DBSIZE")
            .query_async(&mut connection)
            .await
            .expect("DBSIZE");
        held.push(size);
    }
    let total: usize = held.iter().sum();
    assert!(total >= SPREAD, "{total} keys for {SPREAD} sessions");
    for (master, keys) in held.iter().enumerate() {
        // An even spread gives each a third; a fifth is far outside chance.
        assert!(
            *keys * 5 >= total,
            "master {master} holds {keys} of {total} keys: the sessions do not spread"
        );
    }
    println!(
        "figure: redis-cluster | {SPREAD} sessions over three masters | keys per master: {}",
        held.iter()
            .map(|keys| format!("{keys} ({:.1}%)", 100.0 * *keys as f64 / total as f64))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Waits until `replica` reports itself a master; panics after 30 s.
async fn until_promoted(replica: &support::RedisServer) {
    let client = redis::Client::open(replica.url()).expect("client");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the replica");
    let started = Instant::now();
    loop {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut connection)
            .await
            .expect("INFO replication");
        if info.contains("role:master") {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the replica did not take over within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn a_master_killed_under_load_fails_over_to_its_replica() -> TestResult {
    let (mut cluster, store) = cluster_and_store("failover").await?;
    let manager = SessionManager::new(
        Arc::new(store) as Arc<dyn SessionStore>,
        SessionConfig::default(),
    )
    .expect("manager");
    let load = Load::start(manager, WORKERS);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = load.elapsed();
    cluster.master(0).kill();
    until_promoted(cluster.replica_of(0)).await;
    let promoted = load.elapsed();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let report = load.stop().await;

    let last_second = report.succeeded_between(down.saturating_sub(Duration::from_secs(1)), down);
    let bound = u64::try_from(last_second).unwrap_or(u64::MAX);
    // Requests on the other masters' sessions go on throughout; the ones on the dead
    // master's fail until the client finds the new master.
    report.assert_recovered_losing_at_most(
        "failover",
        down,
        down,
        promoted + SETTLED_WITHIN,
        SETTLED_WITHIN,
        bound,
    );
    let last_failure = report.last_failure_started().unwrap_or_default();
    assert!(
        last_failure <= promoted + SETTLED_WITHIN,
        "a request failed {:?} after the replica took over (limit {SETTLED_WITHIN:?})",
        last_failure.saturating_sub(promoted)
    );
    assert_eq!(report.sessions_lost, 0, "sessions lost in the failover");
    println!(
        "figure: redis-cluster | master SIGKILLed under load, {WORKERS} concurrent requests, \
         cluster-node-timeout {:?} | replica took over {:?} after the kill; the last failed request \
         started {:?} after the kill; {} ok, {} failed, 0 panics, {} acknowledged increments lost to \
         asynchronous replication (bound: the {bound} acknowledged in the last second), \
         0 sessions lost, slowest request {:?}",
        RedisCluster::NODE_TIMEOUT,
        promoted.saturating_sub(down),
        last_failure.saturating_sub(down),
        report.succeeded(),
        report.failed(),
        report.lost_increments,
        report.slowest(),
    );
    Ok(())
}
