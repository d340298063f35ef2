//! What the conformance suite does not reach: the layout in Redis, corrupt keys, new
//! sessions of every size (written with `RESTORE`) and the fallback where a server refuses
//! it, change sets larger than one Lua call can take, bound sessions and their user
//! index in Redis (and stale or corrupt index entries), and opening the store from
//! configuration.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use session_core::{
    ChangeSet, Data, ErrorKind, Owner, Record, Registry, SessionConfig, SessionId, SessionManager,
    SessionStore, StoreKey, Timestamp, UserId,
};
use session_redis::{RedisStore, redis};
use session_testkit::{TestError, TestResult, Tests, Trial};

fn main() -> std::process::ExitCode {
    Tests::new([
        Trial::tokio(
            "calls_from_single_threaded_runtimes_use_connections_of_their_own",
            calls_from_single_threaded_runtimes_use_connections_of_their_own,
        )
        .multi_thread(2),
        Trial::tokio(
            "stores_one_hash_per_session_with_the_expiry_as_its_ttl",
            stores_one_hash_per_session_with_the_expiry_as_its_ttl,
        )
        .multi_thread(2),
        Trial::tokio(
            "corrupt_keys_are_decode_errors_and_create_replaces_them",
            corrupt_keys_are_decode_errors_and_create_replaces_them,
        )
        .multi_thread(2),
        Trial::tokio(
            "new_sessions_of_every_size_are_written_whole_with_their_ttl",
            new_sessions_of_every_size_are_written_whole_with_their_ttl,
        )
        .multi_thread(2),
        Trial::tokio(
            "a_server_that_refuses_restore_gets_the_create_script",
            a_server_that_refuses_restore_gets_the_create_script,
        )
        .multi_thread(2),
        Trial::tokio(
            "change_sets_larger_than_one_lua_call_are_applied_whole",
            change_sets_larger_than_one_lua_call_are_applied_whole,
        )
        .multi_thread(2),
        Trial::tokio(
            "bound_sessions_carry_their_owner_and_their_index_follows_them",
            bound_sessions_carry_their_owner_and_their_index_follows_them,
        )
        .multi_thread(2),
        Trial::tokio(
            "stale_and_corrupt_index_entries_are_never_listed_and_are_pruned",
            stale_and_corrupt_index_entries_are_never_listed_and_are_pruned,
        )
        .multi_thread(2),
        Trial::tokio("opens_from_configuration", opens_from_configuration).multi_thread(2),
        Trial::tokio(
            "wraps_a_client_or_connection_manager_the_application_has",
            wraps_a_client_or_connection_manager_the_application_has,
        )
        .multi_thread(2),
    ])
    .main()
}

fn key() -> StoreKey {
    SessionId::generate(32).expect("id").store_key()
}

fn in_an_hour() -> Timestamp {
    Timestamp::now() + Duration::from_secs(3600)
}

/// A store on the test Redis under a fresh prefix and a plain connection to poke at its
/// keys, or the skip of a test for which Redis is unreachable.
async fn open(test: &str) -> Result<(RedisStore, redis::aio::MultiplexedConnection), TestError> {
    let url = support::redis_url();
    let prefix = support::random_prefix(test);
    let store = support::open_store(&url, &prefix, Duration::from_secs(10))
        .await
        .map_err(TestError::skip)?;
    let client = redis::Client::open(url).expect("client");
    let connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    Ok((store, connection))
}

async fn cleanup(store: &RedisStore) {
    support::delete_prefix(&support::redis_url(), store.prefix()).await;
}

async fn stores_one_hash_per_session_with_the_expiry_as_its_ttl() -> TestResult {
    let (store, mut redis) = open("layout").await?;
    let k = key();
    let record = Record {
        data: Data::from([
            ("user".to_owned(), b"ada".to_vec()),
            ("m:created".to_owned(), b"not metadata".to_vec()),
        ]),
        expires_at: in_an_hour(),
        created_at: Timestamp::from_millis(1_700_000_000_123),
        revision: None,
        owner: None,
    };
    assert!(store.create(&k, &record).await.expect("create"));
    let redis_key = store.redis_key(&k);
    assert_eq!(redis_key, format!("{}{}", store.prefix(), k.as_str()));
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL")
        .arg(&redis_key)
        .query_async(&mut redis)
        .await
        .expect("HGETALL");
    fields.sort();
    assert_eq!(
        fields,
        [
            (b"d:m:created".to_vec(), b"not metadata".to_vec()),
            (b"d:user".to_vec(), b"ada".to_vec()),
            (b"m:created".to_vec(), b"1700000000123".to_vec()),
            (
                b"m:expires".to_vec(),
                record.expires_at.as_millis().to_string().into_bytes()
            ),
        ]
    );
    let expire_time: i64 = redis::cmd("PEXPIRETIME")
        .arg(&redis_key)
        .query_async(&mut redis)
        .await
        .expect("PEXPIRETIME");
    assert_eq!(expire_time, record.expires_at.as_millis());
    assert_eq!(store.load(&k).await.expect("load"), Some(record.clone()));

    // A touch moves the field and the TTL together.
    let later = record.expires_at + Duration::from_secs(60);
    assert!(store.touch(&k, later).await.expect("touch"));
    let (field, expire_time): (String, i64) = redis::pipe()
        .cmd("HGET")
        .arg(&redis_key)
        .arg("m:expires")
        .cmd("PEXPIRETIME")
        .arg(&redis_key)
        .query_async(&mut redis)
        .await
        .expect("HGET, PEXPIRETIME");
    assert_eq!(field, later.as_millis().to_string());
    assert_eq!(expire_time, later.as_millis());
    assert_eq!(
        store.load(&k).await.expect("load").map(|r| r.expires_at),
        Some(later)
    );
    cleanup(&store).await;
    Ok(())
}

async fn corrupt_keys_are_decode_errors_and_create_replaces_them() -> TestResult {
    let (store, mut redis) = open("corrupt").await?;
    let later = in_an_hour().as_millis();
    let manager = SessionManager::new(
        Arc::new(store.clone()) as Arc<dyn SessionStore>,
        SessionConfig::default(),
    )
    .expect("manager");
    for what in CORRUPTIONS {
        let id = SessionId::generate(32).expect("id");
        let k = id.store_key();
        let redis_key = store.redis_key(&k);
        corruption(what, &redis_key, later)
            .query_async::<()>(&mut redis)
            .await
            .expect("write corruption");
        redis::cmd("PEXPIREAT")
            .arg(&redis_key)
            .arg(later)
            .query_async::<()>(&mut redis)
            .await
            .expect("PEXPIREAT");

        let err = store.load(&k).await.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::Decode, "{what}: {err}");
        // The session treats it as no session rather than failing the request.
        let session = manager.session_from_cookie_header(Some(&format!("thinkjs={}", id.expose())));
        assert_eq!(
            session.get::<String>("a").await.expect(what),
            None,
            "{what}"
        );

        let fresh = Record {
            data: Data::from([("a".to_owned(), b"fresh".to_vec())]),
            expires_at: in_an_hour(),
            created_at: Timestamp::now(),
            revision: None,
            owner: None,
        };
        let replaced = store.create(&k, &fresh).await.expect(what);
        if what == "an unknown field"
            || what == "a non-integer creation time"
            || what == "no expiry field"
        {
            // A hash with a creation time looks live: create leaves it alone.
            assert!(!replaced, "{what}");
        } else {
            assert!(replaced, "{what}");
            assert_eq!(store.load(&k).await.expect(what), Some(fresh), "{what}");
        }
    }
    cleanup(&store).await;
    Ok(())
}

const CORRUPTIONS: [&str; 7] = [
    "a string",
    "a list",
    "an unknown field",
    "a non-integer creation time",
    "no creation time",
    "no expiry field",
    "a non-integer expiry",
];

/// A command that writes corruption `what` at `redis_key`.
fn corruption(what: &str, redis_key: &str, later: i64) -> redis::Cmd {
    let mut command;
    match what {
        "a string" => {
            command = redis::cmd("SET");
            command.arg(redis_key).arg("x");
        }
        "a list" => {
            command = redis::cmd("RPUSH");
            command.arg(redis_key).arg("x");
        }
        "an unknown field" => {
            command = redis::cmd("HSET");
            command
                .arg(redis_key)
                .arg("m:created")
                .arg("1")
                .arg("m:expires")
                .arg(later)
                .arg("junk")
                .arg("1");
        }
        "a non-integer creation time" => {
            command = redis::cmd("HSET");
            command
                .arg(redis_key)
                .arg("m:created")
                .arg("yesterday")
                .arg("m:expires")
                .arg(later);
        }
        "no creation time" => {
            command = redis::cmd("HSET");
            command
                .arg(redis_key)
                .arg("m:expires")
                .arg(later)
                .arg("d:a")
                .arg("1");
        }
        "no expiry field" => {
            command = redis::cmd("HSET");
            command
                .arg(redis_key)
                .arg("m:created")
                .arg("1")
                .arg("d:a")
                .arg("1");
        }
        _ => {
            // The creation time is missing too: create sees no live session and replaces it.
            command = redis::cmd("HSET");
            command.arg(redis_key).arg("m:expires").arg("tomorrow");
        }
    }
    command
}

/// Records whose sizes need every length form of the `RESTORE` payload: a hash of more
/// than 63 fields, keys and values of 64 to 16,383 bytes, and a value of more than that.
async fn new_sessions_of_every_size_are_written_whole_with_their_ttl() -> TestResult {
    let (store, mut redis) = open("restore-sizes").await?;
    let many: Data = (0..100)
        .map(|i| (format!("key-{i}"), format!("value-{i}").into_bytes()))
        .collect();
    let sizes = [
        Data::new(),
        Data::from([("n".to_owned(), vec![1])]),
        many,
        Data::from([("k".repeat(64), vec![0xff; 16_383])]),
        Data::from([("big".to_owned(), vec![7; 70_000]), (String::new(), vec![])]),
    ];
    for data in sizes {
        let k = key();
        let record = Record {
            data,
            expires_at: in_an_hour(),
            created_at: Timestamp::now(),
            revision: None,
            owner: None,
        };
        let fields = record.data.len();
        assert!(
            store.create(&k, &record).await.expect("create"),
            "{fields} fields"
        );
        assert_eq!(
            store.load(&k).await.expect("load"),
            Some(record.clone()),
            "{fields} fields"
        );
        let expire_time: i64 = redis::cmd("PEXPIRETIME")
            .arg(store.redis_key(&k))
            .query_async(&mut redis)
            .await
            .expect("PEXPIRETIME");
        assert_eq!(
            expire_time,
            record.expires_at.as_millis(),
            "{fields} fields"
        );
        // A live session is never overwritten by a create.
        let other = Record {
            data: Data::from([("intruder".to_owned(), b"1".to_vec())]),
            ..record.clone()
        };
        assert!(!store.create(&k, &other).await.expect("create again"));
        assert_eq!(store.load(&k).await.expect("load"), Some(record));
    }

    // An expiry already past: created as absent, as an expired record must be.
    let k = key();
    let expired = Record {
        expires_at: Timestamp::now() - Duration::from_secs(1),
        created_at: Timestamp::now() - Duration::from_secs(10),
        ..Record::default()
    };
    assert!(store.create(&k, &expired).await.expect("create expired"));
    assert_eq!(store.load(&k).await.expect("load"), None);
    let exists: bool = redis::cmd("EXISTS")
        .arg(store.redis_key(&k))
        .query_async(&mut redis)
        .await
        .expect("EXISTS");
    assert!(!exists, "an expired record leaves no key behind");
    cleanup(&store).await;
    Ok(())
}

/// A server whose ACL refuses `RESTORE` (as a managed Redis may) gets the create script:
/// sessions are created all the same, and the store stops asking after the first refusal.
async fn a_server_that_refuses_restore_gets_the_create_script() -> TestResult {
    let (_, mut redis) = open("no-restore").await?;
    let url = support::redis_url();
    let Some(rest) = url
        .strip_prefix("redis://")
        .filter(|rest| !rest.contains('@'))
    else {
        return Err(TestError::skip(
            "SESSION_TEST_REDIS_URL carries credentials; this test adds its own",
        ));
    };
    let user = format!("session-test-no-restore-{}", &key().as_str()[..12]);
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("on")
        .arg(">no-restore")
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .arg("-restore")
        .query_async::<()>(&mut redis)
        .await
        .expect("ACL SETUSER");
    let limited_url = format!("redis://{user}:no-restore@{rest}");
    let store = support::open_store(
        &limited_url,
        &support::random_prefix("no-restore"),
        Duration::from_secs(10),
    )
    .await
    .expect("store as the limited user");

    for round in 0..3 {
        let k = key();
        let record = Record {
            data: Data::from([("round".to_owned(), vec![round])]),
            expires_at: in_an_hour(),
            created_at: Timestamp::now(),
            revision: None,
            owner: None,
        };
        assert!(
            store.create(&k, &record).await.expect("create"),
            "round {round}"
        );
        assert_eq!(store.load(&k).await.expect("load"), Some(record.clone()));
        assert!(!store.create(&k, &record).await.expect("create again"));
    }
    // Redis logs each refused command; identical refusals share one entry and count.
    let log: Vec<Vec<redis::Value>> = redis::cmd("ACL")
        .arg("LOG")
        .query_async(&mut redis)
        .await
        .expect("ACL LOG");
    let refusals: Vec<i64> = log
        .iter()
        .filter(|entry| acl_entry_field(entry, "username") == Some(user.clone()))
        .filter_map(|entry| acl_entry_field(entry, "count")?.parse().ok())
        .collect();
    assert_eq!(refusals, [1], "RESTORE is tried once, then never again");

    cleanup(&store).await;
    redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async::<()>(&mut redis)
        .await
        .expect("ACL DELUSER");
    Ok(())
}

/// A field of an `ACL LOG` entry (a flat list of names and values), as text.
fn acl_entry_field(entry: &[redis::Value], name: &str) -> Option<String> {
    let position = entry.iter().position(|value| {
        matches!(value, redis::Value::BulkString(bytes) if bytes.as_slice() == name.as_bytes())
            || matches!(value, redis::Value::SimpleString(text) if text == name)
    })?;
    match entry.get(position + 1)? {
        redis::Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        redis::Value::SimpleString(text) => Some(text.clone()),
        redis::Value::Int(number) => Some(number.to_string()),
        _ => None,
    }
}

async fn change_sets_larger_than_one_lua_call_are_applied_whole() -> TestResult {
    let (store, _redis) = open("large").await?;
    let k = key();
    let record = Record {
        data: (0..2500).map(|i| (format!("k{i}"), vec![1])).collect(),
        expires_at: in_an_hour(),
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    };
    assert!(store.create(&k, &record).await.expect("create"));
    assert_eq!(
        store.load(&k).await.expect("load").map(|r| r.data.len()),
        Some(2500)
    );
    let changes = ChangeSet {
        cleared: false,
        set: (2500..4000).map(|i| (format!("k{i}"), vec![2])).collect(),
        removed: (0..1700).map(|i| format!("k{i}")).collect::<HashSet<_>>(),
        expires_at: in_an_hour(),
        owner: None,
    };
    assert!(store.update(&k, &changes).await.expect("update"));
    let mut expected = record.data.clone();
    changes.apply_to(&mut expected);
    assert_eq!(
        store.load(&k).await.expect("load").map(|r| r.data),
        Some(expected)
    );

    let clear = ChangeSet {
        cleared: true,
        set: Data::from([("only".to_owned(), b"1".to_vec())]),
        expires_at: in_an_hour(),
        ..ChangeSet::default()
    };
    assert!(store.update(&k, &clear).await.expect("clear"));
    let loaded = store.load(&k).await.expect("load").expect("live");
    assert_eq!(loaded.data, clear.set);
    assert_eq!(
        loaded.created_at, record.created_at,
        "clear keeps the creation time"
    );
    cleanup(&store).await;
    Ok(())
}

async fn opens_from_configuration() -> TestResult {
    let url = support::redis_url();
    let prefix = support::random_prefix("registry");
    let mut registry = Registry::new();
    session_redis::register(&mut registry);

    let config = SessionConfig::from_value(serde_json::json!({
        "type": "redis",
        "adapter": { "redis": {
            "url": url,
            "prefix": prefix,
            "connect_timeout": "2s",
            "response_timeout": 5,
        } }
    }))
    .expect("config");
    let store = match registry.open(&config).await {
        Ok(store) => store,
        Err(err) => {
            return Err(TestError::skip(format!(
                "Redis at {url} is unreachable: {err}"
            )));
        }
    };
    let k = key();
    let record = Record {
        expires_at: in_an_hour(),
        created_at: Timestamp::now(),
        ..Record::default()
    };
    assert!(store.create(&k, &record).await.expect("create"));
    assert!(format!("{store:?}").contains(&prefix));
    support::delete_prefix(&url, &prefix).await;

    let closed = format!("redis://:hunter2@127.0.0.1:{}", support::free_port());
    for (options, key) in [
        (
            serde_json::json!({"response_timeout": "soon"}),
            "adapter.redis.response_timeout",
        ),
        (
            serde_json::json!({"response_timeout": 0}),
            "adapter.redis.response_timeout",
        ),
        (
            serde_json::json!({"url": "http://example"}),
            "adapter.redis.url",
        ),
        (
            serde_json::json!({"url": closed, "connect_timeout": 0.3}),
            "127.0.0.1",
        ),
    ] {
        let config = SessionConfig::from_value(
            serde_json::json!({"type": "redis", "adapter": {"redis": options}}),
        )
        .expect("config");
        let err = registry.open(&config).await.expect_err(key);
        assert!(err.to_string().contains(key), "{err}");
        assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    }

    // A lazy store opens while Redis is down.
    let config = SessionConfig::from_value(serde_json::json!({
        "type": "redis",
        "adapter": { "redis": { "url": closed, "lazy": true, "response_timeout": 0.3 } }
    }))
    .expect("config");
    let store = registry.open(&config).await.expect("lazy store");
    assert!(store.load(&key()).await.is_err());
    Ok(())
}

async fn wraps_a_client_or_connection_manager_the_application_has() -> TestResult {
    let url = support::redis_url();
    let prefix = support::random_prefix("wrap");
    let client = redis::Client::open(url.as_str()).expect("client");
    let manager =
        match tokio::time::timeout(Duration::from_secs(5), client.get_connection_manager()).await {
            Ok(Ok(manager)) => manager,
            Ok(Err(err)) => {
                return Err(TestError::skip(format!(
                    "Redis at {url} is unreachable: {err}"
                )));
            }
            Err(_) => {
                return Err(TestError::skip(format!(
                    "Redis at {url} is unreachable: no connection within 5 s"
                )));
            }
        };
    let store = RedisStore::from_connection_manager(manager)
        .with_prefix(&prefix)
        .with_response_timeout(Duration::from_secs(5));
    assert_eq!(store.prefix(), prefix);
    assert_eq!(store.response_timeout(), Duration::from_secs(5));
    let k = key();
    let record = Record {
        data: Data::from([("a".to_owned(), b"1".to_vec())]),
        expires_at: in_an_hour(),
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    };
    assert!(store.create(&k, &record).await.expect("create"));

    let address = client.get_connection_info().addr().to_string();
    let config = session_redis::RedisConfig::default().with_prefix(&prefix);
    let other = RedisStore::from_client(client, &config)
        .await
        .expect("from_client");
    assert_eq!(other.load(&k).await.expect("load"), Some(record));
    assert!(format!("{other:?}").contains(&address), "{other:?}");
    cleanup(&store).await;
    Ok(())
}

fn owner(user: &str, label: &str) -> Owner {
    Owner::new(UserId::new(user).expect("user id"))
        .with_label(label)
        .expect("label")
}

/// The entries of `index`, member and score, lowest score first.
async fn entries(redis: &mut redis::aio::MultiplexedConnection, index: &str) -> Vec<(String, i64)> {
    redis::cmd("ZRANGE")
        .arg(index)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(redis)
        .await
        .expect("ZRANGE")
}

async fn expire_time(redis: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME")
        .arg(key)
        .query_async(redis)
        .await
        .expect("PEXPIRETIME")
}

async fn bound_sessions_carry_their_owner_and_their_index_follows_them() -> TestResult {
    let (store, mut redis) = open("bound").await?;
    let ada = owner("ada@example.org", "Firefox on Linux");
    let bob = owner("bob", "");
    let index = store.user_index_key(&ada.user);
    assert!(
        index.starts_with(&format!("{}user:{{", store.prefix())) && index.ends_with('}'),
        "{index}"
    );
    assert!(!index.contains("ada"), "the user id stays out of key names");

    let k = key();
    let record = Record::new(
        Data::from([("cart".to_owned(), b"1".to_vec())]),
        in_an_hour(),
        Timestamp::from_millis(1_700_000_000_123),
    )
    .with_owner(Some(ada.clone()));
    assert!(store.create(&k, &record).await.expect("create"));
    let redis_key = store.redis_key(&k);
    let mut fields: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(&redis_key)
        .query_async(&mut redis)
        .await
        .expect("HGETALL");
    fields.sort();
    let expires = record.expires_at.as_millis();
    assert_eq!(
        fields,
        [
            ("d:cart", "1".to_owned()),
            ("m:created", "1700000000123".to_owned()),
            ("m:expires", expires.to_string()),
            ("m:index", index.clone()),
            ("m:label", "Firefox on Linux".to_owned()),
            ("m:user", "ada@example.org".to_owned()),
        ]
        .map(|(field, value)| (field.to_owned(), value))
    );
    assert_eq!(store.load(&k).await.expect("load"), Some(record.clone()));
    assert_eq!(
        entries(&mut redis, &index).await,
        [(k.as_str().to_owned(), expires)]
    );
    assert_eq!(
        expire_time(&mut redis, &index).await,
        expires,
        "the index's TTL"
    );

    // A second, longer session: the index expires with it.
    let longer = key();
    let later = in_an_hour() + Duration::from_secs(3600);
    let second = Record::new(Data::new(), later, Timestamp::now()).with_owner(Some(ada.clone()));
    assert!(store.create(&longer, &second).await.expect("create"));
    assert_eq!(expire_time(&mut redis, &index).await, later.as_millis());
    // A touch moves the entry, and the index's TTL with the newest entry.
    let latest = later + Duration::from_secs(60);
    assert!(store.touch(&k, latest).await.expect("touch"));
    assert_eq!(
        entries(&mut redis, &index).await,
        [
            (longer.as_str().to_owned(), later.as_millis()),
            (k.as_str().to_owned(), latest.as_millis())
        ]
    );
    assert_eq!(expire_time(&mut redis, &index).await, latest.as_millis());
    // An update to an earlier expiry moves it back.
    let earlier = in_an_hour();
    let shorter = ChangeSet {
        set: Data::from([("cart".to_owned(), b"2".to_vec())]),
        expires_at: earlier,
        ..ChangeSet::default()
    };
    assert!(store.update(&k, &shorter).await.expect("update"));
    assert_eq!(expire_time(&mut redis, &index).await, later.as_millis());
    let listed = store.sessions_of(&ada.user).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|s| s.key == k && s.expires_at == earlier));

    // Rebinding moves the session to bob's index; clearing keeps the owner.
    let rebind = ChangeSet {
        cleared: true,
        expires_at: earlier,
        owner: Some(bob.clone()),
        ..ChangeSet::default()
    };
    assert!(store.update(&k, &rebind).await.expect("rebind"));
    let bobs = store.user_index_key(&bob.user);
    assert_eq!(
        entries(&mut redis, &bobs).await,
        [(k.as_str().to_owned(), earlier.as_millis())]
    );
    assert_eq!(
        entries(&mut redis, &index).await,
        [(longer.as_str().to_owned(), later.as_millis())],
        "the old index forgot it at once"
    );
    let clear = ChangeSet {
        cleared: true,
        expires_at: earlier,
        ..ChangeSet::default()
    };
    assert!(store.update(&k, &clear).await.expect("clear"));
    let loaded = store.load(&k).await.expect("load").expect("live");
    assert!(loaded.data.is_empty());
    assert_eq!(loaded.owner, Some(bob.clone()), "a clear keeps the binding");

    // delete_many takes the entries with the sessions; an empty index is gone.
    assert_eq!(
        store
            .delete_many(&[k.clone(), longer])
            .await
            .expect("delete_many"),
        2
    );
    for gone in [&index, &bobs] {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(gone)
            .query_async(&mut redis)
            .await
            .expect("EXISTS");
        assert_eq!(exists, 0, "an index whose sessions are all deleted");
    }

    // A bound session created already expired is never indexed.
    let dead = Record::new(
        Data::new(),
        Timestamp::now() - Duration::from_secs(5),
        Timestamp::now(),
    )
    .with_owner(Some(ada.clone()));
    store.create(&key(), &dead).await.expect("create");
    assert_eq!(store.user_index_len(&ada.user).await.expect("len"), 0);
    cleanup(&store).await;
    Ok(())
}

async fn stale_and_corrupt_index_entries_are_never_listed_and_are_pruned() -> TestResult {
    let (store, mut redis) = open("stale").await?;
    let (ada, bob) = (owner("ada", "laptop"), owner("bob", ""));
    let index = store.user_index_key(&ada.user);
    let live = key();
    let bound = |owner: &Owner| {
        Record::new(Data::new(), in_an_hour(), Timestamp::now()).with_owner(Some(owner.clone()))
    };
    assert!(store.create(&live, &bound(&ada)).await.expect("create"));
    let bobs = key();
    assert!(store.create(&bobs, &bound(&bob)).await.expect("create"));
    let unbound = key();
    assert!(
        store
            .create(
                &unbound,
                &Record::new(Data::new(), in_an_hour(), Timestamp::now())
            )
            .await
            .expect("create")
    );
    // Entries a listing must not trust: another user's session, an unbound one, one that
    // never existed, a member that is no store key, all scored far in the future; and the
    // live session scored below its expiry, as after a follow-up that never landed.
    let far = in_an_hour().as_millis() + 86_400_000;
    let low = Timestamp::now().as_millis() + 1_000;
    let _: () = redis::cmd("ZADD")
        .arg(&index)
        .arg(far)
        .arg(bobs.as_str())
        .arg(far)
        .arg(unbound.as_str())
        .arg(far)
        .arg(key().as_str())
        .arg(far)
        .arg("not a store key")
        .arg(low)
        .arg(live.as_str())
        .query_async(&mut redis)
        .await
        .expect("ZADD");
    assert_eq!(store.user_index_len(&ada.user).await.expect("len"), 5);

    let listed = store.sessions_of(&ada.user).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, live);
    assert_eq!(listed[0].label, "laptop");
    let kept = entries(&mut redis, &index).await;
    assert_eq!(kept.len(), 1, "the stale entries are pruned: {kept:?}");
    let (member, score) = &kept[0];
    assert_eq!(member, live.as_str());
    let expires = store
        .load(&live)
        .await
        .expect("load")
        .expect("live")
        .expires_at
        .as_millis();
    assert_eq!(
        *score, expires,
        "the low score is raised to the session's expiry"
    );
    assert_eq!(expire_time(&mut redis, &index).await, expires);

    // A session whose index field names another key is corrupt: load refuses it.
    let _: () = redis::cmd("HSET")
        .arg(store.redis_key(&live))
        .arg("m:index")
        .arg(format!("{}user:{{elsewhere}}", store.prefix()))
        .query_async(&mut redis)
        .await
        .expect("HSET");
    let err = store.load(&live).await.expect_err("corrupt index field");
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert!(store.sessions_of(&ada.user).await.expect("list").is_empty());
    cleanup(&store).await;
    Ok(())
}

/// Clients connected to the server `probe` is connected to, the probe itself not counted.
/// One probe serves every count: a probe opened and dropped per count could still be
/// connected, as far as the server knows, when the next count is taken.
async fn clients(probe: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(probe)
        .await
        .expect("INFO clients");
    let connected: u64 = info
        .lines()
        .find_map(|line| line.strip_prefix("connected_clients:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("connected_clients");
    connected - 1
}

/// A store opened on a multi-threaded runtime, called from single-threaded runtimes of
/// other threads (as actix-web's workers are): each of those runtimes gets a connection of
/// its own, driven by itself; a runtime that shut down leaves no connection behind for
/// the next one of its thread; and two runtimes alive on one thread never share one (a
/// connection driven by a runtime that is not running would not answer).
async fn calls_from_single_threaded_runtimes_use_connections_of_their_own() -> TestResult {
    let server = support::RedisServer::start().ok_or_else(support::no_redis_server)?;
    let url = server.url();
    let store = support::open_store(&url, "runtimes:", Duration::from_secs(2))
        .await
        .map_err(TestError::skip)?;
    let mut probe = redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("probe connection");
    let k = key();
    let record = Record::new(Data::new(), in_an_hour(), Timestamp::now());
    assert!(store.create(&k, &record).await.expect("create"));
    assert_eq!(clients(&mut probe).await, 1, "the store's own connection");

    let (ready, loaded) = std::sync::mpsc::channel::<()>();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let worker = {
        let store = store.clone();
        let k = k.clone();
        std::thread::spawn(move || {
            let runtime = || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
            };
            let load = |runtime: &tokio::runtime::Runtime| {
                runtime.block_on(async {
                    tokio::time::timeout(Duration::from_secs(5), store.load(&k))
                        .await
                        .expect("answered")
                        .expect("load")
                        .is_some()
                })
            };
            let first = runtime();
            assert!(load(&first), "found from the first runtime");
            // A second runtime alive beside the first on this thread, while the first
            // is not running: it must not use the first one's connection.
            let second = runtime();
            assert!(load(&second), "found from the second runtime");
            assert!(load(&first), "found from the first runtime again");
            drop(first);
            drop(second);
            let third = runtime();
            assert!(
                load(&third),
                "found from a runtime made after the others shut down"
            );
            // The third one (and its connection) stays until the count below is done.
            ready.send(()).expect("report");
            let _ = finished.recv();
            drop(third);
        })
    };
    tokio::task::spawn_blocking(move || loaded.recv())
        .await
        .expect("join")
        .expect("the worker thread loaded");
    // Connections of runtimes that shut down close with them.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut count = clients(&mut probe).await;
    while count != 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        count = clients(&mut probe).await;
    }
    assert_eq!(count, 2, "the store's own and the third runtime's");
    // This runtime (multi-threaded) keeps using the store's own.
    assert!(store.load(&k).await.expect("load").is_some());
    assert_eq!(clients(&mut probe).await, 2);
    done.send(()).expect("stop the worker");
    tokio::task::spawn_blocking(move || worker.join())
        .await
        .expect("join")
        .expect("worker thread");
    Ok(())
}
