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
    RedisStore::connect(&config).await.map_err(|err| {
        // The cause chain and the hint, on one line.
        let shown = format!("{err:#}").replace('\n', "; ");
        format!("Redis at {url} is unreachable: {shown}")
    })
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

    /// Starts a node of a Redis Cluster that owns no slot and knows no other node yet.
    fn start_cluster_node() -> Option<Self> {
        let bus_port = free_port();
        Self::start_with(
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                &bus_port.to_string(),
                "--cluster-announce-ip",
                "127.0.0.1",
                "--cluster-node-timeout",
                &RedisCluster::NODE_TIMEOUT.as_millis().to_string(),
            ]
            .map(str::to_owned)
            .to_vec(),
        )
    }

    /// A blocking connection to the server, for set-up and checks.
    pub(crate) fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("client")
            .get_connection()
            .expect("connect to the test's redis-server")
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

    /// Starts the server (again) on the same port and folder: with no data, unless its
    /// extra arguments turned persistence on.
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

/// A Redis Cluster of the test's own: three masters owning a third of the slots each and
/// one replica per master, six `redis-server` processes on spare loopback ports, every
/// one killed when dropped.
pub(crate) struct RedisCluster {
    /// Masters at 0, 1 and 2; the replica of master `i` at `i + 3`.
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// `cluster-node-timeout`: how long a master may be unreachable before its replica
    /// starts a failover.
    pub(crate) const NODE_TIMEOUT: Duration = Duration::from_millis(1000);

    /// Starts the six nodes, joins them, assigns the slots and the replicas, and waits
    /// until every node says the cluster is ok and every replica is in sync. `None` when
    /// there is no `redis-server` on this machine.
    pub(crate) fn start() -> Option<Self> {
        let mut nodes = Vec::new();
        for _ in 0..6 {
            nodes.push(RedisServer::start_cluster_node()?);
        }
        let mut connections: Vec<redis::Connection> =
            nodes.iter().map(RedisServer::connection).collect();
        let bus_port = |node: &mut redis::Connection| -> u16 {
            let port: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg("cluster-port")
                .query(node)
                .expect("CONFIG GET cluster-port");
            port[1].parse().expect("a port")
        };
        let first_bus = bus_port(&mut connections[0]);
        for connection in &mut connections[1..] {
            redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(nodes[0].port())
                .arg(first_bus)
                .query::<()>(connection)
                .expect("CLUSTER MEET");
        }
        for (master, range) in [(0, 0..=5460), (1, 5461..=10922), (2, 10923..=16383)] {
            redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(*range.start())
                .arg(*range.end())
                .query::<()>(&mut connections[master])
                .expect("assign slots");
        }
        for connection in &mut connections {
            wait_for("every node to know the others", || {
                let nodes: String = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query(connection)
                    .expect("CLUSTER NODES");
                nodes.lines().count() == 6
            });
        }
        for master in 0..3 {
            let id: String = redis::cmd("CLUSTER")
                .arg("MYID")
                .query(&mut connections[master])
                .expect("CLUSTER MYID");
            redis::cmd("CLUSTER")
                .arg("REPLICATE")
                .arg(id)
                .query::<()>(&mut connections[master + 3])
                .expect("CLUSTER REPLICATE");
        }
        for connection in &mut connections {
            wait_for("the cluster to become ready", || {
                cluster_info(connection).contains("cluster_state:ok")
            });
        }
        for connection in &mut connections[3..] {
            wait_for("the replicas to sync", || {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(connection)
                    .expect("INFO replication");
                info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0")
            });
        }
        Some(Self { nodes })
    }

    /// The masters' URLs, the seed nodes a store is given.
    pub(crate) fn master_urls(&self) -> Vec<String> {
        self.nodes[..3].iter().map(RedisServer::url).collect()
    }

    /// Master `i` (0 to 2).
    pub(crate) fn master(&mut self, i: usize) -> &mut RedisServer {
        &mut self.nodes[i]
    }

    /// The replica of master `i`.
    pub(crate) fn replica_of(&self, i: usize) -> &RedisServer {
        &self.nodes[i + 3]
    }
}

/// `CLUSTER INFO` of the node at the end of `connection` (empty if it does not answer).
pub(crate) fn cluster_info(connection: &mut redis::Connection) -> String {
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query(connection)
        .unwrap_or_default()
}

/// Polls `done` every 50 ms for up to 20 s; panics naming `what` if it never holds.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback TCP proxy in front of a Redis server that counts round trips: the times a
/// client sent something and then had to wait for an answer.
///
/// It holds every reply until the client has sent nothing for [`RoundTripProxy::QUIET`],
/// so a client can only send again after a reply it waited for: each batch of bytes that
/// comes after a reply is one round trip, however many commands it carries (a pipeline is
/// one), and no two dependent requests can be taken for one. A client that pauses for
/// longer than `QUIET` in the middle of writing one request would be counted twice;
/// loopback writes of a few hundred kilobytes never do.
pub(crate) struct RoundTripProxy {
    port: u16,
    round_trips: std::sync::Arc<std::sync::atomic::AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl RoundTripProxy {
    /// How long the client must be silent before a reply is passed on.
    pub(crate) const QUIET: Duration = Duration::from_millis(25);

    /// Starts a proxy to the Redis at `upstream_port` on a spare loopback port.
    pub(crate) async fn start(upstream_port: u16) -> Self {
        use std::sync::Arc;
        use std::sync::atomic::AtomicU64;

        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let round_trips = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&round_trips);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) =
                    tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, upstream_port)).await
                else {
                    continue;
                };
                tokio::spawn(relay(client, server, Arc::clone(&counter)));
            }
        });
        Self {
            port,
            round_trips,
            accept,
        }
    }

    /// The proxy's URL, for a client to connect to instead of the server's.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Round trips made through the proxy so far, by every connection.
    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for RoundTripProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Relays one connection both ways, holding replies until the client is quiet.
async fn relay(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    round_trips: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let last_request = Arc::new(Mutex::new(Instant::now()));
    let waiting = Arc::new(AtomicBool::new(false));
    let (sent_at, sent) = (Arc::clone(&last_request), Arc::clone(&waiting));
    let upstream = tokio::spawn(async move {
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    *sent_at.lock().expect("clock") = Instant::now();
                    sent.store(true, Ordering::SeqCst);
                    if server_write.write_all(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = match server_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        loop {
            let quiet_for = last_request.lock().expect("clock").elapsed();
            if quiet_for >= RoundTripProxy::QUIET {
                break;
            }
            tokio::time::sleep(RoundTripProxy::QUIET - quiet_for).await;
        }
        if waiting.swap(false, Ordering::SeqCst) {
            round_trips.fetch_add(1, Ordering::SeqCst);
        }
        if client_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    upstream.abort();
}
