//! The whole conformance suite against the Redis store in cluster mode, on a Redis Cluster
//! of three masters and three replicas that this test starts on spare loopback ports (and
//! kills at the end).

mod support;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use session_redis::{RedisConfig, RedisStore};
use session_testkit::{Fixture, Suite, Unavailable};

fn main() -> ExitCode {
    let cluster = support::RedisCluster::start();
    let masters = cluster.as_ref().map(support::RedisCluster::master_urls);
    let code = Suite::new("redis-cluster", move || {
        let masters = masters.clone();
        async move {
            let masters = masters.ok_or_else(|| {
                Unavailable::new("no redis-server on this machine to start a cluster")
            })?;
            let prefix = support::random_prefix("cluster");
            let config = RedisConfig::default()
                .with_nodes(masters.iter().map(String::as_str))
                .with_prefix(&prefix)
                .with_response_timeout(Duration::from_secs(10));
            let open = || async {
                RedisStore::connect(&config).await.map_err(|err| {
                    Unavailable::new(
                        format!("cluster at {}: {err:#}", masters[0]).replace('\n', "; "),
                    )
                })
            };
            let store = open().await?;
            let second = open().await?;
            let down = RedisConfig::default()
                .with_nodes([format!("redis://127.0.0.1:{}", support::free_port())])
                .with_prefix(&prefix)
                .with_connect_timeout(Duration::from_millis(300))
                .with_response_timeout(Duration::from_millis(500));
            let down = RedisStore::connect_lazy(&down).map_err(|err| {
                Unavailable::new(
                    format!("cannot open the unreachable store: {err:#}").replace('\n', "; "),
                )
            })?;
            Ok(Fixture::new(Arc::new(store))
                .with_second_handle(Arc::new(second))
                .with_unreachable(Arc::new(down))
                .with_cleanup(async move {
                    for master in &masters {
                        support::delete_prefix(master, &prefix).await;
                    }
                }))
        }
    })
    .main();
    drop(cluster);
    code
}
