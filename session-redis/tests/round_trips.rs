//! Round trips per operation and per request, counted by Redis itself: `MONITOR` on a
//! private server lists every command a client sends (commands run inside a Lua script are
//! marked `lua` and are not round trips).

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use session_core::{
    ChangeSet, Data, Record, SessionConfig, SessionId, SessionManager, SessionStore, StoreKey,
    Timestamp,
};
use session_redis::redis;
use session_testkit::{TestError, TestResult, Tests, Trial};
use support::RedisServer;

fn main() -> std::process::ExitCode {
    Tests::new([Trial::tokio(
        "every_operation_is_one_round_trip",
        every_operation_is_one_round_trip,
    )
    .multi_thread(2)])
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

    /// Sends a mark and counts the client commands seen before it, or `None` if the mark
    /// did not show up in time.
    async fn count_until_mark(&mut self) -> Option<Vec<String>> {
        self.next_mark += 1;
        let mark = format!("round-trip-mark-{}", self.next_mark);
        let _: String = redis::cmd("ECHO")
            .arg(&mark)
            .query_async(&mut self.marks)
            .await
            .expect("ECHO");
        let mut commands = Vec::new();
        loop {
            match self.lines.recv_timeout(Duration::from_millis(500)) {
                Ok(line) if line.contains(&mark) => return Some(commands),
                Ok(line) if line.contains("round-trip-mark-") || line == "OK" => {}
                // Commands a script runs are not round trips.
                Ok(line) if line.contains(" lua] ") => {}
                Ok(line) => commands.push(command_name(&line)),
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => panic!("MONITOR ended"),
            }
        }
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
