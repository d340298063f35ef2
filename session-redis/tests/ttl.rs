//! After a mixed workload, every key the store left in Redis has a positive TTL: none
//! without one, none negative, none that is neither a session hash nor a user index; and
//! after a workload of bound sessions, every user index expires with its newest entry and
//! lists every live bound session with the expiry the session has.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use session_core::{
    ChangeSet, Data, Owner, Record, SessionConfig, SessionId, SessionManager, SessionStore,
    StoreKey, Timestamp, UserId,
};
use session_redis::{RedisStore, redis};
use session_testkit::{TestError, TestResult, Tests, Trial};

fn main() -> std::process::ExitCode {
    Tests::new([
        Trial::tokio(
            "no_key_lives_without_a_ttl_after_a_mixed_workload",
            no_key_lives_without_a_ttl_after_a_mixed_workload,
        )
        .multi_thread(2),
        Trial::tokio(
            "no_index_key_lives_without_a_ttl_after_binds_touches_and_deletes",
            no_index_key_lives_without_a_ttl_after_binds_touches_and_deletes,
        )
        .multi_thread(2),
    ])
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
    let report = checked.expect("scan");
    assert!(
        report.problems.is_empty(),
        "{} bad keys: {:#?}",
        report.problems.len(),
        report.problems
    );
    assert!(
        report.sessions > 50,
        "only {} keys were left to check",
        report.sessions
    );
    assert_eq!(report.indexes, 0, "no session was bound");
    println!(
        "{} keys under the workload's prefix, each a hash with a positive TTL",
        report.sessions
    );
    Ok(())
}

fn owner(user: &str, label: &str) -> Owner {
    Owner::new(UserId::new(user).expect("user id"))
        .with_label(label)
        .expect("label")
}

/// Log-ins of five users through a manager: bindings, rolling refreshes, `cycle_id`,
/// labels, log-outs, revoking one session, the others, or all of a user's, and a cap on
/// sessions per user.
async fn bound_through_the_manager(store: &Arc<RedisStore>) -> session_core::Result<()> {
    let config = SessionConfig::from_json_str(
        r#"{"type": "redis", "timeout": 3600, "touch_after": 0, "max_sessions_per_user": 12}"#,
    )?;
    let manager = Arc::new(SessionManager::new(
        Arc::clone(store) as Arc<dyn SessionStore>,
        config,
    )?);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100u32 {
        let manager = Arc::clone(&manager);
        tasks.spawn(async move {
            let user = UserId::new(format!("user-{}", i % 5))?;
            let login = manager.session_from_cookie_header(None);
            login.set("cart", &i).await?;
            login.set_user(user.clone()).await?;
            let Some(cookie) = login.flush().await? else {
                return Ok(());
            };
            let header = format!("{}={}", cookie.name(), cookie.value());
            let next = manager.session_from_cookie_header(Some(&header));
            next.set("visits", &1u32).await?;
            if i % 3 == 0 {
                next.set_label(&format!("device {i}")).await?;
            }
            if i % 5 == 1 {
                next.set_with_timeout("remember", &true, Duration::from_secs(120))
                    .await?;
            }
            if i % 6 == 0 {
                next.cycle_id().await?;
            }
            next.flush().await?;
            let read = manager.session_from_cookie_header(Some(&header));
            read.get::<u32>("visits").await?;
            read.flush().await?;
            match i % 10 {
                7 => {
                    let logout = manager.session_from_cookie_header(Some(&header));
                    logout.clear().await;
                    logout.flush().await?;
                }
                8 => {
                    let session = manager.session_from_cookie_header(Some(&header));
                    session.revoke_others().await?;
                    session.flush().await?;
                }
                9 => {
                    let session = manager.session_from_cookie_header(Some(&header));
                    if let Some(other) = session.user_sessions().await?.first() {
                        session.revoke(&other.handle).await?;
                    }
                    session.flush().await?;
                }
                _ => {}
            }
            Ok::<(), session_core::Error>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|err| {
            session_core::Error::new(session_core::ErrorKind::Backend, err.to_string())
        })??;
    }
    manager.revoke_user(&UserId::new("user-4")?, None).await?;
    Ok(())
}

/// Direct store calls on bound sessions, the edge cases included: created already
/// expired, short-lived, touched into the past and back, moved to an earlier expiry,
/// rebound, cleared, deleted alone or many at once.
async fn bound_direct(store: &RedisStore) -> session_core::Result<()> {
    let (ada, bob) = (owner("ada", "laptop"), owner("bob", ""));
    let mut doomed = Vec::new();
    for i in 0..48u64 {
        let k = key();
        let bound = |expires_at| record(expires_at).with_owner(Some(ada.clone()));
        match i % 8 {
            0 => {
                store.create(&k, &bound(ago_millis(1000))).await?;
            }
            1 => {
                store.create(&k, &bound(in_millis(150))).await?;
            }
            2 => {
                store.create(&k, &bound(in_millis(3_600_000))).await?;
                store.touch(&k, ago_millis(5)).await?;
            }
            3 => {
                store.create(&k, &bound(in_millis(150))).await?;
                store.touch(&k, in_millis(7_200_000)).await?;
                store.touch(&k, in_millis(1_800_000)).await?;
            }
            4 => {
                store.create(&k, &bound(in_millis(3_600_000))).await?;
                store
                    .update(
                        &k,
                        &ChangeSet {
                            cleared: true,
                            expires_at: in_millis(600_000),
                            owner: Some(bob.clone()),
                            ..ChangeSet::default()
                        },
                    )
                    .await?;
            }
            5 => {
                store.create(&k, &record(in_millis(3_600_000))).await?;
                store
                    .update(
                        &k,
                        &ChangeSet {
                            set: Data::from([("b".to_owned(), b"2".to_vec())]),
                            expires_at: in_millis(3_600_000),
                            owner: Some(ada.clone()),
                            ..ChangeSet::default()
                        },
                    )
                    .await?;
            }
            6 => {
                store.create(&k, &bound(in_millis(3_600_000))).await?;
                store.delete(&k).await?;
                store.touch(&k, in_millis(3_600_000)).await?;
            }
            _ => {
                store.create(&k, &bound(in_millis(3_600_000))).await?;
                doomed.push(k);
            }
        }
    }
    store.delete_many(&doomed[..3]).await?;
    store.sessions_of(&ada.user).await?;
    // The short-lived ones expire; a listing after that prunes them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    store.sessions_of(&bob.user).await?;
    Ok(())
}

async fn no_index_key_lives_without_a_ttl_after_binds_touches_and_deletes() -> TestResult {
    let url = support::redis_url();
    let prefix = support::random_prefix("ttl-users");
    let store = Arc::new(
        support::open_store(&url, &prefix, Duration::from_secs(10))
            .await
            .map_err(TestError::skip)?,
    );
    let outcome = async {
        bound_through_the_manager(&store).await?;
        bound_direct(&store).await
    }
    .await;
    let checked = check_ttls(&url, &prefix).await;
    support::delete_prefix(&url, &prefix).await;

    outcome.expect("workload");
    let report = checked.expect("scan");
    assert!(
        report.problems.is_empty(),
        "{} bad keys: {:#?}",
        report.problems.len(),
        report.problems
    );
    // Users 0 to 2, ada and bob keep sessions; user 3 may not (its concurrent "log out
    // the others" can end each other), user 4 was revoked.
    assert!(report.indexes >= 5, "only {} user indexes", report.indexes);
    assert!(report.bound > 20, "only {} bound sessions", report.bound);
    println!(
        "{} session keys ({} bound) and {} user indexes under the workload's prefix: each \
         with a positive TTL, each index expiring with its newest entry and listing every \
         bound session at its expiry",
        report.sessions, report.bound, report.indexes
    );
    Ok(())
}

/// What a scan of a prefix found.
struct Report {
    /// Session hashes.
    sessions: usize,
    /// Session hashes bound to a user.
    bound: usize,
    /// User indexes.
    indexes: usize,
    /// What is wrong, one line per key.
    problems: Vec<String>,
}

/// Every key under `prefix` and what is wrong with it, if anything: every key has a
/// positive TTL; a session key holds a hash, an index key (`<prefix>user:{…}`) a sorted
/// set whose expiry is its newest score; and every bound session is in the index its hash
/// names, scored with its expiry.
async fn check_ttls(url: &str, prefix: &str) -> redis::RedisResult<Report> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    let keys = support::keys_under(&mut connection, prefix).await?;
    let mut report = Report {
        sessions: 0,
        bound: 0,
        indexes: 0,
        problems: Vec::new(),
    };
    let index_prefix = format!("{prefix}user:{{");
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
            -1 => report.problems.push(format!("{redis_key}: no TTL")),
            ttl if ttl <= 0 => report.problems.push(format!("{redis_key}: TTL {ttl}")),
            _ => {}
        }
        if redis_key.starts_with(&index_prefix) {
            if kind != "zset" {
                report
                    .problems
                    .push(format!("{redis_key}: a {kind}, not a sorted set"));
                continue;
            }
            report.indexes += 1;
            let (newest, expire_time): (Vec<(String, i64)>, i64) = redis::pipe()
                .cmd("ZRANGE")
                .arg(redis_key)
                .arg(-1)
                .arg(-1)
                .arg("WITHSCORES")
                .cmd("PEXPIRETIME")
                .arg(redis_key)
                .query_async(&mut connection)
                .await?;
            match newest.first() {
                Some((_, score)) if *score == expire_time => {}
                other => report.problems.push(format!(
                    "{redis_key}: expires at {expire_time}, newest entry {other:?}"
                )),
            }
            continue;
        }
        if kind != "hash" {
            report
                .problems
                .push(format!("{redis_key}: a {kind}, not a hash"));
            continue;
        }
        report.sessions += 1;
        let (expires, index): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(redis_key)
            .arg("m:expires")
            .arg("m:index")
            .query_async(&mut connection)
            .await?;
        let (Some(expires), Some(index)) = (expires, index) else {
            continue;
        };
        report.bound += 1;
        let member = &redis_key[redis_key.len() - 64..];
        let score: Option<i64> = redis::cmd("ZSCORE")
            .arg(&index)
            .arg(member)
            .query_async(&mut connection)
            .await?;
        if score.map(|score| score.to_string()) != Some(expires.clone()) {
            report.problems.push(format!(
                "{redis_key}: expires at {expires}, its index entry says {score:?}"
            ));
        }
    }
    Ok(report)
}
