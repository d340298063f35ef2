//! The set-up mistakes a Redis store meets when it opens, one test each: the error a
//! person sees (`{:#}`) names the cause, and carries the hint of what to do. A closed
//! loopback port stands for a server that is down; the password cases start a
//! `redis-server` of their own with `--requirepass` on a spare port (never the shared
//! one), killed when the test ends, pass or fail.

mod support;

use std::time::Duration;

use session_core::{Error, SetupProblem};
use session_redis::{RedisConfig, RedisStore};
use session_testkit::{TestError, TestResult, Tests, Trial, expect_setup_error};
use support::RedisServer;

fn main() -> std::process::ExitCode {
    Tests::new([
        Trial::tokio(
            "unreachable_server_names_the_refused_connection",
            unreachable_server_names_the_refused_connection,
        ),
        Trial::tokio(
            "missing_password_is_an_authentication_failure",
            missing_password_is_an_authentication_failure,
        ),
        Trial::tokio(
            "wrong_password_is_an_authentication_failure",
            wrong_password_is_an_authentication_failure,
        ),
        Trial::tokio(
            "lazy_store_gets_the_hint_at_its_first_call",
            lazy_store_gets_the_hint_at_its_first_call,
        ),
    ])
    .main()
}

/// The password of the private servers.
const PASSWORD: &str = "correct-horse";

/// [`expect_setup_error`], and the message shows no password.
fn check<T>(
    opened: Result<T, Error>,
    problem: SetupProblem,
    causes: &[&str],
    advice: &[&str],
) -> TestResult {
    if let Err(err) = &opened {
        let shown = format!("{err:#}");
        if shown.contains(PASSWORD) {
            return Err(TestError::fail(format!("the password is shown: {shown}")));
        }
    }
    expect_setup_error(opened, problem, causes, advice)
}

/// A private server that wants [`PASSWORD`], or the skip of a machine without one.
fn server_with_password() -> Result<RedisServer, TestError> {
    RedisServer::start_with(vec!["--requirepass".into(), PASSWORD.into()])
        .ok_or_else(support::no_redis_server)
}

fn config(url: String) -> RedisConfig {
    RedisConfig::new(url).with_connect_timeout(Duration::from_secs(2))
}

async fn unreachable_server_names_the_refused_connection() -> TestResult {
    let port = support::free_port();
    check(
        RedisStore::connect(&config(format!("redis://127.0.0.1:{port}"))).await,
        SetupProblem::Unreachable,
        &["could not connect to Redis", "Connection refused"],
        &[&format!("127.0.0.1:{port}"), "adapter.redis.url"],
    )
}

/// A server with `requirepass` takes the connection and refuses its first command.
async fn missing_password_is_an_authentication_failure() -> TestResult {
    let server = server_with_password()?;
    check(
        RedisStore::connect(&config(server.url())).await,
        SetupProblem::Authentication,
        &["NOAUTH"],
        &["requires a password", "redis://:PASSWORD@"],
    )
}

async fn wrong_password_is_an_authentication_failure() -> TestResult {
    let server = server_with_password()?;
    let url = format!("redis://:not-{PASSWORD}@127.0.0.1:{}", server.port());
    check(
        RedisStore::connect(&config(url)).await,
        SetupProblem::Authentication,
        &["authentication failed"],
        &["refused the user or password", "adapter.redis.url"],
    )?;
    // The right one opens it, so the failure above was the password's.
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", server.port());
    RedisStore::connect(&config(url)).await?;
    Ok(())
}

/// A lazy store opens without connecting; its first call meets the mistake, and says so.
async fn lazy_store_gets_the_hint_at_its_first_call() -> TestResult {
    let server = server_with_password()?;
    let store = RedisStore::connect_lazy(&config(server.url()))?;
    let key = session_core::SessionId::generate(32)?.store_key();
    check(
        session_core::SessionStore::load(&store, &key).await,
        SetupProblem::Authentication,
        &["NOAUTH"],
        &["requires a password"],
    )
}
