//! Round trips per operation and per request, counted by Redis itself: `MONITOR` on a
//! private server lists every command a client sends (commands run inside a Lua script are
//! marked `lua` and are not round trips). The user-index costs, where pipelines send many
//! commands in one round trip, are counted by a proxy between the store and the server
//! as well, and timed on a direct connection.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use session_core::{
    ChangeSet, Data, Owner, Record, SessionConfig, SessionId, SessionManager, SessionStore,
    StoreKey, Timestamp, UserId,
};
use session_redis::{RedisStore, redis};
use session_testkit::{TestError, TestResult, Tests, Trial};
use support::{RedisServer, RoundTripProxy};

fn main() -> std::process::ExitCode {
    Tests::new([
        Trial::tokio(
            "every_operation_is_one_round_trip",
            every_operation_is_one_round_trip,
        )
        .multi_thread(2),
        Trial::tokio(
            "user_index_costs_constant_round_trips",
            user_index_costs_constant_round_trips,
        )
        .multi_thread(2),
    ])
    .main()
}

/// `redis-cli MONITOR`, read line by line on a thread of its own.
struct Monitor {
    child: Child,
    lines: Receiver<String>,
    marks: redis::aio::MultiplexedConnection,
    next_mark: u32,
}

impl Monitor {
    async fn start(cli: &PathBuf, server: &RedisServer) -> Self {
        let mut child = Command::new(cli)
            .args(["-p", &server.port().to_string(), "MONITOR"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-cli MONITOR");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let client = redis::Client::open(server.url()).expect("client");
        let marks = client
            .get_multiplexed_async_connection()
            .await
            .expect("connection");
        let mut monitor = Self {
            child,
            lines,
            marks,
            next_mark: 0,
        };
        // Wait until MONITOR runs: marks sent before it would never be seen.
        for _ in 0..40 {
            if monitor.count_until_mark().await.is_some() {
                return monitor;
            }
        }
        panic!("redis-cli MONITOR showed nothing within 20 s");
    }

    /// Sends a mark and lists the client commands seen before it, or `None` if the mark
    /// did not show up in time.
    async fn count_until_mark(&mut self) -> Option<Vec<String>> {
        self.commands_until_mark()
            .await
            .map(|(commands, _)| commands)
    }

    /// Sends a mark and lists the client commands and the commands scripts ran, seen
    /// before it, or `None` if the mark did not show up in time.
    async fn commands_until_mark(&mut self) -> Option<(Vec<String>, Vec<String>)> {
        self.next_mark += 1;
        let mark = format!("round-trip-mark-{}", self.next_mark);
        let _: String = redis::cmd("ECHO")
            .arg(&mark)
            .query_async(&mut self.marks)
            .await
            .expect("ECHO");
        let (mut commands, mut scripted) = (Vec::new(), Vec::new());
        loop {
            match self.lines.recv_timeout(Duration::from_millis(500)) {
                Ok(line) if line.contains(&mark) => return Some((commands, scripted)),
                Ok(line) if line.contains("round-trip-mark-") || line == "OK" => {}
                // Commands a script runs are not round trips.
                Ok(line) if line.contains(" lua] ") => scripted.push(command_name(&line)),
                Ok(line) => commands.push(command_name(&line)),
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => panic!("MONITOR ended"),
            }
        }
    }

    /// Forgets the commands sent since the last mark (a test's set-up).
    async fn skip(&mut self) {
        self.commands_until_mark()
            .await
            .unwrap_or_else(|| panic!("the mark never came back"));
    }

    async fn measure(&mut self, what: &str, call: impl Future<Output = ()>) -> Vec<String> {
        call.await;
        let commands = self
            .count_until_mark()
            .await
            .unwrap_or_else(|| panic!("{what}: the mark never came back"));
        println!("{what}: {} round trip(s) {commands:?}", commands.len());
        commands
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" "..."` -> `EVALSHA`.
fn command_name(line: &str) -> String {
    line.split("] ")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap_or(line)
        .to_uppercase()
}

fn key() -> StoreKey {
    SessionId::generate(32).expect("id").store_key()
}

fn record() -> Record {
    Record {
        data: Data::from([("user".to_owned(), b"ada".to_vec())]),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        created_at: Timestamp::now(),
        revision: None,
        owner: None,
    }
}

fn changes() -> ChangeSet {
    ChangeSet {
        set: Data::from([("cart".to_owned(), b"3".to_vec())]),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
        ..ChangeSet::default()
    }
}

async fn every_operation_is_one_round_trip() -> TestResult {
    let server = RedisServer::start().ok_or_else(support::no_redis_server)?;
    let cli = support::redis_server_binary()
        .map(|server| server.with_file_name("redis-cli"))
        .filter(|cli| cli.is_file())
        .ok_or_else(|| TestError::skip("no redis-cli beside redis-server"))?;
    let store = Arc::new(
        support::open_store(&server.url(), "rt:", Duration::from_secs(5))
            .await
            .expect("store"),
    );
    let mut monitor = Monitor::start(&cli, &server).await;
    let k = key();

    // A new session is one RESTORE, which needs no script.
    let created = monitor
        .measure("create", async {
            assert!(store.create(&k, &record()).await.expect("create"));
        })
        .await;
    assert_eq!(created, ["RESTORE"]);
    // The first call of each script on a server loads it: EVALSHA, SCRIPT LOAD, EVALSHA.
    let cold = monitor
        .measure("update (script not loaded yet)", async {
            store.update(&k, &changes()).await.expect("update");
        })
        .await;
    assert_eq!(cold, ["EVALSHA", "SCRIPT", "EVALSHA"]);
    // Something at the key: RESTORE refuses it, and the create script decides (a live
    // session stays, a corrupt key would be replaced).
    let taken = monitor
        .measure("create where a session lives", async {
            assert!(!store.create(&k, &record()).await.expect("create"));
        })
        .await;
    assert_eq!(taken, ["RESTORE", "EVALSHA", "SCRIPT", "EVALSHA"]);
    monitor
        .measure("touch (script not loaded yet)", async {
            let later = Timestamp::now() + Duration::from_secs(7200);
            assert!(store.touch(&k, later).await.expect("touch"));
        })
        .await;

    let expectations: [(&str, &[&str]); 5] = [
        ("load", &["HGETALL"]),
        ("create", &["RESTORE"]),
        ("update", &["EVALSHA"]),
        ("touch", &["EVALSHA"]),
        ("delete", &["DEL"]),
    ];
    for (operation, expected) in expectations {
        let other = key();
        let commands = monitor
            .measure(operation, async {
                match operation {
                    "load" => {
                        store.load(&k).await.expect("load").expect("live");
                    }
                    "create" => {
                        assert!(store.create(&other, &record()).await.expect("create"));
                    }
                    "update" => {
                        assert!(store.update(&k, &changes()).await.expect("update"));
                    }
                    "touch" => {
                        let later = Timestamp::now() + Duration::from_secs(7200);
                        assert!(store.touch(&k, later).await.expect("touch"));
                    }
                    _ => {
                        assert!(store.delete(&k).await.expect("delete"));
                    }
                }
            })
            .await;
        assert_eq!(commands, expected, "{operation}");
    }

    // Whole requests through the manager.
    let manager = SessionManager::new(
        Arc::clone(&store) as Arc<dyn SessionStore>,
        SessionConfig::from_json_str(r#"{"timeout": 3600, "touch_after": 60}"#).expect("config"),
    )
    .expect("manager");
    let mut header = String::new();
    let login = monitor
        .measure("request: log in (new session)", async {
            let session = manager.session_from_cookie_header(None);
            session.set("user", "ada").await.expect("set");
            let cookie = session.flush().await.expect("flush").expect("cookie");
            header = format!("{}={}", cookie.name(), cookie.value());
        })
        .await;
    assert_eq!(login, ["RESTORE"]);
    let read = monitor
        .measure("request: read only", async {
            let session = manager.session_from_cookie_header(Some(&header));
            session.get::<String>("user").await.expect("get");
            assert!(session.flush().await.expect("flush").is_none());
        })
        .await;
    assert_eq!(read, ["HGETALL"]);
    let write = monitor
        .measure("request: read, change, write", async {
            let session = manager.session_from_cookie_header(Some(&header));
            let visits: u32 = session.get("visits").await.expect("get").unwrap_or(0);
            session.set("visits", &(visits + 1)).await.expect("set");
            session.flush().await.expect("flush");
        })
        .await;
    assert_eq!(write, ["HGETALL", "EVALSHA"], "one load and one update");
    Ok(())
}

/// What one call cost: round trips through the proxy, the commands Redis received, and
/// the commands its scripts ran.
struct Cost {
    round_trips: u64,
    commands: Vec<String>,
    scripted: Vec<String>,
}

impl Cost {
    /// The commands, with runs of one command shortened to `NAME×count`; past a dozen
    /// runs, how many of each command.
    fn summary(commands: &[String]) -> Vec<String> {
        let mut runs: Vec<(String, usize)> = Vec::new();
        for command in commands {
            match runs.last_mut() {
                Some((name, count)) if name == command => *count += 1,
                _ => runs.push((command.clone(), 1)),
            }
        }
        if runs.len() > 12 {
            let mut totals = std::collections::BTreeMap::new();
            for command in commands {
                *totals.entry(command.clone()).or_insert(0usize) += 1;
            }
            runs = totals.into_iter().collect();
        }
        runs.into_iter()
            .map(|(name, count)| {
                if count == 1 {
                    name
                } else {
                    format!("{name}×{count}")
                }
            })
            .collect()
    }
}

async fn cost(
    proxy: &RoundTripProxy,
    monitor: &mut Monitor,
    what: &str,
    call: impl Future<Output = ()>,
) -> Cost {
    let before = proxy.round_trips();
    call.await;
    let round_trips = proxy.round_trips() - before;
    let (commands, scripted) = monitor
        .commands_until_mark()
        .await
        .unwrap_or_else(|| panic!("{what}: the mark never came back"));
    println!(
        "{what}: {round_trips} round trip(s), commands {:?}, in scripts {:?}",
        Cost::summary(&commands),
        Cost::summary(&scripted)
    );
    Cost {
        round_trips,
        commands,
        scripted,
    }
}

fn names(commands: &[&str]) -> Vec<String> {
    commands.iter().map(|name| (*name).to_owned()).collect()
}

fn user(name: &str) -> UserId {
    UserId::new(name).expect("user id")
}

/// `n` sessions of `owner`, created at once.
async fn bind_many(store: &Arc<RedisStore>, owner: &Owner, n: usize) -> Vec<StoreKey> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (store, owner) = (Arc::clone(store), owner.clone());
        tasks.spawn(async move {
            let k = key();
            let bound = record().with_owner(Some(owner));
            assert!(store.create(&k, &bound).await.expect("create"));
            k
        });
    }
    let mut keys = Vec::with_capacity(n);
    while let Some(joined) = tasks.join_next().await {
        keys.push(joined.expect("create task"));
    }
    keys
}

/// A manager whose every request moves the expiry (`touch_after` 0): the costliest case
/// for a bound session, whose index entry follows each move.
fn rolling_manager(store: &Arc<RedisStore>) -> SessionManager {
    SessionManager::new(
        Arc::clone(store) as Arc<dyn SessionStore>,
        SessionConfig::from_json_str(r#"{"timeout": 3600, "touch_after": 0}"#).expect("config"),
    )
    .expect("manager")
}

/// A log-in (`user` bound, or none) and the cookie header of its session.
async fn log_in(manager: &SessionManager, user: Option<&UserId>) -> String {
    let session = manager.session_from_cookie_header(None);
    session.set("cart", "book").await.expect("set");
    if let Some(user) = user {
        session.set_user(user.clone()).await.expect("set_user");
        session.set_label("laptop").await.expect("set_label");
    }
    let cookie = session.flush().await.expect("flush").expect("cookie");
    format!("{}={}", cookie.name(), cookie.value())
}

/// A later request of the session of `header` that changes its data.
async fn change(manager: &SessionManager, header: &str) {
    let session = manager.session_from_cookie_header(Some(header));
    let visits: u32 = session.get("visits").await.expect("get").unwrap_or(0);
    session.set("visits", &(visits + 1)).await.expect("set");
    session.flush().await.expect("flush");
}

/// A later request of the session of `header` that only reads.
async fn read(manager: &SessionManager, header: &str) {
    let session = manager.session_from_cookie_header(Some(header));
    session.get::<u32>("visits").await.expect("get");
    session.flush().await.expect("flush");
}

/// Median time of `runs` runs of `call`.
async fn median<F: Future<Output = ()>>(runs: usize, mut call: impl FnMut() -> F) -> Duration {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        call().await;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    times[times.len() / 2]
}

/// Log-ins with and without a binding, requests of bound and unbound sessions, a listing
/// of a user with 1,000 sessions and a `delete_many` of 1,000 sessions: counted (round
/// trips through a proxy, commands by `MONITOR`), then timed without either.
async fn user_index_costs_constant_round_trips() -> TestResult {
    let server = RedisServer::start().ok_or_else(support::no_redis_server)?;
    let cli = support::redis_server_binary()
        .map(|server| server.with_file_name("redis-cli"))
        .filter(|cli| cli.is_file())
        .ok_or_else(|| TestError::skip("no redis-cli beside redis-server"))?;
    let proxy = RoundTripProxy::start(server.port()).await;
    let timeout = Duration::from_secs(30);
    let counted = Arc::new(
        support::open_store(&proxy.url(), "ui:", timeout)
            .await
            .expect("store through the proxy"),
    );
    let direct = Arc::new(
        support::open_store(&server.url(), "ui:", timeout)
            .await
            .expect("store"),
    );
    let manager = rolling_manager(&counted);
    let ada = user("ada");

    // Every script loaded once, so that the counts below are the steady state.
    let warm = rolling_manager(&direct);
    let header = log_in(&warm, Some(&ada)).await;
    change(&warm, &header).await;
    read(&warm, &header).await;
    let header = log_in(&warm, None).await;
    change(&warm, &header).await;
    read(&warm, &header).await;
    let spare = bind_many(&direct, &Owner::new(user("warm")), 2).await;
    let later = Timestamp::now() + Duration::from_secs(7200);
    assert!(direct.touch(&spare[1], later).await.expect("touch"));
    direct.delete(&spare[0]).await.expect("delete");
    direct.sessions_of(&user("warm")).await.expect("prune");
    direct.delete_many(&spare).await.expect("delete_many");

    let mut monitor = Monitor::start(&cli, &server).await;
    let mut unbound = String::new();
    let plain = cost(&proxy, &mut monitor, "log-in, no binding", async {
        unbound = log_in(&manager, None).await;
    })
    .await;
    assert_eq!(plain.round_trips, 1);
    assert_eq!(plain.commands, ["RESTORE"]);
    let mut bound = String::new();
    let binding = cost(&proxy, &mut monitor, "log-in with set_user", async {
        bound = log_in(&manager, Some(&ada)).await;
    })
    .await;
    assert_eq!(
        binding.round_trips, 1,
        "binding at log-in costs no round trip"
    );
    assert_eq!(binding.commands, ["EVALSHA"]);
    assert!(binding.scripted.contains(&"ZADD".to_owned()));

    // The session script's own first command tells a bound session from an unbound one,
    // in place of the existence check it always made: an unbound session costs Redis
    // the same three commands as before the index, a bound one three more.
    let unbound_change = cost(
        &proxy,
        &mut monitor,
        "request changing data, unbound",
        async {
            change(&manager, &unbound).await;
        },
    )
    .await;
    assert_eq!(unbound_change.round_trips, 2);
    assert_eq!(unbound_change.commands, ["HGETALL", "EVALSHA"]);
    assert_eq!(
        unbound_change.scripted,
        names(&["HMGET", "HSET", "PEXPIREAT"])
    );
    let bound_change = cost(
        &proxy,
        &mut monitor,
        "request changing data, bound",
        async {
            change(&manager, &bound).await;
        },
    )
    .await;
    assert_eq!(
        bound_change.round_trips, 2,
        "the index moves in the same script"
    );
    assert_eq!(bound_change.commands, ["HGETALL", "EVALSHA"]);
    assert_eq!(
        bound_change.scripted,
        names(&["HMGET", "HSET", "PEXPIREAT", "ZADD", "ZRANGE", "PEXPIREAT"])
    );
    let unbound_read = cost(&proxy, &mut monitor, "read-only request, unbound", async {
        read(&manager, &unbound).await;
    })
    .await;
    assert_eq!(unbound_read.round_trips, 2, "a load and a touch");
    assert_eq!(
        unbound_read.scripted,
        names(&["HMGET", "HSET", "PEXPIREAT"])
    );
    let bound_read = cost(&proxy, &mut monitor, "read-only request, bound", async {
        read(&manager, &bound).await;
    })
    .await;
    assert_eq!(bound_read.round_trips, 2);
    assert_eq!(bound_read.commands, ["HGETALL", "EVALSHA"]);

    // A user with 1,000 sessions.
    let many = user("many");
    let keys = bind_many(&direct, &Owner::new(many.clone()), 1000).await;
    monitor.skip().await;
    let mut listed = 0;
    let listing = cost(&proxy, &mut monitor, "listing 1,000 sessions", async {
        listed = counted.sessions_of(&many).await.expect("sessions_of").len();
    })
    .await;
    assert_eq!(listed, 1000);
    assert_eq!(listing.round_trips, 2, "the index, then one pipeline");
    assert_eq!(listing.commands.len(), 1001);
    assert_eq!(listing.commands[0], "ZRANGE");
    assert!(
        listing.commands[1..]
            .iter()
            .all(|command| command == "HMGET")
    );
    // Ten of them deleted one by one leave ten stale entries, which the next listing
    // prunes with one more script.
    for key in &keys[..10] {
        assert!(direct.delete(key).await.expect("delete"));
    }
    monitor.skip().await;
    let pruning = cost(
        &proxy,
        &mut monitor,
        "listing 990 sessions and 10 stale entries",
        async {
            listed = counted.sessions_of(&many).await.expect("sessions_of").len();
        },
    )
    .await;
    assert_eq!(listed, 990);
    assert_eq!(pruning.round_trips, 3, "the index, one pipeline, one prune");
    assert_eq!(pruning.commands.last().map(String::as_str), Some("EVALSHA"));
    assert_eq!(counted.user_index_len(&many).await.expect("len"), 990);
    monitor.skip().await;
    let mut removed = 0;
    let deleting = cost(&proxy, &mut monitor, "delete_many of 990 sessions", async {
        removed = counted.delete_many(&keys).await.expect("delete_many");
    })
    .await;
    assert_eq!(removed, 990, "the 10 deleted before are not counted");
    assert_eq!(deleting.round_trips, 1, "one pipeline");
    assert_eq!(
        deleting.commands,
        ["EVALSHA", "EVALSHA"],
        "500 sessions per script"
    );
    assert_eq!(counted.user_index_len(&many).await.expect("len"), 0);

    // The manager's "log out everywhere": a listing and one delete_many.
    let keys = bind_many(&direct, &Owner::new(many.clone()), 1000).await;
    monitor.skip().await;
    let mut ended = 0;
    let revoking = cost(
        &proxy,
        &mut monitor,
        "revoke_user of 1,000 sessions",
        async {
            ended = manager.revoke_user(&many, None).await.expect("revoke_user");
        },
    )
    .await;
    assert_eq!(ended, 1000);
    assert_eq!(revoking.round_trips, 3, "a listing and one pipeline");
    drop(keys);
    drop(monitor);

    // Times, on a direct connection with nothing watching.
    let timed = rolling_manager(&direct);
    let runs = 200;
    let plain = median(runs, || async {
        log_in(&timed, None).await;
    })
    .await;
    let binding = median(runs, || async {
        log_in(&timed, Some(&ada)).await;
    })
    .await;
    let unbound = log_in(&timed, None).await;
    let bound = log_in(&timed, Some(&ada)).await;
    let unbound_change = median(runs, || change(&timed, &unbound)).await;
    let bound_change = median(runs, || change(&timed, &bound)).await;
    let keys = bind_many(&direct, &Owner::new(many.clone()), 1000).await;
    let listing = median(20, || async {
        assert_eq!(direct.sessions_of(&many).await.expect("list").len(), 1000);
    })
    .await;
    direct.delete_many(&keys).await.expect("delete_many");
    let mut deletes = Vec::new();
    for _ in 0..5 {
        let keys = bind_many(&direct, &Owner::new(many.clone()), 1000).await;
        let started = Instant::now();
        assert_eq!(direct.delete_many(&keys).await.expect("delete_many"), 1000);
        deletes.push(started.elapsed());
    }
    deletes.sort_unstable();
    println!("figures (median, local Redis, no proxy):");
    println!("  log-in, no binding:             {plain:?} ({runs} runs)");
    println!("  log-in with set_user:           {binding:?}");
    println!("  request changing data, unbound: {unbound_change:?}");
    println!("  request changing data, bound:   {bound_change:?}");
    println!("  listing 1,000 sessions:         {listing:?} (20 runs)");
    println!(
        "  delete_many of 1,000 sessions:  {:?} (5 runs)",
        deletes[2]
    );
    support::delete_prefix(&server.url(), "ui:").await;
    Ok(())
}
