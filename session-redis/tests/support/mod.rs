//! Shared by the Redis test binaries: where the test Redis is, random key prefixes and
//! their cleanup, and a private `redis-server` that a test can pause, kill and restart.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use session_core::SessionId;
use session_redis::{RedisConfig, RedisStore, redis};
use session_testkit::TestError;

/// The Redis the tests use: `SESSION_TEST_REDIS_URL`, or the loopback default.
pub(crate) fn redis_url() -> String {
    std::env::var("SESSION_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The skip of a test that needs a `redis-server` of its own on a machine without one
/// (a failure under `SESSION_REQUIRE_SERVICES=1`).
pub(crate) fn no_redis_server() -> TestError {
    TestError::skip("no redis-server on this machine")
}

/// A fresh key prefix, so that each test's keys are its own and can be removed after.
pub(crate) fn random_prefix(test: &str) -> String {
    let id =
        SessionId::generate(22).map_or_else(|_| "fallback".to_owned(), |id| id.expose().to_owned());
    format!("session-redis-test:{test}:{id}:")
}

/// A store on the test Redis under `prefix`, or why there is none.
pub(crate) async fn open_store(
    url: &str,
    prefix: &str,
    timeout: Duration,
) -> Result<RedisStore, String> {
    let config = RedisConfig::new(url)
        .with_prefix(prefix)
        .with_connect_timeout(Duration::from_secs(2))
        .with_response_timeout(timeout);
    RedisStore::connect(&config)
        .await
        .map_err(|err| format!("Redis at {url} is unreachable: {err}"))
}

/// Every key under `prefix`, found with `SCAN`.
pub(crate) async fn keys_under(
    connection: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> redis::RedisResult<Vec<String>> {
    let pattern = format!("{}*", glob_escape(prefix));
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(connection)
            .await?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// Removes every key under `prefix` (the cleanup of a test or a conformance case).
pub(crate) async fn delete_prefix(url: &str, prefix: &str) {
    let result = async {
        let client = redis::Client::open(url)?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let keys = keys_under(&mut connection, prefix).await?;
        // One key per DEL: keys of a cluster node live in different slots.
        for chunk in keys.chunks(500) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("DEL").arg(key).ignore();
            }
            pipe.query_async::<()>(&mut connection).await?;
        }
        redis::RedisResult::Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(30), result).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => eprintln!("cleanup of {prefix}* failed: {err}"),
        Err(_) => eprintln!("cleanup of {prefix}* timed out"),
    }
}

fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A loopback port that nothing listens on (at the time of the call).
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// The `redis-server` binary, if this machine has one.
pub(crate) fn redis_server_binary() -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("redis-server"))
                .collect()
        })
        .unwrap_or_default();
    candidates
        .into_iter()
        .chain([PathBuf::from("/usr/bin/redis-server")])
        .find(|candidate| candidate.is_file())
}

/// A `redis-server` of the test's own on a loopback port, without persistence; killed when
/// dropped, whatever happened in the test.
pub(crate) struct RedisServer {
    binary: PathBuf,
    port: u16,
    extra_args: Vec<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a spare port and waits until it accepts connections. `None`
    /// when there is no `redis-server` on this machine.
    pub(crate) fn start() -> Option<Self> {
        Self::start_with(Vec::new())
    }

    /// Starts a single-node Redis Cluster owning every slot, and waits until it serves.
    pub(crate) fn start_cluster() -> Option<Self> {
        let bus_port = free_port();
        let server = Self::start_with(
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                &bus_port.to_string(),
                "--cluster-announce-ip",
                "127.0.0.1",
            ]
            .map(str::to_owned)
            .to_vec(),
        )?;
        let client = redis::Client::open(server.url()).expect("client");
        let mut connection = client
            .get_connection()
            .expect("connect to the cluster node");
        redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(0)
            .arg(16383)
            .query::<()>(&mut connection)
            .expect("assign every slot");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut connection)
                .expect("CLUSTER INFO");
            if info.contains("cluster_state:ok") {
                return Some(server);
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not become ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a server with `extra_args` after the usual ones (later arguments win); an
    /// argument `{port}` stands for the server's port.
    pub(crate) fn start_with(extra_args: Vec<String>) -> Option<Self> {
        let binary = redis_server_binary()?;
        let port = free_port();
        let extra_args = extra_args
            .into_iter()
            .map(|arg| arg.replace("{port}", &port.to_string()))
            .collect();
        let mut server = Self {
            binary,
            port,
            extra_args,
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        server.restart();
        Some(server)
    }

    /// The server's URL.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the running server.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Starts the server (again) on the same port, with no data.
    pub(crate) fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, `KILL`) to the server process.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Kills the server (SIGKILL) and waits for it to be gone.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A stopped process still dies of SIGKILL.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
