//! Clients that hang up at any point, on every store and both frameworks: 1,000 requests
//! to `GET /incr` over raw TCP, each abandoned at a random moment (before the request is
//! whole, as soon as it is sent, while the session loads or is written, or once the answer
//! has begun), a quarter of them creating sessions, with the session lock on, 16 at a time.
//!
//! Afterwards, counted on the servers where there is one and in the process otherwise:
//! - no leaked transaction, lock or connection: PostgreSQL backends of the store idle in
//!   a transaction or holding locks, MariaDB's open InnoDB transactions, Redis clients
//!   and the process's open files above their count before the storm; every session's
//!   lease free (a lock with a fresh token is granted at once); no temporary file left by
//!   the file store;
//! - the next request of each session is served normally, and sequential requests after
//!   the storm see their own writes (the counter goes up by one each time).
//!
//! A store whose server is unreachable is skipped loudly (a failure under
//! `SESSION_REQUIRE_SERVICES=1`). Each run prints a `figure:` line.

mod support;

use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{LockToken, SessionId, SessionManager, StoreKey};
use session_example::Framework;
use session_testkit::{TestResult, Tests, Trial};
use support::stores::*;
use support::{App, fetch, get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Requests abandoned per store and framework.
const ABANDONED: usize = 1000;
/// Sessions the abandoned requests are spread over.
const SESSIONS: usize = 50;
/// Abandoned requests in flight at once.
const CONCURRENCY: usize = 16;
/// How long leaked state may take to go away on its own (a spawned unlock, a connection
/// the server is closing) before it counts as leaked.
const SETTLE: Duration = Duration::from_secs(5);

fn main() -> std::process::ExitCode {
    Tests::new(STORES.iter().flat_map(|&store| {
        Framework::ALL.into_iter().map(move |framework| {
            Trial::tokio(
                format!("abandoned_requests_leak_nothing_on_{store}_on_{framework}"),
                move || abandoned_requests_leak_nothing(store, framework),
            )
            .multi_thread(2)
        })
    }))
    // Each counts the process's open files, which another test would change.
    .one_at_a_time()
    .main()
}

/// A random number below `bound`, from a fresh randomly seeded hasher.
fn random_below(bound: u64) -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(Instant::now()) % bound.max(1)
}

/// Where a request is abandoned.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// Half the request sent, then the connection closed.
    MidRequest,
    /// The whole request sent, then closed at once: the session is loading.
    Sent,
    /// The whole request sent, then closed up to 3 ms later: loading or writing.
    Later(Duration),
    /// Closed after the first bytes of the answer arrived.
    MidAnswer,
}

impl Moment {
    fn random() -> Self {
        match random_below(4) {
            0 => Self::MidRequest,
            1 => Self::Sent,
            2 => Self::Later(Duration::from_micros(random_below(3000))),
            _ => Self::MidAnswer,
        }
    }
}

/// Sends `GET /incr` with `cookie` over a connection of its own and hangs up at `moment`.
async fn abandon(addr: SocketAddr, cookie: Option<&str>, moment: Moment) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let cookie = cookie
        .map(|c| format!("cookie: {c}\r\n"))
        .unwrap_or_default();
    let request = format!("GET /incr HTTP/1.1\r\nhost: {addr}\r\n{cookie}\r\n");
    let bytes = request.as_bytes();
    match moment {
        Moment::MidRequest => {
            let _ = stream.write_all(&bytes[..bytes.len() / 2]).await;
        }
        Moment::Sent => {
            let _ = stream.write_all(bytes).await;
        }
        Moment::Later(wait) => {
            let _ = stream.write_all(bytes).await;
            tokio::time::sleep(wait).await;
        }
        Moment::MidAnswer => {
            let _ = stream.write_all(bytes).await;
            let mut first = [0u8; 8];
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut first)).await;
        }
    }
    drop(stream);
}

/// What might leak, counted at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    /// Sessions whose lease is held.
    held: usize,
    /// Open files on the store's own files.
    store_files: usize,
    /// This process's connections to the store's server.
    connections: usize,
    /// The process's other open files (the HTTP server's sockets among them).
    other_files: usize,
    /// What the server counts.
    server: ServerCounts,
    /// Temporary files the store left.
    stray: usize,
}

impl Snapshot {
    async fn take(run: &Run<'_>) -> Self {
        let (store_files, connections, other_files) = open_files(run.folder, run.port);
        Self {
            held: held_leases(run.manager, run.keys).await,
            store_files,
            connections,
            other_files,
            server: server_counts(run.store, run.name).await,
            stray: temp_files(run.folder),
        }
    }

    /// What leaked since `before`: empty when nothing did.
    fn leaks(&self, before: &Self, store: &str) -> Vec<String> {
        let mut leaks = Vec::new();
        let mut check = |leaked: bool, what: String| {
            if leaked {
                leaks.push(what);
            }
        };
        check(self.held > 0, format!("{} session leases held", self.held));
        check(
            self.other_files > before.other_files,
            format!(
                "{} open files, {} before",
                self.other_files, before.other_files
            ),
        );
        check(
            self.store_files > store_files_bound(store),
            format!("{} of the store's files open", self.store_files),
        );
        check(
            self.connections > before.connections.max(POOL),
            format!("{} connections to the server", self.connections),
        );
        check(
            self.server.transactions > before.server.transactions,
            format!(
                "{} open transactions, {} before",
                self.server.transactions, before.server.transactions
            ),
        );
        check(
            self.server.locks > before.server.locks,
            format!(
                "{} locks held on the server, {} before",
                self.server.locks, before.server.locks
            ),
        );
        // A connection the server still has and the process no longer does.
        let orphaned = |snapshot: &Self| snapshot.server.connections - snapshot.connections as i64;
        check(
            orphaned(self) > orphaned(before),
            format!(
                "{} server connections for {} of the process (before {} for {})",
                self.server.connections,
                self.connections,
                before.server.connections,
                before.connections
            ),
        );
        check(self.stray > 0, format!("{} temporary files", self.stray));
        leaks
    }
}

/// One storm's store and what its snapshots look at.
struct Run<'a> {
    store: &'a str,
    name: &'a str,
    manager: &'a SessionManager,
    keys: &'a [StoreKey],
    folder: &'a Path,
    port: Option<u16>,
}

/// Sessions whose lease is held: a lock with a fresh token is refused.
async fn held_leases(manager: &SessionManager, keys: &[StoreKey]) -> usize {
    let mut held = 0;
    for key in keys {
        let token = LockToken::generate().expect("token");
        let granted = manager
            .store()
            .lock(key, &token, Duration::from_secs(5))
            .await
            .expect("lock");
        if granted {
            manager.store().unlock(key, &token).await.expect("unlock");
        } else {
            held += 1;
        }
    }
    held
}

/// The counter in `session`'s answer to `GET /incr`, checked to be a success.
async fn incr(app: &App, cookie: &str) -> u64 {
    let (status, _, body) = app.send(get("/incr", Some(cookie))).await;
    assert_eq!(status, 200, "GET /incr: {body}");
    body.trim().parse().expect("a counter")
}

async fn abandoned_requests_leak_nothing(store: &str, framework: Framework) -> TestResult {
    let name = unique("storm", store, framework);
    let folder = tempfile::tempdir().expect("a temporary folder");
    let manager = manager_for(
        store,
        config(
            store,
            &name,
            folder.path(),
            serde_json::json!({"lock": true}),
        ),
    )
    .await?;
    let app = App::over(framework, manager.clone());

    // The sessions, each with a counter of 1, made CONCURRENCY at a time so that the
    // pools have opened the connections the storm will use.
    let mut created = tokio::task::JoinSet::new();
    let mut answers = Vec::new();
    for _ in 0..SESSIONS {
        let (client, addr) = (app.client.clone(), app.addr);
        created.spawn(async move { fetch(&client, addr, framework, get("/incr", None)).await });
        if created.len() >= CONCURRENCY {
            answers.extend(created.join_next().await);
        }
    }
    answers.extend(created.join_all().await.into_iter().map(Ok));
    let mut cookies = Vec::new();
    for answer in answers {
        let (status, cookie, body) = answer.expect("a first GET /incr");
        assert_eq!((status, body.as_str()), (200, "1"), "a first GET /incr");
        cookies.push(cookie.expect("a session cookie"));
    }
    let keys: Vec<StoreKey> = cookies
        .iter()
        .map(|cookie| {
            let value = cookie.split_once('=').expect("name=value").1;
            SessionId::parse(value)
                .expect("a plain session id")
                .store_key()
        })
        .collect();
    let port = server_port(store);
    let run = Run {
        store,
        name: &name,
        manager: &manager,
        keys: &keys,
        folder: folder.path(),
        port,
    };
    let before = Snapshot::take(&run).await;

    // The storm.
    let started = Instant::now();
    let cookies = Arc::new(cookies);
    let mut tasks = tokio::task::JoinSet::new();
    let mut moments = [0usize; 4];
    for i in 0..ABANDONED {
        let moment = Moment::random();
        moments[match moment {
            Moment::MidRequest => 0,
            Moment::Sent => 1,
            Moment::Later(_) => 2,
            Moment::MidAnswer => 3,
        }] += 1;
        // A quarter create sessions; the rest go to the existing ones.
        let cookie = (i % 4 != 0).then(|| cookies[i % SESSIONS].clone());
        let addr = app.addr;
        tasks.spawn(async move { abandon(addr, cookie.as_deref(), moment).await });
        while tasks.len() >= CONCURRENCY {
            tasks.join_next().await;
        }
    }
    while tasks.join_next().await.is_some() {}
    let storm = started.elapsed();

    // Leaks: each count must come back to where it was within SETTLE.
    let deadline = Instant::now() + SETTLE;
    let after = loop {
        let after = Snapshot::take(&run).await;
        if after.leaks(&before, store).is_empty() || Instant::now() >= deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let leaks = after.leaks(&before, store);
    assert!(
        leaks.is_empty(),
        "{store} on {framework}: leaked after the storm: {leaks:?}"
    );

    // Each session is served normally, and sees its own writes.
    let mut applied = 0;
    for cookie in cookies.iter() {
        let next = incr(&app, cookie).await;
        assert!(next >= 2, "{store}: the session lost its counter ({next})");
        applied += next - 2;
        for step in 1..=2 {
            assert_eq!(
                incr(&app, cookie).await,
                next + step,
                "{store}: a sequential request did not see the one before"
            );
        }
    }
    app.stop().await;
    println!(
        "figure: {store} | {ABANDONED} requests abandoned on {framework} ({} mid-request, {} \
         at once, {} while loading or writing, {} mid-answer; {CONCURRENCY} at a time, lock on) \
         | {storm:?}; {applied} of the abandoned increments were applied; nothing leaked \
         (before: {before:?}; after: {after:?}); every session served, sequential requests \
         see their writes",
        moments[0], moments[1], moments[2], moments[3],
    );
    Ok(())
}
