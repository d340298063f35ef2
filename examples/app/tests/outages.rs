//! The example's answers while its session store is down, on both frameworks, for every
//! `--on-store-error` policy, with three real stores made unreachable: a private
//! `redis-server` stopped with SIGSTOP (it hangs), a file store whose folder was replaced
//! by a file, and PostgreSQL at a closed port. Each request's wait is measured: none waits
//! longer than the store's timeout plus 50 ms.

mod support;

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_core::{SessionConfig, SessionManager};
use session_example::{Framework, Options, STORE_ERROR_POLICIES};
use session_testkit::{TestError, TestResult, Tests, Trial};
use support::{Answered, App, get, post};

/// The manager's bound on every store call in these tests.
const STORE_TIMEOUT: Duration = Duration::from_millis(300);

/// How much longer than [`STORE_TIMEOUT`] a request may take while the store is down.
const SLACK: Duration = Duration::from_millis(50);

fn main() -> std::process::ExitCode {
    Tests::new(Framework::ALL.into_iter().flat_map(|framework| {
        [
            Trial::tokio(
                format!("every_policy_with_redis_stopped_on_{framework}"),
                move || with_redis_stopped(framework),
            )
            .multi_thread(2),
            Trial::tokio(
                format!("every_policy_with_the_file_store_folder_gone_on_{framework}"),
                move || with_the_file_store_folder_gone(framework),
            )
            .multi_thread(2),
            Trial::tokio(
                format!("every_policy_with_postgres_at_a_closed_port_on_{framework}"),
                move || with_postgres_at_a_closed_port(framework),
            )
            .multi_thread(2),
        ]
    }))
    .main()
}

/// What the tests expect of a policy, by its `--on-store-error` name: the status of a page
/// that reads the session (`GET /`) and of one that only writes (`POST /logout`: a clear,
/// which needs no read, and a flash), and whether the reply is the app's error page, empty
/// or the handler's.
fn expected(policy: &str) -> (u16, u16) {
    match policy {
        "page" | "503" => (503, 503),
        "500" => (500, 500),
        // The read sees a new, empty session; the logout's redirect goes out as it was.
        "continue" => (200, 303),
        // The handler's own answers: its read failed (a 500 of its own), its logout
        // redirected.
        "keep" => (500, 303),
        other => panic!("no expectation for policy {other}"),
    }
}

/// Runs every policy against `manager`, whose store is down, with `cookie` (a session the
/// store held before it went down); fails on the first answer that is not the policy's.
/// Returns the longest wait of any request.
async fn check_every_policy(
    framework: Framework,
    manager: &SessionManager,
    cookie: &str,
    store: &str,
) -> Result<Duration, TestError> {
    let mut longest = Duration::ZERO;
    for (name, policy) in STORE_ERROR_POLICIES {
        let mut options = Options::default();
        options.on_store_error = policy;
        let app = App::serving(framework, manager.clone(), options);
        // A first request the server answers without the store, so the waits below are
        // the store's, not the server's start.
        let started = app.send_full(get("/healthz", None)).await;
        check(started.status == 200, store, name, "GET /healthz", &started)?;

        let (read_status, logout_status) = expected(name);
        let timed = Instant::now();
        let read = app.send_full(get("/", Some(cookie))).await;
        longest = longest.max(timed.elapsed());
        check(read.status == read_status, store, name, "GET /", &read)?;
        let timed = Instant::now();
        let logout = app.send_full(post("/logout", Some(cookie), "")).await;
        longest = longest.max(timed.elapsed());
        check(
            logout.status == logout_status,
            store,
            name,
            "POST /logout",
            &logout,
        )?;
        for (what, answer) in [("GET /", &read), ("POST /logout", &logout)] {
            check(
                answer.headers.get("set-cookie").is_none(),
                store,
                name,
                &format!("{what} sent no Set-Cookie"),
                answer,
            )?;
            match name {
                "page" => check(
                    answer.body.contains("Sessions are unavailable")
                        && header(answer, "retry-after") == Some("5")
                        && header(answer, "content-type")
                            .is_some_and(|value| value.starts_with("text/html")),
                    store,
                    name,
                    &format!("{what} is the app's error page with Retry-After: 5"),
                    answer,
                )?,
                "503" => check(
                    answer.body.is_empty() && header(answer, "retry-after") == Some("5"),
                    store,
                    name,
                    &format!("{what} is empty, with Retry-After: 5"),
                    answer,
                )?,
                "500" => check(
                    answer.body.is_empty(),
                    store,
                    name,
                    &format!("{what} is empty"),
                    answer,
                )?,
                _ => {}
            }
        }
        if name == "continue" {
            check(
                read.body.contains("not logged in"),
                store,
                name,
                "GET / reads as a new, empty session",
                &read,
            )?;
            // A write goes nowhere: the counter starts from nothing and stays there.
            let timed = Instant::now();
            let incr = app.send_full(get("/incr", Some(cookie))).await;
            longest = longest.max(timed.elapsed());
            check(
                incr.status == 200 && incr.body == "1" && incr.headers.get("set-cookie").is_none(),
                store,
                name,
                "GET /incr counts from an empty session and sends no cookie",
                &incr,
            )?;
        }
        app.stop().await;
    }
    Ok(longest)
}

/// Fails with the answer when `ok` is false.
fn check(ok: bool, store: &str, policy: &str, what: &str, answer: &Answered) -> TestResult {
    if ok {
        return Ok(());
    }
    Err(TestError::fail(format!(
        "{store} down, policy {policy}: expected {what}; got {} {:?} {:?}",
        answer.status, answer.headers, answer.body
    )))
}

fn header<'a>(answer: &'a Answered, name: &str) -> Option<&'a str> {
    answer
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

/// Fails unless `longest` is within the store's timeout plus [`SLACK`]; prints the figure.
fn within_bound(store: &str, framework: Framework, longest: Duration) -> TestResult {
    println!(
        "figure: {store} down, {framework} | longest request wait over every policy | {} ms \
         (bound {} ms)",
        longest.as_millis(),
        (STORE_TIMEOUT + SLACK).as_millis()
    );
    if longest > STORE_TIMEOUT + SLACK {
        return Err(TestError::fail(format!(
            "{store} down: a request waited {longest:?}, over the store timeout \
             {STORE_TIMEOUT:?} plus {SLACK:?}"
        )));
    }
    Ok(())
}

/// A login through the app on `manager`, while the store is up: the session's cookie.
async fn log_in(framework: Framework, manager: &SessionManager) -> Result<String, TestError> {
    let app = App::over(framework, manager.clone());
    let (status, cookie, _) = app.send(post("/login", None, "username=ada")).await;
    app.stop().await;
    match (status, cookie) {
        (303, Some(cookie)) => Ok(cookie),
        (status, cookie) => Err(TestError::fail(format!(
            "the login before the outage answered {status} with cookie {cookie:?}"
        ))),
    }
}

/// The configuration of these tests: `store` with `adapter`, and [`STORE_TIMEOUT`].
fn config(store: &str, adapter: serde_json::Value) -> Result<SessionConfig, TestError> {
    SessionConfig::from_value(serde_json::json!({
        "type": store,
        "store_timeout": format!("{}ms", STORE_TIMEOUT.as_millis()),
        "adapter": { store: adapter },
    }))
    .map_err(|err| TestError::fail(format!("config: {err:#}")))
}

async fn with_redis_stopped(framework: Framework) -> TestResult {
    let server = PrivateRedis::start()?;
    // The store's own timeouts are longer than the manager's: the manager's bound is
    // what must act.
    let config = config(
        "redis",
        serde_json::json!({
            "url": format!("redis://127.0.0.1:{}", server.port),
            "connect_timeout": "2s",
            "response_timeout": "2s",
        }),
    )?;
    let manager = SessionManager::from_config(config, &session_example::registry()).await?;
    let cookie = log_in(framework, &manager).await?;
    server.signal("STOP")?;
    let longest = check_every_policy(framework, &manager, &cookie, "redis").await;
    server.signal("CONT")?;
    within_bound("redis (SIGSTOP)", framework, longest?)
}

async fn with_the_file_store_folder_gone(framework: Framework) -> TestResult {
    let dir = tempfile::tempdir().map_err(|err| TestError::fail(err.to_string()))?;
    let folder = dir.path().join("session");
    let config = config("file", serde_json::json!({ "path": folder }))?;
    let manager = SessionManager::from_config(config, &session_example::registry()).await?;
    let cookie = log_in(framework, &manager).await?;
    // The folder is gone, and a file in its place keeps it from being made again.
    std::fs::remove_dir_all(&folder).map_err(|err| TestError::fail(err.to_string()))?;
    std::fs::write(&folder, "not a folder").map_err(|err| TestError::fail(err.to_string()))?;
    let longest = check_every_policy(framework, &manager, &cookie, "file").await?;
    within_bound("file (folder gone)", framework, longest)
}

async fn with_postgres_at_a_closed_port(framework: Framework) -> TestResult {
    use session_db::PostgresStore;
    use session_db::sqlx::postgres::PgPoolOptions;

    let port = closed_port()?;
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy(&format!("postgres://postgres@127.0.0.1:{port}/test"))
        .map_err(|err| TestError::fail(format!("lazy pool: {err}")))?;
    let config = config("db", serde_json::json!({}))?;
    let manager = SessionManager::new(Arc::new(PostgresStore::new(pool)), config)?;
    // A session id the store never saw: the load is what fails.
    let cookie = "thinkjs=AbCdEfGhIjKlMnOpQrStUvWxYz012345";
    let longest = check_every_policy(framework, &manager, cookie, "postgres").await?;
    within_bound("postgres (closed port)", framework, longest)
}

/// A loopback port nothing listens on.
fn closed_port() -> Result<u16, TestError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|err| TestError::fail(format!("bind: {err}")))?;
    let port = listener
        .local_addr()
        .map_err(|err| TestError::fail(err.to_string()))?
        .port();
    drop(listener);
    Ok(port)
}

/// A `redis-server` of the test's own on a spare loopback port, without persistence;
/// continued and killed when dropped.
struct PrivateRedis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    fn start() -> Result<Self, TestError> {
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.is_file())
            .ok_or_else(|| TestError::skip("no redis-server on this machine"))?;
        let port = closed_port()?;
        let dir = tempfile::tempdir().map_err(|err| TestError::fail(err.to_string()))?;
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| TestError::fail(format!("start redis-server: {err}")))?;
        let server = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if Instant::now() > deadline {
                return Err(TestError::fail("the private redis-server did not start"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// Sends `signal` (`STOP`, `CONT`) to the server.
    fn signal(&self, signal: &str) -> TestResult {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .map_err(|err| TestError::fail(format!("kill -{signal}: {err}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(TestError::fail(format!("kill -{signal} failed")))
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        // A stopped process still dies of SIGKILL.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
