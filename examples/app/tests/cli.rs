//! The example's command line: `--help` and `-h` print the usage on standard output with
//! status 0 and start no server; a wrong argument prints the usage on standard error with
//! a non-zero status; a store that cannot open stops it with the whole cause chain and a
//! hint of what to do.

#[path = "../../../xtask/tests/support/cli.rs"]
mod cli;

use cli::{answers_help, help, refuses};

const EXAMPLE: &str = env!("CARGO_BIN_EXE_session-example");

#[test]
fn help_prints_the_usage_and_exits_0() {
    // `--addr` first: had the help not stopped the program, it would listen there and the
    // test would hang rather than pass.
    answers_help(EXAMPLE, "session-example", &["--addr", "127.0.0.1:0"]);
    assert!(help(EXAMPLE, &["--help"], "session-example").contains("--config FILE"));
}

#[test]
fn a_wrong_argument_prints_the_usage_on_stderr() {
    refuses(
        EXAMPLE,
        "session-example",
        &[
            (&["--bogus"], "unknown argument --bogus"),
            (&["serve"], "unknown argument serve"),
            (&["--addr"], "--addr needs an address"),
            (&["--addr", "not-an-address"], "--addr not-an-address"),
        ],
    );
}

/// A store that cannot open stops the app with the whole cause chain on standard error,
/// not only the first part of it ("cannot create the session folder" and why).
#[test]
fn a_store_that_cannot_open_is_reported_with_its_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A regular file where the store's folder should be: the folder cannot be created.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"").expect("write");
    let output = std::process::Command::new(EXAMPLE)
        .args(["--addr", "127.0.0.1:0"])
        .env("SESSION__TYPE", "file")
        .env("SESSION__ADAPTER__FILE__PATH", blocker.join("session"))
        .output()
        .expect("run the example");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|line| line.starts_with("session-example: "))
        .unwrap_or_else(|| panic!("no error line in {stderr}"));
    assert!(line.contains("cannot create the session folder"), "{line}");
    assert!(
        line.contains("Not a directory") || line.contains("os error 20"),
        "the cause is missing: {line}"
    );
    let hint = hint_after(&stderr, line);
    assert!(hint.contains("is a file"), "{hint}");
    assert!(hint.contains("adapter.file.path"), "{hint}");
}

/// The line after `line` in `stderr`, which must be the hint.
fn hint_after<'a>(stderr: &'a str, line: &str) -> &'a str {
    let mut lines = stderr.lines().skip_while(|candidate| *candidate != line);
    lines.next();
    lines
        .next()
        .filter(|next| next.starts_with("hint: "))
        .unwrap_or_else(|| panic!("no hint after the error line in {stderr}"))
}

/// A new user's first try on PostgreSQL, end to end: the example started as a role that
/// may not create tables in `public` (PostgreSQL 15 and later give that to the database
/// owner only) stops with the server's own words for the cause and the grant that fixes
/// it. The role is made for the test with a random name and dropped after, pass or fail.
#[test]
fn a_postgres_role_without_create_is_told_the_cause_and_the_grant() {
    use session_db::sqlx::{self, PgPool};

    let admin_url = std::env::var("SESSION_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let admin = match runtime.block_on(PgPool::connect(&admin_url)) {
        Ok(admin) => admin,
        Err(err) => {
            let reason = format!("PostgreSQL unreachable: {err}");
            assert!(!session_testkit::services_required(), "{reason}");
            eprintln!("skipped: {reason}");
            return;
        }
    };
    let random = session_core::SessionId::generate(32)
        .expect("id")
        .store_key();
    let role = format!("t{}", &random.as_str()[..12]);
    runtime
        .block_on(sqlx::query(&format!("CREATE ROLE \"{role}\" LOGIN")).execute(&admin))
        .expect("create the role");

    /// Drops the role when the test ends, however it ends.
    struct DropRole<'a> {
        runtime: &'a tokio::runtime::Runtime,
        admin: &'a PgPool,
        role: &'a str,
    }
    impl Drop for DropRole<'_> {
        fn drop(&mut self) {
            let drop = format!("DROP ROLE IF EXISTS \"{}\"", self.role);
            if let Err(err) = self
                .runtime
                .block_on(sqlx::query(&drop).execute(self.admin))
            {
                eprintln!("cleanup: {drop} failed: {err}");
            }
        }
    }
    let _drop_role = DropRole {
        runtime: &runtime,
        admin: &admin,
        role: &role,
    };

    let server = admin_url
        .rsplit_once('@')
        .map_or(admin_url.as_str(), |(_, server)| server);
    let output = std::process::Command::new(EXAMPLE)
        .args(["--addr", "127.0.0.1:0"])
        .env_remove("SESSION_CONFIG")
        .env("SESSION__TYPE", "db")
        .env(
            "SESSION__ADAPTER__DB__URL",
            format!("postgres://{role}@{server}"),
        )
        .env("SESSION__ADAPTER__DB__PREFIX", format!("{role}_"))
        .output()
        .expect("run the example");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|line| line.starts_with("session-example: "))
        .unwrap_or_else(|| panic!("no error line in {stderr}"));
    assert!(line.contains("postgres: migrate failed"), "{line}");
    assert!(
        line.contains("permission denied for schema public"),
        "the cause is missing: {line}"
    );
    let hint = hint_after(&stderr, line);
    assert!(
        hint.contains(&format!("GRANT CREATE ON SCHEMA public TO \"{role}\"")),
        "{hint}"
    );
    assert!(hint.contains("adapter.db.migrate = false"), "{hint}");
}
