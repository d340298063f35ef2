//! After a mixed workload, every key the store left in Redis has a positive TTL: none
//! without one, none negative, none that is not a session hash.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use session_core::{
    ChangeSet, Data, Record, SessionConfig, SessionId, SessionManager, SessionStore, StoreKey,
    Timestamp,
};
use session_redis::{RedisStore, redis};
use session_testkit::{TestError, TestResult, Tests, Trial};

fn main() -> std::process::ExitCode {
    Tests::new([Trial::tokio(
        "no_key_lives_without_a_ttl_after_a_mixed_workload",
        no_key_lives_without_a_ttl_after_a_mixed_workload,
    )
    .multi_thread(2)])
    .main()
}

fn key() -> StoreKey {
    SessionId::generate(32).expect("id").store_key()
}

fn record(expires_at: Timestamp) -> Record {
    Record {
        data: Data::from([("a".to_owned(), b"1".to_vec())]),
        expires_at,
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    }
}

fn in_millis(millis: u64) -> Timestamp {
    Timestamp::now() + Duration::from_millis(millis)
}

fn ago_millis(millis: u64) -> Timestamp {
    Timestamp::now() - Duration::from_millis(millis)
}

/// Sessions through a manager: logins, updates, rolling touches, per-call timeouts,
/// `cycle_id`, `clear`, and concurrent requests.
async fn through_the_manager(store: &Arc<RedisStore>) -> session_core::Result<usize> {
    let config = SessionConfig::from_json_str(
        r#"{"type": "redis", "timeout": 3600, "touch_after": 1, "absolute_timeout": 7200}"#,
    )?;
    let manager = Arc::new(SessionManager::new(
        Arc::clone(store) as Arc<dyn SessionStore>,
        config,
    )?);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..120u32 {
        let manager = Arc::clone(&manager);
        tasks.spawn(async move {
            let login = manager.session_from_cookie_header(None);
            login.set("user", &i).await?;
            let Some(cookie) = login.flush().await? else {
                return Ok(());
            };
            let header = format!("{}={}", cookie.name(), cookie.value());
            let next = manager.session_from_cookie_header(Some(&header));
            next.set("cart", &vec![i; 3]).await?;
            if i % 4 == 0 {
                next.remove("user").await?;
            }
            if i % 5 == 0 {
                next.set_with_timeout("remember", &true, Duration::from_secs(120))
                    .await?;
            }
            if i % 6 == 0 {
                next.cycle_id().await?;
            }
            next.flush().await?;
            if i % 7 == 0 {
                let logout = manager.session_from_cookie_header(Some(&header));
                logout.clear().await;
                logout.flush().await?;
            }
            if i % 9 == 0 {
                let read = manager.session_from_cookie_header(Some(&header));
                read.get::<u32>("user").await?;
                read.flush().await?;
            }
            Ok::<(), session_core::Error>(())
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|err| {
            session_core::Error::new(session_core::ErrorKind::Backend, err.to_string())
        })??;
        done += 1;
    }
    Ok(done)
}

/// Direct store calls, including the edge cases: records created already expired,
/// updates and touches into the past, clears that leave no data, deletes.
async fn direct(store: &RedisStore) -> session_core::Result<()> {
    for i in 0..40u64 {
        let k = key();
        match i % 8 {
            0 => {
                store.create(&k, &record(ago_millis(1000))).await?;
            }
            1 => {
                store.create(&k, &record(in_millis(3_600_000))).await?;
                store
                    .update(
                        &k,
                        &ChangeSet {
                            cleared: true,
                            expires_at: in_millis(3_600_000),
                            ..ChangeSet::default()
                        },
                    )
                    .await?;
            }
            2 => {
                store.create(&k, &record(in_millis(3_600_000))).await?;
                store.touch(&k, ago_millis(5)).await?;
            }
            3 => {
                store.create(&k, &record(in_millis(3_600_000))).await?;
                store
                    .update(
                        &k,
                        &ChangeSet {
                            set: Data::from([("b".to_owned(), b"2".to_vec())]),
                            expires_at: ago_millis(5),
                            ..ChangeSet::default()
                        },
                    )
                    .await?;
            }
            4 => {
                store.create(&k, &record(in_millis(150))).await?;
                store.touch(&k, in_millis(3_600_000)).await?;
            }
            5 => {
                store.create(&k, &record(in_millis(3_600_000))).await?;
                store.delete(&k).await?;
                store
                    .update(
                        &k,
                        &ChangeSet {
                            set: Data::from([("late".to_owned(), b"1".to_vec())]),
                            expires_at: in_millis(3_600_000),
                            ..ChangeSet::default()
                        },
                    )
                    .await?;
                store.touch(&k, in_millis(3_600_000)).await?;
            }
            6 => {
                // Short-lived: may expire while the scan runs, which is fine (it is gone).
                store.create(&k, &record(in_millis(100))).await?;
            }
            _ => {
                store
                    .update(
                        &k,
                        &ChangeSet {
                            removed: HashSet::from(["a".to_owned()]),
                            expires_at: in_millis(3_600_000),
                            ..ChangeSet::default()
                        },
                    )
                    .await?;
                store.create(&k, &record(in_millis(3_600_000))).await?;
            }
        }
    }
    Ok(())
}

async fn no_key_lives_without_a_ttl_after_a_mixed_workload() -> TestResult {
    let url = support::redis_url();
    let prefix = support::random_prefix("ttl");
    let store = Arc::new(
        support::open_store(&url, &prefix, Duration::from_secs(10))
            .await
            .map_err(TestError::skip)?,
    );
    let outcome = async {
        let requests = through_the_manager(&store).await?;
        direct(&store).await?;
        Ok::<usize, session_core::Error>(requests)
    }
    .await;
    let checked = check_ttls(&url, &prefix).await;
    support::delete_prefix(&url, &prefix).await;

    let requests = outcome.expect("workload");
    assert_eq!(requests, 120);
    let (keys, problems) = checked.expect("scan");
    assert!(
        problems.is_empty(),
        "{} bad keys: {problems:#?}",
        problems.len()
    );
    assert!(keys > 50, "only {keys} keys were left to check");
    println!("{keys} keys under the workload's prefix, each a hash with a positive TTL");
    Ok(())
}

/// Every key under `prefix` and what is wrong with it, if anything.
async fn check_ttls(url: &str, prefix: &str) -> redis::RedisResult<(usize, Vec<String>)> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let keys = support::keys_under(&mut connection, prefix).await?;
    let mut problems = Vec::new();
    let mut live = 0;
    for redis_key in &keys {
        let (ttl, kind): (i64, String) = redis::pipe()
            .cmd("PTTL")
            .arg(redis_key)
            .cmd("TYPE")
            .arg(redis_key)
            .query_async(&mut connection)
            .await?;
        match ttl {
            // Expired between SCAN and PTTL: gone, as it should be.
            -2 => continue,
            -1 => problems.push(format!("{redis_key}: no TTL")),
            ttl if ttl <= 0 => problems.push(format!("{redis_key}: TTL {ttl}")),
            _ => {}
        }
        if kind != "hash" {
            problems.push(format!("{redis_key}: a {kind}, not a hash"));
        }
        live += 1;
    }
    Ok((live, problems))
}
