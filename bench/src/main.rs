//! `cargo xtask bench`: the example app against a tower-sessions peer, store by store, in
//! one run, with the same backend, load and machine.
//!
//! ```text
//! session-bench [--rounds 5] [--duration 10] [--connections 50] [--sessions 1000]
//!               [--stores memory,file,sqlite,postgres,mysql,redis,...] [--quick]
//!               [--scale | --scale-only | --users-only | --lock-only | --actix-only]
//!               [--no-docs]
//! session-bench --check | --update-readme
//! ```
//!
//! For each store and round it starts ours, then the peer (alternating), each on a wiped
//! store: (a) existing sessions: creates the sessions, then drives `GET /incr` with their
//! cookies in rotation; reads every counter back and checks that the increments equal the
//! successful requests; (b) a new session per request. A no-session app gives the ceiling,
//! for both workloads: it gets requests with cookies of our shape, which it ignores, and
//! requests without.
//! Results go to `target/bench/` as Markdown, JSON and an SVG chart of the ratios. A full
//! run (no `--quick`, `--stores` or `--no-docs`) also replaces the generated sections of
//! `docs/benchmarks.md`, the chart `docs/bench-ratios.svg` and the README's summary table;
//! `--scale-only` replaces the scale section, `--users-only` the section on sessions of
//! users (log-in with and without a binding, listing and revoking 1,000 sessions) and
//! `--lock-only` the section on same-session concurrency (one hot session: increments
//! lost with the lock off, with it on, and with `update`; the lock's cost on distinct
//! sessions) and `--actix-only` the section on actix-web (the example app on actix-web
//! against actix-session, on Redis, both workloads). `--check` tells whether the README's
//! summary matches `docs/benchmarks.md`, and `--update-readme` rewrites it from there;
//! neither measures anything.

mod actix;

mod cpu;
mod loadgen;
mod lock;
mod redis_ceiling;
mod report;
mod scale;
mod users;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadgen::LoadResult;

pub(crate) const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
pub(crate) const MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";
pub(crate) const REDIS_URL: &str = "redis://127.0.0.1:6379/9";

/// The stores a full run measures. `postgres` and `mysql` give each app its library's
/// default ping-before-use setting; their `-ping` and `-noping` forms give both apps the
/// same one (see [`store_variant`]).
const ALL_STORES: [&str; 10] = [
    "memory",
    "file",
    "sqlite",
    "postgres",
    "postgres-ping",
    "postgres-noping",
    "mysql",
    "mysql-ping",
    "mysql-noping",
    "redis",
];

/// The pool size both apps get on PostgreSQL and MariaDB: sqlx's default, and ours.
pub(crate) const DB_POOL: u32 = 10;

/// The store a benchmark store runs on, and the ping-before-use setting both apps get on
/// it: `postgres-ping` is PostgreSQL with both apps pinging a connection before each use,
/// `postgres-noping` with neither (`mysql-…` alike); `None` leaves each library its
/// default (sqlx's pool pings, ours does not).
pub(crate) fn store_variant(store: &str) -> (&str, Option<bool>) {
    for base in ["postgres", "mysql"] {
        match store.strip_prefix(base) {
            Some("-ping") => return (&store[..base.len()], Some(true)),
            Some("-noping") => return (&store[..base.len()], Some(false)),
            _ => {}
        }
    }
    (store, None)
}

/// Sequential requests of each kind over which the store work per request is counted.
pub(crate) const SEQUENTIAL_REQUESTS: usize = 200;

/// What the program is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    /// Measure, then write the report.
    Measure,
    /// Only check that the README's summary matches the full report.
    Check,
    /// Only rewrite the README's summary from the full report.
    UpdateReadme,
}

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    rounds: usize,
    duration: Duration,
    connections: usize,
    sessions: usize,
    stores: Vec<String>,
    scale: bool,
    /// Only the scale measurements, no HTTP benchmark.
    scale_only: bool,
    /// Only the costs of sessions bound to users, no HTTP benchmark.
    users_only: bool,
    /// Only same-session concurrency and the lock's cost, no comparison with the peer.
    lock_only: bool,
    /// Only the example app on actix-web against actix-session, on Redis.
    actix_only: bool,
    /// Whether the results replace the figures in `docs/` and the README: only a full run's
    /// do, so a quick or partial run never leaves the published report incomplete.
    writes_docs: bool,
    task: Task,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Settings, String> {
    let mut settings = Settings {
        rounds: 5,
        duration: Duration::from_secs(10),
        connections: 50,
        sessions: 1000,
        stores: ALL_STORES.map(String::from).to_vec(),
        scale: false,
        scale_only: false,
        users_only: false,
        lock_only: false,
        actix_only: false,
        writes_docs: true,
        task: Task::Measure,
    };
    let mut quick = false;
    let mut no_docs = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<u64, String> {
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            value
                .parse()
                .map_err(|_| format!("{flag} {value}: not a number"))
        };
        match arg.as_str() {
            // The usage ends the program here, before anything is started or measured, so
            // the parser stays a function from arguments to settings or an error.
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--rounds" => settings.rounds = number("--rounds")?.max(1) as usize,
            "--duration" => settings.duration = Duration::from_secs(number("--duration")?.max(1)),
            "--connections" => settings.connections = number("--connections")?.max(1) as usize,
            "--sessions" => settings.sessions = number("--sessions")?.max(1) as usize,
            "--stores" => {
                let list = args.next().ok_or("--stores needs a list")?;
                settings.stores = list.split(',').map(str::to_owned).collect();
            }
            "--quick" => {
                settings.rounds = 1;
                settings.duration = Duration::from_secs(3);
                settings.sessions = 200;
                quick = true;
            }
            "--scale" => settings.scale = true,
            "--scale-only" => {
                settings.scale = true;
                settings.scale_only = true;
            }
            "--users-only" => settings.users_only = true,
            "--lock-only" => settings.lock_only = true,
            "--actix-only" => settings.actix_only = true,
            "--no-docs" => no_docs = true,
            "--check" => settings.task = Task::Check,
            "--update-readme" => settings.task = Task::UpdateReadme,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let all_stores = settings.stores.iter().eq(ALL_STORES.iter());
    // The scale figures do not depend on the HTTP settings: only `--no-docs` keeps them out.
    // `--actix-only` measures Redis alone whatever `--stores` says: only `--quick` and
    // `--no-docs` keep its figures out.
    settings.writes_docs = !no_docs
        && (settings.scale_only
            || (settings.actix_only && !quick)
            || (all_stores && (settings.users_only || !quick)));
    Ok(settings)
}

/// Which application a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// The example app, on axum.
    Ours,
    /// The tower-sessions peer.
    Peer,
    /// The no-session app: the ceiling of the HTTP stack.
    Baseline,
    /// The example app on actix-web (`--framework actix`).
    OursActix,
    /// The actix-session peer.
    ActixPeer,
}

impl Side {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Peer => "tower-sessions",
            Self::Baseline => "no session",
            Self::OursActix => "ours (actix)",
            Self::ActixPeer => "actix-session",
        }
    }
}

/// One measured run.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub(crate) store: String,
    pub(crate) side: Side,
    pub(crate) mode: &'static str,
    pub(crate) round: usize,
    pub(crate) result: LoadResult,
    /// Increments lost (existing-sessions mode only).
    pub(crate) lost: Option<i64>,
    /// CPU time per successful request: of the application, the store's server and the
    /// load generator.
    pub(crate) cpu: cpu::PerRequest,
}

/// A running server process, killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Server {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The CPU figures of a run, for the progress lines.
fn describe_cpu(cpu: cpu::PerRequest) -> String {
    let mut text = format!("cpu/req app {:>5.1} µs", cpu.app_us.unwrap_or(f64::NAN));
    if let Some(server) = cpu.server_us {
        text.push_str(&format!(" + server {server:>5.1} µs"));
    }
    text
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> Result<SocketAddr, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map_err(|e| e.to_string())
}

fn release_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "no executable folder".into())
}

fn command_ok(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

pub(crate) fn psql(sql: &str) -> Result<String, String> {
    psql_in("test", sql)
}

fn psql_in(database: &str, sql: &str) -> Result<String, String> {
    command_ok(
        "psql",
        &[
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            database,
            "-qtAc",
            sql,
        ],
    )
}

fn mariadb(sql: &str) -> Result<String, String> {
    command_ok(
        "mariadb",
        &["-h", "127.0.0.1", "-uroot", "test", "-Nse", sql],
    )
}

fn redis_cli(args: &[&str]) -> Result<String, String> {
    let mut all = vec!["-h", "127.0.0.1", "-p", "6379", "-n", "9"];
    all.extend_from_slice(args);
    command_ok("redis-cli", &all)
}

/// Empties what both applications keep for `store`.
fn wipe(store: &str) -> Result<(), String> {
    match store_variant(store).0 {
        "postgres" => {
            psql("DROP TABLE IF EXISTS bench_session; DROP SCHEMA IF EXISTS tower_sessions CASCADE")
                .map(drop)
        }
        "mysql" => {
            mariadb("DROP TABLE IF EXISTS bench_session; DROP DATABASE IF EXISTS tower_sessions")
                .map(drop)
        }
        "redis" => redis_cli(&["FLUSHDB"]).map(drop),
        _ => Ok(()),
    }
}

/// Whether `store` is a client-side type (`cookie`, `jwt`): measured next to the memory
/// store, with no peer (tower-sessions has no cookie store to compare with).
fn is_client_side(store: &str) -> bool {
    matches!(store, "cookie" | "jwt")
}

/// Whether the peer app has a `store` of its own to measure against ours (tower-sessions
/// reads its id from the cookie only).
fn has_peer(store: &str) -> bool {
    store != "file" && !is_client_side(store) && credential(store) == loadgen::Credential::Cookie
}

/// How requests to ours on `store` carry their session.
fn credential(store: &str) -> loadgen::Credential {
    match store {
        "memory-header" => loadgen::Credential::Header,
        "memory-bearer" => loadgen::Credential::Bearer,
        _ => loadgen::Credential::Cookie,
    }
}

/// Our configuration `type` for the benchmark's `store`, and its URL if it has one (a
/// SQLite store keeps its database at `sqlite_file`).
pub(crate) fn our_store(
    store: &str,
    sqlite_file: &Path,
) -> Result<(&'static str, Option<String>), String> {
    Ok(match store_variant(store).0 {
        "memory" => ("memory", None),
        "file" => ("file", None),
        // Client-side types: the whole session in the cookie, no store.
        "cookie" => ("cookie", None),
        "jwt" => ("jwt", None),
        // The memory store with the token in a header of its own, or a bearer token.
        "memory-header" | "memory-bearer" => ("memory", None),
        "sqlite" => (
            "db",
            Some(format!("sqlite://{}?mode=rwc", sqlite_file.display())),
        ),
        "postgres" => ("db", Some(POSTGRES_URL.to_owned())),
        "mysql" => ("db", Some(MYSQL_URL.to_owned())),
        "redis" => ("redis", Some(REDIS_URL.to_owned())),
        other => return Err(format!("unknown store {other}")),
    })
}

async fn start(side: Side, store: &str, scratch: &Path) -> Result<Server, String> {
    start_with(side, store, scratch, &Launch::default()).await
}

/// How [`start_with`] changes a server's start.
#[derive(Debug, Default)]
pub(crate) struct Launch<'a> {
    /// Environment variables on top of the store's configuration (`SESSION__LOCK`, ...).
    pub(crate) env: &'a [(&'a str, &'a str)],
    /// A file for the server's standard error instead of ours: a server that logs a
    /// warning per request under load would flood the progress lines, and a server that
    /// refuses to start leaves its reason there.
    pub(crate) stderr: Option<&'a Path>,
}

/// Starts `side` on `store` with the changes of `launch`, and waits until it answers.
///
/// # Errors
/// If it cannot be started, exits before it answers, or does not answer within 30 s.
pub(crate) async fn start_with(
    side: Side,
    store: &str,
    scratch: &Path,
    launch: &Launch<'_>,
) -> Result<Server, String> {
    let addr = free_addr()?;
    let dir = release_dir()?;
    let (base, ping) = store_variant(store);
    let is_db = matches!(base, "postgres" | "mysql");
    let mut command = match side {
        Side::Ours | Side::OursActix => {
            let mut command = Command::new(dir.join("session-example"));
            command
                .args(["--addr", &addr.to_string()])
                .env("SESSION__GC__ON", "false");
            if side == Side::OursActix {
                command.args(["--framework", "actix"]);
            }
            let (kind, url) = our_store(store, &scratch.join("ours.db"))?;
            command.env("SESSION__TYPE", kind);
            command.env("SESSION__ADAPTER__FILE__PATH", scratch.join("files"));
            if let Some(url) = url {
                command.env(
                    format!("SESSION__ADAPTER__{}__URL", kind.to_uppercase()),
                    url,
                );
            }
            if let Some(transport) = store.strip_prefix("memory-") {
                command.env("SESSION__TRANSPORT", transport);
            }
            if is_client_side(store) {
                // The generator sends cookies: the jwt type travels in one too here.
                command
                    .env(
                        "SESSION__SECRET",
                        "the benchmark's client-side secret, 32+ bytes",
                    )
                    .env("SESSION__TRANSPORT", "cookie");
            }
            command.env("SESSION__ADAPTER__DB__PREFIX", "bench_");
            if is_db {
                command.env("SESSION__ADAPTER__DB__MAX_CONNECTIONS", DB_POOL.to_string());
            }
            if let Some(ping) = ping {
                command.env(
                    "SESSION__ADAPTER__DB__TEST_BEFORE_ACQUIRE",
                    ping.to_string(),
                );
            }
            command.env("SESSION__ADAPTER__REDIS__PREFIX", "bench:");
            command
        }
        Side::Peer | Side::Baseline => {
            let url = match base {
                "sqlite" => format!("sqlite://{}?mode=rwc", scratch.join("peer.db").display()),
                "postgres" => POSTGRES_URL.to_owned(),
                "mysql" => MYSQL_URL.to_owned(),
                "redis" => REDIS_URL.to_owned(),
                _ => String::new(),
            };
            let mut command = Command::new(dir.join("session-bench-peer"));
            let store = if side == Side::Baseline { "none" } else { base };
            command.args(["--addr", &addr.to_string(), "--store", store, "--url", &url]);
            if is_db {
                command.args(["--pool", &DB_POOL.to_string()]);
            }
            if let Some(ping) = ping {
                command.args(["--ping", if ping { "on" } else { "off" }]);
            }
            command
        }
        Side::ActixPeer => {
            if store != "redis" {
                return Err(format!(
                    "the actix-session peer has no {store} store, only redis"
                ));
            }
            let mut command = Command::new(dir.join("session-bench-actix-peer"));
            command.args([
                "--addr",
                &addr.to_string(),
                "--store",
                store,
                "--url",
                REDIS_URL,
            ]);
            command
        }
    };
    command.envs(launch.env.iter().copied());
    if let Some(path) = launch.stderr {
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        command.stderr(file);
    }
    let child = command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("cannot start {side:?}: {e} (run through `cargo xtask bench`, which builds it)")
        })?;
    let mut server = Server { child, addr };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((status, _, _)) = loadgen::get(addr, "/healthz", None).await
            && status.is_success()
        {
            return Ok(server);
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!(
                "{} on {store} exited at start ({status})",
                side.label()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("{} on {store} did not start", side.label()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Cookies for the no-session app's existing-sessions run. It sets none and reads none,
/// but it gets requests of the same size as ours: a cookie of our default name and id
/// length, so that the baseline of that run parses and carries the same bytes.
fn baseline_cookies(count: usize) -> Result<Vec<String>, String> {
    (0..count)
        .map(|_| {
            let id = session_core::SessionId::generate(session_core::DEFAULT_ID_LENGTH)
                .map_err(|e| e.to_string())?;
            Ok(format!(
                "{}={}",
                session_core::SessionConfig::default().name,
                id.expose()
            ))
        })
        .collect()
}

/// Runs both workloads on `side` over a wiped `store`, adds them to `runs` and prints
/// their progress lines: (a) existing sessions, with the increments lost; (b) a new
/// session per request.
async fn measure(
    settings: &Settings,
    side: Side,
    store: &str,
    round: usize,
    runs: &mut Vec<Run>,
) -> Result<(), String> {
    wipe(store)?;
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let server = start(side, store, scratch.path()).await?;
    let cookies = Arc::new(if side == Side::Baseline {
        baseline_cookies(settings.sessions)?
    } else {
        loadgen::create_sessions_as(server.addr, settings.sessions, credential(store)).await?
    });
    let (result, cpu) = timed_run(settings, &server, store, Arc::clone(&cookies)).await;
    // A client-side session's counter travels in its token, and the generator sends each
    // session's first token again and again: there is no count to compare.
    let lost = if side == Side::Baseline || is_client_side(store) {
        None
    } else {
        let counters = loadgen::read_counters(server.addr, &cookies).await?;
        let increments: i64 = counters.iter().map(|&c| c as i64 - 1).sum();
        Some(result.ok as i64 - increments)
    };
    print_run(
        Run {
            store: store.to_owned(),
            side,
            mode: "existing",
            round,
            result,
            lost,
            cpu,
        },
        runs,
    );
    // The same server, now with a new session per request.
    let (result, cpu) = timed_run(settings, &server, store, Arc::new(Vec::new())).await;
    print_run(
        Run {
            store: store.to_owned(),
            side,
            mode: "new",
            round,
            result,
            lost: None,
            cpu,
        },
        runs,
    );
    drop(server);
    wipe(store)
}

/// Drives `GET /incr` on `server` for the configured time, sending `cookies` in rotation
/// (none: a new session per request), and reads the CPU the run cost.
async fn timed_run(
    settings: &Settings,
    server: &Server,
    store: &str,
    cookies: Arc<Vec<String>>,
) -> (LoadResult, cpu::PerRequest) {
    let store = store_variant(store).0;
    let before = cpu::Snapshot::take(server.pid(), store);
    let result = loadgen::run(
        server.addr,
        "/incr",
        cookies,
        settings.connections,
        settings.duration,
    )
    .await;
    let cpu = before.per_request(&cpu::Snapshot::take(server.pid(), store), result.ok);
    (result, cpu)
}

/// Prints the progress line of `run` and adds it to `runs`.
fn print_run(run: Run, runs: &mut Vec<Run>) {
    println!(
        "  {:<14} {:<8} {:<9} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  {}  errors {}{}",
        run.side.label(),
        run.store,
        run.mode,
        run.result.rps(),
        run.result.quantile_ms(0.5),
        run.result.quantile_ms(0.99),
        describe_cpu(run.cpu),
        run.result.errors,
        run.lost
            .map_or(String::new(), |lost| format!("  lost {lost}"))
    );
    runs.push(run);
}

/// Store work per request, counted on the server around sequential requests of each kind:
/// Redis commands executed (`INFO commandstats`, commands run inside scripts included) and
/// client round trips (`MONITOR`, script-internal commands excluded), or PostgreSQL
/// transactions (`pg_stat_database`).
pub(crate) struct RoundTrips {
    pub(crate) store: String,
    pub(crate) side: Side,
    /// Read-only, write, new session: the main figure (round trips or transactions).
    pub(crate) per_request: [f64; 3],
    /// Redis only: commands executed, scripts' inner commands included.
    pub(crate) commands: Option<[f64; 3]>,
}

fn redis_calls() -> Result<u64, String> {
    let info = redis_cli(&["INFO", "commandstats"])?;
    Ok(info
        .lines()
        .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_info"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum())
}

fn postgres_transactions() -> Result<u64, String> {
    // Asked from the `postgres` database, so the question itself is not counted.
    let out = psql_in(
        "postgres",
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'test'",
    )?;
    out.trim()
        .parse()
        .map_err(|_| format!("pg_stat_database: {out:?}"))
}

/// Counts the commands clients send to Redis database 9 while `MONITOR` runs.
struct Monitor {
    child: Child,
    output: PathBuf,
}

impl Monitor {
    fn start(dir: &Path) -> Result<Self, String> {
        let output = dir.join("monitor.log");
        let file = std::fs::File::create(&output).map_err(|e| e.to_string())?;
        let child = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", "6379", "MONITOR"])
            .stdout(file)
            .spawn()
            .map_err(|e| format!("redis-cli MONITOR: {e}"))?;
        std::thread::sleep(Duration::from_millis(300));
        Ok(Self { child, output })
    }

    /// The lines of client commands seen so far on database 9 (lines from `lua` are
    /// script-internal).
    fn client_lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("[9 ") && !l.contains(" lua]"))
            .map(str::to_owned)
            .collect()
    }

    /// How many client commands were seen so far on database 9.
    fn client_commands(&self) -> u64 {
        self.client_lines().len() as u64
    }

    /// The client commands seen so far on database 9, each as its arguments.
    ///
    /// # Errors
    /// If an argument holds a byte a command line cannot carry.
    fn client_commands_seen(&self) -> Result<Vec<Vec<String>>, String> {
        self.client_lines()
            .iter()
            .map(|line| {
                redis_ceiling::monitor_args(line).ok_or(format!(
                    "a command whose arguments a command line cannot carry: {line}"
                ))
            })
            .collect()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn round_trips(store: &str, side: Side) -> Result<RoundTrips, String> {
    if store == "redis" {
        redis_round_trips(side).await
    } else {
        postgres_round_trips(store, side).await
    }
}

async fn redis_round_trips(side: Side) -> Result<RoundTrips, String> {
    const N: usize = SEQUENTIAL_REQUESTS;
    let store = "redis";
    wipe(store)?;
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let server = start(side, store, scratch.path()).await?;
    let cookie = loadgen::create_sessions(server.addr, 1)
        .await?
        .pop()
        .ok_or("no session")?;
    let monitor = Monitor::start(scratch.path())?;
    // MONITOR output arrives asynchronously: let it settle.
    let settle = || tokio::time::sleep(Duration::from_millis(700));
    let mut round_trips = [0.0; 3];
    let mut commands = [0.0; 3];
    for (i, (path, with_cookie)) in REQUEST_KINDS.into_iter().enumerate() {
        settle().await;
        let before = redis_calls()?;
        let seen_before = monitor.client_commands();
        loadgen::sequential(server.addr, path, with_cookie.then_some(cookie.as_str()), N).await?;
        settle().await;
        commands[i] = redis_calls()?.saturating_sub(before) as f64 / N as f64;
        round_trips[i] = monitor.client_commands().saturating_sub(seen_before) as f64 / N as f64;
    }
    drop(monitor);
    drop(server);
    wipe(store)?;
    Ok(RoundTrips {
        store: store.to_owned(),
        side,
        per_request: round_trips,
        commands: Some(commands),
    })
}

/// Read-only, write, new session.
const REQUEST_KINDS: [(&str, bool); 3] = [("/read", true), ("/incr", true), ("/incr", false)];

/// PostgreSQL transactions per request, from `pg_stat_database`. A backend reports its
/// counts only now and then while its connection is open (at most once a second, and up
/// to 10 s after it goes idle), but always when it exits; so each count is taken after the
/// application, and with it its pool, has stopped. Two runs of different lengths cancel
/// what a start costs (connecting, migrating), leaving the cost of one request.
async fn postgres_round_trips(store: &str, side: Side) -> Result<RoundTrips, String> {
    const SHORT: usize = 50;
    const LONG: usize = SHORT + SEQUENTIAL_REQUESTS;
    wipe(store)?;
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cookie = {
        let server = start(side, store, scratch.path()).await?;
        loadgen::create_sessions(server.addr, 1)
            .await?
            .pop()
            .ok_or("no session")?
    };
    let mut per_request = [0.0; 3];
    for (i, (path, with_cookie)) in REQUEST_KINDS.into_iter().enumerate() {
        let mut transactions = [0u64; 2];
        for (slot, count) in [SHORT, LONG].into_iter().enumerate() {
            let before = settled_postgres_transactions().await?;
            let server = start(side, store, scratch.path()).await?;
            loadgen::sequential(
                server.addr,
                path,
                with_cookie.then_some(cookie.as_str()),
                count,
            )
            .await?;
            drop(server);
            transactions[slot] = settled_postgres_transactions().await? - before;
        }
        per_request[i] =
            transactions[1].saturating_sub(transactions[0]) as f64 / (LONG - SHORT) as f64;
    }
    wipe(store)?;
    Ok(RoundTrips {
        store: store.to_owned(),
        side,
        per_request,
        commands: None,
    })
}

/// The transaction count once backends that just exited have reported theirs: read until
/// two reads 300 ms apart agree.
async fn settled_postgres_transactions() -> Result<u64, String> {
    let mut last = postgres_transactions()?;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = postgres_transactions()?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// The versions of the store servers `stores` use, as far as they answer: they change
/// the figures as much as the machine does.
fn server_versions(stores: &[String]) -> Vec<String> {
    let has = |store: &str| stores.iter().any(|s| s == store);
    let mut versions = Vec::new();
    if has("postgres")
        && let Ok(out) = psql("SHOW server_version")
    {
        versions.push(format!("PostgreSQL {}", out.trim()));
    }
    if has("mysql")
        && let Ok(out) = mariadb("SELECT VERSION()")
    {
        versions.push(format!("MariaDB {}", out.trim()));
    }
    if has("redis")
        && let Ok(out) = redis_cli(&["INFO", "server"])
        && let Some(version) = out.lines().find_map(|l| l.strip_prefix("redis_version:"))
    {
        versions.push(format!("Redis {}", version.trim()));
    }
    versions
}

async fn run(settings: Settings) -> Result<(), String> {
    match settings.task {
        Task::Check => return report::check(),
        Task::UpdateReadme => return report::update_readme(),
        Task::Measure => {}
    }
    if settings.users_only {
        println!("sessions of users: stores {:?}", settings.stores);
        let lines = users::run(&settings.stores).await?;
        return report::write_users(&settings, &lines);
    }
    if settings.lock_only {
        println!(
            "same-session concurrency and the lock's cost: {} connections, {} s per run, {} round(s); stores {:?}",
            settings.connections,
            settings.duration.as_secs(),
            settings.rounds,
            settings.stores
        );
        let results = lock::run(&settings).await?;
        return report::write_lock(&settings, &results);
    }
    if settings.actix_only {
        println!(
            "actix-web: ours against actix-session on Redis, {} round(s) of {:?} per app, {} connections, {} sessions",
            settings.rounds, settings.duration, settings.connections, settings.sessions
        );
        let runs = actix::run(&settings).await?;
        return report::write_actix(&settings, &runs);
    }
    if settings.scale_only {
        println!("scale: memory, file and PostgreSQL stores");
        let lines = scale::run().await?;
        return report::write_scale(&settings, &lines);
    }
    let mut runs = Vec::new();
    let mut ceilings = Vec::new();
    println!(
        "benchmark: {} round(s) of {:?} per app, {} connections, {} sessions; stores {:?}",
        settings.rounds,
        settings.duration,
        settings.connections,
        settings.sessions,
        settings.stores
    );
    for round in 0..settings.rounds {
        println!("round {} / {}", round + 1, settings.rounds);
        measure(&settings, Side::Baseline, "none", round, &mut runs).await?;
        for store in &settings.stores {
            measure(&settings, Side::Ours, store, round, &mut runs).await?;
            if has_peer(store) {
                measure(&settings, Side::Peer, store, round, &mut runs).await?;
            }
            if store == "redis" {
                let ceiling = redis_ceiling::measure(&settings, round).await?;
                println!(
                    "  redis-benchmark         HGETALL {:>9.0}/s  EVALSHA {:>9.0}/s  one of each {:>9.0}/s",
                    ceiling.reads,
                    ceiling.writes,
                    ceiling.requests()
                );
                ceilings.push(ceiling);
            }
        }
    }
    let mut trips = Vec::new();
    for store in settings
        .stores
        .iter()
        .filter(|s| *s == "redis" || *s == "postgres")
    {
        for side in [Side::Ours, Side::Peer] {
            let t = round_trips(store, side).await?;
            println!(
                "  per request {:<14} {:<8} read-only {:.2}  write {:.2}  new session {:.2}{}",
                side.label(),
                store,
                t.per_request[0],
                t.per_request[1],
                t.per_request[2],
                t.commands.map_or(String::new(), |c| format!(
                    "  (commands executed: {:.2} / {:.2} / {:.2})",
                    c[0], c[1], c[2]
                ))
            );
            trips.push(t);
        }
    }
    let scale = if settings.scale {
        Some(scale::run().await?)
    } else {
        None
    };
    let servers = server_versions(&settings.stores);
    report::write(
        &settings,
        &servers,
        &runs,
        &trips,
        &ceilings,
        scale.as_deref(),
    )
}

fn main() -> ExitCode {
    let settings = match parse_args(std::env::args().skip(1)) {
        Ok(settings) => settings,
        Err(message) => {
            eprint!("session-bench: {message}\n\n{USAGE}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    // One thread for the load generator: it cannot take more than one core from the
    // server under test, so the server, not the generator, is what saturates.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("session-bench: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("session-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The usage, printed on standard output for `--help` and on standard error after a wrong
/// argument.
const USAGE: &str = "\
usage: session-bench [options]
       session-bench --check | --update-readme

Runs the example app and the tower-sessions peer from this binary's folder (`cargo xtask
bench` builds them, the actix-session peer and this program in release mode) on each
store; the results go to target/bench/, and a full run also to docs/benchmarks.md, its
chart and the README's summary table.

  --rounds N          rounds per store, sides alternating (default 5)
  --duration SECONDS  length of each timed run (default 10)
  --connections N     concurrent connections of the load generator (default 50)
  --sessions N        existing sessions the requests rotate over (default 1000)
  --stores a,b        the stores to measure (default memory,file,sqlite,postgres,
                      postgres-ping,postgres-noping,mysql,mysql-ping,mysql-noping,redis:
                      on postgres and mysql each app keeps its library's ping-before-use
                      default, -ping makes both ping and -noping neither; both apps get
                      pools of 10; also cookie and jwt, the client-side types, and
                      memory-header and memory-bearer, the token transports; these have
                      no peer)
  --quick             one round of 3 seconds over 200 sessions
  --scale             also the scale figures (memory, file and PostgreSQL at size)
  --scale-only        only the scale figures, no HTTP benchmark
  --users-only        only the costs of sessions bound to users (log-in, list, revoke)
  --lock-only         only same-session concurrency: one hot session with the lock off,
                      on, and with update (lost increments), and the lock's cost on
                      distinct sessions (throughput, lock on / off)
  --actix-only        only the example app on actix-web against actix-session, on
                      Redis only (whatever --stores says): both workloads, the
                      two apps alternating within each round
  --no-docs           write only to target/bench/, leave docs/ and the README alone
  --check             check that the README's table matches docs/benchmarks.md
  --update-readme     rewrite the README's table from docs/benchmarks.md
  -h, --help          print this help
";

/// The status of a run whose arguments were wrong, apart from 1 (a benchmark that failed).
const USAGE_ERROR: u8 = 2;

impl Settings {
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} round(s) × {} s per app and mode, {} connections, {} existing sessions",
            self.rounds,
            self.duration.as_secs(),
            self.connections,
            self.sessions
        )
    }
}

#[cfg(test)]
mod tests;
